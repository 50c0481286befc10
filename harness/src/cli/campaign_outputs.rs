//! What a campaign (`matrix`, `run`, `run --writer`) writes besides its JSON
//! report: a self-contained HTML page, JUnit XML for CI, and its failing
//! trials appended to a regressions file (by default, for the built-in
//! scenarios only, the one the scenario tests replay).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;

use crashlab::report::external::ExternalReport;
use crashlab::report::external_html::render_external_html;
use crashlab::report::external_junit::external_junit_xml;
use crashlab::report::file::write_atomically;
use crashlab::report::html::render_html;
use crashlab::report::junit::junit_xml;
use crashlab::report::regressions::{append_external_regressions, append_regressions};
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
    /// (that is, when run from the root of a crashlab checkout). With
    /// --writer: only to the FILE given, never by default.
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

impl OutputArgs {
    /// The same outputs for the report of a user's program (`run --writer`).
    /// No regressions file by default: the checkout's is for the built-in
    /// scenarios, whose tests parse every line of it.
    pub fn write_external(&self, report: &ExternalReport, quiet: bool) -> Result<()> {
        if let Some(path) = &self.html {
            write_output("--html", path, &render_external_html(report))?;
        }
        if let Some(path) = &self.junit {
            write_output("--junit", path, &external_junit_xml(report)?)?;
        }
        if let Some(path) = &self.regressions {
            let n = append_external_regressions(path, report).context("--regressions")?;
            if n > 0 && !quiet {
                eprintln!("crashlab: appended {n} failing trial(s) to {}", path.display());
            }
        }
        Ok(())
    }
}

/// Write `text` to `path` (named with `flag` in errors), creating parent
/// directories as `--out` does, atomically (see `crashlab::report::file`).
pub fn write_output(flag: &str, path: &Path, text: &str) -> Result<()> {
    Ok(write_atomically(flag, path, text.as_bytes())?)
}
