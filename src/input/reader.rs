//! The reader half of [`TokenReader`]: pulling lines out of the input with
//! as few copies as possible, and handing out records in the order the
//! duplicate check settles them.

use std::collections::VecDeque;
use std::io::{self, BufRead};

use super::dedup::{Dedup, Resolved};
use super::line::Filter;
use super::scan::{find_newline, token_line};
use super::{MAX_LINE, ReaderOptions, Record, Skip, SkipReason};

/// Streams [`Record`]s out of a token list, one line at a time.
///
/// Blank and comment lines yield nothing. After an I/O error (returned once
/// as `Some(Err(_))`, after the records of lines already read) the iterator
/// ends; `Interrupted` reads are retried.
#[derive(Debug)]
pub struct TokenReader<R> {
    reader: R,
    /// The current line, reused for every line.
    buf: Vec<u8>,
    lines: u64,
    /// No more lines are read: the end, an I/O error, or [`TokenReader::stop`].
    ended: bool,
    /// Records decided by an exact duplicate check, handed out first.
    resolved: VecDeque<Record>,
    /// A read error, returned once after `resolved`.
    error: Option<io::Error>,
    filter: Filter,
}

impl<R: BufRead> TokenReader<R> {
    /// A reader over `reader` (a `BufReader` on a file or stdin, or a slice).
    pub fn new(reader: R, options: ReaderOptions) -> Self {
        TokenReader {
            reader,
            buf: Vec::with_capacity(256),
            lines: 0,
            ended: false,
            resolved: VecDeque::new(),
            error: None,
            filter: Filter { dedup: options.dedup.then(|| Dedup::new(options.expected_tokens)), options },
        }
    }

    /// Reads no further lines: the records still to come are those of lines
    /// already read but held for the duplicate check, settled now.
    pub fn stop(&mut self) {
        self.ended = true;
        self.settle_pending();
        self.resolve_held();
    }

    /// Physical lines read so far, including blank, comment and skipped ones.
    pub fn lines_read(&self) -> u64 {
        self.lines
    }

    /// Distinct tokens sent so far (0 when deduplication is off).
    pub fn unique_tokens(&self) -> u64 {
        self.filter.dedup.as_ref().map_or(0, Dedup::unique)
    }

    /// The options the reader was built with.
    pub fn options(&self) -> &ReaderOptions {
        &self.filter.options
    }

    /// Reads the next line into `buf` (without its `\n`), keeping at most
    /// [`MAX_LINE`] + 1 bytes. Returns `None` at end of input, else whether
    /// the line was too long.
    fn read_line(&mut self) -> io::Result<Option<bool>> {
        self.buf.clear();
        let (mut any, mut too_long) = (false, false);
        loop {
            let avail = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if avail.is_empty() {
                break;
            }
            any = true;
            let (chunk, used, done) = match find_newline(avail) {
                Some(i) => (&avail[..i], i + 1, true),
                None => (avail, avail.len(), false),
            };
            if !too_long {
                // One byte over the limit is kept so a final '\r' can be told apart.
                let room = MAX_LINE + 1 - self.buf.len();
                too_long = chunk.len() > room;
                self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            self.reader.consume(used);
            if done {
                break;
            }
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        Ok(any.then_some(too_long || self.buf.len() > MAX_LINE))
    }
}

impl<R: BufRead> TokenReader<R> {
    /// Reads one line and classifies it: `Ok(None)` for a line with no
    /// record yet (blank, comment, held) and at the end (then `ended` is set).
    fn next_line(&mut self) -> io::Result<Option<Record>> {
        // Fast path: the whole line is in the reader's buffer; classify it in
        // place, no copy (and the common token line without even a search).
        let avail = loop {
            match self.reader.fill_buf() {
                Ok(b) => break b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        };
        if avail.is_empty() {
            self.stop();
            return Ok(None);
        }
        let number = self.lines + 1;
        let found = match token_line(avail) {
            Some((token, used)) => Some((used, self.filter.token(number, token, None))),
            None => find_newline(avail).filter(|&i| i <= MAX_LINE).map(|i| {
                let line = avail[..i].strip_suffix(b"\r").unwrap_or(&avail[..i]);
                (i + 1, self.filter.classify(number, line, false))
            }),
        };
        if let Some((used, record)) = found {
            let emptied = used == avail.len();
            self.lines = number;
            self.reader.consume(used);
            if emptied {
                // The next read may wait for input: check what is queued first.
                self.settle_pending();
            }
            return Ok(record);
        }
        // Slow path: the line spans buffer refills (or is too long).
        self.settle_pending();
        let Some(too_long) = self.read_line()? else {
            self.stop();
            return Ok(None);
        };
        self.lines += 1;
        Ok(self.filter.classify(self.lines, &self.buf, too_long))
    }

    /// Checks the tokens queued for the duplicate check; queues the new ones.
    fn settle_pending(&mut self) {
        if let Some(dedup) = &mut self.filter.dedup {
            self.resolved.extend(dedup.drain().map(Record::Send));
        }
    }

    /// Settles the held batch: queues its records in line order.
    fn resolve_held(&mut self) {
        let Some(dedup) = self.filter.dedup.as_mut().filter(|d| d.holding()) else { return };
        let resolved = &mut self.resolved;
        dedup.resolve(|r| {
            resolved.push_back(match r {
                Resolved::Send(entry) => Record::Send(entry),
                Resolved::Duplicate(entry) => Record::Skip(Skip {
                    line: entry.line,
                    text: entry.token.to_string(),
                    reason: SkipReason::Duplicate,
                }),
            });
        });
    }
}

impl<R: BufRead> Iterator for TokenReader<R> {
    type Item = io::Result<Record>;

    fn next(&mut self) -> Option<io::Result<Record>> {
        loop {
            if let Some(record) = self.resolved.pop_front() {
                return Some(Ok(record));
            }
            if self.ended {
                return self.error.take().map(Err);
            }
            if self.filter.dedup.as_ref().is_some_and(Dedup::full) {
                self.resolve_held();
                continue;
            }
            match self.next_line() {
                Ok(Some(record)) => return Some(Ok(record)),
                Ok(None) => {}
                Err(e) => {
                    // The held lines' records come first, then the error.
                    self.error = Some(e);
                    self.stop();
                }
            }
        }
    }
}
