//! Token lists read line by line: every kind of line, CRLF, junk, partitions.

use std::io;

use super::partition::{fingerprint, fnv1a64};
use super::scan::{find_newline, token_line};
use super::*;
use crate::token::TOKEN_LEN;

const A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
const B: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";
const C: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const D: &str = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

/// The records of `input`, in line order (see the module docs: the reader
/// hands some out late).
fn read_with(input: &[u8], options: ReaderOptions) -> Vec<Record> {
    by_line(TokenReader::new(input, options).map(|r| r.unwrap()).collect())
}

fn read(input: &[u8]) -> Vec<Record> {
    read_with(input, ReaderOptions::default())
}

/// `records` in line order (held lines come late), other partitions left out.
fn by_line(mut records: Vec<Record>) -> Vec<Record> {
    records.retain(|r| line_of(r) != 0);
    records.sort_by_key(line_of);
    records
}

fn tok(s: &str) -> DeviceToken {
    DeviceToken::parse(s).unwrap()
}

fn send(line: u64, t: &str) -> Record {
    Record::Send(Entry { line, token: tok(t), extras: None })
}

fn reason(r: &Record) -> &SkipReason {
    match r {
        Record::Skip(s) => &s.reason,
        other => panic!("expected a skip, got {other:?}"),
    }
}

#[test]
fn token_lines_are_sent_and_blank_and_comment_lines_yield_nothing() {
    let list = format!("# header\r\n{A}\r\n\r\n   \n<{}>\n  {}  \r\n", B.to_uppercase(), &A[..63]);
    let mut r = TokenReader::new(list.as_bytes(), ReaderOptions::default());
    let got = by_line(r.by_ref().map(Result::unwrap).collect());
    assert_eq!(got[0], send(2, A));
    assert_eq!(got[1], send(5, B));
    let Record::Skip(s) = &got[2] else { panic!() };
    assert_eq!((s.line, s.text.as_str()), (6, &A[..63]));
    assert_eq!(s.reason.to_string(), "invalid token: token has 63 hex digits, expected 64");
    assert_eq!(got.len(), 3);
    assert_eq!(r.lines_read(), 6);
}

#[test]
fn the_common_line_is_told_by_its_break() {
    assert_eq!(token_line(format!("{A}\n{B}").as_bytes()), Some((tok(A), 65)));
    assert_eq!(token_line(format!("{A}\r\n").as_bytes()), Some((tok(A), 66)));
    assert_eq!(token_line(format!("{}\n", A.to_uppercase()).as_bytes()), Some((tok(A), 65)));
    for not in [A.to_owned(), format!("{A}\r"), format!("{A} \n"), format!("{}g\n", &A[..63])] {
        assert_eq!(token_line(not.as_bytes()), None, "{not:?}");
    }
    // A break at the 65th byte that ends a shorter second line: two lines.
    let two = format!("{}\n{}\n", &A[..10], &B[..53]);
    assert_eq!(two.as_bytes()[64], b'\n');
    assert_eq!(token_line(two.as_bytes()), None);
    let got = read(two.as_bytes());
    assert_eq!(got.iter().map(line_of).collect::<Vec<_>>(), [1, 2]);
    assert!(got.iter().all(|r| matches!(reason(r), SkipReason::BadToken(_))));
}

#[test]
fn a_last_line_without_newline_and_a_leading_bom_are_read() {
    let list = format!("\u{feff}{A}\n{B}");
    assert_eq!(read(list.as_bytes()), vec![send(1, A), send(2, B)]);
    assert_eq!(read(b""), vec![]);
}

#[test]
fn duplicates_skipped_unless_dedup_off() {
    let list = format!("{A}\n<{}>\n{B}\n{A}\n", A.to_uppercase());
    let got = read(list.as_bytes());
    assert_eq!(got[0], send(1, A));
    assert_eq!(got[2], send(3, B));
    for (r, line) in [(&got[1], 2), (&got[3], 4)] {
        let Record::Skip(s) = r else { panic!("expected a skip, got {r:?}") };
        // The text of a held duplicate is its token.
        assert_eq!((s.line, s.text.as_str(), &s.reason), (line, A, &SkipReason::Duplicate));
    }
    assert_eq!(reason(&got[3]).to_string(), "duplicate token");

    let off = ReaderOptions { dedup: false, ..ReaderOptions::default() };
    assert!(read_with(list.as_bytes(), off).iter().all(|r| matches!(r, Record::Send(_))));
}

#[test]
fn junk_lines_give_reasons() {
    let long = "x".repeat(MAX_LINE + 10);
    let mut list = b"user@example.com\n".to_vec();
    list.extend(b"caf\xe9\n");
    list.extend(long.as_bytes());
    list.extend(format!("\n{A}\n").as_bytes());
    let got = read(&list);
    assert_eq!(got.len(), 4);
    assert_eq!(reason(&got[0]).to_string(), "invalid token: invalid character 'u' at column 1");
    assert_eq!(reason(&got[1]), &SkipReason::NotUtf8);
    let Record::Skip(s) = &got[1] else { panic!() };
    assert_eq!(s.text, "caf\u{fffd}");
    assert_eq!(reason(&got[2]), &SkipReason::TooLong { limit: MAX_LINE });
    let Record::Skip(s) = &got[2] else { panic!() };
    assert_eq!(s.text.chars().count(), 101); // 100 + '…'
    assert_eq!(s.line, 3);
    assert_eq!(got[3], send(4, A));
}

#[test]
fn ndjson_lines_send_their_minified_payload_or_say_why_not() {
    let list = format!(
        concat!(
            "{{\"token\": \"{a}\", \"payload\": {{ \"aps\" : {{\"alert\": \"hi\"}}, \"x\": 1 }} }}\n",
            "  {{\"token\": \"<{b}>\"}}\n",
            "{{\"token\": \"{b}\", \"payload\": [1]}}\n",
            "{{\"token\": \"abc\"}}\n",
            "{{\"tokn\": \"{a}\"}}\n",
            "{{\"token\": \"{a}\"\n",
        ),
        a = A,
        b = B
    );
    let got = read(list.as_bytes());
    let Record::Send(e) = &got[0] else { panic!("{got:?}") };
    assert_eq!((e.line, e.token), (1, tok(A)));
    assert_eq!(e.payload(), Some(&br#"{"aps":{"alert":"hi"},"x":1}"#[..]));
    assert_eq!(got[1], send(2, B));
    assert_eq!(reason(&got[2]), &SkipReason::BadPayload(PayloadError::NotObject));
    assert_eq!(reason(&got[3]), &SkipReason::BadToken(TokenError::WrongLength { digits: 3 }));
    assert!(reason(&got[4]).to_string().starts_with("invalid JSON line: unknown field `tokn`"));
    assert!(matches!(reason(&got[5]), SkipReason::BadJson(_)));
    assert_eq!(got.len(), 6);
}

#[test]
fn an_ndjson_payload_over_the_limit_is_skipped() {
    let big = "x".repeat(40);
    let list = format!("{{\"token\": \"{A}\", \"payload\": {{\"a\": \"{big}\"}}}}\n");
    let opts = ReaderOptions { payload_limit: 32, ..ReaderOptions::default() };
    let got = read_with(list.as_bytes(), opts);
    assert_eq!(reason(&got[0]), &SkipReason::BadPayload(PayloadError::TooLarge { size: 48, limit: 32 }));
}

#[test]
fn partitions_parse_as_k_slash_n_and_refuse_the_rest() {
    assert_eq!("3/4".parse(), Ok(Partition { index: 3, count: 4 }));
    assert_eq!(" 0 / 1 ".parse(), Ok(Partition { index: 0, count: 1 }));
    assert_eq!("4/4".parse::<Partition>(), Err(PartitionError::IndexOutOfRange { index: 4, count: 4 }));
    assert_eq!("0/0".parse::<Partition>(), Err(PartitionError::ZeroCount));
    for bad in ["", "1", "1/", "/2", "-1/2", "a/b", "1/2/3"] {
        assert!(matches!(bad.parse::<Partition>(), Err(PartitionError::Syntax(_))), "{bad}");
    }
    assert_eq!("4/4".parse::<Partition>().unwrap_err().to_string(), "partition 4/4: K is 0-based and must be below 4");
    assert_eq!(Partition { index: 1, count: 8 }.to_string(), "1/8");
}

#[test]
fn partition_hash_is_fixed() {
    // FNV-1a 64 reference values: these must never change.
    assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
    assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
    assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    assert_eq!(Partition::of_token(&tok(A), 1), 0);
}

#[test]
fn partitions_split_the_list_exactly() {
    let mut list = String::new();
    for i in 0..200u32 {
        list.push_str(&format!("{:064x}\n", u128::from(i) * 0x1_0000_0001));
        if i % 10 == 0 {
            list.push_str(&format!("junk {i}\n{:064x}\n", u128::from(i) * 0x1_0000_0001));
        }
    }
    let raw = |options| TokenReader::new(list.as_bytes(), options).map(Result::unwrap).collect::<Vec<_>>();
    let all = raw(ReaderOptions::default());
    let n = 3;
    let mut merged = vec![];
    for k in 0..n {
        let part = raw(ReaderOptions { partition: Some(Partition::new(k, n).unwrap()), ..Default::default() });
        assert_eq!(part.len(), all.len(), "one record per line in every part");
        merged.extend(part);
    }
    assert_eq!(by_line(merged), by_line(all));
}

#[test]
fn io_error_ends_the_stream() {
    let mut r = TokenReader::new(io::BufReader::new(Failing), ReaderOptions::default());
    assert!(r.next().unwrap().is_err());
    assert!(r.next().is_none());
}

#[test]
fn skip_display_says_where() {
    let got = read(b"\n\nnope\n");
    let Record::Skip(s) = &got[0] else { panic!() };
    assert_eq!(s.to_string(), "line 3: invalid token: invalid character 'n' at column 1: \"nope\"");
}

#[test]
fn fingerprint_differs_for_one_word_changes() {
    let mut seen = std::collections::HashSet::new();
    let mut t = [0u8; TOKEN_LEN];
    for i in 0..10_000u64 {
        t[24..].copy_from_slice(&i.to_le_bytes());
        assert!(seen.insert(fingerprint(&t)));
    }
}

#[test]
fn find_newline_matches_position() {
    let mut s = [b'a'; 40];
    for len in 0..40 {
        for at in 0..len {
            s.fill(b'\n' + 1);
            s[at] = b'\n';
            s[(at + 3).min(len - 1)] = b'\n';
            assert_eq!(find_newline(&s[..len]), Some(at), "len {len} at {at}");
        }
        s.fill(0x8a);
        assert_eq!(find_newline(&s[..len]), None);
    }
}

#[test]
fn lines_split_across_buffer_refills_read_the_same() {
    let list = format!("{A}\r\n\n# c\n{B}\r\n{}\n{A}", "y".repeat(MAX_LINE + 1));
    for cap in [1, 7, 64, 65, 66, 1000] {
        let r = TokenReader::new(io::BufReader::with_capacity(cap, list.as_bytes()), ReaderOptions::default());
        let got = by_line(r.map(|r| r.unwrap()).collect());
        assert_eq!(got[0], send(1, A), "cap {cap}");
        assert_eq!(got[1], send(4, B), "cap {cap}");
        assert_eq!(reason(&got[2]), &SkipReason::TooLong { limit: MAX_LINE });
        assert_eq!(reason(&got[3]), &SkipReason::Duplicate);
        assert_eq!(got.len(), 4);
    }
}

#[test]
fn bad_payload_line_does_not_mark_token_seen() {
    let list = format!("{{\"token\": \"{A}\", \"payload\": 1}}\n{A}\n{A}\n");
    let got = read(list.as_bytes());
    assert!(matches!(reason(&got[0]), SkipReason::BadPayload(_)));
    assert_eq!(got[1], send(2, A));
    assert_eq!(reason(&got[2]), &SkipReason::Duplicate);
}

/// The filter flags nearly every token of a list far longer than it was sized
/// for; the exact check must still send each token once, from its first line.
#[test]
fn saturated_filter_still_exact() {
    let distinct = 100_000u64;
    let mut list = String::new();
    let mut first_line = std::collections::HashMap::new();
    let mut line = 0u64;
    for i in 0..distinct * 2 {
        // Every token once in order, then every third one again, mixed in.
        let t = if i % 2 == 0 { i / 2 } else { (i * 7919 / 2) % distinct / 3 * 3 };
        line += 1;
        list.push_str(&format!("{:064x}\n", u128::from(t) * 0x9e37_79b9_7f4a_7c15));
        first_line.entry(t).or_insert(line);
    }
    let options = ReaderOptions { expected_tokens: Some(1), ..ReaderOptions::default() };
    let mut reader = TokenReader::new(list.as_bytes(), options);
    let got = by_line(reader.by_ref().map(Result::unwrap).collect());
    assert_eq!(got.len() as u64, line);
    let sent: Vec<u64> = got.iter().filter(|r| matches!(r, Record::Send(_))).map(line_of).collect();
    let mut want: Vec<u64> = first_line.into_values().collect();
    want.sort_unstable();
    assert_eq!(sent, want);
    assert!(got.iter().all(|r| matches!(r, Record::Send(_)) || reason(r) == &SkipReason::Duplicate));
    assert_eq!(reader.unique_tokens(), distinct);
}

/// A record's line; 0 for another partition's.
fn line_of(r: &Record) -> u64 {
    match r {
        Record::Send(e) => e.line,
        Record::Skip(s) => s.line,
        Record::OtherPartition => 0,
    }
}

#[test]
fn stop_settles_held_lines_and_reads_no_more() {
    let list = format!("{A}\n{B}\n{A}\n{C}\n{D}\n");
    // One line per buffer fill, so each line's verdict is due before the next read.
    let mut r = TokenReader::new(io::BufReader::with_capacity(65, list.as_bytes()), ReaderOptions::default());
    assert_eq!(r.next().unwrap().unwrap(), send(1, A));
    assert_eq!(r.next().unwrap().unwrap(), send(2, B));
    // Line 3 is held; line 4 comes out first.
    assert_eq!(r.next().unwrap().unwrap(), send(4, C));
    r.stop();
    let Record::Skip(s) = r.next().unwrap().unwrap() else { panic!("expected the held duplicate") };
    assert_eq!((s.line, s.reason), (3, SkipReason::Duplicate));
    assert!(r.next().is_none(), "line 5 is not read after stop");
}

#[test]
fn held_lines_come_before_a_read_error() {
    let list = format!("{A}\n{A}\n");
    let failing = io::Read::chain(list.as_bytes(), Failing);
    let mut r = TokenReader::new(io::BufReader::new(failing), ReaderOptions::default());
    assert_eq!(r.next().unwrap().unwrap(), send(1, A));
    assert_eq!(reason(&r.next().unwrap().unwrap()), &SkipReason::Duplicate);
    assert!(r.next().unwrap().is_err());
    assert!(r.next().is_none());
}

struct Failing;
impl io::Read for Failing {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::Error::other("disk gone"))
    }
}
