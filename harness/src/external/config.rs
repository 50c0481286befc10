//! What an external run is given: the user's commands and the run's
//! choices ([`ExternalConfig`]), checked before anything starts, and how
//! each program is supervised ([`Supervision`]). Both the engine and the
//! code that runs one trial or one checker read these; they sit apart from
//! the engine so that neither has to import the other.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::command::{CommandLine, Role};
use super::power_loss::PowerLossOptions;
use super::ExternalError;
use crate::program_plan::ProgramPoints;
use crate::report::external::{ExternalReplayLine, ExternalRunConfig, ReplayTarget};
use crate::trial_space::Shard;
use crate::vocab::CrashKind;

/// How the user's programs are supervised: how long any one may run, when
/// to give up (`cancel` is the caller's, Ctrl-C; `abandon` the engine's own,
/// set when another trial failed), and whether they die with crashlab.
#[derive(Clone, Copy)]
pub struct Supervision<'a> {
    pub timeout: Duration,
    pub cancel: &'a AtomicBool,
    abandon: Option<&'a AtomicBool>,
    /// Give every program `PR_SET_PDEATHSIG` (SIGKILL), so that it dies if
    /// crashlab is killed outright (its process group would escape a kill
    /// of crashlab's group). This costs a plain fork instead of the
    /// vfork-like `posix_spawn` (about a fifth of the trial rate of a
    /// trivial writer); without it, a SIGKILLed crashlab leaves the programs
    /// of the trials in flight running to their end. Every other exit path
    /// kills them either way.
    pub die_with_crashlab: bool,
}

impl<'a> Supervision<'a> {
    pub fn new(timeout: Duration, cancel: &'a AtomicBool) -> Supervision<'a> {
        Supervision { timeout, cancel, abandon: None, die_with_crashlab: true }
    }

    /// Should the program being supervised be killed now?
    pub fn stopped(&self) -> bool {
        self.cancel.load(Ordering::SeqCst) || self.abandon.is_some_and(|a| a.load(Ordering::SeqCst))
    }

    pub fn timeout_secs(&self) -> u64 {
        self.timeout.as_secs()
    }

    /// The same, also stopped when `abandon` is set (by the engine, when
    /// another trial failed).
    pub(crate) fn with_abandon(self, abandon: &'a AtomicBool) -> Supervision<'a> {
        Supervision { abandon: Some(abandon), ..self }
    }
}

/// Everything an external run needs.
#[derive(Debug, Clone)]
pub struct ExternalConfig {
    pub writer: CommandLine,
    /// The `--checker` (role [`Role::Checker`], protocol v1) or the
    /// `--checker-server` (role [`Role::CheckerServer`], protocol v1.1).
    pub checker: CommandLine,
    pub setup: Option<CommandLine>,
    pub crashes: Vec<CrashKind>,
    /// Trials per crash kind.
    pub trials: u32,
    pub seed: u64,
    pub jobs: usize,
    /// The longest any one setup, writer or checker may run.
    pub timeout: Duration,
    /// Where the run's temporary directory is made.
    pub dir: PathBuf,
    /// See [`Supervision::die_with_crashlab`].
    pub die_with_crashlab: bool,
    /// `--tear`: power-loss states choose per sector of this many bytes
    /// (it must divide the page size) instead of per page.
    pub tear: Option<u64>,
    pub power_loss: PowerLossOptions,
    /// `--crash power-loss-real`: the filesystem and the evidence directory.
    pub real_cut: crate::external::real_cut::options::RealCutOptions,
    /// `--allow-no-acks`: a run whose clean run, or every trial of a crash
    /// kind, saw no ack is a pass rather than `nothing-acked`.
    pub allow_no_acks: bool,
    /// `--shard I/N`: run only a contiguous block of every crash kind's
    /// trials (see [`ExternalConfig::trial_indices`]).
    pub shard: Option<Shard>,
    /// `--points`: where `sigkill`, `abort` and `power-loss` trials crash
    /// (`sigbus` trials cut a file at a random time either way).
    pub points: ProgramPoints,
    /// `--crash eio-sync:K`: every `eio-sync` trial fails the K-th data
    /// sync (1-based); none: the failed sync is spread over the run.
    pub eio_at: Option<u64>,
    /// `--capacity`: the bytes the filesystem of `enospc` trials holds
    /// (None: derived from the clean run, see
    /// [`crate::vocab::capacity::default_capacity`]).
    pub capacity: Option<u64>,
    /// `--capacity-fs`: the filesystem of `enospc` trials (tmpfs, no
    /// privilege; ext4 as root).
    pub capacity_fs: crate::vocab::capacity::CapacityFs,
    /// The executable that serves `__capacity` for `enospc` trials (None:
    /// this executable, the `crashlab` binary; tests give
    /// `crashlab-worker`).
    pub capacity_helper: Option<PathBuf>,
    /// The durability oracle is known not to run here, and why (a probe
    /// said so): `enospc` trials then run untraced and their report says
    /// why, as when a trial finds out itself (no ptrace, seccomp or
    /// `setns`).
    pub oracle_unavailable: Option<String>,
    /// `bench faults`: the `enospc` trials judge their power-loss states
    /// as under `--crash enospc,power-loss`, without the separate
    /// `power-loss` trials (`crashes` holds `enospc` alone), so that a run
    /// times those trials only.
    pub enospc_states_without_power_loss_trials: bool,
    /// Counted as the run goes; shared with whoever prints progress.
    pub progress: Arc<RunProgress>,
}

impl ExternalConfig {
    /// Parse the three command strings (see [`CommandLine::parse`]); other
    /// fields get defaults: sigkill, 100 trials, seed 0, 1 job, 60 s, the
    /// system temp dir, programs die with crashlab.
    pub fn new(writer: &str, checker: &str, setup: Option<&str>, shell: bool) -> Result<ExternalConfig, ExternalError> {
        ExternalConfig::with_checker(writer, Role::Checker, checker, setup, shell)
    }

    /// The same with a checker server (protocol v1.1, `--checker-server`)
    /// instead of a v1 checker.
    pub fn with_checker_server(
        writer: &str,
        server: &str,
        setup: Option<&str>,
        shell: bool,
    ) -> Result<ExternalConfig, ExternalError> {
        ExternalConfig::with_checker(writer, Role::CheckerServer, server, setup, shell)
    }

    fn with_checker(
        writer: &str,
        role: Role,
        checker: &str,
        setup: Option<&str>,
        shell: bool,
    ) -> Result<ExternalConfig, ExternalError> {
        Ok(ExternalConfig {
            writer: CommandLine::parse(Role::Writer, writer, shell)?,
            checker: CommandLine::parse(role, checker, shell)?,
            setup: setup.map(|s| CommandLine::parse(Role::Setup, s, shell)).transpose()?,
            crashes: vec![CrashKind::Sigkill],
            trials: 100,
            seed: 0,
            jobs: 1,
            timeout: Duration::from_secs(60),
            dir: std::env::temp_dir(),
            die_with_crashlab: true,
            tear: None,
            power_loss: PowerLossOptions::default(),
            real_cut: Default::default(),
            allow_no_acks: false,
            shard: None,
            points: ProgramPoints::Default,
            eio_at: None,
            capacity: None,
            capacity_fs: Default::default(),
            capacity_helper: None,
            oracle_unavailable: None,
            enospc_states_without_power_loss_trials: false,
            progress: Arc::default(),
        })
    }

    /// Is each `enospc` trial also judged at a power loss at the writer's
    /// end (`--crash enospc,power-loss`)?
    pub fn judges_states_after_full_disk(&self) -> bool {
        self.crashes.contains(&CrashKind::Enospc)
            && (self.crashes.contains(&CrashKind::PowerLoss) || self.enospc_states_without_power_loss_trials)
    }

    /// Reject what cannot run, naming the flag, before anything starts.
    pub fn validate(&self) -> Result<(), ExternalError> {
        if self.crashes.is_empty() {
            return Err(ExternalError::BadInput("--crash needs at least one crash kind".into()));
        }
        if self.crashes.contains(&CrashKind::Clean) {
            return Err(ExternalError::BadInput(
                "--crash clean: a program's clean run always runs first; give the crash kinds to try after it \
                 (sigkill, abort, sigbus, power-loss, enospc)"
                    .into(),
            ));
        }
        if self.eio_at == Some(0) {
            return Err(ExternalError::BadInput("--crash eio-sync:0: data syncs are counted from 1".into()));
        }
        if self.eio_at.is_some() && !self.crashes.contains(&CrashKind::EioSync) {
            return Err(ExternalError::BadInput("a failed sync number applies to --crash eio-sync:K only".into()));
        }
        if let Some(tear) = self.tear {
            if !self.crashes.iter().any(|c| matches!(c, CrashKind::PowerLoss | CrashKind::EioSync)) {
                return Err(ExternalError::BadInput(format!(
                    "--tear {tear}: only --crash power-loss and eio-sync tear pages"
                )));
            }
            let page = crate::page_size::page_size();
            if tear == 0 || page % tear != 0 {
                return Err(ExternalError::BadInput(format!(
                    "--tear {tear}: the sector size must divide the page size ({page} bytes)"
                )));
            }
        }
        if self.crashes.contains(&CrashKind::PowerLossReal) {
            if let Some(why) = crate::external::real_cut::options::unavailable() {
                return Err(ExternalError::BadInput(format!("--crash power-loss-real: {why}")));
            }
            if let Some(shard) = self.shard {
                return Err(ExternalError::BadInput(format!(
                    "--shard {shard}: --crash power-loss-real runs its cuts one after another on one filesystem \
                     and cannot be sharded"
                )));
            }
        }
        if let Some(c) = self.capacity {
            if !self.crashes.contains(&CrashKind::Enospc) {
                return Err(ExternalError::BadInput(format!("--capacity {c}: only --crash enospc has a capacity")));
            }
            crate::vocab::capacity::check_capacity(c, crate::page_size::page_size(), self.capacity_fs)
                .map_err(ExternalError::BadInput)?;
        }
        let fs = self.capacity_fs;
        if fs != Default::default() && !self.crashes.contains(&CrashKind::Enospc) {
            return Err(ExternalError::BadInput(format!("--capacity-fs {fs}: only --crash enospc has a capacity")));
        }
        // SAFETY: geteuid has no preconditions.
        if fs.needs_root() && unsafe { libc::geteuid() } != 0 {
            return Err(ExternalError::BadInput(format!(
                "--capacity-fs {fs} needs root (a loop device and a mount); the default, tmpfs, needs no privilege"
            )));
        }
        if self.trials == 0 {
            return Err(ExternalError::BadInput("--trials must be at least 1".into()));
        }
        if self.jobs == 0 {
            return Err(ExternalError::BadInput("--jobs must be at least 1".into()));
        }
        if self.timeout.is_zero() {
            return Err(ExternalError::BadInput("--timeout must be at least 1 second".into()));
        }
        if !self.dir.is_dir() {
            return Err(ExternalError::BadInput(format!("--dir {}: not a directory", self.dir.display())));
        }
        Ok(())
    }

    pub fn supervision<'a>(&self, cancel: &'a AtomicBool) -> Supervision<'a> {
        Supervision { die_with_crashlab: self.die_with_crashlab, ..Supervision::new(self.timeout, cancel) }
    }

    pub fn run_config(&self) -> ExternalRunConfig {
        let mut crashes = self.crashes.clone();
        dedup_in_order(&mut crashes);
        ExternalRunConfig {
            writer: self.writer.text.clone(),
            checker: self.checker.text.clone(),
            checker_server: self.checker.role == Role::CheckerServer,
            setup: self.setup.as_ref().map(|s| s.text.clone()),
            shell: self.writer.shell,
            crashes,
            trials: self.trials,
            timeout_secs: self.timeout.as_secs(),
            tear: self.tear,
            allow_no_acks: self.allow_no_acks,
            shard: self.shard,
            fs_model: (self.power_loss.fs_model != crate::namespace::FsModel::Posix)
                .then_some(self.power_loss.fs_model),
            points: (self.points != ProgramPoints::Default).then_some(self.points),
            history_off: !self.power_loss.history.record,
            history_every_us: self.power_loss.history.every.map(|d| d.as_micros() as u64),
            real_fs: self.crashes.contains(&CrashKind::PowerLossReal).then_some(self.real_cut.fs),
            writeback: (self.crashes.contains(&CrashKind::PowerLossReal) && !self.real_cut.writeback.is_none())
                .then_some(self.real_cut.writeback),
            eio_at: self.eio_at,
            capacity: self.capacity,
            capacity_fs: (self.capacity_fs != Default::default()).then_some(self.capacity_fs),
        }
    }

    /// The trial indices of every crash kind this run runs: all of
    /// `0..trials`, or the block of its shard. Blocks, not a stride: the
    /// shards of one run tile each kind's trials in order, so merging their
    /// reports gives exactly the unsharded report.
    pub fn trial_indices(&self) -> std::ops::Range<u32> {
        match self.shard {
            None => 0..self.trials,
            Some(s) => {
                let r = s.block(self.trials as usize);
                r.start as u32..r.end as u32
            }
        }
    }

    /// Trials of one crash kind this run runs.
    pub fn trials_per_kind(&self) -> u32 {
        self.trial_indices().len() as u32
    }

    pub fn replay_line(&self, target: ReplayTarget) -> ExternalReplayLine {
        ExternalReplayLine { config: self.run_config(), seed: self.seed, target, state: None }
    }
}

fn dedup_in_order<T: PartialEq + Copy>(v: &mut Vec<T>) {
    let mut seen = Vec::new();
    v.retain(|x| {
        let new = !seen.contains(x);
        seen.push(*x);
        new
    });
}

/// What a run has done so far, for progress lines read from another thread.
#[derive(Debug, Default)]
pub struct RunProgress {
    /// Trials finished, every crash kind (power loss included).
    pub trials_done: AtomicU64,
    /// Checker runs on power-loss states (shrinking included).
    pub states_checked: AtomicU64,
    /// Power-loss states not shown to the checker: byte-identical to a
    /// state of the same trial already checked (its verdict was reused).
    pub states_skipped: AtomicU64,
}

impl RunProgress {
    pub(crate) fn trial_done(&self) {
        self.trials_done.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn state_checked(&self) {
        self.states_checked.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn state_skipped(&self) {
        self.states_skipped.fetch_add(1, Ordering::Relaxed);
    }
}

/// Errors that belong to one trial get its name and replay line; bad input
/// and interruptions do not.
pub(crate) fn in_trial(e: ExternalError, trial: String, replay: &ExternalReplayLine) -> ExternalError {
    match e {
        ExternalError::Timeout { .. }
        | ExternalError::Failed { .. }
        | ExternalError::CheckerMalfunction { .. }
        | ExternalError::AckOverflow { .. }
        | ExternalError::Io { .. } => ExternalError::InTrial { trial, replay: replay.to_string(), error: Box::new(e) },
        other => other,
    }
}
