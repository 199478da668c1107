//! What every shard of a run shares beyond its input: the run's stop and
//! its cause, the guards against a list that does not fit the run, and the
//! run-wide pauses (Apple's limit on token updates, the brake on a failing
//! service).
//!
//! Shards look at it on every answer, so the common case is one relaxed
//! load: a counter that is already zero, a guard already decided, a pause
//! already over. Nothing here takes a lock.
//!
//! A pause is one deadline for the whole run: every shard stops sending
//! until it passes; what is in flight still gets its answers.

mod guard;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::http2::answer::ApnsReason;
use crate::http2::config::{Brake, Http2Config};
use crate::http2::stop::StopCause;
use crate::report::Reason;

pub(crate) use guard::Guards;

/// Pauses for 429 TooManyProviderTokenUpdates with no notification accepted
/// in between, before the run stops: the refusals are then not passing.
const TOKEN_PAUSES: u32 = 3;

/// The shared state of one run's shards.
#[derive(Debug)]
pub(crate) struct Brakes {
    cancel: Arc<AtomicBool>,
    stop: OnceLock<StopCause>,
    /// The guards against a list of the other environment or another app.
    pub(crate) guard: Guards,
    brake: Brake,
    token_pause: Duration,
    /// The clock's zero for the deadlines below.
    base: Instant,
    /// No shard sends before this (nanoseconds after `base`).
    paused_until: AtomicU64,
    /// Nanoseconds of pauses begun.
    waited: AtomicU64,
    /// 500/503 answers in a row.
    streak: AtomicU64,
    /// Brake pauses begun during the current streak.
    engaged: AtomicU32,
    /// Nanoseconds of brake pauses during the current streak.
    streak_waited: AtomicU64,
    /// Token-update pauses since the last accepted notification.
    token_pauses: AtomicU32,
}

impl Brakes {
    /// The brakes of a run whose cancel flag is `cancel`, set up from its
    /// HTTP/2 settings (none: the binary transport, which uses only the stop).
    pub(crate) fn new(cancel: Arc<AtomicBool>, http2: Option<&Http2Config>) -> Brakes {
        let defaults = Http2Config::default();
        let h2 = http2.unwrap_or(&defaults);
        Brakes {
            cancel,
            stop: OnceLock::new(),
            guard: Guards::new(http2.is_some_and(|h| h.environment_guard)),
            brake: h2.brake,
            token_pause: h2.token_update_pause,
            base: Instant::now(),
            paused_until: AtomicU64::new(0),
            waited: AtomicU64::new(0),
            streak: AtomicU64::new(0),
            engaged: AtomicU32::new(0),
            streak_waited: AtomicU64::new(0),
            token_pauses: AtomicU32::new(0),
        }
    }

    /// Stops the run for `cause`: every shard stops sending, through the
    /// run's cancel flag. The first cause is the one kept.
    pub(crate) fn stop_run(&self, cause: StopCause) {
        let line = cause.to_string();
        // The command says it when the run ends; the log says when.
        if self.stop.set(cause).is_ok() {
            log::info!("stopping the run: {line}");
        }
        self.cancel.store(true, Ordering::Relaxed);
    }

    /// Why the run stopped, if it did.
    pub(crate) fn stop_cause(&self) -> Option<&StopCause> {
        self.stop.get()
    }

    /// The reason of a notification left unsent because the run was cancelled.
    pub(crate) fn unsent_reason(&self) -> Reason {
        match self.stop.get() {
            Some(cause) => Reason::RunStopped(cause.cause()),
            None => Reason::Interrupted,
        }
    }

    /// How long the run is still paused for at `now` (`None`: not paused).
    pub(crate) fn pause_left(&self, now: Instant) -> Option<Duration> {
        let until = self.paused_until.load(Ordering::Relaxed);
        let now = self.nanos(now);
        (until > now).then(|| Duration::from_nanos(until - now))
    }

    /// An answer with `status` and `reason` (not Refused, not in doubt).
    /// Counts 500/503 in a row across shards and engages the brake; says
    /// whether it is engaged, so that such answers use no try.
    pub(crate) fn on_status(&self, status: u16, reason: Option<&ApnsReason>, now: Instant) -> bool {
        let failing = status >= 500 && !matches!(reason, Some(ApnsReason::Shutdown));
        if !failing {
            if self.streak.load(Ordering::Relaxed) != 0 {
                self.streak.store(0, Ordering::Relaxed);
                self.engaged.store(0, Ordering::Relaxed);
                self.streak_waited.store(0, Ordering::Relaxed);
            }
            if status == 200 && self.token_pauses.load(Ordering::Relaxed) != 0 {
                self.token_pauses.store(0, Ordering::Relaxed);
            }
            return false;
        }
        let streak = self.streak.fetch_add(1, Ordering::Relaxed) + 1;
        if streak < self.brake.after.max(1) {
            return false;
        }
        if self.pause_left(now).is_none() {
            let waited = Duration::from_nanos(self.streak_waited.load(Ordering::Relaxed));
            if waited >= self.brake.give_up {
                self.stop_run(StopCause::ServiceFailing { waited_s: waited.as_secs() });
                return true;
            }
            let k = self.engaged.load(Ordering::Relaxed);
            let pause = self.brake.min.saturating_mul(1u32.checked_shl(k).unwrap_or(u32::MAX)).min(self.brake.max);
            if self.pause(now, pause) {
                self.engaged.fetch_add(1, Ordering::Relaxed);
                self.streak_waited.fetch_add(pause.as_nanos() as u64, Ordering::Relaxed);
                log::warn!("{streak} answers in a row were 500/503: the whole run pauses {pause:?}");
            }
        }
        true
    }

    /// Apple answered 429 TooManyProviderTokenUpdates: the whole run pauses
    /// (unless it already is), or stops when pausing has not helped.
    pub(crate) fn on_token_refused(&self, now: Instant) {
        if self.pause_left(now).is_some() {
            return;
        }
        let pauses = self.token_pauses.load(Ordering::Relaxed);
        if pauses >= TOKEN_PAUSES {
            self.stop_run(StopCause::TokenUpdatesRefused { pauses });
        } else if self.pause(now, self.token_pause) {
            self.token_pauses.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "Apple refused the provider token as too many updates: the whole run pauses {:?}",
                self.token_pause
            );
        }
    }

    /// The time the run spent paused, up to `end`.
    pub(crate) fn waited(&self, end: Instant) -> Duration {
        let left = self.pause_left(end).unwrap_or_default();
        Duration::from_nanos(self.waited.load(Ordering::Relaxed)).saturating_sub(left)
    }

    /// Pauses the run from `now` for `pause`, unless another shard paused
    /// it meanwhile; whether this call did.
    fn pause(&self, now: Instant, pause: Duration) -> bool {
        let from = self.nanos(now);
        let current = self.paused_until.load(Ordering::Relaxed);
        if current > from {
            return false;
        }
        let until = from.saturating_add(pause.as_nanos() as u64);
        let won = self.paused_until.compare_exchange(current, until, Ordering::Relaxed, Ordering::Relaxed).is_ok();
        if won {
            self.waited.fetch_add(until - from, Ordering::Relaxed);
        }
        won
    }

    fn nanos(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.base).as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brakes(brake: Brake, token_update_pause: Duration) -> (Brakes, Arc<AtomicBool>) {
        let cancel = Arc::new(AtomicBool::new(false));
        let h2 = Http2Config { brake, token_update_pause, ..Http2Config::default() };
        (Brakes::new(Arc::clone(&cancel), Some(&h2)), cancel)
    }

    const MS: Duration = Duration::from_millis(1);
    const BRAKE: Brake = Brake {
        after: 3,
        min: Duration::from_millis(10),
        max: Duration::from_millis(25),
        give_up: Duration::from_millis(40),
    };

    #[test]
    fn the_first_cause_wins_and_cancels_the_run() {
        let (b, cancel) = brakes(Brake::default(), MS);
        assert_eq!(b.unsent_reason(), Reason::Interrupted);
        b.stop_run(StopCause::Answer { status: 400, reason: ApnsReason::BadTopic });
        b.stop_run(StopCause::ClockWrong { age_secs: 1 });
        assert!(cancel.load(Ordering::Relaxed));
        assert_eq!(b.stop_cause(), Some(&StopCause::Answer { status: 400, reason: ApnsReason::BadTopic }));
        assert_eq!(b.unsent_reason(), Reason::RunStopped("Apple answered 400 BadTopic".into()));
    }

    #[test]
    fn failures_in_a_row_engage_the_brake_doubling_then_stop_the_run() {
        let (b, cancel) = brakes(BRAKE, MS);
        let t0 = b.base;
        let fail = |at| b.on_status(503, Some(&ApnsReason::ServiceUnavailable), at);
        assert!(!fail(t0) && !fail(t0), "two in a row do not");
        assert!(!b.on_status(200, None, t0), "an answer that is not a failure ends the streak");
        assert!(!fail(t0) && !fail(t0));
        assert!(fail(t0), "the third in a row engages it");
        assert_eq!(b.pause_left(t0), Some(10 * MS));
        assert!(fail(t0 + 5 * MS), "answers during the pause: still braked");
        assert_eq!(b.pause_left(t0 + 5 * MS), Some(5 * MS), "a pause is not stretched");
        assert!(fail(t0 + 10 * MS));
        assert_eq!(b.pause_left(t0 + 10 * MS), Some(20 * MS), "doubled");
        assert!(fail(t0 + 30 * MS));
        assert_eq!(b.pause_left(t0 + 30 * MS), Some(25 * MS), "at most max");
        assert!(!cancel.load(Ordering::Relaxed));
        assert!(fail(t0 + 55 * MS));
        assert!(cancel.load(Ordering::Relaxed), "55 ms braked, more than give_up");
        assert_eq!(b.stop_cause(), Some(&StopCause::ServiceFailing { waited_s: 0 }));
        assert_eq!(b.waited(t0 + 55 * MS), 55 * MS);
        assert_eq!(b.waited(t0 + 40 * MS), 40 * MS, "a pause not over is counted up to the end");
    }

    #[test]
    fn shutdown_and_429_are_not_failures() {
        let (b, _) = brakes(Brake { after: 1, ..BRAKE }, MS);
        let t0 = b.base;
        assert!(!b.on_status(503, Some(&ApnsReason::Shutdown), t0));
        assert!(!b.on_status(429, Some(&ApnsReason::TooManyRequests), t0));
        assert!(b.on_status(500, None, t0));
    }

    #[test]
    fn token_refusals_pause_the_run_then_stop_it_when_pausing_does_not_help() {
        let (b, cancel) = brakes(Brake::default(), 10 * MS);
        let t0 = b.base;
        b.on_token_refused(t0);
        assert_eq!(b.pause_left(t0), Some(10 * MS));
        b.on_token_refused(t0 + 5 * MS);
        assert_eq!(b.pause_left(t0 + 5 * MS), Some(5 * MS), "one pause for the answers in flight");
        b.on_status(200, None, t0 + 10 * MS);
        for i in 1..=3 {
            b.on_token_refused(t0 + i * 20 * MS);
            assert!(!cancel.load(Ordering::Relaxed), "pause {i} since the last acceptance");
        }
        b.on_token_refused(t0 + 80 * MS);
        assert_eq!(b.stop_cause(), Some(&StopCause::TokenUpdatesRefused { pauses: 3 }));
        assert_eq!(b.waited(t0 + 80 * MS), 40 * MS);
    }
}
