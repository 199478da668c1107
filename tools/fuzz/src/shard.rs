//! `ShardState` driven by an arbitrary sequence of operations: push, connect,
//! write a prefix of the pending bytes, bytes from the gateway, error
//! responses, closes, cancel, confirm now, end of input, abandon. Documented `# Panics`
//! preconditions are respected; anything else that panics is a finding.
//!
//! Invariants: at every step queued + in flight + settled = pushed; at the end
//! (end of input, then connect and confirm every sentinel until no work is
//! left, within a bound), every pushed line ends in exactly one state and the
//! counts add up: accepted + rejected + unconfirmed + unsent = pushed.

use std::collections::HashSet;
use std::sync::Arc;

use apnsblast::frame::{Command, ErrorResponse, Priority, Status};
use apnsblast::input::LineExtras;
use apnsblast::report::{Code, State};
use apnsblast::shard::{ConnEnd, FrameSpec, Item, Limits, ShardState};
use apnsblast::token::DeviceToken;

/// The input as a stream of decisions; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
}

/// Token of input line `line`: the line number in the first 8 bytes.
fn token(line: u64) -> DeviceToken {
    let mut t = [0xA5u8; 32];
    t[..8].copy_from_slice(&line.to_be_bytes());
    DeviceToken(t)
}

/// (identifier, line; `None` for a sentinel) of each complete frame in `b`.
fn frames(command: Command, mut b: &[u8]) -> Vec<(u32, Option<u64>)> {
    let be16 = |b: &[u8], at: usize| usize::from(u16::from_be_bytes([b[at], b[at + 1]]));
    let be32 = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
    let line_of = |t: &[u8]| u64::from_be_bytes(t[..8].try_into().unwrap());
    let mut out = Vec::new();
    loop {
        match command {
            Command::Enhanced => {
                if b.len() < 11 {
                    return out;
                }
                assert_eq!(b[0], 1);
                let tlen = be16(b, 9);
                if b.len() < 13 + tlen {
                    return out;
                }
                let plen = be16(b, 11 + tlen);
                let end = 13 + tlen + plen;
                if b.len() < end {
                    return out;
                }
                let line = (tlen == 32).then(|| line_of(&b[11..43]));
                out.push((be32(b, 1), line));
                b = &b[end..];
            }
            _ => {
                if b.len() < 5 {
                    return out;
                }
                assert_eq!(b[0], 2);
                let end = 5 + be32(b, 1) as usize;
                if b.len() < end {
                    return out;
                }
                let (mut items, mut id, mut line) = (&b[5..end], None, None);
                while !items.is_empty() {
                    let ilen = be16(items, 1);
                    let data = &items[3..3 + ilen];
                    match items[0] {
                        1 => line = Some(line_of(data)),
                        3 => id = Some(be32(data, 0)),
                        _ => {}
                    }
                    items = &items[3 + ilen..];
                }
                out.push((id.expect("every frame has an identifier"), line));
                b = &b[end..];
            }
        }
    }
}

struct Harness {
    s: ShardState,
    command: Command,
    connected: bool,
    /// Identifier of the first frame of the current connection (once written).
    first_id: u32,
    /// One past the last identifier written.
    next_id: u32,
    /// Bytes written on the current connection.
    transcript: Vec<u8>,
    pushed: u64,
    settled_lines: Vec<(u64, u64)>,
    outcomes: Vec<(u64, State, Option<Code>)>,
    /// Lines whose frame was completely written on some connection.
    written: HashSet<u64>,
}

impl Harness {
    fn check(&self) {
        let s = &self.s;
        assert_eq!(s.queued() as u64 + s.in_flight() as u64 + s.settled(), self.pushed, "an item went missing");
        if !self.connected {
            assert_eq!(s.in_flight(), 0, "in flight without a connection");
        }
    }

    fn connect(&mut self) {
        assert!(!self.connected && self.s.in_flight() == 0);
        self.s.on_connected();
        self.connected = true;
        self.transcript.clear();
        // A guess until this connection's first frame is written: frames
        // encoded but never written also use identifiers.
        self.first_id = self.next_id;
    }

    /// Writes up to `max` pending bytes; returns how many.
    fn write(&mut self, max: usize) -> usize {
        let pending = self.s.pending_bytes().to_vec();
        assert_eq!(self.s.pending_bytes(), &pending[..], "pending bytes moved before a write");
        let n = max.min(pending.len());
        self.transcript.extend_from_slice(&pending[..n]);
        self.s.wrote(n);
        let f = frames(self.command, &self.transcript);
        for w in f.windows(2) {
            assert_eq!(w[1].0, w[0].0.wrapping_add(1), "identifiers are consecutive");
        }
        self.written.extend(f.iter().filter_map(|x| x.1));
        if let (Some(first), Some(last)) = (f.first(), f.last()) {
            self.first_id = first.0;
            self.next_id = last.0.wrapping_add(1);
        }
        n
    }

    fn ended(&mut self, end: Option<ConnEnd>) {
        if let Some(end) = end {
            self.connected = false;
            if end == ConnEnd::Confirmed {
                assert_eq!(self.s.in_flight(), 0);
            }
        }
    }

    /// An error response: an identifier near this connection's, one that was
    /// written, or any at all.
    fn response(&self, inp: &mut Input<'_>) -> ErrorResponse {
        const STATUSES: [u8; 8] = [0, 1, 2, 7, 8, 10, 128, 255];
        let b = inp.u8();
        let status = match b & 0xF {
            k @ 0..8 => STATUSES[usize::from(k)],
            _ => inp.u8(),
        };
        let k = inp.u8();
        let id = match b >> 4 {
            0..=5 => self.first_id.wrapping_add(u32::from(k)),
            6..=7 => self.first_id.wrapping_sub(1 + u32::from(k & 1)),
            8..=12 => {
                let f = frames(self.command, &self.transcript);
                f.get(usize::from(k) % f.len().max(1)).map_or(self.first_id, |x| x.0)
            }
            _ => inp.u32(),
        };
        ErrorResponse { status: Status::from_code(status), id }
    }

    fn collect(&mut self) {
        for (a, b) in self.s.take_settled_lines() {
            assert!(a <= b);
            apnsblast::journal::push_line(&mut self.settled_lines, a);
            for line in a + 1..=b {
                apnsblast::journal::push_line(&mut self.settled_lines, line);
            }
        }
        for o in self.s.take_outcomes() {
            self.outcomes.push((o.item.line, o.state, o.status));
        }
    }
}

/// Runs one input through the checks; panics on a finding.
pub fn check(data: &[u8]) {
    run(data, false);
}

/// [`check`], and also: the gateway can only answer for what it received, so
/// a line settled as accepted or rejected must have been written. (Target
/// `shard_written`; finding F3 in FUZZING.md.)
pub fn check_written(data: &[u8]) {
    run(data, true);
}

fn run(data: &[u8], strict: bool) {
    let mut inp = Input(data);
    let (a, b) = (inp.u8(), inp.u8());
    let command = if a & 1 == 0 { Command::Items } else { Command::Enhanced };
    let limits = Limits {
        batch_bytes: [1, 100, 1000, 64 * 1024][usize::from(a >> 1) & 3],
        window_bytes: [1, 200, 5000, 1 << 30][usize::from(a >> 3) & 3],
        confirm_every: [0, 1, 3, 100][usize::from(a >> 5) & 3],
        careful_frames: u64::from(a >> 7) * 5,
    };
    let spec = FrameSpec {
        command,
        payload: Arc::from(&b"{\"aps\":{}}"[..]),
        expiry: u32::from(b),
        priority: if b & 1 == 0 { Priority::Immediate } else { Priority::PowerSaving },
    };
    let own = Arc::new(LineExtras { payload: Some((&b"{\"a\":1}"[..]).into()), ..LineExtras::default() });
    let mut h = Harness {
        s: ShardState::new(0, spec, limits),
        command,
        connected: false,
        first_id: 1,
        next_id: 1,
        transcript: Vec::new(),
        pushed: 0,
        settled_lines: Vec::new(),
        outcomes: Vec::new(),
        written: HashSet::new(),
    };

    while !inp.0.is_empty() {
        let op = inp.u8();
        match op % 13 {
            0 | 1 => {
                let n = 1 + u64::from(op >> 4);
                let items = (h.pushed + 1..=h.pushed + n).map(|line| {
                    let payload = (line % 3 == 0).then(|| own.clone());
                    Item::new(line, token(line), payload)
                });
                h.s.push(items);
                h.pushed += n;
            }
            2 if !h.connected => h.connect(),
            3 | 4 if h.connected => {
                let max = match inp.u8() {
                    0 => usize::MAX,
                    k => usize::from(k) * 7,
                };
                h.write(max);
            }
            5 => {
                let end = if op & 0x80 != 0 {
                    let n = usize::from(inp.u8() % 16);
                    let bytes = inp.bytes(n).to_vec();
                    h.s.on_bytes(&bytes)
                } else {
                    // A real error response, maybe cut short.
                    let bytes = h.response(&mut inp).to_bytes();
                    let cut = usize::from(inp.u8() % 7);
                    h.s.on_bytes(&bytes[..cut])
                };
                h.ended(end);
            }
            6 if h.connected => {
                let resp = h.response(&mut inp);
                let end = h.s.on_response(resp);
                h.ended(Some(end));
            }
            7 => {
                h.s.on_close();
                h.connected = false;
            }
            8 if h.connected && h.s.in_flight() == 0 => {
                h.s.on_idle_close();
                h.connected = false;
            }
            9 => h.s.cancel(),
            10 => h.s.finish_input(),
            11 if !h.connected => h.s.abandon("fuzz"),
            12 => h.s.confirm_now(),
            _ => h.collect(),
        }
        h.check();
    }

    // Wind down: no more input, then confirm every window until done.
    h.s.finish_input();
    if h.connected {
        h.s.on_close();
        h.connected = false;
    }
    let bound = 4 * h.pushed + 100;
    let mut rounds = 0;
    while h.s.has_work() {
        rounds += 1;
        assert!(rounds <= bound, "no convergence after {bound} connections");
        h.connect();
        let mut written = 0;
        for _ in 0..1_000_000 {
            let n = h.write(usize::MAX);
            if n == 0 {
                break;
            }
            written += n;
        }
        assert!(written > 0, "work left but nothing to write");
        assert!(h.s.awaiting_confirmation(), "the window ends without a sentinel");
        let f = frames(command, &h.transcript);
        let &(sentinel, line) = f.last().expect("frames written");
        assert_eq!(line, None, "the last frame is a sentinel");
        let resp = ErrorResponse { status: Status::MissingToken, id: sentinel };
        let end = h.s.on_bytes(&resp.to_bytes());
        assert_eq!(end, Some(ConnEnd::Confirmed));
        h.ended(end);
        h.check();
    }
    h.s.abandon("end of fuzz run");
    h.check();
    h.collect();

    // Every line exactly once.
    let r = h.s.report().clone();
    assert_eq!(h.s.settled(), h.pushed);
    assert_eq!(r.accepted + r.rejected_total() + r.unconfirmed + r.unsent, h.pushed, "{r:?}");
    assert!(r.possibly_duplicated <= r.accepted);
    let n = usize::try_from(h.pushed).unwrap();
    let mut seen = vec![0u8; n + 1];
    for &(a, b) in &h.settled_lines {
        for line in a..=b {
            seen[usize::try_from(line).unwrap()] += 1;
        }
    }
    let (mut rejected, mut unconfirmed, mut unsent) = (0, 0, 0);
    for &(line, state, status) in &h.outcomes {
        let line = usize::try_from(line).unwrap();
        match state {
            State::Rejected => {
                assert!(status.is_some());
                assert_eq!(seen[line], 1, "rejected line {line} not in the settled lines");
                rejected += 1;
            }
            State::Unconfirmed | State::Unsent => {
                seen[line] += 1;
                if state == State::Unconfirmed { unconfirmed += 1 } else { unsent += 1 }
            }
            other => panic!("line {line}: outcome {other:?}"),
        }
    }
    assert_eq!((rejected, unconfirmed, unsent), (r.rejected_total(), r.unconfirmed, r.unsent));
    for (line, &k) in seen.iter().enumerate().skip(1) {
        assert_eq!(k, 1, "line {line} ended in {k} states");
    }
    if strict {
        for &(a, b) in &h.settled_lines {
            for line in a..=b {
                assert!(h.written.contains(&line), "line {line} accepted or rejected but never written");
            }
        }
    }
}
