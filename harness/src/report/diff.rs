//! Comparing two survival reports (two kernels, filesystems, commits, ...):
//! which cells changed verdict or counts, and which changes are regressions.
//!
//! Cells are matched by scenario, crash kind, persistence model and, for
//! `power-loss-real` cells, real column (backend and filesystem: the same
//! column on two kernels matches). A cell **regressed** if its verdict got
//! worse (as-expected < unexpected < model-violation), or if it kept every
//! acked op before (none lost or torn) and loses or tears some now (not for
//! real cuts, whose losses of unsynced data vary from run to run: there
//! only the verdict counts). Counts are compared field by field from the
//! JSON form, so a count added to the report later is diffed too; a real
//! cell's `real` fields as `real.FIELD`.
//!
//! Architecture Invariant: pure.

use std::fmt::{self, Write as _};

use serde_json::Value;

use crate::expectation::PersistenceModel;
use crate::report::survival::{CellReport, SurvivalReport, Verdict};
use crate::scenario::ScenarioId;
use crate::vocab::CrashKind;
use crate::vocab::RealColumn;

/// What identifies a cell across reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellKey {
    pub scenario: ScenarioId,
    pub crash: CrashKind,
    pub model: PersistenceModel,
    /// The real column of a `power-loss-real` cell.
    pub real: Option<RealColumn>,
}

impl CellKey {
    pub fn of(c: &CellReport) -> CellKey {
        CellKey { scenario: c.scenario, crash: c.crash, model: c.model, real: c.real_column() }
    }
}

impl fmt::Display for CellKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.real {
            Some(column) => write!(f, "{} {} [{}]", self.scenario, self.crash, column.label()),
            None => write!(f, "{} {} [{}]", self.scenario, self.crash, self.model),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldChange {
    pub field: String,
    pub before: String,
    pub after: String,
}

impl fmt::Display for FieldChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} → {}", self.field, self.before, self.after)
    }
}

/// A matched cell that differs.
#[derive(Debug, Clone)]
pub struct CellDiff {
    pub key: CellKey,
    pub before: Verdict,
    pub after: Verdict,
    /// Counts and other scalar fields that changed (verdict excluded).
    pub changes: Vec<FieldChange>,
    /// Why this is a regression; empty if it is not one.
    pub regression: Vec<String>,
    pub after_reason: Option<String>,
    pub after_replay: String,
}

impl CellDiff {
    pub fn is_regression(&self) -> bool {
        !self.regression.is_empty()
    }

    pub fn is_improvement(&self) -> bool {
        !self.is_regression() && severity(self.after) < severity(self.before)
    }
}

/// One side of a comparison, as the header names it.
#[derive(Debug, Clone)]
pub struct Side {
    pub name: String,
    pub summary: String,
}

impl Side {
    fn of(name: &str, r: &SurvivalReport) -> Side {
        let e = &r.environment;
        Side {
            name: name.to_owned(),
            summary: format!(
                "crashlab {}, seed {}, kernel {}, {}, {}-byte pages",
                r.crashlab_version, r.seed, e.kernel_release, e.fs_type, e.page_size
            ),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ReportDiff {
    pub a: Side,
    pub b: Side,
    pub environment: Vec<FieldChange>,
    pub config: Vec<FieldChange>,
    pub matched: usize,
    /// Matched cells that differ, in A's cell order.
    pub cells: Vec<CellDiff>,
    pub only_in_a: Vec<CellKey>,
    pub only_in_b: Vec<CellKey>,
    /// Matched lifecycle cells (by kind, crash kind and model) that differ.
    pub lifecycle: Vec<LifecycleDiff>,
    /// Lifecycle cells of one side only, as their key text.
    pub lifecycle_only: Vec<(&'static str, String)>,
}

/// A matched lifecycle cell that differs. Its counts of a process crash or
/// a timed power loss vary from run to run (the crash times are measured):
/// only a worse verdict is a regression.
#[derive(Debug, Clone)]
pub struct LifecycleDiff {
    pub key: String,
    pub before: Verdict,
    pub after: Verdict,
    pub changes: Vec<FieldChange>,
    pub after_reason: Option<String>,
    pub after_replay: String,
}

impl LifecycleDiff {
    pub fn is_regression(&self) -> bool {
        severity(self.after) > severity(self.before)
    }
}

/// The lifecycle cells of `a` and `b` matched by key.
fn lifecycle_diff(a: &SurvivalReport, b: &SurvivalReport) -> (Vec<LifecycleDiff>, Vec<(&'static str, String)>) {
    let cells = |r: &SurvivalReport| r.lifecycle.as_ref().map_or(Vec::new(), |l| l.cells.clone());
    let (ca, cb) = (cells(a), cells(b));
    let mut diffs = Vec::new();
    let mut only = Vec::new();
    for x in &ca {
        let Some(y) = cb.iter().find(|y| y.key_text() == x.key_text()) else {
            only.push(("A", x.key_text()));
            continue;
        };
        let changes = field_changes(&to_json(x), &to_json(y), LIFECYCLE_NOT_COMPARED);
        if changes.is_empty() && x.verdict == y.verdict {
            continue;
        }
        diffs.push(LifecycleDiff {
            key: x.key_text(),
            before: x.verdict,
            after: y.verdict,
            changes,
            after_reason: y.verdict_reason.clone(),
            after_replay: y.replay.clone(),
        });
    }
    only.extend(cb.iter().filter(|y| !ca.iter().any(|x| x.key_text() == y.key_text())).map(|y| ("B", y.key_text())));
    (diffs, only)
}

/// Lifecycle fields that identify a cell or differ with the paths and times.
const LIFECYCLE_NOT_COMPARED: &[&str] = &["kind", "crash", "model", "verdict", "verdict_reason", "replay"];

fn severity(v: Verdict) -> u8 {
    match v {
        Verdict::AsExpected => 0,
        Verdict::Unexpected => 1,
        Verdict::ModelViolation => 2,
    }
}

fn verdict_name(v: Verdict) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_else(|| format!("{v:?}"))
}

/// Fields of a cell that identify it, or that differ with the seed or the
/// paths even when nothing changed (replay lines): left out of the count diff.
const NOT_COMPARED: &[&str] =
    &["scenario", "mapping", "sync_policy", "crash", "model", "verdict", "verdict_reason", "replay", "real"];

/// Changed scalar fields of two JSON objects, in A's field order then B's;
/// arrays compare by length (`failures 0 → 2`), nested objects are skipped.
fn field_changes(a: &Value, b: &Value, skip: &[&str]) -> Vec<FieldChange> {
    let empty = serde_json::Map::new();
    let (oa, ob) = (a.as_object().unwrap_or(&empty), b.as_object().unwrap_or(&empty));
    let mut keys: Vec<&String> = oa.keys().collect();
    keys.extend(ob.keys().filter(|k| !oa.contains_key(*k)));
    let show = |v: Option<&Value>| match v {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(xs)) => xs.len().to_string(),
        Some(v) => v.to_string(),
    };
    keys.into_iter()
        .filter(|k| !skip.contains(&k.as_str()))
        .filter(|k| !matches!(oa.get(*k).or(ob.get(*k)), Some(Value::Object(_))))
        .filter_map(|k| {
            let (before, after) = (show(oa.get(k)), show(ob.get(k)));
            (before != after).then(|| FieldChange { field: k.clone(), before, after })
        })
        .collect()
}

fn to_json<T: serde::Serialize>(t: &T) -> Value {
    serde_json::to_value(t).expect("reports serialize")
}

impl ReportDiff {
    /// Compare `a` (before) with `b` (after), naming them `a_name`, `b_name`.
    pub fn between(a_name: &str, a: &SurvivalReport, b_name: &str, b: &SurvivalReport) -> ReportDiff {
        let mut environment = field_changes(&to_json(&a.environment), &to_json(&b.environment), &[]);
        for (field, x, y) in [
            ("crashlab_version", &a.crashlab_version, &b.crashlab_version),
            ("schema_version", &a.schema_version, &b.schema_version),
        ] {
            if x != y {
                environment.push(FieldChange { field: field.into(), before: x.clone(), after: y.clone() });
            }
        }
        let config = field_changes(&to_json(&a.config), &to_json(&b.config), &[]);
        let mut cells = Vec::new();
        let mut matched = 0;
        let mut only_in_a = Vec::new();
        for ca in &a.cells {
            let key = CellKey::of(ca);
            let Some(cb) = b.cells.iter().find(|c| CellKey::of(c) == key) else {
                only_in_a.push(key);
                continue;
            };
            matched += 1;
            let (ja, jb) = (to_json(ca), to_json(cb));
            let mut changes = field_changes(&ja, &jb, NOT_COMPARED);
            changes.extend(field_changes(&ja["real"], &jb["real"], &[]).into_iter().map(|mut x| {
                x.field = format!("real.{}", x.field);
                x
            }));
            if changes.is_empty() && ca.verdict == cb.verdict {
                continue;
            }
            let mut regression = Vec::new();
            if severity(cb.verdict) > severity(ca.verdict) {
                regression.push("the verdict got worse".to_string());
            }
            if key.real.is_none() && ca.acked > 0 && ca.lost + ca.torn == 0 && cb.lost + cb.torn > 0 {
                regression.push(format!(
                    "kept all {} acked ops before, loses or tears {} of {} now",
                    ca.acked,
                    cb.lost + cb.torn,
                    cb.acked
                ));
            }
            cells.push(CellDiff {
                key,
                before: ca.verdict,
                after: cb.verdict,
                changes,
                regression,
                after_reason: cb.verdict_reason.clone(),
                after_replay: cb.replay.clone(),
            });
        }
        let only_in_b =
            b.cells.iter().map(CellKey::of).filter(|k| !a.cells.iter().any(|c| CellKey::of(c) == *k)).collect();
        let (lifecycle, lifecycle_only) = lifecycle_diff(a, b);
        ReportDiff {
            a: Side::of(a_name, a),
            b: Side::of(b_name, b),
            environment,
            config,
            matched,
            cells,
            only_in_a,
            only_in_b,
            lifecycle,
            lifecycle_only,
        }
    }

    pub fn regressions(&self) -> usize {
        self.cells.iter().filter(|c| c.is_regression()).count()
            + self.lifecycle.iter().filter(|c| c.is_regression()).count()
    }

    /// The text `crashlab report diff` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let list = |xs: &[FieldChange]| {
            if xs.is_empty() {
                "unchanged".to_string()
            } else {
                xs.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("; ")
            }
        };
        let _ = writeln!(out, "A: {} ({})", self.a.name, self.a.summary);
        let _ = writeln!(out, "B: {} ({})", self.b.name, self.b.summary);
        let _ = writeln!(out, "environment: {}", list(&self.environment));
        let _ = writeln!(out, "config: {}", list(&self.config));
        let _ = writeln!(
            out,
            "cells: {} matched ({} differ), {} only in A, {} only in B",
            self.matched,
            self.cells.len(),
            self.only_in_a.len(),
            self.only_in_b.len()
        );
        for c in &self.cells {
            let label = if c.is_regression() {
                "REGRESSION"
            } else if c.is_improvement() {
                "improved"
            } else {
                "changed"
            };
            let _ = writeln!(out, "\n{label} {}", c.key);
            if c.before == c.after {
                let _ = writeln!(out, "  verdict: {} (unchanged)", verdict_name(c.after));
            } else {
                let _ = writeln!(out, "  verdict: {} → {}", verdict_name(c.before), verdict_name(c.after));
            }
            if c.is_regression() {
                let _ = writeln!(out, "  why: {}", c.regression.join("; "));
            }
            if !c.changes.is_empty() {
                let changes: Vec<String> = c.changes.iter().map(|x| x.to_string()).collect();
                let _ = writeln!(out, "  counts: {}", changes.join(", "));
            }
            if let Some(reason) = c.after_reason.as_deref().filter(|_| c.after != Verdict::AsExpected) {
                let _ = writeln!(out, "  B's reason: {reason}");
            }
            if c.is_regression() && !c.after_replay.is_empty() {
                let _ = writeln!(out, "  B's replay: {}", c.after_replay);
            }
        }
        for (side, keys) in [("A", &self.only_in_a), ("B", &self.only_in_b)] {
            if !keys.is_empty() {
                let _ = writeln!(out, "\nonly in {side}:");
                for k in keys {
                    let _ = writeln!(out, "  {k}");
                }
            }
        }
        for c in &self.lifecycle {
            let label = match severity(c.after).cmp(&severity(c.before)) {
                std::cmp::Ordering::Greater => "REGRESSION",
                std::cmp::Ordering::Less => "improved",
                std::cmp::Ordering::Equal => "changed",
            };
            let _ = writeln!(out, "\n{label} lifecycle {}", c.key);
            let _ = writeln!(out, "  verdict: {} → {}", verdict_name(c.before), verdict_name(c.after));
            if !c.changes.is_empty() {
                let changes: Vec<String> = c.changes.iter().map(|x| x.to_string()).collect();
                let _ = writeln!(out, "  counts: {}", changes.join(", "));
            }
            if let Some(reason) = c.after_reason.as_deref().filter(|_| c.after != Verdict::AsExpected) {
                let _ = writeln!(out, "  B's reason: {reason}");
            }
            if c.is_regression() {
                let _ = writeln!(out, "  B's replay: {}", c.after_replay);
            }
        }
        for (side, key) in &self.lifecycle_only {
            let _ = writeln!(out, "\nonly in {side}: lifecycle {key}");
        }
        let improved = self.cells.iter().filter(|c| c.is_improvement()).count()
            + self.lifecycle.iter().filter(|c| severity(c.after) < severity(c.before)).count();
        let changed = self.cells.len() + self.lifecycle.len();
        let _ = writeln!(
            out,
            "\nresult: {} regression(s), {} improved, {} changed otherwise",
            self.regressions(),
            improved,
            changed - self.regressions() - improved
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::survival_cells::real_test_support::{real_cell, real_record, report_of};

    /// A lifecycle cell whose verdict got worse is a regression; counts that
    /// vary between runs alone are not.
    #[test]
    fn a_worse_lifecycle_verdict_is_a_regression_and_changed_counts_alone_are_not() {
        use crate::report::survival_lifecycle::test_support::{cell, section};
        use crate::vocab::CrashKind::PowerLoss;
        use crate::vocab::LifecycleKind::ReplaceDirsync;
        let with = |trials, lost| {
            let mut r = report_of(vec![]);
            r.lifecycle = Some(section(vec![cell(ReplaceDirsync, PowerLoss, trials, lost)]));
            r
        };
        let d = ReportDiff::between("a.json", &with(4, 0), "b.json", &with(4, 1));
        assert_eq!(d.regressions(), 1);
        let text = d.render();
        assert!(text.contains("REGRESSION lifecycle replace-dirsync power-loss [power-loss]"), "{text}");
        assert!(text.contains("B's replay: crashlab replay ... --trial 0"), "{text}");
        let d = ReportDiff::between("a.json", &with(4, 0), "b.json", &with(6, 0));
        assert_eq!((d.regressions(), d.lifecycle.len()), (0, 1), "{}", d.render());
        let d = ReportDiff::between("a.json", &with(4, 0), "b.json", &report_of(vec![]));
        assert_eq!(d.lifecycle_only, vec![("A", "replace-dirsync power-loss [power-loss]".to_string())]);
    }

    /// Cells of two real columns that differ only in their filesystem are
    /// matched each with its own, whatever their order.
    #[test]
    fn real_columns_of_different_filesystems_do_not_collide() {
        let ext4 = real_cell("shared/no-sync", "loopcut:ext4", &[real_record(2, 0, 3, false)]);
        let xfs =
            |survived, bad| real_cell("shared/no-sync", "loopcut:xfs", &[real_record(2, survived, 3 - survived, bad)]);
        let a = report_of(vec![ext4.clone(), xfs(0, false)]);
        let b = report_of(vec![xfs(2, true), ext4.clone()]);
        let d = ReportDiff::between("a.json", &a, "b.json", &b);
        assert_eq!(d.matched, 2);
        assert!(d.only_in_a.is_empty() && d.only_in_b.is_empty());
        assert_eq!(d.cells.len(), 1, "only the xfs cell changed: {}", d.render());
        let c = &d.cells[0];
        assert_eq!(c.key.real.unwrap().to_string(), "loopcut:xfs");
        assert!(c.is_regression(), "a soundness violation makes the verdict worse");
        let changed: Vec<&str> = c.changes.iter().map(|x| x.field.as_str()).collect();
        assert!(changed.contains(&"survived") && changed.contains(&"real.soundness_violations"), "{changed:?}");
        let text = d.render();
        assert!(text.contains("REGRESSION shared/no-sync sigkill [power-loss (real: loopcut/xfs)]"), "{text}");

        // The same column cut on another kernel still matches.
        let mut other_kernel = a.clone();
        other_kernel.cells[0].real.as_mut().unwrap().kernel_release = "6.2.0-other".into();
        let d = ReportDiff::between("a.json", &a, "k.json", &other_kernel);
        assert_eq!((d.matched, d.cells.len()), (2, 1));
        assert_eq!(d.cells[0].changes[0].to_string(), "real.kernel_release 6.1.0-test → 6.2.0-other");

        let only_ext4 = report_of(vec![ext4]);
        let d = ReportDiff::between("a.json", &a, "e.json", &only_ext4);
        assert_eq!(d.only_in_a.len(), 1);
        assert_eq!(d.only_in_a[0].to_string(), "shared/no-sync sigkill [power-loss (real: loopcut/xfs)]");
    }
}
