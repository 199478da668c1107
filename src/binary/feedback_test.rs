//! Feedback tuples checked against literal bytes of the layout Apple's
//! legacy binary provider API documented: a 4-byte time, a 2-byte length, the token.

use super::*;

fn token(start: u8) -> DeviceToken {
    let mut t = [0u8; TOKEN_LEN];
    for (i, b) in t.iter_mut().enumerate() {
        *b = start.wrapping_add(i as u8);
    }
    DeviceToken(t)
}

/// Two tuples: time 0x5F5E0FF0 with token 00..1f, time 1 with token a0..bf.
fn two_tuples() -> Vec<u8> {
    let mut b = vec![0x5F, 0x5E, 0x0F, 0xF0, 0x00, 0x20];
    b.extend(0u8..32);
    b.extend([0, 0, 0, 1, 0, 32]);
    b.extend(0xA0u8..0xC0);
    b
}

fn expected() -> Vec<FeedbackTuple> {
    vec![FeedbackTuple { time: 0x5F5E_0FF0, token: token(0) }, FeedbackTuple { time: 1, token: token(0xA0) }]
}

#[test]
fn encode_matches_literal_bytes() {
    let mut out = vec![];
    for t in expected() {
        t.encode(&mut out);
    }
    assert_eq!(out, two_tuples());
    assert_eq!(out.len(), 2 * FeedbackTuple::LEN);
}

#[test]
fn a_whole_buffer_decodes_to_every_tuple() {
    let mut d = FeedbackDecoder::new();
    d.push(&two_tuples());
    assert_eq!(d.next_tuple(), Ok(Some(expected()[0])));
    assert_eq!(d.next_tuple(), Ok(Some(expected()[1])));
    assert_eq!(d.next_tuple(), Ok(None));
    assert_eq!(d.finish(), Ok(()));
    assert_eq!(d.offset(), 76);
}

#[test]
fn split_at_every_byte_boundary_decodes_the_same() {
    let bytes = two_tuples();
    for cut in 0..=bytes.len() {
        let mut d = FeedbackDecoder::new();
        let mut got = vec![];
        for part in [&bytes[..cut], &bytes[cut..]] {
            d.push(part);
            while let Some(t) = d.next_tuple().unwrap() {
                got.push(t);
            }
        }
        assert_eq!(got, expected(), "cut at {cut}");
        assert_eq!(d.finish(), Ok(()));
    }
    // And one byte at a time.
    let mut d = FeedbackDecoder::new();
    let mut got = vec![];
    for b in &bytes {
        d.push(std::slice::from_ref(b));
        while let Some(t) = d.next_tuple().unwrap() {
            got.push(t);
        }
    }
    assert_eq!(got, expected());
}

#[test]
fn a_partial_tuple_needs_more_then_is_truncated_at_the_end() {
    let mut d = FeedbackDecoder::new();
    d.push(&two_tuples()[..50]);
    assert!(d.next_tuple().unwrap().is_some());
    assert_eq!(d.next_tuple(), Ok(None));
    assert_eq!(d.finish(), Err(FeedbackError::Truncated { bytes: 12 }));
    assert_eq!(d.finish().unwrap_err().to_string(), "stream ended inside a tuple (12 of 38 bytes)");
}

#[test]
fn bad_token_length_is_sticky() {
    let mut d = FeedbackDecoder::new();
    d.push(&[0, 0, 0, 9, 0, 16]);
    assert_eq!(d.next_tuple(), Err(FeedbackError::BadTokenLength(16)));
    assert_eq!(d.next_tuple(), Err(FeedbackError::BadTokenLength(16)));
    assert_eq!(FeedbackError::BadTokenLength(16).to_string(), "token length is 16, expected 32");
}

#[test]
fn read_all_reads_every_tuple_to_eof() {
    assert_eq!(read_all(&two_tuples()[..]).unwrap(), expected());
    assert_eq!(read_all(&[][..]).unwrap(), vec![]);

    let mut bad = two_tuples();
    bad[38 + 5] = 31;
    let e = read_all(&bad[..]).unwrap_err();
    assert_eq!(e.to_string(), "feedback tuple at byte 38: token length is 31, expected 32");

    let e = read_all(&two_tuples()[..40]).unwrap_err();
    assert!(matches!(e, FeedbackReadError::Decode { offset: 38, error: FeedbackError::Truncated { bytes: 2 } }));
}

#[test]
fn read_all_survives_small_reads_and_interrupts() {
    struct Trickle(Vec<u8>, usize, bool);
    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.2 = !self.2;
            if self.2 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = (self.0.len() - self.1).min(3).min(buf.len());
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }
    let mut many = vec![];
    for i in 0..1000u32 {
        FeedbackTuple { time: i, token: token(i as u8) }.encode(&mut many);
    }
    let got = read_all(Trickle(many, 0, false)).unwrap();
    assert_eq!(got.len(), 1000);
    assert_eq!(got[999], FeedbackTuple { time: 999, token: token(999u32 as u8) });
}
