//! Apple's reason in the GOAWAY frames h2 writes: h2's server sends its
//! GOAWAY without debug data, and Apple's carries `{"reason":"Shutdown"}`
//! when the server is shutting down.

use super::{FRAME_HEADER, GOAWAY, frame_len};

/// The debug data added.
pub(super) const SHUTDOWN: &[u8] = br#"{"reason":"Shutdown"}"#;

/// Rewrites h2's output as it passes, in pieces of any size: every GOAWAY
/// frame gets [`SHUTDOWN`] after its payload, and a length to match.
#[derive(Debug, Default)]
pub(super) struct Rewriter {
    /// The current frame's header, while incomplete.
    head: Vec<u8>,
    /// Payload bytes of the current frame still to copy.
    left: usize,
    /// The current frame is a GOAWAY: add the reason after its payload.
    goaway: bool,
}

impl Rewriter {
    /// Copies `data`, the next piece of h2's output, to `out`, rewritten.
    pub(super) fn copy(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        while !data.is_empty() {
            if self.left > 0 {
                let n = self.left.min(data.len());
                out.extend_from_slice(&data[..n]);
                self.left -= n;
                data = &data[n..];
                self.end_frame(out);
                continue;
            }
            let n = (FRAME_HEADER - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.head.len() < FRAME_HEADER {
                continue;
            }
            self.left = frame_len(&self.head);
            self.goaway = self.head[3] == GOAWAY;
            if self.goaway {
                let len = (self.left + SHUTDOWN.len()) as u32;
                self.head[..3].copy_from_slice(&len.to_be_bytes()[1..]);
            }
            out.append(&mut self.head);
            self.end_frame(out);
        }
    }

    /// At the end of a GOAWAY's payload, the reason.
    fn end_frame(&mut self, out: &mut Vec<u8>) {
        if self.left == 0 && std::mem::take(&mut self.goaway) {
            out.extend_from_slice(SHUTDOWN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::frame;
    use super::*;

    #[test]
    fn every_goaway_gets_the_reason_whatever_the_pieces() {
        let settings = frame(0x4, 0, &[0, 3, 0, 0, 0, 9]);
        let answer = frame(0x1, 1, b"head");
        let goaway = |last: u8| frame(GOAWAY, 0, &[0, 0, 0, last, 0, 0, 0, 0]);
        let with_reason = |last: u8| frame(GOAWAY, 0, &[&[0, 0, 0, last, 0, 0, 0, 0][..], SHUTDOWN].concat());
        let written = [settings.clone(), goaway(0x7F), answer.clone(), goaway(1), frame(0x6, 0, &[1; 8])].concat();
        let want = [settings, with_reason(0x7F), answer, with_reason(1), frame(0x6, 0, &[1; 8])].concat();
        for size in [1, 2, 5, 9, 13, 17, written.len()] {
            let (mut r, mut out) = (Rewriter::default(), Vec::new());
            for piece in written.chunks(size) {
                r.copy(piece, &mut out);
            }
            assert_eq!(out, want, "pieces of {size}");
        }
    }
}
