//! The checks behind each fuzz target, one module per target, each with a
//! `check(data: &[u8])` that panics on a finding.
//!
//! Plain Rust, no libFuzzer: the fuzz targets in `fuzz_targets/` call these, and
//! the root crate's `tests/fuzz_regressions.rs` includes this file with
//! `#[path]` to replay saved inputs through exactly the same code.

pub mod error_response;
pub mod feedback;
pub mod mock_frames;
pub mod payload;
pub mod shard;
pub mod token_lines;
