//! The mock's own frame decoder, written from the protocol text and independent of the
//! sender's codec so that the two check each other.
//!
//! Pure and allocation-free: `parse` looks at the front of a byte slice and says
//! "need N bytes in total", "here is one valid notification of `len` bytes", or
//! "invalid, answer with this status and identifier". Errors are decided as early as
//! the bytes allow (a bad token length is known before the payload arrives), which
//! also bounds how much a connection must buffer.

/// Largest command-2 frame accepted for buffering. A longer declared frame cannot be
/// a valid notification (payload lengths are u16) and gets status 128 at once.
pub(crate) const MAX_FRAME2_LEN: usize = 1 << 20;

/// Payload limits per command family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Limits {
    /// Commands 0 and 1.
    pub legacy: usize,
    /// Command 2.
    pub frame: usize,
}

/// One well-formed notification at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Frame<'a> {
    /// Bytes the frame occupies.
    pub len: usize,
    /// 0, 1 or 2.
    pub command: u8,
    /// Identifier (command 1, or command 2 with item 3).
    pub id: Option<u32>,
    pub token: &'a [u8; 32],
    pub payload: &'a [u8],
}

/// A frame the gateway rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Invalid {
    /// The command byte (0 means: no error response, close silently).
    pub command: u8,
    pub status: u8,
    pub id: u32,
}

/// Result of looking at the front of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parsed<'a> {
    /// Need at least this many bytes (in total, from the front) to decide.
    Incomplete(usize),
    Frame(Frame<'a>),
    Invalid(Invalid),
}

pub(crate) const MISSING_TOKEN: u8 = 2;
pub(crate) const MISSING_PAYLOAD: u8 = 4;
pub(crate) const INVALID_TOKEN_SIZE: u8 = 5;
pub(crate) const INVALID_PAYLOAD_SIZE: u8 = 7;
pub(crate) const INVALID_TOKEN: u8 = 8;
pub(crate) const SHUTDOWN: u8 = 10;
pub(crate) const PROTOCOL_ERROR: u8 = 128;

#[inline]
fn be16(b: &[u8], at: usize) -> usize {
    u16::from_be_bytes([b[at], b[at + 1]]) as usize
}

#[inline]
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Decode the frame at the front of `buf`.
#[inline]
pub(crate) fn parse(buf: &[u8], limits: Limits) -> Parsed<'_> {
    match buf.first() {
        None => Parsed::Incomplete(1),
        Some(0) => legacy(buf, 0, limits.legacy),
        Some(1) => legacy(buf, 1, limits.legacy),
        Some(2) => items(buf, limits.frame),
        Some(&command) => invalid(command, PROTOCOL_ERROR, 0),
    }
}

fn invalid(command: u8, status: u8, id: u32) -> Parsed<'static> {
    Parsed::Invalid(Invalid { command, status, id })
}

/// Commands 0 and 1: `cmd [id expiry] toklen token plen payload`.
#[inline]
fn legacy(buf: &[u8], command: u8, limit: usize) -> Parsed<'_> {
    let (id, at) = if command == 1 {
        if buf.len() < 11 {
            return Parsed::Incomplete(11);
        }
        (Some(be32(buf, 1)), 9)
    } else {
        if buf.len() < 3 {
            return Parsed::Incomplete(3);
        }
        (None, 1)
    };
    let err_id = id.unwrap_or(0);
    match be16(buf, at) {
        0 => return invalid(command, MISSING_TOKEN, err_id),
        32 => {}
        _ => return invalid(command, INVALID_TOKEN_SIZE, err_id),
    }
    let token_at = at + 2;
    let plen_at = token_at + 32;
    if buf.len() < plen_at + 2 {
        return Parsed::Incomplete(plen_at + 2);
    }
    let plen = be16(buf, plen_at);
    if plen == 0 {
        return invalid(command, MISSING_PAYLOAD, err_id);
    }
    if plen > limit {
        return invalid(command, INVALID_PAYLOAD_SIZE, err_id);
    }
    let end = plen_at + 2 + plen;
    if buf.len() < end {
        return Parsed::Incomplete(end);
    }
    let token = buf[token_at..plen_at].try_into().expect("32-byte token");
    Parsed::Frame(Frame { len: end, command, id, token, payload: &buf[plen_at + 2..end] })
}

/// Command 2: `2 frame_len items…`, each item `id len data`.
fn items(buf: &[u8], limit: usize) -> Parsed<'_> {
    if buf.len() < 5 {
        return Parsed::Incomplete(5);
    }
    let flen = be32(buf, 1) as usize;
    if flen > MAX_FRAME2_LEN {
        return invalid(2, PROTOCOL_ERROR, 0);
    }
    let end = 5 + flen;
    if buf.len() < end {
        return Parsed::Incomplete(end);
    }
    let body = &buf[5..end];
    let (mut token, mut payload, mut id) = (None::<&[u8]>, None::<&[u8]>, None::<u32>);
    let (mut expiry, mut priority) = (false, false);
    let mut pos = 0;
    while pos < body.len() {
        let malformed = invalid(2, PROTOCOL_ERROR, id.unwrap_or(0));
        if body.len() - pos < 3 {
            return malformed;
        }
        let (item, ilen) = (body[pos], be16(body, pos + 1));
        pos += 3;
        if ilen > body.len() - pos {
            return malformed;
        }
        let data = &body[pos..pos + ilen];
        pos += ilen;
        // A repeated item is treated as malformed: the spec gives each item once.
        let ok = match item {
            1 => token.replace(data).is_none(),
            2 => payload.replace(data).is_none(),
            3 if ilen == 4 && id.is_none() => {
                id = Some(be32(data, 0));
                true
            }
            4 if ilen == 4 && !expiry => {
                expiry = true;
                true
            }
            5 if ilen == 1 && !priority && (data[0] == 5 || data[0] == 10) => {
                priority = true;
                true
            }
            _ => false,
        };
        if !ok {
            return malformed;
        }
    }
    let err_id = id.unwrap_or(0);
    let token = match token {
        None | Some([]) => return invalid(2, MISSING_TOKEN, err_id),
        Some(t) if t.len() != 32 => return invalid(2, INVALID_TOKEN_SIZE, err_id),
        Some(t) => t.try_into().expect("32-byte token"),
    };
    let payload = match payload {
        None | Some([]) => return invalid(2, MISSING_PAYLOAD, err_id),
        Some(p) if p.len() > limit => return invalid(2, INVALID_PAYLOAD_SIZE, err_id),
        Some(p) => p,
    };
    Parsed::Frame(Frame { len: end, command: 2, id, token, payload })
}

/// Fuzzing entry point, not part of the API: runs [`parse`] over `bytes` the way the
/// connection loop does (parse, advance by the frame length, stop on `Incomplete` or
/// `Invalid`) with the default limits, and checks the decoder's contract on the way.
/// Returns how many frames were decoded.
#[doc(hidden)]
pub fn fuzz_parse(bytes: &[u8]) -> usize {
    let limits = Limits { legacy: 256, frame: 2048 };
    let (mut rest, mut frames) = (bytes, 0);
    loop {
        match parse(rest, limits) {
            Parsed::Incomplete(need) => {
                // The loop reads more and retries: `need` must be more than it has.
                assert!(need > rest.len(), "Incomplete({need}) with {} bytes", rest.len());
                assert!(need <= 5 + MAX_FRAME2_LEN, "Incomplete({need}) beyond the frame cap");
                return frames;
            }
            Parsed::Frame(f) => {
                assert!(f.len > 0 && f.len <= rest.len(), "frame length {} of {}", f.len, rest.len());
                let limit = if f.command == 2 { limits.frame } else { limits.legacy };
                assert!(!f.payload.is_empty() && f.payload.len() <= limit);
                rest = &rest[f.len..];
                frames += 1;
            }
            Parsed::Invalid(_) => return frames,
        }
    }
}

#[cfg(test)]
#[path = "parse_test.rs"]
mod tests;
