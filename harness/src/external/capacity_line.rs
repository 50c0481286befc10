//! The capacity helper as crashlab starts it for one `enospc` trial, traced
//! or not: its command line (the writer's, wrapped: `crashlab __capacity FS
//! BYTES DIR STATUS [--hold] PROGRAM ARGS...`), its status file, and the
//! status read back once it exited.

use std::path::PathBuf;

use super::capacity_helper::{CapacityStatus, HOLD, SUBCOMMAND};
use super::command::CommandLine;
use super::config::ExternalConfig;
use super::process::Finished;
use super::trial::{failed, TrialSlot};
use super::ExternalError;
use crate::vocab::ProcessEnd;

/// One trial's helper: how it is started and where it says how it went.
pub(crate) struct HelperLine {
    pub line: CommandLine,
    pub status: PathBuf,
    capacity: u64,
}

impl HelperLine {
    /// The helper `program` for a trial in `files` on `capacity` bytes;
    /// `hold`: it holds the filesystem while crashlab runs the writer. A
    /// stale status file is removed.
    pub fn new(
        config: &ExternalConfig,
        program: &std::path::Path,
        files: &TrialSlot,
        capacity: u64,
        hold: bool,
    ) -> Result<HelperLine, ExternalError> {
        let status = files.acks.with_extension("capacity");
        match std::fs::remove_file(&status) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(ExternalError::io(format!("cannot remove {}", status.display()), e))
            }
            _ => {}
        }
        let mut prefix = vec![
            SUBCOMMAND.to_owned(),
            config.capacity_fs.name().to_owned(),
            capacity.to_string(),
            files.dir.to_string_lossy().into_owned(),
            status.to_string_lossy().into_owned(),
        ];
        if hold {
            prefix.push(HOLD.to_owned());
        }
        Ok(HelperLine { line: config.writer.wrapped(program, &prefix), status, capacity })
    }

    /// "could not be run on a ... by the capacity helper (`crashlab
    /// __capacity`, DETAIL)": the error of a helper that failed, naming
    /// the writer.
    pub fn failed(&self, config: &ExternalConfig, detail: &str, finished: &Finished) -> ExternalError {
        let how = format!(
            "could not be run on a {}-byte {} by the capacity helper (`{}`, {detail})",
            self.capacity,
            config.capacity_fs,
            self.line.argv()[..2].join(" "),
        );
        failed(&config.writer, how, finished)
    }

    /// The status the helper wrote, once it `finished` with exit 0.
    pub fn status(&self, config: &ExternalConfig, finished: &Finished) -> Result<CapacityStatus, ExternalError> {
        let status: Option<CapacityStatus> =
            std::fs::read_to_string(&self.status).ok().and_then(|text| serde_json::from_str(&text).ok());
        match status {
            Some(s) if finished.end == ProcessEnd::Exited(0) => Ok(s),
            _ => Err(self.failed(config, &finished.end.to_string(), finished)),
        }
    }
}
