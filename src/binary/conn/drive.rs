//! One connection's I/O: write until the socket would block, read after
//! every batch, and end it politely or not as the shard's state says.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use mio::{Events, Poll};

use super::connect::{Conn, interrupted, would_block};
use super::spare::{SPARE, Spare};
use super::{Event, Link, TICK};
use crate::binary::shard::{ConnEnd, Item, ShardState};
use crate::handoff::Inbox;
use crate::session::{Alarm, Clocks};

/// Writes and reads on one connection until it ends, and sets up the
/// `spare` beside it.
pub(super) fn drive(
    conn: &mut Conn,
    state: &mut ShardState,
    link: &Link,
    poll: &mut Poll,
    inbox: &Inbox<'_, Item>,
    events: &Sender<Event>,
    spare: &mut Option<Spare>,
) -> ConnEnd {
    let mut poll_events = Events::with_capacity(16);
    let mut read_buf = [0u8; 4096];
    let mut clocks = Clocks::new(Instant::now(), link.response_timeout);
    let mut last_report = Instant::now();
    let mut pushed = false;
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
                    clocks.progressed(Instant::now());
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
        match clocks.check(Instant::now(), waiting_on_gateway, state.in_flight()) {
            Some(Alarm::ConfirmNow) => {
                state.confirm_now();
                continue;
            }
            Some(Alarm::GatewaySilent) => {
                log::warn!(
                    "shard {}: the gateway neither read nor answered for {:?}; treating the connection as dead",
                    state.report().shard,
                    link.response_timeout
                );
                return state.on_close();
            }
            None => {}
        }
        if !waiting_on_gateway && state.in_flight() == 0 && !state.has_work() {
            return state.on_idle_close();
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
pub(super) fn close(mut conn: Conn, poll: &mut Poll, end: ConnEnd) {
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
