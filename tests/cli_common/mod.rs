//! Helpers shared by the `cli_*` tests: they run the built `apnsblast` binary
//! against the in-process mock gateway of `tests/common`.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;

use apnsblast::report::{Failure, Report};
use apnsblast::token::DeviceToken;
use mock_gateway::Handle;

use crate::common::{Run, pki, run_with};

pub const BIN: &str = env!("CARGO_BIN_EXE_apnsblast");

pub fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

pub fn path(p: &Path) -> String {
    p.display().to_string()
}

/// A scratch directory with helpers to put files in it.
pub struct Dir(tempfile::TempDir);

impl Dir {
    pub fn new() -> Dir {
        Dir(tempfile::tempdir().expect("tempdir"))
    }
    pub fn file(&self, name: &str, text: &str) -> String {
        let p = self.0.path().join(name);
        std::fs::write(&p, text).expect("write test file");
        path(&p)
    }
    pub fn at(&self, name: &str) -> String {
        path(&self.0.path().join(name))
    }
    pub fn path(&self) -> &Path {
        self.0.path()
    }
}

/// `send` against `gw` with the test certificate, short timeouts, and `extra`.
pub fn send_args(gw: &Handle, tokens: &str, extra: &[&str]) -> Vec<String> {
    let p = pki();
    let mut a = args(&[
        "send",
        "--tokens",
        tokens,
        "--gateway",
        &format!("127.0.0.1:{}", gw.addr().port()),
        "--cert",
        &path(p.client_p12_path()),
        "--ca",
        &path(&p.ca_path()),
        "--response-timeout",
        "5",
        "--max-backoff",
        "0.2",
    ]);
    if !extra.iter().any(|a| *a == "--payload" || *a == "--alert") {
        a.extend(args(&["--alert", "hi"]));
    }
    a.extend(args(extra));
    a
}

pub fn read_report(p: &str) -> Report {
    serde_json::from_str(&std::fs::read_to_string(p).expect("report written")).expect("report is JSON")
}

pub fn read_failed(p: &str) -> Vec<Failure> {
    std::fs::read_to_string(p)
        .expect("failed list written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("NDJSON failure line"))
        .collect()
}

pub fn bad_in(gw: &Handle, list: &[DeviceToken]) -> BTreeSet<String> {
    list.iter().filter(|t| gw.is_bad(t.as_bytes())).map(|t| t.to_string()).collect()
}

/// The mock saw nothing at all: no connection, no notification.
pub fn assert_untouched(gw: Handle) {
    let stats = gw.stop();
    assert_eq!(stats.connections + stats.handshakes_failed, 0, "{stats:?}");
    assert_eq!(stats.accepted, 0);
}

/// `send` with a certificate other than the test PKI's default.
pub fn send_with_cert(gw: &Handle, list: &str, cert: &[&str], env: &[(&str, &str)]) -> Run {
    let mut a = args(&["send", "--tokens", list, "--alert", "hi", "--gateway"]);
    a.push(format!("127.0.0.1:{}", gw.addr().port()));
    a.extend(args(&["--ca", &path(&pki().ca_path()), "--max-failures", "2", "--max-backoff", "0.1"]));
    a.extend(args(cert));
    run_with(&a, None, env)
}
