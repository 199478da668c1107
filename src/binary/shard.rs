//! The sans-I/O state of one shard: what to write next, what is in flight,
//! and what to do when the gateway answers or goes away.
//!
//! The gateway says nothing on success and, on the first bad notification,
//! writes one error response and discards everything after it. So a shard
//! keeps every notification it wrote on the current connection, in order,
//! until something proves it was accepted:
//!
//! ```text
//!   queue ──fill()──▶ out (bytes) ──driver writes──▶ gateway
//!                      │
//!                      └─▶ in flight (ids first_id..) ──error response X──▶
//!                            before X: accepted · X: rejected · after X: back to the queue front
//! ```
//!
//! A *sentinel* (a frame without a token, which every gateway rejects) ends a
//! confirmation window: its rejection proves that everything before it was
//! accepted. Windows are bounded in bytes and, optionally, in count, which
//! bounds the memory a shard retains.
//!
//! A close without an error response leaves the whole window in doubt. It is
//! sent again, marked as possibly duplicated, in *recovery* mode: small
//! windows (1, 2, 4, … frames, each confirmed), so that a rejection whose
//! error response was lost on the way (a gateway or a network that drops
//! it before the close) comes through on a later try. A notification that is
//! alone in its window and still sees the connection close silently
//! [`MAX_STRIKES`] times is given up as unconfirmed, so every run converges.
//!
//! The driver (`conn`) only moves bytes and reports what happened; the rules
//! above are all here, testable without sockets.

mod queue;

use std::sync::Arc;

use crate::binary::frame::{Command, ERROR_RESPONSE_LEN, ErrorResponse, Notification, Priority, Status, Template};
use crate::journal::push_line;
use crate::report::{Reason, ShardReport, State};
use crate::token::DeviceToken;
use queue::Queue;

/// Silent closes a notification may see while alone in its window before it
/// is given up as unconfirmed.
pub const MAX_STRIKES: u32 = 3;

/// Queued notifications at which a shard stops taking input (the channel
/// from the splitter holds more).
const QUEUE_LIMIT: usize = 4096;

/// The largest TLS record's payload.
const TLS_RECORD: usize = 16 << 10;
/// The smallest careful batch.
const MIN_CAREFUL_BATCH: usize = 4 << 10;
/// The smallest careful send buffer: room for two careful batches of the
/// default size (the kernel doubles it for its own bookkeeping). With 16 KiB
/// batches a 16 KiB buffer let the pipe run dry between writes and cost a
/// third of the rate; with 8 KiB batches it costs nothing measurable. At
/// 0.1% invalid tokens, 16 KiB batches over 24 KiB gave amplification 1.49,
/// 8 KiB over 16 KiB 1.39, and 4 KiB over 12 KiB 1.36 (see BENCHMARKS.md).
const MIN_CAREFUL_SEND_BUFFER: usize = 16 << 10;

/// A notification on its way through a shard.
#[derive(Debug, Clone)]
pub struct Item {
    /// 1-based input line, for reports.
    pub line: u64,
    /// Where it goes.
    pub token: DeviceToken,
    /// Its own payload, or `None` for the run's shared payload.
    pub payload: Option<Arc<[u8]>>,
    /// It was written before (so writing it again is a resend).
    pub written: bool,
    /// It was in flight when a connection closed without an error response:
    /// the gateway may already have accepted it.
    pub doubt: bool,
}

impl Item {
    /// A fresh item from the input.
    pub fn new(line: u64, token: DeviceToken, payload: Option<Arc<[u8]>>) -> Item {
        Item { line, token, payload, written: false, doubt: false }
    }
}

/// How every frame of the run is written.
#[derive(Debug, Clone)]
pub struct FrameSpec {
    /// Command 1 or 2.
    pub command: Command,
    /// The payload of items that carry none of their own.
    pub payload: Arc<[u8]>,
    /// Expiry, UNIX seconds (0 = do not store).
    pub expiry: u32,
    /// Priority (command 2).
    pub priority: Priority,
}

/// Sizes that shape the stream.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes encoded per batch: the size of each write.
    pub batch_bytes: usize,
    /// Bytes written on a connection before the shard confirms them.
    pub window_bytes: usize,
    /// Notifications written before the shard confirms them (0 = no limit).
    pub confirm_every: u64,
    /// Rejections this close (in notifications written) make the shard
    /// careful for as long again (0: never; see [`ShardState::careful`]).
    pub careful_frames: u64,
}

/// A final word on one notification that was not accepted.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The notification.
    pub item: Item,
    /// Rejected, unconfirmed or unsent.
    pub state: State,
    /// The status, for rejections.
    pub status: Option<Status>,
    /// Why.
    pub reason: Reason,
}

/// How a connection ended, as the shard saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnEnd {
    /// The sentinel was rejected: the whole window was accepted.
    Confirmed,
    /// The gateway named a notification (rejected, or the last accepted before a shutdown).
    Answered(ErrorResponse),
    /// The connection closed, failed or timed out without an error response.
    Silent,
}

/// The state of one shard across all its connections.
#[derive(Debug)]
pub struct ShardState {
    spec: FrameSpec,
    /// The frame of an item with the shared payload.
    template: Template,
    limits: Limits,
    /// Every notification not yet settled, in order: the first `in_flight`
    /// were written on this connection, the rest wait. Writing one moves the
    /// boundary, not the notification.
    items: Queue,
    in_flight: usize,
    /// Identifier of `items[0]` on this connection; identifiers are consecutive.
    first_id: u32,
    next_id: u32,
    sentinel: Option<u32>,
    window_used: usize,
    out: Vec<u8>,
    pos: usize,
    /// Index in `items` of the first notification encoded into `out`.
    batch_first: usize,
    /// End offset in `out` of each notification of the batch.
    frame_ends: Vec<usize>,
    /// Notifications of the batch whose every byte was written.
    batch_written: usize,
    inbuf: [u8; ERROR_RESPONSE_LEN],
    inlen: usize,
    connected: bool,
    input_done: bool,
    cancelled: bool,
    /// Confirm what is in flight at the end of the current batch.
    confirm_requested: bool,
    /// In recovery: at most this many frames per window.
    chunk: Option<usize>,
    strikes: u32,
    /// Notifications written since the last rejection (`u64::MAX`: none yet).
    since_rejection: u64,
    /// Notifications written between the last two rejections (`u64::MAX`: fewer than two).
    rejection_gap: u64,
    /// Notifications that reached a final state (progress, for the driver's give-up rule).
    settled: u64,
    outcomes: Vec<Outcome>,
    /// Notifications pushed in, for the conservation check.
    received: u64,
    /// Lines accepted or rejected since the last [`ShardState::take_settled_lines`].
    settled_lines: Vec<(u64, u64)>,
    report: ShardReport,
}

impl ShardState {
    /// A shard with nothing to send yet.
    pub fn new(shard: usize, spec: FrameSpec, limits: Limits) -> ShardState {
        // Room for a full window of the run's frames and a full queue (input
        // arrives in batches, hence the slack). A ring that has to grow
        // doubles, and then cycles through all of its capacity: sized so, the
        // memory it touches is what the window needs, not up to twice that.
        let window = limits.window_bytes / spec.command.frame_len(spec.payload.len()) + 1;
        let capacity = window.saturating_add(2 * QUEUE_LIMIT).min(1 << 22);
        ShardState {
            template: Template::new(spec.command, &spec.payload, spec.expiry, spec.priority),
            spec,
            limits,
            items: Queue::with_capacity(capacity),
            in_flight: 0,
            first_id: 1,
            next_id: 1,
            sentinel: None,
            window_used: 0,
            out: Vec::with_capacity(limits.batch_bytes + 4096),
            pos: 0,
            batch_first: 0,
            frame_ends: Vec::new(),
            batch_written: 0,
            inbuf: [0; ERROR_RESPONSE_LEN],
            inlen: 0,
            connected: false,
            input_done: false,
            cancelled: false,
            confirm_requested: false,
            chunk: None,
            strikes: 0,
            since_rejection: u64::MAX,
            rejection_gap: u64::MAX,
            settled: 0,
            outcomes: Vec::new(),
            settled_lines: Vec::new(),
            received: 0,
            report: ShardReport { shard, ..ShardReport::default() },
        }
    }

    /// Adds notifications from the input.
    pub fn push(&mut self, items: impl IntoIterator<Item = Item>) {
        let before = self.items.len();
        for item in items {
            self.items.push(item);
        }
        self.received += (self.items.len() - before) as u64;
    }

    /// Every notification received is queued, in flight, or settled.
    fn check_conservation(&self) {
        debug_assert_eq!(
            self.received,
            self.items.len() as u64 + self.settled,
            "shard {}: a notification went missing",
            self.report.shard
        );
    }

    /// The input has ended: confirm what is in flight once the queue is empty.
    pub fn finish_input(&mut self) {
        self.input_done = true;
    }

    /// Stop writing new notifications; confirm what is in flight.
    pub fn cancel(&mut self) {
        self.cancelled = true;
    }

    /// Confirm what is in flight now rather than when the window fills (the
    /// input has stalled: a token should not stay in doubt for long).
    pub fn confirm_now(&mut self) {
        self.confirm_requested = true;
    }

    /// Whether [`ShardState::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// Notifications waiting to be written (new input and rewinds).
    pub fn queued(&self) -> usize {
        self.items.len() - self.in_flight
    }

    /// Whether the shard wants more input to fill its next batch.
    pub fn wants_input(&self) -> bool {
        !self.input_done && !self.cancelled && self.queued() < QUEUE_LIMIT
    }

    /// Whether there is anything left to do (a connection is needed).
    pub fn has_work(&self) -> bool {
        self.in_flight > 0 || (!self.cancelled && (self.queued() > 0 || !self.input_done))
    }

    /// Count of notifications in a final state so far.
    pub fn settled(&self) -> u64 {
        self.settled
    }

    /// Count of notifications the gateway has accepted or rejected so far:
    /// the proof that a connection achieved something.
    pub fn answered(&self) -> u64 {
        self.report.accepted + self.report.rejected_total()
    }

    /// A new connection is up.
    ///
    /// # Panics
    /// If the previous connection was not ended with [`ShardState::on_response`],
    /// [`ShardState::on_bytes`] or [`ShardState::on_close`].
    pub fn on_connected(&mut self) {
        assert!(!self.connected && self.in_flight == 0, "previous connection not ended");
        self.connected = true;
        self.first_id = self.next_id;
        self.sentinel = None;
        self.window_used = 0;
        self.out.clear();
        self.pos = 0;
        self.frame_ends.clear();
        self.batch_first = 0;
        self.batch_written = 0;
        self.inlen = 0;
        self.confirm_requested = false;
        self.report.connections += 1;
        if self.report.connections > 1 {
            self.report.reconnects += 1;
        }
        if !self.items.front_in_doubt() {
            self.chunk = None;
        }
    }

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
    /// So the record's bytes (at most [`TLS_RECORD`] from the first unwritten
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
    fn written_on_connection(&self) -> usize {
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

    /// Whether rejections are coming close together: the last two were
    /// fewer than [`Limits::careful_frames`] notifications apart, and the last
    /// was fewer than that ago. A careful shard writes smaller batches
    /// ([`ShardState::batch_bytes`]) over a smaller send buffer
    /// ([`ShardState::send_buffer`]), so that the next rejection throws less
    /// away: at 0.1% invalid tokens that resends about half as much, at no
    /// measurable cost in rate (see BENCHMARKS.md). Small writes cost CPU per byte, so a clean
    /// list, or one whose rejections are far apart, is never careful: one
    /// rejection alone says little about the next.
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
                self.settle(item, State::Unconfirmed, Reason::SilentWhenAlone);
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
                self.report.reject(status.unwrap_or(Status::Unknown));
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

    /// Ranges of input lines the gateway accepted or rejected since the last
    /// call: what a journal records.
    pub fn take_settled_lines(&mut self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.settled_lines)
    }

    /// Final words on notifications since the last call.
    pub fn take_outcomes(&mut self) -> Vec<Outcome> {
        self.check_conservation();
        std::mem::take(&mut self.outcomes)
    }

    /// The counts so far.
    pub fn report(&self) -> &ShardReport {
        &self.report
    }

    /// The counts, to be filled in by the driver.
    pub fn report_mut(&mut self) -> &mut ShardReport {
        &mut self.report
    }
}

#[cfg(test)]
#[path = "shard_test.rs"]
mod shard_test;
