//! One gateway connection: read big buffers, decode every complete frame in a tight
//! loop (no per-frame allocation; the partial tail stays for the next read), and end
//! the way Apple's gateway did.
//!
//! Ordering guarantee for tests: everything a connection accepted, and the rejection
//! or fault that ends it, is in the shared stats *before* the error response is
//! written or the connection is closed or reset.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use openssl::ssl::SslStream;

use crate::config::ChaosFault;
use crate::parse::{self, Limits, Parsed};
use crate::shared::Shared;
use crate::stats::Accepted;
use crate::tls::{self, POLL, retry_later};

/// Why the frame loop stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The client closed (possibly mid-frame), the socket broke, or the gateway stops.
    Gone,
    /// A rejected notification; `respond` is false for command 0 (silent close).
    Error { status: u8, id: u32, respond: bool },
    /// `shutdown_after` reached: status 10 with the last accepted identifier.
    Shutdown { id: u32 },
    /// `close_after` reached.
    Close,
    /// `reset_after` reached.
    Reset,
}

/// Serve one accepted TCP connection to its end.
pub(crate) fn serve(shared: &Shared, tcp: TcpStream, seq: u64) {
    let Some(mut tls) = tls::handshake(shared, tcp) else {
        return;
    };
    let plan = Plan::new(shared, seq);
    shared.update(|t| t.stats.connections += 1);
    let mut conn = Conn::new(shared, &plan);
    let end = conn.run(&mut tls);
    conn.flush();
    let discarded = (conn.end - conn.start) as u64;
    finish(shared, tls, end, discarded, &plan);
}

/// How one connection misbehaves: the fixed fault settings plus its chaos draw.
struct Plan {
    /// The fault that fires after N accepted notifications.
    fault: Option<(u64, End)>,
    error_delay: Duration,
    reset_after_error: bool,
    lose_response: bool,
}

impl Plan {
    /// The fault that fires first wins (on a tie shutdown beats close beats reset).
    fn new(shared: &Shared, seq: u64) -> Plan {
        let c = &shared.config;
        let draw = c.chaos.as_ref().map(|ch| ch.draw(seq)).unwrap_or_default();
        let chaos = draw.fault.map(|f| match f {
            ChaosFault::Shutdown(n) => (n, End::Shutdown { id: 0 }),
            ChaosFault::Close(n) => (n, End::Close),
            ChaosFault::Reset(n) => (n, End::Reset),
        });
        let fault = [
            c.shutdown_after.map(|n| (n, End::Shutdown { id: 0 })),
            c.close_after.map(|n| (n, End::Close)),
            c.reset_after.map(|n| (n, End::Reset)),
            chaos,
        ]
        .into_iter()
        .flatten()
        .min_by_key(|(n, _)| *n);
        Plan {
            fault,
            error_delay: c.error_delay.max(draw.error_delay),
            reset_after_error: c.reset_after_error,
            lose_response: c.lose_error_responses || draw.lose_response,
        }
    }
}

struct Conn<'a> {
    shared: &'a Shared,
    limits: Limits,
    buf: Vec<u8>,
    /// Unparsed bytes are `buf[start..end]`.
    start: usize,
    end: usize,
    batch: Vec<Accepted>,
    unrecorded_bytes: u64,
    accepted: u64,
    last_id: u32,
    fault: Option<(u64, End)>,
    pacer: Option<Pacer>,
}

impl<'a> Conn<'a> {
    fn new(shared: &'a Shared, plan: &Plan) -> Self {
        let c = &shared.config;
        Conn {
            shared,
            limits: Limits { legacy: c.payload_limit_legacy, frame: c.payload_limit },
            buf: vec![0; c.read_buffer.max(64)],
            start: 0,
            end: 0,
            batch: Vec::with_capacity(1024),
            unrecorded_bytes: 0,
            accepted: 0,
            last_id: 0,
            fault: plan.fault,
            pacer: c.read_rate.filter(|r| *r > 0).map(Pacer::new),
        }
    }

    fn run(&mut self, tls: &mut SslStream<TcpStream>) -> End {
        if let Some(end) = self.fault_due() {
            return end;
        }
        loop {
            if self.shared.stopping() {
                return End::Gone;
            }
            let mut room = self.buf.len() - self.end;
            if let Some(p) = &self.pacer {
                if !p.wait(self.shared) {
                    return End::Gone;
                }
                room = room.min(p.chunk);
            }
            match tls.read(&mut self.buf[self.end..self.end + room]) {
                Ok(0) => return End::Gone,
                Ok(n) => {
                    self.end += n;
                    self.unrecorded_bytes += n as u64;
                    if let Some(p) = &mut self.pacer {
                        p.bytes += n as u64;
                    }
                }
                Err(e) if retry_later(&e) => continue,
                Err(e) => {
                    log::debug!("connection read failed: {e}");
                    return End::Gone;
                }
            }
            if let Some(end) = self.parse_buffered() {
                return end;
            }
            self.flush();
            self.compact();
        }
    }

    /// Decode every complete frame in the buffer. `Some` when the connection must end.
    #[inline]
    fn parse_buffered(&mut self) -> Option<End> {
        loop {
            match parse::parse(&self.buf[self.start..self.end], self.limits) {
                Parsed::Incomplete(need) => {
                    if need > self.buf.len() {
                        // One frame bigger than the buffer: grow once (rare, bounded by
                        // the decoder's limits).
                        self.buf.resize(need, 0);
                    }
                    return None;
                }
                Parsed::Frame(f) => {
                    self.start += f.len;
                    let id = f.id.unwrap_or(0);
                    if self.shared.bad.is_bad(f.token) {
                        let respond = f.command != 0;
                        return Some(End::Error { status: parse::INVALID_TOKEN, id, respond });
                    }
                    self.batch.push(Accepted::new(f.token, f.payload, f.id));
                    self.accepted += 1;
                    self.last_id = id;
                    if let Some(end) = self.fault_due() {
                        return Some(end);
                    }
                }
                Parsed::Invalid(inv) => {
                    let respond = inv.command != 0;
                    return Some(End::Error { status: inv.status, id: inv.id, respond });
                }
            }
        }
    }

    #[inline]
    fn fault_due(&self) -> Option<End> {
        match self.fault {
            Some((n, End::Shutdown { .. })) if self.accepted >= n => Some(End::Shutdown { id: self.last_id }),
            Some((n, end)) if self.accepted >= n => Some(end),
            _ => None,
        }
    }

    /// Hand the batch of accepted notifications to the shared tracker (one lock).
    fn flush(&mut self) {
        if self.batch.is_empty() && self.unrecorded_bytes == 0 {
            return;
        }
        let (batch, bytes) = (&self.batch, self.unrecorded_bytes);
        self.shared.update(|t| t.record(batch, bytes));
        self.batch.clear();
        self.unrecorded_bytes = 0;
    }

    /// Move the partial tail (at most one frame) to the front.
    fn compact(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }
}

/// End the connection per `end`; stats are updated before anything reaches the client.
fn finish(shared: &Shared, mut tls: SslStream<TcpStream>, end: End, discarded: u64, plan: &Plan) {
    match end {
        End::Gone => {
            let _ = tls.shutdown();
        }
        End::Error { status, id, respond } => {
            shared.update(|t| {
                *t.stats.rejected.entry(status).or_insert(0) += 1;
                t.stats.discarded_bytes += discarded;
            });
            if respond {
                respond_and_close(shared, tls, status, id, plan);
            } else {
                tls::close(shared, tls);
            }
        }
        End::Shutdown { id } => {
            shared.update(|t| {
                t.stats.shutdowns += 1;
                t.stats.discarded_bytes += discarded;
            });
            respond_and_close(shared, tls, parse::SHUTDOWN, id, plan);
        }
        End::Close => {
            shared.update(|t| {
                t.stats.silent_closes += 1;
                t.stats.discarded_bytes += discarded;
            });
            tls::close(shared, tls);
        }
        End::Reset => {
            shared.update(|t| {
                t.stats.resets += 1;
                t.stats.discarded_bytes += discarded;
            });
            tls::reset(tls);
        }
    }
}

/// Optionally hold the response for `error_delay` (discarding input), write
/// `8|status|id`, then close in order, or reset if `reset_after_error`. A
/// response to lose is not written: the connection is reset instead.
fn respond_and_close(shared: &Shared, mut tls: SslStream<TcpStream>, status: u8, id: u32, plan: &Plan) {
    let delay = plan.error_delay;
    if !delay.is_zero() {
        let n = tls::drain(shared, tls.get_mut(), delay);
        shared.update(|t| t.stats.discarded_bytes += n);
        let _ = tls.get_ref().set_read_timeout(Some(POLL));
    }
    if plan.lose_response {
        shared.update(|t| {
            t.stats.responses_lost += 1;
            t.stats.resets += 1;
        });
        tls::reset(tls);
        return;
    }
    let reset = plan.reset_after_error;
    if reset {
        shared.update(|t| t.stats.resets += 1);
    }
    let mut response = [8, status, 0, 0, 0, 0];
    response[2..].copy_from_slice(&id.to_be_bytes());
    if let Err(e) = tls.write_all(&response) {
        log::debug!("error response not written: {e}");
    }
    if reset {
        tls::reset(tls);
    } else {
        tls::close(shared, tls);
    }
}

/// Read pacing for `read_rate`: the next read may start once the bytes read so far
/// are "paid for", and one read takes at most 1/20 s worth of bytes.
#[derive(Debug)]
struct Pacer {
    rate: u64,
    chunk: usize,
    started: Instant,
    bytes: u64,
}

impl Pacer {
    fn new(rate: u64) -> Self {
        Pacer { rate, chunk: ((rate / 20).max(1) as usize).min(1 << 20), started: Instant::now(), bytes: 0 }
    }

    /// Sleep until the budget allows another read. False if the gateway is stopping.
    fn wait(&self, shared: &Shared) -> bool {
        let due = self.started + Duration::from_secs_f64(self.bytes as f64 / self.rate as f64);
        loop {
            if shared.stopping() {
                return false;
            }
            let left = due.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            thread::sleep(left.min(POLL));
        }
    }
}
