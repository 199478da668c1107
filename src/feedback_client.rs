//! Reading the feedback service: one blocking TLS connection with the
//! provider certificate, tuples until the service closes, decoded by
//! [`FeedbackDecoder`].
//!
//! The service hands its list out once and then forgets it, so the caller
//! should have somewhere to put the tuples before calling [`fetch`].

use std::io::{self, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use native_tls::HandshakeError;

use crate::error::Error;
use crate::feedback::{FeedbackDecoder, FeedbackTuple};
use crate::tls::TlsConfig;

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
    let mut stream = connector.connect(host(gateway), tcp).map_err(|e| {
        fail(match e {
            HandshakeError::Failure(e) => format!("TLS handshake failed: {e}"),
            HandshakeError::WouldBlock(_) => format!("TLS handshake did not finish within {timeout:?}"),
        })
    })?;
    let mut decoder = FeedbackDecoder::new();
    let mut tuples = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(fail(format!("the feedback service sent nothing for {timeout:?}")));
            }
            // A close without TLS close_notify is how many services end; at a
            // tuple boundary nothing is lost.
            Err(e) if is_unexpected_eof(&e) && decoder.pending() == 0 => 0,
            Err(e) if tuples.is_empty() && decoder.pending() == 0 => {
                return Err(fail(format!(
                    "the connection failed before any data arrived ({e}): the service may not accept this \
                     certificate (a sandbox certificate on the production service, or the reverse?)"
                )));
            }
            Err(e) => return Err(fail(format!("reading failed after {} tuples: {e}", tuples.len()))),
        };
        if n == 0 {
            decoder.finish().map_err(|e| fail(format!("byte {}: {e}", decoder.offset())))?;
            return Ok(tuples);
        }
        decoder.push(&chunk[..n]);
        while let Some(t) = decoder.next_tuple().map_err(|e| fail(format!("byte {}: {e}", decoder.offset())))? {
            tuples.push(t);
        }
    }
}

fn is_unexpected_eof(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::UnexpectedEof || e.to_string().contains("unexpected eof")
}

/// The host part of `host:port` (brackets of an IPv6 literal removed): the
/// name the service's certificate must carry.
fn host(gateway: &str) -> &str {
    let host = gateway.rsplit_once(':').map_or(gateway, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_strips_port_and_brackets() {
        assert_eq!(super::host("feedback.push.apple.com:2196"), "feedback.push.apple.com");
        assert_eq!(super::host("[::1]:2196"), "::1");
        assert_eq!(super::host("localhost"), "localhost");
    }
}
