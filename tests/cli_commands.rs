//! The built `apnsblast` binary's other commands (`merge`, `feedback`, `demo`,
//! `gen-tokens`), and the argument errors and help of all of them.

mod cli_common;
mod common;

use std::collections::BTreeSet;
use std::net::TcpListener;

use apnsblast::token::DeviceToken;
use cli_common::*;
use common::{gateway, list, pki, run, tokens};
use mock_gateway::{Config, Gateway};

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
fn partitions_merge_into_the_report_of_a_single_run() {
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
fn an_unreachable_feedback_service_exits_2_naming_its_address() {
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
    assert!(rep.rejected.get("8").copied().unwrap_or(0) > 0, "the default bad rate rejects some");
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
