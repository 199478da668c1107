//! Setting up a connection: a non-blocking TCP connect, then the TLS
//! handshake, each step taken when the poller says the socket is ready. The
//! shard's usual connect, its spare and the gateway check all go through
//! [`Setup`].

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use native_tls::{HandshakeError, MidHandshakeTlsStream, TlsStream};

use super::Link;
use crate::error::GatewayError;

/// A shard's TLS connection.
pub(crate) type Conn = TlsStream<TcpStream>;

/// The socket would block: wait for the poller.
pub(super) fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

/// A signal interrupted the call: try it again.
pub(super) fn interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}

/// What [`GatewayError::Timeout`] names when the TCP connect took too long.
const TCP_CONNECT: &str = "the TCP connect";

/// How far a connection has got.
enum Stage {
    /// Since when.
    Connecting(TcpStream, Instant),
    /// The TCP connect took this long.
    Handshaking(MidHandshakeTlsStream<TcpStream>, Duration),
    /// Up; the TCP connect took this long.
    Ready(Conn, Duration),
}

/// A connection on its way up. Dropped, it closes, and its socket leaves
/// the poller with it.
pub(super) struct Setup {
    stage: Stage,
    deadline: Instant,
    addr: SocketAddr,
}

impl Setup {
    /// Starts a TCP connect to `addr`, registered with `poll` as `token`,
    /// with `send_buffer` as SO_SNDBUF (set before the connect, so that the
    /// kernel sizes the connection for it; `None`: its autotuning).
    pub(super) fn start(
        link: &Link,
        poll: &Poll,
        addr: SocketAddr,
        token: Token,
        send_buffer: Option<usize>,
    ) -> Result<Setup, GatewayError> {
        let now = Instant::now();
        let started = (|| {
            let mut sock = TcpStream::connect(addr)?;
            if let Some(size) = send_buffer {
                socket2::SockRef::from(&sock).set_send_buffer_size(size)?;
            }
            sock.set_nodelay(link.nodelay)?;
            poll.registry().register(&mut sock, token, Interest::READABLE | Interest::WRITABLE)?;
            io::Result::Ok(sock)
        })();
        match started {
            Ok(sock) => Ok(Setup { stage: Stage::Connecting(sock, now), deadline: now + link.connect_timeout, addr }),
            Err(source) => Err(GatewayError::Unreachable { addr, source }),
        }
    }

    /// Goes as far as it can without waiting.
    ///
    /// # Errors
    /// The connect or the handshake failed, or the deadline has passed.
    pub(super) fn step(self, link: &Link) -> Result<Setup, GatewayError> {
        let Setup { mut stage, deadline, addr } = self;
        loop {
            stage = match stage {
                Stage::Connecting(sock, since) => match connected(&sock) {
                    Ok(true) => {
                        let tcp = since.elapsed();
                        match link.connector.connect(&link.domain, sock) {
                            Ok(conn) => Stage::Ready(conn, tcp),
                            Err(HandshakeError::WouldBlock(mid)) => Stage::Handshaking(mid, tcp),
                            Err(HandshakeError::Failure(e)) => return Err(GatewayError::handshake(e.to_string())),
                        }
                    }
                    Ok(false) if Instant::now() >= deadline => return Err(GatewayError::Timeout(TCP_CONNECT)),
                    Ok(false) => return Ok(Setup { stage: Stage::Connecting(sock, since), deadline, addr }),
                    Err(source) => return Err(GatewayError::Unreachable { addr, source }),
                },
                Stage::Handshaking(mid, tcp) => match mid.handshake() {
                    Ok(conn) => Stage::Ready(conn, tcp),
                    Err(HandshakeError::WouldBlock(_)) if Instant::now() >= deadline => {
                        return Err(GatewayError::Timeout("the TLS handshake"));
                    }
                    Err(HandshakeError::WouldBlock(mid)) => {
                        return Ok(Setup { stage: Stage::Handshaking(mid, tcp), deadline, addr });
                    }
                    Err(HandshakeError::Failure(e)) => return Err(GatewayError::handshake(e.to_string())),
                },
                ready @ Stage::Ready(..) => return Ok(Setup { stage: ready, deadline, addr }),
            };
        }
    }

    /// The connection, if it is up.
    pub(super) fn ready(&mut self) -> Option<&mut Conn> {
        match &mut self.stage {
            Stage::Ready(conn, _) => Some(conn),
            _ => None,
        }
    }

    /// Steps and waits on `poll` (up to the deadline) until the connection
    /// is up; returns it with how long its TCP connect took.
    ///
    /// # Errors
    /// As [`Setup::step`], and a failed poll.
    pub(super) fn finish(self, link: &Link, poll: &mut Poll) -> Result<(Conn, Duration), GatewayError> {
        let mut events = Events::with_capacity(4);
        let mut setup = self;
        loop {
            // Stepped before any wait: readiness may have been reported
            // while the poller was waited on for something else.
            setup = setup.step(link)?;
            if let Stage::Ready(conn, tcp) = setup.stage {
                return Ok((conn, tcp));
            }
            let left = setup.deadline.saturating_duration_since(Instant::now());
            match poll.poll(&mut events, Some(left)) {
                Ok(()) => {}
                Err(e) if interrupted(&e) => {}
                Err(source) => return Err(GatewayError::Io { what: "poll", source }),
            }
        }
    }
}

/// Resolves the gateway and connects to the first address that answers,
/// registered as `token` with `send_buffer` as SO_SNDBUF. Also returns how
/// long the TCP connect took: about one round trip.
///
/// # Errors
/// The last address's failure, or why the name did not resolve.
pub(super) fn connect(
    link: &Link,
    poll: &mut Poll,
    token: Token,
    send_buffer: Option<usize>,
) -> Result<(Conn, Duration), GatewayError> {
    let addrs = link.gateway.to_socket_addrs().map_err(GatewayError::Unresolved)?;
    let mut last = GatewayError::NoAddress;
    for addr in addrs {
        let attempt = Setup::start(link, poll, addr, token, send_buffer).and_then(|s| s.finish(link, poll));
        match attempt {
            Ok((conn, tcp)) => {
                log::debug!("connected to {addr}: tcp {tcp:?}");
                return Ok((conn, tcp));
            }
            // Another address may take the TCP connect; a failed handshake
            // is the gateway's answer.
            Err(e @ (GatewayError::Unreachable { .. } | GatewayError::Timeout(TCP_CONNECT))) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Whether a non-blocking connect has completed (mio's recipe: `take_error`,
/// then `peer_addr`, where NotConnected means "not yet").
fn connected(sock: &TcpStream) -> io::Result<bool> {
    if let Some(e) = sock.take_error()? {
        return Err(e);
    }
    match sock.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}
