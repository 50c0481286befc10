//! Joining the reports of the N shards of one `run --writer --shard I/N`
//! run into the report the unsharded run would have written.
//!
//! Exact because each shard ran one contiguous block of every crash kind's
//! trials (`ExternalConfig::trial_indices`), planned from the same seed: the
//! merged sections hold every trial once, in trial order, and their counts
//! are sums (`max_acks` a maximum). Only fields that differ between two
//! runs anyway (`EXTERNAL_NONDETERMINISTIC_FIELDS`: durations, the clean
//! run's timing, the environment) are taken from shard 1. The clean run's
//! verdict is the worst of the shards' clean runs: each shard ran one.
//!
//! Architecture Invariant: pure.

use std::collections::BTreeSet;

use crate::report::external::{CrashSection, ExternalReport, ExternalRunConfig, ExternalSummary};
use crate::report::external_power_loss::PowerLossSection;

/// Why shard reports do not merge. Each names the files at fault.
#[derive(Debug, thiserror::Error)]
pub enum ExternalMergeError {
    #[error("{name} was not written with --shard: only the reports of `run --writer --shard I/N` merge")]
    NotSharded { name: String },
    #[error("{a} and {b} are not shards of one run: {what} differ")]
    Mismatch { a: String, b: String, what: &'static str },
    #[error("{a} and {b} are both shard {shard}")]
    Duplicate { a: String, b: String, shard: String },
    #[error("shard(s) {missing} of {count} missing: pass the reports of all {count} shards")]
    Missing { missing: String, count: u32 },
    #[error("{a} and {b}: {what} has trial {trial} twice")]
    TrialTwice { a: String, b: String, what: String, trial: u32 },
}

/// One shard's report and its name (the file it came from).
pub struct NamedExternalReport {
    pub name: String,
    pub report: ExternalReport,
}

/// The report of the whole run from the reports of all its shards (any order).
pub fn merge_external_shards(parts: &[NamedExternalReport]) -> Result<ExternalReport, ExternalMergeError> {
    let mut sorted: Vec<&NamedExternalReport> = parts.iter().collect();
    for p in &sorted {
        if p.report.config.shard.is_none() {
            return Err(ExternalMergeError::NotSharded { name: p.name.clone() });
        }
    }
    sorted.sort_by_key(|p| p.report.config.shard.map(|s| s.index()));
    let first = sorted[0];
    let count = first.report.config.shard.expect("checked").count();
    let unsharded = |c: &ExternalRunConfig| ExternalRunConfig { shard: None, ..c.clone() };
    for pair in sorted.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        let mismatch = |what| ExternalMergeError::Mismatch { a: a.name.clone(), b: b.name.clone(), what };
        if a.report.seed != b.report.seed {
            return Err(mismatch("their seeds"));
        }
        if unsharded(&a.report.config) != unsharded(&b.report.config) {
            return Err(mismatch("their configurations (commands, crash kinds, trials, flags)"));
        }
        let (sa, sb) = (a.report.config.shard.expect("checked"), b.report.config.shard.expect("checked"));
        if sa.count() != sb.count() {
            return Err(mismatch("their shard counts"));
        }
        if sa == sb {
            return Err(ExternalMergeError::Duplicate { a: a.name.clone(), b: b.name.clone(), shard: sa.to_string() });
        }
    }
    let present: BTreeSet<u32> = sorted.iter().filter_map(|p| p.report.config.shard.map(|s| s.index())).collect();
    let missing: Vec<String> = (1..=count).filter(|i| !present.contains(i)).map(|i| i.to_string()).collect();
    if !missing.is_empty() {
        return Err(ExternalMergeError::Missing { missing: missing.join(", "), count });
    }

    let mut merged = first.report.clone();
    merged.config.shard = None;
    // A clean run that failed in any shard failed: keep the failing one.
    if let Some(bad) = sorted.iter().find(|p| p.report.clean_run.checker.is_violation()) {
        merged.clean_run = bad.report.clean_run.clone();
    }
    merged.run.duration_ms = sorted.iter().map(|p| p.report.run.duration_ms).max().unwrap_or(0);
    merged.crashes = Vec::new();
    merged.power_loss = None;
    merged.eio_sync = None;
    let clean_passed = !merged.clean_run.checker.is_violation();
    if clean_passed {
        for (k, section) in first.report.crashes.iter().enumerate() {
            let mut s = CrashSection::empty(section.crash);
            for p in &sorted {
                let other = p.report.crashes.get(k).filter(|o| o.crash == section.crash);
                let other = other.ok_or_else(|| ExternalMergeError::Mismatch {
                    a: first.name.clone(),
                    b: p.name.clone(),
                    what: "their crash sections",
                })?;
                add_section(&mut s, other);
            }
            check_trials_once(&s.trials_detail.iter().map(|t| t.trial).collect::<Vec<_>>(), section, &sorted)?;
            merged.crashes.push(s);
        }
        merged.power_loss = merge_traced(first, &sorted, |r| r.power_loss.as_ref(), "power-loss")?;
        merged.eio_sync = merge_traced(first, &sorted, |r| r.eio_sync.as_ref(), "eio-sync")?;
    }
    merged.summary = ExternalSummary::of(
        &merged.clean_run,
        &merged.crashes,
        merged.power_loss.as_ref(),
        merged.eio_sync.as_ref(),
        merged.config.allow_no_acks,
    );
    Ok(merged)
}

/// The power-loss-shaped section `of` (`power-loss` or `eio-sync`: `kind`)
/// of the shards, joined.
fn merge_traced(
    first: &NamedExternalReport,
    sorted: &[&NamedExternalReport],
    of: impl Fn(&ExternalReport) -> Option<&PowerLossSection>,
    kind: &str,
) -> Result<Option<PowerLossSection>, ExternalMergeError> {
    {
        if let Some(pl) = of(&first.report) {
            let mut s = PowerLossSection::empty(
                pl.tear,
                pl.unit_bytes,
                pl.exhaustive_bound,
                pl.random_states,
                pl.calibration.clone(),
            );
            s.fs_model = pl.fs_model.clone();
            s.history_method = pl.history_method;
            for p in sorted {
                let other = of(&p.report).ok_or_else(|| ExternalMergeError::Mismatch {
                    a: first.name.clone(),
                    b: p.name.clone(),
                    what: "their power-loss or eio-sync sections",
                })?;
                add_power_loss(&mut s, other);
            }
            let trials: Vec<u32> = s.trials_detail.iter().map(|t| t.trial).collect();
            if let Some(t) = first_repeated(&trials) {
                return Err(ExternalMergeError::TrialTwice {
                    a: sorted[0].name.clone(),
                    b: sorted[sorted.len() - 1].name.clone(),
                    what: kind.into(),
                    trial: t,
                });
            }
            return Ok(Some(s));
        }
    }
    Ok(None)
}

fn first_repeated(sorted_trials: &[u32]) -> Option<u32> {
    sorted_trials.windows(2).find(|w| w[0] == w[1]).map(|w| w[0])
}

fn check_trials_once(
    trials: &[u32],
    section: &CrashSection,
    sorted: &[&NamedExternalReport],
) -> Result<(), ExternalMergeError> {
    match first_repeated(trials) {
        None => Ok(()),
        Some(t) => Err(ExternalMergeError::TrialTwice {
            a: sorted[0].name.clone(),
            b: sorted[sorted.len() - 1].name.clone(),
            what: section.crash.to_string(),
            trial: t,
        }),
    }
}

/// `into` plus the trials of `s` (shards are added in shard order, so
/// blocks append in trial order; sorted anyway, whatever the order given).
fn add_section(into: &mut CrashSection, s: &CrashSection) {
    into.trials += s.trials;
    into.crashed += s.crashed;
    into.finished_first += s.finished_first;
    into.nothing_to_cut += s.nothing_to_cut;
    into.died_of_sigbus += s.died_of_sigbus;
    into.exited_after_cut += s.exited_after_cut;
    into.acks_seen += s.acks_seen;
    into.max_acks = into.max_acks.max(s.max_acks);
    into.consistent += s.consistent;
    into.violations += s.violations;
    for (end, n) in &s.writer_ends {
        *into.writer_ends.entry(end.clone()).or_default() += n;
    }
    into.failures.extend(s.failures.iter().cloned());
    into.failures.sort_by_key(|f| f.trial);
    into.trials_detail.extend(s.trials_detail.iter().cloned());
    into.trials_detail.sort_by_key(|t| t.trial);
    match (&mut into.enospc, &s.enospc) {
        (Some(into), Some(s)) => into.add(s),
        (into @ None, Some(s)) => *into = Some(s.clone()),
        (_, None) => {}
    }
}

fn add_power_loss(into: &mut PowerLossSection, s: &PowerLossSection) {
    into.trials += s.trials;
    into.syscall_trials += s.syscall_trials;
    into.time_trials += s.time_trials;
    into.finished_first += s.finished_first;
    into.exhaustive_trials += s.exhaustive_trials;
    into.states_checked += s.states_checked;
    into.checker_runs += s.checker_runs;
    into.history.add(&s.history);
    into.states_skipped += s.states_skipped;
    into.acks_seen += s.acks_seen;
    into.max_acks = into.max_acks.max(s.max_acks);
    into.consistent += s.consistent;
    into.violations += s.violations;
    into.failures.extend(s.failures.iter().cloned());
    into.failures.sort_by_key(|f| f.trial);
    into.trials_detail.extend(s.trials_detail.iter().cloned());
    into.trials_detail.sort_by_key(|t| t.trial);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program_plan::TrialPlan;
    use crate::report::external_fixtures::{report_with, trial};
    use crate::trial_space::Shard;
    use crate::vocab::CrashKind;
    use crate::vocab::ProcessEnd;

    fn shard(outcomes_of: &[u32], failing: &[u32], s: Option<Shard>) -> ExternalReport {
        let outcomes: Vec<_> = outcomes_of.iter().map(|&t| trial(t, failing.contains(&t))).collect();
        report_with(&outcomes, s)
    }

    #[test]
    fn the_shards_of_a_run_merge_into_exactly_the_unsharded_report() {
        let whole = shard(&[0, 1, 2, 3, 4], &[1, 4], None);
        let s = |i| Some(Shard::new(i, 2).unwrap());
        // Shard::block(5) of 2: 0..2 and 2..5.
        let parts = vec![
            NamedExternalReport { name: "b.json".into(), report: shard(&[2, 3, 4], &[4], s(2)) },
            NamedExternalReport { name: "a.json".into(), report: shard(&[0, 1], &[1], s(1)) },
        ];
        let merged = merge_external_shards(&parts).unwrap();
        assert_eq!(merged, whole);
        assert_eq!(merged.summary.violations, 2);
        assert_eq!(merged.crashes[0].failures.iter().map(|f| f.trial).collect::<Vec<_>>(), [1, 4]);
    }

    #[test]
    fn missing_duplicated_or_foreign_shards_are_refused_naming_them() {
        let s = |i, n| Some(Shard::new(i, n).unwrap());
        let named = |name: &str, report| NamedExternalReport { name: name.into(), report };
        let e = merge_external_shards(&[named("a.json", shard(&[0], &[], s(1, 3)))]).unwrap_err();
        assert!(e.to_string().contains("shard(s) 2, 3 of 3 missing"), "{e}");
        let e = merge_external_shards(&[
            named("a.json", shard(&[0], &[], s(1, 2))),
            named("b.json", shard(&[0], &[], s(1, 2))),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("a.json and b.json are both shard 1/2"), "{e}");
        let mut other = shard(&[1], &[], s(2, 2));
        other.seed += 1;
        let e =
            merge_external_shards(&[named("a.json", shard(&[0], &[], s(1, 2))), named("b.json", other)]).unwrap_err();
        assert!(e.to_string().contains("seeds"), "{e}");
        let e = merge_external_shards(&[named("whole.json", shard(&[0], &[], None))]).unwrap_err();
        assert!(e.to_string().contains("whole.json was not written with --shard"), "{e}");
        // Sanity: the helpers build what they say.
        let plan = TrialPlan::new(5, CrashKind::Sigkill, 0);
        assert_eq!(trial(0, false).plan, plan);
        assert_eq!(trial(0, true).writer_end, ProcessEnd::Signaled(libc::SIGKILL));
    }
}
