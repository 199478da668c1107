//! The frames each connection writes, encoded before the clock starts.

use apnsblast::frame::{Command, Notification, Priority};
use apnsblast::token::DeviceToken;

/// Length of a command-2 frame without a device token (the rejected frames).
pub(crate) const SENTINEL_LEN: usize = 1 + 4 + 3 + 4;

/// The default payload: valid APNs JSON, exactly 100 bytes.
pub(crate) fn default_payload() -> Vec<u8> {
    let head = br#"{"aps":{"alert":"#;
    let tail = br#"","sound":"default"}}"#;
    let mut p = head.to_vec();
    p.push(b'"');
    p.extend(std::iter::repeat_n(b'x', 100 - head.len() - 1 - tail.len()));
    p.extend_from_slice(tail);
    debug_assert_eq!(p.len(), 100);
    p
}

/// A distinct, random-looking token for frame `i` of connection `conn`.
pub(crate) fn token(conn: u32, i: u64) -> DeviceToken {
    let mut t = [0u8; 32];
    let mut x = (u64::from(conn) << 40 | i).wrapping_add(0x9e37_79b9_7f4a_7c15);
    for chunk in t.chunks_exact_mut(8) {
        // splitmix64
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    // Keep the frame index in the token so tokens never collide.
    t[24..].copy_from_slice(&(u64::from(conn) << 40 | i).to_be_bytes());
    DeviceToken(t)
}

/// What one connection writes: its frames back to back, cut into segments
/// that each end with a frame the gateway rejects.
pub(crate) struct Frames {
    pub(crate) bytes: Vec<u8>,
    /// Per segment: the offset just past its rejected frame, and that frame's id.
    /// The last segment's rejected frame is the sentinel that confirms the rest.
    pub(crate) segments: Vec<(usize, u32)>,
}

/// Every frame one connection sends: `frames` frames with ids `0..frames`,
/// every `reject_every`-th without a device token, then the sentinel (id
/// `frames`).
pub(crate) fn encode(conn: u32, frames: u64, payload: &[u8], reject_every: Option<u64>) -> Frames {
    let cmd = Command::Items;
    let mut bytes = Vec::with_capacity(frames as usize * cmd.frame_len(payload.len()) + 16);
    let mut segments = Vec::new();
    for i in 0..frames {
        if reject_every.is_some_and(|k| (i + 1) % k == 0) {
            cmd.encode_sentinel(i as u32, &mut bytes);
            segments.push((bytes.len(), i as u32));
            continue;
        }
        let t = token(conn, i);
        let n = Notification { token: &t, payload, id: i as u32, expiry: 0, priority: Priority::Immediate };
        cmd.encode(&n, &mut bytes);
    }
    cmd.encode_sentinel(frames as u32, &mut bytes);
    segments.push((bytes.len(), frames as u32));
    Frames { bytes, segments }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_100_bytes_of_json_and_frames_are_161() {
        let p = default_payload();
        assert_eq!(p.len(), 100);
        assert!(p.starts_with(b"{\"aps\":{\"alert\":\"x") && p.ends_with(b"\"}}"));
        assert_eq!(Command::Items.frame_len(p.len()), 161);
        let frames = encode(0, 10, &p, None);
        assert_eq!(frames.bytes.len(), 1610 + SENTINEL_LEN);
        assert_eq!(frames.segments, [(1610 + SENTINEL_LEN, 10)]);
    }

    #[test]
    fn every_kth_frame_is_rejected_and_ends_a_segment() {
        let p = default_payload();
        let frames = encode(0, 10, &p, Some(4));
        // Frames 3 and 7 have no token; the sentinel (id 10) ends the last segment.
        let ends = [3 * 161 + SENTINEL_LEN, 6 * 161 + 2 * SENTINEL_LEN, 8 * 161 + 3 * SENTINEL_LEN];
        assert_eq!(frames.segments, [(ends[0], 3), (ends[1], 7), (ends[2], 10)]);
        assert_eq!(frames.bytes.len(), ends[2]);
        for &(end, id) in &frames.segments {
            let mut sentinel = Vec::new();
            Command::Items.encode_sentinel(id, &mut sentinel);
            assert_eq!(&frames.bytes[end - SENTINEL_LEN..end], &sentinel[..]);
        }
    }

    #[test]
    fn tokens_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for c in 0..4 {
            for i in 0..10_000 {
                assert!(seen.insert(token(c, i).0));
            }
        }
    }
}
