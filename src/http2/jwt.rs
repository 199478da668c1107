//! Token (JWT) authentication: the ES256 provider token signed with the
//! `.p8` key ([`AuthKey`]), and the one token per key that every connection
//! shares.
//!
//! Apple's "Establishing a token-based connection to APNs"
//! (<https://developer.apple.com/documentation/usernotifications/establishing-a-token-based-connection-to-apns>):
//! every request carries `authorization: bearer <JWT>`, a JWS (RFC 7515) with
//! the header `{"alg":"ES256","kid":"<key id>"}` and the claims
//! `{"iss":"<team id>","iat":<UNIX seconds>}`, signed with the P-256 key of the
//! `.p8` file. The provider refreshes it no more than once every 20 minutes
//! (more often: 429 `TooManyProviderTokenUpdates`) and no less than once an
//! hour (older: 403 `ExpiredProviderToken`). Apple counts the tokens of one
//! key together, whichever process or connection sends them, so a run makes
//! **one token per key**, shared by every connection: [`ProviderToken`].
//!
//! # The 30-minute slot
//!
//! A token's `iat` is the start of the current 30-minute slot of UNIX time
//! (`now - now % 1800`), and ECDSA signatures here are deterministic
//! (RFC 6979). So every process signing with the same key and ids in the same
//! slot makes byte for byte the same token, and Apple sees one token per
//! slot however many pods send. The token is renewed when the slot changes:
//! at an age of 30 minutes, inside Apple's 20 to 60.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, TryLockError};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::Signature;
use p256::ecdsa::signature::Signer as _;

pub use super::key::{AuthKey, AuthKeyError};

/// The length of a token's slot: the age at which it is renewed, in seconds.
pub const TOKEN_SLOT_SECS: u64 = 30 * 60;
/// Apple's shortest interval between two tokens of a key, in seconds. A
/// token younger than this that Apple calls expired means a wrong clock.
pub const TOKEN_MIN_AGE_SECS: u64 = 20 * 60;
/// Apple's longest life of a token, in seconds.
pub const TOKEN_MAX_AGE_SECS: u64 = 60 * 60;

/// Why a key id, team id or ready-made token is refused.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a key id: every request would fail with `InvalidProviderToken`.
    #[error(
        "key id {0:?} is not an APNs key id: 10 characters, A-Z and 0-9 (the key's page in the developer account, or the XXXXXXXXXX of AuthKey_XXXXXXXXXX.p8)"
    )]
    KeyId(String),
    /// Not a team id: every request would fail with `InvalidProviderToken`.
    #[error(
        "team id {0:?} is not an Apple team id: 10 characters, A-Z and 0-9 (Membership details in the developer account)"
    )]
    TeamId(String),
    /// A ready-made token that is not an APNs provider token.
    #[error("the provider token given is not an ES256 JWT with kid, iss and iat: {0}")]
    Malformed(&'static str),
    /// A ready-made token older than Apple's hour: every request would fail.
    #[error("the provider token given was made {age_secs} s ago: APNs takes none older than {TOKEN_MAX_AGE_SECS} s")]
    Expired {
        /// Its age by this machine's clock.
        age_secs: u64,
    },
}

/// Why [`ProviderToken::renew_after_expired`] made no new token: the caller
/// should stop, since every request will fail the same way.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RenewError {
    /// APNs called a token expired that this machine made less than 20
    /// minutes ago: one of the two clocks is wrong (Apple's rarely is).
    #[error(
        "APNs says the provider token is expired, but it was made {age_secs} s ago by this machine's clock (a token lives {TOKEN_MAX_AGE_SECS} s, and may be renewed after {TOKEN_MIN_AGE_SECS} s): check the clock"
    )]
    ClockWrong {
        /// The token's age by this machine's clock.
        age_secs: u64,
    },
    /// The token was given ready-made ([`ProviderToken::fixed`]).
    #[error(
        "APNs says the provider token is expired, and a token given ready-made cannot be renewed here: sign a new one"
    )]
    Fixed,
}

/// One provider token: cheap to clone, and ready to go into a request.
/// Tokens are equal when their texts are (two processes signing with one
/// key in one slot make equal tokens).
#[derive(Clone)]
pub struct Token {
    /// `bearer <JWT>`, the whole `authorization` header value.
    value: Arc<str>,
    iat: u64,
    generation: u64,
}

impl PartialEq for Token {
    fn eq(&self, other: &Token) -> bool {
        Arc::ptr_eq(&self.value, &other.value) || (self.iat == other.iat && self.value == other.value)
    }
}

impl Eq for Token {}

/// `"bearer "`: Apple's scheme word, lower case as in its documentation.
const BEARER: &str = "bearer ";

impl Token {
    /// The `authorization` header's value: `bearer <JWT>`.
    pub fn authorization(&self) -> &[u8] {
        self.value.as_bytes()
    }

    /// The JWT alone.
    pub fn jwt(&self) -> &str {
        &self.value[BEARER.len()..]
    }

    /// When it was issued (its `iat` claim), in UNIX seconds.
    pub fn iat(&self) -> u64 {
        self.iat
    }

    /// Which of its [`ProviderToken`]'s tokens this is: 1 for the first,
    /// one more at each signing (see [`ProviderToken::generation`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }
}

/// The `authorization` value, so that a header type that takes any owner of
/// bytes can hold the token without copying it.
impl AsRef<[u8]> for Token {
    fn as_ref(&self) -> &[u8] {
        self.authorization()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A token lets anyone push for an hour: not in logs.
        f.debug_struct("Token").field("iat", &self.iat).finish_non_exhaustive()
    }
}

/// What makes the tokens.
enum Signer {
    /// Signs with the key; `header` is the base64url JWS header.
    Key { key: AuthKey, header: String, key_id: String, team_id: String },
    /// A token made elsewhere, never renewed.
    Fixed,
}

/// The run's provider token: one per key, shared by every connection.
///
/// Share it in an `Arc`. [`current`](Self::current) is a read lock and a
/// reference count; the token is signed again only when its 30-minute slot
/// has passed, by one thread while the others go on sending the old one
/// (still good for half an hour).
/// When APNs answers 403 `ExpiredProviderToken`, every connection that saw it
/// calls [`renew_after_expired`](Self::renew_after_expired) with the token it
/// sent, and only the first renews.
pub struct ProviderToken {
    signer: Signer,
    current: RwLock<Token>,
    /// The current token's generation, for a look without the lock.
    generation: AtomicU64,
    /// One signer at a time; readers never wait for it.
    signing: Mutex<()>,
}

impl fmt::Debug for ProviderToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ProviderToken");
        match &self.signer {
            Signer::Key { key_id, team_id, .. } => d.field("key_id", key_id).field("team_id", team_id),
            Signer::Fixed => d.field("fixed", &true),
        };
        d.field("iat", &self.read().iat).finish_non_exhaustive()
    }
}

/// Seconds since the UNIX epoch by this machine's clock (0 before it).
fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The start of the slot `now` is in.
fn slot(now: u64) -> u64 {
    now - now % TOKEN_SLOT_SECS
}

/// Apple's ids: 10 characters, A-Z and 0-9.
fn is_apple_id(id: &str) -> bool {
    id.len() == 10 && id.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

impl ProviderToken {
    /// Signs tokens with `key` for the key id (`kid`, 10 characters, as in
    /// the file name `AuthKey_<key id>.p8`) and the team id (`iss`).
    ///
    /// # Errors
    /// [`TokenError::KeyId`] or [`TokenError::TeamId`] when an id is not
    /// 10 characters of A-Z and 0-9.
    pub fn new(key: AuthKey, key_id: &str, team_id: &str) -> Result<ProviderToken, TokenError> {
        Self::new_at(key, key_id, team_id, unix_now())
    }

    pub(crate) fn new_at(key: AuthKey, key_id: &str, team_id: &str, now: u64) -> Result<ProviderToken, TokenError> {
        if !is_apple_id(key_id) {
            return Err(TokenError::KeyId(key_id.to_owned()));
        }
        if !is_apple_id(team_id) {
            return Err(TokenError::TeamId(team_id.to_owned()));
        }
        // The ids are plain A-Z0-9, so the JSON needs no escaping.
        let header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"ES256","kid":"{key_id}"}}"#));
        let signer = Signer::Key { key, header, key_id: key_id.to_owned(), team_id: team_id.to_owned() };
        let first = sign(&signer, slot(now), 1).expect("a key signer signs");
        Ok(ProviderToken {
            signer,
            current: RwLock::new(first),
            generation: AtomicU64::new(1),
            signing: Mutex::new(()),
        })
    }

    /// A token signed elsewhere (the JWT, with or without `bearer `), used
    /// as it is and never renewed.
    ///
    /// # Errors
    /// [`TokenError::Malformed`] when it is not an ES256 JWT with `kid`,
    /// `iss` and `iat`; [`TokenError::Expired`] when it is over an hour old.
    pub fn fixed(jwt: String) -> Result<ProviderToken, TokenError> {
        Self::fixed_at(jwt, unix_now())
    }

    pub(crate) fn fixed_at(jwt: String, now: u64) -> Result<ProviderToken, TokenError> {
        let jwt = jwt.trim();
        let jwt = match jwt.get(..BEARER.len()) {
            Some(scheme) if scheme.eq_ignore_ascii_case(BEARER) => jwt[BEARER.len()..].trim_start(),
            _ => jwt,
        };
        let iat = check_jwt(jwt)?;
        let age_secs = now.saturating_sub(iat);
        if age_secs >= TOKEN_MAX_AGE_SECS {
            return Err(TokenError::Expired { age_secs });
        }
        let token = Token { value: format!("{BEARER}{jwt}").into(), iat, generation: 1 };
        Ok(ProviderToken {
            signer: Signer::Fixed,
            current: RwLock::new(token),
            generation: AtomicU64::new(1),
            signing: Mutex::new(()),
        })
    }

    /// The current token's [generation](Token::generation): one atomic
    /// load, so a connection can tell whether the token it holds was
    /// replaced without taking the lock [`current`](Self::current) takes.
    /// It does not sign: a token whose slot has passed is replaced only by
    /// [`current`](Self::current).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The token to send now; signs a new one first when its slot has passed.
    pub fn current(&self) -> Token {
        self.current_at(unix_now())
    }

    pub(crate) fn current_at(&self, now: u64) -> Token {
        let token = self.read();
        if !self.due(&token, now) {
            return token;
        }
        // While another thread signs, the old token serves: it is good for
        // another half hour, and readers never wait.
        let _one_signer = match self.signing.try_lock() {
            Ok(guard) => guard,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return token,
        };
        // Another thread may have renewed it since the read.
        let token = self.read();
        if !self.due(&token, now) {
            return token;
        }
        self.replace(slot(now))
    }

    /// After APNs answered 403 `ExpiredProviderToken` to a request that
    /// carried `seen`: renews the token unless another connection already
    /// has, and returns the token to retry with.
    ///
    /// # Errors
    /// [`RenewError::ClockWrong`] when the token is younger than 20 minutes
    /// by this machine's clock (a new one would be refused the same way, and
    /// signing more often earns 429 `TooManyProviderTokenUpdates`);
    /// [`RenewError::Fixed`] for a [ready-made](Self::fixed) token.
    pub fn renew_after_expired(&self, seen: &Token) -> Result<Token, RenewError> {
        self.renew_after_expired_at(seen, unix_now())
    }

    pub(crate) fn renew_after_expired_at(&self, seen: &Token, now: u64) -> Result<Token, RenewError> {
        let one_signer = self.signing.lock().unwrap_or_else(PoisonError::into_inner);
        let token = self.read();
        if token != *seen {
            // Renewed since `seen` was sent, by a slot or another connection.
            drop(one_signer);
            return Ok(self.current_at(now));
        }
        if matches!(self.signer, Signer::Fixed) {
            return Err(RenewError::Fixed);
        }
        let age_secs = now.saturating_sub(token.iat);
        if age_secs < TOKEN_MIN_AGE_SECS {
            return Err(RenewError::ClockWrong { age_secs });
        }
        // Within its slot the slot's start would sign the same token again:
        // issue it now instead. It is then renewed at the first slot start
        // 20 minutes on (`due`).
        let iat = if slot(now) > token.iat { slot(now) } else { now };
        Ok(self.replace(iat))
    }

    fn read(&self) -> Token {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Whether `token` should be signed again at `now`: a new slot has begun
    /// and Apple's 20 minutes have passed (they always have, unless the token
    /// was renewed mid-slot after `ExpiredProviderToken`).
    fn due(&self, token: &Token, now: u64) -> bool {
        matches!(self.signer, Signer::Key { .. })
            && slot(now) > token.iat
            && now.saturating_sub(token.iat) >= TOKEN_MIN_AGE_SECS
    }

    /// Signs a token issued at `iat` and makes it the current one. The caller
    /// holds `signing`.
    fn replace(&self, iat: u64) -> Token {
        let generation = self.generation.load(Ordering::Relaxed) + 1;
        let token = sign(&self.signer, iat, generation).expect("only a key signer is due");
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = token.clone();
        self.generation.store(generation, Ordering::Release);
        token
    }
}

/// The token issued at `iat`: `bearer header.claims.signature`, the signature
/// being ECDSA P-256 SHA-256 as the 64 bytes R || S (RFC 7518 §3.4), not DER.
fn sign(signer: &Signer, iat: u64, generation: u64) -> Option<Token> {
    let Signer::Key { key, header, team_id, .. } = signer else { return None };
    let claims = format!(r#"{{"iss":"{team_id}","iat":{iat}}}"#);
    // "bearer " + header + "." + claims + "." + 86 signature characters.
    let mut value = String::with_capacity(BEARER.len() + header.len() + 1 + claims.len().div_ceil(3) * 4 + 1 + 86);
    value.push_str(BEARER);
    value.push_str(header);
    value.push('.');
    URL_SAFE_NO_PAD.encode_string(claims, &mut value);
    let signature: Signature = key.signing.sign(&value.as_bytes()[BEARER.len()..]);
    value.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut value);
    Some(Token { value: value.into(), iat, generation })
}

/// Checks a ready-made JWT's shape and returns its `iat`.
fn check_jwt(jwt: &str) -> Result<u64, TokenError> {
    let mut parts = jwt.split('.');
    let (Some(header), Some(claims), Some(signature), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("not three parts separated by dots"));
    };
    let json =
        |part: &str| -> Option<serde_json::Value> { serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok() };
    let header = json(header).ok_or(TokenError::Malformed("the header is not base64url JSON"))?;
    if header["alg"] != "ES256" {
        return Err(TokenError::Malformed("the header's alg is not ES256"));
    }
    match header["kid"].as_str() {
        None => return Err(TokenError::Malformed("the header has no kid")),
        Some(kid) if !is_apple_id(kid) => {
            return Err(TokenError::Malformed("the header's kid is not a key id (10 characters, A-Z and 0-9)"));
        }
        Some(_) => {}
    }
    let claims = json(claims).ok_or(TokenError::Malformed("the claims are not base64url JSON"))?;
    match claims["iss"].as_str() {
        None => return Err(TokenError::Malformed("the claims have no iss")),
        Some(iss) if !is_apple_id(iss) => {
            return Err(TokenError::Malformed("the claims' iss is not a team id (10 characters, A-Z and 0-9)"));
        }
        Some(_) => {}
    }
    let iat = claims["iat"].as_u64().ok_or(TokenError::Malformed("the claims have no iat in UNIX seconds"))?;
    if URL_SAFE_NO_PAD.decode(signature).map(|s| s.len()) != Ok(64) {
        return Err(TokenError::Malformed("the signature is not 64 bytes of base64url"));
    }
    Ok(iat)
}

#[cfg(test)]
#[path = "jwt_test.rs"]
pub(crate) mod jwt_test;
