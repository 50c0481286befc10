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
use crate::scenario::ScenarioId;
use crate::spec::{MappingKind, SyncPolicy};

/// Bumped in the major part when a reader of the old format would misread
/// the new one; in the minor part when fields are only added.
pub const SCHEMA_VERSION: &str = "1.1";

/// JSON pointers (with `*` for any array index) of fields that differ
/// between two runs with the same seed. Snapshot tests redact exactly these.
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
    let mut c = CellReport {
        scenario: input.scenario,
        mapping: input.scenario.mapping,
        sync_policy: input.scenario.policy,
        crash: input.crash,
        model: input.model,
        trials: input.records.len() as u64,
        crash_points: input.points.len() as u64,
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
        expectation: input.expectation,
        verdict: Verdict::AsExpected,
        verdict_reason: None,
        replay: String::new(),
        failures: Vec::new(),
        states_checked: None,
        exhaustive_trials: None,
        explanations: Vec::new(),
    };
    let mut representative: Option<(u8, CrashPoint)> = None;
    let power_loss = input.model.is_power_loss();
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

/// How good a trial is as its cell's representative replay (0 best): one
/// that broke the model, else one that put an acked op at risk, else any.
pub(crate) fn representative_rank(violated: bool, acks_at_risk: bool) -> u8 {
    match (violated, acks_at_risk) {
        (true, _) => 0,
        (false, true) => 1,
        (false, false) => 2,
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
    if c.model_violations > 0 {
        return (
            Verdict::ModelViolation,
            Some(format!("{} of {} trials left states the {} model forbids", c.model_violations, c.trials, c.model)),
        );
    }
    let not_survived = c.lost + c.torn;
    match c.expectation {
        AckExpectation::AllSurvive if not_survived > 0 => (
            Verdict::Unexpected,
            Some(format!("{not_survived} acked ops lost or torn where the {} model keeps them all", c.model)),
        ),
        // Under power loss "survived" means guaranteed in every state, so a
        // writer that syncs before acking must have all of them guaranteed.
        AckExpectation::AllSurvive if c.model.is_power_loss() && c.truncated > 0 => (
            Verdict::Unexpected,
            Some(format!("{} acked ops not guaranteed where the {} model keeps them all", c.truncated, c.model)),
        ),
        AckExpectation::AllLost if c.survived + c.torn > 0 => (
            Verdict::Unexpected,
            Some(format!("{} acked ops reached the file where the {} model allows none", c.survived + c.torn, c.model)),
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
        let mut models: Vec<PersistenceModel> = self.cells.iter().map(|c| c.model).collect();
        models.sort();
        models.dedup();
        for model in models {
            let _ = writeln!(out, "\nmodel {}: {}", model, model.describe());
            let (survived, lost, torn, extra) = if model.is_power_loss() {
                ("guaranteed", "may lose", "may tear", "states")
            } else {
                ("survived", "lost", "torn", "in-fl torn")
            };
            let _ = writeln!(
                out,
                "{:<26} {:<8} {:>6} {:>6} {:>10} {:>8} {:>8} {:>6} {:>10} {:>6} {:>5}  verdict",
                "scenario", "crash", "trials", "acked", survived, lost, torn, "trunc", extra, "sigbus", "viol"
            );
            for c in self.cells.iter().filter(|c| c.model == model) {
                let extra = match c.states_checked {
                    Some(n) => n.to_string(),
                    None => format!("{}/{}", c.in_flight_torn, c.in_flight_stores),
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
            // MAP_PRIVATE cells lose everything by design; explaining each is noise.
            let explained: Vec<&CellReport> = self
                .cells
                .iter()
                .filter(|c| c.model == model && !c.explanations.is_empty() && c.expectation != AckExpectation::AllLost)
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
        for c in self.cells.iter().filter(|c| c.verdict != Verdict::AsExpected) {
            let _ = writeln!(
                out,
                "\n{} {} [{}]: {}",
                c.scenario,
                c.crash,
                c.model,
                c.verdict_reason.as_deref().unwrap_or("")
            );
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
    match (c.verdict, c.expectation) {
        (Verdict::AsExpected, AckExpectation::AllSurvive) => "ok: acks survive",
        (Verdict::AsExpected, AckExpectation::AllLost) => "ok: acks never reach the file",
        (Verdict::AsExpected, AckExpectation::MayBeLost) => "ok: acks not guaranteed",
        (Verdict::Unexpected, _) => "UNEXPECTED",
        (Verdict::ModelViolation, _) => "MODEL VIOLATION",
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
