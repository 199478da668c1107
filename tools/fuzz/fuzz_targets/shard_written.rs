//! Fuzz target `shard_written`: the `shard` checks plus "only what was
//! written can be accepted or rejected" (see `src/shard.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| apnsblast_fuzz::shard::check_written(data));
