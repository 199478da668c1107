//! Delivery accounting (duplicates, per-token deliveries, the delivered log) and the
//! feedback service.

mod common;

use common::*;
use mock_gateway::Config;

#[test]
fn a_repeated_token_and_payload_counts_as_a_duplicate_across_commands_and_connections() {
    let gw = start(Config::default());
    let (a, b) = (token(1), token(2));
    let frames = [
        cmd1(1, &a, b"one"),
        cmd1(2, &a, b"one"), // duplicate
        cmd1(3, &a, b"two"), // same token, new payload: not a duplicate
        notif2(4, &b, b"one"),
        cmd0(&b, b"one"),   // duplicate, other command
        cmd1(5, &[], b"x"), // ends the connection
    ]
    .concat();
    assert_eq!(exchange(gw.addr(), &frames), response(2, 5));
    // Resent on another connection: duplicate again.
    assert_eq!(exchange(gw.addr(), &[cmd1(6, &a, b"one"), cmd1(7, &[], b"x")].concat()), response(2, 7));
    let d = gw.deliveries();
    assert_eq!((d[&a], d[&b], d.len()), (4, 2, 2));
    let stats = gw.stop();
    assert_eq!((stats.accepted, stats.distinct_tokens, stats.duplicates), (6, 2, 3));
}

#[test]
fn the_delivered_log_has_a_line_per_accepted_notification_with_its_id_or_a_dash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("delivered.tsv");
    let gw = start(Config { delivered_log: Some(path.clone()), ..Config::default() });
    let frames = [cmd1(7, &[0xAB; 32], b"p"), cmd0(&[0x01; 32], b"p"), cmd1(8, &[], b"x")].concat();
    assert_eq!(exchange(gw.addr(), &frames), response(2, 8));
    gw.stop();
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(text, format!("{}\t7\n{}\t-\n", "ab".repeat(32), "01".repeat(32)));
}

#[test]
fn tracking_off_still_counts_accepted() {
    let gw = start(Config { track_deliveries: false, ..Config::default() });
    assert_eq!(exchange(gw.addr(), &[good(0, 5), good(0, 5), cmd1(9, &[], b"x")].concat()), response(2, 9));
    let stats = gw.stop();
    assert_eq!((stats.accepted, stats.distinct_tokens, stats.duplicates), (10, 0, 0));
}

#[test]
fn feedback_tuples_are_served_byte_exact_and_only_once() {
    let tuples = vec![(1_600_000_000u32, token(1)), (0x0102_0304, token(2))];
    let gw = start(Config { feedback: tuples.clone(), ..Config::default() });
    let fb = gw.feedback_addr().unwrap();
    let mut want = Vec::new();
    for (t, tok) in &tuples {
        want.extend_from_slice(&t.to_be_bytes());
        want.extend_from_slice(&[0, 32]);
        want.extend_from_slice(tok);
    }
    assert_eq!(want.len(), 76);
    let (first, err) = read_to_end(&mut connect(fb));
    assert!(err.is_none());
    assert_eq!(first, want);
    let (second, err) = read_to_end(&mut connect(fb));
    assert!(err.is_none());
    assert_eq!(second, b"");
    // Re-armed from the handle.
    gw.set_feedback(vec![(5, token(3))]);
    assert_eq!(read_to_end(&mut connect(fb)).0.len(), 38);
    // The feedback service requires a client certificate too.
    assert!(connector(None).connect("localhost", tcp(fb)).map_or(true, |mut s| read_to_end(&mut s).1.is_some()));
    let stats = gw.stop();
    assert_eq!((stats.feedback_connections, stats.feedback_tuples), (3, 3));
    assert_eq!(stats.connections, 0);
}
