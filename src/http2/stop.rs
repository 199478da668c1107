//! Answers about the run, not the token: what stops a whole run, and what
//! the user is told to fix.
//!
//! Apple's reasons ("Handling notification responses from APNs",
//! <https://developer.apple.com/documentation/usernotifications/handling-notification-responses-from-apns>)
//! split in two. Some are about the device token (BadDeviceToken,
//! Unregistered, DeviceTokenNotForTopic, ExpiredToken): that token's
//! rejection. The rest are about what every request of the run carries —
//! the topic, the push type, the shared headers and payload, the
//! credentials, the request's form — so every other token would get the
//! same answer; settling them as rejected would make a corrected rerun skip
//! the whole list. These stop the run:
//!
//! | status | reason | why it is the run's | fix |
//! |---|---|---|---|
//! | 400 | BadTopic, TopicDisallowed, MissingTopic | one `apns-topic` for the run (a line's own topic or push type: that line's rejection) | `--topic` |
//! | 400 | InvalidPushType | one `apns-push-type` (as above) | `--push-type` |
//! | 400 | BadPriority | one `apns-priority` (as above) | `--priority` |
//! | 400 | BadExpirationDate | one `apns-expiration` | `--expiry` |
//! | 400 | BadCollapseId | the run's shared collapse id (a line's own: that line's rejection) | `--collapse-id` |
//! | 400 | PayloadEmpty | the shared payload (a line's own: its rejection) | `--payload` |
//! | 413 | PayloadTooLarge | the shared payload (a line's own: its rejection) | `--payload` |
//! | 400 | BadMessageId, DuplicateHeaders, MissingDeviceToken | the request's form, made the same way for every token | a bug: report it |
//! | 404, 405 | BadPath, MethodNotAllowed | the request's form | a bug, or `--gateway` is not APNs |
//! | 403 | BadCertificate, BadCertificateEnvironment, Forbidden | the certificate | the certificate, or the environment |
//! | 403 | InvalidProviderToken, MissingProviderToken, UnrelatedKeyIdInToken | the one provider token of the run | `--key-id`, `--team-id`, `--auth-key` |
//!
//! ExpiredProviderToken renews the token; for a token younger than 20
//! minutes it means a wrong clock, and stops the run too
//! ([`StopCause::ClockWrong`]).

use std::fmt;

use super::answer::ApnsReason;

/// Which of a request's values were the run's shared ones rather than its
/// line's own: a per-line value Apple refuses is that line's rejection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shared {
    /// The request carried the run's topic, push type and priority (its
    /// line set neither a topic nor a push type).
    pub topic: bool,
    /// The request carried the run's shared payload.
    pub payload: bool,
    /// The request carried the run's collapse id (or none at all).
    pub collapse_id: bool,
}

impl Shared {
    /// Every value the run's own.
    pub const ALL: Shared = Shared { topic: true, payload: true, collapse_id: true };
}

/// Why a run stopped before sending everything. The first cause wins.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopCause {
    /// Apple answered a request with a reason about the run (see the module's table).
    Answer {
        /// The HTTP status.
        status: u16,
        /// Apple's reason.
        reason: ApnsReason,
    },
    /// The gateway ended a connection with a GOAWAY naming such a reason.
    GoAway(ApnsReason),
    /// Most of the first answers were BadDeviceToken: the tokens belong to
    /// the other environment (sandbox or production).
    WrongEnvironment {
        /// BadDeviceToken answers.
        bad: u64,
        /// Answers counted.
        of: u64,
    },
    /// Most of the first answers were DeviceTokenNotForTopic: the tokens
    /// belong to another app than the topic.
    WrongTopic {
        /// DeviceTokenNotForTopic answers.
        bad: u64,
        /// Answers counted.
        of: u64,
    },
    /// ExpiredProviderToken for a token this machine made less than 20
    /// minutes ago: a clock is wrong.
    ClockWrong {
        /// The token's age by this machine's clock, in seconds.
        age_secs: u64,
    },
    /// ExpiredProviderToken for a token given ready-made, which cannot be renewed here.
    FixedTokenExpired,
    /// 429 TooManyProviderTokenUpdates again and again: another sender
    /// renews tokens of this key.
    TokenUpdatesRefused {
        /// Pauses that did not help.
        pauses: u32,
    },
    /// 500 or 503 to every request for a long while: Apple is failing.
    ServiceFailing {
        /// Seconds the run waited for it.
        waited_s: u64,
    },
}

/// Whether `status` with `reason`, for a request whose shared values are
/// `shared`, is about the run: a pure function of the three (see the
/// module's table).
pub fn is_run_level(status: u16, reason: &ApnsReason, shared: Shared) -> bool {
    use ApnsReason::*;
    match (status, reason) {
        (400, BadTopic | TopicDisallowed | MissingTopic | InvalidPushType | BadPriority) => shared.topic,
        (400, BadExpirationDate) => true,
        (400, BadMessageId | DuplicateHeaders | MissingDeviceToken) => true,
        (400, BadCollapseId) => shared.collapse_id,
        (400, PayloadEmpty) | (413, PayloadTooLarge) => shared.payload,
        (403, BadCertificate | BadCertificateEnvironment | Forbidden) => true,
        (403, InvalidProviderToken | MissingProviderToken | UnrelatedKeyIdInToken) => true,
        (404, BadPath) | (405, MethodNotAllowed) => true,
        _ => false,
    }
}

impl StopCause {
    /// The cause for a GOAWAY whose debug data gave `reason`, if that
    /// reason stops the run: the reasons of the module's table, the
    /// payload and collapse id taken as shared (a GOAWAY is about the
    /// connection, never one line). `None` for any other GOAWAY, which only
    /// ends its connection.
    ///
    /// The hook for the driver: where a GOAWAY's reason is read, pass it
    /// here and stop the run with the cause.
    pub fn from_goaway(reason: Option<&ApnsReason>) -> Option<StopCause> {
        let reason = reason?;
        let status = match reason {
            ApnsReason::PayloadTooLarge => 413,
            ApnsReason::BadPath => 404,
            ApnsReason::MethodNotAllowed => 405,
            ApnsReason::BadCertificate
            | ApnsReason::BadCertificateEnvironment
            | ApnsReason::Forbidden
            | ApnsReason::InvalidProviderToken
            | ApnsReason::MissingProviderToken
            | ApnsReason::UnrelatedKeyIdInToken => 403,
            _ => 400,
        };
        is_run_level(status, reason, Shared::ALL).then(|| StopCause::GoAway(reason.clone()))
    }

    /// What stopped the run, in a few words: `Apple answered 400 BadTopic`.
    pub fn cause(&self) -> String {
        match self {
            StopCause::Answer { status, reason } => format!("Apple answered {status} {reason}"),
            StopCause::GoAway(reason) => format!("Apple closed the connection with GOAWAY {reason}"),
            StopCause::WrongEnvironment { bad, of } => {
                format!(
                    "{bad} of the first {of} answers were BadDeviceToken: the tokens look like the other environment"
                )
            }
            StopCause::WrongTopic { bad, of } => format!(
                "{bad} of the first {of} answers were DeviceTokenNotForTopic: the tokens belong to another app than the topic"
            ),
            StopCause::ClockWrong { age_secs } => format!(
                "Apple called the provider token expired, but this machine made it {age_secs} s ago: a clock is wrong"
            ),
            StopCause::FixedTokenExpired => "Apple called the provider token given ready-made expired".into(),
            StopCause::TokenUpdatesRefused { pauses } => format!(
                "Apple answered 429 TooManyProviderTokenUpdates again after {pauses} pauses: another sender renews tokens of this key"
            ),
            StopCause::ServiceFailing { waited_s } => {
                format!("Apple answered 500/503 to every request for {waited_s} s: the service is failing")
            }
        }
    }

    /// What to do about it.
    pub fn fix(&self) -> String {
        let reason = match self {
            StopCause::Answer { reason, .. } | StopCause::GoAway(reason) => reason,
            StopCause::WrongEnvironment { .. } => {
                return "sandbox tokens go to the sandbox gateway (--sandbox), production ones to production; \
                        if the list is known to be stale, --allow-invalid-majority sends it anyway"
                    .into();
            }
            StopCause::WrongTopic { .. } => {
                return "--topic must be the bundle id of the app that registered the tokens; \
                        if the list mixes apps, --allow-invalid-majority sends it anyway"
                    .into();
            }
            StopCause::ClockWrong { .. } => {
                return "set this machine's clock right (NTP) and run again".into();
            }
            StopCause::FixedTokenExpired => return "sign a new token and run again".into(),
            StopCause::TokenUpdatesRefused { .. } => {
                return "let one process sign for the key (apnsblast's tokens are the same in every process \
                        within 30 minutes), then run again"
                    .into();
            }
            StopCause::ServiceFailing { .. } => return "run again later".into(),
        };
        use ApnsReason::*;
        match reason {
            BadTopic | TopicDisallowed => "the topic is not an app of this key or certificate; check --topic",
            MissingTopic => "give the app's bundle id with --topic",
            InvalidPushType => "check --push-type against what the app does",
            BadPriority => "check --priority (background pushes take 5)",
            BadExpirationDate => "check --expiry",
            BadCollapseId => "Apple refused the collapse id (at most 64 bytes); check --collapse-id",
            PayloadEmpty => "the shared payload is empty; check --payload or --alert",
            PayloadTooLarge => "the shared payload is too large for this push type; shorten it",
            BadCertificate | Forbidden => "check the certificate (--cert): it may be revoked or not for push",
            BadCertificateEnvironment => {
                "the certificate is for the other environment: --sandbox for development, without for production"
            }
            InvalidProviderToken | UnrelatedKeyIdInToken => {
                "check --key-id and --team-id against the .p8 key, and the key's page in the developer account"
            }
            MissingProviderToken => "give a certificate, or a .p8 key with --auth-key",
            BadPath | MethodNotAllowed => "check --gateway: it does not behave like APNs",
            _ => "apnsblast made a request Apple refuses: please report it",
        }
        .to_owned()
    }
}

impl fmt::Display for StopCause {
    /// `cause; fix`: the one line the command prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; {}", self.cause(), self.fix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN_PAYLOAD: Shared = Shared { payload: false, ..Shared::ALL };
    const OWN_COLLAPSE_ID: Shared = Shared { collapse_id: false, ..Shared::ALL };
    const OWN_TOPIC: Shared = Shared { topic: false, ..Shared::ALL };

    #[test]
    fn run_level_reasons_follow_the_table() {
        use ApnsReason::*;
        for (status, reason) in [
            (400, BadTopic),
            (400, TopicDisallowed),
            (400, MissingTopic),
            (400, InvalidPushType),
            (400, BadPriority),
            (400, BadExpirationDate),
            (400, BadCollapseId),
            (400, PayloadEmpty),
            (413, PayloadTooLarge),
            (400, BadMessageId),
            (400, DuplicateHeaders),
            (400, MissingDeviceToken),
            (403, BadCertificate),
            (403, BadCertificateEnvironment),
            (403, Forbidden),
            (403, InvalidProviderToken),
            (403, MissingProviderToken),
            (403, UnrelatedKeyIdInToken),
            (404, BadPath),
            (405, MethodNotAllowed),
        ] {
            assert!(is_run_level(status, &reason, Shared::ALL), "{status} {reason}");
        }
        for (status, reason) in [
            (400, BadDeviceToken),
            (400, DeviceTokenNotForTopic),
            (410, Unregistered),
            (410, ExpiredToken),
            (403, ExpiredProviderToken),
            (429, TooManyRequests),
            (429, TooManyProviderTokenUpdates),
            (503, ServiceUnavailable),
            (400, Other("BrandNew".into())),
        ] {
            assert!(!is_run_level(status, &reason, Shared::ALL), "{status} {reason}");
        }
    }

    #[test]
    fn a_lines_own_payload_or_collapse_id_is_only_that_lines() {
        use ApnsReason::*;
        assert!(!is_run_level(413, &PayloadTooLarge, OWN_PAYLOAD));
        assert!(!is_run_level(400, &PayloadEmpty, OWN_PAYLOAD));
        assert!(is_run_level(400, &BadCollapseId, OWN_PAYLOAD), "the collapse id was still the run's");
        assert!(!is_run_level(400, &BadCollapseId, OWN_COLLAPSE_ID));
        assert!(is_run_level(413, &PayloadTooLarge, OWN_COLLAPSE_ID));
        assert!(is_run_level(400, &BadTopic, Shared { topic: true, payload: false, collapse_id: false }));
        for reason in [BadTopic, TopicDisallowed, MissingTopic, InvalidPushType, BadPriority] {
            assert!(!is_run_level(400, &reason, OWN_TOPIC), "a line's own topic or push type: {reason}");
        }
        assert!(is_run_level(403, &InvalidProviderToken, OWN_TOPIC), "the credentials stay the run's");
    }

    #[test]
    fn a_goaway_stops_for_the_same_reasons() {
        use ApnsReason::*;
        for reason in [BadTopic, InvalidProviderToken, BadCertificateEnvironment, PayloadTooLarge, BadPath] {
            assert_eq!(StopCause::from_goaway(Some(&reason)), Some(StopCause::GoAway(reason.clone())), "{reason}");
        }
        for reason in [Shutdown, IdleTimeout, ExpiredProviderToken, BadDeviceToken, Other("x".into())] {
            assert_eq!(StopCause::from_goaway(Some(&reason)), None, "{reason}");
        }
        assert_eq!(StopCause::from_goaway(None), None);
    }

    #[test]
    fn the_line_names_the_cause_and_the_fix() {
        let c = StopCause::Answer { status: 400, reason: ApnsReason::BadTopic };
        assert_eq!(
            c.to_string(),
            "Apple answered 400 BadTopic; the topic is not an app of this key or certificate; check --topic"
        );
        let e = StopCause::WrongEnvironment { bad: 600, of: 1000 };
        assert!(e.to_string().contains("--sandbox") && e.to_string().contains("--allow-invalid-majority"), "{e}");
        assert!(StopCause::ClockWrong { age_secs: 5 }.to_string().contains("clock"));
        for c in [
            StopCause::GoAway(ApnsReason::InvalidProviderToken),
            StopCause::FixedTokenExpired,
            StopCause::TokenUpdatesRefused { pauses: 3 },
            StopCause::ServiceFailing { waited_s: 9 },
        ] {
            let line = c.to_string();
            assert!(!line.contains('\n') && line.contains("; "), "{line}");
        }
    }
}
