//! What `tune` found: one [`Row`] per trial, the recommendation among them,
//! and the three ways they are shown (the table, the `send` flags, the SVG
//! chart). Pure: no I/O, so the rule is tested on made-up rows.

use std::fmt::Write as _;

use serde::Serialize;

use apnsblast::frame::Status;
use apnsblast::report::Report;
use apnsblast::run::Style;

use super::Trial;
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

/// Failures a setting can cause (see `rule` in `tune.rs`): unconfirmed and
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

/// The recommended row (see `rule` in `tune.rs`): `None` when no trial completed.
pub(super) fn recommend(rows: &[Row]) -> Option<usize> {
    let done: Vec<usize> = (0..rows.len()).filter(|&i| !rows[i].report.interrupted && rows[i].sample > 0).collect();
    let per_token = |x: u64, r: &Row| x as f64 / r.sample as f64;
    let lowest =
        |f: &dyn Fn(&Row) -> u64| done.iter().map(|&i| per_token(f(&rows[i]), &rows[i])).fold(f64::INFINITY, f64::min);
    let (fewest_errors, fewest_reconnects) = (lowest(&|r| r.errors), lowest(&extra_reconnects));
    let clean: Vec<usize> = done
        .into_iter()
        .filter(|&i| {
            let r = &rows[i];
            let allowed = fewest_reconnects * (1.0 + RECONNECT_MARGIN) * r.sample as f64 + RECONNECT_SLACK;
            per_token(r.errors, r) <= fewest_errors * (1.0 + 1e-9) && extra_reconnects(r) as f64 <= allowed
        })
        .collect();
    let fastest = clean.iter().map(|&i| rows[i].rate_per_s).fold(0.0, f64::max);
    clean.into_iter().filter(|&i| rows[i].rate_per_s >= fastest * (1.0 - SAME_SPEED)).min_by(|&a, &b| {
        let (a, b) = (&rows[a], &rows[b]);
        (a.shards, a.reconnects).cmp(&(b.shards, b.reconnects)).then(b.rate_per_s.total_cmp(&a.rate_per_s))
    })
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

/// The SVG chart: notifications/s against shard count, one line per Nagle
/// setting (pipelined trials).
pub(super) fn chart(rows: &[Row], shards: &[usize], against: &str) -> anyhow::Result<String> {
    use plotters::prelude::*;

    let top = rows.iter().map(|r| r.rate_per_s).fold(1.0, f64::max) * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (800, 500)).into_drawing_area();
        let draw = |e: DrawingAreaErrorKind<_>| anyhow::anyhow!("--chart: drawing failed: {e}");
        root.fill(&WHITE).map_err(draw)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(format!("apnsblast tune against {against}"), ("sans-serif", 18))
            .margin(16)
            .x_label_area_size(44)
            .y_label_area_size(80)
            .build_cartesian_2d((0..shards.len() as i32 - 1).into_segmented(), 0.0..top)
            .map_err(draw)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("shards (connections in parallel)")
            .y_desc("notifications/s")
            .x_labels(shards.len())
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => shards.get(*i as usize).map_or(String::new(), ToString::to_string),
                _ => String::new(),
            })
            .y_label_formatter(&|y| grouped(*y))
            .draw()
            .map_err(draw)?;
        for (nodelay, color, label) in [(false, BLUE, "Nagle on"), (true, RED, "Nagle off (--nodelay)")] {
            let points: Vec<(SegmentValue<i32>, f64)> = rows
                .iter()
                .filter(|r| r.nodelay == nodelay && r.style == "pipelined")
                .filter_map(|r| {
                    let i = shards.iter().position(|&s| s == r.shards)?;
                    Some((SegmentValue::CenterOf(i as i32), r.rate_per_s))
                })
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(draw)?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 4, color.filled()))).map_err(draw)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(draw)?;
        root.present().map_err(draw)?;
    }
    Ok(svg)
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
