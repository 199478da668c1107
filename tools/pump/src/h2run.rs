//! `pump --api http2`: the run around [`crate::h2::pump`]: the settings from
//! the command line, one thread per connection, and the report line.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use apnsblast::http2::jwt::ProviderToken;
use apnsblast::http2::key::AuthKey;
use apnsblast::http2::request::{Headers, PushType};
use apnsblast::tls::server_name;
use bytes::Bytes;

use crate::args::Args;
use crate::connect::tls_config;
use crate::frames::default_payload;
use crate::h2::{H2Job, Prebuilt, pump};

/// The HTTP/2 settings from the command line.
fn job(args: &Args) -> Result<H2Job, String> {
    let token = match (&args.auth_key, &args.key_id, &args.team_id) {
        (Some(path), Some(key_id), Some(team_id)) => {
            let key = AuthKey::load(path).map_err(|e| format!("--auth-key: {e}"))?;
            Some(ProviderToken::new(key, key_id, team_id).map_err(|e| format!("--auth-key: {e}"))?)
        }
        _ if args.cert.is_some() => None,
        _ => return Err("--api http2 needs --auth-key (with --key-id and --team-id) or --cert".into()),
    };
    let tls = tls_config(args)?.h2_connector().map_err(|e| format!("TLS setup: {e}"))?;
    let headers =
        Headers::new(args.topic.clone(), PushType::Alert, 10, 0, None).map_err(|e| format!("--topic: {e}"))?;
    let authority = args.gateway.parse().map_err(|e| format!("--gateway {}: {e}", args.gateway))?;
    Ok(H2Job {
        gateway: args.gateway.clone(),
        domain: server_name(&args.gateway).to_owned(),
        connector: tokio_native_tls::TlsConnector::from(tls),
        authority,
        headers,
        token,
        streams: usize::try_from(args.streams).unwrap_or(usize::MAX),
        timeout: Duration::from_secs(args.timeout.max(1)),
    })
}

/// The whole run: set up, pre-build, start every connection at once, and report.
pub(crate) fn run(args: &Args) -> Result<String, String> {
    let job = Arc::new(job(args)?);
    if let (Some(path), Some(token)) = (&args.token_out, &job.token) {
        write_private(path, token.current().authorization())
            .map_err(|e| format!("--token-out {}: {e}", path.display()))?;
        return Ok(format!("{{\"token_out\":{:?}}}", path.display().to_string()));
    }
    let body = Bytes::from(match &args.payload {
        Some(p) => std::fs::read(p).map_err(|e| format!("--payload {}: {e}", p.display()))?,
        None => default_payload(),
    });
    if body.len() > job.headers.payload_limit() {
        return Err(format!("--payload: {} bytes, over the {}-byte limit", body.len(), job.headers.payload_limit()));
    }
    let conns = args.connections;
    let barrier = Arc::new(Barrier::new(conns as usize + 1));
    let workers: Vec<_> = (0..conns)
        .map(|c| {
            let n = args.frames / u64::from(conns) + u64::from(u64::from(c) < args.frames % u64::from(conns));
            let (job, barrier, body) = (Arc::clone(&job), Arc::clone(&barrier), body.clone());
            thread::Builder::new()
                .name(format!("pump-h2-{c}"))
                .spawn(move || {
                    let pre = Prebuilt::new(&job, c, n);
                    let r = pump(&job, &pre, &body, &barrier);
                    // Freeing the pre-built requests is not part of the measurement.
                    (r, pre)
                })
                .map_err(|e| format!("cannot start a thread: {e}"))
        })
        .collect::<Result<_, _>>()?;
    barrier.wait();
    let started = Instant::now();
    let (mut last, mut max_streams_seen) = (started, 0);
    let mut errors = Vec::new();
    let mut buffers = Vec::new();
    for (c, w) in workers.into_iter().enumerate() {
        match w.join() {
            Ok((Ok(done), pre)) => {
                last = last.max(done.at);
                max_streams_seen = max_streams_seen.max(done.max_streams_seen);
                buffers.push(pre);
            }
            Ok((Err(e), _)) => errors.push(format!("connection {c}: {e}")),
            Err(_) => errors.push(format!("connection {c}: panicked")),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let elapsed = (last - started).as_secs_f64();
    Ok(format!(
        "{{\"api\":\"http2\",\"requests\":{},\"connections\":{},\"streams\":{},\"max_streams_seen\":{},\"elapsed_s\":{:.6},\"rate_per_s\":{:.1}}}",
        args.frames,
        conns,
        args.streams,
        max_streams_seen,
        elapsed,
        args.frames as f64 / elapsed,
    ))
}

/// Writes `bytes` to a new file only its owner can read: it holds a credential.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    f.write_all(bytes)
}
