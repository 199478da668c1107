//! Byte scanning on the hot path: finding line ends and decoding the common
//! 64-digit token line without a UTF-8 check or a walk over `char`s, both
//! with SIMD through well-kept crates (memchr, hex-simd).

use hex_simd::AsOut;

use crate::token::{DeviceToken, TOKEN_LEN};

/// Position of the first `\n` (SIMD where the CPU has it).
pub(super) fn find_newline(s: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', s)
}

/// Decodes exactly 64 hex digits (SIMD where the CPU has it); `None` for
/// anything else (the slow path then gives the precise reason).
pub(super) fn decode_hex64(s: &[u8]) -> Option<DeviceToken> {
    if s.len() != 2 * TOKEN_LEN {
        return None;
    }
    let mut out = [0u8; TOKEN_LEN];
    hex_simd::decode(s, out.as_mut_slice().as_out()).ok()?;
    Some(DeviceToken(out))
}

/// The common token line at the start of `s`, told by where its line break
/// is instead of by a search: exactly 64 hex digits, then `\n` or `\r\n`.
/// Returns the token and the bytes the line takes, break included. (A hex
/// digit is never a line break, so a successful decode proves the line has
/// no earlier one.)
pub(super) fn token_line(s: &[u8]) -> Option<(DeviceToken, usize)> {
    const DIGITS: usize = 2 * TOKEN_LEN;
    let used = match s.get(DIGITS..)? {
        [b'\n', ..] => DIGITS + 1,
        [b'\r', b'\n', ..] => DIGITS + 2,
        _ => return None,
    };
    Some((decode_hex64(&s[..DIGITS])?, used))
}
