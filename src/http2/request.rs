//! The parts of a request: the headers every notification of a run shares,
//! built and checked once; the headers a line of the list may set for itself
//! ([`LineHeaders`]), built and checked once when the line is read; and the
//! two that differ per notification (the path, with the token, and
//! `apns-id`), written into the caller's buffers.

use std::fmt::Write as _;
use std::str::FromStr;

use bytes::BytesMut;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use crate::token::DeviceToken;

pub use super::push_type::{MAX_PAYLOAD, MAX_PAYLOAD_VOIP, PushType};

/// The longest `apns-collapse-id`, in bytes.
pub const MAX_COLLAPSE_ID: usize = 64;

/// `apns-topic`.
pub const APNS_TOPIC: HeaderName = HeaderName::from_static("apns-topic");
/// `apns-push-type`.
pub const APNS_PUSH_TYPE: HeaderName = HeaderName::from_static("apns-push-type");
/// `apns-priority`.
pub const APNS_PRIORITY: HeaderName = HeaderName::from_static("apns-priority");
/// `apns-expiration`.
pub const APNS_EXPIRATION: HeaderName = HeaderName::from_static("apns-expiration");
/// `apns-collapse-id`.
pub const APNS_COLLAPSE_ID: HeaderName = HeaderName::from_static("apns-collapse-id");
/// `apns-id`.
pub const APNS_ID: HeaderName = HeaderName::from_static("apns-id");

impl FromStr for PushType {
    type Err = HeadersError;

    /// Apple's spelling, as in the header (`voip`, `liveactivity`, …).
    fn from_str(s: &str) -> Result<PushType, HeadersError> {
        PushType::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| HeadersError::PushType(s.to_owned()))
    }
}

/// Why the headers of a run cannot be built.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadersError {
    /// The topic is empty or holds a character that is not visible ASCII.
    #[error("invalid topic {0:?}: expected a bundle id (visible ASCII, no spaces)")]
    Topic(String),
    /// The priority is not one Apple knows.
    #[error("invalid priority {0}: expected 10 (immediate), 5 (power-considerate) or 1 (lowest)")]
    Priority(u8),
    /// A priority Apple refuses for the push type: background at 10.
    #[error(
        "priority {priority} with push type {push_type}: Apple takes {push_type} notifications at priority 5 (10 is an error)"
    )]
    PriorityForType {
        /// The push type.
        push_type: PushType,
        /// The priority asked for.
        priority: u8,
    },
    /// The collapse id is longer than Apple takes.
    #[error("collapse id is {0} bytes long; Apple takes at most 64")]
    CollapseIdTooLong(usize),
    /// The collapse id is empty: leave it out instead.
    #[error("the collapse id is empty: leave it out to send without one")]
    CollapseIdEmpty,
    /// The collapse id cannot be a header value (a control character).
    #[error("invalid collapse id {0:?}: control characters cannot be sent in a header")]
    CollapseId(String),
    /// Not a push type Apple defines.
    #[error(
        "invalid push type {0:?}: expected alert, background, voip, complication, fileprovider, mdm, \
         liveactivity, location or pushtotalk"
    )]
    PushType(String),
}

impl HeadersError {
    /// The command-line flag that set the value refused.
    pub fn flag(&self) -> &'static str {
        match self {
            HeadersError::Topic(_) => "--topic",
            HeadersError::Priority(_) | HeadersError::PriorityForType { .. } => "--priority",
            HeadersError::CollapseIdTooLong(_) | HeadersError::CollapseIdEmpty | HeadersError::CollapseId(_) => {
                "--collapse-id"
            }
            HeadersError::PushType(_) => "--push-type",
        }
    }
}

/// `apns-topic`: a bundle id, visible ASCII with no spaces.
fn topic_value(topic: String) -> Result<HeaderValue, HeadersError> {
    match HeaderValue::from_str(&topic) {
        Ok(v) if !topic.is_empty() && topic.bytes().all(|b| b.is_ascii_graphic()) => Ok(v),
        _ => Err(HeadersError::Topic(topic)),
    }
}

/// `apns-collapse-id`: at most [`MAX_COLLAPSE_ID`] bytes that a header can carry.
fn collapse_id_value(id: String) -> Result<HeaderValue, HeadersError> {
    if id.is_empty() {
        return Err(HeadersError::CollapseIdEmpty);
    }
    if id.len() > MAX_COLLAPSE_ID {
        return Err(HeadersError::CollapseIdTooLong(id.len()));
    }
    HeaderValue::from_str(&id).map_err(|_| HeadersError::CollapseId(id))
}

/// The headers every notification of a run shares, built once: nothing is
/// allocated for them per notification (cloning a [`HeaderValue`] shares it).
#[derive(Debug, Clone)]
pub struct Headers {
    topic: Option<HeaderValue>,
    push_type: HeaderValue,
    priority: HeaderValue,
    expiration: HeaderValue,
    collapse_id: Option<HeaderValue>,
    payload_limit: usize,
    /// Per push type (in [`PushType::ALL`]'s order), what a line that sets
    /// only its push type gets instead of the run's.
    by_type: [ForType; 9],
}

/// The topic and priority of a line whose own push type differs from the run's.
#[derive(Debug, Clone, Default)]
struct ForType {
    /// The run's bundle id with this type's suffix (`None`: the run sends no topic).
    topic: Option<HeaderValue>,
    /// This type's own default, where it cannot take the run's priority
    /// (background at 10); `None` keeps the run's.
    priority: Option<HeaderValue>,
}

impl Headers {
    /// Checks and builds the run's headers. `expiration` is in UNIX seconds
    /// (0: deliver now or never).
    ///
    /// # Errors
    /// [`HeadersError`] names the value Apple would refuse.
    pub fn new(
        topic: Option<String>,
        push_type: PushType,
        priority: u8,
        expiration: u64,
        collapse_id: Option<String>,
    ) -> Result<Headers, HeadersError> {
        let topic = topic.map(topic_value).transpose()?;
        if !matches!(priority, 10 | 5 | 1) {
            return Err(HeadersError::Priority(priority));
        }
        if !push_type.takes_priority(priority) {
            return Err(HeadersError::PriorityForType { push_type, priority });
        }
        let collapse_id = collapse_id.map(collapse_id_value).transpose()?;
        // The bundle id is the run's topic without its push type's suffix.
        let bundle = topic.as_ref().and_then(|t| std::str::from_utf8(t.as_bytes()).ok()).map(|t| {
            let suffix = push_type.topic_suffix();
            if suffix.is_empty() { t } else { t.strip_suffix(suffix).unwrap_or(t) }
        });
        let by_type = PushType::ALL.map(|t| ForType {
            topic: bundle.and_then(|b| HeaderValue::from_str(&t.topic(b)).ok()),
            priority: (!t.takes_priority(priority)).then(|| HeaderValue::from(u16::from(t.default_priority()))),
        });
        Ok(Headers {
            by_type,
            topic,
            push_type: HeaderValue::from_static(push_type.as_str()),
            priority: HeaderValue::from(u16::from(priority)),
            expiration: HeaderValue::from(expiration),
            collapse_id,
            payload_limit: push_type.payload_limit(),
        })
    }

    /// The largest payload the run's push type may carry.
    pub fn payload_limit(&self) -> usize {
        self.payload_limit
    }

    /// Every shared header, in the order they are sent.
    pub fn iter(&self) -> impl Iterator<Item = (HeaderName, &HeaderValue)> {
        let fixed =
            [(APNS_PUSH_TYPE, &self.push_type), (APNS_PRIORITY, &self.priority), (APNS_EXPIRATION, &self.expiration)];
        let topic = self.topic.as_ref().map(|v| (APNS_TOPIC, v));
        let collapse = self.collapse_id.as_ref().map(|v| (APNS_COLLAPSE_ID, v));
        topic.into_iter().chain(fixed).chain(collapse)
    }

    /// Puts every shared header into `map` (replacing any there).
    pub fn apply(&self, map: &mut HeaderMap) {
        for (name, value) in self.iter() {
            map.insert(name, value.clone());
        }
    }
}

/// The headers one line of a token list sets for itself, replacing the run's
/// for that notification only. Checked as the run's are and built once, when
/// the line is read, so sending it allocates nothing for them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineHeaders {
    topic: Option<HeaderValue>,
    push_type: Option<PushType>,
    collapse_id: Option<HeaderValue>,
}

impl LineHeaders {
    /// Checks and builds a line's own `topic`, `push_type` (Apple's spelling)
    /// and `collapse_id`; `None` leaves the run's. A line that sets both its
    /// topic and its push type gets that type's suffix on its topic unless
    /// the topic has it already, as `--topic` does.
    ///
    /// # Errors
    /// [`HeadersError`] names the first value Apple would refuse (topic, then
    /// push type, then collapse id).
    pub fn new(
        topic: Option<String>,
        push_type: Option<&str>,
        collapse_id: Option<String>,
    ) -> Result<LineHeaders, HeadersError> {
        let push_type: Option<PushType> = push_type.map(str::parse).transpose()?;
        let topic = match (topic, push_type) {
            (Some(topic), Some(t)) => Some(t.topic(&topic)),
            (topic, _) => topic,
        };
        Ok(LineHeaders {
            topic: topic.map(topic_value).transpose()?,
            push_type,
            collapse_id: collapse_id.map(collapse_id_value).transpose()?,
        })
    }

    /// Whether the line sets none of them.
    pub fn is_empty(&self) -> bool {
        self.topic.is_none() && self.push_type.is_none() && self.collapse_id.is_none()
    }

    /// The line's own push type, which also sets its payload limit.
    pub fn push_type(&self) -> Option<PushType> {
        self.push_type
    }

    /// The line's own topic.
    pub fn topic(&self) -> Option<&str> {
        self.topic.as_ref().and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
    }

    /// The line's own collapse id.
    pub fn collapse_id(&self) -> Option<&str> {
        // Built from a `String`: UTF-8, which `HeaderValue::to_str` would refuse.
        self.collapse_id.as_ref().and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
    }

    /// The first field the line sets, as the list spells it (`topic`,
    /// `push_type`, `collapse_id`): what a transport without these headers
    /// names when it refuses the line.
    pub fn first_field(&self) -> Option<&'static str> {
        [
            self.topic.as_ref().map(|_| "topic"),
            self.push_type.map(|_| "push_type"),
            self.collapse_id.as_ref().map(|_| "collapse_id"),
        ]
        .into_iter()
        .flatten()
        .next()
    }

    /// Puts the line's own headers into `map` over the run's `run` (apply
    /// [`Headers::apply`] first). A line that sets its push type but no topic
    /// gets the run's bundle id with that type's suffix, and a priority the
    /// type takes (background: 5 where the run sends 10).
    pub fn apply(&self, map: &mut HeaderMap, run: &Headers) {
        if let Some(t) = self.push_type {
            map.insert(APNS_PUSH_TYPE, HeaderValue::from_static(t.as_str()));
            let own = &run.by_type[t.index()];
            if let (None, Some(topic)) = (&self.topic, &own.topic) {
                map.insert(APNS_TOPIC, topic.clone());
            }
            if let Some(priority) = &own.priority {
                map.insert(APNS_PRIORITY, priority.clone());
            }
        }
        if let Some(v) = &self.topic {
            map.insert(APNS_TOPIC, v.clone());
        }
        if let Some(v) = &self.collapse_id {
            map.insert(APNS_COLLAPSE_ID, v.clone());
        }
    }
}

/// Writes `id` as a UUID (lower-case `8-4-4-4-12` hex) into `buf`, for `apns-id`.
pub fn apns_id_value(id: u128, buf: &mut [u8; 36]) -> &str {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = id.to_be_bytes();
    let mut at = 0;
    for (i, b) in bytes.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            buf[at] = b'-';
            at += 1;
        }
        buf[at] = HEX[usize::from(b >> 4)];
        buf[at + 1] = HEX[usize::from(b & 0xf)];
        at += 2;
    }
    // Only ASCII hex digits and dashes were written.
    std::str::from_utf8(buf).expect("ASCII")
}

/// Writes the request path, `/3/device/<token in hex>`, at the end of `buf`.
pub fn path(token: &DeviceToken, buf: &mut BytesMut) {
    buf.extend_from_slice(b"/3/device/");
    // Writing to a BytesMut cannot fail.
    let _ = write!(buf, "{token}");
}

#[cfg(test)]
#[path = "request_test.rs"]
mod request_test;
