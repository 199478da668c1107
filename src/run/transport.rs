//! The one place a run tells its transports apart: how a shard of each is
//! set up, woken, run and checked. Everything else in a run is shared.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bytes::Bytes;
use crossbeam_channel::Sender;
use mio::Poll;
use tokio::sync::Notify;

use super::{SendConfig, Style};
use crate::backoff::Backoff;
use crate::binary::conn::{self, Link};
use crate::binary::frame::Command;
use crate::binary::shard::{FrameSpec, Item, Limits, ShardState};
use crate::brakes::Brakes;
use crate::error::{Error, GatewayError};
use crate::handoff::{Doorbell, Event, Inbox};
use crate::http2::config::Http2Config;
use crate::http2::link::H2Link;
use crate::http2::request::Headers;
use crate::http2::state::{H2State, RetryPolicy};
use crate::session::Policy;
use crate::tls::server_name;

/// First pause before an HTTP/2 notification is sent again after 429/500/503.
const RETRY_MIN: Duration = Duration::from_millis(100);
/// The longest such pause.
const RETRY_MAX: Duration = Duration::from_secs(5);

/// A run's transport, with what its shards share.
#[derive(Debug)]
pub(super) enum Transport {
    /// The binary provider protocol.
    Binary { link: Link, spec: FrameSpec, limits: Limits },
    /// Apple's HTTP/2 provider API.
    Http2 { link: H2Link },
}

/// What a shard thread waits on, made before the threads start so that it
/// outlives them (see `Blaster::run_unchecked`).
pub(super) enum Waiter {
    /// The binary driver's poller.
    Mio(Poll),
    /// The HTTP/2 driver's runtime is woken through this.
    Notify(Arc<Notify>),
}

impl Transport {
    /// Checks the configuration and builds what the shards share.
    pub(super) fn new(config: &SendConfig) -> Result<Transport, Error> {
        let policy = Policy {
            max_failures: config.max_failures.max(1),
            backoff_min: config.backoff_min,
            backoff_max: config.backoff_max,
            connect_ahead: config.connect_ahead,
        };
        match &config.http2 {
            None => binary(config, policy),
            Some(h2) => http2(config, h2, policy),
        }
    }

    /// Whether a line's own HTTP/2 headers can be sent: only HTTP/2 has them.
    pub(super) fn line_headers(&self) -> bool {
        matches!(self, Transport::Http2 { .. })
    }

    /// A shard's waiter and the doorbell that wakes it.
    pub(super) fn waiter(&self) -> (Waiter, Doorbell) {
        match self {
            Transport::Binary { .. } => {
                let (poll, bell) = conn::poller().expect("the OS refused an epoll instance or an eventfd");
                (Waiter::Mio(poll), bell)
            }
            Transport::Http2 { .. } => {
                let notify = Arc::new(Notify::new());
                (Waiter::Notify(Arc::clone(&notify)), Doorbell::new(crate::http2::conn::Doorbell(notify)))
            }
        }
    }

    /// Runs shard `i` to its end on this thread.
    pub(super) fn run_shard(
        &self,
        i: usize,
        waiter: Waiter,
        inbox: Inbox<'_, Item>,
        events: Sender<Event>,
        alive: &AtomicBool,
        brakes: &Brakes,
    ) {
        match (self, waiter) {
            (Transport::Binary { link, spec, limits }, Waiter::Mio(poll)) => {
                let state = ShardState::new(i, spec.clone(), *limits);
                conn::run_shard(state, link, inbox, poll, events, alive);
            }
            (Transport::Http2 { link }, Waiter::Notify(notify)) => {
                let retry = RetryPolicy {
                    max_tries: link.max_tries,
                    backoff_min: link.retry_min,
                    backoff_max: link.retry_max,
                    seed: Backoff::seed_for(i),
                };
                crate::http2::conn::run_shard(H2State::new(i, retry), link, inbox, notify, events, alive, brakes);
            }
            _ => unreachable!("a waiter is made by its own transport"),
        }
    }

    /// Checks the gateway before any token is read.
    pub(super) fn probe(&self, cancel: &AtomicBool) -> Result<(), GatewayError> {
        match self {
            Transport::Binary { link, spec, .. } => conn::probe(link, spec.command, cancel),
            Transport::Http2 { link } => crate::http2::probe::probe(link, cancel),
        }
    }
}

fn binary(config: &SendConfig, policy: Policy) -> Result<Transport, Error> {
    if config.command == Command::Simple {
        return Err(Error::Config("command 0 gives no error responses and cannot be confirmed; use 1 or 2".into()));
    }
    if config.payload.len() > usize::from(u16::MAX) {
        return Err(Error::Config("the payload is longer than the protocol allows".into()));
    }
    if config.window_bytes == 0 || config.batch_bytes == 0 {
        return Err(Error::Config("window and batch sizes must be positive".into()));
    }
    let link = Link {
        gateway: config.gateway.clone(),
        domain: server_name(&config.gateway).to_owned(),
        connector: config.tls.connector()?,
        nodelay: config.nodelay,
        send_buffer: config.send_buffer,
        strict: config.style == Style::Strict,
        connect_timeout: config.connect_timeout,
        response_timeout: config.response_timeout,
        policy,
    };
    let spec = FrameSpec {
        command: config.command,
        payload: Arc::clone(&config.payload),
        expiry: config.expiry,
        priority: config.priority,
    };
    let limits = Limits {
        batch_bytes: if config.style == Style::Strict { 1 } else { config.batch_bytes },
        window_bytes: config.window_bytes,
        confirm_every: config.confirm_every,
        careful_frames: config.careful_frames,
    };
    Ok(Transport::Binary { link, spec, limits })
}

fn http2(config: &SendConfig, h2: &Http2Config, policy: Policy) -> Result<Transport, Error> {
    if config.payload.len() > h2.push_type.payload_limit() {
        return Err(Error::Config(format!(
            "the payload is {} bytes; Apple takes at most {} for a {} notification",
            config.payload.len(),
            h2.push_type.payload_limit(),
            h2.push_type.as_str()
        )));
    }
    if h2.token.is_none() && h2.push_type.token_auth_only() {
        return Err(Error::Config(format!(
            "Apple takes {} notifications with token authentication only, not with a certificate",
            h2.push_type
        )));
    }
    if h2.streams == 0 || h2.max_tries == 0 {
        return Err(Error::Config("streams and tries must be positive".into()));
    }
    let headers =
        Headers::new(h2.topic.clone(), h2.push_type, h2.priority, u64::from(config.expiry), h2.collapse_id.clone())
            .map_err(|e| Error::Config(format!("{}: {e}", e.flag())))?;
    let authority = config
        .gateway
        .parse()
        .map_err(|e| Error::Config(format!("the gateway {} is not HOST:PORT: {e}", config.gateway)))?;
    let link = H2Link {
        gateway: config.gateway.clone(),
        domain: server_name(&config.gateway).to_owned(),
        connector: tokio_native_tls::TlsConnector::from(config.tls.h2_connector()?),
        authority,
        headers: Arc::new(headers),
        token: h2.token.clone(),
        payload: Bytes::copy_from_slice(&config.payload),
        streams: h2.streams,
        connect_timeout: config.connect_timeout,
        response_timeout: config.response_timeout,
        policy,
        max_tries: h2.max_tries,
        retry_min: RETRY_MIN,
        retry_max: RETRY_MAX,
    };
    Ok(Transport::Http2 { link })
}
