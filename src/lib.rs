//! apnsblast
pub mod frame;
pub mod token;
pub mod feedback;
pub mod feedback_client;
pub mod input;
pub mod payload;
pub mod report;
pub mod shard;
pub mod tls;
pub mod conn;
pub mod error;
pub mod run;
