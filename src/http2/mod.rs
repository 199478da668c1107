//! Apple's HTTP/2 provider API.
//!
//! | module | what it holds |
//! |---|---|
//! | [`key`] | the `.p8` auth key |
//! | [`jwt`] | the provider token (ES256 JWT) every connection shares |
//! | [`push_type`] | `apns-push-type` and Apple's rules for each type: topic suffix, priority, payload, authentication |
//! | [`request`] | the run's shared headers, the path and `apns-id` of each request |
//! | [`answer`] | Apple's statuses and reasons, and what each means for a notification |
//! | [`goaway`] | the reason in a GOAWAY's debug data |
//! | [`stop`] | the answers about the run, not the token, that stop it, and their fixes |
//! | [`state`] | the sans-I/O state of one connection thread: what to send, what an answer settles |
//! | [`config`] | the transport's settings ([`config::Http2Config`]) |
//! | `link` | what every connection of a run shares, and the request it fills in per notification |
//! | `connect` | TCP, TLS with ALPN `h2`, and the HTTP/2 handshake ([`open`]) |
//! | `conn` | the I/O driver of one shard: a current-thread tokio runtime around [`state::H2State`] |
//! | `probe` | the gateway check before any token is read |

pub mod answer;
pub mod config;
pub(crate) mod conn;
mod connect;
pub mod goaway;
pub mod jwt;
pub mod key;
pub(crate) mod link;
pub(crate) mod probe;
pub mod push_type;
pub mod request;
pub mod state;
pub mod stop;

pub use connect::{Halves, open};
