//! Byte-literal tests of the decoder: every status it can produce, and "need more".

use super::*;

const L: Limits = Limits { legacy: 256, frame: 2048 };
const T: [u8; 32] = [0xAB; 32];

fn cmd0(tok: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&(tok.len() as u16).to_be_bytes());
    v.extend_from_slice(tok);
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

fn cmd1(id: u32, tok: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![1];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&0u32.to_be_bytes());
    v.extend_from_slice(&cmd0(tok, payload)[1..]);
    v
}

fn item(id: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![id];
    v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

fn cmd2(items: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = items.concat();
    let mut v = vec![2];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(&body);
    v
}

fn inv(command: u8, status: u8, id: u32) -> Parsed<'static> {
    Parsed::Invalid(Invalid { command, status, id })
}

#[test]
fn command1_decodes_and_each_strict_prefix_asks_for_more() {
    let f = cmd1(7, &T, b"{}");
    assert_eq!(f.len(), 45 + 2);
    assert_eq!(&f[..11], &[1, 0, 0, 0, 7, 0, 0, 0, 0, 0, 32]);
    match parse(&f, L) {
        Parsed::Frame(fr) => {
            assert_eq!((fr.len, fr.command, fr.id, fr.token, fr.payload), (47, 1, Some(7), &T, &b"{}"[..]));
        }
        other => panic!("{other:?}"),
    }
    // Every strict prefix asks for more, never more than the frame holds.
    for n in 0..f.len() {
        match parse(&f[..n], L) {
            Parsed::Incomplete(need) => assert!(need > n && need <= f.len(), "{n} {need}"),
            other => panic!("{n}: {other:?}"),
        }
    }
}

#[test]
fn command0_and_the_frame_after_it_decode_back_to_back() {
    let mut buf = cmd0(&T, b"abc");
    buf.extend(cmd1(9, &T, b"x"));
    let Parsed::Frame(a) = parse(&buf, L) else { panic!() };
    assert_eq!((a.len, a.command, a.id), (40, 0, None));
    let Parsed::Frame(b) = parse(&buf[a.len..], L) else { panic!() };
    assert_eq!((b.command, b.id, b.payload), (1, Some(9), &b"x"[..]));
}

#[test]
fn legacy_frame_errors_get_their_status_codes() {
    assert_eq!(parse(&cmd1(3, &[], b"x"), L), inv(1, 2, 3));
    assert_eq!(parse(&cmd1(3, &[1; 31], b"x"), L), inv(1, 5, 3));
    assert_eq!(parse(&cmd1(3, &T, b""), L), inv(1, 4, 3));
    assert_eq!(parse(&cmd1(3, &T, &[b'a'; 257]), L), inv(1, 7, 3));
    assert!(matches!(parse(&cmd1(3, &T, &[b'a'; 256]), L), Parsed::Frame(_)));
    assert_eq!(parse(&cmd0(&[1; 33], b"x"), L), inv(0, 5, 0));
    // Decided from the header alone, before the payload arrives.
    assert_eq!(parse(&cmd1(3, &T, &[b'a'; 300])[..45], L), inv(1, 7, 3));
    assert_eq!(parse(&[9, 1, 2], L), inv(9, 128, 0));
    assert_eq!(parse(&[8], L), inv(8, 128, 0));
}

#[test]
fn command2_items_decode_in_any_order_and_bad_ones_get_their_status() {
    let ok = cmd2(&[item(1, &T), item(2, b"{}"), item(3, &5u32.to_be_bytes()), item(4, &[0; 4]), item(5, &[10])]);
    let Parsed::Frame(f) = parse(&ok, L) else { panic!() };
    assert_eq!((f.len, f.command, f.id, f.token, f.payload), (ok.len(), 2, Some(5), &T, &b"{}"[..]));
    // Items in any order; identifier optional.
    let reordered = cmd2(&[item(2, b"p"), item(1, &T)]);
    let Parsed::Frame(f) = parse(&reordered, L) else { panic!() };
    assert_eq!(f.id, None);
    let id = item(3, &[0, 0, 0, 42]);
    assert_eq!(parse(&cmd2(&[id.clone(), item(2, b"p")]), L), inv(2, 2, 42));
    assert_eq!(parse(&cmd2(&[id.clone(), item(1, &[]), item(2, b"p")]), L), inv(2, 2, 42));
    assert_eq!(parse(&cmd2(&[id.clone(), item(1, &[1; 16]), item(2, b"p")]), L), inv(2, 5, 42));
    assert_eq!(parse(&cmd2(&[id.clone(), item(1, &T)]), L), inv(2, 4, 42));
    assert_eq!(parse(&cmd2(&[id.clone(), item(1, &T), item(2, b"")]), L), inv(2, 4, 42));
    assert_eq!(parse(&cmd2(&[id.clone(), item(1, &T), item(2, &[b'a'; 2049])]), L), inv(2, 7, 42));
    assert!(matches!(parse(&cmd2(&[item(1, &T), item(2, &[b'a'; 2048])]), L), Parsed::Frame(_)));
    assert_eq!(parse(&cmd2(&[]), L), inv(2, 2, 0));
}

#[test]
fn malformed_command2_frames_get_status_128() {
    let id = item(3, &[0, 0, 0, 42]);
    let base = [item(1, &T), item(2, b"p")];
    for bad in [item(6, b"x"), item(3, &[1, 2]), item(4, &[1]), item(5, &[7]), item(5, &[5, 5]), item(0, b"")] {
        let f = cmd2(&[id.clone(), base[0].clone(), base[1].clone(), bad.clone()]);
        assert_eq!(parse(&f, L), inv(2, 128, 42), "{bad:?}");
    }
    // Duplicate token item.
    assert_eq!(parse(&cmd2(&[id.clone(), item(1, &T), item(1, &T), item(2, b"p")]), L), inv(2, 128, 42));
    // An item that overruns the frame, and a truncated item header.
    let over = cmd2(&[id.clone(), item(1, &T), vec![2, 0, 9, b'a', b'b']]);
    assert_eq!(parse(&over, L), inv(2, 128, 42));
    let short = cmd2(&[item(1, &T), vec![2, 0]]);
    assert_eq!(parse(&short, L), inv(2, 128, 0));
    // Absurd frame length: rejected at once rather than buffered.
    assert_eq!(parse(&[2, 0xFF, 0, 0, 0], L), inv(2, 128, 0));
    assert_eq!(parse(&[2, 0, 0, 1, 0], L), Parsed::Incomplete(5 + 256));
}
