//! What the driver does with an answer besides giving it to the state: the
//! run-wide brakes (the guard, the stop, the pauses), the token's renewal,
//! and the lines it hands to the run.

use std::time::Instant;

use crossbeam_channel::Sender;

use super::super::jwt::{ProviderToken, RenewError};
use super::super::link::{Authorization, H2Link};
use super::super::state::{Answer, Followup, H2State, Ticket};
use super::super::stop::StopCause;
use crate::brakes::{Brakes, Guards};
use crate::handoff::{Event, flush_outcomes};

/// Gives `result` to the state and acts on what follows for the run; the
/// reason to stop sending on this connection, if there is one.
pub(super) fn settle(
    state: &mut H2State,
    brakes: &Brakes,
    link: &H2Link,
    auth: &mut Option<Authorization>,
    (ticket, sent_with): (Ticket, u64),
    result: Answer,
    now: Instant,
) -> Option<String> {
    let guarded = match &result {
        Answer::Status { reason: Some(reason), .. } if Guards::holds(Some(reason)) => Some(reason.clone()),
        _ => None,
    };
    if let Answer::Status { status, reason, .. } = &result {
        state.set_braked(brakes.on_status(*status, reason.as_ref(), now));
    }
    let answered = state.answered();
    let followup = state.on_answer(ticket, result, now);
    if state.answered() > answered
        && let Some(cause) = brakes.guard.observe(guarded.as_ref())
    {
        brakes.stop_run(cause);
    }
    match followup {
        Followup::None => {}
        Followup::RenewToken => {
            if let Some(cause) = renew(link.token.as_deref(), auth, sent_with) {
                brakes.stop_run(cause);
            }
        }
        Followup::CloseConnection => return Some("the gateway is shutting down".into()),
        Followup::StopRun(cause) => brakes.stop_run(cause),
        Followup::PauseRun => brakes.on_token_refused(now),
    }
    None
}

/// Sends what a shard settled since the last call, BadDeviceToken and
/// DeviceTokenNotForTopic lines as the guards allow: settled once both have
/// cleared, held by the run while one is undecided, dropped once one has
/// tripped.
pub(super) fn flush(state: &mut H2State, events: &Sender<Event>, brakes: &Brakes) {
    flush_outcomes(state, events);
    let held = state.take_held_lines();
    if held.is_empty() || brakes.guard.is_tripped() {
        return;
    }
    let _ = events.send(if brakes.guard.is_clear() { Event::Settled(held) } else { Event::Held(held) });
}

/// Renews the shared token after Apple called the one of generation
/// `sent_with` expired; the cause to stop the run for when it cannot be
/// renewed (every request would get the same answer). Nothing to do when
/// the connection has moved on from that token already: other requests
/// sent with it were answered the same, and one renewal served them all.
fn renew(shared: Option<&ProviderToken>, auth: &mut Option<Authorization>, sent_with: u64) -> Option<StopCause> {
    let (Some(shared), Some(held)) = (shared, auth.as_ref()) else { return None };
    if held.token().generation() != sent_with {
        return None;
    }
    match shared.renew_after_expired(held.token()) {
        Ok(token) => {
            *auth = Some(Authorization::new(token));
            None
        }
        Err(RenewError::ClockWrong { age_secs }) => Some(StopCause::ClockWrong { age_secs }),
        Err(RenewError::Fixed) => Some(StopCause::FixedTokenExpired),
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::jwt::jwt_test::{T0, p8_file, provider};
    use super::*;

    /// Requests in flight with the old token get 403 ExpiredProviderToken
    /// one after another: the first renews it, the others find the
    /// connection on the new one and renew nothing (renewing the new one,
    /// seconds old, would read as a wrong clock and stop the run).
    #[test]
    fn an_expiry_answered_for_a_token_already_replaced_renews_nothing() {
        let (_dir, path, _) = p8_file();
        // Signed in 2023: long expired by this machine's clock.
        let shared = provider(&path, T0);
        let mut auth = Some(Authorization::new(shared.current_at(T0)));
        assert_eq!(renew(Some(&shared), &mut auth, 1), None, "renewed");
        assert_eq!((shared.generation(), auth.as_ref().map(|a| a.token().generation())), (2, Some(2)));
        for _ in 0..3 {
            assert_eq!(renew(Some(&shared), &mut auth, 1), None, "no stop for the answers still coming");
        }
        assert_eq!(shared.generation(), 2, "renewed once");
    }
}
