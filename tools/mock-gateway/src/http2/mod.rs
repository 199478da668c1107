//! The mock of Apple's HTTP/2 provider API (`POST /3/device/<token>`).
//!
//! ```text
//!  client ──TLS (ALPN h2; client cert optional)──▶ accept task ──spawn──▶ connection task
//!                                                                        │ Gate (goaway_after)
//!                                                                        │ h2 server: accept()
//!                                                                        ▼ spawn per request
//!                      route → auth (cert or JWT) → headers → topic → body → seeded faults
//!                                                                        ▼
//!                                        stats (before the answer) → [delay] → answer
//! ```
//!
//! A tokio runtime (two workers) on its own threads serves every connection.
//! The answers are Apple's: 200 with `apns-id` and no body; otherwise a
//! status and `{"reason":"…"}` (410 adds `"timestamp"`, in ms). A request's
//! counters are in the stats before its answer is sent, so a test that has
//! its answers can check the counts at once.
//!
//! Modules, each importing only those before it: `reason`, `request` (pure
//! checks), `auth` (JWT), `faults` (per-connection plan, seeded answers),
//! `gate` (I/O shim for GOAWAY), `conn` (one connection), `server` (TLS and
//! the accept loop); this file holds the public entry points.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::config::{BadTokens, Config};
use crate::pki::Pki;
use crate::shared::lock;
use crate::stats::{Stats, Tracker};

mod auth;
mod conn;
mod faults;
mod gate;
mod reason;
mod request;
mod server;

/// State shared by every task of one HTTP/2 gateway.
pub(crate) struct State {
    pub config: Config,
    pub bad: BadTokens,
    pub auth: auth::Auth,
    /// The counters; change them through [`State::update`] so waiters wake.
    pub tracker: Mutex<Tracker>,
    pub changed: Condvar,
    /// Connections accepted so far: picks a connection's chaos draw.
    pub seq: AtomicU64,
    /// Requests that reached the seeded transient draw so far.
    pub draws: AtomicU64,
    /// Valid provider tokens seen so far.
    pub valid_tokens: AtomicU64,
    /// Makes the `apns-id`s of requests that name none.
    pub ids: AtomicU64,
    /// The last accepted request per token (with `record_requests`).
    pub requests: Mutex<HashMap<[u8; 32], AcceptedRequest>>,
    /// `reject_all`'s reason, parsed.
    pub reject_all: Option<reason::Reason>,
    /// Requests given `reject_all`'s reason so far.
    pub rejected_all: AtomicU64,
}

/// What an accepted request carried besides its token: the headers that a
/// sender may set per notification, as sent (`None`: absent), and the body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptedRequest {
    /// `apns-topic`.
    pub topic: Option<String>,
    /// `apns-push-type`.
    pub push_type: Option<String>,
    /// `apns-collapse-id`.
    pub collapse_id: Option<String>,
    /// `apns-priority`.
    pub priority: Option<String>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl AcceptedRequest {
    /// What `headers` and `body` hold (a header that is not UTF-8 is kept lossily).
    pub(crate) fn new(headers: &http::HeaderMap, body: &[u8]) -> AcceptedRequest {
        let get = |name: &str| headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        AcceptedRequest {
            topic: get("apns-topic"),
            push_type: get("apns-push-type"),
            collapse_id: get("apns-collapse-id"),
            priority: get("apns-priority"),
            payload: body.to_vec(),
        }
    }
}

impl State {
    /// Change the counters under the lock and wake `wait_until` callers.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut Tracker) -> R) -> R {
        let r = f(&mut lock(&self.tracker));
        self.changed.notify_all();
        r
    }
}

/// Entry point: starts an HTTP/2 gateway.
#[derive(Debug)]
pub struct Http2Gateway;

impl Http2Gateway {
    /// Bind `addr` (port 0 allowed) and serve Apple's HTTP/2 provider API
    /// with `config` (its [`crate::config::Http2Config`], bad tokens, seed
    /// and ledger switches) and the PKI's server identity, CA and `.p8` key.
    ///
    /// # Errors
    /// Binding fails, the PKI does not load, `delivered_log` cannot be
    /// created, the runtime cannot start, or `reject_all` names no reason
    /// of Apple's.
    pub fn start(config: &Config, pki: &Pki, addr: SocketAddr) -> io::Result<Http2Handle> {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let acceptor = server::acceptor(pki, config.tls12_only).map_err(io::Error::other)?;
        let h = &config.http2;
        let reject_all = h
            .reject_all
            .as_deref()
            .map(reason::Reason::parse)
            .transpose()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("reject_all: {e}")))?;
        let auth = auth::Auth::new(pki, h.clock_offset_secs, h.limit_token_updates).map_err(io::Error::other)?;
        let log = config.delivered_log.as_deref().map(std::fs::File::create).transpose()?;
        let state = Arc::new(State {
            bad: BadTokens::new(config),
            auth,
            tracker: Mutex::new(Tracker::new(config.track_deliveries, log)),
            changed: Condvar::new(),
            seq: AtomicU64::new(0),
            draws: AtomicU64::new(0),
            valid_tokens: AtomicU64::new(0),
            ids: AtomicU64::new(0),
            requests: Mutex::new(HashMap::new()),
            reject_all,
            rejected_all: AtomicU64::new(0),
            config: config.clone(),
        });
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("mock-h2")
            .enable_all()
            .build()?;
        let (stop, stopped) = watch::channel(false);
        let listener = {
            let _guard = rt.enter();
            tokio::net::TcpListener::from_std(std_listener)?
        };
        let run_state = Arc::clone(&state);
        let thread = thread::Builder::new().name("mock-h2-accept".into()).spawn(move || {
            rt.block_on(server::run(run_state, listener, acceptor, stopped));
            // Ends every connection task: their sockets close.
            rt.shutdown_timeout(Duration::from_secs(1));
        })?;
        Ok(Http2Handle { state, addr, stop, thread: Some(thread) })
    }
}

/// A running HTTP/2 gateway. Dropping it stops it too (without returning the stats).
pub struct Http2Handle {
    state: Arc<State>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl fmt::Debug for Http2Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Http2Handle").field("addr", &self.addr).finish()
    }
}

impl Http2Handle {
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &Config {
        &self.state.config
    }

    /// A snapshot of the counters (settles the per-token ledger first).
    pub fn stats(&self) -> Stats {
        let mut t = lock(&self.state.tracker);
        t.settle();
        t.stats.clone()
    }

    /// Deliveries per token so far (needs `track_deliveries`): what a test
    /// checks token by token against a sender's report.
    pub fn deliveries(&self) -> HashMap<[u8; 32], u32> {
        lock(&self.state.tracker).deliveries()
    }

    /// What the last accepted request for each token carried (needs
    /// [`crate::config::Http2Config::record_requests`]; empty without it).
    pub fn accepted_requests(&self) -> HashMap<[u8; 32], AcceptedRequest> {
        lock(&self.state.requests).clone()
    }

    /// Block until `pred(stats)` holds or `timeout` passes, woken on every
    /// counter change.
    ///
    /// # Errors
    /// `Err(last stats)` on timeout.
    #[allow(clippy::result_large_err)] // a test helper off the hot path; callers want the stats
    pub fn wait_until(&self, timeout: Duration, mut pred: impl FnMut(&Stats) -> bool) -> Result<Stats, Stats> {
        let deadline = Instant::now() + timeout;
        let mut t = lock(&self.state.tracker);
        loop {
            t.settle();
            if pred(&t.stats) {
                return Ok(t.stats.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(t.stats.clone());
            }
            t = self.state.changed.wait_timeout(t, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Stop accepting, end every connection, and return the final stats.
    pub fn stop(mut self) -> Stats {
        self.shutdown();
        let mut t = lock(&self.state.tracker);
        t.settle();
        t.flush_log();
        t.stats.clone()
    }

    fn shutdown(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Http2Handle {
    fn drop(&mut self) {
        self.shutdown();
    }
}
