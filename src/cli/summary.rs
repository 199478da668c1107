//! The one-screen summary printed at the end of `send`, `demo` and `merge`.

use std::fmt::Write as _;

use apnsblast::frame::Status;
use apnsblast::report::Report;

use super::output::Written;

/// Renders `report` for a person; `written` says where the files went.
pub fn render(report: &Report, written: &Written) -> String {
    let mut s = String::new();
    let row = |s: &mut String, name: &str, value: String, note: &str| {
        let _ = writeln!(s, "  {name:<26} {value:>12}{}{note}", if note.is_empty() { "" } else { "   " });
    };
    if report.previously_settled > 0 {
        row(
            &mut s,
            "settled before",
            report.previously_settled.to_string(),
            "lines the journal says an earlier run settled",
        );
    }
    row(&mut s, "tokens read", report.tokens_read.to_string(), "");
    row(&mut s, "accepted", report.accepted.to_string(), "");
    row(&mut s, "rejected", report.rejected_total().to_string(), "");
    for (key, n) in &report.rejected {
        // A binary status code names its reason; an HTTP/2 key is the reason.
        let label = match key.parse::<u8>() {
            Ok(code) => format!("  {} ({code})", Status::from_code(code).reason()),
            Err(_) => format!("  {key}"),
        };
        row(&mut s, &label, n.to_string(), "");
    }
    row(
        &mut s,
        "unconfirmed",
        report.unconfirmed.to_string(),
        if report.unconfirmed > 0 { "written, never confirmed: may or may not have been delivered" } else { "" },
    );
    row(
        &mut s,
        "unsent",
        report.unsent.to_string(),
        if report.unsent > 0 { "not delivered, none in doubt: a rerun sends them" } else { "" },
    );
    row(
        &mut s,
        "skipped",
        report.skipped.to_string(),
        if report.skipped > 0 { "unusable lines and duplicates" } else { "" },
    );
    if report.other_partitions > 0 {
        row(&mut s, "other partitions", report.other_partitions.to_string(), "lines left to the other partitions");
    }
    row(
        &mut s,
        "possibly duplicated",
        report.possibly_duplicated.to_string(),
        if report.possibly_duplicated > 0 {
            "accepted after a connection died in doubt: may have arrived twice"
        } else {
            ""
        },
    );
    row(&mut s, "resent", report.resent.to_string(), "");
    row(&mut s, "reconnects", report.reconnects.to_string(), "");
    row(&mut s, "amplification", format!("{:.3}", report.amplification), "frames written per token sent");
    row(&mut s, "rate", format!("{:.0}/s", report.rate_per_s), "");
    row(&mut s, "elapsed", format!("{:.2} s", report.elapsed_s), &format!("{} shards", report.shards));
    for shard in &report.per_shard {
        if let Some(e) = &shard.error {
            let _ = writeln!(s, "  shard {} stopped early: {e}", shard.shard);
        }
    }
    if report.braked_s > 0.0 {
        let _ = writeln!(s, "  paused {:.1} s: Apple was failing, or refused a token update", report.braked_s);
    }
    if let Some(stopped) = &report.stopped {
        let _ = writeln!(s, "  stopped: {}", stopped.cause);
        if stopped.wrong_environment {
            let _ = writeln!(s, "  no invalid-tokens list: the BadDeviceToken answers are not about the tokens");
        }
    }
    if let Some(e) = &report.input_error {
        let _ = writeln!(s, "  reading the token list failed: {e}; the counts cover what was read before");
    }
    if report.unaccounted() != 0 {
        let _ =
            writeln!(s, "  WARNING: {} tokens are not accounted for (a bug: please report it)", report.unaccounted());
    }
    if let Some((path, n)) = &written.failed {
        let _ = writeln!(s, "  failed tokens              {} ({n} lines)", path.display());
    }
    if let Some((path, n)) = &written.invalid {
        let _ = writeln!(s, "  invalid tokens             {} ({n} tokens to delete)", path.display());
    }
    if let Some(path) = &written.report {
        let _ = writeln!(s, "  report                     {}", path.display());
    }
    s
}

/// The last line: how the run ended.
pub fn verdict(report: &Report) -> String {
    let not = report.tokens_read.saturating_sub(report.accepted);
    if report.tokens_read == 0 && report.input_error.is_none() && !report.interrupted {
        "no tokens in the list".to_owned()
    } else if report.stopped.is_some() {
        format!("stopped: {} of {} tokens read were accepted", report.accepted, report.tokens_read)
    } else if report.interrupted {
        format!("interrupted: {} of {} tokens read were accepted", report.accepted, report.tokens_read)
    } else if not == 0 && report.input_error.is_none() {
        format!("all {} tokens accepted", report.accepted)
    } else {
        format!("{not} of {} tokens were not accepted", report.tokens_read)
    }
}
