//! Answers: what each answer, silence or give-up settles, and when a
//! notification is sent again.

use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::binary::shard::{Item, Outcome};
use crate::brakes::Guards;
use crate::http2::answer::{ApnsReason, Verdict, describe, verdict};
use crate::http2::stop::{Shared, StopCause};
use crate::journal::push_line;
use crate::report::{Reason, State};

use super::{Answer, Entry, Followup, H2State, Ticket, Waiting, mix64};

/// Where a notification sent again waits.
#[derive(Debug, Clone, Copy)]
enum Again {
    /// At the front of the queue: next.
    Now,
    /// Among the retries, after a back-off from this moment.
    After(Instant),
}

impl H2State {
    /// What the gateway said about one send. An unknown ticket, or one
    /// answered before, is ignored.
    pub fn on_answer(&mut self, ticket: Ticket, answer: Answer, now: Instant) -> Followup {
        let Some(entry) = self.in_flight.remove(&ticket.0) else {
            return Followup::None;
        };
        let followup = match answer {
            Answer::Refused => {
                self.queue.push_front(entry);
                Followup::None
            }
            // A stream reset on a connection that goes on: behind fresh
            // work, as for a connection lost after answering.
            Answer::InDoubt => {
                if let Some(entry) = self.in_doubt(entry, true) {
                    self.queue.push_back(entry);
                }
                Followup::None
            }
            Answer::Status { status, reason, timestamp_ms } => match verdict(status, reason.as_ref(), shared(&entry)) {
                Verdict::Accepted => {
                    self.accept(entry);
                    Followup::None
                }
                Verdict::Rejected => {
                    self.reject(entry, status, reason, timestamp_ms);
                    Followup::None
                }
                Verdict::RenewToken => {
                    self.again(entry, status, reason.as_ref(), Again::Now);
                    Followup::RenewToken
                }
                Verdict::Retry if self.braked && status >= 500 => {
                    self.queue.push_front(entry);
                    Followup::None
                }
                Verdict::Retry => {
                    self.again(entry, status, reason.as_ref(), Again::After(now));
                    Followup::None
                }
                Verdict::RetryElsewhere => {
                    self.again(entry, status, reason.as_ref(), Again::Now);
                    Followup::CloseConnection
                }
                // Not settled, no try used: it ends unsent with the run's
                // cause (or unconfirmed, if an earlier send is in doubt).
                Verdict::StopRun => match reason {
                    Some(reason) => {
                        self.queue.push_front(entry);
                        self.cancel();
                        Followup::StopRun(StopCause::Answer { status, reason })
                    }
                    None => unreachable!("only a reason stops the run"),
                },
                Verdict::PauseRun => {
                    self.queue.push_front(entry);
                    Followup::PauseRun
                }
            },
        };
        self.check_conservation();
        followup
    }

    /// The connection is gone: every send still in flight is in doubt, in
    /// the order they were sent. What that costs depends on `answered`,
    /// whether the connection answered anything.
    ///
    /// A connection that did, and then died, is at fault, not the sends it
    /// had open: they use no try (the connection's answers bound the run,
    /// as each settled something) and go behind fresh work, because sent
    /// first again they would fill the next connection's first streams
    /// together, and behind the queue a run of bad connections spreads its
    /// losses over the list. A connection that answered nothing may have
    /// died of what it was sent: each send uses a try, as with
    /// [`Answer::InDoubt`], and goes first again, so that a gateway which
    /// never answers keeps the same few in doubt instead of a new few on
    /// every connection, and gives up on them after their tries.
    pub fn on_connection_lost(&mut self, answered: bool, _now: Instant) {
        let mut lost: Vec<(u64, Entry)> = self.in_flight.drain().collect();
        lost.sort_unstable_by_key(|(ticket, _)| *ticket);
        let mut again = Vec::with_capacity(lost.len());
        for (_, entry) in lost {
            again.extend(self.in_doubt(entry, !answered));
        }
        if answered {
            self.queue.extend(again);
        } else {
            for entry in again.into_iter().rev() {
                self.queue.push_front(entry);
            }
        }
        self.check_conservation();
    }

    /// The gateway closed the connection with GOAWAY, giving `reason` in
    /// its debug data (Apple's `Shutdown`, …) or none: counted. What was in
    /// flight is settled by its answers and [`H2State::on_connection_lost`].
    pub fn on_goaway(&mut self, _reason: Option<&ApnsReason>) {
        self.report.goaways += 1;
    }

    /// Gives up on everything not settled (the run was cancelled or the
    /// thread cannot connect): what may have reached the gateway (in doubt,
    /// or still in flight) is unconfirmed, the rest unsent.
    pub fn abandon(&mut self, why: impl Into<Reason>) {
        let reason = why.into();
        let mut in_flight: Vec<(u64, Entry)> = self.in_flight.drain().collect();
        in_flight.sort_unstable_by_key(|(ticket, _)| *ticket);
        for (_, entry) in in_flight {
            self.finish(entry.item, State::Unconfirmed, reason.clone());
        }
        let retries = std::mem::take(&mut self.retries).into_sorted_vec().into_iter().rev().map(|w| w.entry);
        let queue = std::mem::take(&mut self.queue);
        for entry in retries.chain(queue) {
            let state = if entry.item.doubt { State::Unconfirmed } else { State::Unsent };
            self.finish(entry.item, state, reason.clone());
        }
        self.check_conservation();
    }

    fn accept(&mut self, entry: Entry) {
        self.report.accepted += 1;
        if entry.item.doubt {
            self.report.possibly_duplicated += 1;
        }
        push_line(&mut self.settled_lines, entry.item.line);
        self.answered += 1;
        self.settled += 1;
    }

    fn reject(&mut self, entry: Entry, status: u16, reason: Option<ApnsReason>, timestamp_ms: Option<u64>) {
        match &reason {
            Some(r) if r.is_named() => self.report.reject_as(r.as_str()),
            // An unknown reason is counted under its status: a gateway's
            // words do not make new counters.
            _ => self.report.reject_as(&status.to_string()),
        }
        let lines = if Guards::holds(reason.as_ref()) { &mut self.held_lines } else { &mut self.settled_lines };
        push_line(lines, entry.item.line);
        self.answered += 1;
        let unregistered_at = if status == 410 { timestamp_ms } else { None };
        self.finish(entry.item, State::Rejected, Reason::Http2Rejected { status, reason, unregistered_at });
    }

    /// Sent and not answered: in doubt, and returned to be sent again
    /// unless it had all its tries (this send one of them when `charged`).
    #[must_use]
    fn in_doubt(&mut self, mut entry: Entry, charged: bool) -> Option<Entry> {
        entry.item.doubt = true;
        entry.tries += u32::from(charged);
        if entry.tries >= self.policy.max_tries {
            let tries = entry.tries;
            self.finish(entry.item, State::Unconfirmed, Reason::Http2InDoubt { tries });
            None
        } else {
            Some(entry)
        }
    }

    /// Answered "send it again": a try; given up after the last one.
    fn again(&mut self, mut entry: Entry, status: u16, reason: Option<&ApnsReason>, when: Again) {
        entry.tries += 1;
        if entry.tries >= self.policy.max_tries {
            let (tries, last) = (entry.tries, describe(status, reason));
            self.finish(entry.item, State::Unconfirmed, Reason::Http2GaveUp { tries, last });
            return;
        }
        match when {
            Again::Now => self.queue.push_front(entry),
            Again::After(now) => {
                let due = now + self.pause(entry.tries);
                self.retries.push(Waiting { due, seq: self.next_seq, entry });
                self.next_seq += 1;
            }
        }
    }

    /// The back-off after `tries` tries: `backoff_min` doubled per try
    /// after the first, at most `backoff_max`, drawn between half and all of it.
    fn pause(&mut self, tries: u32) -> Duration {
        let factor = 1u32.checked_shl(tries.saturating_sub(1)).unwrap_or(u32::MAX);
        let full = self.policy.backoff_min.saturating_mul(factor).min(self.policy.backoff_max);
        self.rng = mix64(self.rng);
        Backoff::new(full, full, self.rng).next_pause()
    }

    /// Records a final state other than accepted.
    fn finish(&mut self, item: Item, state: State, reason: Reason) {
        match state {
            State::Unconfirmed => self.report.unconfirmed += 1,
            State::Unsent => self.report.unsent += 1,
            State::Rejected => {}
            State::Accepted | State::Skipped => unreachable!("not a connection's outcome"),
        }
        self.settled += 1;
        self.outcomes.push(Outcome { item, state, status: None, reason });
    }
}

/// Which values of the run `entry`'s request carried: each one its line
/// did not set (a line's push type brings its own topic and priority).
fn shared(entry: &Entry) -> Shared {
    match &entry.item.extras {
        None => Shared::ALL,
        Some(own) => Shared {
            topic: own.headers.topic().is_none() && own.headers.push_type().is_none(),
            payload: own.payload.is_none(),
            collapse_id: own.headers.collapse_id().is_none(),
        },
    }
}
