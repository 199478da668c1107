//! How one HTTP/2 connection misbehaves: the fixed fault settings combined
//! with its chaos draw, and the per-request answer the seeded rules give.

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use super::reason::Reason;
use crate::config::{BadTokens, Config, Transient};

/// One connection's faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Graceful GOAWAY after this many requests.
    pub goaway_after: Option<u64>,
    /// That GOAWAY carries Apple's `{"reason":"Shutdown"}`.
    pub goaway_shutdown: bool,
    /// TCP close when the request after this many arrives.
    pub drop_after: Option<u64>,
    /// Hold each answer this long.
    pub delay: Duration,
    /// With `one_stream_start`, hold the first answer at least this long.
    pub first_delay: Duration,
}

impl Plan {
    /// The plan of connection number `seq` (0-based over the gateway's life);
    /// where both the settings and chaos name a fault, the earlier one wins.
    pub(crate) fn new(config: &Config, seq: u64) -> Plan {
        let h = &config.http2;
        let drawn = h.chaos.as_ref().map(|c| c.draw(seq)).unwrap_or_default();
        let fixed = h.goaway_after.map(|n| (n, h.goaway_shutdown));
        let goaway = fixed.into_iter().chain(drawn.goaway_after).min_by_key(|(n, _)| *n);
        Plan {
            goaway_after: goaway.map(|(n, _)| n),
            goaway_shutdown: goaway.is_some_and(|(_, shutdown)| shutdown),
            drop_after: h.drop_after.into_iter().chain(drawn.drop_after).min(),
            delay: h.delay.max(drawn.delay),
            first_delay: drawn.first_delay,
        }
    }
}

/// The verdict of the seeded rules on a request that passed every check:
/// 400 BadDeviceToken, 410 Unregistered, or the transient draw of request
/// number `n` (429, 500, 503).
pub(crate) fn seeded(config: &Config, bad: &BadTokens, token: &[u8; 32], n: impl FnOnce() -> u64) -> Option<Reason> {
    if bad.is_bad(token) {
        return Some(Reason::BadDeviceToken);
    }
    if config.http2.is_gone(config.seed, token) {
        return Some(Reason::Unregistered);
    }
    config.http2.transient(config.seed, n()).map(|t| match t {
        Transient::TooManyRequests => Reason::TooManyRequests,
        Transient::InternalServerError => Reason::InternalServerError,
        Transient::ServiceUnavailable => Reason::ServiceUnavailable,
    })
}

/// The kinds of fault a connection can meet, counted once per connection
/// in [`crate::Stats::fault_connections`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    TooManyRequests,
    InternalServerError,
    ServiceUnavailable,
    Goaway,
    GoawayShutdown,
    Drop,
    Refused,
    Delay,
}

impl Fault {
    /// Its key in the stats.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Fault::TooManyRequests => "429",
            Fault::InternalServerError => "500",
            Fault::ServiceUnavailable => "503",
            Fault::Goaway => "goaway",
            Fault::GoawayShutdown => "goaway-shutdown",
            Fault::Drop => "drop",
            Fault::Refused => "refused",
            Fault::Delay => "delay",
        }
    }

    /// The fault a seeded answer is (the passing troubles), if any.
    pub(crate) fn of(reason: Reason) -> Option<Fault> {
        match reason {
            Reason::TooManyRequests => Some(Fault::TooManyRequests),
            Reason::InternalServerError => Some(Fault::InternalServerError),
            Reason::ServiceUnavailable => Some(Fault::ServiceUnavailable),
            _ => None,
        }
    }
}

/// The kinds of fault one connection has met.
#[derive(Debug, Default)]
pub(crate) struct Met(AtomicU8);

impl Met {
    /// Notes `fault`: true the first time this connection meets it.
    pub(crate) fn first(&self, fault: Fault) -> bool {
        let bit = 1u8 << fault as u8;
        self.0.fetch_or(bit, Ordering::Relaxed) & bit == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{H2Chaos, Http2Config};

    #[test]
    fn fixed_settings_and_chaos_combine() {
        let http2 = Http2Config { goaway_after: Some(5), delay: Duration::from_millis(3), ..Http2Config::default() };
        let mut c = Config { http2, ..Config::default() };
        let delay = Duration::from_millis(3);
        let plan = Plan {
            goaway_after: Some(5),
            goaway_shutdown: false,
            drop_after: None,
            delay,
            first_delay: Duration::ZERO,
        };
        assert_eq!(Plan::new(&c, 0), plan);
        c.http2.goaway_shutdown = true;
        assert!(Plan::new(&c, 0).goaway_shutdown);
        c.http2.chaos = Some(H2Chaos { fault_rate: 1.0, mean_after: 1, ..H2Chaos::new(1) });
        let p = Plan::new(&c, 0);
        assert!(p.goaway_after.is_some_and(|n| n <= 5) || p.drop_after.is_some());
    }

    #[test]
    fn seeded_answers() {
        let mut c = Config { bad_rate: 1.0, ..Config::default() };
        assert_eq!(seeded(&c, &BadTokens::new(&c), &[1; 32], || 0), Some(Reason::BadDeviceToken));
        c.bad_rate = 0.0;
        c.http2.gone_rate = 1.0;
        assert_eq!(seeded(&c, &BadTokens::new(&c), &[1; 32], || 0), Some(Reason::Unregistered));
        c.http2.gone_rate = 0.0;
        c.http2.rate_500 = 1.0;
        assert_eq!(seeded(&c, &BadTokens::new(&c), &[1; 32], || 0), Some(Reason::InternalServerError));
    }
}
