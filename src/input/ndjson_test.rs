//! NDJSON lines that set their own payload, topic, push type and collapse
//! id: parsed once, checked as the run's values are, skipped with a reason
//! when unusable, and kept with their token through the duplicate check.

use super::*;
use crate::payload::PayloadError;

const A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// Every record of `list`, in the order the reader gives them.
fn records(list: &str, options: ReaderOptions) -> Vec<Record> {
    TokenReader::new(list.as_bytes(), options).map(Result::unwrap).collect()
}

fn http2() -> ReaderOptions {
    ReaderOptions::http2(PushType::Alert)
}

fn only(list: &str, options: ReaderOptions) -> Record {
    let mut got = records(list, options);
    assert_eq!(got.len(), 1, "{got:?}");
    got.pop().unwrap()
}

fn entry(r: Record) -> Entry {
    match r {
        Record::Send(e) => e,
        other => panic!("expected a send, got {other:?}"),
    }
}

fn skip(r: Record) -> Skip {
    match r {
        Record::Skip(s) => s,
        other => panic!("expected a skip, got {other:?}"),
    }
}

#[test]
fn a_line_sets_its_own_headers_and_payload() {
    let line = format!(
        r#"{{"token": "{A}", "payload": {{"aps": {{}}}}, "topic": "com.example.app.voip", "push_type": "voip", "collapse_id": "call 7"}}"#
    );
    let e = entry(only(&line, http2()));
    let extras = e.extras.as_deref().expect("extras");
    assert_eq!(e.payload(), Some(&br#"{"aps":{}}"#[..]));
    assert_eq!(extras.headers.topic(), Some("com.example.app.voip"));
    assert_eq!(extras.headers.push_type(), Some(PushType::Voip));
    assert_eq!(extras.headers.collapse_id(), Some("call 7"));

    let only_collapse = entry(only(&format!(r#"{{"token": "{A}", "collapse_id": "c"}}"#), http2()));
    let extras = only_collapse.extras.as_deref().expect("extras");
    assert_eq!((extras.payload.as_ref(), extras.headers.topic()), (None, None), "the rest stays the run's");
    assert_eq!(extras.headers.collapse_id(), Some("c"));
}

#[test]
fn a_line_that_sets_nothing_carries_nothing() {
    for line in [
        format!(r#"{{"token": "{A}"}}"#),
        format!(r#"{{"token": "{A}", "payload": null, "topic": null, "push_type": null, "collapse_id": null}}"#),
    ] {
        assert_eq!(entry(only(&line, http2())).extras, None, "{line}");
    }
    assert_eq!(entry(only(A, http2())).extras, None);
}

#[test]
fn unusable_header_values_skip_the_line_and_say_why() {
    let cases = [
        (r#""topic": "com.example app""#, "invalid topic \"com.example app\": expected a bundle id"),
        (r#""topic": """#, "invalid topic \"\""),
        (r#""push_type": "fax""#, "invalid push type \"fax\": expected alert, background, voip"),
        (r#""push_type": "VOIP""#, "invalid push type \"VOIP\""),
        (r#""collapse_id": "a\u0001b""#, "invalid collapse id \"a\\u{1}b\": control characters"),
        (r#""topic": 7"#, "invalid JSON line: invalid type: integer `7`, expected a string"),
        (r#""priority": 5"#, "invalid JSON line: unknown field `priority`"),
    ];
    for (field, want) in cases {
        let line = format!(r#"{{"token": "{A}", {field}}}"#);
        let s = skip(only(&line, http2()));
        assert_eq!(s.line, 1);
        assert!(s.reason.to_string().starts_with(want), "{field}: {}", s.reason);
        assert!(s.text.starts_with("{\"token\""), "the report shows the line: {}", s.text);
    }
    let long = "c".repeat(65);
    let s = skip(only(&format!(r#"{{"token": "{A}", "collapse_id": "{long}"}}"#), http2()));
    assert_eq!(s.reason, SkipReason::BadHeader(HeadersError::CollapseIdTooLong(65)));
    assert_eq!(s.reason.to_string(), "collapse id is 65 bytes long; Apple takes at most 64");
    let at_limit = entry(only(&format!(r#"{{"token": "{A}", "collapse_id": "{}"}}"#, &long[..64]), http2()));
    assert_eq!(at_limit.extras.unwrap().headers.collapse_id(), Some(&long[..64]));
}

#[test]
fn without_http2_a_line_that_sets_a_header_is_skipped_naming_the_field() {
    let binary = ReaderOptions::default();
    for (fields, named) in [
        (r#""topic": "com.example.app""#, "topic"),
        (r#""push_type": "voip""#, "push_type"),
        (r#""collapse_id": "c""#, "collapse_id"),
        (r#""push_type": "fax", "collapse_id": "c""#, "push_type"),
    ] {
        let s = skip(only(&format!(r#"{{"token": "{A}", {fields}}}"#), binary.clone()));
        assert_eq!(s.reason, SkipReason::NeedsHttp2 { field: named }, "{fields}");
    }
    let s = skip(only(&format!(r#"{{"token": "{A}", "topic": "a.b"}}"#), binary.clone()));
    assert_eq!(s.reason.to_string(), "\"topic\" needs --api http2: the binary protocol has no such field");
    // A payload alone is the binary protocol's too.
    let e = entry(only(&format!(r#"{{"token": "{A}", "payload": {{"aps": {{}}}}}}"#), binary));
    assert_eq!(e.payload(), Some(&br#"{"aps":{}}"#[..]));
}

#[test]
fn a_line_skipped_for_its_header_does_not_make_a_later_line_a_duplicate() {
    let list = format!("{{\"token\": \"{A}\", \"topic\": \"a.b\"}}\n{A}\n{A}\n");
    let got = records(&list, ReaderOptions::default());
    assert_eq!(got.len(), 3);
    assert_eq!(skip(got[0].clone()).reason, SkipReason::NeedsHttp2 { field: "topic" });
    assert_eq!(entry(got[1].clone()).line, 2, "the token is sent from the next line");
    assert_eq!((skip(got[2].clone()).line, skip(got[2].clone()).reason), (3, SkipReason::Duplicate));
}

#[test]
fn a_lines_payload_limit_follows_its_own_push_type() {
    // 4,500 bytes: over the 4,096 of most push types, within voip's 5,120.
    let big = format!(r#"{{"aps": {{}}, "x": "{}"}}"#, "x".repeat(4500 - 17));
    let line = |push_type: &str| format!(r#"{{"token": "{A}", "payload": {big}{push_type}}}"#);
    assert_eq!(entry(only(&line(r#", "push_type": "voip""#), http2())).payload().map(<[u8]>::len), Some(4500));
    let too_large = SkipReason::BadPayload(PayloadError::TooLarge { size: 4500, limit: 4096 });
    assert_eq!(skip(only(&line(""), http2())).reason, too_large, "the run's alert limit");
    let voip_run = ReaderOptions::http2(PushType::Voip);
    assert!(matches!(only(&line(""), voip_run.clone()), Record::Send(_)), "the run's voip limit");
    assert_eq!(skip(only(&line(r#", "push_type": "alert""#), voip_run)).reason, too_large, "the line's alert limit");
}

/// A list of `n` distinct tokens, each line setting its own collapse id
/// `line <number>`, then every token again as a plain line.
fn list_with_extras(n: u64) -> String {
    let token = |i: u64| format!("{:064x}", u128::from(i + 1) * 0x9e37_79b9_7f4a_7c15);
    let mut list = String::new();
    for i in 0..n {
        list.push_str(&format!("{{\"token\": \"{}\", \"collapse_id\": \"line {}\"}}\n", token(i), i + 1));
    }
    for i in 0..n {
        list.push_str(&token(i));
        list.push('\n');
    }
    list
}

#[test]
fn a_lines_own_values_survive_the_duplicate_check() {
    let n = 20_000;
    // The smallest filter: many new tokens look "maybe seen" and are held,
    // then sent from the exact check, out of line order.
    let options = ReaderOptions { expected_tokens: Some(1), ..http2() };
    let got = records(&list_with_extras(n), options);
    assert_eq!(got.len() as u64, 2 * n);
    let mut latest = 0;
    let mut late = 0;
    for r in &got {
        match r {
            Record::Send(e) => {
                assert!(e.line <= n, "line {} repeats a token", e.line);
                let extras = e.extras.as_deref().unwrap_or_else(|| panic!("line {} lost its extras", e.line));
                assert_eq!(extras.headers.collapse_id(), Some(format!("line {}", e.line).as_str()));
                late += u64::from(e.line < latest);
                latest = latest.max(e.line);
            }
            Record::Skip(s) => assert_eq!((s.line > n, &s.reason), (true, &SkipReason::Duplicate)),
            Record::OtherPartition => panic!("no partitions"),
        }
    }
    assert!(late > 0, "some lines went through the held batch");
}

#[test]
fn an_entry_stays_small_and_extras_sit_behind_one_pointer() {
    assert_eq!(std::mem::size_of::<Option<Arc<LineExtras>>>(), 8);
    assert_eq!(std::mem::size_of::<Entry>(), 48);
    assert_eq!(std::mem::size_of::<crate::binary::shard::Item>(), 56);
}
