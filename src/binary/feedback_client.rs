//! Reading the feedback service: one blocking TLS connection with the
//! provider certificate, tuples until the service closes, decoded by
//! [`read_all`].
//!
//! The service hands its list out once and then forgets it, so the caller
//! should have somewhere to put the tuples before calling [`fetch`].

use std::io::{self, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use native_tls::HandshakeError;

use crate::binary::feedback::{FeedbackReadError, FeedbackTuple, read_all};
use crate::error::Error;
use crate::tls::{TlsConfig, server_name};

/// Connects to the feedback service at `gateway` (`host:port`), reads every
/// tuple until the service closes the connection, and returns them in order.
///
/// `timeout` bounds the TCP connect, the TLS handshake and each read: a
/// service that stays silent that long is an error, while a long list that
/// keeps arriving is read to the end.
///
/// # Errors
/// [`Error::Tls`] for unusable trust roots; [`Error::Gateway`] when the
/// service cannot be reached, refuses the handshake or the certificate, goes
/// silent, or sends something that is not a list of tuples.
pub fn fetch(gateway: &str, tls: &TlsConfig, timeout: Duration) -> Result<Vec<FeedbackTuple>, Error> {
    let connector = tls.connector()?;
    let fail = |reason: String| Error::Gateway { gateway: gateway.to_owned(), reason };
    let addrs = gateway.to_socket_addrs().map_err(|e| fail(format!("cannot resolve the address: {e}")))?;
    let mut last = "the name resolves to no address".to_owned();
    let mut tcp = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                tcp = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {addr}: {e}"),
        }
    }
    let tcp = tcp.ok_or_else(|| fail(last))?;
    tcp.set_read_timeout(Some(timeout))
        .and_then(|()| tcp.set_write_timeout(Some(timeout)))
        .map_err(|e| fail(format!("socket setup failed: {e}")))?;
    let stream = connector.connect(server_name(gateway), tcp).map_err(|e| {
        fail(match e {
            HandshakeError::Failure(e) => format!("TLS handshake failed: {e}"),
            HandshakeError::WouldBlock(_) => format!("TLS handshake did not finish within {timeout:?}"),
        })
    })?;
    let mut service = Service { stream, bytes: 0 };
    read_all(&mut service).map_err(|e| {
        fail(match e {
            FeedbackReadError::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                format!("the feedback service sent nothing for {timeout:?}")
            }
            FeedbackReadError::Io(e) if service.bytes == 0 => format!(
                "the connection failed before any data arrived ({e}): the service may not accept this \
                 certificate (a sandbox certificate on the production service, or the reverse?)"
            ),
            FeedbackReadError::Io(e) => format!("reading failed after {} bytes: {e}", service.bytes),
            other => other.to_string(),
        })
    })
}

/// The service's TLS stream, counting what arrived.
struct Service<S> {
    stream: S,
    bytes: u64,
}

impl<S: Read> Read for Service<S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.stream.read(buf) {
            Ok(n) => {
                self.bytes += n as u64;
                Ok(n)
            }
            // A close without TLS close_notify is how many services end; if it
            // falls inside a tuple, the decoder reports the truncation.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof || e.to_string().contains("unexpected eof") => Ok(0),
            Err(e) => Err(e),
        }
    }
}
