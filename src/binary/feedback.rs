//! The feedback service's tuples: which tokens stopped accepting pushes, and
//! since when.
//!
//! # Format
//! `timestamp:u32 BE | token_len:u16 BE (= 32) | token[32]`, repeated until
//! the service closes the connection.
//!
//! [`FeedbackDecoder`] is pure: feed it bytes as they arrive, in any pieces,
//! and take tuples out; "not enough bytes yet" is `Ok(None)`, not an error.
//! [`read_all`] is the thin blocking driver on top.

use std::fmt;
use std::io::{self, Read};

use byteorder::{BigEndian, ByteOrder};

use crate::token::{DeviceToken, TOKEN_LEN};

/// Bytes before the token: timestamp and token length.
const HEADER_LEN: usize = 4 + 2;

/// One feedback entry: `token` stopped accepting pushes at `time`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeedbackTuple {
    /// UNIX seconds when the service noticed the app was gone.
    pub time: u32,
    /// The device token that should no longer be sent to (unless the device
    /// registered again after `time`).
    pub token: DeviceToken,
}

impl FeedbackTuple {
    /// The encoded size of one tuple.
    pub const LEN: usize = HEADER_LEN + TOKEN_LEN;

    /// Appends the tuple's wire form (used by tests and mock services).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut b = [0u8; Self::LEN];
        BigEndian::write_u32(&mut b[..4], self.time);
        BigEndian::write_u16(&mut b[4..6], TOKEN_LEN as u16);
        b[HEADER_LEN..].copy_from_slice(self.token.as_bytes());
        out.extend_from_slice(&b);
    }
}

/// Why the feedback stream cannot be decoded.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedbackError {
    /// A tuple announced a token length other than 32; the stream cannot be
    /// resynchronised after this.
    BadTokenLength(u16),
    /// The stream ended in the middle of a tuple.
    Truncated {
        /// How many bytes of the unfinished tuple were received.
        bytes: usize,
    },
}

impl fmt::Display for FeedbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedbackError::BadTokenLength(n) => {
                write!(f, "token length is {n}, expected {TOKEN_LEN}")
            }
            FeedbackError::Truncated { bytes } => {
                write!(f, "stream ended inside a tuple ({bytes} of {} bytes)", FeedbackTuple::LEN)
            }
        }
    }
}

impl std::error::Error for FeedbackError {}

/// Incremental decoder of feedback tuples.
///
/// Errors are sticky: after [`FeedbackError::BadTokenLength`] every call to
/// [`next_tuple`](Self::next_tuple) returns the same error, because the
/// tuple boundaries are lost.
#[derive(Debug, Default)]
pub struct FeedbackDecoder {
    buf: Vec<u8>,
    /// Start of the undecoded bytes in `buf`.
    pos: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
}

impl FeedbackDecoder {
    /// An empty decoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends bytes received from the service.
    pub fn push(&mut self, bytes: &[u8]) {
        // Drop decoded bytes before growing, so the buffer stays about one
        // read long instead of the whole stream.
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.base += self.pos as u64;
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// Takes the next complete tuple out of the buffer.
    ///
    /// Returns `Ok(None)` when the buffer holds less than a whole tuple.
    ///
    /// # Errors
    /// [`FeedbackError::BadTokenLength`] when the tuple's token length is not
    /// 32 (see [`offset`](Self::offset) for where).
    pub fn next_tuple(&mut self) -> Result<Option<FeedbackTuple>, FeedbackError> {
        let rest = &self.buf[self.pos..];
        if rest.len() < HEADER_LEN {
            return Ok(None);
        }
        let len = BigEndian::read_u16(&rest[4..6]);
        if usize::from(len) != TOKEN_LEN {
            return Err(FeedbackError::BadTokenLength(len));
        }
        let Some(tuple) = rest.get(..FeedbackTuple::LEN) else {
            return Ok(None);
        };
        let mut token = [0u8; TOKEN_LEN];
        token.copy_from_slice(&tuple[HEADER_LEN..]);
        let time = BigEndian::read_u32(&tuple[..4]);
        self.pos += FeedbackTuple::LEN;
        Ok(Some(FeedbackTuple { time, token: DeviceToken(token) }))
    }

    /// Stream offset (bytes pushed before it) of the next undecoded tuple.
    pub fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Bytes pushed but not yet decoded.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Checks, at the end of the stream, that no partial tuple is left.
    ///
    /// # Errors
    /// [`FeedbackError::Truncated`] when undecoded bytes remain.
    pub fn finish(&self) -> Result<(), FeedbackError> {
        match self.pending() {
            0 => Ok(()),
            bytes => Err(FeedbackError::Truncated { bytes }),
        }
    }
}

/// Why [`read_all`] failed.
#[non_exhaustive]
#[derive(Debug)]
pub enum FeedbackReadError {
    /// Reading the stream failed.
    Io(io::Error),
    /// The bytes were not feedback tuples.
    Decode {
        /// Stream offset of the tuple that could not be decoded.
        offset: u64,
        /// What was wrong with it.
        error: FeedbackError,
    },
}

impl fmt::Display for FeedbackReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeedbackReadError::Io(e) => write!(f, "reading feedback: {e}"),
            FeedbackReadError::Decode { offset, error } => {
                write!(f, "feedback tuple at byte {offset}: {error}")
            }
        }
    }
}

impl std::error::Error for FeedbackReadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FeedbackReadError::Io(e) => Some(e),
            FeedbackReadError::Decode { error, .. } => Some(error),
        }
    }
}

impl From<io::Error> for FeedbackReadError {
    fn from(e: io::Error) -> Self {
        FeedbackReadError::Io(e)
    }
}

/// Reads tuples from a blocking reader until end of stream.
///
/// `Interrupted` reads are retried; any other error, including `WouldBlock`
/// from a non-blocking reader, is returned.
///
/// # Errors
/// [`FeedbackReadError::Io`] when a read fails, [`FeedbackReadError::Decode`]
/// for a bad token length or a stream that ends inside a tuple.
pub fn read_all<R: Read>(mut r: R) -> Result<Vec<FeedbackTuple>, FeedbackReadError> {
    let mut dec = FeedbackDecoder::new();
    let mut out = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = match r.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        let decode_err = |dec: &FeedbackDecoder, error| FeedbackReadError::Decode { offset: dec.offset(), error };
        if n == 0 {
            dec.finish().map_err(|e| decode_err(&dec, e))?;
            return Ok(out);
        }
        dec.push(&chunk[..n]);
        while let Some(t) = dec.next_tuple().map_err(|e| decode_err(&dec, e))? {
            out.push(t);
        }
    }
}

#[cfg(test)]
#[path = "feedback_test.rs"]
mod feedback_test;
