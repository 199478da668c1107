//! `apnsblast send`: arguments, their validation into a [`Job`], the run.
//!
//! Everything that can be checked without the network is checked first, in
//! the order a user would fix it: the message, the token list, the output
//! files, the certificate. Only then is the gateway contacted.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use apnsblast::frame::{Command, Priority};
use apnsblast::http2::config::Http2Config;
use apnsblast::input::{MAX_FILTER_BYTES, Partition, ReaderOptions};
use apnsblast::journal::{self, LineSet};
use apnsblast::payload;
use apnsblast::run::SendConfig;

use super::blast::{self, Job};
use super::http2args::{ApiArg, Http2Args, topic_from_certificate};
use super::output::Outputs;
use super::tlsargs::TlsArgs;
use super::{Exit, GatewayArgs, Global, OutputArgs, Service, TuningArgs, parse_partition, read_small, tokens};

/// Expiry values at least this large are taken as absolute UNIX times.
const ABSOLUTE_EXPIRY: u64 = 1_000_000_000;

/// `apnsblast send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// Token list: one hex token per line (blank lines and # comments
    /// ignored) or NDJSON lines {"token": "...", "payload": {...}}, where an
    /// HTTP/2 run also takes "topic", "push_type" and "collapse_id" per line
    /// (each replaces the run's for that line; over the binary protocol such
    /// a line is skipped); - reads stdin
    #[arg(long, value_name = "FILE|-", help_heading = "Input")]
    pub tokens: PathBuf,
    #[command(flatten)]
    pub message: MessageArgs,
    #[command(flatten, next_help_heading = "TLS")]
    pub tls: TlsArgs,
    #[command(flatten, next_help_heading = "Gateway")]
    pub gateway: GatewayArgs,
    #[command(flatten, next_help_heading = "HTTP/2")]
    pub http2: Http2Args,
    #[command(flatten, next_help_heading = "Sending")]
    pub tuning: TuningArgs,
    #[command(flatten, next_help_heading = "Output files")]
    pub outputs: OutputArgs,
    /// Send only partition K of N of the list (0-based K; every token falls in
    /// exactly one partition, the same on every machine); merge the reports
    /// with `apnsblast merge`
    #[arg(long, value_name = "K/N", value_parser = parse_partition, help_heading = "Input")]
    pub partition: Option<Partition>,
    #[arg(long, help_heading = "Input")]
    #[arg(help = format!(
        "Send repeated tokens again instead of skipping them (skipping them keeps a filter of up to {} MiB in \
         memory and 8 bytes per token in a temporary file under $TMPDIR)",
        MAX_FILTER_BYTES >> 20
    ))]
    pub no_dedup: bool,
    /// Check the whole list first and send nothing if any line is unusable
    #[arg(long, help_heading = "Input")]
    pub strict_input: bool,
}

/// The notification.
#[derive(Debug, Args)]
pub struct MessageArgs {
    /// JSON payload file sent to every token without its own payload
    #[arg(long, value_name = "FILE", conflicts_with = "alert", help_heading = "Message")]
    pub payload: Option<PathBuf>,
    /// Alert text (builds {"aps":{"alert":TEXT}})
    #[arg(long, value_name = "TEXT", help_heading = "Message")]
    pub alert: Option<String>,
    /// Badge number, with --alert
    #[arg(long, value_name = "N", requires = "alert", help_heading = "Message")]
    pub badge: Option<u32>,
    /// Sound name, with --alert
    #[arg(long, value_name = "NAME", requires = "alert", help_heading = "Message")]
    pub sound: Option<String>,
    #[arg(long, value_name = "SECS", default_value_t = 0, help_heading = "Message")]
    #[arg(help = format!(
        "Seconds from now that Apple may store the notification for an offline device; 0 = deliver now or never \
         (values from {ABSOLUTE_EXPIRY} up are taken as an absolute UNIX time)"
    ))]
    pub expiry: u64,
    /// 10 = deliver now, 5 = when it saves the device's power (binary: --format 2 only), 1 = lowest (HTTP/2
    /// only). Default 10; over HTTP/2 the push type's (--push-type background: 5, and 10 is refused)
    #[arg(long, value_name = "10|5|1", value_enum, hide_possible_values = true, help_heading = "Message")]
    pub priority: Option<PriorityArg>,
    #[arg(long, value_name = "1|2", value_parser = clap::value_parser!(u8).range(1..=2), default_value_t = 2, help_heading = "Message")]
    #[arg(help = format!(
        "Frame format: 1 (enhanced, payloads up to {} bytes) or 2 (items, up to {})",
        Command::Enhanced.payload_limit(),
        Command::Items.payload_limit()
    ))]
    pub format: u8,
}

/// `--priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PriorityArg {
    /// 10.
    #[value(name = "10")]
    Now,
    /// 5.
    #[value(name = "5")]
    PowerSaving,
    /// 1 (HTTP/2 only).
    #[value(name = "1")]
    Lowest,
}

impl MessageArgs {
    /// The frame format `--format` asks for (`pub(crate)`: `tune` sends the same message).
    pub(crate) fn command(&self) -> Command {
        if self.format == 1 { Command::Enhanced } else { Command::Items }
    }

    /// The shared payload, validated and minified, for the binary protocol.
    pub(crate) fn payload(&self) -> anyhow::Result<Vec<u8>> {
        let limit = self.command().payload_limit();
        self.payload_within(limit, &format!("--format {}", self.format))
    }

    /// The shared payload, validated and minified, at most `limit` bytes
    /// (`what` says whose limit, for the error).
    pub(crate) fn payload_within(&self, limit: usize, what: &str) -> anyhow::Result<Vec<u8>> {
        let (flag, raw) = match (&self.payload, &self.alert) {
            (Some(path), _) => (format!("--payload {}", path.display()), read_small("--payload", path)?),
            (None, Some(alert)) => {
                ("--alert".to_owned(), payload::alert_payload(alert, self.badge, self.sound.as_deref()))
            }
            (None, None) => bail!("no message: give --payload FILE or --alert TEXT"),
        };
        payload::validate(&raw, limit).with_context(|| format!("{flag} ({what}, limit {limit} bytes)"))
    }

    /// `--priority` as the frame carries it.
    pub(crate) fn priority(&self) -> anyhow::Result<Priority> {
        match self.priority.unwrap_or(PriorityArg::Now) {
            PriorityArg::Now => Ok(Priority::Immediate),
            PriorityArg::PowerSaving => Ok(Priority::PowerSaving),
            PriorityArg::Lowest => bail!("--priority 1: only the HTTP/2 transport has it (see --api)"),
        }
    }

    /// `--priority` as `apns-priority` carries it; `None` when not given
    /// (the push type then decides).
    pub(crate) fn http2_priority(&self) -> Option<u8> {
        self.priority.map(|p| match p {
            PriorityArg::Now => 10,
            PriorityArg::PowerSaving => 5,
            PriorityArg::Lowest => 1,
        })
    }

    /// `--expiry` as the absolute UNIX time the frame carries.
    pub(crate) fn expiry(&self) -> anyhow::Result<u32> {
        let absolute = if self.expiry == 0 {
            0
        } else if self.expiry >= ABSOLUTE_EXPIRY {
            self.expiry
        } else {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            now + self.expiry
        };
        u32::try_from(absolute)
            .map_err(|_| anyhow::anyhow!("--expiry {}: beyond what the protocol can express (2106)", self.expiry))
    }
}

/// The settings only one transport has, checked before the list is opened.
enum Transport {
    Binary(Priority),
    Http2(Http2Config),
}

/// Runs `send`.
///
/// # Errors
/// Anything that stops the run from happening (exit status 2).
pub fn run(args: SendArgs, global: &Global) -> anyhow::Result<Exit> {
    let report = args.outputs.report.clone();
    start_and_run(args, global).inspect_err(|e| {
        if let Some(path) = &report {
            super::output::write_failed_start(path, e);
        }
    })
}

/// [`run`], whose errors are a run that could not start.
fn start_and_run(args: SendArgs, global: &Global) -> anyhow::Result<Exit> {
    let api = args.http2.api(args.gateway.gateway.as_deref());
    Http2Args::check_flags(api)?;
    let command = args.message.command();
    // The transport's settings first (the .p8 key, the ids, the headers):
    // nothing of the list is read before they are known to be usable.
    let (shared_payload, payload_limit, mut transport) = match api {
        ApiArg::Binary => {
            let priority = args.message.priority()?;
            (args.message.payload()?, command.payload_limit(), Transport::Binary(priority))
        }
        ApiArg::Http2 => {
            let limit = args.http2.payload_limit();
            let payload = args.message.payload_within(limit, "HTTP/2")?;
            (payload, limit, Transport::Http2(args.http2.config(args.message.http2_priority())?))
        }
    };
    let expiry = args.message.expiry()?;
    if api == ApiArg::Binary
        && command == Command::Enhanced
        && args.message.priority.is_some_and(|p| p != PriorityArg::Now)
    {
        log::warn!("--priority is ignored with --format 1 (the enhanced format has no priority)");
    }
    let gateway = args.gateway.resolve(if api == ApiArg::Http2 { Service::Http2 } else { Service::Push })?;
    let options = ReaderOptions {
        dedup: !args.no_dedup,
        payload_limit,
        line_headers: api == ApiArg::Http2,
        partition: args.partition,
        ..ReaderOptions::default()
    };
    let input = tokens::open(&args.tokens, args.strict_input, &options)?;
    // The list a journal counts lines of (none for standard input).
    let list_mark = match &args.outputs.journal {
        Some(_) if args.tokens.as_os_str() != "-" => {
            Some(journal::list_mark(&args.tokens).with_context(|| format!("--tokens {}", args.tokens.display()))?)
        }
        _ => None,
    };
    let settled_before = match &args.outputs.journal {
        Some(path) if path.exists() => {
            let started_for = journal::journal_mark(path).with_context(|| format!("--journal {}", path.display()))?;
            if let (Some(ours), Some(theirs)) = (&list_mark, &started_for)
                && ours != theirs
            {
                bail!(
                    "--journal {}: it was started for another list (its lines count that list's, and {} \
                     begins differently): resume with the list it was made for, whole, or give this one a new journal",
                    path.display(),
                    args.tokens.display()
                );
            }
            let lines = LineSet::load(path).with_context(|| format!("--journal {}", path.display()))?;
            log::info!("resuming: {} lines of the list were settled by an earlier run", lines.len());
            Some(Arc::new(lines))
        }
        _ => None,
    };
    let outputs = Outputs::create_for(&args.outputs, list_mark.as_deref())?;
    let tls = match api {
        ApiArg::Http2 if args.http2.token_auth() => args.tls.load_optional()?,
        _ => args.tls.load()?,
    };
    if let Transport::Http2(h2) = &mut transport {
        topic_from_certificate(h2, &tls)?;
    }
    let mut config = SendConfig::new(gateway.clone(), tls, Arc::<[u8]>::from(shared_payload));
    config.command = command;
    config.expiry = expiry;
    config.skip_lines = settled_before;
    args.tuning.apply(&mut config)?;
    match transport {
        Transport::Binary(priority) => config.priority = priority,
        Transport::Http2(http2) => config.http2 = Some(http2),
    }
    let job = Job { config, input, options, outputs, total: None };
    let outcome = blast::execute(job, global).map_err(|e| args.gateway.hint(e))?;
    let title = match args.partition {
        Some(p) => format!("apnsblast send: {} to {gateway}, partition {p}", args.tokens.display()),
        None => format!("apnsblast send: {} to {gateway}", args.tokens.display()),
    };
    Ok(blast::conclude(&outcome, global, &title))
}
