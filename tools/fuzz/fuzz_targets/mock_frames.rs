//! Fuzz target `mock_frames`: the checks live in `src/mock_frames.rs` so that
//! `tests/fuzz_regressions.rs` in the root crate replays inputs through the same code.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| apnsblast_fuzz::mock_frames::check(data));
