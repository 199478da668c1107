//! Byte scanning on the hot path: finding line ends and decoding the common
//! 64-digit token line without a UTF-8 check or a walk over `char`s, both
//! with SIMD through well-kept crates (memchr, faster-hex).

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
    faster_hex::hex_decode(s, &mut out).ok()?;
    Some(DeviceToken(out))
}
