//! The I/O driver of one shard: one thread, writing on one TLS connection at
//! a time (on a long link, with the next one being set up beside it: see
//! `conn/spare.rs`).
//!
//! It follows Apple's advice for this protocol: write until a write would
//! block, then wait for the socket to become writable *or readable*, because
//! readable means the gateway spoke (6 bytes: an error response; 0 bytes: a
//! close). Reads are also tried after every batch, so an error response is
//! seen within one batch of its arrival rather than only when the pipe fills.
//! A write that would block is retried with the same bytes, never the next
//! notification (OpenSSL's rule; see `ShardState::pending_bytes`).
//!
//! What to write and what an answer means is decided by [`ShardState`]; this
//! module only moves bytes, keeps time, and reconnects.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use native_tls::{HandshakeError, TlsConnector, TlsStream};

use crate::binary::frame::Command;
use crate::report::{Failure, ShardReport};
use crate::binary::shard::{ConnEnd, Item, ShardState};

mod spare;

pub use spare::{ConnectAhead, LONG_ROUND_TRIP};
use spare::{RoundTrip, SPARE, Spare};

const SOCKET: Token = Token(0);
/// The token of the waker the splitter uses to say "input arrived".
const WAKE: Token = Token(1);
/// The longest a shard waits without looking at the cancel flag.
const TICK: Duration = Duration::from_millis(100);
/// How long notifications stay in flight unconfirmed while the input is stalled.
const IDLE_CONFIRM: Duration = Duration::from_secs(1);

/// How a shard reaches the gateway and paces itself.
#[derive(Debug, Clone)]
pub struct Link {
    /// `host:port` of the gateway.
    pub gateway: String,
    /// The name the server certificate must carry (the host part of `gateway`).
    pub domain: String,
    /// The TLS client, shared by all shards.
    pub connector: TlsConnector,
    /// TCP_NODELAY: Nagle's algorithm off.
    pub nodelay: bool,
    /// SO_SNDBUF in bytes; `None` leaves the kernel's autotuning.
    pub send_buffer: Option<usize>,
    /// Read for an error response after every notification (the slow style
    /// many senders use), instead of after every batch.
    pub strict: bool,
    /// TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Set up each shard's next connection while the current one works.
    pub connect_ahead: ConnectAhead,
    /// How long to wait for the gateway to answer a sentinel, or to take
    /// more bytes, before treating the connection as dead.
    pub response_timeout: Duration,
    /// Connections in a row that may fail, or end without settling anything,
    /// before the shard gives up.
    pub max_failures: u32,
    /// First pause after a failure; it doubles (with jitter) up to `backoff_max`.
    pub backoff_min: Duration,
    /// Longest pause between attempts.
    pub backoff_max: Duration,
}

/// What a shard tells the run while it works.
#[derive(Debug)]
pub(crate) enum Event {
    /// Final words on tokens that were not accepted.
    Failures(Vec<Failure>),
    /// Input lines the gateway accepted or rejected (for the journal).
    Settled(Vec<(u64, u64)>),
    /// The shard's counts so far.
    Progress(ShardReport),
    /// The shard is finished; its final counts.
    Done(ShardReport),
}

/// A connection attempt that did not produce a working TLS stream.
#[derive(Debug)]
enum ConnectError {
    /// Retrying will not help (for example the server certificate is not trusted).
    Fatal(String),
    /// Worth another try after a pause.
    Transient(String),
}

type Conn = TlsStream<TcpStream>;

/// How the splitter tells a connected shard that input arrived. The shard
/// says it is listening just before it polls with nothing to write; the
/// splitter wakes it only then. A shard that is busy writing, or waiting
/// for the socket or the gateway, looks at its channel when that wait ends,
/// so waking it would cost a system call per batch for nothing.
#[derive(Debug)]
pub(crate) struct Doorbell {
    waker: Waker,
    listening: AtomicBool,
}

impl Doorbell {
    /// A doorbell that wakes `poll`.
    pub(crate) fn new(poll: &Poll) -> io::Result<Doorbell> {
        Ok(Doorbell { waker: Waker::new(poll.registry(), WAKE)?, listening: AtomicBool::new(false) })
    }

    /// The splitter queued a batch for the shard: wake it if it listens.
    pub(crate) fn ring(&self) {
        // Pairs with the fence in `listen`: either the shard's look at its
        // channel finds the batch, or this finds the shard listening.
        fence(Ordering::SeqCst);
        if self.listening.swap(false, Ordering::Relaxed) {
            let _ = self.waker.wake();
        }
    }

    /// Wake the shard whatever it is doing (the input has ended).
    pub(crate) fn wake(&self) {
        let _ = self.waker.wake();
    }

    /// The shard is about to poll for input; it looks at its channel once
    /// more after this, before it sleeps.
    fn listen(&self) {
        self.listening.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// The shard is awake and looks at its channel before it polls again.
    fn stop_listening(&self) {
        self.listening.store(false, Ordering::Relaxed);
    }
}

fn would_block(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::WouldBlock
}

fn interrupted(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::Interrupted
}

/// Runs one shard to the end: all its input settled, or given up.
pub(crate) fn run_shard(
    mut state: ShardState,
    link: &Link,
    inbox: Inbox<'_>,
    mut poll: Poll,
    events: Sender<Event>,
    alive: &AtomicBool,
) {
    let cancel = inbox.cancel;
    let started = Instant::now();
    let shard = state.report().shard;
    let mut backoff = Backoff::new(link, shard);
    // Failed connects in a row, and connections in a row on which the gateway
    // neither accepted nor rejected anything. Recovery after silent closes
    // needs about log2(window) such connections, so their cap is higher.
    let (mut failed_connects, mut fruitless) = (0u32, 0u32);
    let fruitless_cap = link.max_failures.saturating_mul(4);
    let mut last_failure = String::new();
    // The next connection, when connecting ahead.
    let mut spare: Option<Spare> = None;
    let mut round_trip = RoundTrip::default();
    loop {
        inbox.pull(&mut state);
        if !state.has_work() {
            break;
        }
        if state.queued() == 0 && state.in_flight() == 0 {
            inbox.wait(&mut state);
            continue;
        }
        let answered = state.answered();
        let mut give_up = false;
        let connecting = Instant::now();
        let send_buffer = state.send_buffer(link.send_buffer);
        let attempt = match spare.take().map(|s| s.hand_over(link, &mut poll, send_buffer)) {
            Some(Some(ready)) => {
                state.report_mut().connected_ahead += 1;
                Ok(ready)
            }
            Some(None) => {
                state.report_mut().connect_ahead_wasted += 1;
                connect(link, &mut poll, send_buffer)
            }
            None => connect(link, &mut poll, send_buffer),
        };
        state.report_mut().connect_s += connecting.elapsed().as_secs_f64();
        match attempt {
            Ok((mut conn, tcp_connect)) => {
                failed_connects = 0;
                state.on_connected();
                // Not while connections keep ending with nothing done: the
                // back-off paces those, and a spare would double them. (The
                // last spare of a run goes unused: one handshake per shard.)
                let estimate = round_trip.note(tcp_connect);
                if fruitless == 0 && link.connect_ahead.wanted(estimate) {
                    spare = conn.get_ref().peer_addr().ok().and_then(|addr| Spare::start(link, &poll, addr));
                }
                let before = state.report().frames_written;
                let end = drive(&mut conn, &mut state, link, &mut poll, &inbox, &events, &mut spare);
                let wrote = state.report().frames_written - before;
                close(conn, &mut poll, end);
                log::debug!("shard {shard}: connection ended {end:?}, queued {}", state.queued());
                if state.answered() > answered {
                    fruitless = 0;
                    backoff.reset();
                } else {
                    fruitless += 1;
                    give_up = fruitless >= fruitless_cap;
                    last_failure = match end {
                        ConnEnd::Answered(resp) => {
                            format!(
                                "{fruitless} connections in a row ended before the gateway accepted anything; last: {resp}"
                            )
                        }
                        _ if wrote == 0 => format!(
                            "the gateway closed {fruitless} connections in a row right after the TLS handshake; \
                             it may not accept this certificate (a sandbox certificate on the production gateway, or the reverse?)"
                        ),
                        _ => format!(
                            "the gateway closed {fruitless} connections in a row without accepting or rejecting anything"
                        ),
                    };
                }
            }
            Err(e) => {
                failed_connects += 1;
                state.report_mut().failed_connects += 1;
                (give_up, last_failure) = match e {
                    ConnectError::Fatal(why) => (true, why),
                    ConnectError::Transient(why) => (failed_connects >= link.max_failures, why),
                };
            }
        }
        flush_outcomes(&mut state, &events);
        if give_up {
            let why = format!("gave up: {last_failure}");
            log::error!("shard {shard} {why}");
            state.report_mut().error = Some(why.clone());
            // The splitter stops routing here; what it already sent is settled too.
            alive.store(false, Ordering::Relaxed);
            state.cancel();
            state.abandon(&why);
            break;
        }
        if failed_connects > 0 || fruitless > 0 {
            log::info!("shard {shard}: {last_failure}; trying again");
            if cancel.load(Ordering::Relaxed) {
                state.cancel();
            } else {
                backoff.pause(cancel);
            }
        }
        let _ = events.send(Event::Progress(state.report().clone()));
    }
    if state.is_cancelled() {
        // Batches still in the channel are settled by the run once the
        // splitter has stopped, so none can slip in after a last look here.
        state.abandon("not sent: the run was interrupted");
    }
    flush_outcomes(&mut state, &events);
    if spare.take().is_some() {
        state.report_mut().connect_ahead_wasted += 1;
    }
    state.report_mut().elapsed_s = started.elapsed().as_secs_f64();
    let _ = events.send(Event::Done(state.report().clone()));
}

fn flush_outcomes(state: &mut ShardState, events: &Sender<Event>) {
    let settled = state.take_settled_lines();
    if !settled.is_empty() {
        let _ = events.send(Event::Settled(settled));
    }
    let outcomes = state.take_outcomes();
    if !outcomes.is_empty() {
        let failures = outcomes
            .into_iter()
            .map(|o| Failure::new(o.item.line, o.item.token.to_string(), o.state, &o.reason))
            .collect();
        let _ = events.send(Event::Failures(failures));
    }
}

/// A shard's input: batches from the splitter, the doorbell it rings, and
/// the run's cancel flag.
pub(crate) struct Inbox<'a> {
    /// Batches of notifications, in input order; disconnected when the input ends.
    pub(crate) batches: Receiver<Vec<Item>>,
    /// Rung by the splitter after it queues a batch.
    pub(crate) bell: &'a Doorbell,
    /// Set when the run is cancelled.
    pub(crate) cancel: &'a AtomicBool,
}

impl Inbox<'_> {
    /// Takes whatever batches are queued, up to the shard's appetite; notes
    /// the end of the input and a cancel.
    fn pull(&self, state: &mut ShardState) {
        if self.cancel.load(Ordering::Relaxed) && !state.is_cancelled() {
            state.cancel();
        }
        while state.wants_input() {
            match self.batches.try_recv() {
                Ok(batch) => state.push(batch),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => state.finish_input(),
            }
        }
    }

    /// Waits (with no connection open) for input: on the channel itself, not
    /// on the poller, since nothing but input can end this wait.
    fn wait(&self, state: &mut ShardState) {
        match self.batches.recv_timeout(TICK) {
            Ok(batch) => state.push(batch),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => state.finish_input(),
        }
    }
}

/// Connects with `send_buffer` as SO_SNDBUF (`None`: the kernel's autotuning).
/// Also returns how long the TCP connect took: about one round trip.
fn connect(link: &Link, poll: &mut Poll, send_buffer: Option<usize>) -> Result<(Conn, Duration), ConnectError> {
    let deadline = Instant::now() + link.connect_timeout;
    let addrs: Vec<SocketAddr> = link
        .gateway
        .to_socket_addrs()
        .map_err(|e| ConnectError::Transient(format!("cannot resolve {}: {e}", link.gateway)))?
        .collect();
    let mut last = format!("{} resolves to no address", link.gateway);
    for addr in addrs {
        let started = Instant::now();
        match connect_tcp(addr, link, poll, send_buffer, deadline) {
            Ok(sock) => {
                let tcp = started.elapsed();
                let conn = handshake(sock, link, poll, deadline);
                log::debug!("connected to {addr}: tcp {tcp:?}, tls {:?}", started.elapsed() - tcp);
                return conn.map(|c| (c, tcp));
            }
            Err(e) => last = format!("cannot connect to {} ({addr}): {e}", link.gateway),
        }
    }
    Err(ConnectError::Transient(last))
}

/// Non-blocking connect, confirmed the way mio documents (see [`connected`])
/// after each WRITABLE event.
fn connect_tcp(
    addr: SocketAddr,
    link: &Link,
    poll: &mut Poll,
    send_buffer: Option<usize>,
    deadline: Instant,
) -> io::Result<TcpStream> {
    let mut sock = TcpStream::connect(addr)?;
    let sref = socket2::SockRef::from(&sock);
    if let Some(size) = send_buffer {
        sref.set_send_buffer_size(size)?;
    }
    sock.set_nodelay(link.nodelay)?;
    poll.registry().register(&mut sock, SOCKET, Interest::READABLE | Interest::WRITABLE)?;
    let mut events = Events::with_capacity(4);
    loop {
        match connected(&sock) {
            Ok(true) => return Ok(sock),
            Ok(false) => {}
            Err(e) => {
                poll.registry().deregister(&mut sock)?;
                return Err(e);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            poll.registry().deregister(&mut sock)?;
            return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
        }
        match poll.poll(&mut events, Some(left)) {
            Ok(()) => {}
            Err(e) if interrupted(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Whether a non-blocking connect has completed (mio's recipe: `take_error`,
/// then `peer_addr`, where NotConnected means "not yet").
fn connected(sock: &TcpStream) -> io::Result<bool> {
    if let Some(e) = sock.take_error()? {
        return Err(e);
    }
    match sock.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

fn handshake(sock: TcpStream, link: &Link, poll: &mut Poll, deadline: Instant) -> Result<Conn, ConnectError> {
    let mut events = Events::with_capacity(4);
    let mut attempt = link.connector.connect(&link.domain, sock);
    loop {
        match attempt {
            Ok(conn) => return Ok(conn),
            Err(HandshakeError::WouldBlock(mid)) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let mut mid = mid;
                    let _ = poll.registry().deregister(mid.get_mut());
                    return Err(ConnectError::Transient(format!("TLS handshake with {} timed out", link.gateway)));
                }
                if let Err(e) = poll.poll(&mut events, Some(left))
                    && !interrupted(&e)
                {
                    return Err(ConnectError::Transient(format!("poll failed: {e}")));
                }
                attempt = mid.handshake();
            }
            Err(HandshakeError::Failure(e)) => {
                let text = e.to_string();
                // The socket is gone with the failed stream; its registration with it.
                let why = format!("TLS handshake with {} failed: {text}", link.gateway);
                return Err(if text.contains("certificate verify failed") || text.contains("unknown ca") {
                    ConnectError::Fatal(why)
                } else {
                    ConnectError::Transient(why)
                });
            }
        }
    }
}

/// Writes and reads on one connection until it ends, and sets up the
/// `spare` beside it.
fn drive(
    conn: &mut Conn,
    state: &mut ShardState,
    link: &Link,
    poll: &mut Poll,
    inbox: &Inbox,
    events: &Sender<Event>,
    spare: &mut Option<Spare>,
) -> ConnEnd {
    let mut poll_events = Events::with_capacity(16);
    let mut read_buf = [0u8; 4096];
    let mut last_progress = Instant::now();
    let mut last_report = Instant::now();
    let mut pushed = false;
    let mut input_idle_since: Option<Instant> = None;
    // As connected: careful mode can end on this connection, not start.
    let mut send_buffer = state.send_buffer(link.send_buffer);
    // OpenSSL holds a record of the pending bytes that it could not finish
    // sending (see `ShardState::write_failed`).
    let mut record_held = false;
    loop {
        inbox.pull(state);
        // Write until the socket would block or there is nothing to write.
        let mut blocked = false;
        loop {
            let bytes = state.pending_bytes();
            if bytes.is_empty() {
                break;
            }
            let len = bytes.len();
            match conn.write(bytes) {
                Ok(n) => {
                    record_held = false;
                    state.wrote(n);
                    last_progress = Instant::now();
                    // Check for an answer once per batch (or per frame in the strict style).
                    if (n == len || link.strict)
                        && let Some(end) = read_answer(conn, state, &mut read_buf)
                    {
                        return end;
                    }
                    if n == len {
                        inbox.pull(state);
                        if let Some(size) = state.send_buffer(link.send_buffer).filter(|&s| Some(s) != send_buffer) {
                            // Careful mode is over: the full buffer again.
                            let _ = socket2::SockRef::from(conn.get_ref()).set_send_buffer_size(size);
                            send_buffer = Some(size);
                        }
                    }
                }
                Err(e) if would_block(&e) => {
                    record_held = true;
                    blocked = true;
                    break;
                }
                Err(e) if interrupted(&e) => record_held = true,
                Err(e) => {
                    // The gateway has gone; an error response may still be queued.
                    log::debug!("shard {}: write failed: {e}", state.report().shard);
                    if record_held {
                        state.write_failed();
                    }
                    return read_answer(conn, state, &mut read_buf).unwrap_or_else(|| state.on_close());
                }
            }
        }
        if let Some(end) = read_answer(conn, state, &mut read_buf) {
            return end;
        }
        if last_report.elapsed() >= TICK {
            let _ = events.send(Event::Progress(state.report().clone()));
            last_report = Instant::now();
        }
        if state.awaiting_confirmation() && !link.nodelay && !pushed {
            // Nagle would hold the sentinel until the gateway acknowledges
            // earlier data, and the gateway delays that acknowledgement
            // because it has nothing to say yet: a 40 ms stall per window.
            // Turning NODELAY on pushes the tail out now.
            let _ = conn.get_ref().set_nodelay(true);
            pushed = true;
        }
        let waiting_on_gateway = blocked || state.awaiting_confirmation();
        if waiting_on_gateway || state.in_flight() == 0 {
            input_idle_since = None;
        } else if input_idle_since.get_or_insert_with(Instant::now).elapsed() >= IDLE_CONFIRM {
            // The input has stalled (a slow pipe): settle what is in flight
            // instead of leaving it in doubt until more arrives.
            state.confirm_now();
            input_idle_since = None;
            continue;
        }
        if !waiting_on_gateway && state.in_flight() == 0 && !state.has_work() {
            return state.on_idle_close();
        }
        if waiting_on_gateway && last_progress.elapsed() >= link.response_timeout {
            log::warn!(
                "shard {}: the gateway neither read nor answered for {:?}; treating the connection as dead",
                state.report().shard,
                link.response_timeout
            );
            return state.on_close();
        }
        if !waiting_on_gateway {
            // Nothing to write: waiting for input. Look once more after
            // listening, so a batch queued just before is not slept through.
            inbox.bell.listen();
            let before = (state.queued(), state.wants_input());
            inbox.pull(state);
            if (state.queued(), state.wants_input()) != before {
                continue;
            }
        }
        // Writable, readable, or woken by the splitter; bounded so cancel and
        // timeouts are noticed.
        let polled = poll.poll(&mut poll_events, Some(TICK));
        inbox.bell.stop_listening();
        match polled {
            Ok(()) => {}
            Err(e) if interrupted(&e) => {}
            Err(e) => {
                log::warn!("poll failed: {e}");
                return state.on_close();
            }
        }
        if let Some(s) = spare.take_if(|_| poll_events.iter().any(|e| e.token() == SPARE)) {
            *spare = s.step(link);
            if spare.is_none() {
                state.report_mut().connect_ahead_wasted += 1;
            }
        }
    }
}

/// Reads whatever the gateway sent, until the socket would block.
fn read_answer(conn: &mut Conn, state: &mut ShardState, buf: &mut [u8]) -> Option<ConnEnd> {
    loop {
        match conn.read(buf) {
            Ok(0) => {
                log::debug!("shard {}: the gateway closed the connection", state.report().shard);
                return Some(state.on_close());
            }
            Ok(n) => {
                if let Some(end) = state.on_bytes(&buf[..n]) {
                    return Some(end);
                }
            }
            Err(e) if would_block(&e) => return None,
            Err(e) if interrupted(&e) => {}
            Err(e) => {
                log::debug!("shard {}: read failed: {e}", state.report().shard);
                return Some(state.on_close());
            }
        }
    }
}

/// Ends a connection. After our last confirmed window we close politely
/// (close_notify, FIN, then wait briefly for the gateway's FIN) so that no
/// unread input turns our close into a reset; after an error response the
/// gateway is closing anyway.
fn close(mut conn: Conn, poll: &mut Poll, end: ConnEnd) {
    if end == ConnEnd::Confirmed {
        let _ = conn.shutdown();
        let _ = conn.get_mut().shutdown(Shutdown::Write);
        let deadline = Instant::now() + Duration::from_millis(500);
        let mut buf = [0u8; 1024];
        let mut events = Events::with_capacity(4);
        loop {
            match conn.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if would_block(&e) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() || poll.poll(&mut events, Some(left)).is_err() {
                        break;
                    }
                }
                Err(e) if interrupted(&e) => {}
                Err(_) => break,
            }
        }
    }
    let _ = poll.registry().deregister(conn.get_mut());
}

/// Checks, before any token is read, that the gateway is reachable and
/// accepts the certificate: connect, write one sentinel, and wait for its
/// rejection. Under TLS 1.3 a refused client certificate only shows after the
/// handshake, so the handshake alone proves nothing.
///
/// # Errors
/// Why the gateway cannot be used, in words for the user.
pub(crate) fn probe(link: &Link, command: Command, cancel: &AtomicBool) -> Result<(), String> {
    let mut poll = Poll::new().map_err(|e| format!("cannot create a poller: {e}"))?;
    let mut backoff = Backoff::new(link, usize::MAX);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let why = match connect(link, &mut poll, link.send_buffer) {
            Ok((mut conn, _)) => match probe_answer(&mut conn, link, &mut poll, command) {
                Ok(()) => {
                    let _ = poll.registry().deregister(conn.get_mut());
                    return Ok(());
                }
                Err(why) => why,
            },
            Err(ConnectError::Fatal(why)) => return Err(why),
            Err(ConnectError::Transient(why)) => why,
        };
        if attempt >= link.max_failures || cancel.load(Ordering::Relaxed) {
            return Err(why);
        }
        log::info!("gateway check, attempt {attempt} of {}: {why}", link.max_failures);
        backoff.pause(cancel);
    }
}

fn probe_answer(conn: &mut Conn, link: &Link, poll: &mut Poll, command: Command) -> Result<(), String> {
    let mut out = Vec::new();
    command.encode_sentinel(0, &mut out);
    // One small write, then a wait for the answer: never let Nagle hold it.
    let _ = conn.get_ref().set_nodelay(true);
    let deadline = Instant::now() + link.response_timeout;
    let mut events = Events::with_capacity(4);
    let mut pos = 0;
    let mut answer = Vec::new();
    let mut buf = [0u8; 64];
    let refused = "the gateway closed the connection right after the TLS handshake without answering: \
                   it does not accept this certificate (a sandbox certificate on the production gateway, or the reverse?)";
    loop {
        while pos < out.len() {
            match conn.write(&out[pos..]) {
                Ok(n) => pos += n,
                Err(e) if would_block(&e) => break,
                Err(e) if interrupted(&e) => {}
                Err(e) => return Err(format!("{refused} ({e})")),
            }
        }
        loop {
            match conn.read(&mut buf) {
                Ok(0) => return Err(refused.to_owned()),
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    match crate::binary::frame::ErrorResponse::decode(&answer) {
                        Ok(Some(_)) => return Ok(()),
                        Ok(None) => {}
                        Err(e) => return Err(format!("{} does not speak the APNs binary protocol: {e}", link.gateway)),
                    }
                }
                Err(e) if would_block(&e) => break,
                Err(e) if interrupted(&e) => {}
                Err(e) => return Err(format!("{refused} ({e})")),
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "{} did not answer a test notification within {:?}",
                link.gateway, link.response_timeout
            ));
        }
        if let Err(e) = poll.poll(&mut events, Some(left))
            && !interrupted(&e)
        {
            return Err(format!("poll failed: {e}"));
        }
    }
}

/// Exponential backoff with jitter between failed attempts.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    seed: u64,
}

impl Backoff {
    fn new(link: &Link, shard: usize) -> Backoff {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            ^ (shard as u64).wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Backoff { min: link.backoff_min, max: link.backoff_max, next: link.backoff_min, seed: seed | 1 }
    }

    fn reset(&mut self) {
        self.next = self.min;
    }

    /// Pauses for the current delay (between half and all of it), waking early on cancel.
    fn pause(&mut self, cancel: &AtomicBool) {
        // xorshift64: jitter only, no need for a cryptographic generator.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let frac = 0.5 + (self.seed % 1000) as f64 / 2000.0;
        let until = Instant::now() + self.next.mul_f64(frac);
        self.next = (self.next * 2).min(self.max);
        while !cancel.load(Ordering::Relaxed) {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(TICK));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `poll` has a wake-up waiting (without sleeping).
    fn woken(poll: &mut Poll) -> bool {
        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::ZERO)).expect("poll");
        events.iter().any(|e| e.token() == WAKE)
    }

    #[test]
    fn the_doorbell_wakes_a_shard_only_while_it_listens() {
        let mut poll = Poll::new().expect("poll");
        let bell = Doorbell::new(&poll).expect("doorbell");
        bell.ring();
        assert!(!woken(&mut poll), "a busy shard is not woken");
        bell.listen();
        bell.ring();
        assert!(woken(&mut poll), "a listening shard is woken");
        bell.ring();
        assert!(!woken(&mut poll), "one wake-up per listen");
        bell.listen();
        bell.stop_listening();
        bell.ring();
        assert!(!woken(&mut poll), "a shard that woke up by itself is not woken again");
        bell.wake();
        assert!(woken(&mut poll), "the end of the input wakes every shard");
    }
}
