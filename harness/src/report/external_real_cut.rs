//! The `power_loss_real` section of the external report (schema 1.7):
//! `--crash power-loss-real`, real power cuts of a user's program on a
//! loop-mounted filesystem. Per trial: the crash point, the user's checker's
//! verdict on the real post-cut directory, and that directory judged
//! against the simulated model of the same trace ([`Membership`]: allowed,
//! or a **model soundness violation** kept as evidence). Per section: the
//! coverage, i.e. how often the cuts exercised each choice the model leaves
//! open (units at their floor, at an intermediate version, at their newest
//! content; sizes beyond the durable size; each kind of namespace operation
//! kept or lost).
//!
//! Architecture Invariant: pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::external::power_loss::membership::{Membership, OpKept, UnitKept};
use crate::program_plan::PowerLossPlan;
use crate::report::checker_verdict::CheckerVerdict;
use crate::report::external::{ExternalRunConfig, ExternalSummary};
use crate::report::external_power_loss::{PowerLossCalibration, PowerLossDelivery};
use crate::summary_text::write_failure;
use crate::vocab::real_cut::{CutMethod, FsKind};

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

    /// Count this section into the run's summary: its trials, its checker
    /// violations, and its model violations (each a finding: the run fails).
    pub fn add_to(&self, summary: &mut ExternalSummary) {
        summary.trials += self.trials;
        summary.violations += self.violations + self.model_violations;
        if self.trials > 0 && self.acks_seen == 0 {
            summary.no_acks.push(crate::vocab::CrashKind::PowerLossReal.name().to_owned());
        }
        if summary.violations > 0 {
            summary.verdict = "violation-found".into();
        } else if !summary.no_acks.is_empty() && summary.verdict == "no-violation-found" {
            summary.verdict = crate::report::external::VERDICT_NOTHING_ACKED.into();
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

impl RealCutSection {
    /// The section's part of the HTML page: its table, its coverage, and its
    /// failures (model violations first). The bool: it had failures.
    pub fn html(&self) -> (String, bool) {
        use crate::report::html::escape;
        let mut out = String::new();
        let _ = writeln!(out, "<h2>Real power cuts ({}, {})</h2>", self.fs, escape(self.cut.describe()));
        let _ = writeln!(
            out,
            "<table class=\"cells\">\n<tr><th>trials</th><th>acks seen</th><th>consistent</th><th>violations</th>\
             <th>model violations</th><th>not judged</th></tr>\n<tr{}><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n</table>",
            if self.violations + self.model_violations > 0 { " class=\"failing\"" } else { "" },
            self.trials,
            self.acks_seen,
            self.consistent,
            self.violations,
            self.model_violations,
            self.not_judged
        );
        let units: Vec<String> = self.coverage.units.iter().map(|(k, n)| format!("{k:?} {n}").to_lowercase()).collect();
        let _ = writeln!(
            out,
            "<p class=\"muted\">judged against the {} model; open units kept: {}; sizes beyond the durable size: {}; \
             no cut exercised: {}</p>",
            escape(&self.fs_model),
            escape(&units.join(", ")),
            self.coverage.sizes_beyond_floor,
            escape(&self.coverage.unexercised().join("; "))
        );
        let mut failed = false;
        for o in &self.outcomes {
            let (title, why) = if o.is_model_violation() {
                ("MODEL SOUNDNESS VIOLATION", o.membership.forbidden.clone().unwrap_or_default())
            } else if let CheckerVerdict::Violation { reason } = &o.checker {
                ("checker violation", reason.clone())
            } else {
                continue;
            };
            failed = true;
            let _ = writeln!(
                out,
                "<div class=\"failure\"><h3>power-loss-real trial {}: {title}</h3><p>{}</p><p class=\"muted\">{}; {} acks{}</p>\
                 <code class=\"replay\">{}</code></div>",
                o.plan.trial,
                escape(&why),
                escape(&o.delivery.to_string()),
                o.acks,
                o.evidence.as_ref().map(|e| format!("; kept in <code>{}</code>", escape(e))).unwrap_or_default(),
                escape(&o.rerun)
            );
        }
        (out, failed)
    }
}

/// The command that reruns the `power-loss-real` trials up to `trial`
/// (the same seed gives the same crash points; a real cut at a sync call
/// reruns exactly for a deterministic writer, what the kernel had written
/// back by then need not).
pub fn rerun_line(c: &ExternalRunConfig, seed: u64, trial: u32) -> String {
    let q = |s: &str| shell_words::quote(s).into_owned();
    let mut line = format!(
        "crashlab run --writer {} {} {}",
        q(&c.writer),
        if c.checker_server { "--checker-server" } else { "--checker" },
        q(&c.checker)
    );
    if let Some(s) = &c.setup {
        let _ = write!(line, " --setup {}", q(s));
    }
    if c.shell {
        line.push_str(" --shell");
    }
    let _ = write!(
        line,
        " --crash power-loss-real --real-fs {} --seed {seed} --trials {}",
        c.real_fs.unwrap_or(FsKind::Ext4),
        trial + 1
    );
    if let Some(points) = c.points {
        let _ = write!(line, " --points {points}");
    }
    if let Some(tear) = c.tear {
        let _ = write!(line, " --tear {tear}");
    }
    if let Some(model) = c.fs_model {
        let _ = write!(line, " --fs-model {model}");
    }
    if c.history_off {
        line.push_str(" --history off");
    }
    if let Some(us) = c.history_every_us {
        let _ = write!(line, " --history-every {us}");
    }
    if c.allow_no_acks {
        line.push_str(" --allow-no-acks");
    }
    let _ = write!(line, " --timeout {}", c.timeout_secs);
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::power_loss::membership::OpOutcome;
    use crate::program_plan::PowerLossPoint;

    fn trial(n: u32, allowed: bool, checker_ok: bool, units: &[(UnitKept, u64)]) -> RealCutTrial {
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

    fn calibration() -> PowerLossCalibration {
        PowerLossCalibration { traced_clean_ns: 1, sync_calls: 1, traced_calls: 1, by_syscall: BTreeMap::new() }
    }

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

    #[test]
    fn a_model_violation_alone_fails_the_run() {
        let s = RealCutSection::of(FsKind::Xfs, "posix", calibration(), vec![trial(0, false, true, &[])]);
        let mut summary = ExternalSummary {
            trials: 1,
            violations: 0,
            clean_run_passed: true,
            no_acks: vec![],
            verdict: "no-violation-found".into(),
        };
        s.add_to(&mut summary);
        assert_eq!((summary.trials, summary.violations, summary.verdict.as_str()), (2, 1, "violation-found"));
    }
}
