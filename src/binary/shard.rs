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
//! above are all here, testable without sockets: `queue` holds the
//! notifications, `write` encodes and sizes the batches, `answer` settles
//! what the gateway's answers (or silences) decide.

mod answer;
mod queue;
mod write;

use std::sync::Arc;

use crate::binary::frame::{Command, ERROR_RESPONSE_LEN, ErrorResponse, Priority, Template};
use crate::input::LineExtras;
use crate::report::{Code, Reason, ShardReport, State};
use crate::token::DeviceToken;
use queue::Queue;

pub use write::{MIN_CAREFUL_BATCH, MIN_CAREFUL_SEND_BUFFER};

/// Silent closes a notification may see while alone in its window before it
/// is given up as unconfirmed.
pub const MAX_STRIKES: u32 = 3;

/// Queued notifications at which a shard stops taking input (the channel
/// from the splitter holds more).
const QUEUE_LIMIT: usize = 4096;

/// A notification on its way through a shard.
#[derive(Debug, Clone)]
pub struct Item {
    /// 1-based input line, for reports.
    pub line: u64,
    /// Where it goes.
    pub token: DeviceToken,
    /// What its line set for itself (its own payload, its own HTTP/2
    /// headers), or `None`: everything is the run's.
    pub extras: Option<Arc<LineExtras>>,
    /// It was written before (so writing it again is a resend).
    pub written: bool,
    /// It was in flight when a connection closed without an error response:
    /// the gateway may already have accepted it.
    pub doubt: bool,
}

impl Item {
    /// A fresh item from the input.
    pub fn new(line: u64, token: DeviceToken, extras: Option<Arc<LineExtras>>) -> Item {
        Item { line, token, extras, written: false, doubt: false }
    }

    /// Its own payload, if its line set one.
    pub fn payload(&self) -> Option<&[u8]> {
        self.extras.as_ref().and_then(|e| e.payload.as_deref())
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
    pub status: Option<Code>,
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
