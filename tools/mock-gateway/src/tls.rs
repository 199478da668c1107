//! TLS plumbing shared by the gateway and the feedback service: the acceptor that
//! requires a client certificate, the handshake driver, and the two ways a
//! connection ends (orderly: close_notify + FIN + drain; abrupt: RST).
//!
//! Sockets carry a short read timeout so every blocking loop can notice `stop()`;
//! a timeout surfaces as `WouldBlock` (or `TimedOut`) and is simply retried
//! (see [`retry_later`]).

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use openssl::pkey::PKey;
use openssl::ssl::{HandshakeError, SslAcceptor, SslMethod, SslStream, SslVerifyMode, SslVersion};
use openssl::x509::X509;

use crate::pki::Pki;
use crate::shared::Shared;

/// Read timeout on every socket: the granularity at which threads notice `stop()`.
pub(crate) const POLL: Duration = Duration::from_millis(100);
/// Writes are tiny (6-byte responses, feedback tuples); never block on them forever.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Build the server-side TLS context: the PKI's server identity, client certificates
/// required and verified against the PKI's CA.
pub(crate) fn acceptor(pki: &Pki, tls12_only: bool) -> Result<SslAcceptor, openssl::error::ErrorStack> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    let key = PKey::private_key_from_pem(pki.server_key_pem())?;
    let cert = X509::from_pem(pki.server_pem())?;
    b.set_private_key(&key)?;
    b.set_certificate(&cert)?;
    b.check_private_key()?;
    let ca = X509::from_pem(pki.ca_pem())?;
    b.cert_store_mut().add_cert(ca.clone())?;
    b.add_client_ca(&ca)?;
    b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    b.set_session_id_context(b"apnsblast-mock-gateway")?;
    // No TLS 1.3 session tickets: a client that never reads would otherwise hold
    // unread bytes and turn its own close into an RST (a
    // close with unread data in the socket's buffer resets, RFC 1122 §4.2.2.13).
    b.set_num_tickets(0)?;
    if tls12_only {
        b.set_max_proto_version(Some(SslVersion::TLS1_2))?;
    }
    Ok(b.build())
}

/// True when a read error only means "nothing yet, try again": `WouldBlock`, the
/// [`POLL`] read timeout (`TimedOut` on some platforms), or a signal (`Interrupted`).
pub(crate) fn retry_later(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted)
}

/// Run the server handshake. `None` when it failed (counted, alert delivered via an
/// orderly close), timed out, or the gateway is stopping.
pub(crate) fn handshake(shared: &Shared, tcp: TcpStream) -> Option<SslStream<TcpStream>> {
    let setup = tcp
        .set_nodelay(true)
        .and_then(|()| tcp.set_read_timeout(Some(POLL)))
        .and_then(|()| tcp.set_write_timeout(Some(WRITE_TIMEOUT)));
    if let Err(e) = setup {
        log::debug!("socket setup failed: {e}");
        return None;
    }
    let deadline = Instant::now() + shared.config.handshake_timeout;
    let mut attempt = shared.acceptor.accept(tcp);
    loop {
        match attempt {
            Ok(s) => return Some(s),
            Err(HandshakeError::WouldBlock(mid)) => {
                if shared.stopping() || Instant::now() >= deadline {
                    shared.update(|t| t.stats.handshakes_failed += 1);
                    return None;
                }
                attempt = mid.handshake();
            }
            Err(HandshakeError::Failure(mut mid)) => {
                log::debug!("handshake failed: {}", mid.error());
                shared.update(|t| t.stats.handshakes_failed += 1);
                // Let the alert reach the client instead of being destroyed by an RST.
                let _ = mid.get_mut().shutdown(Shutdown::Write);
                drain(shared, mid.get_mut(), Duration::from_secs(1));
                return None;
            }
            Err(HandshakeError::SetupFailure(e)) => {
                log::warn!("TLS setup failed: {e}");
                shared.update(|t| t.stats.handshakes_failed += 1);
                return None;
            }
        }
    }
}

/// Orderly end: close_notify, TCP FIN, then read and discard until the client closes
/// (or `drain_timeout`), so unread input cannot turn the close into an RST that would
/// destroy what we wrote last.
pub(crate) fn close(shared: &Shared, mut tls: SslStream<TcpStream>) {
    let _ = tls.shutdown();
    let tcp = tls.get_mut();
    let _ = tcp.shutdown(Shutdown::Write);
    let n = drain(shared, tcp, shared.config.drain_timeout);
    shared.update(|t| t.stats.discarded_bytes += n);
}

/// Abrupt end: `SO_LINGER` 0 then close sends RST, discarding anything unsent.
pub(crate) fn reset(tls: SslStream<TcpStream>) {
    let _ = socket2::SockRef::from(tls.get_ref()).set_linger(Some(Duration::ZERO));
    drop(tls);
}

/// Read raw bytes (no decryption) and throw them away until EOF, an error, `limit`
/// elapsed, or stop. Returns the number of bytes discarded.
pub(crate) fn drain(shared: &Shared, tcp: &mut TcpStream, limit: Duration) -> u64 {
    let deadline = Instant::now() + limit;
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || shared.stopping() {
            return total;
        }
        if tcp.set_read_timeout(Some(left.min(POLL))).is_err() {
            return total;
        }
        match tcp.read(&mut buf) {
            Ok(0) => return total,
            Ok(n) => total += n as u64,
            Err(e) if retry_later(&e) => {}
            Err(_) => return total,
        }
    }
}
