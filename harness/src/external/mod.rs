//! Crash-testing the user's own programs: **workload protocol v1**.
//!
//! The built-in scenarios generate their writers from a seed; this module
//! runs programs crashlab knows nothing about. A *writer* mutates files in a
//! directory and says which of its operations it considers durable; a
//! *checker* looks at what a crash left behind and says whether it is
//! consistent and holds every operation the writer vouched for.
//!
//! # Protocol v1
//!
//! For every trial crashlab
//!
//! 1. provides an empty directory (the *trial directory*; one per job,
//!    emptied between its trials, since removing a directory costs about a
//!    millisecond on ext4 mounted with `discard`);
//! 2. runs the optional `--setup` command, then the `--writer` command, both
//!    with the trial directory as their working directory and the
//!    environment variables
//!    - `CRASHLAB_DIR` = the trial directory (absolute path),
//!    - `CRASHLAB_SEED` = a decimal integer derived for this trial from the
//!      run's seed (`crashlab::scenario::derive_seed`); the writer may use it
//!      to vary what it writes. The same seed and trial index always give the
//!      same `CRASHLAB_SEED`;
//!
//!    (every program also gets [`ENV_TAG`], for crashlab's own use: it finds
//!    the processes the program started that left its process group);
//! 3. reads the writer's standard output as it arrives: every complete line
//!    (ending in `\n`) is one *acknowledged* operation. The writer prints a
//!    line only once it considers the operation durable, and flushes after
//!    each line. A final line without `\n` is not an acknowledgement. One
//!    line may hold at most [`MAX_ACK_LINE_BYTES`], one writer run at most
//!    [`MAX_ACK_BYTES`] and [`MAX_ACK_LINES`] lines: past either, the writer
//!    is killed and the trial fails with [`ExternalError::AckOverflow`];
//! 4. crashes the writer (see *Crash kinds*). The lines printed before the
//!    crash are the acknowledged set;
//! 5. runs the `--checker` command with the crashed trial directory as its
//!    working directory and the environment variables
//!    - `CRASHLAB_DIR` = the crashed trial directory,
//!    - `CRASHLAB_ACKS` = the path of a file, outside that directory, holding
//!      the acknowledged lines, one per line, in the order they were printed,
//!    - `CRASHLAB_SEED` = the value the writer of that directory had;
//! 6. classifies the checker's result: exit status 0 means the directory is
//!    consistent and every acknowledged operation is present; exit status 1
//!    means a violation, and the first line of the checker's standard error
//!    is the reason. Anything else (another status, death by a signal,
//!    running past `--timeout`) is a *checker malfunction*: a harness error,
//!    never a pass.
//!
//! # Protocol v1.1: a checker server
//!
//! `--checker-server CMD` instead of `--checker CMD`: the checker is
//! started once per job and judges one directory per request line
//! (`STATE_DIR<TAB>ACKS_PATH`), answering `ok` or `violation REASON` per
//! line; everything else above holds. See [`checker_server`] for the
//! protocol and its malfunctions.
//!
//! Each command is one string split into words the way a shell splits them
//! (quotes and backslashes work; no variables, globs or pipes), and no shell
//! runs unless `--shell` is given (then the string is run by `sh -c`). A
//! program path containing `/` is resolved against crashlab's working
//! directory; a bare name is looked up in `PATH`. Standard input is empty.
//!
//! # Crash kinds (process crashes)
//!
//! Before any crash, one *clean run* (setup, writer to completion, checker)
//! calibrates how long the writer takes and proves that the checker accepts
//! an uncrashed result; a checker that rejects it is reported as a
//! violation. Each trial then picks a time uniformly inside that duration
//! (from the seed). Both count from just before crashlab starts the writer:
//! the start-up (clone, exec, dynamic linking) is inside that duration, so a writer whose work is short
//! next to its start-up is mostly crashed before its first ack; the summary
//! says so when that happened to most crashes of a kind:
//!
//! - `sigkill`: `SIGKILL` to the writer's whole process group (the writer is
//!   started in a process group of its own, so its children die with it);
//! - `abort` (also read as `sigabrt`): `SIGABRT` to the writer's process group, as if it called
//!   `abort()`; whatever is left of the group once the writer is gone gets
//!   `SIGKILL`;
//! - `sigbus`: the writer's process group is stopped, the files it has
//!   mapped inside the trial directory are found in `/proc/PID/maps`, one is
//!   chosen (from the seed) and truncated to a shorter, page-aligned length
//!   (from the seed) *past its last non-zero byte*, then the group is
//!   continued. The writer's next store into a cut page dies of `SIGBUS`;
//!   a writer that never touches the cut pages runs on. Which of the two
//!   happened is recorded. Cutting only the all-zero tail means the
//!   truncation removes nothing the writer has stored (unless it stored
//!   zeros there), so a violation is the program's, not the truncation's;
//!   but a checker must accept a file that ends early. When no mapped file
//!   has such a tail, crashlab looks again every millisecond until the
//!   writer exits; a trial that never found one is counted as *not
//!   truncated*.
//!
//! With `--points syscalls` ([`crate::program_plan::ProgramPoints`]),
//! `sigkill` and `abort` trials run the writer under the durability oracle
//! instead (`traced_trial.rs`): a traced clean run counts the calls the
//! oracle records (every sync and `munmap`, every call on a file of the
//! trial directory), even trials crash just before or just after one of
//! them (spread over all of them, before and after each), odd trials at a
//! random time of the traced run. `SIGKILL` at a call kills every traced
//! process there; `SIGABRT` is made pending for the calling thread as if it
//! arrived just before the call (which the kernel restarts after a handler
//! that returns) or just after it returned (see
//! [`crate::oracle::CrashSignal`]).
//!
//! A writer that finishes before its crash time is counted as such and
//! still checked. Core dumps are disabled: crashlab lowers its own soft
//! core-size limit to 1 byte, inherited by every program it starts (a dump
//! would land in the trial directory). When the writer's process ends,
//! anything left in its process group is killed.
//!
//! # Power loss
//!
//! `power-loss` simulates a machine crash: the writer runs under the
//! durability oracle, is crashed at a sync call boundary or a random time,
//! and the checker judges the states a power loss may leave (every unit of
//! every file at its durable floor or at its newest content). See
//! [`power_loss`] for the model, the states explored, and how a failing
//! state is shrunk to a minimal explanation with a replay line.
//!
//! # Errors and results
//!
//! Bad input (an empty or unsplittable command, a missing program), a
//! writer that exits non-zero or dies on its own when not crashed, a writer
//! or setup that runs past `--timeout`, and a checker malfunction are
//! [`ExternalError`]s (the CLI exits 2). A checker saying "violation" is a
//! *result*, recorded in the [`ExternalReport`](crate::report::external::ExternalReport) with the replay line of its
//! trial (the CLI exits 1). A run in which the clean run, or every trial of
//! a crash kind, saw no ack tested nothing: its verdict is `nothing-acked`
//! ([`ExternalReport::nothing_acked`](crate::report::external::ExternalReport::nothing_acked); the CLI exits 2) unless
//! [`ExternalConfig::allow_no_acks`].
//!
//! # Processes and files
//!
//! Every command runs in a process group of its own, and by default with
//! `PR_SET_PDEATHSIG`, so it dies if the thread that started it does (its
//! own process group would escape a kill of crashlab's group). It is started
//! by a `clone(CLONE_VM | CLONE_VFORK)` whose child makes only
//! async-signal-safe system calls on data prepared before the clone (see
//! `spawn.rs`): as cheap as `posix_spawn`, which cannot set the parent-death
//! signal. Without the protection ([`Supervision::die_with_crashlab`] off),
//! `std::process::Command` starts it (`posix_spawn`). No Rust code runs in a
//! child either way.
//!
//! Nothing a command starts outlives it: crashlab is a child subreaper, and
//! every command carries [`ENV_TAG`] in its environment, inherited by what
//! it starts. When a command ends, is crashed, or its trial fails or is
//! cancelled, its group is killed, then every process carrying its tag that
//! left the group (`setsid`, a double fork; reparented to crashlab, not to
//! init), with everything below them, and they are reaped (see
//! `escapes.rs`). So a writer's daemon is gone before the checker runs, and
//! a setup cannot leave a process running for the writer. What the tag
//! cannot attribute (a process that also cleared its environment, a setuid
//! program an unprivileged crashlab cannot read) is killed by the
//! `crashlab` command as it exits ([`kill_all_descendants`]). A SIGKILLed
//! crashlab kills nothing: the commands it started directly die of the
//! parent-death signal unless they changed credentials (the kernel clears
//! it then), and what they started runs on. The writer of a power-loss
//! trial is started by the oracle instead, which traces every process of
//! its tree (`PTRACE_O_EXITKILL`: all of them die with crashlab) and kills
//! them all at the end of the traced run.
//!
//! Trial directories and acks files live in one temporary directory, removed
//! after each trial and at the end of the run.

mod capacity;
pub mod capacity_helper;
mod capacity_line;
mod capacity_traced;
pub(crate) mod checker;
pub mod checker_server;
mod command;
pub(crate) mod config;
mod dir_image;
mod engine;
mod escapes;
pub mod power_loss;
mod process;
pub mod real_cut;
mod sigbus;
mod spawn;
pub(crate) mod traced;
mod traced_trial;
mod trial;

use std::path::PathBuf;

pub use checker::{run_checker, write_acks_file};
pub use command::{CommandLine, Role};
pub use config::{ExternalConfig, RunProgress, Supervision};
pub use dir_image::{materialize_dir, snapshot_dir, DirImage};
pub use engine::{calibrate, replay_trial, replay_trial_in_state, run_external, Replayed};
pub use escapes::{kill_all_descendants, ENV_TAG};
pub use process::{AckLines, AckOverflow, MAX_ACK_BYTES, MAX_ACK_LINES, MAX_ACK_LINE_BYTES};
pub use sigbus::{parse_maps, parse_stat_pgrp};

/// The trial directory, for every program of the protocol.
pub const ENV_DIR: &str = "CRASHLAB_DIR";
/// The trial's seed, for the setup, the writer and the checker.
pub const ENV_SEED: &str = "CRASHLAB_SEED";
/// The file of acknowledged lines, for the checker.
pub const ENV_ACKS: &str = "CRASHLAB_ACKS";

/// Why an external run could not produce a result. Each names the flag,
/// command or path at fault; none of them is a verdict on the user's program.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    /// A command string that cannot be used.
    #[error("{flag} `{text}`: {reason}")]
    BadCommand { flag: &'static str, text: String, reason: String },
    /// Other bad input (a flag's value).
    #[error("{0}")]
    BadInput(String),
    #[error("cannot start the {role} `{program}` ({flag}): {error}")]
    Spawn { role: Role, flag: &'static str, program: String, error: std::io::Error },
    #[error("the {role} `{command}` ({flag}) was still running after --timeout {secs} s{while_doing}; it was killed")]
    Timeout { role: Role, flag: &'static str, command: String, secs: u64, while_doing: String },
    /// The setup command failed, or the writer failed when it was not crashed.
    #[error("the {role} `{command}` ({flag}) {how}{stderr}")]
    Failed { role: Role, flag: &'static str, command: String, how: String, stderr: String },
    /// The writer's standard output went past a cap of protocol v1
    /// ([`AckOverflow`]); it was killed.
    #[error("the {role} `{command}` ({flag}) {overflow} on its standard output; {caps}; it was killed")]
    AckOverflow { role: Role, flag: &'static str, command: String, overflow: AckOverflow, caps: String },
    /// `role` is the `--checker` (v1) or the `--checker-server` (v1.1);
    /// `on` the directory (v1) or the request (v1.1). The message ends with
    /// what a checker of that protocol must do.
    #[error("checker malfunction: `{command}` ({}) {how} on {on}{stderr}; {}", .role.flag(), checker::rule(*.role))]
    CheckerMalfunction { command: String, role: Role, how: String, on: String, stderr: String },
    /// The durability oracle cannot run the writer (`--crash power-loss`):
    /// no ptrace or seccomp, a writer using io_uring, ...
    #[error("--crash power-loss: the writer `{command}` (--writer) cannot run under the durability oracle: {error}")]
    Oracle { command: String, error: crate::oracle::OracleError },
    #[error("{what}: {error}")]
    Io { what: String, error: std::io::Error },
    #[error("--crash power-loss-real on {fs} (--real-fs): {error}")]
    RealCut { fs: crate::vocab::real_cut::FsKind, error: crate::realcut::RealcutError },
    /// The report could not be written (`--out`).
    #[error(transparent)]
    Output(#[from] crate::output_error::OutputError),
    /// An error inside one trial, with the line that reruns it.
    #[error("{trial}: {error}\n  replay: {replay}")]
    InTrial { trial: String, replay: String, error: Box<ExternalError> },
    #[error("interrupted")]
    Interrupted,
}

impl ExternalError {
    /// The writer of `line` went past `overflow`.
    pub(crate) fn ack_overflow(line: &CommandLine, overflow: AckOverflow) -> ExternalError {
        ExternalError::AckOverflow {
            role: line.role,
            flag: line.role.flag(),
            command: line.text.clone(),
            overflow,
            caps: process::ack_caps(),
        }
    }

    pub(crate) fn io(what: impl Into<String>, error: std::io::Error) -> ExternalError {
        ExternalError::Io { what: what.into(), error }
    }

    /// Was the run stopped by a cancel request (Ctrl-C) rather than failing?
    pub fn is_interrupted(&self) -> bool {
        match self {
            ExternalError::Interrupted => true,
            ExternalError::InTrial { error, .. } => error.is_interrupted(),
            _ => false,
        }
    }
}

/// Where a run keeps its trial directories: a temporary directory removed
/// when this is dropped (on every exit path but SIGKILL of crashlab).
pub(crate) fn run_dir(parent: &std::path::Path) -> Result<tempfile::TempDir, ExternalError> {
    let dir = crate::private_tempdir_in("crashlab-ext-", parent)
        .map_err(|e| ExternalError::io(format!("cannot create a work directory in {}", parent.display()), e))?;
    Ok(dir)
}

/// The canonical form of `path`, so it compares equal to what the kernel
/// prints in `/proc/PID/maps`.
pub(crate) fn canonical(path: &std::path::Path) -> Result<PathBuf, ExternalError> {
    std::fs::canonicalize(path).map_err(|e| ExternalError::io(format!("cannot resolve {}", path.display()), e))
}
