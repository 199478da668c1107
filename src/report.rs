//! What happened to every token: per-shard counts and their merge.
//!
//! The accounting contract: every token read ends in exactly one of
//! `accepted`, `rejected`, `unconfirmed`, `unsent` or `skipped`, so
//! [`Report::unaccounted`] is zero for every finished run.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::binary::frame::Status;

/// The fate of one token that was not accepted, as written to a failure list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The gateway accepted it (confirmed by a later rejection or sentinel).
    Accepted,
    /// The gateway rejected it with a status.
    Rejected,
    /// It was written, but the connection died before the gateway confirmed it
    /// and retries ran out: it may or may not have been delivered.
    Unconfirmed,
    /// It was never written (the run was interrupted or its shard stopped).
    Unsent,
    /// The input line was not a usable token.
    Skipped,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            State::Accepted => "accepted",
            State::Rejected => "rejected",
            State::Unconfirmed => "unconfirmed",
            State::Unsent => "unsent",
            State::Skipped => "skipped",
        })
    }
}

/// One token that was not accepted: the line of `--failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// 1-based line of the input it came from.
    pub line: u64,
    /// The token in lower-case hex, or the raw (trimmed, cut) line when skipped.
    pub token: String,
    /// What became of it.
    pub state: State,
    /// The gateway's status code, for rejected tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u8>,
    /// Why, in words.
    pub reason: String,
}

/// Counts kept by one shard (one TLS connection at a time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardReport {
    /// Which shard (0-based).
    pub shard: usize,
    /// Notifications the gateway confirmed accepted.
    pub accepted: u64,
    /// Rejections by status code.
    pub rejected: BTreeMap<u8, u64>,
    /// Written but never confirmed.
    pub unconfirmed: u64,
    /// Never written.
    pub unsent: u64,
    /// Accepted after having been in flight on a connection that closed
    /// without an error response: the gateway may have delivered them twice.
    pub possibly_duplicated: u64,
    /// Frames written again after a rewind.
    pub resent: u64,
    /// Notification frames written, first sends and resends.
    pub frames_written: u64,
    /// Sentinel frames written to confirm what came before them.
    pub confirmations: u64,
    /// Application bytes written to TLS.
    pub bytes_written: u64,
    /// TLS connections established.
    pub connections: u64,
    /// Connections after the first.
    pub reconnects: u64,
    /// Connection attempts that failed (TCP, TLS, or closed right after the handshake).
    pub failed_connects: u64,
    /// Seconds spent connecting (TCP and TLS handshakes), included in `elapsed_s`.
    pub connect_s: f64,
    /// Connections set up ahead of need and then used (see `--connect-ahead`).
    #[serde(default)]
    pub connected_ahead: u64,
    /// Connections set up ahead of need and never used: they failed, the
    /// gateway closed them (the shard then connected anew), or the shard
    /// finished first.
    #[serde(default)]
    pub connect_ahead_wasted: u64,
    /// Why the shard stopped early, if it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Seconds the shard ran.
    pub elapsed_s: f64,
}

impl ShardReport {
    /// Rejected notifications, all statuses together.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Counts one rejection.
    pub fn reject(&mut self, status: Status) {
        *self.rejected.entry(status.code()).or_default() += 1;
    }
}

/// The merged result of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Token lines read (blank lines and comments are not counted; lines of
    /// other partitions are counted in `other_partitions`).
    pub tokens_read: u64,
    /// Accepted by the gateway.
    pub accepted: u64,
    /// Rejected, by status code.
    pub rejected: BTreeMap<u8, u64>,
    /// Written, never confirmed.
    pub unconfirmed: u64,
    /// Never written.
    pub unsent: u64,
    /// Input lines that were not usable tokens.
    pub skipped: u64,
    /// Accepted, possibly twice.
    pub possibly_duplicated: u64,
    /// Frames written again after a rewind.
    pub resent: u64,
    /// Connections after each shard's first.
    pub reconnects: u64,
    /// Notification frames written.
    pub frames_written: u64,
    /// Frames written per token sent (1.0 = no resends).
    pub amplification: f64,
    /// Lines that belong to other partitions of a partitioned run.
    pub other_partitions: u64,
    /// Lines an earlier run of a resumed job settled (from its journal); not
    /// sent again and not counted in `tokens_read`.
    #[serde(default)]
    pub previously_settled: u64,
    /// Shards (connections in parallel).
    pub shards: usize,
    /// Wall-clock seconds.
    pub elapsed_s: f64,
    /// Tokens accounted for per second.
    pub rate_per_s: f64,
    /// The run was interrupted before it read all its input.
    pub interrupted: bool,
    /// Reading the input failed part way; the report covers what was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_error: Option<String>,
    /// Per-shard counts.
    pub per_shard: Vec<ShardReport>,
}

impl Report {
    /// Rejected tokens, all statuses together.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
    }

    /// Tokens read minus every token in a final state: zero when nothing was lost.
    pub fn unaccounted(&self) -> i64 {
        self.tokens_read as i64
            - (self.accepted + self.rejected_total() + self.unconfirmed + self.unsent + self.skipped) as i64
    }

    /// Builds the run's report from the shards' reports and the reader's counts.
    pub fn from_shards(per_shard: Vec<ShardReport>, tokens_read: u64, skipped: u64, elapsed_s: f64) -> Report {
        let mut r = Report { tokens_read, skipped, shards: per_shard.len(), elapsed_s, ..Report::default() };
        for s in &per_shard {
            r.accepted += s.accepted;
            for (code, n) in &s.rejected {
                *r.rejected.entry(*code).or_default() += n;
            }
            r.unconfirmed += s.unconfirmed;
            r.unsent += s.unsent;
            r.possibly_duplicated += s.possibly_duplicated;
            r.resent += s.resent;
            r.reconnects += s.reconnects;
            r.frames_written += s.frames_written;
        }
        r.per_shard = per_shard;
        r.derive();
        r
    }

    /// Merges reports of the partitions of one list (see `send --partition`).
    pub fn merge(reports: &[Report]) -> Report {
        let mut r = Report::default();
        for p in reports {
            r.tokens_read += p.tokens_read;
            r.accepted += p.accepted;
            for (code, n) in &p.rejected {
                *r.rejected.entry(*code).or_default() += n;
            }
            r.unconfirmed += p.unconfirmed;
            r.unsent += p.unsent;
            r.skipped += p.skipped;
            r.possibly_duplicated += p.possibly_duplicated;
            r.resent += p.resent;
            r.reconnects += p.reconnects;
            r.frames_written += p.frames_written;
            r.previously_settled += p.previously_settled;
            r.shards += p.shards;
            r.elapsed_s = r.elapsed_s.max(p.elapsed_s);
            r.interrupted |= p.interrupted;
            let base = r.per_shard.len();
            r.per_shard.extend(p.per_shard.iter().cloned().enumerate().map(|(i, mut s)| {
                s.shard = base + i;
                s
            }));
        }
        // Each partition read every line; a line counted as "other" in one
        // partition is counted as read in another.
        r.other_partitions = 0;
        r.derive();
        r
    }

    fn derive(&mut self) {
        let sent = self.accepted + self.rejected_total() + self.unconfirmed;
        self.amplification = if sent == 0 { 0.0 } else { self.frames_written as f64 / sent as f64 };
        self.rate_per_s = if self.elapsed_s > 0.0 {
            (self.tokens_read - self.unsent.min(self.tokens_read)) as f64 / self.elapsed_s
        } else {
            0.0
        };
    }
}
