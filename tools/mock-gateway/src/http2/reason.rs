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
    IdleTimeout,
    BadCertificate,
    BadCertificateEnvironment,
    Forbidden,
    UnrelatedKeyIdInToken,
    ExpiredProviderToken,
    InvalidProviderToken,
    MissingProviderToken,
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
}

/// Every reason, for [`Reason::parse`].
/// The mock's own `BadPayload` comes last, out of the list an error shows.
const ALL: [Reason; 32] = {
    use Reason::*;
    [
        BadCollapseId,
        BadDeviceToken,
        BadExpirationDate,
        BadMessageId,
        BadPriority,
        BadTopic,
        DeviceTokenNotForTopic,
        DuplicateHeaders,
        InvalidPushType,
        MissingDeviceToken,
        MissingTopic,
        PayloadEmpty,
        TopicDisallowed,
        IdleTimeout,
        BadCertificate,
        BadCertificateEnvironment,
        Forbidden,
        UnrelatedKeyIdInToken,
        ExpiredProviderToken,
        InvalidProviderToken,
        MissingProviderToken,
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
        BadPayload,
    ]
};

impl Reason {
    /// The reason Apple spells `name`.
    ///
    /// # Errors
    /// A name that is none of Apple's reasons (nor the mock's `BadPayload`),
    /// with the list of those it knows.
    pub(crate) fn parse(name: &str) -> Result<Reason, String> {
        ALL.iter().copied().find(|r| r.as_str() == name).ok_or_else(|| {
            let known: Vec<&str> = ALL[..ALL.len() - 1].iter().map(|r| r.as_str()).collect();
            format!("{name:?} is not one of Apple's reasons ({})", known.join(", "))
        })
    }

    /// The HTTP status Apple answers it with.
    pub(crate) fn status(self) -> u16 {
        use Reason::*;
        match self {
            BadCertificate
            | BadCertificateEnvironment
            | Forbidden
            | UnrelatedKeyIdInToken
            | ExpiredProviderToken
            | InvalidProviderToken
            | MissingProviderToken => 403,
            BadPath => 404,
            MethodNotAllowed => 405,
            ExpiredToken | Unregistered => 410,
            PayloadTooLarge => 413,
            TooManyProviderTokenUpdates | TooManyRequests => 429,
            InternalServerError => 500,
            ServiceUnavailable | Shutdown => 503,
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
            IdleTimeout => "IdleTimeout",
            BadCertificate => "BadCertificate",
            BadCertificateEnvironment => "BadCertificateEnvironment",
            Forbidden => "Forbidden",
            UnrelatedKeyIdInToken => "UnrelatedKeyIdInToken",
            ExpiredProviderToken => "ExpiredProviderToken",
            InvalidProviderToken => "InvalidProviderToken",
            MissingProviderToken => "MissingProviderToken",
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_parses_back_with_apples_status() {
        for r in ALL {
            assert_eq!(Reason::parse(r.as_str()), Ok(r));
        }
        assert_eq!(Reason::parse("BadTopic").map(Reason::status), Ok(400));
        assert_eq!(Reason::parse("BadCertificateEnvironment").map(Reason::status), Ok(403));
        assert_eq!(Reason::parse("Shutdown").map(Reason::status), Ok(503));
        let e = Reason::parse("badtopic").unwrap_err();
        assert!(e.contains("\"badtopic\" is not one of Apple's reasons") && e.contains("BadTopic"), "{e}");
    }
}
