//! What the HTTP/2 gateway does: the topic it serves, its stream and window
//! sizes, the token-auth rules it enforces and the faults it injects.
//!
//! Faults are deterministic. A property of a device token (410 Unregistered,
//! like `bad_rate`'s 400 BadDeviceToken) comes from a seeded hash of the token,
//! so a token that is gone stays gone on every connection. A passing trouble
//! (429, 500, 503) comes from a seeded hash of the request's sequence number
//! over the gateway's life: the set of numbers is fixed, so the *count* of
//! such answers over N requests is the same in every run, whatever the order.

use std::time::Duration;

use super::{rate_threshold, splitmix64};

/// The topic (bundle id) `Http2Config::default()` serves; the generated
/// client certificate names the same one.
pub const DEFAULT_TOPIC: &str = "com.example.app";

/// HTTP/2 provider API settings, inside [`super::Config`] (which also gives
/// the bad-token rule, the seed and the ledger switches).
#[derive(Debug, Clone)]
pub struct Http2Config {
    /// The app's bundle id. With token auth a request's `apns-topic` must be
    /// this plus the suffix its push type needs (`.voip`, `.complication`, …).
    pub topic: String,
    /// SETTINGS_MAX_CONCURRENT_STREAMS (default 1000, about what Apple allows).
    pub max_streams: u32,
    /// Initial flow-control window of each stream (default 1 MiB), so that a
    /// sender on a long link is not bound by flow control.
    pub stream_window: u32,
    /// Initial flow-control window of each connection (default 4 MiB).
    pub connection_window: u32,
    /// Added to the mock's clock when judging a token's `iat` (seconds; a
    /// positive offset makes the mock run ahead of the sender).
    pub clock_offset_secs: i64,
    /// Answer 429 TooManyProviderTokenUpdates when a connection's token
    /// changes to one issued less than 20 minutes after the previous one.
    pub limit_token_updates: bool,
    /// Like Apple with token auth: one stream at a time until a request with
    /// a valid token has been answered. h2 cannot send a second SETTINGS, so
    /// streams beyond the first are refused with RST_STREAM(REFUSED_STREAM).
    pub one_stream_start: bool,
    /// Fraction (0..=1) of device tokens that are gone (410 Unregistered),
    /// by a hash of (`Config::seed`, token) independent of `bad_rate`'s.
    pub gone_rate: f64,
    /// Fraction of requests answered 429 TooManyRequests.
    pub rate_429: f64,
    /// Fraction of requests answered 500 InternalServerError.
    pub rate_500: f64,
    /// Fraction of requests answered 503 ServiceUnavailable.
    pub rate_503: f64,
    /// After N requests on a connection (streams opened, refused ones
    /// included), a graceful GOAWAY whose last-stream-id is the Nth
    /// request's stream: those N are answered (or refused), later ones are
    /// not processed (the client may resend them), then the connection closes.
    pub goaway_after: Option<u64>,
    /// The GOAWAY of `goaway_after` carries Apple's `{"reason":"Shutdown"}`
    /// in its debug data, as when one of Apple's servers shuts down.
    pub goaway_shutdown: bool,
    /// After N requests on a connection have been answered, close the TCP
    /// connection when the next one arrives, without GOAWAY: requests open
    /// then are counted received and dropped (in doubt for the sender).
    pub drop_after: Option<u64>,
    /// Hold each answer this long.
    pub delay: Duration,
    /// Answer every request with this reason of Apple's (`"BadTopic"`) and
    /// its status, after the route is read: what a run-level mistake (a
    /// wrong topic, a revoked key) looks like to a sender. The gateway check
    /// (the all-zero device token) still gets its BadDeviceToken, so that a
    /// sender's run reaches the answers. An unknown name makes
    /// [`crate::Http2Gateway::start`] fail.
    pub reject_all: Option<String>,
    /// With `reject_all`: only the first N requests (gateway checks not
    /// counted) get it, then the gateway answers as usual: a passing storm
    /// of 503s, or Apple refusing a token update for a while.
    pub reject_first: Option<u64>,
    /// Randomised faults, a different draw for every connection.
    pub chaos: Option<H2Chaos>,
    /// Keep what the last accepted request for each token carried (its
    /// `apns-*` headers and payload) for `Http2Handle::accepted_requests`;
    /// off by default, as it holds memory per token.
    pub record_requests: bool,
}

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config {
            topic: DEFAULT_TOPIC.to_string(),
            max_streams: 1000,
            stream_window: 1 << 20,
            connection_window: 4 << 20,
            clock_offset_secs: 0,
            limit_token_updates: false,
            one_stream_start: false,
            gone_rate: 0.0,
            rate_429: 0.0,
            rate_500: 0.0,
            rate_503: 0.0,
            goaway_after: None,
            goaway_shutdown: false,
            drop_after: None,
            delay: Duration::ZERO,
            reject_all: None,
            reject_first: None,
            chaos: None,
            record_requests: false,
        }
    }
}

/// The answer a request's sequence number draws from the transient rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transient {
    /// 429 TooManyRequests.
    TooManyRequests,
    /// 500 InternalServerError.
    InternalServerError,
    /// 503 ServiceUnavailable.
    ServiceUnavailable,
}

impl Http2Config {
    /// True when `token` is gone (410): its seeded hash falls in `gone_rate`.
    pub fn is_gone(&self, seed: u64, token: &[u8; 32]) -> bool {
        // A different key from `bad_rate`'s so the two sets are independent.
        super::rate_says_bad(rate_threshold(self.gone_rate), seed ^ 0x6F6E_6547_0410, token)
    }

    /// The transient failure request number `n` (0-based, over the gateway's
    /// life) gets, if any.
    pub(crate) fn transient(&self, seed: u64, n: u64) -> Option<Transient> {
        if self.rate_429 + self.rate_500 + self.rate_503 <= 0.0 {
            return None;
        }
        let u = unit(splitmix64(seed ^ 0x007A_115E ^ n.wrapping_mul(0xA076_1D64_78BD_642F)));
        if u < self.rate_429 {
            Some(Transient::TooManyRequests)
        } else if u < self.rate_429 + self.rate_500 {
            Some(Transient::InternalServerError)
        } else if u < self.rate_429 + self.rate_500 + self.rate_503 {
            Some(Transient::ServiceUnavailable)
        } else {
            None
        }
    }
}

fn unit(x: u64) -> f64 {
    (x >> 11) as f64 / (1u64 << 53) as f64
}

/// Seeded per-connection faults for HTTP/2 chaos runs (`--h2-chaos SEED`).
#[derive(Debug, Clone, PartialEq)]
pub struct H2Chaos {
    /// Seed of every draw.
    pub seed: u64,
    /// Probability that a connection ends by a graceful GOAWAY, a GOAWAY
    /// with Apple's `Shutdown` reason, or a TCP drop (a third each).
    pub fault_rate: f64,
    /// The fault fires after 1 to 2 × `mean_after` requests.
    pub mean_after: u64,
    /// Probability that a connection holds each of its answers, for 0 to
    /// `max_delay`.
    pub delay_rate: f64,
    /// The longest hold.
    pub max_delay: Duration,
    /// With `one_stream_start`, a connection that holds its answers holds
    /// its first one at least this long, as Apple takes time to check a new
    /// provider token: a sender that opens more streams meanwhile has them
    /// refused.
    pub slow_start: Duration,
}

/// How one connection ends and holds its answers, as drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Drawn {
    /// A GOAWAY after this many requests, with the `Shutdown` reason when true.
    pub goaway_after: Option<(u64, bool)>,
    /// A TCP drop after this many answers.
    pub drop_after: Option<u64>,
    /// Each answer held this long.
    pub delay: Duration,
    /// The first answer held at least this long (see [`H2Chaos::slow_start`]).
    pub first_delay: Duration,
}

impl H2Chaos {
    /// The settings `--h2-chaos SEED` uses: a fault on a third of the
    /// connections after about 200 requests, answers held up to 50 ms on
    /// one connection in ten (the first one 100 ms).
    pub fn new(seed: u64) -> Self {
        H2Chaos {
            seed,
            fault_rate: 0.3,
            mean_after: 200,
            delay_rate: 0.1,
            max_delay: Duration::from_millis(50),
            slow_start: Duration::from_millis(100),
        }
    }

    /// The draw for connection number `n` (0-based over the gateway's life).
    pub(crate) fn draw(&self, n: u64) -> Drawn {
        let mut state = splitmix64(self.seed ^ n.wrapping_mul(0xA076_1D64_78BD_642F));
        let mut next = || {
            state = splitmix64(state);
            unit(state)
        };
        let faulty = next() < self.fault_rate;
        let kind = next();
        let after = 1 + (next() * (2 * self.mean_after.max(1)) as f64) as u64;
        let delayed = next() < self.delay_rate;
        let delay = if delayed { self.max_delay.mul_f64(next()) } else { Duration::ZERO };
        let first_delay = if delayed { self.slow_start } else { Duration::ZERO };
        let (goaway_after, drop_after) = match (faulty, kind) {
            (false, _) => (None, None),
            (true, k) if k < 1.0 / 3.0 => (Some((after, false)), None),
            (true, k) if k < 2.0 / 3.0 => (Some((after, true)), None),
            (true, _) => (None, Some(after)),
        };
        Drawn { goaway_after, drop_after, delay, first_delay }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_counts_depend_only_on_how_many() {
        let c = Http2Config { rate_429: 0.1, rate_500: 0.1, rate_503: 0.1, ..Http2Config::default() };
        let count = |seed| (0..10_000).filter(|n| c.transient(seed, *n).is_some()).count();
        assert_eq!(count(3), count(3));
        assert!((2_700..3_300).contains(&count(3)), "{}", count(3));
        let all = Http2Config { rate_503: 1.0, ..Http2Config::default() };
        assert_eq!(all.transient(0, 5), Some(Transient::ServiceUnavailable));
        assert_eq!(Http2Config::default().transient(0, 5), None);
    }

    #[test]
    fn gone_is_independent_of_bad() {
        let c = Http2Config { gone_rate: 1.0, ..Http2Config::default() };
        assert!(c.is_gone(0, &[1; 32]));
        assert!(!Http2Config::default().is_gone(0, &[1; 32]));
        let half = Http2Config { gone_rate: 0.5, ..Http2Config::default() };
        let bad = super::super::Config { bad_rate: 0.5, ..Default::default() };
        let both = (0u8..=255).filter(|i| half.is_gone(0, &[*i; 32]) && bad.is_bad(&[*i; 32])).count();
        assert!((30..100).contains(&both), "{both}");
    }

    #[test]
    fn chaos_draws_replay() {
        let ch = H2Chaos { fault_rate: 1.0, ..H2Chaos::new(9) };
        assert_eq!(ch.draw(4), ch.draw(4));
        let d = ch.draw(4);
        assert!(d.goaway_after.is_some() != d.drop_after.is_some());
    }

    #[test]
    fn chaos_draws_every_kind_at_its_rates() {
        let ch = H2Chaos { fault_rate: 0.6, delay_rate: 0.5, ..H2Chaos::new(3) };
        let draws: Vec<Drawn> = (0..3000).map(|n| ch.draw(n)).collect();
        let count = |f: &dyn Fn(&Drawn) -> bool| draws.iter().filter(|d| f(d)).count();
        for n in [
            count(&|d| matches!(d.goaway_after, Some((_, false)))),
            count(&|d| matches!(d.goaway_after, Some((_, true)))),
            count(&|d| d.drop_after.is_some()),
        ] {
            assert!((500..700).contains(&n), "a fifth of the connections each: {n}");
        }
        assert!((1350..1650).contains(&count(&|d| !d.delay.is_zero())), "half held");
    }
}
