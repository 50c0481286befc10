//! Joining the reports of the N shards of one campaign (`--shard I/N`) into
//! the report one unsharded run with the same config would have written.
//!
//! Exactness rests on how shards split the trial space (see
//! [`crate::trial_space`]): shard I runs the I-th contiguous block of every
//! cell's crash points. So a cell's counts are the sums of its shards'
//! counts, its first failures are the concatenation of the shards' first
//! failures in shard order, and its representative trial is the
//! representative of the first shard whose best trial ranks highest. The
//! verdict is then judged afresh from the summed counts.
//!
//! Only the fields listed in [`crate::report::survival::NONDETERMINISTIC_FIELDS`] may
//! differ from an unsharded run.
//!
//! Architecture Invariant: pure.

use std::collections::BTreeSet;

use crate::report::survival::{judge, CellReport, RealCutInfo, RunInfo, Summary, SurvivalReport, MAX_FAILURES};
use crate::report::survival_lifecycle::{merge_lifecycle_cell, LifecycleCell, LifecycleSection, LifecycleSummary};
use crate::vocab::Environment;

#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    #[error("nothing to merge: name the shard reports")]
    Empty,
    #[error("{name} is not a shard report (its config has no `shard`): it already covers the whole campaign")]
    NotSharded { name: String },
    #[error("{first} and {other} are both shard {shard}: merging them would count its trials twice")]
    DuplicateShard { first: String, other: String, shard: String },
    #[error("{name} is shard {shard}, but {first} is shard {first_shard}: shards of different splits do not merge")]
    ShardCountMismatch { name: String, shard: String, first: String, first_shard: String },
    #[error("shard(s) {missing} of {count} missing: the merged report would claim trials nobody ran")]
    MissingShards { missing: String, count: u32 },
    #[error("{name} has schema_version {found}, {first} has {expected}: shards must come from the same crashlab")]
    SchemaVersion { name: String, found: String, first: String, expected: String },
    #[error("{name} was written by crashlab {found}, {first} by {expected}: their trial plans may differ")]
    CrashlabVersion { name: String, found: String, first: String, expected: String },
    #[error("{name} has seed {found}, {first} has seed {expected}: shards of one campaign share one seed")]
    Seed { name: String, found: u64, first: String, expected: u64 },
    #[error("{name} ran a different campaign than {first}: config.{field} is {found} there, {expected} here")]
    Config { name: String, first: String, field: String, found: String, expected: String },
    #[error("{name} ran other lifecycle rows than {first}: lifecycle.config is {found} there, {expected} here")]
    Lifecycle { name: String, first: String, found: String, expected: String },
    #[error("{name} ran on {found}-byte pages, {first} on {expected}-byte pages: the trial plans differ")]
    PageSize { name: String, found: u64, first: String, expected: u64 },
    #[error("{name} has cell {found} where {first} has {expected}: the reports do not describe the same matrix")]
    Cells { name: String, first: String, found: String, expected: String },
}

/// A report and the name (path) errors call it by.
pub struct NamedReport {
    pub name: String,
    pub report: SurvivalReport,
}

/// Merge the reports of every shard of one campaign, given in any order.
pub fn merge_shards(parts: &[NamedReport]) -> Result<SurvivalReport, MergeError> {
    let first = parts.first().ok_or(MergeError::Empty)?;
    for p in parts {
        check_compatible(first, p)?;
    }
    let mut shards: Vec<&NamedReport> = Vec::with_capacity(parts.len());
    for p in parts {
        let shard = p.report.config.shard.ok_or_else(|| MergeError::NotSharded { name: p.name.clone() })?;
        let first_shard = first.report.config.shard.expect("checked in the loop above, first");
        if shard.count() != first_shard.count() {
            return Err(MergeError::ShardCountMismatch {
                name: p.name.clone(),
                shard: shard.to_string(),
                first: first.name.clone(),
                first_shard: first_shard.to_string(),
            });
        }
        if let Some(dup) = shards.iter().find(|q| q.report.config.shard == Some(shard)) {
            return Err(MergeError::DuplicateShard {
                first: dup.name.clone(),
                other: p.name.clone(),
                shard: shard.to_string(),
            });
        }
        shards.push(p);
    }
    let count = first.report.config.shard.expect("every part is a shard").count();
    let present: BTreeSet<u32> = shards.iter().filter_map(|p| p.report.config.shard).map(|s| s.index()).collect();
    let missing: Vec<String> = (1..=count).filter(|i| !present.contains(i)).map(|i| i.to_string()).collect();
    if !missing.is_empty() {
        return Err(MergeError::MissingShards { missing: missing.join(", "), count });
    }
    shards.sort_by_key(|p| p.report.config.shard.map(|s| s.index()));

    let reports: Vec<&SurvivalReport> = shards.iter().map(|p| &p.report).collect();
    let cells: Vec<CellReport> = (0..first.report.cells.len())
        .map(|i| merge_cell(&reports.iter().map(|r| &r.cells[i]).collect::<Vec<_>>()))
        .collect();
    let mut config = first.report.config.clone();
    config.shard = None;
    let lifecycle = first.report.lifecycle.as_ref().map(|l| {
        let sections: Vec<&LifecycleSection> = reports.iter().filter_map(|r| r.lifecycle.as_ref()).collect();
        let cells: Vec<LifecycleCell> = (0..l.cells.len())
            .map(|i| merge_lifecycle_cell(&sections.iter().map(|s| &s.cells[i]).collect::<Vec<_>>()))
            .collect();
        LifecycleSection { config: l.config.clone(), summary: LifecycleSummary::of(&cells), cells }
    });
    Ok(SurvivalReport {
        schema_version: first.report.schema_version.clone(),
        crashlab_version: first.report.crashlab_version.clone(),
        run: RunInfo {
            started_at_unix: reports.iter().map(|r| r.run.started_at_unix).min().unwrap_or(0),
            // Shards run side by side: the campaign took as long as the slowest.
            duration_ms: reports.iter().map(|r| r.run.duration_ms).max().unwrap_or(0),
            dir: distinct(reports.iter().map(|r| r.run.dir.as_str())),
        },
        environment: Environment {
            kernel_release: distinct(reports.iter().map(|r| r.environment.kernel_release.as_str())),
            fs_type: distinct(reports.iter().map(|r| r.environment.fs_type.as_str())),
            page_size: first.report.environment.page_size,
        },
        seed: first.report.seed,
        config,
        summary: Summary::of(&cells),
        cells,
        lifecycle,
        enospc_skipped: first.report.enospc_skipped.clone(),
    })
}

/// The distinct values, in first-seen order, comma-separated: shards may run
/// on machines that differ in what the report merely records.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for v in values {
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen.join(", ")
}

fn check_compatible(first: &NamedReport, p: &NamedReport) -> Result<(), MergeError> {
    let (a, b) = (&first.report, &p.report);
    let name = || p.name.clone();
    let first_name = || first.name.clone();
    // Readers refuse other majors; within one major the plan can still change
    // between crashlab versions, so both must match.
    if a.schema_version != b.schema_version {
        return Err(MergeError::SchemaVersion {
            name: name(),
            found: b.schema_version.clone(),
            first: first_name(),
            expected: a.schema_version.clone(),
        });
    }
    if a.crashlab_version != b.crashlab_version {
        return Err(MergeError::CrashlabVersion {
            name: name(),
            found: b.crashlab_version.clone(),
            first: first_name(),
            expected: a.crashlab_version.clone(),
        });
    }
    if a.seed != b.seed || a.config.seed != b.config.seed {
        return Err(MergeError::Seed {
            name: name(),
            found: b.config.seed,
            first: first_name(),
            expected: a.config.seed,
        });
    }
    let (mut ca, mut cb) = (a.config.clone(), b.config.clone());
    (ca.shard, cb.shard) = (None, None);
    if ca != cb {
        let (va, vb) = (
            serde_json::to_value(&ca).expect("configs serialize"),
            serde_json::to_value(&cb).expect("configs serialize"),
        );
        let (oa, ob) = (va.as_object().expect("a config is an object"), vb.as_object().expect("a config is an object"));
        let field = oa.keys().chain(ob.keys()).find(|k| oa.get(*k) != ob.get(*k)).cloned().unwrap_or_default();
        let show = |v: Option<&serde_json::Value>| v.map_or("absent".to_string(), |v| v.to_string());
        return Err(MergeError::Config {
            name: name(),
            first: first_name(),
            found: show(ob.get(&field)),
            expected: show(oa.get(&field)),
            field,
        });
    }
    if a.environment.page_size != b.environment.page_size {
        return Err(MergeError::PageSize {
            name: name(),
            found: b.environment.page_size,
            first: first_name(),
            expected: a.environment.page_size,
        });
    }
    let key = CellReport::key_text;
    if let Some((x, y)) = a.cells.iter().zip(&b.cells).find(|(x, y)| key(x) != key(y)) {
        return Err(MergeError::Cells { name: name(), first: first_name(), found: key(y), expected: key(x) });
    }
    if a.cells.len() != b.cells.len() {
        return Err(MergeError::Cells {
            name: name(),
            first: first_name(),
            found: format!("count {}", b.cells.len()),
            expected: format!("count {}", a.cells.len()),
        });
    }
    check_lifecycle(first, p)
}

/// The lifecycle sections of two shards: both absent, or the same config
/// and the same cells in the same order.
fn check_lifecycle(first: &NamedReport, p: &NamedReport) -> Result<(), MergeError> {
    let (a, b) = (first.report.lifecycle.as_ref(), p.report.lifecycle.as_ref());
    let config_text = |s: Option<&LifecycleSection>| {
        s.map_or("absent".to_string(), |s| serde_json::to_string(&s.config).expect("configs serialize"))
    };
    if a.map(|s| &s.config) != b.map(|s| &s.config) {
        return Err(MergeError::Lifecycle {
            name: p.name.clone(),
            first: first.name.clone(),
            found: config_text(b),
            expected: config_text(a),
        });
    }
    let (Some(a), Some(b)) = (a, b) else { return Ok(()) };
    let key = LifecycleCell::key_text;
    let found = a.cells.iter().zip(&b.cells).find(|(x, y)| key(x) != key(y)).map(|(x, y)| (key(x), key(y)));
    let count = (a.cells.len() != b.cells.len())
        .then(|| (format!("count {}", a.cells.len()), format!("count {}", b.cells.len())));
    match found.or(count) {
        Some((expected, found)) => Err(MergeError::Cells {
            name: p.name.clone(),
            first: first.name.clone(),
            found: format!("lifecycle {found}"),
            expected: format!("lifecycle {expected}"),
        }),
        None => Ok(()),
    }
}

/// How good a trial is as a cell's representative replay, as
/// `report::aggregate_cell` ranks them (0 best): a failing trial, else one
/// that put an acked op at risk, else any. Of a shard's cell, the rank of its
/// representative; `None` if the shard ran none of the cell's trials.
fn representative_rank(c: &CellReport) -> Option<u8> {
    if c.trials == 0 {
        return None;
    }
    // Under a power-loss model every ack not guaranteed (for real cuts: not
    // kept) is at risk (counted as lost, torn or truncated); under process
    // crash, lost or torn ones.
    let at_risk = if c.model.is_power_loss() { c.acked - c.survived } else { c.lost + c.torn };
    let failed = c.model_violations > 0 || c.real.as_ref().is_some_and(|r| r.judge_mismatches > 0);
    Some(crate::report::survival_cells::representative_rank(failed, at_risk > 0))
}

fn merge_cell(parts: &[&CellReport]) -> CellReport {
    let first = parts[0];
    let mut merged = first.clone();
    // Every field is named, so a field added to CellReport fails to compile
    // here until someone decides how shards combine it.
    let CellReport {
        scenario: _,
        mapping: _,
        sync_policy: _,
        crash: _,
        model: _,
        expectation: _,
        trials,
        crash_points,
        acked,
        survived,
        lost,
        torn,
        truncated,
        in_flight_stores,
        in_flight_torn,
        sigbus_faults,
        missed_crashes,
        model_violations,
        // Judged below from the sums.
        verdict: _,
        verdict_reason: _,
        replay,
        failures,
        states_checked,
        exhaustive_trials,
        explanations,
        real,
    } = &mut merged;
    let sum = |f: fn(&CellReport) -> u64| parts.iter().map(|c| f(c)).sum::<u64>();
    *trials = sum(|c| c.trials);
    *crash_points = sum(|c| c.crash_points);
    *acked = sum(|c| c.acked);
    *survived = sum(|c| c.survived);
    *lost = sum(|c| c.lost);
    *torn = sum(|c| c.torn);
    *truncated = sum(|c| c.truncated);
    *in_flight_stores = sum(|c| c.in_flight_stores);
    *in_flight_torn = sum(|c| c.in_flight_torn);
    *sigbus_faults = sum(|c| c.sigbus_faults);
    *missed_crashes = sum(|c| c.missed_crashes);
    *model_violations = sum(|c| c.model_violations);
    let sum_some = |f: fn(&CellReport) -> Option<u64>| {
        parts.iter().filter_map(|c| f(c)).fold(None, |acc: Option<u64>, n| Some(acc.unwrap_or(0) + n))
    };
    *states_checked = sum_some(|c| c.states_checked);
    *exhaustive_trials = sum_some(|c| c.exhaustive_trials);
    *failures = parts.iter().flat_map(|c| c.failures.iter().cloned()).take(MAX_FAILURES).collect();
    *explanations = parts.iter().flat_map(|c| c.explanations.iter().cloned()).take(MAX_FAILURES).collect();
    if let Some(r) = real.as_mut() {
        let infos: Vec<&RealCutInfo> = parts.iter().filter_map(|c| c.real.as_ref()).collect();
        // Named field by field, as above. The column (backend, fs, cut) is
        // the same in every shard: check_compatible matched the cell keys.
        let RealCutInfo {
            backend: _,
            fs: _,
            cut: _,
            disk: _,
            kernel_release,
            soundness_violations,
            trials_with_unsynced_pages,
            trials_kept_more,
            judge_mismatches,
            writeback: _,
            coverage,
        } = r;
        // Shards may cut on machines with different kernels: list them all.
        *kernel_release = distinct(infos.iter().map(|i| i.kernel_release.as_str()));
        *soundness_violations = infos.iter().map(|i| i.soundness_violations).sum();
        *trials_with_unsynced_pages = infos.iter().map(|i| i.trials_with_unsynced_pages).sum();
        *trials_kept_more = infos.iter().map(|i| i.trials_kept_more).sum();
        *judge_mismatches = infos.iter().map(|i| i.judge_mismatches).sum();
        *coverage = Default::default();
        for i in &infos {
            coverage.add(&i.coverage);
        }
    }
    // The first shard holding a trial of the best rank holds the first such
    // trial of the whole cell (min_by_key keeps the first of equal keys).
    *replay = parts
        .iter()
        .filter_map(|c| representative_rank(c).map(|r| (r, c)))
        .min_by_key(|(r, _)| *r)
        .map_or_else(String::new, |(_, c)| c.replay.clone());
    let (v, reason) = judge(&merged);
    merged.verdict = v;
    merged.verdict_reason = reason;
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::survival_cells::real_test_support::{real_cell, real_record, report_of};
    use crate::trial_space::Shard;

    fn shard(index: u32, cells: Vec<CellReport>) -> NamedReport {
        let mut report = report_of(cells);
        report.config.shard = Some(Shard::new(index, 2).unwrap());
        NamedReport { name: format!("shard-{index}.json"), report }
    }

    /// Two real columns of one scenario differ only in their filesystem:
    /// each merges with its own shards, never with the other.
    #[test]
    fn real_columns_of_different_filesystems_merge_separately() {
        let ext4 = |k, lost| real_cell("shared/no-sync", "loopcut:ext4", &[real_record(k, 0, lost, false)]);
        let xfs = |k, survived| real_cell("shared/no-sync", "loopcut:xfs", &[real_record(k, survived, 0, false)]);
        let mut second = shard(2, vec![ext4(3, 4), xfs(3, 5)]);
        for c in &mut second.report.cells {
            c.real.as_mut().unwrap().kernel_release = "6.2.0-other".into();
        }
        let merged = merge_shards(&[shard(1, vec![ext4(1, 1), xfs(1, 2)]), second]).unwrap();
        assert_eq!(merged.cells.len(), 2);
        let (e, x) = (&merged.cells[0], &merged.cells[1]);
        assert_eq!(e.real_column().unwrap().to_string(), "loopcut:ext4");
        assert_eq!((e.trials, e.acked, e.survived, e.lost), (2, 5, 0, 5));
        assert_eq!(x.real_column().unwrap().to_string(), "loopcut:xfs");
        assert_eq!((x.trials, x.acked, x.survived, x.lost), (2, 7, 7, 0));
        assert_eq!(e.real.as_ref().unwrap().kernel_release, "6.1.0-test, 6.2.0-other");
        assert_eq!(e.real.as_ref().unwrap().trials_with_unsynced_pages, 2);
        assert_eq!(merged.config.real.len(), 2);

        // Shards listing the columns in another order are not the same matrix.
        let first = shard(1, vec![ext4(1, 1), xfs(1, 2)]);
        let mut swapped = shard(2, vec![xfs(3, 5), ext4(3, 4)]);
        swapped.report.config.real = first.report.config.real.clone();
        let e = merge_shards(&[first, swapped]).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, MergeError::Cells { .. }), "{msg}");
        assert!(msg.contains("[power-loss (real: loopcut/xfs)]") && msg.contains("[power-loss (real: loopcut/ext4)]"));
    }

    #[test]
    fn lifecycle_rows_merge_by_sums_and_only_with_the_same_rows() {
        use crate::report::survival_lifecycle::test_support::{cell, section};
        use crate::vocab::CrashKind::{PowerLoss, Sigkill};
        use crate::vocab::LifecycleKind::CreateNoDirsync;
        let mmap = || vec![real_cell("shared/no-sync", "vm", &[real_record(1, 2, 0, false)])];
        let part = |index, lost| {
            let mut s = shard(index, mmap());
            s.report.lifecycle =
                Some(section(vec![cell(CreateNoDirsync, Sigkill, 2, 0), cell(CreateNoDirsync, PowerLoss, 2, lost)]));
            s
        };
        let merged = merge_shards(&[part(2, 1), part(1, 0)]).unwrap();
        let l = merged.lifecycle.as_ref().unwrap();
        assert_eq!(l.cells.iter().map(|c| (c.trials, c.trials_lost)).collect::<Vec<_>>(), vec![(4, 0), (4, 1)]);
        assert_eq!((l.summary.cells, l.summary.trials, l.summary.unexpected), (2, 8, 0));
        // A shard without the rows, or with other rows, is another campaign.
        let mut other = part(2, 0);
        other.report.lifecycle = None;
        let e = merge_shards(&[part(1, 0), other]).unwrap_err();
        assert!(matches!(e, MergeError::Lifecycle { .. }), "{e}");
        let mut other = part(2, 0);
        other.report.lifecycle.as_mut().unwrap().cells.pop();
        let e = merge_shards(&[part(1, 0), other]).unwrap_err();
        assert!(e.to_string().contains("lifecycle count 2"), "{e}");
    }

    #[test]
    fn a_soundness_violation_in_one_shard_makes_the_merged_cell_a_model_violation() {
        let cell = |k, bad| real_cell("shared/ms-sync-each", "vm", &[real_record(k, 2, 0, bad)]);
        let merged = merge_shards(&[shard(1, vec![cell(1, false)]), shard(2, vec![cell(2, true)])]).unwrap();
        let c = &merged.cells[0];
        assert_eq!(c.verdict, crate::report::survival::Verdict::ModelViolation);
        assert_eq!(c.real.as_ref().unwrap().soundness_violations, 1);
        assert!(c.verdict_reason.as_deref().unwrap().starts_with("MODEL SOUNDNESS VIOLATION"));
        assert!(c.replay.ends_with("before:2"), "the violating shard's trial represents the cell: {}", c.replay);
    }
}
