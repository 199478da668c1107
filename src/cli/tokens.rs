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
use apnsblast::token::TOKEN_LEN;

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
    /// `options` with the duplicate filter sized for this list.
    pub fn sized(&self, options: ReaderOptions) -> ReaderOptions {
        ReaderOptions { expected_tokens: self.size.map(tokens_in), ..options }
    }

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
    if meta.is_file() {
        // Windows tools write UTF-16 with a byte-order mark: every line
        // would be skipped as junk.
        let mut bom = [0u8; 2];
        let utf16 = file.read_exact(&mut bom).is_ok() && matches!(bom, [0xFF, 0xFE] | [0xFE, 0xFF]);
        if utf16 {
            bail!("--tokens {name}: the list is UTF-16 text; save it as UTF-8 (iconv -f UTF-16 -t UTF-8)");
        }
        file.rewind().with_context(|| format!("--tokens {name}: cannot read the token list"))?;
    }
    if strict {
        check_all(&mut file, &name, options)?;
    }
    if meta.is_file() {
        return Ok(Input::from_reader(ReadAhead::new(file), &name, Some(meta.len())));
    }
    Ok(Input::from_reader(file, &name, None))
}

/// How far ahead of the reader a list file is requested from the disk.
const AHEAD: u64 = 64 << 20;
/// How often the request is renewed.
const AHEAD_STEP: u64 = 16 << 20;

/// A token list file, read front to back, with Linux told what comes next.
/// Sequential read-ahead covers a list that is not in memory at all. A list
/// that is partly in memory (written hours ago, the rest paged out) has holes
/// that the kernel fills only when a read reaches them, one synchronous disk
/// read each, during which no shard gets work. So the next
/// [`AHEAD`] bytes are requested in the background as the reader goes.
struct ReadAhead {
    file: File,
    pos: u64,
    /// Where the range requested so far ends.
    requested: u64,
}

impl ReadAhead {
    fn new(file: File) -> ReadAhead {
        advise(&file, 0, 0, Advice::Sequential);
        ReadAhead { file, pos: 0, requested: 0 }
    }
}

impl Read for ReadAhead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos + AHEAD >= self.requested + AHEAD_STEP {
            let from = self.requested.max(self.pos);
            self.requested = self.pos + AHEAD;
            advise(&self.file, from, self.requested - from, Advice::WillNeed);
        }
        let n = self.file.read(buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[derive(Debug, Clone, Copy)]
enum Advice {
    Sequential,
    WillNeed,
}

/// `posix_fadvise`: a hint, so failure only goes to the debug log.
#[cfg(target_os = "linux")]
fn advise(file: &File, offset: u64, len: u64, advice: Advice) {
    use std::os::fd::AsRawFd;
    let code = match advice {
        Advice::Sequential => libc::POSIX_FADV_SEQUENTIAL,
        Advice::WillNeed => libc::POSIX_FADV_WILLNEED,
    };
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else { return };
    // SAFETY: the descriptor is open for the call's duration; the advice
    // changes only how the kernel caches the file.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), offset, len, code) };
    if rc != 0 {
        log::debug!("read-ahead advice {advice:?} for the token list failed: {}", io::Error::from_raw_os_error(rc));
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_file: &File, _offset: u64, _len: u64, _advice: Advice) {}

/// `--strict-input`: reads the whole list with the run's options; prints the
/// first unusable lines to stderr and fails if there are any. Leaves the file
/// rewound.
fn check_all(file: &mut File, name: &str, options: &ReaderOptions) -> anyhow::Result<()> {
    let size = file.metadata().map(|m| m.len()).ok();
    let options = ReaderOptions { expected_tokens: size.map(tokens_in), ..options.clone() };
    let reader = TokenReader::new(BufReader::with_capacity(BUFFER, &mut *file), options);
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

/// About how many tokens a list of `bytes` holds: a line of hex digits and
/// a newline each, the common case.
fn tokens_in(bytes: u64) -> u64 {
    bytes / (2 * TOKEN_LEN as u64 + 1)
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
    /// The highest line number of such records.
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
    inner: TokenReader<R>,
    cancel: Arc<AtomicBool>,
    position: Arc<Position>,
}

impl<R: BufRead> Tracked<R> {
    /// Reads `inner` until `cancel` is set; `position` says where it stopped.
    pub fn new(inner: TokenReader<R>, cancel: Arc<AtomicBool>, position: Arc<Position>) -> Self {
        Tracked { inner, cancel, position }
    }

    /// After a cancelled run: the records of the lines that were read but
    /// still held for the duplicate check, settled now (and a read error the
    /// run did not get to, if one came after them).
    pub fn settle_held(&mut self) -> Vec<io::Result<Record>> {
        self.inner.stop();
        let records: Vec<io::Result<Record>> = self.inner.by_ref().collect();
        records.iter().flatten().for_each(|r| self.note(r));
        records
    }

    fn note(&self, record: &Record) {
        let line = match record {
            Record::Send(e) => e.line,
            Record::Skip(s) => s.line,
            Record::OtherPartition => return,
        };
        // This reader is the only writer, so plain loads and stores do (a
        // read-modify-write per token would cost more than parsing it).
        // Held lines come after later ones: the position is the highest line.
        let p = &self.position;
        if line > p.last_line.load(Ordering::Relaxed) {
            p.last_line.store(line, Ordering::Relaxed);
        }
        p.counted.store(p.counted.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }
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
        if let Ok(r) = &record {
            self.note(r);
        }
        Some(record)
    }
}
