//! Duplicate detection in memory that does not grow with the list.
//!
//! An exact set of the tokens seen costs at least 5 bytes per token however
//! it is packed, so 10M tokens would need more memory than the whole sender
//! may use. Instead, each token's 64-bit fingerprint goes through two stages:
//!
//! 1. A blocked Bloom filter of fixed size (a 32-byte block per token, one
//!    bit in each of its eight words; at most [`MAX_FILTER_BYTES`]) answers
//!    "certainly new" or "maybe seen" with one memory access, fetched
//!    [`LOOKAHEAD`] lines ahead. A new token is marked in the filter, its
//!    fingerprint is appended to a spool (a temporary file, 8 bytes per
//!    token, read back only sequentially), and it is sent at once.
//! 2. A "maybe seen" token is held back. When [`HOLD_MAX`] are held, or the
//!    list ends, the held batch is checked exactly: one sequential pass over
//!    the spool finds which were really sent before. The rest are the
//!    filter's false positives (0.02% of new tokens at 16 bits per token,
//!    measured in the tests; more once a list outgrows the filter's ceiling):
//!    they are sent after all, in line order, and join the spool.
//!
//! So a duplicate's verdict, and a rare false positive's send, come later
//! than their line; everything else is decided as it is read. Memory: the
//! filter plus at most [`HOLD_MAX`] held entries. Two different tokens share
//! a fingerprint with probability ≈ n²/2⁶⁵ (≈ 3·10⁻⁶ for 10M tokens); the
//! later one would then be skipped as a duplicate.

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

use super::partition::{PassThrough, fingerprint};
use super::{Entry, LineExtras};
use crate::token::DeviceToken;

mod filter;
mod spool;

use filter::{Block, Blocks, prefetch};
use spool::Spool;

/// Tokens whose filter block is being fetched from memory before it is
/// read: a block is a cache miss in a filter of megabytes, so the next few
/// lines are parsed while it arrives. A power of two (a ring's size).
const LOOKAHEAD: usize = 16;
/// Held "maybe seen" tokens that trigger an exact check of the batch.
const HOLD_MAX: usize = 1 << 16;
/// Bits of the bitmap that screens the spool during an exact check (128 KiB,
/// 16 bits per held token at most).
const SCAN_BITMAP_BITS: usize = 1 << 20;
/// The filter's ceiling: 16 MiB, 16 bits per token up to about 8M tokens.
/// Longer lists share it: more "maybe seen" lines to check exactly, the
/// same verdicts.
pub const MAX_FILTER_BYTES: usize = 16 << 20;
/// The filter's floor, for short lists.
const MIN_FILTER_BYTES: usize = 4 << 10;
/// Filter bits per expected token (about 0.02% false positives).
const BITS_PER_TOKEN: u64 = 16;

/// The verdicts on a held batch, in line order.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Resolved {
    /// A false alarm of the filter: send it.
    Send(Entry),
    /// Sent from an earlier line.
    Duplicate(Entry),
}

/// The two-stage duplicate check.
#[derive(Debug)]
pub(super) struct Dedup {
    filter: Blocks,
    /// Checked in arrival order, [`LOOKAHEAD`] lines after arrival.
    pending: Lookahead,
    spool: Spool,
    held: Vec<(u64, Entry)>,
    unique: u64,
    /// The CPU has AVX2 (see [`Block::mark`]).
    #[cfg(target_arch = "x86_64")]
    avx2: bool,
}

impl Dedup {
    /// A check sized for about `expected` distinct tokens (`None`: unknown,
    /// the largest filter).
    pub(super) fn new(expected: Option<u64>) -> Dedup {
        let bytes = expected.map_or(MAX_FILTER_BYTES, |n| {
            let want = n.saturating_mul(BITS_PER_TOKEN / 8).min(MAX_FILTER_BYTES as u64) as usize;
            want.next_power_of_two().clamp(MIN_FILTER_BYTES, MAX_FILTER_BYTES)
        });
        Dedup::with(bytes / std::mem::size_of::<Block>(), Spool::new())
    }

    fn with(blocks: usize, spool: Spool) -> Dedup {
        Dedup {
            filter: Blocks::zeroed(blocks),
            pending: Lookahead::new(),
            spool,
            held: Vec::new(),
            unique: 0,
            #[cfg(target_arch = "x86_64")]
            avx2: std::arch::is_x86_feature_detected!("avx2"),
        }
    }

    /// Queues a token for the check and checks the one queued [`LOOKAHEAD`]
    /// calls ago: returns that one if it is new (send it now), else holds it
    /// for [`Dedup::resolve`]. [`Dedup::drain`] checks the rest.
    pub(super) fn check(&mut self, line: u64, token: DeviceToken, extras: Option<Arc<LineExtras>>) -> Option<Entry> {
        let fp = fingerprint(token.as_bytes());
        prefetch(&self.filter[self.block_of(fp)]);
        let (fp, entry) = self.pending.push(fp, line, token, extras)?;
        self.settle(fp, entry)
    }

    /// Checks every queued entry; yields the new ones, in order.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = Entry> + '_ {
        std::iter::from_fn(|| {
            loop {
                let (fp, entry) = self.pending.pop()?;
                if let Some(entry) = self.settle(fp, entry) {
                    return Some(entry);
                }
            }
        })
    }

    fn settle(&mut self, fp: u64, entry: Entry) -> Option<Entry> {
        if self.mark(fp) {
            self.held.push((fp, entry));
            return None;
        }
        self.unique += 1;
        self.spool.push(fp);
        Some(entry)
    }

    /// The block of `fp`: from its high half (a power-of-two count of blocks).
    fn block_of(&self, fp: u64) -> usize {
        ((fp >> 32) as usize) & (self.filter.len() - 1)
    }

    /// Sets `fp`'s bits; whether they were all set already ("maybe seen").
    fn mark(&mut self, fp: u64) -> bool {
        // The bits come from the low half, the block from the high half.
        let index = self.block_of(fp);
        let block = &mut self.filter[index];
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: the CPU has AVX2 (checked when the filter was made).
            return unsafe { block.mark_avx2(fp as u32) };
        }
        block.mark(fp as u32)
    }

    /// Whether a batch is due for the exact check.
    pub(super) fn full(&self) -> bool {
        self.held.len() >= HOLD_MAX
    }

    /// Whether any token is held.
    pub(super) fn holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// Distinct tokens passed so far.
    pub(super) fn unique(&self) -> u64 {
        self.unique
    }

    /// The exact check of the held batch: each held token is a duplicate if
    /// the spool or an earlier held line has it, else it is sent now. The
    /// verdicts go to `out` in line order. Entries still queued are not part
    /// of it (they come from later lines).
    pub(super) fn resolve(&mut self, mut out: impl FnMut(Resolved)) {
        let held = std::mem::take(&mut self.held);
        // First held line of each fingerprint; later ones are duplicates of it.
        let mut first: HashMap<u64, usize, BuildHasherDefault<PassThrough>> =
            HashMap::with_capacity_and_hasher(held.len(), BuildHasherDefault::default());
        let mut duplicate = vec![false; held.len()];
        for (i, (fp, _)) in held.iter().enumerate() {
            match first.entry(*fp) {
                Slot::Occupied(_) => duplicate[i] = true,
                Slot::Vacant(v) => {
                    v.insert(i);
                }
            }
        }
        // A bitmap of the held fingerprints' low bits, small enough for the
        // cache, turns away most of the spool before the map is asked.
        let mut bitmap = vec![0u64; SCAN_BITMAP_BITS / 64];
        for fp in first.keys() {
            let bit = *fp as usize % SCAN_BITMAP_BITS;
            bitmap[bit / 64] |= 1 << (bit % 64);
        }
        self.spool.scan(|fp| {
            let bit = fp as usize % SCAN_BITMAP_BITS;
            if bitmap[bit / 64] & (1 << (bit % 64)) != 0
                && let Some(&i) = first.get(&fp)
            {
                duplicate[i] = true;
            }
        });
        for ((fp, entry), duplicate) in held.into_iter().zip(duplicate) {
            out(if duplicate {
                Resolved::Duplicate(entry)
            } else {
                self.unique += 1;
                self.spool.push(fp);
                Resolved::Send(entry)
            });
        }
    }
}

/// A token waiting in [`Lookahead`], with its fingerprint.
#[derive(Debug)]
struct Queued {
    fp: u64,
    entry: Entry,
}

impl Queued {
    /// Moves the entry out field by field (see [`Lookahead`]).
    fn take(&mut self) -> (u64, Entry) {
        let e = &mut self.entry;
        (self.fp, Entry { line: e.line, token: e.token, extras: e.extras.take() })
    }

    /// Writes a new token in field by field.
    fn put(&mut self, fp: u64, line: u64, token: DeviceToken, extras: Option<Arc<LineExtras>>) {
        self.fp = fp;
        self.entry.line = line;
        self.entry.token = token;
        self.entry.extras = extras;
    }
}

/// The tokens whose filter blocks are on their way, oldest first: a ring of
/// [`LOOKAHEAD`] slots written field by field. An entry moved whole through a
/// queue right after it was built makes the CPU reload it before its stores
/// have landed (a store-forwarding stall), which slots written and read
/// field by field avoid.
#[derive(Debug)]
struct Lookahead {
    slots: Box<[Queued; LOOKAHEAD]>,
    /// The oldest slot.
    head: usize,
    len: usize,
}

impl Lookahead {
    fn new() -> Lookahead {
        let empty = || Queued { fp: 0, entry: Entry { line: 0, token: DeviceToken([0; 32]), extras: None } };
        Lookahead { slots: Box::new(std::array::from_fn(|_| empty())), head: 0, len: 0 }
    }

    /// Queues a token; once the ring is full, returns the oldest (fingerprint,
    /// entry), whose slot the new token takes.
    fn push(
        &mut self,
        fp: u64,
        line: u64,
        token: DeviceToken,
        extras: Option<Arc<LineExtras>>,
    ) -> Option<(u64, Entry)> {
        if self.len < LOOKAHEAD {
            self.slots[(self.head + self.len) % LOOKAHEAD].put(fp, line, token, extras);
            self.len += 1;
            return None;
        }
        let slot = &mut self.slots[self.head];
        self.head = (self.head + 1) % LOOKAHEAD;
        let old = slot.take();
        slot.put(fp, line, token, extras);
        Some(old)
    }

    /// Takes the oldest.
    fn pop(&mut self) -> Option<(u64, Entry)> {
        if self.len == 0 {
            return None;
        }
        let slot = &mut self.slots[self.head];
        self.head = (self.head + 1) % LOOKAHEAD;
        self.len -= 1;
        Some(slot.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(line: u64, n: u64) -> Entry {
        let mut token = [0u8; 32];
        token[..8].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
        token[8..16].copy_from_slice(&n.to_le_bytes());
        Entry { line, token: DeviceToken(token), extras: None }
    }

    fn check(dedup: &mut Dedup, e: Entry) -> Option<Entry> {
        dedup.check(e.line, e.token, e.extras)
    }

    /// The figure the docs quote: 16 bits per token, about 0.02% false alarms.
    #[test]
    fn false_alarms_stay_under_three_in_ten_thousand_at_sixteen_bits_per_token() {
        let n = 1_000_000;
        let mut dedup = Dedup::new(Some(n));
        let passed = (0..n).filter_map(|i| check(&mut dedup, entry(i + 1, i))).count() + dedup.drain().count();
        let held = n as usize - passed;
        assert!(held < 300, "{held} of {n} new tokens flagged");
        assert_eq!(dedup.filter.len() * 32, 2 << 20, "16 bits per token, rounded up to a power of two");
    }

    #[test]
    fn memory_spool_gives_the_same_verdicts() {
        for spool in [Spool::new(), Spool::Memory(Vec::new())] {
            let mut dedup = Dedup::with(1, spool);
            let mut kept: Vec<u64> =
                (0..300).filter_map(|i| check(&mut dedup, entry(i + 1, i % 200))).map(|e| e.line).collect();
            kept.extend(dedup.drain().map(|e| e.line));
            let mut resolved = Vec::new();
            dedup.resolve(|r| resolved.push(r));
            let sent = kept.len() + resolved.iter().filter(|r| matches!(r, Resolved::Send(_))).count();
            assert_eq!(sent, 200);
            assert_eq!(resolved.len() + kept.len(), 300);
            assert!(resolved.iter().all(|r| match r {
                Resolved::Send(e) => e.line <= 200,
                Resolved::Duplicate(e) => e.line > 200,
            }));
            assert_eq!(dedup.unique(), 200);
        }
    }

    #[test]
    fn the_lookahead_keeps_arrival_order() {
        let mut ring = Lookahead::new();
        let mut push = |n: u64| {
            let e = entry(n, n);
            ring.push(n, e.line, e.token, e.extras)
        };
        let mut out: Vec<(u64, u64)> = (1..=40).filter_map(&mut push).map(|(fp, e)| (fp, e.line)).collect();
        assert_eq!(out.len(), 40 - LOOKAHEAD, "each push past a full ring returns the oldest");
        out.extend(std::iter::from_fn(|| ring.pop()).map(|(fp, e)| (fp, e.line)));
        assert_eq!(out, (1..=40).map(|n| (n, n)).collect::<Vec<_>>());
        assert!(ring.pop().is_none());
    }
}
