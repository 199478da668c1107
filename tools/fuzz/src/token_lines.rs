//! `TokenReader` over the input as a token list, with deduplication on and
//! off, through small and large read buffers, and split into partitions:
//! never panics; every line number is in range and has at most one record
//! (records may come out of line order: duplicate checks hold some back);
//! tokens re-parse from their Display form; the partitions of a list are
//! exactly the list.
//!
//! The first byte is configuration, the rest is the list. When its top five bits are
//! all set, one long line (MAX_LINE - 3 .. MAX_LINE + 4 bytes) is spliced in, so
//! the too-long path and its '\r' edge are reached despite small inputs.

use std::collections::BTreeMap;
use std::io::BufReader;

use apnsblast::input::{MAX_LINE, Partition, ReaderOptions, Record, TokenReader};
use apnsblast::token::DeviceToken;

/// Every record with its line (0 for `OtherPartition`), and the lines read.
/// The records with a line (sends and skips) by line, the count of records
/// of other partitions, and the physical lines read.
fn read(list: &[u8], options: ReaderOptions, capacity: usize) -> (BTreeMap<u64, Record>, usize, u64) {
    let mut reader = TokenReader::new(BufReader::with_capacity(capacity, list), options);
    let (mut by_line, mut others) = (BTreeMap::new(), 0);
    for r in reader.by_ref() {
        let record = r.expect("a slice cannot fail to read");
        let line = match &record {
            Record::Send(e) => {
                let text = e.token.to_string();
                assert_eq!(DeviceToken::parse(&text), Ok(e.token), "{text}");
                if let Some(p) = e.payload() {
                    assert!(p.len() <= 2048);
                    serde_json::from_slice::<serde_json::Value>(p).expect("payload is JSON");
                }
                e.line
            }
            Record::Skip(s) => {
                assert!(s.text.chars().count() <= 101, "skip text is cut");
                let _ = s.to_string();
                s.line
            }
            Record::OtherPartition => {
                others += 1;
                continue;
            }
        };
        assert!(by_line.insert(line, record).is_none(), "two records for line {line}");
    }
    (by_line, others, reader.lines_read())
}

pub fn check(data: &[u8]) {
    let Some((&config, rest)) = data.split_first() else {
        return;
    };
    let mut list = rest.to_vec();
    if config & 0xF8 == 0xF8 && !list.is_empty() {
        // Long line: filler byte, length and position from the list itself.
        let at = usize::from(list[0]) % list.len();
        let fill = match list[list.len() - 1] {
            b'\n' => b'a',
            b => b,
        };
        let len = MAX_LINE - 3 + usize::from(config & 7);
        list.splice(at..at, std::iter::repeat_n(fill, len));
    }
    // Byte-sized reads of a 64 KiB line are too slow to fuzz with; long
    // lines get the two larger buffers.
    let long = list.len() > MAX_LINE;
    let capacity = [1, 3, 64, 8192][usize::from(config >> 3) & 3 | if long { 2 } else { 0 }];
    let physical =
        list.iter().filter(|&&b| b == b'\n').count() as u64 + u64::from(list.last().is_some_and(|&b| b != b'\n'));

    // Sized from the input, as `send` sizes it from a file: an unsized filter is
    // 16 MiB, which under the address sanitizer costs more than the input.
    let expected_tokens = Some(list.len() as u64 / 65 + 1);
    let options = |dedup, partition| ReaderOptions { dedup, partition, expected_tokens, ..ReaderOptions::default() };
    let (all, _, lines) = read(&list, options(true, None), capacity);
    assert_eq!(lines, physical);
    assert!(all.keys().all(|l| (1..=physical).contains(l)));
    if capacity != 8192 && !long {
        assert_eq!(read(&list, options(true, None), 8192).0, all);
    }

    let (no_dedup, _, lines) =
        if long { (all.clone(), 0, physical) } else { read(&list, options(false, None), capacity) };
    assert_eq!(lines, physical);
    assert!(no_dedup.keys().eq(all.keys()), "dedup changes only the verdict");
    for (line, r) in &all {
        if let Record::Send(_) = r {
            assert_eq!(Some(r), no_dedup.get(line), "a line sent with dedup is sent without");
        }
    }

    let count = 1 + u32::from(config & if long { 1 } else { 3 });
    let mut merged = BTreeMap::new();
    for index in 0..count {
        let part = Partition::new(index, count).expect("index below count");
        let (recs, others, lines) = read(&list, options(true, Some(part)), capacity);
        assert_eq!(lines, physical);
        assert_eq!(recs.len() + others, all.len(), "one record per non-blank line in every part");
        for (line, r) in recs {
            assert!(merged.insert(line, r).is_none(), "line {line} claimed by two partitions");
        }
    }
    assert_eq!(merged, all, "the partitions together are the list");
}
