//! The rules for answers and silences, driven without a connection.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::http2::request::{LineHeaders, apns_id_value};
use crate::report::{Failure, Reason, State};

const MS: Duration = Duration::from_millis(1);

pub(super) fn policy(max_tries: u32) -> RetryPolicy {
    RetryPolicy { max_tries, backoff_min: 100 * MS, backoff_max: 1000 * MS, seed: 42 }
}

pub(super) fn item(line: u64) -> Item {
    let mut t = [0u8; 32];
    t[..8].copy_from_slice(&line.to_be_bytes());
    Item::new(line, DeviceToken(t), None)
}

/// A state holding lines `1..=n`.
pub(super) fn state(n: u64, max_tries: u32) -> H2State {
    let mut s = H2State::new(0, policy(max_tries));
    s.push((1..=n).map(item));
    s
}

/// The line, ticket and apns-id of the next send.
pub(super) fn send(s: &mut H2State, now: Instant) -> Option<(u64, Ticket, u128)> {
    s.next_request(now).map(|r| (u64::from_be_bytes(r.token.0[..8].try_into().unwrap()), r.ticket, r.apns_id))
}

pub(super) fn status(status: u16, reason: Option<ApnsReason>) -> Answer {
    Answer::Status { status, reason, timestamp_ms: None }
}

pub(super) fn ok() -> Answer {
    status(200, None)
}

fn one_outcome(s: &mut H2State) -> Outcome {
    let mut outcomes = s.take_outcomes();
    assert_eq!(outcomes.len(), 1, "{outcomes:?}");
    outcomes.pop().unwrap()
}

#[test]
fn a_200_accepts_and_records_the_line() {
    let now = Instant::now();
    let mut s = state(3, 5);
    let sent: Vec<_> = (0..3).map(|_| send(&mut s, now).unwrap()).collect();
    assert_eq!(sent.iter().map(|x| x.0).collect::<Vec<_>>(), [1, 2, 3], "in input order");
    assert!(send(&mut s, now).is_none());
    assert_eq!(s.in_flight(), 3);
    for (_, ticket, _) in sent.iter().rev() {
        assert_eq!(s.on_answer(*ticket, ok(), now), Followup::None);
    }
    assert_eq!((s.report().accepted, s.report().frames_written, s.report().resent, s.answered()), (3, 3, 0, 3));
    assert_eq!(s.take_settled_lines(), [(3, 3), (2, 2), (1, 1)]);
    assert!(s.take_outcomes().is_empty(), "acceptance is no outcome");
    s.finish_input();
    assert!(!s.has_work());
}

#[test]
fn a_rejection_is_final_and_counted_by_apples_reason() {
    let now = Instant::now();
    let mut s = state(4, 5);
    let answers = [
        status(400, Some(ApnsReason::BadDeviceToken)),
        status(400, Some(ApnsReason::BadDeviceToken)),
        status(400, Some(ApnsReason::Other("BrandNew".into()))),
        status(413, None),
    ];
    for answer in answers {
        let (_, ticket, _) = send(&mut s, now).unwrap();
        assert_eq!(s.on_answer(ticket, answer, now), Followup::None);
    }
    let want: BTreeMap<String, u64> = [("BadDeviceToken".into(), 2), ("400".into(), 1), ("413".into(), 1)].into();
    assert_eq!(s.report().rejected, want, "unknown reasons count under their status");
    assert_eq!((s.answered(), s.queued(), s.in_flight()), (4, 0, 0));
    assert_eq!(s.take_settled_lines(), [(3, 4)]);
    assert_eq!(s.take_held_lines(), [(1, 2)], "BadDeviceToken waits for the environment guard");
    let outcomes = s.take_outcomes();
    assert!(outcomes.iter().all(|o| o.state == State::Rejected && o.status.is_none()));
    assert_eq!(
        outcomes[0].reason,
        Reason::Http2Rejected { status: 400, reason: Some(ApnsReason::BadDeviceToken), unregistered_at: None }
    );
    assert_eq!(outcomes[0].reason.to_string(), "BadDeviceToken");
}

#[test]
fn a_410_keeps_its_timestamp_for_the_failure_list() {
    let now = Instant::now();
    let mut s = state(2, 5);
    let (_, t1, _) = send(&mut s, now).unwrap();
    let (_, t2, _) = send(&mut s, now).unwrap();
    let gone =
        Answer::Status { status: 410, reason: Some(ApnsReason::Unregistered), timestamp_ms: Some(1_700_000_000_123) };
    s.on_answer(t1, gone, now);
    let stray = Answer::Status { status: 400, reason: Some(ApnsReason::DeviceTokenNotForTopic), timestamp_ms: Some(9) };
    s.on_answer(t2, stray, now);
    let outcomes = s.take_outcomes();
    let o = &outcomes[0];
    assert_eq!(o.reason.unregistered_at(), Some(1_700_000_000_123));
    let failure = Failure::new(o.item.line, o.item.token.to_string(), o.state, &o.reason);
    assert_eq!((failure.unregistered_at, failure.reason.as_str()), (Some(1_700_000_000_123), "Unregistered"));
    assert_eq!(outcomes[1].reason.unregistered_at(), None, "a timestamp counts with 410 only");
    assert_eq!(s.report().rejected.get("Unregistered"), Some(&1));
}

#[test]
fn an_expired_provider_token_renews_and_sends_again_first() {
    let now = Instant::now();
    let mut s = state(2, 5);
    let (line, ticket, id) = send(&mut s, now).unwrap();
    let followup = s.on_answer(ticket, status(403, Some(ApnsReason::ExpiredProviderToken)), now);
    assert_eq!(followup, Followup::RenewToken);
    let (again, ticket2, id2) = send(&mut s, now).unwrap();
    assert_eq!((again, id2), (line, id), "the same notification, the same apns-id, ahead of line 2");
    assert_ne!(ticket2, ticket, "tickets are never reused");
    assert_eq!((s.report().frames_written, s.report().resent), (2, 1));
    s.on_answer(ticket2, ok(), now);
    assert_eq!((s.report().accepted, s.report().possibly_duplicated), (1, 0));
}

#[test]
fn a_token_apple_keeps_calling_expired_is_given_up_after_max_tries() {
    let now = Instant::now();
    let mut s = state(1, 3);
    for _ in 0..3 {
        let (_, ticket, _) = send(&mut s, now).unwrap();
        assert_eq!(s.on_answer(ticket, status(403, Some(ApnsReason::ExpiredProviderToken)), now), Followup::RenewToken);
    }
    assert!(send(&mut s, now).is_none());
    let o = one_outcome(&mut s);
    assert_eq!(o.state, State::Unconfirmed);
    assert_eq!(o.reason.to_string(), "gave up after 3 tries; last: 403 ExpiredProviderToken");
}

#[test]
fn a_retry_becomes_due_only_after_its_back_off_which_doubles() {
    let t0 = Instant::now();
    let mut s = state(1, 5);
    let mut now = t0;
    for full in [100, 200, 400, 800] {
        let (_, ticket, _) = send(&mut s, now).unwrap();
        s.on_answer(ticket, status(503, Some(ApnsReason::ServiceUnavailable)), now);
        let due = s.next_due().expect("a retry waits");
        assert!(due >= now + full * MS / 2 && due <= now + full * MS, "{:?} after {full} ms", due - now);
        assert_eq!(s.queued(), 1);
        assert!(s.next_request(due - Duration::from_nanos(1)).is_none(), "not due yet");
        now = due;
    }
    let (_, ticket, _) = send(&mut s, now).unwrap();
    assert_eq!(s.on_answer(ticket, status(429, Some(ApnsReason::TooManyRequests)), now), Followup::None);
    assert_eq!(s.next_due(), None);
    let o = one_outcome(&mut s);
    assert_eq!(o.state, State::Unconfirmed);
    assert_eq!(o.reason, Reason::Http2GaveUp { tries: 5, last: "429 TooManyRequests".into() });
    assert_eq!((s.report().unconfirmed, s.report().frames_written, s.report().resent), (1, 5, 4));
}

#[test]
fn the_back_off_stops_growing_at_its_longest() {
    let now = Instant::now();
    let mut s = state(1, 20);
    let mut at = now;
    for tries in 1..=12 {
        let (_, ticket, _) = send(&mut s, at).unwrap();
        s.on_answer(ticket, status(500, None), at);
        let due = s.next_due().unwrap();
        assert!(due - at <= 1000 * MS, "at most the longest");
        if tries >= 5 {
            assert!(due - at >= 500 * MS, "the longest, jittered, from the 5th try on");
        }
        at = due;
    }
}

#[test]
fn a_due_retry_goes_before_new_input() {
    let now = Instant::now();
    let mut s = state(3, 5);
    let (_, ticket, _) = send(&mut s, now).unwrap();
    s.on_answer(ticket, status(500, Some(ApnsReason::InternalServerError)), now);
    assert_eq!(send(&mut s, now).unwrap().0, 2, "line 1 waits; new input goes meanwhile");
    let due = s.next_due().unwrap();
    assert_eq!(send(&mut s, due).unwrap().0, 1, "due: ahead of line 3");
    assert_eq!(send(&mut s, due).unwrap().0, 3);
}

#[test]
fn shutdown_closes_the_connection_and_sends_again_elsewhere() {
    let now = Instant::now();
    let mut s = state(2, 5);
    let (_, ticket, _) = send(&mut s, now).unwrap();
    assert_eq!(s.on_answer(ticket, status(503, Some(ApnsReason::Shutdown)), now), Followup::CloseConnection);
    assert_eq!(s.next_due(), None, "no back-off: next on the new connection");
    assert_eq!(send(&mut s, now).unwrap().0, 1);
    let mut s = state(1, 1);
    let (_, ticket, _) = send(&mut s, now).unwrap();
    assert_eq!(s.on_answer(ticket, status(503, Some(ApnsReason::Shutdown)), now), Followup::CloseConnection);
    assert_eq!(one_outcome(&mut s).reason.to_string(), "gave up after 1 tries; last: 503 Shutdown", "it was a try");
}

#[test]
fn a_refused_stream_is_not_a_try_and_not_in_doubt() {
    let now = Instant::now();
    let mut s = state(2, 2);
    for _ in 0..10 {
        let (line, ticket, _) = send(&mut s, now).unwrap();
        assert_eq!(line, 1, "back at the front");
        assert_eq!(s.on_answer(ticket, Answer::Refused, now), Followup::None);
    }
    let (_, ticket, _) = send(&mut s, now).unwrap();
    s.on_answer(ticket, ok(), now);
    assert_eq!((s.report().accepted, s.report().possibly_duplicated, s.report().unconfirmed), (1, 0, 0));
    assert_eq!((s.report().frames_written, s.report().resent), (11, 10));
}

#[test]
fn in_doubt_then_accepted_counts_as_possibly_duplicated() {
    let now = Instant::now();
    let mut s = state(2, 5);
    let (_, ticket, id) = send(&mut s, now).unwrap();
    assert_eq!(s.on_answer(ticket, Answer::InDoubt, now), Followup::None);
    let (line, fresh, _) = send(&mut s, now).unwrap();
    assert_eq!(line, 2, "in doubt waits behind the fresh notification");
    s.on_answer(fresh, ok(), now);
    let (line, ticket, id2) = send(&mut s, now).unwrap();
    assert_eq!((line, id2), (1, id), "then it goes again, with its apns-id");
    s.on_answer(ticket, ok(), now);
    assert_eq!((s.report().accepted, s.report().possibly_duplicated), (2, 1));
}

#[test]
fn a_notification_never_answered_ends_unconfirmed_after_max_tries() {
    let now = Instant::now();
    let mut s = state(1, 4);
    for _ in 0..4 {
        let (_, ticket, _) = send(&mut s, now).unwrap();
        s.on_answer(ticket, Answer::InDoubt, now);
    }
    let o = one_outcome(&mut s);
    assert_eq!((o.state, o.reason.clone()), (State::Unconfirmed, Reason::Http2InDoubt { tries: 4 }));
    assert_eq!(o.reason.to_string(), "no answer after 4 tries: may or may not have been delivered");
    assert!(o.item.doubt);
}

#[test]
fn a_lost_connection_puts_everything_in_flight_in_doubt_behind_what_waits() {
    let now = Instant::now();
    let mut s = state(5, 5);
    let sent: Vec<_> = (0..3).map(|_| send(&mut s, now).unwrap()).collect();
    s.on_answer(sent[1].1, ok(), now);
    s.on_connection_lost(true, now);
    assert_eq!((s.in_flight(), s.queued()), (0, 4));
    let order: Vec<u64> = (0..4).map(|_| send(&mut s, now).unwrap().0).collect();
    assert_eq!(order, [4, 5, 1, 3], "fresh work first, then the lost sends in the order they were sent");
    // Stale answers for the lost sends settle nothing.
    s.on_answer(sent[0].1, ok(), now);
    s.on_answer(sent[2].1, status(400, Some(ApnsReason::BadTopic)), now);
    s.on_answer(sent[1].1, ok(), now);
    assert_eq!((s.report().accepted, s.report().rejected_total(), s.in_flight()), (1, 0, 4));
    s.on_connection_lost(false, now);
    s.abandon(Reason::Interrupted);
    let mut states: Vec<(u64, State)> = s.take_outcomes().iter().map(|o| (o.item.line, o.state)).collect();
    states.sort_by_key(|(line, _)| *line);
    let want = [(1, State::Unconfirmed), (3, State::Unconfirmed), (4, State::Unconfirmed), (5, State::Unconfirmed)];
    assert_eq!(states, want, "each was sent and never answered");
}

#[test]
fn a_connection_lost_after_answering_costs_its_open_sends_no_try() {
    let now = Instant::now();
    let mut s = state(3, 1);
    let (_, first, _) = send(&mut s, now).unwrap();
    send(&mut s, now).unwrap();
    s.on_answer(first, ok(), now);
    s.on_connection_lost(true, now);
    assert_eq!((s.queued(), s.report().unconfirmed), (2, 0), "one try each, none used");
    let order: Vec<u64> = (0..2).map(|_| send(&mut s, now).unwrap().0).collect();
    assert_eq!(order, [3, 2], "behind fresh work");
    s.on_connection_lost(false, now);
    assert_eq!((s.queued(), s.report().unconfirmed), (0, 2), "lost with nothing answered: the try is used");
}

#[test]
fn a_connection_lost_before_any_answer_sends_the_same_ones_first_again() {
    let now = Instant::now();
    let mut s = state(4, 5);
    let first: Vec<u64> = (0..2).map(|_| send(&mut s, now).unwrap().0).collect();
    s.on_connection_lost(false, now);
    let again: Vec<u64> = (0..2).map(|_| send(&mut s, now).unwrap().0).collect();
    assert_eq!((first, again), (vec![1, 2], vec![1, 2]), "the same two, in order, before lines 3 and 4");
    s.on_connection_lost(false, now);
    assert_eq!(s.queued(), 4);
    let (_, ticket, _) = send(&mut s, now).unwrap();
    s.on_answer(ticket, ok(), now);
    assert_eq!((s.report().accepted, s.report().possibly_duplicated), (1, 1), "sent three times, declared once");
}

#[test]
fn abandon_ends_everything_not_settled() {
    let now = Instant::now();
    let mut s = state(5, 5);
    let (_, doubt, _) = send(&mut s, now).unwrap();
    let (_, busy, _) = send(&mut s, now).unwrap();
    let (_, open, _) = send(&mut s, now).unwrap();
    s.on_answer(doubt, Answer::InDoubt, now);
    s.on_answer(busy, status(429, Some(ApnsReason::TooManyRequests)), now);
    let _ = open;
    s.abandon("gave up: no route");
    let mut states: Vec<(u64, State)> = s.take_outcomes().iter().map(|o| (o.item.line, o.state)).collect();
    states.sort_by_key(|(line, _)| *line);
    let want = [
        (1, State::Unconfirmed), // in doubt
        (2, State::Unsent),      // answered "later": not delivered
        (3, State::Unconfirmed), // in flight, no answer
        (4, State::Unsent),
        (5, State::Unsent),
    ];
    assert_eq!(states, want);
    assert_eq!((s.report().unconfirmed, s.report().unsent, s.queued(), s.in_flight()), (2, 3, 0, 0));
    s.on_answer(open, ok(), now);
    assert_eq!(s.report().accepted, 0, "an answer after abandon settles nothing twice");
}

#[test]
fn cancel_stops_new_sends_and_retries_but_waits_for_answers() {
    let now = Instant::now();
    let mut s = state(3, 5);
    let (_, retry, _) = send(&mut s, now).unwrap();
    let (_, open, _) = send(&mut s, now).unwrap();
    s.on_answer(retry, status(500, None), now);
    s.cancel();
    assert!(s.is_cancelled() && !s.wants_input());
    assert!(s.next_request(now + Duration::from_secs(60)).is_none());
    assert_eq!(s.next_due(), None);
    assert!(s.has_work(), "line 2 is in flight");
    s.on_answer(open, ok(), now);
    assert!(!s.has_work());
    s.abandon(Reason::Interrupted);
    assert_eq!((s.report().accepted, s.report().unsent), (1, 2));
}

#[test]
fn input_is_taken_up_to_a_bound_and_work_lasts_until_it_ends() {
    let mut s = H2State::new(3, policy(5));
    assert_eq!(s.report().shard, 3);
    assert!(s.has_work(), "input may still come");
    while s.wants_input() {
        Intake::push(&mut s, (1..=1000).map(item).collect());
    }
    assert_eq!(s.queued(), 4096 + 904);
    Intake::finish_input(&mut s);
    assert!(s.has_work() && !s.wants_input());
}

#[test]
fn a_notifications_own_payload_and_headers_go_with_it() {
    let now = Instant::now();
    let mut s = H2State::new(0, policy(5));
    let own = LineExtras {
        payload: Some(br#"{"aps":{}}"#[..].into()),
        headers: LineHeaders::new(None, Some("voip"), None).unwrap(),
    };
    s.push([Item::new(1, DeviceToken([1; 32]), Some(Arc::new(own.clone()))), item(2)]);
    assert_eq!(s.next_request(now).unwrap().extras, Some(&own));
    assert_eq!(s.next_request(now).unwrap().extras, None);
}

#[test]
fn apns_ids_are_version_4_uuids_one_per_notification() {
    let mut buf = [0u8; 36];
    let mut seen = std::collections::HashSet::new();
    for line in 1..=1000 {
        let id = apns_id(7, line);
        assert_eq!(id, apns_id(7, line), "deterministic");
        assert!(seen.insert(id));
        let text = apns_id_value(id, &mut buf);
        assert_eq!(&text[14..15], "4", "{text}");
        assert!("89ab".contains(&text[19..20]), "{text}");
    }
    assert_ne!(apns_id(7, 1), apns_id(8, 1), "seeds differ, ids differ");
    let now = Instant::now();
    let (mut a, mut b) = (state(1, 5), H2State::new(1, policy(5)));
    b.push([item(1)]);
    assert_ne!(send(&mut a, now).unwrap().2, send(&mut b, now).unwrap().2, "shards draw apart");
}

#[test]
fn a_refusal_holds_the_streams_to_those_open_until_answers_come() {
    let mut b = StreamBudget::default();
    assert_eq!(b.limit(1000), 1000, "the announced limit until a refusal");
    b.on_answered();
    assert_eq!(b.limit(1000), 1000);
    // Apple's one stream at first: the second is refused while the first is open.
    assert!(b.on_refused(1));
    assert_eq!(b.limit(1000), 1, "no stream sent again into the refusal");
    b.on_answered();
    b.on_answered();
    assert_eq!((b.limit(1000), b.limit(2)), (3, 2), "one more per answer, the announced limit still caps");
    assert!(!b.on_refused(0), "refused with none open: the connection takes nothing");
    assert_eq!(b.limit(1000), 1);
}

#[test]
fn ready_says_whether_a_send_is_waiting_now() {
    let now = Instant::now();
    let mut s = state(1, 5);
    assert!(s.ready(now));
    let (_, ticket, _) = send(&mut s, now).unwrap();
    assert!(!s.ready(now), "in flight is not waiting");
    s.on_answer(ticket, status(503, Some(ApnsReason::ServiceUnavailable)), now);
    assert!(!s.ready(now), "a retry waits for its back-off");
    let due = s.next_due().unwrap();
    assert!(s.ready(due));
    s.cancel();
    assert!(!s.ready(due), "nothing is sent after a cancel");
}

#[test]
fn after_a_lost_connection_the_next_starts_at_twice_what_it_answered() {
    assert_eq!(StreamBudget::after_loss(None).limit(1000), 1000, "not lost: the announced limit");
    assert_eq!(StreamBudget::after_loss(Some(0)).limit(1000), 16, "at least a few");
    let mut b = StreamBudget::after_loss(Some(25));
    assert_eq!(b.limit(1000), 50);
    b.on_answered();
    assert_eq!((b.limit(1000), b.limit(20)), (51, 20), "one more per answer, under the announced limit");
    assert_eq!(
        StreamBudget::after_loss(Some(u64::MAX)).limit(1000),
        1000,
        "a long-lived connection holds nothing back"
    );
}
