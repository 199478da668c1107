//! Answers: settling the window when the gateway answers or the connection
//! ends, and giving up on what cannot be sent.

use crate::binary::frame::{ERROR_RESPONSE_LEN, ErrorResponse, Status};
use crate::journal::push_line;
use crate::report::{Code, Reason, State};

use super::{ConnEnd, Item, MAX_STRIKES, Outcome, ShardState};

impl ShardState {
    /// Bytes read from the gateway. Returns how the connection ended once a
    /// whole error response (or bytes that cannot be one) arrived.
    pub fn on_bytes(&mut self, mut bytes: &[u8]) -> Option<ConnEnd> {
        while !bytes.is_empty() && self.connected {
            let take = (ERROR_RESPONSE_LEN - self.inlen).min(bytes.len());
            self.inbuf[self.inlen..self.inlen + take].copy_from_slice(&bytes[..take]);
            self.inlen += take;
            bytes = &bytes[take..];
            match ErrorResponse::decode(&self.inbuf[..self.inlen]) {
                Ok(None) => {}
                Ok(Some(resp)) => return Some(self.on_response(resp)),
                Err(e) => {
                    log::warn!("shard {}: gateway sent garbage ({e}); closing", self.report.shard);
                    return Some(self.on_close());
                }
            }
        }
        None
    }

    /// The gateway answered: settle the window accordingly and end the connection.
    pub fn on_response(&mut self, resp: ErrorResponse) -> ConnEnd {
        self.connected = false;
        // The gateway can only name what it received: a notification whose
        // every byte was written, or the sentinel once it was written.
        let written = self.written_on_connection();
        let index = resp.id.wrapping_sub(self.first_id) as usize;
        if Some(resp.id) == self.sentinel && self.awaiting_confirmation() {
            self.accept(self.in_flight);
            self.grow_chunk();
            return ConnEnd::Confirmed;
        }
        match resp.status {
            Status::Shutdown if index < written => {
                self.accept(index + 1);
                self.rewind(0);
            }
            Status::Shutdown if resp.id == self.first_id.wrapping_sub(1) => self.rewind(0),
            Status::NoErrors | Status::Shutdown => return self.unexpected(resp),
            _ if index < written => {
                self.accept(index);
                let item = self.items.pop_front().expect("index < written <= len");
                self.in_flight -= 1;
                self.settle(item, State::Rejected, Reason::Rejected(resp.status));
                self.rewind(0);
                self.grow_chunk();
                self.rejection_gap = self.since_rejection;
                self.since_rejection = 0;
            }
            _ => return self.unexpected(resp),
        }
        ConnEnd::Answered(resp)
    }

    /// An error response that names nothing the gateway can have received:
    /// trust nothing it says and treat the connection as closed silently.
    fn unexpected(&mut self, resp: ErrorResponse) -> ConnEnd {
        log::warn!("shard {}: {resp} names no notification that was written; closing", self.report.shard);
        self.connected = true;
        self.on_close()
    }

    /// We close the connection with nothing in flight (the work is done, or
    /// the run was cancelled between windows).
    ///
    /// # Panics
    /// If notifications are still in flight.
    pub fn on_idle_close(&mut self) -> ConnEnd {
        assert!(self.in_flight == 0, "closing with notifications in flight");
        self.connected = false;
        ConnEnd::Confirmed
    }

    /// The connection closed, failed or timed out with no error response:
    /// everything in flight is in doubt and goes again in recovery mode.
    pub fn on_close(&mut self) -> ConnEnd {
        self.connected = false;
        // Only what was written can have reached the gateway; the rest goes
        // back to the queue as it was.
        let n = self.written_on_connection();
        if n == 0 {
            self.rewind(0);
            return ConnEnd::Silent;
        }
        // Halve what was actually in flight, so a gateway that closes after
        // k notifications is matched in about log2(window / k) connections.
        self.chunk = Some(match self.chunk {
            Some(c) => (c.min(n) / 2).max(1),
            None => 1,
        });
        if n == 1 && self.chunk == Some(1) {
            self.strikes += 1;
        }
        self.rewind(n);
        if self.strikes >= MAX_STRIKES {
            self.strikes = 0;
            if let Some(item) = self.items.pop_front() {
                self.settle(item, State::Unconfirmed, Reason::SilentWhenAlone { times: MAX_STRIKES });
            }
        }
        ConnEnd::Silent
    }

    fn grow_chunk(&mut self) {
        self.strikes = 0;
        if let Some(c) = self.chunk {
            self.chunk = Some(c.saturating_mul(2));
        }
    }

    fn accept(&mut self, n: usize) {
        debug_assert!(n <= self.in_flight);
        self.in_flight -= n;
        let in_doubt = self.items.settle_front(n, &mut self.settled_lines);
        self.report.accepted += n as u64;
        self.report.possibly_duplicated += in_doubt as u64;
        self.settled += n as u64;
        if n > 0 {
            self.strikes = 0;
        }
    }

    /// Puts what is left in flight back at the front of the queue, in order;
    /// the first `in_doubt` of them may have been accepted.
    fn rewind(&mut self, in_doubt: usize) {
        self.items.mark_in_doubt(in_doubt.min(self.in_flight));
        self.in_flight = 0;
        self.out.clear();
        self.pos = 0;
        self.frame_ends.clear();
        self.batch_first = 0;
        self.batch_written = 0;
    }

    fn settle(&mut self, item: Item, state: State, reason: Reason) {
        let status = reason.status();
        match state {
            State::Rejected => {
                push_line(&mut self.settled_lines, item.line);
                self.report.reject(match status {
                    Some(Code::Binary(status)) => status,
                    _ => Status::Unknown,
                });
            }
            State::Unconfirmed => self.report.unconfirmed += 1,
            State::Unsent => self.report.unsent += 1,
            State::Accepted | State::Skipped => unreachable!("not a shard outcome"),
        }
        self.settled += 1;
        self.outcomes.push(Outcome { item, state, status, reason });
    }

    /// Gives up on everything not yet settled (the run was cancelled or the
    /// shard cannot connect): notifications in doubt are unconfirmed, the rest unsent.
    ///
    /// # Panics
    /// If a connection is still open.
    pub fn abandon(&mut self, why: impl Into<Reason>) {
        assert!(!self.connected, "abandon with a connection open");
        debug_assert_eq!(self.in_flight, 0, "abandon with notifications in flight");
        let reason = why.into();
        while let Some(item) = self.items.pop_front() {
            let state = if item.doubt { State::Unconfirmed } else { State::Unsent };
            self.settle(item, state, reason.clone());
        }
    }
}
