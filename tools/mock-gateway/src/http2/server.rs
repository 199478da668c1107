//! TLS for HTTP/2 and the accept loop.
//!
//! The acceptor selects ALPN `h2` and nothing else (a client offering only
//! other protocols gets alert 120, no_application_protocol; one offering
//! none is closed after the handshake). A client certificate is requested,
//! not required: when one is sent it must verify against the mock CA, and
//! the connection may then push to the certificate's topics without a token.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use openssl::pkey::PKey;
use openssl::ssl::{AlpnError, Ssl, SslAcceptor, SslMethod, SslVerifyMode, SslVersion, select_next_proto};
use openssl::x509::X509;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_openssl::SslStream;

use super::{State, conn};
use crate::pki::{Pki, cert_bundle_id};

/// ALPN wire form of the one protocol spoken.
const ALPN_H2: &[u8] = b"\x02h2";

/// The server TLS context: the PKI's server identity, TLS 1.2 or later,
/// ALPN `h2`, client certificates optional but verified.
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
    b.set_verify(SslVerifyMode::PEER);
    b.set_session_id_context(b"apnsblast-mock-h2")?;
    b.set_num_tickets(0)?;
    b.set_alpn_select_callback(|_, offered| select_next_proto(ALPN_H2, offered).ok_or(AlpnError::ALERT_FATAL));
    if tls12_only {
        b.set_max_proto_version(Some(SslVersion::TLS1_2))?;
    }
    Ok(b.build())
}

/// Accept connections until `stop` turns true; one task per connection.
pub(crate) async fn run(
    state: Arc<State>,
    listener: TcpListener,
    acceptor: SslAcceptor,
    mut stop: watch::Receiver<bool>,
) {
    let acceptor = Arc::new(acceptor);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((tcp, _)) => {
                let seq = state.seq.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(serve(Arc::clone(&state), Arc::clone(&acceptor), tcp, seq));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                log::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// Handshake, check ALPN, note the client certificate's topic, then serve.
async fn serve(state: Arc<State>, acceptor: Arc<SslAcceptor>, tcp: TcpStream, seq: u64) {
    let _ = tcp.set_nodelay(true);
    let failed = |why: &dyn std::fmt::Display| {
        log::debug!("HTTP/2 handshake failed: {why}");
        state.update(|t| t.stats.handshakes_failed += 1);
    };
    let tls = match Ssl::new(acceptor.context()).and_then(|ssl| SslStream::new(ssl, tcp)) {
        Ok(s) => s,
        Err(e) => return failed(&e),
    };
    let mut tls = tls;
    let limit = state.config.handshake_timeout;
    match tokio::time::timeout(limit, Pin::new(&mut tls).accept()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return failed(&e),
        Err(_) => return failed(&"timed out"),
    }
    if tls.ssl().selected_alpn_protocol() != Some(b"h2") {
        return failed(&"client did not offer ALPN h2");
    }
    // The verify callback already refused an untrusted certificate.
    let bundle_id = tls.ssl().peer_certificate().map(|c| cert_bundle_id(&c).unwrap_or_default());
    state.update(|t| t.stats.connections += 1);
    conn::serve(state, tls, bundle_id, seq).await;
}
