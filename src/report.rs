//! What happened to every token: per-shard counts and their merge.
//!
//! The accounting contract: every token read ends in exactly one of
//! `accepted`, `rejected`, `unconfirmed`, `unsent` or `skipped`, so
//! [`Report::unaccounted`] is zero for every finished run.

mod failure;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::binary::frame::Status;

pub use failure::{Code, Failure, Reason, State};

/// Counts kept by one shard (one TLS connection at a time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardReport {
    /// Which shard (0-based).
    pub shard: usize,
    /// Notifications the gateway confirmed accepted.
    pub accepted: u64,
    /// Rejections by binary status code (in decimal) or by HTTP/2 reason.
    pub rejected: BTreeMap<String, u64>,
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
    /// HTTP/2: connections the gateway closed with GOAWAY.
    #[serde(default)]
    pub goaways: u64,
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

    /// Counts one rejection by the binary gateway, keyed by its status code.
    pub fn reject(&mut self, status: Status) {
        self.reject_as(&status.code().to_string());
    }

    /// Counts one rejection under `key`: a binary status code in decimal, or
    /// the reason an HTTP/2 gateway gave (`BadDeviceToken`).
    pub fn reject_as(&mut self, key: &str) {
        match self.rejected.get_mut(key) {
            Some(n) => *n += 1,
            None => {
                self.rejected.insert(key.to_owned(), 1);
            }
        }
    }

    /// The counters a run sums over its shards (the reader's are zero).
    pub fn counts(&self) -> Counts {
        Counts {
            tokens_read: 0,
            accepted: self.accepted,
            rejected: self.rejected.clone(),
            unconfirmed: self.unconfirmed,
            unsent: self.unsent,
            skipped: 0,
            possibly_duplicated: self.possibly_duplicated,
            resent: self.resent,
            reconnects: self.reconnects,
            frames_written: self.frames_written,
            previously_settled: 0,
        }
    }
}

/// The counters that add up across shards and partitions: what a run sums
/// over its shards, a merge over its partitions, and the progress display
/// over the shards' latest reports, all with [`Counts::add`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    /// Token lines read.
    pub tokens_read: u64,
    /// Accepted by the gateway.
    pub accepted: u64,
    /// Rejected, by binary status code (in decimal) or by HTTP/2 reason.
    pub rejected: BTreeMap<String, u64>,
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
    /// Lines an earlier run of a resumed job settled.
    pub previously_settled: u64,
}

impl Counts {
    /// Adds `other`'s counters to these.
    pub fn add(&mut self, other: &Counts) {
        let Counts {
            tokens_read,
            accepted,
            rejected,
            unconfirmed,
            unsent,
            skipped,
            possibly_duplicated,
            resent,
            reconnects,
            frames_written,
            previously_settled,
        } = other;
        self.tokens_read += tokens_read;
        self.accepted += accepted;
        for (code, n) in rejected {
            *self.rejected.entry(code.clone()).or_default() += n;
        }
        self.unconfirmed += unconfirmed;
        self.unsent += unsent;
        self.skipped += skipped;
        self.possibly_duplicated += possibly_duplicated;
        self.resent += resent;
        self.reconnects += reconnects;
        self.frames_written += frames_written;
        self.previously_settled += previously_settled;
    }

    /// The sum of `all`.
    pub fn sum(all: impl IntoIterator<Item = Counts>) -> Counts {
        let mut total = Counts::default();
        for c in all {
            total.add(&c);
        }
        total
    }

    /// Rejected, all statuses together.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.values().sum()
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
    /// Rejected, by binary status code (in decimal) or by HTTP/2 reason.
    pub rejected: BTreeMap<String, u64>,
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
    /// The run stopped for an answer about the run, not the tokens (a wrong
    /// topic, refused credentials, the tokens of the other environment …):
    /// what remained is unsent and unsettled, for the corrected rerun.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped: Option<Stopped>,
    /// Seconds the whole run paused: the brake on a failing service, and
    /// Apple's limit on provider-token updates.
    #[serde(default)]
    pub braked_s: f64,
    /// The run could not start (the command's exit status 2): why. Nothing
    /// was read or sent, and every count is zero.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Per-shard counts.
    pub per_shard: Vec<ShardReport>,
}

/// Why a run stopped early, and what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stopped {
    /// What stopped it, in a few words: `Apple answered 400 BadTopic`.
    pub cause: String,
    /// What to do about it.
    pub fix: String,
    /// The environment guard stopped it: the BadDeviceToken answers are
    /// taken for tokens of the other environment, so none of them is settled
    /// and no list of invalid tokens is written.
    #[serde(default)]
    pub wrong_environment: bool,
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
        let mut counts = Counts::sum(per_shard.iter().map(ShardReport::counts));
        counts.tokens_read = tokens_read;
        counts.skipped = skipped;
        let mut r = Report { shards: per_shard.len(), elapsed_s, ..Report::default() };
        r.set_counts(counts);
        r.per_shard = per_shard;
        r.derive();
        r
    }

    /// Merges reports of the partitions of one list (see `send --partition`).
    pub fn merge(reports: &[Report]) -> Report {
        let mut r = Report::default();
        r.set_counts(Counts::sum(reports.iter().map(Report::counts)));
        for p in reports {
            r.shards += p.shards;
            r.elapsed_s = r.elapsed_s.max(p.elapsed_s);
            r.interrupted |= p.interrupted;
            r.braked_s = r.braked_s.max(p.braked_s);
            if r.stopped.is_none() {
                r.stopped.clone_from(&p.stopped);
            }
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

    /// The counters a merge sums.
    pub fn counts(&self) -> Counts {
        Counts {
            tokens_read: self.tokens_read,
            accepted: self.accepted,
            rejected: self.rejected.clone(),
            unconfirmed: self.unconfirmed,
            unsent: self.unsent,
            skipped: self.skipped,
            possibly_duplicated: self.possibly_duplicated,
            resent: self.resent,
            reconnects: self.reconnects,
            frames_written: self.frames_written,
            previously_settled: self.previously_settled,
        }
    }

    fn set_counts(&mut self, counts: Counts) {
        let Counts {
            tokens_read,
            accepted,
            rejected,
            unconfirmed,
            unsent,
            skipped,
            possibly_duplicated,
            resent,
            reconnects,
            frames_written,
            previously_settled,
        } = counts;
        self.tokens_read = tokens_read;
        self.accepted = accepted;
        self.rejected = rejected;
        self.unconfirmed = unconfirmed;
        self.unsent = unsent;
        self.skipped = skipped;
        self.possibly_duplicated = possibly_duplicated;
        self.resent = resent;
        self.reconnects = reconnects;
        self.frames_written = frames_written;
        self.previously_settled = previously_settled;
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

#[cfg(test)]
#[path = "report_test.rs"]
mod report_test;
