//! `apnsblast tune`, the built binary, over both transports: against its own
//! bundled mock (table, recommendation, chart, JSON report), and against a
//! gateway given with --gateway (an in-process mock), where it must not send
//! without --yes; the flags of the other transport refused by name.

mod common;

use std::path::Path;

use common::{gateway, list, pki, run, tokens};
use mock_gateway::{Config, Http2Gateway};
use serde_json::Value;

fn path(p: &Path) -> String {
    p.display().to_string()
}

/// The table rows of `tune`'s output: (shards, nodelay, style).
fn table_rows(stdout: &str) -> Vec<(usize, bool, String)> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let shards = cols.next()?.parse().ok()?;
            let nodelay = cols.next()? == "yes";
            let style = cols.next()?.trim_end_matches('*').to_owned();
            Some((shards, nodelay, style))
        })
        .collect()
}

/// The setting the `recommended:` line names, as (shards, nodelay, style).
fn recommendation(stdout: &str) -> (usize, bool, String) {
    let line = stdout.lines().find(|l| l.starts_with("recommended: ")).expect("a recommendation line");
    let flags = line.strip_prefix("recommended: apnsblast send ").expect("ready-to-paste send flags");
    let words: Vec<&str> = flags.split_whitespace().collect();
    let shards = words.windows(2).find(|w| w[0] == "--shards").expect("--shards")[1].parse().expect("a count");
    let style = words.windows(2).find(|w| w[0] == "--style").map_or("pipelined", |w| w[1]).to_owned();
    (shards, words.contains(&"--nodelay"), style)
}

fn read_rows(p: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(p).expect("--report written");
    serde_json::from_str::<Value>(&text).expect("--report is JSON").as_array().expect("an array of rows").clone()
}

/// accepted + rejected of a row's full report.
fn settled(row: &Value) -> u64 {
    let report = &row["report"];
    let by_status = report["rejected"].as_object().expect("rejected by status");
    let rejected: u64 = by_status.values().map(|n| n.as_u64().expect("a count")).sum();
    report["accepted"].as_u64().expect("accepted") + rejected
}

#[test]
fn tune_against_the_bundled_mock_tables_recommends_charts_and_reports() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (svg, json) = (dir.path().join("out.svg"), dir.path().join("out.json"));
    let (svg_arg, json_arg) = (path(&svg), path(&json));
    let r =
        run(&["tune", "--sample", "5000", "--shards-list", "1,2", "--chart", &svg_arg, "--report", &json_arg], None);
    assert_eq!(r.code, 0, "{r:#?}");

    let rows = table_rows(&r.stdout);
    let mut expected = Vec::new();
    for shards in [1, 2] {
        for nodelay in [false, true] {
            expected.push((shards, nodelay, "pipelined".to_owned()));
        }
    }
    expected.extend([false, true].map(|nodelay| (1, nodelay, "strict".to_owned())));
    assert_eq!(rows, expected, "every combination in the table:\n{}", r.stdout);
    assert!(r.stdout.contains("strict (a read after every notification) is slow"), "{}", r.stdout);
    let best = recommendation(&r.stdout);
    assert!(rows.contains(&best), "recommended {best:?} is not one of the trials:\n{}", r.stdout);

    let chart = std::fs::read_to_string(&svg).expect("--chart written");
    assert!(chart.starts_with("<svg") || chart.starts_with("<?xml"), "{}", &chart[..chart.len().min(200)]);
    assert!(chart.contains("<polyline") || chart.contains("<path"), "no line in the chart");

    let report = read_rows(&json);
    assert_eq!(report.len(), expected.len(), "one JSON row per trial");
    for (row, (shards, nodelay, style)) in report.iter().zip(&expected) {
        assert_eq!(row["shards"].as_u64(), Some(*shards as u64));
        assert_eq!(row["nodelay"].as_bool(), Some(*nodelay));
        assert_eq!(row["style"].as_str(), Some(style.as_str()));
        assert_eq!(row["sample"].as_u64(), Some(5000), "{row}");
        assert_eq!(settled(row), 5000, "accepted + rejected == sample: {row}");
    }
    assert_eq!(report.iter().filter(|row| row["recommended"] == true).count(), 1);
}

#[test]
fn tune_against_a_given_gateway_sends_only_when_confirmed() {
    let gw = gateway(Config::default());
    let p = pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let list_path = dir.path().join("tokens.txt");
    std::fs::write(&list_path, list(&tokens(1000, 7))).expect("token list");
    let json = dir.path().join("out.json");
    let (addr, cert, ca, tokens_arg) =
        (format!("127.0.0.1:{}", gw.addr().port()), path(p.client_p12_path()), path(&p.ca_path()), path(&list_path));
    let base = [
        "tune",
        "--gateway",
        &addr,
        "--cert",
        &cert,
        "--ca",
        &ca,
        "--alert",
        "hi",
        "--tokens",
        &tokens_arg,
        "--sample",
        "1000",
        "--strict-sample",
        "300",
        "--shards-list",
        "1",
        "--max-backoff",
        "0.2",
        "--careful-frames",
        "100",
    ];

    let refused = run(&base, None);
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(refused.stderr.contains("real notifications"), "{}", refused.stderr);
    assert!(refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert!(refused.stderr.contains("2,600"), "the total (2 x 1000 + 2 x 300) is announced: {}", refused.stderr);
    let before = gw.stats();
    assert_eq!(before.connections + before.handshakes_failed, 0, "nothing may connect unconfirmed: {before:?}");

    let mut confirmed = base.to_vec();
    confirmed.extend(["--yes", "--report", json.to_str().expect("utf-8 path")]);
    let r = run(&confirmed, None);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stderr.contains("real notifications"), "the warning is printed with --yes too: {}", r.stderr);
    let recommended = r.stdout.lines().find(|l| l.starts_with("recommended: ")).expect("a recommendation");
    assert!(recommended.contains(" --careful-frames 100"), "settings off their defaults are repeated: {recommended}");
    let rows = read_rows(&json);
    assert_eq!(rows.len(), 4, "Nagle on/off, pipelined and strict, at 1 shard");
    for row in &rows {
        let n = if row["style"] == "strict" { 300 } else { 1000 };
        assert_eq!(row["sample"].as_u64(), Some(n), "{row}");
        assert_eq!(settled(row), n, "{row}");
    }
    let stats = gw.stop();
    assert_eq!(stats.accepted, 2 * 1000 + 2 * 300, "{stats:?}");
}

/// The HTTP/2 table's rows: (shards, streams, notifications/s).
fn grid_rows(stdout: &str) -> Vec<(usize, usize, f64)> {
    stdout
        .lines()
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let shards = cols.next()?.parse().ok()?;
            let streams = cols.next()?.parse().ok()?;
            let rate = cols.next()?.replace(',', "").parse().ok()?;
            Some((shards, streams, rate))
        })
        .collect()
}

/// The (shards, streams) the `recommended:` line names.
fn grid_recommendation(stdout: &str) -> (usize, usize) {
    let line = stdout.lines().find(|l| l.starts_with("recommended: ")).expect("a recommendation line");
    let flags = line.strip_prefix("recommended: apnsblast send --api http2 ").expect("ready-to-paste send flags");
    let words: Vec<&str> = flags.split_whitespace().collect();
    let value = |flag: &str| -> usize {
        words.windows(2).find(|w| w[0] == flag).unwrap_or_else(|| panic!("{flag} in {line}"))[1]
            .parse()
            .expect("a count")
    };
    (value("--shards"), value("--streams"))
}

/// Checks what an HTTP/2 tune of the grid shards × streams printed and wrote:
/// every point in the table with a rate, a recommendation among them, the
/// chart with one line per streams count, one JSON row per point, each
/// settling the whole sample of `sample` tokens.
fn assert_grid(stdout: &str, svg: &Path, json: &Path, sample: u64) {
    let grid: Vec<(usize, usize)> = [1, 2].into_iter().flat_map(|c| [10, 100].map(|n| (c, n))).collect();
    let rows = grid_rows(stdout);
    assert_eq!(rows.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(), grid, "every grid point:\n{stdout}");
    assert!(rows.iter().all(|r| r.2 > 0.0), "every point has a rate:\n{stdout}");
    let best = grid_recommendation(stdout);
    assert!(grid.contains(&best), "recommended {best:?} is not a grid point:\n{stdout}");

    let chart = std::fs::read_to_string(svg).expect("--chart written");
    assert!(chart.starts_with("<svg") || chart.starts_with("<?xml"), "{}", &chart[..chart.len().min(200)]);
    for label in ["--streams 10", "--streams 100"] {
        assert!(chart.lines().any(|l| l.trim() == label), "the legend names each streams count: {label}");
    }

    let report = read_rows(json);
    assert_eq!(report.len(), grid.len(), "one JSON row per grid point");
    for (row, (shards, streams)) in report.iter().zip(&grid) {
        assert_eq!((row["shards"].as_u64(), row["streams"].as_u64()), (Some(*shards as u64), Some(*streams as u64)));
        assert_eq!(row["sample"].as_u64(), Some(sample), "{row}");
        assert_eq!(settled(row), sample, "accepted + rejected == sample: {row}");
        assert_eq!(row["recommended"] == true, (*shards, *streams) == best, "{row}");
    }
}

#[test]
fn tune_over_http2_against_the_bundled_mock_runs_the_grid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (svg, json) = (dir.path().join("h2.svg"), dir.path().join("h2.json"));
    let (svg_arg, json_arg) = (path(&svg), path(&json));
    let grid = ["--shards-list", "1,2", "--streams-list", "10,100", "--chart", &svg_arg, "--report", &json_arg];
    let mut a = vec!["tune", "--api", "http2", "--sample", "2000", "--bad-rate", "0.01"];
    a.extend(grid);
    let r = run(&a, None);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stderr.contains("over HTTP/2 against the bundled HTTP/2 mock"), "{}", r.stderr);
    assert_grid(&r.stdout, &svg, &json, 2000);
    let rejected: Vec<Value> = read_rows(&json).iter().map(|row| row["report"]["rejected"].clone()).collect();
    assert!(rejected.iter().all(|r| r["BadDeviceToken"].as_u64() > Some(0)), "the mock's invalid tokens: {rejected:?}");
}

#[test]
fn tune_over_http2_against_a_given_gateway_sends_only_when_confirmed() {
    let _ = env_logger::builder().is_test(true).try_init();
    let config = Config { bad_rate: 0.01, seed: 3, ..Config::default() };
    let gw = Http2Gateway::start(&config, pki(), "127.0.0.1:0".parse().unwrap()).expect("HTTP/2 mock starts");
    let p = pki();
    let dir = tempfile::tempdir().expect("tempdir");
    let toks = tokens(500, 9);
    let bad = toks.iter().filter(|t| config.is_bad(&t.0)).count() as u64;
    let list_path = dir.path().join("tokens.txt");
    std::fs::write(&list_path, list(&toks)).expect("token list");
    let (svg, json) = (dir.path().join("h2.svg"), dir.path().join("h2.json"));
    let (addr, key, ca, tokens_arg) =
        (format!("127.0.0.1:{}", gw.addr().port()), path(&p.auth_key_path()), path(&p.ca_path()), path(&list_path));
    let base = [
        "tune",
        "--api",
        "http2",
        "--gateway",
        &addr,
        "--auth-key",
        &key,
        "--team-id",
        p.team_id(),
        "--topic",
        p.bundle_id(),
        "--ca",
        &ca,
        "--alert",
        "hi",
        "--tokens",
        &tokens_arg,
        "--sample",
        "500",
        "--shards-list",
        "1,2",
        "--streams-list",
        "10,100",
        "--max-backoff",
        "0.2",
    ];

    let refused = run(&base, None);
    assert_eq!(refused.code, 2, "{refused:#?}");
    assert!(refused.stderr.contains("real notifications") && refused.stderr.contains("--yes"), "{}", refused.stderr);
    assert!(refused.stderr.contains("2,000"), "the total (4 trials x 500) is announced: {}", refused.stderr);
    assert!(refused.stderr.contains("--collapse-id ID the repeats replace each other"), "{}", refused.stderr);
    let before = gw.stats();
    assert_eq!((before.connections, before.requests_received), (0, 0), "nothing may connect unconfirmed: {before:?}");

    let mut confirmed = base.to_vec();
    let (svg_arg, json_arg) = (path(&svg), path(&json));
    confirmed.extend(["--yes", "--chart", &svg_arg, "--report", &json_arg]);
    let r = run(&confirmed, None);
    assert_eq!(r.code, 0, "{r:#?}");
    assert!(r.stderr.contains("real notifications"), "the warning is printed with --yes too: {}", r.stderr);
    assert_grid(&r.stdout, &svg, &json, 500);
    let stats = gw.stop();
    assert_eq!(stats.accepted, 4 * (500 - bad), "{stats:?}");
    assert_eq!(stats.rejected_for("BadDeviceToken"), 4 * bad, "{stats:?}");
    assert!(stats.max_concurrent_streams_seen <= 100, "the largest --streams-list count caps the streams: {stats:?}");
}

#[test]
fn the_other_transports_flags_are_refused_by_name() {
    let cases: [(&[&str], &str); 7] = [
        (&["--api", "http2", "--nodelay"], "--nodelay"),
        (&["--api", "http2", "--window-bytes", "1M"], "--window-bytes"),
        (&["--api", "http2", "--strict-sample", "10"], "--strict-sample"),
        // --streams-list means HTTP/2 unless --api says otherwise.
        (&["--streams-list", "10", "--careful-frames", "5"], "--careful-frames"),
        (&["--api", "binary", "--streams-list", "10"], "--streams-list"),
        (&["--api", "binary", "--push-type", "background"], "--push-type"),
        (&["--api", "http2", "--streams", "10"], "--streams-list"),
    ];
    for (flags, named) in cases {
        let mut a = vec!["tune", "--sample", "10"];
        a.extend(flags);
        let r = run(&a, None);
        assert_eq!(r.code, 2, "{flags:?}: {r:#?}");
        let error = r.stderr.lines().find(|l| l.starts_with("apnsblast: error: ")).unwrap_or_else(|| panic!("{r:#?}"));
        assert!(error.contains(named), "{flags:?}: {error}");
        assert!(r.stdout.is_empty() && !r.stderr.contains("apnsblast tune:"), "{flags:?}: nothing ran: {r:#?}");
    }
}
