//! Conservation under random answers, losses and cancels: every line pushed
//! ends exactly once, and the counters agree with the outcomes.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use super::state_test::{ok, send, state, status};
use super::{Answer, Ticket};
use crate::http2::answer::ApnsReason;
use crate::report::{Reason, State};

/// One step of a random run.
#[derive(Debug, Clone)]
enum Step {
    /// Send up to this many.
    Send(usize),
    /// Answer the in-flight send at this (wrapped) index.
    Answer(usize, Answer),
    /// Answer a ticket a second time.
    Stale(usize),
    /// The connection is lost; whether it had answered anything.
    Lost(bool),
    Later(u64),
    /// The run-wide brake on or off.
    Brake(bool),
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        4 => Just(status(200, None)),
        1 => Just(status(400, Some(ApnsReason::BadDeviceToken))),
        1 => Just(Answer::Status { status: 410, reason: Some(ApnsReason::Unregistered), timestamp_ms: Some(5) }),
        1 => Just(status(403, Some(ApnsReason::ExpiredProviderToken))),
        1 => Just(status(429, Some(ApnsReason::TooManyRequests))),
        1 => Just(status(500, None)),
        1 => Just(status(503, Some(ApnsReason::Shutdown))),
        1 => Just(status(418, Some(ApnsReason::Other("Teapot".into())))),
        1 => Just(status(400, Some(ApnsReason::BadTopic))),
        1 => Just(status(429, Some(ApnsReason::TooManyProviderTokenUpdates))),
        2 => Just(Answer::Refused),
        2 => Just(Answer::InDoubt),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (1usize..8).prop_map(Step::Send),
        6 => (any::<usize>(), answer()).prop_map(|(i, a)| Step::Answer(i, a)),
        1 => any::<usize>().prop_map(Step::Stale),
        1 => any::<bool>().prop_map(Step::Lost),
        1 => (0u64..3000).prop_map(Step::Later),
        1 => any::<bool>().prop_map(Step::Brake),
    ]
}

proptest! {
    #[test]
    fn every_line_ends_exactly_once(
        n in 1u64..30,
        max_tries in 1u32..4,
        steps in prop::collection::vec(step(), 0..200),
        cancel_at in prop::option::of(0usize..200),
    ) {
        let mut s = state(n, max_tries);
        s.finish_input();
        let mut now = Instant::now();
        let (mut open, mut answered_once): (Vec<(Ticket, u64)>, Vec<Ticket>) = (vec![], vec![]);
        // Lines sent and never answered at least once: the model of "in doubt".
        let mut doubted = BTreeSet::new();
        let mut sends = 0u64;
        for (i, step) in steps.into_iter().enumerate() {
            if cancel_at == Some(i) {
                s.cancel();
            }
            match step {
                Step::Send(k) => {
                    for _ in 0..k {
                        let Some((line, ticket, _)) = send(&mut s, now) else { break };
                        open.push((ticket, line));
                        sends += 1;
                    }
                }
                Step::Answer(_, _) if open.is_empty() => {}
                Step::Answer(i, answer) => {
                    let (ticket, line) = open.swap_remove(i % open.len());
                    if answer == Answer::InDoubt {
                        doubted.insert(line);
                    }
                    s.on_answer(ticket, answer, now);
                    answered_once.push(ticket);
                }
                Step::Stale(_) if answered_once.is_empty() => {}
                Step::Stale(i) => {
                    let before = (s.report().clone(), s.queued(), s.in_flight());
                    s.on_answer(answered_once[i % answered_once.len()], ok(), now);
                    prop_assert_eq!(before, (s.report().clone(), s.queued(), s.in_flight()));
                }
                Step::Lost(answered) => {
                    s.on_connection_lost(answered, now);
                    doubted.extend(open.iter().map(|(_, line)| *line));
                    answered_once.extend(open.drain(..).map(|(ticket, _)| ticket));
                }
                Step::Later(ms) => now += Duration::from_millis(ms),
                Step::Brake(on) => s.set_braked(on),
            }
            prop_assert_eq!(s.in_flight(), open.len());
        }
        s.on_connection_lost(true, now);
        doubted.extend(open.iter().map(|(_, line)| *line));
        s.abandon(Reason::Interrupted);
        prop_assert!(!s.has_work());

        let held: Vec<u64> = s.take_held_lines().into_iter().flat_map(|(a, b)| a..=b).collect();
        let mut settled: Vec<u64> = s.take_settled_lines().into_iter().flat_map(|(a, b)| a..=b).collect();
        let outcomes = s.take_outcomes();
        for line in &held {
            let bad_token = outcomes.iter().any(|o| {
                o.item.line == *line
                    && matches!(&o.reason, Reason::Http2Rejected { reason: Some(ApnsReason::BadDeviceToken), .. })
            });
            prop_assert!(bad_token, "only BadDeviceToken lines are held");
        }
        settled.extend(held);
        let mut ends: Vec<u64> = settled.clone();
        ends.extend(outcomes.iter().filter(|o| o.state != State::Rejected).map(|o| o.item.line));
        ends.sort_unstable();
        prop_assert_eq!(ends, (1..=n).collect::<Vec<_>>(), "each line ends exactly once");
        for o in outcomes.iter().filter(|o| o.state == State::Rejected) {
            prop_assert!(settled.contains(&o.item.line), "a rejection is a settled line");
        }
        let r = s.report();
        let count = |state| outcomes.iter().filter(|o| o.state == state).count() as u64;
        prop_assert_eq!(r.rejected_total(), count(State::Rejected));
        prop_assert_eq!(r.unconfirmed, count(State::Unconfirmed));
        prop_assert_eq!(r.unsent, count(State::Unsent));
        prop_assert_eq!(r.accepted + r.rejected_total() + r.unconfirmed + r.unsent, n);
        prop_assert_eq!(r.accepted + r.rejected_total(), s.answered());
        prop_assert!(r.possibly_duplicated <= r.accepted);
        prop_assert_eq!(r.frames_written, sends);
        prop_assert!(r.resent <= r.frames_written);
        for o in &outcomes {
            prop_assert_eq!(o.item.doubt, doubted.contains(&o.item.line), "line {}", o.item.line);
            if o.state == State::Unsent {
                prop_assert!(!o.item.doubt, "what may have been delivered is never called unsent");
            }
            if o.reason == Reason::Interrupted && o.state == State::Unconfirmed {
                prop_assert!(o.item.doubt, "unconfirmed by abandon only when it may have been delivered");
            }
        }
        let rejected: BTreeSet<u64> =
            outcomes.iter().filter(|o| o.state == State::Rejected).map(|o| o.item.line).collect();
        let accepted_in_doubt =
            settled.iter().filter(|l| !rejected.contains(l) && doubted.contains(l)).count() as u64;
        prop_assert_eq!(r.possibly_duplicated, accepted_in_doubt);
    }
}
