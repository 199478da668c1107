use std::sync::OnceLock;

use p256::ecdsa::signature::Signer;

use super::*;

fn pki() -> &'static Pki {
    static PKI: OnceLock<(tempfile::TempDir, Pki)> = OnceLock::new();
    &PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::ensure(dir.path()).unwrap();
        (dir, pki)
    })
    .1
}

fn jwt(key: &SigningKey, kid: &str, iss: &str, iat: i64) -> String {
    let h = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#));
    let c = URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"{iss}","iat":{iat}}}"#));
    let input = format!("{h}.{c}");
    let sig: Signature = key.sign(input.as_bytes());
    format!("bearer {input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
}

fn key() -> SigningKey {
    SigningKey::from_pkcs8_pem(std::str::from_utf8(pki().auth_key_pem()).unwrap()).unwrap()
}

fn good(iat: i64) -> String {
    jwt(&key(), KEY, TEAM, iat)
}

const KEY: &str = crate::pki::KEY_ID;
const TEAM: &str = crate::pki::TEAM_ID;

#[test]
fn valid_token_is_verified_once() {
    let auth = Auth::new(pki(), 0, false).unwrap();
    let t = good(now_secs());
    let mut a = ConnToken::default();
    let mut b = ConnToken::default();
    assert_eq!(auth.check(&mut a, t.as_bytes()), Ok(Checked { new_valid: true }));
    assert_eq!(auth.check(&mut a, t.as_bytes()), Ok(Checked { new_valid: false }));
    assert_eq!(auth.check(&mut b, t.as_bytes()), Ok(Checked { new_valid: false }));
    assert_eq!(lock(&auth.verdicts).len(), 1);
}

#[test]
fn wrong_header_claims_or_signature_are_invalid() {
    let auth = Auth::new(pki(), 0, false).unwrap();
    let now = now_secs();
    let other = SigningKey::from_slice(&[7u8; 32]).unwrap();
    for t in [
        jwt(&key(), "ZZZ123DEFG", TEAM, now),
        jwt(&key(), KEY, "OTHERTEAM1", now),
        jwt(&other, KEY, TEAM, now),
        jwt(&key(), KEY, TEAM, now + 120),
        "bearer a.b".to_string(),
        "basic xyz".to_string(),
        good(now).replace("bearer ", "bearer x"),
    ] {
        assert_eq!(auth.check(&mut ConnToken::default(), t.as_bytes()), Err(Reason::InvalidProviderToken), "{t}");
    }
}

#[test]
fn age_limits_follow_the_clock_offset() {
    let now = now_secs();
    let auth = Auth::new(pki(), 0, false).unwrap();
    let old = good(now - 3601);
    assert_eq!(auth.check(&mut ConnToken::default(), old.as_bytes()), Err(Reason::ExpiredProviderToken));
    let ahead = good(now + 30);
    assert!(auth.check(&mut ConnToken::default(), ahead.as_bytes()).is_ok());
    // A mock clock 5 minutes slow sees that token 5.5 minutes in the future.
    let slow = Auth::new(pki(), -300, false).unwrap();
    assert_eq!(slow.check(&mut ConnToken::default(), ahead.as_bytes()), Err(Reason::InvalidProviderToken));
}

#[test]
fn updates_faster_than_twenty_minutes_are_refused_when_limited() {
    let now = now_secs();
    let (first, soon, later) = (good(now - 1900), good(now - 1000), good(now - 600));
    let auth = Auth::new(pki(), 0, true).unwrap();
    let mut conn = ConnToken::default();
    assert!(auth.check(&mut conn, first.as_bytes()).is_ok());
    assert_eq!(auth.check(&mut conn, soon.as_bytes()), Err(Reason::TooManyProviderTokenUpdates));
    assert!(auth.check(&mut conn, first.as_bytes()).is_ok());
    assert!(auth.check(&mut conn, later.as_bytes()).is_ok());
    let unlimited = Auth::new(pki(), 0, false).unwrap();
    let mut conn = ConnToken::default();
    assert!(unlimited.check(&mut conn, first.as_bytes()).is_ok());
    assert!(unlimited.check(&mut conn, soon.as_bytes()).is_ok());
}
