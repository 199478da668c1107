//! What `tune` found over HTTP/2: one [`Row`] per point of the grid of
//! connections × streams, the recommendation among them, and the ways they
//! are shown (the table, the `send` flags, the chart's lines). Pure: no I/O,
//! so the rule is tested on made-up rows.

use std::fmt::Write as _;

use serde::Serialize;

use apnsblast::report::Report;

use super::chart::Line;
use super::table::{Measured, grouped, pick};

/// Rejections that are the list's doing (the token is wrong or gone), not
/// the setting's: the reasons `--invalid-tokens` lists.
const THE_LISTS: [&str; 2] = ["BadDeviceToken", "Unregistered"];

/// One point of the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Point {
    /// Connections in parallel (`--shards`).
    pub(super) shards: usize,
    /// Streams in flight per connection at most (`--streams`).
    pub(super) streams: usize,
}

/// One line of the table and of `--report`.
#[derive(Debug, Serialize)]
pub(super) struct Row {
    /// Connections in parallel.
    pub(super) shards: usize,
    /// Streams per connection at most.
    pub(super) streams: usize,
    /// Tokens the trial sent (lines read less unusable ones).
    pub(super) sample: u64,
    /// Notifications per second (the report's rate).
    pub(super) rate_per_s: f64,
    /// Requests sent again (429/500/503 answers, refused or lost streams).
    pub(super) resent: u64,
    /// Connections after each shard's first.
    pub(super) reconnects: u64,
    /// Tokens sent again after a connection was lost with them in flight.
    pub(super) possibly_duplicated: u64,
    /// Failures the setting can cause (see [`errors`]).
    pub(super) errors: u64,
    /// The one [`recommend`] chose.
    pub(super) recommended: bool,
    /// The trial's full report.
    pub(super) report: Report,
}

impl Row {
    /// The row of point `p`, whose trial ended with `report`.
    pub(super) fn new(p: Point, report: Report) -> Row {
        Row {
            shards: p.shards,
            streams: p.streams,
            sample: report.tokens_read - report.skipped.min(report.tokens_read),
            rate_per_s: report.rate_per_s,
            resent: report.resent,
            reconnects: report.reconnects,
            possibly_duplicated: report.possibly_duplicated,
            errors: errors(&report),
            recommended: false,
            report,
        }
    }
}

/// Failures a setting can cause (see `rule` in `http2.rs`): unconfirmed and
/// unsent tokens, rejections other than the list's, failed connection attempts.
pub(super) fn errors(r: &Report) -> u64 {
    let other_rejections: u64 =
        r.rejected.iter().filter(|&(key, _)| !THE_LISTS.contains(&key.as_str())).map(|(_, n)| n).sum();
    let failed_connects: u64 = r.per_shard.iter().map(|s| s.failed_connects).sum();
    r.unconfirmed + r.unsent + other_rejections + failed_connects + r.unaccounted().unsigned_abs()
}

/// The recommended row (see `rule` in `http2.rs`): `None` when no trial completed.
pub(super) fn recommend(rows: &[Row]) -> Option<usize> {
    let measured: Vec<Measured> = rows
        .iter()
        .map(|r| Measured {
            sample: r.sample,
            errors: r.errors,
            // A rejection ends no HTTP/2 connection: every reconnect counts.
            reconnects: r.reconnects,
            rate: r.rate_per_s,
            done: !r.report.interrupted,
        })
        .collect();
    pick(&measured, |a, b| (rows[a].shards, rows[a].streams).cmp(&(rows[b].shards, rows[b].streams)))
}

/// The `send` flags of a row.
pub(super) fn send_flags(row: &Row) -> String {
    format!("apnsblast send --api http2 --shards {} --streams {}", row.shards, row.streams)
}

/// The table.
pub(super) fn table(rows: &[Row]) -> String {
    let mut s = format!(
        "\n  {:>6}  {:>7}  {:>15}  {:>8}  {:>10}  {:>19}  {:>6}\n",
        "shards", "streams", "notifications/s", "resent", "reconnects", "possibly duplicated", "errors"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "  {:>6}  {:>7}  {:>15}  {:>8}  {:>10}  {:>19}  {:>6}{}",
            r.shards,
            r.streams,
            grouped(r.rate_per_s),
            r.resent,
            r.reconnects,
            r.possibly_duplicated,
            r.errors,
            if r.recommended {
                "  <- recommended"
            } else if r.report.interrupted {
                "  (interrupted)"
            } else {
                ""
            }
        );
    }
    s
}

/// The chart's lines: one per streams setting, in the order of `streams`.
pub(super) fn lines(rows: &[Row], streams: &[usize]) -> Vec<Line> {
    streams
        .iter()
        .map(|&n| Line {
            label: format!("--streams {n}"),
            points: rows.iter().filter(|r| r.streams == n).map(|r| (r.shards, r.rate_per_s)).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(shards: usize, streams: usize, rate: f64, reconnects: u64, errors: u64) -> Row {
        let report =
            Report { tokens_read: 10_000, accepted: 10_000, rate_per_s: rate, reconnects, ..Report::default() };
        Row { errors, ..Row::new(Point { shards, streams }, report) }
    }

    #[test]
    fn recommends_fewest_connections_then_fewest_streams_within_five_percent_of_the_fastest() {
        let rows = [
            row(1, 100, 20_000.0, 0, 0),
            row(1, 1000, 40_000.0, 0, 0),
            row(2, 100, 40_500.0, 0, 0),
            row(2, 500, 41_000.0, 0, 0),
            row(4, 500, 41_500.0, 0, 0),
            // Fastest, but with errors.
            row(8, 1000, 90_000.0, 0, 5),
            // Fast, but losing connections.
            row(8, 500, 80_000.0, 40, 0),
        ];
        assert_eq!(recommend(&rows), Some(1));
        let rows = [row(2, 1000, 50_000.0, 0, 0), row(2, 500, 49_000.0, 0, 0), row(1, 1000, 30_000.0, 0, 0)];
        assert_eq!(recommend(&rows), Some(1), "fewer streams at the same connections and speed");
    }

    #[test]
    fn bad_and_unregistered_tokens_are_the_lists_doing_other_rejections_are_errors() {
        let mut r = Report { tokens_read: 100, accepted: 90, unconfirmed: 1, ..Report::default() };
        r.rejected.insert("BadDeviceToken".into(), 5);
        r.rejected.insert("Unregistered".into(), 2);
        r.rejected.insert("TooManyRequests".into(), 2);
        assert_eq!(errors(&r), 1 + 2);
    }

    #[test]
    fn one_chart_line_per_streams_setting() {
        let rows = [row(1, 10, 1.0, 0, 0), row(1, 100, 2.0, 0, 0), row(2, 10, 3.0, 0, 0), row(2, 100, 4.0, 0, 0)];
        let lines = lines(&rows, &[10, 100]);
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].label.as_str(), lines[0].points.as_slice()), ("--streams 10", &[(1, 1.0), (2, 3.0)][..]));
        assert_eq!(lines[1].points, [(1, 2.0), (2, 4.0)]);
    }
}
