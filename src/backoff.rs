//! Exponential back-off with jitter between failed attempts, and a pause
//! that a cancel cuts short.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The longest a pause sleeps without looking at the cancel flag.
const CANCEL_CHECK: Duration = Duration::from_millis(100);

/// Pauses that double from `min` to `max`, each drawn between half and all
/// of the current delay so that shards that failed together do not retry
/// together.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    seed: u64,
}

impl Backoff {
    /// A back-off seeded with `seed` (any value; distinct per shard).
    pub(crate) fn new(min: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff { min, max: max.max(min), next: min, seed: seed | 1 }
    }

    /// A seed that differs between shards and between runs.
    pub(crate) fn seed_for(shard: usize) -> u64 {
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        clock ^ (shard as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }

    /// Back to the shortest pause (an attempt succeeded).
    pub(crate) fn reset(&mut self) {
        self.next = self.min;
    }

    /// The next pause, and doubles the one after it.
    pub(crate) fn next_pause(&mut self) -> Duration {
        // xorshift64: jitter only, no need for a cryptographic generator.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let frac = 0.5 + (self.seed % 1000) as f64 / 2000.0;
        let pause = self.next.mul_f64(frac);
        self.next = (self.next * 2).min(self.max);
        pause
    }
}

/// Sleeps for `pause`, waking early when `cancel` is set.
pub(crate) fn sleep_unless_cancelled(pause: Duration, cancel: &AtomicBool) {
    let until = Instant::now() + pause;
    while !cancel.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(CANCEL_CHECK));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn pauses_double_up_to_the_longest_with_jitter_between_half_and_all() {
        let mut b = Backoff::new(100 * MS, 1000 * MS, 7);
        for full in [100, 200, 400, 800, 1000, 1000] {
            let pause = b.next_pause();
            assert!(pause >= full * MS / 2 && pause <= full * MS, "{pause:?} for {full} ms");
        }
    }

    #[test]
    fn reset_starts_again_from_the_shortest_pause() {
        let mut b = Backoff::new(100 * MS, 1000 * MS, 7);
        for _ in 0..5 {
            b.next_pause();
        }
        b.reset();
        assert!(b.next_pause() <= 100 * MS);
    }

    #[test]
    fn shards_seeded_apart_draw_different_pauses() {
        let (mut a, mut b) = (Backoff::new(MS * 1000, MS * 1000, 1), Backoff::new(MS * 1000, MS * 1000, 2));
        let draws = |x: &mut Backoff| (0..8).map(|_| x.next_pause()).collect::<Vec<_>>();
        assert_ne!(draws(&mut a), draws(&mut b));
    }

    #[test]
    fn a_cancelled_pause_returns_at_once() {
        let started = Instant::now();
        sleep_unless_cancelled(Duration::from_secs(3600), &AtomicBool::new(true));
        assert!(started.elapsed() < Duration::from_secs(3600));
    }
}
