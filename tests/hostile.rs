//! The sender facing a gateway that misbehaves: no panic, no hang, no
//! unbounded memory, and every token still accounted for.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use apnsblast::report::{Report, State};
use apnsblast::run::SendConfig;
use apnsblast::{Error, GatewayError};
use common::*;
use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslMethod, SslStream};
use openssl::x509::X509;

/// What the hostile gateway does with each TLS connection.
type Behaviour = fn(&mut SslStream<TcpStream>);

/// A TLS server on 127.0.0.1:0 that runs `behaviour` on every connection.
struct Hostile {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl Hostile {
    fn start(behaviour: Behaviour, handshake: bool) -> Hostile {
        let p = pki();
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
        b.set_private_key(&PKey::private_key_from_pem(p.server_key_pem()).unwrap()).unwrap();
        b.set_certificate(&X509::from_pem(p.server_pem()).unwrap()).unwrap();
        let acceptor = Arc::new(b.build());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        thread::spawn(move || {
            for tcp in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(tcp) = tcp else { continue };
                let acceptor = Arc::clone(&acceptor);
                let flag = Arc::clone(&flag);
                thread::spawn(move || {
                    if !handshake {
                        // Hold the socket, say nothing, until the test ends.
                        let mut tcp = tcp;
                        let _ = tcp.set_read_timeout(Some(Duration::from_millis(50)));
                        let mut buf = [0u8; 1024];
                        while !flag.load(Ordering::Relaxed) {
                            if let Ok(0) = tcp.read(&mut buf) {
                                return;
                            }
                        }
                        return;
                    }
                    if let Ok(mut tls) = acceptor.accept(tcp) {
                        behaviour(&mut tls);
                    }
                });
            }
        });
        Hostile { addr, stop }
    }

    fn config(&self) -> SendConfig {
        let mut c = SendConfig::new(format!("localhost:{}", self.addr.port()), tls(), &b"{}"[..]);
        c.shards = 2;
        c.max_failures = 2;
        // Short, since the silent gateways here are what is tested. The
        // connect timeout keeps its default (a loaded machine can take a good
        // part of a second over a handshake) except where it is tested.
        c.response_timeout = Duration::from_millis(500);
        c.backoff_min = Duration::from_millis(5);
        c.backoff_max = Duration::from_millis(20);
        c
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr);
    }
}

/// Runs a blast on another thread and insists that it ends within `limit`.
fn bounded(config: SendConfig, text: String, limit: Duration) -> Result<Report, Error> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let reader = apnsblast::input::TokenReader::new(std::io::Cursor::new(text.into_bytes()), Default::default());
        let b = apnsblast::run::Blaster::new(config).unwrap();
        let r = b.run(reader, &mut ());
        let _ = tx.send(r);
    });
    rx.recv_timeout(limit).expect("the run hung")
}

fn read_some(tls: &mut SslStream<TcpStream>) {
    let mut buf = [0u8; 4096];
    let _ = tls.read(&mut buf);
}

fn assert_nothing_lost(r: &Report, n: u64) {
    assert_eq!(r.unaccounted(), 0, "{r:#?}");
    assert_eq!(r.tokens_read, n);
    assert_eq!(r.accepted, 0, "this gateway never confirms anything");
    assert_eq!(r.unconfirmed + r.unsent + r.rejected_total(), n, "{r:#?}");
    assert!(r.per_shard.iter().all(|s| s.error.is_some()), "each shard says why it stopped: {r:#?}");
}

const LIMIT: Duration = Duration::from_secs(60);

/// The connect timeout where a stalled handshake is what is tested.
const STALL: Duration = Duration::from_millis(500);

fn mid_run(behaviour: Behaviour) -> Report {
    let h = Hostile::start(behaviour, true);
    let mut c = h.config();
    c.preflight = false;
    let r = bounded(c, list(&tokens(2_000, 5)), LIMIT).expect("no preflight, so the run happens");
    assert_nothing_lost(&r, 2_000);
    r
}

#[test]
fn garbage_instead_of_an_error_response() {
    mid_run(|tls| {
        read_some(tls);
        let _ = tls.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    });
}

#[test]
fn partial_error_response_then_close() {
    mid_run(|tls| {
        read_some(tls);
        let _ = tls.write_all(&[8, 8, 0]);
        let _ = tls.shutdown();
    });
}

#[test]
fn error_response_for_an_identifier_never_sent() {
    mid_run(|tls| {
        read_some(tls);
        let _ = tls.write_all(&[8, 8, 0xFF, 0xFF, 0xFF, 0xF0]);
        let _ = tls.shutdown();
    });
}

#[test]
fn error_response_before_anything_was_sent() {
    let r = mid_run(|tls| {
        let _ = tls.write_all(&[8, 8, 0, 0, 0, 1]);
        let _ = tls.shutdown();
    });
    // Identifier 1 is each shard's first notification: if the sender had
    // written it by the time it read the answer, the gateway named it and it
    // is rightly rejected; if not, the answer names nothing and is ignored.
    assert!(r.rejected_total() <= r.shards as u64, "only a written notification can be rejected: {r:#?}");
}

#[test]
fn endless_bytes() {
    mid_run(|tls| {
        let junk = [0x55u8; 16 * 1024];
        while tls.write_all(&junk).is_ok() {}
    });
}

#[test]
fn silence_after_reading_everything() {
    let r = mid_run(|tls| {
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = tls.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    });
    assert!(r.unconfirmed > 0, "written tokens are unconfirmed, not lost: {r:#?}");
}

#[test]
fn silent_gateway_fails_the_preflight() {
    let h = Hostile::start(
        |tls| {
            let mut buf = [0u8; 1024];
            while let Ok(n) = tls.read(&mut buf) {
                if n == 0 {
                    break;
                }
            }
        },
        true,
    );
    let err = bounded(h.config(), list(&tokens(10, 5)), LIMIT).expect_err("the gateway never answers");
    assert!(matches!(err, Error::Gateway { cause: GatewayError::NoAnswer(_), .. }), "{err:?}");
}

#[test]
fn stalled_handshake_fails_the_preflight() {
    let h = Hostile::start(|_| {}, false);
    let mut c = h.config();
    c.connect_timeout = STALL;
    let err = bounded(c, list(&tokens(10, 5)), LIMIT).expect_err("the handshake never completes");
    assert!(matches!(err, Error::Gateway { cause: GatewayError::Timeout(_), .. }), "{err:?}");
}

#[test]
fn stalled_handshake_mid_run_leaves_tokens_unsent() {
    let h = Hostile::start(|_| {}, false);
    let mut c = h.config();
    c.preflight = false;
    c.connect_timeout = STALL;
    let r = bounded(c, list(&tokens(1_000, 5)), LIMIT).unwrap();
    assert_eq!(r.unaccounted(), 0);
    assert_eq!(r.unsent, 1_000, "{r:#?}");
}

#[test]
fn nobody_listening_fails_the_preflight() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut c = SendConfig::new(format!("127.0.0.1:{port}"), tls(), &b"{}"[..]);
    c.max_failures = 2;
    c.backoff_min = Duration::from_millis(5);
    let err = bounded(c, list(&tokens(10, 5)), LIMIT).expect_err("nothing listens");
    assert!(matches!(err, Error::Gateway { cause: GatewayError::Unreachable { .. }, .. }), "{err:?}");
}

#[test]
fn rejected_certificate_fails_the_preflight() {
    let gw = gateway(mock_gateway::Config::default());
    let dir = tempfile::tempdir().unwrap();
    let rogue = mock_gateway::Pki::rogue_client(dir.path(), "rogue", "").unwrap();
    let mut c = config(&gw, 1);
    c.tls.identity = Some(apnsblast::tls::ClientIdentity::load(&rogue.p12_path, None, Some("")).unwrap());
    c.max_failures = 2;
    let err = bounded(c, list(&tokens(10, 5)), LIMIT).expect_err("the mock refuses a rogue certificate");
    let Error::Gateway { cause, .. } = &err else { panic!("{err:?}") };
    assert!(matches!(cause, GatewayError::Refused { .. }) && cause.is_certificate(), "{err:?}");
    assert_eq!(gw.stop().accepted, 0);
}

#[test]
fn failures_name_state_unconfirmed_or_unsent() {
    // Every failure line of a hostile run carries a reason.
    let h = Hostile::start(read_some, true);
    let mut c = h.config();
    c.preflight = false;
    let blaster = apnsblast::run::Blaster::new(c).unwrap();
    let reader = apnsblast::input::TokenReader::new(
        std::io::Cursor::new(list(&tokens(300, 8)).into_bytes()),
        Default::default(),
    );
    let mut f = Failures::default();
    let r = blaster.run(reader, &mut f).unwrap();
    assert_eq!(f.0.len() as u64, r.unconfirmed + r.unsent);
    assert!(f.0.iter().all(|x| matches!(x.state, State::Unconfirmed | State::Unsent) && !x.reason.is_empty()));
}
