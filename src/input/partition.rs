//! Partitions `K/N` of a token list, and the token hashes they rest on.
//!
//! Two hashes, for two jobs: [`Partition`] uses FNV-1a 64, fixed by its
//! definition, so a line lands in the same part on every machine and Rust
//! version; deduplication uses [`fingerprint`], a better-mixed 64-bit hash
//! that stands in for the 32 token bytes in duplicate detection.

use std::fmt;
use std::hash::Hasher;
use std::str::FromStr;

use crate::token::{DeviceToken, TOKEN_LEN};

/// One of `count` disjoint parts of a list (`index` is 0-based), written `K/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Partition {
    /// Which part, `0..count`.
    pub index: u32,
    /// How many parts, at least 1.
    pub count: u32,
}

/// Why a string is not a partition `K/N`.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionError {
    /// Not two decimal numbers separated by `/`.
    Syntax(String),
    /// `N` is 0.
    ZeroCount,
    /// `K` is not below `N`.
    IndexOutOfRange {
        /// The `K` given.
        index: u32,
        /// The `N` given.
        count: u32,
    },
}

impl fmt::Display for PartitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PartitionError::Syntax(s) => {
                write!(f, "partition {s:?} is not K/N (0-based K below N, e.g. 0/4)")
            }
            PartitionError::ZeroCount => f.write_str("partition count N must be at least 1"),
            PartitionError::IndexOutOfRange { index, count } => {
                write!(f, "partition {index}/{count}: K is 0-based and must be below {count}")
            }
        }
    }
}

impl std::error::Error for PartitionError {}

impl Partition {
    /// Part `index` of `count`.
    ///
    /// # Errors
    /// [`PartitionError::ZeroCount`] or [`PartitionError::IndexOutOfRange`].
    pub fn new(index: u32, count: u32) -> Result<Self, PartitionError> {
        match (index, count) {
            (_, 0) => Err(PartitionError::ZeroCount),
            (i, n) if i >= n => Err(PartitionError::IndexOutOfRange { index, count }),
            _ => Ok(Partition { index, count }),
        }
    }

    /// The part (of `count`, at least 1) that a token's lines belong to.
    pub fn of_token(token: &DeviceToken, count: u32) -> u32 {
        (fnv1a64(token.as_bytes()) % u64::from(count)) as u32
    }

    /// The part (of `count`, at least 1) that a non-token line belongs to,
    /// given the line's trimmed bytes.
    pub fn of_line(trimmed: &[u8], count: u32) -> u32 {
        (fnv1a64(trimmed) % u64::from(count)) as u32
    }

    /// Whether lines of `token` belong to this part.
    pub fn claims_token(&self, token: &DeviceToken) -> bool {
        Partition::of_token(token, self.count) == self.index
    }
}

impl FromStr for Partition {
    type Err = PartitionError;
    fn from_str(s: &str) -> Result<Self, PartitionError> {
        let syntax = || PartitionError::Syntax(s.to_owned());
        let (k, n) = s.trim().split_once('/').ok_or_else(syntax)?;
        let k = k.trim().parse().map_err(|_| syntax())?;
        let n = n.trim().parse().map_err(|_| syntax())?;
        Partition::new(k, n)
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a, 64-bit: fixed constants, so partitions never move.
pub(super) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A well-mixed 64-bit fingerprint of a token, for deduplication.
///
/// Each round is a bijection of the state for a fixed word and of the word
/// for a fixed state, so tokens differing in one 8-byte word never collide.
pub(super) fn fingerprint(token: &[u8; TOKEN_LEN]) -> u64 {
    let mut h: u64 = 0x243f_6a88_85a3_08d3;
    for w in token.chunks_exact(8) {
        let w = u64::from_le_bytes(w.try_into().expect("8-byte chunk"));
        h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
    }
    // murmur3's fmix64 finaliser: every output bit depends on every input bit.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A `Hasher` that passes an already-mixed `u64` fingerprint through.
#[derive(Debug, Default)]
pub(super) struct PassThrough(u64);

impl Hasher for PassThrough {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; this fallback keeps the type honest.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}
