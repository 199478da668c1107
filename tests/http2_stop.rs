//! Answers about the run, not the token, against the HTTP/2 mock: each
//! run-level reason stops the run with nothing settled; a per-line payload's
//! 413 stays that line's; the environment guard; a wrong clock.

mod common;

use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use apnsblast::http2::config::Http2Config;
use apnsblast::http2::jwt::{AuthKey, ProviderToken};
use apnsblast::input::{ReaderOptions, TokenReader};
use apnsblast::report::{Failure, Report, State};
use apnsblast::run::{Blaster, Observer, SendConfig};
use apnsblast::tls::TlsConfig;
use common::{list, pki, tokens};
use mock_gateway::config::Http2Config as MockHttp2;
use mock_gateway::{Config, Http2Gateway, Http2Handle};

pub fn h2_gateway(config: Config) -> Http2Handle {
    let _ = env_logger::builder().is_test(true).try_init();
    Http2Gateway::start(&config, pki(), "127.0.0.1:0".parse().unwrap()).expect("HTTP/2 mock starts")
}

/// A mock that answers every request (but the gateway check) with `reason`.
pub fn rejecting(reason: &str, first: Option<u64>) -> Http2Handle {
    let mock = MockHttp2 { reject_all: Some(reason.into()), reject_first: first, ..MockHttp2::default() };
    h2_gateway(Config { http2: mock, ..Config::default() })
}

/// Token authentication with the mock's key, `streams` per connection.
pub fn h2_config(gw: &Http2Handle, shards: usize, streams: usize) -> SendConfig {
    let p = pki();
    let key = AuthKey::load(&p.auth_key_path()).expect("the mock's .p8 key");
    let token = Arc::new(ProviderToken::new(key, p.key_id(), p.team_id()).expect("ids"));
    let tls = TlsConfig { extra_roots: vec![p.ca_path()], ..TlsConfig::default() };
    let mut c = SendConfig::new(format!("localhost:{}", gw.addr().port()), tls, &br#"{"aps":{"alert":"hi"}}"#[..]);
    c.shards = shards;
    c.response_timeout = Duration::from_secs(5);
    c.backoff_min = Duration::from_millis(10);
    c.backoff_max = Duration::from_millis(200);
    c.http2 = Some(Http2Config {
        token: Some(token),
        topic: Some(p.bundle_id().to_owned()),
        streams,
        ..Http2Config::default()
    });
    c
}

/// Every failure and every settled line of a run.
#[derive(Debug, Default)]
pub struct Record {
    pub failures: Vec<Failure>,
    pub settled: Vec<(u64, u64)>,
}

impl Observer for Record {
    fn failure(&mut self, f: &Failure) {
        self.failures.push(f.clone());
    }
    fn settled(&mut self, lines: &[(u64, u64)]) {
        self.settled.extend_from_slice(lines);
    }
}

impl Record {
    pub fn settled_lines(&self) -> u64 {
        self.settled.iter().map(|(a, b)| b - a + 1).sum()
    }
}

pub fn run(config: SendConfig, text: &str) -> (Report, Record) {
    let reader = TokenReader::new(Cursor::new(text.to_owned().into_bytes()), ReaderOptions::default());
    let mut record = Record::default();
    let report = Blaster::new(config).expect("config").run(reader, &mut record).expect("run");
    assert_eq!(report.unaccounted(), 0, "{report:#?}");
    (report, record)
}

/// Stopped for `cause`: nothing accepted, rejected or settled, every token
/// unsent with the cause, and no more requests than could be in flight.
fn assert_stopped(report: &Report, record: &Record, cause: &str, in_flight: u64, requests: u64) {
    let stopped = report.stopped.as_ref().unwrap_or_else(|| panic!("{cause}: not stopped: {report:#?}"));
    assert!(stopped.cause.contains(cause), "{cause}: {stopped:?}");
    assert!(!stopped.fix.is_empty() && !stopped.wrong_environment, "{stopped:?}");
    assert_eq!((report.accepted, report.rejected_total(), report.unconfirmed), (0, 0, 0), "{cause}: {report:#?}");
    assert_eq!((report.unsent, record.settled_lines()), (report.tokens_read, 0), "{cause}: nothing settled");
    let reason = format!("not sent: the run stopped: {}", stopped.cause);
    assert!(record.failures.iter().all(|f| f.state == State::Unsent && f.reason == reason), "{cause}");
    assert!(requests <= in_flight, "{cause}: {requests} requests, at most {in_flight} in flight: {report:#?}");
}

#[test]
fn each_run_level_reason_stops_the_run_with_nothing_settled() {
    let table = [
        (400, "BadTopic"),
        (400, "TopicDisallowed"),
        (400, "MissingTopic"),
        (400, "InvalidPushType"),
        (400, "BadPriority"),
        (400, "BadExpirationDate"),
        (400, "BadCollapseId"),
        (400, "PayloadEmpty"),
        (400, "BadMessageId"),
        (400, "DuplicateHeaders"),
        (400, "MissingDeviceToken"),
        (413, "PayloadTooLarge"),
        (403, "BadCertificate"),
        (403, "BadCertificateEnvironment"),
        (403, "Forbidden"),
        (403, "InvalidProviderToken"),
        (403, "MissingProviderToken"),
        (403, "UnrelatedKeyIdInToken"),
        (404, "BadPath"),
        (405, "MethodNotAllowed"),
    ];
    let toks = tokens(2_000, 11);
    for (status, reason) in table {
        let gw = rejecting(reason, None);
        let (report, record) = run(h2_config(&gw, 2, 20), &list(&toks));
        let stats = gw.stop();
        let requests = stats.rejected_for(reason);
        assert_stopped(&report, &record, &format!("Apple answered {status} {reason}"), 40, requests);
        assert_eq!(stats.accepted, 0);
    }
}

#[test]
fn a_lines_own_payload_too_large_is_only_that_lines_rejection() {
    let gw = rejecting("PayloadTooLarge", None);
    let toks = tokens(300, 12);
    let text: String = toks.iter().map(|t| format!("{{\"token\":\"{t}\",\"payload\":{{\"aps\":{{}}}}}}\n")).collect();
    let (report, record) = run(h2_config(&gw, 2, 20), &text);
    assert_eq!(report.stopped, None, "{report:#?}");
    assert_eq!(report.rejected.get("PayloadTooLarge"), Some(&300));
    assert_eq!(record.settled_lines(), 300, "each line's own answer is final");
    assert_eq!(gw.stop().rejected_for("PayloadTooLarge"), 300);
}

#[test]
fn a_list_of_the_other_environment_trips_the_guard_and_settles_none_of_it() {
    let gw = h2_gateway(Config { bad_rate: 1.0, ..Config::default() });
    let (report, record) = run(h2_config(&gw, 2, 50), &list(&tokens(3_000, 13)));
    let bad = gw.stop().rejected_for("BadDeviceToken");
    let stopped = report.stopped.as_ref().expect("stopped");
    assert!(stopped.wrong_environment && stopped.cause.contains("other environment"), "{stopped:?}");
    assert!(stopped.fix.contains("--sandbox"), "{stopped:?}");
    assert_eq!(report.rejected.get("BadDeviceToken"), Some(&bad), "what Apple answered is reported");
    assert!((501..=501 + 100).contains(&bad), "stopped once certain: {bad} answers");
    assert_eq!(report.unsent, 3_000 - bad);
    assert_eq!(record.settled_lines(), 0, "a corrected rerun sends every token again");
}

#[test]
fn a_short_list_of_the_other_environment_trips_the_guard_at_its_end() {
    let gw = h2_gateway(Config { bad_rate: 1.0, ..Config::default() });
    let (report, record) = run(h2_config(&gw, 2, 50), &list(&tokens(150, 14)));
    gw.stop();
    assert!(report.stopped.as_ref().is_some_and(|s| s.wrong_environment), "{report:#?}");
    assert_eq!((report.rejected_total(), record.settled_lines()), (150, 0));
}

#[test]
fn the_guard_lets_a_stale_list_through_when_told_and_a_healthy_one_always() {
    let gw = h2_gateway(Config { bad_rate: 1.0, ..Config::default() });
    let mut c = h2_config(&gw, 2, 50);
    c.http2.as_mut().unwrap().environment_guard = false;
    let (report, record) = run(c, &list(&tokens(1_500, 15)));
    gw.stop();
    assert_eq!((report.stopped.clone(), report.rejected_total(), record.settled_lines()), (None, 1_500, 1_500));

    let gw = h2_gateway(Config { bad_rate: 0.3, seed: 3, ..Config::default() });
    let (report, record) = run(h2_config(&gw, 2, 50), &list(&tokens(2_000, 16)));
    let bad = gw.stop().rejected_for("BadDeviceToken");
    assert!(bad > 400, "{bad}");
    assert_eq!(report.stopped, None, "{report:#?}");
    assert_eq!(record.settled_lines(), 2_000, "BadDeviceToken lines settled once the guard cleared");
}

#[test]
fn a_clock_far_ahead_stops_the_run_saying_the_clock_is_wrong() {
    let mock = MockHttp2 { clock_offset_secs: 4_000, ..MockHttp2::default() };
    let gw = h2_gateway(Config { http2: mock, ..Config::default() });
    let mut c = h2_config(&gw, 2, 20);
    // The gateway check would refuse the expired token before the run.
    c.preflight = false;
    let toks = tokens(1_000, 17);
    let (report, record) = run(c, &list(&toks));
    let requests = gw.stop().rejected_for("ExpiredProviderToken");
    // A token made at its slot's start may be 20 minutes old and renewed
    // once, legitimately: one more send per shard.
    assert_stopped(&report, &record, "a clock is wrong", 40 + 2, requests);
    assert!(report.stopped.unwrap().fix.contains("clock"));
}

#[test]
fn too_many_token_updates_pause_the_whole_run_and_it_completes_with_nothing_lost() {
    let gw = rejecting("TooManyProviderTokenUpdates", Some(5));
    let mut c = h2_config(&gw, 2, 20);
    let h2 = c.http2.as_mut().unwrap();
    h2.token_update_pause = Duration::from_millis(300);
    // A refusal of the token uses no try: one each is enough.
    h2.max_tries = 1;
    let (report, record) = run(c, &list(&tokens(1_000, 18)));
    let stats = gw.stop();
    assert_eq!((report.accepted, report.stopped.clone()), (1_000, None), "{report:#?}");
    assert_eq!((stats.distinct_tokens, stats.duplicates), (1_000, 0));
    assert_eq!(stats.rejected_for("TooManyProviderTokenUpdates"), 5);
    assert_eq!(report.resent, 5, "the refused ones, sent again after the pause");
    assert!(report.braked_s >= 0.3, "{}", report.braked_s);
    assert_eq!(record.settled_lines(), 1_000);
}

#[test]
fn token_updates_refused_for_good_stop_the_run() {
    let gw = rejecting("TooManyProviderTokenUpdates", None);
    let mut c = h2_config(&gw, 2, 20);
    c.http2.as_mut().unwrap().token_update_pause = Duration::from_millis(50);
    let (report, record) = run(c, &list(&tokens(500, 19)));
    gw.stop();
    let stopped = report.stopped.as_ref().expect("stopped");
    assert!(stopped.cause.contains("429 TooManyProviderTokenUpdates again after 3 pauses"), "{stopped:?}");
    assert_eq!((report.unsent, report.unconfirmed, record.settled_lines()), (report.tokens_read, 0, 0));
    assert!(report.braked_s >= 0.15, "{}", report.braked_s);
}

/// A storm of 300 answers of 503 to 40 tokens over 2 shards of 10 streams,
/// 3 tries each: each token meets the storm again and again.
fn storm(brake_after: u64) -> (Report, mock_gateway::Stats) {
    let gw = rejecting("ServiceUnavailable", Some(300));
    let mut c = h2_config(&gw, 2, 10);
    let h2 = c.http2.as_mut().unwrap();
    h2.max_tries = 3;
    h2.brake.after = brake_after;
    h2.brake.min = Duration::from_millis(10);
    h2.brake.max = Duration::from_millis(40);
    let (report, _) = run(c, &list(&tokens(40, 20)));
    (report, gw.stop())
}

#[test]
fn a_storm_of_503_brakes_the_whole_run_instead_of_using_up_tries() {
    // Before the brake engages, a failure uses a try; after the storm, an
    // answer of 503 may come after a 200, which ends the streak: two tries
    // at most, so none is given up.
    let (report, stats) = storm(20);
    assert_eq!(stats.rejected_for("ServiceUnavailable"), 300);
    assert_eq!((report.accepted, report.unconfirmed), (40, 0), "{report:#?}");
    assert_eq!((stats.distinct_tokens, stats.duplicates), (40, 0));
    assert!(report.braked_s > 0.0, "{report:#?}");

    let (report, _) = storm(u64::MAX);
    assert!(report.unconfirmed > 0, "without the brake the first tokens use up their tries: {report:#?}");
    assert_eq!(report.braked_s, 0.0);
}

#[test]
fn a_service_that_keeps_failing_stops_the_run_for_a_later_one() {
    let gw = rejecting("InternalServerError", None);
    let mut c = h2_config(&gw, 2, 10);
    let h2 = c.http2.as_mut().unwrap();
    h2.brake.after = 10;
    h2.brake.min = Duration::from_millis(10);
    h2.brake.max = Duration::from_millis(40);
    h2.brake.give_up = Duration::from_millis(150);
    let (report, record) = run(c, &list(&tokens(500, 21)));
    gw.stop();
    let stopped = report.stopped.as_ref().expect("stopped");
    assert!(stopped.cause.contains("500/503"), "{stopped:?}");
    assert_eq!(record.settled_lines(), 0);
    assert_eq!(report.accepted + report.rejected_total(), 0);
    assert!(report.braked_s >= 0.15, "{}", report.braked_s);
}
