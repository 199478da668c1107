//! `apnsblast send`, the built binary, stopped mid-run: Ctrl-C writes the
//! report and exits 1; a run killed outright resumes from its journal.

mod cli_common;
mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use apnsblast::report::State;
use apnsblast::token::DeviceToken;
use cli_common::*;
use common::{gateway, list, run, tokens};
use mock_gateway::{Config, Handle};

/// Runs `a` until `gw` has accepted 2,000 notifications, then sends it
/// SIGINT (Ctrl-C); its exit status and standard error.
fn interrupted(a: &[String], gw: &Handle) -> (Option<i32>, String) {
    let child = Command::new(BIN)
        .args(a)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    gw.wait_until(Duration::from_secs(30), |s| s.accepted >= 2000).expect("the run gets going");
    assert!(Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
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
    let (code, stderr) = interrupted(&a, &gw);
    assert_eq!(code, Some(1), "{stderr}");
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
fn killed_runs_resume_from_the_journal_without_resending_settled_lines() {
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

/// With a journal, an interrupted run says to run the same command again
/// (the journal resumes it, not a line number), and a run whose journal
/// already settles the whole list says so instead of calling it empty.
#[test]
fn with_a_journal_the_same_command_resumes_and_a_settled_list_is_named() {
    let gw = gateway(Config { read_rate: Some(200_000), ..Config::default() });
    let dir = Dir::new();
    let list_path = dir.file("tokens.txt", &list(&tokens(100_000, 21)));
    let journal = dir.at("journal");
    let a = send_args(&gw, &list_path, &["--journal", &journal, "--window-bytes", "256K"]);
    let (_, stderr) = interrupted(&a, &gw);
    assert!(
        stderr.contains(&format!("run the same command again, with the same list and --journal {journal}")),
        "{stderr}"
    );
    assert!(!stderr.contains("tail -n"), "{stderr}");
    drop(gw);

    let gw = gateway(Config::default());
    // The journal counts lines of this list: a cut copy, or another list,
    // is refused before anything is sent, naming the journal.
    let text = std::fs::read_to_string(&list_path).unwrap();
    let cut = dir.file("rest.txt", &text.lines().skip(5_000).map(|l| format!("{l}\n")).collect::<String>());
    let other = dir.file("other.txt", &list(&tokens(1_000, 22)));
    for wrong in [&cut, &other] {
        let r = run(&send_args(&gw, wrong, &["--journal", &journal]), None);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.stderr.contains(&format!("--journal {journal}: it was started for another list")), "{}", r.stderr);
    }
    let a = send_args(&gw, &list_path, &["--journal", &journal]);
    assert_eq!(run(&a, None).code, 0, "the rest is sent");
    let r = run(&a, None);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stderr.contains("already settles every line of"), "{}", r.stderr);
    assert!(!r.stderr.contains("holds no tokens"), "{}", r.stderr);
}
