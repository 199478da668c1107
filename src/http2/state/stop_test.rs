//! The answers about the run, not the token: a stop, a pause for Apple's
//! token-update limit, the brake on a failing service, and the
//! BadDeviceToken lines held for the environment guard.

use std::sync::Arc;
use std::time::Instant;

use super::state_test::{item, ok, policy, send, state, status};
use super::{Answer, Followup, H2State};
use crate::binary::shard::Item;
use crate::http2::answer::ApnsReason;
use crate::http2::request::LineHeaders;
use crate::http2::stop::StopCause;
use crate::input::LineExtras;
use crate::report::{Reason, State};
use crate::token::DeviceToken;

#[test]
fn a_run_level_answer_stops_sending_and_settles_nothing() {
    let now = Instant::now();
    let mut s = state(4, 5);
    let (_, first, _) = send(&mut s, now).unwrap();
    let (_, second, _) = send(&mut s, now).unwrap();
    let (_, third, _) = send(&mut s, now).unwrap();
    let topic = s.on_answer(first, status(400, Some(ApnsReason::BadTopic)), now);
    assert_eq!(topic, Followup::StopRun(StopCause::Answer { status: 400, reason: ApnsReason::BadTopic }));
    assert!(s.is_cancelled() && s.next_request(now).is_none(), "nothing more is sent");
    assert!(s.has_work(), "answers still in flight are awaited");
    s.on_answer(second, ok(), now);
    s.on_answer(third, status(403, Some(ApnsReason::InvalidProviderToken)), now);
    assert!(!s.has_work());
    s.abandon(Reason::RunStopped("Apple answered 400 BadTopic".into()));
    assert_eq!(s.take_settled_lines(), [(2, 2)], "only the acceptance is settled");
    assert!(s.take_held_lines().is_empty());
    let mut ends: Vec<(u64, State, String)> =
        s.take_outcomes().into_iter().map(|o| (o.item.line, o.state, o.reason.to_string())).collect();
    ends.sort_by_key(|e| e.0);
    let stopped = "not sent: the run stopped: Apple answered 400 BadTopic".to_owned();
    assert_eq!(
        ends,
        [(1, State::Unsent, stopped.clone()), (3, State::Unsent, stopped.clone()), (4, State::Unsent, stopped)],
        "answered about the run: unsent, not rejected"
    );
    let r = s.report();
    assert_eq!((r.accepted, r.rejected_total(), r.unsent, r.unconfirmed), (1, 0, 3, 0));
}

#[test]
fn a_stopped_notification_in_doubt_before_ends_unconfirmed() {
    let now = Instant::now();
    let mut s = state(1, 5);
    let (_, lost, _) = send(&mut s, now).unwrap();
    s.on_answer(lost, Answer::InDoubt, now);
    let (_, again, _) = send(&mut s, now).unwrap();
    s.on_answer(again, status(403, Some(ApnsReason::BadCertificateEnvironment)), now);
    s.abandon(Reason::RunStopped("x".into()));
    let o = s.take_outcomes();
    assert_eq!((o.len(), o[0].state), (1, State::Unconfirmed), "it may have been delivered the first time");
}

#[test]
fn a_lines_own_payload_too_large_is_only_its_rejection() {
    let now = Instant::now();
    let mut s = H2State::new(0, policy(5));
    let own = Arc::new(LineExtras {
        payload: Some(br#"{"aps":{"alert":"long"}}"#[..].into()),
        headers: LineHeaders::default(),
    });
    s.push([Item::new(1, DeviceToken([1; 32]), Some(own)), item(2)]);
    let (_, own_payload, _) = send(&mut s, now).unwrap();
    let (_, shared_payload, _) = send(&mut s, now).unwrap();
    assert_eq!(s.on_answer(own_payload, status(413, Some(ApnsReason::PayloadTooLarge)), now), Followup::None);
    assert_eq!(s.report().rejected.get("PayloadTooLarge"), Some(&1));
    assert!(!s.is_cancelled());
    let shared = s.on_answer(shared_payload, status(413, Some(ApnsReason::PayloadTooLarge)), now);
    assert_eq!(shared, Followup::StopRun(StopCause::Answer { status: 413, reason: ApnsReason::PayloadTooLarge }));
}

#[test]
fn too_many_token_updates_pauses_the_run_without_using_a_try() {
    let now = Instant::now();
    let mut s = state(1, 1);
    for _ in 0..3 {
        let (line, ticket, _) = send(&mut s, now).unwrap();
        assert_eq!(line, 1);
        let refused = status(429, Some(ApnsReason::TooManyProviderTokenUpdates));
        assert_eq!(s.on_answer(ticket, refused, now), Followup::PauseRun);
        assert_eq!(s.queued(), 1, "back at the front, not given up with one try allowed");
    }
    let (_, ticket, _) = send(&mut s, now).unwrap();
    s.on_answer(ticket, ok(), now);
    assert_eq!((s.report().accepted, s.report().resent), (1, 3));
}

#[test]
fn while_braked_failures_use_no_try_and_wait_for_no_back_off_of_their_own() {
    let now = Instant::now();
    let mut s = state(1, 2);
    s.set_braked(true);
    for _ in 0..5 {
        let (_, ticket, _) = send(&mut s, now).expect("sent again at once: the run's pause paces it");
        assert_eq!(s.on_answer(ticket, status(503, Some(ApnsReason::ServiceUnavailable)), now), Followup::None);
    }
    let (_, ticket, _) = send(&mut s, now).unwrap();
    s.on_answer(ticket, status(429, Some(ApnsReason::TooManyRequests)), now);
    assert!(s.next_due().is_some(), "a 429 TooManyRequests still waits on its own");
    s.set_braked(false);
    assert!(send(&mut s, now).is_none(), "not due yet");
    let (_, ticket, _) = send(&mut s, now + std::time::Duration::from_secs(2)).unwrap();
    s.on_answer(ticket, status(500, None), now);
    let o = s.take_outcomes();
    assert_eq!((o[0].state, o[0].reason.to_string()), (State::Unconfirmed, "gave up after 2 tries; last: 500".into()));
}

#[test]
fn bad_device_tokens_are_held_the_other_rejections_settled() {
    let now = Instant::now();
    let mut s = state(3, 5);
    let answers = [
        status(400, Some(ApnsReason::BadDeviceToken)),
        Answer::Status { status: 410, reason: Some(ApnsReason::Unregistered), timestamp_ms: Some(1) },
        ok(),
    ];
    for answer in answers {
        let (_, ticket, _) = send(&mut s, now).unwrap();
        s.on_answer(ticket, answer, now);
    }
    assert_eq!(s.take_held_lines(), [(1, 1)]);
    assert_eq!(s.take_settled_lines(), [(2, 3)]);
    assert_eq!(s.answered(), 3, "held lines were answered all the same");
}
