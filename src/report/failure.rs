//! One token that was not accepted: its state, and why, in words spelled
//! here and nowhere else.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::binary::frame::Status;
use crate::http2::answer::ApnsReason;
use crate::input::SkipReason;

/// The fate of one token that was not accepted, as written to a failure list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The gateway accepted it (confirmed by a later rejection or sentinel).
    Accepted,
    /// The gateway rejected it with a status.
    Rejected,
    /// It was written, but the connection died before the gateway confirmed it
    /// and retries ran out: it may or may not have been delivered.
    Unconfirmed,
    /// It was not delivered and no send of it is in doubt: never written,
    /// or (over HTTP/2) answered only with "not now" (429, 500, 503,
    /// refused) or with a reason that stopped the run. A rerun sends it.
    Unsent,
    /// The input line was not a usable token.
    Skipped,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Accepted => "accepted",
            State::Rejected => "rejected",
            State::Unconfirmed => "unconfirmed",
            State::Unsent => "unsent",
            State::Skipped => "skipped",
        })
    }
}

/// Why a token was not accepted. Its [`Display`](fmt::Display) is the
/// `reason` of the failure list, so these texts are part of the output format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The gateway rejected it with this status.
    Rejected(Status),
    /// It was sent alone `times` times, and each time the connection
    /// closed without an answer: given up as unconfirmed.
    SilentWhenAlone {
        /// How often it was sent alone.
        times: u32,
    },
    /// The run was interrupted before it was sent (or confirmed).
    Interrupted,
    /// Its shard stopped, in the words the shard's driver gave (the shard
    /// report's `error`, such as `gave up: …`).
    ShardStopped(String),
    /// It waited in the channel of a shard that stopped for this reason (the
    /// shard report's `error`).
    QueuedForStoppedShard(String),
    /// It waited in the channel of a shard that ended without saying why.
    NotSent,
    /// No shard was left to take it.
    EveryShardStopped,
    /// The run stopped for an answer about the run, not the token, before
    /// it was sent (or answered); the words name the cause
    /// (`Apple answered 400 BadTopic`).
    RunStopped(String),
    /// The input line was not a usable token.
    Skipped(SkipReason),
    /// An HTTP/2 gateway rejected it for good.
    Http2Rejected {
        /// The HTTP status.
        status: u16,
        /// Apple's reason, when the answer gave one.
        reason: Option<ApnsReason>,
        /// When Apple last saw the token valid (ms since the epoch; 410 only).
        unregistered_at: Option<u64>,
    },
    /// An HTTP/2 gateway answered "later" (429, 500, 503 …) to every one of
    /// `tries` sends: given up as unconfirmed.
    Http2GaveUp {
        /// Sends made.
        tries: u32,
        /// The last answer: status and reason, as in `503 ServiceUnavailable`.
        last: String,
    },
    /// Sent `tries` times over HTTP/2 and never answered (the connection
    /// dropped, or the answer timed out): given up as unconfirmed.
    Http2InDoubt {
        /// Sends made.
        tries: u32,
    },
}

/// The status a gateway gave a rejected token: the binary protocol's status
/// byte, or the HTTP status of Apple's provider API. Written as its number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// A binary error response's status.
    Binary(Status),
    /// An HTTP status (400, 410, ...).
    Http(u16),
}

impl Code {
    /// The number written to a failure list.
    pub fn number(self) -> u16 {
        match self {
            Code::Binary(status) => u16::from(status.code()),
            Code::Http(status) => status,
        }
    }

    /// Reads a number written by [`Code::number`]: HTTP statuses are 100 to
    /// 599; the binary protocol's are below 100, and 128 and 255.
    pub fn from_number(n: u16) -> Code {
        match u8::try_from(n) {
            Ok(byte) if n < 100 || n == 128 || n == 255 => Code::Binary(Status::from_code(byte)),
            _ => Code::Http(n),
        }
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u16(self.number())
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Code, D::Error> {
        u16::deserialize(deserializer).map(Code::from_number)
    }
}

impl Reason {
    /// The gateway's status, for rejections.
    pub fn status(&self) -> Option<Code> {
        match self {
            Reason::Rejected(status) => Some(Code::Binary(*status)),
            Reason::Http2Rejected { status, .. } => Some(Code::Http(*status)),
            _ => None,
        }
    }

    /// When Apple last saw the token valid, for an HTTP/2 410 (ms since the epoch).
    pub fn unregistered_at(&self) -> Option<u64> {
        match self {
            Reason::Http2Rejected { unregistered_at, .. } => *unregistered_at,
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Rejected(status) => f.write_str(status.reason()),
            Reason::SilentWhenAlone { times } => {
                write!(f, "the connection closed without an answer each of the {times} times it was sent alone")
            }
            Reason::Interrupted => f.write_str("not sent: the run was interrupted"),
            Reason::ShardStopped(why) => f.write_str(why),
            Reason::QueuedForStoppedShard(why) => write!(f, "not sent: {why}"),
            Reason::NotSent => f.write_str("not sent"),
            Reason::EveryShardStopped => f.write_str("not sent: every shard had stopped"),
            Reason::RunStopped(cause) => write!(f, "not sent: the run stopped: {cause}"),
            Reason::Skipped(skip) => skip.fmt(f),
            Reason::Http2Rejected { reason: Some(reason), .. } => reason.fmt(f),
            Reason::Http2Rejected { status: 410, reason: None, .. } => f.write_str("Unregistered"),
            Reason::Http2Rejected { status, reason: None, .. } => write!(f, "HTTP status {status}"),
            Reason::Http2GaveUp { tries, last } => write!(f, "gave up after {tries} tries; last: {last}"),
            Reason::Http2InDoubt { tries } => {
                write!(f, "no answer after {tries} tries: may or may not have been delivered")
            }
        }
    }
}

/// A shard's driver saying, in its own words, why the shard stopped.
impl From<&str> for Reason {
    fn from(why: &str) -> Reason {
        Reason::ShardStopped(why.to_owned())
    }
}

/// A shard's driver saying, in its own words, why the shard stopped.
impl From<&String> for Reason {
    fn from(why: &String) -> Reason {
        Reason::ShardStopped(why.clone())
    }
}

/// One token that was not accepted: the line of `--failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// 1-based line of the input it came from.
    pub line: u64,
    /// The token in lower-case hex, or the raw (trimmed, cut) line when skipped.
    pub token: String,
    /// What became of it.
    pub state: State,
    /// The gateway's status, for rejected tokens (written as its number).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Code>,
    /// When Apple last saw the token valid, for an HTTP/2 410 (ms since the
    /// epoch): delete the token unless the device registered it again since.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unregistered_at: Option<u64>,
    /// Why, in words: a [`Reason`] as text, so that a list written by any
    /// version reads back.
    pub reason: String,
}

impl Failure {
    /// The failure line of a token from input line `line` that ended in
    /// `state` for `reason`; the status and the time of unregistration come
    /// from the reason.
    pub fn new(line: u64, token: String, state: State, reason: &Reason) -> Failure {
        Failure {
            line,
            token,
            state,
            status: reason.status(),
            unregistered_at: reason.unregistered_at(),
            reason: reason.to_string(),
        }
    }
}

#[cfg(test)]
#[path = "failure_test.rs"]
mod failure_test;
