//! The writing loop: each connection's frames, segment by segment, in writes of
//! [`BATCH`] bytes, each segment confirmed by the rejection of its last frame.

use std::io::{self, Read, Write};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Poll};
use native_tls::TlsStream;

use crate::connect::{Job, connect, wait};
use crate::frames::{Frames, SENTINEL_LEN};

/// Bytes per write call, as the sender's default batch.
const BATCH: usize = 64 << 10;
/// Status the gateway answers for a frame without a device token.
const MISSING_TOKEN: u8 = 2;

/// Reads until `WouldBlock` (edge-triggered: OpenSSL may hold decrypted bytes
/// that raise no new event). Returns true at end of stream.
fn drain(tls: &mut TlsStream<TcpStream>, inbox: &mut Vec<u8>) -> io::Result<bool> {
    let mut buf = [0u8; 4096];
    loop {
        match tls.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => inbox.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes all of `out` in writes of at most [`BATCH`] bytes; after
/// `WouldBlock`, waits and retries the same bytes from the same offset.
fn write_all(
    tls: &mut TlsStream<TcpStream>,
    out: &[u8],
    poll: &mut Poll,
    events: &mut Events,
    inbox: &mut Vec<u8>,
    timeout: Duration,
) -> io::Result<()> {
    let mut pos = 0;
    while pos < out.len() {
        let end = out.len().min(pos + BATCH);
        match tls.write(&out[pos..end]) {
            Ok(n) => pos += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                wait(poll, events, timeout, "writing")?;
                if events.iter().any(|e| e.is_readable() || e.is_read_closed()) {
                    let closed = drain(tls, inbox)?;
                    if !inbox.is_empty() || closed {
                        return Err(unexpected(inbox, closed, pos));
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = drain(tls, inbox);
                return Err(io::Error::new(e.kind(), format!("write failed at byte {pos}: {e}; read back {inbox:?}")));
            }
        }
    }
    Ok(())
}

/// The gateway said something (or closed) before the sentinel.
fn unexpected(inbox: &[u8], closed: bool, pos: usize) -> io::Error {
    io::Error::other(format!(
        "the gateway answered {inbox:?}{} after {pos} bytes: a frame was rejected",
        if closed { " and closed" } else { "" }
    ))
}

/// Waits for the 6-byte rejection of frame `id`, which must be the first thing
/// the gateway says. Returns true when the gateway has also closed.
fn await_rejection(
    tls: &mut TlsStream<TcpStream>,
    id: u32,
    poll: &mut Poll,
    events: &mut Events,
    inbox: &mut Vec<u8>,
    timeout: Duration,
    written: usize,
) -> io::Result<bool> {
    let mut closed = drain(tls, inbox)?;
    while inbox.len() < 6 && !closed {
        wait(poll, events, timeout, "waiting for a rejection")?;
        closed = drain(tls, inbox)?;
    }
    let mut expected = vec![8, MISSING_TOKEN];
    expected.extend_from_slice(&id.to_be_bytes());
    if inbox.len() < 6 || inbox[..6] != expected[..] {
        return Err(unexpected(inbox, closed, written));
    }
    Ok(closed)
}

/// One connection's share: for each segment, connect, write the segment, and
/// wait for the rejection of its last frame. Returns when the last rejection
/// (the sentinel's) arrived, the clock's end, and the number of reconnects.
pub(crate) fn pump(job: &Job, frames: &Frames, start: &Barrier) -> io::Result<(Instant, u64)> {
    start.wait();
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(16);
    let mut from = 0;
    for (n, &(end, id)) in frames.segments.iter().enumerate() {
        let mut tls = connect(job, &mut poll, &mut events)?;
        let mut inbox = Vec::new();
        let (body, last) = frames.bytes[from..end].split_at(end - from - SENTINEL_LEN);
        write_all(&mut tls, body, &mut poll, &mut events, &mut inbox, job.timeout)?;
        // Push the rejected frame past Nagle, as the sender does its sentinel.
        tls.get_ref().set_nodelay(true)?;
        write_all(&mut tls, last, &mut poll, &mut events, &mut inbox, job.timeout)?;
        let mut closed = await_rejection(&mut tls, id, &mut poll, &mut events, &mut inbox, job.timeout, end)?;
        from = end;
        if n + 1 < frames.segments.len() {
            poll.registry().deregister(tls.get_mut())?;
            continue;
        }
        let done = Instant::now();
        // Orderly end: read to the gateway's close so nothing unread makes our close an RST.
        while !closed {
            if wait(&mut poll, &mut events, Duration::from_secs(2), "waiting for the close").is_err() {
                break;
            }
            closed = drain(&mut tls, &mut inbox).unwrap_or(true);
        }
        return Ok((done, n as u64));
    }
    unreachable!("the sentinel always ends the last segment")
}
