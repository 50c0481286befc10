//! Coverage of the models by real cuts: per filesystem and per model rule,
//! in how many real post-cut files (or directories) the model *allowed* the
//! case the rule is about (a chance) and in how many the real cut *showed*
//! it (exercised). A rule no cut exercised was never checked against the
//! kernel, however many cuts passed: "0 violations" says nothing about it.
//!
//! The page rules come from what [`super::judge`] found per file (which
//! version each unit held); the namespace rules from what
//! [`super::ns_judge`] found per unit (kept or lost).
//!
//! Architecture Invariant: pure; counting only.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::judge::RealJudgement;
use super::ns_judge::{NsJudgement, NsOpKind, UnitOutcome};

/// A rule of the models a real cut can exercise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CoverageRule {
    /// An unsynced page held its durable floor (the unsynced data was lost).
    PagesAtFloor,
    /// An unsynced page held a version newer than its floor (unsynced data
    /// kept).
    PagesNewerThanFloor,
    /// A page held a version strictly between its floor and its newest: a
    /// version the writer later overwrote reached the disk.
    IntermediateVersions,
    /// The file's length was not its durable size: a size change no sync
    /// made durable reached the disk.
    SizeBeyondDurable,
    /// Namespace: an operation of this kind that no sync made durable was
    /// kept.
    NsKept(NsOpKind),
    /// Namespace: such an operation was lost.
    NsLost(NsOpKind),
}

/// The page rules, in table order.
pub const PAGE_RULES: [CoverageRule; 4] = [
    CoverageRule::PagesAtFloor,
    CoverageRule::PagesNewerThanFloor,
    CoverageRule::IntermediateVersions,
    CoverageRule::SizeBeyondDurable,
];

/// The namespace operation kinds, in table order.
pub const NS_KINDS: [NsOpKind; 5] =
    [NsOpKind::Create, NsOpKind::Link, NsOpKind::Unlink, NsOpKind::Rename, NsOpKind::Size];

impl CoverageRule {
    /// `pages-at-floor`, `namespace-rename-kept`.
    pub fn name(self) -> String {
        match self {
            CoverageRule::PagesAtFloor => "pages-at-floor".into(),
            CoverageRule::PagesNewerThanFloor => "pages-newer-than-floor".into(),
            CoverageRule::IntermediateVersions => "intermediate-versions".into(),
            CoverageRule::SizeBeyondDurable => "size-beyond-durable".into(),
            CoverageRule::NsKept(k) => format!("namespace-{}-kept", k.name()),
            CoverageRule::NsLost(k) => format!("namespace-{}-lost", k.name()),
        }
    }
}

/// One rule on one filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RuleCoverage {
    /// `pages-at-floor`, `pages-newer-than-floor`, `intermediate-versions`,
    /// `size-beyond-durable`, `namespace-KIND-kept`, `namespace-KIND-lost`
    /// (KIND: create, link, unlink, rename, size).
    pub rule: String,
    /// Post-cut files (directories) in which the model allowed the case.
    pub chances: u64,
    /// Of those, the ones in which the real cut showed it.
    pub exercised: u64,
    /// Units (pages; operations) that showed it, over all those files.
    pub units: u64,
}

/// The coverage of one filesystem's cuts (of one kind: page writers, or
/// namespace workloads), rule by rule in table order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Coverage {
    pub rules: Vec<RuleCoverage>,
}

impl Coverage {
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Add `other`'s counts in, rule by rule (shards of one cell, one
    /// filesystem's cuts of several kinds).
    pub fn add(&mut self, other: &Coverage) {
        for o in &other.rules {
            match self.rules.iter_mut().find(|r| r.rule == o.rule) {
                Some(r) => {
                    r.chances += o.chances;
                    r.exercised += o.exercised;
                    r.units += o.units;
                }
                None => self.rules.push(o.clone()),
            }
        }
    }

    fn row(&mut self, rule: CoverageRule) -> &mut RuleCoverage {
        let name = rule.name();
        if let Some(i) = self.rules.iter().position(|r| r.rule == name) {
            return &mut self.rules[i];
        }
        self.rules.push(RuleCoverage { rule: name, chances: 0, exercised: 0, units: 0 });
        self.rules.last_mut().expect("just pushed")
    }

    fn count(&mut self, rule: CoverageRule, chance: bool, units: u64) {
        let r = self.row(rule);
        if chance {
            r.chances += 1;
            r.exercised += (units > 0) as u64;
            r.units += units;
        }
    }

    /// Count one real post-cut file the page model judged. A forbidden file
    /// (a violation) exercises nothing: no allowed state explains it.
    pub fn add_file(&mut self, j: &RealJudgement) {
        for rule in PAGE_RULES {
            self.row(rule);
        }
        if j.is_violation() {
            return;
        }
        let dirty = j.dirty_units > 0;
        self.count(CoverageRule::PagesAtFloor, dirty, j.dirty_units - j.units_beyond_floor);
        self.count(CoverageRule::PagesNewerThanFloor, dirty, j.units_beyond_floor);
        self.count(CoverageRule::IntermediateVersions, j.units_with_intermediate > 0, j.units_intermediate);
        self.count(CoverageRule::SizeBeyondDurable, j.sizes_allowed > 1, j.unsynced_size_kept as u64);
    }

    /// Count one real post-cut directory the namespace model judged: per
    /// kind of operation, a chance when some unit of that kind was in the
    /// cut, exercised when some was kept (lost). An undetermined unit is
    /// neither.
    pub fn add_directory(&mut self, j: &NsJudgement) {
        for k in NS_KINDS {
            self.row(CoverageRule::NsKept(k));
            self.row(CoverageRule::NsLost(k));
        }
        if j.is_violation() {
            return;
        }
        for k in NS_KINDS {
            let mine = j.units.iter().filter(|u| u.kind == k);
            let (mut units, mut kept, mut lost) = (0, 0, 0);
            for u in mine {
                units += 1;
                kept += (u.outcome == UnitOutcome::Kept) as u64;
                lost += (u.outcome == UnitOutcome::Lost) as u64;
            }
            self.count(CoverageRule::NsKept(k), units > 0, kept);
            self.count(CoverageRule::NsLost(k), units > 0, lost);
        }
    }

    /// Rules no cut exercised, with why: `no chance` (the model never
    /// allowed the case in these cuts) or `N chances`.
    pub fn unexercised(&self) -> Vec<(&RuleCoverage, String)> {
        self.rules
            .iter()
            .filter(|r| r.exercised == 0)
            .map(|r| {
                let why = match r.chances {
                    0 => "no cut gave it a chance".to_string(),
                    n => format!("none of {n} chance(s)"),
                };
                (r, why)
            })
            .collect()
    }
}

/// One filesystem's coverage as the text table shows it: the filesystem,
/// the cut, the rules.
pub struct CoverageRow<'a> {
    pub fs: &'a str,
    pub cut: &'a str,
    pub coverage: &'a Coverage,
}

/// The coverage table as text: one line per filesystem and rule, then the
/// rules no cut exercised named.
pub fn coverage_text(rows: &[CoverageRow<'_>]) -> String {
    let mut s = String::new();
    if rows.iter().all(|r| r.coverage.rules.is_empty()) {
        return s;
    }
    let _ = writeln!(
        s,
        "coverage: real post-cut files (directories) in which the model allowed a case (chances) and that showed it"
    );
    let _ = writeln!(s, "{:<6} {:<10} {:<30} {:>8} {:>10} {:>8}", "fs", "cut", "rule", "chances", "exercised", "units");
    for f in rows {
        for r in &f.coverage.rules {
            let _ = writeln!(
                s,
                "{:<6} {:<10} {:<30} {:>8} {:>10} {:>8}",
                f.fs, f.cut, r.rule, r.chances, r.exercised, r.units
            );
        }
    }
    let missing: Vec<String> = rows
        .iter()
        .flat_map(|f| {
            f.coverage.unexercised().into_iter().map(move |(r, why)| format!("{} on {} ({why})", r.rule, f.fs))
        })
        .collect();
    if missing.is_empty() {
        let _ = writeln!(s, "every rule was exercised by some real cut");
    } else {
        let _ = writeln!(s, "NOT EXERCISED by any real cut (never checked against the kernel): {}", missing.join(", "));
    }
    s
}

/// A drop to zero is called lost coverage only when, at the rate the
/// earlier run measured, zero in the later run's chances would happen by
/// chance less often than this.
pub const LOST_COVERAGE_CHANCE: f64 = 1e-3;

/// What became of a rule some cut of the earlier run exercised and no cut
/// of the later one does, although the later run gave it chances.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CoverageDrop {
    /// At the earlier rate `q = exercised / chances`, `(1 - q)^chances_now`
    /// is below [`LOST_COVERAGE_CHANCE`]: the cuts stopped showing it.
    Lost,
    /// Too rare before to tell a change from luck: that probability (shown,
    /// not judged).
    TooRareToCall(f64),
}

/// Rules exercised in `before` and not in `after` although `after` gave them
/// chances, each with its [`CoverageDrop`]. A rule without a chance now is
/// not listed (nothing was measured), nor one never exercised before (e.g.
/// intermediate versions under `--writeback none`: no run ever had them).
/// The caller compares only runs with the same writeback pressure.
pub fn lost_coverage<'a>(
    before: &'a Coverage,
    after: &'a Coverage,
) -> Vec<(&'a RuleCoverage, &'a RuleCoverage, CoverageDrop)> {
    after
        .rules
        .iter()
        .filter_map(|a| before.rules.iter().find(|b| b.rule == a.rule).map(|b| (b, a)))
        .filter(|(b, a)| b.exercised > 0 && a.exercised == 0 && a.chances > 0)
        .map(|(b, a)| {
            let q = b.exercised as f64 / b.chances.max(b.exercised) as f64;
            let by_luck = (1.0 - q).powf(a.chances as f64);
            let drop =
                if by_luck < LOST_COVERAGE_CHANCE { CoverageDrop::Lost } else { CoverageDrop::TooRareToCall(by_luck) };
            (b, a, drop)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realcut::judge::AckCounts;
    use crate::realcut::ns_judge::NsUnitOutcome;

    fn file(dirty: u64, beyond: u64, with_mid: u64, mid: u64, sizes: u64, size_kept: bool) -> RealJudgement {
        RealJudgement {
            len: 8192,
            forbidden: None,
            dirty_units: dirty,
            units_beyond_floor: beyond,
            units_at_newest: beyond - mid,
            units_with_intermediate: with_mid,
            units_intermediate: mid,
            sizes_allowed: sizes,
            unsynced_size_kept: size_kept,
            state: None,
            acks: AckCounts::default(),
            judge_mismatch: None,
        }
    }

    fn rule<'a>(f: &'a Coverage, name: &str) -> &'a RuleCoverage {
        f.rules.iter().find(|r| r.rule == name).unwrap_or_else(|| panic!("no rule {name}"))
    }

    #[test]
    fn each_page_rule_counts_files_with_a_chance_and_files_that_showed_it() {
        let mut f = Coverage::default();
        // Everything unsynced lost, one size.
        f.add_file(&file(4, 0, 2, 0, 1, false));
        // Two of four pages kept, one at an intermediate version; the size grew.
        f.add_file(&file(4, 2, 3, 1, 2, true));
        // Nothing unsynced at all (every page synced): no chance for any rule.
        f.add_file(&file(0, 0, 0, 0, 1, false));
        let at_floor = rule(&f, "pages-at-floor");
        assert_eq!((at_floor.chances, at_floor.exercised, at_floor.units), (2, 2, 6));
        let newer = rule(&f, "pages-newer-than-floor");
        assert_eq!((newer.chances, newer.exercised, newer.units), (2, 1, 2));
        let mid = rule(&f, "intermediate-versions");
        assert_eq!((mid.chances, mid.exercised, mid.units), (2, 1, 1));
        let size = rule(&f, "size-beyond-durable");
        assert_eq!((size.chances, size.exercised, size.units), (1, 1, 1));
        assert!(f.unexercised().is_empty());
    }

    #[test]
    fn a_forbidden_file_exercises_no_rule_but_the_rules_are_listed() {
        let mut f = Coverage::default();
        let mut j = file(4, 4, 3, 2, 2, true);
        j.forbidden = Some(crate::power_loss::Forbidden::Size { len: 1, allowed: vec![8192] });
        f.add_file(&j);
        assert_eq!(f.rules.len(), 4);
        assert!(f.rules.iter().all(|r| r.chances == 0 && r.exercised == 0));
        let text = coverage_text(&[CoverageRow { fs: "xfs", cut: "shutdown", coverage: &f }]);
        assert!(
            text.contains("NOT EXERCISED") && text.contains("intermediate-versions on xfs (no cut gave it a chance)"),
            "{text}"
        );
    }

    fn unit(kind: NsOpKind, outcome: UnitOutcome) -> NsUnitOutcome {
        NsUnitOutcome { operation: "op".into(), kind, rule: "r".into(), context: "c".into(), outcome }
    }

    #[test]
    fn namespace_rules_count_directories_per_kind_kept_and_lost() {
        let mut f = Coverage::default();
        let dir = |units| NsJudgement { observed: String::new(), states: 2, forbidden: None, units };
        f.add_directory(&dir(vec![
            unit(NsOpKind::Rename, UnitOutcome::Lost),
            unit(NsOpKind::Create, UnitOutcome::Kept),
            unit(NsOpKind::Create, UnitOutcome::Kept),
        ]));
        f.add_directory(&dir(vec![unit(NsOpKind::Rename, UnitOutcome::Undetermined)]));
        assert_eq!(f.rules.len(), 10, "kept and lost of five kinds");
        let r = rule(&f, "namespace-create-kept");
        assert_eq!((r.chances, r.exercised, r.units), (1, 1, 2));
        assert_eq!(rule(&f, "namespace-create-lost").exercised, 0);
        let r = rule(&f, "namespace-rename-lost");
        assert_eq!((r.chances, r.exercised), (2, 1), "an undetermined unit is a chance, not a showing");
        assert_eq!(rule(&f, "namespace-link-kept").chances, 0);
        let missing: Vec<&str> = f.unexercised().iter().map(|(r, _)| r.rule.as_str()).collect();
        assert!(missing.contains(&"namespace-rename-kept") && !missing.contains(&"namespace-rename-lost"));
    }

    #[test]
    fn coverage_is_lost_only_where_it_was_had_and_there_was_a_chance_again() {
        let row =
            |rule: &str, chances, exercised| RuleCoverage { rule: rule.into(), chances, exercised, units: exercised };
        let before = Coverage {
            rules: vec![
                row("pages-newer-than-floor", 100, 30),
                row("intermediate-versions", 10, 0),
                row("size-beyond-durable", 5, 2),
            ],
        };
        let after = Coverage {
            rules: vec![
                row("pages-newer-than-floor", 100, 0),
                row("intermediate-versions", 10, 0),
                row("size-beyond-durable", 0, 0),
            ],
        };
        let lost: Vec<(&str, CoverageDrop)> =
            lost_coverage(&before, &after).iter().map(|(_, a, d)| (a.rule.as_str(), *d)).collect();
        assert_eq!(
            lost,
            [("pages-newer-than-floor", CoverageDrop::Lost)],
            "never had: not lost; no chance now: not measured"
        );
        assert!(lost_coverage(&before, &before).is_empty());
        // 1 of 300 before: 0 of 10 now happens by luck 97% of the time.
        let rare = Coverage { rules: vec![row("intermediate-versions", 300, 1)] };
        let none_now = Coverage { rules: vec![row("intermediate-versions", 10, 0)] };
        let d = lost_coverage(&rare, &none_now);
        let CoverageDrop::TooRareToCall(p) = d[0].2 else { panic!("{d:?}") };
        assert!((p - (299.0f64 / 300.0).powi(10)).abs() < 1e-9, "{p}");
    }

    #[test]
    fn rule_names_are_stable() {
        let names: Vec<String> = PAGE_RULES.iter().map(|r| r.name()).collect();
        assert_eq!(names, ["pages-at-floor", "pages-newer-than-floor", "intermediate-versions", "size-beyond-durable"]);
        assert_eq!(CoverageRule::NsKept(NsOpKind::Rename).name(), "namespace-rename-kept");
    }
}
