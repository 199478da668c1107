//! One line of a token list into a [`Record`]: the hex fast path, the
//! general token syntax, NDJSON, partitions and skip reasons.

use std::sync::Arc;

use bytes::Bytes;
use serde::Deserialize;

use super::dedup::Dedup;
use super::scan::decode_hex64;
use super::{Entry, LineExtras, LineHeaders, MAX_LINE, Partition, ReaderOptions, Record, Skip, SkipReason};
use crate::http2::request::PushType;
use crate::payload;
use crate::token::DeviceToken;

/// How many characters of a skipped line [`Skip::text`] keeps.
const TEXT_CHARS: usize = 100;

/// An NDJSON line (`null` is the same as absent).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonLine {
    token: String,
    #[serde(default)]
    payload: Option<serde_json::Value>,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    push_type: Option<String>,
    #[serde(default)]
    collapse_id: Option<String>,
}

impl JsonLine {
    /// What the line sets besides its token, checked; `Ok(None)` when nothing.
    fn extras(self, options: &ReaderOptions) -> Result<Option<Arc<LineExtras>>, SkipReason> {
        let set = [
            ("topic", self.topic.is_some()),
            ("push_type", self.push_type.is_some()),
            ("collapse_id", self.collapse_id.is_some()),
        ]
        .into_iter()
        .find_map(|(field, set)| set.then_some(field));
        let headers = match set {
            None => LineHeaders::default(),
            // Whatever its value, the field has no meaning over the binary protocol.
            Some(field) if !options.line_headers => return Err(SkipReason::NeedsHttp2 { field }),
            Some(_) => LineHeaders::new(self.topic, self.push_type.as_deref(), self.collapse_id)
                .map_err(SkipReason::BadHeader)?,
        };
        let limit = headers.push_type().map_or(options.payload_limit, PushType::payload_limit);
        let payload = match self.payload {
            None => None,
            Some(v) => {
                // Re-serialising a Value cannot fail; `validate` then checks it.
                let raw = serde_json::to_vec(&v).expect("JSON value serializes");
                Some(Bytes::from(payload::validate(&raw, limit).map_err(SkipReason::BadPayload)?))
            }
        };
        if payload.is_none() && headers.is_empty() {
            return Ok(None);
        }
        Ok(Some(Arc::new(LineExtras { payload, headers })))
    }
}

/// What decides a line's fate: options and the tokens seen. Apart from the
/// reader so a line can be borrowed from `buf` while `dedup` grows.
#[derive(Debug)]
pub(super) struct Filter {
    pub(super) options: ReaderOptions,
    pub(super) dedup: Option<Dedup>,
}

impl Filter {
    /// Turns line number `line` into a record; `None` for blank and comments,
    /// and for a token held for the duplicate check.
    pub(super) fn classify(&mut self, line: u64, mut s: &[u8], too_long: bool) -> Option<Record> {
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
        match json.extras(&self.options) {
            Ok(extras) => self.token(line, token, extras),
            Err(reason) => Some(Record::Skip(skip(line, s, reason))),
        }
    }

    /// Whether `token` belongs to another partition.
    fn elsewhere(&self, token: &DeviceToken) -> bool {
        self.options.partition.is_some_and(|p| !p.claims_token(token))
    }

    /// A line that holds a usable token: partition, then the duplicate check
    /// (`None`: held by it). Kept lean: the common line comes through here.
    pub(super) fn token(&mut self, line: u64, token: DeviceToken, extras: Option<Arc<LineExtras>>) -> Option<Record> {
        if self.elsewhere(&token) {
            return Some(Record::OtherPartition);
        }
        match &mut self.dedup {
            Some(dedup) => dedup.check(line, token, extras).map(Record::Send),
            None => Some(Record::Send(Entry { line, token, extras })),
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
