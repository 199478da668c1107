//! The `mock-gateway` binary: startup JSON line, stats JSON on SIGTERM or idle exit,
//! exit code 2 with a pointed message on bad arguments.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};

use common::*;
use mock_gateway::{Pki, Stats};
use native_tls::{Certificate, Identity, TlsConnector};

const BIN: &str = env!("CARGO_BIN_EXE_mock-gateway");

fn spawn(certs: &Path, extra: &[&str]) -> (Child, BufReader<ChildStdout>, serde_json::Value) {
    let mut child = Command::new(BIN)
        .args(["--listen", "127.0.0.1:0", "--feedback-listen", "127.0.0.1:0", "--certs-dir"])
        .arg(certs)
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let hello: serde_json::Value = serde_json::from_str(&line).unwrap();
    (child, out, hello)
}

/// Connect with the identity the binary generated in `certs`.
fn connect_to(certs: &Path, addr: &str) -> native_tls::TlsStream<std::net::TcpStream> {
    let pki = Pki::ensure(certs).unwrap();
    let id = Identity::from_pkcs8(&pki.client().cert_pem, &pki.client().key_pem).unwrap();
    let c = TlsConnector::builder()
        .identity(id)
        .add_root_certificate(Certificate::from_pem(pki.ca_pem()).unwrap())
        .disable_built_in_roots(true)
        .build()
        .unwrap();
    c.connect("localhost", tcp(addr.parse::<SocketAddr>().unwrap())).unwrap()
}

fn stats_line(out: &mut BufReader<ChildStdout>) -> Stats {
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

#[test]
fn startup_line_then_stats_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let bad = dir.path().join("bad.txt");
    let hex: String = token(3).iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(&bad, format!("# bad tokens\n\n<{} {}>\n", &hex[..32], &hex[32..])).unwrap();
    let feedback = dir.path().join("feedback.tsv");
    std::fs::write(&feedback, format!("1234\t{hex}\n")).unwrap();
    let (mut child, mut out, hello) =
        spawn(&certs, &["--bad-tokens", bad.to_str().unwrap(), "--feedback", feedback.to_str().unwrap()]);
    assert_eq!(hello["certs_dir"], certs.display().to_string());
    for f in ["ca.pem", "server.pem", "server.key", "client.pem", "client.key", "client.p12"] {
        assert!(certs.join(f).is_file(), "{f}");
    }
    let listen = hello["listen"].as_str().unwrap();
    let mut s = connect_to(&certs, listen);
    s.write_all(&good(1, 4)).unwrap(); // id 3 is bad
    assert_eq!(read_to_end(&mut s).0, response(8, 3));
    let (fb, _) = read_to_end(&mut connect_to(&certs, hello["feedback"].as_str().unwrap()));
    assert_eq!(fb.len(), 38);
    assert_eq!(&fb[..6], &[0, 0, 4, 210, 0, 32]);

    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let stats = stats_line(&mut out);
    assert_eq!((stats.accepted, stats.rejected_with(8), stats.connections), (2, 1, 1));
    assert!(child.wait().unwrap().success());
}

#[test]
fn exits_after_idle_and_reuses_certs() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let ca_before = Pki::ensure(&certs).unwrap().ca_pem().to_vec();
    let (mut child, mut out, hello) = spawn(&certs, &["--exit-after-idle", "1", "--close-after", "2"]);
    assert_eq!(std::fs::read(certs.join("ca.pem")).unwrap(), ca_before);
    let mut s = connect_to(&certs, hello["listen"].as_str().unwrap());
    s.write_all(&good(1, 5)).unwrap();
    assert_eq!(read_to_end(&mut s).0, b"");
    drop(s);
    let stats = stats_line(&mut out); // printed on idle exit, no signal sent
    assert_eq!((stats.accepted, stats.silent_closes), (2, 1));
    assert!(child.wait().unwrap().success());
}

#[test]
fn bad_arguments_exit_2_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, format!("{}\nnot-hex\n", "00".repeat(32))).unwrap();
    let certs = dir.path().join("certs");
    let cases: [(&[&str], &str); 3] = [
        (&["--bad-tokens", bad.to_str().unwrap()], "line 2"),
        (&["--bad-rate", "1.5"], "--bad-rate"),
        (&["--error-delay-ms", "soon"], "--error-delay-ms"),
    ];
    for (args, needle) in cases {
        let out = Command::new(BIN).arg("--certs-dir").arg(&certs).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty());
    }
}
