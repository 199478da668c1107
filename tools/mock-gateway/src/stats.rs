//! What the gateway counted, and the per-token delivery ledger behind it.
//!
//! Connections hand in whole read buffers' worth of accepted notifications at once
//! (`Tracker::record`), so the shared lock is taken once per read, not per frame.
//!
//! The per-token ledger is settled lazily: `record` only appends `(token, payload
//! hash)` to a sequential pending list, and `Tracker::settle` folds it into the map
//! when someone reads the stats. A map of millions of tokens is far bigger than the
//! caches, so each lookup is a memory miss; doing that on the connection thread
//! would make the mock the bottleneck of a blast.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};

use serde::{Deserialize, Serialize};

use crate::config::{FastBuild, hash_bytes};

/// A snapshot of the gateway's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Notifications accepted (parsed, valid, before any error on their connection).
    pub accepted: u64,
    /// Distinct tokens among accepted notifications (0 if tracking is off).
    pub distinct_tokens: u64,
    /// Extra deliveries of the same (token, payload) pair: a pair accepted 3 times adds 2.
    pub duplicates: u64,
    /// Rejected notifications by status code (2, 4, 5, 7, 8, 128). Command-0 errors are
    /// counted here too, although no response is written for them.
    pub rejected: BTreeMap<u8, u64>,
    /// Status-10 (shutdown) responses due because of `shutdown_after` (or
    /// chaos), whether written or lost.
    pub shutdowns: u64,
    /// Connections closed silently because of `close_after`.
    pub silent_closes: u64,
    /// Connections reset on purpose (`reset_after`, `reset_after_error`,
    /// `lose_error_responses`).
    pub resets: u64,
    /// Error responses not written (`lose_error_responses`, chaos): the
    /// rejection or shutdown is counted in `rejected` or `shutdowns` all the
    /// same, so a rejected token whose answer was lost counts again each time
    /// it is sent again.
    #[serde(default)]
    pub responses_lost: u64,
    /// Gateway TLS handshakes completed.
    pub connections: u64,
    /// Gateway connections dropped before the handshake (`refuse_handshakes`).
    pub handshakes_refused: u64,
    /// Handshakes that failed (no or untrusted client certificate, garbage, timeout).
    pub handshakes_failed: u64,
    /// Plaintext bytes read by the frame loop.
    pub bytes_read: u64,
    /// Bytes thrown away after a connection's error or fault: the rest of its read
    /// buffer (plaintext) plus everything drained from the socket afterwards (raw TLS bytes).
    pub discarded_bytes: u64,
    /// Feedback connections served (handshake completed).
    pub feedback_connections: u64,
    /// Feedback tuples written.
    pub feedback_tuples: u64,
    /// HTTP/2: requests received (streams taken on; refused streams and
    /// streams above a GOAWAY's last-stream-id are not).
    #[serde(default)]
    pub requests_received: u64,
    /// HTTP/2: rejected requests by Apple's reason string (`BadDeviceToken`,
    /// `Unregistered`, …): the JSON `reason` of every non-200 answer.
    #[serde(default)]
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// HTTP/2: requests received but never answered: open when `drop_after`
    /// (or chaos) closed their connection.
    #[serde(default)]
    pub requests_dropped: u64,
    /// HTTP/2: streams refused with RST_STREAM(REFUSED_STREAM) (`one_stream_start`).
    #[serde(default)]
    pub streams_refused: u64,
    /// HTTP/2: connections ended by a GOAWAY on purpose (`goaway_after`, chaos).
    #[serde(default)]
    pub goaways: u64,
    /// HTTP/2: connections that met each kind of fault at least once, by
    /// kind: `429`, `500`, `503` (seeded answers), `goaway`, `goaway-shutdown`
    /// (a GOAWAY with Apple's `{"reason":"Shutdown"}`), `drop`, `refused`,
    /// `delay` (answers held).
    #[serde(default)]
    pub fault_connections: BTreeMap<String, u64>,
    /// HTTP/2: the most requests one connection had received and not yet answered.
    #[serde(default)]
    pub max_concurrent_streams_seen: u64,
    /// HTTP/2: distinct valid provider tokens seen after the first.
    #[serde(default)]
    pub jwt_renewals: u64,
    /// HTTP/2: distinct valid provider tokens seen, over every connection
    /// and every sender: what Apple counts against a key (processes on one
    /// key that each sign their own token make it grow).
    #[serde(default)]
    pub provider_tokens: u64,
    /// HTTP/2: requests to the all-zero token (a sender's gateway check),
    /// answered 400 BadDeviceToken and not counted in `rejected_by_reason`.
    #[serde(default)]
    pub gateway_checks: u64,
}

impl Stats {
    /// Number of notifications rejected with `status`.
    pub fn rejected_with(&self, status: u8) -> u64 {
        self.rejected.get(&status).copied().unwrap_or(0)
    }

    /// Number of HTTP/2 connections that met fault `kind` (see
    /// [`Stats::fault_connections`]).
    pub fn connections_with(&self, kind: &str) -> u64 {
        self.fault_connections.get(kind).copied().unwrap_or(0)
    }

    /// Number of HTTP/2 requests rejected with `reason` (Apple's string).
    pub fn rejected_for(&self, reason: &str) -> u64 {
        self.rejected_by_reason.get(reason).copied().unwrap_or(0)
    }
}

/// One accepted notification, as handed from a connection to the tracker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accepted {
    pub token: [u8; 32],
    pub payload_hash: u64,
    pub id: Option<u32>,
}

impl Accepted {
    pub(crate) fn new(token: &[u8; 32], payload: &[u8], id: Option<u32>) -> Self {
        Accepted { token: *token, payload_hash: hash_bytes(0x5EED, payload), id }
    }
}

/// Deliveries of one token: the count and the distinct payload hashes seen. Most
/// tokens see one payload, so the extra ones live behind a pointer.
#[derive(Debug)]
struct TokenEntry {
    deliveries: u32,
    payload: u64,
    more: Option<Box<[u64]>>,
}

/// Counters, ledger and delivered-log writer, kept together behind one lock.
#[derive(Debug)]
pub(crate) struct Tracker {
    pub stats: Stats,
    tokens: HashMap<[u8; 32], TokenEntry, FastBuild>,
    pending: Vec<([u8; 32], u64)>,
    track: bool,
    log: Option<BufWriter<File>>,
}

impl Tracker {
    pub(crate) fn new(track: bool, log: Option<File>) -> Self {
        Tracker {
            stats: Stats::default(),
            tokens: HashMap::default(),
            pending: Vec::new(),
            track,
            log: log.map(|f| BufWriter::with_capacity(1 << 16, f)),
        }
    }

    /// Count a batch of accepted notifications and `bytes` more plaintext read.
    pub(crate) fn record(&mut self, batch: &[Accepted], bytes: u64) {
        self.stats.bytes_read += bytes;
        self.stats.accepted += batch.len() as u64;
        if self.track {
            self.pending.extend(batch.iter().map(|a| (a.token, a.payload_hash)));
        }
        if let Some(log) = &mut self.log
            && let Err(e) = write_log(log, batch)
        {
            log::warn!("delivered log disabled: {e}");
            self.log = None;
        }
    }

    /// Fold pending deliveries into the ledger (`distinct_tokens`, `duplicates`).
    pub(crate) fn settle(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        self.tokens.reserve(pending.len()); // one rehash, not log2(n)
        for (token, payload_hash) in &pending {
            self.note(token, *payload_hash);
        }
        self.stats.distinct_tokens = self.tokens.len() as u64;
        // Keep the buffer unless it is huge.
        if pending.capacity() <= 1 << 20 {
            self.pending = pending;
            self.pending.clear();
        }
    }

    fn note(&mut self, token: &[u8; 32], payload_hash: u64) {
        let e = self.tokens.entry(*token).or_insert(TokenEntry { deliveries: 0, payload: payload_hash, more: None });
        e.deliveries = e.deliveries.saturating_add(1);
        if e.deliveries == 1 {
            return;
        }
        let seen = e.payload == payload_hash || e.more.as_ref().is_some_and(|m| m.contains(&payload_hash));
        if seen {
            self.stats.duplicates += 1;
        } else {
            // Rare (same token, new payload): rebuilding the slice keeps entries small.
            let mut v = e.more.take().map(Vec::from).unwrap_or_default();
            v.push(payload_hash);
            e.more = Some(v.into_boxed_slice());
        }
    }

    /// Deliveries per token (any payload).
    pub(crate) fn deliveries(&mut self) -> HashMap<[u8; 32], u32> {
        self.settle();
        self.tokens.iter().map(|(t, e)| (*t, e.deliveries)).collect()
    }

    pub(crate) fn flush_log(&mut self) {
        if let Some(log) = &mut self.log {
            let _ = log.flush();
        }
    }
}

fn write_log(log: &mut BufWriter<File>, batch: &[Accepted]) -> std::io::Result<()> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut line = [0u8; 64];
    for a in batch {
        for (i, b) in a.token.iter().enumerate() {
            line[2 * i] = HEX[(b >> 4) as usize];
            line[2 * i + 1] = HEX[(b & 15) as usize];
        }
        log.write_all(&line)?;
        match a.id {
            Some(id) => writeln!(log, "\t{id}")?,
            None => log.write_all(b"\t-\n")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_need_same_token_and_payload() {
        let mut t = Tracker::new(true, None);
        let a = Accepted::new(&[1; 32], b"x", Some(1));
        let b = Accepted::new(&[1; 32], b"y", Some(2));
        let c = Accepted::new(&[2; 32], b"x", Some(3));
        t.record(&[a, b, c, a, a, b], 10);
        assert_eq!(t.stats.accepted, 6);
        t.settle();
        assert_eq!(t.stats.distinct_tokens, 2);
        assert_eq!(t.stats.duplicates, 3);
        assert_eq!(t.stats.bytes_read, 10);
        assert_eq!(t.deliveries()[&[1; 32]], 5);
    }
}
