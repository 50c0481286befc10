//! Comparing two external reports (`crashlab report diff` of two `run
//! --writer` reports): per crash kind (power-loss-real: the checker's or the
//! model's violation), which trials went from consistent to
//! a violation (regressions) or back (fixes), and the counts that changed.
//!
//! Trials are matched by crash kind and trial index: with the same seed,
//! the same index is the same plan (writer seed, crash time, cut choices),
//! so a trial that passed and now fails is the program's regression, not a
//! different experiment. A crash kind without violations before that has
//! some after is a regression too, whatever its trials' indices, and so is
//! a clean run that passed before and fails after.
//!
//! Architecture Invariant: pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::report::external::ExternalReport;

/// One crash kind's (or the clean run's) verdicts: trial → violated.
fn verdicts(r: &ExternalReport) -> BTreeMap<String, BTreeMap<u32, bool>> {
    let mut out: BTreeMap<String, BTreeMap<u32, bool>> = BTreeMap::new();
    for s in &r.crashes {
        let kind = out.entry(s.crash.name().to_owned()).or_default();
        for t in &s.trials_detail {
            kind.insert(t.trial, t.checker.is_violation());
        }
    }
    for (name, p) in [("power-loss", &r.power_loss), ("eio-sync", &r.eio_sync)] {
        let Some(p) = p else { continue };
        let kind = out.entry(name.to_owned()).or_default();
        for t in &p.trials_detail {
            kind.insert(t.trial, t.verdict.is_violation());
        }
    }
    // A real cut fails on the checker's violation or on the model's.
    if let Some(r) = &r.power_loss_real {
        let kind = out.entry("power-loss-real".to_owned()).or_default();
        for o in &r.outcomes {
            kind.insert(o.plan.trial, o.checker.is_violation() || o.is_model_violation());
        }
    }
    out
}

/// What changed between two external reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalDiff {
    pub before: String,
    pub after: String,
    /// `KIND trial T` (or `clean run`, or `KIND` as a whole) that passed
    /// before and fails after.
    pub regressions: Vec<String>,
    /// The reverse.
    pub fixes: Vec<String>,
    /// Other differences worth reading (counts, seeds, kinds present in one
    /// report only).
    pub notes: Vec<String>,
}

impl ExternalDiff {
    pub fn between(a_name: &str, a: &ExternalReport, b_name: &str, b: &ExternalReport) -> ExternalDiff {
        let mut d = ExternalDiff {
            before: a_name.to_owned(),
            after: b_name.to_owned(),
            regressions: Vec::new(),
            fixes: Vec::new(),
            notes: Vec::new(),
        };
        if a.seed != b.seed {
            d.notes.push(format!("seeds differ ({} and {}): trials of one index ran different plans", a.seed, b.seed));
        }
        match (a.summary.clean_run_passed, b.summary.clean_run_passed) {
            (true, false) => d.regressions.push("clean run (no crash): consistent → VIOLATION".into()),
            (false, true) => d.fixes.push("clean run (no crash): violation → consistent".into()),
            _ => {}
        }
        let (va, vb) = (verdicts(a), verdicts(b));
        for (kind, before) in &va {
            let Some(after) = vb.get(kind) else {
                d.notes.push(format!("{kind}: in {a_name} only"));
                continue;
            };
            let mut trial_regressions = 0;
            for (trial, &bad_after) in after {
                match before.get(trial) {
                    Some(false) if bad_after => {
                        trial_regressions += 1;
                        d.regressions.push(format!("{kind} trial {trial}: consistent → VIOLATION"));
                    }
                    Some(true) if !bad_after => d.fixes.push(format!("{kind} trial {trial}: violation → consistent")),
                    _ => {}
                }
            }
            let count = |m: &BTreeMap<u32, bool>| m.values().filter(|&&v| v).count();
            let (ca, cb) = (count(before), count(after));
            if ca == 0 && cb > 0 && trial_regressions == 0 {
                d.regressions.push(format!("{kind}: no violation → {cb} violation(s)"));
            }
            if ca != cb || before.len() != after.len() {
                d.notes.push(format!(
                    "{kind}: {} trials, {ca} violation(s) → {} trials, {cb} violation(s)",
                    before.len(),
                    after.len()
                ));
            }
        }
        for kind in vb.keys().filter(|k| !va.contains_key(*k)) {
            d.notes.push(format!("{kind}: in {b_name} only"));
        }
        d
    }

    pub fn regressions(&self) -> usize {
        self.regressions.len()
    }

    /// The text `crashlab report diff` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "external reports: {} → {}", self.before, self.after);
        for r in &self.regressions {
            let _ = writeln!(out, "REGRESSION {r}");
        }
        for f in &self.fixes {
            let _ = writeln!(out, "fixed      {f}");
        }
        for n in &self.notes {
            let _ = writeln!(out, "changed    {n}");
        }
        let _ = writeln!(out, "{} regression(s), {} fix(es)", self.regressions.len(), self.fixes.len());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::external_fixtures::{report_with, trial};

    fn run(failing: &[u32]) -> ExternalReport {
        report_with(&(0..5).map(|t| trial(t, failing.contains(&t))).collect::<Vec<_>>(), None)
    }

    #[test]
    fn a_trial_that_passed_and_now_fails_is_a_regression_and_the_reverse_a_fix() {
        let d = ExternalDiff::between("a.json", &run(&[1]), "b.json", &run(&[3]));
        assert_eq!(d.regressions, ["sigkill trial 3: consistent → VIOLATION"]);
        assert_eq!(d.fixes, ["sigkill trial 1: violation → consistent"]);
        assert_eq!(d.regressions(), 1);
        let text = d.render();
        assert!(text.contains("REGRESSION sigkill trial 3") && text.contains("1 regression(s), 1 fix(es)"), "{text}");
    }

    #[test]
    fn identical_reports_differ_in_nothing_and_a_failing_clean_run_is_a_regression() {
        let d = ExternalDiff::between("a", &run(&[2]), "b", &run(&[2]));
        assert!(d.regressions.is_empty() && d.fixes.is_empty() && d.notes.is_empty(), "{d:?}");
        let mut broken = run(&[]);
        broken.summary.clean_run_passed = false;
        let d = ExternalDiff::between("a", &run(&[]), "b", &broken);
        assert_eq!(d.regressions, ["clean run (no crash): consistent → VIOLATION"]);
    }

    #[test]
    fn violations_in_a_kind_that_had_none_regress_even_without_a_matching_trial() {
        let before = report_with(&[trial(0, false)], None);
        let after = report_with(&[trial(7, true)], None);
        let d = ExternalDiff::between("a", &before, "b", &after);
        assert_eq!(d.regressions, ["sigkill: no violation → 1 violation(s)"]);
    }

    #[test]
    fn a_real_cut_outside_the_model_is_a_regression_of_its_trial() {
        use crate::report::external_real_cut::{test_support as real, RealCutSection};
        let with = |allowed: bool| {
            let mut r = run(&[]);
            let cuts = vec![real::trial(0, true, true, &[]), real::trial(1, allowed, true, &[])];
            r.power_loss_real =
                Some(RealCutSection::of(crate::vocab::FsKind::Ext4, "posix", real::calibration(), cuts));
            r
        };
        let d = ExternalDiff::between("a", &with(true), "b", &with(false));
        assert_eq!(d.regressions, ["power-loss-real trial 1: consistent → VIOLATION"]);
        assert!(ExternalDiff::between("a", &with(false), "b", &with(true)).regressions.is_empty());
    }
}
