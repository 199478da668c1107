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
//! - an NDJSON object (first non-space character `{`) with a `token` and,
//!   optionally, the line's own `payload`, `topic`, `push_type` and
//!   `collapse_id` (absent or `null` = the run's):
//!   `{"token": "…", "payload": {…}, "push_type": "voip", "topic": "com.example.app.voip"}`.
//!   The payload is checked and minified by [`crate::payload::validate`]
//!   (after parsing into a value: key order is kept, numbers are normalised)
//!   against the line's push type's limit if it names one, else
//!   [`ReaderOptions::payload_limit`]. The three headers are HTTP/2's and are
//!   checked as the run's are ([`LineHeaders::new`]); they replace the run's
//!   for that notification only. Over the binary protocol, which has no such
//!   fields, a line that sets one is skipped ([`SkipReason::NeedsHttp2`])
//!   rather than sent with another meaning. Other keys are refused, so a
//!   misspelt `"paylod"` cannot silently send the shared payload;
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

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::binary::frame::Command;
use crate::http2::request::{HeadersError, PushType};
use crate::payload::PayloadError;
use crate::token::{DeviceToken, TokenError};

mod dedup;
mod line;
mod partition;
mod reader;
mod scan;

pub use dedup::MAX_FILTER_BYTES;
pub use partition::{Partition, PartitionError};
pub use reader::TokenReader;

pub use crate::http2::request::LineHeaders;

/// Lines longer than this many bytes (without the line break) are skipped
/// with [`SkipReason::TooLong`] instead of being buffered.
pub const MAX_LINE: usize = 64 * 1024;

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
    /// What the line sets for itself besides the token; `None` (the common
    /// line) = everything is the run's.
    pub extras: Option<Arc<LineExtras>>,
}

/// What an NDJSON line sets for its own notification. Rare, so it travels
/// behind one pointer and a plain token line pays eight bytes for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineExtras {
    /// Its own payload, validated and minified; `None` = the run's shared
    /// payload.
    pub payload: Option<Bytes>,
    /// Its own HTTP/2 headers (empty = the run's).
    pub headers: LineHeaders,
}

impl Entry {
    /// The line's own payload, if it has one.
    pub fn payload(&self) -> Option<&[u8]> {
        self.extras.as_ref().and_then(|e| e.payload.as_deref())
    }
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
    /// The same token was sent from an earlier line (lines skipped for what
    /// they set, a bad payload or header, do not count, so a later good line
    /// for the token is sent).
    Duplicate,
    /// Starts with `{` but is not a JSON object with a `token` string and
    /// no keys besides `payload`, `topic`, `push_type`, `collapse_id`.
    BadJson(String),
    /// The line's own payload is unusable.
    BadPayload(PayloadError),
    /// The line's own `topic`, `push_type` or `collapse_id` is unusable.
    BadHeader(HeadersError),
    /// The line sets an HTTP/2 header (the field is named) and the run uses
    /// the binary protocol, which cannot carry it.
    NeedsHttp2 {
        /// `topic`, `push_type` or `collapse_id`.
        field: &'static str,
    },
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
            SkipReason::BadHeader(e) => e.fmt(f),
            SkipReason::NeedsHttp2 { field } => {
                write!(f, "\"{field}\" needs --api http2: the binary protocol has no such field")
            }
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
    /// Size limit for per-line payloads, in bytes (default: command 2's
    /// 2048); a line that names its own push type gets that type's limit.
    pub payload_limit: usize,
    /// Lines may set their own HTTP/2 headers (`topic`, `push_type`,
    /// `collapse_id`): the run sends over HTTP/2. Otherwise (the default, as
    /// for the binary protocol) such a line is skipped with
    /// [`SkipReason::NeedsHttp2`]: deciding it here, before the duplicate
    /// check, lets a later plain line for the same token be sent. (A run over
    /// the binary protocol skips such lines whatever the reader was told.)
    pub line_headers: bool,
    /// Read only this part of the list (default: all of it).
    pub partition: Option<Partition>,
    /// About how many tokens the list holds, if known: sizes the duplicate
    /// filter (default `None`: the largest, [`MAX_FILTER_BYTES`], touched as
    /// it fills).
    pub expected_tokens: Option<u64>,
}

impl Default for ReaderOptions {
    fn default() -> Self {
        ReaderOptions {
            dedup: true,
            payload_limit: Command::Items.payload_limit(),
            line_headers: false,
            partition: None,
            expected_tokens: None,
        }
    }
}

impl ReaderOptions {
    /// The defaults for an HTTP/2 run of `push_type`: its payload limit, and
    /// lines may set their own headers.
    pub fn http2(push_type: PushType) -> ReaderOptions {
        ReaderOptions { payload_limit: push_type.payload_limit(), line_headers: true, ..ReaderOptions::default() }
    }
}

#[cfg(test)]
#[path = "input_test.rs"]
mod input_test;

#[cfg(test)]
#[path = "input/ndjson_test.rs"]
mod ndjson_test;
