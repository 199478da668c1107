use super::*;
use crate::http2::answer::ApnsReason;
use crate::payload::PayloadError;
use crate::token::TokenError;

const HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

#[test]
fn every_reason_reads_as_the_failure_lists_have_always_said() {
    let table: Vec<(Reason, &str)> = vec![
        (Reason::Rejected(Status::InvalidToken), "invalid token"),
        (Reason::Rejected(Status::Processing), "processing error"),
        (Reason::Rejected(Status::Other(42)), "undefined status"),
        (
            Reason::SilentWhenAlone { times: 3 },
            "the connection closed without an answer each of the 3 times it was sent alone",
        ),
        (Reason::Interrupted, "not sent: the run was interrupted"),
        (Reason::ShardStopped("gave up: TLS handshake failed".into()), "gave up: TLS handshake failed"),
        (
            Reason::QueuedForStoppedShard("gave up: TLS handshake failed".into()),
            "not sent: gave up: TLS handshake failed",
        ),
        (Reason::NotSent, "not sent"),
        (Reason::EveryShardStopped, "not sent: every shard had stopped"),
        (Reason::Skipped(SkipReason::Duplicate), "duplicate token"),
        (
            Reason::Skipped(SkipReason::BadToken(TokenError::WrongLength { digits: 63 })),
            "invalid token: token has 63 hex digits, expected 64",
        ),
        (Reason::Skipped(SkipReason::BadJson("expected value".into())), "invalid JSON line: expected value"),
        (
            Reason::Skipped(SkipReason::BadPayload(PayloadError::NotObject)),
            "invalid payload: payload is not a JSON object",
        ),
        (Reason::Skipped(SkipReason::NotUtf8), "line is not UTF-8"),
        (Reason::Skipped(SkipReason::TooLong { limit: 65536 }), "line is longer than 65536 bytes"),
        (
            Reason::Http2Rejected { status: 400, reason: Some(ApnsReason::BadDeviceToken), unregistered_at: None },
            "BadDeviceToken",
        ),
        (
            Reason::Http2Rejected { status: 410, reason: Some(ApnsReason::Unregistered), unregistered_at: Some(5) },
            "Unregistered",
        ),
        (Reason::Http2Rejected { status: 410, reason: None, unregistered_at: None }, "Unregistered"),
        (Reason::Http2Rejected { status: 400, reason: None, unregistered_at: None }, "HTTP status 400"),
        (
            Reason::Http2Rejected {
                status: 400,
                reason: Some(ApnsReason::Other("BrandNew".into())),
                unregistered_at: None,
            },
            "BrandNew",
        ),
        (
            Reason::Http2GaveUp { tries: 5, last: "503 ServiceUnavailable".into() },
            "gave up after 5 tries; last: 503 ServiceUnavailable",
        ),
        (Reason::Http2InDoubt { tries: 5 }, "no answer after 5 tries: may or may not have been delivered"),
    ];
    for (reason, text) in table {
        assert_eq!(reason.to_string(), text, "{reason:?}");
    }
}

#[test]
fn a_drivers_words_are_a_stopped_shards_reason() {
    let why = String::from("gave up: no route");
    assert_eq!(Reason::from(&why), Reason::ShardStopped(why.clone()));
    assert_eq!(Reason::from(why.as_str()), Reason::ShardStopped(why));
}

#[test]
fn only_a_rejection_carries_a_status() {
    assert_eq!(Reason::Rejected(Status::MissingTopic).status(), Some(Code::Binary(Status::MissingTopic)));
    assert_eq!(Reason::Interrupted.status(), None);
    assert_eq!(Reason::Skipped(SkipReason::Duplicate).status(), None);
    let gone = Reason::Http2Rejected { status: 410, reason: Some(ApnsReason::Unregistered), unregistered_at: Some(7) };
    assert_eq!(gone.status(), Some(Code::Http(410)));
    assert_eq!(gone.unregistered_at(), Some(7));
    assert_eq!(Reason::Rejected(Status::InvalidToken).unregistered_at(), None);
}

/// Each failure, its line in the format every earlier version wrote.
fn cases() -> Vec<(Failure, String)> {
    vec![
        (
            Failure::new(4, HEX.into(), State::Rejected, &Reason::Rejected(Status::InvalidToken)),
            format!(r#"{{"line":4,"token":"{HEX}","state":"rejected","status":8,"reason":"invalid token"}}"#),
        ),
        (
            Failure::new(7, HEX.into(), State::Unconfirmed, &Reason::SilentWhenAlone { times: 3 }),
            format!(
                r#"{{"line":7,"token":"{HEX}","state":"unconfirmed","reason":"the connection closed without an answer each of the 3 times it was sent alone"}}"#
            ),
        ),
        (
            Failure::new(9, HEX.into(), State::Unsent, &Reason::Interrupted),
            format!(r#"{{"line":9,"token":"{HEX}","state":"unsent","reason":"not sent: the run was interrupted"}}"#),
        ),
        (
            Failure::new(2, "<nope>".into(), State::Skipped, &Reason::Skipped(SkipReason::NotUtf8)),
            r#"{"line":2,"token":"<nope>","state":"skipped","reason":"line is not UTF-8"}"#.to_owned(),
        ),
        (
            Failure::new(
                11,
                HEX.into(),
                State::Rejected,
                &Reason::Http2Rejected {
                    status: 410,
                    reason: Some(ApnsReason::Unregistered),
                    unregistered_at: Some(1_700_000_000_123),
                },
            ),
            format!(
                r#"{{"line":11,"token":"{HEX}","state":"rejected","status":410,"unregistered_at":1700000000123,"reason":"Unregistered"}}"#
            ),
        ),
    ]
}

#[test]
fn binary_and_http_statuses_read_back_as_what_they_were() {
    for code in
        [Code::Binary(Status::InvalidToken), Code::Binary(Status::from_code(255)), Code::Http(400), Code::Http(410)]
    {
        assert_eq!(Code::from_number(code.number()), code);
    }
}

#[test]
fn failures_are_written_in_the_lists_format() {
    for (failure, json) in cases() {
        assert_eq!(serde_json::to_string(&failure).unwrap(), json);
    }
}

#[test]
fn failure_lines_read_back_as_written() {
    for (failure, json) in cases() {
        let back: Failure = serde_json::from_str(&json).unwrap();
        assert_eq!(back, failure);
        assert_eq!(serde_json::to_string(&back).unwrap(), json);
    }
}

#[test]
fn an_undefined_status_code_reads_back_unchanged() {
    let json = format!(r#"{{"line":1,"token":"{HEX}","state":"rejected","status":42,"reason":"undefined status"}}"#);
    let back: Failure = serde_json::from_str(&json).unwrap();
    assert_eq!(back.status, Some(Code::Binary(Status::Other(42))));
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
}
