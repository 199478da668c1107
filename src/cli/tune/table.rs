//! What `tune` found over the binary protocol: one [`Row`] per trial, the
//! recommendation among them, and the three ways they are shown (the table,
//! the `send` flags, the chart's lines). Pure: no I/O, so the rule is tested
//! on made-up rows.

use std::fmt::Write as _;

use serde::Serialize;

use apnsblast::frame::Status;
use apnsblast::report::Report;
use apnsblast::run::Style;

use super::binary::Trial;
use super::chart::Line;
use crate::cli::{TuningArgs, defaults};

/// Rates within this fraction of the fastest clean trial count as equally fast.
pub(super) const SAME_SPEED: f64 = 0.05;
/// The setting's reconnects per token may exceed the lowest by this fraction (plus [`RECONNECT_SLACK`]).
pub(super) const RECONNECT_MARGIN: f64 = 0.10;
/// Reconnects allowed above the scaled lowest, so one unlucky reconnect does not disqualify.
pub(super) const RECONNECT_SLACK: f64 = 2.0;

/// One line of the table and of `--report`.
#[derive(Debug, Serialize)]
pub(super) struct Row {
    /// Connections in parallel.
    pub(super) shards: usize,
    /// Nagle's algorithm off.
    pub(super) nodelay: bool,
    /// "pipelined" or "strict".
    pub(super) style: &'static str,
    /// Tokens the trial sent (lines read less unusable ones).
    pub(super) sample: u64,
    /// Notifications per second (the report's rate).
    pub(super) rate_per_s: f64,
    /// Frames written again after a rejection or a dropped connection.
    pub(super) resent: u64,
    /// Connections after each shard's first.
    pub(super) reconnects: u64,
    /// Frames written per token sent.
    pub(super) amplification: f64,
    /// Failures the setting can cause (see [`errors`]).
    pub(super) errors: u64,
    /// The one [`recommend`] chose.
    pub(super) recommended: bool,
    /// The trial's full report.
    pub(super) report: Report,
}

impl Row {
    /// The row of trial `t`, which ended with `report`.
    pub(super) fn new(t: Trial, report: Report) -> Row {
        Row {
            shards: t.shards,
            nodelay: t.nodelay,
            style: if t.style == Style::Strict { "strict" } else { "pipelined" },
            sample: report.tokens_read - report.skipped.min(report.tokens_read),
            rate_per_s: report.rate_per_s,
            resent: report.resent,
            reconnects: report.reconnects,
            amplification: report.amplification,
            errors: errors(&report),
            recommended: false,
            report,
        }
    }
}

/// Failures a setting can cause (see `rule` in `binary.rs`): unconfirmed and
/// unsent tokens, rejections other than invalid token, failed connection attempts.
pub(super) fn errors(r: &Report) -> u64 {
    let invalid = Status::InvalidToken.code().to_string();
    let other_rejections: u64 = r.rejected.iter().filter(|&(key, _)| *key != invalid).map(|(_, n)| n).sum();
    let failed_connects: u64 = r.per_shard.iter().map(|s| s.failed_connects).sum();
    r.unconfirmed + r.unsent + other_rejections + failed_connects + r.unaccounted().unsigned_abs()
}

/// Reconnects beyond the one each rejection forces: the setting's doing.
fn extra_reconnects(r: &Row) -> u64 {
    r.reconnects.saturating_sub(r.report.rejected_total())
}

/// The recommended row (see `rule` in `binary.rs`): `None` when no trial completed.
pub(super) fn recommend(rows: &[Row]) -> Option<usize> {
    let measured: Vec<Measured> = rows
        .iter()
        .map(|r| Measured {
            sample: r.sample,
            errors: r.errors,
            reconnects: extra_reconnects(r),
            rate: r.rate_per_s,
            done: !r.report.interrupted,
        })
        .collect();
    pick(&measured, |a, b| {
        let (a, b) = (&rows[a], &rows[b]);
        (a.shards, a.reconnects).cmp(&(b.shards, b.reconnects))
    })
}

/// What the recommendation weighs of one trial, whichever the transport.
pub(super) struct Measured {
    /// Tokens sent.
    pub(super) sample: u64,
    /// Failures the setting can cause.
    pub(super) errors: u64,
    /// Reconnects the setting can cause.
    pub(super) reconnects: u64,
    /// Notifications per second.
    pub(super) rate: f64,
    /// Not interrupted.
    pub(super) done: bool,
}

/// The rule both transports share (see `rule` in `binary.rs`): the clean
/// trials (the fewest errors per token, reconnects per token within
/// [`RECONNECT_MARGIN`] of the fewest), of those the ones within
/// [`SAME_SPEED`] of the fastest, of those the first by `smaller` (the
/// smallest setting), then the fastest. `None` when no trial completed.
pub(super) fn pick(trials: &[Measured], smaller: impl Fn(usize, usize) -> std::cmp::Ordering) -> Option<usize> {
    let done: Vec<usize> = (0..trials.len()).filter(|&i| trials[i].done && trials[i].sample > 0).collect();
    let per_token = |x: u64, t: &Measured| x as f64 / t.sample as f64;
    let lowest = |f: &dyn Fn(&Measured) -> u64| {
        done.iter().map(|&i| per_token(f(&trials[i]), &trials[i])).fold(f64::INFINITY, f64::min)
    };
    let (fewest_errors, fewest_reconnects) = (lowest(&|t| t.errors), lowest(&|t| t.reconnects));
    let clean: Vec<usize> = done
        .into_iter()
        .filter(|&i| {
            let t = &trials[i];
            let allowed = fewest_reconnects * (1.0 + RECONNECT_MARGIN) * t.sample as f64 + RECONNECT_SLACK;
            per_token(t.errors, t) <= fewest_errors * (1.0 + 1e-9) && t.reconnects as f64 <= allowed
        })
        .collect();
    let fastest = clean.iter().map(|&i| trials[i].rate).fold(0.0, f64::max);
    clean
        .into_iter()
        .filter(|&i| trials[i].rate >= fastest * (1.0 - SAME_SPEED))
        .min_by(|&a, &b| smaller(a, b).then(trials[b].rate.total_cmp(&trials[a].rate)))
}

/// The `send` flags of a row, with the Sending options given to `tune`.
pub(super) fn send_flags(row: &Row, tuning: &TuningArgs) -> String {
    let d = defaults();
    let mut s = format!("apnsblast send --shards {}", row.shards);
    if row.nodelay {
        s.push_str(" --nodelay");
    }
    if row.style == "strict" {
        s.push_str(" --style strict");
    }
    let sizes = [
        ("--window-bytes", tuning.window_bytes, d.window_bytes),
        ("--batch-bytes", tuning.batch_bytes, d.batch_bytes),
        ("--send-buffer", tuning.send_buffer, d.send_buffer.unwrap_or(0)),
    ];
    for (flag, given, default) in sizes {
        if given != default {
            let _ = write!(s, " {flag} {given}");
        }
    }
    if tuning.confirm_every != d.confirm_every {
        let _ = write!(s, " --confirm-every {}", tuning.confirm_every);
    }
    if tuning.careful_frames != d.careful_frames {
        let _ = write!(s, " --careful-frames {}", tuning.careful_frames);
    }
    s
}

/// The table, with a note on the strict trials' smaller sample: `strict` is
/// (shard count, tokens) of the strict trials, `tokens` the pipelined trials' sample.
pub(super) fn table(rows: &[Row], strict: (usize, u64), tokens: u64) -> String {
    let (strict_shards, strict_tokens) = strict;
    let mut s = format!(
        "\n  {:>6}  {:<7}  {:<10}  {:>15}  {:>8}  {:>10}  {:>13}  {:>6}\n",
        "shards", "nodelay", "style", "notifications/s", "resent", "reconnects", "amplification", "errors"
    );
    for r in rows {
        let style = if r.style == "strict" { "strict*" } else { r.style };
        let _ = writeln!(
            s,
            "  {:>6}  {:<7}  {style:<10}  {:>15}  {:>8}  {:>10}  {:>13.3}  {:>6}{}",
            r.shards,
            if r.nodelay { "yes" } else { "no" },
            grouped(r.rate_per_s),
            r.resent,
            r.reconnects,
            r.amplification,
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
    if rows.iter().any(|r| r.style == "strict") {
        let _ = writeln!(
            s,
            "  * strict (a read after every notification) is slow: tried at {strict_shards} shard{} only, on {} tokens \
             instead of {}",
            if strict_shards == 1 { "" } else { "s" },
            grouped(strict_tokens as f64),
            grouped(tokens as f64)
        );
    }
    s
}

/// `0.05` as "5%".
pub(super) fn percent(fraction: f64) -> String {
    format!("{:.0}%", fraction * 100.0)
}

/// `1234567.8` as "1,234,568".
pub(super) fn grouped(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut s = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            s.push(',');
        }
        s.push(c);
    }
    s
}

/// The chart's lines: the pipelined trials, one line per Nagle setting.
pub(super) fn lines(rows: &[Row]) -> Vec<Line> {
    [(false, "Nagle on"), (true, "Nagle off (--nodelay)")]
        .into_iter()
        .map(|(nodelay, label)| Line {
            label: label.to_owned(),
            points: rows
                .iter()
                .filter(|r| r.nodelay == nodelay && r.style == "pipelined")
                .map(|r| (r.shards, r.rate_per_s))
                .collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(shards: usize, nodelay: bool, rate: f64, reconnects: u64, errors: u64) -> Row {
        let t = Trial { shards, nodelay, style: Style::Pipelined };
        let report =
            Report { tokens_read: 10_000, accepted: 10_000, rate_per_s: rate, reconnects, ..Report::default() };
        Row { errors, ..Row::new(t, report) }
    }

    #[test]
    fn recommends_fewest_shards_within_five_percent_of_the_fastest_clean_trial() {
        let rows = [
            row(1, false, 100_000.0, 10, 0),
            row(2, false, 190_000.0, 10, 0),
            row(4, true, 198_000.0, 11, 0),
            row(8, false, 200_000.0, 10, 0),
            // Fastest, but with errors.
            row(16, false, 400_000.0, 10, 3),
            // Fast, but reconnecting far more than the others.
            row(16, true, 300_000.0, 50, 0),
        ];
        assert_eq!(recommend(&rows), Some(1));
    }

    #[test]
    fn reconnects_forced_by_rejections_do_not_count() {
        let forced = |mut r: Row, rejected: u64| {
            r.report.rejected.insert("8".into(), rejected);
            r
        };
        // A smaller sample meets fewer invalid tokens, hence fewer reconnects.
        let mut strict = forced(row(1, false, 60_000.0, 10, 0), 10);
        strict.sample = 10_000;
        let rows = [forced(row(1, false, 200_000.0, 26, 0), 26), strict, forced(row(2, false, 150_000.0, 40, 0), 26)];
        assert_eq!(recommend(&rows), Some(0));
    }

    #[test]
    fn nothing_to_recommend_without_a_finished_trial() {
        assert_eq!(recommend(&[]), None);
        let mut r = row(1, false, 1.0, 0, 0);
        r.report.interrupted = true;
        assert_eq!(recommend(&[r]), None);
    }

    #[test]
    fn numbers_are_rounded_and_grouped_by_thousands() {
        assert_eq!(grouped(0.0), "0");
        assert_eq!(grouped(999.4), "999");
        assert_eq!(grouped(1_234_567.8), "1,234,568");
    }
}
