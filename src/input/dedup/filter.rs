//! The Bloom filter's memory: 32-byte blocks, marked one token at a time
//! (with AVX2 where the CPU has it), in an allocation that huge pages can
//! back.

use std::alloc::{self, Layout};
use std::io;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// One filter block: a token sets one bit in each word. Aligned so that it
/// never straddles two cache lines (one memory access per token).
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(32))]
pub(super) struct Block([u32; 8]);

impl Block {
    /// Sets one bit in each word, picked by `bits`; whether all eight were
    /// set already. Whole-block operations without branches: with AVX2 the
    /// eight words are done at once in one vector register.
    #[inline(always)]
    pub(super) fn mark(&mut self, bits: u32) -> bool {
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
    pub(super) fn mark_avx2(&mut self, bits: u32) -> bool {
        self.mark(bits)
    }
}

/// Odd multipliers that pick a token's bit in each word of its block.
const SALT: [u32; 8] =
    [0x47b6_137b, 0x4497_4d91, 0x8824_ad5b, 0xa2b7_289d, 0x7054_95c7, 0x2df1_424b, 0x9efc_4947, 0x5c6b_fb31];

/// Asks the CPU to start loading `block` into cache.
#[cfg(target_arch = "x86_64")]
pub(super) fn prefetch(block: &Block) {
    use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
    // SAFETY: a prefetch is a hint that never faults, and `block` is a live reference.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::from_ref(block).cast()) }
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) fn prefetch(_block: &Block) {}

/// Huge pages on x86-64 and most Linux machines.
const HUGE_PAGE: usize = 2 << 20;

/// The filter's memory: zeroed blocks, aligned to [`HUGE_PAGE`] when the
/// filter is at least that big. Each token touches a random block, so with
/// 4 KiB pages nearly every lookup of a large filter also misses the TLB, and
/// a prefetch then waits for the page walk (in a virtual machine, a
/// two-level one) instead of running ahead; aligned, the filter can be
/// backed by huge pages (see [`huge_pages`]).
pub(super) struct Blocks {
    ptr: NonNull<Block>,
    len: usize,
    layout: Layout,
}

// SAFETY: `Blocks` owns its memory exclusively, as a `Box<[Block]>` would.
unsafe impl Send for Blocks {}
// SAFETY: shared access only reads, through `Deref`.
unsafe impl Sync for Blocks {}

impl Blocks {
    pub(super) fn zeroed(len: usize) -> Blocks {
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
