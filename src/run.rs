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

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Select, Sender, TrySendError, bounded};
use mio::{Poll, Waker};

use crate::conn::{self, Event, Link, WAKE};
use crate::error::Error;
use crate::frame::{Command, Priority};
use crate::input::Record;
use crate::report::{Failure, Report, ShardReport, State};
use crate::shard::{FrameSpec, Item, Limits, ShardState};
use crate::tls::TlsConfig;

/// Notifications per batch handed from the splitter to a shard.
const BATCH: usize = 512;
/// Batches a shard's channel holds before the splitter waits.
const CHANNEL_BATCHES: usize = 8;

/// How notifications are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// Write until the socket would block; check for an answer once per batch.
    #[default]
    Pipelined,
    /// One notification per write, each followed by a check for an answer
    /// (what many senders do; slow, kept for comparison).
    Strict,
}

/// Everything a run needs to know.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// `host:port` of the gateway.
    pub gateway: String,
    /// Certificate, trust roots, verification.
    pub tls: TlsConfig,
    /// Connections in parallel, one thread each.
    pub shards: usize,
    /// Nagle's algorithm off (TCP_NODELAY).
    pub nodelay: bool,
    /// Pipelined or strict.
    pub style: Style,
    /// Frame format (1 or 2).
    pub command: Command,
    /// The payload of every token without one of its own.
    pub payload: Arc<[u8]>,
    /// Expiry, UNIX seconds; 0 = deliver now or never.
    pub expiry: u32,
    /// Priority (command 2).
    pub priority: Priority,
    /// Bytes written on a connection before the shard confirms them; bounds
    /// what each shard retains for resending.
    pub window_bytes: usize,
    /// Notifications written before the shard confirms them (0 = only the window bounds it).
    pub confirm_every: u64,
    /// Bytes per write.
    pub batch_bytes: usize,
    /// SO_SNDBUF; `None` keeps the kernel's autotuning. Everything in the
    /// send buffer when an error response is written is resent, so a small
    /// buffer keeps errors cheap; on a long, fast link the buffer must hold a
    /// round trip's worth of data or it caps the rate (see BENCHMARKS.md).
    pub send_buffer: Option<usize>,
    /// TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// How long a silent gateway is waited for.
    pub response_timeout: Duration,
    /// Failed connections in a row before a shard gives up.
    pub max_failures: u32,
    /// First pause after a failed connection.
    pub backoff_min: Duration,
    /// Longest pause between attempts.
    pub backoff_max: Duration,
    /// Check the gateway with one test notification before reading any input.
    pub preflight: bool,
}

impl SendConfig {
    /// Defaults for `gateway`, with the shared `payload` and the given TLS setup.
    pub fn new(gateway: impl Into<String>, tls: TlsConfig, payload: impl Into<Arc<[u8]>>) -> SendConfig {
        SendConfig {
            gateway: gateway.into(),
            tls,
            shards: 4,
            nodelay: false,
            style: Style::Pipelined,
            command: Command::Items,
            payload: payload.into(),
            expiry: 0,
            priority: Priority::Immediate,
            window_bytes: 16 << 20,
            confirm_every: 0,
            batch_bytes: 64 << 10,
            send_buffer: Some(64 << 10),
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(10),
            max_failures: 6,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            preflight: true,
        }
    }

    fn host(&self) -> &str {
        let host = self.gateway.rsplit_once(':').map_or(self.gateway.as_str(), |(h, _)| h);
        host.trim_start_matches('[').trim_end_matches(']')
    }
}

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
}

/// Receives what happens during a run, on the caller's thread.
pub trait Observer {
    /// Called about ten times a second.
    fn progress(&mut self, _progress: &Progress) {}
    /// Called once for every token that was not accepted.
    fn failure(&mut self, _failure: &Failure) {}
}

/// An observer that ignores everything.
impl Observer for () {}

/// Sends token lists through a pool of shards.
#[derive(Debug)]
pub struct Blaster {
    config: SendConfig,
    link: Link,
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
        if config.command == Command::Simple {
            return Err(Error::Config("command 0 gives no error responses and cannot be confirmed; use 1 or 2".into()));
        }
        if config.payload.len() > usize::from(u16::MAX) {
            return Err(Error::Config("the payload is longer than the protocol allows".into()));
        }
        if config.window_bytes == 0 || config.batch_bytes == 0 {
            return Err(Error::Config("window and batch sizes must be positive".into()));
        }
        let link = Link {
            gateway: config.gateway.clone(),
            domain: config.host().to_owned(),
            connector: config.tls.connector()?,
            nodelay: config.nodelay,
            send_buffer: config.send_buffer,
            strict: config.style == Style::Strict,
            connect_timeout: config.connect_timeout,
            response_timeout: config.response_timeout,
            max_failures: config.max_failures.max(1),
            backoff_min: config.backoff_min,
            backoff_max: config.backoff_max,
        };
        Ok(Blaster { config, link, cancel: Arc::new(AtomicBool::new(false)) })
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
        conn::probe(&self.link, self.config.command, &self.cancel)
            .map_err(|reason| Error::Gateway { gateway: self.config.gateway.clone(), reason })
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
        let spec = FrameSpec {
            command: self.config.command,
            payload: Arc::clone(&self.config.payload),
            expiry: self.config.expiry,
            priority: self.config.priority,
        };
        let limits = Limits {
            batch_bytes: if self.config.style == Style::Strict { 1 } else { self.config.batch_bytes },
            window_bytes: self.config.window_bytes,
            confirm_every: self.config.confirm_every,
        };
        let (event_tx, event_rx) = bounded::<Event>(1024);
        let read = AtomicU64::new(0);
        let alive: Vec<AtomicBool> = (0..n).map(|_| AtomicBool::new(true)).collect();
        thread::scope(|scope| {
            let mut senders = Vec::with_capacity(n);
            let mut wakers = Vec::with_capacity(n);
            for (i, alive) in alive.iter().enumerate() {
                let (tx, rx) = bounded::<Vec<Item>>(CHANNEL_BATCHES);
                let poll = Poll::new().expect("the OS refused an epoll instance");
                wakers.push(Waker::new(poll.registry(), WAKE).expect("the OS refused an eventfd"));
                senders.push(tx);
                let state = ShardState::new(i, spec.clone(), limits);
                let (link, events, cancel) = (&self.link, event_tx.clone(), &*self.cancel);
                thread::Builder::new()
                    .name(format!("shard-{i}"))
                    .spawn_scoped(scope, move || conn::run_shard(state, link, rx, poll, events, cancel, alive))
                    .expect("the OS refused a thread");
            }
            let splitter = {
                let events = event_tx.clone();
                let (cancel, read, alive) = (&*self.cancel, &read, &alive[..]);
                thread::Builder::new()
                    .name("splitter".into())
                    .spawn_scoped(scope, move || split(input, &senders, &wakers, alive, &events, cancel, read))
                    .expect("the OS refused a thread")
            };
            drop(event_tx);
            let shard_reports = collect(event_rx, n, observer, &read, started);
            let counts = splitter.join().unwrap_or_else(|_| SplitCounts {
                input_error: Some("the input reader panicked".into()),
                ..SplitCounts::default()
            });
            let mut report =
                Report::from_shards(shard_reports, counts.read, counts.skipped, started.elapsed().as_secs_f64());
            report.unsent += counts.unsent;
            report.other_partitions = counts.other;
            report.interrupted = counts.interrupted;
            report.input_error = counts.input_error;
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
    interrupted: bool,
    input_error: Option<String>,
}

/// Reads the input and hands batches to shards.
fn split<I>(
    input: I,
    senders: &[Sender<Vec<Item>>],
    wakers: &[Waker],
    alive: &[AtomicBool],
    events: &Sender<Event>,
    cancel: &AtomicBool,
    read: &AtomicU64,
) -> SplitCounts
where
    I: Iterator<Item = io::Result<Record>>,
{
    let mut counts = SplitCounts::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut skipped = Vec::new();
    let mut next = 0usize;
    for record in input {
        if cancel.load(Ordering::Relaxed) {
            counts.interrupted = true;
            break;
        }
        match record {
            Ok(Record::Send(entry)) => {
                counts.read += 1;
                batch.push(Item::new(entry.line, entry.token, entry.payload));
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if let Some(lost) = dispatch(full, senders, wakers, alive, cancel, &mut next) {
                        counts.unsent += unsent(lost, events, cancel);
                    }
                    read.store(counts.read, Ordering::Relaxed);
                }
            }
            Ok(Record::Skip(skip)) => {
                counts.read += 1;
                counts.skipped += 1;
                skipped.push(Failure {
                    line: skip.line,
                    token: skip.text,
                    state: State::Skipped,
                    status: None,
                    reason: skip.reason.to_string(),
                });
                if skipped.len() >= BATCH {
                    let _ = events.send(Event::Failures(std::mem::take(&mut skipped)));
                }
            }
            Ok(Record::OtherPartition) => counts.other += 1,
            Err(e) => {
                log::error!("reading the token list failed after {} tokens: {e}", counts.read);
                counts.input_error = Some(e.to_string());
                break;
            }
        }
    }
    if !skipped.is_empty() {
        let _ = events.send(Event::Failures(skipped));
    }
    if !batch.is_empty()
        && let Some(lost) = dispatch(batch, senders, wakers, alive, cancel, &mut next)
    {
        counts.unsent += unsent(lost, events, cancel);
    }
    read.store(counts.read, Ordering::Relaxed);
    counts
}

/// Reports a batch no shard could take.
fn unsent(items: Vec<Item>, events: &Sender<Event>, cancel: &AtomicBool) -> u64 {
    let reason = if cancel.load(Ordering::Relaxed) {
        "not sent: the run was interrupted"
    } else {
        "not sent: every shard had stopped"
    };
    let n = items.len() as u64;
    let failures = items
        .into_iter()
        .map(|i| Failure { line: i.line, token: i.token.to_string(), state: State::Unsent, status: None, reason: reason.into() })
        .collect();
    let _ = events.send(Event::Failures(failures));
    n
}

/// Gives a batch to a live shard with room, waiting for one if all are busy.
/// Returns the batch if no shard can take it (all stopped, or cancelled).
fn dispatch(
    mut batch: Vec<Item>,
    senders: &[Sender<Vec<Item>>],
    wakers: &[Waker],
    alive: &[AtomicBool],
    cancel: &AtomicBool,
    next: &mut usize,
) -> Option<Vec<Item>> {
    let n = senders.len();
    for k in 0..n {
        let i = (*next + k) % n;
        if !alive[i].load(Ordering::Relaxed) {
            continue;
        }
        match senders[i].try_send(batch) {
            Ok(()) => {
                let _ = wakers[i].wake();
                *next = i + 1;
                return None;
            }
            Err(TrySendError::Full(b) | TrySendError::Disconnected(b)) => batch = b,
        }
    }
    loop {
        let live: Vec<usize> = (0..n).filter(|&i| alive[i].load(Ordering::Relaxed)).collect();
        if live.is_empty() || cancel.load(Ordering::Relaxed) {
            return Some(batch);
        }
        let mut select = Select::new();
        for &i in &live {
            select.send(&senders[i]);
        }
        // Bounded, so that a shard that stops or a cancel is noticed.
        let Ok(op) = select.select_timeout(Duration::from_millis(100)) else { continue };
        let i = live[op.index()];
        match op.send(&senders[i], batch) {
            Ok(()) => {
                let _ = wakers[i].wake();
                *next = i + 1;
                return None;
            }
            Err(e) => batch = e.into_inner(),
        }
    }
}

/// Turns shard events into observer calls until every shard is done.
fn collect(
    events: Receiver<Event>,
    shards: usize,
    observer: &mut dyn Observer,
    read: &AtomicU64,
    started: Instant,
) -> Vec<ShardReport> {
    let mut latest: Vec<ShardReport> = (0..shards).map(|shard| ShardReport { shard, ..ShardReport::default() }).collect();
    let mut done = vec![false; shards];
    let mut skipped = 0u64;
    let mut last = Instant::now();
    let progress = |latest: &[ShardReport], skipped: u64| Progress {
        read: read.load(Ordering::Relaxed),
        written: latest.iter().map(|s| s.frames_written).sum(),
        accepted: latest.iter().map(|s| s.accepted).sum(),
        failed: skipped + latest.iter().map(|s| s.rejected_total() + s.unconfirmed + s.unsent).sum::<u64>(),
        reconnects: latest.iter().map(|s| s.reconnects).sum(),
        elapsed: started.elapsed(),
    };
    for event in events {
        match event {
            Event::Failures(failures) => {
                for f in &failures {
                    if f.state == State::Skipped {
                        skipped += 1;
                    }
                    observer.failure(f);
                }
            }
            Event::Progress(r) => {
                let shard = r.shard;
                latest[shard] = r;
            }
            Event::Done(r) => {
                let shard = r.shard;
                latest[shard] = r;
                done[shard] = true;
            }
        }
        if last.elapsed() >= Duration::from_millis(100) {
            observer.progress(&progress(&latest, skipped));
            last = Instant::now();
        }
    }
    observer.progress(&progress(&latest, skipped));
    debug_assert!(done.iter().all(|d| *d), "a shard ended without its final report");
    latest
}
