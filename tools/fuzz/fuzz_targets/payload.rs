//! Fuzz target `payload`: the checks live in `src/payload.rs` so that
//! `tests/fuzz_regressions.rs` in the root crate replays inputs through the same code.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| apnsblast_fuzz::payload::check(data));
