//! `apnsblast send`, the built binary, against the in-process mock gateway:
//! exit statuses, the report, the `--failed` and `--invalid-tokens` files, and
//! the failures that stop a run before it sends (no gateway, unwritable output).

mod cli_common;
mod common;

use std::collections::{BTreeSet, HashMap};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use apnsblast::report::State;
use cli_common::*;
use common::{gateway, list, pki, run, tokens};
use mock_gateway::Config;

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
    assert_eq!(rep.rejected.get("8").copied(), Some(bad.len() as u64));
    assert_eq!(rep.accepted, 4000 - bad.len() as u64);
    assert_eq!(rep.unaccounted(), 0);
    let listed: BTreeSet<String> = std::fs::read_to_string(&invalid).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(listed, bad);
    let line_of: HashMap<String, u64> = toks.iter().enumerate().map(|(i, t)| (t.to_string(), i as u64 + 1)).collect();
    let failures = read_failed(&failed);
    assert_eq!(failures.len(), bad.len());
    for f in &failures {
        assert_eq!(
            (f.state, f.status.map(|s| s.number()), f.reason.as_str()),
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

#[test]
fn gateway_not_listening_exits_2_quickly() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(10, 14)));
    // An earlier run's report: a job reading it must not take it for this run's.
    let report = dir.file("report.json", r#"{"tokens_read": 10, "accepted": 10}"#);
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
    let rep = read_report(&report);
    assert!(rep.error.as_deref().is_some_and(|e| e.contains(&format!("127.0.0.1:{port}"))), "{rep:#?}");
    assert_eq!((rep.tokens_read, rep.accepted), (0, 0), "the report says this run's: nothing was sent");
}
