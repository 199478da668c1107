//! The sans-I/O policy of one shard across its connections, for either
//! transport: when to connect again, how long to pause first, when to give
//! up and why, when to set up the next connection ahead of need, and the
//! clocks of one connection (idle confirmation, a silent gateway). A driver
//! reports what happened and does what this says; its transport's state
//! decides what to send.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::backoff::{Backoff, sleep_unless_cancelled};
use crate::error::{ENVIRONMENT_HINT, GatewayError};

/// How long notifications stay in flight unconfirmed while the input is stalled.
pub(crate) const IDLE_CONFIRM: Duration = Duration::from_secs(1);

/// Connections in a row that may end fruitless, per failure allowed:
/// recovery after silent closes needs about log2(window) such connections.
const FRUITLESS_PER_FAILURE: u32 = 4;

/// A TCP connect that took this long (about a round trip) makes connecting
/// ahead worth it under [`ConnectAhead::Auto`]: each new connection then
/// waits two round trips or more, several times a handshake's CPU.
pub const LONG_ROUND_TRIP: Duration = Duration::from_millis(5);

/// Whether shards set up their next connection while the current one works.
///
/// On loopback or a LAN a handshake is mostly CPU, not waiting, and a spare
/// only adds one handshake per shard (the one left over at the end), so by
/// default a shard connects ahead only while the shortest TCP connect it has
/// seen, about one round trip, took at least [`LONG_ROUND_TRIP`]. The
/// shortest, because load only ever lengthens a connect: with both cores
/// busy a loopback connect now and then takes milliseconds, while on a long
/// link none is shorter than the round trip. (The TLS handshake's time would
/// not do: on a busy machine it is mostly waiting for a core.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnectAhead {
    /// While every TCP connect took at least [`LONG_ROUND_TRIP`] (a long link).
    #[default]
    Auto,
    /// Always (costs one handshake per shard that is never used).
    Always,
    /// Never: a new connection is made when the last one has ended.
    Never,
}

impl ConnectAhead {
    /// Whether to connect ahead, given the shortest TCP connect seen so far.
    pub(crate) fn wanted(self, shortest_connect: Duration) -> bool {
        match self {
            ConnectAhead::Auto => shortest_connect >= LONG_ROUND_TRIP,
            ConnectAhead::Always => true,
            ConnectAhead::Never => false,
        }
    }
}

/// A shard's estimate of its round trip to the gateway, which
/// [`ConnectAhead::Auto`] goes by: the shortest TCP connect it has seen.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RoundTrip(Duration);

impl Default for RoundTrip {
    fn default() -> Self {
        RoundTrip(Duration::MAX)
    }
}

impl RoundTrip {
    /// Notes how long a TCP connect took, and returns the estimate.
    pub(crate) fn note(&mut self, tcp_connect: Duration) -> Duration {
        self.0 = self.0.min(tcp_connect);
        self.0
    }
}

/// The rules a shard's connections follow.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Policy {
    /// Failed connects in a row before the shard gives up.
    pub(crate) max_failures: u32,
    /// First pause after a failure.
    pub(crate) backoff_min: Duration,
    /// Longest pause.
    pub(crate) backoff_max: Duration,
    /// Whether to set up the next connection while the current one works.
    pub(crate) connect_ahead: ConnectAhead,
}

/// What went wrong, as last seen before a retry or a give-up.
#[derive(Debug)]
pub(crate) enum Trouble {
    /// A connection could not be made.
    Connect(GatewayError),
    /// `count` connections in a row ended without the gateway accepting or
    /// rejecting anything; `last` is how the last one ended.
    Fruitless { count: u32, last: Fruitless },
}

/// How a connection that settled nothing ended.
#[derive(Debug, Clone)]
pub(crate) enum Fruitless {
    /// The gateway answered (in these words), but accepted or rejected nothing.
    Answered(String),
    /// The gateway closed it before anything was written: right after the
    /// TLS handshake.
    ClosedAtOnce,
    /// The gateway closed it, or it went silent, after writes.
    Closed,
}

impl fmt::Display for Trouble {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trouble::Connect(e) => e.fmt(f),
            Trouble::Fruitless { count, last: Fruitless::Answered(resp) } => {
                write!(f, "{count} connections in a row ended before the gateway accepted anything; last: {resp}")
            }
            Trouble::Fruitless { count, last: Fruitless::ClosedAtOnce } => write!(
                f,
                "the gateway closed {count} connections in a row right after the TLS handshake; \
                 it may not accept this certificate ({ENVIRONMENT_HINT})"
            ),
            Trouble::Fruitless { count, last: Fruitless::Closed } => {
                write!(f, "the gateway closed {count} connections in a row without accepting or rejecting anything")
            }
        }
    }
}

/// What the driver does next.
#[derive(Debug)]
pub(crate) enum Next {
    /// Connect again now (the last connection settled something).
    Connect,
    /// Pause, then connect again.
    Retry {
        /// How long.
        after: Duration,
        /// Why the last attempt failed.
        trouble: Trouble,
    },
    /// Stop: the gateway cannot be used.
    GiveUp(Trouble),
}

/// One shard's connection policy and what it has seen.
#[derive(Debug)]
pub(crate) struct Session {
    policy: Policy,
    backoff: Backoff,
    /// Failed connects in a row.
    failed_connects: u32,
    /// Connections in a row on which the gateway settled nothing.
    fruitless: u32,
    round_trip: RoundTrip,
}

impl Session {
    /// A shard's session; `seed` spreads the shards' back-off pauses.
    pub(crate) fn new(policy: Policy, seed: u64) -> Session {
        let policy = Policy { max_failures: policy.max_failures.max(1), ..policy };
        Session {
            backoff: Backoff::new(policy.backoff_min, policy.backoff_max, seed),
            policy,
            failed_connects: 0,
            fruitless: 0,
            round_trip: RoundTrip::default(),
        }
    }

    /// A connection is up; its TCP connect took `tcp_connect` (about a
    /// round trip). Returns whether to set up the next one beside it: not
    /// while connections keep ending fruitless, since the back-off paces
    /// those and a spare would double them.
    pub(crate) fn on_connected(&mut self, tcp_connect: Duration) -> bool {
        self.failed_connects = 0;
        let estimate = self.round_trip.note(tcp_connect);
        self.fruitless == 0 && self.policy.connect_ahead.wanted(estimate)
    }

    /// A connection ended: `Ok` when the gateway accepted or rejected
    /// anything on it, else how it ended.
    pub(crate) fn on_connection_end(&mut self, outcome: Result<(), Fruitless>) -> Next {
        let last = match outcome {
            Ok(()) => {
                self.fruitless = 0;
                self.backoff.reset();
                return Next::Connect;
            }
            Err(last) => last,
        };
        self.fruitless += 1;
        let trouble = Trouble::Fruitless { count: self.fruitless, last };
        if self.fruitless >= self.policy.max_failures.saturating_mul(FRUITLESS_PER_FAILURE) {
            Next::GiveUp(trouble)
        } else {
            Next::Retry { after: self.backoff.next_pause(), trouble }
        }
    }

    /// A connection could not be made.
    pub(crate) fn on_connect_failed(&mut self, e: GatewayError) -> Next {
        self.failed_connects += 1;
        if e.is_permanent() || self.failed_connects >= self.policy.max_failures {
            Next::GiveUp(Trouble::Connect(e))
        } else {
            Next::Retry { after: self.backoff.next_pause(), trouble: Trouble::Connect(e) }
        }
    }

    /// Failed connects in a row so far.
    #[cfg(test)]
    pub(crate) fn failed_connects(&self) -> u32 {
        self.failed_connects
    }
}

/// Runs a gateway check (`attempt`) until it succeeds, retrying as a shard
/// would after a failed connect: with back-off pauses, until the policy gives
/// up or `cancel` is set.
///
/// # Errors
/// The last attempt's failure.
pub(crate) fn check_until_settled(
    policy: Policy,
    cancel: &AtomicBool,
    mut attempt: impl FnMut() -> Result<(), GatewayError>,
) -> Result<(), GatewayError> {
    let mut session = Session::new(policy, Backoff::seed_for(usize::MAX));
    loop {
        let failure = match attempt() {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let (after, e) = match session.on_connect_failed(failure) {
            Next::Retry { after, trouble: Trouble::Connect(e) } => (after, e),
            Next::GiveUp(Trouble::Connect(e)) => return Err(e),
            other => unreachable!("a failed connect led to {other:?}"),
        };
        if cancel.load(Ordering::Relaxed) {
            return Err(e);
        }
        // On the terminal: a gateway that keeps failing can take a minute
        // to give up on (--max-failures, --connect-timeout).
        log::warn!(
            "gateway check, attempt {} of {} failed: {e}; trying again in {:.1} s",
            session.failed_connects,
            session.policy.max_failures,
            after.as_secs_f64()
        );
        sleep_unless_cancelled(after, cancel);
    }
}

/// What the clocks of a connection call for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Alarm {
    /// The input stalled with notifications in flight: confirm them now
    /// rather than leave them in doubt until more input arrives.
    ConfirmNow,
    /// The gateway neither read nor answered for the response timeout:
    /// treat the connection as dead.
    GatewaySilent,
}

/// The clocks of one connection.
#[derive(Debug)]
pub(crate) struct Clocks {
    response_timeout: Duration,
    last_progress: Instant,
    idle_since: Option<Instant>,
}

impl Clocks {
    /// Clocks of a connection that is up at `now`.
    pub(crate) fn new(now: Instant, response_timeout: Duration) -> Clocks {
        Clocks { response_timeout, last_progress: now, idle_since: None }
    }

    /// The gateway took bytes at `now`.
    pub(crate) fn progressed(&mut self, now: Instant) {
        self.last_progress = now;
    }

    /// Checks the clocks at `now`: `waiting` when the shard waits on the
    /// gateway (the socket is full, or a confirmation is due), `in_flight`
    /// notifications written and not yet confirmed.
    pub(crate) fn check(&mut self, now: Instant, waiting: bool, in_flight: usize) -> Option<Alarm> {
        if waiting || in_flight == 0 {
            self.idle_since = None;
        } else if now.duration_since(*self.idle_since.get_or_insert(now)) >= IDLE_CONFIRM {
            self.idle_since = None;
            return Some(Alarm::ConfirmNow);
        }
        (waiting && now.duration_since(self.last_progress) >= self.response_timeout).then_some(Alarm::GatewaySilent)
    }
}

#[cfg(test)]
#[path = "session_test.rs"]
mod session_test;
