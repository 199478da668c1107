//! What a run over HTTP/2 needs beyond the settings both transports share.

use std::sync::Arc;

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
        }
    }
}
