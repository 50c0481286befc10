//! What changed between two soundness reports: filesystems matched by
//! name, backend and cut. A **regression** is a filesystem whose real cuts
//! were all allowed by the model before and now are not (a model soundness
//! violation or a judge mismatch appeared); everything else that moved
//! (trials, how often unsynced data survived, lost file systems of a
//! volatile disk) is shown, not judged.
//!
//! Architecture Invariant: pure.

use std::fmt::Write as _;

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
}
