//! The I/O driver of one HTTP/2 shard: one thread running a current-thread
//! tokio runtime, with one h2 connection at a time and as many streams in
//! flight as the gateway allows (and `--streams` caps).
//!
//! What to send and what an answer means is decided by [`H2State`]; when to
//! connect, pause or give up by the [`Session`](crate::session::Session).
//! This module moves requests and answers, keeps time, and counts streams
//! itself: h2 neither holds back a stream above the gateway's limit nor
//! wakes a sender when the limit rises, so the limit is read again after
//! every answer and on every tick.

use std::future::poll_fn;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use crossbeam_channel::Sender;
use futures_util::FutureExt as _;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use tokio::sync::Notify;

use super::connect::connect;
use super::goaway::reason_in;
use super::link::{Authorization, H2Link};
use super::state::{Answer, H2State, StreamBudget};
use super::stop::StopCause;
use crate::backoff::Backoff;
use crate::binary::shard::{Item, Outcome};
use crate::brakes::Brakes;
use crate::handoff::{Event, Inbox, Settles, Wake, give_up};
use crate::report::{Reason, ShardReport};
use crate::session::{Fruitless, Next, Session};

/// The longest a shard waits without looking at its input, its clocks and
/// the gateway's stream limit.
const TICK: Duration = Duration::from_millis(50);
/// A connection quiet this long is sent a PING: it keeps middleboxes from
/// dropping it, and one that does not answer within the response timeout
/// is dead.
const KEEPALIVE: Duration = Duration::from_secs(60);

/// Wakes an HTTP/2 shard waiting on its runtime. A wake while it is busy
/// leaves a permit, so its next wait returns at once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Doorbell(pub(crate) Arc<Notify>);

impl Wake for Doorbell {
    fn wake(&self) {
        self.0.notify_one();
    }
}

mod read;
mod settle;

use read::connection_lost;
pub(super) use read::{classify, read_answer};
use settle::{flush, settle};

/// What a shard's driver works with besides its state.
struct Shard<'a> {
    link: &'a H2Link,
    inbox: &'a Inbox<'a, Item>,
    bell: &'a Notify,
    events: &'a Sender<Event>,
    brakes: &'a Brakes,
}

/// Runs one shard to the end: all its input settled, or given up.
pub(crate) fn run_shard(
    mut state: H2State,
    link: &H2Link,
    inbox: Inbox<'_, Item>,
    bell: Arc<Notify>,
    events: Sender<Event>,
    alive: &AtomicBool,
    brakes: &Brakes,
) {
    let started = Instant::now();
    let shard = Shard { link, inbox: &inbox, bell: &bell, events: &events, brakes };
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(run(&mut state, &shard, alive)),
        Err(e) => give_up(&mut state, format!("gave up: cannot start an event loop: {e}"), alive),
    }
    if state.is_cancelled() && state.report().error.is_none() {
        // Batches still in the channel are settled by the run once the
        // splitter has stopped, so none can slip in after a last look here.
        state.abandon(brakes.unsent_reason());
    }
    flush(&mut state, &events, brakes);
    state.report_mut().elapsed_s = started.elapsed().as_secs_f64();
    let _ = events.send(Event::Done(state.report().clone()));
}

async fn run(state: &mut H2State, shard: &Shard<'_>, alive: &AtomicBool) {
    let Shard { link, inbox, bell, events, brakes } = *shard;
    let shard_no = state.report().shard;
    let mut session = Session::new(link.policy, Backoff::seed_for(shard_no));
    // Since a connection was lost with sends in doubt: the most any
    // connection answered (see `StreamBudget::after_loss`).
    let mut since_loss: Option<u64> = None;
    loop {
        inbox.pull(state);
        if !state.has_work() {
            break;
        }
        if state.queued() == 0 && state.in_flight() == 0 {
            wait_for_input(inbox, state, bell).await;
            continue;
        }
        let connecting = Instant::now();
        let attempt = connect(link).await;
        state.report_mut().connect_s += connecting.elapsed().as_secs_f64();
        let next = match attempt {
            Ok((sender, mut connection)) => {
                let report = state.report_mut();
                report.connections += 1;
                if report.connections > 1 {
                    report.reconnects += 1;
                }
                session.on_connected(Duration::ZERO);
                let before = state.answered();
                let ping = connection.ping_pong();
                let task = tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        // A GOAWAY is logged by the driver, which meets it too.
                        log::debug!("HTTP/2 connection ended: {e}");
                    }
                });
                let end = drive(state, shard, sender, ping, StreamBudget::after_loss(since_loss)).await;
                task.abort();
                let answered = state.answered() - before;
                // Sends still open: the connection broke under them.
                since_loss = match since_loss {
                    _ if state.in_flight() > 0 => Some(answered),
                    most => most.map(|most| most.max(answered)),
                };
                state.on_connection_lost(answered > 0, Instant::now());
                session.on_connection_end(if answered > 0 { Ok(()) } else { Err(end) })
            }
            Err(e) => {
                state.report_mut().failed_connects += 1;
                session.on_connect_failed(e)
            }
        };
        flush(state, events, brakes);
        match next {
            Next::Connect => {}
            Next::Retry { after, trouble } => {
                log::info!("shard {shard_no}: {trouble}; trying again");
                if inbox.cancelled() {
                    state.cancel();
                } else {
                    pause(after, inbox).await;
                }
            }
            Next::GiveUp(trouble) => {
                give_up(state, format!("gave up: {trouble}"), alive);
                break;
            }
        }
        let _ = events.send(Event::Progress(state.report().clone()));
    }
}

/// Sends and answers on one connection, keeping open at most what `budget`
/// allows, until it ends; says how, for the session, when nothing was
/// settled on it.
async fn drive(
    state: &mut H2State,
    shard: &Shard<'_>,
    mut sender: h2::client::SendRequest<bytes::Bytes>,
    mut ping: Option<h2::PingPong>,
    mut budget: StreamBudget,
) -> Fruitless {
    let Shard { link, inbox, bell, events, brakes } = *shard;
    let mut answers = FuturesUnordered::new();
    let mut auth: Option<Authorization> = None;
    let mut scratch = BytesMut::new();
    let mut last_answer = Instant::now();
    // The last sign of life from the gateway: an answer or a PONG.
    let mut heard = Instant::now();
    let mut last_report = Instant::now();
    let mut sent = 0u64;
    // Sending here is over: the gateway is shutting down or the connection broke.
    let mut closing: Option<String> = None;
    let mut goaway = false;
    let end = loop {
        inbox.pull(state);
        link.authorization(&mut auth);
        let limit = budget.limit(sender.current_max_send_streams().min(link.streams));
        let paused = brakes.pause_left(Instant::now());
        while closing.is_none() && paused.is_none() && answers.len() < limit {
            // h2 must have taken the last request's headers before the next.
            match poll_fn(|cx| sender.poll_ready(cx)).now_or_never() {
                Some(Ok(())) => {}
                Some(Err(e)) => {
                    on_goaway(state, brakes, &e, &mut goaway);
                    closing = Some(e.to_string());
                    break;
                }
                None => break,
            }
            let now = Instant::now();
            let Some(request) = state.next_request(now) else { break };
            let ticket = request.ticket;
            let own = request.extras;
            // Cloning `Bytes` shares them: no payload is copied per send.
            let body = own.and_then(|e| e.payload.clone()).unwrap_or_else(|| link.payload.clone());
            let head =
                link.request(request.token, own.map(|e| &e.headers), request.apns_id, auth.as_ref(), &mut scratch);
            match sender.send_request(head, false) {
                Ok((response, mut stream)) => {
                    // A failed send shows on the response.
                    let _ = stream.send_data(body, true);
                    // The token it went with: a 403 ExpiredProviderToken
                    // renews only the token it was sent with.
                    let sent_with = auth.as_ref().map_or(0, |a| a.token().generation());
                    answers.push(async move { (ticket, sent_with, read_answer(response).await) });
                    sent += 1;
                }
                Err(e) => {
                    on_goaway(state, brakes, &e, &mut goaway);
                    state.on_answer(ticket, classify(&e), now);
                    closing = Some(e.to_string());
                }
            }
        }
        let now = Instant::now();
        // A run-wide pause is nothing to send: no silence to time.
        let ready = state.ready(now) && paused.is_none();
        if answers.is_empty() {
            if let Some(why) = closing {
                break if sent == 0 { Fruitless::ClosedAtOnce } else { Fruitless::Answered(why) };
            }
            if !state.has_work() {
                break Fruitless::Closed;
            }
            if !ready {
                // Nothing to send and nothing awaited: no silence to time.
                last_answer = now;
            }
        }
        if last_report.elapsed() >= TICK {
            let reporting = Instant::now();
            flush(state, events, brakes);
            let _ = events.send(Event::Progress(state.report().clone()));
            // A run slow to take events (a full disk, a stopped terminal)
            // blocks the sends above: that time is not the gateway's
            // silence, and its answers wait unread meanwhile.
            let blocked = reporting.elapsed();
            last_answer += blocked;
            heard += blocked;
            last_report = Instant::now();
        }
        // A gateway that answers nothing, or takes no stream while there is
        // something to send (a limit of 0 that never rises), is dead to us.
        if (ready || !answers.is_empty()) && last_answer.elapsed() >= link.response_timeout {
            let what = if answers.is_empty() { "allowed no stream" } else { "answered nothing" };
            log::warn!(
                "shard {}: the gateway {what} for {:?}; treating the connection as dead",
                state.report().shard,
                link.response_timeout
            );
            break Fruitless::Closed;
        }
        if answers.is_empty()
            && heard.elapsed() >= KEEPALIVE
            && let Some(ping) = ping.as_mut()
        {
            match tokio::time::timeout(link.response_timeout, ping.ping(h2::Ping::opaque())).await {
                Ok(Ok(_)) => heard = Instant::now(),
                _ => {
                    log::info!("shard {}: the gateway did not answer a PING; reconnecting", state.report().shard);
                    break Fruitless::Closed;
                }
            }
        }
        let due =
            state.next_due().map(|at| at.saturating_duration_since(Instant::now())).into_iter().chain(paused).min();
        let listening = state.wants_input();
        if listening {
            inbox.bell.listen();
            let before = state.queued();
            inbox.pull(state);
            if state.queued() != before {
                inbox.bell.stop_listening();
                continue;
            }
        }
        tokio::select! {
            Some((ticket, sent_with, result)) = answers.next(), if !answers.is_empty() => {
                let now = Instant::now();
                let answer = match result {
                    Ok(answer) => Some(answer),
                    // The connection broke: what it left open is settled
                    // with it, once the loop ends (`H2State::on_connection_lost`).
                    Err(e) if connection_lost(&e) => {
                        closing.get_or_insert_with(|| e.to_string());
                        None
                    }
                    Err(e) => Some(classify(&e)),
                };
                if let Some(answer) = answer {
                    match answer {
                        // Not an answer: the silence clock runs on.
                        Answer::Refused => {
                            if !budget.on_refused(answers.len()) && closing.is_none() {
                                closing = Some("the gateway refused a stream with none open".into());
                            }
                        }
                        Answer::Status { .. } => {
                            budget.on_answered();
                            last_answer = now;
                            heard = now;
                        }
                        Answer::InDoubt => last_answer = now,
                    }
                    if let Some(why) = settle(state, brakes, link, &mut auth, (ticket, sent_with), answer, now) {
                        closing = Some(why);
                    }
                }
            }
            _ = bell.notified(), if listening => {}
            _ = tokio::time::sleep(due.unwrap_or(TICK).min(TICK)) => {}
        }
        inbox.bell.stop_listening();
    };
    // A GOAWAY that only cut off streams (or came after a 503 Shutdown)
    // shows here.
    if !goaway && let Some(Err(e)) = poll_fn(|cx| sender.poll_ready(cx)).now_or_never() {
        on_goaway(state, brakes, &e, &mut goaway);
    }
    end
}

/// Counts and logs the GOAWAY that `e` reports, once per connection
/// (`seen`), with the reason in its debug data; a reason about the run,
/// not the connection (a wrong topic, refused credentials), stops the run
/// as the same answer to a request would.
fn on_goaway(state: &mut H2State, brakes: &Brakes, e: &h2::Error, seen: &mut bool) {
    if !e.is_go_away() || !e.is_remote() || std::mem::replace(seen, true) {
        return;
    }
    let reason = reason_in(&e.to_string());
    let why = match (&reason, e.reason()) {
        (Some(r), _) => r.to_string(),
        (None, Some(code)) => format!("no reason given ({code:?})"),
        (None, None) => "no reason given".to_owned(),
    };
    log::info!("shard {}: the gateway closed the connection (GOAWAY): {why}", state.report().shard);
    state.on_goaway(reason.as_ref());
    if let Some(cause) = StopCause::from_goaway(reason.as_ref()) {
        brakes.stop_run(cause);
    }
}

/// Waits up to a tick for input, with nothing to send.
async fn wait_for_input(inbox: &Inbox<'_, Item>, state: &mut H2State, bell: &Notify) {
    inbox.bell.listen();
    inbox.pull(state);
    if state.queued() == 0 && state.has_work() && !inbox.cancelled() {
        let _ = tokio::time::timeout(TICK, bell.notified()).await;
    }
    inbox.bell.stop_listening();
}

/// Pauses between connection attempts, waking early on cancel.
async fn pause(pause: Duration, inbox: &Inbox<'_, Item>) {
    let until = Instant::now() + pause;
    while !inbox.cancelled() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        tokio::time::sleep(left.min(TICK)).await;
    }
}

impl Settles for H2State {
    fn take_settled_lines(&mut self) -> Vec<(u64, u64)> {
        H2State::take_settled_lines(self)
    }
    fn take_outcomes(&mut self) -> Vec<Outcome> {
        H2State::take_outcomes(self)
    }
    fn report_mut(&mut self) -> &mut ShardReport {
        H2State::report_mut(self)
    }
    fn cancel(&mut self) {
        H2State::cancel(self);
    }
    fn abandon(&mut self, reason: Reason) {
        H2State::abandon(self, reason);
    }
}
