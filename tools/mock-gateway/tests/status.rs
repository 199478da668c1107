//! Every status code the gateway produces: exact 6 bytes, then EOF; nothing after the
//! failing notification is counted.

mod common;

use common::*;
use mock_gateway::Config;

const P: &[u8] = br#"{"aps":{"alert":"x"}}"#;

#[test]
fn each_status_code_exact_bytes_then_eof() {
    let bad = token(999);
    let mut config = Config::default();
    config.bad_tokens.insert(bad);
    let gw = start(config);
    let id_item = item(3, &77u32.to_be_bytes());
    let cases: Vec<(&str, Vec<u8>, Vec<u8>)> = vec![
        ("cmd1 empty token", cmd1(11, &[], P), response(2, 11)),
        ("cmd2 no token item", cmd2(&[id_item.clone(), item(2, P)]), response(2, 77)),
        ("cmd1 empty payload", cmd1(12, &token(1), b""), response(4, 12)),
        ("cmd2 no payload", cmd2(&[id_item.clone(), item(1, &token(1))]), response(4, 77)),
        ("cmd1 short token", cmd1(13, &[1; 20], P), response(5, 13)),
        ("cmd2 long token", cmd2(&[id_item.clone(), item(1, &[1; 33]), item(2, P)]), response(5, 77)),
        ("cmd1 payload 257", cmd1(14, &token(1), &[b'a'; 257]), response(7, 14)),
        ("cmd2 payload 2049", cmd2(&[id_item.clone(), item(1, &token(1)), item(2, &[b'a'; 2049])]), response(7, 77)),
        ("cmd1 bad token", cmd1(15, &bad, P), response(8, 15)),
        ("cmd2 bad token", notif2(16, &bad, P), response(8, 16)),
        ("unknown command", vec![9, 0, 0, 0, 1, 2, 3], response(128, 0)),
        (
            "cmd2 unknown item",
            cmd2(&[id_item.clone(), item(1, &token(1)), item(2, P), item(9, b"?")]),
            response(128, 77),
        ),
        (
            "cmd2 bad priority",
            cmd2(&[id_item.clone(), item(1, &token(1)), item(2, P), item(5, &[7])]),
            response(128, 77),
        ),
    ];
    let mut expected_accepted = 0;
    for (i, (name, bad_frame, want)) in cases.iter().enumerate() {
        // Two good ones before, three after: only the first two count.
        let base = 1000 * (i as u32 + 1);
        let mut frames = good(base, 2);
        frames.extend_from_slice(bad_frame);
        frames.extend(good(base + 2, 3));
        assert_eq!(&exchange(gw.addr(), &frames), want, "{name}");
        expected_accepted += 2;
        assert_eq!(gw.stats().accepted, expected_accepted, "{name}: counted before the response");
    }
    let stats = gw.stop();
    assert_eq!(stats.accepted, expected_accepted);
    for (status, n) in [(2, 2), (4, 2), (5, 2), (7, 2), (8, 2), (128, 3)] {
        assert_eq!(stats.rejected_with(status), n, "status {status}");
    }
    assert_eq!(stats.connections, cases.len() as u64);
}

#[test]
fn command0_errors_close_silently() {
    let gw = start(Config::default());
    let mut frames = cmd0(&token(1), P);
    frames.extend(cmd0(&[1; 31], P));
    frames.extend(cmd0(&token(2), P));
    assert_eq!(exchange(gw.addr(), &frames), b"");
    let stats = gw.stop();
    assert_eq!(stats.accepted, 1);
    assert_eq!(stats.rejected_with(5), 1);
}

#[test]
fn payload_limits_are_configurable() {
    let gw = start(Config { payload_limit_legacy: 10, payload_limit: 20, ..Config::default() });
    let mut frames = cmd1(1, &token(1), &[b'a'; 10]);
    frames.extend(notif2(2, &token(2), &[b'a'; 20]));
    frames.extend(notif2(3, &token(3), &[b'a'; 21]));
    assert_eq!(exchange(gw.addr(), &frames), response(7, 3));
    assert_eq!(exchange(gw.addr(), &cmd1(4, &token(4), &[b'a'; 11])), response(7, 4));
    assert_eq!(gw.stop().accepted, 2);
}

#[test]
fn bad_rate_rejects_exactly_the_tokens_is_bad_names() {
    let gw = start(Config { bad_rate: 0.3, seed: 42, ..Config::default() });
    let first_bad = (0..1000).find(|i| gw.is_bad(&token(*i))).unwrap();
    let frames: Vec<u8> = (0..=first_bad).flat_map(|i| cmd1(i, &token(i), P)).collect();
    assert_eq!(exchange(gw.addr(), &frames), response(8, first_bad));
    // Resent on a new connection, the same token is still bad.
    assert_eq!(exchange(gw.addr(), &cmd1(5000, &token(first_bad), P)), response(8, 5000));
    let stats = gw.stop();
    assert_eq!(stats.accepted, first_bad as u64);
    assert_eq!(stats.rejected_with(8), 2);
}

#[test]
fn many_frames_split_across_reads_all_counted() {
    // A tiny read buffer forces frames to straddle reads and the buffer to grow
    // for a frame bigger than it.
    let gw = start(Config { read_buffer: 64, ..Config::default() });
    let mut frames = good(0, 500);
    frames.extend(notif2(500, &token(500), &[b'z'; 2000]));
    frames.extend(cmd0(&token(501), P));
    frames.extend(cmd1(502, &[], P));
    assert_eq!(exchange(gw.addr(), &frames), response(2, 502));
    let stats = gw.stop();
    assert_eq!(stats.accepted, 502);
    assert_eq!(stats.distinct_tokens, 502);
    assert!(stats.bytes_read >= frames.len() as u64 - 50);
}
