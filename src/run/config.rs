//! What a run is told: the gateway, TLS, and the settings that shape the stream.

use std::sync::Arc;
use std::time::Duration;

use crate::binary::conn::ConnectAhead;
use crate::binary::frame::{Command, Priority};
use crate::http2::config::Http2Config;
use crate::journal::LineSet;
use crate::tls::TlsConfig;

/// How notifications are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Style {
    /// Write until the socket would block; check for an answer once per batch.
    #[default]
    Pipelined,
    /// One notification per write, each followed by a check for an answer
    /// (what many senders do; slow, kept for comparison).
    Strict,
}

/// Everything a run needs to know.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// `host:port` of the gateway.
    pub gateway: String,
    /// Certificate, trust roots, verification.
    pub tls: TlsConfig,
    /// Connections in parallel, one thread each.
    pub shards: usize,
    /// Nagle's algorithm off (TCP_NODELAY).
    pub nodelay: bool,
    /// Pipelined or strict.
    pub style: Style,
    /// Frame format (1 or 2).
    pub command: Command,
    /// The payload of every token without one of its own.
    pub payload: Arc<[u8]>,
    /// Expiry, UNIX seconds; 0 = deliver now or never.
    pub expiry: u32,
    /// Priority (command 2).
    pub priority: Priority,
    /// Bytes written on a connection before the shard confirms them; bounds
    /// what each shard retains for resending.
    pub window_bytes: usize,
    /// Notifications written before the shard confirms them (0 = only the window bounds it).
    pub confirm_every: u64,
    /// When two rejections come within this many notifications of each
    /// other, write smaller batches over a smaller send buffer for as many
    /// again (0 = never), so that rejections close together throw less away
    /// (see [`crate::binary::shard::ShardState::careful`]).
    pub careful_frames: u64,
    /// Bytes per write.
    pub batch_bytes: usize,
    /// SO_SNDBUF; `None` keeps the kernel's autotuning. Everything in the
    /// send buffer when an error response is written is resent, so a small
    /// buffer keeps errors cheap; on a long, fast link the buffer must hold a
    /// round trip's worth of data or it caps the rate (see BENCHMARKS.md).
    pub send_buffer: Option<usize>,
    /// TCP connect plus TLS handshake.
    pub connect_timeout: Duration,
    /// Set up each shard's next connection while the current one works, so
    /// that on a long link writing goes on as soon as a connection ends.
    pub connect_ahead: ConnectAhead,
    /// How long a silent gateway is waited for.
    pub response_timeout: Duration,
    /// Failed connections in a row before a shard gives up.
    pub max_failures: u32,
    /// First pause after a failed connection.
    pub backoff_min: Duration,
    /// Longest pause between attempts.
    pub backoff_max: Duration,
    /// Check the gateway with one test notification before reading any input.
    pub preflight: bool,
    /// Lines an earlier run settled (from its journal): not sent again.
    pub skip_lines: Option<Arc<LineSet>>,
    /// Send over Apple's HTTP/2 provider API with these settings instead of
    /// the binary protocol (`None`). The binary-only settings (command,
    /// style, windows, batches, send buffer, connecting ahead) do not apply.
    pub http2: Option<Http2Config>,
}

impl SendConfig {
    /// Defaults for `gateway`, with the shared `payload` and the given TLS setup.
    pub fn new(gateway: impl Into<String>, tls: TlsConfig, payload: impl Into<Arc<[u8]>>) -> SendConfig {
        SendConfig {
            gateway: gateway.into(),
            tls,
            shards: 4,
            nodelay: false,
            style: Style::Pipelined,
            command: Command::Items,
            payload: payload.into(),
            expiry: 0,
            priority: Priority::Immediate,
            window_bytes: 16 << 20,
            confirm_every: 0,
            careful_frames: 4096,
            batch_bytes: 64 << 10,
            send_buffer: Some(64 << 10),
            connect_timeout: Duration::from_secs(10),
            connect_ahead: ConnectAhead::Auto,
            response_timeout: Duration::from_secs(10),
            max_failures: 6,
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            preflight: true,
            skip_lines: None,
            http2: None,
        }
    }
}
