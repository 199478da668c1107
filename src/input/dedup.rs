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

use std::alloc::{self, Layout};
use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::fs::File;
use std::hash::BuildHasherDefault;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;
use std::sync::Arc;

use super::Entry;
use super::partition::{PassThrough, fingerprint};
use crate::token::DeviceToken;

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
const MAX_FILTER_BYTES: usize = 16 << 20;
/// The filter's floor, for short lists.
const MIN_FILTER_BYTES: usize = 4 << 10;
/// Filter bits per expected token (about 0.02% false positives).
const BITS_PER_TOKEN: u64 = 16;

/// One filter block: a token sets one bit in each word. Aligned so that it
/// never straddles two cache lines (one memory access per token).
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(32))]
struct Block([u32; 8]);

impl Block {
    /// Sets one bit in each word, picked by `bits`; whether all eight were
    /// set already. Whole-block operations without branches: with AVX2 the
    /// eight words are done at once in one vector register (a third of the
    /// instructions of the word-by-word loop).
    #[inline(always)]
    fn mark(&mut self, bits: u32) -> bool {
        let mask: [u32; 8] = std::array::from_fn(|i| 1 << (bits.wrapping_mul(SALT[i]) >> 27));
        let mut missing = 0;
        for (word, bit) in self.0.iter_mut().zip(mask) {
            missing |= bit & !*word;
            *word |= bit;
        }
        missing == 0
    }

    /// [`Block::mark`] compiled for AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    fn mark_avx2(&mut self, bits: u32) -> bool {
        self.mark(bits)
    }
}

/// Odd multipliers that pick a token's bit in each word of its block.
const SALT: [u32; 8] =
    [0x47b6_137b, 0x4497_4d91, 0x8824_ad5b, 0xa2b7_289d, 0x7054_95c7, 0x2df1_424b, 0x9efc_4947, 0x5c6b_fb31];

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
    pub(super) fn check(&mut self, line: u64, token: DeviceToken, payload: Option<Arc<[u8]>>) -> Option<Entry> {
        let fp = fingerprint(token.as_bytes());
        prefetch(&self.filter[self.block_of(fp)]);
        let (fp, entry) = self.pending.push(fp, line, token, payload)?;
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
        (self.fp, Entry { line: e.line, token: e.token, payload: e.payload.take() })
    }

    /// Writes a new token in field by field.
    fn put(&mut self, fp: u64, line: u64, token: DeviceToken, payload: Option<Arc<[u8]>>) {
        self.fp = fp;
        self.entry.line = line;
        self.entry.token = token;
        self.entry.payload = payload;
    }
}

/// The tokens whose filter blocks are on their way, oldest first: a ring of
/// [`LOOKAHEAD`] slots written field by field. (Moving whole entries through a
/// queue right after they were built made the CPU reload them before their
/// stores had landed: 60% of the check's samples sat on two such loads.)
#[derive(Debug)]
struct Lookahead {
    slots: Box<[Queued; LOOKAHEAD]>,
    /// The oldest slot.
    head: usize,
    len: usize,
}

impl Lookahead {
    fn new() -> Lookahead {
        let empty = || Queued { fp: 0, entry: Entry { line: 0, token: DeviceToken([0; 32]), payload: None } };
        Lookahead { slots: Box::new(std::array::from_fn(|_| empty())), head: 0, len: 0 }
    }

    /// Queues a token; once the ring is full, returns the oldest (fingerprint,
    /// entry), whose slot the new token takes.
    fn push(&mut self, fp: u64, line: u64, token: DeviceToken, payload: Option<Arc<[u8]>>) -> Option<(u64, Entry)> {
        if self.len < LOOKAHEAD {
            self.slots[(self.head + self.len) % LOOKAHEAD].put(fp, line, token, payload);
            self.len += 1;
            return None;
        }
        let slot = &mut self.slots[self.head];
        self.head = (self.head + 1) % LOOKAHEAD;
        let old = slot.take();
        slot.put(fp, line, token, payload);
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

/// Asks the CPU to start loading `block` into cache.
#[cfg(target_arch = "x86_64")]
fn prefetch(block: &Block) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    // SAFETY: a prefetch is a hint that never faults, and `block` is a live reference.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(block).cast()) }
}

#[cfg(not(target_arch = "x86_64"))]
fn prefetch(_block: &Block) {}

/// Huge pages on x86-64 and most Linux machines.
const HUGE_PAGE: usize = 2 << 20;

/// The filter's memory: zeroed blocks, aligned to [`HUGE_PAGE`] when the
/// filter is at least that big. Each token touches a random block, so with
/// 4 KiB pages nearly every lookup of a large filter also misses the TLB, and
/// a prefetch then waits for the page walk (in a virtual machine, a
/// two-level one) instead of running ahead; aligned, the filter can be
/// backed by huge pages (see [`huge_pages`]). Measured on `send`: 10M tokens
/// 2.74 to 3.00 M/s; 1M tokens (a 2 MiB filter, one huge page) 0.45 to
/// 0.41 s of CPU.
struct Blocks {
    ptr: NonNull<Block>,
    len: usize,
    layout: Layout,
}

// SAFETY: `Blocks` owns its memory exclusively, as a `Box<[Block]>` would.
unsafe impl Send for Blocks {}
// SAFETY: shared access only reads, through `Deref`.
unsafe impl Sync for Blocks {}

impl Blocks {
    fn zeroed(len: usize) -> Blocks {
        let size = len.checked_mul(size_of::<Block>()).expect("the filter's size fits in memory");
        let align = if size >= HUGE_PAGE { HUGE_PAGE } else { align_of::<Block>() };
        let layout = Layout::from_size_align(size, align).expect("a power-of-two alignment");
        assert!(size > 0, "a filter has at least one block");
        // SAFETY: the layout's size is not zero.
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<Block>()) else { alloc::handle_alloc_error(layout) };
        // Advised before it is written: the advice applies to pages not yet touched.
        huge_pages(raw, size);
        // SAFETY: `ptr` is valid for `len` blocks, and all-zero bytes are a valid `Block`.
        unsafe { ptr.as_ptr().write_bytes(0, len) };
        Blocks { ptr, len, layout }
    }
}

impl Deref for Blocks {
    type Target = [Block];
    fn deref(&self) -> &[Block] {
        // SAFETY: `ptr` holds `len` initialised blocks for as long as `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for Blocks {
    fn deref_mut(&mut self) -> &mut [Block] {
        // SAFETY: as in `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for Blocks {
    fn drop(&mut self) {
        // SAFETY: allocated in `zeroed` with this layout, freed once.
        unsafe { alloc::dealloc(self.ptr.as_ptr().cast(), self.layout) }
    }
}

impl std::fmt::Debug for Blocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blocks({} × 32 bytes)", self.len)
    }
}

/// Asks Linux to back the huge-page-aligned part of `len` bytes at `start`
/// with huge pages (transparent huge pages are often on only where asked for).
#[cfg(target_os = "linux")]
fn huge_pages(start: *mut u8, len: usize) {
    let (addr, end) = (start as usize, start as usize + len);
    let (first, last) = (addr.next_multiple_of(HUGE_PAGE), end / HUGE_PAGE * HUGE_PAGE);
    if first < last {
        // SAFETY: the range lies inside one allocation, and the advice
        // changes only how its pages are backed, never their contents.
        let rc = unsafe { libc::madvise(start.add(first - addr).cast(), last - first, libc::MADV_HUGEPAGE) };
        if rc != 0 {
            log::debug!("no huge pages for the duplicate filter: {}", io::Error::last_os_error());
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn huge_pages(_start: *mut u8, _len: usize) {}

/// The fingerprints of every token passed so far, in a temporary file (in
/// memory if none can be made).
#[derive(Debug)]
enum Spool {
    File(BufWriter<File>),
    Memory(Vec<u64>),
}

impl Spool {
    fn new() -> Spool {
        match tempfile::tempfile() {
            Ok(file) => Spool::File(BufWriter::with_capacity(64 << 10, file)),
            Err(e) => {
                log::warn!(
                    "cannot create a temporary file for duplicate detection ({e}); \
                     keeping 8 bytes per token in memory instead (set TMPDIR to a writable directory)"
                );
                Spool::Memory(Vec::new())
            }
        }
    }

    fn push(&mut self, fp: u64) {
        match self {
            Spool::File(out) => {
                if let Err(e) = out.write_all(&fp.to_le_bytes()) {
                    self.spill_failed(&e);
                    self.push(fp);
                }
            }
            Spool::Memory(v) => v.push(fp),
        }
    }

    /// Calls `f` with every fingerprint pushed so far.
    fn scan(&mut self, mut f: impl FnMut(u64)) {
        if let Spool::File(out) = self {
            match Self::scan_file(out, &mut f) {
                Ok(()) => return,
                Err(e) => self.spill_failed(&e),
            }
        }
        if let Spool::Memory(v) = self {
            v.iter().copied().for_each(f);
        }
    }

    fn scan_file(out: &mut BufWriter<File>, f: &mut impl FnMut(u64)) -> io::Result<()> {
        out.flush()?;
        let file = out.get_mut();
        let end = file.stream_position()?;
        file.rewind()?;
        let mut chunk = vec![0u8; 256 << 10];
        let mut left = end;
        while left > 0 {
            let n = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            file.read_exact(&mut chunk[..n])?;
            left -= n as u64;
            for word in chunk[..n].chunks_exact(8) {
                f(u64::from_le_bytes(word.try_into().expect("8-byte chunk")));
            }
        }
        file.seek(SeekFrom::Start(end))?;
        Ok(())
    }

    /// The temporary file failed mid-run (a full disk): carry on in memory
    /// with what the file and the write buffer held. If the file cannot be
    /// read back, repeats of the tokens it held could be sent again: say so.
    fn spill_failed(&mut self, e: &io::Error) {
        let Spool::File(out) = std::mem::replace(self, Spool::Memory(Vec::new())) else { return };
        let (mut file, buffered) = out.into_parts();
        let mut bytes = Vec::new();
        match file.rewind().and_then(|()| file.read_to_end(&mut bytes)) {
            Ok(_) => {
                log::warn!("the duplicate-detection file failed ({e}); keeping 8 bytes per token in memory instead")
            }
            Err(_) => log::error!(
                "the duplicate-detection file failed ({e}) and cannot be read back; \
                 repeats of tokens read so far may be sent again"
            ),
        }
        // BufWriter drops from its buffer exactly what reached the file, so
        // the file's bytes and the buffer's are the whole sequence.
        bytes.extend_from_slice(&buffered.unwrap_or_default());
        let kept = bytes.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes"))).collect();
        *self = Spool::Memory(kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(line: u64, n: u64) -> Entry {
        let mut token = [0u8; 32];
        token[..8].copy_from_slice(&n.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes());
        token[8..16].copy_from_slice(&n.to_le_bytes());
        Entry { line, token: DeviceToken(token), payload: None }
    }

    fn check(dedup: &mut Dedup, e: Entry) -> Option<Entry> {
        dedup.check(e.line, e.token, e.payload)
    }

    /// The figure the docs quote: 16 bits per token, about 0.02% false alarms.
    #[test]
    fn false_positives_near_a_tenth_of_a_percent() {
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

    /// The AVX2 build of a block's marking sets the same bits and gives the
    /// same verdicts as the word-by-word one (both paths run in the field).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_marking_matches_the_plain_one() {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return;
        }
        let (mut plain, mut avx2) = (Block::default(), Block::default());
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for i in 0..10_000 {
            // A small set of values, so that repeats (verdict true) happen too.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let bits = ((x % 64) as u32).wrapping_mul(0x9e37_79b9);
            // SAFETY: AVX2 was detected above.
            assert_eq!(plain.mark(bits), unsafe { avx2.mark_avx2(bits) }, "value {i}");
            assert_eq!(plain.0, avx2.0);
            if i % 1000 == 999 {
                (plain, avx2) = (Block::default(), Block::default());
            }
        }
    }

    #[test]
    fn the_lookahead_keeps_arrival_order() {
        let mut ring = Lookahead::new();
        let mut push = |n: u64| {
            let e = entry(n, n);
            ring.push(n, e.line, e.token, e.payload)
        };
        let mut out: Vec<(u64, u64)> = (1..=40).filter_map(&mut push).map(|(fp, e)| (fp, e.line)).collect();
        assert_eq!(out.len(), 40 - LOOKAHEAD, "each push past a full ring returns the oldest");
        out.extend(std::iter::from_fn(|| ring.pop()).map(|(fp, e)| (fp, e.line)));
        assert_eq!(out, (1..=40).map(|n| (n, n)).collect::<Vec<_>>());
        assert!(ring.pop().is_none());
    }
}
