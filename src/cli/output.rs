//! The files a run writes (`--report`, `--failed`, `--invalid-tokens`) and
//! the observer that streams failures into them as they arrive.
//!
//! Each file is written to a temporary file beside its final path, created
//! before anything is sent (so an unwritable path fails the run up front),
//! and renamed into place when the run ends. A file that exists is therefore
//! complete, and a run that could not happen leaves no empty files that a
//! script could take for "nothing failed".

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail};
use tempfile::NamedTempFile;

use apnsblast::frame::Status;
use apnsblast::journal::JournalWriter;
use apnsblast::report::{Code, Failure, Report, State};
use apnsblast::run::{Observer, Progress};

use super::OutputArgs;
use super::progress::ProgressView;

/// One output file being written. `pub(crate)`: `tune` writes its report
/// and chart the same way.
pub(crate) struct Pending {
    flag: &'static str,
    path: PathBuf,
    /// The temporary file, renamed into place by [`Pending::persist`].
    pub(crate) file: BufWriter<NamedTempFile>,
}

impl Pending {
    /// Creates the temporary file beside `path`.
    ///
    /// # Errors
    /// `path` is a directory, or its directory cannot be written; names `flag`.
    pub(crate) fn create(flag: &'static str, path: &Path) -> anyhow::Result<Pending> {
        let shown = path.display();
        if path.is_dir() {
            bail!("{flag} {shown}: is a directory");
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let file = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".part")
            .tempfile_in(dir)
            .with_context(|| format!("{flag} {shown}: cannot create a file in {}", dir.display()))?;
        Ok(Pending { flag, path: path.to_owned(), file: BufWriter::with_capacity(64 << 10, file) })
    }

    /// Flushes, syncs and renames the file into place.
    ///
    /// # Errors
    /// Writing or renaming failed; names the flag and path.
    pub(crate) fn persist(self) -> anyhow::Result<PathBuf> {
        let Pending { flag, path, file } = self;
        let shown = path.display();
        let file =
            file.into_inner().map_err(|e| e.into_error()).with_context(|| format!("{flag} {shown}: write failed"))?;
        file.as_file().sync_all().with_context(|| format!("{flag} {shown}: write failed"))?;
        file.persist(&path)
            .map_err(|e| e.error)
            .with_context(|| format!("{flag} {shown}: cannot rename into place"))?;
        Ok(path)
    }
}

/// Writes a report for a run that could not start (`error`, every count
/// zero) to `path`, so that a job reading it does not find an earlier
/// run's there. Best effort: the error itself is what the command reports.
pub(crate) fn write_failed_start(path: &Path, error: &anyhow::Error) {
    let report = Report { error: Some(format!("{error:#}")), ..Report::default() };
    let written = Pending::create("--report", path).and_then(|mut p| {
        serde_json::to_writer_pretty(&mut p.file, &report)?;
        p.file.write_all(b"\n")?;
        p.persist()
    });
    if let Err(e) = written {
        log::warn!("{e:#}");
    }
}

/// Whether `f` says the token is no good and belongs in `--invalid-tokens`:
/// the binary gateway's status 8, or over HTTP/2 Apple's `BadDeviceToken`
/// (400) or `Unregistered` (410: the app is gone from the device; this
/// replaces the binary protocol's feedback service).
pub(crate) fn is_invalid_token(f: &Failure) -> bool {
    if f.state != State::Rejected {
        return false;
    }
    match f.status {
        Some(Code::Binary(status)) => status == Status::InvalidToken,
        // Over HTTP/2 the reason says it: the token is not (or no longer) a device's.
        Some(Code::Http(_)) => matches!(f.reason.as_str(), "BadDeviceToken" | "Unregistered"),
        None => false,
    }
}

/// The output files of a run.
pub struct Outputs {
    report: Option<Pending>,
    failed: Option<Pending>,
    invalid: Option<Pending>,
    journal: Option<JournalWriter>,
    journal_path: Option<PathBuf>,
    /// Lines written to `--invalid-tokens`.
    pub invalid_count: u64,
    /// Lines written to `--failed`.
    pub failed_count: u64,
    write_error: Option<String>,
}

/// Where the files ended up.
#[derive(Debug, Default)]
pub struct Written {
    /// `--report`.
    pub report: Option<PathBuf>,
    /// `--failed` and its line count.
    pub failed: Option<(PathBuf, u64)>,
    /// `--invalid-tokens` and its line count.
    pub invalid: Option<(PathBuf, u64)>,
    /// `--journal`: rerunning the same command sends what is left.
    pub journal: Option<PathBuf>,
    /// Files that could not be written, one message each.
    pub errors: Vec<String>,
}

impl Outputs {
    /// Creates the temporary files.
    ///
    /// # Errors
    /// A path that cannot be written, or the same path given twice.
    pub fn create(args: &OutputArgs) -> anyhow::Result<Outputs> {
        Self::create_for(args, None)
    }

    /// As [`Outputs::create`]; a journal it starts opens with the token
    /// list's mark (`journal::list_mark`), when there is one.
    ///
    /// # Errors
    /// As [`Outputs::create`].
    pub fn create_for(args: &OutputArgs, list_mark: Option<&str>) -> anyhow::Result<Outputs> {
        let named = [
            ("--report", &args.report),
            ("--failed", &args.failed),
            ("--invalid-tokens", &args.invalid_tokens),
            ("--journal", &args.journal),
        ];
        for (i, (a, pa)) in named.iter().enumerate() {
            for (b, pb) in &named[i + 1..] {
                if let (Some(pa), Some(pb)) = (pa, pb)
                    && pa == pb
                {
                    bail!("{a} and {b} both name {}; give each its own file", pa.display());
                }
            }
        }
        let open = |flag, p: &Option<PathBuf>| p.as_deref().map(|p| Pending::create(flag, p)).transpose();
        Ok(Outputs {
            report: open("--report", &args.report)?,
            failed: open("--failed", &args.failed)?,
            invalid: open("--invalid-tokens", &args.invalid_tokens)?,
            journal: args
                .journal
                .as_deref()
                .map(|p| {
                    JournalWriter::open_for(p, list_mark)
                        .with_context(|| format!("--journal {}: cannot open", p.display()))
                })
                .transpose()?,
            journal_path: args.journal.clone(),
            invalid_count: 0,
            failed_count: 0,
            write_error: None,
        })
    }

    fn record(&mut self, f: &Failure) -> io::Result<()> {
        if let Some(p) = &mut self.failed {
            serde_json::to_writer(&mut p.file, f)?;
            p.file.write_all(b"\n")?;
            self.failed_count += 1;
        }
        if is_invalid_token(f)
            && let Some(p) = &mut self.invalid
        {
            writeln!(p.file, "{}", f.token)?;
            self.invalid_count += 1;
        }
        Ok(())
    }

    /// Writes the report and moves every file into place.
    pub fn finish(mut self, report: &Report) -> Written {
        let mut written = Written { journal: self.journal_path.take(), ..Written::default() };
        written.errors.extend(self.write_error.take());
        if let Some(mut p) = self.report.take() {
            let wrote = serde_json::to_writer_pretty(&mut p.file, report)
                .map_err(io::Error::from)
                .and_then(|()| p.file.write_all(b"\n"));
            match wrote {
                Ok(()) => match p.persist() {
                    Ok(path) => written.report = Some(path),
                    Err(e) => written.errors.push(format!("{e:#}")),
                },
                Err(e) => written.errors.push(format!("{} {}: write failed: {e}", p.flag, p.path.display())),
            }
        }
        // The environment guard tripped: the BadDeviceToken answers are not
        // about the tokens, and a list of them would have good ones deleted.
        // Its temporary file goes unwritten.
        if report.stopped.as_ref().is_some_and(|s| s.wrong_environment) {
            self.invalid = None;
        }
        for (pending, count, slot) in [
            (self.failed.take(), self.failed_count, &mut written.failed),
            (self.invalid.take(), self.invalid_count, &mut written.invalid),
        ] {
            if let Some(p) = pending {
                match p.persist() {
                    Ok(path) => *slot = Some((path, count)),
                    Err(e) => written.errors.push(format!("{e:#}")),
                }
            }
        }
        written
    }
}

/// The run's observer: failures into the files, progress onto the display.
pub struct Sink {
    /// The files.
    pub outputs: Outputs,
    /// The display.
    pub view: ProgressView,
    /// Set to stop the run when a failure cannot be recorded.
    pub cancel: Arc<AtomicBool>,
}

impl Sink {
    /// Sending on without recording what happened would lose the accounting
    /// the user asked for: stop the run, and say so.
    fn stop_on_error(&mut self, what: &str, result: io::Result<()>) {
        if let Err(e) = result {
            let msg = format!("writing {what} failed: {e}; stopping the run");
            log::error!("{msg}");
            self.outputs.write_error = Some(msg);
            self.cancel.store(true, Ordering::Relaxed);
        }
    }
}

impl Observer for Sink {
    fn progress(&mut self, progress: &Progress) {
        self.view.update(progress);
    }

    fn failure(&mut self, failure: &Failure) {
        if self.outputs.write_error.is_none() {
            let result = self.outputs.record(failure);
            self.stop_on_error("the failure lists", result);
        }
    }

    fn settled(&mut self, lines: &[(u64, u64)]) {
        if self.outputs.write_error.is_none()
            && let Some(journal) = &mut self.outputs.journal
        {
            let result = journal.record(lines);
            self.stop_on_error("the journal", result);
        }
    }
}

#[cfg(test)]
mod tests {
    use apnsblast::http2::answer::ApnsReason;
    use apnsblast::report::Reason;

    use super::*;

    fn failure(state: State, reason: &Reason) -> Failure {
        Failure::new(7, "ab".repeat(32), state, reason)
    }

    fn http2(status: u16, reason: ApnsReason) -> Reason {
        Reason::Http2Rejected { status, reason: Some(reason), unregistered_at: None }
    }

    #[test]
    fn invalid_tokens_are_status_8_bad_device_token_and_unregistered() {
        assert!(is_invalid_token(&failure(State::Rejected, &Reason::Rejected(Status::InvalidToken))));
        assert!(!is_invalid_token(&failure(State::Rejected, &Reason::Rejected(Status::InvalidPayloadSize))));
        assert!(is_invalid_token(&failure(State::Rejected, &http2(400, ApnsReason::BadDeviceToken))));
        let gone = Reason::Http2Rejected { status: 410, reason: None, unregistered_at: Some(1) };
        assert!(is_invalid_token(&failure(State::Rejected, &gone)));
        assert!(is_invalid_token(&failure(State::Rejected, &http2(410, ApnsReason::Unregistered))));
        assert!(!is_invalid_token(&failure(State::Rejected, &http2(400, ApnsReason::BadTopic))));
        assert!(!is_invalid_token(&failure(State::Rejected, &http2(400, ApnsReason::DeviceTokenNotForTopic))));
        assert!(!is_invalid_token(&failure(State::Unconfirmed, &http2(400, ApnsReason::BadDeviceToken))));
    }
}
