//! The I/O shim that gives `goaway_after` the right last-stream-id.
//!
//! h2's server names in its GOAWAY the highest stream it has *read*, and it
//! reads whatever the socket holds: a client that sent five requests at once
//! would get a GOAWAY naming the fifth, so all five would be processed. To
//! stop after N, the gate sits between the TLS stream and h2 and splits the
//! client's bytes into frames (RFC 9113 §4.1): from the HEADERS frame that
//! opens request N+1 on, it holds everything back, except PING frames (the
//! acknowledgement h2's graceful shutdown waits for before its final GOAWAY).
//! It watches what h2 writes, and once that final GOAWAY (last-stream-id
//! below 2^31-1) has gone out it lets the held bytes through: h2 then decodes
//! the held HEADERS (keeping HPACK in step) and ignores their streams, as
//! RFC 9113 §6.8 says, while the first N finish normally.
//!
//! Without `goaway_after` the gate passes the client's bytes straight through.
//!
//! With a counter (`drop_after`), it also counts the frames h2 writes that
//! end a stream (HEADERS or DATA with END_STREAM): answers that have left
//! h2 for the socket, which a drop waits for so that it loses only the
//! requests still open.
//!
//! With `goaway_shutdown` it adds Apple's `{"reason":"Shutdown"}` to every
//! GOAWAY h2 writes (`shutdown`). Its output is then buffered: what it
//! watches (the final GOAWAY, the frames that end a stream) is what has
//! reached the socket.

mod shutdown;

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use shutdown::Rewriter;

const PREFACE_LEN: usize = 24;
const FRAME_HEADER: usize = 9;
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const END_STREAM: u8 = 0x1;
const PING: u8 = 0x6;
const GOAWAY: u8 = 0x7;

/// An I/O stream that can hold back a client's requests after the Nth.
#[derive(Debug)]
pub(crate) struct Gate<S> {
    inner: S,
    /// Let this many requests in, then hold (None: pass everything through).
    limit: Option<u64>,
    /// Bytes read and not yet handed to h2.
    buf: Vec<u8>,
    /// `buf[..open]` may be handed over.
    open: usize,
    /// `buf[..scanned]` has been split into frames.
    scanned: usize,
    preface_left: usize,
    streams: u64,
    max_stream: u32,
    holding: bool,
    released: bool,
    /// PING frames taken out of the held bytes, to hand over first.
    pings: Vec<u8>,
    read_waker: Option<Waker>,
    /// What h2 writes: the current frame's header (+4 bytes for GOAWAY).
    out_head: Vec<u8>,
    /// Payload bytes of the current outgoing frame still to skip.
    out_skip: usize,
    /// Counts the frames written that end a stream, when set.
    ends: Option<Arc<AtomicU64>>,
    /// Adds Apple's reason to GOAWAY frames, when set.
    shutdown: Option<Rewriter>,
    /// Rewritten output not yet taken by the socket.
    out: Vec<u8>,
}

/// The payload length in a frame header.
fn frame_len(h: &[u8]) -> usize {
    (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2])
}

impl<S> Gate<S> {
    /// Wrap `inner`; `limit` is `goaway_after`; `ends`, when given, counts
    /// the frames written that end a stream; `shutdown` adds Apple's reason
    /// to GOAWAY frames.
    pub(crate) fn new(inner: S, limit: Option<u64>, ends: Option<Arc<AtomicU64>>, shutdown: bool) -> Self {
        Gate {
            inner,
            limit,
            buf: Vec::new(),
            open: 0,
            scanned: 0,
            preface_left: PREFACE_LEN,
            streams: 0,
            max_stream: 0,
            holding: false,
            released: limit.is_none(),
            pings: Vec::new(),
            read_waker: None,
            out_head: Vec::with_capacity(FRAME_HEADER + 4),
            out_skip: 0,
            ends,
            shutdown: shutdown.then(Rewriter::default),
            out: Vec::new(),
        }
    }

    /// Split the new bytes into frames, moving `open` up to the hold point.
    fn classify(&mut self) {
        if self.released {
            self.open = self.buf.len();
            self.scanned = self.buf.len();
            return;
        }
        let limit = self.limit.unwrap_or(u64::MAX);
        loop {
            if self.preface_left > 0 {
                let n = self.preface_left.min(self.buf.len() - self.scanned);
                self.preface_left -= n;
                self.scanned += n;
                self.open = self.scanned;
                if self.preface_left > 0 {
                    return;
                }
            }
            let rest = &self.buf[self.scanned..];
            if rest.len() < FRAME_HEADER {
                return;
            }
            let len = (usize::from(rest[0]) << 16) | (usize::from(rest[1]) << 8) | usize::from(rest[2]);
            if rest.len() < FRAME_HEADER + len {
                return;
            }
            let kind = rest[3];
            let id = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) & 0x7FFF_FFFF;
            let end = self.scanned + FRAME_HEADER + len;
            if !self.holding && kind == HEADERS && id > self.max_stream {
                self.max_stream = id;
                self.streams += 1;
                self.holding = self.streams > limit;
            }
            if self.holding && kind == PING {
                self.pings.extend(self.buf.drain(self.scanned..end));
                continue;
            }
            self.scanned = end;
            if !self.holding {
                self.open = end;
            }
        }
    }

    /// Whether h2's output still needs watching.
    fn watching(&self) -> bool {
        !self.released || self.ends.is_some()
    }

    /// Watch h2's output for the final GOAWAY, and count the frames that end a stream.
    fn watch(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.watching() {
            if self.out_skip > 0 {
                let n = self.out_skip.min(data.len());
                self.out_skip -= n;
                data = &data[n..];
                continue;
            }
            let want = if self.out_head.len() >= FRAME_HEADER && self.out_head[3] == GOAWAY {
                FRAME_HEADER + 4
            } else {
                FRAME_HEADER
            };
            let n = (want - self.out_head.len()).min(data.len());
            self.out_head.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.out_head.len() < want {
                continue;
            }
            let h = &self.out_head;
            let len = (usize::from(h[0]) << 16) | (usize::from(h[1]) << 8) | usize::from(h[2]);
            if h[3] == GOAWAY && want == FRAME_HEADER {
                continue; // read the last-stream-id next
            }
            if h[3] == GOAWAY {
                let last = u32::from_be_bytes([h[9], h[10], h[11], h[12]]) & 0x7FFF_FFFF;
                if last != 0x7FFF_FFFF {
                    self.released = true;
                    if let Some(w) = self.read_waker.take() {
                        w.wake();
                    }
                }
                self.out_skip = len.saturating_sub(4);
            } else {
                let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7FFF_FFFF;
                if (h[3] == DATA || h[3] == HEADERS)
                    && h[4] & END_STREAM != 0
                    && stream != 0
                    && let Some(ends) = &self.ends
                {
                    ends.fetch_add(1, Ordering::SeqCst);
                }
                self.out_skip = len;
            }
            self.out_head.clear();
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Gate<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let me = &mut *self;
        if me.limit.is_none() {
            return Pin::new(&mut me.inner).poll_read(cx, out);
        }
        loop {
            if me.released {
                me.classify();
            }
            if me.open > 0 {
                let n = me.open.min(out.remaining());
                out.put_slice(&me.buf[..n]);
                me.buf.drain(..n);
                me.open -= n;
                me.scanned -= n;
                return Poll::Ready(Ok(()));
            }
            if !me.pings.is_empty() {
                let n = me.pings.len().min(out.remaining());
                out.put_slice(&me.pings[..n]);
                me.pings.drain(..n);
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut rb = ReadBuf::new(&mut chunk);
            match Pin::new(&mut me.inner).poll_read(cx, &mut rb) {
                Poll::Pending => {
                    me.read_waker = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if rb.filled().is_empty() => return Poll::Ready(Ok(())), // EOF
                Poll::Ready(Ok(())) => {
                    me.buf.extend_from_slice(rb.filled());
                    me.classify();
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> Gate<S> {
    /// Hands the rewritten output to the socket, watching what it takes.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.out.is_empty() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            let written: Vec<u8> = self.out.drain(..n).collect();
            if self.watching() {
                self.watch(&written);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Gate<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let me = &mut *self;
        if let Some(rewriter) = &mut me.shutdown {
            // Take `data` only once the last of it has gone, so the buffer
            // stays about one write of h2's.
            if me.out.is_empty() {
                rewriter.copy(data, &mut me.out);
                // Whatever the socket leaves goes with the next write or flush.
                if let Poll::Ready(Err(e)) = me.drain(cx) {
                    return Poll::Ready(Err(e));
                }
                return Poll::Ready(Ok(data.len()));
            }
            ready!(me.drain(cx))?;
            return Pin::new(me).poll_write(cx, data);
        }
        let r = Pin::new(&mut me.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = r
            && me.watching()
        {
            me.watch(&data[..n]);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn frame(kind: u8, id: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        v.extend([kind, 0]);
        v.extend(id.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn holds_after_the_limit_but_lets_pings_through() {
        let mut g = Gate::new((), Some(1), None, false);
        let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
        let first = [frame(4, 0, &[]), frame(HEADERS, 1, b"h1"), frame(0, 1, b"d1")].concat();
        let held = [frame(HEADERS, 3, b"h3"), frame(0, 1, b"late")].concat();
        let ping = frame(PING, 0, &[0; 8]);
        g.buf = [preface.clone(), first.clone(), held.clone(), ping.clone()].concat();
        g.classify();
        assert_eq!(g.open, preface.len() + first.len());
        assert_eq!(g.pings, ping);
        assert_eq!(g.buf.len(), preface.len() + first.len() + held.len());
        // h2 writes a first GOAWAY (2^31-1), then the final one, split across writes.
        g.watch(&frame(GOAWAY, 0, &[0x7F, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]));
        assert!(!g.released);
        let last = frame(GOAWAY, 0, &[0, 0, 0, 1, 0, 0, 0, 0]);
        g.watch(&last[..10]);
        assert!(!g.released);
        g.watch(&last[10..]);
        assert!(g.released);
        g.classify();
        assert_eq!(g.open, g.buf.len());
    }

    #[test]
    fn counts_the_frames_that_end_a_stream_across_writes() {
        let ends = Arc::new(AtomicU64::new(0));
        let mut g = Gate::new((), None, Some(Arc::clone(&ends)), false);
        let ok = frame(HEADERS, 1, b"head");
        let mut ok_end = ok.clone();
        ok_end[4] = END_STREAM;
        let mut body_end = frame(DATA, 3, b"{\"reason\":\"BadDeviceToken\"}");
        body_end[4] = END_STREAM;
        let mut settings_ack = frame(4, 0, &[]);
        settings_ack[4] = 0x1; // ACK, on stream 0: no stream ends
        let out = [settings_ack, ok.clone(), ok_end, frame(HEADERS, 3, b"h"), body_end].concat();
        for chunk in out.chunks(5) {
            g.watch(chunk);
        }
        assert_eq!(ends.load(Ordering::SeqCst), 2);
    }
}
