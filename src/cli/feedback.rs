//! `apnsblast feedback`: read the feedback service and write
//! `timestamp<TAB>token` lines.
//!
//! The service hands its list out once, so the output file is made ready
//! before connecting, and if it cannot be written after all, the tuples go
//! to stderr rather than being lost.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

use apnsblast::feedback::FeedbackTuple;
use apnsblast::feedback_client;

use super::http2args::{ApiArg, is_http2_gateway};
use super::tlsargs::TlsArgs;
use super::{Exit, GatewayArgs, Global, Secs, Service};

/// `apnsblast feedback`.
#[derive(Debug, Args)]
pub struct FeedbackArgs {
    /// Write the lines to FILE instead of stdout
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Seconds allowed for connecting, and for each wait for data
    #[arg(long, value_name = "SECS", default_value_t = Secs(std::time::Duration::from_secs(30)))]
    pub timeout: Secs,
    #[command(flatten, next_help_heading = "TLS")]
    pub tls: TlsArgs,
    /// The feedback service: Apple's (production, or sandbox with
    /// --sandbox), or the one --gateway names.
    #[command(flatten, next_help_heading = "Service")]
    pub gateway: GatewayArgs,
    /// Transport: the feedback service is the binary protocol's; over
    /// HTTP/2 there is none (410 Unregistered answers to `send` replace it)
    #[arg(long, value_enum, default_value_t = ApiArg::Binary, help_heading = "Service")]
    pub api: ApiArg,
}

/// Why `feedback` has nothing to do over HTTP/2, in one line.
const NO_HTTP2_FEEDBACK: &str = "feedback: Apple's HTTP/2 provider API has no feedback service; its 410 \
                                 Unregistered answers replace it: `send --api http2 --invalid-tokens FILE` lists \
                                 those tokens (and BadDeviceToken ones), `--failed FILE` gives each its \
                                 unregistered_at";

/// Runs `feedback`.
///
/// # Errors
/// The certificate, the output file or the service failed.
pub fn run(args: FeedbackArgs, global: &Global) -> anyhow::Result<Exit> {
    if args.api == ApiArg::Http2 || args.gateway.gateway.as_deref().is_some_and(is_http2_gateway) {
        bail!(NO_HTTP2_FEEDBACK);
    }
    let gateway = args.gateway.resolve(Service::Feedback)?;
    let out = match &args.out {
        Some(path) => Some(File::create(path).with_context(|| format!("--out {}: cannot create", path.display()))?),
        None => None,
    };
    let tls = args.tls.load()?;
    let tuples = feedback_client::fetch(&gateway, &tls, args.timeout.0).map_err(|e| args.gateway.hint(e.into()))?;
    let written = match out {
        Some(file) => write_lines(BufWriter::new(file), &tuples),
        None => write_lines(BufWriter::new(io::stdout().lock()), &tuples),
    };
    if let Err(e) = written {
        // The service has forgotten these: do not lose them.
        let mut err = io::stderr().lock();
        let _ = write_lines(&mut err, &tuples);
        let target = args.out.as_ref().map_or("stdout".to_owned(), |p| format!("--out {}", p.display()));
        return Err(anyhow::Error::new(e)
            .context(format!("{target}: write failed; the {} tuples were printed to stderr instead", tuples.len())));
    }
    if !global.quiet {
        let target = args.out.as_ref().map_or("stdout".to_owned(), |p| p.display().to_string());
        eprintln!("apnsblast: {} tokens from {gateway} written to {target}", tuples.len());
    }
    Ok(Exit::Success)
}

fn write_lines(mut w: impl Write, tuples: &[FeedbackTuple]) -> io::Result<()> {
    for t in tuples {
        writeln!(w, "{}\t{}", t.time, t.token)?;
    }
    w.flush()
}
