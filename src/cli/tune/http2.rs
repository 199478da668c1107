//! `tune` over HTTP/2: every count of connections with every count of
//! streams per connection, each sending the whole sample.

use anyhow::bail;

use apnsblast::http2::config::Http2Config;
use apnsblast::report::Report;
use apnsblast::run::SendConfig;
use apnsblast::tls::TlsConfig;
use mock_gateway::Config;

use super::grid::{Point, Row, errors, lines, recommend, send_flags, table};
use super::table::{RECONNECT_MARGIN, RECONNECT_SLACK, SAME_SPEED, grouped, percent};
use super::{Setup, chart, counts, trials};
use crate::cli::demo::start_http2_mock;
use crate::cli::http2args::topic_from_certificate;
use crate::cli::{Exit, Service};

/// How the HTTP/2 trials are chosen and judged, for `--help`, with the
/// thresholds `grid` applies.
pub(super) fn rule() -> String {
    format!(
        "\
HTTP/2 trials (--api http2): every count of --shards-list (connections) with every count of --streams-list \
(streams in flight per connection at most; the gateway's own limit applies below it), each on --sample tokens.

Errors: tokens left unconfirmed or unsent, rejections other than BadDeviceToken and Unregistered (the list's \
doing, not the setting's), failed connection attempts. A rejection ends no HTTP/2 connection, so every \
reconnect counts against the setting.

The recommendation: clean trials as for the binary protocol (the fewest errors per token; at most {} more \
reconnects per token than the fewest, plus {RECONNECT_SLACK}); of those within {} of the fastest, the smallest \
setting wins: the fewest connections (each is a TLS handshake and a connection held open for the whole run), \
then the fewest streams (fewer requests in doubt if a connection is lost), then the fastest. It is \
printed as `apnsblast send --api http2` flags.",
        percent(RECONNECT_MARGIN),
        percent(SAME_SPEED)
    )
}

impl trials::Trial for Point {
    fn apply(self, config: &mut SendConfig) {
        config.shards = self.shards;
        if let Some(h2) = config.http2.as_mut() {
            h2.streams = self.streams;
        }
    }

    fn strict(self) -> bool {
        false
    }

    fn describe(self, tokens: u64) -> String {
        let tokens = if tokens > 0 { format!(", {} tokens", grouped(tokens as f64)) } else { String::new() };
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        format!(
            "{} connection{}, {} stream{} each{tokens}",
            self.shards,
            plural(self.shards),
            self.streams,
            plural(self.streams)
        )
    }

    fn errors(report: &Report) -> u64 {
        errors(report)
    }
}

/// Runs the HTTP/2 trials of `s` with the settings `h2` (from the flags,
/// the key read).
pub(super) fn run(s: Setup, mut h2: Http2Config) -> anyhow::Result<Exit> {
    let args = s.args;
    let streams = counts("--streams-list", &args.streams_list)?;
    let plan: Vec<Point> =
        s.shards.iter().flat_map(|&shards| streams.iter().map(move |&streams| Point { shards, streams })).collect();
    // Against the mock, `_mock` keeps it (and its certificates) until the end.
    let (gateway, tls, _mock) = if s.real {
        let tls = match (&args.tls, args.http2.auth_key.is_some()) {
            (Some(tls), true) => tls.load_optional()?,
            (Some(tls), false) => tls.load()?,
            (None, true) => TlsConfig::default(),
            (None, false) => bail!(
                "--cert FILE or --auth-key FILE is needed with --gateway or --sandbox (the provider certificate, \
                 or token authentication)"
            ),
        };
        topic_from_certificate(&mut h2, &tls)?;
        let gateway = args.gateway.resolve(Service::Http2)?;
        if args.tokens.is_none() && gateway.contains(".push.apple.com:") {
            bail!("{gateway} is Apple's: give your own list with --tokens (generated tokens belong to no device)");
        }
        let total = plan.len() as u64 * s.sample.tokens(false);
        let probes = "one request per trial to a token no device has, which the gateway rejects";
        let hint = args
            .http2
            .collapse_id
            .is_none()
            .then_some("with --collapse-id ID the repeats replace each other on the device");
        trials::confirm(&gateway, total, plan.len(), (probes, hint), args.yes)?;
        (gateway, tls, None)
    } else {
        let config = Config { bad_rate: args.bad_rate, seed: args.seed, track_deliveries: false, ..Config::default() };
        let mock = start_http2_mock(&config, "tune", s.global)?;
        // The mock's own key and topic; the headers as given.
        (h2.token, h2.topic) = (mock.http2.token.clone(), mock.http2.topic.clone());
        (mock.gateway.addr().to_string(), mock.tls.clone(), Some(mock))
    };
    let mut base = s.base(&gateway, tls)?;
    base.http2 = Some(h2);
    let against = if s.real { gateway.clone() } else { format!("the bundled HTTP/2 mock gateway at {gateway}") };
    if !s.global.quiet {
        eprintln!("apnsblast tune: {} trials over HTTP/2 against {against}", plan.len());
    }
    let (reports, failed) = trials::run(&plan, &base, &s);
    let mut rows: Vec<Row> = plan.iter().zip(reports).map(|(&p, report)| Row::new(p, report)).collect();
    if let Some(e) = failed {
        if !rows.is_empty() {
            // Against a real gateway what ran was paid for.
            print!("{}", table(&rows));
        }
        return Err(e);
    }
    let best = recommend(&rows);
    if let Some(i) = best {
        rows[i].recommended = true;
    }
    print!("{}", table(&rows));
    match best {
        Some(i) => {
            println!("recommended: {}", send_flags(&rows[i]));
            println!(
                "  {}/s: of the clean trials within {} of the fastest, the one with the fewest connections, then \
                 streams (see --help)",
                grouped(rows[i].rate_per_s),
                percent(SAME_SPEED)
            );
            if !s.real {
                println!("  measured on the loopback mock: a real gateway's round trip changes the answer");
            }
        }
        None => println!("recommended: none: no trial completed"),
    }
    trials::finish(&rows, plan.len(), s.report, s.chart, || chart::svg(&lines(&rows, &streams), &s.shards, &against))
}
