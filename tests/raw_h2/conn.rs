//! One connection of the hand-written server: frames in, frames out, all
//! on one thread, so that what it counts follows the order of the wire.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;
use std::time::Duration;

use apnsblast::token::DeviceToken;
use openssl::ssl::{SslAcceptor, SslStream};

use super::{Counts, Phase, Script, lock};

/// A client that sends nothing for this long while the server holds its
/// streams waits for answers it should not need before opening more (a
/// limit it has not seen rise): that is recorded, and from then on every
/// request is answered at once, so that the run ends (and fails) quickly
/// instead of crawling at one stream per response timeout. Shorter than
/// the sender's response timeout in these tests.
const STALL: Duration = Duration::from_secs(2);
/// Stalls in a row with nothing held after which the client is given up.
const GIVE_UP: u32 = 5;
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The largest frame payload taken (the client's default SETTINGS_MAX_FRAME_SIZE).
const MAX_FRAME: usize = 1 << 14;

// Frame types and flags (RFC 9113 §6).
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;
const WINDOW_UPDATE: u8 = 0x8;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;

/// A frame read from the client.
struct Frame {
    kind: u8,
    flags: u8,
    stream: u32,
    payload: Vec<u8>,
}

/// A stream taken on and not yet answered.
struct Open {
    token: Option<[u8; 32]>,
    /// Its request has ended (END_STREAM).
    whole: bool,
}

/// Serves one connection to its end, then files its phases (and why it
/// ended, if that is something a correct client never causes).
pub(super) fn serve(acceptor: &SslAcceptor, tcp: TcpStream, script: &Script, counts: &Mutex<Counts>) {
    let _ = tcp.set_nodelay(true);
    if tcp.set_read_timeout(Some(STALL)).is_err() {
        return;
    }
    // The stop's own wake-up connection fails here.
    let Ok(tls) = acceptor.accept(tcp) else { return };
    if tls.ssl().selected_alpn_protocol() != Some(b"h2") {
        return;
    }
    lock(counts).connections += 1;
    let mut conn = Conn {
        tls,
        script,
        counts,
        decoder: loona_hpack::Decoder::new(),
        encoder: loona_hpack::Encoder::new(),
        open: BTreeMap::new(),
        last_id: 0,
        acked: script.initial,
        unacked: VecDeque::new(),
        answered: 0,
        changes: 0,
        phases: vec![Phase { limit: script.initial, max_open: 0 }],
        window_owed: 0,
        gone: false,
        stalled: false,
        hang_up: false,
        out: Vec::new(),
        input: Vec::new(),
    };
    let ended = conn.run();
    let mut c = lock(counts);
    if let Err(why) = ended {
        c.violations.push(why);
    }
    c.phases.push(conn.phases);
}

struct Conn<'a> {
    tls: SslStream<TcpStream>,
    script: &'a Script,
    counts: &'a Mutex<Counts>,
    decoder: loona_hpack::Decoder<'static>,
    encoder: loona_hpack::Encoder<'static>,
    open: BTreeMap<u32, Open>,
    /// The highest stream the client has opened.
    last_id: u32,
    /// The limit the client has acknowledged last.
    acked: u32,
    /// Limits sent and not yet acknowledged, in order.
    unacked: VecDeque<u32>,
    answered: u64,
    /// Changes of the script sent so far.
    changes: usize,
    phases: Vec<Phase>,
    /// DATA bytes received and not yet given back by WINDOW_UPDATE.
    window_owed: u32,
    /// A GOAWAY has gone out: nothing more is taken on.
    gone: bool,
    /// The client stalled: every request is answered at once.
    stalled: bool,
    /// End the connection once what is queued is written.
    hang_up: bool,
    out: Vec<u8>,
    /// Bytes read and not yet taken as frames.
    input: Vec<u8>,
}

impl Conn<'_> {
    /// `Ok` when the client closed the connection; `Err` says what went wrong.
    fn run(&mut self) -> Result<(), String> {
        while self.input.len() < PREFACE.len() {
            if !self.fill().map_err(|e| format!("no preface: {e}"))? {
                return Err("no preface".into());
            }
        }
        if &self.input[..PREFACE.len()] != PREFACE {
            return Err(format!("not the HTTP/2 preface: {:?}", &self.input[..PREFACE.len()]));
        }
        self.input.drain(..PREFACE.len());
        self.settings(Some(self.script.initial));
        self.flush()?;
        let mut idle = 0;
        loop {
            let f = match self.read_frame() {
                Ok(Some(f)) => f,
                Ok(None) => return Ok(()),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    if self.open.is_empty() {
                        idle += 1;
                        if idle >= GIVE_UP {
                            return Err(format!("the client sent nothing for {:?}", STALL * idle));
                        }
                        continue;
                    }
                    let why = format!("the client stalled with {} streams open, limit {}", self.open.len(), self.acked);
                    lock(self.counts).violations.push(why);
                    self.stalled = true;
                    self.answer_if_due();
                    self.flush()?;
                    continue;
                }
                Err(e) => return Err(format!("reading, {} streams open: {e}", self.open.len())),
            };
            idle = 0;
            match f.kind {
                DATA => self.data(&f)?,
                HEADERS => self.headers(f)?,
                RST_STREAM => {
                    self.open.remove(&f.stream);
                }
                SETTINGS if f.flags & ACK != 0 => self.settings_acked()?,
                SETTINGS => self.frame(SETTINGS, ACK, 0, &[]),
                PING if f.flags & ACK == 0 => self.frame(PING, ACK, 0, &f.payload),
                GOAWAY => return Ok(()),
                CONTINUATION => return Err("CONTINUATION without HEADERS".into()),
                // PRIORITY, WINDOW_UPDATE (answers carry no DATA), extensions.
                _ => {}
            }
            self.answer_if_due();
            self.flush()?;
            if self.hang_up {
                return Ok(());
            }
        }
    }

    fn data(&mut self, f: &Frame) -> Result<(), String> {
        self.window_owed += f.payload.len() as u32;
        if f.flags & END_STREAM != 0 && !self.gone {
            let stream = self.open.get_mut(&f.stream).ok_or_else(|| format!("DATA on stream {}", f.stream))?;
            stream.whole = true;
            lock(self.counts).requests += 1;
        }
        Ok(())
    }

    fn headers(&mut self, first: Frame) -> Result<(), String> {
        let (id, flags) = (first.stream, first.flags);
        let mut block = unpad(&first.payload, flags)?;
        let mut end = flags & END_HEADERS != 0;
        while !end {
            let next = self.read_frame().ok().flatten().ok_or("the connection ended inside a header block")?;
            if next.kind != CONTINUATION || next.stream != id {
                return Err(format!("frame {} inside stream {id}'s header block", next.kind));
            }
            block.extend_from_slice(&next.payload);
            end = next.flags & END_HEADERS != 0;
        }
        // Decoded even when ignored: HPACK's table must stay in step.
        let fields = self.decoder.decode(&block).map_err(|e| format!("HPACK: {e:?}"))?;
        if self.gone {
            return Ok(());
        }
        if id % 2 == 0 || id <= self.last_id {
            return Err(format!("stream {id} opened after {}", self.last_id));
        }
        self.last_id = id;
        let token = fields
            .iter()
            .find(|(name, _)| name == b":path")
            .and_then(|(_, path)| std::str::from_utf8(path).ok()?.strip_prefix("/3/device/"))
            .and_then(|hex| DeviceToken::parse(hex).ok())
            .map(|t| t.0);
        let whole = flags & END_STREAM != 0;
        self.open.insert(id, Open { token, whole });
        if whole {
            lock(self.counts).requests += 1;
        }
        let open = self.open.len() as u64;
        let allowed = self.unacked.iter().copied().fold(self.acked, u32::max);
        if open > u64::from(allowed) {
            lock(self.counts).violations.push(format!("stream {id}: {open} open, the limit is {allowed}"));
        }
        let phase = self.phases.last_mut().expect("a phase from the start");
        phase.max_open = phase.max_open.max(open);
        Ok(())
    }

    fn settings_acked(&mut self) -> Result<(), String> {
        let limit = self.unacked.pop_front().ok_or("a SETTINGS ACK for nothing")?;
        self.acked = limit;
        if self.phases.last().is_some_and(|p| p.limit != limit) {
            self.phases.push(Phase { limit, max_open: 0 });
        }
        Ok(())
    }

    /// Answers every open stream when all are whole and as many are open as
    /// the acknowledged limit, or every request of the run is in; then
    /// sends the script's changes and GOAWAY that are due.
    fn answer_if_due(&mut self) {
        if self.gone || self.open.is_empty() || !self.open.values().all(|s| s.whole) {
            return;
        }
        let all_in = lock(self.counts).requests >= self.script.expected;
        if (self.open.len() as u64) < u64::from(self.acked) && !all_in && !self.stalled {
            return;
        }
        if let Some(after) = self.script.cut_after
            && self.answered >= after
            && let Some(&id) = self.open.keys().next()
        {
            let mut counts = lock(self.counts);
            if counts.cuts == 0 {
                counts.cuts += 1;
                drop(counts);
                let block = self.encoder.encode([(&b":status"[..], &b"400"[..])]);
                self.frame(HEADERS, END_HEADERS, id, &block);
                self.hang_up = true;
                return;
            }
        }
        let open = std::mem::take(&mut self.open);
        for (id, stream) in open {
            let block = self.encoder.encode([(&b":status"[..], &b"200"[..])]);
            self.frame(HEADERS, END_STREAM | END_HEADERS, id, &block);
            if let Some(token) = stream.token {
                *lock(self.counts).deliveries.entry(token).or_default() += 1;
            }
            self.answered += 1;
        }
        if self.window_owed > 0 {
            let owed = std::mem::take(&mut self.window_owed);
            self.frame(WINDOW_UPDATE, 0, 0, &owed.to_be_bytes());
        }
        while let Some(&(after, limit)) = self.script.changes.get(self.changes)
            && after <= self.answered
        {
            self.settings(Some(limit));
            self.changes += 1;
        }
        if let Some((after, debug)) = &self.script.goaway_after
            && *after <= self.answered
        {
            let mut payload = self.last_id.to_be_bytes().to_vec();
            payload.extend(0u32.to_be_bytes()); // NO_ERROR
            payload.extend_from_slice(debug);
            self.frame(GOAWAY, 0, 0, &payload);
            self.gone = true;
            lock(self.counts).goaways += 1;
        }
    }

    /// A SETTINGS frame, with MAX_CONCURRENT_STREAMS when given.
    fn settings(&mut self, limit: Option<u32>) {
        let mut payload = Vec::new();
        if let Some(limit) = limit {
            payload.extend(SETTINGS_MAX_CONCURRENT_STREAMS.to_be_bytes());
            payload.extend(limit.to_be_bytes());
            self.unacked.push_back(limit);
        }
        self.frame(SETTINGS, 0, 0, &payload);
    }

    /// Queues one frame (RFC 9113 §4.1).
    fn frame(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        self.out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        self.out.extend([kind, flags]);
        self.out.extend(stream.to_be_bytes());
        self.out.extend_from_slice(payload);
    }

    fn flush(&mut self) -> Result<(), String> {
        if self.out.is_empty() {
            return Ok(());
        }
        let out = std::mem::take(&mut self.out);
        self.tls.write_all(&out).and_then(|()| self.tls.flush()).map_err(|e| format!("writing: {e}"))
    }

    /// The next frame; `None` when the client has closed the connection.
    /// A read timeout loses nothing: what was read waits in `input`.
    fn read_frame(&mut self) -> io::Result<Option<Frame>> {
        loop {
            if let Some(head) = self.input.first_chunk::<9>() {
                let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
                if len > MAX_FRAME {
                    return Err(io::Error::other(format!("a frame of {len} bytes")));
                }
                if self.input.len() >= 9 + len {
                    let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7FFF_FFFF;
                    let (kind, flags) = (head[3], head[4]);
                    let payload = self.input[9..9 + len].to_vec();
                    self.input.drain(..9 + len);
                    return Ok(Some(Frame { kind, flags, stream, payload }));
                }
            }
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Reads what the client sent into `input`; `false` when it has closed
    /// the connection (with a close_notify, or, as a client dropping its
    /// connection does, a TCP close without one).
    fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 16 * 1024];
        match self.tls.read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.input.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Err(e),
            Err(_) => Ok(false),
        }
    }
}

/// A HEADERS payload without its padding and priority fields.
fn unpad(payload: &[u8], flags: u8) -> Result<Vec<u8>, String> {
    let mut p = payload;
    let mut pad = 0;
    if flags & PADDED != 0 {
        pad = usize::from(*p.first().ok_or("PADDED without a length")?);
        p = &p[1..];
    }
    if flags & PRIORITY != 0 {
        p = p.get(5..).ok_or("PRIORITY without its fields")?;
    }
    p.get(..p.len().checked_sub(pad).ok_or("padding longer than the frame")?)
        .map(<[u8]>::to_vec)
        .ok_or_else(|| "bad padding".into())
}
