//! `crashlab report`: read, compare, merge and render survival reports.
//!
//! Exit codes: `show`, `merge`, `html` and `schema` exit 0 once done; `diff`
//! exits 1 when a cell regressed, 0 otherwise; all exit 2 on a file that
//! cannot be read, is of another major schema version, or does not merge.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Subcommand};

use crashlab::report::diff::ReportDiff;
use crashlab::report::file::write_json_report;
use crashlab::report::html::render_html;
use crashlab::report::merge::{merge_shards, NamedReport};
use crashlab::report::read::read_report;
use crashlab::report::schema::ReportKind;

use crate::cli::campaign_outputs::write_output;

#[derive(Args)]
pub struct ReportArgs {
    #[command(subcommand)]
    command: ReportCommand,
}

#[derive(Subcommand)]
enum ReportCommand {
    /// Print the human summary of a report.
    Show {
        /// A survival report (JSON).
        file: PathBuf,
    },
    /// Show which cells changed verdict or counts from BEFORE to AFTER
    /// (cells matched by scenario, crash kind and model); exit 1 if a cell
    /// regressed: its verdict got worse, or it lost acks it kept before.
    Diff { before: PathBuf, after: PathBuf },
    /// Join the reports of all N shards of one campaign (`--shard I/N`) into
    /// the report one unsharded run would have written.
    Merge {
        /// The shard reports, in any order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where to write the merged report.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a report as a self-contained HTML page.
    Html {
        file: PathBuf,
        /// Default: FILE with the extension .html.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the JSON Schema of survival reports (committed as
    /// reports/survival-report.schema.json) or of soundness reports
    /// (reports/soundness-report.schema.json).
    Schema {
        /// survival or soundness.
        #[arg(default_value_t = ReportKind::Survival)]
        kind: ReportKind,
    },
}

pub fn run(a: ReportArgs) -> Result<ExitCode> {
    match a.command {
        ReportCommand::Show { file } => {
            print!("{}", read_report(&file)?.human_summary());
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::Diff { before, after } => {
            let (a, b) = (read_report(&before)?, read_report(&after)?);
            let diff = ReportDiff::between(&before.display().to_string(), &a, &after.display().to_string(), &b);
            print!("{}", diff.render());
            Ok(if diff.regressions() > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        ReportCommand::Merge { files, out } => {
            let parts = files
                .iter()
                .map(|f| Ok(NamedReport { name: f.display().to_string(), report: read_report(f)? }))
                .collect::<Result<Vec<_>>>()?;
            let merged = merge_shards(&parts)?;
            write_json_report("--out", &out, &merged)?;
            let s = &merged.summary;
            println!(
                "merged {} shards: {} cells, {} trials, {} unexpected, {} with model violations; report: {}",
                parts.len(),
                s.cells,
                s.trials,
                s.unexpected,
                s.model_violations,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::Html { file, out } => {
            let report = read_report(&file)?;
            let out = out.unwrap_or_else(|| file.with_extension("html"));
            write_output("--out", &out, &render_html(&report))?;
            println!("wrote {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::Schema { kind } => {
            print!("{}", kind.schema_text());
            Ok(ExitCode::SUCCESS)
        }
    }
}
