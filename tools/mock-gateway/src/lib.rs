//! A mock of Apple's legacy APNs binary gateway and feedback service, over mutual TLS,
//! with fault injection: the independent oracle for apnsblast's tests and demos.
//!
//! It decodes frames with its **own** decoder (never the sender's codec), so a codec
//! bug cannot hide by agreeing with itself. It behaves like Apple's gateway: success
//! writes nothing; the first bad notification gets one 6-byte error response
//! `8|status|u32 id`, and everything after it on that connection is discarded.
//!
//! ```text
//!  client ──TLS (client cert required)──▶ accept thread ──spawn──▶ connection thread
//!                                                                   │ read 64 KiB
//!                                                                   │ parse::parse ×N (no alloc)
//!                                                                   │ batch → Tracker (one lock/read)
//!                                                                   ▼
//!                                  error/fault: [delay] → 8|status|id → close_notify+FIN → drain
//! ```
//!
//! Modules, each importing only modules listed before it (so there is no cycle):
//!
//! 1. [`config`] (what to do), [`pki`] (certificates), `parse` (decoder);
//! 2. [`stats`] (counters and the per-token ledger; uses `config`);
//! 3. `shared` (the state all threads of one gateway share; uses `config`, `stats`);
//! 4. `tls` (acceptor, handshake and connection endings; uses `pki`, `shared`);
//! 5. `conn` (per-connection loop) and `feedback` (feedback service), both on `tls`;
//! 6. `gateway` ([`Gateway`], [`Handle`]: listeners and threads; uses all of the above);
//!    `http2` ([`Http2Gateway`], [`Http2Handle`]: Apple's HTTP/2 provider API on a
//!    tokio runtime; uses `config`, `pki`, `stats`, `shared`'s lock).
//!
//! The HTTP/2 side answers `POST /3/device/<token>` as Apple documents: ALPN `h2`,
//! a client certificate (optional, its `UID` is the topic) or an ES256 provider
//! token checked against the certs dir's `AuthKey_<KEYID>.p8`
//! ([`Pki::auth_key_path`], [`Pki::key_id`], [`Pki::team_id`]), and Apple's
//! statuses with `{"reason":…}`; faults in [`Http2Config`].
//!
//! Speed: the frame loop is a few percent of a connection thread's CPU; TLS
//! decryption dominates, with per-token tracking on or off, since the ledger is
//! settled lazily (see [`stats`]). `examples/throughput.rs` measures it by hand;
//! there are no timed tests.
//!
//! ```no_run
//! # fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use mock_gateway::{Config, Gateway, Http2Config, Http2Gateway, Pki};
//! let pki = Pki::ensure(std::path::Path::new("mock-certs"))?;
//! let config = Config { bad_rate: 0.01, ..Config::default() };
//! let gw = Gateway::start(config, &pki, "127.0.0.1:0".parse()?, None)?;
//! println!("gateway at {}", gw.addr());
//! // ... run a sender against gw.addr() with pki.client_p12_path() ...
//! let stats = gw.stop();
//! println!("{} accepted", stats.accepted);
//! // The HTTP/2 provider API, with 1 % of tokens gone (410):
//! let config = Config { http2: Http2Config { gone_rate: 0.01, ..Http2Config::default() }, ..Config::default() };
//! let h2 = Http2Gateway::start(&config, &pki, "127.0.0.1:0".parse()?)?;
//! println!("HTTP/2 at {}, key {} of team {}", h2.addr(), pki.key_id(), pki.team_id());
//! println!("{:?}", h2.stop().rejected_by_reason);
//! # Ok(()) }
//! ```
#![deny(missing_docs, missing_debug_implementations)]

pub mod config;
mod conn;
mod feedback;
mod gateway;
mod http2;
#[doc(hidden)]
pub mod parse;
pub mod pki;
mod shared;
pub mod stats;
mod tls;

pub use config::{Chaos, Config, H2Chaos, Http2Config};
pub use gateway::{Gateway, Handle};
pub use http2::{AcceptedRequest, Http2Gateway, Http2Handle};
pub use pki::{ClientIdentity, Pki};
pub use stats::Stats;
