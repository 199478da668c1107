//! The errors that stop a run before it starts.
//!
//! Once tokens are flowing nothing is an error: every token ends in the
//! report, and per-shard trouble is recorded there.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use crate::tls::TlsError;

/// Why a run could not happen.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The certificate, key or a trust root is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The gateway cannot be reached or will not talk to us.
    #[error("gateway {gateway}: {cause}")]
    Gateway {
        /// `host:port`.
        gateway: String,
        /// What went wrong.
        cause: GatewayError,
    },
    /// A setting is out of range.
    #[error("invalid setting: {0}")]
    Config(String),
}

/// The usual reason a gateway takes the TLS handshake and then refuses
/// to talk: the certificate is for the other environment.
pub const ENVIRONMENT_HINT: &str = "a sandbox certificate on the production gateway, or the reverse?";

/// Why a connection to a gateway (or the feedback service) failed.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The name did not resolve.
    #[error("cannot resolve the name: {0}")]
    Unresolved(#[source] io::Error),
    /// The name resolved to no address.
    #[error("the name resolves to no address")]
    NoAddress,
    /// The TCP connect failed.
    #[error("cannot connect to {addr}: {source}")]
    Unreachable {
        /// The address tried last.
        addr: SocketAddr,
        /// The system's error.
        source: io::Error,
    },
    /// The TCP connect or the TLS handshake took longer than allowed.
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// The server's certificate is not trusted: retrying will not help.
    #[error("TLS handshake failed: {0}")]
    Untrusted(String),
    /// The TLS handshake failed for another reason.
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    /// The server ended the connection right after the TLS handshake
    /// without answering: it does not accept the client certificate. (Under
    /// TLS 1.3 a refused client certificate only shows after the handshake.)
    #[error(
        "the server closed the connection right after the TLS handshake without answering: \
         it does not accept this certificate ({hint}){}",
        .detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default(),
        hint = ENVIRONMENT_HINT
    )]
    Refused {
        /// What the socket said, if anything.
        detail: Option<String>,
    },
    /// The server did not answer in time.
    #[error("did not answer within {0:?}")]
    NoAnswer(Duration),
    /// The server answered with something that is not the protocol.
    #[error("does not speak the APNs binary protocol: {0}")]
    NotApns(String),
    /// The server took the TLS handshake but did not agree to speak HTTP/2
    /// (no ALPN `h2`): it is not Apple's provider API.
    #[error("does not speak HTTP/2 (the TLS handshake did not agree on ALPN h2)")]
    NoHttp2,
    /// The HTTP/2 gateway refused the credentials: 403 with Apple's reason.
    #[error("refused the credentials: 403 {reason}{}", hint_403(reason))]
    Forbidden {
        /// Apple's reason (`InvalidProviderToken`, `BadCertificateEnvironment`, ...).
        reason: String,
    },
    /// The HTTP/2 gateway answered the test request unexpectedly.
    #[error("answered the test request with {status} {reason}")]
    Unexpected {
        /// The HTTP status.
        status: u16,
        /// Apple's reason, if any.
        reason: String,
    },
    /// The service's data ended in a way its protocol does not allow.
    #[error("{0}")]
    Protocol(String),
    /// Reading or polling the socket failed.
    #[error("{what} failed: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The system's error.
        source: io::Error,
    },
}

/// What fixes a 403 from Apple's provider API, after its reason.
fn hint_403(reason: &str) -> &'static str {
    match reason {
        "InvalidProviderToken" => {
            " (check --key-id and --team-id against the .p8 key, or the kid and iss of the --auth-token-env token)"
        }
        "MissingProviderToken" => " (give a certificate, or a .p8 key with --auth-key)",
        "BadCertificateEnvironment" => " (a sandbox certificate on the production gateway, or the reverse?)",
        "ExpiredProviderToken" => " (is this machine's clock right? A token from --auth-token-env lives an hour)",
        _ => "",
    }
}

impl GatewayError {
    /// Whether the certificates are the trouble: the server's is not
    /// trusted, or the server refuses ours.
    pub fn is_certificate(&self) -> bool {
        matches!(self, GatewayError::Untrusted(_) | GatewayError::Refused { .. })
    }

    /// Whether another attempt cannot help.
    pub fn is_permanent(&self) -> bool {
        matches!(self, GatewayError::Untrusted(_) | GatewayError::NoHttp2 | GatewayError::Forbidden { .. })
    }

    /// Classifies a failed TLS handshake by OpenSSL's words.
    pub(crate) fn handshake(text: String) -> GatewayError {
        if text.contains("certificate verify failed") || text.contains("unknown ca") {
            GatewayError::Untrusted(text)
        } else {
            GatewayError::Handshake(text)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_certificate_names_the_environment_mix_up_once() {
        let text = GatewayError::Refused { detail: Some("connection reset".into()) }.to_string();
        assert!(text.contains("does not accept this certificate"), "{text}");
        assert_eq!(text.matches(ENVIRONMENT_HINT).count(), 1, "{text}");
        assert!(text.ends_with("(connection reset)"), "{text}");
    }

    #[test]
    fn an_untrusted_server_is_a_permanent_certificate_error() {
        let e = GatewayError::handshake("error:0A000086:SSL routines::certificate verify failed".into());
        assert!(matches!(e, GatewayError::Untrusted(_)));
        assert!(e.is_certificate() && e.is_permanent());
        let e = GatewayError::handshake("unexpected eof while reading".into());
        assert!(matches!(e, GatewayError::Handshake(_)));
        assert!(!e.is_certificate() && !e.is_permanent());
    }
}
