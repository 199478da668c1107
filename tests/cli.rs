//! The built `apnsblast` binary against the in-process mock gateway: exit
//! statuses, report fields, the `--failed` and `--invalid-tokens` files, and
//! every bad-input case a user meets.

mod common;

use std::collections::{BTreeSet, HashMap};

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use apnsblast::report::{Failure, Report, State};
use apnsblast::token::DeviceToken;
use common::{Run, gateway, list, pki, run, run_with, tokens};
use mock_gateway::{Config, Gateway, Handle, Pki};

const BIN: &str = env!("CARGO_BIN_EXE_apnsblast");

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// A scratch directory with helpers to put files in it.
struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().expect("tempdir"))
    }
    fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.path().join(name);
        std::fs::write(&p, text).expect("write test file");
        path(&p)
    }
    fn at(&self, name: &str) -> String {
        path(&self.0.path().join(name))
    }
    fn path(&self) -> &Path {
        self.0.path()
    }
}

/// `send` against `gw` with the test certificate, short timeouts, and `extra`.
fn send_args(gw: &Handle, tokens: &str, extra: &[&str]) -> Vec<String> {
    let p = pki();
    let mut a = args(&[
        "send",
        "--tokens",
        tokens,
        "--gateway",
        &format!("127.0.0.1:{}", gw.addr().port()),
        "--cert",
        &path(p.client_p12_path()),
        "--ca",
        &path(&p.ca_path()),
        "--response-timeout",
        "5",
        "--max-backoff",
        "0.2",
    ]);
    if !extra.iter().any(|a| *a == "--payload" || *a == "--alert") {
        a.extend(args(&["--alert", "hi"]));
    }
    a.extend(args(extra));
    a
}

fn read_report(p: &str) -> Report {
    serde_json::from_str(&std::fs::read_to_string(p).expect("report written")).expect("report is JSON")
}

fn read_failed(p: &str) -> Vec<Failure> {
    std::fs::read_to_string(p)
        .expect("failed list written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON failure line"))
        .collect()
}

fn bad_in(gw: &Handle, list: &[DeviceToken]) -> BTreeSet<String> {
    list.iter().filter(|t| gw.is_bad(t.as_bytes())).map(|t| t.to_string()).collect()
}

/// The mock saw nothing at all: no connection, no notification.
fn assert_untouched(gw: Handle) {
    let stats = gw.stop();
    assert_eq!(stats.connections + stats.handshakes_failed, 0, "{stats:?}");
    assert_eq!(stats.accepted, 0);
}

#[test]
fn clean_list_exits_0_with_a_full_report() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let toks = tokens(3000, 1);
    let list = dir.file("tokens.txt", &list(&toks));
    let (report, failed, invalid) = (dir.at("report.json"), dir.at("failed.ndjson"), dir.at("invalid.txt"));
    let r = run(
        &send_args(
            &gw,
            &list,
            &["--report", &report, "--failed", &failed, "--invalid-tokens", &invalid, "--shards", "3"],
        ),
        None,
    );
    assert_eq!(r.code, 0, "{r:?}");
    let rep = read_report(&report);
    assert_eq!((rep.tokens_read, rep.accepted, rep.skipped, rep.unsent, rep.unconfirmed), (3000, 3000, 0, 0, 0));
    assert!(rep.rejected.is_empty());
    assert_eq!(rep.shards, 3);
    assert_eq!(rep.per_shard.len(), 3);
    assert_eq!(rep.per_shard.iter().map(|s| s.accepted).sum::<u64>(), 3000);
    assert!(rep.elapsed_s > 0.0 && rep.rate_per_s > 0.0);
    assert!(read_failed(&failed).is_empty());
    assert_eq!(std::fs::read_to_string(&invalid).unwrap(), "");
    assert!(r.stdout.contains("accepted") && r.stdout.contains("all 3000 tokens accepted"), "{}", r.stdout);
    assert_eq!(gw.stop().accepted, 3000);
}

#[test]
fn invalid_tokens_are_listed_for_pruning() {
    let gw = gateway(Config { bad_rate: 0.01, seed: 5, ..Config::default() });
    let dir = Dir::new();
    let toks = tokens(4000, 2);
    let bad = bad_in(&gw, &toks);
    assert!(bad.len() > 10);
    let list = dir.file("tokens.txt", &list(&toks));
    let (report, failed, invalid) = (dir.at("report.json"), dir.at("failed.ndjson"), dir.at("invalid.txt"));
    let r =
        run(&send_args(&gw, &list, &["--report", &report, "--failed", &failed, "--invalid-tokens", &invalid]), None);
    assert_eq!(r.code, 1, "{r:?}");
    let rep = read_report(&report);
    assert_eq!(rep.rejected.get(&8).copied(), Some(bad.len() as u64));
    assert_eq!(rep.accepted, 4000 - bad.len() as u64);
    assert_eq!(rep.unaccounted(), 0);
    let listed: BTreeSet<String> = std::fs::read_to_string(&invalid).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(listed, bad);
    let line_of: HashMap<String, u64> = toks.iter().enumerate().map(|(i, t)| (t.to_string(), i as u64 + 1)).collect();
    let failures = read_failed(&failed);
    assert_eq!(failures.len(), bad.len());
    for f in &failures {
        assert_eq!(
            (f.state, f.status.map(|s| s.code()), f.reason.as_str()),
            (State::Rejected, Some(8), "invalid token")
        );
        assert_eq!(line_of[&f.token], f.line, "line number of {}", f.token);
    }
    assert!(r.stdout.contains("invalid token (8)"), "{}", r.stdout);
    let stats = gw.stop();
    assert_eq!(stats.accepted, rep.accepted);
    assert_eq!(stats.duplicates, 0);
}

#[test]
fn junk_lines_and_duplicates_are_skipped_and_listed() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let t = tokens(5, 3);
    let text = format!(
        "# exported from the users table\n{}\n\nnot-a-token\n{}\n<{} >\n{}\n{}\n{}\n",
        t[0],
        &t[1].to_string()[..60],
        t[2],
        t[0],
        t[3],
        t[4].to_string().to_uppercase()
    );
    let list = dir.file("tokens.txt", &text);
    let (report, failed) = (dir.at("report.json"), dir.at("failed.ndjson"));
    let r = run(&send_args(&gw, &list, &["--report", &report, "--failed", &failed]), None);
    assert_eq!(r.code, 1, "skipped lines make the run incomplete: {r:?}");
    let rep = read_report(&report);
    assert_eq!((rep.tokens_read, rep.accepted, rep.skipped), (7, 4, 3));
    let failures = read_failed(&failed);
    let got: Vec<(u64, State, &str)> = failures.iter().map(|f| (f.line, f.state, f.reason.as_str())).collect();
    assert_eq!(got.len(), 3, "{failures:?}");
    assert!(got.iter().all(|(_, s, _)| *s == State::Skipped));
    let by_line: HashMap<u64, &str> = got.iter().map(|(l, _, r)| (*l, *r)).collect();
    assert!(by_line[&4].starts_with("invalid token"), "{by_line:?}");
    assert!(by_line[&5].starts_with("invalid token") && by_line[&5].contains("60"), "{by_line:?}");
    assert_eq!(by_line[&7], "duplicate token");
    assert_eq!(gw.stop().accepted, 4);
}

#[test]
fn no_dedup_sends_repeats() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let t = tokens(2, 4);
    let list = dir.file("tokens.txt", &format!("{}\n{}\n{}\n", t[0], t[1], t[0]));
    let r = run(&send_args(&gw, &list, &["--no-dedup"]), None);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(gw.stop().accepted, 3);
}

#[test]
fn strict_input_sends_nothing_when_a_line_is_bad() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let mut text = list(&tokens(50, 5));
    text.push_str("deadbeef\n");
    let list = dir.file("tokens.txt", &text);
    let report = dir.at("report.json");
    let r = run(&send_args(&gw, &list, &["--strict-input", "--report", &report]), None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("tokens.txt:51:"), "{}", r.stderr);
    assert!(r.stderr.contains("nothing was sent"), "{}", r.stderr);
    assert!(!Path::new(&report).exists(), "no report for a run that did not happen");
    assert_untouched(gw);
}

#[test]
fn strict_input_checks_stdin_too() {
    let gw = gateway(Config::default());
    let mut text = list(&tokens(20, 6));
    let r = run(&send_args(&gw, "-", &["--strict-input"]), Some(&text));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(gw.stats().accepted, 20);
    text.push_str("zz\n");
    let r = run(&send_args(&gw, "-", &["--strict-input"]), Some(&text));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("stdin:21:"), "{}", r.stderr);
    assert_eq!(gw.stop().accepted, 20, "nothing more sent");
}

#[test]
fn tokens_from_stdin() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let report = dir.at("report.json");
    let r = run(&send_args(&gw, "-", &["--report", &report]), Some(&list(&tokens(1500, 7))));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(read_report(&report).accepted, 1500);
    assert_eq!(gw.stop().accepted, 1500);
}

#[test]
fn ndjson_lines_carry_their_own_payloads() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let t = tokens(4, 8);
    let big = "x".repeat(3000);
    let text = format!(
        "{{\"token\": \"{}\", \"payload\": {{\"aps\": {{\"alert\": \"one\"}}}}}}\n\
         {{\"token\": \"{}\"}}\n\
         {{\"token\": \"{}\", \"payload\": {{\"aps\": {{\"alert\": \"{big}\"}}}}}}\n\
         {{\"token\": \"{}\", \"paylod\": {{}}}}\n",
        t[0], t[1], t[2], t[3]
    );
    let list = dir.file("tokens.ndjson", &text);
    let (report, failed) = (dir.at("report.json"), dir.at("failed.ndjson"));
    let r = run(&send_args(&gw, &list, &["--report", &report, "--failed", &failed]), None);
    assert_eq!(r.code, 1, "{r:?}");
    let rep = read_report(&report);
    assert_eq!((rep.accepted, rep.skipped), (2, 2));
    let failures = read_failed(&failed);
    let lines: Vec<(u64, bool)> = failures.iter().map(|f| (f.line, f.reason.contains("payload"))).collect();
    assert!(lines.contains(&(3, true)), "{failures:?}");
    assert!(failures.iter().any(|f| f.line == 4 && f.reason.starts_with("invalid JSON line")), "{failures:?}");
    let delivered = gw.deliveries();
    assert!(delivered.contains_key(t[0].as_bytes()) && delivered.contains_key(t[1].as_bytes()));
}

#[test]
fn payload_problems_stop_before_any_connection() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(10, 9)));
    let not_json = dir.file("bad.json", "{\n  \"aps\": {\"alert\": }\n}\n");
    let r = run(&send_args(&gw, &list, &["--payload", &not_json]), None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("bad.json") && r.stderr.contains("line 2 column"), "{}", r.stderr);

    let big = dir.file("big.json", &format!("{{\"aps\":{{\"alert\":\"{}\"}}}}", "x".repeat(2100)));
    let r = run(&send_args(&gw, &list, &["--payload", &big]), None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("payload is 2120 bytes, the limit is 2048 bytes"), "{}", r.stderr);

    let r = run(&send_args(&gw, &list, &["--alert", &"y".repeat(300), "--format", "1"]), None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--alert") && r.stderr.contains("the limit is 256 bytes"), "{}", r.stderr);

    let missing = dir.at("missing.json");
    let r = run(&send_args(&gw, &list, &["--payload", &missing]), None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("missing.json") && r.stderr.contains("cannot read"), "{}", r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "one line: {}", r.stderr);
    assert_untouched(gw);
}

#[test]
fn unreadable_token_list_names_the_file() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let missing = dir.at("nope.txt");
    let r = run(&send_args(&gw, &missing, &[]), None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("nope.txt") && r.stderr.contains("cannot open"), "{}", r.stderr);
    let r = run(&send_args(&gw, &path(dir.path()), &[]), None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("is a directory"), "{}", r.stderr);
    assert_untouched(gw);
}

#[test]
fn unwritable_output_fails_before_sending() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(10, 10)));
    let report = path(&dir.path().join("no-such-dir").join("report.json"));
    let r = run(&send_args(&gw, &list, &["--report", &report]), None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--report") && r.stderr.contains("no-such-dir"), "{}", r.stderr);
    assert_untouched(gw);
}

/// `send` with a certificate other than the test PKI's default.
fn send_with_cert(gw: &Handle, list: &str, cert: &[&str], env: &[(&str, &str)]) -> Run {
    let mut a = args(&["send", "--tokens", list, "--alert", "hi", "--gateway"]);
    a.push(format!("127.0.0.1:{}", gw.addr().port()));
    a.extend(args(&["--ca", &path(&pki().ca_path()), "--max-failures", "2", "--max-backoff", "0.1"]));
    a.extend(args(cert));
    run_with(&a, None, env)
}

#[test]
fn p12_passwords() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let now = SystemTime::now();
    let year = Duration::from_secs(365 * 86400);
    let id = pki().issue_client(dir.path(), "locked", now - year, now + year, "s3cret").unwrap();
    let list = dir.file("tokens.txt", &list(&tokens(10, 11)));
    let p12 = path(&id.p12_path);

    let r = send_with_cert(&gw, &list, &["--cert", &p12, "--cert-password-env", "APNS_PW"], &[("APNS_PW", "wrong")]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("locked.p12") && r.stderr.contains("wrong password"), "{}", r.stderr);

    let r = send_with_cert(&gw, &list, &["--cert", &p12], &[]);
    assert_eq!(r.code, 2, "no terminal, no password: {r:?}");
    assert!(r.stderr.contains("locked.p12") && r.stderr.contains("--cert-password-env"), "{}", r.stderr);

    let r = send_with_cert(&gw, &list, &["--cert", &p12, "--cert-password-env", "APNS_PW_UNSET"], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("APNS_PW_UNSET is not set"), "{}", r.stderr);
    assert_eq!(gw.stats().accepted, 0);

    let r = send_with_cert(&gw, &list, &["--cert", &p12, "--cert-password-env", "APNS_PW"], &[("APNS_PW", "s3cret")]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(gw.stop().accepted, 10);
}

#[test]
fn pem_certificate_needs_its_key() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(10, 12)));
    let cert = path(pki().client_pem_path());
    let r = send_with_cert(&gw, &list, &["--cert", &cert], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("client.pem") && r.stderr.contains("no private key"), "{}", r.stderr);
    assert_eq!(gw.stats().connections, 0);
    let r = send_with_cert(&gw, &list, &["--cert", &cert, "--key", &path(pki().client_key_path())], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("readable by group or others"), "the generated key is 0600: {}", r.stderr);
    // The same key readable by everyone still works, with a warning.
    let exposed = dir.file("exposed.key", &std::fs::read_to_string(pki().client_key_path()).unwrap());
    std::fs::set_permissions(&exposed, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let r = send_with_cert(&gw, &list, &["--cert", &cert, "--key", &exposed], &[]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("exposed.key") && r.stderr.contains("readable by group or others"), "{}", r.stderr);
    assert_eq!(gw.stop().accepted, 20);
}

#[test]
fn expired_and_future_certificates() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let now = SystemTime::now();
    let day = Duration::from_secs(86400);
    let old = pki().issue_client(dir.path(), "old", now - 400 * day, now - 35 * day, "").unwrap();
    let new = pki().issue_client(dir.path(), "new", now + 30 * day, now + 400 * day, "").unwrap();
    let list = dir.file("tokens.txt", &list(&tokens(5, 13)));
    let r = send_with_cert(&gw, &list, &["--cert", &path(&old.p12_path)], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("old.p12") && r.stderr.contains("expired"), "{}", r.stderr);
    let r = send_with_cert(&gw, &list, &["--cert", &path(&new.p12_path)], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("new.p12") && r.stderr.contains("not valid before"), "{}", r.stderr);
    assert_untouched(gw);
}

#[test]
fn gateway_not_listening_exits_2_quickly() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(10, 14)));
    let report = dir.at("report.json");
    let p = pki();
    let a = args(&[
        "send",
        "--tokens",
        &list,
        "--alert",
        "hi",
        "--gateway",
        &format!("127.0.0.1:{port}"),
        "--cert",
        &path(p.client_p12_path()),
        "--ca",
        &path(&p.ca_path()),
        "--max-failures",
        "2",
        "--max-backoff",
        "0.1",
        "--connect-timeout",
        "2",
        "--report",
        &report,
    ]);
    let started = Instant::now();
    let r = run(&a, None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    assert!(r.stderr.contains(&format!("127.0.0.1:{port}")), "{}", r.stderr);
    assert!(!Path::new(&report).exists());
}

#[test]
fn a_certificate_the_gateway_refuses() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let rogue = Pki::rogue_client(dir.path(), "rogue", "").unwrap();
    let list = dir.file("tokens.txt", &list(&tokens(10, 15)));
    let started = Instant::now();
    let r = send_with_cert(&gw, &list, &["--cert", &path(&rogue.p12_path)], &[]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("does not accept this certificate"), "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(20));
    assert_eq!(gw.stop().accepted, 0);
}

#[test]
fn insecure_warns_every_run() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(10, 16)));
    let p = pki();
    let mut a = args(&["-q", "send", "--tokens", &list, "--alert", "hi", "--insecure", "--cert"]);
    a.push(path(p.client_p12_path()));
    a.extend(args(&["--gateway", &format!("127.0.0.1:{}", gw.addr().port())]));
    let r = run(&a, None);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("WARNING: --insecure"), "{}", r.stderr);
    assert_eq!(r.stdout, "", "-q prints no summary");
}

#[test]
fn bad_arguments_exit_2() {
    for bad in [
        &["send", "--tokens", "x", "--alert", "a", "--cert", "c", "--priority", "7"][..],
        &["send", "--tokens", "x", "--alert", "a", "--cert", "c", "--sandbox", "--gateway", "h:1"],
        &["send", "--tokens", "x", "--alert", "a", "--cert", "c", "--partition", "3/3"],
        &["send", "--tokens", "x", "--alert", "a", "--cert", "c", "--format", "0"],
        &["send", "--tokens", "x", "--badge", "3", "--cert", "c"],
        &["send", "--tokens", "x", "--cert", "c"],
        &["send", "--tokens", "x", "--alert", "a", "--cert", "c", "--gateway", "host:port"],
        &["send", "--tokens", "x", "--alert", "a", "--cert", "c", "--shards", "0"],
        &["gen-tokens", "10", "--junk", "2"],
        &["merge"],
    ] {
        let r = run(&args(bad), None);
        assert_eq!(r.code, 2, "{bad:?}: {r:?}");
        assert!(!r.stderr.is_empty());
    }
}

#[test]
fn partitions_merge_to_a_single_run() {
    let dir = Dir::new();
    let toks = tokens(3000, 17);
    let mut text = list(&toks);
    text.push_str("junk line\nshort 1234\n");
    text.push_str(&format!("{}\n{}\n", toks[10], toks[20]));
    let list = dir.file("tokens.txt", &text);
    let config = || Config { bad_rate: 0.005, seed: 3, ..Config::default() };

    let single_gw = gateway(config());
    let single = dir.at("single.json");
    let r = run(&send_args(&single_gw, &list, &["--report", &single]), None);
    assert_eq!(r.code, 1, "{r:?}");
    single_gw.stop();
    let single = read_report(&single);

    let gw = gateway(config());
    let (mut parts, mut shards) = (Vec::new(), 0);
    for k in 0..3 {
        let part = dir.at(&format!("part{k}.json"));
        let r = run(&send_args(&gw, &list, &["--partition", &format!("{k}/3"), "--report", &part]), None);
        assert!(r.code == 0 || r.code == 1, "{r:?}");
        let rep = read_report(&part);
        assert!(rep.tokens_read > 500 && rep.other_partitions > 500, "{rep:?}");
        shards += rep.shards;
        parts.push(part);
    }
    let merged = dir.at("merged.json");
    let mut a = args(&["merge"]);
    a.extend(parts.iter().cloned());
    a.extend(args(&["--report", &merged]));
    let r = run(&a, None);
    assert_eq!(r.code, 1, "the list has invalid tokens and junk: {r:?}");
    assert!(r.stdout.contains("tokens read"), "{}", r.stdout);
    let m = read_report(&merged);
    assert_eq!(
        (m.tokens_read, m.accepted, m.rejected.clone(), m.skipped, m.unsent, m.unconfirmed),
        (single.tokens_read, single.accepted, single.rejected.clone(), single.skipped, 0, 0)
    );
    assert_eq!(m.shards, shards);
    let deliveries = gw.deliveries();
    for t in &toks {
        let n = deliveries.get(t.as_bytes()).copied().unwrap_or(0);
        assert_eq!(n, u32::from(!gw.is_bad(t.as_bytes())), "token {t} delivered {n} times");
    }
}

#[test]
fn merge_rejects_a_file_that_is_not_a_report() {
    let dir = Dir::new();
    let not = dir.file("not.json", "{\"hello\": 1}");
    let r = run(&args(&["merge", &not]), None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("not.json") && r.stderr.contains("not an apnsblast report"), "{}", r.stderr);
}

#[test]
fn feedback_prints_the_services_tuples() {
    let tuples: Vec<(u32, [u8; 32])> =
        tokens(3, 18).iter().enumerate().map(|(i, t)| (1_600_000_000 + i as u32, t.0)).collect();
    let config = Config { feedback: tuples.clone(), ..Config::default() };
    let p = pki();
    let gw = Gateway::start(config, p, "127.0.0.1:0".parse().unwrap(), Some("127.0.0.1:0".parse().unwrap())).unwrap();
    let fb = gw.feedback_addr().unwrap();
    let a = args(&[
        "feedback",
        "--gateway",
        &fb.to_string(),
        "--cert",
        &path(p.client_p12_path()),
        "--ca",
        &path(&p.ca_path()),
        "--timeout",
        "10",
    ]);
    let r = run(&a, None);
    assert_eq!(r.code, 0, "{r:?}");
    let expected: String = tuples.iter().map(|(time, tok)| format!("{time}\t{}\n", DeviceToken(*tok))).collect();
    assert_eq!(r.stdout, expected);
    // The list is handed out once.
    let dir = Dir::new();
    let out = dir.at("feedback.tsv");
    let mut a2 = a.clone();
    a2.extend(args(&["--out", &out]));
    let r = run(&a2, None);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "");
    assert_eq!(gw.stop().feedback_tuples, 3);
}

#[test]
fn feedback_service_unreachable() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let p = pki();
    let r = run(
        &args(&[
            "feedback",
            "--gateway",
            &format!("127.0.0.1:{port}"),
            "--cert",
            &path(p.client_p12_path()),
            "--timeout",
            "2",
        ]),
        None,
    );
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains(&format!("127.0.0.1:{port}")), "{}", r.stderr);
}

#[test]
fn demo_agrees_with_the_mock() {
    let dir = Dir::new();
    let report = dir.at("report.json");
    let r = run(&args(&["demo", "--tokens", "20000", "--report", &report]), None);
    assert!(r.code == 0 || r.code == 1, "{r:?}");
    assert!(r.stdout.contains("agreement: YES"), "{}", r.stdout);
    assert!(r.stdout.contains("mock gateway"), "{}", r.stdout);
    let rep = read_report(&report);
    assert_eq!(rep.tokens_read, 20000);
    assert_eq!(rep.unaccounted(), 0);
    let clean = rep.accepted == 20000;
    assert_eq!(r.code, if clean { 0 } else { 1 });
    assert!(rep.rejected.get(&8).copied().unwrap_or(0) > 0, "the default bad rate rejects some");
}

#[test]
fn gen_tokens_is_deterministic() {
    let a = run(&args(&["gen-tokens", "1000", "--seed", "42"]), None);
    let b = run(&args(&["gen-tokens", "1000", "--seed", "42"]), None);
    let c = run(&args(&["gen-tokens", "1000", "--seed", "43"]), None);
    assert_eq!(a.code, 0, "{a:?}");
    assert_eq!(a.stdout, b.stdout);
    assert_ne!(a.stdout, c.stdout);
    let lines: BTreeSet<&str> = a.stdout.lines().collect();
    assert_eq!(lines.len(), 1000, "distinct");
    assert!(lines.iter().all(|l| DeviceToken::parse(l).is_ok()));

    let dir = Dir::new();
    let out = dir.at("junk.txt");
    let j = run(&args(&["gen-tokens", "1000", "--seed", "42", "--junk", "0.1", "--out", &out]), None);
    assert_eq!(j.code, 0, "{j:?}");
    assert!(j.stderr.contains("wrote 1000 tokens"), "{}", j.stderr);
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(text.lines().count() > 1050, "junk lines added");
}

#[test]
fn ctrl_c_stops_writes_the_report_and_exits_1() {
    // A gateway that reads slowly, so the run is still going when interrupted:
    // at 200 KB/s a connection, the list takes more than 5 s to be read.
    let gw = gateway(Config { read_rate: Some(200_000), ..Config::default() });
    let dir = Dir::new();
    // Lines 501-1000 repeat lines 1-500: the duplicate check holds them, and
    // the interrupted run must still account for them.
    let mut ts = tokens(100_000, 19);
    ts.splice(500..500, ts[..500].to_vec());
    let list = dir.file("tokens.txt", &list(&ts));
    let (report, failed) = (dir.at("report.json"), dir.at("failed.ndjson"));
    let a = send_args(&gw, &list, &["--report", &report, "--failed", &failed, "--window-bytes", "256K"]);
    let child = Command::new(BIN)
        .args(&a)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    gw.wait_until(Duration::from_secs(30), |s| s.accepted >= 2000).expect("the run gets going");
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let rep = read_report(&report);
    assert!(rep.interrupted);
    assert_eq!(rep.unaccounted(), 0);
    assert!(rep.tokens_read < 100_000, "{rep:?}");
    assert!(stderr.contains("resume from line"), "{stderr}");
    if rep.unsent > 0 {
        assert!(stderr.contains("select(.state==\"unsent\")"), "{stderr}");
    }
    let failures = read_failed(&failed);
    let unsent = failures.iter().filter(|f| f.state == State::Unsent).count() as u64;
    assert_eq!(unsent, rep.unsent);
    let repeats: Vec<u64> = failures.iter().filter(|f| f.reason == "duplicate token").map(|f| f.line).collect();
    assert_eq!(repeats, (501..=1000).collect::<Vec<u64>>());
    assert_eq!(rep.skipped, 500);
}

#[test]
fn help_states_the_defaults() {
    let r = run(&args(&["send", "--help"]), None);
    assert_eq!(r.code, 0);
    let shards = apnsblast::run::SendConfig::new("", Default::default(), &b"{}"[..]).shards;
    assert!(r.stdout.contains(&format!("[default: {shards}]")), "{}", r.stdout);
    for flag in
        ["--tokens", "--payload", "--alert", "--cert-password-env", "--sandbox", "--partition", "--invalid-tokens"]
    {
        assert!(r.stdout.contains(flag), "{flag} missing from send --help");
    }
}

#[test]
fn killed_runs_resume_from_the_journal() {
    // A slow gateway so the run is mid-blast when it is killed; small windows
    // so the journal is written often.
    let gw = gateway(Config { bad_rate: 0.002, seed: 4, read_rate: Some(4_000_000), ..Config::default() });
    let tokens = tokens(60_000, 23);
    let dir = Dir::new();
    let list_path = dir.file("tokens.txt", &list(&tokens));
    let journal = dir.at("journal");
    let a = send_args(&gw, &list_path, &["--journal", &journal, "--confirm-every", "1000"]);
    let line_of: HashMap<[u8; 32], u64> = tokens.iter().enumerate().map(|(i, t)| (t.0, i as u64 + 1)).collect();

    // Kill twice at points drawn from a seed, each time with SIGKILL: no
    // chance to write anything on the way out.
    let mut x = 0x5EED_u64;
    let mut accepted_floor = 0;
    // After each kill, the journal and what the gateway had been sent.
    let mut snapshots = Vec::new();
    for _ in 0..2 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let at = accepted_floor + 2_000 + (x >> 33) % 15_000;
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
        accepted_floor = gw.stats().accepted;
        let settled = apnsblast::journal::LineSet::load(Path::new(&journal)).expect("journal readable after SIGKILL");
        assert!(!settled.is_empty());
        snapshots.push((settled, gw.deliveries()));
    }
    let (settled, _) = snapshots.last().cloned().unwrap();
    let report = dir.at("report.json");
    let mut last = a.clone();
    last.extend(args(&["--report", &report]));
    let r = run(&last, None);
    assert_eq!(r.code, 1, "rejections make exit 1: {r:?}");
    let rep = read_report(&report);
    assert_eq!(rep.unaccounted(), 0);
    assert_eq!(rep.previously_settled, settled.len());
    assert_eq!(rep.tokens_read + rep.previously_settled, tokens.len() as u64, "{rep:#?}");

    let after = gw.deliveries();
    let count = |deliveries: &HashMap<[u8; 32], u32>, t: &DeviceToken| deliveries.get(&t.0).copied().unwrap_or(0);
    for t in &tokens {
        let n = count(&after, t);
        let line = line_of[&t.0];
        if gw.is_bad(&t.0) {
            assert_eq!(n, 0);
        } else {
            assert!(n >= 1, "line {line} lost");
        }
    }
    // No run sends again what the journal held when it started: each token
    // delivered twice was still unconfirmed at a kill.
    snapshots.push((settled, after));
    for pair in snapshots.windows(2) {
        let ((settled, before), (_, after)) = (&pair[0], &pair[1]);
        for t in tokens.iter().filter(|t| settled.contains(line_of[&t.0])) {
            assert_eq!(count(after, t), count(before, t), "line {} settled before a resume, sent again", line_of[&t.0]);
        }
    }
}

#[test]
fn duplicates_are_still_skipped_without_a_temporary_directory() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let ts = tokens(50, 23);
    let mut lines = ts.clone();
    lines.extend_from_slice(&ts[..10]);
    let list = dir.file("tokens.txt", &list(&lines));
    let report = dir.at("report.json");
    let r =
        run_with(&send_args(&gw, &list, &["--report", &report]), None, &[("TMPDIR", "/nonexistent/apnsblast-test")]);
    assert_eq!(r.code, 1, "skipped duplicates make the exit status 1: {r:?}");
    assert!(r.stderr.contains("temporary file for duplicate detection"), "{}", r.stderr);
    let rep = read_report(&report);
    assert_eq!((rep.accepted, rep.skipped), (50, 10));
}
