//! The soundness report: per filesystem, how many real power cuts were
//! judged, how many left a file the simulated model forbids (violations),
//! and how often the cut kept more than the model guarantees.
//!
//! Architecture Invariant: pure; deterministic order (filesystems and
//! scenarios in config order).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::campaign::{PlannedTrial, SoundnessConfig, WorkloadId};
use super::coverage::{coverage_text, Coverage, CoverageRow};
use super::judge::AckCounts;
use super::protocol::RealTrialRecord;
use crate::summary_text::write_failure;
use crate::vocab::{Backend, CutMethod, FsKind};

/// Bumped in the major part when a reader of the old format would misread
/// the new one; in the minor part when fields are only added.
pub const SOUNDNESS_SCHEMA_VERSION: &str = "1.5";

/// At most this many violations are detailed per filesystem.
pub const MAX_VIOLATIONS: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SoundnessReport {
    pub schema_version: String,
    pub crashlab_version: String,
    pub backend: Backend,
    pub environment: SoundnessEnvironment,
    pub seed: u64,
    pub config: SoundnessConfig,
    pub duration_ms: u64,
    pub filesystems: Vec<FsSoundness>,
    /// The namespace workloads' cuts (`--workloads namespace`), judged by
    /// the posix namespace model. Added in 1.4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<super::ns_report::NamespaceReport>,
    pub summary: SoundnessSummary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SoundnessEnvironment {
    /// The kernel that did the cuts (the guest's, for the vm backend).
    pub kernel_release: String,
    pub page_size: u64,
    /// Where images lived, and its filesystem.
    pub work_dir: String,
    pub work_dir_fs: String,
    /// The model each file was checked against.
    pub model: String,
    /// What the backend's "disk" does with acknowledged writes.
    pub disk: String,
    /// vm: the accelerator qemu ran the guests with and why (`kvm (...)`,
    /// `tcg (...)`). Timing only, never part of a verdict. Added in 1.2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accelerator: Option<String>,
}

/// One filesystem's campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FsSoundness {
    pub fs: String,
    pub backend: Backend,
    pub kernel_release: String,
    /// How the power was cut (`shutdown`, `raw-copy`, `vm-sigkill`), in words.
    pub cut: String,
    pub cut_method: String,
    pub trials: u64,
    /// Trials whose file the model forbids: model soundness violations.
    pub violations: u64,
    /// Trials where the model's ack judge and the direct byte check
    /// disagreed (a harness bug; the run fails too).
    pub judge_mismatches: u64,
    pub kept_more: KeptMore,
    /// Completed acks over all trials and what became of them for real.
    pub acks: AckCounts,
    pub scenarios: Vec<ScenarioSoundness>,
    /// The first violations (at most [`MAX_VIOLATIONS`]).
    pub violation_details: Vec<ViolationReport>,
    /// Mean milliseconds from fork to the file read back after the cut.
    pub mean_trial_ms: f64,
    /// vm backend on a disk with a volatile write cache (`--disk
    /// volatile-*`): the disk model, and what its cuts and states showed.
    /// Each checked disk state is one of `trials`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volatile_disk: Option<super::volatile_report::VolatileDiskReport>,
    /// Per model rule, in how many post-cut files the model allowed its
    /// case and in how many the real cut showed it. Added in 1.5 (empty
    /// when read from an older report).
    #[serde(default, skip_serializing_if = "Coverage::is_empty")]
    pub coverage: Coverage,
}

impl FsSoundness {
    /// A filesystem's section before any trial is counted.
    pub fn empty(fs: FsKind, backend: Backend, kernel_release: &str, cut: CutMethod) -> FsSoundness {
        FsSoundness {
            fs: fs.to_string(),
            backend,
            kernel_release: kernel_release.to_string(),
            cut: cut.to_string(),
            cut_method: cut.describe().to_string(),
            trials: 0,
            violations: 0,
            judge_mismatches: 0,
            kept_more: KeptMore::default(),
            acks: AckCounts::default(),
            scenarios: Vec::new(),
            violation_details: Vec::new(),
            mean_trial_ms: 0.0,
            volatile_disk: None,
            coverage: Coverage::default(),
        }
    }
}

/// How conservative the model was: real cuts keeping unsynced data.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeptMore {
    /// Trials with at least one page the model lets vary (unsynced data).
    pub trials_with_unsynced_pages: u64,
    /// Of those, trials in which some unsynced page survived: the page held
    /// a version newer than its durable floor.
    pub trials_kept_more: u64,
    /// Of those, trials in which every unsynced page held its newest version
    /// (everything written back, e.g. btrfs flushing the whole file on one
    /// msync, or one large folio holding the whole file).
    pub trials_all_newest: u64,
    /// Pages the model let vary, over all trials, and how many were kept.
    pub unsynced_pages: u64,
    pub unsynced_pages_kept: u64,
    /// `trials_kept_more / trials_with_unsynced_pages` (0 when none).
    pub fraction_trials_kept_more: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScenarioSoundness {
    pub scenario: WorkloadId,
    pub trials: u64,
    pub violations: u64,
    pub trials_with_unsynced_pages: u64,
    pub trials_kept_more: u64,
    pub acks: AckCounts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ViolationReport {
    pub scenario: WorkloadId,
    pub point: crate::crash::CrashPoint,
    pub detail: String,
    /// Where the journal/facts, the file and the post-cut image were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
    /// Reruns this one trial.
    pub rerun: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SoundnessSummary {
    pub trials: u64,
    pub violations: u64,
    pub judge_mismatches: u64,
    /// With `--workloads namespace`: the namespace cuts judged and their
    /// violations. Added in 1.4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<NamespaceSummary>,
    /// No violation (of either model) and no mismatch: the models held
    /// against every real cut.
    pub sound: bool,
}

/// Aggregate trial records (in plan order) into the report's per-filesystem parts.
pub fn aggregate(
    cfg: &SoundnessConfig,
    kernel_release: &str,
    trials: &[(PlannedTrial, RealTrialRecord)],
) -> (Vec<FsSoundness>, SoundnessSummary) {
    let mut out = Vec::new();
    for &fs in &cfg.filesystems {
        let mine: Vec<&(PlannedTrial, RealTrialRecord)> = trials.iter().filter(|(p, _)| p.fs == fs).collect();
        if mine.is_empty() {
            continue;
        }
        let mut f = FsSoundness::empty(fs, cfg.backend, kernel_release, mine[0].1.cut);
        let mut total_ns = 0u128;
        for &scenario in &cfg.scenarios {
            let mut s = ScenarioSoundness {
                scenario,
                trials: 0,
                violations: 0,
                trials_with_unsynced_pages: 0,
                trials_kept_more: 0,
                acks: AckCounts::default(),
            };
            for (p, r) in mine.iter().filter(|(p, _)| p.scenario == scenario) {
                let j = &r.judgement;
                f.coverage.add_file(j);
                s.trials += 1;
                total_ns += r.trial_ns as u128;
                s.acks.add(&j.acks);
                if let Some(m) = &j.judge_mismatch {
                    f.judge_mismatches += 1;
                    if f.violation_details.len() < MAX_VIOLATIONS {
                        f.violation_details.push(ViolationReport {
                            scenario,
                            point: p.point,
                            detail: format!("harness bug, the ack judges disagree: {m}"),
                            kept: r.kept.as_ref().map(|k| k.display().to_string()),
                            rerun: rerun_line(cfg, p),
                        });
                    }
                }
                if let Some(forbidden) = &j.forbidden {
                    s.violations += 1;
                    if f.violation_details.len() < MAX_VIOLATIONS {
                        f.violation_details.push(ViolationReport {
                            scenario,
                            point: p.point,
                            detail: forbidden.to_string(),
                            kept: r.kept.as_ref().map(|k| k.display().to_string()),
                            rerun: rerun_line(cfg, p),
                        });
                    }
                    continue;
                }
                if j.dirty_units > 0 {
                    s.trials_with_unsynced_pages += 1;
                    f.kept_more.trials_with_unsynced_pages += 1;
                    f.kept_more.unsynced_pages += j.dirty_units;
                    f.kept_more.unsynced_pages_kept += j.units_beyond_floor;
                    if j.kept_more() {
                        s.trials_kept_more += 1;
                        f.kept_more.trials_kept_more += 1;
                    }
                    if j.units_at_newest == j.dirty_units {
                        f.kept_more.trials_all_newest += 1;
                    }
                }
            }
            if s.trials > 0 {
                f.trials += s.trials;
                f.violations += s.violations;
                f.acks.add(&s.acks);
                f.scenarios.push(s);
            }
        }
        let k = &mut f.kept_more;
        k.fraction_trials_kept_more = if k.trials_with_unsynced_pages == 0 {
            0.0
        } else {
            k.trials_kept_more as f64 / k.trials_with_unsynced_pages as f64
        };
        f.mean_trial_ms = if f.trials == 0 { 0.0 } else { total_ns as f64 / f.trials as f64 / 1e6 };
        out.push(f);
    }
    let summary = SoundnessSummary {
        trials: out.iter().map(|f| f.trials).sum(),
        violations: out.iter().map(|f| f.violations).sum(),
        judge_mismatches: out.iter().map(|f| f.judge_mismatches).sum(),
        namespace: None,
        sound: out.iter().all(|f| f.violations == 0 && f.judge_mismatches == 0),
    };
    (out, summary)
}

/// The command that reruns one trial of a campaign.
pub fn rerun_line(cfg: &SoundnessConfig, p: &PlannedTrial) -> String {
    let mut s = format!(
        "crashlab soundness --backend {} --fs {} --scenario {} --point {} --seed {} --size {} --txns {} --trials 1",
        cfg.backend, p.fs, p.scenario, p.point, cfg.seed, cfg.file_size, cfg.txns
    );
    if let Some(c) = cfg.cut {
        let _ = write!(s, " --cut {c}");
    }
    if let Some(p) = cfg.page_cache.filter(|&p| p != super::campaign::PageCacheStart::default()) {
        let _ = write!(s, " --page-cache {p}");
    }
    if !cfg.writeback.is_none() {
        let _ = write!(s, " --writeback {}", cfg.writeback);
    }
    s
}

/// The namespace cuts of a campaign in two numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NamespaceSummary {
    pub cuts: u64,
    /// Cuts whose directory the posix namespace model forbids.
    pub violations: u64,
}

impl SoundnessSummary {
    /// Count the namespace section in (`sound` turns false on a violation).
    pub fn add_namespace(&mut self, ns: &super::ns_report::NamespaceReport) {
        self.namespace = Some(NamespaceSummary { cuts: ns.cuts(), violations: ns.violations() });
        self.sound &= ns.violations() == 0;
    }
}

impl SoundnessReport {
    pub fn is_sound(&self) -> bool {
        self.summary.sound
    }

    /// The table a person reads.
    pub fn human_summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "model soundness: simulated power-loss model vs real power cuts ({} backend, kernel {}, seed {})",
            self.backend, self.environment.kernel_release, self.seed
        );
        let _ = writeln!(s, "disk: {}", self.environment.disk);
        if !self.filesystems.is_empty() {
            self.write_page_table(&mut s);
        }
        for f in &self.filesystems {
            for v in &f.violation_details {
                let headline = format!("VIOLATION on {} ({} at {}): {}", f.fs, v.scenario, v.point, v.detail);
                let details: Vec<String> = v.kept.iter().map(|k| format!("evidence kept in {k}")).collect();
                write_failure(&mut s, "", &headline, &details, "rerun", &v.rerun);
            }
            if f.judge_mismatches > 0 {
                let _ =
                    writeln!(s, "HARNESS BUG on {}: {} trials where the judges disagreed", f.fs, f.judge_mismatches);
            }
        }
        if let Some(ns) = &self.namespace {
            s.push_str(&ns.human_summary());
        }
        s.push_str(&coverage_text(&self.coverage_rows()));
        s
    }

    /// Every filesystem's coverage: the page writers', then the namespace
    /// workloads'.
    pub fn coverage_rows(&self) -> Vec<CoverageRow<'_>> {
        let pages = self.filesystems.iter().map(|f| CoverageRow { fs: &f.fs, cut: &f.cut, coverage: &f.coverage });
        let ns = self.namespace.iter().flat_map(|n| &n.filesystems);
        pages.chain(ns.map(|f| CoverageRow { fs: &f.fs, cut: &f.cut, coverage: &f.coverage })).collect()
    }

    /// The page writers' table: per filesystem, trials, violations and how
    /// much the cuts kept beyond the model's floor.
    fn write_page_table(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "{:<6} {:<10} {:>6} {:>10} {:>9} {:>15} {:>10} {:>17} {:>9}",
            "fs", "cut", "trials", "violations", "unsynced", "kept more", "all newest", "acks ok/completed", "ms/trial"
        );
        for f in &self.filesystems {
            let k = &f.kept_more;
            let _ = writeln!(
                s,
                "{:<6} {:<10} {:>6} {:>10} {:>9} {:>15} {:>10} {:>17} {:>9.1}",
                f.fs,
                f.cut,
                f.trials,
                f.violations,
                k.trials_with_unsynced_pages,
                format!("{} ({:.0}%)", k.trials_kept_more, 100.0 * k.fraction_trials_kept_more),
                k.trials_all_newest,
                format!("{}/{}", f.acks.survived, f.acks.completed),
                f.mean_trial_ms
            );
        }
        let _ = writeln!(
            s,
            "unsynced = trials with pages the model lets vary; kept more = of those, trials where an unsynced page \
             survived; all newest = every unsynced page survived"
        );
        if !self.config.writeback.is_none() {
            let _ = writeln!(s, "writeback pressure while the writers ran: {} (--writeback)", self.config.writeback);
        }
        if let Some(p) = self.config.page_cache {
            let _ = writeln!(
                s,
                "page cache at the start of each writer: {p} (--page-cache; `written` gives ext4/xfs large folios, \
                 which a ranged msync writes back whole)"
            );
        }
    }
}
