//! `mock-gateway`: run the mock APNs gateway and feedback service, and with
//! `--http2-listen` the HTTP/2 provider API, standalone, for manual runs,
//! scripts and benches. A thin clap wrapper over the library.
//!
//! Prints one JSON line on start (`listen`, `feedback`, `certs_dir`, and
//! `http2_listen`, `key_id`, `team_id`, `topic`, `auth_key`: scripts read the
//! real ports and the token-auth identity from it) and one JSON stats line on
//! SIGINT/SIGTERM or idle exit: the binary gateway's stats, with the HTTP/2
//! gateway's under `"http2"` when it runs. `--http2-listen` without `--listen`
//! runs the HTTP/2 gateway alone (then `--exit-after-idle` does not apply).
//! Bad arguments: one line on stderr naming the flag/file/line, exit code 2.

use std::collections::HashSet;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Parser;
use mock_gateway::{Config, Gateway, H2Chaos, Http2Config, Http2Gateway, Pki, Stats};

/// Mock APNs binary gateway (mutual TLS) with fault injection.
#[derive(Debug, Parser)]
#[command(name = "mock-gateway", version)]
struct Args {
    /// Binary gateway listen address [default: 127.0.0.1:2195, unless
    /// --http2-listen is given alone].
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Feedback service listen address.
    #[arg(long, default_value = "127.0.0.1:2196")]
    feedback_listen: SocketAddr,
    /// Certificates directory (generated when missing, reused when present).
    #[arg(long, default_value = "./mock-certs")]
    certs_dir: PathBuf,
    /// File of bad tokens (hex, one per line; `#` comments and blank lines ignored).
    #[arg(long, value_name = "FILE")]
    bad_tokens: Option<PathBuf>,
    /// Fraction of tokens that are bad (0..=1), chosen by a seeded hash of the token.
    #[arg(long, value_name = "R", default_value_t = 0.0, value_parser = parse_rate)]
    bad_rate: f64,
    /// Seed for --bad-rate.
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,
    /// Keep discarding input this long before writing an error response.
    #[arg(long, value_name = "D", default_value_t = 0)]
    error_delay_ms: u64,
    /// Status 10 (shutdown) after N accepted notifications per connection.
    #[arg(long, value_name = "N")]
    shutdown_after: Option<u64>,
    /// Close silently after N accepted notifications per connection.
    #[arg(long, value_name = "N")]
    close_after: Option<u64>,
    /// Reset (RST) after N accepted notifications per connection.
    #[arg(long, value_name = "N")]
    reset_after: Option<u64>,
    /// Per-connection read-rate limit.
    #[arg(long, value_name = "BYTES_PER_S")]
    read_rate: Option<u64>,
    /// Drop the first K connections before the TLS handshake.
    #[arg(long, value_name = "K", default_value_t = 0)]
    refuse_handshakes: u64,
    /// Reset (RST) right after writing an error response.
    #[arg(long)]
    reset_after_error: bool,
    /// Reset (RST) instead of writing an error response: every response is lost,
    /// so nothing is ever confirmed (a sender's gateway check fails too).
    #[arg(long)]
    lose_error_responses: bool,
    /// Feedback tuples to serve once (lines `timestamp<TAB>hex token`).
    #[arg(long, value_name = "FILE")]
    feedback: Option<PathBuf>,
    /// Write one line per accepted notification: `hex token<TAB>identifier`.
    #[arg(long, value_name = "FILE")]
    delivered_log: Option<PathBuf>,
    /// Exit when no connection has been open for SECS (after the first one).
    #[arg(long, value_name = "SECS")]
    exit_after_idle: Option<u64>,
    /// Per-connection read buffer size.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().read_buffer as u64, value_parser = clap::value_parser!(u64).range(64..))]
    read_buffer: u64,
    /// Payload limit for commands 0/1.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().payload_limit_legacy)]
    payload_limit_legacy: usize,
    /// Payload limit for command 2.
    #[arg(long, value_name = "BYTES", default_value_t = Config::default().payload_limit)]
    payload_limit: usize,
    /// Cap TLS at version 1.2 (like the old Apple gateway).
    #[arg(long)]
    tls12_only: bool,
    /// Also serve Apple's HTTP/2 provider API here (ALPN h2; client
    /// certificate or token auth with the certs dir's AuthKey_<KEYID>.p8).
    #[arg(long, value_name = "ADDR")]
    http2_listen: Option<SocketAddr>,
    /// The app's bundle id: the HTTP/2 topic and the client certificate's.
    #[arg(long, value_name = "BUNDLE_ID", default_value_t = Http2Config::default().topic)]
    topic: String,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS.
    #[arg(long, value_name = "N", default_value_t = Http2Config::default().max_streams)]
    max_streams: u32,
    /// Seconds added to the mock's clock when judging a token's age.
    #[arg(long, value_name = "SECS", default_value_t = 0, allow_hyphen_values = true)]
    clock_offset_secs: i64,
    /// HTTP/2: 429 TooManyProviderTokenUpdates for a connection's token
    /// renewed less than 20 minutes after the last.
    #[arg(long)]
    limit_token_updates: bool,
    /// HTTP/2 with token auth: one stream until a valid-token request is
    /// answered (further streams refused with REFUSED_STREAM).
    #[arg(long)]
    one_stream_start: bool,
    /// HTTP/2: fraction of tokens that are gone (410 Unregistered), by a seeded hash.
    #[arg(long, value_name = "R", default_value_t = 0.0, value_parser = parse_rate)]
    gone_rate: f64,
    /// HTTP/2: fraction of requests answered 429 TooManyRequests.
    #[arg(long, value_name = "R", default_value_t = 0.0, value_parser = parse_rate)]
    rate_429: f64,
    /// HTTP/2: fraction of requests answered 500 InternalServerError.
    #[arg(long, value_name = "R", default_value_t = 0.0, value_parser = parse_rate)]
    rate_500: f64,
    /// HTTP/2: fraction of requests answered 503 ServiceUnavailable.
    #[arg(long, value_name = "R", default_value_t = 0.0, value_parser = parse_rate)]
    rate_503: f64,
    /// HTTP/2: graceful GOAWAY after N requests per connection.
    #[arg(long, value_name = "N")]
    goaway_after: Option<u64>,
    /// HTTP/2: that GOAWAY carries Apple's {"reason":"Shutdown"} in its debug data.
    #[arg(long, requires = "goaway_after")]
    goaway_shutdown: bool,
    /// HTTP/2: TCP close (no GOAWAY) when a request arrives after N were answered.
    #[arg(long, value_name = "N")]
    drop_after: Option<u64>,
    /// HTTP/2: hold each answer this long.
    #[arg(long, value_name = "D", default_value_t = 0)]
    delay_ms: u64,
    /// HTTP/2: seeded random GOAWAYs, drops and delays, drawn per connection.
    #[arg(long, value_name = "SEED")]
    h2_chaos: Option<u64>,
    /// HTTP/2: answer every request (but the gateway check, to the all-zero
    /// token) with this reason of Apple's and its status, e.g. BadTopic
    #[arg(long, value_name = "REASON")]
    reject_all: Option<String>,
    /// HTTP/2: with --reject-all, only the first N requests get it
    #[arg(long, value_name = "N", requires = "reject_all")]
    reject_first: Option<u64>,
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(format!("expected a number from 0 to 1, got {s:?}")),
    }
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args = Args::parse();
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("mock-gateway: {msg}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> Result<(), String> {
    let mut config = Config {
        read_buffer: args.read_buffer as usize,
        payload_limit_legacy: args.payload_limit_legacy,
        payload_limit: args.payload_limit,
        bad_rate: args.bad_rate,
        seed: args.seed,
        error_delay: Duration::from_millis(args.error_delay_ms),
        shutdown_after: args.shutdown_after,
        close_after: args.close_after,
        reset_after: args.reset_after,
        read_rate: args.read_rate,
        refuse_handshakes: args.refuse_handshakes,
        reset_after_error: args.reset_after_error,
        lose_error_responses: args.lose_error_responses,
        delivered_log: args.delivered_log,
        tls12_only: args.tls12_only,
        http2: Http2Config {
            topic: args.topic.clone(),
            max_streams: args.max_streams,
            clock_offset_secs: args.clock_offset_secs,
            limit_token_updates: args.limit_token_updates,
            one_stream_start: args.one_stream_start,
            gone_rate: args.gone_rate,
            rate_429: args.rate_429,
            rate_500: args.rate_500,
            rate_503: args.rate_503,
            goaway_after: args.goaway_after,
            goaway_shutdown: args.goaway_shutdown,
            drop_after: args.drop_after,
            delay: Duration::from_millis(args.delay_ms),
            chaos: args.h2_chaos.map(H2Chaos::new),
            reject_all: args.reject_all,
            reject_first: args.reject_first,
            ..Http2Config::default()
        },
        ..Config::default()
    };
    if let Some(path) = &args.bad_tokens {
        config.bad_tokens = read_bad_tokens(path)?;
    }
    if let Some(path) = &args.feedback {
        config.feedback = read_feedback(path)?;
    }
    let pki = Pki::ensure_for(&args.certs_dir, &args.topic).map_err(|e| format!("--certs-dir: {e}"))?;

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| format!("signal handler: {e}"))?;
    }
    let http2 = args
        .http2_listen
        .map(|a| Http2Gateway::start(&config, &pki, a).map_err(|e| format!("--http2-listen {a}: {e}")))
        .transpose()?;
    let listen = match (args.listen, &http2) {
        (Some(a), _) => Some(a),
        (None, None) => Some(SocketAddr::from(([127, 0, 0, 1], 2195))),
        (None, Some(_)) => None,
    };
    let handle = listen
        .map(|l| {
            Gateway::start(config, &pki, l, Some(args.feedback_listen))
                .map_err(|e| format!("--listen {l} / --feedback-listen {}: {e}", args.feedback_listen))
        })
        .transpose()?;
    let hello = serde_json::json!({
        "listen": handle.as_ref().map(|h| h.addr().to_string()),
        "feedback": handle.as_ref().and_then(|h| h.feedback_addr()).map(|a| a.to_string()),
        "certs_dir": pki.dir.display().to_string(),
        "http2_listen": http2.as_ref().map(|h| h.addr().to_string()),
        "key_id": pki.key_id(),
        "team_id": pki.team_id(),
        "topic": args.topic,
        "auth_key": pki.auth_key_path().display().to_string(),
    });
    println_flush(&hello.to_string());

    let idle_limit = args.exit_after_idle.map(Duration::from_secs);
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if let (Some(limit), Some(since)) = (idle_limit, handle.as_ref().and_then(|h| h.idle_since()))
            && since.elapsed() >= limit
        {
            break;
        }
    }
    let stats = handle.map(|h| h.stop()).unwrap_or_default();
    let mut line = serde_json::to_value(&stats).map_err(|e| e.to_string())?;
    if let Some(h) = http2 {
        let h2: Stats = h.stop();
        line["http2"] = serde_json::to_value(&h2).map_err(|e| e.to_string())?;
    }
    println_flush(&line.to_string());
    Ok(())
}

fn println_flush(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Decode a 32-byte token from hex, ignoring spaces and the `<` `>` iOS prints.
fn parse_token(s: &str) -> Result<[u8; 32], String> {
    let hex: Vec<u8> = s.bytes().filter(|b| !matches!(b, b' ' | b'<' | b'>' | b'\t')).collect();
    if hex.len() != 64 {
        return Err(format!("expected 64 hex digits, got {}", hex.len()));
    }
    let mut t = [0u8; 32];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let digit = |c: u8| (c as char).to_digit(16).ok_or_else(|| format!("not a hex digit: {:?}", c as char));
        t[i] = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Ok(t)
}

/// Meaningful lines of a file with their 1-based numbers (`#` comments, blanks skipped).
fn lines(path: &Path, flag: &str) -> Result<Vec<(usize, String)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .collect())
}

fn read_bad_tokens(path: &Path) -> Result<HashSet<[u8; 32]>, String> {
    lines(path, "--bad-tokens")?
        .into_iter()
        .map(|(n, l)| parse_token(&l).map_err(|e| format!("--bad-tokens {} line {n}: {e}", path.display())))
        .collect()
}

fn read_feedback(path: &Path) -> Result<Vec<(u32, [u8; 32])>, String> {
    lines(path, "--feedback")?
        .into_iter()
        .map(|(n, l)| {
            let bad = |e: String| format!("--feedback {} line {n}: {e}", path.display());
            let (time, token) = l.split_once('\t').ok_or_else(|| bad("expected `timestamp<TAB>hex token`".into()))?;
            let time = time.trim().parse::<u32>().map_err(|e| bad(format!("timestamp: {e}")))?;
            Ok((time, parse_token(token).map_err(bad)?))
        })
        .collect()
}
