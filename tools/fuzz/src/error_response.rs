//! `ErrorResponse::decode` on arbitrary bytes: never panics, decides exactly
//! on the first byte and length, and a decoded response re-encodes to the
//! first 6 input bytes.

use apnsblast::frame::{DecodeError, ERROR_RESPONSE_LEN, ErrorResponse, Status};

/// Runs one input through the checks; panics on a finding.
pub fn check(data: &[u8]) {
    match ErrorResponse::decode(data) {
        Ok(Some(r)) => {
            assert!(data.len() >= ERROR_RESPONSE_LEN);
            assert_eq!(r.to_bytes(), data[..ERROR_RESPONSE_LEN]);
            assert_eq!(Status::from_code(r.status.code()), r.status);
            assert_eq!(ErrorResponse::decode(&r.to_bytes()), Ok(Some(r)));
            let _ = r.to_string();
        }
        Ok(None) => assert!(data.is_empty() || (data[0] == 8 && data.len() < ERROR_RESPONSE_LEN)),
        Err(e) => {
            let DecodeError::BadCommand(c) = e else { unreachable!("only BadCommand exists") };
            assert_eq!(Some(&c), data.first());
            assert_ne!(c, 8);
            let _ = e.to_string();
        }
    }
    // Every prefix (bytes arriving in pieces) is "not yet" or the same verdict.
    for k in 0..data.len().min(ERROR_RESPONSE_LEN) {
        match (ErrorResponse::decode(&data[..k]), ErrorResponse::decode(data)) {
            (Ok(None), _) => {}
            (Err(a), Err(b)) => assert_eq!(a, b),
            (a, b) => panic!("prefix {k}: {a:?} but whole input: {b:?}"),
        }
    }
}
