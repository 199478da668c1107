//! Reading one request's answer, and what a stream that got none means.

use h2::client::ResponseFuture;

use super::super::answer::parse_body;
use super::super::state::Answer;

/// The most of an answer's body kept: Apple's is a few dozen bytes of JSON,
/// and a gateway that sends more must not make memory grow with it.
const BODY_CAP: usize = 4096;

/// Waits for the answer to one request; the stream's error if it failed,
/// also while its body was read (a status without its reason settles
/// nothing: the connection may have dropped under it).
pub(in crate::http2) async fn read_answer(response: ResponseFuture) -> Result<Answer, h2::Error> {
    let response = response.await?;
    let status = response.status().as_u16();
    if status == 200 {
        return Ok(Answer::Status { status, reason: None, timestamp_ms: None });
    }
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        let room = BODY_CAP.saturating_sub(text.len());
        text.extend_from_slice(&chunk[..room.min(chunk.len())]);
    }
    let (reason, timestamp_ms) = parse_body(&text);
    Ok(Answer::Status { status, reason, timestamp_ms })
}

/// Whether a failed stream says its connection is gone (broken by I/O, or
/// torn down by h2 itself), rather than something about that one stream.
pub(super) fn connection_lost(e: &h2::Error) -> bool {
    e.is_io() || (e.is_go_away() && !e.is_remote())
}

/// What a failed stream means for its notification (RFC 9113 §6.8 and
/// §8.7): refused, or above a GOAWAY's last stream, it was never processed;
/// otherwise the gateway may have processed it.
pub(in crate::http2) fn classify(e: &h2::Error) -> Answer {
    if e.reason() == Some(h2::Reason::REFUSED_STREAM) || (e.is_go_away() && e.is_remote()) {
        Answer::Refused
    } else {
        Answer::InDoubt
    }
}
