//! The connection policy, without sockets.

use std::io;
use std::time::{Duration, Instant};

use super::*;

const MS: Duration = Duration::from_millis(1);

fn policy(max_failures: u32) -> Policy {
    Policy { max_failures, backoff_min: 100 * MS, backoff_max: 800 * MS, connect_ahead: ConnectAhead::Never }
}

fn refused() -> GatewayError {
    GatewayError::Unreachable { addr: "127.0.0.1:9".parse().unwrap(), source: io::ErrorKind::ConnectionRefused.into() }
}

fn pause(next: &Next) -> Duration {
    match next {
        Next::Retry { after, .. } => *after,
        other => panic!("expected a retry, got {other:?}"),
    }
}

#[test]
fn failed_connects_retry_with_growing_pauses_then_give_up_with_the_last_error() {
    let mut s = Session::new(policy(4), 1);
    let pauses: Vec<Duration> = (0..3).map(|_| pause(&s.on_connect_failed(refused()))).collect();
    for (pause, full) in pauses.iter().zip([100, 200, 400]) {
        assert!(*pause >= full * MS / 2 && *pause <= full * MS, "{pause:?} for {full} ms");
    }
    match s.on_connect_failed(refused()) {
        Next::GiveUp(trouble) => assert!(trouble.to_string().starts_with("cannot connect to 127.0.0.1:9"), "{trouble}"),
        other => panic!("the fourth failure in a row gives up, got {other:?}"),
    }
}

#[test]
fn an_untrusted_gateway_gives_up_at_once() {
    let mut s = Session::new(policy(5), 1);
    let next = s.on_connect_failed(GatewayError::Untrusted("certificate verify failed".into()));
    assert!(matches!(next, Next::GiveUp(Trouble::Connect(GatewayError::Untrusted(_)))), "{next:?}");
}

#[test]
fn a_connection_resets_the_failed_connects() {
    let mut s = Session::new(policy(2), 1);
    pause(&s.on_connect_failed(refused()));
    s.on_connected(MS);
    assert_eq!(s.failed_connects(), 0);
    pause(&s.on_connect_failed(refused()));
}

#[test]
fn a_connection_that_settled_something_connects_again_at_once_with_the_shortest_pause_next() {
    let mut s = Session::new(policy(3), 1);
    for _ in 0..3 {
        pause(&s.on_connect_failed(refused()));
        s.on_connected(MS);
    }
    assert!(matches!(s.on_connection_end(Ok(())), Next::Connect));
    assert!(pause(&s.on_connection_end(Err(Fruitless::Closed))) <= 100 * MS, "the back-off was reset");
}

#[test]
fn fruitless_connections_give_up_after_four_per_failure_allowed_and_say_how_they_ended() {
    let mut s = Session::new(policy(2), 1);
    for _ in 0..7 {
        s.on_connected(MS);
        pause(&s.on_connection_end(Err(Fruitless::Closed)));
    }
    s.on_connected(MS);
    match s.on_connection_end(Err(Fruitless::Closed)) {
        Next::GiveUp(trouble) => assert_eq!(
            trouble.to_string(),
            "the gateway closed 8 connections in a row without accepting or rejecting anything"
        ),
        other => panic!("expected a give-up, got {other:?}"),
    }
}

#[test]
fn closes_right_after_the_handshake_point_at_the_certificate() {
    let mut s = Session::new(policy(1), 1);
    let Next::Retry { trouble, .. } = s.on_connection_end(Err(Fruitless::ClosedAtOnce)) else { panic!() };
    let text = trouble.to_string();
    assert!(text.starts_with("the gateway closed 1 connections in a row right after the TLS handshake"), "{text}");
    assert!(text.contains(ENVIRONMENT_HINT), "{text}");
}

#[test]
fn an_answer_that_settled_nothing_is_named_in_the_give_up() {
    let mut s = Session::new(policy(1), 1);
    let resp = "shutdown (10) after notification 0";
    for _ in 0..3 {
        pause(&s.on_connection_end(Err(Fruitless::Answered(resp.into()))));
    }
    let Next::GiveUp(trouble) = s.on_connection_end(Err(Fruitless::Answered(resp.into()))) else { panic!() };
    assert_eq!(
        trouble.to_string(),
        format!("4 connections in a row ended before the gateway accepted anything; last: {resp}")
    );
}

#[test]
fn no_connecting_ahead_while_connections_end_fruitless() {
    let mut s = Session::new(Policy { connect_ahead: ConnectAhead::Always, ..policy(3) }, 1);
    assert!(s.on_connected(MS));
    pause(&s.on_connection_end(Err(Fruitless::Closed)));
    assert!(!s.on_connected(MS), "a spare would double the fruitless connections");
    assert!(matches!(s.on_connection_end(Ok(())), Next::Connect));
    assert!(s.on_connected(MS));
}

#[test]
fn auto_connects_ahead_only_after_a_long_round_trip() {
    let auto = ConnectAhead::Auto;
    assert!(!auto.wanted(Duration::from_micros(50)), "loopback");
    assert!(!auto.wanted(LONG_ROUND_TRIP - Duration::from_micros(1)));
    assert!(auto.wanted(LONG_ROUND_TRIP));
    assert!(ConnectAhead::Always.wanted(Duration::ZERO));
    assert!(!ConnectAhead::Never.wanted(Duration::from_secs(1)));
}

#[test]
fn a_slow_connect_on_a_busy_machine_does_not_keep_auto_on() {
    let mut s = Session::new(Policy { connect_ahead: ConnectAhead::Auto, ..policy(3) }, 1);
    let (slow, loopback) = (8 * MS, Duration::from_micros(60));
    assert!(s.on_connected(slow), "the first connect, slow: maybe a long link");
    assert!(s.on_connected(slow + slow), "still");
    assert!(!s.on_connected(loopback), "a fast one shows the link is short");
    assert!(!s.on_connected(slow), "and later slow ones were load");
}

#[test]
fn a_stalled_input_confirms_what_is_in_flight_after_the_idle_time() {
    let t0 = Instant::now();
    let mut c = Clocks::new(t0, Duration::from_secs(5));
    assert_eq!(c.check(t0, false, 3), None, "the idle clock starts");
    assert_eq!(c.check(t0 + IDLE_CONFIRM - MS, false, 3), None);
    assert_eq!(c.check(t0 + IDLE_CONFIRM, false, 3), Some(Alarm::ConfirmNow));
    assert_eq!(c.check(t0 + IDLE_CONFIRM + MS, false, 3), None, "the clock starts again after a confirmation");
}

#[test]
fn the_idle_clock_stops_while_waiting_on_the_gateway_or_with_nothing_in_flight() {
    let t0 = Instant::now();
    let mut c = Clocks::new(t0, Duration::from_secs(5));
    c.check(t0, false, 3);
    assert_eq!(c.check(t0 + MS, true, 3), None, "waiting on the gateway stops it");
    assert_eq!(c.check(t0 + IDLE_CONFIRM, false, 3), None, "and it starts again from here");
    c.check(t0 + IDLE_CONFIRM, false, 0);
    assert_eq!(c.check(t0 + 2 * IDLE_CONFIRM, false, 3), None, "nothing in flight stops it too");
}

#[test]
fn a_gateway_that_takes_nothing_for_the_response_timeout_is_dead() {
    let (t0, timeout) = (Instant::now(), Duration::from_secs(5));
    let mut c = Clocks::new(t0, timeout);
    assert_eq!(c.check(t0 + timeout - MS, true, 3), None);
    c.progressed(t0 + MS);
    assert_eq!(c.check(t0 + timeout, true, 3), None, "progress restarts the clock");
    assert_eq!(c.check(t0 + timeout + MS, true, 3), Some(Alarm::GatewaySilent));
    assert_eq!(c.check(t0 + 10 * timeout, false, 0), None, "not while the shard waits for input");
}
