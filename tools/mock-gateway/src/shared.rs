//! The state every thread of one gateway shares: the configuration, the TLS
//! acceptor, the counters and the bookkeeping `stop()` needs.
//!
//! It lives apart from [`crate::gateway`] so that the modules the gateway drives
//! (`conn`, `feedback`, `tls`) can all see it without importing the gateway back.

use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use openssl::ssl::SslAcceptor;

use crate::config::{BadTokens, Config};
use crate::stats::Tracker;

/// State shared by every thread of one gateway.
pub(crate) struct Shared {
    pub config: Config,
    pub bad: BadTokens,
    pub acceptor: SslAcceptor,
    /// Tuples the next feedback connection takes.
    pub feedback: Mutex<Vec<(u32, [u8; 32])>>,
    /// The counters; change them through [`Shared::update`] so waiters wake.
    pub tracker: Mutex<Tracker>,
    /// Signalled on every counter change and when a connection ends.
    pub changed: Condvar,
    /// Raised by `stop()`; every loop checks it at least once per [`crate::tls::POLL`].
    pub stop: AtomicBool,
    /// Gateway connections accepted so far (refused ones included): the sequence
    /// number that picks a connection's chaos draw.
    pub seen: AtomicU64,
    /// Gateway connections open now.
    pub active: AtomicUsize,
    /// When `active` last fell to zero.
    pub idle_since: Mutex<Option<Instant>>,
    /// Connection threads, joined by `stop()`.
    pub threads: Mutex<Vec<JoinHandle<()>>>,
}

/// Lock `m` even if a thread panicked while holding it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking connection thread must not take the others down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    /// Fresh state for a gateway that serves with `acceptor` and, if given, writes
    /// accepted deliveries to `log`.
    pub(crate) fn new(config: Config, acceptor: SslAcceptor, log: Option<File>) -> Self {
        Shared {
            bad: BadTokens::new(&config),
            acceptor,
            feedback: Mutex::new(config.feedback.clone()),
            tracker: Mutex::new(Tracker::new(config.track_deliveries, log)),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
            seen: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            idle_since: Mutex::new(None),
            threads: Mutex::new(Vec::new()),
            config,
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Change the counters under the lock and wake `wait_until` callers.
    pub(crate) fn update<R>(&self, f: impl FnOnce(&mut Tracker) -> R) -> R {
        let r = f(&mut lock(&self.tracker));
        self.changed.notify_all();
        r
    }
}
