//! `apnsblast send --api http2`, the built binary, stopped by answers about
//! the run: exit status 1 with one line naming the cause and the fix,
//! nothing settled in the journal, and the corrected command with the same
//! journal sends every token exactly once; the environment guard writes no
//! `--invalid-tokens` list unless told the list is stale.

mod cli_common;
mod common;

use std::path::Path;

use apnsblast::journal::LineSet;
use apnsblast::report::State;
use cli_common::*;
use common::{list, pki, run, tokens};
use mock_gateway::config::Http2Config as MockHttp2;
use mock_gateway::{Config, Http2Gateway, Http2Handle};

fn h2_gateway(config: Config) -> Http2Handle {
    let _ = env_logger::builder().is_test(true).try_init();
    Http2Gateway::start(&config, pki(), "127.0.0.1:0".parse().unwrap()).expect("HTTP/2 mock starts")
}

/// `send --api http2` to `gw` with the mock's `.p8` key, team id and topic.
fn h2_args(gw: &Http2Handle, tokens: &str, extra: &[&str]) -> Vec<String> {
    h2_args_for(gw, pki().bundle_id(), tokens, extra)
}

/// As [`h2_args`], with `topic`.
fn h2_args_for(gw: &Http2Handle, topic: &str, tokens: &str, extra: &[&str]) -> Vec<String> {
    let p = pki();
    let mut a = args(&["send", "--api", "http2", "--tokens", tokens, "--gateway"]);
    a.push(format!("127.0.0.1:{}", gw.addr().port()));
    a.extend(args(&["--ca", &path(&p.ca_path()), "--response-timeout", "5", "--max-backoff", "0.2"]));
    a.extend(args(&["--auth-key", &path(&p.auth_key_path()), "--team-id", p.team_id(), "--topic", topic]));
    a.extend(args(&["--alert", "hi", "--shards", "2", "--streams", "20"]));
    a.extend(args(extra));
    a
}

fn settled(journal: &str) -> u64 {
    LineSet::load(Path::new(journal)).map_or(0, |s| s.len())
}

#[test]
fn a_wrong_topic_stops_with_nothing_settled_and_the_corrected_rerun_sends_every_token_once() {
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(2_000, 31)));
    let (journal, report, failed, invalid) =
        (dir.at("journal"), dir.at("report.json"), dir.at("failed.ndjson"), dir.at("invalid.txt"));
    let mock = MockHttp2 { reject_all: Some("BadTopic".into()), ..MockHttp2::default() };
    let wrong = h2_gateway(Config { http2: mock, ..Config::default() });
    let extra = ["--journal", &journal, "--report", &report, "--failed", &failed, "--invalid-tokens", &invalid];
    let r = run(&h2_args(&wrong, &list, &extra), None);
    assert_eq!(r.code, 1, "{r:?}");
    let stops: Vec<&str> = r.stderr.lines().filter(|l| l.contains("stopped")).collect();
    assert_eq!(
        stops,
        [
            "apnsblast: stopped: Apple answered 400 BadTopic; the topic is not an app of this key or certificate; check --topic"
        ],
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("resume from line"), "the journal, not a line number, resumes it: {}", r.stderr);
    let stats = wrong.stop();
    assert!(stats.rejected_for("BadTopic") <= 40, "stopped within the streams in flight: {stats:?}");
    let rep = read_report(&report);
    assert_eq!(rep.stopped.as_ref().map(|s| s.cause.as_str()), Some("Apple answered 400 BadTopic"));
    assert_eq!((rep.accepted, rep.rejected_total(), rep.unaccounted()), (0, 0, 0), "{rep:#?}");
    assert_eq!(rep.unsent, rep.tokens_read);
    assert_eq!(settled(&journal), 0, "nothing settled");
    let failures = read_failed(&failed);
    assert_eq!(failures.len() as u64, rep.tokens_read);
    let reason = "not sent: the run stopped: Apple answered 400 BadTopic";
    assert!(failures.iter().all(|f| f.state == State::Unsent && f.reason == reason), "{:?}", failures[0]);
    assert_eq!(std::fs::read_to_string(&invalid).unwrap(), "", "no token is invalid");

    let right = h2_gateway(Config::default());
    let rerun = dir.at("rerun.json");
    let r = run(&h2_args(&right, &list, &["--journal", &journal, "--report", &rerun]), None);
    assert_eq!(r.code, 0, "{r:?}");
    let stats = right.stop();
    assert_eq!((stats.accepted, stats.distinct_tokens, stats.duplicates), (2_000, 2_000, 0), "{stats:?}");
    let rep = read_report(&rerun);
    assert_eq!((rep.previously_settled, rep.accepted, rep.stopped), (0, 2_000, None));
    assert_eq!(settled(&journal), 2_000);
}

#[test]
fn a_list_of_the_other_environment_stops_and_lists_no_invalid_tokens_unless_allowed() {
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(1_500, 32)));
    let (journal, report, invalid) = (dir.at("journal"), dir.at("report.json"), dir.at("invalid.txt"));
    let gw = h2_gateway(Config { bad_rate: 1.0, ..Config::default() });
    let extra = ["--journal", &journal, "--report", &report, "--invalid-tokens", &invalid];
    let r = run(&h2_args(&gw, &list, &extra), None);
    assert_eq!(r.code, 1, "{r:?}");
    let stop = r.stderr.lines().find(|l| l.starts_with("apnsblast: stopped: ")).expect("a stop line");
    assert!(stop.contains("other environment") && stop.contains("--sandbox"), "{stop}");
    assert!(r.stdout.contains("no invalid-tokens list"), "{}", r.stdout);
    assert!(!Path::new(&invalid).exists(), "no list that would have good tokens deleted");
    assert!(read_report(&report).stopped.is_some_and(|s| s.wrong_environment));
    assert_eq!(settled(&journal), 0, "none of the BadDeviceToken answers is settled");
    gw.stop();

    let gw = h2_gateway(Config { bad_rate: 1.0, ..Config::default() });
    let r = run(
        &h2_args(&gw, &list, &["--journal", &journal, "--invalid-tokens", &invalid, "--allow-invalid-majority"]),
        None,
    );
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!r.stderr.contains("stopped"), "{}", r.stderr);
    assert_eq!(gw.stop().rejected_for("BadDeviceToken"), 1_500, "the rerun sent every token");
    assert_eq!(std::fs::read_to_string(&invalid).unwrap().lines().count(), 1_500);
    assert_eq!(settled(&journal), 1_500);
}

/// With token auth one key serves every app of the team, so another app's
/// bundle id passes as a topic and Apple answers DeviceTokenNotForTopic for
/// each token: the guard stops the run before a journal settles the list.
#[test]
fn another_apps_topic_stops_with_nothing_settled_and_the_corrected_rerun_sends_every_token_once() {
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(1_500, 34)));
    let (journal, report) = (dir.at("journal"), dir.at("report.json"));
    let gw = h2_gateway(Config::default());
    let r = run(&h2_args_for(&gw, "org.example.other", &list, &["--journal", &journal, "--report", &report]), None);
    assert_eq!(r.code, 1, "{r:?}");
    let stop = r.stderr.lines().find(|l| l.starts_with("apnsblast: stopped: ")).expect("a stop line");
    assert!(stop.contains("DeviceTokenNotForTopic") && stop.contains("--topic"), "{stop}");
    let stats = gw.stop();
    assert!(stats.rejected_for("DeviceTokenNotForTopic") < 1_000, "stopped early: {stats:?}");
    let rep = read_report(&report);
    assert!(rep.stopped.as_ref().is_some_and(|s| !s.wrong_environment), "{rep:#?}");
    assert_eq!((rep.accepted, rep.unaccounted()), (0, 0), "{rep:#?}");
    assert_eq!(settled(&journal), 0, "none of the DeviceTokenNotForTopic answers is settled");

    let gw = h2_gateway(Config::default());
    let r = run(&h2_args(&gw, &list, &["--journal", &journal]), None);
    assert_eq!(r.code, 0, "{r:?}");
    let stats = gw.stop();
    assert_eq!((stats.accepted, stats.distinct_tokens, stats.duplicates), (1_500, 1_500, 0), "{stats:?}");
    assert_eq!(settled(&journal), 1_500);
}

/// A test list of twenty with another app's topic: too short for the
/// guard's window, judged on all its answers at the end, and still not
/// settled, so the corrected rerun sends it.
#[test]
fn a_short_list_for_another_app_is_not_settled_either() {
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(20, 35)));
    let journal = dir.at("journal");
    let gw = h2_gateway(Config::default());
    let r = run(&h2_args_for(&gw, "org.example.other", &list, &["--journal", &journal]), None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("stopped: 20 of the first 20 answers were DeviceTokenNotForTopic"), "{}", r.stderr);
    assert_eq!(settled(&journal), 0);
    gw.stop();
    let gw = h2_gateway(Config::default());
    assert_eq!(run(&h2_args(&gw, &list, &["--journal", &journal]), None).code, 0);
    assert_eq!((gw.stop().accepted, settled(&journal)), (20, 20));
}

#[test]
fn a_wrong_topic_the_gateway_check_meets_stops_before_the_list_saying_what_to_fix() {
    let dir = Dir::new();
    let list = dir.file("tokens.txt", &list(&tokens(10, 33)));
    let gw = h2_gateway(Config::default());
    let r = run(&h2_args_for(&gw, &format!("{}.voip", pki().bundle_id()), &list, &[]), None);
    assert_eq!(r.code, 2, "the run could not start: {r:?}");
    assert!(
        r.stderr.contains("400 BadTopic: the topic is not an app of this key or certificate; check --topic"),
        "{}",
        r.stderr
    );
    assert_eq!(gw.stop().accepted, 0);
}
