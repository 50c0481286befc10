//! The matrix's lifecycle rows: one run of the external engine per kind
//! (the same engine as `crashlab run --writer`, so the same power-loss
//! model, no second one), its programs being `crashlab __lifecycle ...`,
//! and the cells of the report's `lifecycle` section made from its report.

use std::fs::File;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::family::LifecycleKind;
use super::program::SUBCOMMAND;
use crate::expectation::PersistenceModel;
use crate::external::traced::above_stdio;
use crate::external::{run_external, ExternalConfig, ExternalError};
use crate::oracle::{run_traced, OracleConfig, TraceControl, TracedLaunch};
use crate::report::survival_lifecycle::{
    lifecycle_cells, LifecycleCell, LifecycleConfig, LifecycleSection, LifecycleSummary,
};
use crate::scenario::derive_seed;
use crate::trial_space::Shard;
use crate::vocab::CrashKind;

/// Trials per lifecycle cell unless `--lifecycle-trials` says otherwise:
/// half of a power-loss cell's trials crash at sync calls (spread over all
/// of them), which is what makes its losses deterministic; the process
/// crashes of these small writers are cheap.
pub const DEFAULT_TRIALS: u32 = 8;

/// The crash kinds of the matrix's `--crash` that a program can take
/// (`sigbus` cuts a zero tail these files never have; `clean` is every
/// external run's first run).
const PROCESS_CRASHES: [CrashKind; 2] = [CrashKind::Sigkill, CrashKind::Abort];

/// The lifecycle section's config for a matrix of `crashes` × `models`, or
/// `None` when no lifecycle cell would run (no kind, or neither a process
/// crash that applies nor power loss).
pub fn lifecycle_config(
    kinds: &[LifecycleKind],
    trials: u32,
    acks: u32,
    crashes: &[CrashKind],
    models: &[PersistenceModel],
) -> Option<LifecycleConfig> {
    let crashes: Vec<CrashKind> = if models.contains(&PersistenceModel::ProcessCrash) {
        PROCESS_CRASHES.iter().copied().filter(|k| crashes.contains(k)).collect()
    } else {
        Vec::new()
    };
    let power_loss = models.contains(&PersistenceModel::PowerLoss);
    if kinds.is_empty() || (crashes.is_empty() && !power_loss) {
        return None;
    }
    Some(LifecycleConfig {
        kinds: kinds.to_vec(),
        trials,
        acks,
        crashes,
        power_loss,
        fs_model: crate::namespace::FsModel::Posix.name().to_owned(),
        power_loss_skipped: None,
    })
}

/// Can the durability oracle trace `program` here? `Err` with the oracle's
/// error (no ptrace, no seccomp: some containers) when it cannot. Runs
/// `program --version` under the oracle on a thread of its own (the tracer
/// collects with `waitpid(-1)` on its thread; see [`crate::oracle`]).
pub fn probe_oracle(program: &Path) -> Result<(), String> {
    let watched = tempfile::tempdir().map_err(|e| format!("cannot make a directory to probe the oracle in: {e}"))?;
    let devnull = File::create("/dev/null").map_err(|e| format!("cannot open /dev/null: {e}"))?;
    let devnull = above_stdio(devnull.into()).map_err(|e| format!("cannot move /dev/null above stdio: {e}"))?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let launch =
                    TracedLaunch::new(program).arg("--version").stdout(devnull.as_fd()).stderr(devnull.as_fd());
                run_traced(&launch, &OracleConfig::new(watched.path()), &TraceControl::new())
                    .map(drop)
                    .map_err(|e| e.to_string())
            })
            .join()
            .expect("the probe thread does not panic")
    })
}

/// `config` without its power-loss cells when `probe` says the oracle
/// cannot run: `None` when no cell would be left.
pub fn without_power_loss_if(config: LifecycleConfig, probe: Result<(), String>) -> Option<LifecycleConfig> {
    match probe {
        Ok(()) => Some(config),
        Err(_) if !config.power_loss => Some(config),
        Err(why) => {
            let config = LifecycleConfig { power_loss: false, power_loss_skipped: Some(why), ..config };
            (!config.crashes.is_empty()).then_some(config)
        }
    }
}

/// How the rows run: the section's config and the matrix's run choices.
pub struct LifecycleRun {
    pub config: LifecycleConfig,
    /// A binary that serves `__lifecycle` (the running `crashlab`).
    pub program: PathBuf,
    pub seed: u64,
    pub jobs: usize,
    pub timeout: Duration,
    /// Where the external engine makes its work directory.
    pub dir: PathBuf,
    pub shard: Option<Shard>,
}

impl LifecycleRun {
    /// The command line of `role` of `kind`, quoted so that the engine's
    /// shell-like split gives the words back (the precedent: testkit).
    pub fn command(&self, role: &str, kind: LifecycleKind) -> String {
        let program = self.program.to_string_lossy();
        let acks = self.config.acks.to_string();
        shell_words::join([&*program, SUBCOMMAND, role, kind.name(), "--acks", &acks])
    }

    /// The seed of `kind`'s run, derived from the matrix's.
    pub fn seed_of(&self, kind: LifecycleKind) -> u64 {
        derive_seed(self.seed, &["lifecycle", kind.name()])
    }

    /// The external engine's config of `kind`'s row.
    pub fn external_config(&self, kind: LifecycleKind) -> Result<ExternalConfig, ExternalError> {
        let (writer, checker, setup) =
            (self.command("writer", kind), self.command("checker", kind), self.command("setup", kind));
        let mut c = ExternalConfig::new(&writer, &checker, Some(&setup), false)?;
        c.crashes = self.config.crashes.clone();
        if self.config.power_loss {
            c.crashes.push(CrashKind::PowerLoss);
        }
        c.trials = self.config.trials;
        c.seed = self.seed_of(kind);
        c.jobs = self.jobs;
        c.timeout = self.timeout;
        c.dir = self.dir.clone();
        c.shard = self.shard;
        Ok(c)
    }

    /// The `crashlab run` line that reruns the trials of `crash` of `kind`
    /// (all of them: it names no shard).
    pub fn run_line(&self, kind: LifecycleKind, crash: CrashKind) -> String {
        let q = |role| shell_words::quote(&self.command(role, kind)).into_owned();
        format!(
            "crashlab run --writer {} --checker {} --setup {} --crash {crash} --seed {} --trials {} --timeout {}",
            q("writer"),
            q("checker"),
            q("setup"),
            self.seed_of(kind),
            self.config.trials,
            self.timeout.as_secs()
        )
    }

    /// Trials this run makes (its shard's block of each cell's trials).
    pub fn planned_trials(&self) -> u64 {
        let per_cell = match self.shard {
            Some(s) => s.block(self.config.trials as usize).len() as u64,
            None => self.config.trials as u64,
        };
        let cells_per_row = self.config.crashes.len() as u64 + self.config.power_loss as u64;
        per_cell * cells_per_row * self.config.kinds.len() as u64
    }
}

/// Run every row, the rows side by side (each on a thread of its own, with
/// `jobs` trials at a time: these small programs mostly wait for fsync, so
/// rows in parallel cost little more than one), the cells in row order.
/// `on_trials` counts trials as they finish. The first failing row's error
/// is returned once every row has ended.
pub fn run_lifecycle(
    run: &LifecycleRun,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<LifecycleSection, ExternalError> {
    let rows: Vec<Result<Vec<LifecycleCell>, ExternalError>> = std::thread::scope(|scope| {
        let handles: Vec<_> =
            run.config.kinds.iter().map(|&kind| scope.spawn(move || run_row(run, kind, cancel, on_trials))).collect();
        handles.into_iter().map(|h| h.join().expect("a lifecycle row panicked")).collect()
    });
    if cancel.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ExternalError::Interrupted);
    }
    let mut cells = Vec::new();
    for row in rows {
        cells.extend(row?);
    }
    Ok(LifecycleSection { config: run.config.clone(), summary: LifecycleSummary::of(&cells), cells })
}

/// One row: its external run, turned into cells.
fn run_row(
    run: &LifecycleRun,
    kind: LifecycleKind,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<Vec<LifecycleCell>, ExternalError> {
    let config = run.external_config(kind)?;
    let report = run_external(&config, cancel, &|_| on_trials(1))?;
    if let Some(reason) = report.clean_run.checker.reason() {
        // The writer ran to completion: a violation here is a bug of the
        // family's own programs, not a finding.
        return Err(ExternalError::BadInput(format!(
            "lifecycle {kind}: the checker rejected the uncrashed run ({reason}); replay: {}",
            report.clean_run.replay
        )));
    }
    if let Some(p) = &report.power_loss {
        on_trials(p.trials as usize);
    }
    Ok(lifecycle_cells(kind, &report, &|crash| run.run_line(kind, crash)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(crashes: &[CrashKind]) -> LifecycleConfig {
        let models = [PersistenceModel::ProcessCrash, PersistenceModel::PowerLoss];
        lifecycle_config(&LifecycleKind::ALL, 8, 8, crashes, &models).unwrap()
    }

    #[test]
    fn without_the_oracle_the_power_loss_cells_are_skipped_and_said_to_be() {
        let c = config(&[CrashKind::Sigkill]);
        assert_eq!(without_power_loss_if(c.clone(), Ok(())), Some(c.clone()));
        let skipped = without_power_loss_if(c, Err("no ptrace".into())).expect("the sigkill cells still run");
        assert!(!skipped.power_loss);
        assert_eq!(skipped.power_loss_skipped.as_deref(), Some("no ptrace"));
        assert_eq!(skipped.crashes, [CrashKind::Sigkill]);
        // Nothing left to run: no section at all.
        assert_eq!(without_power_loss_if(config(&[CrashKind::Sigbus]), Err("no ptrace".into())), None);
    }

    #[test]
    fn the_probe_fails_with_the_oracles_error_for_a_program_it_cannot_start_and_passes_here() {
        let err = probe_oracle(Path::new("/nonexistent/crashlab-probe")).unwrap_err();
        assert!(err.contains("/nonexistent/crashlab-probe"), "{err}");
        // This machine has ptrace and seccomp (the oracle's own tests need them).
        probe_oracle(Path::new("/bin/true")).expect("the oracle runs here");
    }
}
