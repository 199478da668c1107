//! Helpers shared by the integration tests: the mock gateway in-process on
//! 127.0.0.1:0, test certificates made once per test binary, token lists.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{Cursor, Write};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use apnsblast::input::{ReaderOptions, TokenReader};
use apnsblast::report::{Failure, Report, State};
use apnsblast::run::{Blaster, Observer, SendConfig};
use apnsblast::tls::{ClientIdentity, TlsConfig};
use apnsblast::token::DeviceToken;
use mock_gateway::{Config, Gateway, Handle, Pki};

/// The test PKI, generated once per test binary into a temporary directory.
pub fn pki() -> &'static Pki {
    static PKI: OnceLock<(tempfile::TempDir, Pki)> = OnceLock::new();
    &PKI.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki::ensure(dir.path()).expect("test certificates");
        (dir, pki)
    })
    .1
}

/// Starts a mock gateway on 127.0.0.1:0.
pub fn gateway(config: Config) -> Handle {
    let _ = env_logger::builder().is_test(true).try_init();
    Gateway::start(config, pki(), "127.0.0.1:0".parse().unwrap(), None).expect("mock gateway starts")
}

/// `n` distinct tokens, the same for the same seed.
pub fn tokens(n: usize, seed: u64) -> Vec<DeviceToken> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|i| {
            let mut t = [0u8; 32];
            t[..8].copy_from_slice(&(i as u64).to_be_bytes());
            for chunk in t[8..].chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
            }
            DeviceToken(t)
        })
        .collect()
}

/// A token list as a file would hold it.
pub fn list(tokens: &[DeviceToken]) -> String {
    tokens.iter().map(|t| format!("{t}\n")).collect()
}

/// TLS settings that trust the mock and present its client certificate.
pub fn tls() -> TlsConfig {
    let p = pki();
    TlsConfig {
        identity: Some(ClientIdentity::load(p.client_p12_path(), None, Some("")).expect("client identity")),
        extra_roots: vec![p.ca_path()],
        danger_accept_invalid_certs: false,
    }
}

/// Send settings for the mock, with short timeouts so failing tests end quickly.
pub fn config(gw: &Handle, shards: usize) -> SendConfig {
    let mut c = SendConfig::new(format!("localhost:{}", gw.addr().port()), tls(), &br#"{"aps":{"alert":"hi"}}"#[..]);
    c.shards = shards;
    c.response_timeout = Duration::from_secs(5);
    c.backoff_min = Duration::from_millis(10);
    c.backoff_max = Duration::from_millis(200);
    c
}

/// Collects every failure the run reports.
#[derive(Debug, Default)]
pub struct Failures(pub Vec<Failure>);

impl Observer for Failures {
    fn failure(&mut self, f: &Failure) {
        self.0.push(f.clone());
    }
}

/// Runs `text` (a token list) through a sender with `config`.
pub fn blast(config: SendConfig, text: &str) -> (Report, Vec<Failure>) {
    blast_with(config, text, ReaderOptions::default())
}

/// [`blast`], reading the list with `options`.
pub fn blast_with(config: SendConfig, text: &str, options: ReaderOptions) -> (Report, Vec<Failure>) {
    let reader = TokenReader::new(Cursor::new(text.to_owned().into_bytes()), options);
    let blaster = Blaster::new(config).expect("config");
    let mut failures = Failures::default();
    let report = blaster.run(reader, &mut failures).expect("run");
    (report, failures.0)
}

/// Checks the report against what the gateway saw, token by token: every
/// valid token delivered, no invalid one, every rejection reported, nothing
/// unconfirmed or unsent, and no token delivered twice without being declared.
pub fn assert_accounted(report: &Report, failures: &[Failure], gw: &Handle, tokens: &[DeviceToken]) {
    assert_eq!(report.unconfirmed + report.unsent, 0, "nothing given up: {report:#?}");
    assert_each_token_accounted(report, failures, gw, tokens);
}

/// As [`assert_accounted`], where some tokens may end unconfirmed: each of
/// those must be listed as such, and may have arrived any number of times.
pub fn assert_each_token_accounted(report: &Report, failures: &[Failure], gw: &Handle, tokens: &[DeviceToken]) {
    assert_eq!(report.unaccounted(), 0, "unaccounted tokens: {report:#?}");
    assert_eq!(report.tokens_read, tokens.len() as u64);
    let unconfirmed: std::collections::HashSet<DeviceToken> = failures
        .iter()
        .filter(|f| f.state == State::Unconfirmed)
        .map(|f| DeviceToken::parse(&f.token).expect("an unconfirmed token is listed in hex"))
        .collect();
    assert_eq!(unconfirmed.len() as u64, report.unconfirmed, "each unconfirmed token is listed");
    let deliveries = gw.deliveries();
    let (mut bad, mut bad_unconfirmed, mut twice) = (0u64, 0u64, 0u64);
    for t in tokens {
        let n = deliveries.get(t.as_bytes()).copied().unwrap_or(0);
        let given_up = unconfirmed.contains(t);
        if gw.is_bad(t.as_bytes()) {
            bad += 1;
            bad_unconfirmed += u64::from(given_up);
            assert_eq!(n, 0, "invalid token {t} delivered");
        } else if !given_up {
            assert!(n >= 1, "valid token {t} never delivered; report {report:#?}");
            // A token the report declares possibly duplicated may arrive more
            // than twice (in doubt on several connections in a row); what
            // matters is that no token arrives twice without being declared.
            twice += u64::from(n > 1);
        }
    }
    assert!(
        twice <= report.possibly_duplicated,
        "{twice} accepted tokens delivered more than once but only {} declared possibly duplicated",
        report.possibly_duplicated
    );
    assert_eq!(
        report.rejected.get("8").copied().unwrap_or(0),
        bad - bad_unconfirmed,
        "rejections: {:?}",
        report.rejected
    );
    assert_eq!(report.accepted, tokens.len() as u64 - bad - (report.unconfirmed - bad_unconfirmed));
    let rejected: Vec<_> = failures.iter().filter(|f| f.state == State::Rejected).collect();
    assert_eq!(rejected.len() as u64, bad - bad_unconfirmed);
    assert!(rejected.iter().all(|f| f.status.map(|s| s.number()) == Some(8) && f.reason == "invalid token"));
}

/// What one run of the built `apnsblast` binary did.
#[derive(Debug)]
pub struct Run {
    /// Exit status (-1 when killed by a signal).
    pub code: i32,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

/// Runs the built binary with `args`, feeding `stdin` (or /dev/null: not a terminal).
pub fn run<S: AsRef<OsStr>>(args: &[S], stdin: Option<&str>) -> Run {
    run_with(args, stdin, &[])
}

/// [`run`] with extra environment variables.
pub fn run_with<S: AsRef<OsStr>>(args: &[S], stdin: Option<&str>, env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_apnsblast"));
    cmd.args(args).env_remove("RUST_LOG").envs(env.iter().copied()).stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    let mut child = cmd.spawn().expect("the binary starts");
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        let text = text.to_owned();
        std::thread::spawn(move || {
            let _ = pipe.write_all(text.as_bytes());
        });
    }
    let out = child.wait_with_output().expect("the binary runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Prints a chaos run's seed if it panics, so that it can be replayed.
pub struct SeedGuard(pub u64);

impl Drop for SeedGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("chaos run failed with seed {0}; replay with CHAOS_SEEDS={0}", self.0);
        }
    }
}

/// A draw in [0, 1) from a chaos run's xorshift state.
pub fn unit(x: &mut u64) -> f64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    (*x >> 11) as f64 / (1u64 << 53) as f64
}

/// The chaos seeds: `CHAOS_SEEDS` (comma-separated), else `default`.
pub fn seeds(default: &[u64]) -> Vec<u64> {
    match std::env::var("CHAOS_SEEDS") {
        Ok(s) => s.split(',').map(|x| x.trim().parse().expect("CHAOS_SEEDS: comma-separated numbers")).collect(),
        Err(_) => default.to_vec(),
    }
}

/// The full-size chaos list: `CHAOS_TOKENS`, else a million.
pub fn chaos_tokens() -> usize {
    std::env::var("CHAOS_TOKENS").map_or(1_000_000, |v| v.parse().expect("CHAOS_TOKENS: a number"))
}
