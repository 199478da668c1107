//! Checking a request the way Apple's provider API does, with the mock's own
//! code (never the sender's): the route, the `apns-*` headers, the topic and
//! the payload. Pure functions over `http` types; no I/O.

use http::{HeaderMap, HeaderValue, Method};

use super::reason::Reason;

/// The headers a request may carry once.
const SINGLE: [&str; 7] = [
    "authorization",
    "apns-id",
    "apns-topic",
    "apns-push-type",
    "apns-priority",
    "apns-expiration",
    "apns-collapse-id",
];

/// `apns-push-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PushType {
    Alert,
    Background,
    Voip,
    Complication,
    FileProvider,
    Mdm,
    LiveActivity,
    Location,
    PushToTalk,
}

impl PushType {
    fn parse(v: &[u8]) -> Option<PushType> {
        use PushType::*;
        Some(match v {
            b"alert" => Alert,
            b"background" => Background,
            b"voip" => Voip,
            b"complication" => Complication,
            b"fileprovider" => FileProvider,
            b"mdm" => Mdm,
            b"liveactivity" => LiveActivity,
            b"location" => Location,
            b"pushtotalk" => PushToTalk,
            _ => return None,
        })
    }

    /// What the topic adds to the bundle id for this push type.
    pub(crate) fn topic_suffix(self) -> &'static str {
        use PushType::*;
        match self {
            Voip => ".voip",
            Complication => ".complication",
            FileProvider => ".pushkit.fileprovider",
            Location => ".location-query",
            PushToTalk => ".voip-ptt",
            LiveActivity => ".push-type.liveactivity",
            Alert | Background | Mdm => "",
        }
    }

    /// Apple: location notifications support "only token-based
    /// authentication"; Live Activity updates take a token-based connection
    /// only.
    pub(crate) fn token_auth_only(self) -> bool {
        matches!(self, PushType::Location | PushType::LiveActivity)
    }

    /// The largest payload Apple takes for this push type (bytes).
    pub(crate) fn payload_limit(self) -> usize {
        if self == PushType::Voip { 5120 } else { 4096 }
    }
}

/// What the headers say, once checked.
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub push_type: PushType,
    pub topic: Option<String>,
}

/// Method and path: `POST /3/device/<64 hex digits>`. Returns the device token.
///
/// # Errors
/// 404 BadPath, 405 MethodNotAllowed, 400 MissingDeviceToken / BadDeviceToken.
pub(crate) fn route(method: &Method, path: &str) -> Result<[u8; 32], Reason> {
    let Some(hex) = path.strip_prefix("/3/device/").or_else(|| (path == "/3/device").then_some("")) else {
        return Err(Reason::BadPath);
    };
    if method != Method::POST {
        return Err(Reason::MethodNotAllowed);
    }
    if hex.is_empty() {
        return Err(Reason::MissingDeviceToken);
    }
    parse_token(hex.as_bytes()).ok_or(Reason::BadDeviceToken)
}

fn parse_token(hex: &[u8]) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut t = [0u8; 32];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        t[i] = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(t)
}

fn nibble(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Any of the `apns-*` headers (or `authorization`) given twice: 400 DuplicateHeaders.
pub(crate) fn duplicates(h: &HeaderMap) -> Result<(), Reason> {
    match SINGLE.iter().any(|name| h.get_all(*name).iter().nth(1).is_some()) {
        true => Err(Reason::DuplicateHeaders),
        false => Ok(()),
    }
}

/// The `apns-id` to answer with: the request's if it is a UUID.
///
/// # Errors
/// 400 BadMessageId when the request's is not `8-4-4-4-12` hex digits.
pub(crate) fn apns_id(h: &HeaderMap) -> Result<Option<HeaderValue>, Reason> {
    match h.get("apns-id") {
        None => Ok(None),
        Some(v) if is_uuid(v.as_bytes()) => Ok(Some(v.clone())),
        Some(_) => Err(Reason::BadMessageId),
    }
}

/// `8-4-4-4-12` hex digits.
pub(crate) fn is_uuid(v: &[u8]) -> bool {
    v.len() == 36
        && v.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// A UUID-shaped id (upper case, as Apple's) made from a 128-bit number.
pub(crate) fn make_uuid(hi: u64, lo: u64) -> String {
    let n = (u128::from(hi) << 64) | u128::from(lo);
    let h = format!("{n:032X}");
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

/// Push type, priority, expiration, collapse id.
///
/// # Errors
/// 400 InvalidPushType, BadPriority, BadExpirationDate, BadCollapseId.
pub(crate) fn head(h: &HeaderMap) -> Result<Head, Reason> {
    let push_type = match h.get("apns-push-type") {
        None => PushType::Alert,
        Some(v) => PushType::parse(v.as_bytes()).ok_or(Reason::InvalidPushType)?,
    };
    match h.get("apns-priority").map(HeaderValue::as_bytes) {
        None | Some(b"5" | b"1") => {}
        // Apple: a background notification must not ask to be sent immediately.
        Some(b"10") if push_type != PushType::Background => {}
        Some(_) => return Err(Reason::BadPriority),
    }
    if let Some(v) = h.get("apns-expiration")
        && (v.is_empty() || v.len() > 20 || !v.as_bytes().iter().all(u8::is_ascii_digit))
    {
        return Err(Reason::BadExpirationDate);
    }
    if h.get("apns-collapse-id").is_some_and(|v| v.len() > 64) {
        return Err(Reason::BadCollapseId);
    }
    let topic = match h.get("apns-topic") {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| Reason::BadTopic)?.to_string()),
    };
    Ok(Head { push_type, topic })
}

/// The topic rule. `base` is the bundle id the connection may push to (the
/// configured topic with token auth, the certificate's `UID` with a
/// certificate); the request must name `base` plus its push type's suffix.
///
/// # Errors
/// - no topic: 400 MissingTopic with token auth, and with a certificate for
///   a push type whose topic has a suffix (Apple: such a certificate "must
///   include this header with the bundle ID of your app and if applicable,
///   the proper suffix"); otherwise the certificate's topic is used;
/// - a certificate and a push type Apple takes with token auth only
///   (location, liveactivity): 400 TopicDisallowed, as no certificate holds
///   that topic;
/// - the app's own topic with the wrong suffix: 400 BadTopic;
/// - another app's topic: 400 DeviceTokenNotForTopic (token auth: the device
///   token belongs to `base`) or TopicDisallowed (not in the certificate).
pub(crate) fn topic(head: &Head, base: &str, certificate: bool) -> Result<(), Reason> {
    let suffix = head.push_type.topic_suffix();
    let Some(topic) = head.topic.as_deref() else {
        return if certificate && suffix.is_empty() { Ok(()) } else { Err(Reason::MissingTopic) };
    };
    if certificate && head.push_type.token_auth_only() {
        return Err(Reason::TopicDisallowed);
    }
    if topic.len() == base.len() + suffix.len() && topic.starts_with(base) && topic.ends_with(suffix) {
        Ok(())
    } else if topic == base || topic.strip_prefix(base).is_some_and(|rest| rest.starts_with('.')) {
        Err(Reason::BadTopic)
    } else if certificate {
        Err(Reason::TopicDisallowed)
    } else {
        Err(Reason::DeviceTokenNotForTopic)
    }
}

/// The body: a JSON object of at most `limit` bytes.
///
/// # Errors
/// 400 PayloadEmpty, 413 PayloadTooLarge, 400 BadPayload (not a JSON object).
pub(crate) fn payload(body: &[u8], limit: usize) -> Result<(), Reason> {
    if body.is_empty() {
        return Err(Reason::PayloadEmpty);
    }
    if body.len() > limit {
        return Err(Reason::PayloadTooLarge);
    }
    let object = body.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'{');
    match object && serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
        true => Ok(()),
        false => Err(Reason::BadPayload),
    }
}

#[cfg(test)]
#[path = "request_test.rs"]
mod tests;
