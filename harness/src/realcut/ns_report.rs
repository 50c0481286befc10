//! The soundness report's namespace section (`--workloads namespace`, schema
//! 1.4): per filesystem and workload, how many real cuts were judged, how
//! many left a directory the posix namespace model forbids, and for every
//! operation the model says may be lost, in how many cuts it was kept or
//! lost: the evidence table per-filesystem models cite.
//!
//! Architecture Invariant: pure; deterministic order (filesystems and
//! workloads in config order, operations in the order of their first cut).

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::campaign::SoundnessConfig;
use super::ns_judge::{NsOpKind, UnitOutcome};
use super::ns_workload::{NsCampaignConfig, NsPlannedCut, NsWorkloadId};
use super::protocol::NsCutRecord;
use crate::crash::CrashPoint;
use crate::summary_text::write_failure;

/// At most this many violations are detailed per filesystem.
pub const MAX_NS_VIOLATIONS: usize = 10;

/// The namespace section of a soundness report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NamespaceReport {
    pub config: NsCampaignConfig,
    /// The model every post-cut directory was judged by.
    pub model: String,
    pub filesystems: Vec<FsNamespace>,
}

/// One filesystem's namespace cuts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FsNamespace {
    pub fs: String,
    /// How the power was cut (`shutdown`, `raw-copy`), and in words.
    pub cut: String,
    pub cut_method: String,
    pub cuts: u64,
    /// Cuts whose directory the model forbids: model soundness violations.
    pub violations: u64,
    pub workloads: Vec<NsWorkloadReport>,
    /// The units of every workload by kind of operation and what was synced
    /// after it.
    pub operations: Vec<NsOperationCount>,
    /// The first violations (at most [`MAX_NS_VIOLATIONS`]).
    pub violation_details: Vec<NsViolationReport>,
    /// Mean milliseconds from the directory's creation to the post-cut read.
    pub mean_cut_ms: f64,
    /// Per kind of operation, in how many post-cut directories the model
    /// let one be lost and in how many the cut kept (lost) one. Added in
    /// 1.5 of the soundness schema.
    #[serde(default, skip_serializing_if = "super::coverage::Coverage::is_empty")]
    pub coverage: super::coverage::Coverage,
}

/// One workload on one filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NsWorkloadReport {
    pub workload: NsWorkloadId,
    pub cuts: u64,
    /// Of those, cuts right after the workload's last step.
    pub cuts_after_last_step: u64,
    pub violations: u64,
    /// Cuts in which a file got the inode number of an earlier file of the
    /// same cut (`reuse-name`).
    pub cuts_reusing_an_inode: u64,
    /// Every operation that was a unit in some cut, and what the cuts did
    /// with it.
    pub units: Vec<NsUnitCount>,
}

/// One operation of a workload the model says may be lost, over the cuts
/// in which it was a unit (its step ran and no sync made it durable).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NsUnitCount {
    /// `rename("state.tmp" -> "state") at step 5`.
    pub operation: String,
    pub kind: NsOpKind,
    /// The POSIX rule it missed.
    pub rule: String,
    /// What the workload synced after it before the cut.
    pub context: String,
    pub cuts: u64,
    /// Cuts whose directory fits only states that kept it.
    pub kept: u64,
    /// Cuts whose directory fits only states that lost it.
    pub lost: u64,
    /// Cuts whose directory fits states either way.
    pub undetermined: u64,
}

/// Units of one kind and context, over all workloads of a filesystem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NsOperationCount {
    pub kind: NsOpKind,
    pub context: String,
    pub cuts: u64,
    pub kept: u64,
    pub lost: u64,
    pub undetermined: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NsViolationReport {
    pub workload: NsWorkloadId,
    pub point: CrashPoint,
    pub detail: String,
    /// Where the steps, trace, directory listing and post-cut image were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<String>,
    /// Reruns this one cut.
    pub rerun: String,
}

fn count(kept: &mut u64, lost: &mut u64, undetermined: &mut u64, o: UnitOutcome) {
    match o {
        UnitOutcome::Kept => *kept += 1,
        UnitOutcome::Lost => *lost += 1,
        UnitOutcome::Undetermined => *undetermined += 1,
    }
}

/// The command that reruns one namespace cut.
pub fn ns_rerun_line(cfg: &SoundnessConfig, c: &NsPlannedCut) -> String {
    let mut s = format!(
        "crashlab soundness --backend {} --fs {} --workloads namespace --ns-workload {} --point {} --ns-cuts 1",
        cfg.backend, c.fs, c.workload, c.point
    );
    if let Some(cut) = cfg.cut {
        let _ = write!(s, " --cut {cut}");
    }
    s
}

/// The namespace section from the cuts' records (in plan order).
pub fn aggregate_namespace(
    cfg: &SoundnessConfig,
    ns: &NsCampaignConfig,
    cuts: &[(NsPlannedCut, NsCutRecord)],
) -> NamespaceReport {
    let mut filesystems = Vec::new();
    for &fs in &cfg.filesystems {
        let mine: Vec<&(NsPlannedCut, NsCutRecord)> = cuts.iter().filter(|(p, _)| p.fs == fs).collect();
        let Some((_, first)) = mine.first() else { continue };
        let mut f = FsNamespace {
            fs: fs.to_string(),
            cut: first.cut.to_string(),
            cut_method: first.cut.describe().to_string(),
            cuts: 0,
            violations: 0,
            workloads: Vec::new(),
            operations: Vec::new(),
            violation_details: Vec::new(),
            mean_cut_ms: 0.0,
            coverage: super::coverage::Coverage::default(),
        };
        let mut total_ns = 0u128;
        for &workload in &ns.workloads {
            let n = workload.script().steps.len();
            let mut w = NsWorkloadReport {
                workload,
                cuts: 0,
                cuts_after_last_step: 0,
                violations: 0,
                cuts_reusing_an_inode: 0,
                units: Vec::new(),
            };
            for (p, r) in mine.iter().filter(|(p, _)| p.workload == workload) {
                f.coverage.add_directory(&r.judgement);
                w.cuts += 1;
                total_ns += r.cut_ns as u128;
                if p.point == CrashPoint::BeforeOp(n) {
                    w.cuts_after_last_step += 1;
                }
                if r.reused_an_inode() {
                    w.cuts_reusing_an_inode += 1;
                }
                if let Some(detail) = &r.judgement.forbidden {
                    w.violations += 1;
                    if f.violation_details.len() < MAX_NS_VIOLATIONS {
                        f.violation_details.push(NsViolationReport {
                            workload,
                            point: p.point,
                            detail: detail.clone(),
                            kept: r.kept.as_ref().map(|k| k.display().to_string()),
                            rerun: ns_rerun_line(cfg, p),
                        });
                    }
                    continue;
                }
                for u in &r.judgement.units {
                    let i = match w.units.iter().position(|c| c.operation == u.operation && c.context == u.context) {
                        Some(i) => i,
                        None => {
                            w.units.push(NsUnitCount {
                                operation: u.operation.clone(),
                                kind: u.kind,
                                rule: u.rule.clone(),
                                context: u.context.clone(),
                                cuts: 0,
                                kept: 0,
                                lost: 0,
                                undetermined: 0,
                            });
                            w.units.len() - 1
                        }
                    };
                    let c = &mut w.units[i];
                    c.cuts += 1;
                    count(&mut c.kept, &mut c.lost, &mut c.undetermined, u.outcome);
                    let j = match f.operations.iter().position(|o| o.kind == u.kind && o.context == u.context) {
                        Some(j) => j,
                        None => {
                            f.operations.push(NsOperationCount {
                                kind: u.kind,
                                context: u.context.clone(),
                                cuts: 0,
                                kept: 0,
                                lost: 0,
                                undetermined: 0,
                            });
                            f.operations.len() - 1
                        }
                    };
                    let o = &mut f.operations[j];
                    o.cuts += 1;
                    count(&mut o.kept, &mut o.lost, &mut o.undetermined, u.outcome);
                }
            }
            if w.cuts > 0 {
                f.cuts += w.cuts;
                f.violations += w.violations;
                f.workloads.push(w);
            }
        }
        f.operations.sort_by(|a, b| (a.kind, &a.context).cmp(&(b.kind, &b.context)));
        f.mean_cut_ms = if f.cuts == 0 { 0.0 } else { total_ns as f64 / f.cuts as f64 / 1e6 };
        filesystems.push(f);
    }
    NamespaceReport {
        config: ns.clone(),
        model: "posix (crashlab::namespace, FsModel::Posix): entries durable after a directory fsync, sizes after a \
                file sync; each name identified by its content"
            .into(),
        filesystems,
    }
}

impl NamespaceReport {
    pub fn cuts(&self) -> u64 {
        self.filesystems.iter().map(|f| f.cuts).sum()
    }

    pub fn violations(&self) -> u64 {
        self.filesystems.iter().map(|f| f.violations).sum()
    }

    /// The tables a person reads.
    pub fn human_summary(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "namespace: the posix namespace model vs real power cuts ({} cut(s) after each workload's last step, one \
             at each earlier step boundary)",
            self.config.cuts_after_last_step
        );
        let _ = writeln!(
            s,
            "{:<6} {:<20} {:>4} {:>4}  {:<88} {:>5} {:>5} {:>6}",
            "fs",
            "workload",
            "cuts",
            "viol",
            "operation the model may lose (what was synced after it)",
            "kept",
            "lost",
            "undet."
        );
        for f in &self.filesystems {
            for w in &f.workloads {
                let head = format!("{:<6} {:<20} {:>4} {:>4}", f.fs, w.workload.to_string(), w.cuts, w.violations);
                if w.units.is_empty() {
                    let _ = writeln!(s, "{head}  (no operation the model may lose: every one was synced)");
                }
                for (i, u) in w.units.iter().enumerate() {
                    let lead = if i == 0 { head.clone() } else { " ".repeat(head.len()) };
                    let what = format!("{} ({})", u.operation, u.context);
                    let _ = writeln!(s, "{lead}  {what:<88} {:>5} {:>5} {:>6}", u.kept, u.lost, u.undetermined);
                }
                if w.cuts_reusing_an_inode > 0 {
                    let _ = writeln!(
                        s,
                        "{:<33}  (in {} of {} cuts a file got the inode number of an earlier one)",
                        "", w.cuts_reusing_an_inode, w.cuts
                    );
                }
            }
        }
        let _ = writeln!(s, "per kind of operation:");
        let _ = writeln!(
            s,
            "{:<6} {:<7} {:<60} {:>5} {:>5} {:>6}",
            "fs", "kind", "what was synced after it", "kept", "lost", "undet."
        );
        for f in &self.filesystems {
            for o in &f.operations {
                let _ = writeln!(
                    s,
                    "{:<6} {:<7} {:<60} {:>5} {:>5} {:>6}",
                    f.fs,
                    o.kind.name(),
                    o.context,
                    o.kept,
                    o.lost,
                    o.undetermined
                );
            }
        }
        for f in &self.filesystems {
            for v in &f.violation_details {
                let headline = format!("NAMESPACE VIOLATION on {} ({} at {}): {}", f.fs, v.workload, v.point, v.detail);
                let details: Vec<String> = v.kept.iter().map(|k| format!("evidence kept in {k}")).collect();
                write_failure(&mut s, "", &headline, &details, "rerun", &v.rerun);
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::realcut::campaign::PageCacheStart;
    use crate::realcut::ns_judge::{NsJudgement, NsUnitOutcome};
    use crate::vocab::{Backend, CutMethod, FsKind};

    fn cfg() -> SoundnessConfig {
        SoundnessConfig {
            backend: Backend::Loopcut,
            seed: 1,
            filesystems: vec![FsKind::Ext4, FsKind::Xfs],
            cut: None,
            trials: 1,
            scenarios: vec![],
            point: None,
            file_size: 65536,
            txns: 12,
            writers_per_cut: 4,
            page_cache: Some(PageCacheStart::Read),
            writeback: crate::vocab::Writeback::None,
        }
    }

    fn rename(outcome: UnitOutcome) -> NsUnitOutcome {
        NsUnitOutcome {
            operation: r#"rename("state.tmp" -> "state") at step 5"#.into(),
            kind: NsOpKind::Rename,
            rule: r#"the directory "." was not fsynced after it"#.into(),
            context: "nothing synced after it".into(),
            outcome,
        }
    }

    fn record(point: usize, units: Vec<NsUnitOutcome>, forbidden: Option<&str>) -> (NsPlannedCut, NsCutRecord) {
        let workload: NsWorkloadId = "rename-over".parse().unwrap();
        let point = CrashPoint::BeforeOp(point);
        let judgement =
            NsJudgement { observed: "(empty)".into(), states: 3, forbidden: forbidden.map(str::to_string), units };
        let rec = NsCutRecord {
            fs: FsKind::Ext4,
            cut: CutMethod::Shutdown,
            workload,
            point,
            judgement,
            observed: None,
            inos: vec![(1, 12), (2, 13)],
            kept: None,
            cut_ns: 2_000_000,
        };
        (NsPlannedCut { fs: FsKind::Ext4, workload, point }, rec)
    }

    #[test]
    fn units_are_counted_per_operation_and_context_and_violations_carry_a_rerun_line() {
        let ns =
            NsCampaignConfig { workloads: vec!["rename-over".parse().unwrap()], cuts_after_last_step: 3, point: None };
        let cuts = vec![
            record(4, vec![], None),
            record(5, vec![rename(UnitOutcome::Lost)], None),
            record(5, vec![rename(UnitOutcome::Lost)], None),
            record(5, vec![], Some("the post-cut directory holds (empty); ...")),
        ];
        let r = aggregate_namespace(&cfg(), &ns, &cuts);
        assert_eq!(r.filesystems.len(), 1, "xfs had no cut");
        let f = &r.filesystems[0];
        assert_eq!((f.cuts, f.violations, r.cuts(), r.violations()), (4, 1, 4, 1));
        let w = &f.workloads[0];
        assert_eq!((w.cuts, w.cuts_after_last_step, w.violations, w.cuts_reusing_an_inode), (4, 3, 1, 0));
        assert_eq!(w.units.len(), 1);
        assert_eq!((w.units[0].cuts, w.units[0].kept, w.units[0].lost), (2, 0, 2));
        assert_eq!(f.operations.len(), 1);
        assert_eq!((f.operations[0].kind, f.operations[0].lost), (NsOpKind::Rename, 2));
        assert_eq!(
            f.violation_details[0].rerun,
            "crashlab soundness --backend loopcut --fs ext4 --workloads namespace --ns-workload rename-over --point \
             before:5 --ns-cuts 1"
        );
        assert!((f.mean_cut_ms - 2.0).abs() < 1e-9);
        let text = r.human_summary();
        assert!(text.contains(r#"rename("state.tmp" -> "state") at step 5 (nothing synced after it)"#), "{text}");
        assert!(text.contains("NAMESPACE VIOLATION on ext4 (rename-over at before:5)"), "{text}");
    }
}
