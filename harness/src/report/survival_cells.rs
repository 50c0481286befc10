//! The aggregation of trial records into the cells of a survival report:
//! counts, failures, explanations, the representative replay and the
//! verdict, for simulated cells and for real power cuts.
//!
//! Architecture Invariant: pure.

use crate::crash::CrashPoint;
use crate::expectation::{AckExpectation, PersistenceModel};
use crate::process_model::{AckStatus, ChildExit};
use crate::realcut::protocol::RealTrialRecord;
use crate::report::survival::{
    judge, CellReport, ExplanationReport, FailureReport, RealCutInfo, ReplayLine, Verdict, MAX_FAILURES,
};
use crate::scenario::ScenarioId;
use crate::trial_record::TrialRecord;
use crate::vocab::CrashKind;
use crate::vocab::RealColumn;

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
    /// loopcut: the writeback pressure the cuts ran under.
    pub writeback: crate::vocab::Writeback,
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
        writeback: input.writeback,
        coverage: Default::default(),
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
        info.coverage.add_file(j);
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

/// Hand-built real-cut records and cells, for the tests of the report's
/// readers and writers.
#[cfg(test)]
pub(crate) mod real_test_support {
    use super::*;
    use crate::crash::PointSelection;
    use crate::journal::JournalSnapshot;
    use crate::power_loss::Forbidden;
    use crate::process_model::TrialFacts;
    use crate::realcut::judge::{AckCounts, RealJudgement};
    use crate::report::survival::{MatrixConfig, RunInfo, Summary, SurvivalReport, SCHEMA_VERSION};
    use crate::vocab::Environment;
    use crate::vocab::{CutMethod, FsKind};

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
                units_with_intermediate: 0,
                units_intermediate: 0,
                sizes_allowed: 1,
                unsynced_size_kept: false,
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
            writeback: crate::vocab::Writeback::None,
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
            lifecycle: None,
            enospc_skipped: None,
        }
    }
}

#[cfg(test)]
mod real_tests {
    use super::real_test_support::*;
    use super::*;
    use crate::vocab::Backend;
    use crate::vocab::{CutMethod, FsKind};

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
        let html = crate::report::html::render_html(&report);
        assert!(html.contains("power-loss (real: loopcut/ext4)</th>"), "the heatmap column is labelled");
        assert!(html.contains("kernel 6.1.0-test<br>ext4 · shutdown"), "with its kernel and cut");
        assert!(html.contains("MODEL SOUNDNESS VIOLATION(S)"), "the banner says so");
        let junit = crate::report::junit::junit_xml(&report).unwrap();
        assert!(junit.contains("shared/no-sync sigkill [power-loss (real: loopcut/ext4)]"), "{junit}");
        // Real cuts rerun with `crashlab soundness`, not replay: never in the regressions file.
        assert!(crate::report::regressions::failing_trials(&report).is_empty());
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
