//! The wire format: notification frames the provider writes and the 6-byte
//! error response the gateway writes back. Pure: no sockets, no clocks.
//!
//! Encoders append to a caller's `Vec<u8>` so a sender can coalesce thousands
//! of frames into one write without an allocation per frame. The decoder
//! treats "not enough bytes yet" as a state (`Ok(None)`), not an error,
//! because TLS may hand the 6 bytes over in pieces.

mod response;

use byteorder::{BigEndian, ByteOrder};

pub use response::{DecodeError, ERROR_RESPONSE_LEN, ErrorResponse, Status};

use crate::token::{DeviceToken, TOKEN_LEN};

/// The frame format a sender writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    /// Command 0, "simple": no identifier, so the gateway can never say which
    /// notification failed. Encodable for completeness; the sender does not use it.
    Simple,
    /// Command 1, "enhanced": identifier and expiry; 256-byte payloads.
    Enhanced,
    /// Command 2, "frame of items": identifier, expiry, priority; 2048-byte payloads.
    Items,
}

impl Command {
    /// The command byte on the wire.
    pub fn code(self) -> u8 {
        match self {
            Command::Simple => 0,
            Command::Enhanced => 1,
            Command::Items => 2,
        }
    }

    /// The gateway's payload size limit for this format, in bytes.
    pub fn payload_limit(self) -> usize {
        match self {
            Command::Simple | Command::Enhanced => 256,
            Command::Items => 2048,
        }
    }

    /// The encoded size of one frame with a payload of `payload_len` bytes.
    pub fn frame_len(self, payload_len: usize) -> usize {
        match self {
            Command::Simple => 1 + 2 + TOKEN_LEN + 2 + payload_len,
            Command::Enhanced => 1 + 4 + 4 + 2 + TOKEN_LEN + 2 + payload_len,
            Command::Items => 1 + 4 + ITEMS_FIXED + payload_len,
        }
    }

    /// Appends one notification in this format. `Simple` ignores the identifier,
    /// expiry and priority; `Enhanced` ignores the priority.
    ///
    /// # Panics
    /// If the payload is longer than 65,535 bytes (a length the format cannot
    /// express); callers validate payloads against [`Command::payload_limit`] first.
    pub fn encode(self, n: &Notification<'_>, out: &mut Vec<u8>) {
        match self {
            Command::Simple => encode_simple(n.token, n.payload, out),
            Command::Enhanced => encode_enhanced(n, out),
            Command::Items => encode_items(n, out),
        }
    }

    /// Appends a frame that every gateway must reject (it carries no device
    /// token), so that the error response naming `id` proves that everything
    /// written before it on the connection was accepted.
    ///
    /// # Panics
    /// For `Simple`, which has no identifier and so can never be confirmed.
    pub fn encode_sentinel(self, id: u32, out: &mut Vec<u8>) {
        match self {
            Command::Simple => panic!("command 0 frames cannot be confirmed"),
            Command::Enhanced => {
                out.push(1);
                put_u32(out, id);
                put_u32(out, 0);
                put_u16(out, 0); // token length 0: "missing device token"
                put_u16(out, 0);
            }
            Command::Items => {
                out.push(2);
                put_u32(out, 3 + 4);
                out.push(item::IDENTIFIER);
                put_u16(out, 4);
                put_u32(out, id);
            }
        }
    }
}

/// A frame with all but the token and identifier filled in, for the many
/// notifications of a run that share one payload: each is then one copy and
/// two patches instead of a dozen small appends.
#[derive(Debug, Clone)]
pub struct Template {
    bytes: Vec<u8>,
    token_at: usize,
    /// Command 0 has no identifier.
    id_at: Option<usize>,
}

impl Template {
    /// The frame `command` writes for `payload`, `expiry` and `priority`.
    pub fn new(command: Command, payload: &[u8], expiry: u32, priority: Priority) -> Template {
        let mut bytes = Vec::with_capacity(command.frame_len(payload.len()));
        let blank = DeviceToken([0; TOKEN_LEN]);
        command.encode(&Notification { token: &blank, payload, id: 0, expiry, priority }, &mut bytes);
        // Offsets from the layouts above: the command byte, then length and
        // item headers.
        let (token_at, id_at) = match command {
            Command::Simple => (1 + 2, None),
            Command::Enhanced => (1 + 4 + 4 + 2, Some(1)),
            Command::Items => (1 + 4 + 3, Some(1 + 4 + 3 + TOKEN_LEN + 3 + payload.len() + 3)),
        };
        Template { bytes, token_at, id_at }
    }

    /// Appends the frame for `token` with identifier `id`: the same bytes as
    /// [`Command::encode`] with the template's payload, expiry and priority.
    pub fn encode(&self, token: &DeviceToken, id: u32, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&self.bytes);
        let frame = &mut out[start..];
        frame[self.token_at..self.token_at + TOKEN_LEN].copy_from_slice(token.as_bytes());
        if let Some(at) = self.id_at {
            frame[at..at + 4].copy_from_slice(&id.to_be_bytes());
        }
    }
}

/// What goes into one notification frame.
#[derive(Debug, Clone, Copy)]
pub struct Notification<'a> {
    /// The device to notify.
    pub token: &'a DeviceToken,
    /// The JSON payload, already validated.
    pub payload: &'a [u8],
    /// Echoed back in an error response naming this notification.
    pub id: u32,
    /// UNIX seconds after which the gateway may drop it; 0 = deliver now or never.
    pub expiry: u32,
    /// Delivery priority (command 2 only).
    pub priority: Priority,
}

/// Delivery priority of a command-2 notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Priority {
    /// 10: deliver immediately.
    #[default]
    Immediate,
    /// 5: deliver at a time that saves power on the device.
    PowerSaving,
}

impl Priority {
    /// The priority byte on the wire.
    pub fn code(self) -> u8 {
        match self {
            Priority::Immediate => 10,
            Priority::PowerSaving => 5,
        }
    }
}

/// Item identifiers inside a command-2 frame.
pub mod item {
    /// Device token, 32 bytes.
    pub const TOKEN: u8 = 1;
    /// JSON payload.
    pub const PAYLOAD: u8 = 2;
    /// Notification identifier, 4 bytes.
    pub const IDENTIFIER: u8 = 3;
    /// Expiration date, 4 bytes.
    pub const EXPIRY: u8 = 4;
    /// Priority, 1 byte.
    pub const PRIORITY: u8 = 5;
}

/// Command-2 bytes besides the command byte, frame length and payload:
/// five item headers (3 bytes each) and the fixed-size item data.
const ITEMS_FIXED: usize = 5 * 3 + TOKEN_LEN + 4 + 4 + 1;

fn put_u16(out: &mut Vec<u8>, v: u16) {
    let mut b = [0u8; 2];
    BigEndian::write_u16(&mut b, v);
    out.extend_from_slice(&b);
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    let mut b = [0u8; 4];
    BigEndian::write_u32(&mut b, v);
    out.extend_from_slice(&b);
}

fn payload_len(payload: &[u8]) -> u16 {
    u16::try_from(payload.len()).expect("payload longer than 65535 bytes")
}

fn encode_simple(token: &DeviceToken, payload: &[u8], out: &mut Vec<u8>) {
    out.reserve(Command::Simple.frame_len(payload.len()));
    out.push(0);
    put_u16(out, TOKEN_LEN as u16);
    out.extend_from_slice(token.as_bytes());
    put_u16(out, payload_len(payload));
    out.extend_from_slice(payload);
}

fn encode_enhanced(n: &Notification<'_>, out: &mut Vec<u8>) {
    out.reserve(Command::Enhanced.frame_len(n.payload.len()));
    out.push(1);
    put_u32(out, n.id);
    put_u32(out, n.expiry);
    put_u16(out, TOKEN_LEN as u16);
    out.extend_from_slice(n.token.as_bytes());
    put_u16(out, payload_len(n.payload));
    out.extend_from_slice(n.payload);
}

fn encode_items(n: &Notification<'_>, out: &mut Vec<u8>) {
    let body = ITEMS_FIXED + n.payload.len();
    out.reserve(5 + body);
    out.push(2);
    put_u32(out, body as u32);
    out.push(item::TOKEN);
    put_u16(out, TOKEN_LEN as u16);
    out.extend_from_slice(n.token.as_bytes());
    out.push(item::PAYLOAD);
    put_u16(out, payload_len(n.payload));
    out.extend_from_slice(n.payload);
    out.push(item::IDENTIFIER);
    put_u16(out, 4);
    put_u32(out, n.id);
    out.push(item::EXPIRY);
    put_u16(out, 4);
    put_u32(out, n.expiry);
    out.push(item::PRIORITY);
    put_u16(out, 1);
    out.push(n.priority.code());
}

#[cfg(test)]
#[path = "frame_test.rs"]
mod frame_test;
