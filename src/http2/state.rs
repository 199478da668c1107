//! The sans-I/O state of one HTTP/2 connection thread: what to send next,
//! what is in flight, and what each answer (or silence) settles.
//!
//! Every request gets an answer of its own, so unlike the binary shard
//! nothing waits for a later proof; what needs care is what gets no
//! answer, and what Apple asks to have sent again:
//!
//! ```text
//!   input ─▶ queue ──next_request()──▶ in flight (by Ticket) ──on_answer()──▶ 200: accepted
//!             ▲  ▲ ▲                        │                               400/410/413…: rejected
//!             │  │ └ back: in doubt* ───────┤
//!             │  └── front: refused, expired token, Shutdown ───────────────┤
//!             └───── retries (due at a time): 429, 500, 503 ◀───────────────┘
//! ```
//!
//! \* At the front instead when its connection answered nothing (see
//! [`H2State::on_connection_lost`]).
//!
//! A *try* is a send that got an answer other than "refused", or got none
//! where the blame may be its own (a stream reset, a connection that
//! answered nothing else): a notification gets at most
//! [`RetryPolicy::max_tries`] of them, then ends unconfirmed. A connection
//! lost after answering costs its open sends no try, since each such
//! connection settled something; so every run converges. A send that got
//! no answer leaves the notification *in doubt*: if a later send is
//! accepted, it may have been delivered twice (`possibly_duplicated`).
//!
//! Tickets are never reused, so a stale answer (after
//! [`H2State::on_connection_lost`]) settles nothing twice.
//!
//! This file holds the queue and the sending side; `settle` holds what each
//! answer decides.

use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::binary::shard::{Item, Outcome};
use crate::handoff::Intake;
use crate::input::LineExtras;
use crate::report::ShardReport;
use crate::token::DeviceToken;

use super::answer::ApnsReason;
use super::stop::StopCause;

mod budget;
mod entry;
mod settle;

pub use budget::StreamBudget;
use entry::{Entry, Waiting};

/// Notifications waiting (new and retries) at which a connection thread
/// stops taking input, as the binary shard does.
const QUEUE_LIMIT: usize = 4096;

/// Identifies one send of one notification (one stream). Never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(u64);

impl Ticket {
    /// Its number (tickets count up from 0 per connection thread).
    pub fn get(self) -> u64 {
        self.0
    }
}

/// One send to make now.
#[derive(Debug)]
pub struct Request<'a> {
    /// Pass it back with the answer.
    pub ticket: Ticket,
    /// Where it goes.
    pub token: &'a DeviceToken,
    /// What its line set for itself (its own payload, its own headers), or
    /// `None`: everything is the run's.
    pub extras: Option<&'a LineExtras>,
    /// Its `apns-id`: the same for every send of one notification.
    pub apns_id: u128,
}

/// What became of one send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// The gateway answered.
    Status {
        /// `:status`.
        status: u16,
        /// The reason in the body of a non-200 answer.
        reason: Option<ApnsReason>,
        /// The body's timestamp (ms; 410 only).
        timestamp_ms: Option<u64>,
    },
    /// REFUSED_STREAM, or a stream above a GOAWAY's last-stream-id: never processed.
    Refused,
    /// No answer and the gateway may have processed it: the connection
    /// dropped with the stream open, a GOAWAY at or below its
    /// last-stream-id closed before answering, or the answer timed out.
    InDoubt,
}

/// What the driver does after an answer, besides sending what is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followup {
    /// Nothing.
    None,
    /// The shared provider token expired: renew it before sending again.
    RenewToken,
    /// The gateway is shutting this connection down (503 Shutdown): stop
    /// sending here, let in-flight requests finish, connect anew.
    CloseConnection,
    /// The answer was about the run, not the token: stop the whole run.
    /// This state has stopped sending already.
    StopRun(StopCause),
    /// Apple refused a provider-token update: pause the whole run.
    PauseRun,
}

/// How often, and how patiently, a notification is sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Sends a notification gets at most (refused ones not counted).
    pub max_tries: u32,
    /// The back-off before the first retry after 429, 500 or 503; it
    /// doubles with each try.
    pub backoff_min: Duration,
    /// The longest back-off.
    pub backoff_max: Duration,
    /// Seeds the jitter and the `apns-id`s (any value; see [`RetryPolicy::default`]).
    pub seed: u64,
}

impl Default for RetryPolicy {
    /// 5 tries, back-off from 1 s to 30 s, a seed from the clock (so
    /// `apns-id`s differ between runs).
    fn default() -> RetryPolicy {
        RetryPolicy {
            max_tries: 5,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            seed: Backoff::seed_for(0),
        }
    }
}

/// The state of one HTTP/2 connection thread across all its connections.
#[derive(Debug)]
pub struct H2State {
    policy: RetryPolicy,
    /// Seeds the `apns-id`s.
    id_seed: u64,
    /// Jitter for back-offs.
    rng: u64,
    queue: VecDeque<Entry>,
    retries: BinaryHeap<Waiting>,
    in_flight: HashMap<u64, Entry>,
    next_ticket: u64,
    next_seq: u64,
    input_done: bool,
    cancelled: bool,
    /// The run-wide brake is on: 5xx answers go back to the queue without a try.
    braked: bool,
    /// Notifications pushed in, for the conservation check.
    received: u64,
    /// Notifications in a final state.
    settled: u64,
    /// Accepted or rejected.
    answered: u64,
    outcomes: Vec<Outcome>,
    settled_lines: Vec<(u64, u64)>,
    /// Lines answered BadDeviceToken or DeviceTokenNotForTopic: settled once the guards allow.
    held_lines: Vec<(u64, u64)>,
    report: ShardReport,
}

impl H2State {
    /// A connection thread with nothing to send yet.
    pub fn new(shard: usize, retry: RetryPolicy) -> H2State {
        let policy = RetryPolicy { max_tries: retry.max_tries.max(1), ..retry };
        let id_seed = mix64(retry.seed ^ mix64(shard as u64));
        H2State {
            policy,
            id_seed,
            rng: mix64(id_seed) | 1,
            queue: VecDeque::with_capacity(2 * QUEUE_LIMIT),
            retries: BinaryHeap::new(),
            in_flight: HashMap::new(),
            next_ticket: 0,
            next_seq: 0,
            input_done: false,
            cancelled: false,
            braked: false,
            received: 0,
            settled: 0,
            answered: 0,
            outcomes: Vec::new(),
            settled_lines: Vec::new(),
            held_lines: Vec::new(),
            report: ShardReport { shard, ..ShardReport::default() },
        }
    }

    /// Whether it wants more input now.
    pub fn wants_input(&self) -> bool {
        !self.input_done && !self.cancelled && self.queued() < QUEUE_LIMIT
    }

    /// Adds notifications from the input, in order.
    pub fn push(&mut self, items: impl IntoIterator<Item = Item>) {
        let before = self.queue.len();
        self.queue.extend(items.into_iter().map(|item| Entry { item, tries: 0 }));
        self.received += (self.queue.len() - before) as u64;
    }

    /// The input has ended.
    pub fn finish_input(&mut self) {
        self.input_done = true;
    }

    /// Stop sending: nothing new, no retries; what is in flight still gets
    /// its answer. [`H2State::abandon`] then settles the rest.
    pub fn cancel(&mut self) {
        self.cancelled = true;
    }

    /// Whether [`H2State::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// The next notification to send now: a retry that is due, else the
    /// front of the queue. Marks it in flight and counts it written
    /// (`frames_written`, and `resent` when it was sent before). `None`
    /// when nothing is ready, or after a cancel.
    pub fn next_request(&mut self, now: Instant) -> Option<Request<'_>> {
        if self.cancelled {
            return None;
        }
        let mut entry = match self.retries.peek() {
            Some(w) if w.due <= now => self.retries.pop().map(|w| w.entry)?,
            _ => self.queue.pop_front()?,
        };
        self.report.frames_written += 1;
        if entry.item.written {
            self.report.resent += 1;
        }
        entry.item.written = true;
        let apns_id = apns_id(self.id_seed, entry.item.line);
        let ticket = self.next_ticket;
        self.next_ticket += 1;
        let entry = self.in_flight.entry(ticket).insert_entry(entry).into_mut();
        Some(Request {
            ticket: Ticket(ticket),
            token: &entry.item.token,
            extras: entry.item.extras.as_deref(),
            apns_id,
        })
    }

    /// Whether [`H2State::next_request`] would give a notification now.
    pub fn ready(&self, now: Instant) -> bool {
        !self.cancelled && (!self.queue.is_empty() || self.retries.peek().is_some_and(|w| w.due <= now))
    }

    /// When the earliest retry becomes due (`None`: no retry waits, or the
    /// run was cancelled).
    pub fn next_due(&self) -> Option<Instant> {
        if self.cancelled {
            return None;
        }
        self.retries.peek().map(|w| w.due)
    }

    /// Sends awaiting an answer.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Notifications waiting to be sent, retries included.
    pub fn queued(&self) -> usize {
        self.queue.len() + self.retries.len()
    }

    /// Whether there is anything left to do (a connection is needed).
    pub fn has_work(&self) -> bool {
        !self.in_flight.is_empty() || (!self.cancelled && (self.queued() > 0 || !self.input_done))
    }

    /// Notifications the gateway accepted or rejected so far: the proof
    /// that a connection achieved something.
    pub fn answered(&self) -> u64 {
        self.answered
    }

    /// Final words on notifications not accepted, since the last call.
    pub fn take_outcomes(&mut self) -> Vec<Outcome> {
        self.check_conservation();
        std::mem::take(&mut self.outcomes)
    }

    /// Ranges of input lines the gateway accepted or rejected since the
    /// last call, but for those the guards hold (see [`H2State::take_held_lines`]):
    /// what a journal records.
    pub fn take_settled_lines(&mut self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.settled_lines)
    }

    /// Ranges of input lines answered BadDeviceToken or
    /// DeviceTokenNotForTopic since the last call: settled only once the
    /// run's guards have cleared, since a list of the other environment's
    /// tokens, or of another app's, gets nothing else.
    pub fn take_held_lines(&mut self) -> Vec<(u64, u64)> {
        std::mem::take(&mut self.held_lines)
    }

    /// The run-wide brake on a failing service is engaged (`on`) or not:
    /// while it is, answers of 500 or 503 send the notification back to the
    /// front of the queue without using a try, since the run pauses as a whole.
    pub fn set_braked(&mut self, on: bool) {
        self.braked = on;
    }

    /// The counts so far.
    pub fn report(&self) -> &ShardReport {
        &self.report
    }

    /// The counts, for the driver to fill in (connections, timings).
    pub fn report_mut(&mut self) -> &mut ShardReport {
        &mut self.report
    }

    /// Every notification pushed is queued, waiting to retry, in flight, or settled.
    fn check_conservation(&self) {
        debug_assert_eq!(
            self.received,
            (self.queue.len() + self.retries.len() + self.in_flight.len()) as u64 + self.settled,
            "shard {}: a notification went missing",
            self.report.shard
        );
    }
}

impl Intake<Item> for H2State {
    fn wants_input(&self) -> bool {
        H2State::wants_input(self)
    }
    fn push(&mut self, batch: Vec<Item>) {
        H2State::push(self, batch);
    }
    fn finish_input(&mut self) {
        H2State::finish_input(self);
    }
    fn is_cancelled(&self) -> bool {
        H2State::is_cancelled(self)
    }
    fn cancel(&mut self) {
        H2State::cancel(self);
    }
}

/// splitmix64's finalizer: spreads every bit of `z` over the result.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `apns-id` of the notification on input line `line`: a random
/// (version 4, RFC 9562 variant) UUID drawn from `seed` and the line, so
/// every send of one notification carries the same id.
pub(crate) fn apns_id(seed: u64, line: u64) -> u128 {
    let hi = mix64(seed ^ mix64(line));
    let lo = mix64(hi ^ line.rotate_left(32));
    let id = (u128::from(hi) << 64) | u128::from(lo);
    let id = (id & !(0xF << 76)) | (0x4 << 76);
    (id & !(0x3 << 62)) | (0x2 << 62)
}

#[cfg(test)]
#[path = "state_test.rs"]
mod state_test;

#[cfg(test)]
#[path = "state/conservation_test.rs"]
mod conservation_test;

#[cfg(test)]
#[path = "state/stop_test.rs"]
mod stop_test;
