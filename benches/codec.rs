//! Codec throughput, one core, no sockets: frame encoding (commands 1 and 2,
//! field by field and from a template),
//! token-list parsing, error-response and feedback decoding.
//!
//! `cargo bench --bench codec -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use apnsblast::feedback::{FeedbackDecoder, FeedbackTuple};
use apnsblast::frame::{Command, ErrorResponse, Notification, Priority, Template};
use apnsblast::input::{ReaderOptions, Record, TokenReader};
use apnsblast::payload;
use apnsblast::token::DeviceToken;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// Frames per iteration: enough to amortise the loop, small enough to stay
/// in cache (1,000 × ~160 bytes).
const BATCH: usize = 1000;

/// Lines in the token-list benchmark: a million, so the duplicate filter is
/// as big as in a real run (2 MiB, more than one core's L2 cache).
const LIST_LINES: usize = 1_000_000;

fn token(i: u64) -> DeviceToken {
    let mut t = [0u8; 32];
    for (k, chunk) in t.chunks_exact_mut(8).enumerate() {
        let v = (i + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(k as u32 * 16);
        chunk.copy_from_slice(&v.to_le_bytes());
    }
    DeviceToken(t)
}

fn bench_encode(c: &mut Criterion) {
    let payload =
        payload::alert_payload("Your order #12345 has shipped and will arrive tomorrow", Some(1), Some("default"));
    let tokens: Vec<DeviceToken> = (0..BATCH as u64).map(token).collect();
    for cmd in [Command::Items, Command::Enhanced] {
        let frame_len = cmd.frame_len(payload.len());
        let mut g = c.benchmark_group(format!("encode/command-{}", cmd.code()));
        let mut out = Vec::with_capacity(BATCH * frame_len);
        g.throughput(Throughput::Elements(BATCH as u64));
        let mut encode_all = |b: &mut criterion::Bencher<'_>| {
            b.iter(|| {
                out.clear();
                for (i, t) in tokens.iter().enumerate() {
                    let n = Notification {
                        token: t,
                        payload: &payload,
                        id: i as u32,
                        expiry: 0,
                        priority: Priority::Immediate,
                    };
                    cmd.encode(&n, &mut out);
                }
                black_box(&out);
            })
        };
        g.bench_function(format!("frames ({}-byte payload)", payload.len()), &mut encode_all);
        g.throughput(Throughput::Bytes((BATCH * frame_len) as u64));
        g.bench_function("bytes", &mut encode_all);
        // What a shard does for items with the run's payload.
        let template = Template::new(cmd, &payload, 0, Priority::Immediate);
        let mut out = Vec::with_capacity(BATCH * frame_len);
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_function("frames from a template", |b| {
            b.iter(|| {
                out.clear();
                for (i, t) in tokens.iter().enumerate() {
                    template.encode(t, i as u32, &mut out);
                }
                black_box(&out);
            })
        });
        g.finish();
    }
}

fn bench_token_list(c: &mut Criterion) {
    let mut list = String::with_capacity(LIST_LINES * 65);
    for i in 0..LIST_LINES as u64 {
        list.push_str(&token(i).to_string());
        list.push('\n');
    }
    let mut g = c.benchmark_group("input/token-list");
    g.throughput(Throughput::Elements(LIST_LINES as u64)).sample_size(20);
    for (name, dedup) in [("hex lines, dedup", true), ("hex lines, no dedup", false)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                // Sized from the list's length, as `send` does for a file.
                let options =
                    ReaderOptions { dedup, expected_tokens: Some(LIST_LINES as u64), ..ReaderOptions::default() };
                let sent =
                    TokenReader::new(list.as_bytes(), options).filter(|r| matches!(r, Ok(Record::Send(_)))).count();
                assert_eq!(sent, LIST_LINES);
            })
        });
    }
    g.finish();
}

fn bench_decode(c: &mut Criterion) {
    let responses: Vec<[u8; 6]> =
        (0..BATCH as u32).map(|i| [8, (i % 9) as u8, 0, 0, (i >> 8) as u8, i as u8]).collect();
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("error-response", |b| {
        b.iter(|| {
            let mut sum = 0u64;
            for r in &responses {
                let e = ErrorResponse::decode(black_box(r)).unwrap().unwrap();
                sum += u64::from(e.id) + u64::from(e.status.code());
            }
            sum
        })
    });
    let mut feedback = Vec::new();
    for i in 0..BATCH as u64 {
        FeedbackTuple { time: i as u32, token: token(i) }.encode(&mut feedback);
    }
    g.bench_function("feedback-tuples", |b| {
        b.iter(|| {
            let mut d = FeedbackDecoder::new();
            d.push(black_box(&feedback));
            let mut n = 0;
            while let Some(t) = d.next_tuple().unwrap() {
                n += t.time as usize;
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, bench_encode, bench_token_list, bench_decode);
criterion_main!(benches);
