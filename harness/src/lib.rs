//! crashlab: a crash-consistency laboratory for memory-mapped files.
//!
//! See `ARCHITECTURE.md` at the repository root for the bird's-eye view and
//! the code map.
//!
//! - Words (pure, the bottom): [`vocab`] (crash kinds, real-cut backends
//!   and filesystems, environment facts), [`trial_space`] (shards),
//!   [`page_size`], [`output_error`], [`summary_text`].
//! - Pure logic (no OS effects, fast unit tests): [`spec`], [`payload`],
//!   [`crash`], [`page_allocation`], [`journal`], [`live_image`], [`program_plan`],
//!   [`process_model`], [`power_loss`], [`expectation`], [`scenario`],
//!   [`trial_record`], [`explore`] (the one exploration kernel of every
//!   power-loss state space), [`report`] (every report kind: types,
//!   aggregation, reading, schema, diff, merge, HTML, JUnit).
//! - Checks before a run: [`flag_limits`] (the flags' fixed maxima, pure),
//!   [`limits`] (what a config needs of the machine: pure estimates, compared with what
//!   `/proc/meminfo` and [`disk_space`] (statvfs; disk-full errors that say
//!   so) report).
//! - OS effects: [`worker_pool`] (one pool of worker processes),
//!   [`private_mount`] (namespaces and mounts only this process sees), [`lab`]
//!   (built-in writers: the forking worker), [`external`] (users' programs,
//!   workload protocol v1), [`oracle`] (seccomp+ptrace durability oracle),
//!   [`realcut`] (real power cuts on loop devices and in guests).
//! - Engine: [`matrix`] (config → cells → report), [`trial_replay`].
//! - [`testkit`]: crash-testing Rust closures from an ordinary `#[test]`
//!   (the test binary re-executes itself as the writer and the checker).

pub mod crash;
pub mod disk_space;
pub mod environment;
pub mod expectation;
pub mod explore;
pub mod external;
pub mod flag_limits;
pub mod journal;
pub mod lab;
pub mod lifecycle;
pub mod limits;
pub mod live_image;
pub mod matrix;
pub mod namespace;
pub mod object_file;
pub mod oracle;
pub mod output_error;
pub mod page_allocation;
pub mod page_buffer;
pub mod page_history;
pub mod page_size;
pub mod payload;
pub mod power_loss;
pub mod private_mount;
pub mod proc_stat;
pub mod process_model;
pub mod program_plan;
pub mod realcut;
pub mod report;
pub mod scenario;
pub mod spec;
pub mod summary_text;
pub mod symbolize;
pub mod testkit;
pub mod trial_record;
pub mod trial_replay;
pub mod trial_space;
pub mod utc_time;
pub mod vocab;
pub mod worker_pool;

/// Errors of the lab and the engine. Each says what failed and with which
/// path, command or value.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("{0}")]
    Spec(String),
    /// The OS error is part of the message, not also `source()`, so an
    /// error chain prints it once.
    #[error("{what}: {error}")]
    Io { what: String, error: std::io::Error },
    /// A report or other output that could not be written.
    #[error(transparent)]
    Output(#[from] output_error::OutputError),
    #[error("corrupt journal: {0}")]
    Journal(String),
    #[error("worker {id}: {message}")]
    Worker { id: u32, message: String },
    #[error("interrupted")]
    Interrupted,
}

impl LabError {
    pub fn io(what: impl Into<String>, error: std::io::Error) -> LabError {
        LabError::Io { what: what.into(), error }
    }
}

/// A fresh temporary directory in `parent` that only its owner may enter
/// (0700, whatever the umask), for crashlab's own work directories: the
/// files under test, images, state directories. Removed when dropped.
pub fn private_tempdir_in(prefix: &str, parent: &std::path::Path) -> std::io::Result<tempfile::TempDir> {
    use std::os::unix::fs::PermissionsExt;
    tempfile::Builder::new().prefix(prefix).permissions(std::fs::Permissions::from_mode(0o700)).tempdir_in(parent)
}
