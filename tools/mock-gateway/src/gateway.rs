//! Listeners, threads and the [`Handle`] that tests hold.
//!
//! One accept thread per listener, one OS thread per connection, all sharing one
//! [`Shared`]. `stop()` raises a flag, wakes each blocking `accept` by connecting to
//! it, and joins everything; connection threads notice the flag within one socket
//! read timeout ([`crate::tls::POLL`]).

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::pki::Pki;
use crate::shared::{Shared, lock};
use crate::stats::Stats;
use crate::{conn, feedback, tls};

/// Which service a listener runs.
#[derive(Debug, Clone, Copy)]
enum Service {
    Gateway,
    Feedback,
}

/// Entry point: starts a gateway (and optionally a feedback service).
#[derive(Debug)]
pub struct Gateway;

impl Gateway {
    /// Bind the gateway listener (and the feedback listener if given) and start
    /// serving. Addresses may use port 0; read the real ones from the [`Handle`].
    ///
    /// # Errors
    /// Binding fails, the PKI does not load into OpenSSL, or `delivered_log` cannot be created.
    pub fn start(
        config: Config,
        pki: &Pki,
        listen: SocketAddr,
        feedback_listen: Option<SocketAddr>,
    ) -> io::Result<Handle> {
        let gateway = TcpListener::bind(listen)?;
        let feedback = feedback_listen.map(TcpListener::bind).transpose()?;
        Self::start_with_listeners(config, pki, gateway, feedback)
    }

    /// Like [`Gateway::start`], with listeners the caller already bound.
    ///
    /// # Errors
    /// As for [`Gateway::start`], minus binding.
    pub fn start_with_listeners(
        config: Config,
        pki: &Pki,
        gateway: TcpListener,
        feedback: Option<TcpListener>,
    ) -> io::Result<Handle> {
        let acceptor = tls::acceptor(pki, config.tls12_only).map_err(io::Error::other)?;
        let log = config.delivered_log.as_deref().map(File::create).transpose()?;
        let shared = Arc::new(Shared::new(config, acceptor, log));
        let addr = gateway.local_addr()?;
        let feedback_addr = feedback.as_ref().map(TcpListener::local_addr).transpose()?;
        let mut accept_threads = vec![spawn_accept(&shared, gateway, Service::Gateway)?];
        if let Some(l) = feedback {
            accept_threads.push(spawn_accept(&shared, l, Service::Feedback)?);
        }
        Ok(Handle { shared, addr, feedback_addr, accept_threads })
    }
}

fn spawn_accept(shared: &Arc<Shared>, listener: TcpListener, service: Service) -> io::Result<JoinHandle<()>> {
    let shared = Arc::clone(shared);
    thread::Builder::new()
        .name(format!("mock-{service:?}-accept").to_lowercase())
        .spawn(move || accept_loop(&shared, &listener, service))
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener, service: Service) {
    loop {
        let accepted = listener.accept();
        if shared.stopping() {
            return;
        }
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                log::warn!("accept failed: {e}");
                thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        if let Service::Gateway = service {
            let n = shared.seen.fetch_add(1, Ordering::Relaxed);
            let chaos_refuses = shared.config.chaos.as_ref().is_some_and(|c| c.draw(n).refuse);
            if n < shared.config.refuse_handshakes || chaos_refuses {
                shared.update(|t| t.stats.handshakes_refused += 1);
                drop(tcp);
                continue;
            }
        }
        let seq = shared.seen.load(Ordering::Relaxed).saturating_sub(1);
        let conn_shared = Arc::clone(shared);
        let mut threads = lock(&shared.threads);
        threads.retain(|t| !t.is_finished());
        if let Service::Gateway = service {
            shared.active.fetch_add(1, Ordering::SeqCst);
        }
        let spawned = thread::Builder::new().name("mock-conn".into()).spawn(move || {
            let _active = ActiveGuard(&conn_shared, service);
            match service {
                Service::Gateway => conn::serve(&conn_shared, tcp, seq),
                Service::Feedback => feedback::serve(&conn_shared, tcp),
            }
        });
        match spawned {
            Ok(t) => threads.push(t),
            Err(e) => log::warn!("cannot spawn connection thread: {e}"),
        }
    }
}

/// Tracks live gateway connections for `idle_since` (also on panic).
struct ActiveGuard<'a>(&'a Shared, Service);

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        if let Service::Gateway = self.1 {
            let mut idle = lock(&self.0.idle_since);
            if self.0.active.fetch_sub(1, Ordering::SeqCst) == 1 {
                *idle = Some(Instant::now());
            }
        }
        self.0.changed.notify_all();
    }
}

/// A running gateway. Dropping it stops it too (without returning the stats).
pub struct Handle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    feedback_addr: Option<SocketAddr>,
    accept_threads: Vec<JoinHandle<()>>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle").field("addr", &self.addr).field("feedback_addr", &self.feedback_addr).finish()
    }
}

impl Handle {
    /// The gateway's bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The feedback service's bound address, if it runs.
    pub fn feedback_addr(&self) -> Option<SocketAddr> {
        self.feedback_addr
    }

    /// The configuration the gateway runs with.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// A snapshot of the counters. Settles the per-token ledger first: one map
    /// lookup per notification accepted since the last call (see
    /// [`Config::track_deliveries`]).
    pub fn stats(&self) -> Stats {
        let mut t = lock(&self.shared.tracker);
        t.settle();
        t.stats.clone()
    }

    /// Accepted deliveries per token, any payload (empty if tracking is off).
    pub fn deliveries(&self) -> HashMap<[u8; 32], u32> {
        lock(&self.shared.tracker).deliveries()
    }

    /// True when the gateway rejects `token` with status 8.
    pub fn is_bad(&self, token: &[u8; 32]) -> bool {
        self.shared.config.is_bad(token)
    }

    /// Replace the tuples the next feedback connection will receive.
    pub fn set_feedback(&self, tuples: Vec<(u32, [u8; 32])>) {
        *lock(&self.shared.feedback) = tuples;
    }

    /// Gateway connections currently open (handshaking or serving).
    pub fn active_connections(&self) -> usize {
        self.shared.active.load(Ordering::SeqCst)
    }

    /// When the last gateway connection closed, if none is open now and one ever was.
    pub fn idle_since(&self) -> Option<Instant> {
        let idle = lock(&self.shared.idle_since);
        if self.active_connections() == 0 { *idle } else { None }
    }

    /// Block until `pred(stats)` holds or `timeout` passes, without polling: woken on
    /// every counter change.
    ///
    /// # Errors
    /// `Err(last stats)` on timeout.
    #[allow(clippy::result_large_err)] // a test helper off the hot path; callers want the stats
    pub fn wait_until(&self, timeout: Duration, mut pred: impl FnMut(&Stats) -> bool) -> Result<Stats, Stats> {
        let deadline = Instant::now() + timeout;
        let mut t = lock(&self.shared.tracker);
        loop {
            t.settle();
            if pred(&t.stats) {
                return Ok(t.stats.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(t.stats.clone());
            }
            t = self.shared.changed.wait_timeout(t, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Stop accepting, end every connection, join all threads, and return the final
    /// stats. Takes at most about one socket read timeout (100 ms) plus thread joins.
    pub fn stop(mut self) -> Stats {
        self.shutdown();
        let mut t = lock(&self.shared.tracker);
        t.settle();
        t.flush_log();
        t.stats.clone()
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let mut wake = vec![self.addr];
        wake.extend(self.feedback_addr);
        for mut a in wake {
            if a.ip().is_unspecified() {
                a.set_ip(if a.is_ipv4() { Ipv4Addr::LOCALHOST.into() } else { Ipv6Addr::LOCALHOST.into() });
            }
            let _ = TcpStream::connect_timeout(&a, Duration::from_secs(1));
        }
        for t in self.accept_threads.drain(..) {
            let _ = t.join();
        }
        let threads = std::mem::take(&mut *lock(&self.shared.threads));
        for t in threads {
            let _ = t.join();
        }
        lock(&self.shared.tracker).flush_log();
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if !self.accept_threads.is_empty() {
            self.shutdown();
        }
    }
}
