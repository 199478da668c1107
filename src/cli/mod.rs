//! The command line: clap arguments (raw values) and the dispatch to one
//! module per subcommand, each of which turns its arguments into a validated
//! configuration before anything is connected or sent.
//!
//! Exit status, for every subcommand that sends or merges: 0 every token
//! accepted; 1 some tokens were not (rejected, unconfirmed, unsent, skipped,
//! or the run was interrupted); 2 the run could not happen.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use apnsblast::ConnectAhead;
use apnsblast::conn::LONG_ROUND_TRIP;
use apnsblast::input::Partition;
use apnsblast::report::Report;
use apnsblast::run::{SendConfig, Style};
use apnsblast::shard::{MIN_CAREFUL_BATCH, MIN_CAREFUL_SEND_BUFFER};
use apnsblast::tls::TlsConfig;

mod blast;
mod demo;
mod feedback;
mod gateway;
mod generate;
mod given;
mod http2args;
mod merge;
mod output;
mod progress;
mod send;
mod summary;
mod tlsargs;
mod tokens;
mod tune;

pub use gateway::{GatewayArgs, Service};
pub use given::{given, note_given};

/// Blast Apple push notifications over Apple's HTTP/2 provider API or the
/// APNs binary provider protocol, and account for every token.
#[derive(Debug, Parser)]
#[command(name = "apnsblast", version, propagate_version = true)]
#[command(after_help = "Exit status: 0 every token accepted; 1 some tokens were not (rejected, unconfirmed, \
                        unsent, skipped) or the run was interrupted; 2 the run could not happen.\n\
                        Start with `apnsblast demo`: it needs nothing set up.")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand takes.
#[derive(Debug, Args)]
pub struct Global {
    /// No progress and no summary; errors and warnings only
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More log output on stderr (-v info, -vv debug); RUST_LOG overrides
    #[arg(short, long, action = ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send a notification to every token of a list
    Send(Box<send::SendArgs>),
    /// Read the feedback service: tokens whose app was uninstalled
    Feedback(Box<feedback::FeedbackArgs>),
    /// Blast generated tokens at a bundled mock gateway (nothing to set up)
    Demo(Box<demo::DemoArgs>),
    /// Write a list of random-looking tokens, optionally with junk lines
    GenTokens(generate::GenArgs),
    /// Merge the reports of the partitions of one list (send --partition)
    Merge(merge::MergeArgs),
    /// Try settings (binary: shard counts, Nagle, styles; HTTP/2: connections x streams); recommend one
    Tune(Box<tune::TuneArgs>),
}

/// How a command that ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything done (every token accepted).
    Success,
    /// It ran, but some tokens were not accepted or the run was cut short.
    Incomplete,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        match e {
            Exit::Success => ExitCode::SUCCESS,
            Exit::Incomplete => ExitCode::from(1),
        }
    }
}

/// The exit status a report calls for.
pub fn exit_for(report: &Report) -> Exit {
    let clean = report.rejected_total() == 0
        && report.unconfirmed == 0
        && report.unsent == 0
        && report.skipped == 0
        && !report.interrupted
        && report.stopped.is_none()
        && report.input_error.is_none()
        && report.unaccounted() == 0;
    if clean { Exit::Success } else { Exit::Incomplete }
}

/// Runs the parsed command line.
///
/// # Errors
/// Anything that stops the command from running (exit status 2).
pub fn run(cli: Cli) -> anyhow::Result<Exit> {
    match cli.command {
        Command::Send(args) => send::run(*args, &cli.global),
        Command::Feedback(args) => feedback::run(*args, &cli.global),
        Command::Demo(args) => demo::run(*args, &cli.global),
        Command::GenTokens(args) => generate::run(args, &cli.global),
        Command::Merge(args) => merge::run(args, &cli.global),
        Command::Tune(args) => tune::run(*args, &cli.global),
    }
}

/// Logs go to stderr: warn by default, info with -v, debug with -vv, trace
/// with -vvv, errors only with -q; `RUST_LOG` overrides all of that.
pub fn init_logging(global: &Global) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_target(false)
        .format_timestamp_micros()
        .init();
}

/// How notifications are written: shared by `send` and `demo`.
#[derive(Debug, Args)]
pub struct TuningArgs {
    /// Connections in parallel, one thread each
    #[arg(long, value_name = "N", default_value_t = defaults().shards)]
    pub shards: usize,
    /// Turn Nagle's algorithm off (TCP_NODELAY)
    #[arg(long)]
    pub nodelay: bool,
    /// pipelined: write until the socket is full, check for errors per batch;
    /// strict: check after every notification (slow, for comparison)
    #[arg(long, value_enum, default_value_t = StyleArg::Pipelined)]
    pub style: StyleArg,
    /// Bytes written on a connection before the sender confirms them (bounds
    /// what is kept for resending); K, M and G suffixes allowed
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value_t = defaults().window_bytes)]
    pub window_bytes: usize,
    /// Confirm after every N notifications as well (0: only the window decides)
    #[arg(long, value_name = "N", default_value_t = defaults().confirm_every)]
    pub confirm_every: u64,
    #[arg(long, value_name = "N", default_value_t = defaults().careful_frames)]
    #[arg(help = format!(
        "When two rejections come within N notifications of each other, write the next N in eighth-size \
         batches (at least {}K) over a quarter-size send buffer (at least {}K; an autotuned one is left \
         alone), so that invalid tokens close together cost less resending; 0: never",
        MIN_CAREFUL_BATCH >> 10,
        MIN_CAREFUL_SEND_BUFFER >> 10
    ))]
    pub careful_frames: u64,
    /// Bytes per write; K, M and G suffixes allowed
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value_t = defaults().batch_bytes)]
    pub batch_bytes: usize,
    /// SO_SNDBUF of each connection; 0 = the kernel's autotuning. What sits in
    /// it when the gateway rejects a token is sent again, so small keeps errors
    /// cheap; on a long, fast link raise it (or use 0) so it holds a round trip
    #[arg(long, value_name = "BYTES", value_parser = parse_size, default_value_t = defaults().send_buffer.unwrap_or(0))]
    pub send_buffer: usize,
    /// Seconds allowed for TCP connect plus TLS handshake
    #[arg(long, value_name = "SECS", default_value_t = Secs(defaults().connect_timeout))]
    pub connect_timeout: Secs,
    #[arg(long, value_enum, default_value_t = AheadArg::Auto)]
    #[arg(help = format!(
        "Set up each shard's next connection while the current one works, so writing goes on at once after a \
         rejection or a confirmation. auto: while the shortest TCP connect so far, about a round trip, took {} \
         (a long link)",
        long_round_trip()
    ))]
    pub connect_ahead: AheadArg,
    /// Seconds a silent gateway is waited for
    #[arg(long, value_name = "SECS", default_value_t = Secs(defaults().response_timeout))]
    pub response_timeout: Secs,
    /// Failed connections in a row before a shard (or the gateway check) gives up
    #[arg(long, value_name = "N", default_value_t = defaults().max_failures)]
    pub max_failures: u32,
    /// Longest pause between connection attempts, in seconds
    #[arg(long, value_name = "SECS", default_value_t = Secs(defaults().backoff_max))]
    pub max_backoff: Secs,
}

/// `--connect-ahead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AheadArg {
    #[value(help = format!("While the shortest TCP connect so far took {}", long_round_trip()))]
    Auto,
    /// Always (one handshake per shard goes unused).
    Always,
    /// Never.
    Never,
}

/// `--style`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StyleArg {
    /// Write until the socket would block; check for an answer once per batch.
    Pipelined,
    /// One notification per write, each followed by a check for an answer.
    Strict,
}

impl TuningArgs {
    /// Copies the settings into `config`.
    ///
    /// # Errors
    /// A setting out of range, naming its flag.
    pub fn apply(&self, config: &mut SendConfig) -> anyhow::Result<()> {
        if !(1..=MAX_SHARDS).contains(&self.shards) {
            bail!("--shards {}: must be 1 to {MAX_SHARDS}", self.shards);
        }
        if self.window_bytes == 0 {
            bail!("--window-bytes: must be positive");
        }
        if self.batch_bytes == 0 {
            bail!("--batch-bytes: must be positive");
        }
        if self.max_failures == 0 {
            bail!("--max-failures: must be at least 1");
        }
        config.shards = self.shards;
        config.nodelay = self.nodelay;
        config.style = match self.style {
            StyleArg::Pipelined => Style::Pipelined,
            StyleArg::Strict => Style::Strict,
        };
        config.window_bytes = self.window_bytes;
        config.confirm_every = self.confirm_every;
        config.careful_frames = self.careful_frames;
        config.batch_bytes = self.batch_bytes;
        config.send_buffer = (self.send_buffer > 0).then_some(self.send_buffer);
        config.connect_timeout = self.connect_timeout.0;
        config.connect_ahead = match self.connect_ahead {
            AheadArg::Auto => ConnectAhead::Auto,
            AheadArg::Always => ConnectAhead::Always,
            AheadArg::Never => ConnectAhead::Never,
        };
        config.response_timeout = self.response_timeout.0;
        config.max_failures = self.max_failures;
        config.backoff_min = config.backoff_min.min(self.max_backoff.0);
        config.backoff_max = self.max_backoff.0;
        Ok(())
    }
}

/// Files a run writes: shared by `send` and `demo`.
#[derive(Debug, Args)]
pub struct OutputArgs {
    /// Write the report (JSON) to FILE
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Write every token not accepted to FILE, one JSON object per line (line,
    /// token, state, status, reason)
    #[arg(long, value_name = "FILE")]
    pub failed: Option<PathBuf>,
    /// Write the tokens rejected as invalid (binary: status 8; HTTP/2:
    /// BadDeviceToken, Unregistered) to FILE, one per line, ready to delete
    #[arg(long, value_name = "FILE")]
    pub invalid_tokens: Option<PathBuf>,
    /// Record in FILE, as the run goes, the lines the gateway has accepted or
    /// rejected; if FILE exists, first skip the lines it lists. Run the same
    /// command again after an interruption or a crash to resume without
    /// resending what was settled
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
}

/// `--connect-ahead auto`'s threshold, as `--help` says it ("5 ms or more").
fn long_round_trip() -> String {
    format!("{} ms or more", LONG_ROUND_TRIP.as_millis())
}

/// The most shards `--shards` (and `tune --shards-list`) takes.
const MAX_SHARDS: usize = 1024;

/// The library's defaults, for `--help` and for settings not on the command line.
fn defaults() -> SendConfig {
    SendConfig::new(String::new(), TlsConfig::default(), Arc::<[u8]>::from(&[][..]))
}

/// A duration given in seconds: fractions allowed ("0.5"), or with an `ms`
/// or `s` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Secs(pub Duration);

impl std::fmt::Display for Secs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.as_secs_f64())
    }
}

impl std::str::FromStr for Secs {
    type Err = String;
    fn from_str(s: &str) -> Result<Secs, String> {
        parse_secs(s).map(Secs)
    }
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let (num, scale) =
        if let Some(ms) = t.strip_suffix("ms") { (ms, 1e-3) } else { (t.strip_suffix('s').unwrap_or(t), 1.0) };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && v * scale < 1e9 => Ok(Duration::from_secs_f64(v * scale)),
        _ => Err(format!("{s:?} is not a number of seconds (e.g. 10, 0.5, 250ms)")),
    }
}

/// Bytes, with an optional K, M or G (binary) suffix.
fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let bad = || format!("{s:?} is not a size in bytes (e.g. 65536, 64K, 16M)");
    let upper = t.to_ascii_uppercase();
    let digits = upper.trim_end_matches('B').trim_end_matches('I');
    let (num, shift) = match digits.chars().last() {
        Some('K') => (&digits[..digits.len() - 1], 10),
        Some('M') => (&digits[..digits.len() - 1], 20),
        Some('G') => (&digits[..digits.len() - 1], 30),
        _ => (digits, 0),
    };
    let n: usize = num.trim().parse().map_err(|_| bad())?;
    n.checked_mul(1 << shift).ok_or_else(bad)
}

/// `--partition K/N`.
fn parse_partition(s: &str) -> Result<Partition, String> {
    s.parse::<Partition>().map_err(|e| e.to_string())
}

/// Reads the whole of a small file, naming it and the flag on failure.
fn read_small(flag: &str, path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{flag} {}: cannot read", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_seconds_take_their_suffixes_and_refuse_junk() {
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size("64K"), Ok(64 << 10));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_secs("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_secs("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_secs("3s"), Ok(Duration::from_secs(3)));
        assert!(parse_secs("-1").is_err());
    }

    #[test]
    fn exit_status_follows_the_counts() {
        let mut r = Report { tokens_read: 3, accepted: 3, ..Report::default() };
        assert_eq!(exit_for(&r), Exit::Success);
        r.accepted = 2;
        r.skipped = 1;
        assert_eq!(exit_for(&r), Exit::Incomplete);
        r.skipped = 0;
        r.rejected.insert("8".into(), 1);
        assert_eq!(exit_for(&r), Exit::Incomplete);
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
