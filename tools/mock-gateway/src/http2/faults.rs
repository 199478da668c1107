//! How one HTTP/2 connection misbehaves: the fixed fault settings combined
//! with its chaos draw, and the per-request answer the seeded rules give.

use std::time::Duration;

use super::reason::Reason;
use crate::config::{BadTokens, Config, Transient};

/// One connection's faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Graceful GOAWAY after this many requests.
    pub goaway_after: Option<u64>,
    /// TCP close when the request after this many arrives.
    pub drop_after: Option<u64>,
    /// Hold each answer this long.
    pub delay: Duration,
}

impl Plan {
    /// The plan of connection number `seq` (0-based over the gateway's life);
    /// where both the settings and chaos name a fault, the earlier one wins.
    pub(crate) fn new(config: &Config, seq: u64) -> Plan {
        let h = &config.http2;
        let (goaway, drop, delay) = h.chaos.as_ref().map(|c| c.draw(seq)).unwrap_or_default();
        let min = |a: Option<u64>, b: Option<u64>| a.into_iter().chain(b).min();
        Plan {
            goaway_after: min(h.goaway_after, goaway),
            drop_after: min(h.drop_after, drop),
            delay: h.delay.max(delay),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{H2Chaos, Http2Config};

    #[test]
    fn fixed_settings_and_chaos_combine() {
        let http2 = Http2Config { goaway_after: Some(5), delay: Duration::from_millis(3), ..Http2Config::default() };
        let mut c = Config { http2, ..Config::default() };
        assert_eq!(Plan::new(&c, 0), Plan { goaway_after: Some(5), drop_after: None, delay: Duration::from_millis(3) });
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
