//! The command line.

use std::path::PathBuf;

use clap::Parser;

/// Push pre-encoded command-2 frames (or, with `--api http2`, pre-built
/// HTTP/2 requests) through apnsblast's client setup as fast as possible (the
/// ceiling for `apnsblast send`).
#[derive(Debug, Parser)]
#[command(name = "pump", version)]
pub(crate) struct Args {
    /// The protocol: `binary` (command-2 frames) or `http2` (Apple's provider API).
    #[arg(long, value_enum, default_value_t = Api::Binary)]
    pub(crate) api: Api,
    /// Gateway HOST:PORT (e.g. the mock gateway's `listen` address).
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) gateway: String,
    /// Client certificate: PKCS#12, or PEM holding cert (and key unless --key).
    /// Required but with `--api http2 --auth-key`.
    #[arg(long, value_name = "FILE")]
    pub(crate) cert: Option<PathBuf>,
    /// Private key (PEM), when not in --cert.
    #[arg(long, value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
    /// Name of an environment variable holding the certificate password
    /// (default: none; PKCS#12 files are tried with the empty password).
    #[arg(long, value_name = "VAR")]
    pub(crate) cert_password_env: Option<String>,
    /// Extra trust root (PEM), e.g. the mock gateway's CA.
    #[arg(long, value_name = "FILE")]
    pub(crate) ca: Option<PathBuf>,
    /// Frames (HTTP/2: requests) in total, spread over the connections.
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub(crate) frames: u64,
    /// Connections in parallel, one thread each (the sender's default shard count).
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(crate) connections: u32,
    /// Turn Nagle's algorithm off (TCP_NODELAY) for the whole run.
    #[arg(long)]
    pub(crate) nodelay: bool,
    /// SO_SNDBUF of each connection (default: the kernel's autotuning).
    #[arg(long, value_name = "BYTES")]
    pub(crate) send_buffer: Option<usize>,
    /// JSON payload file (default: a built-in 100-byte payload).
    #[arg(long, value_name = "FILE")]
    pub(crate) payload: Option<PathBuf>,
    /// Make every K-th frame of each connection one the gateway rejects, and
    /// reconnect after each rejection (default: none rejected).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) reject_every: Option<u64>,
    /// Seconds to wait for any one readiness event before giving up.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub(crate) timeout: u64,
    /// HTTP/2: streams in flight per connection at most (the gateway's own
    /// limit applies below it).
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) streams: u64,
    /// HTTP/2: token authentication with this `.p8` key (with --key-id, --team-id).
    #[arg(long, value_name = "FILE", requires_all = ["key_id", "team_id"])]
    pub(crate) auth_key: Option<PathBuf>,
    /// HTTP/2: the key's id.
    #[arg(long, value_name = "ID")]
    pub(crate) key_id: Option<String>,
    /// HTTP/2: the team's id.
    #[arg(long, value_name = "ID")]
    pub(crate) team_id: Option<String>,
    /// HTTP/2: write the provider token (`bearer <JWT>`, the `authorization`
    /// header's value) made from --auth-key to FILE and exit, for another
    /// client measured against the same gateway.
    #[arg(long, value_name = "FILE", requires = "auth_key")]
    pub(crate) token_out: Option<PathBuf>,
    /// HTTP/2: `apns-topic` (the app's bundle id).
    #[arg(long, value_name = "TOPIC")]
    pub(crate) topic: Option<String>,
}

/// The protocol the pump speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Api {
    /// The binary provider protocol.
    Binary,
    /// Apple's HTTP/2 provider API.
    Http2,
}
