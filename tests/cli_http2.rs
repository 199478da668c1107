//! `apnsblast send --api http2`, the built binary, against the in-process
//! HTTP/2 mock with token authentication (the mock's `.p8` key): the report
//! against the mock's counts, `--failed` and `--invalid-tokens` with Apple's
//! reasons, bad input refused before the list is read, a killed run resumed
//! from its journal, and `demo --api http2`.

mod cli_common;
mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use apnsblast::journal::LineSet;
use apnsblast::report::{Code, State};
use apnsblast::token::DeviceToken;
use cli_common::*;
use common::{gateway, list, pki, run, tokens};
use mock_gateway::config::Http2Config as MockHttp2;
use mock_gateway::{Config, Http2Gateway, Http2Handle};

fn h2_gateway(config: Config) -> Http2Handle {
    let _ = env_logger::builder().is_test(true).try_init();
    Http2Gateway::start(&config, pki(), "127.0.0.1:0".parse().unwrap()).expect("HTTP/2 mock starts")
}

/// The mock's `.p8` key (its file name gives the key id), team id and topic.
fn auth() -> Vec<String> {
    let p = pki();
    args(&["--auth-key", &path(&p.auth_key_path()), "--team-id", p.team_id(), "--topic", p.bundle_id()])
}

/// `send --api http2` to `port` with `auth` and `extra`, short timeouts, `--alert hi`.
fn h2_send(port: u16, tokens: &str, auth: &[String], extra: &[&str]) -> Vec<String> {
    let mut a = args(&["send", "--api", "http2", "--tokens", tokens, "--gateway"]);
    a.push(format!("127.0.0.1:{port}"));
    a.extend(args(&["--ca", &path(&pki().ca_path()), "--response-timeout", "5", "--max-backoff", "0.2"]));
    a.extend(auth.iter().cloned());
    if !extra.contains(&"--payload") {
        a.extend(args(&["--alert", "hi"]));
    }
    a.extend(args(extra));
    a
}

fn h2_args(gw: &Http2Handle, tokens: &str, extra: &[&str]) -> Vec<String> {
    h2_send(gw.addr().port(), tokens, &auth(), extra)
}

#[test]
fn clean_list_exits_0_and_the_report_agrees_with_the_mock() {
    let gw = h2_gateway(Config::default());
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(3_000, 1)));
    let (report, failed, invalid) = (dir.at("report.json"), dir.at("failed.ndjson"), dir.at("invalid.txt"));
    let extra = ["--report", &report, "--failed", &failed, "--invalid-tokens", &invalid, "--shards", "2"];
    let r = run(&h2_args(&gw, &list, &extra), None);
    assert_eq!(r.code, 0, "{r:?}");
    let stats = gw.stop();
    let rep = read_report(&report);
    assert_eq!((rep.tokens_read, rep.accepted, rep.unaccounted()), (3_000, 3_000, 0), "{rep:#?}");
    assert_eq!((stats.accepted, stats.distinct_tokens, stats.duplicates), (rep.accepted, 3_000, 0), "{stats:#?}");
    assert_eq!(stats.gateway_checks, 1);
    assert!(read_failed(&failed).is_empty());
    assert_eq!(std::fs::read_to_string(&invalid).unwrap(), "");
    assert!(r.stdout.contains("all 3000 tokens accepted"), "{}", r.stdout);
}

#[test]
fn bad_and_unregistered_tokens_fill_failed_and_invalid_tokens() {
    let mock = MockHttp2 { gone_rate: 0.01, ..MockHttp2::default() };
    let gw = h2_gateway(Config { bad_rate: 0.01, seed: 7, http2: mock, ..Config::default() });
    let dir = Dir::new();
    let toks = tokens(5_000, 2);
    let list = dir.file("tokens.txt", &list(&toks));
    let (report, failed, invalid) = (dir.at("report.json"), dir.at("failed.ndjson"), dir.at("invalid.txt"));
    let extra = ["--report", &report, "--failed", &failed, "--invalid-tokens", &invalid, "--shards", "3"];
    let r = run(&h2_args(&gw, &list, &extra), None);
    assert_eq!(r.code, 1, "{r:?}");
    // The mock answers BadDeviceToken before it looks whether a token is gone.
    let config = gw.config().clone();
    let bad: BTreeSet<String> = toks.iter().filter(|t| config.is_bad(&t.0)).map(ToString::to_string).collect();
    let gone: BTreeSet<String> = toks
        .iter()
        .filter(|t| !config.is_bad(&t.0) && config.http2.is_gone(config.seed, &t.0))
        .map(ToString::to_string)
        .collect();
    assert!(bad.len() > 10 && gone.len() > 10, "{} bad, {} gone", bad.len(), gone.len());
    let stats = gw.stop();
    assert_eq!(
        (stats.rejected_for("BadDeviceToken"), stats.rejected_for("Unregistered")),
        (bad.len() as u64, gone.len() as u64)
    );

    let rep = read_report(&report);
    assert_eq!(rep.unaccounted(), 0);
    assert_eq!(rep.accepted, stats.distinct_tokens);
    assert_eq!(rep.accepted, 5_000 - (bad.len() + gone.len()) as u64);
    assert_eq!(rep.rejected.get("BadDeviceToken").copied(), Some(bad.len() as u64), "{rep:#?}");
    assert_eq!(rep.rejected.get("Unregistered").copied(), Some(gone.len() as u64), "{rep:#?}");

    let listed: BTreeSet<String> = std::fs::read_to_string(&invalid).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(listed, bad.union(&gone).cloned().collect::<BTreeSet<_>>());

    let line_of: HashMap<String, u64> = toks.iter().enumerate().map(|(i, t)| (t.to_string(), i as u64 + 1)).collect();
    let failures = read_failed(&failed);
    assert_eq!(failures.len(), bad.len() + gone.len());
    for f in &failures {
        assert_eq!(line_of[&f.token], f.line, "line number of {}", f.token);
        if bad.contains(&f.token) {
            assert_eq!((f.state, f.status), (State::Rejected, Some(Code::Http(400))), "{f:?}");
            assert_eq!((f.reason.as_str(), f.unregistered_at), ("BadDeviceToken", None), "{f:?}");
        } else {
            assert!(gone.contains(&f.token), "{f:?}");
            assert_eq!(
                (f.state, f.status, f.reason.as_str()),
                (State::Rejected, Some(Code::Http(410)), "Unregistered")
            );
            assert!(f.unregistered_at.is_some_and(|ms| ms > 1_000_000_000_000), "410's timestamp in ms: {f:?}");
        }
    }
    for row in [format!("BadDeviceToken {:>12}", bad.len()), format!("Unregistered {:>12}", gone.len())] {
        let shown = r
            .stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == row.split_whitespace().collect::<Vec<_>>());
        assert!(shown, "summary row {row:?} in\n{}", r.stdout);
    }
    assert!(r.stdout.contains(&format!("({} tokens to delete)", listed.len())), "{}", r.stdout);
}

/// Runs `a` and checks it fails with exit 2 and one line of error that
/// holds every one of `words` (warnings of the log aside).
fn assert_refused(a: &[String], words: &[&str]) {
    let r = run(a, None);
    assert_eq!(r.code, 2, "{a:?}: {r:?}");
    let lines: Vec<&str> = r.stderr.lines().filter(|l| !l.contains(" WARN ")).collect();
    assert_eq!(lines.len(), 1, "one line: {}", r.stderr);
    for w in words {
        assert!(lines[0].contains(w), "{w:?} in {:?} ({a:?})", lines[0]);
    }
}

#[test]
fn bad_settings_are_refused_before_the_list_is_read() {
    let gw = h2_gateway(Config::default());
    let port = gw.addr().port();
    let dir = Dir::new();
    // Line 6 is not a token: with --strict-input, reading the list would
    // fail on it, so each error below comes before the list is read.
    let list = dir.file("tokens.txt", &format!("{}not a token\n", list(&tokens(5, 3))));
    let p = pki();
    let (key, team, topic) = (path(&p.auth_key_path()), p.team_id().to_owned(), p.bundle_id().to_owned());
    let with_key =
        |file: &str| args(&["--auth-key", file, "--key-id", p.key_id(), "--team-id", &team, "--topic", &topic]);
    let refused = |auth: Vec<String>, extra: &[&str], words: &[&str]| {
        let mut extra = extra.to_vec();
        extra.push("--strict-input");
        assert_refused(&h2_send(port, &list, &auth, &extra), words);
    };
    refused(with_key(&list), &[], &["--auth-key", "is not PEM", ".p8"]);
    refused(with_key(&path(&p.ca_path())), &[], &["--auth-key", "a certificate"]);
    refused(with_key(&dir.at("AuthKey_NOSUCHFILE.p8")), &[], &["--auth-key", "cannot read"]);
    if let Some(rsa) = rsa_key(&dir) {
        refused(with_key(&rsa), &[], &["--auth-key", "RSA"]);
    }
    refused(args(&["--auth-key", &key, "--topic", &topic]), &[], &["--team-id", "required with --auth-key"]);
    refused(args(&["--auth-key", &key, "--team-id", &team]), &[], &["--topic", "required with --auth-key"]);
    let big = dir.file("big.json", &format!(r#"{{"aps":{{"alert":"{}"}}}}"#, "x".repeat(4_100)));
    refused(auth(), &["--payload", &big], &["--payload", "4096"]);
    refused(auth(), &["--collapse-id", &"c".repeat(65)], &["--collapse-id", "64"]);
    refused(auth(), &["--collapse-id", &"c".repeat(64), "--window-bytes", "1M"], &["--window-bytes", "binary"]);
    // With good settings the list is read, and line 6 stops the run.
    let r = run(&h2_send(port, &list, &auth(), &["--strict-input"]), None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--strict-input") && r.stderr.contains("line 6"), "{}", r.stderr);
    let stats = gw.stop();
    assert_eq!((stats.connections, stats.gateway_checks, stats.requests_received), (0, 0, 0), "{stats:#?}");
}

/// An RSA private key in PKCS#8 PEM, if `openssl` is there to make one.
fn rsa_key(dir: &Dir) -> Option<String> {
    let out = dir.at("rsa.p8");
    let made = Command::new("openssl")
        .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", &out])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    matches!(made, Ok(s) if s.success()).then_some(out)
}

#[test]
fn ids_the_gateway_refuses_name_the_flags_and_send_nothing() {
    let gw = h2_gateway(Config::default());
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(50, 4)));
    let report = dir.at("report.json");
    let mut wrong_key_id = auth();
    wrong_key_id.extend(args(&["--key-id", "ZZZZZZZZZZ"]));
    let mut wrong_team = auth();
    wrong_team[3] = "ZZZZZZZZZZ".to_owned();
    for a in [wrong_key_id, wrong_team] {
        let send = h2_send(gw.addr().port(), &list, &a, &["--report", &report]);
        assert_refused(&send, &["403 InvalidProviderToken", "--key-id", "--team-id"]);
        let rep = read_report(&report);
        assert!(rep.error.as_deref().is_some_and(|e| e.contains("InvalidProviderToken")), "{rep:#?}");
        assert_eq!(rep.tokens_read, 0, "nothing read");
    }
    let stats = gw.stop();
    // One request each: the gateway check, refused before any token is sent.
    assert_eq!((stats.accepted, stats.requests_received, stats.rejected_for("InvalidProviderToken")), (0, 2, 2));
}

#[test]
fn a_gateway_without_http2_and_the_other_transports_flags_are_refused() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(50, 5)));
    let port = gw.addr().port();
    assert_refused(
        &h2_send(port, &list, &auth(), &["--max-failures", "2"]),
        &["does not speak HTTP/2", "--api binary"],
    );
    let binary = |extra: &[&str]| {
        let mut a = extra.to_vec();
        a.extend(["--api", "binary"]);
        send_args(&gw, &list, &a)
    };
    assert_refused(&binary(&["--streams", "10"]), &["--streams", "HTTP/2"]);
    assert_refused(&binary(&["--priority", "1"]), &["--priority 1", "HTTP/2"]);
    assert_eq!(gw.stop().accepted, 0);
}

#[test]
fn feedback_over_http2_points_at_the_unregistered_answers() {
    for a in [args(&["feedback", "--api", "http2"]), args(&["feedback", "--gateway", "127.0.0.1:2197"])] {
        assert_refused(&a, &["HTTP/2", "410 Unregistered", "--invalid-tokens", "--failed"]);
    }
}

#[test]
fn killed_runs_resume_from_the_journal_without_resending_settled_lines() {
    // Answers held 5 ms, 16 streams on each of 2 shards: about 6,000 a
    // second, so the run is mid-list when killed. The mock logs every
    // delivery in order, so each one can be told to the run that made it.
    let dir = Dir::new();
    let log = dir.path().join("delivered.log");
    let mock = MockHttp2 { gone_rate: 0.002, delay: Duration::from_millis(5), ..MockHttp2::default() };
    let config =
        Config { bad_rate: 0.002, seed: 4, http2: mock, delivered_log: Some(log.clone()), ..Config::default() };
    let gw = h2_gateway(config.clone());
    let toks = tokens(40_000, 23);
    let list_path = dir.file("tokens.txt", &list(&toks));
    let journal = dir.at("journal");
    let a = h2_args(&gw, &list_path, &["--journal", &journal, "--shards", "2", "--streams", "16"]);
    let line_of: HashMap<[u8; 32], u64> = toks.iter().enumerate().map(|(i, t)| (t.0, i as u64 + 1)).collect();

    // Kill twice with SIGKILL at points drawn from a seed; after each, the
    // journal and how many deliveries the mock had logged.
    let mut x = 0x5EED_u64;
    let mut kills: Vec<(LineSet, u64)> = Vec::new();
    for _ in 0..2 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let floor = gw.stats().accepted;
        let at = floor + 2_000 + (x >> 33) % 8_000;
        let mut child = Command::new(BIN)
            .args(&a)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        gw.wait_until(Duration::from_secs(60), |s| s.accepted >= at).expect("the run gets going");
        child.kill().unwrap();
        child.wait().unwrap();
        let settled = LineSet::load(Path::new(&journal)).expect("journal readable after SIGKILL");
        assert!(!settled.is_empty() && settled.len() < toks.len() as u64, "killed mid-list: {}", settled.len());
        kills.push((settled, gw.stats().accepted));
    }
    let report = dir.at("report.json");
    let mut last = a.clone();
    last.extend(args(&["--report", &report]));
    let r = run(&last, None);
    assert_eq!(r.code, 1, "rejections make exit 1: {r:?}");
    let stats = gw.stop();
    let rep = read_report(&report);
    let settled = &kills.last().unwrap().0;
    assert_eq!(rep.unaccounted(), 0);
    assert_eq!(rep.previously_settled, settled.len());
    assert_eq!(rep.tokens_read + rep.previously_settled, toks.len() as u64, "{rep:#?}");
    assert!(rep.accepted < toks.len() as u64 - 2_000, "the last run resumed, it did not start over: {rep:#?}");

    let delivered: Vec<[u8; 32]> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| DeviceToken::parse(l.split('\t').next().unwrap()).unwrap().0)
        .collect();
    assert_eq!(delivered.len() as u64, stats.accepted);
    // Every valid token arrived; no invalid one did.
    let mut count: HashMap<[u8; 32], u32> = HashMap::new();
    for t in &delivered {
        *count.entry(*t).or_default() += 1;
    }
    let invalid = |t: &[u8; 32]| config.is_bad(t) || config.http2.is_gone(config.seed, t);
    for t in &toks {
        let n = count.get(&t.0).copied().unwrap_or(0);
        assert_eq!(n == 0, invalid(&t.0), "line {}: delivered {n} times", line_of[&t.0]);
    }
    // No run sends again what the journal held when it started.
    for (settled, from) in &kills {
        for t in &delivered[*from as usize..] {
            assert!(!settled.contains(line_of[t]), "line {} settled before a resume, sent again", line_of[t]);
        }
    }
    // Within one run a token arrives once, or is declared possibly duplicated.
    // A request in flight at a kill (2 shards x 16 streams at most) may be
    // logged by the mock just after it, so in the next run's share; that run
    // sends it again, as it is not in the journal.
    const IN_FLIGHT: u64 = 2 * 16;
    let mut bounds: Vec<usize> = kills.iter().map(|(_, n)| *n as usize).collect();
    bounds.insert(0, 0);
    bounds.push(delivered.len());
    for (i, run) in bounds.windows(2).enumerate() {
        let slice = &delivered[run[0]..run[1]];
        let distinct = slice.iter().collect::<std::collections::HashSet<_>>().len() as u64;
        let after_kill = if i > 0 { IN_FLIGHT } else { 0 };
        let allowed = after_kill + if i == kills.len() { rep.possibly_duplicated } else { 0 };
        assert!(slice.len() as u64 - distinct <= allowed, "run {}: {} repeats", i + 1, slice.len() as u64 - distinct);
    }
}

#[test]
fn demo_over_http2_agrees_with_the_mock() {
    let dir = Dir::new();
    let report = dir.at("report.json");
    let r = run(&args(&["demo", "--api", "http2", "--tokens", "20000", "--report", &report]), None);
    assert!(r.stdout.contains("agreement: YES"), "{r:?}");
    let rep = read_report(&report);
    assert_eq!((rep.tokens_read, rep.unaccounted()), (20_000, 0));
    assert_eq!(r.code, if rep.accepted == 20_000 { 0 } else { 1 }, "{r:?}");
}

#[test]
fn a_certificate_names_the_topic_and_one_without_a_uid_needs_topic() {
    let gw = h2_gateway(Config::default());
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(200, 9)));
    // The mock's client certificate is Apple-like: UID=com.example.app.
    let cert = args(&["--cert", &path(pki().client_p12_path())]);
    let r = run(&h2_send(gw.addr().port(), &list, &cert, &[]), None);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(gw.stats().accepted, 200, "sent with the certificate's topic");
    // A self-signed certificate whose subject is a CN alone (made with
    // openssl's command, where the machine has it).
    let (cert, key) = (dir.at("nouid.pem"), dir.at("nouid.key"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=no uid", "-days", "1"])
        .args(["-keyout", &key, "-out", &cert])
        .stderr(Stdio::null())
        .status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipping the certificate without a UID: no openssl command here");
        return;
    }
    let r = run(&h2_send(gw.addr().port(), &list, &args(&["--cert", &cert, "--key", &key]), &[]), None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--topic: required") && r.stderr.lines().count() == 1, "{}", r.stderr);
    assert_eq!(gw.stop().accepted, 200, "nothing sent without a topic");
}

#[test]
fn a_lines_own_headers_go_out_over_http2_and_are_skipped_over_binary() {
    let toks = tokens(2, 14);
    let bundle = pki().bundle_id();
    let dir = Dir::new();
    let text =
        format!("{{\"token\":\"{}\",\"topic\":\"{bundle}.voip\",\"push_type\":\"voip\"}}\n{}\n", toks[0], toks[1]);
    let list = dir.file("tokens.ndjson", &text);
    let (report, failed) = (dir.at("report.json"), dir.at("failed.ndjson"));

    let gw =
        h2_gateway(Config { http2: MockHttp2 { record_requests: true, ..MockHttp2::default() }, ..Config::default() });
    let r = run(&h2_args(&gw, &list, &["--report", &report]), None);
    assert_eq!(r.code, 0, "{r:?}");
    let seen = gw.accepted_requests();
    assert_eq!(gw.stop().accepted, 2);
    assert_eq!(seen[toks[0].as_bytes()].push_type.as_deref(), Some("voip"));
    assert_eq!(seen[toks[1].as_bytes()].push_type.as_deref(), Some("alert"));

    let gw = gateway(Config::default());
    let r = run(&send_args(&gw, &list, &["--api", "binary", "--report", &report, "--failed", &failed]), None);
    assert_eq!(r.code, 1, "a skipped line is a token not accepted: {r:?}");
    assert_eq!(gw.stop().accepted, 1);
    let rep = read_report(&report);
    assert_eq!((rep.accepted, rep.skipped, rep.unaccounted()), (1, 1, 0), "{rep:#?}");
    let [skipped] = &read_failed(&failed)[..] else { panic!("one failure") };
    assert_eq!((skipped.line, skipped.state), (1, State::Skipped));
    assert!(skipped.reason.contains("\"topic\" needs --api http2"), "{}", skipped.reason);
}
