//! Token authentication as Apple checks it: `authorization: bearer <JWT>`,
//! ES256 over the mock's own `.p8` key, `kid` and `iss` as issued, and the
//! token's age.
//!
//! The signature is checked once per distinct token string (a sender is meant
//! to use one token for 20 to 60 minutes on every connection), and the
//! verdict cached: a request then costs a string comparison on its
//! connection, or one map lookup for the first request of a connection.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::DecodePrivateKey;
use serde::Deserialize;

use super::reason::Reason;
use crate::pki::Pki;
use crate::shared::lock;

/// Apple: a token older than this is expired.
const MAX_AGE_SECS: i64 = 60 * 60;
/// Apple: refreshing more often than this is "too many updates".
const MIN_REFRESH_SECS: i64 = 20 * 60;
/// A token issued this far in the future (by the mock's clock) is refused.
const FUTURE_SLACK_SECS: i64 = 60;
/// Forget every cached verdict beyond this many distinct tokens (a sender
/// making a token per request must not grow the mock without bound).
const CACHE_LIMIT: usize = 100_000;

/// The gateway's verifier: the public key and the cache of verdicts.
pub(crate) struct Auth {
    key: VerifyingKey,
    key_id: String,
    team_id: String,
    clock_offset_secs: i64,
    limit_updates: bool,
    /// Token string → its `iat` when header, claims and signature are good.
    verdicts: Mutex<HashMap<String, Result<i64, Reason>>>,
}

/// One connection's token: the last accepted string and its `iat`.
#[derive(Debug, Default)]
pub(crate) struct ConnToken {
    current: Option<(String, i64)>,
}

/// What checking a request's token found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checked {
    /// A valid token the gateway had never seen (for `provider_tokens`).
    pub new_valid: bool,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Claims {
    iss: Option<String>,
    iat: Option<i64>,
}

impl Auth {
    /// A verifier for the PKI's `.p8` key.
    ///
    /// # Errors
    /// The key file does not hold a P-256 PKCS#8 key.
    pub(crate) fn new(pki: &Pki, clock_offset_secs: i64, limit_updates: bool) -> Result<Auth, String> {
        let pem = std::str::from_utf8(pki.auth_key_pem()).map_err(|e| e.to_string())?;
        let key = SigningKey::from_pkcs8_pem(pem).map_err(|e| format!("{}: {e}", pki.auth_key_path().display()))?;
        Ok(Auth {
            key: *key.verifying_key(),
            key_id: pki.key_id().to_string(),
            team_id: pki.team_id().to_string(),
            clock_offset_secs,
            limit_updates,
            verdicts: Mutex::new(HashMap::new()),
        })
    }

    /// Check `authorization` for one request on the connection whose token is `conn`.
    ///
    /// # Errors
    /// 403 InvalidProviderToken (malformed, wrong alg, kid, iss or signature,
    /// issued in the future), 403 ExpiredProviderToken (older than an hour),
    /// 429 TooManyProviderTokenUpdates (a new token less than 20 minutes after
    /// the connection's last one, when limited).
    pub(crate) fn check(&self, conn: &mut ConnToken, authorization: &[u8]) -> Result<Checked, Reason> {
        let jwt = bearer(authorization).ok_or(Reason::InvalidProviderToken)?;
        let mut new_valid = false;
        let iat = match &conn.current {
            Some((t, iat)) if t == jwt => *iat,
            _ => {
                let (verdict, fresh) = self.verdict(jwt);
                let iat = verdict?;
                new_valid = fresh;
                if let Some((_, old)) = &conn.current
                    && self.limit_updates
                    && iat - old < MIN_REFRESH_SECS
                {
                    return Err(Reason::TooManyProviderTokenUpdates);
                }
                conn.current = Some((jwt.to_string(), iat));
                iat
            }
        };
        let now = now_secs() + self.clock_offset_secs;
        if iat > now + FUTURE_SLACK_SECS {
            Err(Reason::InvalidProviderToken)
        } else if now - iat > MAX_AGE_SECS {
            Err(Reason::ExpiredProviderToken)
        } else {
            Ok(Checked { new_valid })
        }
    }

    /// The cached verdict for `jwt`, computing it on first sight. The flag is
    /// true when this call found a new valid token.
    fn verdict(&self, jwt: &str) -> (Result<i64, Reason>, bool) {
        if let Some(v) = lock(&self.verdicts).get(jwt) {
            return (*v, false);
        }
        // Verify outside the lock: other connections go on meanwhile.
        let v = self.verify(jwt);
        let mut map = lock(&self.verdicts);
        if map.len() >= CACHE_LIMIT {
            map.clear();
        }
        let fresh = map.insert(jwt.to_string(), v).is_none() && v.is_ok();
        (v, fresh)
    }

    /// Header, claims and signature (not the age), without the cache.
    fn verify(&self, jwt: &str) -> Result<i64, Reason> {
        let bad = Reason::InvalidProviderToken;
        let mut parts = jwt.split('.');
        let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(bad);
        };
        let decode = |p: &str| URL_SAFE_NO_PAD.decode(p).map_err(|_| bad);
        let header: Header = serde_json::from_slice(&decode(h)?).map_err(|_| bad)?;
        let claims: Claims = serde_json::from_slice(&decode(c)?).map_err(|_| bad)?;
        if header.alg != "ES256" || header.kid.as_deref() != Some(&self.key_id) {
            return Err(bad);
        }
        if claims.iss.as_deref() != Some(&self.team_id) {
            return Err(bad);
        }
        let iat = claims.iat.ok_or(bad)?;
        let sig = Signature::from_slice(&decode(s)?).map_err(|_| bad)?;
        let signed = &jwt[..h.len() + 1 + c.len()];
        self.key.verify(signed.as_bytes(), &sig).map_err(|_| bad)?;
        Ok(iat)
    }
}

/// The token of `bearer <jwt>` (scheme case-insensitive).
fn bearer(v: &[u8]) -> Option<&str> {
    let v = std::str::from_utf8(v).ok()?;
    let (scheme, token) = v.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// UNIX time in seconds.
pub(crate) fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
#[path = "auth_test.rs"]
mod tests;
