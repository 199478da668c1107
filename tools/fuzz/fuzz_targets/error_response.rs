//! Fuzz target `error_response`: the checks live in `src/error_response.rs` so that
//! `tests/fuzz_regressions.rs` in the root crate replays inputs through the same code.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| apnsblast_fuzz::error_response::check(data));
