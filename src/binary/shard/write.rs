//! Writing: encoding batches from the queue, counting what was written, and
//! sizing writes while rejections come close together (careful mode).

use crate::binary::frame::Notification;

use super::ShardState;

/// The largest TLS record's payload.
const TLS_RECORD: usize = 16 << 10;
/// The smallest careful batch.
pub const MIN_CAREFUL_BATCH: usize = 4 << 10;
/// The smallest careful send buffer: room for two careful batches of the
/// default size (the kernel doubles it for its own bookkeeping), so that the
/// pipe does not run dry between writes. Smaller buffers resend a little less
/// after a rejection; BENCHMARKS.md compares the sizes tried.
pub const MIN_CAREFUL_SEND_BUFFER: usize = 16 << 10;

impl ShardState {
    /// The unwritten bytes of the current batch, encoding the next batch when
    /// the last one is fully written. Empty when there is nothing to write now
    /// (no input yet, or waiting for a confirmation).
    ///
    /// After a write that would block, the driver must offer exactly these
    /// bytes again (OpenSSL's rule): they do not change until [`ShardState::wrote`]
    /// consumes them.
    pub fn pending_bytes(&mut self) -> &[u8] {
        if self.pos == self.out.len() && self.connected {
            self.fill();
        }
        &self.out[self.pos..]
    }

    /// `n` bytes of [`ShardState::pending_bytes`] were written.
    pub fn wrote(&mut self, n: usize) {
        self.pos += n;
        debug_assert!(self.pos <= self.out.len());
        self.report.bytes_written += n as u64;
        // Count a notification as written (or resent) once its last byte is.
        while self.frame_ends.get(self.batch_written).is_some_and(|&end| end <= self.pos) {
            let item = self.items.get_mut(self.batch_first + self.batch_written).expect("a written frame is queued");
            self.report.frames_written += 1;
            self.since_rejection = self.since_rejection.saturating_add(1);
            if item.written {
                self.report.resent += 1;
            }
            item.written = true;
            self.batch_written += 1;
        }
    }

    /// A retried write failed for good: the call that would have blocked
    /// left OpenSSL holding a record of these bytes, and the retry may have
    /// sent that record whole before failing on the next, reporting nothing.
    /// So the record's bytes (at most one TLS record, 16 KiB, from the first unwritten
    /// one) count as written: the gateway may name any of their notifications,
    /// and after a silent close they are in doubt. (A first attempt that
    /// fails has sent no whole record: in partial-write mode, which the
    /// `openssl` crate's connector sets, OpenSSL returns after each record.)
    pub fn write_failed(&mut self) {
        let end = self.out.len().min(self.pos + TLS_RECORD);
        if end > self.pos {
            self.wrote(end - self.pos);
        }
    }

    /// Notifications in flight whose every byte was written on this connection:
    /// the only ones the gateway can have seen.
    pub(super) fn written_on_connection(&self) -> usize {
        self.batch_first + self.batch_written
    }

    /// Everything written is waiting for the sentinel's rejection.
    pub fn awaiting_confirmation(&self) -> bool {
        self.sentinel.is_some() && self.pos == self.out.len()
    }

    /// Notifications written on this connection and not yet confirmed.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn fill(&mut self) {
        self.out.clear();
        self.pos = 0;
        self.batch_first = self.in_flight;
        self.frame_ends.clear();
        self.batch_written = 0;
        if self.sentinel.is_some() {
            return;
        }
        let batch_bytes = self.batch_bytes();
        while !self.window_full() && !self.cancelled {
            let Some(item) = self.items.get(self.in_flight) else { break };
            let payload = self.items.own_payload(item);
            // A batch stays within its size (a frame larger than it goes
            // alone): one byte over would cost a TLS record and a send of its own.
            let len = self.spec.command.frame_len(payload.map_or(self.spec.payload.len(), <[u8]>::len));
            if !self.out.is_empty() && self.out.len() + len > batch_bytes {
                break;
            }
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            let before = self.out.len();
            match payload {
                None => self.template.encode(&item.token, id, &mut self.out),
                Some(payload) => self.spec.command.encode(
                    &Notification {
                        token: &item.token,
                        payload,
                        id,
                        expiry: self.spec.expiry,
                        priority: self.spec.priority,
                    },
                    &mut self.out,
                ),
            }
            self.window_used += self.out.len() - before;
            self.frame_ends.push(self.out.len());
            self.in_flight += 1;
        }
        let input_over = self.cancelled || (self.input_done && self.queued() == 0);
        if self.in_flight > 0 && (self.window_full() || input_over || self.confirm_requested) {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            self.spec.command.encode_sentinel(id, &mut self.out);
            self.sentinel = Some(id);
            self.report.confirmations += 1;
        }
    }

    /// Whether rejections are coming close together: the last two were fewer
    /// than [`Limits::careful_frames`](super::Limits::careful_frames)
    /// notifications apart, and the last was fewer than that ago. A careful
    /// shard writes smaller batches
    /// (an eighth of `--batch-bytes`) over a smaller send buffer
    /// ([`ShardState::send_buffer`]), so that the next rejection throws less
    /// away (BENCHMARKS.md, careful mode). Small writes cost CPU per byte, so
    /// a clean list, or one whose rejections are far apart, is never careful:
    /// one rejection alone says little about the next.
    pub fn careful(&self) -> bool {
        let n = self.limits.careful_frames;
        self.rejection_gap < n && self.since_rejection < n
    }

    /// Bytes per write: while careful, an eighth of the configured batch but
    /// not below [`MIN_CAREFUL_BATCH`] (nor above the configured batch).
    fn batch_bytes(&self) -> usize {
        let b = self.limits.batch_bytes;
        if self.careful() { (b / 8).max(MIN_CAREFUL_BATCH).min(b) } else { b }
    }

    /// The send buffer to use now, given the configured one (`None`: the
    /// kernel's autotuning, left alone): while careful, a quarter of it but
    /// not below [`MIN_CAREFUL_SEND_BUFFER`] (nor above the configured size).
    pub fn send_buffer(&self, configured: Option<usize>) -> Option<usize> {
        configured.map(|b| if self.careful() { (b / 4).max(MIN_CAREFUL_SEND_BUFFER).min(b) } else { b })
    }

    fn window_full(&self) -> bool {
        let n = self.in_flight as u64;
        self.window_used >= self.limits.window_bytes
            || (self.limits.confirm_every > 0 && n >= self.limits.confirm_every)
            || self.chunk.is_some_and(|c| n >= c as u64)
    }
}

#[cfg(test)]
#[path = "write_test.rs"]
mod write_test;
