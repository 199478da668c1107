//! Reaching the gateway the way the sender does: a non-blocking connect and TLS
//! handshake through `apnsblast::tls::TlsConfig::connector()`, driven by a poll.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use apnsblast::tls::{ClientIdentity, TlsConfig, server_name};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use native_tls::{HandshakeError, TlsConnector, TlsStream};

use crate::args::Args;

/// The mio token of the one socket each thread polls.
const SOCK: Token = Token(0);

/// What one connection needs.
pub(crate) struct Job {
    pub(crate) addr: SocketAddr,
    pub(crate) domain: String,
    pub(crate) connector: TlsConnector,
    pub(crate) nodelay: bool,
    pub(crate) send_buffer: Option<usize>,
    pub(crate) timeout: Duration,
}

impl Job {
    /// The TLS client setup the sender uses, from the command line: the client
    /// identity, the extra trust root, and the gateway's address and name.
    pub(crate) fn new(args: &Args) -> Result<Job, String> {
        if args.cert.is_none() {
            return Err("--cert is required for the binary protocol".into());
        }
        let connector = tls_config(args)?.connector().map_err(|e| format!("TLS setup: {e}"))?;
        let addr = args
            .gateway
            .to_socket_addrs()
            .map_err(|e| format!("--gateway {}: {e}", args.gateway))?
            .next()
            .ok_or_else(|| format!("--gateway {}: no address", args.gateway))?;
        Ok(Job {
            addr,
            domain: server_name(&args.gateway).to_owned(),
            connector,
            nodelay: args.nodelay,
            send_buffer: args.send_buffer,
            timeout: Duration::from_secs(args.timeout.max(1)),
        })
    }
}

/// The sender's TLS settings from the command line: the client identity
/// (when there is one) and the extra trust root.
pub(crate) fn tls_config(args: &Args) -> Result<TlsConfig, String> {
    let identity = match &args.cert {
        Some(cert) => {
            let password = match &args.cert_password_env {
                Some(var) => Some(std::env::var(var).map_err(|e| format!("--cert-password-env {var}: {e}"))?),
                None => None,
            };
            let id = ClientIdentity::load(cert, args.key.as_deref(), password.as_deref())
                .map_err(|e| format!("--cert: {e}"))?;
            Some(id)
        }
        None => None,
    };
    Ok(TlsConfig { identity, extra_roots: args.ca.iter().cloned().collect(), danger_accept_invalid_certs: false })
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("no readiness event for the whole timeout while {what}"))
}

pub(crate) fn wait(poll: &mut Poll, events: &mut Events, timeout: Duration, what: &str) -> io::Result<()> {
    loop {
        match poll.poll(events, Some(timeout)) {
            Ok(()) if events.is_empty() => return Err(timed_out(what)),
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Non-blocking connect and TLS handshake, as the sender does them.
pub(crate) fn connect(job: &Job, poll: &mut Poll, events: &mut Events) -> io::Result<TlsStream<TcpStream>> {
    let mut sock = TcpStream::connect(job.addr)?;
    if let Some(size) = job.send_buffer {
        socket2::SockRef::from(&sock).set_send_buffer_size(size)?;
    }
    sock.set_nodelay(job.nodelay)?;
    poll.registry().register(&mut sock, SOCK, Interest::READABLE | Interest::WRITABLE)?;
    loop {
        if let Some(e) = sock.take_error()? {
            return Err(e);
        }
        match sock.peer_addr() {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => wait(poll, events, job.timeout, "connecting")?,
            Err(e) => return Err(e),
        }
    }
    let mut hs = job.connector.connect(&job.domain, sock);
    loop {
        match hs {
            Ok(tls) => return Ok(tls),
            Err(HandshakeError::WouldBlock(mid)) => {
                wait(poll, events, job.timeout, "in the TLS handshake")?;
                hs = mid.handshake();
            }
            Err(HandshakeError::Failure(e)) => return Err(io::Error::other(format!("TLS handshake: {e}"))),
        }
    }
}
