//! `tune` over the binary protocol: every shard count pipelined with Nagle
//! on and off, then strict at the smallest count.

use anyhow::Context;

use apnsblast::report::Report;
use apnsblast::run::{SendConfig, Style};
use mock_gateway::Config;

use super::table::{
    RECONNECT_MARGIN, RECONNECT_SLACK, Row, SAME_SPEED, errors, grouped, lines, percent, recommend, send_flags, table,
};
use super::{Setup, chart, trials};
use crate::cli::demo::start_mock;
use crate::cli::{Exit, Service};

/// How the recommendation is chosen, for `--help`, with the thresholds
/// `table` applies.
pub(super) fn rule() -> String {
    format!(
        "\
Binary trials: every count of --shards-list with Nagle on and off, pipelined, on --sample tokens; then the strict \
style (a read after every notification) at the smallest count only, Nagle on and off, on --strict-sample \
tokens, since it is slow.

Errors: tokens left unconfirmed or unsent, rejections other than invalid token (8), failed connection \
attempts. Invalid tokens are the list's doing, not the setting's: they are not errors. Nor is the reconnect \
each rejection forces (the gateway closes the connection after every error response): only reconnects \
beyond those are the setting's.

The recommendation: a trial is clean when it has the fewest errors per token of all trials and at most {} \
more of the setting's reconnects per token than the fewest (plus {RECONNECT_SLACK}). Clean trials within {} of \
the fastest clean one count as equally fast; of those the one with the fewest shards wins (fewer connections to hold \
open), then the one with the fewest reconnects, then the fastest. It is printed as `apnsblast send` \
flags, with the other Sending options given here.",
        percent(RECONNECT_MARGIN),
        percent(SAME_SPEED)
    )
}

/// One trial to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Trial {
    /// Connections in parallel.
    pub(super) shards: usize,
    /// Nagle's algorithm off.
    pub(super) nodelay: bool,
    /// Pipelined or strict.
    pub(super) style: Style,
}

impl trials::Trial for Trial {
    fn apply(self, config: &mut SendConfig) {
        (config.shards, config.nodelay, config.style) = (self.shards, self.nodelay, self.style);
    }

    fn strict(self) -> bool {
        self.style == Style::Strict
    }

    fn describe(self, tokens: u64) -> String {
        let style = if self.strict() { "strict" } else { "pipelined" };
        let nagle = if self.nodelay { "Nagle off" } else { "Nagle on" };
        let tokens = if tokens > 0 { format!(", {} tokens", grouped(tokens as f64)) } else { String::new() };
        format!("{} shard{}, {nagle}, {style}{tokens}", self.shards, if self.shards == 1 { "" } else { "s" })
    }

    fn errors(report: &Report) -> u64 {
        errors(report)
    }
}

/// Runs the binary trials of `s`.
pub(super) fn run(s: Setup) -> anyhow::Result<Exit> {
    let args = s.args;
    let plan = plan(&s.shards, s.sample.tokens(true) > 0);
    // Against the mock, `_mock` keeps it (and its certificates) until the end.
    let (gateway, tls, _mock) = if s.real {
        let tls = args.tls.as_ref().context("--cert is needed with --gateway or --sandbox")?.load()?;
        let gateway = args.gateway.resolve(Service::Push)?;
        if args.tokens.is_none() && gateway.contains(".push.apple.com:") {
            anyhow::bail!(
                "{gateway} is Apple's: give your own list with --tokens (generated tokens belong to no device)"
            );
        }
        let total: u64 = plan.iter().map(|t| s.sample.tokens(t.style == Style::Strict)).sum();
        let probes = "one test notification per trial, which the gateway rejects";
        trials::confirm(&gateway, total, plan.len(), (probes, None), args.yes)?;
        (gateway, tls, None)
    } else {
        let config = Config { bad_rate: args.bad_rate, seed: args.seed, track_deliveries: false, ..Config::default() };
        let mock = start_mock(config, "tune", s.global)?;
        (mock.gateway.addr().to_string(), mock.tls.clone(), Some(mock))
    };
    let mut base = s.base(&gateway, tls)?;
    base.command = args.message.command();
    base.priority = args.message.priority()?;
    let against = if s.real { gateway.clone() } else { format!("the bundled mock gateway at {gateway}") };
    if !s.global.quiet {
        eprintln!("apnsblast tune: {} trials against {against}", plan.len());
    }
    let (reports, failed) = trials::run(&plan, &base, &s);
    let mut rows: Vec<Row> = plan.iter().zip(reports).map(|(&t, report)| Row::new(t, report)).collect();
    let strict = (s.shards[0], s.sample.tokens(true));
    if let Some(e) = failed {
        if !rows.is_empty() {
            // Against a real gateway what ran was paid for.
            print!("{}", table(&rows, strict, s.sample.tokens(false)));
        }
        return Err(e);
    }
    let best = recommend(&rows);
    if let Some(i) = best {
        rows[i].recommended = true;
    }
    print!("{}", table(&rows, strict, s.sample.tokens(false)));
    match best {
        Some(i) => {
            println!("recommended: {}", send_flags(&rows[i], &args.tuning));
            println!(
                "  {}/s: of the clean trials within {} of the fastest, the one with the fewest shards (see --help)",
                grouped(rows[i].rate_per_s),
                percent(SAME_SPEED)
            );
            if !s.real {
                println!("  measured on the loopback mock: a real gateway's round trip changes the answer");
            }
        }
        None => println!("recommended: none: no trial completed"),
    }
    trials::finish(&rows, plan.len(), s.report, s.chart, || chart::svg(&lines(&rows), &s.shards, &against))
}

/// The trials: every count pipelined with Nagle on and off, then strict at
/// the smallest count.
fn plan(shards: &[usize], strict: bool) -> Vec<Trial> {
    let mut plan: Vec<Trial> = shards
        .iter()
        .flat_map(|&s| [false, true].map(|nodelay| Trial { shards: s, nodelay, style: Style::Pipelined }))
        .collect();
    if strict {
        plan.extend([false, true].map(|nodelay| Trial { shards: shards[0], nodelay, style: Style::Strict }));
    }
    plan
}
