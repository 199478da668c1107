//! The mock gateway's own frame parser on arbitrary bytes, run the way its
//! connection loop runs it; `fuzz_parse` asserts the decoder's contract
//! (an `Incomplete` asks for more than it has, frames fit in the buffer).

/// Runs one input through the checks; panics on a finding.
pub fn check(data: &[u8]) {
    let frames = mock_gateway::parse::fuzz_parse(data);
    // Each frame takes at least a command byte and a 32-byte token.
    assert!(frames * 33 <= data.len());
}
