//! Setting up an HTTP/2 connection: TCP, TLS with ALPN `h2`, and h2's
//! handshake, each bounded by the connect timeout.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use h2::client::{Connection, SendRequest};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_native_tls::TlsStream;

use super::link::H2Link;
use crate::error::GatewayError;

/// The per-stream flow-control window a connection offers: answers are
/// small, but a long link must not wait on window updates.
const STREAM_WINDOW: u32 = 1 << 20;
/// The connection's flow-control window.
const CONNECTION_WINDOW: u32 = 4 << 20;

/// An HTTP/2 connection's two halves: the handle that opens streams, and
/// the connection itself, which must be polled (as a task of its own) for
/// anything to move.
pub type Halves = (SendRequest<Bytes>, Connection<TlsStream<TcpStream>, Bytes>);

/// Connects to the run's gateway (see [`open`]).
pub(super) async fn connect(link: &H2Link) -> Result<Halves, GatewayError> {
    open(&link.gateway, &link.domain, &link.connector, link.connect_timeout).await
}

/// Connects to `gateway` (`host:port`) as every shard does: the first
/// address whose TCP connect succeeds, then TLS through `connector` (which
/// must agree on ALPN `h2`, see [`TlsConfig::h2_connector`]) checking the
/// server's name against `domain`, and the HTTP/2 handshake with the
/// sender's settings. Each step is bounded by `connect_timeout`. Public so
/// that a benchmark's client can measure the very same stack.
///
/// [`TlsConfig::h2_connector`]: crate::tls::TlsConfig::h2_connector
///
/// # Errors
/// Why the gateway cannot be used, as for the binary transport, or
/// [`GatewayError::NoHttp2`] when the server does not speak HTTP/2.
pub async fn open(
    gateway: &str,
    domain: &str,
    connector: &tokio_native_tls::TlsConnector,
    connect_timeout: Duration,
) -> Result<Halves, GatewayError> {
    let within = |what: &'static str| move |_| GatewayError::Timeout(what);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(gateway).await.map_err(GatewayError::Unresolved)?.collect();
    let mut last = GatewayError::NoAddress;
    let mut tcp = None;
    for addr in addrs {
        match timeout(connect_timeout, TcpStream::connect(addr)).await {
            Ok(Ok(sock)) => {
                tcp = Some(sock);
                break;
            }
            Ok(Err(source)) => last = GatewayError::Unreachable { addr, source },
            Err(_) => last = GatewayError::Timeout("the TCP connect"),
        }
    }
    let tcp = tcp.ok_or(last)?;
    // Requests are small and answered one by one: never let Nagle hold one.
    let _ = tcp.set_nodelay(true);
    let tls = timeout(connect_timeout, connector.connect(domain, tcp))
        .await
        .map_err(within("the TLS handshake"))?
        .map_err(|e| {
            let text = e.to_string();
            // A server that offers only other protocols fails the handshake
            // with alert 120 (no_application_protocol).
            if text.contains("no application protocol") { GatewayError::NoHttp2 } else { GatewayError::handshake(text) }
        })?;
    // A server without ALPN completes the handshake, and then never answers
    // an HTTP/2 request: check the agreement here.
    match tls.get_ref().negotiated_alpn() {
        Ok(Some(proto)) if proto == b"h2" => {}
        _ => return Err(GatewayError::NoHttp2),
    }
    let handshake = h2::client::Builder::new()
        // Apple allows one stream until the first answer, and raises the
        // limit with SETTINGS; h2 would otherwise assume no limit until then.
        .initial_max_send_streams(1)
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .handshake::<_, Bytes>(tls);
    timeout(connect_timeout, handshake)
        .await
        .map_err(within("the HTTP/2 handshake"))?
        .map_err(|e| GatewayError::Handshake(format!("HTTP/2: {e}")))
}
