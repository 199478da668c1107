//! The gateway check before any token is read: connect, write one sentinel,
//! and wait for its rejection. Under TLS 1.3 a refused client certificate
//! only shows after the handshake, so the handshake alone proves nothing.

use std::io::{Read, Write};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use mio::{Events, Poll};

use super::connect::{Conn, connect, interrupted, would_block};
use super::{Link, SOCKET};
use crate::binary::frame::{Command, ErrorResponse};
use crate::error::GatewayError;
use crate::session::check_until_settled;

/// Checks that the gateway is reachable and accepts the certificate,
/// retrying as a shard would.
///
/// # Errors
/// Why the gateway cannot be used.
pub(crate) fn probe(link: &Link, command: Command, cancel: &AtomicBool) -> Result<(), GatewayError> {
    let mut poll = Poll::new().map_err(|source| GatewayError::Io { what: "creating a poller", source })?;
    check_until_settled(link.policy, cancel, || {
        let (mut conn, _) = connect(link, &mut poll, SOCKET, link.send_buffer)?;
        let answered = answer(&mut conn, link, &mut poll, command);
        let _ = poll.registry().deregister(conn.get_mut());
        answered
    })
}

/// Writes one sentinel and waits for the gateway's error response to it.
fn answer(conn: &mut Conn, link: &Link, poll: &mut Poll, command: Command) -> Result<(), GatewayError> {
    let mut out = Vec::new();
    command.encode_sentinel(0, &mut out);
    // One small write, then a wait for the answer: never let Nagle hold it.
    let _ = conn.get_ref().set_nodelay(true);
    let deadline = Instant::now() + link.response_timeout;
    let mut events = Events::with_capacity(4);
    let mut pos = 0;
    let mut answer = Vec::new();
    let mut buf = [0u8; 64];
    let refused = |e: Option<std::io::Error>| GatewayError::Refused { detail: e.map(|e| e.to_string()) };
    loop {
        while pos < out.len() {
            match conn.write(&out[pos..]) {
                Ok(n) => pos += n,
                Err(e) if would_block(&e) => break,
                Err(e) if interrupted(&e) => {}
                Err(e) => return Err(refused(Some(e))),
            }
        }
        loop {
            match conn.read(&mut buf) {
                Ok(0) => return Err(refused(None)),
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    match ErrorResponse::decode(&answer) {
                        Ok(Some(_)) => return Ok(()),
                        Ok(None) => {}
                        Err(e) => return Err(GatewayError::NotApns(e.to_string())),
                    }
                }
                Err(e) if would_block(&e) => break,
                Err(e) if interrupted(&e) => {}
                Err(e) => return Err(refused(Some(e))),
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(GatewayError::NoAnswer(link.response_timeout));
        }
        match poll.poll(&mut events, Some(left)) {
            Ok(()) => {}
            Err(e) if interrupted(&e) => {}
            Err(source) => return Err(GatewayError::Io { what: "poll", source }),
        }
    }
}
