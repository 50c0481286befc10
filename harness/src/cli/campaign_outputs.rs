//! What a campaign (`matrix`, `run`) writes besides its JSON report: a
//! self-contained HTML page, JUnit XML for CI, and its failing trials
//! appended to the regressions file the scenario tests replay.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use crashlab::report::file::write_atomically;
use crashlab::report::html::render_html;
use crashlab::report::junit::junit_xml;
use crashlab::report::regressions::append_regressions;
use crashlab::report::survival::SurvivalReport;

/// The regressions file of a crashlab checkout, relative to its root.
const CHECKOUT_REGRESSIONS: &str = "scenarios/regressions.txt";

#[derive(Args, Clone)]
pub struct OutputArgs {
    /// Also write the report as a self-contained HTML page (heatmap, cells,
    /// failures, environment) to FILE.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Also write JUnit XML to FILE: one test case per cell, failures with
    /// their verdict reason, details and replay lines.
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
    /// Append the replay line of every failing trial to FILE, which the
    /// scenario tests replay. Default: scenarios/regressions.txt if it exists
    /// (that is, when run from the root of a crashlab checkout).
    #[arg(long, value_name = "FILE")]
    regressions: Option<PathBuf>,
}

impl OutputArgs {
    pub fn write(&self, report: &SurvivalReport, quiet: bool) -> Result<()> {
        if let Some(path) = &self.html {
            write_output("--html", path, &render_html(report))?;
        }
        if let Some(path) = &self.junit {
            write_output("--junit", path, &junit_xml(report)?)?;
        }
        let regressions = self.regressions.clone().or_else(|| {
            let default = PathBuf::from(CHECKOUT_REGRESSIONS);
            default.is_file().then_some(default)
        });
        if let Some(path) = regressions {
            let n = append_regressions(&path, report).context("--regressions")?;
            if n > 0 && !quiet {
                eprintln!("crashlab: appended {n} failing trial(s) to {}", path.display());
            }
        }
        Ok(())
    }
}

/// Write `text` to `path` (named with `flag` in errors), creating parent
/// directories as `--out` does, atomically (see `report_file`).
pub fn write_output(flag: &str, path: &Path, text: &str) -> Result<()> {
    Ok(write_atomically(flag, path, text.as_bytes())?)
}
