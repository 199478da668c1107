//! Test helpers: one shared PKI, a native-tls client, hand-written frame encoders.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use mock_gateway::{ClientIdentity, Config, Gateway, Handle, Pki};
use native_tls::{Certificate, Identity, TlsConnector, TlsStream};

/// Generous bound for anything a test waits on; a hang fails instead of blocking CI.
pub const WAIT: Duration = Duration::from_secs(20);

/// One PKI per test binary (RSA key generation is the slow part).
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<(tempfile::TempDir, Pki)> = OnceLock::new();
    &PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::ensure(dir.path()).unwrap();
        (dir, pki)
    })
    .1
}

/// Start a gateway (with feedback service) on 127.0.0.1:0.
pub fn start(config: Config) -> Handle {
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    Gateway::start(config, pki(), any, Some(any)).unwrap()
}

pub fn identity(id: &ClientIdentity) -> Identity {
    Identity::from_pkcs8(&id.cert_pem, &id.key_pem).unwrap()
}

pub fn connector(identity: Option<Identity>) -> TlsConnector {
    let mut b = TlsConnector::builder();
    b.add_root_certificate(Certificate::from_pem(pki().ca_pem()).unwrap()).disable_built_in_roots(true);
    if let Some(id) = identity {
        b.identity(id);
    }
    b.build().unwrap()
}

pub fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.set_write_timeout(Some(WAIT)).unwrap();
    s
}

/// Connect with the PKI's client identity.
pub fn connect(addr: SocketAddr) -> TlsStream<TcpStream> {
    connector(Some(identity(pki().client()))).connect("localhost", tcp(addr)).unwrap()
}

/// Read until EOF or an error. Returns the bytes and the error, if any.
pub fn read_to_end<R: Read>(s: &mut R) -> (Vec<u8>, Option<io::Error>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (out, None),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (out, Some(e)),
        }
    }
}

/// Write `frames`, then read everything the gateway sends back until it closes.
pub fn exchange(addr: SocketAddr, frames: &[u8]) -> Vec<u8> {
    let mut s = connect(addr);
    s.write_all(frames).unwrap();
    let (bytes, err) = read_to_end(&mut s);
    assert!(err.is_none(), "unexpected read error {err:?}");
    bytes
}

pub fn token(i: u32) -> [u8; 32] {
    let mut t = [0x5A; 32];
    t[28..].copy_from_slice(&i.to_be_bytes());
    t
}

pub fn response(status: u8, id: u32) -> Vec<u8> {
    let mut v = vec![8, status];
    v.extend_from_slice(&id.to_be_bytes());
    v
}

pub fn cmd0(tok: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&(tok.len() as u16).to_be_bytes());
    v.extend_from_slice(tok);
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

pub fn cmd1(id: u32, tok: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = vec![1];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&0u32.to_be_bytes());
    v.extend_from_slice(&cmd0(tok, payload)[1..]);
    v
}

pub fn item(id: u8, data: &[u8]) -> Vec<u8> {
    let mut v = vec![id];
    v.extend_from_slice(&(data.len() as u16).to_be_bytes());
    v.extend_from_slice(data);
    v
}

pub fn cmd2(items: &[Vec<u8>]) -> Vec<u8> {
    let body = items.concat();
    let mut v = vec![2];
    v.extend_from_slice(&(body.len() as u32).to_be_bytes());
    v.extend_from_slice(&body);
    v
}

/// A complete, valid command-2 notification.
pub fn notif2(id: u32, tok: &[u8; 32], payload: &[u8]) -> Vec<u8> {
    cmd2(&[item(1, tok), item(2, payload), item(3, &id.to_be_bytes()), item(4, &[0; 4]), item(5, &[10])])
}

/// `n` valid command-1 notifications with ids `first..first+n` and tokens `token(id)`.
pub fn good(first: u32, n: u32) -> Vec<u8> {
    (first..first + n).flat_map(|i| cmd1(i, &token(i), br#"{"aps":{"alert":"hi"}}"#)).collect()
}
