//! The environment guard: when most of a run's first answers are
//! BadDeviceToken, the tokens almost certainly belong to the other
//! environment (sandbox tokens sent to production, or the reverse), and
//! trusting those answers would tell the user to delete a good list.
//!
//! The rule: of the first [`WINDOW`] final answers (accepted or rejected),
//! more than half BadDeviceToken trips the guard. It trips as soon as that
//! is certain (more than `WINDOW / 2` of them) and clears as soon as it
//! cannot happen (`WINDOW / 2` answers that are not). A run that ends with
//! fewer answers is judged on what it got, when it got at least [`MIN`]:
//! too few answers say nothing about the list.
//!
//! While the guard is undecided, the journal does not settle BadDeviceToken
//! lines (the shards hand them over as held): if it trips, a corrected
//! rerun with the same journal must send every one of them again.
//!
//! The count is one atomic word shared by every shard: the answers in its
//! high half and the BadDeviceToken ones in its low half, so one
//! `fetch_add` gives each answer a consistent place in the window. Once
//! decided, an answer costs one load.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

/// The answers the guard looks at.
pub const WINDOW: u64 = 1000;
/// The fewest answers it judges at the end of a run.
pub const MIN: u64 = 100;

const UNDECIDED: u8 = 0;
const CLEAR: u8 = 1;
const TRIPPED: u8 = 2;
const ONE_ANSWER: u64 = 1 << 32;

/// The guard, shared by every shard of a run.
#[derive(Debug)]
pub(crate) struct EnvGuard {
    /// Answers (high 32 bits) and BadDeviceToken answers (low 32 bits).
    counts: AtomicU64,
    state: AtomicU8,
}

/// The guard tripped: `bad` of the first `of` answers were BadDeviceToken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tripped {
    pub(crate) bad: u64,
    pub(crate) of: u64,
}

impl EnvGuard {
    /// A guard that judges the first answers (`on`), or one that is clear
    /// from the start (the user knows the list is stale, or the transport
    /// has no such answer).
    pub(crate) fn new(on: bool) -> EnvGuard {
        EnvGuard { counts: AtomicU64::new(0), state: AtomicU8::new(if on { UNDECIDED } else { CLEAR }) }
    }

    /// One final answer (accepted or rejected); `bad` when it was
    /// BadDeviceToken. `Some` for the one answer that trips the guard.
    pub(crate) fn observe(&self, bad: bool) -> Option<Tripped> {
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
    pub(crate) fn finish(&self) -> Option<Tripped> {
        let counts = self.counts.load(Ordering::Relaxed);
        let (n, b) = ((counts >> 32).min(WINDOW), counts & 0xFFFF_FFFF);
        if n >= MIN && 2 * b > n {
            self.decide(TRIPPED);
        } else {
            self.decide(CLEAR);
        }
        self.is_tripped().then_some(Tripped { bad: b, of: n })
    }

    /// Whether BadDeviceToken answers may be settled now.
    pub(crate) fn is_clear(&self) -> bool {
        self.state.load(Ordering::Relaxed) == CLEAR
    }

    /// Whether it has tripped.
    pub(crate) fn is_tripped(&self) -> bool {
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
        let g = EnvGuard::new(true);
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
        let g = EnvGuard::new(true);
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
    fn a_short_run_is_judged_on_what_it_got_with_enough_answers() {
        let g = EnvGuard::new(true);
        for i in 0..150 {
            g.observe(i % 3 != 0);
        }
        assert!(!g.is_clear(), "undecided until the run ends");
        assert_eq!(g.finish(), Some(Tripped { bad: 100, of: 150 }));
        let few = EnvGuard::new(true);
        for _ in 0..(MIN - 1) {
            few.observe(true);
        }
        assert_eq!(few.finish(), None, "too few answers to judge");
        assert!(few.is_clear());
    }

    #[test]
    fn off_it_is_clear_from_the_start() {
        let g = EnvGuard::new(false);
        assert!(g.is_clear());
        for _ in 0..2000 {
            assert_eq!(g.observe(true), None);
        }
        assert_eq!(g.finish(), None);
    }

    #[test]
    fn shards_count_together() {
        let g = EnvGuard::new(true);
        let tripped = std::thread::scope(|s| {
            let handles: Vec<_> =
                (0..4).map(|_| s.spawn(|| (0..300).filter_map(|_| g.observe(true)).count())).collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
        });
        assert_eq!(tripped, 1, "exactly one answer trips it");
        assert!(g.is_tripped());
    }
}
