//! `FeedbackDecoder` fed the input in arbitrary pieces (the first byte seeds
//! the split): the tuples it yields re-encode to exactly the consumed prefix,
//! the split does not change the result, and errors are sticky and precise.

use apnsblast::feedback::{FeedbackDecoder, FeedbackError, FeedbackTuple};

/// Decodes `data` in pieces chosen by `seed` (0 = one piece). Returns the
/// tuples, the first error, and the decoder.
fn decode(data: &[u8], seed: u8) -> (Vec<FeedbackTuple>, Option<FeedbackError>, FeedbackDecoder) {
    let mut dec = FeedbackDecoder::new();
    let (mut tuples, mut error) = (Vec::new(), None);
    let mut rng = u32::from(seed).wrapping_mul(0x9E37_79B9) | 1;
    let mut rest = data;
    while !rest.is_empty() || seed == 0 {
        let n = if seed == 0 {
            rest.len()
        } else {
            // xorshift32; pieces of 0..=80 bytes (empty pushes included).
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            (rng % 81) as usize
        }
        .min(rest.len());
        dec.push(&rest[..n]);
        rest = &rest[n..];
        loop {
            match dec.next_tuple() {
                Ok(Some(t)) => {
                    assert!(error.is_none(), "a tuple after an error");
                    tuples.push(t);
                }
                Ok(None) => {
                    assert!(error.is_none(), "an error is sticky");
                    assert!(dec.pending() < FeedbackTuple::LEN);
                    break;
                }
                Err(e) => {
                    if let Some(first) = error {
                        assert_eq!(first, e, "an error is sticky");
                    }
                    error = Some(e);
                    assert_eq!(dec.next_tuple(), Err(e), "an error is sticky");
                    break;
                }
            }
        }
        if seed == 0 {
            break;
        }
    }
    (tuples, error, dec)
}

/// Runs one input through the checks; panics on a finding.
pub fn check(data: &[u8]) {
    let Some((&seed, _)) = data.split_first() else {
        return;
    };
    let (tuples, error, dec) = decode(data, seed);
    let consumed = tuples.len() * FeedbackTuple::LEN;
    assert_eq!(dec.offset(), consumed as u64);
    assert_eq!(dec.pending(), data.len() - consumed);
    let mut encoded = Vec::new();
    for t in &tuples {
        t.encode(&mut encoded);
    }
    assert_eq!(encoded, data[..consumed], "tuples re-encode to the consumed prefix");
    match error {
        Some(FeedbackError::BadTokenLength(n)) => {
            let at = consumed + 4;
            assert_eq!(u16::from_be_bytes([data[at], data[at + 1]]), n);
            assert_ne!(n, 32);
        }
        Some(e) => panic!("unexpected error {e:?}"),
        None => match dec.finish() {
            Ok(()) => assert_eq!(consumed, data.len()),
            Err(FeedbackError::Truncated { bytes }) => {
                assert_eq!(bytes, data.len() - consumed);
                assert!(bytes < FeedbackTuple::LEN);
            }
            Err(e) => panic!("unexpected finish error {e:?}"),
        },
    }
    let _ = error.map(|e| e.to_string());
    // The split does not matter: one piece gives the same answer.
    let (whole, whole_error, _) = decode(data, 0);
    assert_eq!(whole, tuples);
    assert_eq!(whole_error, error);
    // And the blocking driver agrees.
    match apnsblast::feedback::read_all(data) {
        Ok(all) => assert!(error.is_none() && all == tuples && consumed == data.len()),
        Err(_) => assert!(error.is_some() || consumed != data.len()),
    }
}
