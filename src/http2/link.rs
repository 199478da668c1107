//! How an HTTP/2 shard reaches the gateway: the settings every connection
//! of the run shares, and the one request template they all fill in.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::uri::{Authority, Scheme, Uri};
use http::{HeaderMap, Method, Request};

use super::jwt::{ProviderToken, Token};
use super::request::{APNS_ID, Headers, LineHeaders, apns_id_value, path};
use crate::session::Policy;
use crate::token::DeviceToken;

/// What every HTTP/2 shard of a run shares.
#[derive(Debug, Clone)]
pub(crate) struct H2Link {
    /// `host:port` of the gateway.
    pub(crate) gateway: String,
    /// The name the server certificate must carry.
    pub(crate) domain: String,
    /// TLS with ALPN `h2`, and the provider certificate when there is one.
    pub(crate) connector: tokio_native_tls::TlsConnector,
    /// The `:authority` of every request.
    pub(crate) authority: Authority,
    /// The headers every request carries.
    pub(crate) headers: Arc<Headers>,
    /// The shared provider token, with token authentication.
    pub(crate) token: Option<Arc<ProviderToken>>,
    /// The payload of items that carry none of their own.
    pub(crate) payload: Bytes,
    /// Streams in flight per connection at most (the gateway's limit may be lower).
    pub(crate) streams: usize,
    /// TCP connect, TLS and HTTP/2 handshakes, each.
    pub(crate) connect_timeout: Duration,
    /// How long streams may stay open without any answer before the
    /// connection is taken for dead.
    pub(crate) response_timeout: Duration,
    /// When to connect again, pause or give up.
    pub(crate) policy: Policy,
    /// Sends of one notification at most.
    pub(crate) max_tries: u32,
    /// First pause before a notification is sent again after 429/500/503.
    pub(crate) retry_min: Duration,
    /// Longest such pause.
    pub(crate) retry_max: Duration,
}

/// How often a connection asks the shared provider token whether its slot
/// has passed; a renewal shows at once (its generation).
const TOKEN_CHECK: Duration = Duration::from_secs(1);

/// Bytes a connection's request scratch takes at a time: the path and
/// `apns-id` of some 600 requests, one allocation.
const SCRATCH: usize = 64 * 1024;

/// The `authorization` header of the current provider token, rebuilt only
/// when the token changes.
#[derive(Debug, Clone)]
pub(super) struct Authorization {
    token: Token,
    value: HeaderValue,
    /// When the shared token was last asked for its current one.
    checked: Instant,
}

impl Authorization {
    /// The header for `token`.
    pub(super) fn new(token: Token) -> Authorization {
        // A JWT is base64url and dots: always a valid header value.
        let value = HeaderValue::from_maybe_shared(Bytes::copy_from_slice(token.authorization()))
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        Authorization { token, value, checked: Instant::now() }
    }

    /// The token it carries.
    pub(super) fn token(&self) -> &Token {
        &self.token
    }
}

impl H2Link {
    /// The current `authorization` header, refreshed from the shared token
    /// when that has moved on (a new 30-minute slot, or a renewal).
    ///
    /// Called before every send, so the common case is one atomic load and
    /// a clock read: the shared token's lock is taken when it was replaced,
    /// and otherwise at most every [`TOKEN_CHECK`].
    pub(super) fn authorization(&self, held: &mut Option<Authorization>) {
        let Some(shared) = &self.token else { return };
        if let Some(a) = held.as_ref()
            && a.token.generation() == shared.generation()
            && a.checked.elapsed() < TOKEN_CHECK
        {
            return;
        }
        let current = shared.current();
        match held {
            Some(a) if a.token.generation() == current.generation() => a.checked = Instant::now(),
            _ => *held = Some(Authorization::new(current)),
        }
    }

    /// The request for one notification: the run's headers, with the line's
    /// `own` over them if it set any. Its path and `apns-id` are written
    /// into `scratch` and shared from there, so a request allocates no
    /// string of its own.
    pub(super) fn request(
        &self,
        token: &DeviceToken,
        own: Option<&LineHeaders>,
        apns_id: u128,
        auth: Option<&Authorization>,
        scratch: &mut BytesMut,
    ) -> Request<()> {
        if scratch.capacity() < 128 {
            scratch.reserve(SCRATCH);
        }
        path(token, scratch);
        let path = scratch.split().freeze();
        let mut id = [0u8; 36];
        scratch.extend_from_slice(apns_id_value(apns_id, &mut id).as_bytes());
        let id = scratch.split().freeze();
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(Scheme::HTTPS);
        parts.authority = Some(self.authority.clone());
        parts.path_and_query = http::uri::PathAndQuery::from_maybe_shared(path).ok();
        let mut request = Request::new(());
        *request.method_mut() = Method::POST;
        *request.uri_mut() = Uri::from_parts(parts).unwrap_or_default();
        let headers: &mut HeaderMap = request.headers_mut();
        self.headers.apply(headers);
        if let Some(own) = own {
            own.apply(headers, &self.headers);
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Ok(value) = HeaderValue::from_maybe_shared(id) {
            headers.insert(APNS_ID, value);
        }
        if let Some(auth) = auth {
            headers.insert(AUTHORIZATION, auth.value.clone());
        }
        request
    }
}
