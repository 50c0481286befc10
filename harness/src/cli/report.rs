//! `crashlab report`: read, compare, merge and render reports: survival
//! reports (`matrix`, `run --scenario`), external reports (`run
//! --writer`) and soundness reports (`soundness`), told apart by their JSON.
//!
//! Exit codes: `show`, `merge`, `html` and `schema` exit 0 once done; `diff`
//! exits 1 when a cell (survival), a trial or crash kind (external) or a
//! filesystem (soundness) regressed, 0 otherwise; `merge` refuses soundness
//! reports (they have no shards); all exit 2 on a file that cannot be read, is of
//! another major schema version, does not merge, or is of another kind than
//! the reports it is compared or merged with.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};

use crashlab::report::diff::ReportDiff;
use crashlab::report::external_diff::ExternalDiff;
use crashlab::report::external_html::render_external_html;
use crashlab::report::external_merge::{merge_external_shards, NamedExternalReport};
use crashlab::report::file::write_json_report;
use crashlab::report::html::render_html;
use crashlab::report::merge::{merge_shards, NamedReport};
use crashlab::report::read::{read_any_report, AnyReport};
use crashlab::report::schema::ReportKind;
use crashlab::report::soundness_diff::SoundnessDiff;
use crashlab::report::soundness_html::render_soundness_html;

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
        /// A survival, external or soundness report (JSON).
        file: PathBuf,
    },
    /// Show what changed from BEFORE to AFTER, two reports of one kind.
    /// Survival: cells matched by scenario, crash kind and model; exit 1 if
    /// a cell regressed (its verdict got worse, or it lost acks it kept
    /// before). External: trials matched by crash kind and index; exit 1 if
    /// a trial (or the clean run) passed before and fails now, or a crash
    /// kind without violations has some. Soundness: filesystems matched by
    /// name, backend and cut; exit 1 if one was sound and now is not.
    Diff { before: PathBuf, after: PathBuf },
    /// Join the reports of all N shards of one campaign or external run
    /// (`--shard I/N`) into the report one unsharded run would have written.
    Merge {
        /// The shard reports, in any order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Where to write the merged report.
        #[arg(long)]
        out: PathBuf,
    },
    /// Write a report (survival, external or soundness) as a self-contained HTML page.
    Html {
        file: PathBuf,
        /// Default: FILE with the extension .html.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the JSON Schema of survival reports (committed as
    /// reports/survival-report.schema.json), of soundness reports
    /// (reports/soundness-report.schema.json) or of external reports
    /// (reports/external-report.schema.json).
    Schema {
        /// survival, soundness or external.
        #[arg(default_value_t = ReportKind::Survival)]
        kind: ReportKind,
    },
}

fn name(p: &Path) -> String {
    p.display().to_string()
}

pub fn run(a: ReportArgs) -> Result<ExitCode> {
    match a.command {
        ReportCommand::Show { file } => {
            print!("{}", read_any_report(&file)?.human_summary());
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::Diff { before, after } => {
            let regressions = match (read_any_report(&before)?, read_any_report(&after)?) {
                (AnyReport::Survival(a), AnyReport::Survival(b)) => {
                    let diff = ReportDiff::between(&name(&before), &a, &name(&after), &b);
                    print!("{}", diff.render());
                    diff.regressions()
                }
                (AnyReport::External(a), AnyReport::External(b)) => {
                    let diff = ExternalDiff::between(&name(&before), &a, &name(&after), &b);
                    print!("{}", diff.render());
                    diff.regressions()
                }
                (AnyReport::Soundness(a), AnyReport::Soundness(b)) => {
                    let diff = SoundnessDiff::between(&name(&before), &a, &name(&after), &b);
                    print!("{}", diff.render());
                    diff.regressions()
                }
                (a, b) => bail!(
                    "{} is {} report and {} {} report: only reports of one kind compare",
                    before.display(),
                    a.kind_text(),
                    after.display(),
                    b.kind_text()
                ),
            };
            Ok(if regressions > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        ReportCommand::Merge { files, out } => {
            let parts = files.iter().map(|f| Ok((name(f), read_any_report(f)?))).collect::<Result<Vec<_>>>()?;
            if let Some((name, _)) = parts.iter().find(|(_, r)| matches!(r, AnyReport::Soundness(_))) {
                bail!(
                    "{name} is a soundness report: `crashlab soundness` has no --shard, so there are no shards to \
                     merge (compare two campaigns with `crashlab report diff`)"
                );
            }
            if parts.iter().all(|(_, r)| matches!(r, AnyReport::External(_))) {
                let parts: Vec<NamedExternalReport> = parts
                    .into_iter()
                    .map(|(name, r)| match r {
                        AnyReport::External(report) => NamedExternalReport { name, report: *report },
                        AnyReport::Survival(_) | AnyReport::Soundness(_) => unreachable!("all external"),
                    })
                    .collect();
                let merged = merge_external_shards(&parts)?;
                write_json_report("--out", &out, &merged)?;
                let s = &merged.summary;
                println!(
                    "merged {} shards: {} trials, {} violations: {}; report: {}",
                    parts.len(),
                    s.trials,
                    s.violations,
                    s.verdict,
                    out.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            let mut survival = Vec::new();
            for (name, r) in parts {
                match r {
                    AnyReport::Survival(report) => survival.push(NamedReport { name, report: *report }),
                    AnyReport::External(_) => {
                        bail!("{name} is an external report and the others are not: only reports of one kind merge")
                    }
                    AnyReport::Soundness(_) => unreachable!("refused above"),
                }
            }
            let merged = merge_shards(&survival)?;
            write_json_report("--out", &out, &merged)?;
            let s = &merged.summary;
            println!(
                "merged {} shards: {} cells, {} trials, {} unexpected, {} with model violations; report: {}",
                survival.len(),
                s.cells,
                s.trials,
                s.unexpected,
                s.model_violations,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::Html { file, out } => {
            let page = match read_any_report(&file)? {
                AnyReport::Survival(r) => render_html(&r),
                AnyReport::External(r) => render_external_html(&r),
                AnyReport::Soundness(r) => render_soundness_html(&r),
            };
            let out = out.unwrap_or_else(|| file.with_extension("html"));
            write_output("--out", &out, &page)?;
            println!("wrote {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::Schema { kind } => {
            print!("{}", kind.schema_text());
            Ok(ExitCode::SUCCESS)
        }
    }
}
