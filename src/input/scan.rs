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

/// Hex digit values; 0xFF marks a non-digit.
static HEX: [u8; 256] = {
    let mut t = [0xFF; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Decodes exactly 64 hex digits; `None` for anything else (the slow path
/// then gives the precise reason).
pub(super) fn decode_hex64(s: &[u8]) -> Option<DeviceToken> {
    let s: &[u8; 2 * TOKEN_LEN] = s.try_into().ok()?;
    let mut out = [0u8; TOKEN_LEN];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let (hi, lo) = (HEX[usize::from(pair[0])], HEX[usize::from(pair[1])]);
        bad |= hi | lo;
        *o = (hi << 4) | lo;
    }
    (bad & 0xF0 == 0).then_some(DeviceToken(out))
}
