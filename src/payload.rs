//! The message: building the common alert payload and checking payloads that
//! come from files or token lists before a single frame is written.
//!
//! The gateway rejects an oversized payload with status 7 and drops the
//! connection, discarding everything written after it, so the size check
//! belongs here, once, before sending. Whitespace counts against the limit,
//! and pretty-printed payload files are common, so [`validate`] returns the
//! payload minified.
//!
//! The limit for each frame format is
//! [`Command::payload_limit`](crate::binary::frame::Command::payload_limit); callers
//! may pass another.

use std::fmt;

use serde::Serialize;

/// Why a payload cannot be sent.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// The bytes are not one JSON value (or not UTF-8).
    NotJson {
        /// 1-based line of the first error.
        line: usize,
        /// 1-based column (in bytes) of the first error.
        column: usize,
        /// What the JSON parser found wrong.
        message: String,
    },
    /// Valid JSON, but not an object (APNs payloads are `{"aps": …}` objects).
    NotObject,
    /// The minified payload is larger than the limit.
    TooLarge {
        /// Size of the minified payload in bytes.
        size: usize,
        /// The limit it was checked against, in bytes.
        limit: usize,
    },
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::NotJson { line, column, message } => {
                write!(f, "payload is not JSON: {message} at line {line} column {column}")
            }
            PayloadError::NotObject => f.write_str("payload is not a JSON object"),
            PayloadError::TooLarge { size, limit } => {
                write!(f, "payload is {size} bytes, the limit is {limit} bytes")
            }
        }
    }
}

impl std::error::Error for PayloadError {}

#[derive(Serialize)]
struct Alert<'a> {
    aps: Aps<'a>,
}

// Field order is the key order on the wire: alert, badge, sound.
#[derive(Serialize)]
struct Aps<'a> {
    alert: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    badge: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sound: Option<&'a str>,
}

/// Builds the compact payload `{"aps":{"alert":…,"badge":N,"sound":"…"}}`.
///
/// `badge` and `sound` are left out when `None`. Any text is escaped
/// correctly (quotes, backslashes, control characters); non-ASCII text is
/// written as UTF-8, not `\u` escapes, which keeps it small. The size is not
/// checked: pass the result through [`validate`] for that.
pub fn alert_payload(alert: &str, badge: Option<u32>, sound: Option<&str>) -> Vec<u8> {
    let value = Alert { aps: Aps { alert, badge, sound } };
    // Serializing plain strings and integers into a Vec cannot fail.
    serde_json::to_vec(&value).expect("alert payload serializes")
}

/// Checks that `raw` is one JSON object and returns it minified, then checks
/// the minified size against `limit` (in bytes).
///
/// Minifying removes only insignificant whitespace: keys keep their order,
/// and numbers, escapes and duplicate keys are kept exactly as written, so
/// the gateway sees what the author wrote, only smaller. A UTF-8 byte-order
/// mark at the start is dropped.
///
/// # Errors
/// [`PayloadError::NotJson`] with the position of the first problem
/// (including bytes that are not UTF-8), [`PayloadError::NotObject`] for
/// other JSON values, [`PayloadError::TooLarge`] when the minified payload
/// exceeds `limit`.
pub fn validate(raw: &[u8], limit: usize) -> Result<Vec<u8>, PayloadError> {
    let raw = raw.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(raw);
    // serde_json skips UTF-8 checks inside ignored strings, so check first.
    if let Err(e) = std::str::from_utf8(raw) {
        let (line, column) = position(raw, e.valid_up_to());
        let message = "invalid UTF-8".to_owned();
        return Err(PayloadError::NotJson { line, column, message });
    }
    // Parsing into a Value also rejects what a receiving JSON parser would:
    // numbers out of range and lone surrogates in escapes.
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(raw) {
        return Err(not_json(&e));
    }
    if raw.iter().find(|b| !is_ws(**b)) != Some(&b'{') {
        return Err(PayloadError::NotObject);
    }
    let out = minify(raw);
    if out.len() > limit {
        return Err(PayloadError::TooLarge { size: out.len(), limit });
    }
    Ok(out)
}

/// Turns a serde_json error into [`PayloadError::NotJson`], keeping the
/// position apart from the message so Display does not say it twice.
pub(crate) fn not_json(e: &serde_json::Error) -> PayloadError {
    // serde_json reports column 0 at the very start of a line (or of empty
    // input); columns here are 1-based.
    let (line, column) = (e.line().max(1), e.column().max(1));
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = text.strip_suffix(&suffix).unwrap_or(&text).to_owned();
    PayloadError::NotJson { line, column, message }
}

/// 1-based (line, column) of byte offset `at`.
fn position(raw: &[u8], at: usize) -> (usize, usize) {
    let before = &raw[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    (line, at - line_start + 1)
}

/// JSON's four whitespace bytes (RFC 8259 §2).
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Drops whitespace outside strings. Assumes `raw` is valid JSON.
fn minify(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in raw {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if is_ws(b) {
            continue;
        } else if b == b'"' {
            in_string = true;
        }
        out.push(b);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_payload_is_compact_and_escaped() {
        assert_eq!(alert_payload("hi", None, None), br#"{"aps":{"alert":"hi"}}"#);
        assert_eq!(
            alert_payload("say \"hé\" \\ ok\n", Some(3), Some("ping.aiff")),
            "{\"aps\":{\"alert\":\"say \\\"hé\\\" \\\\ ok\\n\",\"badge\":3,\"sound\":\"ping.aiff\"}}".as_bytes()
        );
        let raw = alert_payload("日本語 \u{1}", Some(0), None);
        assert_eq!(validate(&raw, 2048).unwrap(), raw);
    }

    #[test]
    fn validate_minifies_keeping_order_and_text() {
        let pretty = b"{\n  \"z\" : 1.50,\n  \"aps\": {\"alert\": \"a  b\\\" c\" },\r\n\t\"a\": [1, 2]\n}\n";
        assert_eq!(validate(pretty, 256).unwrap(), br#"{"z":1.50,"aps":{"alert":"a  b\" c"},"a":[1,2]}"#);
        assert_eq!(validate(b"\xEF\xBB\xBF{}", 2).unwrap(), b"{}");
    }

    #[test]
    fn validate_rejects_with_reason() {
        assert_eq!(validate(b"[1]", 256), Err(PayloadError::NotObject));
        assert_eq!(validate(b" \"x\" ", 256), Err(PayloadError::NotObject));
        let e = validate(b"{\n \"a\": }", 256).unwrap_err();
        assert_eq!(e.to_string(), "payload is not JSON: expected value at line 2 column 7");
        assert!(matches!(validate(b"{} x", 256), Err(PayloadError::NotJson { .. })));
        assert!(matches!(validate(b"", 256), Err(PayloadError::NotJson { .. })));
        let e = validate(b"{\n\"a\":\"\xff\"}", 256).unwrap_err();
        assert_eq!(e.to_string(), "payload is not JSON: invalid UTF-8 at line 2 column 6");
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(292));
        assert_eq!(
            validate(big.as_bytes(), 256).unwrap_err().to_string(),
            "payload is 300 bytes, the limit is 256 bytes"
        );
        // Whitespace does not count: 300 pretty bytes, 256 minified.
        let spaced = format!("{{ \"a\" : \"{}\" }}{}", "x".repeat(248), " ".repeat(44));
        assert_eq!(validate(spaced.as_bytes(), 256).unwrap().len(), 256);
    }
}
