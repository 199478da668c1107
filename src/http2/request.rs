//! The parts of a request: the headers every notification of a run shares,
//! built and checked once, and the two that differ per notification (the
//! path, with the token, and `apns-id`), written into the caller's buffers.

use std::fmt::Write as _;

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
    /// The collapse id cannot be a header value (a control character).
    #[error("invalid collapse id {0:?}: control characters cannot be sent in a header")]
    CollapseId(String),
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
        let topic = match topic {
            Some(t) => match HeaderValue::from_str(&t) {
                Ok(v) if !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()) => Some(v),
                _ => return Err(HeadersError::Topic(t)),
            },
            None => None,
        };
        if !matches!(priority, 10 | 5 | 1) {
            return Err(HeadersError::Priority(priority));
        }
        if !push_type.takes_priority(priority) {
            return Err(HeadersError::PriorityForType { push_type, priority });
        }
        let collapse_id = match collapse_id {
            Some(c) if c.len() > MAX_COLLAPSE_ID => return Err(HeadersError::CollapseIdTooLong(c.len())),
            Some(c) => match HeaderValue::from_str(&c) {
                Ok(v) => Some(v),
                Err(_) => return Err(HeadersError::CollapseId(c)),
            },
            None => None,
        };
        Ok(Headers {
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

/// Writes the request path, `/3/device/<token in hex>`, into `buf` (cleared
/// first, so one buffer serves every request).
pub fn path(token: &DeviceToken, buf: &mut String) {
    buf.clear();
    buf.push_str("/3/device/");
    // Writing to a String cannot fail.
    let _ = write!(buf, "{token}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(topic: Option<&str>, priority: u8, collapse: Option<&str>) -> Result<Headers, HeadersError> {
        Headers::new(topic.map(Into::into), PushType::Alert, priority, 0, collapse.map(Into::into))
    }

    #[test]
    fn shared_headers_are_built_once_in_apples_spelling() {
        let h =
            Headers::new(Some("com.example.app".into()), PushType::LiveActivity, 5, 1_700_000_000, Some("c1".into()))
                .unwrap();
        let got: Vec<(String, &str)> = h.iter().map(|(n, v)| (n.to_string(), v.to_str().unwrap())).collect();
        let want = [
            ("apns-topic", "com.example.app"),
            ("apns-push-type", "liveactivity"),
            ("apns-priority", "5"),
            ("apns-expiration", "1700000000"),
            ("apns-collapse-id", "c1"),
        ];
        assert_eq!(got, want.map(|(n, v)| (n.to_owned(), v)));
        let mut map = HeaderMap::new();
        map.insert(APNS_PRIORITY, HeaderValue::from_static("10"));
        h.apply(&mut map);
        assert_eq!(map.len(), 5);
        assert_eq!(map[APNS_PRIORITY], "5", "replaced, not appended");
    }

    #[test]
    fn optional_headers_are_left_out() {
        let h = headers(None, 10, None).unwrap();
        let names: Vec<String> = h.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(names, ["apns-push-type", "apns-priority", "apns-expiration"]);
    }

    #[test]
    fn bad_values_are_refused_before_the_run() {
        assert_eq!(headers(None, 7, None).unwrap_err(), HeadersError::Priority(7));
        for p in [10, 5, 1] {
            assert!(headers(None, p, None).is_ok());
        }
        for topic in ["", "com.example app", "com.example\tapp", "com.exämple", "a\u{7f}"] {
            assert_eq!(headers(Some(topic), 10, None).unwrap_err(), HeadersError::Topic(topic.into()), "{topic:?}");
        }
        let long = "c".repeat(65);
        assert_eq!(headers(None, 10, Some(&long)).unwrap_err(), HeadersError::CollapseIdTooLong(65));
        assert!(headers(None, 10, Some(&long[..64])).is_ok(), "64 bytes is the limit");
        assert!(matches!(headers(None, 10, Some("a\nb")), Err(HeadersError::CollapseId(_))));
        assert!(headers(None, 10, Some("with spaces")).is_ok(), "a collapse id may have spaces");
    }

    #[test]
    fn errors_say_what_apple_takes() {
        assert_eq!(
            HeadersError::Priority(7).to_string(),
            "invalid priority 7: expected 10 (immediate), 5 (power-considerate) or 1 (lowest)"
        );
        assert_eq!(
            HeadersError::CollapseIdTooLong(65).to_string(),
            "collapse id is 65 bytes long; Apple takes at most 64"
        );
    }

    #[test]
    fn the_headers_carry_the_push_types_limit_and_refuse_background_at_10() {
        assert_eq!(Headers::new(None, PushType::Voip, 10, 0, None).unwrap().payload_limit(), 5120);
        assert_eq!(Headers::new(None, PushType::Alert, 10, 0, None).unwrap().payload_limit(), 4096);
        let err = Headers::new(None, PushType::Background, 10, 0, None).unwrap_err();
        assert_eq!(err, HeadersError::PriorityForType { push_type: PushType::Background, priority: 10 });
        assert_eq!(
            err.to_string(),
            "priority 10 with push type background: Apple takes background notifications at priority 5 (10 is an error)"
        );
        for p in [5, 1] {
            assert!(Headers::new(None, PushType::Background, p, 0, None).is_ok(), "{p}");
        }
    }

    #[test]
    fn apns_id_is_a_lower_case_uuid() {
        let mut buf = [0u8; 36];
        assert_eq!(
            apns_id_value(0x0123_4567_89ab_cdef_0011_2233_4455_6677, &mut buf),
            "01234567-89ab-cdef-0011-223344556677"
        );
        assert_eq!(apns_id_value(0, &mut buf), "00000000-0000-0000-0000-000000000000");
        assert_eq!(apns_id_value(u128::MAX, &mut buf), "ffffffff-ffff-ffff-ffff-ffffffffffff");
        assert!(HeaderValue::from_str(apns_id_value(u128::MAX, &mut buf)).is_ok());
    }

    #[test]
    fn path_reuses_its_buffer() {
        let mut buf = String::from("left over from the last request");
        let token = DeviceToken([0xab; 32]);
        path(&token, &mut buf);
        assert_eq!(buf, format!("/3/device/{}", "ab".repeat(32)));
        let cap = buf.capacity();
        path(&DeviceToken([0x01; 32]), &mut buf);
        assert_eq!(buf, format!("/3/device/{}", "01".repeat(32)));
        assert_eq!(buf.capacity(), cap, "no new allocation");
    }
}
