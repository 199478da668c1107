//! The gateway's side of the wire: the 6-byte error response and its status
//! codes. Decoding is pure, and "not enough bytes yet" is a state, not an
//! error, because TLS may hand the 6 bytes over in pieces.

use std::fmt;

use byteorder::{BigEndian, ByteOrder};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A status code from an error response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Status {
    /// 0: no errors encountered.
    NoErrors,
    /// 1: processing error.
    Processing,
    /// 2: missing device token.
    MissingToken,
    /// 3: missing topic.
    MissingTopic,
    /// 4: missing payload.
    MissingPayload,
    /// 5: invalid token size.
    InvalidTokenSize,
    /// 6: invalid topic size.
    InvalidTopicSize,
    /// 7: invalid payload size.
    InvalidPayloadSize,
    /// 8: invalid token.
    InvalidToken,
    /// 10: shutdown; the identifier is the last notification accepted.
    Shutdown,
    /// 128: protocol error (the gateway could not parse the frame).
    Protocol,
    /// 255: none (unknown).
    Unknown,
    /// A code the protocol does not define, kept as received.
    Other(u8),
}

impl Status {
    /// Maps a status byte to its meaning; undefined codes are kept as [`Status::Other`].
    pub fn from_code(code: u8) -> Status {
        match code {
            0 => Status::NoErrors,
            1 => Status::Processing,
            2 => Status::MissingToken,
            3 => Status::MissingTopic,
            4 => Status::MissingPayload,
            5 => Status::InvalidTokenSize,
            6 => Status::InvalidTopicSize,
            7 => Status::InvalidPayloadSize,
            8 => Status::InvalidToken,
            10 => Status::Shutdown,
            128 => Status::Protocol,
            255 => Status::Unknown,
            other => Status::Other(other),
        }
    }

    /// The status byte on the wire.
    pub fn code(self) -> u8 {
        match self {
            Status::NoErrors => 0,
            Status::Processing => 1,
            Status::MissingToken => 2,
            Status::MissingTopic => 3,
            Status::MissingPayload => 4,
            Status::InvalidTokenSize => 5,
            Status::InvalidTopicSize => 6,
            Status::InvalidPayloadSize => 7,
            Status::InvalidToken => 8,
            Status::Shutdown => 10,
            Status::Protocol => 128,
            Status::Unknown => 255,
            Status::Other(c) => c,
        }
    }

    /// What the code means, in the words of the protocol.
    pub fn reason(self) -> &'static str {
        match self {
            Status::NoErrors => "no errors encountered",
            Status::Processing => "processing error",
            Status::MissingToken => "missing device token",
            Status::MissingTopic => "missing topic",
            Status::MissingPayload => "missing payload",
            Status::InvalidTokenSize => "invalid token size",
            Status::InvalidTopicSize => "invalid topic size",
            Status::InvalidPayloadSize => "invalid payload size",
            Status::InvalidToken => "invalid token",
            Status::Shutdown => "shutdown",
            Status::Protocol => "protocol error",
            Status::Unknown => "unknown error",
            Status::Other(_) => "undefined status",
        }
    }
}

/// A status is written as its code, as in the error response, so that a
/// report reads the same whatever the enum's names.
impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.code())
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
        u8::deserialize(d).map(Status::from_code)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.reason(), self.code())
    }
}

/// The gateway's 6-byte answer: `8 | status | identifier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorResponse {
    /// Why the gateway stopped.
    pub status: Status,
    /// The notification it names: the failed one, or for [`Status::Shutdown`]
    /// the last one accepted.
    pub id: u32,
}

/// The length of an error response on the wire.
pub const ERROR_RESPONSE_LEN: usize = 6;

/// Why bytes from the gateway are not an error response.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The first byte was not the error-response command (8).
    BadCommand(u8),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::BadCommand(c) => write!(f, "expected command 8, got byte {c}"),
        }
    }
}

impl std::error::Error for DecodeError {}

impl ErrorResponse {
    /// Decodes an error response from the start of `buf`.
    ///
    /// Returns `Ok(None)` while fewer than 6 bytes have arrived.
    ///
    /// # Errors
    /// [`DecodeError::BadCommand`] when the first byte is not 8: the peer is not
    /// speaking this protocol.
    pub fn decode(buf: &[u8]) -> Result<Option<ErrorResponse>, DecodeError> {
        match buf.first() {
            None => Ok(None),
            Some(&8) if buf.len() < ERROR_RESPONSE_LEN => Ok(None),
            Some(&8) => {
                Ok(Some(ErrorResponse { status: Status::from_code(buf[1]), id: BigEndian::read_u32(&buf[2..6]) }))
            }
            Some(&c) => Err(DecodeError::BadCommand(c)),
        }
    }

    /// The 6 bytes on the wire (used by tests and mock gateways).
    pub fn to_bytes(self) -> [u8; ERROR_RESPONSE_LEN] {
        let mut b = [8, self.status.code(), 0, 0, 0, 0];
        BigEndian::write_u32(&mut b[2..], self.id);
        b
    }
}

impl fmt::Display for ErrorResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "notification {}: {}", self.id, self.status)
    }
}
