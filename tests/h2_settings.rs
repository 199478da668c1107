//! The sender against a gateway that changes its stream limit mid-connection
//! with a second SETTINGS frame, as Apple does with token authentication
//! (one stream until the first answer, then about a thousand; lower again
//! after trouble), and that closes connections with a GOAWAY carrying
//! Apple's reason. The server is written by hand (`raw_h2`): h2's server
//! cannot send SETTINGS twice. Its counts are the assertions: streams open
//! against the limit in force at every stream opened, and what each token got.

mod common;
mod raw_h2;

use std::sync::Arc;
use std::time::Duration;

use apnsblast::http2::config::Http2Config;
use apnsblast::http2::jwt::{AuthKey, ProviderToken};
use apnsblast::report::Report;
use apnsblast::run::SendConfig;
use apnsblast::tls::TlsConfig;
use apnsblast::token::DeviceToken;
use common::*;
use raw_h2::{Counts, Phase, RawH2, Script};

/// Token-authenticated HTTP/2 settings for the server at `port`, one shard.
fn h2_config(port: u16) -> SendConfig {
    let p = pki();
    let tls = TlsConfig { extra_roots: vec![p.ca_path()], ..TlsConfig::default() };
    let mut c = SendConfig::new(format!("localhost:{port}"), tls, &br#"{"aps":{"alert":"hi"}}"#[..]);
    c.shards = 1;
    c.response_timeout = Duration::from_secs(5);
    c.max_failures = 1;
    // The server counts only the list's requests.
    c.preflight = false;
    let key = AuthKey::load(&p.auth_key_path()).expect("the mock's .p8 key");
    let token = Arc::new(ProviderToken::new(key, p.key_id(), p.team_id()).expect("ids"));
    c.http2 = Some(Http2Config { token: Some(token), topic: Some(p.bundle_id().to_owned()), ..Http2Config::default() });
    c
}

/// Runs `n` tokens against a server following `script`.
fn run(n: usize, seed: u64, script: Script) -> (Report, Counts, Vec<DeviceToken>) {
    let _ = env_logger::builder().is_test(true).try_init();
    let server = RawH2::start(pki(), Script { expected: n as u64, ..script }).expect("the server starts");
    let toks = tokens(n, seed);
    let (report, failures) = blast(h2_config(server.addr().port()), &list(&toks));
    let counts = server.stop();
    assert!(counts.violations.is_empty(), "{:#?}", counts.violations);
    assert!(failures.is_empty(), "{failures:#?}");
    (report, counts, toks)
}

/// Every token accepted, and answered by the server exactly once.
fn assert_exact(report: &Report, counts: &Counts, toks: &[DeviceToken]) {
    let n = toks.len() as u64;
    assert_eq!(report.unaccounted(), 0, "{report:#?}");
    assert_eq!((report.tokens_read, report.accepted), (n, n), "{report:#?}");
    assert_eq!((report.unconfirmed, report.unsent, report.possibly_duplicated), (0, 0, 0), "{report:#?}");
    for t in toks {
        assert_eq!(counts.deliveries.get(&t.0), Some(&1), "token {t}");
    }
    assert_eq!(counts.deliveries.len() as u64, n);
}

#[test]
fn a_limit_raised_after_the_first_answer_is_used_in_full() {
    let script = Script { initial: 1, changes: vec![(1, 50)], ..Script::default() };
    let (report, counts, toks) = run(3_000, 31, script);
    assert_exact(&report, &counts, &toks);
    assert_eq!((counts.connections, report.reconnects, report.resent), (1, 0, 0), "{report:#?}");
    // One stream until the raise was acknowledged, then all fifty.
    let phases = &counts.phases[0];
    assert_eq!(phases, &[Phase { limit: 1, max_open: 1 }, Phase { limit: 50, max_open: 50 }], "{phases:?}");
}

#[test]
fn a_limit_lowered_mid_run_is_obeyed_once_acknowledged() {
    let script = Script { initial: 1, changes: vec![(1, 50), (1_001, 2)], ..Script::default() };
    let (report, counts, toks) = run(3_000, 32, script);
    assert_exact(&report, &counts, &toks);
    assert_eq!((counts.connections, report.reconnects, report.resent), (1, 0, 0), "{report:#?}");
    let phases = &counts.phases[0];
    assert_eq!(
        phases,
        &[Phase { limit: 1, max_open: 1 }, Phase { limit: 50, max_open: 50 }, Phase { limit: 2, max_open: 2 }],
        "{phases:?}"
    );
}

#[test]
fn a_goaway_with_apples_reason_is_counted_and_nothing_is_lost() {
    let shutdown = br#"{"reason":"Shutdown"}"#.to_vec();
    let script =
        Script { initial: 1, changes: vec![(1, 50)], goaway_after: Some((701, shutdown)), ..Script::default() };
    let (report, counts, toks) = run(2_000, 33, script);
    assert_exact(&report, &counts, &toks);
    // 701 answered on each of two connections, the rest on a third.
    assert_eq!((counts.goaways, counts.connections), (2, 3), "{:?}", counts.phases);
    let goaways: u64 = report.per_shard.iter().map(|s| s.goaways).sum();
    assert_eq!((goaways, report.reconnects), (2, 2), "{report:#?}");
}

/// A connection that drops between a 400's HEADERS and its body: the
/// answer never said why, so it is no rejection; the stream is in doubt
/// like every other the drop left open, and goes again.
#[test]
fn an_answer_cut_off_before_its_reason_is_in_doubt_not_rejected() {
    let script = Script { initial: 100, cut_after: Some(150), ..Script::default() };
    let (report, counts, toks) = run(1_000, 14, script);
    assert_eq!(counts.cuts, 1);
    assert_eq!((report.rejected_total(), report.accepted, report.unaccounted()), (0, 1_000, 0), "{report:#?}");
    assert!(report.possibly_duplicated >= 1, "the cut stream is declared: {report:#?}");
    for t in &toks {
        assert!(counts.deliveries.get(&t.0).is_some_and(|n| *n >= 1), "token {t}");
    }
}
