//! The splitter's hand-off to a shard (a bounded channel of batches, a
//! doorbell that wakes the shard's event loop, and the run's cancel flag)
//! and the shard's [`Event`]s back to the run.
//!
//! Nothing here knows how a shard waits. The binary driver sleeps in mio's
//! `Poll` and is woken by a `mio::Waker`; a driver on another event loop
//! gives the doorbell its own [`Wake`].

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};

use crate::binary::shard::Outcome;
use crate::report::{Failure, Reason, ShardReport};

/// Wakes one shard's event loop from another thread.
pub(crate) trait Wake: Send + Sync {
    /// Makes the shard's next (or current) wait return at once.
    fn wake(&self);
}

/// How the splitter tells a connected shard that input arrived. The shard
/// says it is listening just before it waits with nothing to write; the
/// splitter wakes it only then. A shard that is busy writing, or waiting
/// for the socket or the gateway, looks at its channel when that wait ends,
/// so waking it would cost a system call per batch for nothing.
pub(crate) struct Doorbell {
    waker: Box<dyn Wake>,
    listening: AtomicBool,
}

impl fmt::Debug for Doorbell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Doorbell").field("listening", &self.listening).finish_non_exhaustive()
    }
}

impl Doorbell {
    /// A doorbell that wakes the shard through `waker`.
    pub(crate) fn new(waker: impl Wake + 'static) -> Doorbell {
        Doorbell { waker: Box::new(waker), listening: AtomicBool::new(false) }
    }

    /// The splitter queued a batch for the shard: wake it if it listens.
    pub(crate) fn ring(&self) {
        // Pairs with the fence in `listen`: either the shard's look at its
        // channel finds the batch, or this finds the shard listening.
        fence(Ordering::SeqCst);
        if self.listening.swap(false, Ordering::Relaxed) {
            self.waker.wake();
        }
    }

    /// Wake the shard whatever it is doing (the input has ended).
    pub(crate) fn wake(&self) {
        self.waker.wake();
    }

    /// The shard is about to wait for input; it looks at its channel once
    /// more after this, before it sleeps.
    pub(crate) fn listen(&self) {
        self.listening.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// The shard is awake and looks at its channel before it waits again.
    pub(crate) fn stop_listening(&self) {
        self.listening.store(false, Ordering::Relaxed);
    }
}

/// What takes a shard's input: its transport's sans-I/O state.
pub(crate) trait Intake<T> {
    /// Whether it wants more input now.
    fn wants_input(&self) -> bool;
    /// Adds a batch, in input order.
    fn push(&mut self, batch: Vec<T>);
    /// The input has ended.
    fn finish_input(&mut self);
    /// Whether the run's cancel has been noted.
    fn is_cancelled(&self) -> bool;
    /// Notes the run's cancel: stop taking and writing new input.
    fn cancel(&mut self);
}

/// A shard's input: batches from the splitter, the doorbell it rings, and
/// the run's cancel flag.
pub(crate) struct Inbox<'a, T> {
    /// Batches of notifications, in input order; disconnected when the input ends.
    pub(crate) batches: Receiver<Vec<T>>,
    /// Rung by the splitter after it queues a batch.
    pub(crate) bell: &'a Doorbell,
    /// Set when the run is cancelled.
    pub(crate) cancel: &'a AtomicBool,
}

impl<T> Inbox<'_, T> {
    /// Whether the run has been cancelled.
    pub(crate) fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// Takes whatever batches are queued, up to the shard's appetite; notes
    /// the end of the input and a cancel.
    pub(crate) fn pull(&self, state: &mut impl Intake<T>) {
        if self.cancelled() && !state.is_cancelled() {
            state.cancel();
        }
        while state.wants_input() {
            match self.batches.try_recv() {
                Ok(batch) => state.push(batch),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => state.finish_input(),
            }
        }
    }

    /// Waits, with no connection open, up to `tick` for input: on the channel
    /// itself, since nothing but input can end this wait.
    pub(crate) fn wait(&self, state: &mut impl Intake<T>, tick: Duration) {
        match self.batches.recv_timeout(tick) {
            Ok(batch) => state.push(batch),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => state.finish_input(),
        }
    }
}

/// What a shard tells the run while it works.
#[derive(Debug)]
pub(crate) enum Event {
    /// Final words on tokens that were not accepted.
    Failures(Vec<Failure>),
    /// Input lines the gateway accepted or rejected (for the journal).
    Settled(Vec<(u64, u64)>),
    /// Input lines answered BadDeviceToken while the environment guard was
    /// undecided: settled once it clears, never if it trips.
    Held(Vec<(u64, u64)>),
    /// The shard's counts so far.
    Progress(ShardReport),
    /// The shard is finished; its final counts.
    Done(ShardReport),
}

/// What a shard's transport state hands back to the run, the same for
/// both transports: lines settled, final words on tokens, its counts.
pub(crate) trait Settles {
    /// Ranges of input lines accepted or rejected since the last call.
    fn take_settled_lines(&mut self) -> Vec<(u64, u64)>;
    /// Final words on notifications not accepted, since the last call.
    fn take_outcomes(&mut self) -> Vec<Outcome>;
    /// The shard's counts.
    fn report_mut(&mut self) -> &mut ShardReport;
    /// Stops taking and sending new input.
    fn cancel(&mut self);
    /// Ends everything not settled, for `reason`.
    fn abandon(&mut self, reason: Reason);
}

/// Sends the run what the shard settled since the last call.
pub(crate) fn flush_outcomes(state: &mut impl Settles, events: &Sender<Event>) {
    let settled = state.take_settled_lines();
    if !settled.is_empty() {
        let _ = events.send(Event::Settled(settled));
    }
    let outcomes = state.take_outcomes();
    if !outcomes.is_empty() {
        let failures = outcomes
            .into_iter()
            .map(|o| Failure::new(o.item.line, o.item.token.to_string(), o.state, &o.reason))
            .collect();
        let _ = events.send(Event::Failures(failures));
    }
}

/// The shard gives up for good (`why`, as `gave up: ...`): the splitter
/// stops routing to it (`alive`), and everything it holds ends unsent or,
/// if it may have been delivered, unconfirmed.
pub(crate) fn give_up(state: &mut impl Settles, why: String, alive: &AtomicBool) {
    let report = state.report_mut();
    log::error!("shard {} {why}", report.shard);
    report.error = Some(why.clone());
    alive.store(false, Ordering::Relaxed);
    state.cancel();
    state.abandon(Reason::ShardStopped(why));
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// Counts its wake-ups.
    #[derive(Clone, Default)]
    struct Counter(Arc<AtomicUsize>);

    impl Wake for Counter {
        fn wake(&self) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    impl Counter {
        /// Wake-ups since the last call.
        fn take(&self) -> usize {
            self.0.swap(0, Ordering::Relaxed)
        }
    }

    #[test]
    fn the_doorbell_wakes_a_shard_only_while_it_listens() {
        let count = Counter::default();
        let bell = Doorbell::new(count.clone());
        bell.ring();
        assert_eq!(count.take(), 0, "a busy shard is not woken");
        bell.listen();
        bell.ring();
        assert_eq!(count.take(), 1, "a listening shard is woken");
        bell.ring();
        assert_eq!(count.take(), 0, "one wake-up per listen");
        bell.listen();
        bell.stop_listening();
        bell.ring();
        assert_eq!(count.take(), 0, "a shard that woke up by itself is not woken again");
        bell.wake();
        assert_eq!(count.take(), 1, "the end of the input wakes every shard");
    }

    /// An intake that takes up to `room` items.
    #[derive(Default)]
    struct Taken {
        items: Vec<u32>,
        room: usize,
        ended: bool,
        cancelled: bool,
    }

    impl Intake<u32> for Taken {
        fn wants_input(&self) -> bool {
            !self.ended && !self.cancelled && self.items.len() < self.room
        }
        fn push(&mut self, batch: Vec<u32>) {
            self.items.extend(batch);
        }
        fn finish_input(&mut self) {
            self.ended = true;
        }
        fn is_cancelled(&self) -> bool {
            self.cancelled
        }
        fn cancel(&mut self) {
            self.cancelled = true;
        }
    }

    #[test]
    fn pull_takes_batches_up_to_the_shards_appetite_and_notes_the_end() {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let (bell, cancel) = (Doorbell::new(Counter::default()), AtomicBool::new(false));
        let inbox = Inbox { batches: rx, bell: &bell, cancel: &cancel };
        let mut taken = Taken { room: 3, ..Taken::default() };
        for batch in [vec![1, 2], vec![3, 4], vec![5]] {
            tx.send(batch).unwrap();
        }
        inbox.pull(&mut taken);
        assert_eq!(taken.items, [1, 2, 3, 4], "stops once full, never splits a batch");
        taken.room = 10;
        drop(tx);
        inbox.pull(&mut taken);
        assert_eq!(taken.items, [1, 2, 3, 4, 5]);
        assert!(taken.ended, "a closed channel is the end of the input");
    }

    #[test]
    fn pull_passes_the_runs_cancel_on_and_takes_nothing_more() {
        let (tx, rx) = crossbeam_channel::bounded(4);
        let (bell, cancel) = (Doorbell::new(Counter::default()), AtomicBool::new(true));
        let inbox = Inbox { batches: rx, bell: &bell, cancel: &cancel };
        tx.send(vec![1]).unwrap();
        let mut taken = Taken { room: 10, ..Taken::default() };
        inbox.pull(&mut taken);
        assert!(taken.cancelled);
        assert!(taken.items.is_empty(), "a cancelled shard takes no new input");
    }
}
