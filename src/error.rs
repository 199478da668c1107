//! The errors that stop a run before it starts.
//!
//! Once tokens are flowing nothing is an error: every token ends in the
//! report, and per-shard trouble is recorded there.

use crate::tls::TlsError;

/// Why a run could not happen.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The certificate, key or a trust root is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The gateway cannot be reached or will not talk to us.
    #[error("gateway {gateway}: {reason}")]
    Gateway {
        /// `host:port`.
        gateway: String,
        /// What went wrong.
        reason: String,
    },
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Config(String),
}
