//! The splitter: reads the input and hands batches to shards with room.

use std::io;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{Select, TrySendError};

use crate::binary::shard::Item;
use crate::handoff::Event;
use crate::input::{Entry, Record, Skip, SkipReason};
use crate::report::{Failure, Reason, State};

use super::{SplitCounts, Splitter};

/// Notifications per batch handed from the splitter to a shard.
const BATCH: usize = 512;

impl Splitter<'_> {
    pub(super) fn run<I>(mut self, input: I) -> SplitCounts
    where
        I: Iterator<Item = io::Result<Record>>,
    {
        let mut batch = Vec::with_capacity(BATCH);
        let mut batch_started = 0;
        let mut skipped = Vec::new();
        let mut input = input;
        loop {
            // Look at the flag before taking a line, so no line is read and dropped.
            if self.cancel.load(Ordering::Relaxed) {
                self.counts.interrupted = true;
                break;
            }
            let Some(record) = input.next() else { break };
            match record {
                Ok(Record::Send(entry)) if self.done_before(entry.line) => {}
                Ok(Record::Send(entry)) => {
                    if let Some(field) = self.needs_headers(&entry) {
                        let reason = SkipReason::NeedsHttp2 { field };
                        self.skip(Skip { line: entry.line, text: entry.token.to_string(), reason }, &mut skipped);
                        continue;
                    }
                    self.counts.read += 1;
                    let now = self.ticks.load(Ordering::Relaxed);
                    if batch.is_empty() {
                        batch_started = now;
                    }
                    batch.push(Item::new(entry.line, entry.token, entry.extras));
                    // A slow input (a trickling pipe) must not hold tokens back
                    // until a batch fills.
                    if batch.len() == BATCH || now - batch_started >= 2 {
                        self.dispatch(std::mem::replace(&mut batch, Vec::with_capacity(BATCH)));
                    }
                }
                Ok(Record::Skip(skip)) => self.skip(skip, &mut skipped),
                Ok(Record::OtherPartition) => self.counts.other += 1,
                Err(e) => {
                    log::error!("reading the token list failed after {} tokens: {e}", self.counts.read);
                    self.counts.input_error = Some(e.to_string());
                    break;
                }
            }
        }
        if !skipped.is_empty() {
            let _ = self.events.send(Event::Failures(skipped));
        }
        if !batch.is_empty() {
            self.dispatch(batch);
        }
        self.read.store(self.counts.read, Ordering::Relaxed);
        // The input has ended: close the channels and wake every shard, so
        // none waits for a tick to notice.
        self.senders.clear();
        for bell in self.bells {
            bell.wake();
        }
        self.counts
    }

    /// Counts a line that will not be sent; reports it with others.
    fn skip(&mut self, skip: Skip, skipped: &mut Vec<Failure>) {
        self.counts.read += 1;
        self.counts.skipped += 1;
        skipped.push(Failure::new(skip.line, skip.text, State::Skipped, &Reason::Skipped(skip.reason)));
        if skipped.len() >= BATCH {
            let _ = self.events.send(Event::Failures(std::mem::take(skipped)));
        }
    }

    /// The HTTP/2 header `entry`'s line sets that this run's transport
    /// cannot send (the binary protocol has none), if any. The reader skips
    /// such lines itself when told the transport ([`ReaderOptions::line_headers`]);
    /// this holds for any input, so that no line goes out with another meaning.
    ///
    /// [`ReaderOptions::line_headers`]: crate::input::ReaderOptions::line_headers
    fn needs_headers(&self, entry: &Entry) -> Option<&'static str> {
        match &entry.extras {
            Some(extras) if !self.line_headers => extras.headers.first_field(),
            _ => None,
        }
    }

    /// Whether an earlier run's journal says this line is settled.
    fn done_before(&mut self, line: u64) -> bool {
        let done = self.skip_lines.is_some_and(|s| s.contains(line));
        self.counts.previously_settled += u64::from(done);
        done
    }

    /// Gives a batch to a live shard with room, waiting for one if all are
    /// busy; reports it unsent if no shard can take it (all stopped, or cancelled).
    fn dispatch(&mut self, mut batch: Vec<Item>) {
        self.read.store(self.counts.read, Ordering::Relaxed);
        let n = self.senders.len();
        for k in 0..n {
            let i = (self.next + k) % n;
            if !self.alive[i].load(Ordering::Relaxed) {
                continue;
            }
            match self.senders[i].try_send(batch) {
                Ok(()) => return self.sent_to(i),
                Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) => batch = b,
            }
        }
        loop {
            let live: Vec<usize> = (0..n).filter(|&i| self.alive[i].load(Ordering::Relaxed)).collect();
            if live.is_empty() || self.cancel.load(Ordering::Relaxed) {
                return self.unsent(batch);
            }
            let mut select = Select::new();
            for &i in &live {
                select.send(&self.senders[i]);
            }
            // Bounded, so that a shard that stops or a cancel is noticed.
            let Ok(op) = select.select_timeout(Duration::from_millis(100)) else { continue };
            let i = live[op.index()];
            match op.send(&self.senders[i], batch) {
                Ok(()) => return self.sent_to(i),
                Err(e) => batch = e.into_inner(),
            }
        }
    }

    fn sent_to(&mut self, shard: usize) {
        self.bells[shard].ring();
        self.next = shard + 1;
    }

    /// Reports a batch no shard could take.
    fn unsent(&mut self, items: Vec<Item>) {
        let reason =
            if self.cancel.load(Ordering::Relaxed) { self.brakes.unsent_reason() } else { Reason::EveryShardStopped };
        self.counts.unsent += items.len() as u64;
        let failures =
            items.into_iter().map(|i| Failure::new(i.line, i.token.to_string(), State::Unsent, &reason)).collect();
        let _ = self.events.send(Event::Failures(failures));
    }
}
