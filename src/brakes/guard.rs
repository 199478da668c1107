//! The guards against a list that does not fit the run. Two answers are
//! about one token when a few tokens get them, and about the run when most
//! of a list does:
//!
//! - BadDeviceToken: the tokens almost certainly belong to the other
//!   environment (sandbox tokens sent to production, or the reverse), and
//!   trusting those answers would tell the user to delete a good list;
//! - DeviceTokenNotForTopic: the tokens belong to another app than
//!   `--topic` (with token auth, one key serves every app of the team, so
//!   Apple answers this for each token instead of refusing the topic), and
//!   settling those lines would make the corrected rerun skip them.
//!
//! The rule, for each: of the first [`WINDOW`] final answers (accepted or
//! rejected), more than half with that reason trips the guard. It trips as soon as that
//! is certain (more than `WINDOW / 2` of them) and clears as soon as it
//! cannot happen (`WINDOW / 2` answers that are not). A run that ends with
//! fewer answers is judged on all it got, however few: a small list (a
//! test list, a small app's) that Apple answers mostly with one of these
//! is as surely the other environment's or another app's, and a wrong
//! stop costs a rerun with `--allow-invalid-majority`, where a wrong pass
//! would settle the list in the journal.
//!
//! While a guard is undecided, the journal does not settle lines with its
//! reason (the shards hand them over as held): if it trips, a corrected
//! rerun with the same journal must send every one of them again.
//!
//! Each count is one atomic word shared by every shard: the answers in its
//! high half and those with the reason in its low half, so one
//! `fetch_add` gives each answer a consistent place in the window. Once
//! decided, an answer costs one load.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use crate::http2::answer::ApnsReason;
use crate::http2::stop::StopCause;

/// The answers the guard looks at.
pub const WINDOW: u64 = 1000;

const UNDECIDED: u8 = 0;
const CLEAR: u8 = 1;
const TRIPPED: u8 = 2;
const ONE_ANSWER: u64 = 1 << 32;

/// Both guards of a run, shared by every shard.
#[derive(Debug)]
pub(crate) struct Guards {
    /// BadDeviceToken: the other environment.
    environment: MajorityGuard,
    /// DeviceTokenNotForTopic: another app's tokens.
    topic: MajorityGuard,
}

impl Guards {
    /// Guards that judge the first answers (`on`), or that are clear from
    /// the start (the user knows the list is stale or mixed, or the
    /// transport has no such answers).
    pub(crate) fn new(on: bool) -> Guards {
        Guards { environment: MajorityGuard::new(on), topic: MajorityGuard::new(on) }
    }

    /// Whether a line answered `reason` waits for the guards before it is settled.
    pub(crate) fn holds(reason: Option<&ApnsReason>) -> bool {
        matches!(reason, Some(ApnsReason::BadDeviceToken | ApnsReason::DeviceTokenNotForTopic))
    }

    /// One final answer (accepted, or rejected with `reason`): the cause to
    /// stop the run for, once, when it trips a guard.
    pub(crate) fn observe(&self, reason: Option<&ApnsReason>) -> Option<StopCause> {
        let environment = self.environment.observe(reason == Some(&ApnsReason::BadDeviceToken));
        let topic = self.topic.observe(reason == Some(&ApnsReason::DeviceTokenNotForTopic));
        environment.map(Tripped::wrong_environment).or(topic.map(Tripped::wrong_topic))
    }

    /// The run has ended: judges what it got where still undecided. The
    /// cause to stop for when a guard tripped, now or before.
    pub(crate) fn finish(&self) -> Option<StopCause> {
        let environment = self.environment.finish();
        let topic = self.topic.finish();
        environment.map(Tripped::wrong_environment).or(topic.map(Tripped::wrong_topic))
    }

    /// Whether held lines may be settled now: both guards have cleared.
    pub(crate) fn is_clear(&self) -> bool {
        self.environment.is_clear() && self.topic.is_clear()
    }

    /// Whether a guard has tripped: held lines are never settled.
    pub(crate) fn is_tripped(&self) -> bool {
        self.environment.is_tripped() || self.topic.is_tripped()
    }

    /// Whether the environment guard has tripped: the BadDeviceToken
    /// answers say nothing about the tokens.
    pub(crate) fn wrong_environment(&self) -> bool {
        self.environment.is_tripped()
    }
}

/// One guard: a reason most of the first answers must not have.
#[derive(Debug)]
struct MajorityGuard {
    /// Answers (high 32 bits) and answers with the reason (low 32 bits).
    counts: AtomicU64,
    state: AtomicU8,
}

/// A guard tripped: `bad` of the first `of` answers had its reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tripped {
    bad: u64,
    of: u64,
}

impl Tripped {
    fn wrong_environment(self) -> StopCause {
        StopCause::WrongEnvironment { bad: self.bad, of: self.of }
    }

    fn wrong_topic(self) -> StopCause {
        StopCause::WrongTopic { bad: self.bad, of: self.of }
    }
}

impl MajorityGuard {
    fn new(on: bool) -> MajorityGuard {
        MajorityGuard { counts: AtomicU64::new(0), state: AtomicU8::new(if on { UNDECIDED } else { CLEAR }) }
    }

    /// One final answer (accepted or rejected); `bad` when it had the
    /// guard's reason. `Some` for the one answer that trips the guard.
    fn observe(&self, bad: bool) -> Option<Tripped> {
        if self.state.load(Ordering::Relaxed) != UNDECIDED {
            return None;
        }
        let add = ONE_ANSWER + u64::from(bad);
        let counts = self.counts.fetch_add(add, Ordering::Relaxed) + add;
        let (n, b) = (counts >> 32, counts & 0xFFFF_FFFF);
        if n > WINDOW {
            return None;
        }
        if 2 * b > WINDOW {
            return self.decide(TRIPPED).then_some(Tripped { bad: b, of: n });
        }
        if 2 * (n - b) >= WINDOW {
            self.decide(CLEAR);
        }
        None
    }

    /// The run has ended: judges what it got if still undecided. `Some`
    /// when the guard has tripped, now or before.
    fn finish(&self) -> Option<Tripped> {
        let counts = self.counts.load(Ordering::Relaxed);
        let (n, b) = ((counts >> 32).min(WINDOW), counts & 0xFFFF_FFFF);
        if n > 0 && 2 * b > n {
            self.decide(TRIPPED);
        } else {
            self.decide(CLEAR);
        }
        self.is_tripped().then_some(Tripped { bad: b, of: n })
    }

    /// Whether answers with the reason may be settled now.
    fn is_clear(&self) -> bool {
        self.state.load(Ordering::Relaxed) == CLEAR
    }

    /// Whether it has tripped.
    fn is_tripped(&self) -> bool {
        self.state.load(Ordering::Relaxed) == TRIPPED
    }

    /// Moves from undecided to `to`; whether this call did.
    fn decide(&self, to: u8) -> bool {
        self.state.compare_exchange(UNDECIDED, to, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_majority_of_bad_device_tokens_trips_it_once_certain() {
        let g = MajorityGuard::new(true);
        for _ in 0..500 {
            assert_eq!(g.observe(true), None);
        }
        assert!(!g.is_clear() && !g.is_tripped(), "500 of 1000 is not more than half yet");
        assert_eq!(g.observe(true), Some(Tripped { bad: 501, of: 501 }));
        assert_eq!(g.observe(true), None, "it trips once");
        assert!(g.is_tripped());
        assert_eq!(g.finish(), Some(Tripped { bad: 501, of: 501 }));
    }

    #[test]
    fn half_good_answers_clear_it() {
        let g = MajorityGuard::new(true);
        for i in 0..999 {
            assert_eq!(g.observe(i % 2 == 0), None);
        }
        assert!(!g.is_clear(), "500 bad of 999: one more bad would be more than half");
        assert_eq!(g.observe(false), None);
        assert!(g.is_clear(), "500 good answers: more than half bad cannot happen");
        for _ in 0..2000 {
            assert_eq!(g.observe(true), None, "answers after the window do not count");
        }
        assert_eq!(g.finish(), None);
    }

    #[test]
    fn a_short_run_is_judged_on_all_it_got() {
        let g = MajorityGuard::new(true);
        for i in 0..150 {
            g.observe(i % 3 != 0);
        }
        assert!(!g.is_clear(), "undecided until the run ends");
        assert_eq!(g.finish(), Some(Tripped { bad: 100, of: 150 }));
        let few = MajorityGuard::new(true);
        for i in 0..5 {
            few.observe(i != 0);
        }
        assert_eq!(few.finish(), Some(Tripped { bad: 4, of: 5 }), "a test list of five");
        let half = MajorityGuard::new(true);
        half.observe(true);
        half.observe(false);
        assert_eq!(half.finish(), None, "half is not most");
        assert!(half.is_clear());
        let none = MajorityGuard::new(true);
        assert_eq!(none.finish(), None, "no answer, nothing to judge");
    }

    #[test]
    fn off_it_is_clear_from_the_start() {
        let g = MajorityGuard::new(false);
        assert!(g.is_clear());
        for _ in 0..2000 {
            assert_eq!(g.observe(true), None);
        }
        assert_eq!(g.finish(), None);
    }

    #[test]
    fn each_reason_has_its_own_guard_and_either_holds_the_lines() {
        let g = Guards::new(true);
        let (bad, not_for_topic) = (Some(&ApnsReason::BadDeviceToken), Some(&ApnsReason::DeviceTokenNotForTopic));
        for i in 0..500 {
            assert_eq!(g.observe(if i % 2 == 0 { bad } else { not_for_topic }), None, "250 of each: no majority");
        }
        assert!(!g.is_clear() && !g.is_tripped());
        for _ in 0..250 {
            assert_eq!(g.observe(not_for_topic), None);
        }
        assert_eq!(g.observe(not_for_topic), Some(StopCause::WrongTopic { bad: 501, of: 751 }));
        assert!(g.is_tripped() && !g.wrong_environment(), "the topic's guard, not the environment's");
        assert!(!g.is_clear(), "held lines are never settled");
        assert_eq!(g.finish(), Some(StopCause::WrongTopic { bad: 501, of: 751 }));

        let clear = Guards::new(true);
        for _ in 0..WINDOW {
            clear.observe(None);
        }
        assert!(clear.is_clear(), "a list that gets accepted clears both");
        assert!(Guards::holds(bad) && Guards::holds(not_for_topic));
        assert!(!Guards::holds(Some(&ApnsReason::Unregistered)) && !Guards::holds(None));
    }

    #[test]
    fn shards_count_together() {
        let g = MajorityGuard::new(true);
        let tripped = std::thread::scope(|s| {
            let handles: Vec<_> =
                (0..4).map(|_| s.spawn(|| (0..300).filter_map(|_| g.observe(true)).count())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
        });
        assert_eq!(tripped, 1, "exactly one answer trips it");
        assert!(g.is_tripped());
    }
}
