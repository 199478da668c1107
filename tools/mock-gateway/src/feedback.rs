//! The feedback service: per connection, write every pending `(timestamp, token)`
//! tuple as `u32 timestamp | u16 32 | token`, then close in order. Like Apple's, the
//! list is handed out once: the first connection that completes a handshake takes it.

use std::io::Write;
use std::net::TcpStream;

use crate::shared::{Shared, lock};
use crate::tls;

/// Wire encoding of feedback tuples (38 bytes each).
pub(crate) fn encode(tuples: &[(u32, [u8; 32])]) -> Vec<u8> {
    let mut out = Vec::with_capacity(tuples.len() * 38);
    for (time, token) in tuples {
        out.extend_from_slice(&time.to_be_bytes());
        out.extend_from_slice(&32u16.to_be_bytes());
        out.extend_from_slice(token);
    }
    out
}

/// Serve one feedback connection.
pub(crate) fn serve(shared: &Shared, tcp: TcpStream) {
    let Some(mut tls) = tls::handshake(shared, tcp) else {
        return;
    };
    let tuples = std::mem::take(&mut *lock(&shared.feedback));
    shared.update(|t| {
        t.stats.feedback_connections += 1;
        t.stats.feedback_tuples += tuples.len() as u64;
    });
    if let Err(e) = tls.write_all(&encode(&tuples)) {
        log::debug!("feedback write failed: {e}");
    }
    tls::close(shared, tls);
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_tuple_encodes_as_time_then_length_32_then_token() {
        let out = super::encode(&[(0x0102_0304, [9; 32])]);
        assert_eq!(&out[..6], &[1, 2, 3, 4, 0, 32]);
        assert_eq!(&out[6..], &[9; 32]);
    }
}
