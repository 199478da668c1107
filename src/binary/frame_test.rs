//! Frames checked byte for byte against the layouts of Apple's legacy
//! binary provider API (commands 0, 1 and 2, and the 6-byte error response).

use super::*;

fn token() -> DeviceToken {
    let mut t = [0u8; 32];
    for (i, b) in t.iter_mut().enumerate() {
        *b = i as u8;
    }
    DeviceToken(t)
}

fn tok_bytes() -> Vec<u8> {
    (0u8..32).collect()
}

fn note<'a>(t: &'a DeviceToken, payload: &'a [u8]) -> Notification<'a> {
    Notification { token: t, payload, id: 0x0102_0304, expiry: 0x0A0B_0C0D, priority: Priority::PowerSaving }
}

#[test]
fn command_0_frame_is_token_then_payload_with_lengths() {
    let t = token();
    let mut out = vec![];
    Command::Simple.encode(&note(&t, b"{}"), &mut out);
    let mut want = vec![0, 0, 32];
    want.extend(tok_bytes());
    want.extend([0, 2, b'{', b'}']);
    assert_eq!(out, want);
    assert_eq!(out.len(), Command::Simple.frame_len(2));
}

#[test]
fn command_1_frame_adds_identifier_and_expiry() {
    let t = token();
    let mut out = vec![];
    Command::Enhanced.encode(&note(&t, b"{}"), &mut out);
    let mut want = vec![1, 1, 2, 3, 4, 0x0A, 0x0B, 0x0C, 0x0D, 0, 32];
    want.extend(tok_bytes());
    want.extend([0, 2, b'{', b'}']);
    assert_eq!(out, want);
    assert_eq!(out.len(), Command::Enhanced.frame_len(2));
    // Command 1: 1 + 4 (id) + 4 (expiry) + 2 + 32 (token) + 2 = 45 bytes
    // around the payload, so a 100-byte payload makes a 145-byte frame.
    assert_eq!(Command::Enhanced.frame_len(100), 145);
}

#[test]
fn command_2_frame_is_five_items_in_order() {
    let t = token();
    let mut out = vec![];
    Command::Items.encode(&note(&t, b"{}"), &mut out);
    let mut want = vec![2, 0, 0, 0, 58];
    want.extend([1, 0, 32]);
    want.extend(tok_bytes());
    want.extend([2, 0, 2, b'{', b'}']);
    want.extend([3, 0, 4, 1, 2, 3, 4]);
    want.extend([4, 0, 4, 0x0A, 0x0B, 0x0C, 0x0D]);
    want.extend([5, 0, 1, 5]);
    assert_eq!(out, want);
    assert_eq!(out.len(), Command::Items.frame_len(2));
}

#[test]
fn encoders_append_after_what_the_buffer_holds() {
    let t = token();
    let mut out = vec![0xEE];
    Command::Items.encode(&note(&t, b"{}"), &mut out);
    Command::Items.encode(&note(&t, b"{}"), &mut out);
    assert_eq!(out.len(), 1 + 2 * Command::Items.frame_len(2));
    assert_eq!(out[0], 0xEE);
}

#[test]
fn sentinels_carry_no_token() {
    let mut out = vec![];
    Command::Items.encode_sentinel(7, &mut out);
    assert_eq!(out, [2, 0, 0, 0, 7, 3, 0, 4, 0, 0, 0, 7]);
    out.clear();
    Command::Enhanced.encode_sentinel(7, &mut out);
    assert_eq!(out, [1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0]);
}

#[test]
fn error_response_decodes_and_encodes_its_six_bytes() {
    let r = ErrorResponse::decode(&[8, 8, 0, 0, 0x03, 0xE8]).unwrap().unwrap();
    assert_eq!(r, ErrorResponse { status: Status::InvalidToken, id: 1000 });
    assert_eq!(r.to_bytes(), [8, 8, 0, 0, 0x03, 0xE8]);
    assert_eq!(r.to_string(), "notification 1000: invalid token (8)");
}

#[test]
fn short_error_response_needs_more() {
    for n in 0..6 {
        assert_eq!(ErrorResponse::decode(&[8, 10, 0, 0, 0, 1][..n]), Ok(None));
    }
}

#[test]
fn bytes_not_starting_with_command_8_are_an_error() {
    assert_eq!(ErrorResponse::decode(b"HTTP/1.1"), Err(DecodeError::BadCommand(b'H')));
}

#[test]
fn every_status_code_round_trips() {
    let defined = [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 10, 128, 255];
    for code in 0..=255u8 {
        let s = Status::from_code(code);
        assert_eq!(s.code(), code);
        assert_eq!(matches!(s, Status::Other(_)), !defined.contains(&code), "code {code}");
    }
    assert_eq!(Status::from_code(10), Status::Shutdown);
    assert_eq!(Status::from_code(9), Status::Other(9));
}

#[test]
fn a_status_serializes_as_its_code() {
    for code in [8u8, 10, 42, 255] {
        let status = Status::from_code(code);
        assert_eq!(serde_json::to_string(&status).unwrap(), code.to_string());
        assert_eq!(serde_json::from_str::<Status>(&code.to_string()).unwrap(), status);
    }
}

#[test]
fn template_writes_what_encode_writes() {
    let t = token();
    for command in [Command::Simple, Command::Enhanced, Command::Items] {
        for payload in [&b"{}"[..], br#"{"aps":{"alert":"hello"}}"#] {
            let n = note(&t, payload);
            let template = Template::new(command, payload, n.expiry, n.priority);
            let (mut want, mut got) = (vec![9], vec![9]);
            command.encode(&n, &mut want);
            template.encode(&t, n.id, &mut got);
            assert_eq!(got, want, "{command:?}, {} payload bytes", payload.len());
            // Reused: only the token and identifier change.
            let other = DeviceToken([0xEE; 32]);
            let (mut want, mut got) = (vec![], vec![]);
            command.encode(&Notification { token: &other, id: 7, ..n }, &mut want);
            template.encode(&other, 7, &mut got);
            assert_eq!(got, want, "{command:?} reused");
        }
    }
}
