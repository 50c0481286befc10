//! The external report's part for `--crash enospc,power-loss` (schema 1.9):
//! each traced `enospc` trial is also judged at a power loss at the
//! writer's end (however it ended), in every state that power loss may
//! leave ([`EnospcPowerLoss`]); its section counts them
//! ([`EnospcPowerLossCounts`]). A trial whose writer was not traced cannot
//! be judged so, and says why: it never passes silently.
//!
//! Architecture Invariant: pure.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::report::checker_verdict::CheckerVerdict;
use crate::report::external_power_loss::{PowerLossFile, PowerLossFinding};

/// What a power loss at an `enospc` writer's end may leave, as judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "judged", rename_all = "kebab-case")]
pub enum EnospcPowerLoss {
    /// The states were not judged: the oracle, which records what the
    /// writer's syncs made durable, did not trace the writer.
    NotJudged { reason: String },
    /// The states were judged.
    States(Box<EnospcStates>),
}

/// The power-loss states of one traced `enospc` trial and their verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EnospcStates {
    /// The files: floor (what completed syncs made durable on the small
    /// filesystem) and newest (what it held at the writer's end).
    pub files: Vec<PowerLossFile>,
    /// Binary choices (namespace operations and units) of the state space.
    pub dims: u64,
    pub exhaustive: bool,
    pub states_total: u64,
    /// States up to and including the first failing one (all when none
    /// failed).
    pub states_checked: u64,
    /// Checker runs, shrinking included.
    pub checker_runs: u64,
    /// Consistent, or the violation of the minimal state.
    pub verdict: CheckerVerdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finding: Option<Box<PowerLossFinding>>,
    /// A replay of one state (`--state`): that state, as it reads against
    /// the rerun, and what it named that the rerun lacks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The command that re-creates the trial and checks the finding's
    /// minimal state (set by the run, which knows the replay line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<String>,
}

impl EnospcPowerLoss {
    /// The reason of its violation, if the checker failed in some state.
    pub fn violation(&self) -> Option<&str> {
        match self {
            EnospcPowerLoss::States(s) => s.verdict.reason(),
            EnospcPowerLoss::NotJudged { .. } => None,
        }
    }
}

impl fmt::Display for EnospcPowerLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            EnospcPowerLoss::NotJudged { reason } => return write!(f, "power-loss states not judged: {reason}"),
            EnospcPowerLoss::States(s) => s,
        };
        if let Some(state) = &s.state {
            return match &s.verdict {
                CheckerVerdict::Consistent => {
                    write!(f, "at a power loss at the writer's end, state {state}: consistent")
                }
                CheckerVerdict::Violation { reason } => {
                    write!(f, "at a power loss at the writer's end, state {state}: checker failed: {reason}")
                }
            };
        }
        let how = if s.exhaustive { "all of them" } else { "sampled" };
        write!(
            f,
            "at a power loss at the writer's end, {} of {} states checked ({how})",
            s.states_checked, s.states_total
        )?;
        match (&s.verdict, &s.finding) {
            (CheckerVerdict::Consistent, _) => return f.write_str(": consistent"),
            (_, Some(finding)) => write!(f, ": {}; state {}", finding.explanation, finding.state)?,
            (CheckerVerdict::Violation { reason }, None) => write!(f, ": checker failed: {reason}")?,
        }
        match &s.replay {
            Some(r) => write!(f, "; replay: {r}"),
            None => Ok(()),
        }
    }
}

/// What the `enospc` trials of a run found at a power loss after the full
/// disk (`--crash enospc,power-loss`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EnospcPowerLossCounts {
    /// Trials whose power-loss states were judged.
    pub judged: u64,
    /// Trials whose states were not judged (the writer was not traced).
    pub not_judged: u64,
    /// States checked over the judged trials.
    pub states_checked: u64,
    /// Judged trials with a state the checker rejected.
    pub violations: u64,
}

impl EnospcPowerLossCounts {
    /// Count one trial's judgment.
    pub fn count(&mut self, pl: &EnospcPowerLoss) {
        match pl {
            EnospcPowerLoss::NotJudged { .. } => self.not_judged += 1,
            EnospcPowerLoss::States(s) => {
                self.judged += 1;
                self.states_checked += s.states_checked;
                self.violations += s.verdict.is_violation() as u64;
            }
        }
    }

    /// Add the counts of a shard of the same run.
    pub fn add(&mut self, o: &EnospcPowerLossCounts) {
        self.judged += o.judged;
        self.not_judged += o.not_judged;
        self.states_checked += o.states_checked;
        self.violations += o.violations;
    }
}

impl fmt::Display for EnospcPowerLossCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at a power loss after the full disk: {} trial(s) judged, {} states checked, {} violation(s)",
            self.judged, self.states_checked, self.violations
        )?;
        if self.not_judged > 0 {
            write!(f, "; power-loss states not judged in {} trial(s) (not traced)", self.not_judged)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(verdict: CheckerVerdict, checked: u64) -> EnospcPowerLoss {
        EnospcPowerLoss::States(Box::new(EnospcStates {
            files: Vec::new(),
            dims: 3,
            exhaustive: true,
            states_total: 8,
            states_checked: checked,
            checker_runs: checked,
            verdict,
            finding: None,
            state: None,
            notes: Vec::new(),
            replay: None,
        }))
    }

    #[test]
    fn judged_and_unjudged_trials_are_counted_apart_and_shards_add_up() {
        let mut c = EnospcPowerLossCounts::default();
        c.count(&states(CheckerVerdict::Consistent, 8));
        c.count(&states(CheckerVerdict::Violation { reason: "ack 3 missing".into() }, 2));
        c.count(&EnospcPowerLoss::NotJudged { reason: "not traced (no ptrace)".into() });
        assert_eq!(c, EnospcPowerLossCounts { judged: 2, not_judged: 1, states_checked: 10, violations: 1 });
        let mut sum = c.clone();
        sum.add(&c);
        assert_eq!(sum, EnospcPowerLossCounts { judged: 4, not_judged: 2, states_checked: 20, violations: 2 });
        assert!(c.to_string().contains("not judged in 1 trial(s)"), "{c}");
    }

    #[test]
    fn a_trial_failing_in_a_state_after_the_full_disk_shows_its_state_and_replay_and_diffs_as_a_regression() {
        use crate::program_plan::TrialPlan;
        use crate::report::external::{aggregate_section, Delivery, TrialOutcome};
        use crate::report::external_diff::ExternalDiff;
        use crate::report::external_fixtures::report_with;
        use crate::vocab::{CrashKind, ProcessEnd};
        let outcome = |pl: Option<EnospcPowerLoss>| TrialOutcome {
            plan: TrialPlan::new(5, CrashKind::Enospc, 0),
            crash_at_ns: 0,
            delivery: Delivery::Capacity {
                capacity: 16384,
                filesystem: "tmpfs".into(),
                used: 16384,
                free: 0,
                traced: None,
                not_traced: None,
                power_loss: pl.clone(),
            },
            writer_end: ProcessEnd::Exited(1),
            acks: vec!["rec 0".into()],
            partial_line: None,
            checker: match pl.as_ref().and_then(|p| p.violation()) {
                Some(r) => CheckerVerdict::Violation { reason: format!("at a power loss after the full disk: {r}") },
                None => CheckerVerdict::Consistent,
            },
        };
        let mut failing = states(CheckerVerdict::Violation { reason: "acked record 0 is missing".into() }, 2);
        if let EnospcPowerLoss::States(s) = &mut failing {
            s.replay = Some("crashlab replay ... --crash enospc,power-loss --state newest:@6=floor".into());
        }
        let report_of = |o: TrialOutcome| {
            let mut r = report_with(&[], None);
            r.crashes = vec![aggregate_section(CrashKind::Enospc, &[o], &|t| format!("replay {t}"))];
            r
        };
        let before = report_of(outcome(Some(states(CheckerVerdict::Consistent, 8))));
        let after = report_of(outcome(Some(failing)));
        let summary = after.human_summary();
        assert!(summary.contains("VIOLATION enospc trial 0: at a power loss after the full disk"), "{summary}");
        assert!(summary.contains("--state newest:@6=floor"), "the state's replay line: {summary}");
        assert!(summary.contains("1 trial(s) judged, 2 states checked, 1 violation(s)"), "{summary}");
        let html = crate::report::external_html::render_external_html(&after);
        assert!(html.contains("1 trial(s) judged, 2 states checked, 1 violation(s)"), "{html}");
        let junit = crate::report::external_junit::external_junit_xml(&after).unwrap();
        assert!(junit.contains("at a power loss after the full disk"), "{junit}");
        let diff = ExternalDiff::between("before", &before, "after", &after);
        assert_eq!(diff.regressions, ["enospc trial 0: consistent → VIOLATION"], "{}", diff.render());
    }

    #[test]
    fn an_unjudged_trial_says_why_and_is_no_violation() {
        let pl = EnospcPowerLoss::NotJudged { reason: "not traced (ptrace: EPERM)".into() };
        assert_eq!(pl.to_string(), "power-loss states not judged: not traced (ptrace: EPERM)");
        assert_eq!(pl.violation(), None);
        let bad = states(CheckerVerdict::Violation { reason: "ack 3 missing".into() }, 2);
        assert_eq!(bad.violation(), Some("ack 3 missing"));
        let json = serde_json::to_string(&pl).unwrap();
        assert_eq!(serde_json::from_str::<EnospcPowerLoss>(&json).unwrap(), pl);
    }
}
