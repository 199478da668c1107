//! The gateway check before any token is read: one request to a device
//! token that cannot exist (all zeros). Apple answers it 400
//! BadDeviceToken, which proves that the connection, the TLS setup and the
//! credentials work; a 403 names what is wrong with the credentials.

use std::sync::atomic::AtomicBool;

use tokio::time::timeout;

use super::answer::ApnsReason;
use super::conn::{classify, read_answer};
use super::connect::connect;
use super::link::H2Link;
use super::state::Answer;
use super::stop::{Shared, StopCause, is_run_level};
use crate::error::GatewayError;
use crate::session::check_until_settled;
use crate::token::DeviceToken;

/// Checks that the gateway speaks HTTP/2 and takes the credentials,
/// retrying as a shard would.
///
/// # Errors
/// Why the gateway cannot be used.
pub(crate) fn probe(link: &H2Link, cancel: &AtomicBool) -> Result<(), GatewayError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| GatewayError::Io { what: "starting an event loop", source })?;
    check_until_settled(link.policy, cancel, || runtime.block_on(check(link)))
}

/// One connection and one request.
async fn check(link: &H2Link) -> Result<(), GatewayError> {
    let (sender, connection) = connect(link).await?;
    let task = tokio::spawn(connection);
    let result = ask(link, sender).await;
    task.abort();
    result
}

async fn ask(link: &H2Link, sender: h2::client::SendRequest<bytes::Bytes>) -> Result<(), GatewayError> {
    let refused = |e: h2::Error| GatewayError::Refused { detail: Some(e.to_string()) };
    let mut sender = sender.ready().await.map_err(refused)?;
    let mut auth = None;
    link.authorization(&mut auth);
    let nobody = DeviceToken::from_bytes([0; 32]);
    let head = link.request(&nobody, None, 0, auth.as_ref(), &mut bytes::BytesMut::new());
    let (response, mut stream) = sender.send_request(head, false).map_err(refused)?;
    let _ = stream.send_data(link.payload.clone(), true);
    let answer = timeout(link.response_timeout, read_answer(response))
        .await
        .map_err(|_| GatewayError::NoAnswer(link.response_timeout))?;
    match answer.unwrap_or_else(|e| classify(&e)) {
        // A gateway that takes even this token works too.
        Answer::Status { status: 200, .. } => Ok(()),
        Answer::Status { status: 400, reason: Some(ApnsReason::BadDeviceToken), .. } => Ok(()),
        // Past the credentials and the topic's form: whether the topic is
        // the tokens' app only the list's answers tell (the guards).
        Answer::Status { status: 400, reason: Some(ApnsReason::DeviceTokenNotForTopic), .. } => Ok(()),
        Answer::Status { status: 403, reason, .. } => {
            Err(GatewayError::Forbidden { reason: reason.map_or_else(|| "(no reason)".into(), |r| r.to_string()) })
        }
        // An answer about the run says what to fix, as it would mid-run.
        Answer::Status { status, reason: Some(reason), .. } if is_run_level(status, &reason, Shared::ALL) => {
            let fix = StopCause::Answer { status, reason: reason.clone() }.fix();
            Err(GatewayError::Unexpected { status, reason: format!("{reason}: {fix}") })
        }
        Answer::Status { status, reason, .. } => Err(GatewayError::Unexpected {
            status,
            reason: reason.map_or_else(|| "(no reason)".into(), |r| r.to_string()),
        }),
        Answer::Refused | Answer::InDoubt => Err(GatewayError::Refused { detail: None }),
    }
}
