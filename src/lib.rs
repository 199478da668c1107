//! apnsblast: blast Apple push notifications to million-token lists over
//! Apple's HTTP/2 provider API or the APNs binary provider protocol, as fast
//! as the wire allows, and account for every single token.
//!
//! Over HTTP/2 ([`http2`]) every notification gets an answer, and apnsblast
//! reads each one: accepted, rejected with Apple's reason, sent again after a
//! back-off, or (when a connection drops with it open) sent again and
//! declared possibly duplicated.
//!
//! The binary gateway ([`binary`]) says nothing on success. On the first bad notification it
//! writes a 6-byte error response naming it, closes the connection, and
//! throws away everything written after it. A sender that does not read that
//! response silently loses the rest of its batch; one that reads after every
//! write crawls. apnsblast writes in large batches until the socket would
//! block, watches for the error response the whole time, keeps what it wrote
//! until a *sentinel* (a frame every gateway rejects) proves it was accepted,
//! and resends what the gateway discarded, so every token ends in exactly one
//! state: accepted, rejected (with its status), unconfirmed, unsent, or skipped.
//!
//! # Design
//!
//! ```text
//!  token list ─▶ input::TokenReader ─▶ run (splitter) ─┬─▶ shard thread 0 ─TLS─▶ gateway
//!                 (parse, dedup,        handoff: bounded ├─▶ shard thread 1 ...
//!                  partition)           channels + doorbell └─▶ ...
//!                                   handoff::Event (failures, progress) ─▶ Observer ─▶ report::Report
//!
//!  a binary shard thread:  binary::conn (I/O: mio + native-tls)
//!                            ├─ binary::shard::ShardState  what to write, what an answer means
//!                            └─ session::Session           when to connect, pause, give up
//!  an HTTP/2 shard thread:  http2::conn (I/O: h2 on a current-thread tokio runtime)
//!                            ├─ http2::state::H2State      what to send, what an answer settles
//!                            └─ session::Session           when to connect, pause, give up
//! ```
//!
//! The shared core sits at the top; what is specific to one transport sits
//! in a folder of its own.
//!
//! | module | what it holds |
//! |---|---|
//! | [`token`] | device tokens: parsing hex with the usual decorations |
//! | [`payload`] | building and validating JSON payloads |
//! | [`input`] | the streaming token-list reader (hex lines, NDJSON, dedup, partitions) |
//! | [`run`] | a whole run: config, splitter, shard threads, collector ([`run::Blaster`]) |
//! | `handoff` | the splitter's hand-off to a shard (channel, doorbell, cancel) and the shard's events back |
//! | [`session`] | the sans-I/O connection policy: reconnect, back-off, give up, connect ahead, idle confirmation |
//! | `backoff` | exponential back-off with jitter |
//! | [`report`] | what happened to every token: states, typed reasons, counts |
//! | [`journal`] | settled lines, for resuming a killed run |
//! | [`tls`] | loading the provider certificate, building the TLS client |
//! | [`error`] | why a run could not start, and why a gateway could not be used |
//! | [`binary`] | the binary provider protocol: [`frame`], [`shard`], [`conn`], [`feedback`], [`feedback_client`] |
//! | [`http2`] | Apple's HTTP/2 provider API: the `.p8` key and shared token, request headers, Apple's reasons, the sans-I/O [`http2::state`], the h2 driver, the gateway check |
//!
//! # Example: HTTP/2 with Apple's `.p8` key
//!
//! ```no_run
//! use std::io::BufReader;
//! use std::sync::Arc;
//! use apnsblast::http2::config::Http2Config;
//! use apnsblast::http2::jwt::{AuthKey, ProviderToken};
//! use apnsblast::http2::request::PushType;
//! use apnsblast::input::{ReaderOptions, TokenReader};
//! use apnsblast::run::{Blaster, SendConfig};
//! use apnsblast::tls::TlsConfig;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = AuthKey::load("AuthKey_ABC123DEFG.p8".as_ref())?;
//! let token = ProviderToken::new(key, "ABC123DEFG", "TEAM123456")?;
//! let payload = apnsblast::payload::alert_payload("Hello", Some(1), None);
//! let mut config = SendConfig::new("api.push.apple.com:443", TlsConfig::default(), payload);
//! config.http2 = Some(Http2Config {
//!     token: Some(Arc::new(token)),
//!     topic: Some("com.example.app".into()),
//!     ..Http2Config::default()
//! });
//! // HTTP/2's payload limit for the push type; NDJSON lines may set their own headers.
//! let options = ReaderOptions::http2(PushType::Alert);
//! let tokens = TokenReader::new(BufReader::new(std::fs::File::open("tokens.txt")?), options);
//! let report = Blaster::new(config)?.run(tokens, &mut ())?;
//! assert_eq!(report.unaccounted(), 0);
//! println!("{} accepted, rejected by reason: {:?}", report.accepted, report.rejected);
//! # Ok(()) }
//! ```
//!
//! # Example: the binary protocol with a provider certificate
//!
//! ```no_run
//! use std::io::BufReader;
//! use apnsblast::input::{ReaderOptions, TokenReader};
//! use apnsblast::run::{Blaster, SendConfig};
//! use apnsblast::tls::{ClientIdentity, TlsConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let identity = ClientIdentity::load("push.p12".as_ref(), None, Some(""))?;
//! let tls = TlsConfig { identity: Some(identity), ..TlsConfig::default() };
//! let payload = apnsblast::payload::alert_payload("Hello", Some(1), None);
//! let config = SendConfig::new("gateway.push.apple.com:2195", tls, payload);
//! let tokens = TokenReader::new(BufReader::new(std::fs::File::open("tokens.txt")?), ReaderOptions::default());
//! let report = Blaster::new(config)?.run(tokens, &mut ())?;
//! assert_eq!(report.unaccounted(), 0);
//! println!("{} accepted, {} rejected", report.accepted, report.rejected_total());
//! # Ok(()) }
//! ```
#![deny(missing_docs, missing_debug_implementations)]

mod backoff;
pub mod binary;
mod brakes;
pub mod error;
mod handoff;
pub mod http2;
pub mod input;
pub mod journal;
pub mod payload;
pub mod report;
pub mod run;
pub mod session;
pub mod tls;
pub mod token;

// The binary protocol's modules, at the paths they had before HTTP/2 came.
pub use binary::{conn, feedback, feedback_client, frame, shard};

pub use error::{Error, GatewayError};
pub use report::{Failure, Report, State};
pub use run::{Blaster, Observer, Progress, SendConfig, Style};
pub use session::ConnectAhead;
pub use token::DeviceToken;
