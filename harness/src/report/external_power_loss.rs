//! The power-loss part of an external report: per trial what the crash left,
//! how many states were checked, and for every violation its minimal
//! explanation and replay line.
//!
//! Architecture Invariant: pure.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use crate::page_history::{HistoryMethod, HistoryStats};
use crate::program_plan::{PowerLossPlan, PowerLossPoint, ProgramPoints};
use crate::report::checker_verdict::CheckerVerdict;
use crate::report::external_eio::EioSyncFacts;
use crate::report::source_location::PowerLossAttribution;
use crate::summary_text::write_failure;
use crate::vocab::CrashWhen;

/// How the crash of a power-loss trial was delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum PowerLossDelivery {
    /// The oracle killed the writer at its crash point: the `nth` sync call,
    /// which was `syscall`.
    Syscall { nth: u64, syscall: String, when: CrashWhen },
    /// `--points syscalls` (schema 1.5): killed at the `nth` call the oracle
    /// traced, which was `syscall`.
    Call { nth: u64, syscall: String, when: CrashWhen },
    /// Killed at the planned time after its start.
    Time { at_ns: u64 },
    /// Killed at the planned time, before its `execve`: it did nothing.
    BeforeExec { at_ns: u64 },
    /// The writer exited before the crash point: the power fails after its
    /// end, before anything it did not sync reached the disk.
    WriterFinishedFirst,
    /// `eio-sync` (schema 1.7): killed just before the `nth` data sync
    /// (`fsync`, `fdatasync`, `msync(MS_SYNC)`), which was `syscall`.
    DataSync { nth: u64, syscall: String },
    /// `eio-sync` (schema 1.7): the writer ended on its own other than with
    /// status 0 (e.g. it exited on the `EIO`): a normal outcome of that
    /// kind; the power fails after its end.
    WriterEnded { how: String },
}

impl fmt::Display for PowerLossDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PowerLossDelivery::Syscall { nth, syscall, when: CrashWhen::Before } => {
                write!(f, "power lost just before sync call {nth} ({syscall})")
            }
            PowerLossDelivery::Syscall { nth, syscall, when: CrashWhen::After } => {
                write!(f, "power lost just after sync call {nth} ({syscall}) returned")
            }
            PowerLossDelivery::Call { nth, syscall, when: CrashWhen::Before } => {
                write!(f, "power lost just before traced call {nth} ({syscall})")
            }
            PowerLossDelivery::Call { nth, syscall, when: CrashWhen::After } => {
                write!(f, "power lost just after traced call {nth} ({syscall}) returned")
            }
            PowerLossDelivery::Time { at_ns } => {
                write!(f, "power lost {:.3} ms after the writer's start", *at_ns as f64 / 1e6)
            }
            PowerLossDelivery::BeforeExec { at_ns } => {
                write!(f, "power lost {:.3} ms after the start, before the writer's execve", *at_ns as f64 / 1e6)
            }
            PowerLossDelivery::WriterFinishedFirst => {
                f.write_str("the writer finished first; power lost after its end")
            }
            PowerLossDelivery::DataSync { nth, syscall } => {
                write!(f, "power lost just before data sync {nth} ({syscall})")
            }
            PowerLossDelivery::WriterEnded { how } => write!(f, "the writer {how}; power lost after its end"),
        }
    }
}

/// One file of a crashed trial directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PowerLossFile {
    /// Relative to the trial directory.
    pub path: String,
    /// Its size when every operation that may be lost was lost (0 when it
    /// then has no name; see the module docs of
    /// `crashlab::external::power_loss`).
    pub floor_size: u64,
    /// The size in the page cache when the writer died.
    pub newest_size: u64,
    /// Units (pages, or sectors with `--tear`) that may hold more than one
    /// content: floor and newest differ, or the write history (schema 1.6)
    /// recorded another version in between.
    pub dirty_units: u64,
    /// Intermediate versions its units may hold besides their floor and
    /// newest content, over all its units (schema 1.6; 0 without the
    /// write history).
    #[serde(default)]
    pub intermediate_versions: u64,
}

/// The explanation of a violation, shrunk from the first failing state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PowerLossFinding {
    /// The checker's reason in [`PowerLossFinding::state`].
    pub reason: String,
    /// The minimal state: every unit in `floor_set` at its floor, every other
    /// unit at its newest content. Its text, for `--state`.
    pub state: String,
    /// The units whose durable floor the violation needs. 1-minimal (when
    /// `one_minimal`): with any one of them back at its newest content (the
    /// rest as in `state`), the checker passes. Empty: the checker fails with
    /// every unit at its newest content, what a process crash leaves.
    pub floor_set: Vec<String>,
    /// The units whose newest content the violation needs: with `floor_set`
    /// at the floor, these at their newest and every other unit at its
    /// floor, the checker still fails, and 1-minimally so (when `one_minimal`).
    pub newest_set: Vec<String>,
    /// That state's text.
    pub newest_set_state: String,
    /// Both sets are 1-minimal (false only if the shrink budget ran out).
    pub one_minimal: bool,
    /// The first failing state in exploration order, and what it was.
    pub first_state: String,
    pub first_state_kind: String,
    pub first_reason: String,
    /// The sentence the report prints.
    pub explanation: String,
    /// Where the lost ack was printed and the syncs of `floor_set` were
    /// called in the writer's code (schema 1.6; absent before, and when
    /// the run recorded no stacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribution: Option<Box<PowerLossAttribution>>,
}

/// Everything one power-loss trial found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PowerLossTrialOutcome {
    pub plan: PowerLossPlan,
    pub delivery: PowerLossDelivery,
    /// The lines printed before the power failed.
    pub acks: Vec<String>,
    pub partial_line: Option<String>,
    pub files: Vec<PowerLossFile>,
    /// Binary choices: namespace operations that may be lost and units that
    /// differ between floor and newest.
    pub dims: u64,
    /// Of `dims`, the namespace operations (entry changes and size changes
    /// no sync made durable; schema 1.4).
    #[serde(default)]
    pub namespace_ops: u64,
    pub exhaustive: bool,
    /// States in the exploration order.
    pub states_total: u64,
    /// States up to and including the first failing one (all when none
    /// failed): a function of the trial, whatever `--jobs`.
    pub states_checked: u64,
    /// Checker runs, shrinking included (more than `states_checked` when
    /// jobs checked past the first failure in parallel).
    pub checker_runs: u64,
    /// States not shown to the checker (schema 1.6): byte-identical
    /// (every path, kind, size and byte, and the acks) to a state of this
    /// trial already checked, whose verdict they took. Shrinking included;
    /// which of two identical states is checked first may depend on `--jobs`.
    /// (A trial has at most a few times 2^16 states.)
    #[serde(default, skip_serializing_if = "is_zero32")]
    pub states_skipped: u32,
    /// Consistent, or the violation of the minimal state.
    pub verdict: CheckerVerdict,
    pub finding: Option<PowerLossFinding>,
    /// What recording the write history cost and found in this trial.
    pub history: HistoryStats,
    /// `eio-sync` (schema 1.7): the failed sync and what the writer did
    /// next (none when the writer made fewer data syncs this time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eio: Option<EioSyncFacts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PowerLossTrialSummary {
    pub trial: u32,
    pub writer_seed: u64,
    pub point: PowerLossPoint,
    pub delivery: PowerLossDelivery,
    pub acks: u64,
    pub last_ack: Option<String>,
    pub files: Vec<PowerLossFile>,
    pub dims: u64,
    #[serde(default)]
    pub namespace_ops: u64,
    pub exhaustive: bool,
    pub states_total: u64,
    pub states_checked: u64,
    pub checker_runs: u64,
    /// See [`PowerLossTrialOutcome::states_skipped`] (schema 1.6).
    #[serde(default, skip_serializing_if = "is_zero32")]
    pub states_skipped: u32,
    pub verdict: CheckerVerdict,
    /// The write history of this trial (schema 1.6).
    #[serde(default)]
    pub history: HistoryStats,
    /// `eio-sync` (schema 1.7): the failed sync and what the writer did next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eio: Option<EioSyncFacts>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PowerLossViolation {
    pub trial: u32,
    pub point: PowerLossPoint,
    pub delivery: PowerLossDelivery,
    pub acks: u64,
    pub last_ack: Option<String>,
    pub finding: PowerLossFinding,
    /// Rebuilds the minimal state of this trial and reruns the checker on it.
    pub replay: String,
    /// `eio-sync` (schema 1.7): the failed sync and what the writer did next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eio: Option<EioSyncFacts>,
}

/// What the traced clean run measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PowerLossCalibration {
    /// The writer's run under the oracle, from the start of the tracer to
    /// its end; timed crash points are fractions of it.
    pub traced_clean_ns: u64,
    /// Calls that can be crash points (`msync`, `fsync`, `fdatasync`,
    /// `ftruncate`, `munmap`; the dynamic loader's included).
    pub sync_calls: u64,
    /// Every call the oracle traced (schema 1.5): the sync calls and every
    /// call on a file of the trial directory; the crash points of
    /// `--points syscalls`.
    #[serde(default)]
    pub traced_calls: u64,
    /// The same by syscall.
    pub by_syscall: BTreeMap<String, u64>,
    /// `eio-sync` runs (schema 1.7): the data syncs (`fsync`, `fdatasync`,
    /// `msync(MS_SYNC)`), the calls a trial's failed sync is chosen among.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub data_syncs: u64,
}

impl PowerLossCalibration {
    /// The calls the crash points of `points` are spread over.
    pub fn crash_point_calls(&self, points: ProgramPoints) -> u64 {
        match points {
            ProgramPoints::Default => self.sync_calls,
            ProgramPoints::Syscalls => self.traced_calls,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PowerLossSection {
    /// The namespace's persistence model (`--fs-model`: `posix`, `ext4`,
    /// `xfs`, `btrfs`; schema 1.4): what a
    /// completed sync makes durable of entries and sizes. Reports before
    /// 1.4 had none (directory entries were all kept).
    #[serde(default)]
    pub fs_model: Option<String>,
    /// How the write history was recorded (schema 1.6: `page-compare`, or
    /// `off` with `--history off`); none in older reports, which had no
    /// intermediate versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_method: Option<HistoryMethod>,
    /// The write history over all trials (schema 1.6).
    #[serde(default)]
    pub history: HistoryStats,
    /// `--tear`: units are sectors of this many bytes; none: pages.
    pub tear: Option<u64>,
    pub unit_bytes: u64,
    /// Trials with at most this many states are explored exhaustively.
    pub exhaustive_bound: u64,
    pub random_states: u32,
    pub calibration: PowerLossCalibration,
    pub trials: u64,
    /// Trials crashed at a sync call boundary, and at a random time.
    pub syscall_trials: u64,
    pub time_trials: u64,
    /// Trials whose writer finished before the crash point.
    pub finished_first: u64,
    pub exhaustive_trials: u64,
    pub states_checked: u64,
    pub checker_runs: u64,
    /// Of all trials, see [`PowerLossTrialOutcome::states_skipped`] (schema 1.6).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub states_skipped: u64,
    pub acks_seen: u64,
    pub max_acks: u64,
    pub consistent: u64,
    pub violations: u64,
    pub failures: Vec<PowerLossViolation>,
    pub trials_detail: Vec<PowerLossTrialSummary>,
}

/// The section from the trials' outcomes (any order); `replay` gives the
/// replay line of a trial's minimal state.
pub fn aggregate_power_loss(
    tear: Option<u64>,
    unit_bytes: u64,
    exhaustive_bound: u64,
    random_states: u32,
    calibration: PowerLossCalibration,
    outcomes: &[PowerLossTrialOutcome],
    replay: &dyn Fn(u32, &str) -> String,
) -> PowerLossSection {
    let mut sorted: Vec<&PowerLossTrialOutcome> = outcomes.iter().collect();
    sorted.sort_by_key(|o| o.plan.trial);
    let mut s = PowerLossSection {
        trials: sorted.len() as u64,
        ..PowerLossSection::empty(tear, unit_bytes, exhaustive_bound, random_states, calibration)
    };
    for o in sorted {
        match o.plan.point {
            PowerLossPoint::Syscall { .. } | PowerLossPoint::Call { .. } | PowerLossPoint::FailedSync { .. } => {
                s.syscall_trials += 1
            }
            PowerLossPoint::Time { .. } => s.time_trials += 1,
        }
        s.finished_first += (o.delivery == PowerLossDelivery::WriterFinishedFirst) as u64;
        s.exhaustive_trials += o.exhaustive as u64;
        s.states_checked += o.states_checked;
        s.checker_runs += o.checker_runs;
        s.history.add(&o.history);
        s.states_skipped += o.states_skipped as u64;
        let acks = o.acks.len() as u64;
        s.acks_seen += acks;
        s.max_acks = s.max_acks.max(acks);
        let last_ack = o.acks.last().cloned();
        match &o.finding {
            None => s.consistent += 1,
            Some(finding) => {
                s.violations += 1;
                s.failures.push(PowerLossViolation {
                    trial: o.plan.trial,
                    point: o.plan.point,
                    delivery: o.delivery.clone(),
                    acks,
                    last_ack: last_ack.clone(),
                    finding: finding.clone(),
                    replay: replay(o.plan.trial, &finding.state),
                    eio: o.eio.clone(),
                });
            }
        }
        s.trials_detail.push(PowerLossTrialSummary {
            trial: o.plan.trial,
            writer_seed: o.plan.writer_seed,
            point: o.plan.point,
            delivery: o.delivery.clone(),
            acks,
            last_ack,
            files: o.files.clone(),
            dims: o.dims,
            namespace_ops: o.namespace_ops,
            exhaustive: o.exhaustive,
            states_total: o.states_total,
            states_checked: o.states_checked,
            checker_runs: o.checker_runs,
            states_skipped: o.states_skipped,
            verdict: o.verdict.clone(),
            history: o.history,
            eio: o.eio.clone(),
        });
    }
    s
}

impl PowerLossSection {
    /// A section with these settings and no trial (what aggregation and
    /// merging add to).
    pub fn empty(
        tear: Option<u64>,
        unit_bytes: u64,
        exhaustive_bound: u64,
        random_states: u32,
        calibration: PowerLossCalibration,
    ) -> PowerLossSection {
        PowerLossSection {
            fs_model: None,
            history_method: None,
            history: HistoryStats::default(),
            tear,
            unit_bytes,
            exhaustive_bound,
            random_states,
            calibration,
            trials: 0,
            syscall_trials: 0,
            time_trials: 0,
            finished_first: 0,
            exhaustive_trials: 0,
            states_checked: 0,
            checker_runs: 0,
            states_skipped: 0,
            acks_seen: 0,
            max_acks: 0,
            consistent: 0,
            violations: 0,
            failures: Vec::new(),
            trials_detail: Vec::new(),
        }
    }

    /// The human summary's `eio-sync` part: what each trial's failed sync
    /// covered and what the writer did next, then the counts.
    pub fn write_eio_summary(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\neio-sync (one data sync failed with EIO, then the power lost at a later data sync or after the end): \
             {} trials out of {} data syncs; {} states checked, {} checker runs",
            self.trials, self.calibration.data_syncs, self.states_checked, self.checker_runs
        );
        for t in &self.trials_detail {
            let verdict = if t.verdict.is_violation() { "VIOLATION" } else { "consistent" };
            match &t.eio {
                Some(e) => {
                    let _ = writeln!(out, "  trial {}: {e}; {verdict}", t.trial);
                }
                None => {
                    let _ = writeln!(out, "  trial {}: the writer never reached {}; {verdict}", t.trial, t.point);
                }
            }
        }
        let _ = writeln!(
            out,
            "  {} acks (max {} in a trial); {} trials consistent in every state checked, {} with a violation",
            self.acks_seen, self.max_acks, self.consistent, self.violations
        );
    }

    /// The human summary's power-loss part.
    pub fn write_summary(&self, out: &mut String) {
        let c = &self.calibration;
        let unit = match self.tear {
            Some(t) => format!("{t}-byte sectors (--tear)"),
            None => format!("{}-byte pages", self.unit_bytes),
        };
        let _ = writeln!(
            out,
            "\npower-loss (simulated by the durability oracle, units: {unit}): {} trials, {} at sync call boundaries, {} at random times, {} after the writer's end",
            self.trials, self.syscall_trials, self.time_trials, self.finished_first
        );
        let _ = writeln!(
            out,
            "  traced clean run {:.1} ms with {} sync calls; {} states checked ({} trials exhaustively), {} checker runs{}",
            c.traced_clean_ns as f64 / 1e6,
            c.sync_calls,
            self.states_checked,
            self.exhaustive_trials,
            self.checker_runs,
            match self.states_skipped {
                0 => String::new(),
                n => format!(" ({n} states byte-identical to one already checked took its verdict)"),
            }
        );
        let _ = writeln!(
            out,
            "  {} acks (max {} in a trial); {} trials consistent in every state checked, {} with a violation",
            self.acks_seen, self.max_acks, self.consistent, self.violations
        );
        let h = &self.history;
        match self.history_method {
            Some(m @ (HistoryMethod::PageCompare | HistoryMethod::UffdWriteProtect)) => {
                let how = match m {
                    HistoryMethod::UffdWriteProtect => format!(
                        "userfaultfd write protection in {} address space(s) reported {} written pages; pages compared at",
                        h.write_tracked_spaces, h.pages_reported
                    ),
                    _ => "pages compared at".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "  write history ({how} {} stops{}): {} intermediate versions recorded{}",
                    h.samples,
                    if h.timer_samples > 0 {
                        format!(", {} of them timer ticks", h.timer_samples)
                    } else {
                        String::new()
                    },
                    h.versions,
                    if h.dropped > 0 { format!(", {} not kept (limits)", h.dropped) } else { String::new() }
                );
            }
            Some(HistoryMethod::Off) => {
                let _ = writeln!(out, "  write history off (--history off): every unit at its floor or newest content");
            }
            None => {}
        }
    }

    pub fn write_failures(&self, out: &mut String) {
        for v in &self.failures {
            let kind = if v.eio.is_some() || matches!(v.point, PowerLossPoint::FailedSync { .. }) {
                "eio-sync"
            } else {
                "power-loss"
            };
            let headline = format!("\nVIOLATION {kind} trial {} ({}): {}", v.trial, v.delivery, v.finding.explanation);
            let f = &v.finding;
            // Both reasons: the first failing state's is often the clearer
            // one (it failed with more units at their floor).
            let details = [
                format!(
                    "{} acks{}; first failing state: {} ({}): {}",
                    v.acks,
                    v.last_ack.as_ref().map(|a| format!(", the last `{a}`")).unwrap_or_default(),
                    f.first_state,
                    f.first_state_kind,
                    f.first_reason
                ),
                format!("minimal state: {}: {}", f.state, f.reason),
            ];
            let mut details = details.to_vec();
            if let Some(eio) = &v.eio {
                details.insert(0, eio.to_string());
            }
            write_failure(out, "", &headline, &details, "replay", &v.replay);
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_zero32(n: &u32) -> bool {
    *n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_violation_prints_the_reasons_of_its_first_failing_and_its_minimal_state() {
        let finding = PowerLossFinding {
            reason: "rec 3 has a bad checksum".into(),
            state: "newest:log#p1=floor".into(),
            floor_set: vec!["log page 1".into()],
            newest_set: vec![],
            newest_set_state: "floor:".into(),
            one_minimal: true,
            first_state: "floor:".into(),
            first_state_kind: "all units at their durable floor".into(),
            first_reason: "acked rec 3 is missing".into(),
            explanation: "checker failed: rec 3 has a bad checksum; minimal set: log page 1 at its durable floor"
                .into(),
            attribution: None,
        };
        let plan = PowerLossPlan::new(1, 0, 4, ProgramPoints::Default);
        let outcome = PowerLossTrialOutcome {
            plan,
            delivery: PowerLossDelivery::WriterFinishedFirst,
            acks: vec!["rec 3".into()],
            partial_line: None,
            files: vec![],
            dims: 1,
            namespace_ops: 0,
            exhaustive: true,
            states_total: 2,
            states_checked: 1,
            checker_runs: 2,
            states_skipped: 0,
            verdict: CheckerVerdict::Violation { reason: finding.reason.clone() },
            finding: Some(finding),
            history: HistoryStats { samples: 5, versions: 2, ..HistoryStats::default() },
            eio: None,
        };
        let calibration = PowerLossCalibration {
            traced_clean_ns: 1,
            sync_calls: 4,
            traced_calls: 9,
            by_syscall: BTreeMap::new(),
            data_syncs: 0,
        };
        let mut section =
            aggregate_power_loss(None, 4096, 1 << 16, 64, calibration, &[outcome], &|_, _| "replay".into());
        assert_eq!((section.history.samples, section.history.versions), (5, 2), "the trials' histories add up");
        section.history_method = Some(HistoryMethod::PageCompare);
        let mut summary = String::new();
        section.write_summary(&mut summary);
        assert!(
            summary.contains("write history (pages compared at 5 stops): 2 intermediate versions recorded"),
            "{summary}"
        );
        let mut out = String::new();
        section.write_failures(&mut out);
        assert!(
            out.contains("first failing state: floor: (all units at their durable floor): acked rec 3 is missing"),
            "{out}"
        );
        assert!(out.contains("minimal state: newest:log#p1=floor: rec 3 has a bad checksum"), "{out}");
    }
}
