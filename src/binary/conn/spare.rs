//! The next connection, set up while the current one works.
//!
//! Every rejection ends a connection, and so does every confirmation. On a
//! long link the new one costs a TCP and a TLS handshake, two round trips or
//! more in which the shard writes nothing: about 40 % of what a rejection
//! costs a shard at a 100 ms round trip (BENCHMARKS.md, *Long links*). So a
//! shard can set up its next connection beside the current one, driven by the
//! same poller, and go on writing on it the moment the current one ends.
//!
//! On loopback or a LAN a handshake is mostly CPU, not waiting, and a spare
//! only adds one handshake per shard (the one left over at the end), so by
//! default ([`ConnectAhead::Auto`]) a shard connects ahead only while the
//! shortest TCP connect it has seen, about one round trip, took at least
//! [`LONG_ROUND_TRIP`]. The shortest, because load only ever lengthens a
//! connect: with both cores busy a loopback connect now and then takes
//! milliseconds, while on a long link none is shorter than the round trip.
//! (The TLS handshake's time would not do at all: on a busy machine it is
//! mostly waiting for a core, and a loopback handshake took up to 74 ms.)
//!
//! A spare goes to the address the current connection reached, so it needs
//! no name lookup and reaches a gateway known to answer there.

use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use native_tls::{HandshakeError, MidHandshakeTlsStream};

use super::{Conn, Link, SOCKET, TICK, connected, interrupted, would_block};

/// The poller token of the spare connection.
pub(super) const SPARE: Token = Token(2);

/// A TCP connect that took this long (about a round trip) makes connecting
/// ahead worth it under [`ConnectAhead::Auto`]: each new connection then
/// waits two round trips or more, several times a handshake's CPU.
pub const LONG_ROUND_TRIP: Duration = Duration::from_millis(5);

/// Whether shards set up their next connection while the current one works.
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
    pub(super) fn wanted(self, shortest_connect: Duration) -> bool {
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
pub(super) struct RoundTrip(Duration);

impl Default for RoundTrip {
    fn default() -> Self {
        RoundTrip(Duration::MAX)
    }
}

impl RoundTrip {
    /// Notes how long a TCP connect took, and returns the estimate.
    pub(super) fn note(&mut self, tcp_connect: Duration) -> Duration {
        self.0 = self.0.min(tcp_connect);
        self.0
    }
}

/// How far the spare has got.
enum Stage {
    /// Since when.
    Connecting(TcpStream, Instant),
    /// The TCP connect took this long.
    Handshaking(MidHandshakeTlsStream<TcpStream>, Duration),
    Ready(Conn, Duration),
}

/// A connection being set up ahead of need, registered as [`SPARE`]. Dropped,
/// it closes (and leaves the poller with its socket).
pub(super) struct Spare {
    stage: Stage,
    deadline: Instant,
}

impl Spare {
    /// Starts a TCP connect to `addr`. `None` when that fails at once (the
    /// shard then connects the usual way when it must).
    pub(super) fn start(link: &Link, poll: &Poll, addr: SocketAddr) -> Option<Spare> {
        let now = Instant::now();
        let started = (|| {
            let mut sock = TcpStream::connect(addr)?;
            sock.set_nodelay(link.nodelay)?;
            poll.registry().register(&mut sock, SPARE, Interest::READABLE | Interest::WRITABLE)?;
            io::Result::Ok(sock)
        })();
        match started {
            Ok(sock) => Some(Spare { stage: Stage::Connecting(sock, now), deadline: now + link.connect_timeout }),
            Err(e) => gone(link, &e),
        }
    }

    /// Goes as far as it can without waiting. `None` when the spare failed,
    /// timed out, or (ready and idle) was closed by the gateway.
    pub(super) fn step(self, link: &Link) -> Option<Spare> {
        let Spare { mut stage, deadline } = self;
        loop {
            stage = match stage {
                Stage::Connecting(sock, since) => match connected(&sock) {
                    Ok(true) => {
                        let tcp = since.elapsed();
                        match link.connector.connect(&link.domain, sock) {
                            Ok(conn) => Stage::Ready(conn, tcp),
                            Err(HandshakeError::WouldBlock(mid)) => Stage::Handshaking(mid, tcp),
                            Err(HandshakeError::Failure(e)) => return gone(link, &e),
                        }
                    }
                    Ok(false) => {
                        stage = Stage::Connecting(sock, since);
                        break;
                    }
                    Err(e) => return gone(link, &e),
                },
                Stage::Handshaking(mid, tcp) => match mid.handshake() {
                    Ok(conn) => Stage::Ready(conn, tcp),
                    Err(HandshakeError::WouldBlock(mid)) => {
                        stage = Stage::Handshaking(mid, tcp);
                        break;
                    }
                    Err(HandshakeError::Failure(e)) => return gone(link, &e),
                },
                Stage::Ready(mut conn, tcp) => {
                    return match idle(&mut conn) {
                        Ok(()) => Some(Spare { stage: Stage::Ready(conn, tcp), deadline }),
                        Err(why) => gone(link, &why),
                    };
                }
            };
        }
        if Instant::now() >= deadline {
            return gone(link, &"timed out");
        }
        Some(Spare { stage, deadline })
    }

    /// Waits (up to its deadline) for the spare to be ready, and hands it
    /// over as the shard's connection, registered as [`SOCKET`] with
    /// `send_buffer` as SO_SNDBUF, with how long its TCP connect took.
    /// `None` when it failed.
    pub(super) fn hand_over(
        self,
        link: &Link,
        poll: &mut Poll,
        send_buffer: Option<usize>,
    ) -> Option<(Conn, Duration)> {
        let mut events = Events::with_capacity(4);
        let mut spare = self;
        let (mut conn, tcp) = loop {
            // Stepped before any wait: its readiness may have been reported
            // while the shard was polling for something else.
            let Spare { stage, deadline } = spare.step(link)?;
            if let Stage::Ready(conn, tcp) = stage {
                break (conn, tcp);
            }
            spare = Spare { stage, deadline };
            let left = deadline.saturating_duration_since(Instant::now());
            if let Err(e) = poll.poll(&mut events, Some(left.min(TICK)))
                && !interrupted(&e)
            {
                return gone(link, &e);
            }
        };
        let handover = (|| {
            if let Some(size) = send_buffer {
                socket2::SockRef::from(conn.get_ref()).set_send_buffer_size(size)?;
            }
            poll.registry().reregister(conn.get_mut(), SOCKET, Interest::READABLE | Interest::WRITABLE)
        })();
        match handover {
            Ok(()) => Some((conn, tcp)),
            Err(e) => gone(link, &e),
        }
    }
}

/// Checks that a ready connection nobody writes on is still open: an idle
/// connection has nothing to read, so an end, data or an error means the
/// gateway gave up on it. (A TLS 1.3 server may send session tickets after
/// the handshake: reading consumes them.)
fn idle(conn: &mut Conn) -> Result<(), String> {
    let mut byte = [0u8; 1];
    loop {
        return match conn.read(&mut byte) {
            Err(e) if would_block(&e) => Ok(()),
            Err(e) if interrupted(&e) => continue,
            Ok(0) => Err("the gateway closed it".into()),
            Ok(_) => Err("the gateway spoke first".into()),
            Err(e) => Err(e.to_string()),
        };
    }
}

/// Logs why the spare is gone; it closes as it drops.
fn gone<T>(link: &Link, why: &dyn std::fmt::Display) -> Option<T> {
    log::debug!("connecting ahead to {} failed: {why}", link.gateway);
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_connects_ahead_only_after_a_long_round_trip() {
        let auto = ConnectAhead::Auto;
        assert!(!auto.wanted(Duration::from_micros(50)), "loopback");
        assert!(!auto.wanted(LONG_ROUND_TRIP - Duration::from_micros(1)));
        assert!(auto.wanted(LONG_ROUND_TRIP));
        assert!(ConnectAhead::Always.wanted(Duration::ZERO));
        assert!(!ConnectAhead::Never.wanted(Duration::from_secs(1)));
    }

    #[test]
    fn a_slow_connect_on_a_busy_machine_does_not_keep_auto_on() {
        let (auto, mut round_trip) = (ConnectAhead::Auto, RoundTrip::default());
        let (slow, loopback) = (Duration::from_millis(8), Duration::from_micros(60));
        assert!(auto.wanted(round_trip.note(slow)), "the first connect, slow: maybe a long link");
        assert!(auto.wanted(round_trip.note(slow + slow)), "still");
        assert!(!auto.wanted(round_trip.note(loopback)), "a fast one shows the link is short");
        assert!(!auto.wanted(round_trip.note(slow)), "and later slow ones were load");
    }
}
