//! Gateway configuration and the bad-token rule.
//!
//! The bad-token rule is deterministic per token (a keyed hash of the token, not
//! a random draw per notification) so that a bad token a sender re-sends on a new
//! connection is still bad: exactly like Apple, where "invalid token" is a property
//! of the token.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;
use std::time::Duration;

mod http2;
pub(crate) use http2::Transient;
pub use http2::{DEFAULT_TOPIC, H2Chaos, Http2Config};

/// Everything that shapes the mock's behaviour. `Config::default()` is a well-behaved
/// gateway: Apple's limits, no bad tokens, no faults.
#[derive(Debug, Clone)]
pub struct Config {
    /// Size of each connection's read buffer (bytes, default 64 KiB). It grows once if
    /// a single frame is larger.
    pub read_buffer: usize,
    /// Payload limit for commands 0 and 1 (default 256); larger gives status 7.
    pub payload_limit_legacy: usize,
    /// Payload limit for command 2 (default 2048); larger gives status 7.
    pub payload_limit: usize,
    /// Tokens always rejected with status 8.
    pub bad_tokens: HashSet<[u8; 32]>,
    /// Fraction (0.0..=1.0) of all tokens that are bad, chosen by a hash of (`seed`, token).
    pub bad_rate: f64,
    /// Seed of the `bad_rate` hash.
    pub seed: u64,
    /// After an error, keep reading and discarding this long before writing the error
    /// response (Apple's close took ~500 ms to reach the provider).
    pub error_delay: Duration,
    /// After N accepted notifications on a connection, answer status 10 (shutdown)
    /// naming the last accepted identifier, then close as after an error.
    pub shutdown_after: Option<u64>,
    /// After N accepted notifications on a connection, close without an error response.
    pub close_after: Option<u64>,
    /// After N accepted notifications on a connection, reset it (RST, `SO_LINGER` 0).
    pub reset_after: Option<u64>,
    /// Per-connection read-rate limit in bytes/s (plaintext), to create back-pressure.
    pub read_rate: Option<u64>,
    /// Drop the first K gateway connections (over the gateway's life) before the TLS handshake.
    pub refuse_handshakes: u64,
    /// Right after writing an error response, reset the connection instead of the
    /// orderly shutdown + drain. (On Linux the response still arrives: a reset
    /// does not destroy what the peer has received.)
    pub reset_after_error: bool,
    /// Reject without a word: reset the connection where the error response
    /// would be written, as if the response were lost on the way. The sender
    /// sees a connection end with nothing confirmed or rejected.
    pub lose_error_responses: bool,
    /// How long to keep discarding input after an orderly shutdown before closing anyway
    /// (default 2 s).
    pub drain_timeout: Duration,
    /// A TLS handshake that takes longer than this is abandoned (default 10 s).
    pub handshake_timeout: Duration,
    /// Tuples `(timestamp, token)` the feedback service serves once.
    pub feedback: Vec<(u32, [u8; 32])>,
    /// When set, one line per accepted notification: `<hex token>\t<identifier>`
    /// (`-` when the notification has no identifier: command 0, or command 2 without item 3).
    pub delivered_log: Option<PathBuf>,
    /// Track deliveries per token (for `distinct_tokens`, `duplicates`, `deliveries()`);
    /// default true. Turn off for pure throughput runs with huge lists.
    pub track_deliveries: bool,
    /// Randomised faults, a different draw for every connection (for chaos runs).
    /// Combines with the fixed fault settings above; the earliest fault wins.
    pub chaos: Option<Chaos>,
    /// Cap the gateway (and feedback) TLS version at 1.2, like the old Apple gateway.
    /// Under 1.2 a rejected client certificate fails the client's handshake itself.
    pub tls12_only: bool,
    /// The HTTP/2 gateway's settings (used by [`crate::Http2Gateway`] only).
    pub http2: Http2Config,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            read_buffer: 64 * 1024,
            payload_limit_legacy: 256,
            payload_limit: 2048,
            bad_tokens: HashSet::new(),
            bad_rate: 0.0,
            seed: 0,
            error_delay: Duration::ZERO,
            shutdown_after: None,
            close_after: None,
            reset_after: None,
            read_rate: None,
            refuse_handshakes: 0,
            reset_after_error: false,
            lose_error_responses: false,
            drain_timeout: Duration::from_secs(2),
            handshake_timeout: Duration::from_secs(10),
            feedback: Vec::new(),
            delivered_log: None,
            track_deliveries: true,
            chaos: None,
            tls12_only: false,
            http2: Http2Config::default(),
        }
    }
}

impl Config {
    /// True when the gateway rejects `token` with status 8: it is in `bad_tokens`, or
    /// its seeded hash falls in the `bad_rate` fraction.
    pub fn is_bad(&self, token: &[u8; 32]) -> bool {
        self.bad_tokens.contains(token) || rate_says_bad(rate_threshold(self.bad_rate), self.seed, token)
    }
}

/// The bad-token rule compiled for the per-frame path: fast hash set, precomputed threshold.
#[derive(Debug, Clone)]
pub(crate) struct BadTokens {
    set: HashSet<[u8; 32], FastBuild>,
    threshold: Option<u64>,
    seed: u64,
}

impl BadTokens {
    pub(crate) fn new(config: &Config) -> Self {
        BadTokens {
            set: config.bad_tokens.iter().copied().collect(),
            threshold: rate_threshold(config.bad_rate),
            seed: config.seed,
        }
    }

    #[inline]
    pub(crate) fn is_bad(&self, token: &[u8; 32]) -> bool {
        (!self.set.is_empty() && self.set.contains(token)) || rate_says_bad(self.threshold, self.seed, token)
    }
}

/// `None` = no token is bad by rate; `Some(u64::MAX)` with rate >= 1 means all are.
fn rate_threshold(rate: f64) -> Option<u64> {
    if rate.is_nan() || rate <= 0.0 {
        None
    } else if rate >= 1.0 {
        Some(u64::MAX)
    } else {
        Some((rate * 18_446_744_073_709_551_616.0) as u64)
    }
}

#[inline]
fn rate_says_bad(threshold: Option<u64>, seed: u64, token: &[u8; 32]) -> bool {
    match threshold {
        None => false,
        Some(u64::MAX) => true,
        Some(t) => token_score(seed, token) < t,
    }
}

/// A token's position in [0, 2^64): splitmix64 chained over the seed and the four
/// little-endian words of the token.
pub(crate) fn token_score(seed: u64, token: &[u8; 32]) -> u64 {
    let mut h = splitmix64(seed);
    for w in token.chunks_exact(8) {
        h = splitmix64(h ^ u64::from_le_bytes(w.try_into().expect("8-byte chunk")));
    }
    h
}

#[inline]
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Word-at-a-time 64-bit hash of a byte string (payload identity for duplicate counting).
#[inline]
pub(crate) fn hash_bytes(seed: u64, bytes: &[u8]) -> u64 {
    let mut h = seed ^ (bytes.len() as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("8-byte chunk"));
        h = (h ^ w).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = (h ^ u64::from_le_bytes(last)).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    }
    splitmix64(h)
}

/// Cheap hasher for token-keyed maps: tokens come from senders, not attackers, and
/// SipHash would cost more than the rest of the per-frame work.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher(u64);

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0 = hash_bytes(self.0, bytes);
    }
    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.0 ^= n as u64;
    }
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

/// `BuildHasher` for [`FastHasher`].
pub(crate) type FastBuild = BuildHasherDefault<FastHasher>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_rate_is_deterministic_and_about_right() {
        let c = Config { bad_rate: 0.1, seed: 7, ..Config::default() };
        let compiled = BadTokens::new(&c);
        let mut bad = 0;
        for i in 0u32..20_000 {
            let mut t = [0u8; 32];
            t[..4].copy_from_slice(&i.to_be_bytes());
            assert_eq!(c.is_bad(&t), compiled.is_bad(&t));
            assert_eq!(c.is_bad(&t), c.is_bad(&t));
            bad += c.is_bad(&t) as u32;
        }
        assert!((1_600..2_400).contains(&bad), "{bad}");
        let all = Config { bad_rate: 1.0, ..Config::default() };
        assert!(all.is_bad(&[0; 32]));
        assert!(!Config::default().is_bad(&[0; 32]));
    }

    #[test]
    fn listed_bad_tokens_are_bad_and_others_are_not() {
        let mut c = Config::default();
        c.bad_tokens.insert([3; 32]);
        assert!(c.is_bad(&[3; 32]));
        assert!(BadTokens::new(&c).is_bad(&[3; 32]));
        assert!(!BadTokens::new(&c).is_bad(&[4; 32]));
    }
}

/// Seeded random faults, drawn per connection from (`seed`, connection number),
/// so a failing chaos run replays exactly with the same seed. The default
/// injects nothing: name the faults wanted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chaos {
    /// Seed of every draw.
    pub seed: u64,
    /// Probability that a connection gets one of: shutdown (status 10), silent
    /// close, or reset, after a random number of accepted notifications.
    pub fault_rate: f64,
    /// The fault fires after 1 to 2 × `mean_after` accepted notifications.
    pub mean_after: u64,
    /// One connection in ten holds its error response (or shutdown) for 0 to
    /// this long, as Apple's did; the others answer at once.
    pub max_error_delay: Duration,
    /// Probability that a connection's error response is lost: the
    /// connection is reset instead (as with `lose_error_responses`).
    pub lost_response_rate: f64,
    /// Probability that a connection is dropped before its TLS handshake.
    pub refuse_rate: f64,
}

/// What chaos decided for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChaosFault {
    /// Status 10 after N accepted.
    Shutdown(u64),
    /// Silent close after N accepted.
    Close(u64),
    /// Reset after N accepted.
    Reset(u64),
}

/// One connection's chaos draw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ChaosDraw {
    pub refuse: bool,
    pub fault: Option<ChaosFault>,
    pub error_delay: Duration,
    pub lose_response: bool,
}

impl Chaos {
    /// The draw for connection number `n` (0-based, over the gateway's life).
    pub(crate) fn draw(&self, n: u64) -> ChaosDraw {
        let mut state = splitmix64(self.seed ^ n.wrapping_mul(0xA076_1D64_78BD_642F));
        let mut unit = || {
            state = splitmix64(state);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let refuse = unit() < self.refuse_rate;
        let has_fault = unit() < self.fault_rate;
        let kind = unit();
        let after = 1 + (unit() * (2 * self.mean_after.max(1)) as f64) as u64;
        let fault = has_fault.then_some(match (kind * 3.0) as u32 {
            0 => ChaosFault::Shutdown(after),
            1 => ChaosFault::Close(after),
            _ => ChaosFault::Reset(after),
        });
        let delayed = unit() < 0.1;
        let error_delay = if delayed { self.max_error_delay.mul_f64(unit()) } else { Duration::ZERO };
        let lose_response = unit() < self.lost_response_rate;
        ChaosDraw { refuse, fault, error_delay, lose_response }
    }
}
