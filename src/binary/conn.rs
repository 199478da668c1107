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
//! What to write and what an answer means is decided by [`ShardState`];
//! when to connect, pause or give up by the session (`binary::session`); this module only
//! moves bytes, keeps time, and does what they say.
//!
//! | file | what it holds |
//! |---|---|
//! | `conn.rs` | the shard's loop around its session |
//! | `conn/connect.rs` | the one copy of TCP connect + TLS handshake, step by step |
//! | `conn/drive.rs` | one connection's writes, reads and close |
//! | `conn/spare.rs` | the next connection, set up ahead of need |
//! | `conn/probe.rs` | the gateway check before any token is read |

mod connect;
mod drive;
mod probe;
mod spare;

use std::io;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use mio::{Poll, Token, Waker};
use native_tls::TlsConnector;

use crate::backoff::{Backoff, sleep_unless_cancelled};
use crate::binary::shard::{ConnEnd, Item, Outcome, ShardState};
use crate::error::GatewayError;
use crate::handoff::{Doorbell, Event, Inbox, Intake, Settles, Wake, flush_outcomes, give_up};
use crate::report::{Reason, ShardReport};
use crate::session::{Fruitless, Next, Policy, Session};
use connect::{Conn, connect};
use spare::Spare;

pub use crate::session::{ConnectAhead, LONG_ROUND_TRIP};
pub(crate) use probe::probe;

const SOCKET: Token = Token(0);
/// The token of the waker the splitter uses to say "input arrived".
const WAKE: Token = Token(1);
/// The longest a shard waits without looking at the cancel flag.
const TICK: Duration = Duration::from_millis(100);

/// How a shard reaches the gateway and paces itself.
#[derive(Debug, Clone)]
pub(crate) struct Link {
    /// `host:port` of the gateway.
    pub(crate) gateway: String,
    /// The name the server certificate must carry (the host part of `gateway`).
    pub(crate) domain: String,
    /// The TLS client, shared by all shards.
    pub(crate) connector: TlsConnector,
    /// TCP_NODELAY: Nagle's algorithm off.
    pub(crate) nodelay: bool,
    /// SO_SNDBUF in bytes; `None` leaves the kernel's autotuning.
    pub(crate) send_buffer: Option<usize>,
    /// Read for an error response after every notification (the slow style
    /// many senders use), instead of after every batch.
    pub(crate) strict: bool,
    /// TCP connect plus TLS handshake.
    pub(crate) connect_timeout: Duration,
    /// How long to wait for the gateway to answer a sentinel, or to take
    /// more bytes, before treating the connection as dead.
    pub(crate) response_timeout: Duration,
    /// When to connect again, pause, give up or connect ahead.
    pub(crate) policy: Policy,
}

impl Wake for Waker {
    fn wake(&self) {
        // A failed wake leaves the shard to notice its input at its next tick.
        let _ = Waker::wake(self);
    }
}

/// A shard's poller and the doorbell that wakes it.
///
/// # Errors
/// The OS refused an epoll instance or an eventfd.
pub(crate) fn poller() -> io::Result<(Poll, Doorbell)> {
    let poll = Poll::new()?;
    let waker = Waker::new(poll.registry(), WAKE)?;
    Ok((poll, Doorbell::new(waker)))
}

impl Settles for ShardState {
    fn take_settled_lines(&mut self) -> Vec<(u64, u64)> {
        ShardState::take_settled_lines(self)
    }
    fn take_outcomes(&mut self) -> Vec<Outcome> {
        ShardState::take_outcomes(self)
    }
    fn report_mut(&mut self) -> &mut ShardReport {
        ShardState::report_mut(self)
    }
    fn cancel(&mut self) {
        ShardState::cancel(self);
    }
    fn abandon(&mut self, reason: Reason) {
        ShardState::abandon(self, reason);
    }
}

impl Intake<Item> for ShardState {
    fn wants_input(&self) -> bool {
        ShardState::wants_input(self)
    }
    fn push(&mut self, batch: Vec<Item>) {
        ShardState::push(self, batch);
    }
    fn finish_input(&mut self) {
        ShardState::finish_input(self);
    }
    fn is_cancelled(&self) -> bool {
        ShardState::is_cancelled(self)
    }
    fn cancel(&mut self) {
        ShardState::cancel(self);
    }
}

/// Runs one shard to the end: all its input settled, or given up.
pub(crate) fn run_shard(
    mut state: ShardState,
    link: &Link,
    inbox: Inbox<'_, Item>,
    mut poll: Poll,
    events: Sender<Event>,
    alive: &AtomicBool,
) {
    let started = Instant::now();
    let shard = state.report().shard;
    let mut session = Session::new(link.policy, Backoff::seed_for(shard));
    // The next connection, when connecting ahead.
    let mut spare: Option<Spare> = None;
    loop {
        inbox.pull(&mut state);
        if !state.has_work() {
            break;
        }
        if state.queued() == 0 && state.in_flight() == 0 {
            inbox.wait(&mut state, TICK);
            continue;
        }
        let next = match next_connection(&mut state, link, &mut poll, &mut spare) {
            Ok((mut conn, tcp_connect)) => {
                state.on_connected();
                if session.on_connected(tcp_connect) {
                    spare = conn.get_ref().peer_addr().ok().and_then(|addr| Spare::start(link, &poll, addr));
                }
                let (answered, written) = (state.answered(), state.report().frames_written);
                let end = drive::drive(&mut conn, &mut state, link, &mut poll, &inbox, &events, &mut spare);
                drive::close(conn, &mut poll, end);
                log::debug!("shard {shard}: connection ended {end:?}, queued {}", state.queued());
                let wrote = state.report().frames_written - written;
                session.on_connection_end(match end {
                    _ if state.answered() > answered => Ok(()),
                    ConnEnd::Answered(resp) => Err(Fruitless::Answered(resp.to_string())),
                    _ if wrote == 0 => Err(Fruitless::ClosedAtOnce),
                    _ => Err(Fruitless::Closed),
                })
            }
            Err(e) => {
                state.report_mut().failed_connects += 1;
                session.on_connect_failed(e)
            }
        };
        flush_outcomes(&mut state, &events);
        match next {
            Next::Connect => {}
            Next::Retry { after, trouble } => {
                log::info!("shard {shard}: {trouble}; trying again");
                if inbox.cancelled() {
                    state.cancel();
                } else {
                    sleep_unless_cancelled(after, inbox.cancel);
                }
            }
            Next::GiveUp(trouble) => {
                give_up(&mut state, format!("gave up: {trouble}"), alive);
                break;
            }
        }
        let _ = events.send(Event::Progress(state.report().clone()));
    }
    if state.is_cancelled() {
        // Batches still in the channel are settled by the run once the
        // splitter has stopped, so none can slip in after a last look here.
        state.abandon(Reason::Interrupted);
    }
    flush_outcomes(&mut state, &events);
    if spare.take().is_some() {
        state.report_mut().connect_ahead_wasted += 1;
    }
    state.report_mut().elapsed_s = started.elapsed().as_secs_f64();
    let _ = events.send(Event::Done(state.report().clone()));
}

/// The shard's next connection: the spare when there is one and it comes
/// up, else a new one. Returns it with how long its TCP connect took.
fn next_connection(
    state: &mut ShardState,
    link: &Link,
    poll: &mut Poll,
    spare: &mut Option<Spare>,
) -> Result<(Conn, Duration), GatewayError> {
    let connecting = Instant::now();
    let send_buffer = state.send_buffer(link.send_buffer);
    let attempt = match spare.take().map(|s| s.hand_over(link, poll, send_buffer)) {
        Some(Some(ready)) => {
            state.report_mut().connected_ahead += 1;
            Ok(ready)
        }
        Some(None) => {
            state.report_mut().connect_ahead_wasted += 1;
            connect(link, poll, SOCKET, send_buffer)
        }
        None => connect(link, poll, SOCKET, send_buffer),
    };
    state.report_mut().connect_s += connecting.elapsed().as_secs_f64();
    attempt
}
