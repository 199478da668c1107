//! Fault injection: shutdown/close/reset after N, error delay, reset after error,
//! read-rate limit, refused handshakes.

mod common;

use std::io::{ErrorKind, Write};
use std::time::Duration;

use common::*;
use mock_gateway::Config;

#[test]
fn shutdown_after_names_the_last_accepted_id() {
    let gw = start(Config { shutdown_after: Some(5), ..Config::default() });
    // ids 100.. ; the 5th accepted is 104; the rest is discarded.
    assert_eq!(exchange(gw.addr(), &good(100, 20)), response(10, 104));
    // Per connection: a new one gets 5 more.
    assert_eq!(exchange(gw.addr(), &good(200, 7)), response(10, 204));
    let stats = gw.stop();
    assert_eq!((stats.accepted, stats.shutdowns), (10, 2));
    assert!(stats.rejected.is_empty());
    assert!(stats.discarded_bytes > 0);
}

#[test]
fn close_after_gives_eof_without_bytes() {
    let gw = start(Config { close_after: Some(3), ..Config::default() });
    assert_eq!(exchange(gw.addr(), &good(1, 10)), b"");
    let stats = gw.stop();
    assert_eq!((stats.accepted, stats.silent_closes, stats.resets), (3, 1, 0));
}

#[test]
fn reset_after_resets_the_connection() {
    let gw = start(Config { reset_after: Some(4), ..Config::default() });
    let mut s = connect(gw.addr());
    s.write_all(&good(1, 10)).unwrap();
    let (bytes, err) = read_to_end(&mut s);
    assert_eq!(bytes, b"");
    assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::ConnectionReset));
    let stats = gw.stop();
    assert_eq!((stats.accepted, stats.resets, stats.silent_closes), (4, 1, 0));
}

#[test]
fn reset_after_error_may_lose_the_response() {
    let mut config = Config { reset_after_error: true, ..Config::default() };
    config.bad_tokens.insert(token(3));
    let gw = start(config);
    let mut s = connect(gw.addr());
    s.write_all(&good(1, 5)).unwrap();
    let (bytes, err) = read_to_end(&mut s);
    // Either the response made it before the RST, or the RST destroyed it.
    assert!(response(8, 3).starts_with(&bytes), "{bytes:?}");
    if bytes.len() < 6 {
        assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::ConnectionReset));
    }
    let stats = gw.stop();
    assert_eq!((stats.accepted, stats.rejected_with(8), stats.resets), (2, 1, 1));
}

#[test]
fn a_lost_error_response_is_never_written() {
    let mut config = Config { lose_error_responses: true, ..Config::default() };
    config.bad_tokens.insert(token(3));
    let gw = start(config);
    let mut s = connect(gw.addr());
    s.write_all(&good(1, 5)).unwrap();
    let (bytes, err) = read_to_end(&mut s);
    assert_eq!(bytes, b"", "no response, not even part of one");
    assert_eq!(err.map(|e| e.kind()), Some(ErrorKind::ConnectionReset));
    let stats = gw.stop();
    assert_eq!((stats.accepted, stats.rejected_with(8), stats.responses_lost, stats.resets), (2, 1, 1, 1));
}

#[test]
fn error_delay_holds_the_response_and_discards_input() {
    let mut config = Config { error_delay: Duration::from_millis(300), ..Config::default() };
    config.bad_tokens.insert(token(2));
    let gw = start(config);
    let mut s = connect(gw.addr());
    s.write_all(&good(1, 2)).unwrap();
    // Written after the bad one, in separate writes: read and discarded by the gateway.
    let more = good(10, 100);
    for chunk in more.chunks(1000) {
        s.write_all(chunk).unwrap();
    }
    let (bytes, err) = read_to_end(&mut s);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(bytes, response(8, 2));
    drop(s);
    let drained = gw.wait_until(Duration::from_secs(10), |s| s.discarded_bytes >= more.len() as u64);
    assert!(drained.is_ok(), "{drained:?}");
    assert_eq!(gw.stop().accepted, 1);
}

#[test]
fn read_rate_limits_but_lets_everything_through() {
    let gw = start(Config { read_rate: Some(40_000), ..Config::default() });
    let frames = good(0, 100); // ~6.7 KB
    let mut s = connect(gw.addr());
    s.write_all(&frames).unwrap();
    s.write_all(&cmd1(999, &[], b"x")).unwrap();
    let (bytes, _) = read_to_end(&mut s);
    assert_eq!(bytes, response(2, 999));
    let stats = gw.stop();
    assert_eq!(stats.accepted, 100);
    assert!(stats.bytes_read >= frames.len() as u64);
}

#[test]
fn refuse_handshakes_refuses_exactly_k() {
    let gw = start(Config { refuse_handshakes: 2, ..Config::default() });
    for _ in 0..2 {
        let c = connector(Some(identity(pki().client())));
        assert!(c.connect("localhost", tcp(gw.addr())).is_err());
    }
    assert_eq!(exchange(gw.addr(), &[good(1, 3), cmd1(4, &[], b"x")].concat()), response(2, 4));
    let stats = gw.stop();
    assert_eq!((stats.handshakes_refused, stats.connections, stats.accepted), (2, 1, 3));
}

#[test]
fn faults_at_zero_fire_right_after_the_handshake() {
    let gw = start(Config { shutdown_after: Some(0), ..Config::default() });
    assert_eq!(exchange(gw.addr(), &good(1, 3)), response(10, 0));
    assert_eq!(gw.stop().accepted, 0);
}
