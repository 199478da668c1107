//! The next connection, set up while the current one works.
//!
//! Every rejection ends a connection, and so does every confirmation. On a
//! long link the new one costs a TCP and a TLS handshake, two round trips or
//! more in which the shard writes nothing. So a shard can set up its next
//! connection beside the current one, driven by the same poller, and go on
//! writing on it the moment the current one ends. When it does so is the
//! session's rule ([`ConnectAhead`](crate::session::ConnectAhead)).
//!
//! A spare goes to the address the current connection reached, so it needs
//! no name lookup and reaches a gateway known to answer there.

use std::io::Read;
use std::net::SocketAddr;
use std::time::Duration;

use mio::{Interest, Poll, Token};

use super::connect::{Conn, Setup, interrupted, would_block};
use super::{Link, SOCKET};

/// The poller token of the spare connection.
pub(super) const SPARE: Token = Token(2);

/// A connection being set up ahead of need, registered as [`SPARE`].
pub(super) struct Spare(Setup);

impl Spare {
    /// Starts a TCP connect to `addr`. `None` when that fails at once (the
    /// shard then connects the usual way when it must).
    pub(super) fn start(link: &Link, poll: &Poll, addr: SocketAddr) -> Option<Spare> {
        // SO_SNDBUF is set at the hand-over, when the shard's need is known.
        alive(link, Setup::start(link, poll, addr, SPARE, None)).map(Spare)
    }

    /// Goes as far as it can without waiting. `None` when the spare failed,
    /// timed out, or (ready and idle) was closed by the gateway.
    pub(super) fn step(self, link: &Link) -> Option<Spare> {
        let mut setup = alive(link, self.0.step(link))?;
        if let Some(conn) = setup.ready()
            && let Err(why) = idle(conn)
        {
            return gone(link, &why);
        }
        Some(Spare(setup))
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
        let (mut conn, tcp) = alive(link, self.step(link)?.0.finish(link, poll))?;
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

/// The spare's next stage, or `None` (logged) when it failed.
fn alive<T>(link: &Link, step: Result<T, crate::error::GatewayError>) -> Option<T> {
    match step {
        Ok(next) => Some(next),
        Err(e) => gone(link, &e),
    }
}

/// Logs why the spare is gone; it closes as it drops.
fn gone<T>(link: &Link, why: &dyn std::fmt::Display) -> Option<T> {
    log::debug!("connecting ahead to {} failed: {why}", link.gateway);
    None
}
