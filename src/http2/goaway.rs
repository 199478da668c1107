//! The reason a gateway gives for closing a connection with GOAWAY.
//!
//! Apple puts a JSON body in a GOAWAY's debug data, as in a non-200
//! answer: `{"reason":"Shutdown"}`. h2 exposes that data only through its
//! error's `Display` text, which ends in the bytes' `Debug` form:
//! `connection error received: not a result of an error (b"{\"reason\":\"Shutdown\"}")`.

use super::answer::{ApnsReason, parse_body};

/// What opens the debug data in h2's error text.
const OPEN: &str = " (b\"";
/// What closes it.
const CLOSE: &str = "\")";

/// The reason in the debug data of the GOAWAY an h2 error's text reports:
/// `None` when the text carries no debug data, or data that is not Apple's
/// JSON with a `reason`.
pub fn reason_in(text: &str) -> Option<ApnsReason> {
    let start = text.find(OPEN)? + OPEN.len();
    let quoted = text[start..].strip_suffix(CLOSE)?;
    parse_body(&unescape(quoted)?).0
}

/// The bytes of a byte string's `Debug` form (without its quotes): `\n`,
/// `\r`, `\t`, `\\`, `\"`, `\0` and `\xNN` escapes. `None` for an escape
/// that form never writes.
fn unescape(quoted: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(quoted.len());
    let mut bytes = quoted.bytes();
    while let Some(b) = bytes.next() {
        if b != b'\\' {
            out.push(b);
            continue;
        }
        let plain = match bytes.next()? {
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'0' => b'\0',
            b @ (b'\\' | b'"') => b,
            b'x' => {
                let hex = [bytes.next()?, bytes.next()?];
                u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?
            }
            _ => return None,
        };
        out.push(plain);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use bytes::Bytes;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// One HTTP/2 frame (RFC 9113 §4.1).
    fn frame(kind: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        f.extend([kind, 0]);
        f.extend(stream.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// The texts of the errors h2's client gives after a GOAWAY with
    /// `code` and `debug` that names no stream as processed: that of the
    /// stream it cuts off, and that of the next `poll_ready`.
    async fn texts_after_goaway(code: u32, debug: &[u8]) -> [String; 2] {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let (mut sender, connection) = h2::client::handshake(client).await.expect("handshake");
        let task = tokio::spawn(connection);
        let mut preface = [0u8; 24];
        server.read_exact(&mut preface).await.expect("the client's preface");
        server.write_all(&frame(0x4, 0, &[])).await.expect("SETTINGS");
        let request = http::Request::post("https://gateway.test/3/device/00").body(()).expect("request");
        let (response, _) = sender.send_request(request, true).expect("a stream");
        let mut payload = [0, 0, 0, 0].to_vec();
        payload.extend(code.to_be_bytes());
        payload.extend_from_slice(debug);
        server.write_all(&frame(0x7, 0, &payload)).await.expect("GOAWAY");
        let stream = response.await.expect_err("a stream above the last-stream-id fails");
        let ready = poll_fn(|cx| sender.poll_ready(cx)).await.expect_err("no stream after a GOAWAY");
        assert!(stream.is_go_away() && stream.is_remote() && ready.is_go_away(), "{stream:?} {ready:?}");
        task.abort();
        [stream.to_string(), ready.to_string()]
    }

    #[tokio::test(flavor = "current_thread")]
    async fn apples_reason_is_read_from_h2s_own_error_texts() {
        for text in texts_after_goaway(0, br#"{"reason":"Shutdown"}"#).await {
            assert_eq!(reason_in(&text), Some(ApnsReason::Shutdown), "{text}");
        }
        let odd = b"{\"reason\":\"Odd \\\"one\\\"\\\\\",\r\n\t\"n\":1}";
        for text in texts_after_goaway(0, odd).await {
            assert_eq!(reason_in(&text), Some(ApnsReason::Other("Odd?\"one\"\\".into())), "{text}");
        }
        // PROTOCOL_ERROR, reason in JSON bytes outside ASCII.
        for text in texts_after_goaway(1, "{\"reason\":\"Caf\u{e9}\"}".as_bytes()).await {
            assert!(text.contains("\\xc3\\xa9"), "{text}");
            assert_eq!(reason_in(&text), Some(ApnsReason::Other("Caf?".into())), "{text}");
        }
        for text in texts_after_goaway(0, b"").await {
            assert_eq!(reason_in(&text), None, "{text}");
        }
        for text in texts_after_goaway(0, b"going away").await {
            assert_eq!(reason_in(&text), None, "not JSON: {text}");
        }
    }

    #[test]
    fn texts_without_apples_json_give_no_reason() {
        for text in [
            "",
            "connection closed because of a broken pipe",
            "connection error received: not a result of an error",
            "connection error received: not a result of an error (b\"{\\\"reason\\\":\\\"Shutdown\\\"}",
            "connection error received: not a result of an error (b\"{\\q}\")",
            "connection error received: not a result of an error (b\"\\x4\")",
            "connection error received: not a result of an error (b\"{\\\"other\\\":1}\")",
        ] {
            assert_eq!(reason_in(text), None, "{text}");
        }
    }

    #[test]
    fn every_escape_reads_back() {
        let all: Vec<u8> = (0..=255).collect();
        let text = format!("{:?}", Bytes::from(all.clone()));
        let quoted = text.strip_prefix("b\"").and_then(|t| t.strip_suffix('"')).expect("b\"…\"");
        assert_eq!(unescape(quoted), Some(all));
    }
}
