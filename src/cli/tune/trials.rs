//! What both transports' trials do alike: ask before real notifications go
//! out, run each trial through `send`'s path, and write the output files.

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Write as _};

use anyhow::{Context, bail};
use serde::Serialize;

use apnsblast::report::Report;
use apnsblast::run::SendConfig;

use super::Setup;
use super::table::grouped;
use crate::cli::blast::{self, Job};
use crate::cli::output::{Outputs, Pending};
use crate::cli::tlsargs::can_prompt;
use crate::cli::{Exit, Global, OutputArgs};

/// One trial's settings: a point of the plan.
pub(super) trait Trial: Copy {
    /// Sets them in `config`.
    fn apply(self, config: &mut SendConfig);
    /// Whether it sends the strict trials' (smaller) sample.
    fn strict(self) -> bool;
    /// For messages: the settings, then the tokens sent unless `tokens` is 0.
    fn describe(self, tokens: u64) -> String;
    /// The failures in `report` that the setting can cause, for the progress line.
    fn errors(report: &Report) -> u64;
}

/// Runs the trials of `plan` in order from `base`, each on a fresh reader
/// over the sample, and stops after one that was interrupted. Returns the
/// reports of those that ran and, when one could not, the error that
/// stopped the rest (with the gateway's hint, and naming the trial when
/// others ran before it: what ran is worth showing).
pub(super) fn run<T: Trial>(plan: &[T], base: &SendConfig, s: &Setup) -> (Vec<Report>, Option<anyhow::Error>) {
    let quiet = Global { quiet: true, verbose: s.global.verbose };
    let mut reports: Vec<Report> = Vec::with_capacity(plan.len());
    for (k, &trial) in plan.iter().enumerate() {
        if !s.global.quiet {
            eprint!("  [{}/{}] {} ... ", k + 1, plan.len(), trial.describe(s.sample.tokens(trial.strict())));
        }
        let mut config = base.clone();
        trial.apply(&mut config);
        let (input, total) = s.sample.input(trial.strict());
        let outputs =
            match Outputs::create(&OutputArgs { report: None, failed: None, invalid_tokens: None, journal: None }) {
                Ok(outputs) => outputs,
                Err(e) => return (reports, Some(e)),
            };
        let job = Job { config, input, options: s.options.clone(), outputs, total };
        let report = match blast::execute(job, &quiet) {
            Ok(outcome) => outcome.report,
            Err(e) => {
                let e = s.args.gateway.hint(e);
                let e =
                    if reports.is_empty() { e } else { e.context(format!("trial {}: {}", k + 1, trial.describe(0))) };
                return (reports, Some(e));
            }
        };
        if !s.global.quiet {
            eprintln!(
                "{}/s, {} reconnects, {} errors",
                grouped(report.rate_per_s),
                report.reconnects,
                T::errors(&report)
            );
        }
        let interrupted = report.interrupted;
        reports.push(report);
        if interrupted {
            break;
        }
    }
    (reports, None)
}

/// Says what a real gateway is about to receive and asks, unless `yes`.
/// `notes` says what else each trial sends, and how to spare the devices
/// where there is a way.
pub(super) fn confirm(
    gateway: &str,
    total: u64,
    trials: usize,
    notes: (&str, Option<&str>),
    yes: bool,
) -> anyhow::Result<()> {
    let (probes, hint) = notes;
    eprintln!(
        "apnsblast tune: WARNING: this sends {} real notifications to {gateway} in {trials} trials, delivered to \
         the devices of the list: each device of the sample receives it up to {trials} times (plus {probes})",
        grouped(total as f64)
    );
    if let Some(hint) = hint {
        eprintln!("apnsblast tune: hint: {hint}");
    }
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

/// Says whether every trial of the `planned` ran, writes `--report` (the
/// rows) and `--chart` (drawn by `svg`), and gives the exit status.
pub(super) fn finish<R: Serialize>(
    rows: &[R],
    planned: usize,
    report: Option<Pending>,
    chart: Option<Pending>,
    svg: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<Exit> {
    let interrupted = rows.len() < planned;
    if interrupted {
        eprintln!("apnsblast tune: interrupted: {} of {planned} trials ran", rows.len());
    }
    if let Some(mut file) = report {
        serde_json::to_writer_pretty(&mut file.file, rows)
            .map_err(io::Error::from)
            .and_then(|()| file.file.write_all(b"\n"))
            .context("--report: write failed")?;
        file.persist()?;
    }
    if let Some(mut file) = chart {
        file.file.write_all(svg()?.as_bytes()).context("--chart: write failed")?;
        file.persist()?;
    }
    Ok(if interrupted { Exit::Incomplete } else { Exit::Success })
}
