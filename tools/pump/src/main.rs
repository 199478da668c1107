//! `pump`: the ceiling `tools/bench` compares `apnsblast send` against.
//!
//! Pushes pre-encoded command-2 frames (a 100-byte JSON payload gives 161-byte
//! frames, one distinct token each) through the same TLS client setup as the
//! sender: `apnsblast::tls::TlsConfig::connector()`, a non-blocking
//! `mio::net::TcpStream`, writes of 64 KiB until `WouldBlock`, a poll, and a
//! retry of the same bytes. Nothing else: no list to read, no accounting, no
//! resend window. Frames are encoded before the clock starts.
//!
//! Each connection ends with one sentinel frame (no device token, so the
//! gateway must reject it) and waits for its error response: the gateway has
//! then processed every frame before it, and the clock stops when the last
//! connection has its answer (the rule the sender uses to confirm).
//!
//! With `--reject-every K`, every K-th frame of a connection has no device
//! token, so the gateway rejects it and closes; the pump writes up to and
//! including that frame, waits for its rejection, and carries on from the next
//! frame over a new connection. That is a sender that knows in advance which
//! notifications will be rejected: nothing is resent, and each rejection costs
//! exactly one round trip and one new TLS handshake. Its rate is the ceiling
//! for a list with that share of invalid tokens.
//!
//! Prints one JSON line on stdout:
//! `{"frames":…,"connections":…,"nodelay":…,"frame_bytes":…,"bytes":…,"rejected":…,"reconnects":…,"elapsed_s":…,"rate_per_s":…,"mb_per_s":…}`.
//! Exit status 0 on success, 1 when a connection failed or the gateway
//! answered anything but the sentinel's rejection, 2 for bad arguments.
//!
//! ```text
//! pump --gateway 127.0.0.1:PORT --cert certs/client.p12 --ca certs/ca.pem --frames 1000000
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use apnsblast::frame::{Command, Notification, Priority};
use apnsblast::tls::{ClientIdentity, TlsConfig};
use apnsblast::token::DeviceToken;
use clap::Parser;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use native_tls::{HandshakeError, TlsConnector, TlsStream};

/// Bytes per write call, as the sender's default batch.
const BATCH: usize = 64 << 10;
/// The mio token of the one socket each thread polls.
const SOCK: Token = Token(0);
/// Status the gateway answers for a frame without a device token.
const MISSING_TOKEN: u8 = 2;
/// Length of a command-2 frame without a device token (the rejected frames).
const SENTINEL_LEN: usize = 1 + 4 + 3 + 4;

/// Push pre-encoded command-2 frames through apnsblast's TLS client setup as
/// fast as possible (the ceiling for `apnsblast send`).
#[derive(Debug, Parser)]
#[command(name = "pump", version)]
struct Args {
    /// Gateway HOST:PORT (e.g. the mock gateway's `listen` address).
    #[arg(long, value_name = "HOST:PORT")]
    gateway: String,
    /// Client certificate: PKCS#12, or PEM holding cert (and key unless --key).
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// Private key (PEM), when not in --cert.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Name of an environment variable holding the certificate password
    /// (default: none; PKCS#12 files are tried with the empty password).
    #[arg(long, value_name = "VAR")]
    cert_password_env: Option<String>,
    /// Extra trust root (PEM), e.g. the mock gateway's CA.
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Frames in total, spread over the connections.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    frames: u64,
    /// Connections in parallel, one thread each (the sender's default shard count).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    connections: u32,
    /// Turn Nagle's algorithm off (TCP_NODELAY) for the whole run.
    #[arg(long)]
    nodelay: bool,
    /// SO_SNDBUF of each connection (default: the kernel's autotuning).
    #[arg(long, value_name = "BYTES")]
    send_buffer: Option<usize>,
    /// JSON payload file (default: a built-in 100-byte payload).
    #[arg(long, value_name = "FILE")]
    payload: Option<PathBuf>,
    /// Make every K-th frame of each connection one the gateway rejects, and
    /// reconnect after each rejection (default: none rejected).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    reject_every: Option<u64>,
    /// Seconds to wait for any one readiness event before giving up.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
}

/// The default payload: valid APNs JSON, exactly 100 bytes.
fn default_payload() -> Vec<u8> {
    let head = br#"{"aps":{"alert":"#;
    let tail = br#"","sound":"default"}}"#;
    let mut p = head.to_vec();
    p.push(b'"');
    p.extend(std::iter::repeat_n(b'x', 100 - head.len() - 1 - tail.len()));
    p.extend_from_slice(tail);
    debug_assert_eq!(p.len(), 100);
    p
}

/// A distinct, random-looking token for frame `i` of connection `conn`.
fn token(conn: u32, i: u64) -> DeviceToken {
    let mut t = [0u8; 32];
    let mut x = (u64::from(conn) << 40 | i).wrapping_add(0x9e37_79b9_7f4a_7c15);
    for chunk in t.chunks_exact_mut(8) {
        // splitmix64
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    // Keep the frame index in the token so tokens never collide.
    t[24..].copy_from_slice(&(u64::from(conn) << 40 | i).to_be_bytes());
    DeviceToken(t)
}

/// What one connection writes: its frames back to back, cut into segments
/// that each end with a frame the gateway rejects.
struct Frames {
    bytes: Vec<u8>,
    /// Per segment: the offset just past its rejected frame, and that frame's id.
    /// The last segment's rejected frame is the sentinel that confirms the rest.
    segments: Vec<(usize, u32)>,
}

/// Every frame one connection sends: `frames` frames with ids `0..frames`,
/// every `reject_every`-th without a device token, then the sentinel (id
/// `frames`).
fn encode(conn: u32, frames: u64, payload: &[u8], reject_every: Option<u64>) -> Frames {
    let cmd = Command::Items;
    let mut bytes = Vec::with_capacity(frames as usize * cmd.frame_len(payload.len()) + 16);
    let mut segments = Vec::new();
    for i in 0..frames {
        if reject_every.is_some_and(|k| (i + 1) % k == 0) {
            cmd.encode_sentinel(i as u32, &mut bytes);
            segments.push((bytes.len(), i as u32));
            continue;
        }
        let t = token(conn, i);
        let n = Notification { token: &t, payload, id: i as u32, expiry: 0, priority: Priority::Immediate };
        cmd.encode(&n, &mut bytes);
    }
    cmd.encode_sentinel(frames as u32, &mut bytes);
    segments.push((bytes.len(), frames as u32));
    Frames { bytes, segments }
}

/// What one connection needs.
struct Job {
    addr: SocketAddr,
    domain: String,
    connector: TlsConnector,
    nodelay: bool,
    send_buffer: Option<usize>,
    timeout: Duration,
}

fn timed_out(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("no readiness event for the whole timeout while {what}"))
}

fn wait(poll: &mut Poll, events: &mut Events, timeout: Duration, what: &str) -> io::Result<()> {
    loop {
        match poll.poll(events, Some(timeout)) {
            Ok(()) if events.is_empty() => return Err(timed_out(what)),
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Non-blocking connect and TLS handshake, as the sender does them.
fn connect(job: &Job, poll: &mut Poll, events: &mut Events) -> io::Result<TlsStream<TcpStream>> {
    let mut sock = TcpStream::connect(job.addr)?;
    if let Some(size) = job.send_buffer {
        socket2::SockRef::from(&sock).set_send_buffer_size(size)?;
    }
    sock.set_nodelay(job.nodelay)?;
    poll.registry().register(&mut sock, SOCK, Interest::READABLE | Interest::WRITABLE)?;
    loop {
        if let Some(e) = sock.take_error()? {
            return Err(e);
        }
        match sock.peer_addr() {
            Ok(_) => break,
            Err(e) if e.kind() == io::ErrorKind::NotConnected => wait(poll, events, job.timeout, "connecting")?,
            Err(e) => return Err(e),
        }
    }
    let mut hs = job.connector.connect(&job.domain, sock);
    loop {
        match hs {
            Ok(tls) => return Ok(tls),
            Err(HandshakeError::WouldBlock(mid)) => {
                wait(poll, events, job.timeout, "in the TLS handshake")?;
                hs = mid.handshake();
            }
            Err(HandshakeError::Failure(e)) => return Err(io::Error::other(format!("TLS handshake: {e}"))),
        }
    }
}

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
fn pump(job: &Job, frames: &Frames, start: &Barrier) -> io::Result<(Instant, u64)> {
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

fn run(args: Args) -> Result<String, String> {
    let password = match &args.cert_password_env {
        Some(var) => Some(std::env::var(var).map_err(|e| format!("--cert-password-env {var}: {e}"))?),
        None => None,
    };
    let identity = ClientIdentity::load(&args.cert, args.key.as_deref(), password.as_deref())
        .map_err(|e| format!("--cert: {e}"))?;
    let tls = TlsConfig {
        identity: Some(identity),
        extra_roots: args.ca.iter().cloned().collect(),
        danger_accept_invalid_certs: false,
    };
    let connector = tls.connector().map_err(|e| format!("TLS setup: {e}"))?;
    let addr = args
        .gateway
        .to_socket_addrs()
        .map_err(|e| format!("--gateway {}: {e}", args.gateway))?
        .next()
        .ok_or_else(|| format!("--gateway {}: no address", args.gateway))?;
    let host = args.gateway.rsplit_once(':').map_or(args.gateway.as_str(), |(h, _)| h);
    let domain = host.trim_start_matches('[').trim_end_matches(']').to_owned();
    let payload = match &args.payload {
        Some(p) => std::fs::read(p).map_err(|e| format!("--payload {}: {e}", p.display()))?,
        None => default_payload(),
    };
    if payload.len() > Command::Items.payload_limit() {
        return Err(format!("--payload: {} bytes, over the 2048-byte limit", payload.len()));
    }
    if args.frames >= u64::from(u32::MAX) {
        return Err("--frames: must be below 2^32".into());
    }
    let conns = args.connections;
    let reject_every = args.reject_every;
    let job = Arc::new(Job {
        addr,
        domain,
        connector,
        nodelay: args.nodelay,
        send_buffer: args.send_buffer,
        timeout: Duration::from_secs(args.timeout.max(1)),
    });
    let barrier = Arc::new(Barrier::new(conns as usize + 1));
    let workers: Vec<_> = (0..conns)
        .map(|c| {
            let n = args.frames / u64::from(conns) + u64::from(u64::from(c) < args.frames % u64::from(conns));
            let (job, barrier, payload) = (Arc::clone(&job), Arc::clone(&barrier), payload.clone());
            thread::Builder::new()
                .name(format!("pump-{c}"))
                .spawn(move || {
                    let frames = encode(c, n, &payload, reject_every);
                    let r = pump(&job, &frames, &barrier);
                    // Freeing 100+ MB is not part of the measurement.
                    (r, frames)
                })
                .map_err(|e| format!("cannot start a thread: {e}"))
        })
        .collect::<Result<_, _>>()?;
    barrier.wait();
    let started = Instant::now();
    let mut last = started;
    let mut errors = Vec::new();
    let mut buffers = Vec::new();
    let (mut reconnects, mut bytes) = (0, 0);
    for (c, w) in workers.into_iter().enumerate() {
        match w.join() {
            Ok((Ok((done, again)), frames)) => {
                last = last.max(done);
                reconnects += again;
                // Every byte written but the closing sentinel's.
                bytes += (frames.bytes.len() - SENTINEL_LEN) as u64;
                buffers.push(frames);
            }
            Ok((Err(e), _)) => errors.push(format!("connection {c}: {e}")),
            Err(_) => errors.push(format!("connection {c}: panicked")),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let elapsed = (last - started).as_secs_f64();
    let frame_bytes = Command::Items.frame_len(payload.len());
    Ok(format!(
        "{{\"frames\":{},\"connections\":{},\"nodelay\":{},\"frame_bytes\":{},\"bytes\":{},\"rejected\":{},\"reconnects\":{},\"elapsed_s\":{:.6},\"rate_per_s\":{:.1},\"mb_per_s\":{:.1}}}",
        args.frames,
        conns,
        args.nodelay,
        frame_bytes,
        bytes,
        reconnects,
        reconnects,
        elapsed,
        args.frames as f64 / elapsed,
        bytes as f64 / elapsed / 1e6,
    ))
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pump: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_100_bytes_of_json_and_frames_are_161() {
        let p = default_payload();
        assert_eq!(p.len(), 100);
        assert!(p.starts_with(b"{\"aps\":{\"alert\":\"x") && p.ends_with(b"\"}}"));
        assert_eq!(Command::Items.frame_len(p.len()), 161);
        let frames = encode(0, 10, &p, None);
        assert_eq!(frames.bytes.len(), 1610 + SENTINEL_LEN);
        assert_eq!(frames.segments, [(1610 + SENTINEL_LEN, 10)]);
    }

    #[test]
    fn every_kth_frame_is_rejected_and_ends_a_segment() {
        let p = default_payload();
        let frames = encode(0, 10, &p, Some(4));
        // Frames 3 and 7 have no token; the sentinel (id 10) ends the last segment.
        let ends = [3 * 161 + SENTINEL_LEN, 6 * 161 + 2 * SENTINEL_LEN, 8 * 161 + 3 * SENTINEL_LEN];
        assert_eq!(frames.segments, [(ends[0], 3), (ends[1], 7), (ends[2], 10)]);
        assert_eq!(frames.bytes.len(), ends[2]);
        for &(end, id) in &frames.segments {
            let mut sentinel = Vec::new();
            Command::Items.encode_sentinel(id, &mut sentinel);
            assert_eq!(&frames.bytes[end - SENTINEL_LEN..end], &sentinel[..]);
        }
    }

    #[test]
    fn tokens_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for c in 0..4 {
            for i in 0..10_000 {
                assert!(seen.insert(token(c, i).0));
            }
        }
    }
}
