//! Byte scanning on the hot path: finding line ends and decoding the common
//! 64-digit token line without a UTF-8 check or a walk over `char`s.

use crate::token::{DeviceToken, TOKEN_LEN};

/// Position of the first `\n`, eight bytes at a time (SWAR): a plain byte
/// loop here was a measurable share of the per-line cost.
pub(super) fn find_newline(s: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let mut words = s.chunks_exact(8);
    for (k, w) in words.by_ref().enumerate() {
        let x = u64::from_le_bytes(w.try_into().expect("8-byte chunk")) ^ (LO * u64::from(b'\n'));
        // The lowest set bit marks the first zero byte of x (borrows only
        // create false hits above a true one).
        let zero = x.wrapping_sub(LO) & !x & HI;
        if zero != 0 {
            return Some(8 * k + (zero.trailing_zeros() / 8) as usize);
        }
    }
    let tail = words.remainder();
    tail.iter().position(|&b| b == b'\n').map(|p| s.len() - tail.len() + p)
}

/// Decodes exactly 64 hex digits (SIMD where the CPU has it); `None` for
/// anything else (the slow path then gives the precise reason).
pub(super) fn decode_hex64(s: &[u8]) -> Option<DeviceToken> {
    if s.len() != 2 * TOKEN_LEN {
        return None;
    }
    let mut out = [0u8; TOKEN_LEN];
    faster_hex::hex_decode(s, &mut out).ok()?;
    Some(DeviceToken(out))
}
