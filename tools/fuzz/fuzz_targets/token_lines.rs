//! Fuzz target `token_lines`: the checks live in `src/token_lines.rs` so that
//! `tests/fuzz_regressions.rs` in the root crate replays inputs through the same code.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| apnsblast_fuzz::token_lines::check(data));
