//! `pump`: the ceiling `tools/bench` compares `apnsblast send` against.
//!
//! Pushes pre-encoded command-2 frames (a 100-byte JSON payload gives 161-byte
//! frames, one distinct token each) through the same TLS client setup as the
//! sender: `apnsblast::tls::TlsConfig::connector()`, a non-blocking
//! `mio::net::TcpStream`, writes of 64 KiB until `WouldBlock`, a poll, and a
//! retry of the same bytes. Nothing else: no list to read, no accounting, no
//! resend window. Frames are encoded before the clock starts.
//!
//! Each connection ends with one sentinel frame (no device token, so the
//! gateway must reject it) and waits for its error response: the gateway has
//! then processed every frame before it, and the clock stops when the last
//! connection has its answer (the rule the sender uses to confirm).
//!
//! With `--reject-every K`, every K-th frame of a connection has no device
//! token, so the gateway rejects it and closes; the pump writes up to and
//! including that frame, waits for its rejection, and carries on from the next
//! frame over a new connection. That is a sender that knows in advance which
//! notifications will be rejected: nothing is resent, and each rejection costs
//! exactly one round trip and one new TLS handshake. Its rate is the ceiling
//! for a list with that share of invalid tokens.
//!
//! Prints one JSON line on stdout:
//! `{"frames":…,"connections":…,"nodelay":…,"frame_bytes":…,"bytes":…,"rejected":…,"reconnects":…,"elapsed_s":…,"rate_per_s":…,"mb_per_s":…}`.
//! Exit status 0 on success, 1 when a connection failed or the gateway
//! answered anything but the sentinel's rejection, 2 for bad arguments.
//!
//! ```text
//! pump --gateway 127.0.0.1:PORT --cert certs/client.p12 --ca certs/ca.pem --frames 1000000
//! ```
//!
//! With `--api http2` it sends pre-built HTTP/2 requests instead (see `h2`),
//! and its line reads
//! `{"api":"http2","requests":…,"connections":…,"streams":…,"max_streams_seen":…,"elapsed_s":…,"rate_per_s":…}`.

mod args;
mod connect;
mod frames;
mod h2;
mod h2run;
mod pump;

use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Instant;

use apnsblast::frame::Command;
use clap::Parser;

use crate::args::{Api, Args};
use crate::connect::Job;
use crate::frames::{SENTINEL_LEN, default_payload, encode};
use crate::pump::pump;

/// The whole run: set up, encode, start every connection at once, and report.
fn run(args: Args) -> Result<String, String> {
    let job = Arc::new(Job::new(&args)?);
    let payload = match &args.payload {
        Some(p) => std::fs::read(p).map_err(|e| format!("--payload {}: {e}", p.display()))?,
        None => default_payload(),
    };
    let limit = Command::Items.payload_limit();
    if payload.len() > limit {
        return Err(format!("--payload: {} bytes, over the {limit}-byte limit", payload.len()));
    }
    if args.frames >= u64::from(u32::MAX) {
        return Err("--frames: must be below 2^32".into());
    }
    let conns = args.connections;
    let reject_every = args.reject_every;
    let barrier = Arc::new(Barrier::new(conns as usize + 1));
    let workers: Vec<_> = (0..conns)
        .map(|c| {
            let n = args.frames / u64::from(conns) + u64::from(u64::from(c) < args.frames % u64::from(conns));
            let (job, barrier, payload) = (Arc::clone(&job), Arc::clone(&barrier), payload.clone());
            thread::Builder::new()
                .name(format!("pump-{c}"))
                .spawn(move || {
                    let frames = encode(c, n, &payload, reject_every);
                    let r = pump(&job, &frames, &barrier);
                    // Freeing 100+ MB is not part of the measurement.
                    (r, frames)
                })
                .map_err(|e| format!("cannot start a thread: {e}"))
        })
        .collect::<Result<_, _>>()?;
    barrier.wait();
    let started = Instant::now();
    let mut last = started;
    let mut errors = Vec::new();
    let mut buffers = Vec::new();
    let (mut reconnects, mut bytes) = (0, 0);
    for (c, w) in workers.into_iter().enumerate() {
        match w.join() {
            Ok((Ok((done, again)), frames)) => {
                last = last.max(done);
                reconnects += again;
                // Every byte written but the closing sentinel's.
                bytes += (frames.bytes.len() - SENTINEL_LEN) as u64;
                buffers.push(frames);
            }
            Ok((Err(e), _)) => errors.push(format!("connection {c}: {e}")),
            Err(_) => errors.push(format!("connection {c}: panicked")),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let elapsed = (last - started).as_secs_f64();
    let frame_bytes = Command::Items.frame_len(payload.len());
    Ok(format!(
        "{{\"frames\":{},\"connections\":{},\"nodelay\":{},\"frame_bytes\":{},\"bytes\":{},\"rejected\":{},\"reconnects\":{},\"elapsed_s\":{:.6},\"rate_per_s\":{:.1},\"mb_per_s\":{:.1}}}",
        args.frames,
        conns,
        args.nodelay,
        frame_bytes,
        bytes,
        reconnects,
        reconnects,
        elapsed,
        args.frames as f64 / elapsed,
        bytes as f64 / elapsed / 1e6,
    ))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.api {
        Api::Binary => run(args),
        Api::Http2 => h2run::run(&args),
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pump: {e}");
            ExitCode::FAILURE
        }
    }
}
