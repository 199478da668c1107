//! Property tests for the pure codecs: frames round-trip through an
//! independent decoder written here from Apple's documented binary layouts, decoders never panic on
//! arbitrary input, token text round-trips, partitions split lists exactly.
//!
//! 256 cases per property by default; set `PROPTEST_CASES` to run more.

use std::collections::HashMap;

use apnsblast::feedback::{FeedbackDecoder, FeedbackTuple};
use apnsblast::frame::{Command, ErrorResponse, Notification, Priority, Status};
use apnsblast::input::{Partition, ReaderOptions, Record, TokenReader};
use apnsblast::payload;
use apnsblast::token::DeviceToken;
use proptest::prelude::*;

/// A frame as read back by the test's own decoder.
#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    command: u8,
    id: Option<u32>,
    expiry: Option<u32>,
    token: Vec<u8>,
    payload: Vec<u8>,
    priority: Option<u8>,
}

/// A cursor over big-endian fields; `None` when the input runs out.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn sized(&mut self) -> Option<Vec<u8>> {
        let n = self.u16()?;
        self.take(usize::from(n)).map(<[u8]>::to_vec)
    }
}

/// Decodes one provider frame (command 0, 1 or 2) from the start of `buf`;
/// returns it with the number of bytes it took.
fn decode_frame(buf: &[u8]) -> Option<(Decoded, usize)> {
    let mut c = Cur(buf);
    let command = c.u8()?;
    let mut d = Decoded { command, id: None, expiry: None, token: vec![], payload: vec![], priority: None };
    match command {
        0 => {
            d.token = c.sized()?;
            d.payload = c.sized()?;
        }
        1 => {
            d.id = Some(c.u32()?);
            d.expiry = Some(c.u32()?);
            d.token = c.sized()?;
            d.payload = c.sized()?;
        }
        2 => {
            let len = c.u32()? as usize;
            let mut items = Cur(c.take(len)?);
            while !items.0.is_empty() {
                let kind = items.u8()?;
                let data = items.sized()?;
                let word = || Some(u32::from_be_bytes(data.as_slice().try_into().ok()?));
                match kind {
                    1 => d.token = data.clone(),
                    2 => d.payload = data.clone(),
                    3 => d.id = Some(word()?),
                    4 => d.expiry = Some(word()?),
                    5 if data.len() == 1 => d.priority = Some(data[0]),
                    _ => return None,
                }
            }
        }
        _ => return None,
    }
    Some((d, buf.len() - c.0.len()))
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![Just(Command::Simple), Just(Command::Enhanced), Just(Command::Items)]
}

fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![Just(Priority::Immediate), Just(Priority::PowerSaving)]
}

fn token() -> impl Strategy<Value = DeviceToken> {
    any::<[u8; 32]>().prop_map(DeviceToken)
}

/// token, payload, id, expiry, priority
type Parts = (DeviceToken, Vec<u8>, u32, u32, Priority);

fn parts(max_payload: usize) -> impl Strategy<Value = Parts> {
    (token(), prop::collection::vec(any::<u8>(), 0..max_payload), any::<u32>(), any::<u32>(), priority())
}

fn note(p: &Parts) -> Notification<'_> {
    Notification { token: &p.0, payload: &p.1, id: p.2, expiry: p.3, priority: p.4 }
}

fn expected(cmd: Command, p: &Parts) -> Decoded {
    let (with_id, with_prio) = match cmd {
        Command::Simple => (false, false),
        Command::Enhanced => (true, false),
        Command::Items => (true, true),
    };
    Decoded {
        command: cmd.code(),
        id: with_id.then_some(p.2),
        expiry: with_id.then_some(p.3),
        token: p.0.0.to_vec(),
        payload: p.1.clone(),
        priority: with_prio.then_some(p.4.code()),
    }
}

proptest! {
    #[test]
    fn frame_round_trips(cmd in command(), p in parts(2048), prefix in prop::collection::vec(any::<u8>(), 0..8)) {
        let mut out = prefix.clone();
        cmd.encode(&note(&p), &mut out);
        prop_assert_eq!(&out[..prefix.len()], &prefix[..]);
        let frame = &out[prefix.len()..];
        prop_assert_eq!(frame.len(), cmd.frame_len(p.1.len()));
        let (d, used) = decode_frame(frame).expect("decodes");
        prop_assert_eq!(used, frame.len());
        prop_assert_eq!(d, expected(cmd, &p));
    }

    #[test]
    fn frames_concatenate(cmd in command(), ps in prop::collection::vec(parts(300), 0..8)) {
        let mut all = Vec::new();
        let mut concat = Vec::new();
        for p in &ps {
            cmd.encode(&note(p), &mut all);
            let mut one = Vec::new();
            cmd.encode(&note(p), &mut one);
            concat.extend(one);
        }
        prop_assert_eq!(&all, &concat);
        let mut rest = &all[..];
        for p in &ps {
            let (d, used) = decode_frame(rest).expect("decodes");
            prop_assert_eq!(d, expected(cmd, p));
            rest = &rest[used..];
        }
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn error_response_decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..16)) {
        match ErrorResponse::decode(&bytes) {
            Ok(Some(r)) => {
                prop_assert!(bytes.len() >= 6 && bytes[0] == 8);
                prop_assert_eq!(r.status, Status::from_code(bytes[1]));
                prop_assert_eq!(r.to_bytes(), <[u8; 6]>::try_from(&bytes[..6]).unwrap());
            }
            Ok(None) => prop_assert!(bytes.len() < 6 && bytes.first().is_none_or(|&b| b == 8)),
            Err(_) => prop_assert!(bytes[0] != 8),
        }
    }

    #[test]
    fn feedback_decoder_never_panics(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..80), 0..6)) {
        let mut d = FeedbackDecoder::new();
        for c in &chunks {
            d.push(c);
            while let Ok(Some(_)) = d.next_tuple() {}
        }
        let _ = d.finish();
    }

    #[test]
    fn feedback_round_trips_in_any_pieces(
        tuples in prop::collection::vec((any::<u32>(), token()), 0..8),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
    ) {
        let tuples: Vec<FeedbackTuple> = tuples.into_iter().map(|(time, token)| FeedbackTuple { time, token }).collect();
        let mut bytes = Vec::new();
        for t in &tuples {
            t.encode(&mut bytes);
        }
        let mut cuts: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        cuts.push(bytes.len());
        cuts.sort_unstable();
        let (mut d, mut got, mut from) = (FeedbackDecoder::new(), Vec::new(), 0);
        for to in cuts {
            d.push(&bytes[from..to]);
            from = to;
            while let Some(t) = d.next_tuple().unwrap() {
                got.push(t);
            }
        }
        prop_assert_eq!(got, tuples);
        prop_assert!(d.finish().is_ok());
    }

    #[test]
    fn token_parse_never_panics(s in ".{0,80}", hexish in "[0-9a-fA-F <>\t]{0,80}") {
        let _ = DeviceToken::parse(&s);
        let _ = DeviceToken::parse(&hexish);
    }

    #[test]
    fn token_display_parse_round_trips(
        t in token(),
        upper: bool,
        angles: bool,
        groups in prop::sample::select(vec![0usize, 2, 4, 8, 16]),
        sep in "[ \t]{1,3}",
        pad in "[ \t]{0,2}",
    ) {
        let mut hex = t.to_string();
        prop_assert_eq!(DeviceToken::parse(&hex), Ok(t));
        if upper {
            hex = hex.to_uppercase();
        }
        if groups > 0 {
            let parts: Vec<&str> = (0..64).step_by(groups).map(|i| &hex[i..i + groups]).collect();
            hex = parts.join(&sep);
        }
        if angles {
            hex = format!("<{hex}>");
        }
        let decorated = format!("{pad}{hex}{pad}");
        prop_assert_eq!(DeviceToken::parse(&decorated), Ok(t));
    }

    #[test]
    fn token_reader_never_panics(lines in prop::collection::vec(line(), 0..20), crlf: bool) {
        let eol: &[u8] = if crlf { b"\r\n" } else { b"\n" };
        let input = lines.join(eol);
        let mut reader = TokenReader::new(&input[..], ReaderOptions::default());
        for r in reader.by_ref() {
            r.unwrap();
        }
        let breaks = input.iter().filter(|&&b| b == b'\n').count();
        let physical = breaks + usize::from(!input.is_empty() && !input.ends_with(b"\n"));
        prop_assert_eq!(reader.lines_read(), physical as u64);
    }

    /// Duplicate detection is exact: a token is sent from its first line and
    /// skipped on every later one, with the default filter and the smallest.
    /// (A filter that flags nearly every token: `saturated_filter_still_exact`.)
    #[test]
    fn dedup_matches_a_set(picks in prop::collection::vec(0usize..40, 0..300), tiny: bool) {
        let pool: Vec<String> = (0..40u64).map(|i| format!("{:064x}", u128::from(i) * 0x9e37_79b9_7f4a_7c15)).collect();
        let text: String = picks.iter().map(|&i| format!("{}\n", pool[i])).collect();
        let options = ReaderOptions { expected_tokens: tiny.then_some(1), ..ReaderOptions::default() };
        let mut got: Vec<(u64, bool)> = TokenReader::new(text.as_bytes(), options)
            .map(|r| match r.unwrap() {
                Record::Send(e) => (e.line, true),
                Record::Skip(s) => (s.line, false),
                Record::OtherPartition => unreachable!("no partitions"),
            })
            .collect();
        got.sort_unstable();
        let mut seen = std::collections::HashSet::new();
        let want: Vec<(u64, bool)> = picks.iter().enumerate().map(|(k, i)| (k as u64 + 1, seen.insert(i))).collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn validate_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300), text in "\\PC{0,120}") {
        let _ = payload::validate(&bytes, 256);
        let _ = payload::validate(text.as_bytes(), 256);
    }

    #[test]
    fn validate_minifies_like_serde(obj in prop::collection::btree_map("\\PC{0,8}", json_leaf(), 0..6)) {
        let value = serde_json::Value::Object(obj.into_iter().collect());
        let pretty = serde_json::to_vec_pretty(&value).unwrap();
        let compact = serde_json::to_vec(&value).unwrap();
        prop_assert_eq!(payload::validate(&pretty, 4096), Ok(compact));
    }

    #[test]
    fn exactly_one_partition_claims_each_token(t in token(), n in 1u32..16) {
        let owners = (0..n).filter(|&k| Partition::new(k, n).unwrap().claims_token(&t)).count();
        prop_assert_eq!(owners, 1);
        prop_assert_eq!(Partition::of_token(&t, n), (0..n).find(|&k| Partition { index: k, count: n }.claims_token(&t)).unwrap());
    }

    #[test]
    fn partitions_yield_every_token_once(
        tokens in prop::collection::vec(token(), 1..40),
        repeats in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
        junk in prop::collection::vec("[g-z@.]{1,12}", 0..5),
        n in 1u32..6,
    ) {
        let mut lines: Vec<String> = tokens.iter().map(|t| t.to_string()).collect();
        lines.extend(repeats.iter().map(|i| format!("<{}>", i.get(&tokens).to_string().to_uppercase())));
        lines.extend(junk.iter().cloned());
        let list = lines.join("\n");
        let mut sent: HashMap<DeviceToken, usize> = HashMap::new();
        let mut skipped = 0;
        for k in 0..n {
            let options = ReaderOptions { partition: Some(Partition::new(k, n).unwrap()), ..ReaderOptions::default() };
            for r in TokenReader::new(list.as_bytes(), options) {
                match r.unwrap() {
                    Record::Send(e) => *sent.entry(e.token).or_default() += 1,
                    Record::Skip(_) => skipped += 1,
                    Record::OtherPartition => {}
                }
            }
        }
        let unique: std::collections::HashSet<_> = tokens.iter().copied().collect();
        prop_assert_eq!(sent.len(), unique.len());
        prop_assert!(sent.values().all(|&c| c == 1));
        // Every line is claimed exactly once: sent + skipped = all lines.
        prop_assert_eq!(unique.len() + skipped, lines.len());
    }
}

/// Arbitrary bytes, or something close to a real line.
fn line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..100),
        token().prop_map(|t| t.to_string().into_bytes()),
        "\\{\"token\": \"[0-9a-f]{64}\"(, \"payload\": \\{\"aps\": \\{\\}\\})?\\}".prop_map(String::into_bytes),
        "[# ]?[0-9a-fA-F<> {]{0,70}".prop_map(String::into_bytes),
    ]
}

fn json_leaf() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        any::<i64>().prop_map(serde_json::Value::from),
        any::<bool>().prop_map(serde_json::Value::from),
        "\\PC{0,20}".prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
    ]
}
