//! What the gateway answers to one request: its status, the reason in the
//! body of a non-200 answer, and what that means for the notification.
//!
//! | status | reason | [`Verdict`] |
//! |---|---|---|
//! | 200 | — | accepted |
//! | 400, 403, 404, 405, 413 | about the run, not the token ([`super::stop`]) | stop the run |
//! | 403 | ExpiredProviderToken | renew the shared token, send again |
//! | 429 | TooManyProviderTokenUpdates | pause the whole run, send again |
//! | 429, 500, 503, other 5xx | any other but Shutdown | send again after a back-off |
//! | 503 | Shutdown | send again on another connection |
//! | anything else | any | rejected, final |

use std::fmt;

use super::stop::{Shared, is_run_level};

/// The longest reason kept from a body Apple's list does not know: a
/// failure list's reason is one short line, whatever a gateway sends.
const MAX_OTHER_LEN: usize = 64;

/// Apple's reason strings, typed. [`ApnsReason::as_str`] and `Display`
/// give Apple's exact spelling.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // Apple's names say it; the module's table says what follows.
pub enum ApnsReason {
    BadCollapseId,
    BadDeviceToken,
    BadExpirationDate,
    BadMessageId,
    BadPriority,
    BadTopic,
    DeviceTokenNotForTopic,
    DuplicateHeaders,
    IdleTimeout,
    InvalidPushType,
    MissingDeviceToken,
    MissingTopic,
    PayloadEmpty,
    TopicDisallowed,
    BadCertificate,
    BadCertificateEnvironment,
    ExpiredProviderToken,
    Forbidden,
    InvalidProviderToken,
    MissingProviderToken,
    UnrelatedKeyIdInToken,
    BadPath,
    MethodNotAllowed,
    ExpiredToken,
    Unregistered,
    PayloadTooLarge,
    TooManyProviderTokenUpdates,
    TooManyRequests,
    InternalServerError,
    ServiceUnavailable,
    Shutdown,
    /// A reason Apple's list does not name (visible ASCII, at most 64 characters).
    Other(String),
}

/// Every named reason, for parsing and for tests.
const NAMED: [ApnsReason; 31] = {
    use ApnsReason::*;
    [
        BadCollapseId,
        BadDeviceToken,
        BadExpirationDate,
        BadMessageId,
        BadPriority,
        BadTopic,
        DeviceTokenNotForTopic,
        DuplicateHeaders,
        IdleTimeout,
        InvalidPushType,
        MissingDeviceToken,
        MissingTopic,
        PayloadEmpty,
        TopicDisallowed,
        BadCertificate,
        BadCertificateEnvironment,
        ExpiredProviderToken,
        Forbidden,
        InvalidProviderToken,
        MissingProviderToken,
        UnrelatedKeyIdInToken,
        BadPath,
        MethodNotAllowed,
        ExpiredToken,
        Unregistered,
        PayloadTooLarge,
        TooManyProviderTokenUpdates,
        TooManyRequests,
        InternalServerError,
        ServiceUnavailable,
        Shutdown,
    ]
};

impl ApnsReason {
    /// Apple's spelling.
    pub fn as_str(&self) -> &str {
        use ApnsReason::*;
        match self {
            BadCollapseId => "BadCollapseId",
            BadDeviceToken => "BadDeviceToken",
            BadExpirationDate => "BadExpirationDate",
            BadMessageId => "BadMessageId",
            BadPriority => "BadPriority",
            BadTopic => "BadTopic",
            DeviceTokenNotForTopic => "DeviceTokenNotForTopic",
            DuplicateHeaders => "DuplicateHeaders",
            IdleTimeout => "IdleTimeout",
            InvalidPushType => "InvalidPushType",
            MissingDeviceToken => "MissingDeviceToken",
            MissingTopic => "MissingTopic",
            PayloadEmpty => "PayloadEmpty",
            TopicDisallowed => "TopicDisallowed",
            BadCertificate => "BadCertificate",
            BadCertificateEnvironment => "BadCertificateEnvironment",
            ExpiredProviderToken => "ExpiredProviderToken",
            Forbidden => "Forbidden",
            InvalidProviderToken => "InvalidProviderToken",
            MissingProviderToken => "MissingProviderToken",
            UnrelatedKeyIdInToken => "UnrelatedKeyIdInToken",
            BadPath => "BadPath",
            MethodNotAllowed => "MethodNotAllowed",
            ExpiredToken => "ExpiredToken",
            Unregistered => "Unregistered",
            PayloadTooLarge => "PayloadTooLarge",
            TooManyProviderTokenUpdates => "TooManyProviderTokenUpdates",
            TooManyRequests => "TooManyRequests",
            InternalServerError => "InternalServerError",
            ServiceUnavailable => "ServiceUnavailable",
            Shutdown => "Shutdown",
            Other(text) => text,
        }
    }

    /// The reason Apple spells `text`; an unknown one is kept as
    /// [`ApnsReason::Other`], cut to 64 characters, anything but visible
    /// ASCII replaced by `?`. `None` for an empty text.
    pub fn parse(text: &str) -> Option<ApnsReason> {
        if text.is_empty() {
            return None;
        }
        if let Some(named) = NAMED.iter().find(|r| r.as_str() == text) {
            return Some(named.clone());
        }
        let clean = text.chars().take(MAX_OTHER_LEN).map(|c| if c.is_ascii_graphic() { c } else { '?' }).collect();
        Some(ApnsReason::Other(clean))
    }

    /// Whether it is one of Apple's named reasons (not [`ApnsReason::Other`]).
    pub fn is_named(&self) -> bool {
        !matches!(self, ApnsReason::Other(_))
    }
}

impl fmt::Display for ApnsReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a non-200 answer's body, `{"reason": "...", "timestamp": ms}`:
/// the reason, and the timestamp (milliseconds; Apple sends it with 410).
/// Extra fields are ignored; a missing, empty or unreadable body, or a field
/// of the wrong type, gives `None` for what it lacks.
pub fn parse_body(body: &[u8]) -> (Option<ApnsReason>, Option<u64>) {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (None, None);
    };
    let reason = fields.get("reason").and_then(|r| r.as_str()).and_then(ApnsReason::parse);
    let timestamp = fields.get("timestamp").and_then(|t| t.as_u64());
    (reason, timestamp)
}

/// What an answer means for the notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Delivered to Apple: final.
    Accepted,
    /// Refused for good (bad token, unregistered, too large, a configuration
    /// error): final.
    Rejected,
    /// The shared provider token expired: renew it, send again.
    RenewToken,
    /// Apple is busy or failing: send again after a back-off.
    Retry,
    /// This connection is shutting down: send again on another.
    RetryElsewhere,
    /// The answer is about the run (the topic, the credentials, the shared
    /// payload …), not this token: stop the run; the notification is not settled.
    StopRun,
    /// Apple refuses the provider token as an update too soon after the
    /// last: pause the whole run; the notification goes back, no try used.
    PauseRun,
}

/// What `status` with `reason` means for the notification, whose request
/// carried the run's `shared` values: a pure function of the three (see
/// the module's table).
///
/// A 5xx other than 500 and 503 (a proxy's 502 or 504) is retried as well:
/// it says nothing about the notification itself.
pub fn verdict(status: u16, reason: Option<&ApnsReason>, shared: Shared) -> Verdict {
    match (status, reason) {
        (200, _) => Verdict::Accepted,
        (_, Some(r)) if is_run_level(status, r, shared) => Verdict::StopRun,
        (403, Some(ApnsReason::ExpiredProviderToken)) => Verdict::RenewToken,
        (429, Some(ApnsReason::TooManyProviderTokenUpdates)) => Verdict::PauseRun,
        (503, Some(ApnsReason::Shutdown)) => Verdict::RetryElsewhere,
        (429, _) | (500..=599, _) => Verdict::Retry,
        _ => Verdict::Rejected,
    }
}

/// An answer in a few words, for a reason given up on: `503 ServiceUnavailable`, `500`.
pub(crate) fn describe(status: u16, reason: Option<&ApnsReason>) -> String {
    match reason {
        Some(r) => format!("{status} {r}"),
        None => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_named_reason_reads_back_as_itself() {
        for r in NAMED {
            assert_eq!(r.to_string(), format!("{r:?}"), "Apple's spelling is the variant's name");
            assert_eq!(ApnsReason::parse(r.as_str()), Some(r.clone()));
            assert!(r.is_named());
        }
    }

    #[test]
    fn an_unknown_reason_is_kept_short_and_on_one_line() {
        assert_eq!(ApnsReason::parse("BrandNew"), Some(ApnsReason::Other("BrandNew".into())));
        assert_eq!(ApnsReason::parse("two words\n"), Some(ApnsReason::Other("two?words?".into())));
        let long = "x".repeat(1000);
        assert_eq!(ApnsReason::parse(&long).unwrap().as_str().len(), 64);
        assert_eq!(ApnsReason::parse(""), None);
        assert!(!ApnsReason::Other("x".into()).is_named());
    }

    #[test]
    fn parse_body_reads_reason_and_timestamp() {
        assert_eq!(parse_body(br#"{"reason":"BadDeviceToken"}"#), (Some(ApnsReason::BadDeviceToken), None));
        assert_eq!(
            parse_body(br#"{"reason":"Unregistered","timestamp":1700000000123}"#),
            (Some(ApnsReason::Unregistered), Some(1_700_000_000_123))
        );
        assert_eq!(
            parse_body(br#" {"extra":[1,{"a":2}],"timestamp":5,"reason":"Shutdown","more":null} "#),
            (Some(ApnsReason::Shutdown), Some(5)),
            "extra fields and white space are ignored"
        );
    }

    #[test]
    fn parse_body_tolerates_what_is_not_a_body() {
        for body in [&b""[..], b"   ", b"garbage", b"{", b"[]", b"\"BadTopic\"", b"null", b"\xff\xfe", b"{}"] {
            assert_eq!(parse_body(body), (None, None), "{:?}", String::from_utf8_lossy(body));
        }
        assert_eq!(parse_body(br#"{"reason":7,"timestamp":"soon"}"#), (None, None), "wrong types");
        assert_eq!(parse_body(br#"{"reason":"","timestamp":-1}"#), (None, None));
        assert_eq!(
            parse_body(br#"{"timestamp":1.5,"reason":"TopicDisallowed"}"#),
            (Some(ApnsReason::TopicDisallowed), None)
        );
    }

    #[test]
    fn verdicts_follow_apples_table() {
        use ApnsReason::*;
        let table: [(u16, Option<ApnsReason>, Verdict); 20] = [
            (200, None, Verdict::Accepted),
            (400, Some(BadDeviceToken), Verdict::Rejected),
            (400, Some(DeviceTokenNotForTopic), Verdict::Rejected),
            (400, None, Verdict::Rejected),
            (400, Some(BadTopic), Verdict::StopRun),
            (403, Some(ExpiredProviderToken), Verdict::RenewToken),
            (403, Some(InvalidProviderToken), Verdict::StopRun),
            (403, Some(BadCertificate), Verdict::StopRun),
            (403, Some(Other("Unknown".into())), Verdict::Rejected),
            (404, Some(BadPath), Verdict::StopRun),
            (405, Some(MethodNotAllowed), Verdict::StopRun),
            (410, Some(Unregistered), Verdict::Rejected),
            (413, Some(PayloadTooLarge), Verdict::StopRun),
            (429, Some(TooManyRequests), Verdict::Retry),
            (429, Some(TooManyProviderTokenUpdates), Verdict::PauseRun),
            (500, Some(InternalServerError), Verdict::Retry),
            (503, Some(ServiceUnavailable), Verdict::Retry),
            (503, Some(Shutdown), Verdict::RetryElsewhere),
            (502, None, Verdict::Retry),
            (413, None, Verdict::Rejected),
        ];
        for (status, reason, want) in table {
            assert_eq!(verdict(status, reason.as_ref(), Shared::ALL), want, "{status} {reason:?}");
        }
        assert_eq!(verdict(302, None, Shared::ALL), Verdict::Rejected, "nothing unexpected loops");
        let own_payload = Shared { payload: false, ..Shared::ALL };
        assert_eq!(verdict(413, Some(&PayloadTooLarge), own_payload), Verdict::Rejected, "that line's own payload");
        assert_eq!(verdict(400, Some(&BadTopic), own_payload), Verdict::StopRun);
    }

    #[test]
    fn describe_names_the_status_and_the_reason() {
        assert_eq!(describe(503, Some(&ApnsReason::ServiceUnavailable)), "503 ServiceUnavailable");
        assert_eq!(describe(500, None), "500");
    }
}
