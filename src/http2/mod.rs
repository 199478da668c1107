//! Apple's HTTP/2 provider API.
//!
//! | module | what it holds |
//! |---|---|
//! | [`key`] | the `.p8` auth key |
//! | [`jwt`] | the provider token (ES256 JWT) every connection shares |
//! | [`request`] | the run's shared headers, the path and `apns-id` of each request |
//! | [`answer`] | Apple's statuses and reasons, and what each means for a notification |
//! | [`state`] | the sans-I/O state of one connection thread: what to send, what an answer settles |

pub mod answer;
pub mod jwt;
pub mod key;
pub mod request;
pub mod state;
