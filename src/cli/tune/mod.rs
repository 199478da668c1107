//! `apnsblast tune`: one sample list sent with several settings; a table, a
//! recommended `send` flag set, and optionally an SVG chart and the reports
//! as JSON.
//!
//! Over the binary protocol the trials are every shard count of
//! `--shards-list`, Nagle on and off, pipelined, then strict at one shard
//! count ([`binary`]); over HTTP/2 a grid of connections × streams per
//! connection ([`http2`]). Every trial goes through the path `send` takes
//! ([`execute`](crate::cli::blast::execute)); by default against the
//! bundled mock started as `demo` starts it. Against a user's gateway each
//! trial sends real notifications, so the total is announced and confirmed
//! before anything connects.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;

use apnsblast::input::ReaderOptions;
use apnsblast::run::SendConfig;
use apnsblast::tls::TlsConfig;

use super::demo::BAD_RATE;
use super::http2args::{ApiArg, HTTP2_ONLY, Http2Args};
use super::output::Pending;
use super::send::MessageArgs;
use super::tlsargs::TlsArgs;
use super::{Exit, GatewayArgs, Global, MAX_SHARDS, StyleArg, TuningArgs, defaults, given};
use sample::Sample;

mod binary;
mod chart;
mod grid;
mod http2;
mod sample;
mod table;
mod trials;

/// How the trials are chosen and judged, for `--help`.
fn rule() -> String {
    format!(
        "{}\n\n{}\n\n\
Against the bundled mock (no --gateway, no --sandbox) nothing leaves the machine: fresh certificates (and .p8 \
key), a loopback gateway, generated tokens. With --gateway or --sandbox every trial sends real notifications to \
the devices of the list: tune says how many in all and asks on the terminal, or needs --yes.

--api: the binary protocol against the bundled mock unless --api http2 or an HTTP/2 flag (such as --streams-list \
or --auth-key) is given; against a gateway, as for send (HTTP/2 for Apple's hosts and ports 443 and 2197). The \
flags of the other transport are refused.

Exit status: 0 all trials ran (rejections or not); 1 interrupted; 2 tune could not run.",
        binary::rule(),
        http2::rule()
    )
}

/// Default alert against the mock.
const MOCK_ALERT: &str = "apnsblast tune";

/// Shard counts tried over the binary protocol unless `--shards-list` is given.
const BINARY_SHARDS: [usize; 5] = [1, 2, 4, 8, 16];
/// Connections tried over HTTP/2 unless `--shards-list` is given.
const HTTP2_SHARDS: [usize; 4] = [1, 2, 4, 8];

/// `tune`'s own flags that only one transport's trials take, by clap id and as typed.
const BINARY_TRIALS_ONLY: [(&str, &str); 1] = [("strict_sample", "--strict-sample")];
/// See [`BINARY_TRIALS_ONLY`].
const HTTP2_TRIALS_ONLY: [(&str, &str); 1] = [("streams_list", "--streams-list")];

/// `apnsblast tune`.
#[derive(Debug, Args)]
#[command(after_help = rule())]
// The trials set these four; `check` refuses them if given.
#[command(mut_arg("shards", |a| a.hide(true)), mut_arg("nodelay", |a| a.hide(true)))]
#[command(mut_arg("style", |a| a.hide(true)), mut_arg("streams", |a| a.hide(true)))]
#[command(mut_arg("api", |a| {
    a.help("Transport to tune. Default: binary against the bundled mock unless an HTTP/2 flag is given; \
            against a gateway, as for send")
}))]
#[command(mut_arg("gateway", |a| {
    a.help("Tune against this gateway (HOST:PORT) instead of the bundled mock: sends real notifications")
}))]
#[command(mut_arg("sandbox", |a| a.help("Tune against Apple's sandbox gateway: sends real notifications")))]
// TlsArgs requires --cert; here the whole group is optional (the mock needs none of it).
#[command(mut_arg("cert", |a| a.required(false)))]
pub struct TuneArgs {
    /// Token list to take the sample from (one token per line, or NDJSON as
    /// for send); - reads stdin. Default: generated tokens
    #[arg(long, value_name = "FILE|-", help_heading = "Sample")]
    pub tokens: Option<PathBuf>,
    /// Lines of --tokens (or generated tokens) each pipelined trial (each HTTP/2 trial) sends
    #[arg(long, value_name = "N", default_value_t = 100_000, help_heading = "Sample")]
    pub sample: u64,
    /// Lines each strict trial sends (capped at --sample); 0 skips the strict trials. Binary only
    #[arg(long, value_name = "N", default_value_t = 10_000, help_heading = "Sample")]
    pub strict_sample: u64,
    /// Fraction of tokens the bundled mock rejects as invalid (binary: status 8; HTTP/2:
    /// BadDeviceToken), as in demo
    #[arg(long, value_name = "R", default_value_t = BAD_RATE, help_heading = "Sample")]
    #[arg(conflicts_with_all = ["gateway", "sandbox"])]
    pub bad_rate: f64,
    /// Seed of the generated tokens and of the mock's choice of invalid ones
    #[arg(long, value_name = "S", default_value_t = 1, help_heading = "Sample")]
    pub seed: u64,
    /// Shard counts (connections in parallel) to try, comma-separated [default:
    /// 1,2,4,8,16; with --api http2: 1,2,4,8]
    #[arg(long, value_name = "N,..", value_delimiter = ',', help_heading = "Trials")]
    pub shards_list: Option<Vec<usize>>,
    /// Streams per connection to try over HTTP/2, comma-separated: every
    /// shard count with each
    #[arg(long, value_name = "N,..", value_delimiter = ',', default_value = "100,500,1000", help_heading = "Trials")]
    pub streams_list: Vec<usize>,
    /// Send real notifications without asking (with --gateway or --sandbox)
    #[arg(long, help_heading = "Trials")]
    pub yes: bool,
    /// Write an SVG chart of notifications/s against shard count (one line
    /// per Nagle setting; over HTTP/2 one per --streams-list count) to FILE
    #[arg(long, value_name = "FILE", help_heading = "Output files")]
    pub chart: Option<PathBuf>,
    /// Write the table as JSON to FILE: one row per trial, with its full report
    #[arg(long, value_name = "FILE", help_heading = "Output files")]
    pub report: Option<PathBuf>,
    #[command(flatten)]
    pub message: MessageArgs,
    #[command(flatten, next_help_heading = "TLS (with --gateway or --sandbox)")]
    pub tls: Option<TlsArgs>,
    #[command(flatten, next_help_heading = "Gateway")]
    pub gateway: GatewayArgs,
    #[command(flatten, next_help_heading = "HTTP/2")]
    pub http2: Http2Args,
    #[command(flatten, next_help_heading = "Sending (every trial)")]
    pub tuning: TuningArgs,
}

/// What both transports' trials start from, checked before anything connects.
struct Setup<'a> {
    args: &'a TuneArgs,
    /// Against a gateway of the user's (`--gateway`, `--sandbox`), not the bundled mock.
    real: bool,
    /// The shard counts to try, sorted, without repeats.
    shards: Vec<usize>,
    /// What every trial sends.
    sample: Sample,
    /// How the sample is read.
    options: ReaderOptions,
    /// The shared payload, validated for the transport.
    payload: Vec<u8>,
    /// `--report`, created (and not yet in place).
    report: Option<Pending>,
    /// `--chart`, likewise.
    chart: Option<Pending>,
    global: &'a Global,
}

impl Setup<'_> {
    /// The settings every trial shares, to `gateway` over `tls`.
    fn base(&self, gateway: &str, tls: TlsConfig) -> anyhow::Result<SendConfig> {
        let mut base = SendConfig::new(gateway.to_owned(), tls, self.payload.as_slice());
        base.expiry = self.args.message.expiry()?;
        self.args.tuning.apply(&mut base)?;
        Ok(base)
    }
}

/// Runs `tune`.
///
/// # Errors
/// Bad options, an unreadable list or certificate, no confirmation, the
/// mock or a trial could not start (exit status 2).
pub fn run(mut args: TuneArgs, global: &Global) -> anyhow::Result<Exit> {
    let real = args.gateway.gateway.is_some() || args.gateway.sandbox;
    let api = api(&args, real);
    Http2Args::check_flags(api)?;
    let (others, ours) = match api {
        ApiArg::Binary => (&HTTP2_TRIALS_ONLY, "binary"),
        ApiArg::Http2 => (&BINARY_TRIALS_ONLY, "HTTP/2"),
    };
    if let Some((_, flag)) = others.iter().find(|(id, _)| given(id)) {
        bail!("{flag}: not a setting of the {ours} trials this run makes (see --api)");
    }
    let shards = check(&args, real, api)?;
    if !real && args.message.payload.is_none() && args.message.alert.is_none() {
        args.message.alert = Some(MOCK_ALERT.to_owned());
    }
    // The transport's settings (the .p8 key, the ids, the headers) before any of the list is read.
    let (payload, payload_limit, http2) = match api {
        ApiArg::Binary => (args.message.payload()?, args.message.command().payload_limit(), None),
        ApiArg::Http2 => {
            let limit = args.http2.payload_limit();
            let config = args.http2.config(args.message.http2_priority())?;
            (args.message.payload_within(limit, "HTTP/2")?, limit, Some(config))
        }
    };
    let options = ReaderOptions { payload_limit, ..ReaderOptions::default() };
    let strict_n = if api == ApiArg::Binary { args.strict_sample.min(args.sample) } else { 0 };
    let sample = match &args.tokens {
        Some(path) => sample::load(path, args.sample, strict_n, &options)?,
        None => Sample::Generated { count: args.sample, strict: strict_n, seed: args.seed },
    };
    let report = args.report.as_deref().map(|p| Pending::create("--report", p)).transpose()?;
    let chart = args.chart.as_deref().map(|p| Pending::create("--chart", p)).transpose()?;
    let setup = Setup { args: &args, real, shards, sample, options, payload, report, chart, global };
    match http2 {
        None => binary::run(setup),
        Some(config) => http2::run(setup, config),
    }
}

/// The transport: `--api`; else HTTP/2 when one of its flags is given; else
/// binary against the bundled mock (as before HTTP/2 was tuned), and against
/// a gateway what `send` would use there.
fn api(args: &TuneArgs, real: bool) -> ApiArg {
    if args.http2.api.is_none() && HTTP2_TRIALS_ONLY.iter().any(|(id, _)| given(id)) {
        return ApiArg::Http2;
    }
    if !real && args.http2.api.is_none() && !HTTP2_ONLY.iter().any(|(id, _)| given(id)) {
        return ApiArg::Binary;
    }
    args.http2.api(args.gateway.gateway.as_deref())
}

/// Checks the options that need no file or network; returns the shard
/// counts, sorted and without repeats.
fn check(args: &TuneArgs, real: bool, api: ApiArg) -> anyhow::Result<Vec<usize>> {
    if args.tuning.shards != defaults().shards {
        bail!("--shards: tune tries every count of --shards-list");
    }
    if args.tuning.nodelay || args.tuning.style != StyleArg::Pipelined {
        bail!("--nodelay and --style: tune tries Nagle on and off and both styles");
    }
    if given("streams") {
        bail!("--streams: tune tries every count of --streams-list");
    }
    let default_shards = if api == ApiArg::Http2 { &HTTP2_SHARDS[..] } else { &BINARY_SHARDS[..] };
    let shards = counts("--shards-list", args.shards_list.as_deref().unwrap_or(default_shards))?;
    if let Some(bad) = shards.iter().find(|&&s| s > MAX_SHARDS) {
        bail!("--shards-list: {bad}: each count must be 1 to {MAX_SHARDS}");
    }
    if api == ApiArg::Http2 {
        counts("--streams-list", &args.streams_list)?;
    }
    if args.sample == 0 {
        bail!("--sample: must be at least 1");
    }
    if !(0.0..=1.0).contains(&args.bad_rate) {
        bail!("--bad-rate {}: must be between 0 and 1", args.bad_rate);
    }
    if real && args.message.payload.is_none() && args.message.alert.is_none() {
        bail!(
            "against a real gateway give the message with --alert TEXT or --payload FILE: every device of the \
             sample receives it"
        );
    }
    let mocks_own = [
        (args.tls.is_some(), "--cert and the other TLS options"),
        (args.http2.auth_key.is_some(), "--auth-key"),
        (args.http2.topic.is_some(), "--topic"),
    ];
    if let (false, Some((_, flags))) = (real, mocks_own.iter().find(|(given, _)| *given)) {
        bail!(
            "{flags}: only with --gateway or --sandbox (the bundled mock makes its own certificates and key, and \
             serves its own topic)"
        );
    }
    Ok(shards)
}

/// `list` sorted, without repeats; none may be 0 and there must be one.
fn counts(flag: &str, list: &[usize]) -> anyhow::Result<Vec<usize>> {
    let mut list = list.to_vec();
    list.sort_unstable();
    list.dedup();
    match list.first() {
        None => bail!("{flag}: give at least one count"),
        Some(0) => bail!("{flag}: 0: each count must be at least 1"),
        Some(_) => Ok(list),
    }
}
