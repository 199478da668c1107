//! The APNs binary provider protocol: everything that is specific to it.
//!
//! | module | what it holds |
//! |---|---|
//! | [`frame`] | the wire format: command 0/1/2 encoders, the error response decoder |
//! | [`shard`] | the sans-I/O state of one connection: windows, rewinds, recovery |
//! | [`conn`] | the I/O driver of one shard: mio + native-tls; connect, spare, gateway check |
//! | [`feedback`], [`feedback_client`] | the feedback service: decoding and fetching |

pub mod conn;
pub mod feedback;
pub mod feedback_client;
pub mod frame;
pub mod shard;
