//! One pool of worker processes for every kind of worker: the lab's
//! (`crashlab __worker`, [`crate::lab`]) and the realcut worker
//! (`crashlab __realcut-worker`, [`crate::realcut`]).
//!
//! A worker is a single-threaded process started by fork+exec of a program
//! (`current_exe() <subcommand>`), which alone forks writer children. The
//! pool talks to it in JSON lines over its stdin/stdout, one request and one
//! answer per line. The pool may run in any process (cargo's multithreaded
//! test runner included): it only spawns with `std::process::Command`.
//!
//! - [`process`]: one worker process seen from the pool: spawn (with
//!   `PR_SET_PDEATHSIG`), send, receive (killing the worker on cancel when
//!   asked), errors naming the worker.
//! - [`schedule`]: batches spread over `jobs` workers, each owned by a
//!   thread, results in batch order, the first error stopping all.
//! - [`serve`]: the worker's side: its command line, the single-thread
//!   check, the request loop.
//!
//! The messages themselves are each kind's own (`lab/protocol.rs`,
//! `realcut/protocol.rs`): the pool and its workers are one binary, so they
//! change together.
//!
//! Architecture Invariant: nothing here imports the lab or realcut; they
//! build on it.

pub mod process;
pub mod schedule;
pub mod serve;

use std::ffi::OsString;
use std::path::PathBuf;

/// How to start a worker: a program and the arguments that make it serve
/// (the pool appends the common [`WorkerArgv`]).
#[derive(Debug, Clone)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

/// The hidden subcommand of the lab's worker (`crashlab __worker`).
pub const LAB_WORKER: &str = "__worker";
/// The hidden subcommand of the realcut worker (`crashlab __realcut-worker`).
pub const REALCUT_WORKER: &str = "__realcut-worker";

impl WorkerCommand {
    /// The running `crashlab` binary as the lab's worker ([`LAB_WORKER`]),
    /// the worker most runs use.
    pub fn current_exe() -> Result<WorkerCommand, WorkerError> {
        WorkerCommand::current_exe_as(LAB_WORKER)
    }

    /// The running `crashlab` binary in its hidden `subcommand` mode.
    pub fn current_exe_as(subcommand: &str) -> Result<WorkerCommand, WorkerError> {
        let program = std::env::current_exe()
            .map_err(|source| WorkerError::Io { what: "cannot find the crashlab executable".into(), source })?;
        Ok(WorkerCommand { program, args: vec![subcommand.into()] })
    }

    /// A binary whose `main` serves as a worker (e.g. `crashlab-worker`).
    pub fn binary(program: impl Into<PathBuf>) -> WorkerCommand {
        WorkerCommand { program: program.into(), args: Vec::new() }
    }
}

/// Errors of the pool and of a worker's request loop. Each names the worker
/// (its role and id) or what could not be done.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// A worker could not be started, or a worker could not use its pipes.
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
    /// A worker ended, answered with an error, or answered something
    /// unexpected or unreadable.
    #[error("{role} {id}: {message}")]
    Failed { role: &'static str, id: u32, message: String },
    /// The pool was cancelled (Ctrl-C).
    #[error("interrupted")]
    Interrupted,
}

/// The command line every worker takes after its subcommand: `--dir D --id N
/// --watchdog S`, plus the switches of its kind (`--host-mounts`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerArgv {
    /// Where the worker keeps its files (files under test, images, mounts).
    pub dir: PathBuf,
    /// Distinguishes the files of workers sharing `dir`; names the worker in errors.
    pub id: u32,
    /// A writer child still running after this many seconds dies.
    pub watchdog_secs: u32,
    /// Switches without a value, without their `--`.
    pub switches: Vec<String>,
}

impl WorkerArgv {
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--dir".into(),
            self.dir.clone().into(),
            "--id".into(),
            self.id.to_string().into(),
            "--watchdog".into(),
            self.watchdog_secs.to_string().into(),
        ];
        args.extend(self.switches.iter().map(|s| OsString::from(format!("--{s}"))));
        args
    }

    /// Parse what [`WorkerArgv::to_args`] made. Workers are started by
    /// crashlab, not by hand: only a missing `--dir` is an error; a bad
    /// number falls back to its default (id 0, watchdog 60 s).
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<WorkerArgv, String> {
        let (mut dir, mut id, mut watchdog_secs, mut switches) = (None, 0u32, 60u32, Vec::new());
        let mut it = args.into_iter();
        while let Some(a) = it.next() {
            let mut value = || it.next().and_then(|v| v.into_string().ok());
            match a.to_str() {
                Some("--dir") => dir = value().map(PathBuf::from),
                Some("--id") => id = value().and_then(|v| v.parse().ok()).unwrap_or(0),
                Some("--watchdog") => watchdog_secs = value().and_then(|v| v.parse().ok()).unwrap_or(60),
                Some(s) if s.starts_with("--") => switches.push(s[2..].to_string()),
                _ => {}
            }
        }
        let dir = dir.ok_or("--dir is required")?;
        Ok(WorkerArgv { dir, id, watchdog_secs, switches })
    }

    pub fn has_switch(&self, name: &str) -> bool {
        self.switches.iter().any(|s| s == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_worker_command_line_parses_back_to_itself() {
        let argv =
            WorkerArgv { dir: "/tmp/w d".into(), id: 7, watchdog_secs: 12, switches: vec!["host-mounts".into()] };
        let parsed = WorkerArgv::parse(argv.to_args()).unwrap();
        assert_eq!(parsed, argv);
        assert!(parsed.has_switch("host-mounts"));
        assert!(!parsed.has_switch("dir"));
    }

    #[test]
    fn a_worker_command_line_without_a_dir_is_refused_and_defaults_fill_the_rest() {
        let err = WorkerArgv::parse(["--id".into(), "3".into()]).unwrap_err();
        assert!(err.contains("--dir"), "{err}");
        let argv = WorkerArgv::parse(["--dir".into(), "/d".into(), "--watchdog".into(), "x".into()]).unwrap();
        assert_eq!((argv.id, argv.watchdog_secs), (0, 60));
    }
}
