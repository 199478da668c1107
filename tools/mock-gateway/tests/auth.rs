//! Client certificates: required, verified against the mock CA, validity enforced.
//! Under TLS 1.3 a refused client's `connect` may succeed; its first read then fails.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, SystemTime};

use common::*;
use mock_gateway::{Config, Pki};
use native_tls::Identity;

/// Try to use a connection: connect, write one good and one bad notification, read.
/// True if the gateway refused (handshake error, read error, or EOF without a
/// response); false if the error response for the bad one came back.
fn refused(addr: std::net::SocketAddr, identity: Option<Identity>) -> bool {
    let Ok(mut s) = connector(identity).connect("localhost", tcp(addr)) else {
        return true;
    };
    let _ = s.write_all(&[good(1, 1), cmd1(2, &[], b"x")].concat());
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Err(_) | Ok(0))
}

#[test]
fn generated_identity_pem_and_p12_accepted() {
    let gw = start(Config::default());
    let mut s = connect(gw.addr());
    s.write_all(&good(1, 3)).unwrap();
    // Then the p12 form, empty password.
    let der = std::fs::read(pki().client_p12_path()).unwrap();
    let mut s2 =
        connector(Some(Identity::from_pkcs12(&der, "").unwrap())).connect("127.0.0.1", tcp(gw.addr())).unwrap();
    s2.write_all(&good(10, 2)).unwrap();
    let stats = gw.wait_until(WAIT, |s| s.accepted == 5).unwrap();
    assert_eq!(stats.connections, 2);
    drop((s, s2));
    assert_eq!(gw.stop().handshakes_failed, 0);
}

#[test]
fn no_certificate_refused() {
    let gw = start(Config::default());
    assert!(refused(gw.addr(), None));
    let stats = gw.stop();
    assert_eq!((stats.connections, stats.handshakes_failed, stats.accepted), (0, 1, 0));
}

#[test]
fn rogue_ca_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rogue = Pki::rogue_client(dir.path(), "rogue", "secret").unwrap();
    assert!(rogue.key_pem.starts_with(b"-----BEGIN PRIVATE KEY-----"));
    let gw = start(Config::default());
    assert!(refused(gw.addr(), Some(identity(&rogue))));
    let p12 = Identity::from_pkcs12(&rogue.p12, "secret").unwrap();
    assert!(refused(gw.addr(), Some(p12)));
    let stats = gw.stop();
    assert_eq!((stats.connections, stats.handshakes_failed), (0, 2));
}

#[test]
fn expired_and_not_yet_valid_refused() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now();
    let day = Duration::from_secs(86_400);
    let expired = pki().issue_client(dir.path(), "expired", now - 30 * day, now - day, "").unwrap();
    let future = pki().issue_client(dir.path(), "future", now + day, now + 30 * day, "").unwrap();
    let fresh = pki().issue_client(dir.path(), "fresh", now - day, now + day, "pw").unwrap();
    let gw = start(Config::default());
    assert!(refused(gw.addr(), Some(identity(&expired))));
    assert!(refused(gw.addr(), Some(identity(&future))));
    assert!(!refused(gw.addr(), Some(Identity::from_pkcs12(&fresh.p12, "pw").unwrap())));
    let stats = gw.stop();
    assert_eq!((stats.connections, stats.handshakes_failed, stats.accepted), (1, 2, 1));
}

#[test]
fn tls12_refusal_fails_the_handshake_itself() {
    let gw = start(Config { tls12_only: true, ..Config::default() });
    assert!(connector(None).connect("localhost", tcp(gw.addr())).is_err());
    assert_eq!(exchange(gw.addr(), &[good(1, 2), cmd1(3, &[], b"x")].concat()), response(2, 3));
    let stats = gw.stop();
    assert_eq!((stats.connections, stats.handshakes_failed, stats.accepted), (1, 1, 2));
}
