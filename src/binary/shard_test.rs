//! The rules for answers and silences, driven without sockets; the helpers
//! drive a shard for the other tests of the module too.

use super::*;
use crate::binary::frame::Status;

pub(super) fn spec() -> FrameSpec {
    FrameSpec { command: Command::Items, payload: Arc::from(&b"{}"[..]), expiry: 0, priority: Priority::Immediate }
}

pub(super) fn limits() -> Limits {
    Limits { batch_bytes: 64 * 1024, window_bytes: 1 << 30, confirm_every: 0, careful_frames: 4096 }
}

pub(super) fn item(n: u64) -> Item {
    let mut t = [0u8; 32];
    t[..8].copy_from_slice(&n.to_be_bytes());
    Item::new(n, DeviceToken(t), None)
}

/// (identifier, line or None for a sentinel) of every command-2 frame in `bytes`.
pub(super) fn frames(bytes: &[u8]) -> Vec<(u32, Option<u64>)> {
    let mut out = vec![];
    let mut b = bytes;
    while !b.is_empty() {
        assert_eq!(b[0], 2);
        let len = u32::from_be_bytes(b[1..5].try_into().unwrap()) as usize;
        let mut items = &b[5..5 + len];
        let (mut id, mut line) = (None, None);
        while !items.is_empty() {
            let ilen = u16::from_be_bytes([items[1], items[2]]) as usize;
            let data = &items[3..3 + ilen];
            match items[0] {
                1 => line = Some(u64::from_be_bytes(data[..8].try_into().unwrap())),
                3 => id = Some(u32::from_be_bytes(data.try_into().unwrap())),
                _ => {}
            }
            items = &items[3 + ilen..];
        }
        out.push((id.unwrap(), line));
        b = &b[5 + len..];
    }
    out
}

/// Writes everything the shard has to say on this connection.
pub(super) fn drain(s: &mut ShardState) -> Vec<(u32, Option<u64>)> {
    let mut all = vec![];
    loop {
        let bytes = s.pending_bytes().to_vec();
        if bytes.is_empty() {
            return frames(&all);
        }
        s.wrote(bytes.len());
        all.extend(bytes);
    }
}

/// Confirms window after window until the shard has nothing left.
pub(super) fn confirm_the_rest(s: &mut ShardState) {
    while s.has_work() {
        s.on_connected();
        let f = drain(s);
        s.on_response(resp(8, sentinel_of(&f)));
    }
}

pub(super) fn shard(n: u64) -> ShardState {
    let mut s = ShardState::new(0, spec(), limits());
    s.push((1..=n).map(item));
    s.finish_input();
    s
}

pub(super) fn resp(status: u8, id: u32) -> ErrorResponse {
    ErrorResponse { status: Status::from_code(status), id }
}

pub(super) fn sentinel_of(frames: &[(u32, Option<u64>)]) -> u32 {
    let (id, line) = *frames.last().unwrap();
    assert_eq!(line, None, "the last frame is a sentinel");
    id
}

#[test]
fn clean_window_is_confirmed_by_its_sentinel() {
    let mut s = shard(10);
    s.on_connected();
    let f = drain(&mut s);
    assert_eq!(f.len(), 11);
    assert_eq!(f[..10].iter().map(|x| x.1.unwrap()).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
    assert!(s.awaiting_confirmation());
    assert_eq!(s.on_response(resp(2, sentinel_of(&f))), ConnEnd::Confirmed);
    assert_eq!(s.report().accepted, 10);
    assert!(!s.has_work());
    // The sentinel is rejected by design: no reason for care.
    assert!(!s.careful());
}

#[test]
fn rejection_rewinds_everything_after_it() {
    let mut s = shard(10);
    s.on_connected();
    let f = drain(&mut s);
    let bad = f[3].0; // line 4
    assert!(matches!(s.on_response(resp(8, bad)), ConnEnd::Answered(_)));
    assert_eq!(s.report().accepted, 3);
    let out = s.take_outcomes();
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].item.line, out[0].state, out[0].status),
        (4, State::Rejected, Some(Code::Binary(Status::InvalidToken)))
    );
    assert!(s.has_work());
    s.on_connected();
    let f = drain(&mut s);
    assert_eq!(f.iter().filter_map(|x| x.1).collect::<Vec<_>>(), (5..=10).collect::<Vec<_>>());
    assert_eq!(s.on_response(resp(8, sentinel_of(&f))), ConnEnd::Confirmed);
    let r = s.report();
    assert_eq!((r.accepted, r.rejected_total(), r.resent, r.possibly_duplicated, r.reconnects), (9, 1, 6, 0, 1));
}

#[test]
fn shutdown_names_the_last_accepted() {
    let mut s = shard(10);
    s.on_connected();
    let f = drain(&mut s);
    s.on_response(resp(10, f[4].0));
    assert_eq!(s.report().accepted, 5);
    assert!(s.take_outcomes().is_empty());
    s.on_connected();
    let f = drain(&mut s);
    assert_eq!(f.first().unwrap().1, Some(6));
    s.on_response(resp(10, f[0].0.wrapping_sub(1))); // shut down before accepting any
    assert_eq!(s.report().accepted, 5);
    s.on_connected();
    let f = drain(&mut s);
    assert_eq!(f.len(), 6);
    s.on_response(resp(2, sentinel_of(&f)));
    assert_eq!((s.report().accepted, s.report().possibly_duplicated), (10, 0));
}

#[test]
fn silent_close_recovers_in_growing_confirmed_windows() {
    let mut s = shard(10);
    s.on_connected();
    drain(&mut s);
    assert_eq!(s.on_close(), ConnEnd::Silent);
    let mut sizes = vec![];
    while s.has_work() {
        s.on_connected();
        let f = drain(&mut s);
        sizes.push(f.len() - 1);
        s.on_response(resp(2, sentinel_of(&f)));
    }
    assert_eq!(sizes, [1, 2, 4, 3]);
    let r = s.report();
    assert_eq!((r.accepted, r.possibly_duplicated, r.resent), (10, 10, 10));
}

#[test]
fn lost_rejection_is_found_again() {
    // Line 3 is invalid and its error response is lost with the connection.
    let mut s = shard(6);
    s.on_connected();
    drain(&mut s);
    s.on_close();
    loop {
        s.on_connected();
        let f = drain(&mut s);
        match f.iter().find(|x| x.1 == Some(3)) {
            Some(bad) => {
                s.on_response(resp(8, bad.0));
                break;
            }
            None => s.on_response(resp(2, sentinel_of(&f))),
        };
    }
    let out = s.take_outcomes();
    assert_eq!(out[0].item.line, 3);
    assert_eq!(out[0].state, State::Rejected);
    confirm_the_rest(&mut s);
    assert_eq!((s.report().accepted, s.report().possibly_duplicated), (5, 5));
}

#[test]
fn a_notification_that_always_kills_the_connection_is_given_up_as_unconfirmed() {
    let mut s = shard(3);
    let mut closes = 0;
    while s.has_work() {
        s.on_connected();
        let f = drain(&mut s);
        if f.iter().any(|x| x.1 == Some(2)) {
            closes += 1;
            s.on_close();
        } else {
            s.on_response(resp(2, sentinel_of(&f)));
        }
        assert!(closes < 20, "does not converge");
    }
    let out = s.take_outcomes();
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].item.line, out[0].state, &out[0].reason),
        (2, State::Unconfirmed, &Reason::SilentWhenAlone { times: MAX_STRIKES })
    );
    assert_eq!(s.report().accepted, 2);
}

#[test]
fn unknown_identifier_is_treated_as_a_silent_close() {
    let mut s = shard(4);
    s.on_connected();
    drain(&mut s);
    assert_eq!(s.on_response(resp(8, 999)), ConnEnd::Silent);
    assert_eq!(s.report().rejected_total(), 0);
    assert_eq!(s.queued(), 4);
}

#[test]
fn error_response_may_arrive_in_pieces() {
    let mut s = shard(3);
    s.on_connected();
    let f = drain(&mut s);
    let bytes = resp(8, f[1].0).to_bytes();
    assert_eq!(s.on_bytes(&bytes[..1]), None);
    assert_eq!(s.on_bytes(&bytes[1..5]), None);
    assert!(matches!(s.on_bytes(&bytes[5..]), Some(ConnEnd::Answered(_))));
    assert_eq!(s.report().rejected_total(), 1);
}

#[test]
fn garbage_from_the_gateway_is_a_silent_close() {
    let mut s = shard(3);
    s.on_connected();
    drain(&mut s);
    assert_eq!(s.on_bytes(b"HTTP/1.1 400"), Some(ConnEnd::Silent));
}

#[test]
fn abandon_splits_unsent_from_unconfirmed_under_its_reason() {
    let mut s = shard(4);
    s.on_connected();
    let f = drain(&mut s);
    s.on_response(resp(8, f[0].0)); // 2..4 rewound, never in doubt
    s.push([item(5)]);
    s.on_connected();
    drain(&mut s);
    s.on_close(); // 2..5 now in doubt
    s.push([item(6)]);
    s.cancel();
    s.abandon(Reason::Interrupted);
    let outcomes: Vec<_> = s.take_outcomes().into_iter().map(|o| (o.item.line, o.state, o.reason)).collect();
    let rejected = Reason::Rejected(Status::InvalidToken);
    let gone = Reason::Interrupted;
    assert_eq!(
        outcomes,
        [
            (1, State::Rejected, rejected),
            (2, State::Unconfirmed, gone.clone()),
            (3, State::Unconfirmed, gone.clone()),
            (4, State::Unconfirmed, gone.clone()),
            (5, State::Unconfirmed, gone.clone()),
            (6, State::Unsent, gone)
        ]
    );
    assert!(!s.has_work());
}

#[test]
fn cancel_confirms_what_is_in_flight() {
    let mut s = ShardState::new(0, spec(), limits());
    s.push((1..=3).map(item));
    s.on_connected();
    assert_eq!(drain(&mut s).len(), 3);
    s.cancel();
    let f = drain(&mut s);
    assert_eq!(f.len(), 1, "only the sentinel");
    s.on_response(resp(2, f[0].0));
    assert_eq!(s.report().accepted, 3);
    assert!(!s.has_work());
}

#[test]
fn only_what_was_written_is_in_doubt_after_a_silent_close() {
    let frame = Command::Items.frame_len(2);
    let mut s = ShardState::new(0, spec(), Limits { batch_bytes: 10 * frame, ..limits() });
    s.push((1..=10).map(item));
    s.on_connected();
    let batch = s.pending_bytes().len();
    assert_eq!(batch, 10 * frame);
    s.wrote(3 * frame + 5); // three whole frames and part of the fourth
    assert_eq!(s.report().frames_written, 3);
    s.on_close();
    s.finish_input();
    confirm_the_rest(&mut s);
    let r = s.report();
    assert_eq!((r.accepted, r.possibly_duplicated, r.resent, r.frames_written), (10, 3, 3, 13));
}
