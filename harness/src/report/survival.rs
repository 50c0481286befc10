//! The survival report's types (serialized as the versioned JSON report,
//! see `reports/SCHEMA.md`), the verdict of a cell from its counts, and
//! the redaction list of fields that differ between runs.
//!
//! Architecture Invariant: pure. Ordering is deterministic (cells in matrix
//! order, vectors sorted), so two runs with the same seed differ only in
//! the fields listed in [`NONDETERMINISTIC_FIELDS`].

use serde::{Deserialize, Serialize};

use crate::crash::{CrashPoint, PointSelection};
use crate::expectation::{AckExpectation, PersistenceModel};
use crate::realcut::coverage::Coverage;
use crate::scenario::ScenarioId;
use crate::spec::{MappingKind, SyncPolicy};
use crate::vocab::Backend;
use crate::vocab::CrashKind;
use crate::vocab::RealColumn;
use crate::vocab::{CutMethod, Environment, FsKind, Writeback};

/// Bumped in the major part when a reader of the old format would misread
/// the new one; in the minor part when fields are only added.
pub const SCHEMA_VERSION: &str = "1.5";

/// JSON pointers (with `*` for any array index) of fields that differ
/// between two runs with the same seed. Snapshot tests redact exactly these.
/// Cells of real power cuts (`power-loss-real`) are measurements of a real
/// kernel: their counts, too, may differ between runs.
/// The lifecycle rows' programs are crashed at times measured in the run
/// (process crashes, timed power-loss trials) and their replay lines carry
/// the measured clean-run duration: what they found, and the lines, differ
/// too (their plans and verdicts do not).
pub const NONDETERMINISTIC_FIELDS: &[&str] = &[
    "/run/started_at_unix",
    "/run/duration_ms",
    "/run/dir",
    "/environment/kernel_release",
    "/environment/fs_type",
    "/lifecycle/cells/*/acks_seen",
    "/lifecycle/cells/*/trials_with_acks",
    "/lifecycle/cells/*/trials_lost",
    "/lifecycle/cells/*/states_checked",
    "/lifecycle/cells/*/exhaustive_trials",
    "/lifecycle/cells/*/replay",
    "/lifecycle/cells/*/failures",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SurvivalReport {
    pub schema_version: String,
    pub crashlab_version: String,
    pub run: RunInfo,
    pub environment: Environment,
    pub seed: u64,
    pub config: MatrixConfig,
    pub cells: Vec<CellReport>,
    pub summary: Summary,
    /// The file-lifecycle rows (`--lifecycle`), run as protocol-v1 programs
    /// by the external engine; `summary` counts the mmap cells only. Absent
    /// when none ran (and in reports before 1.4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<crate::report::survival_lifecycle::LifecycleSection>,
    /// The `enospc` column was asked for (it is a default column) but
    /// cannot run here: why (no user namespace, no tmpfs mount). Its cells
    /// are absent and `config.crashes` does not list it. Absent when it ran
    /// or was not asked (and in reports before 1.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enospc_skipped: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunInfo {
    pub started_at_unix: u64,
    pub duration_ms: u64,
    /// The directory the files under test lived in.
    pub dir: String,
}

/// Everything that decides which trials run. Same config, same trials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MatrixConfig {
    pub seed: u64,
    pub file_size: u64,
    pub txns: u32,
    pub points: PointSelection,
    /// Repetitions of each crash point.
    pub trials: u32,
    pub scenarios: Vec<ScenarioId>,
    /// Crash kinds judged under the process-crash model (`enospc`: on the
    /// MAP_SHARED rows only, and under the simulated power-loss models too).
    pub crashes: Vec<CrashKind>,
    /// Persistence models. Power-loss cells kill the writer (SIGKILL) at
    /// every op boundary and judge a simulated power loss at that instant;
    /// with `enospc` in `crashes`, a MAP_SHARED row also gets a cell at each
    /// boundary capacity of the enospc column (the instant is the SIGBUS).
    /// Absent in 1.0 reports, which only had process-crash cells.
    #[serde(default = "process_crash_only")]
    pub models: Vec<PersistenceModel>,
    /// Sector size of `power-loss-torn`.
    #[serde(default = "default_tear")]
    pub tear: u64,
    /// This report ran one shard of the trial space (`--shard I/N`):
    /// `crashlab report merge` joins the N shard reports into one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<crate::trial_space::Shard>,
    /// The real columns of `power-loss-real` (`--real`), each a backend and
    /// filesystem whose real power cuts are made at every op boundary.
    /// Absent when none ran (and in reports before 1.2).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub real: Vec<RealColumn>,
    /// `--real-sample N`: each real cell cuts at N op boundaries drawn from
    /// the seed (without repeats, in boundary order) instead of at every
    /// one; the simulated cells still judge every boundary. Absent: every
    /// boundary (and in reports before 1.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_sample: Option<u32>,
}

pub use crate::report::verdict::Verdict;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CellReport {
    pub scenario: ScenarioId,
    pub mapping: MappingKind,
    pub sync_policy: SyncPolicy,
    pub crash: CrashKind,
    pub model: PersistenceModel,
    pub trials: u64,
    pub crash_points: u64,
    /// Acked ops over all trials (an op acked before the crash in 3 trials
    /// counts 3 times).
    pub acked: u64,
    pub survived: u64,
    pub lost: u64,
    pub torn: u64,
    /// Acked ops whose bytes still in the file survived, but some of whose
    /// bytes a truncation cut off.
    pub truncated: u64,
    /// Trials that died inside a store, and of those, how many left it torn.
    pub in_flight_stores: u64,
    pub in_flight_torn: u64,
    /// Trials whose writer died of SIGBUS on a store beyond the new EOF.
    pub sigbus_faults: u64,
    /// Timed kills that came after the writer had already finished.
    pub missed_crashes: u64,
    /// Trials with at least one model violation.
    pub model_violations: u64,
    pub expectation: AckExpectation,
    pub verdict: Verdict,
    /// Why the verdict is not `as-expected`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict_reason: Option<String>,
    /// Replays one representative trial: the first failing one, else the
    /// first that lost or tore an acked op, else the first trial.
    pub replay: String,
    /// The first few failing trials, each with its replay line.
    pub failures: Vec<FailureReport>,
    /// Power-loss cells: crash states judged over all trials, and in how
    /// many trials every allowed state was judged (the rest were sampled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states_checked: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exhaustive_trials: Option<u64>,
    /// Power-loss cells: minimal explanations of acks a power loss may lose
    /// (the first few), each with the exact state and its replay line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explanations: Vec<ExplanationReport>,
    /// `power-loss-real` cells: which real column (backend, kernel,
    /// filesystem, cut) made the cuts, and what they said about the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real: Option<RealCutInfo>,
}

/// The real column of a `power-loss-real` cell and what its cuts said about
/// the simulated power-loss model. The cell's survived/lost/torn/truncated
/// are what the real post-cut files held (a direct byte check).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RealCutInfo {
    /// `loopcut` (the host kernel, filesystems on loop devices) or `vm` (a
    /// guest kernel under qemu, killed).
    pub backend: Backend,
    /// The kernel that made the cuts: the host's for loopcut, the guest's for vm.
    pub kernel_release: String,
    pub fs: FsKind,
    /// `shutdown` (FS_IOC_SHUTDOWN, remount), `raw-copy` (O_DIRECT copy of the
    /// device, mounted) or `vm-sigkill` (qemu killed, journal replayed).
    pub cut: CutMethod,
    /// What the backend's disk does with acknowledged writes.
    pub disk: String,
    /// Trials whose real post-cut file the simulated power-loss model
    /// forbids (`PowerLossModel::allows`): the simulated model is unsound
    /// there. Each is also counted in `model_violations`.
    pub soundness_violations: u64,
    /// Trials with pages the simulated model lets vary (unsynced data), and
    /// of those, trials where the cut kept some unsynced page.
    pub trials_with_unsynced_pages: u64,
    pub trials_kept_more: u64,
    /// Trials where the model's ack judge and the direct byte check
    /// disagreed: a crashlab bug (the verdict is `unexpected`).
    pub judge_mismatches: u64,
    /// loopcut: what pushed dirty pages to the disk while the writers ran
    /// (`matrix --real-writeback`); absent: none.
    #[serde(default, skip_serializing_if = "Writeback::is_none")]
    pub writeback: Writeback,
    /// Per rule of the simulated power-loss model, in how many post-cut
    /// files it allowed the rule's case and in how many the cut showed it
    /// (as in the soundness report). Absent in reports of older versions.
    #[serde(default, skip_serializing_if = "Coverage::is_empty")]
    pub coverage: Coverage,
}

impl RealCutInfo {
    /// The column these cuts belong to.
    pub fn column(&self) -> RealColumn {
        RealColumn { backend: self.backend, fs: self.fs }
    }
}

impl CellReport {
    /// The real column of a `power-loss-real` cell.
    pub fn real_column(&self) -> Option<RealColumn> {
        self.real.as_ref().map(RealCutInfo::column)
    }

    /// The model as a column heading: `power-loss`, or for a real cell its
    /// column's label, `power-loss (real: loopcut/ext4)`.
    pub fn model_label(&self) -> String {
        match self.real_column() {
            Some(c) => c.label(),
            None => self.model.name().to_owned(),
        }
    }

    /// What identifies the cell within a report and across reports:
    /// `shared/no-sync sigkill [power-loss (real: loopcut/ext4)]`.
    pub fn key_text(&self) -> String {
        format!("{} {} [{}]", self.scenario, self.crash, self.model_label())
    }
}
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExplanationReport {
    pub point: CrashPoint,
    pub ack: u32,
    pub text: String,
    /// The state, in the text form `--state` takes.
    pub state: String,
    pub replay: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FailureReport {
    pub point: CrashPoint,
    pub exit: String,
    pub replay: String,
    pub details: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    pub cells: u64,
    pub as_expected: u64,
    pub unexpected: u64,
    pub model_violations: u64,
    pub trials: u64,
}

/// At most this many failures (and explanations) are kept per cell.
pub(crate) const MAX_FAILURES: usize = 5;

/// The exact command that reruns one trial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayLine {
    pub scenario: ScenarioId,
    pub crash: CrashKind,
    pub point: CrashPoint,
    pub seed: u64,
    pub file_size: u64,
    pub txns: u32,
    pub model: PersistenceModel,
    /// Sector size, for `power-loss-torn`.
    pub tear: u64,
    /// One power-loss state to rebuild exactly.
    pub state: Option<String>,
}

impl std::fmt::Display for ReplayLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "crashlab replay --scenario {} --crash {} --point {} --seed {} --size {} --txns {}",
            self.scenario, self.crash, self.point, self.seed, self.file_size, self.txns
        )?;
        if self.model != PersistenceModel::ProcessCrash {
            write!(f, " --model {}", self.model)?;
        }
        if self.model == PersistenceModel::PowerLossTorn {
            write!(f, " --tear {}", self.tear)?;
        }
        if let Some(state) = &self.state {
            write!(f, " --state {state}")?;
        }
        Ok(())
    }
}

fn process_crash_only() -> Vec<PersistenceModel> {
    vec![PersistenceModel::ProcessCrash]
}

fn default_tear() -> u64 {
    crate::power_loss::DEFAULT_TEAR
}

/// The verdict of a cell from its counts (also used to rejudge merged shards).
pub(crate) fn judge(c: &CellReport) -> (Verdict, Option<String>) {
    let model = c.model_label();
    if let Some(real) = c.real.as_ref().filter(|r| r.soundness_violations > 0) {
        return (
            Verdict::ModelViolation,
            Some(format!(
                "MODEL SOUNDNESS VIOLATION: {} of {} real power cuts ({} {} on kernel {}) left a file the simulated \
                 power-loss model forbids",
                real.soundness_violations, c.trials, real.backend, real.fs, real.kernel_release
            )),
        );
    }
    if c.model_violations > 0 {
        return (
            Verdict::ModelViolation,
            Some(format!("{} of {} trials left states the {model} model forbids", c.model_violations, c.trials)),
        );
    }
    if let Some(real) = c.real.as_ref().filter(|r| r.judge_mismatches > 0) {
        return (
            Verdict::Unexpected,
            Some(format!(
                "{} trials where the model's ack judge and the direct byte check disagree (a crashlab bug)",
                real.judge_mismatches
            )),
        );
    }
    let not_survived = c.lost + c.torn;
    match c.expectation {
        AckExpectation::AllSurvive if not_survived > 0 => (
            Verdict::Unexpected,
            Some(format!("{not_survived} acked ops lost or torn where the {model} model keeps them all")),
        ),
        // Under power loss "survived" means guaranteed in every state (in
        // the real file, for real cuts), so a writer that syncs before
        // acking must have all of them guaranteed.
        AckExpectation::AllSurvive if c.real.is_some() && c.truncated > 0 => (
            Verdict::Unexpected,
            Some(format!(
                "{} acked ops cut short by the real file's end where the {model} model keeps them all",
                c.truncated
            )),
        ),
        AckExpectation::AllSurvive if c.model.is_power_loss() && c.truncated > 0 => (
            Verdict::Unexpected,
            Some(format!("{} acked ops not guaranteed where the {model} model keeps them all", c.truncated)),
        ),
        AckExpectation::AllLost if c.survived + c.torn > 0 => (
            Verdict::Unexpected,
            Some(format!("{} acked ops reached the file where the {model} model allows none", c.survived + c.torn)),
        ),
        _ => (Verdict::AsExpected, None),
    }
}

impl Summary {
    pub fn of(cells: &[CellReport]) -> Summary {
        let count = |v: Verdict| cells.iter().filter(|c| c.verdict == v).count() as u64;
        Summary {
            cells: cells.len() as u64,
            as_expected: count(Verdict::AsExpected),
            unexpected: count(Verdict::Unexpected),
            model_violations: count(Verdict::ModelViolation),
            trials: cells.iter().map(|c| c.trials).sum(),
        }
    }
}
