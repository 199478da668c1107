//! A whole run: the splitter, N shard threads, and the merge of their results.
//!
//! ```text
//!  input ──▶ splitter ──batches (bounded)──▶ shard 0 ── TLS ──▶ gateway
//!              │                        └──▶ shard 1 ── TLS ──▶ gateway
//!              │ skipped lines                  │ failures, progress, report
//!              ▼                                ▼
//!            collector (the caller's thread): Observer callbacks, then the Report
//! ```
//!
//! This is the only module that knows about threads. The list streams
//! through bounded channels, so a 10-million-token list never sits in memory
//! and a slow shard slows the reader instead of growing a queue; batches go
//! to whichever shard has room, so one slow shard does not hold up the rest.

mod collect;
mod config;
mod splitter;
mod transport;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{RecvTimeoutError, Sender, bounded};

use crate::binary::shard::Item;
use crate::brakes::Brakes;
use crate::error::Error;
use crate::handoff::{Doorbell, Event, Inbox};
use crate::input::Record;
use crate::journal::LineSet;
use crate::report::{Failure, Reason, Report, State, Stopped};

use collect::collect;
pub use config::{SendConfig, Style};
use transport::{Transport, Waiter};

/// Batches a shard's channel holds before the splitter waits.
const CHANNEL_BATCHES: usize = 8;
/// The splitter's coarse clock ticks this often. When input trickles in, a
/// partial batch goes out with the first item that arrives after two ticks
/// since the batch's first item (50–100 ms). A thread ticks it, so that the
/// splitter reads no system clock per token (see BENCHMARKS.md).
const TICK: Duration = Duration::from_millis(50);

/// Where a run stands, for progress displays.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Progress {
    /// Token lines read so far.
    pub read: u64,
    /// Notification frames written so far (resends included).
    pub written: u64,
    /// Accepted so far.
    pub accepted: u64,
    /// Rejected, unconfirmed, unsent or skipped so far.
    pub failed: u64,
    /// Reconnects so far.
    pub reconnects: u64,
    /// Time since the run started.
    pub elapsed: Duration,
    /// An answer about the run (not a token) has stopped it: what is in
    /// flight is being confirmed, nothing more is sent.
    pub stopping: bool,
}

/// Receives what happens during a run, on the caller's thread.
pub trait Observer {
    /// Called about ten times a second.
    fn progress(&mut self, _progress: &Progress) {}
    /// Called once for every token that was not accepted.
    fn failure(&mut self, _failure: &Failure) {}
    /// Called with ranges of input lines the gateway has accepted or rejected,
    /// after their failures (if any) were reported: what a journal records.
    fn settled(&mut self, _lines: &[(u64, u64)]) {}
}

/// An observer that ignores everything.
impl Observer for () {}

/// Sends token lists through a pool of shards.
#[derive(Debug)]
pub struct Blaster {
    config: SendConfig,
    transport: Transport,
    cancel: Arc<AtomicBool>,
}

impl Blaster {
    /// Checks the configuration and builds the TLS client.
    ///
    /// # Errors
    /// [`Error::Tls`] for unusable trust roots; [`Error::Config`] for settings out of range.
    pub fn new(config: SendConfig) -> Result<Blaster, Error> {
        if config.shards == 0 || config.shards > 1024 {
            return Err(Error::Config(format!("shards must be 1 to 1024, not {}", config.shards)));
        }
        let transport = Transport::new(&config)?;
        Ok(Blaster { config, transport, cancel: Arc::new(AtomicBool::new(false)) })
    }

    /// A flag that stops the run when set: writing stops, what is in flight is
    /// confirmed if the gateway answers in time, and everything else is
    /// reported unsent or unconfirmed.
    pub fn cancel_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.cancel)
    }

    /// Connects once and sends one test notification that the gateway must
    /// reject, proving that it is reachable and accepts the certificate.
    ///
    /// # Errors
    /// [`Error::Gateway`] saying why not.
    pub fn check_gateway(&self) -> Result<(), Error> {
        self.transport
            .probe(&self.cancel)
            .map_err(|cause| Error::Gateway { gateway: self.config.gateway.clone(), cause })
    }

    /// Sends every token of `input` and reports what became of each.
    ///
    /// # Errors
    /// Only before any input is read: the gateway check failed (see
    /// [`Blaster::check_gateway`]). Trouble after that is in the report.
    pub fn run<I>(&self, input: I, observer: &mut dyn Observer) -> Result<Report, Error>
    where
        I: Iterator<Item = io::Result<Record>> + Send,
    {
        if self.config.preflight {
            self.check_gateway()?;
        }
        Ok(self.run_unchecked(input, observer))
    }

    fn run_unchecked<I>(&self, input: I, observer: &mut dyn Observer) -> Report
    where
        I: Iterator<Item = io::Result<Record>> + Send,
    {
        let started = Instant::now();
        let n = self.config.shards;
        let (event_tx, event_rx) = bounded::<Event>(1024);
        let read = AtomicU64::new(0);
        let ticks = AtomicU64::new(0);
        let alive: Vec<AtomicBool> = (0..n).map(|_| AtomicBool::new(true)).collect();
        // The doorbells outlive every shard thread: closing an eventfd drops
        // the wake-up it still holds for the shard's poller, so a splitter
        // that wakes the shards and ends at once must not take them with it.
        let (waiters, bells): (Vec<Waiter>, Vec<Doorbell>) = (0..n).map(|_| self.transport.waiter()).unzip();
        let brakes = Brakes::new(Arc::clone(&self.cancel), self.config.http2.as_ref());
        let brakes = &brakes;
        thread::scope(|scope| {
            let mut senders = Vec::with_capacity(n);
            let mut leftovers = Vec::with_capacity(n);
            for (((i, alive), waiter), bell) in alive.iter().enumerate().zip(waiters).zip(&bells) {
                let (tx, rx) = bounded::<Vec<Item>>(CHANNEL_BATCHES);
                leftovers.push(rx.clone());
                senders.push(tx);
                let (transport, events, cancel) = (&self.transport, event_tx.clone(), &*self.cancel);
                thread::Builder::new()
                    .name(format!("shard-{i}"))
                    .spawn_scoped(scope, move || {
                        transport.run_shard(i, waiter, Inbox { batches: rx, bell, cancel }, events, alive, brakes)
                    })
                    .expect("the OS refused a thread");
            }
            let (stop_ticking, ticking) = bounded::<()>(0);
            let ticks = &ticks;
            thread::Builder::new()
                .name("clock".into())
                .spawn_scoped(scope, move || {
                    while let Err(RecvTimeoutError::Timeout) = ticking.recv_timeout(TICK) {
                        ticks.fetch_add(1, Ordering::Relaxed);
                    }
                })
                .expect("the OS refused a thread");
            let splitter = Splitter {
                ticks,
                _stop_ticking: stop_ticking,
                senders,
                bells: &bells,
                alive: &alive,
                events: event_tx.clone(),
                cancel: &self.cancel,
                brakes,
                read: &read,
                skip_lines: self.config.skip_lines.as_deref(),
                line_headers: self.transport.line_headers(),
                next: 0,
                counts: SplitCounts::default(),
            };
            let splitter = thread::Builder::new()
                .name("splitter".into())
                .spawn_scoped(scope, move || splitter.run(input))
                .expect("the OS refused a thread");
            drop(event_tx);
            let mut shard_reports = collect(event_rx, n, observer, &read, started, brakes);
            if let Some(cause) = brakes.guard.finish() {
                // Tripped at the end (a short list): nothing is left to stop,
                // but the run ends as stopped all the same.
                brakes.stop_run(cause);
            }
            // Every shard and the splitter have stopped: batches a stopped or
            // cancelled shard never took are unsent.
            for (rx, report) in leftovers.iter().zip(&mut shard_reports) {
                let reason = match &report.error {
                    _ if self.cancel.load(Ordering::Relaxed) => brakes.unsent_reason(),
                    Some(why) => Reason::QueuedForStoppedShard(why.clone()),
                    None => Reason::NotSent,
                };
                for item in rx.try_iter().flatten() {
                    report.unsent += 1;
                    observer.failure(&Failure::new(item.line, item.token.to_string(), State::Unsent, &reason));
                }
            }
            let counts = splitter.join().unwrap_or_else(|_| SplitCounts {
                input_error: Some("the input reader panicked".into()),
                ..SplitCounts::default()
            });
            let mut report =
                Report::from_shards(shard_reports, counts.read, counts.skipped, started.elapsed().as_secs_f64());
            report.unsent += counts.unsent;
            report.other_partitions = counts.other;
            report.previously_settled = counts.previously_settled;
            report.interrupted = counts.interrupted;
            report.input_error = counts.input_error;
            report.braked_s = brakes.waited(Instant::now()).as_secs_f64();
            report.stopped = brakes.stop_cause().map(|cause| Stopped {
                cause: cause.cause(),
                fix: cause.fix(),
                wrong_environment: brakes.guard.wrong_environment(),
            });
            report
        })
    }
}

#[derive(Debug, Default)]
struct SplitCounts {
    read: u64,
    skipped: u64,
    unsent: u64,
    other: u64,
    previously_settled: u64,
    interrupted: bool,
    input_error: Option<String>,
}

/// Reads the input and hands batches to shards (its work is in `splitter.rs`).
struct Splitter<'a> {
    /// The coarse clock (see [`TICK`]).
    ticks: &'a AtomicU64,
    /// Dropped with the splitter, which stops the clock.
    _stop_ticking: Sender<()>,
    senders: Vec<Sender<Vec<Item>>>,
    bells: &'a [Doorbell],
    alive: &'a [AtomicBool],
    events: Sender<Event>,
    cancel: &'a AtomicBool,
    /// Says why the run stopped, for what no shard took.
    brakes: &'a Brakes,
    read: &'a AtomicU64,
    skip_lines: Option<&'a LineSet>,
    /// The transport sends a line's own HTTP/2 headers (HTTP/2 does; the
    /// binary protocol has none).
    line_headers: bool,
    /// Where the round-robin search for a shard with room starts.
    next: usize,
    counts: SplitCounts,
}
