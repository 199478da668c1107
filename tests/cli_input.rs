//! `apnsblast send`, the built binary: what it makes of its input. Junk and
//! duplicate lines, `--strict-input`, stdin, NDJSON lines with their own
//! payloads, bad payloads and unreadable lists.

mod cli_common;
mod common;

use std::collections::HashMap;

use apnsblast::report::State;
use cli_common::*;
use common::{gateway, list, run, run_with, tokens};
use mock_gateway::Config;

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
    let rep = read_report(&report);
    assert!(rep.error.as_deref().is_some_and(|e| e.contains("line 51")), "{rep:#?}");
    assert_eq!((rep.tokens_read, rep.accepted), (0, 0), "the run did not happen");
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
fn a_token_list_on_stdin_is_sent_in_full() {
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

/// A list saved as UTF-16 (what some Windows tools write) is named as such
/// instead of every line being skipped as junk.
#[test]
fn a_utf16_list_is_refused_with_the_fix() {
    let gw = gateway(Config::default());
    let dir = Dir::new();
    let path = dir.at("tokens.txt");
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(list(&tokens(3, 6)).encode_utf16().flat_map(u16::to_le_bytes));
    std::fs::write(&path, bytes).unwrap();
    let r = run(&send_args(&gw, &path, &[]), None);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("is UTF-16 text; save it as UTF-8"), "{}", r.stderr);
    assert_untouched(gw);
}
