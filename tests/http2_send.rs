//! Sending over Apple's HTTP/2 provider API to the mock gateway: every token
//! accounted for, the mock's own counts agreeing with the report.

mod common;

use std::sync::Arc;
use std::time::Duration;

use apnsblast::http2::config::Http2Config;
use apnsblast::http2::jwt::{AuthKey, ProviderToken};
use apnsblast::http2::request::PushType;
use apnsblast::input::ReaderOptions;
use apnsblast::report::{Report, State};
use apnsblast::run::SendConfig;
use apnsblast::tls::TlsConfig;
use apnsblast::token::DeviceToken;
use apnsblast::{Error, GatewayError};
use common::*;
use mock_gateway::config::Http2Config as MockHttp2;
use mock_gateway::{Config, Http2Gateway, Http2Handle, Stats};

fn h2_gateway(config: Config) -> Http2Handle {
    let _ = env_logger::builder().is_test(true).try_init();
    Http2Gateway::start(&config, pki(), "127.0.0.1:0".parse().unwrap()).expect("HTTP/2 mock starts")
}

/// The mock's `.p8` key as a shared provider token.
fn provider_token(key_id: &str) -> Arc<ProviderToken> {
    let p = pki();
    let key = AuthKey::load(&p.auth_key_path()).expect("the mock's .p8 key");
    Arc::new(ProviderToken::new(key, key_id, p.team_id()).expect("ids"))
}

/// HTTP/2 settings for the mock with token authentication (no client certificate).
fn h2_config(gw: &Http2Handle, shards: usize) -> SendConfig {
    let tls = TlsConfig { extra_roots: vec![pki().ca_path()], ..TlsConfig::default() };
    let mut c = SendConfig::new(format!("localhost:{}", gw.addr().port()), tls, &br#"{"aps":{"alert":"hi"}}"#[..]);
    c.shards = shards;
    c.response_timeout = Duration::from_secs(5);
    c.backoff_min = Duration::from_millis(10);
    c.backoff_max = Duration::from_millis(200);
    c.http2 = Some(Http2Config {
        token: Some(provider_token(pki().key_id())),
        topic: Some(pki().bundle_id().to_owned()),
        ..Http2Config::default()
    });
    c
}

/// The report agrees with the mock: the same acceptances and rejections,
/// every token in exactly one state, no duplicate undeclared.
fn assert_agrees(report: &Report, stats: &Stats, n: usize) {
    assert_eq!(report.unaccounted(), 0, "{report:#?}");
    assert_eq!(report.tokens_read, n as u64);
    assert_eq!(report.accepted, stats.distinct_tokens, "{report:#?}\n{stats:#?}");
    assert!(stats.duplicates <= report.possibly_duplicated, "undeclared duplicates: {stats:#?}");
    for (reason, n) in &report.rejected {
        assert_eq!(*n, stats.rejected_for(reason), "{reason}: {stats:#?}");
    }
}

#[test]
fn a_clean_list_is_accepted_once_each_with_token_authentication() {
    let gw = h2_gateway(Config::default());
    let toks = tokens(3_000, 1);
    let (report, failures) = blast(h2_config(&gw, 2), &list(&toks));
    let stats = gw.stop();
    assert_agrees(&report, &stats, toks.len());
    assert_eq!((report.accepted, stats.accepted, stats.duplicates), (3_000, 3_000, 0));
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(stats.gateway_checks, 1, "one gateway check before the list");
    assert_eq!(stats.jwt_renewals, 0, "one token for every connection");
}

#[test]
fn bad_and_unregistered_tokens_are_rejected_with_apples_reasons() {
    let mock = MockHttp2 { gone_rate: 0.01, ..MockHttp2::default() };
    let gw = h2_gateway(Config { bad_rate: 0.01, seed: 7, http2: mock, ..Config::default() });
    let toks = tokens(5_000, 2);
    let (report, failures) = blast(h2_config(&gw, 4), &list(&toks));
    let stats = gw.stop();
    assert_agrees(&report, &stats, toks.len());
    let (bad, gone) = (report.rejected.get("BadDeviceToken").copied(), report.rejected.get("Unregistered").copied());
    assert!(bad.unwrap_or(0) > 0 && gone.unwrap_or(0) > 0, "{report:#?}");
    assert_eq!(report.resent, 0, "a rejection ends no connection and resends nothing");
    let unregistered: Vec<_> = failures.iter().filter(|f| f.reason == "Unregistered").collect();
    assert_eq!(unregistered.len() as u64, gone.unwrap_or(0));
    assert!(unregistered.iter().all(|f| f.state == State::Rejected && f.unregistered_at.is_some()), "{unregistered:?}");
}

#[test]
fn answers_to_send_again_end_accepted() {
    let mock = MockHttp2 { rate_429: 0.02, rate_500: 0.02, rate_503: 0.02, ..MockHttp2::default() };
    let gw = h2_gateway(Config { http2: mock, ..Config::default() });
    let toks = tokens(2_000, 3);
    let mut c = h2_config(&gw, 2);
    c.http2.as_mut().unwrap().max_tries = 8;
    let (report, _) = blast(c, &list(&toks));
    let stats = gw.stop();
    assert_agrees(&report, &stats, toks.len());
    assert_eq!(report.accepted, 2_000, "{report:#?}");
    assert!(report.resent > 0, "{report:#?}");
}

#[test]
fn a_goaway_resends_the_streams_it_never_processed_without_duplicates() {
    let mock = MockHttp2 { goaway_after: Some(300), ..MockHttp2::default() };
    let gw = h2_gateway(Config { http2: mock, ..Config::default() });
    let toks = tokens(2_000, 4);
    let (report, _) = blast(h2_config(&gw, 2), &list(&toks));
    let stats = gw.stop();
    assert_agrees(&report, &stats, toks.len());
    assert_eq!((report.accepted, stats.duplicates), (2_000, 0), "{report:#?}");
    assert!(report.reconnects > 0, "{report:#?}");
}

#[test]
fn a_goaway_with_apples_shutdown_reason_is_counted_by_the_shard() {
    let mock = MockHttp2 { goaway_after: Some(300), goaway_shutdown: true, ..MockHttp2::default() };
    let gw = h2_gateway(Config { http2: mock, ..Config::default() });
    let toks = tokens(1_000, 7);
    let (report, _) = blast(h2_config(&gw, 1), &list(&toks));
    let stats = gw.stop();
    assert_agrees(&report, &stats, toks.len());
    assert_eq!((report.accepted, stats.duplicates), (1_000, 0), "{report:#?}");
    // The gateway check's connection ends before its GOAWAY.
    let goaways: u64 = report.per_shard.iter().map(|s| s.goaways).sum();
    assert_eq!(
        (goaways, stats.goaways, stats.connections_with("goaway-shutdown")),
        (3, 3, 3),
        "{report:#?}\n{stats:#?}"
    );
}

#[test]
fn a_dropped_connection_resends_what_was_open_and_declares_it() {
    let mock = MockHttp2 { drop_after: Some(300), ..MockHttp2::default() };
    let gw = h2_gateway(Config { http2: mock, ..Config::default() });
    let toks = tokens(2_000, 5);
    let (report, _) = blast(h2_config(&gw, 2), &list(&toks));
    let stats = gw.stop();
    assert_agrees(&report, &stats, toks.len());
    assert_eq!(report.accepted, 2_000, "{report:#?}");
    assert!(stats.requests_dropped > 0 && report.possibly_duplicated > 0, "{report:#?}\n{stats:#?}");
}

#[test]
fn a_provider_certificate_authenticates_too() {
    let gw = h2_gateway(Config::default());
    let toks = tokens(500, 6);
    let mut c = h2_config(&gw, 1);
    c.tls = tls();
    c.http2.as_mut().unwrap().token = None;
    let (report, _) = blast(c, &list(&toks));
    let stats = gw.stop();
    assert_agrees(&report, &stats, toks.len());
    assert_eq!(report.accepted, 500);
}

#[test]
fn settings_apple_refuses_for_the_push_type_are_refused_before_connecting() {
    use apnsblast::http2::request::PushType;
    let gw = h2_gateway(Config::default());
    let refused = |push_type, priority, token: bool| {
        let mut c = h2_config(&gw, 1);
        let h2 = c.http2.as_mut().unwrap();
        (h2.push_type, h2.priority) = (push_type, priority);
        if !token {
            c.tls = tls();
            c.http2.as_mut().unwrap().token = None;
        }
        match apnsblast::run::Blaster::new(c) {
            Err(Error::Config(why)) => why,
            other => panic!("{push_type} at {priority}: {other:?}"),
        }
    };
    assert!(refused(PushType::Background, 10, true).contains("priority 5"));
    for t in [PushType::LiveActivity, PushType::Location] {
        assert!(refused(t, 10, false).contains("token authentication only"), "{t}");
    }
    assert_eq!(gw.stop().connections, 0);
}

#[test]
fn a_key_id_the_gateway_does_not_know_fails_the_check() {
    let gw = h2_gateway(Config::default());
    let mut c = h2_config(&gw, 1);
    c.http2.as_mut().unwrap().token = Some(provider_token("ZZZZZZZZZZ"));
    let err = apnsblast::run::Blaster::new(c).unwrap().check_gateway().expect_err("an unknown key id");
    match err {
        Error::Gateway { cause: GatewayError::Forbidden { reason }, .. } => assert_eq!(reason, "InvalidProviderToken"),
        other => panic!("{other:?}"),
    }
    assert_eq!(gw.stop().accepted, 0);
}

#[test]
fn a_gateway_without_http2_fails_the_check() {
    // The binary mock takes TLS but agrees on no ALPN protocol.
    let gw = gateway(Config::default());
    let mut c = h2_config_for(format!("localhost:{}", gw.addr().port()));
    c.max_failures = 1;
    let err = apnsblast::run::Blaster::new(c).unwrap().check_gateway().expect_err("no HTTP/2");
    assert!(matches!(err, Error::Gateway { cause: GatewayError::NoHttp2, .. }), "{err:?}");
}

/// HTTP/2 settings with token authentication for any gateway address.
fn h2_config_for(gateway: String) -> SendConfig {
    let tls = TlsConfig { extra_roots: vec![pki().ca_path()], ..TlsConfig::default() };
    let mut c = SendConfig::new(gateway, tls, &br#"{"aps":{"alert":"hi"}}"#[..]);
    c.http2 = Some(Http2Config { token: Some(provider_token(pki().key_id())), ..Http2Config::default() });
    c
}

/// The list of the per-line test: every fourth line a VoIP call with its own
/// topic, push type, collapse id and a payload over the alert limit; every
/// fourth a collapse id of its own; the rest plain hex lines.
fn list_with_own_headers(toks: &[DeviceToken]) -> String {
    let call = format!(r#"{{"aps":{{}},"ring":"{}"}}"#, "r".repeat(4500));
    let bundle = pki().bundle_id();
    toks.iter()
        .enumerate()
        .map(|(i, t)| match i % 4 {
            0 => format!(
                r#"{{"token":"{t}","topic":"{bundle}.voip","push_type":"voip","collapse_id":"call {i}","payload":{call}}}"#
            ),
            1 => format!(r#"{{"token":"{t}","collapse_id":"news {i}"}}"#),
            _ => format!("{t}"),
        })
        .map(|line| line + "\n")
        .collect()
}

#[test]
fn a_lines_own_topic_push_type_and_collapse_id_arrive_with_it_and_others_get_the_runs() {
    let mock = MockHttp2 { record_requests: true, ..MockHttp2::default() };
    let gw = h2_gateway(Config { http2: mock, ..Config::default() });
    let toks = tokens(400, 12);
    let mut list = list_with_own_headers(&toks);
    list.push_str(&format!("{{\"token\":\"{}\",\"push_type\":\"fax\"}}\n", toks[0]));
    let (report, failures) = blast_with(h2_config(&gw, 2), &list, ReaderOptions::http2(PushType::Alert));
    let seen = gw.accepted_requests();
    let stats = gw.stop();
    assert_eq!(report.unaccounted(), 0, "{report:#?}");
    assert_eq!((report.accepted, stats.accepted, report.skipped), (400, 400, 1), "{report:#?}\n{stats:#?}");
    let [skipped] = &failures[..] else { panic!("{failures:?}") };
    assert_eq!((skipped.line, skipped.state), (401, State::Skipped));
    assert!(skipped.reason.starts_with("invalid push type \"fax\""), "{}", skipped.reason);

    let bundle = pki().bundle_id();
    let run = |s: &str| Some(s.to_owned());
    for (i, t) in toks.iter().enumerate() {
        let got = &seen[t.as_bytes()];
        let (topic, push_type, collapse_id) = match i % 4 {
            0 => (format!("{bundle}.voip"), "voip", Some(format!("call {i}"))),
            1 => (bundle.to_owned(), "alert", Some(format!("news {i}"))),
            _ => (bundle.to_owned(), "alert", None),
        };
        assert_eq!(got.topic, Some(topic), "line {}", i + 1);
        assert_eq!(got.push_type, run(push_type), "line {}", i + 1);
        assert_eq!(got.collapse_id, collapse_id, "line {}", i + 1);
        assert_eq!(got.priority, run("10"), "what no line sets stays the run's");
        if i % 4 == 0 {
            assert!(got.payload.len() > 4096 && got.payload.starts_with(br#"{"aps":{},"ring":"#), "line {}", i + 1);
        } else {
            assert_eq!(got.payload, br#"{"aps":{"alert":"hi"}}"#, "line {}", i + 1);
        }
    }
}
