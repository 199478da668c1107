//! `apnsblast send` over HTTP/2 and Apple's rules that depend on the push
//! type and the authentication, the built binary against the in-process
//! HTTP/2 mock (which checks topics, priorities and tokens with its own
//! code): each push type's topic suffix and priority, the combinations
//! refused before anything is sent, a ready token from `--auth-token-env`,
//! and several processes on one key sending one token.

mod cli_common;
mod common;

use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::DecodePrivateKey as _;

use cli_common::*;
use common::{list, pki, run, run_with, tokens};
use mock_gateway::{Config, Http2Gateway, Http2Handle};

/// Apple's length of a provider token's slot here: every process signing
/// with one key in one slot makes the same token.
const SLOT_SECS: u64 = 30 * 60;

fn h2_gateway() -> Http2Handle {
    let _ = env_logger::builder().is_test(true).try_init();
    Http2Gateway::start(&Config::default(), pki(), "127.0.0.1:0".parse().unwrap()).expect("HTTP/2 mock starts")
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// The mock's `.p8` key, team id and bundle id.
fn key_auth() -> Vec<String> {
    let p = pki();
    args(&["--auth-key", &path(&p.auth_key_path()), "--team-id", p.team_id(), "--topic", p.bundle_id()])
}

/// `send --api http2` to `gw` with `auth` and `extra`, short timeouts, `--alert hi`.
fn h2_send(gw: &Http2Handle, tokens: &str, auth: &[String], extra: &[&str]) -> Vec<String> {
    let mut a = args(&["send", "--api", "http2", "--tokens", tokens, "--gateway"]);
    a.push(format!("127.0.0.1:{}", gw.addr().port()));
    a.extend(args(&["--ca", &path(&pki().ca_path()), "--response-timeout", "5", "--max-backoff", "0.2"]));
    a.extend(auth.iter().cloned());
    if !extra.contains(&"--payload") {
        a.extend(args(&["--alert", "hi"]));
    }
    a.extend(args(extra));
    a
}

/// A provider token signed here, not by apnsblast: ES256 over the mock's
/// key with `kid`, `iss` and `iat` as given.
fn jwt(kid: &str, iss: &str, iat: u64) -> String {
    let key = SigningKey::from_pkcs8_pem(std::str::from_utf8(pki().auth_key_pem()).unwrap()).unwrap();
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"ES256","kid":"{kid}"}}"#)),
        URL_SAFE_NO_PAD.encode(format!(r#"{{"iss":"{iss}","iat":{iat}}}"#))
    );
    let signature: Signature = key.sign(signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// Runs `a` and checks it fails with exit 2 and one line of error that
/// holds every one of `words`.
fn assert_refused(a: &[String], env: &[(&str, &str)], words: &[&str]) -> String {
    let r = run_with(a, None, env);
    assert_eq!(r.code, 2, "{a:?}: {r:?}");
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {}", r.stderr);
    for w in words {
        assert!(lines[0].contains(w), "{w:?} in {:?} ({a:?})", lines[0]);
    }
    r.stderr
}

#[test]
fn every_push_type_goes_to_its_topic_at_a_priority_apple_takes() {
    let gw = h2_gateway();
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(20, 31)));
    let types = [
        "alert",
        "background",
        "voip",
        "complication",
        "fileprovider",
        // mdm goes with the MDM push certificate only (refused with a key below).
        "liveactivity",
        "location",
        "pushtotalk",
    ];
    // --topic is the bundle id: the mock takes a request only at the bundle
    // id plus the type's suffix, and a background one only below priority 10.
    for t in types {
        let r = run(&h2_send(&gw, &list, &key_auth(), &["--push-type", t]), None);
        assert_eq!(r.code, 0, "--push-type {t}: {r:?}");
    }
    // A topic given with its suffix keeps it (not .voip.voip).
    let mut full = key_auth();
    *full.last_mut().unwrap() = "com.example.app.voip".into();
    assert_eq!(run(&h2_send(&gw, &list, &full, &["--push-type", "voip"]), None).code, 0);
    // A VoIP payload may be 5120 bytes: more than any other type's 4096.
    let big = dir.file("big.json", &format!(r#"{{"aps":{{}},"call":"{}"}}"#, "x".repeat(5_000)));
    assert_eq!(run(&h2_send(&gw, &list, &key_auth(), &["--push-type", "voip", "--payload", &big]), None).code, 0);
    let stats = gw.stop();
    assert_eq!(stats.accepted, 20 * (types.len() as u64 + 2), "{stats:#?}");
    assert!(stats.rejected_by_reason.is_empty(), "{stats:#?}");
}

#[test]
fn a_certificates_topic_gets_the_push_types_suffix() {
    let gw = h2_gateway();
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(20, 32)));
    // The mock's client certificate names com.example.app (its UID).
    let cert = args(&["--cert", &path(pki().client_p12_path())]);
    for t in ["voip", "complication", "alert"] {
        let r = run(&h2_send(&gw, &list, &cert, &["--push-type", t]), None);
        assert_eq!(r.code, 0, "--push-type {t}: {r:?}");
    }
    let stats = gw.stop();
    assert_eq!((stats.accepted, stats.rejected_by_reason.len()), (60, 0), "{stats:#?}");
}

#[test]
fn impossible_combinations_are_refused_before_anything_is_sent() {
    let gw = h2_gateway();
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(5, 33)));
    let cert = args(&["--cert", &path(pki().client_p12_path())]);
    let refused = |auth: &[String], extra: &[&str], words: &[&str]| {
        assert_refused(&h2_send(&gw, &list, auth, extra), &[], words);
    };
    refused(
        &key_auth(),
        &["--push-type", "background", "--priority", "10"],
        &["--priority 10", "--push-type background"],
    );
    for t in ["liveactivity", "location"] {
        refused(&cert, &["--push-type", t], &[&format!("--push-type {t}"), "token authentication", "--auth-key"]);
    }
    refused(&key_auth(), &["--push-type", "mdm"], &["--push-type mdm", "MDM push certificate", "--cert"]);
    let big = dir.file("big.json", &format!(r#"{{"aps":{{}},"call":"{}"}}"#, "x".repeat(5_000)));
    refused(&key_auth(), &["--push-type", "alert", "--payload", &big], &["--payload", "4096"]);
    let huge = dir.file("huge.json", &format!(r#"{{"aps":{{}},"call":"{}"}}"#, "x".repeat(5_200)));
    refused(&key_auth(), &["--push-type", "voip", "--payload", &huge], &["--payload", "5120"]);
    // A ready token and a key together: clap names both flags.
    let mut both = key_auth();
    both.extend(args(&["--auth-token-env", "APNS_TOKEN"]));
    let r = run_with(&h2_send(&gw, &list, &both, &[]), None, &[("APNS_TOKEN", "unused")]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--auth-token-env") && r.stderr.contains("--auth-key"), "{}", r.stderr);
    let stats = gw.stop();
    assert_eq!((stats.connections, stats.requests_received), (0, 0), "{stats:#?}");
}

#[test]
fn a_ready_token_from_the_environment_is_sent_as_given_and_never_shown() {
    let gw = h2_gateway();
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(300, 34)));
    let p = pki();
    let env_auth = args(&["--auth-token-env", "APNS_PROVIDER_TOKEN", "--topic", p.bundle_id()]);
    let token = jwt(p.key_id(), p.team_id(), now() - 60);
    let report = dir.at("report.json");
    // -vvv: every log line there is, none of which may hold the token.
    let mut a = h2_send(&gw, &list, &env_auth, &["--report", &report, "--shards", "2"]);
    a.insert(0, "-vvv".into());
    let r = run_with(&a, None, &[("APNS_PROVIDER_TOKEN", &token)]);
    assert_eq!(r.code, 0, "{r:?}");
    let signature = token.rsplit('.').next().unwrap();
    assert!(!r.stdout.contains(signature) && !r.stderr.contains(signature), "the token was printed");
    assert_eq!(read_report(&report).accepted, 300);
    let stats = gw.stats();
    assert_eq!((stats.accepted, stats.provider_tokens), (300, 1), "{stats:#?}");

    // Bad values: one line naming the variable, never its value.
    let env_send = h2_send(&gw, &list, &env_auth, &[]);
    let var = "APNS_PROVIDER_TOKEN";
    let secret = "SECRETPART";
    let (header, rest) = token.split_once('.').unwrap();
    let rs256 = URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256","kid":"ABC123DEFG"}"#);
    let no_iss = URL_SAFE_NO_PAD.encode(format!(r#"{{"iat":{}}}"#, now()));
    let signature = rest.split_once('.').unwrap().1;
    let cases = [
        (format!("{secret}.only-two"), "not three parts"),
        (format!("{secret}{header}.{rest}"), "the header is not base64url JSON"),
        (format!("{rs256}.{rest}"), "alg is not ES256"),
        (format!("{header}.{no_iss}.{signature}"), "no iss"),
        (jwt("short", p.team_id(), now()), "kid is not a key id"),
        (jwt(p.key_id(), p.team_id(), now() - 3_700), "APNs takes none older than 3600 s"),
        (jwt(p.key_id(), p.team_id(), now() + 3_600), "s in the future by this machine's clock"),
        (String::new(), "the variable is empty"),
    ];
    for (value, why) in &cases {
        let shown = assert_refused(&env_send, &[(var, value)], &[&format!("--auth-token-env {var}"), why]);
        assert!(!shown.contains(secret) && (value.is_empty() || !shown.contains(value.as_str())), "{shown}");
    }
    assert_refused(&env_send, &[], &[&format!("--auth-token-env {var}"), "no such environment variable"]);
    // The token itself where its variable's name belongs: refused, not shown.
    let mistaken = h2_send(&gw, &list, &args(&["--auth-token-env", &token, "--topic", p.bundle_id()]), &[]);
    let shown = assert_refused(&mistaken, &[], &["--auth-token-env takes the NAME of an environment variable"]);
    assert!(!shown.contains(token.rsplit('.').next().unwrap()), "{shown}");
    // Well formed, but for a key the gateway does not know: its check says so.
    let unknown = jwt("ZZZZZZZZZZ", p.team_id(), now());
    assert_refused(&env_send, &[(var, &unknown)], &["403 InvalidProviderToken", "--auth-token-env"]);
    let stats = gw.stop();
    assert_eq!(stats.requests_received, 300 + 2, "the good run's tokens and the two gateway checks: {stats:#?}");
}

/// Runs `a` to its end in a child process, its output thrown away.
fn spawn(a: &[String]) -> std::process::Child {
    Command::new(BIN).args(a).env_remove("RUST_LOG").stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()
}

#[test]
fn processes_on_one_key_in_one_slot_send_one_token() {
    let dir = Dir::new();
    let toks = tokens(4_000, 35);
    let list = dir.file("tokens.txt", &list(&toks));
    // A run that crosses a slot's end rightly sends two tokens: then once
    // more, in the new slot, which the runs (seconds long) cannot outlast.
    for attempt in 1..=2 {
        let gw = h2_gateway();
        let slot = now() / SLOT_SECS;
        // Two partitions of one list, at the same time, as two pods would.
        let mut children: Vec<_> = ["0/2", "1/2"]
            .iter()
            .map(|part| spawn(&h2_send(&gw, &list, &key_auth(), &["--partition", part, "--shards", "2"])))
            .collect();
        let codes: Vec<_> = children.iter_mut().map(|c| c.wait().unwrap().code()).collect();
        // A resumed or later run in the same slot: a third process, started
        // in a later second than the first two (so a token issued "now"
        // rather than at the slot's start would differ).
        // Waiting for the clock's next second is what this needs: no event
        // to wait on stands for it.
        let next = UNIX_EPOCH + std::time::Duration::from_secs(now() + 1);
        std::thread::sleep(next.duration_since(SystemTime::now()).unwrap_or_default());
        let again = run(&h2_send(&gw, &list, &key_auth(), &["--partition", "1/2"]), None);
        if now() / SLOT_SECS != slot {
            assert_eq!(attempt, 1, "two slot ends within one test");
            eprintln!("a 30-minute slot ended during the runs: once more");
            continue;
        }
        assert_eq!((codes, again.code), (vec![Some(0), Some(0)], 0), "{again:?}");
        let stats = gw.stats();
        assert_eq!(stats.distinct_tokens, toks.len() as u64, "both partitions sent: {stats:#?}");
        assert_eq!(stats.provider_tokens, 1, "one provider token for three processes: {stats:#?}");
        // A token signed elsewhere in the same slot is another token to Apple.
        let p = pki();
        let other = jwt(p.key_id(), p.team_id(), slot * SLOT_SECS + 1);
        let env_auth = args(&["--auth-token-env", "T", "--topic", p.bundle_id()]);
        let r = run_with(&h2_send(&gw, &list, &env_auth, &["--partition", "0/2"]), None, &[("T", &other)]);
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(gw.stop().provider_tokens, 2, "the mock tells tokens apart");
        return;
    }
}

/// A `.p8` key others can read signs for every app of the team: the run
/// goes on, with a warning that says how to fix it.
#[cfg(unix)]
#[test]
fn a_key_others_can_read_draws_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let gw = h2_gateway();
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(10, 36)));
    let p = pki();
    let key = dir.at(&format!("AuthKey_{}.p8", p.key_id()));
    std::fs::copy(p.auth_key_path(), &key).unwrap();
    let auth = args(&["--auth-key", &key, "--team-id", p.team_id(), "--topic", p.bundle_id()]);
    for (mode, warned) in [(0o644, true), (0o600, false)] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        let r = run(&h2_send(&gw, &list, &auth, &[]), None);
        assert_eq!(r.code, 0, "{r:?}");
        assert_eq!(r.stderr.contains("readable by group or others (mode 644); chmod 600 it"), warned, "{}", r.stderr);
    }
}
