//! `apns-push-type` and what Apple ties to each type: the topic's suffix,
//! the priorities it takes, the largest payload and the authentication.
//!
//! From Apple's "Sending notification requests to APNs", part "Know when to
//! use push types"
//! (<https://developer.apple.com/documentation/usernotifications/sending-notification-requests-to-apns>):
//!
//! | type | `apns-topic` | rule |
//! |---|---|---|
//! | alert | the bundle id | |
//! | background | the bundle id | "Always use priority 5. Using priority 10 is an error." |
//! | location | bundle id + `.location-query` | "supports only token-based authentication" |
//! | voip | bundle id + `.voip` | payload up to 5120 bytes (4096 for the others) |
//! | complication | bundle id + `.complication` | |
//! | fileprovider | bundle id + `.pushkit.fileprovider` | |
//! | mdm | the `UID` of the MDM push certificate | |
//! | liveactivity | bundle id + `.push-type.liveactivity` | token-based connection only (WWDC23 "Update Live Activities with push notifications") |
//! | pushtotalk | bundle id + `.voip-ptt` | |
//!
//! Without `apns-priority` APNs takes 10, so 10 is every type's default but
//! background's, which is 5.

/// `apns-push-type`: what the notification does on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // Apple's names; `as_str` gives the header's spelling.
pub enum PushType {
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

/// The largest payload Apple takes, in bytes.
pub const MAX_PAYLOAD: usize = 4096;
/// The largest VoIP payload Apple takes, in bytes.
pub const MAX_PAYLOAD_VOIP: usize = 5120;

impl PushType {
    /// Every push type, in Apple's order of the header's values.
    pub const ALL: [PushType; 9] = [
        PushType::Alert,
        PushType::Background,
        PushType::Voip,
        PushType::Complication,
        PushType::FileProvider,
        PushType::Mdm,
        PushType::LiveActivity,
        PushType::Location,
        PushType::PushToTalk,
    ];

    /// Its place in [`PushType::ALL`].
    pub fn index(self) -> usize {
        // Declared in the order of `ALL` (a test checks it).
        self as usize
    }

    /// The value of `apns-push-type`.
    pub fn as_str(self) -> &'static str {
        match self {
            PushType::Alert => "alert",
            PushType::Background => "background",
            PushType::Voip => "voip",
            PushType::Complication => "complication",
            PushType::FileProvider => "fileprovider",
            PushType::Mdm => "mdm",
            PushType::LiveActivity => "liveactivity",
            PushType::Location => "location",
            PushType::PushToTalk => "pushtotalk",
        }
    }

    /// The largest payload Apple takes for this type, in bytes.
    pub fn payload_limit(self) -> usize {
        match self {
            PushType::Voip => MAX_PAYLOAD_VOIP,
            _ => MAX_PAYLOAD,
        }
    }

    /// What `apns-topic` adds to the bundle id for this type ("" for alert,
    /// background and mdm).
    pub fn topic_suffix(self) -> &'static str {
        match self {
            PushType::Voip => ".voip",
            PushType::Complication => ".complication",
            PushType::FileProvider => ".pushkit.fileprovider",
            PushType::Location => ".location-query",
            PushType::PushToTalk => ".voip-ptt",
            PushType::LiveActivity => ".push-type.liveactivity",
            PushType::Alert | PushType::Background | PushType::Mdm => "",
        }
    }

    /// The `apns-topic` for `bundle_id`: the bundle id with this type's
    /// suffix, unless it already ends with it (a topic given in full, or a
    /// VoIP certificate's).
    pub fn topic(self, bundle_id: &str) -> String {
        let suffix = self.topic_suffix();
        if bundle_id.ends_with(suffix) { bundle_id.to_owned() } else { format!("{bundle_id}{suffix}") }
    }

    /// The priority sent when none is asked for: 5 for background (10 is an
    /// error), 10 (APNs's own default) for the others.
    pub fn default_priority(self) -> u8 {
        match self {
            PushType::Background => 5,
            _ => 10,
        }
    }

    /// Whether APNs takes this type at `priority` (one of 10, 5 and 1):
    /// background never at 10.
    pub fn takes_priority(self, priority: u8) -> bool {
        !(self == PushType::Background && priority == 10)
    }

    /// Whether APNs takes this type only with token authentication (a
    /// provider certificate cannot carry its topic).
    pub fn token_auth_only(self) -> bool {
        matches!(self, PushType::LiveActivity | PushType::Location)
    }

    /// Whether APNs takes this type only over a provider certificate: MDM
    /// notifications go with the MDM push certificate, whose topic names it.
    pub fn certificate_only(self) -> bool {
        self == PushType::Mdm
    }
}

impl std::fmt::Display for PushType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use PushType::*;

    #[test]
    fn names_and_payload_limits() {
        let names: Vec<&str> = PushType::ALL.iter().map(|t| t.as_str()).collect();
        let want = [
            "alert",
            "background",
            "voip",
            "complication",
            "fileprovider",
            "mdm",
            "liveactivity",
            "location",
            "pushtotalk",
        ];
        assert_eq!(names, want);
        for t in PushType::ALL {
            assert_eq!(t.payload_limit(), if t == Voip { 5120 } else { 4096 }, "{t}");
        }
    }

    #[test]
    fn the_topic_gets_the_suffix_its_type_needs_once() {
        let want = [
            (Alert, "com.example.app"),
            (Background, "com.example.app"),
            (Voip, "com.example.app.voip"),
            (Complication, "com.example.app.complication"),
            (FileProvider, "com.example.app.pushkit.fileprovider"),
            (Mdm, "com.example.app"),
            (LiveActivity, "com.example.app.push-type.liveactivity"),
            (Location, "com.example.app.location-query"),
            (PushToTalk, "com.example.app.voip-ptt"),
        ];
        for (t, topic) in want {
            assert_eq!(t.topic("com.example.app"), topic, "{t}");
            assert_eq!(t.topic(topic), topic, "{t}: a topic given in full is kept");
        }
        // Another type's suffix is not this one's.
        assert_eq!(PushToTalk.topic("com.example.app.voip"), "com.example.app.voip.voip-ptt");
        assert_eq!(Voip.topic("com.example.app.voip-ptt"), "com.example.app.voip-ptt.voip");
    }

    #[test]
    fn background_goes_at_5_and_never_at_10() {
        for t in PushType::ALL {
            let default = t.default_priority();
            assert_eq!(default, if t == Background { 5 } else { 10 }, "{t}");
            assert!(t.takes_priority(default), "{t}");
            assert!(t.takes_priority(5) && t.takes_priority(1), "{t}");
            assert_eq!(t.takes_priority(10), t != Background, "{t}");
        }
    }

    #[test]
    fn liveactivity_and_location_need_token_authentication() {
        let token_only: Vec<PushType> = PushType::ALL.into_iter().filter(|t| t.token_auth_only()).collect();
        assert_eq!(token_only, [LiveActivity, Location]);
        let certificate_only: Vec<PushType> = PushType::ALL.into_iter().filter(|t| t.certificate_only()).collect();
        assert_eq!(certificate_only, [Mdm]);
    }
}
