use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{EncodePrivateKey as _, LineEnding};
use tempfile::TempDir;

use std::fs;
use std::path::{Path, PathBuf};

use super::*;

/// The start of a slot: 2023-11-14 21:00:00 UTC.
pub(crate) const T0: u64 = 1_699_999_200;
const KEY_ID: &str = "ABC123DEFG";
const TEAM_ID: &str = "DEF123GHIJ";

/// A throwaway key, made for this test and written as Apple ships a `.p8`.
pub(crate) fn p8_file() -> (TempDir, PathBuf, SigningKey) {
    let signing = SigningKey::random(&mut rand_core::OsRng);
    let pem = signing.to_pkcs8_pem(LineEnding::LF).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let dir = TempDir::new().unwrap();
    let path = dir.path().join(format!("AuthKey_{KEY_ID}.p8"));
    fs::write(&path, pem.as_bytes()).unwrap();
    (dir, path, signing)
}

fn write(dir: &TempDir, name: &str, contents: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    fs::write(&path, contents).unwrap();
    path
}

pub(crate) fn provider(path: &Path, now: u64) -> ProviderToken {
    ProviderToken::new_at(AuthKey::load(path).unwrap(), KEY_ID, TEAM_ID, now).unwrap()
}

fn json(part: &str) -> String {
    String::from_utf8(URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn not_auth_key(err: AuthKeyError) -> String {
    match err {
        AuthKeyError::NotAuthKey { found, .. } => found,
        other => panic!("expected NotAuthKey, got {other:?}"),
    }
}

#[test]
fn jwt_parts_decode_to_exactly_apples_header_and_claims() {
    let (_dir, path, _) = p8_file();
    let token = provider(&path, T0 + 100).current_at(T0 + 100);
    assert!(token.authorization().starts_with(b"bearer "));
    assert_eq!(&token.authorization()[7..], token.jwt().as_bytes());
    let parts: Vec<&str> = token.jwt().split('.').collect();
    assert_eq!(parts.len(), 3);
    assert!(parts.iter().all(|p| !p.contains('=')), "base64url without padding");
    assert_eq!(json(parts[0]), r#"{"alg":"ES256","kid":"ABC123DEFG"}"#);
    assert_eq!(json(parts[1]), format!(r#"{{"iss":"DEF123GHIJ","iat":{T0}}}"#));
    assert_eq!(token.iat(), T0);
}

#[test]
fn signature_is_raw_r_s_and_verifies_with_the_public_key() {
    let (_dir, path, signing) = p8_file();
    let token = provider(&path, T0).current_at(T0);
    let (signed, signature) = token.jwt().rsplit_once('.').unwrap();
    let raw = URL_SAFE_NO_PAD.decode(signature).unwrap();
    assert_eq!(raw.len(), 64, "R || S, not DER");
    let signature = Signature::from_slice(&raw).unwrap();
    VerifyingKey::from(&signing).verify(signed.as_bytes(), &signature).unwrap();
    // OpenSSL agrees, given the key as the file holds it and R and S as integers.
    let pem = fs::read(&path).unwrap();
    let public = openssl::pkey::PKey::private_key_from_pem(&pem).unwrap().ec_key().unwrap();
    let (r, s) = raw.split_at(32);
    let der = openssl::ecdsa::EcdsaSig::from_private_components(
        openssl::bn::BigNum::from_slice(r).unwrap(),
        openssl::bn::BigNum::from_slice(s).unwrap(),
    )
    .unwrap();
    assert!(der.verify(&openssl::sha::sha256(signed.as_bytes()), &public).unwrap());
    // And not with another key.
    let other = SigningKey::random(&mut rand_core::OsRng);
    assert!(VerifyingKey::from(&other).verify(signed.as_bytes(), &signature).is_err());
}

#[test]
fn same_key_ids_and_slot_give_the_same_token_in_two_processes() {
    let (_dir, path, _) = p8_file();
    // Two processes: each loads the file and starts at its own time in the slot.
    let a = provider(&path, T0 + 5);
    let b = provider(&path, T0 + TOKEN_SLOT_SECS - 1);
    let first = a.current_at(T0 + 5);
    assert_eq!(first.authorization(), a.current_at(T0 + 900).authorization());
    assert_eq!(first.authorization(), b.current_at(T0 + TOKEN_SLOT_SECS - 1).authorization());
    assert_eq!(first, b.current_at(T0 + 1));
}

#[test]
fn current_hands_out_the_same_allocation_within_a_slot() {
    let (_dir, path, _) = p8_file();
    let p = provider(&path, T0);
    let (x, y) = (p.current_at(T0 + 1), p.current_at(T0 + 2));
    assert!(std::ptr::eq(x.authorization().as_ptr(), y.authorization().as_ptr()));
}

#[test]
fn next_slot_gives_a_new_token_at_an_age_of_thirty_minutes() {
    let (_dir, path, _) = p8_file();
    let p = provider(&path, T0 + 10);
    let first = p.current_at(T0 + 10);
    assert_eq!(p.current_at(T0 + TOKEN_SLOT_SECS - 1), first);
    let second = p.current_at(T0 + TOKEN_SLOT_SECS);
    assert_ne!(second, first);
    assert_eq!(second.iat(), T0 + TOKEN_SLOT_SECS);
    // A process started in the new slot agrees.
    assert_eq!(provider(&path, T0 + TOKEN_SLOT_SECS + 60).current_at(T0 + TOKEN_SLOT_SECS + 60), second);
    // A clock stepping back keeps the newer token.
    assert_eq!(p.current_at(T0 + 10), second);
}

#[test]
fn renew_after_expired_renews_once_for_two_callers_with_the_same_stale_token() {
    let (_dir, path, _) = p8_file();
    let p = provider(&path, T0);
    let stale = p.current_at(T0);
    let now = T0 + 25 * 60;
    let renewed = p.renew_after_expired_at(&stale, now).unwrap();
    assert_ne!(renewed, stale);
    assert_eq!(renewed.iat(), now, "mid-slot: issued now, not at the slot's start again");
    assert_eq!(p.renew_after_expired_at(&stale, now + 1).unwrap(), renewed);
    assert_eq!(p.current_at(now + 2), renewed);
    // Renewed mid-slot, it is kept until 20 minutes have passed, across the slot's end.
    assert_eq!(p.current_at(T0 + TOKEN_SLOT_SECS + 60), renewed);
    let next = p.current_at(now + TOKEN_MIN_AGE_SECS);
    assert_eq!(next.iat(), T0 + TOKEN_SLOT_SECS, "back on the slot grid");
}

#[test]
fn renew_after_expired_on_a_past_slot_signs_the_new_slot() {
    let (_dir, path, _) = p8_file();
    let p = provider(&path, T0);
    let stale = p.current_at(T0);
    let renewed = p.renew_after_expired_at(&stale, T0 + TOKEN_SLOT_SECS + 5).unwrap();
    assert_eq!(renewed.iat(), T0 + TOKEN_SLOT_SECS);
    assert_eq!(renewed, provider(&path, T0 + TOKEN_SLOT_SECS).current_at(T0 + TOKEN_SLOT_SECS));
}

#[test]
fn renew_after_expired_from_many_threads_signs_once() {
    let (_dir, path, _) = p8_file();
    let p = Arc::new(provider(&path, T0));
    let stale = p.current_at(T0);
    let now = T0 + 21 * 60;
    let renewed: Vec<Token> = (0..8)
        .map(|_| {
            let (p, stale) = (Arc::clone(&p), stale.clone());
            std::thread::spawn(move || p.renew_after_expired_at(&stale, now).unwrap())
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .collect();
    assert!(renewed.iter().all(|t| std::ptr::eq(t.jwt(), renewed[0].jwt())), "one signature, one allocation");
    assert_ne!(renewed[0], stale);
}

#[test]
fn a_token_younger_than_twenty_minutes_reports_a_wrong_clock() {
    let (_dir, path, _) = p8_file();
    let p = provider(&path, T0);
    let token = p.current_at(T0);
    let err = p.renew_after_expired_at(&token, T0 + TOKEN_MIN_AGE_SECS - 1).unwrap_err();
    assert_eq!(err, RenewError::ClockWrong { age_secs: TOKEN_MIN_AGE_SECS - 1 });
    assert!(err.to_string().contains("check the clock"), "{err}");
    assert_eq!(p.current_at(T0 + 60), token, "not renewed");
}

#[test]
fn ids_that_are_not_apples_shape_are_refused() {
    let (_dir, path, _) = p8_file();
    let key = AuthKey::load(&path).unwrap();
    for bad in ["", "ABC123DEF", "ABC123DEFGH", "abc123defg", "ABC123DEF-", "ABC123DEF\""] {
        let err = ProviderToken::new_at(key.clone(), bad, TEAM_ID, T0).unwrap_err();
        assert_eq!(err, TokenError::KeyId(bad.to_owned()));
        assert!(err.to_string().contains("key id"), "{err}");
        let err = ProviderToken::new_at(key.clone(), KEY_ID, bad, T0).unwrap_err();
        assert_eq!(err, TokenError::TeamId(bad.to_owned()));
        assert!(err.to_string().contains("team id"), "{err}");
    }
}

#[test]
fn fixed_token_is_used_as_given_and_cannot_renew() {
    let (_dir, path, _) = p8_file();
    let signed = provider(&path, T0).current_at(T0);
    for given in [signed.jwt().to_owned(), format!("Bearer {}\n", signed.jwt())] {
        let p = ProviderToken::fixed_at(given, T0 + 60).unwrap();
        let token = p.current_at(T0 + 3 * TOKEN_SLOT_SECS);
        assert_eq!(token.authorization(), signed.authorization());
        assert_eq!(token.iat(), T0);
        assert_eq!(p.renew_after_expired_at(&token, T0 + 59 * 60), Err(RenewError::Fixed));
    }
}

#[test]
fn fixed_token_that_is_malformed_or_expired_is_refused() {
    let (_dir, path, _) = p8_file();
    let jwt = provider(&path, T0).current_at(T0).jwt().to_owned();
    let (header, rest) = jwt.split_once('.').unwrap();
    let (_, signature) = rest.split_once('.').unwrap();
    let rs256 = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"ABC123DEFG"}"#);
    let no_iat = URL_SAFE_NO_PAD.encode(r#"{"iss":"DEF123GHIJ"}"#);
    let short_kid = URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":"ABC"}"#);
    let email_iss = URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"dev@example.com","iat":{T0}}}"#));
    for bad in [
        format!("{short_kid}.{rest}"),
        format!("{header}.{email_iss}.{signature}"),
        String::new(),
        "not a jwt".to_owned(),
        format!("{jwt}.extra"),
        format!("{rs256}.{rest}"),
        format!("{header}.{no_iat}.{signature}"),
        format!("{header}.{rest}x"),
    ] {
        assert!(matches!(ProviderToken::fixed_at(bad.clone(), T0), Err(TokenError::Malformed(_))), "accepted {bad:?}");
    }
    let err = ProviderToken::fixed_at(jwt, T0 + TOKEN_MAX_AGE_SECS).unwrap_err();
    assert_eq!(err, TokenError::Expired { age_secs: TOKEN_MAX_AGE_SECS });
}

#[test]
fn every_auth_key_error_names_the_file() {
    let dir = TempDir::new().unwrap();
    let missing = dir.path().join("AuthKey_MISSING000.p8");
    let errors = [
        (missing.clone(), AuthKey::load(&missing).unwrap_err()),
        (write(&dir, "empty.p8", b" \n"), AuthKey::load(&dir.path().join("empty.p8")).unwrap_err()),
        (
            write(&dir, "garbage.p8", b"\x30\x82\x01\xff\xfe"),
            AuthKey::load(&dir.path().join("garbage.p8")).unwrap_err(),
        ),
        (
            write(&dir, "cert.p8", b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"),
            AuthKey::load(&dir.path().join("cert.p8")).unwrap_err(),
        ),
    ];
    assert!(matches!(errors[0].1, AuthKeyError::Read { .. }));
    assert!(matches!(errors[1].1, AuthKeyError::Empty { .. }));
    assert!(matches!(errors[2].1, AuthKeyError::NotPem { .. }));
    assert!(matches!(errors[3].1, AuthKeyError::NotAuthKey { .. }));
    for (path, err) in &errors {
        let message = err.to_string();
        assert!(message.contains(&*path.to_string_lossy()), "{message}");
        assert!(!message.contains('\n'), "one line: {message}");
    }
    assert!(errors[3].1.to_string().contains("a certificate"));
    // Without a file, the text is named.
    assert!(AuthKey::from_pem("").unwrap_err().to_string().starts_with("the PEM text given is empty"));
}

#[test]
fn p8_holding_an_rsa_key_or_garbage_is_refused() {
    let dir = TempDir::new().unwrap();
    let rsa = openssl::rsa::Rsa::generate(2048).unwrap();
    let rsa_pkcs8 = openssl::pkey::PKey::from_rsa(rsa.clone()).unwrap().private_key_to_pem_pkcs8().unwrap();
    assert!(rsa_pkcs8.starts_with(b"-----BEGIN PRIVATE KEY-----"));
    let path = write(&dir, "rsa.p8", &rsa_pkcs8);
    assert_eq!(not_auth_key(AuthKey::load(&path).unwrap_err()), "an RSA key");
    let path = write(&dir, "rsa1.p8", &rsa.private_key_to_pem().unwrap());
    assert_eq!(not_auth_key(AuthKey::load(&path).unwrap_err()), "an RSA key");

    let garbage = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n";
    assert!(not_auth_key(AuthKey::from_pem(garbage).unwrap_err()).contains("does not decode"));
    let damaged = "-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n";
    assert!(not_auth_key(AuthKey::from_pem(damaged).unwrap_err()).contains("damaged"));
    let unended = "-----BEGIN PRIVATE KEY-----\nMIGH\n";
    assert!(not_auth_key(AuthKey::from_pem(unended).unwrap_err()).contains("no END line"));
    assert!(matches!(AuthKey::from_pem("MIGHAgEAMBMGByqGSM49"), Err(AuthKeyError::NotPem { .. })));
}

#[test]
fn other_curves_and_forms_are_refused_with_what_they_are() {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    let p384 = EcKey::generate(&EcGroup::from_curve_name(Nid::SECP384R1).unwrap()).unwrap();
    let pem = PKey::from_ec_key(p384).unwrap().private_key_to_pem_pkcs8().unwrap();
    let found = not_auth_key(AuthKey::from_pem(std::str::from_utf8(&pem).unwrap()).unwrap_err());
    assert!(found.contains("another curve"), "{found}");

    let ed = PKey::generate_ed25519().unwrap().private_key_to_pem_pkcs8().unwrap();
    assert_eq!(not_auth_key(AuthKey::from_pem(std::str::from_utf8(&ed).unwrap()).unwrap_err()), "an Ed25519 key");

    let p256 = EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap();
    let sec1 = p256.private_key_to_pem().unwrap();
    let found = not_auth_key(AuthKey::from_pem(std::str::from_utf8(&sec1).unwrap()).unwrap_err());
    assert!(found.contains("SEC1"), "{found}");
    // The same key in PKCS#8, as openssl writes it, loads.
    let pkcs8 = PKey::from_ec_key(p256).unwrap().private_key_to_pem_pkcs8().unwrap();
    AuthKey::from_pem(std::str::from_utf8(&pkcs8).unwrap()).unwrap();
}

#[test]
fn p8_with_crlf_no_final_newline_or_text_around_loads() {
    let signing = SigningKey::random(&mut rand_core::OsRng);
    let lf = signing.to_pkcs8_pem(LineEnding::LF).unwrap();
    let crlf = signing.to_pkcs8_pem(LineEnding::CRLF).unwrap();
    let wanted = VerifyingKey::from(&signing);
    for text in [lf.trim_end().to_owned(), crlf.to_string(), format!("Apple auth key\n{}\n\n", lf.as_str())] {
        let key = AuthKey::from_pem(&text).unwrap();
        assert_eq!(VerifyingKey::from(&key.signing), wanted);
    }
}

#[test]
fn debug_shows_no_key_or_token_bytes() {
    let (_dir, path, signing) = p8_file();
    let key = AuthKey::load(&path).unwrap();
    let pem = fs::read_to_string(&path).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let secret = hex_simd::encode_to_string(signing.to_bytes(), hex_simd::AsciiCase::Lower);
    let p = ProviderToken::new_at(key.clone(), KEY_ID, TEAM_ID, T0).unwrap();
    let token = p.current_at(T0);
    for debug in [format!("{key:?}"), format!("{key:#?}"), format!("{token:?}"), format!("{p:?}")] {
        assert!(!debug.contains(&body[..16]) && !debug.contains(&secret[..16]), "{debug}");
        assert!(!debug.contains(&token.jwt()[..16]), "{debug}");
    }
    assert_eq!(format!("{key:?}"), "AuthKey(P-256 private key)");
}

#[test]
fn provider_token_is_shareable_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<ProviderToken>();
    assert_send_sync::<Token>();
    assert_send_sync::<AuthKey>();
}

#[test]
fn current_without_injected_time_is_on_the_slot_grid() {
    let (_dir, path, _) = p8_file();
    let p = ProviderToken::new(AuthKey::load(&path).unwrap(), KEY_ID, TEAM_ID).unwrap();
    let token = p.current();
    assert_eq!(token.iat() % TOKEN_SLOT_SECS, 0);
    assert!(unix_now() - token.iat() < TOKEN_SLOT_SECS);
}

#[test]
fn readers_keep_the_old_token_while_another_thread_signs() {
    let (_dir, path, _) = p8_file();
    let p = provider(&path, T0);
    let old = p.current_at(T0);
    let signer = p.signing.lock().unwrap();
    assert_eq!(p.current_at(T0 + TOKEN_SLOT_SECS), old, "no wait for the signer");
    drop(signer);
    assert_eq!(p.current_at(T0 + TOKEN_SLOT_SECS).iat(), T0 + TOKEN_SLOT_SECS);
}
