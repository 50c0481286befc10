//! The survival report's `lifecycle` section: what survives the file
//! lifecycle family (atomic replace via rename, new files; each with and
//! without a directory fsync), run as protocol-v1 programs by the external
//! engine, next to the mmap writers' cells. Its types, a cell from the
//! external report of its row, its verdict, and the merge of shards.
//!
//! A cell is one kind × crash kind × model: `sigkill` and `abort` under
//! `process-crash`, `power-loss` (the namespace-aware `posix` model of
//! `crashlab run --crash power-loss`) under `power-loss`. Its counts are
//! trials, not acks: the checker judges a whole directory, and says `lost:`
//! (an acked op is missing) or `corrupt:` (a file holds what no write
//! produced) first (`lifecycle::family`).
//!
//! Architecture Invariant: pure.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::expectation::{expected_lifecycle_acks, AckExpectation, PersistenceModel};
use crate::report::external::ExternalReport;
use crate::report::verdict::Verdict;
use crate::summary_text::write_unexpected_cell;
use crate::vocab::lifecycle_kind::{LifecycleKind, LOST_PREFIX};
use crate::vocab::CrashKind;

/// At most this many failing trials are kept per cell (as for the mmap cells).
const MAX_FAILURES: usize = 5;

/// The lifecycle rows of a matrix run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LifecycleSection {
    pub config: LifecycleConfig,
    /// In row order, then crash kind (`sigkill`, `abort`, `power-loss`).
    pub cells: Vec<LifecycleCell>,
    pub summary: LifecycleSummary,
}

/// Everything that decides which lifecycle trials run (with the matrix's
/// seed, `shard` and `timeout`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LifecycleConfig {
    /// The rows (`--lifecycle`).
    pub kinds: Vec<LifecycleKind>,
    /// Trials per cell (`--lifecycle-trials`); a shard runs its block of them.
    pub trials: u32,
    /// Ops (acks) per writer run (`--lifecycle-acks`).
    pub acks: u32,
    /// The process crash kinds of the matrix's `--crash` that apply to a
    /// program (`sigkill`, `abort`), when `--model` has `process-crash`.
    pub crashes: Vec<CrashKind>,
    /// `--model` has `power-loss`: one power-loss cell per row.
    pub power_loss: bool,
    /// The namespace model of the power-loss cells (`posix`).
    pub fs_model: String,
    /// Why the power-loss cells did not run although `--model` has
    /// `power-loss`: the durability oracle cannot run here (no ptrace or
    /// seccomp, e.g. in some containers). The main command needs nothing,
    /// so the rows' other cells run and the report says what was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_loss_skipped: Option<String>,
}

/// One lifecycle kind under one crash kind and model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LifecycleCell {
    pub kind: LifecycleKind,
    pub crash: CrashKind,
    pub model: PersistenceModel,
    pub trials: u64,
    /// Ack lines over all trials.
    pub acks_seen: u64,
    /// Trials with at least one ack (the others tested only the setup's state).
    pub trials_with_acks: u64,
    /// Trials whose checker found an acked op missing.
    pub trials_lost: u64,
    /// Trials whose checker found a file no write produced (a torn or mixed
    /// `state`, a missing `state`, foreign bytes in a segment).
    pub trials_corrupt: u64,
    /// Power-loss cells: states shown to the checker (up to and including a
    /// trial's first failing one), and trials whose every state was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub states_checked: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exhaustive_trials: Option<u64>,
    pub expectation: AckExpectation,
    pub verdict: Verdict,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict_reason: Option<String>,
    /// The first failing trial's replay line, else the `crashlab run` line
    /// that reruns the whole cell.
    pub replay: String,
    /// The first few failing trials.
    pub failures: Vec<LifecycleFailure>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LifecycleFailure {
    pub trial: u32,
    /// `lost` or `corrupt`.
    pub found: String,
    /// The checker's reason (for power loss: in the minimal state), and for
    /// power loss the explanation of that state.
    pub details: Vec<String>,
    pub replay: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LifecycleSummary {
    pub cells: u64,
    pub as_expected: u64,
    pub unexpected: u64,
    pub trials: u64,
}

impl LifecycleSummary {
    pub fn of(cells: &[LifecycleCell]) -> LifecycleSummary {
        let count = |v: Verdict| cells.iter().filter(|c| c.verdict == v).count() as u64;
        LifecycleSummary {
            cells: cells.len() as u64,
            as_expected: count(Verdict::AsExpected),
            unexpected: cells.len() as u64 - count(Verdict::AsExpected),
            trials: cells.iter().map(|c| c.trials).sum(),
        }
    }
}

impl LifecycleCell {
    /// What identifies the cell: `replace-no-dirsync power-loss [power-loss]`.
    pub fn key_text(&self) -> String {
        format!("{} {} [{}]", self.kind, self.crash, self.model)
    }
}

/// `lost` unless any reason the trial's checker gave is not a lost ack:
/// corruption counts whenever it was seen.
fn classify(reasons: &[&str]) -> &'static str {
    if reasons.iter().all(|r| r.starts_with(LOST_PREFIX)) {
        "lost"
    } else {
        "corrupt"
    }
}

/// The cells of one row from the external report of its run; `run_line`
/// gives the `crashlab run` line that reruns a cell's crash kind.
pub fn lifecycle_cells(
    kind: LifecycleKind,
    report: &ExternalReport,
    run_line: &dyn Fn(CrashKind) -> String,
) -> Vec<LifecycleCell> {
    let mut cells = Vec::new();
    for s in &report.crashes {
        let mut c = empty_cell(kind, s.crash, PersistenceModel::ProcessCrash, run_line(s.crash));
        c.trials = s.trials;
        c.acks_seen = s.acks_seen;
        c.trials_with_acks = s.trials_detail.iter().filter(|t| t.acks > 0).count() as u64;
        for f in &s.failures {
            let found = classify(&[&f.reason]);
            let details = || vec![f.reason.clone(), format!("{} acks; {}", f.acks, f.delivery)];
            record_failure(&mut c, f.trial, found, details, &f.replay);
        }
        count_unlisted(&mut c, s.violations);
        cells.push(finish(c));
    }
    if let Some(p) = &report.power_loss {
        let mut c = empty_cell(kind, CrashKind::PowerLoss, PersistenceModel::PowerLoss, run_line(CrashKind::PowerLoss));
        c.trials = p.trials;
        c.acks_seen = p.acks_seen;
        c.trials_with_acks = p.trials_detail.iter().filter(|t| t.acks > 0).count() as u64;
        c.states_checked = Some(p.states_checked);
        c.exhaustive_trials = Some(p.exhaustive_trials);
        for f in &p.failures {
            let found = classify(&[&f.finding.reason, &f.finding.first_reason]);
            let details = || {
                vec![f.finding.reason.clone(), format!("{} acks, {}", f.acks, f.point), f.finding.explanation.clone()]
            };
            record_failure(&mut c, f.trial, found, details, &f.replay);
        }
        count_unlisted(&mut c, p.violations);
        cells.push(finish(c));
    }
    cells
}

/// Count a failing trial as lost or corrupt (`found`), and list it while
/// the cell lists fewer than [`MAX_FAILURES`].
fn record_failure(c: &mut LifecycleCell, trial: u32, found: &str, details: impl FnOnce() -> Vec<String>, replay: &str) {
    *if found == "lost" { &mut c.trials_lost } else { &mut c.trials_corrupt } += 1;
    if c.failures.len() < MAX_FAILURES {
        c.failures.push(LifecycleFailure { trial, found: found.into(), details: details(), replay: replay.to_owned() });
    }
}

/// Violations the section counted but did not list (none today: sections
/// list every violation) cannot be told lost from corrupt: they count as
/// corrupt, the outcome no expectation allows, rather than vanish.
fn count_unlisted(c: &mut LifecycleCell, violations: u64) {
    c.trials_corrupt += violations.saturating_sub(c.trials_lost + c.trials_corrupt);
}

fn empty_cell(kind: LifecycleKind, crash: CrashKind, model: PersistenceModel, replay: String) -> LifecycleCell {
    LifecycleCell {
        kind,
        crash,
        model,
        trials: 0,
        acks_seen: 0,
        trials_with_acks: 0,
        trials_lost: 0,
        trials_corrupt: 0,
        states_checked: None,
        exhaustive_trials: None,
        expectation: expected_lifecycle_acks(kind, model),
        verdict: Verdict::AsExpected,
        verdict_reason: None,
        replay,
        failures: Vec::new(),
    }
}

/// The cell with its verdict, and its first failure's replay line in front.
fn finish(mut c: LifecycleCell) -> LifecycleCell {
    if let Some(f) = c.failures.first() {
        c.replay = f.replay.clone();
    }
    let (verdict, reason) = judge_lifecycle(&c);
    c.verdict = verdict;
    c.verdict_reason = reason;
    c
}

/// The verdict of a cell from its counts (also used to rejudge merged
/// shards). No kind may ever leave a corrupt file: rename(2) is atomic, and
/// a new file is judged only by bytes its own writes could leave. Lost
/// acks are unexpected only where the expectation keeps them all.
pub(crate) fn judge_lifecycle(c: &LifecycleCell) -> (Verdict, Option<String>) {
    if c.trials_corrupt > 0 {
        return (
            Verdict::Unexpected,
            Some(format!(
                "{} of {} trials left a file no write produced, where the {} model never does",
                c.trials_corrupt, c.trials, c.model
            )),
        );
    }
    match c.expectation {
        AckExpectation::AllSurvive if c.trials_lost > 0 => (
            Verdict::Unexpected,
            Some(format!(
                "{} of {} trials lost an acked op where the {} model keeps them all",
                c.trials_lost, c.trials, c.model
            )),
        ),
        _ => (Verdict::AsExpected, None),
    }
}

/// One cell from its shards' cells (in shard order): counts summed, the
/// first failures in shard order, the first shard's failure as the replay,
/// the verdict judged afresh.
pub(crate) fn merge_lifecycle_cell(parts: &[&LifecycleCell]) -> LifecycleCell {
    let mut merged = parts[0].clone();
    // Every field named, so a new field fails to compile here until someone
    // decides how shards combine it.
    let LifecycleCell {
        kind: _,
        crash: _,
        model: _,
        expectation: _,
        // Judged below from the sums.
        verdict: _,
        verdict_reason: _,
        trials,
        acks_seen,
        trials_with_acks,
        trials_lost,
        trials_corrupt,
        states_checked,
        exhaustive_trials,
        replay,
        failures,
    } = &mut merged;
    let sum = |f: fn(&LifecycleCell) -> u64| parts.iter().map(|c| f(c)).sum::<u64>();
    *trials = sum(|c| c.trials);
    *acks_seen = sum(|c| c.acks_seen);
    *trials_with_acks = sum(|c| c.trials_with_acks);
    *trials_lost = sum(|c| c.trials_lost);
    *trials_corrupt = sum(|c| c.trials_corrupt);
    let sum_some = |f: fn(&LifecycleCell) -> Option<u64>| {
        parts.iter().filter_map(|c| f(c)).fold(None, |acc: Option<u64>, n| Some(acc.unwrap_or(0) + n))
    };
    *states_checked = sum_some(|c| c.states_checked);
    *exhaustive_trials = sum_some(|c| c.exhaustive_trials);
    *failures = parts.iter().flat_map(|c| c.failures.iter().cloned()).take(MAX_FAILURES).collect();
    // Unsharded, the replay is the first failure's, else the cell's run line
    // (which names no shard, so every shard has the same one).
    if let Some(f) = failures.first() {
        *replay = f.replay.clone();
    }
    let (v, reason) = judge_lifecycle(&merged);
    merged.verdict = v;
    merged.verdict_reason = reason;
    merged
}

/// The models of a section's cells, in model order: one table each, never
/// mixing process-crash and power-loss numbers.
pub fn models_of(cells: &[LifecycleCell]) -> Vec<PersistenceModel> {
    let mut models: Vec<PersistenceModel> = cells.iter().map(|c| c.model).collect();
    models.sort();
    models.dedup();
    models
}

/// The verdict as the tables print it.
pub fn verdict_text(c: &LifecycleCell) -> &'static str {
    match (c.verdict, c.expectation) {
        (Verdict::AsExpected, AckExpectation::AllSurvive) => "ok: acks survive",
        (Verdict::AsExpected, _) if c.trials_lost > 0 => "ok: acks may be lost (lost here)",
        (Verdict::AsExpected, _) => "ok: acks not guaranteed",
        _ => "UNEXPECTED",
    }
}

impl LifecycleSection {
    /// The section's part of the human summary: a table per model, the
    /// first explanation of each cell that lost acks, then the unexpected
    /// cells with their failures and replay lines.
    pub fn human_summary(&self) -> String {
        let mut out = String::new();
        let c = &self.config;
        for model in models_of(&self.cells) {
            let how = match model {
                PersistenceModel::ProcessCrash => "process crashes of the running writer".to_string(),
                _ => format!("simulated power loss, namespace model {} (`run --crash power-loss`)", c.fs_model),
            };
            let _ = writeln!(
                out,
                "\nlifecycle rows under {model}: {how}; {} acks per writer run; counts are trials",
                c.acks
            );
            let _ = writeln!(
                out,
                "{:<20} {:<10} {:>6} {:>6} {:>8} {:>6} {:>8} {:>7}  verdict",
                "kind", "crash", "trials", "acks", "w/ acks", "lost", "corrupt", "states"
            );
            let cells: Vec<&LifecycleCell> = self.cells.iter().filter(|x| x.model == model).collect();
            for x in &cells {
                let _ = writeln!(
                    out,
                    "{:<20} {:<10} {:>6} {:>6} {:>8} {:>6} {:>8} {:>7}  {}",
                    x.kind.name(),
                    x.crash.name(),
                    x.trials,
                    x.acks_seen,
                    x.trials_with_acks,
                    x.trials_lost,
                    x.trials_corrupt,
                    x.states_checked.map_or("-".to_string(), |n| n.to_string()),
                    verdict_text(x)
                );
            }
            let lost: Vec<&&LifecycleCell> =
                cells.iter().filter(|x| x.verdict == Verdict::AsExpected && !x.failures.is_empty()).collect();
            if !lost.is_empty() {
                let _ = writeln!(out, "why acks were lost under {model} (the first trial per cell):");
                for x in lost {
                    let f = &x.failures[0];
                    let _ = writeln!(out, "  {} trial {}: {}", x.kind, f.trial, f.details.last().map_or("", |d| d));
                    let _ = writeln!(out, "    replay: {}", f.replay);
                }
            }
        }
        let s = &self.summary;
        let _ = writeln!(
            out,
            "lifecycle: {} cells, {} trials: {} as expected, {} unexpected",
            s.cells, s.trials, s.as_expected, s.unexpected
        );
        if let Some(why) = &c.power_loss_skipped {
            let _ = writeln!(out, "lifecycle: power-loss cells skipped: the durability oracle cannot run here ({why})");
        }
        for x in self.cells.iter().filter(|x| x.verdict != Verdict::AsExpected) {
            let failures =
                x.failures.iter().map(|f| (format!("trial {} ({}):", f.trial, f.found), &f.details[..], &f.replay[..]));
            let title = format!("lifecycle {}", x.key_text());
            write_unexpected_cell(&mut out, &title, x.verdict_reason.as_deref().unwrap_or(""), failures, &x.replay);
        }
        out
    }
}

#[cfg(test)]
mod skipped_tests {
    use super::test_support::{cell, section};
    use super::*;

    #[test]
    fn a_summary_says_when_the_power_loss_cells_were_skipped_and_why() {
        let mut s = section(vec![cell(LifecycleKind::ReplaceDirsync, CrashKind::Sigkill, 4, 0)]);
        assert!(!s.human_summary().contains("skipped"));
        s.config.power_loss = false;
        s.config.power_loss_skipped = Some("cannot ptrace: Operation not permitted".into());
        let text = s.human_summary();
        assert!(
            text.contains("power-loss cells skipped: the durability oracle cannot run here (cannot ptrace"),
            "{text}"
        );
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    /// A section of `cells` under a config listing their kinds.
    pub fn section(cells: Vec<LifecycleCell>) -> LifecycleSection {
        let mut kinds: Vec<LifecycleKind> = cells.iter().map(|c| c.kind).collect();
        kinds.dedup();
        let config = LifecycleConfig {
            kinds,
            trials: 4,
            acks: 8,
            crashes: vec![CrashKind::Sigkill],
            power_loss: true,
            fs_model: "posix".into(),
            power_loss_skipped: None,
        };
        LifecycleSection { config, summary: LifecycleSummary::of(&cells), cells }
    }

    /// A cell with `trials` trials, `lost` of them losing an ack.
    pub fn cell(kind: LifecycleKind, crash: CrashKind, trials: u64, lost: u64) -> LifecycleCell {
        let model =
            if crash == CrashKind::PowerLoss { PersistenceModel::PowerLoss } else { PersistenceModel::ProcessCrash };
        let mut c = empty_cell(kind, crash, model, format!("crashlab run ... --crash {crash}"));
        c.trials = trials;
        c.trials_with_acks = trials;
        c.acks_seen = 8 * trials;
        c.trials_lost = lost;
        c.failures = (0..lost.min(MAX_FAILURES as u64))
            .map(|t| LifecycleFailure {
                trial: t as u32,
                found: "lost".into(),
                details: vec!["lost: acked version 3 is lost: state holds version 2".into()],
                replay: format!("crashlab replay ... --trial {t}"),
            })
            .collect();
        finish(c)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::cell;
    use super::*;

    #[test]
    fn a_lost_ack_is_unexpected_only_where_every_ack_must_survive() {
        let ok = cell(LifecycleKind::ReplaceNoDirsync, CrashKind::PowerLoss, 4, 2);
        assert_eq!((ok.expectation, ok.verdict), (AckExpectation::MayBeLost, Verdict::AsExpected));
        assert!(ok.replay.ends_with("--trial 0"), "the first failure replays the cell: {}", ok.replay);
        let none = cell(LifecycleKind::ReplaceNoDirsync, CrashKind::PowerLoss, 4, 0);
        assert_eq!(none.verdict, Verdict::AsExpected, "may lose: no loss is allowed too");
        let bad = cell(LifecycleKind::ReplaceDirsync, CrashKind::PowerLoss, 4, 1);
        assert_eq!(bad.verdict, Verdict::Unexpected);
        assert!(bad.verdict_reason.unwrap().contains("1 of 4 trials lost an acked op"));
        let bad = cell(LifecycleKind::CreateNoDirsync, CrashKind::Sigkill, 4, 1);
        assert_eq!(bad.verdict, Verdict::Unexpected, "a process crash loses nothing, directory fsync or not");
    }

    #[test]
    fn corruption_is_unexpected_in_every_kind() {
        for kind in LifecycleKind::ALL {
            let mut c = cell(kind, CrashKind::PowerLoss, 4, 0);
            c.trials_corrupt = 1;
            let (v, reason) = judge_lifecycle(&c);
            assert_eq!(v, Verdict::Unexpected, "{kind}");
            assert!(reason.unwrap().contains("no write produced"));
        }
    }

    #[test]
    fn a_reason_is_lost_only_when_every_reason_of_the_trial_is() {
        assert_eq!(classify(&["lost: x", "lost: y"]), "lost");
        assert_eq!(classify(&["lost: x", "corrupt: y"]), "corrupt");
        assert_eq!(classify(&["something else"]), "corrupt", "an unknown reason is never taken for a mere loss");
    }

    #[test]
    fn the_summary_prints_one_table_per_model_and_the_unexpected_cells_with_their_replays() {
        let kind = LifecycleKind::ReplaceNoDirsync;
        let mut bad = cell(LifecycleKind::CreateDirsync, CrashKind::PowerLoss, 4, 1);
        bad.failures[0].replay = "crashlab replay BAD".into();
        let s = test_support::section(vec![
            cell(kind, CrashKind::Sigkill, 4, 0),
            cell(kind, CrashKind::PowerLoss, 4, 2),
            bad,
        ]);
        let text = s.human_summary();
        let process = text.find("lifecycle rows under process-crash").expect("a process-crash table");
        let power = text.find("lifecycle rows under power-loss").expect("a power-loss table");
        assert!(process < power, "{text}");
        let tables = &text[process..text.find("lifecycle: 3 cells").expect("the counts")];
        let process_table = &tables[..power - process];
        assert!(process_table.contains("sigkill") && !process_table.contains("power-loss   "), "{text}");
        assert!(text.contains("ok: acks may be lost (lost here)"), "{text}");
        assert!(text.contains("lifecycle create-dirsync power-loss [power-loss]: 1 of 4 trials lost"), "{text}");
        assert!(text.contains("replay: crashlab replay BAD"), "{text}");
    }

    #[test]
    fn shards_sum_and_keep_the_first_failures_in_shard_order() {
        let kind = LifecycleKind::CreateNoDirsync;
        let (a, b) = (cell(kind, CrashKind::PowerLoss, 2, 0), cell(kind, CrashKind::PowerLoss, 2, 2));
        let m = merge_lifecycle_cell(&[&a, &b]);
        assert_eq!((m.trials, m.trials_lost, m.acks_seen, m.failures.len()), (4, 2, 32, 2));
        assert_eq!(m.replay, b.failures[0].replay);
        assert_eq!(m.verdict, Verdict::AsExpected);
        let m = merge_lifecycle_cell(&[&a, &a]);
        assert_eq!(m.replay, a.replay, "no failure: the cell's run line");
    }
}
