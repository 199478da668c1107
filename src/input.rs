//! Token lists: a streaming reader that turns each line of a list into a
//! [`Record`] (send it, skip it and why, or it belongs to another partition).
//!
//! Lists run to tens of millions of lines, so the reader never holds the
//! list: it reads one line at a time into one reused buffer, and a plain hex
//! line costs no allocation. Each line is one of
//!
//! - blank, or a `#` comment: ignored, no record;
//! - a hex token, as [`DeviceToken::parse`] accepts it (`<` `>`, spaces,
//!   either case);
//! - an NDJSON object `{"token": "…", "payload": {…}}` (first non-space
//!   character `{`); the payload is optional (absent or `null` = the run's
//!   shared payload) and is checked and minified by [`payload::validate`]
//!   (after parsing into a value: key order is kept, numbers are normalised);
//!   other keys are refused, so a misspelt `"paylod"` cannot silently send
//!   the shared payload;
//! - anything else: skipped, with a [`SkipReason`].
//!
//! Line numbers are 1-based physical lines (CRLF is fine). A line that is not
//! UTF-8 or is longer than [`MAX_LINE`] bytes is skipped, never fatal.
//!
//! # Partitions
//! `K/N` splits a list among N runs: a token line belongs to partition
//! `fnv1a64(token bytes) % N`, any other line to `fnv1a64(trimmed bytes) % N`.
//! FNV-1a 64 is fixed by its definition, so the split is the same on every
//! machine and Rust version, and every copy of a token falls in one
//! partition: deduplicating per partition equals deduplicating globally.
//!
//! # Duplicates and memory
//! Duplicate detection ([`ReaderOptions::dedup`]) keeps a Bloom filter of
//! fixed size and spools 8 bytes per distinct token to a temporary file (see
//! `dedup.rs`), so memory stays flat however long the list. Records are
//! therefore not quite in line order: a token's record comes up to sixteen
//! lines late (the filter is read ahead of use), and a line the filter flags
//! as "maybe seen" (every real duplicate, and about 0.02% of new tokens) is
//! held and checked exactly in batches of up to 65,536 or at the end of the
//! list. Nothing waits for more input: what is queued is settled before a
//! read that could block. When the reading stops early,
//! [`TokenReader::stop`] settles the held lines.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, BufRead};
use std::sync::Arc;

use serde::Deserialize;

use crate::binary::frame::Command;
use crate::payload::{self, PayloadError};
use crate::token::{DeviceToken, TokenError};

mod dedup;
mod partition;
mod scan;

use dedup::{Dedup, Resolved};
pub use partition::{Partition, PartitionError};
use scan::{decode_hex64, find_newline, token_line};

/// Lines longer than this many bytes (without the line break) are skipped
/// with [`SkipReason::TooLong`] instead of being buffered.
pub const MAX_LINE: usize = 64 * 1024;

/// How many characters of a skipped line [`Skip::text`] keeps.
const TEXT_CHARS: usize = 100;

/// What one line of a token list asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Send a notification.
    Send(Entry),
    /// The line cannot be sent; say why.
    Skip(Skip),
    /// The line belongs to another partition (count it, nothing else).
    OtherPartition,
}

/// A token to notify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number in the list.
    pub line: u64,
    /// The device.
    pub token: DeviceToken,
    /// This line's own payload, validated and minified; `None` = the run's
    /// shared payload.
    pub payload: Option<Arc<[u8]>>,
}

/// A line that will not be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// 1-based line number in the list.
    pub line: u64,
    /// The line, trimmed and cut to about 100 characters (lossy UTF-8).
    pub text: String,
    /// Why it is skipped.
    pub reason: SkipReason,
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}: {:?}", self.line, self.reason, self.text)
    }
}

/// Why a line is skipped.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// Not a device token.
    BadToken(TokenError),
    /// The same token was sent from an earlier line (lines skipped for a bad
    /// payload do not count, so a later good line for the token is sent).
    Duplicate,
    /// Starts with `{` but is not a `{"token", "payload"}` object.
    BadJson(String),
    /// The line's own payload is unusable.
    BadPayload(PayloadError),
    /// The line is not UTF-8.
    NotUtf8,
    /// The line is longer than [`MAX_LINE`] bytes.
    TooLong {
        /// The limit it broke, in bytes.
        limit: usize,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::BadToken(e) => write!(f, "invalid token: {e}"),
            SkipReason::Duplicate => f.write_str("duplicate token"),
            SkipReason::BadJson(e) => write!(f, "invalid JSON line: {e}"),
            SkipReason::BadPayload(e) => write!(f, "invalid payload: {e}"),
            SkipReason::NotUtf8 => f.write_str("line is not UTF-8"),
            SkipReason::TooLong { limit } => write!(f, "line is longer than {limit} bytes"),
        }
    }
}

/// How a [`TokenReader`] treats the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderOptions {
    /// Skip repeated tokens with [`SkipReason::Duplicate`] (default `true`).
    pub dedup: bool,
    /// Size limit for per-line payloads, in bytes (default: command 2's 2048).
    pub payload_limit: usize,
    /// Read only this part of the list (default: all of it).
    pub partition: Option<Partition>,
    /// About how many tokens the list holds, if known: sizes the duplicate
    /// filter (default `None`: the largest, 16 MiB, touched as it fills).
    pub expected_tokens: Option<u64>,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            dedup: true,
            payload_limit: Command::Items.payload_limit(),
            partition: None,
            expected_tokens: None,
        }
    }
}

/// An NDJSON line.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLine {
    token: String,
    #[serde(default)]
    payload: Option<serde_json::Value>,
}

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

/// What decides a line's fate: options and the tokens seen. Apart from the
/// reader so a line can be borrowed from `buf` while `dedup` grows.
#[derive(Debug)]
struct Filter {
    options: ReaderOptions,
    dedup: Option<Dedup>,
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

impl Filter {
    /// Turns line number `line` into a record; `None` for blank and comments,
    /// and for a token held for the duplicate check.
    fn classify(&mut self, line: u64, mut s: &[u8], too_long: bool) -> Option<Record> {
        if line == 1 {
            s = s.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(s);
        }
        let s = s.trim_ascii();
        if too_long {
            return Some(self.junk(line, s, SkipReason::TooLong { limit: MAX_LINE }));
        }
        match s.first() {
            None | Some(b'#') => return None,
            _ => {}
        }
        // Fast path: the common 64-digit line, no UTF-8 check or char walk.
        if let Some(token) = decode_hex64(s) {
            return self.token(line, token, None);
        }
        let Ok(text) = std::str::from_utf8(s) else {
            return Some(self.junk(line, s, SkipReason::NotUtf8));
        };
        if s[0] != b'{' {
            return match DeviceToken::parse(text) {
                Ok(token) => self.token(line, token, None),
                Err(e) => Some(self.junk(line, s, SkipReason::BadToken(e))),
            };
        }
        let json: JsonLine = match serde_json::from_str(text) {
            Ok(j) => j,
            Err(e) => return Some(self.junk(line, s, SkipReason::BadJson(e.to_string()))),
        };
        let token = match DeviceToken::parse(&json.token) {
            Ok(t) => t,
            Err(e) => return Some(self.junk(line, s, SkipReason::BadToken(e))),
        };
        if self.elsewhere(&token) {
            return Some(Record::OtherPartition);
        }
        let limit = self.options.payload_limit;
        let payload = json.payload.map(|v| {
            // Re-serialising a Value cannot fail; `validate` then checks it.
            let raw = serde_json::to_vec(&v).expect("JSON value serializes");
            payload::validate(&raw, limit).map(Arc::from)
        });
        match payload.transpose() {
            Ok(payload) => self.token(line, token, payload),
            Err(e) => Some(Record::Skip(skip(line, s, SkipReason::BadPayload(e)))),
        }
    }

    /// Whether `token` belongs to another partition.
    fn elsewhere(&self, token: &DeviceToken) -> bool {
        self.options.partition.is_some_and(|p| !p.claims_token(token))
    }

    /// A line that holds a usable token: partition, then the duplicate check
    /// (`None`: held by it). Kept lean: the common line comes through here.
    fn token(&mut self, line: u64, token: DeviceToken, payload: Option<Arc<[u8]>>) -> Option<Record> {
        if self.elsewhere(&token) {
            return Some(Record::OtherPartition);
        }
        match &mut self.dedup {
            Some(dedup) => dedup.check(line, token, payload).map(Record::Send),
            None => Some(Record::Send(Entry { line, token, payload })),
        }
    }

    /// A line with no usable token: partitioned by its trimmed bytes.
    fn junk(&self, line: u64, s: &[u8], reason: SkipReason) -> Record {
        match self.options.partition {
            Some(p) if Partition::of_line(s, p.count) != p.index => Record::OtherPartition,
            _ => Record::Skip(skip(line, s, reason)),
        }
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

fn skip(line: u64, s: &[u8], reason: SkipReason) -> Skip {
    // 4 bytes per char at most, so this head holds more than TEXT_CHARS chars
    // whenever it is shorter than the line.
    let head = &s[..s.len().min(4 * TEXT_CHARS + 4)];
    let lossy = String::from_utf8_lossy(head);
    let mut chars = lossy.chars();
    let mut text: String = chars.by_ref().take(TEXT_CHARS).collect();
    if chars.next().is_some() {
        text.push('…');
    }
    Skip { line, text, reason }
}

#[cfg(test)]
#[path = "input_test.rs"]
mod input_test;
