//! Runs the README's sessions (the binary protocol's "complete session" and
//! the one over HTTP/2) line by line, so the commands a new user copies are
//! the commands that work.
//!
//! The `cargo build` and `export PATH` lines are this test's own build; the
//! `mock-gateway ... &` line starts the mock in-process (port 0) with the same
//! flags, and `localhost:2195`/`:2196` become its real ports; `kill %1` stops it.
//! Every other line runs under `sh` in a scratch directory.

mod common;

use std::path::Path;
use std::process::Command;

use mock_gateway::config::Http2Config;
use mock_gateway::{Config, Gateway, Handle, Http2Gateway, Pki};

/// The lines of the README block fenced as ```sh session (or ```sh
/// session-http2, ...), continuation lines joined.
fn session(fence: &str) -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let block =
        readme.split(&format!("```sh {fence}\n")).nth(1).unwrap_or_else(|| panic!("README has a ```sh {fence} block"));
    let block = block.split("\n```").next().unwrap();
    let mut lines = Vec::new();
    let mut current = String::new();
    for raw in block.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                current.push_str(head);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                lines.push(std::mem::take(&mut current));
            }
        }
    }
    lines
}

fn flag<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let mut words = line.split_whitespace();
    words.by_ref().find(|w| *w == name)?;
    words.next()
}

fn have(program: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success())
}

#[test]
fn readme_session_runs() {
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_apnsblast")).parent().unwrap().to_owned();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut gw: Option<Handle> = None;
    let mut ran = 0;
    for line in session("session") {
        if line.starts_with("cargo build") || line.starts_with("export PATH") {
            continue;
        }
        if line.starts_with("mock-gateway ") {
            let certs = dir.path().join(flag(&line, "--certs-dir").unwrap());
            let pki = Pki::ensure(&certs).unwrap();
            let feedback = std::fs::read_to_string(dir.path().join(flag(&line, "--feedback").unwrap())).unwrap();
            let tuples = feedback
                .lines()
                .map(|l| {
                    let (t, tok) = l.split_once('\t').expect("timestamp<TAB>token");
                    (t.parse().unwrap(), apnsblast::DeviceToken::parse(tok).unwrap().0)
                })
                .collect::<Vec<_>>();
            assert_eq!(tuples.len(), 3);
            let config = Config {
                bad_rate: flag(&line, "--bad-rate").unwrap().parse().unwrap(),
                feedback: tuples,
                ..Config::default()
            };
            let any = "127.0.0.1:0".parse().unwrap();
            gw = Some(Gateway::start(config, &pki, any, Some(any)).unwrap());
            continue;
        }
        if line.starts_with("kill ") {
            let stats = gw.take().expect("the mock runs").stop();
            assert_eq!(stats.feedback_tuples, 3);
            continue;
        }
        let program = line.split_whitespace().next().unwrap();
        if program != "apnsblast" && !have(program) {
            eprintln!("skipping (no {program} on this machine): {line}");
            continue;
        }
        let g = gw.as_ref();
        let line = match g {
            Some(g) => line
                .replace("localhost:2195", &format!("localhost:{}", g.addr().port()))
                .replace("localhost:2196", &format!("localhost:{}", g.feedback_addr().unwrap().port())),
            None => line,
        };
        run_line(&line, dir.path(), &path);
        ran += 1;
    }
    assert!(ran >= 8, "the session ran");

    // What the session promises: a report, the invalid tokens gone from the
    // database along with the uninstalled ones.
    let report: apnsblast::Report =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report.unaccounted(), 0);
    assert!(report.rejected_total() > 0 && report.skipped > 0, "{report:?}");
    let invalid = std::fs::read_to_string(dir.path().join("invalid.txt")).unwrap();
    assert_eq!(invalid.lines().count() as u64, report.rejected.get("8").copied().unwrap_or(0));
    assert_eq!(std::fs::read_to_string(dir.path().join("feedback.tsv")).unwrap().lines().count(), 3);
    if have("sqlite3") {
        let left = Command::new("sqlite3")
            .args(["devices.db", "SELECT count(*) FROM devices WHERE token IN (SELECT token FROM invalid UNION SELECT token FROM uninstalled)"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), "0");
    }
}

/// Runs one line of a session under `sh` in `dir`: exit 0, or 1 for a send
/// that left tokens unaccepted.
fn run_line(line: &str, dir: &Path, path: &str) {
    let out = Command::new("sh").arg("-c").arg(line).current_dir(dir).env("PATH", path).output().unwrap();
    let code = out.status.code();
    let ok = code == Some(0) || (line.starts_with("apnsblast send") && code == Some(1));
    assert!(
        ok,
        "README line failed ({code:?}): {line}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn readme_http2_session_runs() {
    let dir = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_apnsblast")).parent().unwrap().to_owned();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut gw = None;
    let mut ran = 0;
    let mut pruned = 0;
    for line in session("session-http2") {
        if line.starts_with("mock-gateway ") {
            let pki = Pki::ensure(&dir.path().join(flag(&line, "--certs-dir").unwrap())).unwrap();
            let rate = |name| flag(&line, name).unwrap().parse().unwrap();
            let config = Config {
                bad_rate: rate("--bad-rate"),
                http2: Http2Config { gone_rate: rate("--gone-rate"), ..Http2Config::default() },
                ..Config::default()
            };
            gw = Some(Http2Gateway::start(&config, &pki, "127.0.0.1:0".parse().unwrap()).unwrap());
            continue;
        }
        if line.starts_with("kill ") {
            let stats = gw.take().expect("the mock runs").stop();
            let report: apnsblast::Report =
                serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
            assert_eq!(report.unaccounted(), 0);
            assert_eq!(report.accepted, stats.distinct_tokens);
            let (bad, gone) = (stats.rejected_for("BadDeviceToken"), stats.rejected_for("Unregistered"));
            assert!(bad > 0 && gone > 0, "{stats:?}");
            assert_eq!(report.rejected.get("BadDeviceToken").copied(), Some(bad));
            assert_eq!(report.rejected.get("Unregistered").copied(), Some(gone));
            let invalid = std::fs::read_to_string(dir.path().join("invalid.txt")).unwrap();
            assert_eq!(invalid.lines().count() as u64, bad + gone, "invalid tokens: BadDeviceToken and Unregistered");
            pruned = bad + gone;
            continue;
        }
        let program = line.split_whitespace().next().unwrap();
        if program != "apnsblast" && !have(program) {
            eprintln!("skipping (no {program} on this machine): {line}");
            continue;
        }
        let port = gw.as_ref().map(|g: &mock_gateway::Http2Handle| g.addr().port());
        let line = match port {
            Some(port) => line.replace("localhost:2197", &format!("localhost:{port}")),
            None => line,
        };
        run_line(&line, dir.path(), &path);
        ran += 1;
    }
    assert!(ran >= 3, "the session ran");
    // Every device registered before its 410, so the prune leaves the tokens
    // Apple accepted.
    if have("sqlite3") && have("jq") {
        let left = Command::new("sqlite3")
            .args(["devices.db", "SELECT count(*) FROM devices"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&left.stdout).trim(), (20_000 - pruned).to_string());
    }
}
