//! `apnsblast merge`: one report from the reports of a list's partitions.

use std::fs;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;

use apnsblast::report::Report;

use super::output::{Outputs, Written};
use super::{Exit, Global, OutputArgs, exit_for, summary};

/// `apnsblast merge`.
#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Reports written by `send --partition K/N --report FILE`
    #[arg(value_name = "REPORT", required = true)]
    pub reports: Vec<PathBuf>,
    /// Write the merged report (JSON) to FILE
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
}

/// Runs `merge`; the exit status follows the merged counts, as for `send`.
///
/// # Errors
/// A report cannot be read or parsed, or the output cannot be written.
pub fn run(args: MergeArgs, global: &Global) -> anyhow::Result<Exit> {
    let mut parts = Vec::with_capacity(args.reports.len());
    for (i, path) in args.reports.iter().enumerate() {
        if args.reports[..i].contains(path) {
            bail!("{}: given twice; each partition's report must be merged once", path.display());
        }
        let text = fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
        let report: Report =
            serde_json::from_str(&text).with_context(|| format!("{}: not an apnsblast report", path.display()))?;
        parts.push(report);
    }
    let merged = Report::merge(&parts);
    let outputs = Outputs::create(&OutputArgs {
        report: args.report.clone(),
        failed: None,
        invalid_tokens: None,
        journal: None,
    })?;
    let written: Written = outputs.finish(&merged);
    for e in &written.errors {
        eprintln!("apnsblast: error: {e}");
    }
    if !global.quiet {
        println!("apnsblast merge: {} reports", parts.len());
        print!("{}", summary::render(&merged, &written));
        println!("{}", summary::verdict(&merged));
    }
    if !written.errors.is_empty() {
        bail!("the merged report could not be written");
    }
    Ok(exit_for(&merged))
}
