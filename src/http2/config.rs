//! What a run over HTTP/2 needs beyond the settings both transports share.

use std::sync::Arc;
use std::time::Duration;

use super::jwt::ProviderToken;
use super::request::PushType;

/// Settings of the HTTP/2 transport; a [`SendConfig`](crate::run::SendConfig)
/// with `http2: Some(..)` sends over Apple's provider API.
#[derive(Debug, Clone)]
pub struct Http2Config {
    /// Token authentication: the provider token every connection shares.
    /// `None` authenticates with the certificate of the TLS settings.
    pub token: Option<Arc<ProviderToken>>,
    /// `apns-topic`: the bundle id, with the suffix the push type needs
    /// ([`PushType::topic`] adds it). `None` leaves it to the certificate
    /// (one that holds a single topic).
    pub topic: Option<String>,
    /// `apns-push-type`. Location and Live Activity notifications need
    /// `token`.
    pub push_type: PushType,
    /// `apns-priority`: 10 (now), 5 (power-considerate) or 1 (lowest);
    /// [`PushType::default_priority`] is Apple's choice (background: 5,
    /// never 10).
    pub priority: u8,
    /// `apns-collapse-id`, at most 64 bytes.
    pub collapse_id: Option<String>,
    /// Streams in flight per connection at most; the gateway's own limit
    /// applies below it.
    pub streams: usize,
    /// Sends of one notification at most, answers of 429, 500 or 503 and
    /// losses of the connection together.
    pub max_tries: u32,
    /// Stop the run when most of its first answers are BadDeviceToken (the
    /// tokens of the other environment: no invalid tokens are listed) or
    /// DeviceTokenNotForTopic (another app's tokens), settling none of
    /// them; `false` for a list known to be stale or to mix apps.
    pub environment_guard: bool,
    /// How long the whole run pauses after 429 TooManyProviderTokenUpdates:
    /// Apple takes a new token of a key at most once every 20 minutes, and
    /// the update it refused was made at the latest when it answered.
    pub token_update_pause: Duration,
    /// The run-wide brake on a failing service.
    pub brake: Brake,
}

/// When many answers in a row are 500 or 503, across every shard, the whole
/// run pauses instead of each notification retrying on its own and using up
/// its tries; while the failures go on, each pause doubles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Brake {
    /// 500/503 answers in a row that engage it.
    pub after: u64,
    /// The first pause.
    pub min: Duration,
    /// The longest pause.
    pub max: Duration,
    /// The run stops (everything not sent left unsent, for a later run)
    /// once it has paused this long without an answer other than 500/503.
    pub give_up: Duration,
}

impl Default for Brake {
    /// Engaged by 50 failures in a row; pauses from 1 s to 60 s; gives up after 10 minutes.
    fn default() -> Brake {
        Brake {
            after: 50,
            min: Duration::from_secs(1),
            max: Duration::from_secs(60),
            give_up: Duration::from_secs(600),
        }
    }
}

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config {
            token: None,
            topic: None,
            push_type: PushType::Alert,
            priority: 10,
            collapse_id: None,
            streams: 1000,
            max_tries: 5,
            environment_guard: true,
            token_update_pause: Duration::from_secs(super::jwt::TOKEN_MIN_AGE_SECS),
            brake: Brake::default(),
        }
    }
}
