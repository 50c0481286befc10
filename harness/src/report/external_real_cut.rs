//! The `power_loss_real` section of the external report (schema 1.7):
//! `--crash power-loss-real`, real power cuts of a user's program on a
//! loop-mounted filesystem. Per trial: the crash point, the user's checker's
//! verdict on the real post-cut directory, and that directory judged
//! against the simulated model of the same trace ([`Membership`]: allowed,
//! or a **model soundness violation** kept as evidence). Per section: the
//! coverage, i.e. how often the cuts exercised each choice the model leaves
//! open (units at their floor, at an intermediate version, at their newest
//! content; sizes beyond the durable size; each kind of namespace operation
//! kept or lost). The judgement itself is
//! `crate::external::power_loss::membership`.
//!
//! Architecture Invariant: pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::program_plan::PowerLossPlan;
use crate::report::checker_verdict::CheckerVerdict;
use crate::report::external_power_loss::{PowerLossCalibration, PowerLossDelivery};
use crate::summary_text::write_failure;
use crate::vocab::real_cut::{CutMethod, FsKind};

/// Which of its versions a unit the model leaves open held after the cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum UnitKept {
    /// Its floor: what completed syncs guarantee (unsynced writes lost).
    Floor,
    /// A version between its floor and its newest content.
    Intermediate,
    /// Its newest content: the unsynced writes reached the disk.
    Newest,
    /// Its bytes are more than one of the above (a page rewritten with the
    /// same bytes): the cut cannot tell which.
    Ambiguous,
}

/// What the cut did with a namespace operation no sync made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum OpKept {
    /// Persisted in every namespace state that fits the directory.
    Kept,
    /// Lost in every one.
    Lost,
    /// Kept in some fitting states, lost in others.
    Undetermined,
}

/// One namespace operation the model leaves open, and what the cut did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OpOutcome {
    /// `create`, `link`, `unlink`, `rename`, `size`.
    pub kind: String,
    /// `rename("state.tmp" -> "state") at call 57`.
    pub operation: String,
    pub outcome: OpKept,
}

/// What one real post-cut directory says about the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Membership {
    /// Some state of the model fits the directory.
    pub allowed: bool,
    /// Why none does (a model soundness violation), or why it was not
    /// judged; `None` when allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbidden: Option<String>,
    /// The namespace was too large to walk: neither allowed nor a violation.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_judged: bool,
    /// Distinct namespace states the model allows at this crash point.
    pub namespace_states: u64,
    /// Per open unit (page or sector) of the files in the fitting state,
    /// which version it held, counted.
    pub units: BTreeMap<UnitKept, u64>,
    /// Files whose size after the cut was larger than their durable
    /// (floor) size: a size change no sync covered persisted.
    pub sizes_beyond_floor: u64,
    /// Every namespace operation the model leaves open, and what the cut did.
    pub operations: Vec<OpOutcome>,
}

/// One real cut of the user's program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RealCutTrial {
    pub plan: PowerLossPlan,
    pub delivery: PowerLossDelivery,
    /// Lines the writer acknowledged before the cut.
    pub acks: u64,
    /// The user's checker on the real post-cut directory.
    pub checker: CheckerVerdict,
    /// The post-cut directory against the simulated model.
    pub membership: Membership,
    /// Where the post-cut directory was kept (a model soundness violation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Reruns the trials up to this one (same seed, same crash points).
    pub rerun: String,
}

impl RealCutTrial {
    /// The model forbids the directory (not "too large to judge").
    pub fn is_model_violation(&self) -> bool {
        !self.membership.allowed && !self.membership.not_judged
    }
}

/// What the cuts did with one kind of namespace operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OpCoverage {
    pub kept: u64,
    pub lost: u64,
    pub undetermined: u64,
}

/// How often the cuts exercised each choice the model leaves open, over the
/// directories the model allows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RealCutCoverage {
    /// Open units (pages or sectors) by the version they held.
    pub units: BTreeMap<UnitKept, u64>,
    /// Files larger after the cut than their durable size.
    pub sizes_beyond_floor: u64,
    /// Open namespace operations by kind (`create`, `rename`, ...).
    pub operations: BTreeMap<String, OpCoverage>,
}

impl RealCutCoverage {
    fn add(&mut self, m: &Membership) {
        if !m.allowed {
            return;
        }
        for (k, n) in &m.units {
            *self.units.entry(*k).or_default() += n;
        }
        self.sizes_beyond_floor += m.sizes_beyond_floor;
        for op in &m.operations {
            let c = self.operations.entry(op.kind.clone()).or_default();
            match op.outcome {
                OpKept::Kept => c.kept += 1,
                OpKept::Lost => c.lost += 1,
                OpKept::Undetermined => c.undetermined += 1,
            }
        }
    }

    /// The rules no cut exercised, by name: `unit newer than its floor`, ...
    pub fn unexercised(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (k, name) in [
            (UnitKept::Floor, "unit at its floor (unsynced writes lost)"),
            (UnitKept::Intermediate, "unit at an intermediate version"),
            (UnitKept::Newest, "unit at its newest unsynced content"),
        ] {
            if self.units.get(&k).copied().unwrap_or(0) == 0 {
                out.push(name.to_owned());
            }
        }
        if self.sizes_beyond_floor == 0 {
            out.push("size beyond the durable size".to_owned());
        }
        for (kind, c) in &self.operations {
            if c.kept == 0 {
                out.push(format!("unsynced {kind} kept"));
            }
            if c.lost == 0 {
                out.push(format!("unsynced {kind} lost"));
            }
        }
        out
    }
}

/// `--crash power-loss-real`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RealCutSection {
    pub fs: FsKind,
    pub cut: CutMethod,
    /// What the loop device does with acknowledged writes.
    pub disk: String,
    /// The namespace model the directories were judged by (`posix`, ...).
    pub fs_model: String,
    /// The traced clean run on the mounted filesystem (the crash points).
    pub calibration: PowerLossCalibration,
    pub trials: u64,
    /// Trials whose writer acknowledged at least one line before the cut.
    pub acks_seen: u64,
    pub consistent: u64,
    /// The user's checker rejected the post-cut directory.
    pub violations: u64,
    /// The model forbids the post-cut directory: a bug of crashlab's model.
    pub model_violations: u64,
    /// Directories the model was too large to judge.
    pub not_judged: u64,
    pub coverage: RealCutCoverage,
    pub outcomes: Vec<RealCutTrial>,
}

impl RealCutSection {
    pub fn of(
        fs: FsKind,
        fs_model: &str,
        calibration: PowerLossCalibration,
        outcomes: Vec<RealCutTrial>,
    ) -> RealCutSection {
        let mut coverage = RealCutCoverage::default();
        outcomes.iter().for_each(|o| coverage.add(&o.membership));
        let count = |f: &dyn Fn(&RealCutTrial) -> bool| outcomes.iter().filter(|o| f(o)).count() as u64;
        RealCutSection {
            fs,
            cut: fs.default_cut(),
            disk: crate::vocab::real_cut::LOOPCUT_DISK.to_owned(),
            fs_model: fs_model.to_owned(),
            calibration,
            trials: outcomes.len() as u64,
            acks_seen: count(&|o| o.acks > 0),
            consistent: count(&|o| !o.checker.is_violation()),
            violations: count(&|o| o.checker.is_violation()),
            model_violations: count(&|o| o.is_model_violation()),
            not_judged: count(&|o| o.membership.not_judged),
            coverage,
            outcomes,
        }
    }

    /// The section in the human summary.
    pub fn write_summary(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\npower-loss-real on {} ({}; judged against the {} model): {} trials, {} acked, {} consistent, \
             {} checker violations, {} MODEL VIOLATIONS{}",
            self.fs,
            self.cut.describe(),
            self.fs_model,
            self.trials,
            self.acks_seen,
            self.consistent,
            self.violations,
            self.model_violations,
            if self.not_judged > 0 {
                format!(", {} not judged (namespace too large)", self.not_judged)
            } else {
                String::new()
            }
        );
        let u = |k| self.coverage.units.get(&k).copied().unwrap_or(0);
        let _ = writeln!(
            out,
            "  coverage: open units at floor {}, intermediate {}, newest {}, ambiguous {}; sizes beyond the durable size {}",
            u(UnitKept::Floor),
            u(UnitKept::Intermediate),
            u(UnitKept::Newest),
            u(UnitKept::Ambiguous),
            self.coverage.sizes_beyond_floor
        );
        for (kind, c) in &self.coverage.operations {
            let _ = writeln!(
                out,
                "  coverage: unsynced {kind}: kept {}, lost {}, undetermined {}",
                c.kept, c.lost, c.undetermined
            );
        }
        let missing = self.coverage.unexercised();
        if !missing.is_empty() {
            let _ = writeln!(out, "  no cut exercised: {}", missing.join("; "));
        }
        for o in &self.outcomes {
            if o.is_model_violation() {
                let headline = format!(
                    "\nMODEL SOUNDNESS VIOLATION power-loss-real trial {} on {}: {}",
                    o.plan.trial,
                    self.fs,
                    o.membership.forbidden.as_deref().unwrap_or("")
                );
                let mut details = vec![format!("{}; {} acks", o.delivery, o.acks)];
                if let Some(e) = &o.evidence {
                    details.push(format!("the post-cut directory is kept in {e}"));
                }
                write_failure(out, "", &headline, &details, "rerun", &o.rerun);
            }
            if let CheckerVerdict::Violation { reason } = &o.checker {
                let headline = format!("\nVIOLATION power-loss-real trial {} on {}: {reason}", o.plan.trial, self.fs);
                let details = [format!("{}; {} acks; a real cut, not a simulated state", o.delivery, o.acks)];
                write_failure(out, "", &headline, &details, "rerun", &o.rerun);
            }
        }
    }
}

/// Sections for tests of the report's renderings.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::program_plan::PowerLossPoint;

    pub(crate) fn trial(n: u32, allowed: bool, checker_ok: bool, units: &[(UnitKept, u64)]) -> RealCutTrial {
        RealCutTrial {
            plan: PowerLossPlan { trial: n, writer_seed: 1, point: PowerLossPoint::Time { at_ppm: 5 }, state_seed: 2 },
            delivery: PowerLossDelivery::WriterFinishedFirst,
            acks: 1,
            checker: if checker_ok {
                CheckerVerdict::Consistent
            } else {
                CheckerVerdict::Violation { reason: "lost rec 1".into() }
            },
            membership: Membership {
                allowed,
                forbidden: (!allowed).then(|| "\"f\" page 0 holds none".into()),
                not_judged: false,
                namespace_states: 2,
                units: units.iter().copied().collect(),
                sizes_beyond_floor: 0,
                operations: vec![OpOutcome { kind: "rename".into(), operation: "r".into(), outcome: OpKept::Lost }],
            },
            evidence: (!allowed).then(|| "/e/trial-1".into()),
            rerun: format!("crashlab run ... --trials {}", n + 1),
        }
    }

    pub(crate) fn calibration() -> PowerLossCalibration {
        PowerLossCalibration {
            traced_clean_ns: 1,
            sync_calls: 1,
            traced_calls: 1,
            by_syscall: BTreeMap::new(),
            data_syncs: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{calibration, trial};
    use super::*;

    #[test]
    fn coverage_counts_allowed_directories_only_and_names_the_rules_no_cut_exercised() {
        let s = RealCutSection::of(
            FsKind::Ext4,
            "posix",
            calibration(),
            vec![
                trial(0, true, true, &[(UnitKept::Floor, 3)]),
                trial(1, false, true, &[(UnitKept::Newest, 9)]),
                trial(2, true, false, &[(UnitKept::Floor, 1), (UnitKept::Intermediate, 2)]),
            ],
        );
        assert_eq!((s.trials, s.consistent, s.violations, s.model_violations), (3, 2, 1, 1));
        assert_eq!(s.coverage.units, BTreeMap::from([(UnitKept::Floor, 4), (UnitKept::Intermediate, 2)]));
        assert_eq!(s.coverage.operations["rename"], OpCoverage { kept: 0, lost: 2, undetermined: 0 });
        let missing = s.coverage.unexercised();
        assert!(missing.contains(&"unit at its newest unsynced content".to_owned()), "{missing:?}");
        assert!(missing.contains(&"unsynced rename kept".to_owned()), "{missing:?}");
        assert!(!missing.iter().any(|m| m.contains("intermediate")), "{missing:?}");
        let mut text = String::new();
        s.write_summary(&mut text);
        assert!(text.contains("MODEL SOUNDNESS VIOLATION power-loss-real trial 1 on ext4"), "{text}");
        assert!(text.contains("kept in /e/trial-1"), "{text}");
        assert!(text.contains("VIOLATION power-loss-real trial 2 on ext4: lost rec 1"), "{text}");
    }
}
