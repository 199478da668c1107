//! The token list: opening `--tokens FILE|-`, counting the bytes read (for
//! the progress estimate), the `--strict-input` pre-scan, and an adapter that
//! stops reading on Ctrl-C and remembers where it stopped.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use anyhow::{Context, bail};

use apnsblast::input::{ReaderOptions, Record, TokenReader};

/// Read buffer for token lists: large, since lists run to millions of lines.
const BUFFER: usize = 256 << 10;
/// Bad lines printed by a failed `--strict-input` check.
const SHOWN: usize = 20;

/// A token list ready to read.
pub struct Input {
    /// The lines.
    pub reader: Box<dyn BufRead + Send>,
    /// For messages: the path, or "stdin".
    pub name: String,
    /// Total bytes, when known (a file).
    pub size: Option<u64>,
    /// Bytes read so far.
    pub bytes: Arc<AtomicU64>,
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Input").field("name", &self.name).field("size", &self.size).finish_non_exhaustive()
    }
}

impl Input {
    /// An input over any reader (generated lists).
    pub fn from_reader(reader: impl Read + Send + 'static, name: &str, size: Option<u64>) -> Input {
        let bytes = Arc::new(AtomicU64::new(0));
        let counted = Counting { inner: reader, bytes: Arc::clone(&bytes) };
        Input { reader: Box::new(BufReader::with_capacity(BUFFER, counted)), name: name.to_owned(), size, bytes }
    }
}

/// Opens `--tokens`: a file, or `-` for stdin. With `strict`, the whole list
/// is checked first (stdin is spooled to a temporary file for that) and any
/// unusable line is an error, before anything is connected.
///
/// # Errors
/// The file cannot be opened or read, or (strict) holds unusable lines.
pub fn open(path: &Path, strict: bool, options: &ReaderOptions) -> anyhow::Result<Input> {
    if path == Path::new("-") {
        if !strict {
            return Ok(Input::from_reader(io::stdin(), "stdin", None));
        }
        let mut spool = tempfile::tempfile().context("--strict-input: cannot create a temporary file to hold stdin")?;
        io::copy(&mut io::stdin().lock(), &mut spool).context("--tokens -: reading stdin failed")?;
        spool.rewind().context("--strict-input: cannot rewind the spooled stdin")?;
        check_all(&mut spool, "stdin", options)?;
        let size = spool.metadata().map(|m| m.len()).ok();
        return Ok(Input::from_reader(spool, "stdin", size));
    }
    let name = path.display().to_string();
    let mut file = File::open(path).with_context(|| format!("--tokens {name}: cannot open the token list"))?;
    let meta = file.metadata().with_context(|| format!("--tokens {name}: cannot read the token list"))?;
    if meta.is_dir() {
        bail!("--tokens {name}: is a directory, not a token list");
    }
    if strict {
        check_all(&mut file, &name, options)?;
    }
    Ok(Input::from_reader(file, &name, meta.is_file().then_some(meta.len())))
}

/// `--strict-input`: reads the whole list with the run's options; prints the
/// first unusable lines to stderr and fails if there are any. Leaves the file
/// rewound.
fn check_all(file: &mut File, name: &str, options: &ReaderOptions) -> anyhow::Result<()> {
    let reader = TokenReader::new(BufReader::with_capacity(BUFFER, &mut *file), options.clone());
    let (mut bad, mut first) = (0u64, None);
    for record in reader {
        match record.with_context(|| format!("--tokens {name}: reading failed"))? {
            Record::Skip(skip) => {
                bad += 1;
                if bad as usize <= SHOWN {
                    eprintln!("{name}:{}: {}: {:?}", skip.line, skip.reason, skip.text);
                }
                first.get_or_insert(skip);
            }
            Record::Send(_) | Record::OtherPartition => {}
        }
    }
    if let Some(skip) = first {
        if bad as usize > SHOWN {
            eprintln!("{name}: … and {} more", bad - SHOWN as u64);
        }
        bail!(
            "--strict-input: {name} has {bad} unusable line{} (first: line {}: {}); nothing was sent",
            if bad == 1 { "" } else { "s" },
            skip.line,
            skip.reason
        );
    }
    file.rewind().with_context(|| format!("--tokens {name}: cannot rewind after the check"))?;
    Ok(())
}

/// Counts the bytes that pass through.
struct Counting<R> {
    inner: R,
    bytes: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// What [`Tracked`] saw: where reading stopped.
#[derive(Debug, Default)]
pub struct Position {
    /// Records handed out that count as read (send or skip).
    pub counted: AtomicU64,
    /// Line number of the last such record.
    pub last_line: AtomicU64,
    /// The list was read to its end.
    pub exhausted: AtomicBool,
}

impl Position {
    /// The first line a resumed run should start from, given how many
    /// records the run actually counted as read: the sender may have taken
    /// one record and then seen the cancel flag, dropping it.
    /// `None` when the whole list was read.
    pub fn resume_line(&self, tokens_read: u64) -> Option<u64> {
        let counted = self.counted.load(Ordering::Relaxed);
        if counted > tokens_read {
            Some(self.last_line.load(Ordering::Relaxed))
        } else if self.exhausted.load(Ordering::Relaxed) {
            None
        } else {
            Some(self.last_line.load(Ordering::Relaxed) + 1)
        }
    }
}

/// A token reader that ends when `cancel` is set and records its position.
pub struct Tracked<R> {
    /// The reader.
    pub inner: TokenReader<R>,
    /// Set on Ctrl-C.
    pub cancel: Arc<AtomicBool>,
    /// Shared with the caller.
    pub position: Arc<Position>,
}

impl<R: BufRead> Iterator for Tracked<R> {
    type Item = io::Result<Record>;

    fn next(&mut self) -> Option<io::Result<Record>> {
        if self.cancel.load(Ordering::Relaxed) {
            return None;
        }
        let Some(record) = self.inner.next() else {
            self.position.exhausted.store(true, Ordering::Relaxed);
            return None;
        };
        let line = match &record {
            Ok(Record::Send(e)) => Some(e.line),
            Ok(Record::Skip(s)) => Some(s.line),
            _ => None,
        };
        if let Some(line) = line {
            let p = &self.position;
            p.last_line.store(line, Ordering::Relaxed);
            p.counted.fetch_add(1, Ordering::Relaxed);
        }
        Some(record)
    }
}
