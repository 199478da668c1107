//! Running a blast and reporting on it: the part `send` and `demo` share, so
//! the demo exercises exactly what a real send does.

use std::io::BufRead;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use apnsblast::input::{ReaderOptions, Record, TokenReader};
use apnsblast::report::{Failure, Reason, Report, State};
use apnsblast::run::{Blaster, Observer, SendConfig};

use super::output::{Outputs, Sink, Written};
use super::progress::ProgressView;
use super::tokens::{Input, Position, Tracked};
use super::{Exit, Global, exit_for, summary};

/// Exit status after a second Ctrl-C (128 + SIGINT, as shells report it).
const SHUTDOWN_STATUS: i32 = 130;

/// Removes signal handlers when dropped.
struct Unregister(Vec<signal_hook::SigId>);

impl Drop for Unregister {
    fn drop(&mut self) {
        for id in self.0.drain(..) {
            signal_hook::low_level::unregister(id);
        }
    }
}

/// Everything a blast needs, validated.
pub struct Job {
    /// The sender's settings.
    pub config: SendConfig,
    /// The token list.
    pub input: Input,
    /// How the list is read.
    pub options: ReaderOptions,
    /// The files to write.
    pub outputs: Outputs,
    /// Tokens in the list, when known in advance.
    pub total: Option<u64>,
}

/// What a finished blast produced.
#[derive(Debug)]
pub struct Outcome {
    /// The report, as written to `--report`.
    pub report: Report,
    /// Where the files went.
    pub written: Written,
    /// After an interruption: the first line of the list not read (`None`
    /// inside: the whole list was read).
    pub resume_line: Option<Option<u64>>,
    /// The list's name, for messages.
    pub input_name: String,
}

/// Runs `job`: Ctrl-C handling, progress, failure files, report.
///
/// # Errors
/// The run could not happen: bad settings, or the gateway check failed
/// before anything was sent. The output files are then not created.
pub fn execute(job: Job, global: &Global) -> anyhow::Result<Outcome> {
    let Job { config, input, options, outputs, total } = job;
    let gateway = config.gateway.clone();
    let blaster = Blaster::new(config)?;
    let cancel = blaster.cancel_flag();
    let mut handlers = Vec::with_capacity(4);
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal sets the flag; a second one, with the flag already
        // set, exits at once.
        handlers.push(signal_hook::flag::register_conditional_shutdown(signal, SHUTDOWN_STATUS, Arc::clone(&cancel))?);
        handlers.push(signal_hook::flag::register(signal, Arc::clone(&cancel))?);
    }
    // This run's handlers go with it (tune runs many blasts in one process).
    let _unregister = Unregister(handlers);
    let mut view = ProgressView::new(global.quiet, input.size, Arc::clone(&input.bytes), Arc::clone(&cancel));
    if let Some(n) = total {
        view = view.with_total(n);
    }
    log::info!("sending {} to {gateway}", input.name);
    let options = input.sized(options);
    let position = Arc::new(Position::default());
    let mut reader = Tracked::new(TokenReader::new(input.reader, options), Arc::clone(&cancel), Arc::clone(&position));
    let mut sink = Sink { outputs, view, cancel: Arc::clone(&cancel) };
    let result = blaster.run(&mut reader, &mut sink);
    sink.view.finish();
    let mut report = result?;
    report.interrupted |= cancel.load(Ordering::Relaxed);
    if report.interrupted {
        settle_held(&mut reader, &mut report, &mut sink);
    }
    let resume_line = report.interrupted.then(|| position.resume_line(report.tokens_read));
    let written = sink.outputs.finish(&report);
    Ok(Outcome { report, written, resume_line, input_name: input.name })
}

/// Accounts for the lines an interrupted run read but held for the
/// duplicate check: repeats are skipped, the rest were not sent.
fn settle_held<R: BufRead>(reader: &mut Tracked<R>, report: &mut Report, observer: &mut dyn Observer) {
    let unsent = match &report.stopped {
        Some(stopped) => Reason::RunStopped(stopped.cause.clone()),
        None => Reason::Interrupted,
    };
    for record in reader.settle_held() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                log::error!("reading the token list failed: {e}");
                report.input_error.get_or_insert_with(|| e.to_string());
                continue;
            }
        };
        report.tokens_read += 1;
        let failure = match record {
            Record::Send(entry) => {
                report.unsent += 1;
                Failure::new(entry.line, entry.token.to_string(), State::Unsent, &unsent)
            }
            Record::Skip(skip) => {
                report.skipped += 1;
                Failure::new(skip.line, skip.text, State::Skipped, &Reason::Skipped(skip.reason))
            }
            Record::OtherPartition => continue,
        };
        observer.failure(&failure);
    }
}

/// Prints the summary (unless quiet) and any file errors; returns the exit status.
pub fn conclude(outcome: &Outcome, global: &Global, title: &str) -> Exit {
    let Outcome { report, written, resume_line, input_name } = outcome;
    for e in &written.errors {
        eprintln!("apnsblast: error: {e}");
    }
    if !global.quiet {
        println!("{title}");
        print!("{}", summary::render(report, written));
        println!("{}", summary::verdict(report));
    }
    if report.tokens_read == 0 && !report.interrupted && report.input_error.is_none() {
        match &written.journal {
            Some(journal) if report.previously_settled > 0 => eprintln!(
                "apnsblast: warning: --journal {} already settles every line of {input_name}: nothing was sent \
                 (a journal belongs to one list, read whole from its first line)",
                journal.display()
            ),
            _ => eprintln!("apnsblast: warning: {input_name} holds no tokens: nothing was sent"),
        }
    }
    if let Some(stopped) = &report.stopped {
        // The corrected command, with the same --journal, sends what this
        // run did not settle: no line to resume from.
        eprintln!("apnsblast: stopped: {}; {}", stopped.cause, stopped.fix);
    } else if let Some(resume) = resume_line {
        let list = if input_name == "stdin" { "the list".to_owned() } else { input_name.clone() };
        let unsent = match (&written.failed, report.unsent) {
            (_, 0) => String::new(),
            (Some((path, _)), n) => format!(
                "; {n} tokens read were not sent: `jq -r 'select(.state==\"unsent\") | .token' {}` lists them",
                path.display()
            ),
            (None, n) => format!("; {n} tokens read were not sent (--failed FILE would have listed them)"),
        };
        match (resume, &written.journal) {
            // The journal knows what was settled, by line of this list.
            (_, Some(journal)) => eprintln!(
                "apnsblast: interrupted: run the same command again, with the same list and --journal {}, \
                 to send what is left{unsent}",
                journal.display()
            ),
            (Some(line), None) => eprintln!(
                "apnsblast: interrupted: {list} was read up to line {}; resume from line {line} (`tail -n +{line}`){unsent}",
                line.saturating_sub(1)
            ),
            (None, None) => eprintln!("apnsblast: interrupted after reading all of {list}{unsent}"),
        }
    }
    if !written.errors.is_empty() {
        return Exit::Incomplete;
    }
    exit_for(report)
}
