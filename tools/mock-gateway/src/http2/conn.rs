//! One HTTP/2 connection: take requests from h2, answer each in its own task,
//! and end the way the connection's [`Plan`] says.

use std::future::poll_fn;
use std::net::Shutdown;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use h2::server::{self, SendResponse};
use h2::{Reason as H2Reason, RecvStream};
use http::request::Parts;
use http::{HeaderValue, Request, Response, header};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_openssl::SslStream;

use super::auth::ConnToken;
use super::faults::{self, Fault, Met, Plan};
use super::gate::Gate;
use super::reason::Reason;
use super::{AcceptedRequest, State, request};
use crate::config::splitmix64;
use crate::shared::lock;
use crate::stats::Accepted;

/// The most body bytes kept: one more than the largest limit (voip's 5120),
/// enough to tell "too large".
const BODY_CAP: usize = 5121;

/// What a connection's request tasks share with its loop.
struct Conn {
    state: Arc<State>,
    /// The client certificate's bundle id, when one was sent.
    bundle_id: Option<String>,
    plan: Plan,
    token: Mutex<ConnToken>,
    /// Requests taken on and not yet past their answer's bookkeeping.
    in_flight: AtomicU64,
    /// Requests whose answer has been handed to h2 (or given up).
    done: AtomicU64,
    /// Answers handed to h2 whole (their last frame queued).
    handed: AtomicU64,
    /// One stream at a time until `raised` (`one_stream_start`).
    one_stream_start: bool,
    /// A request with a valid token has been answered (`one_stream_start`).
    raised: AtomicBool,
    /// Signalled whenever `done` grows.
    notify: Notify,
    /// The kinds of fault met so far.
    met: Met,
}

type Stream = (Request<RecvStream>, SendResponse<Bytes>);

/// Serve one connection after its TLS handshake, to its end.
pub(crate) async fn serve(state: Arc<State>, tls: SslStream<TcpStream>, bundle_id: Option<String>, seq: u64) {
    let plan = Plan::new(&state.config, seq);
    let h = &state.config.http2;
    // Answers written to the socket, for a drop to wait for.
    let ends = plan.drop_after.map(|_| Arc::new(AtomicU64::new(0)));
    // The socket again, for a drop to hang up while h2 holds the stream.
    let raw = plan.drop_after.and_then(|_| another_handle(tls.get_ref()));
    let handshake = server::Builder::new()
        .max_concurrent_streams(h.max_streams)
        .initial_window_size(h.stream_window)
        .initial_connection_window_size(h.connection_window)
        .handshake::<_, Bytes>(Gate::new(tls, plan.goaway_after, ends.clone(), plan.goaway_shutdown))
        .await;
    let mut h2 = match handshake {
        Ok(c) => c,
        Err(e) => return log::debug!("HTTP/2 preface failed: {e}"),
    };
    let one_stream_start = h.one_stream_start && bundle_id.is_none();
    let conn = Arc::new(Conn {
        state: Arc::clone(&state),
        bundle_id,
        plan,
        token: Mutex::new(ConnToken::default()),
        in_flight: AtomicU64::new(0),
        done: AtomicU64::new(0),
        handed: AtomicU64::new(0),
        one_stream_start,
        raised: AtomicBool::new(false),
        notify: Notify::new(),
        met: Met::default(),
    });
    // Streams opened, and those of them taken on (not refused).
    let (mut opened, mut received) = (0u64, 0u64);
    // Requests after `drop_after`: kept open (never answered) until the drop.
    let mut held: Vec<Stream> = Vec::new();
    loop {
        if let Some(n) = plan.drop_after
            && !held.is_empty()
            && conn.done.load(Ordering::SeqCst) >= n
        {
            // Drive h2 until every answer handed to it has gone to the
            // socket (holding what arrives meanwhile), then hang up under
            // it: no GOAWAY. Only the requests still open are lost; an
            // answer the mock counted always reaches the client, so its
            // counts stay the sender's.
            let handed = conn.handed.load(Ordering::SeqCst);
            let written = ends.as_deref().expect("counted with drop_after");
            poll_fn(|cx| {
                loop {
                    if written.load(Ordering::SeqCst) >= handed {
                        return Poll::Ready(());
                    }
                    match h2.poll_accept(cx) {
                        Poll::Ready(Some(Ok(stream))) => {
                            take_on(&conn, &held, false);
                            held.push(stream);
                        }
                        // The client has gone: nothing more can be written.
                        Poll::Ready(_) => return Poll::Ready(()),
                        // Blocked on the socket, h2 is woken when it can write.
                        Poll::Pending if written.load(Ordering::SeqCst) >= handed => return Poll::Ready(()),
                        Poll::Pending => return Poll::Pending,
                    }
                }
            })
            .await;
            let dropped = held.len() as u64;
            state.update(|t| t.stats.requests_dropped += dropped);
            meet(&conn, Fault::Drop);
            drop((h2, held));
            if let Some(raw) = raw {
                hang_up(&state, raw).await;
            }
            return;
        }
        let next = tokio::select! {
            next = h2.accept() => next,
            () = conn.notify.notified(), if !held.is_empty() => continue,
        };
        let (req, mut respond) = match next {
            None => break,
            Some(Err(e)) => {
                log::debug!("HTTP/2 connection ended: {e}");
                break;
            }
            Some(Ok(stream)) => stream,
        };
        // As the gate counts: every stream opened, refused ones too.
        opened += 1;
        if conn.one_stream_start && !conn.raised.load(Ordering::SeqCst) && conn.in_flight.load(Ordering::SeqCst) >= 1 {
            respond.send_reset(H2Reason::REFUSED_STREAM);
            state.update(|t| t.stats.streams_refused += 1);
            meet(&conn, Fault::Refused);
        } else {
            received += 1;
            if plan.drop_after.is_some_and(|n| received > n) {
                take_on(&conn, &held, false);
                held.push((req, respond));
            } else {
                take_on(&conn, &held, true);
                tokio::spawn(answer(Arc::clone(&conn), req, respond));
            }
        }
        if plan.goaway_after == Some(opened) {
            h2.graceful_shutdown();
            state.update(|t| t.stats.goaways += 1);
            meet(&conn, if plan.goaway_shutdown { Fault::GoawayShutdown } else { Fault::Goaway });
        }
    }
}

/// A second handle on the connection's socket (a duplicated descriptor):
/// closing h2's handle then leaves the socket open.
fn another_handle(tcp: &TcpStream) -> Option<TcpStream> {
    let fd = tcp.as_fd().try_clone_to_owned().ok()?;
    TcpStream::from_std(std::net::TcpStream::from(fd)).ok()
}

/// End a connection as a dropped link would look, but without destroying
/// what was written: a TCP FIN (no TLS close_notify, no GOAWAY), then read
/// and throw away until the client closes or `drain_timeout` passes. A close
/// with unread input would send an RST, and a client that meets the RST
/// while writing loses the answers still in its socket.
async fn hang_up(state: &State, mut raw: TcpStream) {
    let _ = socket2::SockRef::from(&raw).shutdown(Shutdown::Write);
    let mut buf = vec![0u8; 64 * 1024];
    let mut discarded = 0u64;
    let drain = async {
        while let Ok(n @ 1..) = raw.read(&mut buf).await {
            discarded += n as u64;
        }
    };
    let _ = tokio::time::timeout(state.config.drain_timeout, drain).await;
    state.update(|t| t.stats.discarded_bytes += discarded);
}

/// Count the connection among those that met `fault`, the first time.
fn meet(conn: &Conn, fault: Fault) {
    if conn.met.first(fault) {
        conn.state.update(|t| *t.stats.fault_connections.entry(fault.name().to_owned()).or_default() += 1);
    }
}

/// Count a request received (and in flight when it will be answered).
fn take_on(conn: &Conn, held: &[Stream], answering: bool) {
    let in_flight = conn.in_flight.fetch_add(u64::from(answering), Ordering::SeqCst) + u64::from(answering);
    let open = in_flight + held.len() as u64 + u64::from(!answering);
    conn.state.update(|t| {
        t.stats.requests_received += 1;
        t.stats.max_concurrent_streams_seen = t.stats.max_concurrent_streams_seen.max(open);
    });
}

/// What judging a request found besides its verdict.
#[derive(Default)]
struct Found {
    apns_id: Option<HeaderValue>,
    token_valid: bool,
    new_token: bool,
    /// The request went to the all-zero token: a sender's gateway check.
    check: bool,
}

/// Read the body, judge, count, wait `delay`, answer.
async fn answer(conn: Arc<Conn>, req: Request<RecvStream>, mut respond: SendResponse<Bytes>) {
    let state = &conn.state;
    let (parts, body) = req.into_parts();
    let Some(body) = read_body(body).await else {
        // The client reset the stream: nothing to answer.
        conn.in_flight.fetch_sub(1, Ordering::SeqCst);
        finish(&conn);
        return;
    };
    let mut found = Found::default();
    let verdict = judge(&conn, &parts, &body, &mut found);
    if let Ok(token) = verdict
        && state.config.http2.record_requests
    {
        lock(&state.requests).insert(token, AcceptedRequest::new(&parts.headers, &body));
    }
    let starting = conn.one_stream_start && !conn.raised.load(Ordering::SeqCst);
    let hold = if starting { conn.plan.delay.max(conn.plan.first_delay) } else { conn.plan.delay };
    if !hold.is_zero() {
        meet(&conn, Fault::Delay);
        tokio::time::sleep(hold).await;
    }
    if let Some(fault) = verdict.err().and_then(Fault::of) {
        meet(&conn, fault);
    }
    state.update(|t| {
        if found.new_token {
            let valid = state.valid_tokens.fetch_add(1, Ordering::SeqCst) + 1;
            t.stats.jwt_renewals = valid - 1;
            t.stats.provider_tokens = valid;
        }
        match verdict {
            Ok(token) => t.record(&[Accepted::new(&token, &body, None)], body.len() as u64),
            Err(_) if found.check => t.stats.gateway_checks += 1,
            Err(r) => *t.stats.rejected_by_reason.entry(r.as_str().to_string()).or_default() += 1,
        }
    });
    if found.token_valid {
        conn.raised.store(true, Ordering::SeqCst);
    }
    conn.in_flight.fetch_sub(1, Ordering::SeqCst);
    let id = found.apns_id.unwrap_or_else(|| made_id(state));
    let status = verdict.map_or_else(Reason::status, |_| 200);
    let head = Response::builder().status(status).header("apns-id", id).body(());
    let Ok(head) = head else { return finish(&conn) };
    match verdict {
        Ok(_) => {
            if respond.send_response(head, true).is_ok() {
                conn.handed.fetch_add(1, Ordering::SeqCst);
            }
        }
        Err(reason) => {
            if let Ok(mut s) = respond.send_response(head, false)
                && s.send_data(Bytes::from(reason.body(now_ms())), true).is_ok()
            {
                conn.handed.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    finish(&conn);
}

fn finish(conn: &Conn) {
    conn.done.fetch_add(1, Ordering::SeqCst);
    conn.notify.notify_one();
}

/// Apple's checks in order: route, duplicate headers, authentication, the
/// `apns-*` headers, topic, payload, then the seeded faults; `reject_all`
/// right after the route.
fn judge(conn: &Conn, parts: &Parts, body: &[u8], found: &mut Found) -> Result<[u8; 32], Reason> {
    let state = &conn.state;
    let token = request::route(&parts.method, parts.uri.path())?;
    if let Some(reason) = state.reject_all
        && token != [0; 32]
        && state.config.http2.reject_first.is_none_or(|n| state.rejected_all.fetch_add(1, Ordering::SeqCst) < n)
    {
        return Err(reason);
    }
    request::duplicates(&parts.headers)?;
    let with_token = match parts.headers.get(header::AUTHORIZATION) {
        Some(a) => {
            let checked = state.auth.check(&mut lock(&conn.token), a.as_bytes())?;
            found.token_valid = true;
            found.new_token = checked.new_valid;
            true
        }
        None if conn.bundle_id.is_some() => false,
        None => return Err(Reason::MissingProviderToken),
    };
    found.apns_id = request::apns_id(&parts.headers)?;
    let head = request::head(&parts.headers)?;
    let base = match (&conn.bundle_id, with_token) {
        (Some(id), false) => id.as_str(),
        _ => state.config.http2.topic.as_str(),
    };
    request::topic(&head, base, !with_token)?;
    request::payload(body, head.push_type.payload_limit())?;
    if token == [0; 32] {
        // No device has this token: Apple answers BadDeviceToken, which
        // senders use to check a connection and its credentials.
        found.check = true;
        return Err(Reason::BadDeviceToken);
    }
    match faults::seeded(&state.config, &state.bad, &token, || state.draws.fetch_add(1, Ordering::SeqCst)) {
        Some(reason) => Err(reason),
        None => Ok(token),
    }
}

/// The body, up to [`BODY_CAP`] bytes (the rest is read and thrown away);
/// `None` when the stream broke.
async fn read_body(mut body: RecvStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.ok()?;
        let _ = body.flow_control().release_capacity(chunk.len());
        let room = BODY_CAP.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..room.min(chunk.len())]);
    }
    Some(buf)
}

/// An `apns-id` for a request that named none.
fn made_id(state: &State) -> HeaderValue {
    let n = state.ids.fetch_add(1, Ordering::Relaxed);
    let seed = state.config.seed;
    let id = request::make_uuid(splitmix64(seed ^ n), splitmix64(n ^ 0x1D));
    HeaderValue::from_str(&id).expect("a UUID is a valid header value")
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
