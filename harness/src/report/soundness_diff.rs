//! What changed between two soundness reports: filesystems matched by
//! name, backend and cut. A **regression** is a filesystem whose real cuts
//! were all allowed by the model before and now are not (a model soundness
//! violation or a judge mismatch appeared); everything else that moved
//! (trials, how often unsynced data survived, lost file systems of a
//! volatile disk) is shown, not judged.
//!
//! The namespace section (schema 1.4, optional: older reports have none)
//! is compared per filesystem and cut, workload by workload. Regressions:
//! a namespace violation in the new report the old one did not have (a
//! workload without violations before, or a listed cut not listed before),
//! and **lost coverage**: an operation row (a workload's `units[]` row, or
//! a kind of operation's `operations[]` row) that some cut kept (or lost)
//! before and none does now although the row still had cuts: the evidence
//! a per-filesystem rule rests on is gone.
//!
//! The page writers' coverage (schema 1.5, per filesystem and model rule,
//! [`crate::realcut::coverage`]): **lost coverage** too, a rule some cut
//! exercised before and none does now although the new run gave it chances
//! ([`lost_coverage`]). Compared only between runs under the same
//! `--writeback` pressure: a rule that only pressure makes reachable
//! (intermediate versions) was never exercised by an unpressured run, so it
//! is never flagged there; a change of pressure is shown, not judged. (The
//! namespace coverage rows are the `operations[]` rows above.)
//!
//! Architecture Invariant: pure.

use std::fmt::Write as _;

use crate::realcut::coverage::{lost_coverage, CoverageDrop, LOST_COVERAGE_CHANCE};
use crate::realcut::ns_report::{FsNamespace, NamespaceReport, NsWorkloadReport};
use crate::realcut::report::{FsSoundness, SoundnessReport};

/// The comparison of two soundness reports.
#[derive(Debug, Clone, PartialEq)]
pub struct SoundnessDiff {
    lines: Vec<String>,
    regressions: usize,
}

fn key(f: &FsSoundness) -> (String, String, String) {
    (f.fs.clone(), f.backend.to_string(), f.cut.clone())
}

fn unsound(f: &FsSoundness) -> bool {
    f.violations + f.judge_mismatches > 0
}

fn lost(f: &FsSoundness) -> u64 {
    f.volatile_disk.as_ref().map_or(0, |d| d.states_unreadable)
}

impl SoundnessDiff {
    pub fn between(before_name: &str, before: &SoundnessReport, after_name: &str, after: &SoundnessReport) -> Self {
        let mut lines = vec![format!("soundness: {before_name} → {after_name}")];
        let mut regressions = 0;
        let same_pressure = before.config.writeback == after.config.writeback;
        if !same_pressure {
            lines.push(format!(
                "writeback pressure {} → {}: coverage not compared (what a cut can keep depends on it)",
                before.config.writeback, after.config.writeback
            ));
        }
        for a in &after.filesystems {
            let label = format!("{} ({}, {})", a.fs, a.backend, a.cut);
            let Some(b) = before.filesystems.iter().find(|b| key(b) == key(a)) else {
                lines.push(format!("new {label}: {} trials, {} violations", a.trials, a.violations));
                if unsound(a) {
                    regressions += 1;
                    lines.push("  REGRESSION: unsound in its first report".into());
                }
                continue;
            };
            let mut changes = Vec::new();
            if unsound(a) && !unsound(b) {
                regressions += 1;
                changes.push(format!(
                    "REGRESSION: sound → {} violation(s), {} judge mismatch(es)",
                    a.violations, a.judge_mismatches
                ));
                for v in &a.violation_details {
                    changes.push(format!("  {} at {}: {}; rerun: {}", v.scenario, v.point, v.detail, v.rerun));
                }
            } else if unsound(b) && !unsound(a) {
                changes.push(format!("fixed: {} violation(s) → sound", b.violations + b.judge_mismatches));
            }
            if a.trials != b.trials {
                changes.push(format!("trials {} → {}", b.trials, a.trials));
            }
            let (kb, ka) = (&b.kept_more, &a.kept_more);
            if (kb.trials_kept_more, kb.trials_with_unsynced_pages)
                != (ka.trials_kept_more, ka.trials_with_unsynced_pages)
            {
                changes.push(format!(
                    "unsynced data kept {}/{} → {}/{} trials",
                    kb.trials_kept_more,
                    kb.trials_with_unsynced_pages,
                    ka.trials_kept_more,
                    ka.trials_with_unsynced_pages
                ));
            }
            if same_pressure {
                for (rb, ra, drop) in lost_coverage(&b.coverage, &a.coverage) {
                    let was = format!(
                        "{} was exercised in {} of {} post-cut files, now in none of {}",
                        ra.rule, rb.exercised, rb.chances, ra.chances
                    );
                    match drop {
                        CoverageDrop::Lost => {
                            regressions += 1;
                            changes.push(format!(
                                "REGRESSION: coverage lost: {was}: the rule is no longer checked against real cuts"
                            ));
                        }
                        CoverageDrop::TooRareToCall(p) => changes.push(format!(
                            "coverage of {was}; at the earlier rate that happens by chance with probability {p:.2} \
                             (≥ {LOST_COVERAGE_CHANCE}): shown, not judged"
                        )),
                    }
                }
            }
            if lost(a) != lost(b) {
                changes.push(format!("lost file systems {} → {} (findings, not verdicts)", lost(b), lost(a)));
            }
            if !changes.is_empty() {
                lines.push(format!("changed {label}"));
                lines.extend(changes.into_iter().map(|c| format!("  {c}")));
            }
        }
        for b in &before.filesystems {
            if !after.filesystems.iter().any(|a| key(a) == key(b)) {
                lines.push(format!("gone {} ({}, {}): not in {after_name}", b.fs, b.backend, b.cut));
            }
        }
        regressions += namespace(&mut lines, before.namespace.as_ref(), after.namespace.as_ref(), after_name);
        lines.push(format!("result: {regressions} regression(s)"));
        SoundnessDiff { lines, regressions }
    }

    pub fn regressions(&self) -> usize {
        self.regressions
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        for l in &self.lines {
            let _ = writeln!(out, "{l}");
        }
        out
    }
}

/// The namespace sections compared; returns the regressions found.
fn namespace(
    lines: &mut Vec<String>,
    before: Option<&NamespaceReport>,
    after: Option<&NamespaceReport>,
    after_name: &str,
) -> usize {
    let mut regressions = 0;
    match (before, after) {
        (None, None) => return 0,
        (Some(_), None) => {
            lines.push(format!("gone namespace section: not in {after_name}"));
            return 0;
        }
        (None, Some(a)) => {
            lines.push(format!("new namespace section: {} cuts, {} violations", a.cuts(), a.violations()))
        }
        (Some(_), Some(_)) => {}
    }
    let (before, after) =
        (before.map_or(&[][..], |b| &b.filesystems[..]), after.map_or(&[][..], |a| &a.filesystems[..]));
    let key = |f: &FsNamespace| (f.fs.clone(), f.cut.clone());
    for a in after {
        let label = format!("namespace {} ({})", a.fs, a.cut);
        let b = before.iter().find(|b| key(b) == key(a));
        let mut changes = Vec::new();
        match b {
            None => lines.push(format!("new {label}: {} cuts, {} violations", a.cuts, a.violations)),
            Some(b) if b.cuts != a.cuts => changes.push(format!("cuts {} → {}", b.cuts, a.cuts)),
            Some(_) => {}
        }
        for w in &a.workloads {
            let bw = b.and_then(|b| b.workloads.iter().find(|x| x.workload == w.workload));
            regressions += new_violations(&mut changes, a, b, w, bw);
            if let Some(bw) = bw {
                if bw.violations > 0 && w.violations == 0 {
                    changes.push(format!("fixed: {} {} violation(s) → none", w.workload, bw.violations));
                }
                regressions += lost_unit_coverage(&mut changes, w, bw);
            }
        }
        if let Some(b) = b {
            for o in &a.operations {
                let Some(bo) = b.operations.iter().find(|x| x.kind == o.kind && x.context == o.context) else {
                    continue;
                };
                let what = format!("{} operations ({})", o.kind.name(), o.context);
                regressions += coverage(&mut changes, &what, (bo.kept, bo.lost, bo.cuts), (o.kept, o.lost, o.cuts));
            }
            for bw in &b.workloads {
                if !a.workloads.iter().any(|w| w.workload == bw.workload) {
                    changes.push(format!("gone workload {}: not in {after_name}", bw.workload));
                }
            }
        }
        if !changes.is_empty() {
            lines.push(format!("changed {label}"));
            lines.extend(changes.into_iter().map(|c| format!("  {c}")));
        }
    }
    for b in before {
        if !after.iter().any(|a| key(a) == key(b)) {
            lines.push(format!("gone namespace {} ({}): not in {after_name}", b.fs, b.cut));
        }
    }
    regressions
}

/// Workload `w`'s violations the old report did not have (`bw`, of the old
/// filesystem `b`): all of them when it had none; else the listed cuts the
/// old report did not list (unless its list was cut short). One regression
/// per workload, each new violation listed with its rerun line.
fn new_violations(
    changes: &mut Vec<String>,
    a: &FsNamespace,
    b: Option<&FsNamespace>,
    w: &NsWorkloadReport,
    bw: Option<&NsWorkloadReport>,
) -> usize {
    if w.violations == 0 {
        return 0;
    }
    let mine = a.violation_details.iter().filter(|v| v.workload == w.workload);
    let before_violations = bw.map_or(0, |bw| bw.violations);
    let new: Vec<_> = if before_violations == 0 {
        mine.collect()
    } else {
        let b = b.expect("a workload of the old report has its filesystem");
        if (b.violation_details.len() as u64) < b.violations {
            return 0; // The old list was cut short: a cut missing from it may still have been there.
        }
        mine.filter(|v| !b.violation_details.iter().any(|x| x.workload == v.workload && x.point == v.point)).collect()
    };
    if new.is_empty() && before_violations > 0 {
        return 0;
    }
    changes.push(format!(
        "REGRESSION: {} namespace violation(s) in {} ({} before), new:",
        w.violations, w.workload, before_violations
    ));
    if new.is_empty() {
        changes.push("  (none listed: only the first violations of a filesystem are)".into());
    }
    for v in new {
        changes.push(format!("  {} at {}: {}; rerun: {}", v.workload, v.point, v.detail, v.rerun));
    }
    1
}

/// Workload `w`'s unit rows that lost the coverage they had in `bw`.
fn lost_unit_coverage(changes: &mut Vec<String>, w: &NsWorkloadReport, bw: &NsWorkloadReport) -> usize {
    let mut regressions = 0;
    for u in &w.units {
        let Some(bu) = bw.units.iter().find(|x| x.operation == u.operation && x.context == u.context) else {
            continue;
        };
        let what = format!("{} `{}` ({})", w.workload, u.operation, u.context);
        regressions += coverage(changes, &what, (bu.kept, bu.lost, bu.cuts), (u.kept, u.lost, u.cuts));
    }
    regressions
}

/// An operation row's (kept, lost, cuts) before and after: a regression when
/// cuts kept (or lost) it before and none does now, though it still had cuts.
fn coverage(changes: &mut Vec<String>, what: &str, before: (u64, u64, u64), after: (u64, u64, u64)) -> usize {
    let ((bk, bl, bc), (ak, al, ac)) = (before, after);
    let mut regressions = 0;
    if ac > 0 {
        for (word, b, a) in [("kept", bk, ak), ("lost", bl, al)] {
            if b > 0 && a == 0 {
                regressions += 1;
                changes.push(format!(
                    "REGRESSION: coverage lost: {what} was {word} in {b} of {bc} cuts, now in none of {ac} \
                     (kept {ak}, lost {al}): the evidence that a cut may leave it {word} is gone"
                ));
            }
        }
    }
    if regressions == 0 && (bk, bl, bc) != (ak, al, ac) {
        changes.push(format!("{what}: kept {bk}, lost {bl} of {bc} cuts → kept {ak}, lost {al} of {ac}"));
    }
    regressions
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> SoundnessReport {
        serde_json::from_str(include_str!("../../../reports/samples/soundness-loopcut.json")).unwrap()
    }

    #[test]
    fn a_filesystem_that_turns_unsound_is_a_regression_and_the_way_back_is_not() {
        let before = sample();
        let same = SoundnessDiff::between("a", &before, "b", &before);
        assert_eq!(same.regressions(), 0, "{}", same.render());
        let mut after = before.clone();
        after.filesystems[0].violations = 2;
        let d = SoundnessDiff::between("a", &before, "b", &after);
        assert_eq!(d.regressions(), 1, "{}", d.render());
        assert!(d.render().contains("REGRESSION: sound → 2 violation(s)"), "{}", d.render());
        let back = SoundnessDiff::between("b", &after, "a", &before);
        assert_eq!(back.regressions(), 0);
        assert!(back.render().contains("fixed:"), "{}", back.render());
    }

    use crate::report::soundness_html::tests::{with_namespace, NS_RERUN};

    #[test]
    fn a_new_namespace_violation_is_a_regression_with_its_rerun_line() {
        let before = with_namespace(sample(), false);
        let same = SoundnessDiff::between("a", &before, "b", &before);
        assert_eq!(same.regressions(), 0, "{}", same.render());
        assert!(!same.render().contains("namespace"), "nothing moved: {}", same.render());
        let after = with_namespace(sample(), true);
        let d = SoundnessDiff::between("a", &before, "b", &after);
        let text = d.render();
        assert_eq!(d.regressions(), 1, "{text}");
        assert!(text.contains("changed namespace btrfs (shutdown)"), "{text}");
        assert!(text.contains("REGRESSION: 1 namespace violation(s) in rename-over (0 before), new:"), "{text}");
        assert!(text.contains("rename-over at before:5: ") && text.contains(&format!("rerun: {NS_RERUN}")), "{text}");
        // The same violation in both: nothing new.
        let again = SoundnessDiff::between("b", &after, "c", &after);
        assert_eq!(again.regressions(), 0, "{}", again.render());
        // Back to none: fixed, no regression.
        let back = SoundnessDiff::between("b", &after, "c", &before);
        assert_eq!(back.regressions(), 0, "{}", back.render());
        assert!(back.render().contains("fixed: rename-over 1 violation(s) → none"), "{}", back.render());
        // A violation at another cut of a workload that had one: new too.
        let mut other = after.clone();
        other.namespace.as_mut().unwrap().filesystems[1].violation_details[0].point =
            crate::crash::CrashPoint::BeforeOp(4);
        let d = SoundnessDiff::between("b", &after, "c", &other);
        assert_eq!(d.regressions(), 1, "{}", d.render());
        assert!(d.render().contains("rename-over at before:4"), "{}", d.render());
    }

    #[test]
    fn an_operation_row_no_cut_keeps_or_loses_any_more_is_lost_coverage() {
        let before = with_namespace(sample(), false);
        let mut after = before.clone();
        // ext4 stops keeping sibling-fsync's create (it is lost in every cut now).
        let ext4 = &mut after.namespace.as_mut().unwrap().filesystems[0];
        let u = &mut ext4.workloads[1].units[0];
        (u.kept, u.lost) = (0, 100);
        let o = &mut ext4.operations[0];
        (o.kept, o.lost) = (0, 100);
        let d = SoundnessDiff::between("a", &before, "b", &after);
        let text = d.render();
        assert_eq!(d.regressions(), 2, "the unit row and the kind-of-operation row: {text}");
        assert!(
            text.contains(
                "REGRESSION: coverage lost: sibling-fsync `openat(creating \"a\") at step 1` (fsync of another file \
                 (`b`)) was kept in 100 of 100 cuts, now in none of 100 (kept 0, lost 100)"
            ),
            "{text}"
        );
        assert!(
            text.contains("REGRESSION: coverage lost: create operations (fsync of another file (`b`)) was kept"),
            "{text}"
        );
        // The way back: no cut loses it any more, which is lost coverage too.
        let back = SoundnessDiff::between("b", &after, "a", &before);
        assert_eq!(back.regressions(), 2, "ext4 no longer loses it: {}", back.render());
        assert!(back.render().contains("was lost in 100 of 100 cuts, now in none of 100 (kept 100, lost 0)"));
        // A row with no cut any more lost no coverage: nothing was measured.
        let mut none = before.clone();
        let ext4 = &mut none.namespace.as_mut().unwrap().filesystems[0];
        let u = &mut ext4.workloads[1].units[0];
        (u.kept, u.lost, u.cuts) = (0, 0, 0);
        let d = SoundnessDiff::between("a", &before, "b", &none);
        assert_eq!(d.regressions(), 0, "{}", d.render());
    }

    /// `r` whose first filesystem's page coverage exercised
    /// intermediate versions `mid` times in 50 chances.
    fn with_coverage(mut r: SoundnessReport, mid: u64) -> SoundnessReport {
        use crate::realcut::coverage::{Coverage, RuleCoverage};
        let row = |rule: &str, exercised| RuleCoverage { rule: rule.into(), chances: 50, exercised, units: exercised };
        r.filesystems[0].coverage =
            Coverage { rules: vec![row("pages-newer-than-floor", 20), row("intermediate-versions", mid)] };
        r
    }

    #[test]
    fn a_rule_no_cut_exercises_any_more_under_the_same_pressure_is_lost_coverage() {
        let mut before = with_coverage(sample(), 20);
        before.config.writeback = crate::vocab::Writeback::Syncfs { every_us: 300 };
        let mut after = with_coverage(sample(), 0);
        after.config.writeback = before.config.writeback;
        let d = SoundnessDiff::between("a", &before, "b", &after);
        let text = d.render();
        assert_eq!(d.regressions(), 1, "{text}");
        assert!(
            text.contains(
                "REGRESSION: coverage lost: intermediate-versions was exercised in 20 of 50 post-cut files, now in \
                 none of 50"
            ),
            "{text}"
        );
        // Exercised once in 50 before: none in 50 now is likely luck (36%).
        let rare = SoundnessDiff::between("a", &with_coverage(sample(), 1), "b", &with_coverage(sample(), 0));
        assert_eq!(rare.regressions(), 0, "{}", rare.render());
        assert!(rare.render().contains("probability 0.36"), "{}", rare.render());
        // Never exercised before (e.g. no pressure in either run): nothing lost.
        let d = SoundnessDiff::between("b", &after, "c", &after);
        assert_eq!(d.regressions(), 0, "{}", d.render());
        // Another pressure: shown, not judged.
        let mut unpressured = after.clone();
        unpressured.config.writeback = crate::vocab::Writeback::None;
        let d = SoundnessDiff::between("a", &before, "b", &unpressured);
        assert_eq!(d.regressions(), 0, "{}", d.render());
        assert!(d.render().contains("writeback pressure syncfs:300 → none: coverage not compared"), "{}", d.render());
    }

    #[test]
    fn reports_without_a_namespace_section_diff_as_before() {
        let old = sample();
        assert!(old.namespace.is_none() && old.schema_version.as_str() < "1.4", "a pre-1.4 sample");
        let d = SoundnessDiff::between("old", &old, "new", &with_namespace(sample(), false));
        assert_eq!(d.regressions(), 0, "{}", d.render());
        assert!(d.render().contains("new namespace section: 412 cuts, 0 violations"), "{}", d.render());
        let d = SoundnessDiff::between("old", &old, "new", &with_namespace(sample(), true));
        assert_eq!(d.regressions(), 1, "a violation in the first namespace section is new: {}", d.render());
        let d = SoundnessDiff::between("new", &with_namespace(sample(), false), "old", &old);
        assert_eq!(d.regressions(), 0, "{}", d.render());
        assert!(d.render().contains("gone namespace section"), "{}", d.render());
    }
}
