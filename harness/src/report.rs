//! The survival report: its types (serialized as the versioned JSON report,
//! see `reports/SCHEMA.md`), the aggregation of trial records into cells,
//! and the human summary table.
//!
//! Architecture Invariant: pure. Ordering is deterministic (cells in matrix
//! order, vectors sorted), so two runs with the same seed differ only in
//! the fields listed in [`NONDETERMINISTIC_FIELDS`].

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::crash::{CrashKind, CrashPoint, PointSelection};
use crate::expectation::{AckExpectation, PersistenceModel};
use crate::lab::trial::TrialRecord;
use crate::process_model::{AckStatus, ChildExit};
use crate::realcut::fs::{CutMethod, FsKind};
use crate::realcut::protocol::RealTrialRecord;
use crate::realcut::real_column::RealColumn;
use crate::realcut::Backend;
use crate::scenario::ScenarioId;
use crate::spec::{MappingKind, SyncPolicy};

/// Bumped in the major part when a reader of the old format would misread
/// the new one; in the minor part when fields are only added.
pub const SCHEMA_VERSION: &str = "1.3";

/// JSON pointers (with `*` for any array index) of fields that differ
/// between two runs with the same seed. Snapshot tests redact exactly these.
/// Cells of real power cuts (`power-loss-real`) are measurements of a real
/// kernel: their counts, too, may differ between runs.
pub const NONDETERMINISTIC_FIELDS: &[&str] =
    &["/run/started_at_unix", "/run/duration_ms", "/run/dir", "/environment/kernel_release", "/environment/fs_type"];

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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunInfo {
    pub started_at_unix: u64,
    pub duration_ms: u64,
    /// The directory the files under test lived in.
    pub dir: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Environment {
    pub kernel_release: String,
    /// Filesystem of the work directory, from statfs.
    pub fs_type: String,
    pub page_size: u64,
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
    /// Crash kinds judged under the process-crash model.
    pub crashes: Vec<CrashKind>,
    /// Persistence models. Power-loss cells kill the writer (SIGKILL) at
    /// every op boundary and judge a simulated power loss at that instant.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Everything observed is what the model and the expectation allow.
    AsExpected,
    /// The files were inside the model, but acked ops fared otherwise than
    /// the expectation table says (a bug in crashlab's model or table).
    Unexpected,
    /// Something the model forbids happened: the kernel surprised us.
    ModelViolation,
}

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

/// The identity of a cell and what its trials found, before judging.
pub struct CellInput<'a> {
    pub scenario: ScenarioId,
    pub crash: CrashKind,
    pub model: PersistenceModel,
    pub expectation: AckExpectation,
    pub points: &'a [CrashPoint],
    pub records: &'a [TrialRecord],
    pub replay: &'a dyn Fn(CrashPoint) -> ReplayLine,
}

pub fn aggregate_cell(input: &CellInput<'_>) -> CellReport {
    let mut c = CellReport::empty(
        input.scenario,
        input.crash,
        input.model,
        input.expectation,
        input.records.len(),
        input.points.len(),
    );
    let mut representative: Option<(u8, CrashPoint)> = None;
    let power_loss = input.model.is_simulated_power_loss();
    if power_loss {
        c.states_checked = Some(0);
        c.exhaustive_trials = Some(0);
    }
    for r in input.records {
        let v = &r.verdict;
        let mut acks_at_risk = false;
        match (&r.power_loss, power_loss) {
            (Some(pl), true) => {
                *c.states_checked.get_or_insert(0) += pl.states_checked;
                *c.exhaustive_trials.get_or_insert(0) += pl.exhaustive as u64;
                for a in &pl.acks {
                    c.acked += 1;
                    if a.guaranteed {
                        c.survived += 1;
                    } else if a.lost_states > 0 {
                        c.lost += 1;
                    } else if a.torn_states > 0 {
                        c.torn += 1;
                    } else {
                        c.truncated += 1;
                    }
                    acks_at_risk |= !a.guaranteed;
                }
                for e in &pl.explanations {
                    if c.explanations.len() < MAX_FAILURES {
                        let mut line = (input.replay)(r.facts.point);
                        line.state = Some(e.state.to_string());
                        c.explanations.push(ExplanationReport {
                            point: r.facts.point,
                            ack: e.ack,
                            text: e.text.clone(),
                            state: e.state.to_string(),
                            replay: line.to_string(),
                        });
                    }
                }
            }
            _ => {
                for a in &v.acks {
                    c.acked += 1;
                    match a.status {
                        AckStatus::Survived => c.survived += 1,
                        AckStatus::Lost => c.lost += 1,
                        AckStatus::Torn => c.torn += 1,
                        AckStatus::Truncated => c.truncated += 1,
                    }
                    acks_at_risk |= matches!(a.status, AckStatus::Lost | AckStatus::Torn);
                }
            }
        }
        if let Some(f) = v.in_flight {
            c.in_flight_stores += 1;
            c.in_flight_torn += f.torn() as u64;
        }
        c.sigbus_faults += v.faulting_store.is_some() as u64;
        if r.facts.point.is_timed() && r.facts.exit == ChildExit::Exited(0) && v.violations.is_empty() {
            c.missed_crashes += 1;
        }
        let rank = representative_rank(!v.violations.is_empty(), acks_at_risk);
        if !v.violations.is_empty() {
            c.model_violations += 1;
            if c.failures.len() < MAX_FAILURES {
                c.failures.push(FailureReport {
                    point: r.facts.point,
                    exit: r.facts.exit.to_string(),
                    replay: (input.replay)(r.facts.point).to_string(),
                    details: v
                        .violations
                        .iter()
                        .map(|x| match x.range {
                            Some(range) => format!("{:?} [{}, {}): {}", x.kind, range.start, range.end, x.detail),
                            None => format!("{:?}: {}", x.kind, x.detail),
                        })
                        .collect(),
                });
            }
        }
        if representative.is_none_or(|(best, _)| rank < best) {
            representative = Some((rank, r.facts.point));
        }
    }
    if let Some((_, p)) = representative {
        c.replay = (input.replay)(p).to_string();
    }
    let (verdict, reason) = judge(&c);
    c.verdict = verdict;
    c.verdict_reason = reason;
    c
}

impl CellReport {
    /// A cell with every count at zero and the verdict not yet judged.
    fn empty(
        scenario: ScenarioId,
        crash: CrashKind,
        model: PersistenceModel,
        expectation: AckExpectation,
        trials: usize,
        crash_points: usize,
    ) -> CellReport {
        CellReport {
            scenario,
            mapping: scenario.mapping,
            sync_policy: scenario.policy,
            crash,
            model,
            trials: trials as u64,
            crash_points: crash_points as u64,
            acked: 0,
            survived: 0,
            lost: 0,
            torn: 0,
            truncated: 0,
            in_flight_stores: 0,
            in_flight_torn: 0,
            sigbus_faults: 0,
            missed_crashes: 0,
            model_violations: 0,
            expectation,
            verdict: Verdict::AsExpected,
            verdict_reason: None,
            replay: String::new(),
            failures: Vec::new(),
            states_checked: None,
            exhaustive_trials: None,
            explanations: Vec::new(),
            real: None,
        }
    }
}

/// How good a trial is as its cell's representative replay (0 best): one
/// that broke the model, else one that put an acked op at risk, else any.
pub(crate) fn representative_rank(violated: bool, acks_at_risk: bool) -> u8 {
    match (violated, acks_at_risk) {
        (true, _) => 0,
        (false, true) => 1,
        (false, false) => 2,
    }
}

/// The identity of a real cell and its trials' records, before judging.
pub struct RealCellInput<'a> {
    pub scenario: ScenarioId,
    pub column: RealColumn,
    /// The kernel that made the cuts (the guest's for vm).
    pub kernel_release: String,
    pub expectation: AckExpectation,
    pub points: &'a [CrashPoint],
    pub records: &'a [RealTrialRecord],
    /// The command that reruns the real cut at a point.
    pub rerun: &'a dyn Fn(CrashPoint) -> String,
}

/// A `power-loss-real` cell from its real trials: acks by the direct byte
/// check of each post-cut file; a file the simulated model forbids is a
/// model (soundness) violation.
pub fn aggregate_real_cell(input: &RealCellInput<'_>) -> CellReport {
    let column = input.column;
    let mut info = RealCutInfo {
        backend: column.backend,
        kernel_release: input.kernel_release.clone(),
        fs: column.fs,
        cut: column.cut(),
        disk: column.disk().to_owned(),
        soundness_violations: 0,
        trials_with_unsynced_pages: 0,
        trials_kept_more: 0,
        judge_mismatches: 0,
    };
    let mut c = CellReport::empty(
        input.scenario,
        CrashKind::Sigkill,
        PersistenceModel::PowerLossReal,
        input.expectation,
        input.records.len(),
        input.points.len(),
    );
    let mut representative: Option<(u8, CrashPoint)> = None;
    for r in input.records {
        let j = &r.judgement;
        let point = r.facts.point;
        c.acked += j.acks.completed;
        c.survived += j.acks.survived;
        c.lost += j.acks.lost;
        c.torn += j.acks.torn;
        c.truncated += j.acks.truncated;
        let mut details = Vec::new();
        if let Some(f) = &j.forbidden {
            c.model_violations += 1;
            info.soundness_violations += 1;
            details.push(format!(
                "MODEL SOUNDNESS VIOLATION: the real post-cut file ({} on {}, {} cut, kernel {}) is one the \
                 simulated power-loss model forbids: {f}",
                column.backend, column.fs, info.cut, info.kernel_release
            ));
        } else if j.dirty_units > 0 {
            info.trials_with_unsynced_pages += 1;
            info.trials_kept_more += j.kept_more() as u64;
        }
        if let Some(m) = &j.judge_mismatch {
            info.judge_mismatches += 1;
            details.push(format!("crashlab bug: the model's ack judge and the direct byte check disagree: {m}"));
        }
        if !details.is_empty() {
            if let Some(kept) = &r.kept {
                details.push(format!("evidence kept in {}", kept.display()));
            }
            if c.failures.len() < MAX_FAILURES {
                c.failures.push(FailureReport {
                    point,
                    exit: r.facts.exit.to_string(),
                    replay: (input.rerun)(point),
                    details,
                });
            }
        }
        let at_risk = j.acks.survived < j.acks.completed;
        let rank = representative_rank(j.forbidden.is_some() || j.judge_mismatch.is_some(), at_risk);
        if representative.is_none_or(|(best, _)| rank < best) {
            representative = Some((rank, point));
        }
    }
    if let Some((_, p)) = representative {
        c.replay = (input.rerun)(p);
    }
    c.real = Some(info);
    let (verdict, reason) = judge(&c);
    c.verdict = verdict;
    c.verdict_reason = reason;
    c
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

impl SurvivalReport {
    /// Did every cell come out as expected?
    pub fn all_as_expected(&self) -> bool {
        self.cells.iter().all(|c| c.verdict == Verdict::AsExpected)
    }

    /// Real power cuts whose file the simulated power-loss model forbids,
    /// over every `power-loss-real` cell.
    pub fn soundness_violations(&self) -> u64 {
        self.cells.iter().filter_map(|c| c.real.as_ref()).map(|r| r.soundness_violations).sum()
    }

    /// The human summary: a table per persistence model, then the failures.
    pub fn human_summary(&self) -> String {
        let mut out = String::new();
        let e = &self.environment;
        let _ = writeln!(
            out,
            "crashlab {} survival matrix: seed {}, {} on {} (kernel {}), {}-byte file, {}-byte pages, {} txns, points {}",
            self.crashlab_version,
            self.seed,
            self.run.dir,
            e.fs_type,
            e.kernel_release,
            self.config.file_size,
            e.page_size,
            self.config.txns,
            self.config.points,
        );
        if let Some(shard) = self.config.shard {
            let _ = writeln!(out, "shard {shard} only: `crashlab report merge` joins the shards into the whole run");
        }
        // One table per model; one per real column under power-loss-real.
        let mut groups: Vec<(PersistenceModel, Option<RealColumn>)> = Vec::new();
        for c in &self.cells {
            if !groups.contains(&(c.model, c.real_column())) {
                groups.push((c.model, c.real_column()));
            }
        }
        groups.sort_by_key(|&(model, _)| model);
        for (model, column) in groups {
            let cells: Vec<&CellReport> =
                self.cells.iter().filter(|c| c.model == model && c.real_column() == column).collect();
            let real = cells.first().and_then(|c| c.real.as_ref());
            match real {
                Some(r) => {
                    let _ = writeln!(
                        out,
                        "\nmodel {}: {}\n  backend {}, kernel {}, {}, cut {} ({}); disk: {}",
                        r.column().label(),
                        model.describe(),
                        r.backend,
                        r.kernel_release,
                        r.fs,
                        r.cut,
                        r.cut.describe(),
                        r.disk
                    );
                }
                None => {
                    let _ = writeln!(out, "\nmodel {}: {}", model, model.describe());
                }
            }
            let (survived, lost, torn, extra) = if real.is_some() {
                ("survived", "lost", "torn", "kept more")
            } else if model.is_power_loss() {
                ("guaranteed", "may lose", "may tear", "states")
            } else {
                ("survived", "lost", "torn", "in-fl torn")
            };
            let _ = writeln!(
                out,
                "{:<26} {:<8} {:>6} {:>6} {:>10} {:>8} {:>8} {:>6} {:>10} {:>6} {:>5}  verdict",
                "scenario", "crash", "trials", "acked", survived, lost, torn, "trunc", extra, "sigbus", "viol"
            );
            for c in &cells {
                let extra = match (&c.real, c.states_checked) {
                    (Some(r), _) => format!("{}/{}", r.trials_kept_more, r.trials_with_unsynced_pages),
                    (None, Some(n)) => n.to_string(),
                    (None, None) => format!("{}/{}", c.in_flight_torn, c.in_flight_stores),
                };
                let _ = writeln!(
                    out,
                    "{:<26} {:<8} {:>6} {:>6} {:>10} {:>8} {:>8} {:>6} {:>10} {:>6} {:>5}  {}",
                    c.scenario.to_string(),
                    c.crash.name(),
                    c.trials,
                    c.acked,
                    c.survived,
                    c.lost,
                    c.torn,
                    c.truncated,
                    extra,
                    c.sigbus_faults,
                    c.model_violations,
                    verdict_text(c),
                );
            }
            if let Some(r) = real {
                let _ = writeln!(
                    out,
                    "survived/lost/torn = what the real post-cut files held; kept more = K/U: of U trials with \
                     pages the simulated model lets vary, K kept an unsynced page (kernel {})",
                    r.kernel_release
                );
                let violations: u64 =
                    cells.iter().filter_map(|c| c.real.as_ref()).map(|r| r.soundness_violations).sum();
                if violations > 0 {
                    let _ = writeln!(
                        out,
                        "!!! MODEL SOUNDNESS VIOLATION under {}: {violations} real power cut(s) left a file the \
                         simulated power-loss model forbids: the simulated model is unsound on this kernel and \
                         filesystem (details and evidence below)",
                        r.column().label()
                    );
                }
            }
            // MAP_PRIVATE cells lose everything by design; explaining each is noise.
            let explained: Vec<&CellReport> = cells
                .iter()
                .copied()
                .filter(|c| !c.explanations.is_empty() && c.expectation != AckExpectation::AllLost)
                .collect();
            if !explained.is_empty() {
                let _ = writeln!(out, "why acks may be lost under {model} (one minimal explanation per cell):");
                for c in explained {
                    let e = &c.explanations[0];
                    let _ = writeln!(out, "  {} at {}: {}", c.scenario, e.point, e.text);
                    let _ = writeln!(out, "    replay: {}", e.replay);
                }
            }
        }
        let s = &self.summary;
        let _ = writeln!(
            out,
            "\n{} cells, {} trials: {} as expected, {} unexpected, {} with model violations",
            s.cells, s.trials, s.as_expected, s.unexpected, s.model_violations
        );
        let unsound = self.soundness_violations();
        if unsound > 0 {
            let _ = writeln!(
                out,
                "!!! {unsound} MODEL SOUNDNESS VIOLATION(S): real power cuts left files the simulated power-loss \
                 model forbids; its power-loss verdicts cannot be trusted on that kernel and filesystem"
            );
        }
        for c in self.cells.iter().filter(|c| c.verdict != Verdict::AsExpected) {
            let _ = writeln!(out, "\n{}: {}", c.key_text(), c.verdict_reason.as_deref().unwrap_or(""));
            for f in &c.failures {
                let _ = writeln!(out, "  at {} ({}):", f.point, f.exit);
                for d in &f.details {
                    let _ = writeln!(out, "    {d}");
                }
                let _ = writeln!(out, "    replay: {}", f.replay);
            }
            if c.failures.is_empty() {
                let _ = writeln!(out, "  replay: {}", c.replay);
            }
        }
        out
    }
}

fn verdict_text(c: &CellReport) -> &'static str {
    if c.real.as_ref().is_some_and(|r| r.soundness_violations > 0) {
        return "MODEL SOUNDNESS VIOLATION";
    }
    match (c.verdict, c.expectation) {
        (Verdict::AsExpected, AckExpectation::AllSurvive) => "ok: acks survive",
        (Verdict::AsExpected, AckExpectation::AllLost) => "ok: acks never reach the file",
        (Verdict::AsExpected, AckExpectation::MayBeLost) => "ok: acks not guaranteed",
        (Verdict::Unexpected, _) => "UNEXPECTED",
        (Verdict::ModelViolation, _) => "MODEL VIOLATION",
    }
}

/// Hand-built real-cut records and cells, for the tests of the report's
/// readers and writers.
#[cfg(test)]
pub(crate) mod real_test_support {
    use super::*;
    use crate::journal::JournalSnapshot;
    use crate::power_loss::Forbidden;
    use crate::process_model::TrialFacts;
    use crate::realcut::judge::{AckCounts, RealJudgement};

    /// A real trial at `before:k` whose file kept `survived` of its
    /// `survived + lost` acks; `forbidden`: the model forbids the file.
    pub fn real_record(k: usize, survived: u64, lost: u64, forbidden: bool) -> RealTrialRecord {
        let acks = AckCounts { completed: survived + lost, survived, lost, ..Default::default() };
        RealTrialRecord {
            fs: FsKind::Ext4,
            cut: CutMethod::Shutdown,
            facts: TrialFacts {
                kind: CrashKind::Sigkill,
                point: CrashPoint::BeforeOp(k),
                exit: ChildExit::Signaled(libc::SIGKILL),
                journal: JournalSnapshot { completed: k, in_flight: None, failed: None },
                external_truncate: None,
            },
            judgement: RealJudgement {
                len: 4096,
                forbidden: forbidden.then(|| Forbidden::Size { len: 4096, allowed: vec![8192] }),
                dirty_units: lost,
                units_beyond_floor: 0,
                units_at_newest: 0,
                state: None,
                acks,
                judge_mismatch: None,
            },
            kept: forbidden.then(|| "/evidence/x".into()),
            trial_ns: 1,
        }
    }

    /// The cell of `column` for `scenario` from `records`.
    pub fn real_cell(scenario: &str, column: &str, records: &[RealTrialRecord]) -> CellReport {
        let scenario: ScenarioId = scenario.parse().unwrap();
        let column: RealColumn = column.parse().unwrap();
        let points: Vec<CrashPoint> = records.iter().map(|r| r.facts.point).collect();
        let rerun =
            |p: CrashPoint| format!("crashlab soundness --backend {} --fs {} --point {p}", column.backend, column.fs);
        aggregate_real_cell(&RealCellInput {
            scenario,
            column,
            kernel_release: "6.1.0-test".into(),
            expectation: crate::expectation::expected_acks(
                scenario.mapping,
                scenario.policy,
                CrashKind::Sigkill,
                PersistenceModel::PowerLossReal,
            ),
            points: &points,
            records,
            rerun: &rerun,
        })
    }

    /// A report of `cells` (the config lists their real columns).
    pub fn report_of(cells: Vec<CellReport>) -> SurvivalReport {
        let mut real: Vec<RealColumn> = Vec::new();
        for c in cells.iter().filter_map(CellReport::real_column) {
            if !real.contains(&c) {
                real.push(c);
            }
        }
        SurvivalReport {
            schema_version: SCHEMA_VERSION.into(),
            crashlab_version: "0.1.0".into(),
            run: RunInfo { started_at_unix: 1, duration_ms: 2, dir: "/tmp/x".into() },
            environment: Environment { kernel_release: "6.1.0-test".into(), fs_type: "ext4".into(), page_size: 4096 },
            seed: 7,
            config: MatrixConfig {
                seed: 7,
                file_size: 65536,
                txns: 4,
                points: PointSelection::Boundaries,
                trials: 1,
                scenarios: vec!["shared/no-sync".parse().unwrap()],
                crashes: vec![],
                models: vec![PersistenceModel::PowerLossReal],
                tear: 512,
                shard: None,
                real,
                real_sample: None,
            },
            summary: Summary::of(&cells),
            cells,
        }
    }
}

#[cfg(test)]
mod real_tests {
    use super::real_test_support::*;
    use super::*;

    #[test]
    fn a_real_cell_counts_what_the_files_held_and_labels_its_column() {
        let c = real_cell("shared/no-sync", "loopcut:xfs", &[real_record(2, 1, 1, false), real_record(4, 0, 3, false)]);
        assert_eq!((c.trials, c.acked, c.survived, c.lost), (2, 5, 1, 4));
        assert_eq!(c.model, PersistenceModel::PowerLossReal);
        assert_eq!(c.expectation, AckExpectation::MayBeLost, "the same expectation as power-loss");
        assert_eq!(c.verdict, Verdict::AsExpected);
        let r = c.real.as_ref().unwrap();
        assert_eq!((r.backend, r.fs, r.cut), (Backend::Loopcut, FsKind::Xfs, CutMethod::Shutdown));
        assert_eq!((r.soundness_violations, r.trials_with_unsynced_pages), (0, 2));
        assert!(r.disk.contains("no volatile write cache"), "{}", r.disk);
        assert_eq!(c.key_text(), "shared/no-sync sigkill [power-loss (real: loopcut/xfs)]");
        assert!(c.replay.ends_with("--point before:2"), "the first trial that lost an ack: {}", c.replay);
        assert!(c.explanations.is_empty() && c.states_checked.is_none());

        // An MS_SYNC writer whose ack was lost by a real cut: unexpected.
        let sync = real_cell("shared/ms-sync-each", "vm", &[real_record(3, 1, 1, false)]);
        assert_eq!(sync.verdict, Verdict::Unexpected, "{:?}", sync.verdict_reason);
        assert!(sync.verdict_reason.unwrap().contains("power-loss (real: vm)"));
    }

    #[test]
    fn a_file_the_model_forbids_is_a_loud_soundness_violation() {
        let c = real_cell("shared/no-sync", "loopcut:ext4", &[real_record(1, 0, 1, false), real_record(3, 1, 0, true)]);
        assert_eq!(c.verdict, Verdict::ModelViolation);
        assert_eq!(c.model_violations, 1);
        assert_eq!(c.real.as_ref().unwrap().soundness_violations, 1);
        assert_eq!(c.real.as_ref().unwrap().trials_with_unsynced_pages, 1, "a forbidden file is not measured");
        let reason = c.verdict_reason.clone().unwrap();
        assert!(reason.starts_with("MODEL SOUNDNESS VIOLATION: 1 of 2 real power cuts"), "{reason}");
        assert_eq!(c.failures.len(), 1);
        let f = &c.failures[0];
        assert!(f.details[0].starts_with("MODEL SOUNDNESS VIOLATION"), "{:?}", f.details);
        assert!(f.details.iter().any(|d| d == "evidence kept in /evidence/x"), "{:?}", f.details);
        assert!(f.replay.ends_with("--point before:3"));
        assert_eq!(c.replay, f.replay, "the violating trial is the representative");

        let mut mismatch = real_record(2, 1, 0, false);
        mismatch.judgement.judge_mismatch = Some("ack 0: ...".into());
        let m = real_cell("shared/no-sync", "loopcut:ext4", &[mismatch]);
        assert_eq!(m.verdict, Verdict::Unexpected);
        assert!(m.verdict_reason.as_deref().unwrap().contains("a crashlab bug"));

        let report = report_of(vec![c, m]);
        assert_eq!(report.soundness_violations(), 1);
        let text = report.human_summary();
        assert!(text.contains("model power-loss (real: loopcut/ext4)"), "{text}");
        assert!(text.contains("backend loopcut, kernel 6.1.0-test, ext4, cut shutdown"), "{text}");
        assert!(text.contains("!!! MODEL SOUNDNESS VIOLATION under power-loss (real: loopcut/ext4)"), "{text}");
        assert!(text.contains("!!! 1 MODEL SOUNDNESS VIOLATION(S)"), "{text}");
        assert!(text.contains("evidence kept in /evidence/x"), "{text}");
        let html = crate::report_html::render_html(&report);
        assert!(html.contains("power-loss (real: loopcut/ext4)</th>"), "the heatmap column is labelled");
        assert!(html.contains("kernel 6.1.0-test<br>ext4 · shutdown"), "with its kernel and cut");
        assert!(html.contains("MODEL SOUNDNESS VIOLATION(S)"), "the banner says so");
        let junit = crate::report_junit::junit_xml(&report).unwrap();
        assert!(junit.contains("shared/no-sync sigkill [power-loss (real: loopcut/ext4)]"), "{junit}");
        // Real cuts rerun with `crashlab soundness`, not replay: never in the regressions file.
        assert!(crate::regressions::failing_trials(&report).is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::JournalSnapshot;
    use crate::process_model::{AckOutcome, ProcessVerdict, TrialFacts, Violation, ViolationKind};

    fn record(statuses: &[AckStatus], violation: bool) -> TrialRecord {
        TrialRecord {
            facts: TrialFacts {
                kind: CrashKind::Sigkill,
                point: CrashPoint::BeforeOp(statuses.len()),
                exit: ChildExit::Signaled(libc::SIGKILL),
                journal: JournalSnapshot { completed: 3, in_flight: None, failed: None },
                external_truncate: None,
            },
            verdict: ProcessVerdict {
                file_len: 4096,
                expected_len: 4096,
                in_flight: None,
                faulting_store: None,
                acks: statuses
                    .iter()
                    .enumerate()
                    .map(|(i, &status)| AckOutcome { id: i as u32, op: i, status })
                    .collect(),
                violations: if violation {
                    vec![Violation { kind: ViolationKind::Content, range: None, detail: "x".into() }]
                } else {
                    vec![]
                },
            },
            power_loss: None,
        }
    }

    fn cell(expectation: AckExpectation, records: &[TrialRecord]) -> CellReport {
        let points: Vec<CrashPoint> = records.iter().map(|r| r.facts.point).collect();
        let replay = |point| ReplayLine {
            scenario: "shared/no-sync".parse().unwrap(),
            crash: CrashKind::Sigkill,
            point,
            seed: 1,
            file_size: 4096,
            txns: 2,
            model: PersistenceModel::ProcessCrash,
            tear: 512,
            state: None,
        };
        aggregate_cell(&CellInput {
            scenario: "shared/no-sync".parse().unwrap(),
            crash: CrashKind::Sigkill,
            model: PersistenceModel::ProcessCrash,
            expectation,
            points: &points,
            records,
            replay: &replay,
        })
    }

    #[test]
    fn counts_and_verdicts_follow_the_records() {
        use AckStatus::*;
        let ok = cell(AckExpectation::AllSurvive, &[record(&[Survived], false), record(&[Survived, Survived], false)]);
        assert_eq!((ok.trials, ok.acked, ok.survived, ok.lost), (2, 3, 3, 0));
        assert_eq!(ok.verdict, Verdict::AsExpected);

        let lost = cell(AckExpectation::AllSurvive, &[record(&[Survived], false), record(&[Survived, Lost], false)]);
        assert_eq!(lost.verdict, Verdict::Unexpected);
        assert!(lost.replay.contains("--point before:2"), "the losing trial is the representative: {}", lost.replay);

        let private = cell(AckExpectation::AllLost, &[record(&[Lost, Lost], false)]);
        assert_eq!(private.verdict, Verdict::AsExpected);
        let leaked = cell(AckExpectation::AllLost, &[record(&[Lost, Survived], false)]);
        assert_eq!(leaked.verdict, Verdict::Unexpected);

        let bad = cell(AckExpectation::MayBeLost, &[record(&[Lost], false), record(&[Survived], true)]);
        assert_eq!(bad.verdict, Verdict::ModelViolation);
        assert_eq!(bad.model_violations, 1);
        assert_eq!(bad.failures.len(), 1);
        assert!(bad.failures[0].replay.starts_with("crashlab replay --scenario shared/no-sync --crash sigkill"));
    }
}
