//! A hand-written HTTP/2 server (RFC 9113) over TLS with ALPN `h2`, for
//! what h2's server cannot do: send SETTINGS again mid-connection to raise
//! or lower MAX_CONCURRENT_STREAMS, as Apple does, and send a GOAWAY with
//! debug data. It writes every frame itself; HPACK is the `loona-hpack`
//! crate's.
//!
//! It answers every request `:status 200` and holds the answers so that
//! concurrency is counted, not timed: the streams open are answered
//! together once as many are open as the limit the client has
//! acknowledged, or once every request the run makes is in. So a client
//! that uses the limit shows exactly the limit as its most streams open;
//! one that waits with fewer open is recorded as stalled after a pause
//! (a violation), and answered at once from then on, so the run ends.
//!
//! The limit a new stream is checked against (RFC 9113 §6.5.3): a raise
//! applies as soon as it is sent (the client may use it once it has read
//! it), a lowering only once the client has acknowledged it.
#![allow(dead_code)]

mod conn;

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};

use mock_gateway::Pki;
use openssl::pkey::PKey;
use openssl::ssl::{AlpnError, SslAcceptor, SslMethod, select_next_proto};
use openssl::x509::X509;

/// What the server does on every connection.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// MAX_CONCURRENT_STREAMS in the connection's first SETTINGS.
    pub initial: u32,
    /// After this many answers on a connection, SETTINGS with this limit.
    pub changes: Vec<(u64, u32)>,
    /// After this many answers on a connection, a GOAWAY (NO_ERROR) with
    /// this debug data, naming the last stream answered; then nothing more
    /// is taken on and the connection ends when the client closes it.
    pub goaway_after: Option<(u64, Vec<u8>)>,
    /// Requests the whole run makes: when this many are in, open streams
    /// are answered without waiting for the limit (the end of the list).
    pub expected: u64,
    /// Once, after this many answers on a connection: one stream gets the
    /// HEADERS of a 400 whose body never comes, and the connection ends
    /// (a link dropped between an answer's head and its reason).
    pub cut_after: Option<u64>,
}

/// One stretch of a connection under one acknowledged limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    /// The limit the client had acknowledged.
    pub limit: u32,
    /// The most streams open when one was opened in this stretch.
    pub max_open: u64,
}

/// What the server counted.
#[derive(Debug, Default)]
pub struct Counts {
    /// TLS handshakes with ALPN `h2` completed.
    pub connections: u64,
    /// Requests received whole (END_STREAM), on every connection.
    pub requests: u64,
    /// Answers (200) per device token.
    pub deliveries: HashMap<[u8; 32], u32>,
    /// Per connection that has ended, its phases in order.
    pub phases: Vec<Vec<Phase>>,
    /// GOAWAYs sent.
    pub goaways: u64,
    /// Answers cut off after their HEADERS (see [`Script::cut_after`]).
    pub cuts: u64,
    /// Streams opened above the limit in force, and protocol errors: what
    /// a correct client never causes.
    pub violations: Vec<String>,
}

/// A running server; [`RawH2::stop`] returns its counts.
pub struct RawH2 {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counts: Arc<Mutex<Counts>>,
    accept: Option<JoinHandle<Vec<JoinHandle<()>>>>,
}

/// Locks `m`, whatever a panicking thread left.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RawH2 {
    /// Serves `script` on 127.0.0.1 with the PKI's server certificate.
    pub fn start(pki: &Pki, script: Script) -> io::Result<RawH2> {
        let acceptor = Arc::new(acceptor(pki).map_err(io::Error::other)?);
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Mutex::new(Counts::default()));
        let script = Arc::new(script);
        let (stopping, shared) = (Arc::clone(&stop), Arc::clone(&counts));
        let accept = thread::spawn(move || {
            let mut threads = Vec::new();
            for tcp in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(tcp) = tcp else { continue };
                let (acceptor, script, counts) = (Arc::clone(&acceptor), Arc::clone(&script), Arc::clone(&shared));
                threads.push(thread::spawn(move || conn::serve(&acceptor, tcp, &script, &counts)));
            }
            threads
        });
        Ok(RawH2 { addr, stop, counts, accept: Some(accept) })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, waits for every connection to end, and returns the counts.
    pub fn stop(mut self) -> Counts {
        self.shutdown();
        std::mem::take(&mut *lock(&self.counts))
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            for t in accept.join().unwrap_or_default() {
                let _ = t.join();
            }
        }
    }
}

impl Drop for RawH2 {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// TLS with the PKI's server identity and ALPN `h2` only.
fn acceptor(pki: &Pki) -> Result<SslAcceptor, openssl::error::ErrorStack> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server())?;
    let key = PKey::private_key_from_pem(pki.server_key_pem())?;
    let cert = X509::from_pem(pki.server_pem())?;
    b.set_private_key(&key)?;
    b.set_certificate(&cert)?;
    b.check_private_key()?;
    // No session tickets: nothing unread is left in the client's socket.
    b.set_num_tickets(0)?;
    b.set_alpn_select_callback(|_, offered| select_next_proto(b"\x02h2", offered).ok_or(AlpnError::ALERT_FATAL));
    Ok(b.build())
}
