//! `apnsblast tune`: one sample list sent with every shard count of
//! `--shards-list`, Nagle on and off, pipelined, then strict at one shard
//! count; a table, a recommended `send` flag set, and optionally an SVG
//! chart and the reports as JSON.
//!
//! Every trial goes through the path `send` takes ([`blast::execute`]); by
//! default against the bundled mock started as `demo` starts it. Against a
//! user's gateway each trial sends real notifications, so the total is
//! announced and confirmed before anything connects.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, IsTerminal, Read, Write as _};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;

use apnsblast::input::{ReaderOptions, Record, TokenReader};
use apnsblast::run::{SendConfig, Style};
use mock_gateway::Config;

use super::blast::{self, Job};
use super::demo::BAD_RATE;
use super::demo::start_mock;
use super::generate::TokenGen;
use super::output::{Outputs, Pending};
use super::send::MessageArgs;
use super::tlsargs::{TlsArgs, can_prompt};
use super::tokens::{self, Input};
use super::{Exit, GatewayArgs, Global, MAX_SHARDS, OutputArgs, Service, StyleArg, TuningArgs, defaults};
use table::{RECONNECT_MARGIN, RECONNECT_SLACK, Row, SAME_SPEED, chart, errors, grouped, recommend, send_flags, table};

mod table;

/// How the recommendation is chosen, for `--help` (and the code below), with
/// the thresholds `table` applies.
fn rule() -> String {
    format!(
        "\
Trials: every count of --shards-list with Nagle on and off, pipelined, on --sample tokens; then the strict \
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
flags, with the other Sending options given here.

Against the bundled mock (no --gateway, no --sandbox) nothing leaves the machine: fresh certificates, a \
loopback gateway, generated tokens. With --gateway or --sandbox every trial sends real notifications to \
the devices of the list: tune says how many in all and asks on the terminal, or needs --yes.

Exit status: 0 all trials ran (rejections or not); 1 interrupted; 2 tune could not run.",
        percent(RECONNECT_MARGIN),
        percent(SAME_SPEED)
    )
}

/// `0.05` as "5%".
fn percent(fraction: f64) -> String {
    format!("{:.0}%", fraction * 100.0)
}

/// Default alert against the mock.
const MOCK_ALERT: &str = "apnsblast tune";

/// `apnsblast tune`.
#[derive(Debug, Args)]
#[command(after_help = rule())]
// The sweep sets these three; `check` refuses them if given.
#[command(mut_arg("shards", |a| a.hide(true)), mut_arg("nodelay", |a| a.hide(true)))]
#[command(mut_arg("style", |a| a.hide(true)))]
#[command(mut_arg("gateway", |a| {
    a.help("Tune against this gateway (HOST:PORT) instead of the bundled mock: sends real notifications")
}))]
#[command(mut_arg("sandbox", |a| a.help("Tune against Apple's sandbox gateway: sends real notifications")))]
// TlsArgs requires --cert; here the whole group is optional (the mock needs none of it).
#[command(mut_arg("cert", |a| a.required(false)))]
pub struct TuneArgs {
    /// Token list to take the sample from (one token per line, or NDJSON as
    /// for send); - reads stdin. Default: generated tokens
    #[arg(long, value_name = "FILE|-", help_heading = "Sample")]
    pub tokens: Option<PathBuf>,
    /// Lines of --tokens (or generated tokens) each pipelined trial sends
    #[arg(long, value_name = "N", default_value_t = 100_000, help_heading = "Sample")]
    pub sample: u64,
    /// Lines each strict trial sends (capped at --sample); 0 skips the strict trials
    #[arg(long, value_name = "N", default_value_t = 10_000, help_heading = "Sample")]
    pub strict_sample: u64,
    /// Fraction of tokens the bundled mock rejects as invalid (status 8), as in demo
    #[arg(long, value_name = "R", default_value_t = BAD_RATE, help_heading = "Sample")]
    #[arg(conflicts_with_all = ["gateway", "sandbox"])]
    pub bad_rate: f64,
    /// Seed of the generated tokens and of the mock's choice of invalid ones
    #[arg(long, value_name = "S", default_value_t = 1, help_heading = "Sample")]
    pub seed: u64,
    /// Shard counts to try, comma-separated
    #[arg(long, value_name = "N,..", value_delimiter = ',', default_value = "1,2,4,8,16", help_heading = "Trials")]
    pub shards_list: Vec<usize>,
    /// Send real notifications without asking (with --gateway or --sandbox)
    #[arg(long, help_heading = "Trials")]
    pub yes: bool,
    /// Write an SVG chart of notifications/s against shard count (one line
    /// for Nagle on, one for off) to FILE
    #[arg(long, value_name = "FILE", help_heading = "Output files")]
    pub chart: Option<PathBuf>,
    /// Write the table as JSON to FILE: one row per trial, with its full report
    #[arg(long, value_name = "FILE", help_heading = "Output files")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub message: MessageArgs,
    #[command(flatten, next_help_heading = "TLS (with --gateway or --sandbox)")]
    pub tls: Option<TlsArgs>,
    #[command(flatten, next_help_heading = "Gateway")]
    pub gateway: GatewayArgs,
    #[command(flatten, next_help_heading = "Sending (every trial)")]
    pub tuning: TuningArgs,
}

/// One trial to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Trial {
    /// Connections in parallel.
    shards: usize,
    /// Nagle's algorithm off.
    nodelay: bool,
    /// Pipelined or strict.
    style: Style,
}

/// The sample every trial sends.
enum Sample {
    /// `count` generated tokens (the strict trials take the first `strict`).
    Generated { count: u64, strict: u64, seed: u64 },
    /// The first lines of a list, held in memory; the strict trials read `strict_bytes` of them.
    Lines { name: String, bytes: Arc<[u8]>, strict_bytes: usize, tokens: u64, strict_tokens: u64 },
}

impl Sample {
    /// Notifications one trial sends.
    fn tokens(&self, strict: bool) -> u64 {
        match (self, strict) {
            (Sample::Generated { count, .. }, false) => *count,
            (Sample::Generated { strict, .. }, true) => *strict,
            (Sample::Lines { tokens, .. }, false) => *tokens,
            (Sample::Lines { strict_tokens, .. }, true) => *strict_tokens,
        }
    }

    /// A fresh reader over the sample, and its token count when known.
    fn input(&self, strict: bool) -> (Input, Option<u64>) {
        match self {
            Sample::Generated { seed, .. } => {
                let n = self.tokens(strict);
                (Input::from_reader(TokenGen::new(n, *seed, 0.0), "generated tokens", None), Some(n))
            }
            Sample::Lines { name, bytes, strict_bytes, .. } => {
                let len = if strict { *strict_bytes } else { bytes.len() };
                let reader = Cursor::new(Arc::clone(bytes)).take(len as u64);
                (Input::from_reader(reader, name, Some(len as u64)), None)
            }
        }
    }
}

/// Runs `tune`.
///
/// # Errors
/// Bad options, an unreadable list or certificate, no confirmation, the
/// mock or a trial could not start (exit status 2).
pub fn run(mut args: TuneArgs, global: &Global) -> anyhow::Result<Exit> {
    let real = args.gateway.gateway.is_some() || args.gateway.sandbox;
    let shards = check(&args, real)?;
    if !real && args.message.payload.is_none() && args.message.alert.is_none() {
        args.message.alert = Some(MOCK_ALERT.to_owned());
    }
    let command = args.message.command();
    let payload = args.message.payload()?;
    let options = ReaderOptions { payload_limit: command.payload_limit(), ..ReaderOptions::default() };
    let strict_n = args.strict_sample.min(args.sample);
    let sample = match &args.tokens {
        Some(path) => load(path, args.sample, strict_n, &options)?,
        None => Sample::Generated { count: args.sample, strict: strict_n, seed: args.seed },
    };
    let plan = plan(&shards, strict_n > 0);
    let mut report_file = args.report.as_deref().map(|p| Pending::create("--report", p)).transpose()?;
    let chart_file = args.chart.as_deref().map(|p| Pending::create("--chart", p)).transpose()?;
    // Against the mock, `_mock` keeps it (and its certificates) until the end.
    let (gateway, tls, _mock) = if real {
        let tls = args.tls.as_ref().context("--cert is needed with --gateway or --sandbox")?.load()?;
        let gateway = args.gateway.resolve(Service::Push)?;
        if args.tokens.is_none() && gateway.contains(".push.apple.com:") {
            bail!("{gateway} is Apple's: give your own list with --tokens (generated tokens belong to no device)");
        }
        let total: u64 = plan.iter().map(|t| sample.tokens(t.style == Style::Strict)).sum();
        confirm(&gateway, total, plan.len(), args.yes)?;
        (gateway, tls, None)
    } else {
        let config = Config { bad_rate: args.bad_rate, seed: args.seed, track_deliveries: false, ..Config::default() };
        let mock = start_mock(config, "tune", global)?;
        (mock.gateway.addr().to_string(), mock.tls.clone(), Some(mock))
    };
    let mut base = SendConfig::new(gateway.clone(), tls, Arc::<[u8]>::from(payload));
    base.command = command;
    base.expiry = args.message.expiry()?;
    base.priority = args.message.priority()?;
    args.tuning.apply(&mut base)?;
    let against = if real { gateway.clone() } else { format!("the bundled mock gateway at {gateway}") };
    if !global.quiet {
        eprintln!("apnsblast tune: {} trials against {against}", plan.len());
    }
    let quiet = Global { quiet: true, verbose: global.verbose };
    let mut rows = Vec::with_capacity(plan.len());
    for (k, &trial) in plan.iter().enumerate() {
        let strict = trial.style == Style::Strict;
        if !global.quiet {
            eprint!("  [{}/{}] {} ... ", k + 1, plan.len(), describe(trial, sample.tokens(strict)));
        }
        let mut config = base.clone();
        (config.shards, config.nodelay, config.style) = (trial.shards, trial.nodelay, trial.style);
        let (input, total) = sample.input(strict);
        let outputs = Outputs::create(&OutputArgs { report: None, failed: None, invalid_tokens: None, journal: None })?;
        let job = Job { config, input, options: options.clone(), outputs, total };
        let report = match blast::execute(job, &quiet) {
            Ok(outcome) => outcome.report,
            Err(e) if rows.is_empty() => return Err(args.gateway.hint(e)),
            Err(e) => {
                // What ran is worth seeing: against a real gateway it was paid for.
                print!("{}", table(&rows, (shards[0], sample.tokens(true)), sample.tokens(false)));
                return Err(args.gateway.hint(e).context(format!("trial {}: {}", k + 1, describe(trial, 0))));
            }
        };
        if !global.quiet {
            eprintln!("{}/s, {} reconnects, {} errors", grouped(report.rate_per_s), report.reconnects, errors(&report));
        }
        let interrupted = report.interrupted;
        rows.push(Row::new(trial, report));
        if interrupted {
            break;
        }
    }
    let best = recommend(&rows);
    if let Some(i) = best {
        rows[i].recommended = true;
    }
    print!("{}", table(&rows, (shards[0], sample.tokens(true)), sample.tokens(false)));
    match best {
        Some(i) => {
            println!("recommended: {}", send_flags(&rows[i], &args.tuning));
            println!(
                "  {}/s: of the clean trials within {} of the fastest, the one with the fewest shards (see --help)",
                grouped(rows[i].rate_per_s),
                percent(SAME_SPEED)
            );
            if !real {
                println!("  measured on the loopback mock: a real gateway's round trip changes the answer");
            }
        }
        None => println!("recommended: none: no trial completed"),
    }
    let interrupted = rows.len() < plan.len();
    if interrupted {
        eprintln!("apnsblast tune: interrupted: {} of {} trials ran", rows.len(), plan.len());
    }
    if let Some(mut file) = report_file.take() {
        serde_json::to_writer_pretty(&mut file.file, &rows)
            .map_err(io::Error::from)
            .and_then(|()| file.file.write_all(b"\n"))
            .context("--report: write failed")?;
        file.persist()?;
    }
    if let Some(mut file) = chart_file {
        let svg = chart(&rows, &shards, &against)?;
        file.file.write_all(svg.as_bytes()).context("--chart: write failed")?;
        file.persist()?;
    }
    Ok(if interrupted { Exit::Incomplete } else { Exit::Success })
}

/// Checks the options that need no file or network; returns the shard
/// counts, sorted and without repeats.
fn check(args: &TuneArgs, real: bool) -> anyhow::Result<Vec<usize>> {
    if args.tuning.shards != defaults().shards {
        bail!("--shards: tune tries every count of --shards-list");
    }
    if args.tuning.nodelay || args.tuning.style != StyleArg::Pipelined {
        bail!("--nodelay and --style: tune tries Nagle on and off and both styles");
    }
    let mut shards = args.shards_list.clone();
    shards.sort_unstable();
    shards.dedup();
    match shards.iter().find(|s| !(1..=MAX_SHARDS).contains(*s)) {
        Some(bad) => bail!("--shards-list: {bad}: each count must be 1 to {MAX_SHARDS}"),
        None if shards.is_empty() => bail!("--shards-list: give at least one count"),
        None => {}
    }
    if args.sample == 0 {
        bail!("--sample: must be at least 1");
    }
    if !(0.0..=1.0).contains(&args.bad_rate) {
        bail!("--bad-rate {}: must be between 0 and 1", args.bad_rate);
    }
    if real && args.message.payload.is_none() && args.message.alert.is_none() {
        bail!(
            "against a real gateway give the message with --alert TEXT or --payload FILE: every device of the \
             sample receives it"
        );
    }
    if !real && args.tls.is_some() {
        bail!(
            "--cert and the other TLS options need --gateway or --sandbox (the bundled mock makes its own \
             certificates)"
        );
    }
    Ok(shards)
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

/// Reads the first `n` lines of `--tokens` into memory, so every trial sends
/// the same ones (stdin can be read only once).
fn load(path: &std::path::Path, n: u64, strict_n: u64, options: &ReaderOptions) -> anyhow::Result<Sample> {
    let mut input = tokens::open(path, false, options)?;
    let (mut bytes, mut lines, mut strict_bytes) = (Vec::new(), 0u64, 0usize);
    while lines < n {
        let read = input
            .reader
            .read_until(b'\n', &mut bytes)
            .with_context(|| format!("--tokens {}: read failed", input.name))?;
        if read == 0 {
            break;
        }
        lines += 1;
        if lines == strict_n {
            strict_bytes = bytes.len();
        }
    }
    if lines < strict_n {
        strict_bytes = bytes.len();
    }
    let count = |text: &[u8]| {
        TokenReader::new(text, options.clone()).filter(|r| matches!(r, Ok(Record::Send(_)))).count() as u64
    };
    let (tokens, strict_tokens) = (count(&bytes), count(&bytes[..strict_bytes]));
    if tokens == 0 {
        bail!("--tokens {}: no usable token in the first {lines} lines", input.name);
    }
    if lines < n {
        log::warn!("--tokens {}: holds {lines} lines, fewer than --sample {n}: each trial sends them all", input.name);
    }
    Ok(Sample::Lines { name: input.name, bytes: bytes.into(), strict_bytes, tokens, strict_tokens })
}

/// Says what a real gateway is about to receive and asks, unless `yes`.
fn confirm(gateway: &str, total: u64, trials: usize, yes: bool) -> anyhow::Result<()> {
    eprintln!(
        "apnsblast tune: WARNING: this sends {} real notifications to {gateway} in {trials} trials, delivered to \
         the devices of the list (plus one test notification per trial, which the gateway rejects)",
        grouped(total as f64)
    );
    if yes {
        return Ok(());
    }
    if !can_prompt() {
        bail!(
            "tune would send {} real notifications to {gateway}; nothing was sent: give --yes to confirm \
             (there is no terminal to ask on)",
            grouped(total as f64)
        );
    }
    eprint!("Send them? Type yes to go on: ");
    let mut answer = String::new();
    // stdin may carry the token list: ask the terminal itself where there is one.
    match File::open("/dev/tty") {
        Ok(tty) => BufReader::new(tty).read_line(&mut answer),
        Err(_) if io::stdin().is_terminal() => io::stdin().lock().read_line(&mut answer),
        Err(e) => bail!("cannot open the terminal to ask for confirmation ({e}); give --yes"),
    }
    .context("reading the confirmation failed")?;
    if !matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        bail!("not confirmed: nothing was sent");
    }
    Ok(())
}

fn describe(t: Trial, tokens: u64) -> String {
    let style = if t.style == Style::Strict { "strict" } else { "pipelined" };
    let nagle = if t.nodelay { "Nagle off" } else { "Nagle on" };
    let tokens = if tokens > 0 { format!(", {} tokens", grouped(tokens as f64)) } else { String::new() };
    format!("{} shard{}, {nagle}, {style}{tokens}", t.shards, if t.shards == 1 { "" } else { "s" })
}
