//! A cut on a disk with a volatile write cache: the pristine image served
//! from a [`VolatileDisk`] over NBD, the guest killed, then each sampled
//! disk state materialized, fsck'd and judged; the cuts aggregated into the
//! soundness report and its `volatile_disk` section.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::evidence::{keep_volatile_evidence, StateEvidence};
use super::fsck::{
    explain_unrepairable, ext4_block_groups, read_superblock, write_patches, FsckOutcome, FsckRun,
    EXT4_PRIMARY_SUPERBLOCK,
};
use super::guest::{killed_before, VmGuest, VmSpec};
use super::{qemu_escape, VmDisk, VmOptions, VOLATILE_CUT_METHOD};
use crate::payload::Payloads;
use crate::power_loss::{PowerLossConfig, PowerLossModel};
use crate::process_model::TrialFacts;
use crate::realcut::campaign::{PlannedTrial, SoundnessConfig};
use crate::realcut::judge::{judge_with, RealJudgement};
use crate::realcut::nbd::{NbdServer, NbdStats};
use crate::realcut::protocol::RealTrialRecord;
use crate::realcut::report::{aggregate, rerun_line, FsSoundness, SoundnessSummary};
use crate::realcut::sys::copy_sparse;
use crate::realcut::volatile_disk::{sample_states, state_count, DiskCutMode, VolatileDisk};
use crate::realcut::volatile_report::{CutSummary, DiskStateFinding, VolatileDiskReport, MAX_LISTED};
use crate::realcut::RealcutError;
use crate::scenario::derive_seed;
use crate::spec::WriterSpec;
use crate::vocab::Backend;
use crate::vocab::{CutMethod, FsKind};

/// The volatile disk of a campaign: what a cut may do, states per cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolatileDiskConfig {
    pub mode: DiskCutMode,
    /// At most this many disk states are checked per cut (at least 1).
    pub states_per_cut: usize,
}

/// Where a volatile trial's files go: `SLOT.*` for the socket, console and
/// state images (one guest slot's, reused trial after trial), `EVIDENCE-stateJ`
/// for kept evidence.
#[derive(Debug, Clone, Copy)]
pub struct TrialFiles<'a> {
    pub slot: &'a Path,
    pub evidence: &'a Path,
}

/// One vm trial on the volatile disk: spec index, op boundary, and the seed
/// its random disk states are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolatileVmTrial {
    pub spec: usize,
    pub k: usize,
    pub seed: u64,
}

/// One cut on the volatile disk and its checked states.
#[derive(Debug, Clone)]
pub struct VolatileCut {
    /// What the guest sent the disk.
    pub nbd: NbdStats,
    /// Writes not yet flushed when qemu was killed.
    pub pending_writes: u64,
    /// States the mode allows (saturating).
    pub state_space: u64,
    pub states: Vec<CheckedState>,
}

/// One disk state of a cut, checked.
#[derive(Debug, Clone)]
pub struct CheckedState {
    /// Its text (`reorder kept=w3,w5`).
    pub state: String,
    /// e2fsck fixed more than the journal and the file was still read.
    pub e2fsck_repaired: bool,
    /// `volatile-reorder`, for a file the page-whole model forbids: does the
    /// model with torn sectors ([`PowerLossConfig::tear`] = 512) allow it?
    /// (A diagnosis only: the verdict is the page-whole model's.)
    pub allowed_if_sectors_tear: Option<bool>,
    /// `volatile-torn`, for a file the torn model (the verdict's) allows:
    /// does the page-whole model allow it too? `false` is observed tearing.
    pub page_whole_allows: Option<bool>,
    pub outcome: StateOutcome,
}

#[derive(Debug, Clone)]
pub enum StateOutcome {
    /// The file was read and judged (`trial_ns` includes the boot).
    Judged(Box<RealTrialRecord>),
    /// e2fsck could not repair the filesystem, or no file was left.
    /// `explanation`: the cause, when crashlab can tell (see
    /// [`explain_unrepairable`]).
    Unreadable { detail: String, explanation: Option<String>, kept: Option<PathBuf> },
}

impl VmGuest {
    /// One cut on a disk with a volatile write cache: the pristine image is
    /// served from a [`VolatileDisk`] by an [`NbdServer`] on
    /// `SLOT.nbd.sock`; boot, writer to op `k`, kill; then each sampled disk
    /// state is materialized (`SLOT.state.img`), its journal replayed and its
    /// file judged. The evidence of a state whose file the model forbids, or
    /// whose filesystem cannot be read, is kept in `EVIDENCE-stateJ`.
    pub fn volatile_trial(
        &self,
        vspec: &VmSpec,
        spec: &WriterSpec,
        payloads: &Payloads,
        trial: &VolatileVmTrial,
        disk: &VolatileDiskConfig,
        files: TrialFiles<'_>,
    ) -> Result<VolatileCut, RealcutError> {
        let TrialFiles { slot, evidence } = files;
        let k = trial.k;
        let base = std::fs::read(&vspec.pristine)
            .map_err(RealcutError::sys(format!("cannot read {}", vspec.pristine.display())))?;
        let socket = slot.with_extension("nbd.sock");
        let server = NbdServer::start(&socket, VolatileDisk::new(base))?;
        // cache=writeback: the guest sees a write-back cache, so its block
        // layer sends FLUSH (and FUA, emulated with flushes by virtio-blk).
        let drive =
            format!("file=nbd+unix:///?socket={},format=raw,if=none,id=d0,cache=writeback", qemu_escape(&socket));
        let started = Instant::now();
        let console = slot.with_extension("console.log");
        let what = format!("the NBD disk {}", socket.display());
        let progress = self.boot_and_kill_on(&vspec.initramfs, &drive, &console, &what, Some(k))?;
        // qemu is dead, its connection closed: the disk is as the cut left it.
        let (vdisk, nbd) = server.finish()?;
        let boot_ns = started.elapsed().as_nanos() as u64;
        let journal = progress.journal().map_err(|e| RealcutError::Spec(format!("vm trial before:{k}: {e}")))?;
        let facts = killed_before(k, journal);
        let states = sample_states(&vdisk, disk.mode, disk.states_per_cut, trial.seed);
        let verdict_model = VmDisk::Volatile(disk.mode).verdict_model();
        let image = slot.with_extension("state.img");
        let pristine_groups = read_superblock(&vspec.pristine).ok().and_then(|sb| ext4_block_groups(&sb));
        let mut checked = Vec::with_capacity(states.len());
        for (j, state) in states.iter().enumerate() {
            let t = Instant::now();
            copy_sparse(&vspec.pristine, &image)?;
            write_patches(&image, &vdisk.patches(state)?)?;
            let outcome = self.fsck_and_dump(&image)?;
            let trial_ns = boot_ns + t.elapsed().as_nanos() as u64;
            let ev = StateEvidence {
                dir: PathBuf::from(format!("{}-state{j}", evidence.display())),
                image: &image,
                kernel: &self.assets.kernel_version,
                spec,
                facts: &facts,
                mode: disk.mode,
                state: state.to_string(),
                disk: &vdisk,
                nbd: &nbd,
            };
            let keep = |judgement: Option<&RealJudgement>, observed: Option<&[u8]>, fsck: &FsckRun| {
                keep_volatile_evidence(&ev, judgement, observed, fsck)
                    .map_err(|e| eprintln!("crashlab: cannot keep the evidence of {}: {e}", ev.dir.display()))
                    .ok()
            };
            let mut allowed_if_sectors_tear = None;
            let mut page_whole_allows = None;
            let (e2fsck_repaired, outcome) = match outcome {
                FsckOutcome::File { fsck, bytes } => {
                    let judgement = judge_with(spec, payloads, &facts, &bytes, &verdict_model).map_err(|e| {
                        RealcutError::Spec(format!(
                            "the model cannot judge vm trial before:{k} in disk state {state}: {e}"
                        ))
                    })?;
                    let mut rec = RealTrialRecord {
                        fs: FsKind::Ext4,
                        cut: CutMethod::VmSigkill,
                        facts,
                        judgement,
                        kept: None,
                        trial_ns,
                    };
                    let other_allows = |cfg: PowerLossConfig| model_allows(spec, payloads, &facts, &bytes, &cfg);
                    match disk.mode {
                        DiskCutMode::Reorder if rec.judgement.is_violation() => {
                            let torn = VmDisk::Volatile(DiskCutMode::Torn).verdict_model();
                            allowed_if_sectors_tear = Some(other_allows(torn)?);
                        }
                        // Judged by the torn model: would the page-whole
                        // one have allowed it too? (Observed tearing.)
                        DiskCutMode::Torn if !rec.judgement.is_violation() => {
                            page_whole_allows = Some(other_allows(PowerLossConfig::default())?);
                        }
                        _ => {}
                    }
                    if rec.judgement.is_violation() || rec.judgement.judge_mismatch.is_some() {
                        rec.kept = keep(Some(&rec.judgement), Some(&bytes), &fsck);
                    }
                    (fsck.answered_a_repair_question(), StateOutcome::Judged(Box::new(rec)))
                }
                FsckOutcome::Unrepairable(fsck) => {
                    let detail = format!(
                        "e2fsck -fy could not repair the filesystem (exit {}): {}",
                        fsck.exit.map_or("by signal".into(), |c| c.to_string()),
                        fsck.output_tail()
                    );
                    let (sb_start, sb_end) = EXT4_PRIMARY_SUPERBLOCK;
                    let torn = vdisk.tears_range(state, sb_start, sb_end)?;
                    let explanation = explain_unrepairable(torn, pristine_groups);
                    let kept = keep(None, None, &fsck);
                    (false, StateOutcome::Unreadable { detail, explanation, kept })
                }
                FsckOutcome::NoFile { fsck, detail } => {
                    let detail = format!("after e2fsck -fy (exit {:?}): {detail}", fsck.exit);
                    let kept = keep(None, None, &fsck);
                    (fsck.answered_a_repair_question(), StateOutcome::Unreadable { detail, explanation: None, kept })
                }
            };
            checked.push(CheckedState {
                state: state.to_string(),
                e2fsck_repaired,
                allowed_if_sectors_tear,
                page_whole_allows,
                outcome,
            });
        }
        let _ = std::fs::remove_file(&image);
        Ok(VolatileCut {
            pending_writes: vdisk.pending_writes().len() as u64,
            state_space: state_count(&vdisk, disk.mode),
            nbd,
            states: checked,
        })
    }
}

/// Does the power-loss model configured by `cfg` allow `observed`? (A
/// diagnosis beside the verdict's model.)
fn model_allows(
    spec: &WriterSpec,
    payloads: &Payloads,
    facts: &TrialFacts,
    observed: &[u8],
    cfg: &PowerLossConfig,
) -> Result<bool, RealcutError> {
    let model = PowerLossModel::build(spec, payloads, facts, cfg)
        .map_err(|e| RealcutError::Spec(format!("the power-loss model cannot judge {}: {e}", facts.point)))?;
    Ok(model.allows(observed, observed.len() as u64).is_ok())
}

/// The seed of one trial's random disk states: from the campaign seed and
/// the trial itself, so a rerun (`--scenario S --point P`) draws the same
/// choices.
pub fn volatile_seed(seed: u64, mode: DiskCutMode, t: &PlannedTrial) -> u64 {
    derive_seed(seed, &["volatile-disk", mode.name(), &t.scenario.to_string(), &t.point.to_string()])
}

/// The records of every judged disk state go through [`aggregate`] (each
/// state one trial); the cuts and the findings that are not soundness
/// violations go into the `volatile_disk` section.
pub(super) fn aggregate_volatile(
    cfg: &SoundnessConfig,
    kernel: &str,
    trials: &[PlannedTrial],
    cuts: &[VolatileCut],
    opts: &VmOptions,
) -> (Vec<FsSoundness>, SoundnessSummary) {
    let VmDisk::Volatile(mode) = opts.disk else { unreachable!("a volatile disk") };
    let rerun = |p: &PlannedTrial| rerun_line(cfg, p) + &opts.args();
    let mut r = VolatileDiskReport {
        mode,
        states_per_cut: opts.states_per_cut as u32,
        guest_writeback_centisecs: opts.writeback_centisecs,
        cuts: 0,
        states_checked: 0,
        states_judged: 0,
        states_unreadable: 0,
        cuts_with_pending_writes: 0,
        pending_writes: 0,
        max_pending_writes: 0,
        writes: 0,
        fua_writes: 0,
        flushes: 0,
        cuts_without_flush: 0,
        states_e2fsck_repaired: 0,
        states_torn_observed: (mode == DiskCutMode::Torn).then_some(0),
        violations: Vec::new(),
        unreadable: Vec::new(),
        judge_mismatches: Vec::new(),
        per_cut: Vec::new(),
    };
    let mut records = Vec::new();
    // Evidence directory -> disk state, to name the state in the violation details.
    let mut state_of_kept: Vec<(String, String)> = Vec::new();
    for (p, cut) in trials.iter().zip(cuts) {
        r.cuts += 1;
        r.pending_writes += cut.pending_writes;
        r.max_pending_writes = r.max_pending_writes.max(cut.pending_writes);
        r.cuts_with_pending_writes += (cut.pending_writes > 0) as u64;
        r.writes += cut.nbd.writes;
        r.fua_writes += cut.nbd.fua_writes;
        r.flushes += cut.nbd.flushes;
        r.cuts_without_flush += (cut.nbd.flushes == 0) as u64;
        for st in &cut.states {
            r.states_checked += 1;
            let finding = |detail: String, explanation: Option<String>, kept: &Option<PathBuf>| DiskStateFinding {
                trial: r.cuts - 1,
                explanation,
                scenario: p.scenario,
                point: p.point,
                state: st.state.clone(),
                detail,
                allowed_if_sectors_tear: st.allowed_if_sectors_tear,
                kept: kept.as_ref().map(|k| k.display().to_string()),
                rerun: rerun(p),
            };
            match &st.outcome {
                StateOutcome::Judged(rec) => {
                    r.states_judged += 1;
                    r.states_e2fsck_repaired += st.e2fsck_repaired as u64;
                    if let (Some(n), Some(false)) = (r.states_torn_observed.as_mut(), st.page_whole_allows) {
                        *n += 1;
                    }
                    if let Some(f) = &rec.judgement.forbidden {
                        if r.violations.len() < MAX_LISTED {
                            r.violations.push(finding(f.to_string(), None, &rec.kept));
                        }
                    }
                    if let Some(m) = &rec.judgement.judge_mismatch {
                        if r.judge_mismatches.len() < MAX_LISTED {
                            r.judge_mismatches.push(finding(m.clone(), None, &rec.kept));
                        }
                    }
                    if let Some(k) = &rec.kept {
                        let tear = match st.allowed_if_sectors_tear {
                            Some(true) => "; the model with torn 512-byte sectors allows it",
                            Some(false) => "; the model with torn 512-byte sectors forbids it too",
                            None => "",
                        };
                        state_of_kept.push((k.display().to_string(), format!("{}{tear}", st.state)));
                    }
                    records.push((*p, (**rec).clone()));
                }
                StateOutcome::Unreadable { detail, explanation, kept } => {
                    r.states_unreadable += 1;
                    if r.unreadable.len() < MAX_LISTED {
                        r.unreadable.push(finding(detail.clone(), explanation.clone(), kept));
                    }
                }
            }
        }
        if r.per_cut.len() < MAX_LISTED {
            r.per_cut.push(CutSummary {
                scenario: p.scenario,
                point: p.point,
                writes: cut.nbd.writes,
                fua_writes: cut.nbd.fua_writes,
                flushes: cut.nbd.flushes,
                pending_writes: cut.pending_writes,
                state_space: cut.state_space,
                states_checked: cut.states.len() as u64,
            });
        }
    }
    let (mut filesystems, mut summary) = aggregate(cfg, kernel, &records);
    if filesystems.is_empty() && r.cuts > 0 {
        // Not one state was readable: still a section to tell so.
        filesystems.push(FsSoundness::empty(FsKind::Ext4, Backend::Vm, kernel, CutMethod::VmSigkill));
        summary.sound = true;
    }
    for f in &mut filesystems {
        f.cut_method = VOLATILE_CUT_METHOD.into();
        for v in &mut f.violation_details {
            if let Some((_, state)) = v.kept.as_ref().and_then(|k| state_of_kept.iter().find(|(d, _)| d == k)) {
                v.detail = format!("{} (disk state {state})", v.detail);
            }
        }
        f.volatile_disk = Some(r.clone());
    }
    (filesystems, summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crash::CrashPoint;
    use crate::journal::JournalSnapshot;
    use crate::power_loss::DEFAULT_TEAR;
    use crate::realcut::campaign::WorkloadId;
    use crate::realcut::judge::judge;

    fn judged(cfg: &SoundnessConfig) -> (RealTrialRecord, RealTrialRecord) {
        let spec = cfg.spec(WorkloadId::PartialMsync).unwrap();
        let payloads = Payloads::build(&spec);
        let facts = killed_before(0, JournalSnapshot { completed: 0, in_flight: None, failed: None });
        let rec = |bytes: &[u8]| RealTrialRecord {
            fs: FsKind::Ext4,
            cut: CutMethod::VmSigkill,
            facts,
            judgement: judge(&spec, &payloads, &facts, bytes).unwrap(),
            kept: None,
            trial_ns: 2_000_000,
        };
        let mut bad = payloads.base.to_vec();
        bad[100] ^= 0xff;
        (rec(&payloads.base), rec(&bad))
    }

    #[test]
    fn volatile_cuts_aggregate_into_state_trials_findings_and_rerun_lines() {
        let cfg: SoundnessConfig = serde_json::from_value(serde_json::json!({
            "backend": "vm", "seed": 9, "filesystems": ["ext4"], "trials": 2,
            "scenarios": ["probe/partial-msync"], "file_size": 16384, "txns": 3
        }))
        .unwrap();
        let (ok, mut bad) = judged(&cfg);
        assert!(!ok.judgement.is_violation() && bad.judgement.is_violation());
        bad.kept = Some(PathBuf::from("/ev/vm-ext4-0-before:0-state1"));
        let p = PlannedTrial { fs: FsKind::Ext4, scenario: WorkloadId::PartialMsync, point: CrashPoint::BeforeOp(0) };
        let nbd = |writes, flushes| NbdStats { writes, flushes, ..NbdStats::default() };
        let state = |s: &str, outcome| CheckedState {
            state: s.into(),
            e2fsck_repaired: false,
            allowed_if_sectors_tear: None,
            page_whole_allows: None,
            outcome,
        };
        let cuts = vec![
            VolatileCut {
                nbd: nbd(5, 2),
                pending_writes: 3,
                state_space: 1 << 20,
                states: vec![
                    state("reorder kept=w4", StateOutcome::Judged(Box::new(ok.clone()))),
                    CheckedState {
                        allowed_if_sectors_tear: Some(true),
                        ..state("reorder kept=w3", StateOutcome::Judged(Box::new(bad)))
                    },
                ],
            },
            VolatileCut {
                nbd: nbd(1, 0),
                pending_writes: 0,
                state_space: 1,
                states: vec![state(
                    "reorder kept=none",
                    StateOutcome::Unreadable {
                        detail: "e2fsck -fy could not repair".into(),
                        explanation: None,
                        kept: None,
                    },
                )],
            },
        ];
        let opts = VmOptions {
            disk: VmDisk::Volatile(DiskCutMode::Reorder),
            states_per_cut: 4,
            writeback_centisecs: None,
            ..VmOptions::default()
        };
        let (fss, summary) = aggregate_volatile(&cfg, "6.1", &[p, p], &cuts, &opts);
        assert_eq!((summary.trials, summary.violations, summary.sound), (2, 1, false), "judged states are trials");
        let f = &fss[0];
        assert_eq!(f.cut_method, VOLATILE_CUT_METHOD);
        assert!(
            f.violation_details[0]
                .detail
                .ends_with("(disk state reorder kept=w3; the model with torn 512-byte sectors allows it)"),
            "{}",
            f.violation_details[0].detail
        );
        let v = f.volatile_disk.as_ref().unwrap();
        assert_eq!((v.cuts, v.states_checked, v.states_judged, v.states_unreadable), (2, 3, 2, 1));
        assert_eq!((v.pending_writes, v.max_pending_writes, v.cuts_with_pending_writes), (3, 3, 1));
        assert_eq!((v.writes, v.flushes, v.cuts_without_flush), (6, 2, 1));
        assert_eq!(v.violations.len(), 1);
        assert_eq!(v.violations[0].state, "reorder kept=w3");
        assert_eq!(v.violations[0].allowed_if_sectors_tear, Some(true));
        assert_eq!(v.violations[0].kept.as_deref(), Some("/ev/vm-ext4-0-before:0-state1"));
        assert!(
            v.violations[0].rerun.ends_with(
                "--point before:0 --seed 9 --size 16384 --txns 3 --trials 1 --disk volatile-reorder --disk-states 4"
            ),
            "{}",
            v.violations[0].rerun
        );
        assert_eq!(v.unreadable[0].state, "reorder kept=none");
        assert_eq!(v.states_torn_observed, None, "counted on a torn disk only");
        assert_eq!(v.per_cut.iter().map(|c| c.states_checked).collect::<Vec<_>>(), vec![2, 1]);
        // The section round-trips, and a report without it still reads.
        let json = serde_json::to_value(f).unwrap();
        assert_eq!(serde_json::from_value::<FsSoundness>(json.clone()).unwrap(), *f);
        let mut old = json;
        old.as_object_mut().unwrap().remove("volatile_disk");
        assert_eq!(serde_json::from_value::<FsSoundness>(old).unwrap().volatile_disk, None);
        // On a torn disk: judged states the page-whole model forbids are
        // counted as observed tearing (the verdict is the torn model's).
        let torn_cut = VolatileCut {
            nbd: nbd(2, 1),
            pending_writes: 2,
            state_space: 9,
            states: [Some(true), Some(false), Some(false)]
                .into_iter()
                .map(|a| CheckedState {
                    page_whole_allows: a,
                    ..state("torn kept=s8:w4", StateOutcome::Judged(Box::new(ok.clone())))
                })
                .collect(),
        };
        let opts = VmOptions { disk: VmDisk::Volatile(DiskCutMode::Torn), ..opts };
        let (fss, _) = aggregate_volatile(&cfg, "6.1", &[p], &[torn_cut], &opts);
        assert_eq!(fss[0].volatile_disk.as_ref().unwrap().states_torn_observed, Some(2));
    }

    #[test]
    fn a_disk_that_tears_sectors_is_judged_by_the_torn_sector_model() {
        assert_eq!(VmDisk::Volatile(DiskCutMode::Torn).verdict_model().tear, Some(DEFAULT_TEAR));
        assert_eq!(VmDisk::Volatile(DiskCutMode::Reorder).verdict_model().tear, None);
        assert_eq!(VmDisk::NoCache.verdict_model().tear, None);
        assert!(VmDisk::Volatile(DiskCutMode::Torn).verdict_model_name().starts_with("power-loss-torn"));
        assert!(VmDisk::NoCache.verdict_model_name().starts_with("power-loss (pages whole)"));
        // A file with one page half new, half old after an unsynced
        // overwrite of it: the torn model allows it, the page-whole forbids it.
        let cfg: SoundnessConfig = serde_json::from_value(serde_json::json!({
            "backend": "vm", "seed": 9, "filesystems": ["ext4"], "trials": 2,
            "scenarios": ["shared/no-sync"], "file_size": 16384, "txns": 3
        }))
        .unwrap();
        let spec = cfg.spec("shared/no-sync".parse().unwrap()).unwrap();
        let payloads = Payloads::build(&spec);
        let completed = spec.ops.len();
        let facts = killed_before(completed, JournalSnapshot { completed, in_flight: None, failed: None });
        let page_whole = PowerLossModel::build(&spec, &payloads, &facts, &PowerLossConfig::default()).unwrap();
        let newest = page_whole.state_bytes(&page_whole.all_newest());
        // The first page the writer changed, with its second sector reverted.
        let page = (0..newest.len()).find(|&i| newest[i] != payloads.base[i]).unwrap() / 4096 * 4096;
        let mut mixed = newest.clone();
        let sector = (page..page + 4096).step_by(512).find(|&s| newest[s..s + 512] != payloads.base[s..s + 512]);
        let s0 = sector.unwrap();
        mixed[s0..s0 + 512].copy_from_slice(&payloads.base[s0..s0 + 512]);
        let torn = VmDisk::Volatile(DiskCutMode::Torn).verdict_model();
        assert!(!judge_with(&spec, &payloads, &facts, &mixed, &torn).unwrap().is_violation());
        assert!(judge(&spec, &payloads, &facts, &mixed).unwrap().is_violation());
    }
}
