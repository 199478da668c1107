//! `apnsblast demo`: the whole job with nothing set up. Fresh certificates
//! in a temporary directory, the bundled mock gateway on loopback, generated
//! tokens streamed through the same path `send` takes (reader, TLS, shards,
//! report), then the report beside the mock's own counts.

use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;

use apnsblast::http2::config::Http2Config;
use apnsblast::http2::jwt::{AuthKey, ProviderToken};
use apnsblast::input::ReaderOptions;
use apnsblast::report::Report;
use apnsblast::run::SendConfig;
use apnsblast::tls::{ClientIdentity, TlsConfig};
use mock_gateway::{Config, Gateway, Handle, Http2Gateway, Http2Handle, Pki, Stats};

use super::blast::{self, Job};
use super::generate::TokenGen;
use super::http2args::{ApiArg, Http2Args};
use super::output::Outputs;
use super::tokens::Input;
use super::{Exit, Global, OutputArgs, TuningArgs};

/// The share of tokens the bundled mock rejects unless told otherwise
/// (`pub(crate)`: `tune` uses the mock the same way).
pub(crate) const BAD_RATE: f64 = 0.001;

/// `apnsblast demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Tokens to generate and send
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub tokens: u64,
    /// Fraction of tokens the mock gateway rejects as invalid (status 8)
    #[arg(long, value_name = "R", default_value_t = BAD_RATE)]
    pub bad_rate: f64,
    /// Seed of the token list and of the mock's choice of invalid tokens
    #[arg(long, value_name = "S", default_value_t = 1)]
    pub seed: u64,
    /// Transport: the binary protocol, or Apple's HTTP/2 provider API (with
    /// token authentication: the mock's own .p8 key)
    #[arg(long, value_enum, default_value_t = ApiArg::Binary)]
    pub api: ApiArg,
    #[command(flatten, next_help_heading = "Sending")]
    pub tuning: TuningArgs,
    #[command(flatten, next_help_heading = "Output files")]
    pub outputs: OutputArgs,
}

/// Runs `demo`.
///
/// # Errors
/// Certificates cannot be made, the mock cannot start, or the run could not happen.
pub fn run(args: DemoArgs, global: &Global) -> anyhow::Result<Exit> {
    if !(0.0..=1.0).contains(&args.bad_rate) {
        bail!("--bad-rate {}: must be between 0 and 1", args.bad_rate);
    }
    Http2Args::check_flags(args.api)?;
    let outputs = Outputs::create(&args.outputs)?;
    let mock = Config { bad_rate: args.bad_rate, seed: args.seed, ..Config::default() };
    if args.api == ApiArg::Http2 {
        return http2(&args, &mock, outputs, global);
    }
    let Mock { gateway: gw, tls, dir: _dir } = start_mock(mock, "demo", global)?;
    let payload = br#"{"aps":{"alert":"Hello from the apnsblast demo"}}"#;
    let mut config = SendConfig::new(gw.addr().to_string(), tls, &payload[..]);
    args.tuning.apply(&mut config)?;
    let input = Input::from_reader(TokenGen::new(args.tokens, args.seed, 0.0), "generated tokens", None);
    if !global.quiet {
        eprintln!(
            "apnsblast demo: sending {} generated tokens to the mock gateway at {} ({} shards, bad rate {})",
            args.tokens,
            gw.addr(),
            config.shards,
            args.bad_rate
        );
    }
    let job = Job { config, input, options: ReaderOptions::default(), outputs, total: Some(args.tokens) };
    let outcome = blast::execute(job, global);
    let stats = gw.stop();
    let outcome = outcome?;
    let exit = blast::conclude(&outcome, global, "apnsblast demo: the report");
    let rejected = Rejected { label: "rejected: invalid token (8)", key: "8", mock: stats.rejected_with(8) };
    // A spare dropped mid-handshake at the end counts there as a failed handshake.
    let connections = stats.connections + stats.handshakes_failed;
    finish(&outcome.report, &stats, &rejected, connections, exit, global)
}

/// The rejections the demo compares: the report's key and the mock's count.
struct Rejected {
    label: &'static str,
    key: &'static str,
    mock: u64,
}

/// Prints the report beside the mock's counts and the agreement line.
fn finish(
    report: &Report,
    stats: &Stats,
    rejected: &Rejected,
    connections: u64,
    exit: Exit,
    global: &Global,
) -> anyhow::Result<Exit> {
    let agree = agreement(report, stats, rejected);
    if !global.quiet {
        print!("{}", side_by_side(report, stats, rejected, connections));
    }
    match &agree {
        Ok(()) => println!(
            "agreement: YES: the report and the mock gateway count the same accepted and rejected tokens, \
             and nothing arrived twice undeclared"
        ),
        Err(why) => println!("agreement: NO: {why}"),
    }
    Ok(if agree.is_ok() { exit } else { Exit::Incomplete })
}

/// `demo --api http2`: the same list through the HTTP/2 mock, with token
/// authentication by the mock's own `.p8` key.
fn http2(args: &DemoArgs, mock: &Config, outputs: Outputs, global: &Global) -> anyhow::Result<Exit> {
    let Http2Mock { gateway: gw, tls, http2, dir: _dir } = start_http2_mock(mock, "demo", global)?;
    let payload = br#"{"aps":{"alert":"Hello from the apnsblast demo"}}"#;
    let mut config = SendConfig::new(gw.addr().to_string(), tls, &payload[..]);
    args.tuning.apply(&mut config)?;
    config.http2 = Some(http2);
    let input = Input::from_reader(TokenGen::new(args.tokens, args.seed, 0.0), "generated tokens", None);
    if !global.quiet {
        eprintln!(
            "apnsblast demo: sending {} generated tokens over HTTP/2 to the mock gateway at {} ({} connections, \
             token authentication, bad rate {})",
            args.tokens,
            gw.addr(),
            config.shards,
            args.bad_rate
        );
    }
    let job = Job { config, input, options: ReaderOptions::default(), outputs, total: Some(args.tokens) };
    let outcome = blast::execute(job, global);
    let stats = gw.stop();
    let outcome = outcome?;
    let exit = blast::conclude(&outcome, global, "apnsblast demo: the report");
    let rejected = Rejected {
        label: "rejected: BadDeviceToken",
        key: "BadDeviceToken",
        mock: stats.rejected_for("BadDeviceToken"),
    };
    finish(&outcome.report, &stats, &rejected, stats.connections, exit, global)
}

/// The bundled mock gateway running on loopback, and what a client needs to
/// reach it. `pub(crate)`: `tune` starts the same mock.
pub(crate) struct Mock {
    /// The running gateway (127.0.0.1, a free port).
    pub(crate) gateway: Handle,
    /// A client certificate it accepts and its CA as the trust root.
    pub(crate) tls: TlsConfig,
    /// Holds the fresh certificates; removed when dropped.
    pub(crate) dir: tempfile::TempDir,
}

/// Makes fresh certificates in a temporary directory and starts the mock
/// gateway with `config` on 127.0.0.1 (a free port). `command` names the
/// subcommand in the one line said (unless quiet).
///
/// # Errors
/// The directory, the certificates or the listener cannot be made.
pub(crate) fn start_mock(config: Config, command: &str, global: &Global) -> anyhow::Result<Mock> {
    let (dir, pki) = certificates(command, global)?;
    let gateway = Gateway::start(config, &pki, "127.0.0.1:0".parse().expect("loopback address"), None)
        .context("starting the mock gateway on 127.0.0.1")?;
    let identity = ClientIdentity::load(pki.client_p12_path(), None, Some(""))?;
    let tls =
        TlsConfig { identity: Some(identity), extra_roots: vec![pki.ca_path()], danger_accept_invalid_certs: false };
    Ok(Mock { gateway, tls, dir })
}

/// The bundled HTTP/2 mock running on loopback, and what a client needs to
/// reach it with token authentication. `pub(crate)`: `tune` starts the same mock.
pub(crate) struct Http2Mock {
    /// The running gateway (127.0.0.1, a free port).
    pub(crate) gateway: Http2Handle,
    /// Its CA as the trust root; no client certificate (the token authenticates).
    pub(crate) tls: TlsConfig,
    /// The token made with the mock's own `.p8` key, and the topic it serves.
    pub(crate) http2: Http2Config,
    /// Holds the fresh certificates and key; removed when dropped.
    pub(crate) dir: tempfile::TempDir,
}

/// As [`start_mock`], for the HTTP/2 mock.
///
/// # Errors
/// The directory, the certificates, the key or the listener cannot be made.
pub(crate) fn start_http2_mock(config: &Config, command: &str, global: &Global) -> anyhow::Result<Http2Mock> {
    let (dir, pki) = certificates(command, global)?;
    let gateway = Http2Gateway::start(config, &pki, "127.0.0.1:0".parse().expect("loopback address"))
        .context("starting the HTTP/2 mock gateway on 127.0.0.1")?;
    let key = AuthKey::load(&pki.auth_key_path())?;
    let token = ProviderToken::new(key, pki.key_id(), pki.team_id())?;
    let http2 =
        Http2Config { token: Some(Arc::new(token)), topic: Some(pki.bundle_id().to_owned()), ..Http2Config::default() };
    let tls = TlsConfig { identity: None, extra_roots: vec![pki.ca_path()], danger_accept_invalid_certs: false };
    Ok(Http2Mock { gateway, tls, http2, dir })
}

/// Fresh certificates (and `.p8` key) in a new temporary directory.
fn certificates(command: &str, global: &Global) -> anyhow::Result<(tempfile::TempDir, Pki)> {
    let dir = tempfile::Builder::new()
        .prefix(&format!("apnsblast-{command}-"))
        .tempdir()
        .with_context(|| format!("cannot create a temporary directory for the {command} certificates"))?;
    if !global.quiet {
        eprintln!("apnsblast {command}: making certificates in {}", dir.path().display());
    }
    let pki = Pki::ensure(dir.path()).map_err(|e| anyhow::anyhow!("generating {command} certificates: {e}"))?;
    Ok((dir, pki))
}

/// Whether the sender's report matches what the mock counted.
fn agreement(report: &Report, stats: &Stats, rejected: &Rejected) -> Result<(), String> {
    let mut why = Vec::new();
    if report.accepted != distinct_accepted(stats) {
        why.push(format!("accepted {} by the report, {} by the mock", report.accepted, distinct_accepted(stats)));
    }
    let (ours, theirs) = (report.rejected.get(rejected.key).copied().unwrap_or(0), rejected.mock);
    if ours != theirs {
        why.push(format!("invalid tokens {ours} by the report, {theirs} by the mock"));
    }
    if stats.duplicates > report.possibly_duplicated {
        why.push(format!(
            "the mock saw {} duplicate deliveries, the report declares {} possible",
            stats.duplicates, report.possibly_duplicated
        ));
    }
    if report.unaccounted() != 0 {
        why.push(format!("{} tokens unaccounted for", report.unaccounted()));
    }
    if why.is_empty() { Ok(()) } else { Err(why.join("; ")) }
}

/// Tokens the mock accepted, each once: a token sent again after a
/// connection left it in doubt may have been accepted twice, which the report
/// declares as possibly duplicated and the mock counts as a duplicate. (The
/// generated tokens are distinct.)
fn distinct_accepted(stats: &Stats) -> u64 {
    stats.accepted - stats.duplicates
}

fn side_by_side(report: &Report, stats: &Stats, rejected: &Rejected, mock_connections: u64) -> String {
    // Connections made ahead of need and never used reached the gateway too.
    let connections: u64 = report.per_shard.iter().map(|s| s.connections + s.connect_ahead_wasted).sum::<u64>() + 1;
    let rows = [
        ("accepted", report.accepted, distinct_accepted(stats)),
        (rejected.label, report.rejected.get(rejected.key).copied().unwrap_or(0), rejected.mock),
        ("duplicates (declared / seen)", report.possibly_duplicated, stats.duplicates),
        ("connections (with the check)", connections, mock_connections),
    ];
    let mut s = format!("\n  {:<30} {:>12} {:>14}\n", "", "apnsblast", "mock gateway");
    for (name, ours, theirs) in rows {
        s.push_str(&format!("  {name:<30} {ours:>12} {theirs:>14}\n"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(accepted: u64, possibly_duplicated: u64) -> Report {
        Report { tokens_read: accepted, accepted, possibly_duplicated, ..Report::default() }
    }

    const NONE: Rejected = Rejected { label: "rejected", key: "8", mock: 0 };

    fn mock(accepted: u64, duplicates: u64) -> Stats {
        Stats { accepted, duplicates, ..Stats::default() }
    }

    #[test]
    fn declared_duplicates_keep_the_agreement() {
        assert_eq!(agreement(&run(1000, 0), &mock(1000, 0), &NONE), Ok(()));
        // Three tokens left in doubt and sent again, one of them accepted twice.
        assert_eq!(agreement(&run(1000, 3), &mock(1001, 1), &NONE), Ok(()));
    }

    #[test]
    fn undeclared_duplicates_and_miscounts_break_it() {
        let e = agreement(&run(1000, 0), &mock(1001, 1), &NONE).unwrap_err();
        assert!(e.contains("1 duplicate deliveries, the report declares 0"), "{e}");
        let e = agreement(&run(1000, 0), &mock(999, 0), &NONE).unwrap_err();
        assert!(e.contains("accepted 1000 by the report, 999 by the mock"), "{e}");
    }
}
