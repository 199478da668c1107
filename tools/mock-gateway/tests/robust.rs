//! Misbehaving clients never crash the mock, stall other connections, or hang `stop()`.

mod common;

use std::io::Write;
use std::net::Shutdown;

use common::*;
use mock_gateway::Config;

#[test]
fn garbage_truncated_and_vanishing_clients_do_not_disturb_a_healthy_one() {
    let gw = start(Config::default());
    let mut healthy = connect(gw.addr());
    healthy.write_all(&good(0, 10)).unwrap();
    gw.wait_until(WAIT, |s| s.accepted == 10).unwrap();

    // Garbage bytes instead of a TLS ClientHello.
    let mut raw = tcp(gw.addr());
    raw.write_all(&[0x16, 3, 1, 0, 5, 1, 2, 3, 4, 5, 0xFF, 0xFF]).unwrap();
    let (_, _) = read_to_end(&mut raw);
    // TCP connect, then vanish mid-handshake.
    drop(tcp(gw.addr()));
    // Garbage frames over TLS: protocol error 128.
    assert_eq!(exchange(gw.addr(), &[0xEE; 300]), response(128, 0));
    // A truncated frame, then a clean close of the write side.
    let mut trunc = connect(gw.addr());
    trunc.write_all(&good(100, 2)[..100]).unwrap(); // one 67-byte frame and a half
    trunc.get_ref().shutdown(Shutdown::Write).unwrap();
    let (bytes, _) = read_to_end(&mut trunc);
    assert_eq!(bytes, b"");
    // A truncated frame, then the client vanishes (drop without close_notify).
    let mut gone = connect(gw.addr());
    gone.write_all(&notif2(200, &token(200), &[b'q'; 1500])[..700]).unwrap();
    drop(gone);
    // A command-2 frame declaring a huge length: rejected at once, not buffered.
    assert_eq!(exchange(gw.addr(), &[2, 0x40, 0, 0, 0, 1, 0, 32]), response(128, 0));

    // The healthy connection is still served.
    healthy.write_all(&good(10, 10)).unwrap();
    healthy.write_all(&cmd1(20, &token(20), b"")).unwrap();
    let (bytes, err) = read_to_end(&mut healthy);
    assert!(err.is_none());
    assert_eq!(bytes, response(4, 20));
    let stats = gw.stop();
    assert_eq!(stats.accepted, 20 + 1, "{stats:?}"); // + the first complete frame of `trunc`
    assert_eq!(stats.rejected_with(128), 2);
}

#[test]
fn stop_does_not_hang_on_idle_or_half_open_clients() {
    let gw = start(Config::default());
    let idle = connect(gw.addr());
    let half = tcp(gw.addr()); // never starts the handshake
    let mut writing = connect(gw.addr());
    writing.write_all(&good(0, 3)).unwrap();
    let fb = tcp(gw.feedback_addr().unwrap());
    gw.wait_until(WAIT, |s| s.accepted == 3 && s.connections == 2).unwrap();
    let stats = gw.stop();
    assert_eq!(stats.accepted, 3);
    drop((idle, half, writing, fb));
}

#[test]
fn many_parallel_connections_each_counted() {
    let gw = start(Config::default());
    let addr = gw.addr();
    let threads: Vec<_> = (0..8u32)
        .map(|c| {
            std::thread::spawn(move || {
                let mut frames = good(c * 10_000, 2_000);
                frames.extend(cmd1(c * 10_000 + 2_000, &[], b"x"));
                exchange(addr, &frames)
            })
        })
        .collect();
    for (c, t) in threads.into_iter().enumerate() {
        assert_eq!(t.join().unwrap(), response(2, c as u32 * 10_000 + 2_000));
    }
    let stats = gw.stop();
    assert_eq!((stats.accepted, stats.distinct_tokens, stats.duplicates), (16_000, 16_000, 0));
}
