//! The answers Apple's provider API gives, with their status codes.

/// Why a request is not accepted: Apple's `reason` strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    BadCollapseId,
    BadDeviceToken,
    BadExpirationDate,
    BadMessageId,
    /// The body is not a JSON object. Apple documents no reason for this;
    /// the mock's own name, answered with 400 like Apple's payload errors.
    BadPayload,
    BadPriority,
    BadTopic,
    DeviceTokenNotForTopic,
    DuplicateHeaders,
    InvalidPushType,
    MissingDeviceToken,
    MissingTopic,
    PayloadEmpty,
    TopicDisallowed,
    ExpiredProviderToken,
    InvalidProviderToken,
    MissingProviderToken,
    BadPath,
    MethodNotAllowed,
    Unregistered,
    PayloadTooLarge,
    TooManyProviderTokenUpdates,
    TooManyRequests,
    InternalServerError,
    ServiceUnavailable,
}

impl Reason {
    /// The HTTP status Apple answers it with.
    pub(crate) fn status(self) -> u16 {
        use Reason::*;
        match self {
            ExpiredProviderToken | InvalidProviderToken | MissingProviderToken => 403,
            BadPath => 404,
            MethodNotAllowed => 405,
            Unregistered => 410,
            PayloadTooLarge => 413,
            TooManyProviderTokenUpdates | TooManyRequests => 429,
            InternalServerError => 500,
            ServiceUnavailable => 503,
            _ => 400,
        }
    }

    /// The `reason` string of the JSON body.
    pub(crate) fn as_str(self) -> &'static str {
        use Reason::*;
        match self {
            BadCollapseId => "BadCollapseId",
            BadDeviceToken => "BadDeviceToken",
            BadExpirationDate => "BadExpirationDate",
            BadMessageId => "BadMessageId",
            BadPayload => "BadPayload",
            BadPriority => "BadPriority",
            BadTopic => "BadTopic",
            DeviceTokenNotForTopic => "DeviceTokenNotForTopic",
            DuplicateHeaders => "DuplicateHeaders",
            InvalidPushType => "InvalidPushType",
            MissingDeviceToken => "MissingDeviceToken",
            MissingTopic => "MissingTopic",
            PayloadEmpty => "PayloadEmpty",
            TopicDisallowed => "TopicDisallowed",
            ExpiredProviderToken => "ExpiredProviderToken",
            InvalidProviderToken => "InvalidProviderToken",
            MissingProviderToken => "MissingProviderToken",
            BadPath => "BadPath",
            MethodNotAllowed => "MethodNotAllowed",
            Unregistered => "Unregistered",
            PayloadTooLarge => "PayloadTooLarge",
            TooManyProviderTokenUpdates => "TooManyProviderTokenUpdates",
            TooManyRequests => "TooManyRequests",
            InternalServerError => "InternalServerError",
            ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// The JSON body: `{"reason":"…"}`, with `"timestamp"` (ms) for 410.
    pub(crate) fn body(self, now_ms: u64) -> String {
        if self == Reason::Unregistered {
            format!(r#"{{"reason":"{}","timestamp":{now_ms}}}"#, self.as_str())
        } else {
            format!(r#"{{"reason":"{}"}}"#, self.as_str())
        }
    }
}
