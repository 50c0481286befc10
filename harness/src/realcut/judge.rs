//! Judging a file that a real power cut left, against the simulated model of
//! the same trial: is it one of the states [`PowerLossModel::allows`]? If
//! so, which state (a version per page), and how much more than the model
//! guarantees did it keep?
//!
//! Ack outcomes are computed twice: by the model's judge from the state's
//! choice vector, and directly from the bytes ([`direct_ack_status`]); a
//! disagreement is reported as a harness bug, not hidden.
//!
//! Architecture Invariant: pure.

use serde::{Deserialize, Serialize};

use crate::payload::Payloads;
use crate::power_loss::{AckJudge, ChoiceVector, Forbidden, PowerLossConfig, PowerLossError, PowerLossModel};
use crate::process_model::{AckStatus, TrialFacts};
use crate::spec::{pattern_byte, Op, WriterSpec};

/// What one real post-cut file says about the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealJudgement {
    /// The file's length after the cut.
    pub len: u64,
    /// Why the model forbids this file: a **model soundness violation**.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbidden: Option<Forbidden>,
    /// Pages with more than one allowed version (below the observed length).
    pub dirty_units: u64,
    /// Of those, pages holding a version newer than their durable floor:
    /// unsynced data the cut kept.
    pub units_beyond_floor: u64,
    /// Of those, pages holding their newest version.
    pub units_at_newest: u64,
    /// Pages with at least three allowed versions (the floor, the newest
    /// and one between): where an intermediate version could show.
    #[serde(default)]
    pub units_with_intermediate: u64,
    /// Of those, pages holding a version strictly between their floor and
    /// their newest: a write-back of a version later overwritten.
    #[serde(default)]
    pub units_intermediate: u64,
    /// Sizes the model allows the file (one: the size is settled).
    #[serde(default)]
    pub sizes_allowed: u64,
    /// The file's length is not its durable size: a size change no sync
    /// made durable reached the disk.
    #[serde(default)]
    pub unsynced_size_kept: bool,
    /// The state in text form (`floor`/`newest` plus exceptions), when allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Completed acks, by what became of them in this file.
    pub acks: AckCounts,
    /// The model's judge and the direct byte check disagree on some ack (a
    /// harness bug): the first disagreement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge_mismatch: Option<String>,
}

impl RealJudgement {
    pub fn is_violation(&self) -> bool {
        self.forbidden.is_some()
    }

    /// Did the cut keep anything the model does not guarantee?
    pub fn kept_more(&self) -> bool {
        self.units_beyond_floor > 0
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AckCounts {
    /// Acks completed before the crash.
    pub completed: u64,
    /// Of those, acks the model guarantees (survive every allowed state).
    pub guaranteed: u64,
    /// Outcomes in the real file (direct byte check).
    pub survived: u64,
    pub lost: u64,
    pub torn: u64,
    pub truncated: u64,
    /// Guaranteed acks that did not survive: impossible unless the model is
    /// unsound (then the file is also forbidden).
    pub guaranteed_not_survived: u64,
    /// Acks the model does not guarantee that survived anyway.
    pub unguaranteed_survived: u64,
}

impl AckCounts {
    pub fn add(&mut self, o: &AckCounts) {
        self.completed += o.completed;
        self.guaranteed += o.guaranteed;
        self.survived += o.survived;
        self.lost += o.lost;
        self.torn += o.torn;
        self.truncated += o.truncated;
        self.guaranteed_not_survived += o.guaranteed_not_survived;
        self.unguaranteed_survived += o.unguaranteed_survived;
    }
}

/// Judge `observed` (the whole file as read after the cut) against the
/// simulated power-loss model of `facts` (pages whole: no tearing).
pub fn judge(
    spec: &WriterSpec,
    payloads: &Payloads,
    facts: &TrialFacts,
    observed: &[u8],
) -> Result<RealJudgement, PowerLossError> {
    judge_with(spec, payloads, facts, observed, &PowerLossConfig::default())
}

/// [`judge`] against the power-loss model configured by `cfg` (with
/// `tear: Some(512)`, the torn-sector variant: a disk that tears sectors is
/// judged by the model that assumes it). Units are pages or sectors.
pub fn judge_with(
    spec: &WriterSpec,
    payloads: &Payloads,
    facts: &TrialFacts,
    observed: &[u8],
    cfg: &PowerLossConfig,
) -> Result<RealJudgement, PowerLossError> {
    let model = PowerLossModel::build(spec, payloads, facts, cfg)?;
    let len = observed.len() as u64;
    let direct = direct_ack_status(spec, payloads, facts, observed);
    let ack_judge = AckJudge::build(&model);
    let mut acks = AckCounts { completed: direct.len() as u64, ..Default::default() };
    let guaranteed: Vec<bool> = (0..ack_judge.acks().len()).map(|a| ack_judge.guaranteed(a)).collect();
    for (i, &(_, status)) in direct.iter().enumerate() {
        // Indistinguishable bytes are the right bytes: the reader sees them.
        let status = status.unwrap_or(AckStatus::Survived);
        match status {
            AckStatus::Survived => acks.survived += 1,
            AckStatus::Lost => acks.lost += 1,
            AckStatus::Torn => acks.torn += 1,
            AckStatus::Truncated => acks.truncated += 1,
        }
        let g = guaranteed.get(i).copied().unwrap_or(false);
        acks.guaranteed += g as u64;
        if g && status != AckStatus::Survived {
            acks.guaranteed_not_survived += 1;
        }
        if !g && status == AckStatus::Survived {
            acks.unguaranteed_survived += 1;
        }
    }
    let mut j = RealJudgement {
        len,
        forbidden: None,
        dirty_units: 0,
        units_beyond_floor: 0,
        units_at_newest: 0,
        units_with_intermediate: 0,
        units_intermediate: 0,
        sizes_allowed: model.sizes().len() as u64,
        unsynced_size_kept: false,
        state: None,
        acks,
        judge_mismatch: None,
    };
    if let Err(f) = model.allows(observed, len) {
        j.forbidden = Some(f);
        return Ok(j);
    }
    let ObservedState { choice, half_applied } = observed_state(&model, observed);
    let within = model.dims_within(choice.size);
    j.dirty_units = within as u64;
    for d in 0..within {
        let (v, radix) = (choice.versions[d], model.radix(d));
        j.units_beyond_floor += (v > 0) as u64;
        j.units_at_newest += (v + 1 == radix) as u64;
        j.units_with_intermediate += (radix >= 3) as u64;
        j.units_intermediate += (v > 0 && v + 1 < radix) as u64;
    }
    j.unsynced_size_kept = len != model.durable_size();
    j.state = Some(model.crash_state(&choice).to_string());
    if ack_judge.acks().len() != direct.len() {
        j.judge_mismatch = Some(format!(
            "the model's judge sees {} completed acks, the direct check {}",
            ack_judge.acks().len(),
            direct.len()
        ));
    } else {
        let via_model = ack_judge.evaluate_observed(&model, &choice, &half_applied, observed);
        let differs = |(a, (_, s)): &(usize, &(u32, Option<AckStatus>))| s.is_some_and(|s| via_model[*a] != s);
        if let Some((a, (id, s))) = direct.iter().enumerate().find(differs) {
            let s = s.expect("only known statuses differ");
            j.judge_mismatch = Some(format!(
                "ack {id}: the direct byte check says {s:?}, the model's judge {:?} in state {}",
                via_model[a],
                j.state.as_deref().unwrap_or("?")
            ));
        }
    }
    Ok(j)
}

/// The state a file the model allows is in, as far as a choice vector can
/// say it, and the dimensions it cannot describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedState {
    /// The size, and per dimension the oldest allowed version whose bytes
    /// the file holds. (A unit holding a store half applied matches none; it
    /// is put at the version that store made, part of which survived.)
    pub choice: ChoiceVector,
    /// Dimensions holding a store half applied, in increasing order.
    pub half_applied: Vec<usize>,
}

/// The state of a file the model allows ([`ObservedState`]).
pub fn observed_state(model: &PowerLossModel<'_>, observed: &[u8]) -> ObservedState {
    let len = observed.len() as u64;
    let size = model.size_index(len).unwrap_or(0);
    let mut c = model.floor_choice(size);
    let mut half_applied = Vec::new();
    let mut scratch = model.floor_image();
    for d in 0..model.dims_within(size) {
        let r = model.dim_unit(d).range;
        let (s, e) = (r.start as usize, r.end.min(len) as usize);
        let radix = model.radix(d);
        let mut chosen = None;
        for v in 0..radix {
            model.write_dim(d, v, &mut scratch);
            if scratch[s..e] == observed[s..e] {
                chosen = Some(v);
                break;
            }
        }
        model.write_dim(d, 0, &mut scratch);
        c.versions[d] = match chosen {
            Some(v) => v,
            None => {
                half_applied.push(d);
                model.half_applied_store(d, observed).unwrap_or(radix - 1)
            }
        };
    }
    ObservedState { choice: c, half_applied }
}

/// What became of every completed ack in `observed`, from the bytes alone:
/// a covered byte survived if it holds its store's version or that of a
/// later completed store covering it (the rule of the process-crash model),
/// and was lost if it holds anything else; bytes beyond the file's end count
/// as cut off. A byte whose surviving value equals an older version's (one
/// time in 256) tells nothing and is ignored; an ack all of whose bytes are
/// like that is `None` (indistinguishable). In op order, with the ack id.
pub fn direct_ack_status(
    spec: &WriterSpec,
    payloads: &Payloads,
    facts: &TrialFacts,
    observed: &[u8],
) -> Vec<(u32, Option<AckStatus>)> {
    let completed = facts.journal.completed.min(spec.ops.len());
    let len = observed.len() as u64;
    // (op index, start, end, bytes) of every completed store: the byte loops
    // below look only at the stores overlapping the acked one, and read the
    // payloads instead of recomputing the pattern (scanning every op and
    // hashing for every byte was most of a real-cut trial's CPU time).
    let stores: Vec<(usize, u64, u64, &[u8])> = spec.ops[..completed]
        .iter()
        .enumerate()
        .filter_map(|(i, op)| match *op {
            Op::Store { offset, len, .. } => Some((i, offset, offset + len, payloads.store(spec, i))),
            _ => None,
        })
        .collect();
    let base_byte = |pos: u64| payloads.base.get(pos as usize).copied().unwrap_or_else(|| pattern_byte(pos, 0));
    let mut out = Vec::new();
    for op in &spec.ops[..completed] {
        let Op::Ack { id, covers } = op else { continue };
        let (mut good, mut bad, mut cut) = (false, false, false);
        for &s in covers {
            let Op::Store { offset, len: n, .. } = spec.ops[s] else { continue };
            let end = offset + n;
            let overlapping = stores.iter().filter(|&&(_, a, b, _)| a < end && offset < b);
            // This store and the later ones (its own bytes or overwrites),
            // and the earlier ones (whose bytes would say nothing of it).
            let (newer, older): (Vec<_>, Vec<_>) = overlapping.partition(|&&(i, ..)| i >= s);
            let holds = |set: &[&(usize, u64, u64, &[u8])], pos: u64, b: u8| {
                set.iter().any(|&&(_, a, e, bytes)| a <= pos && pos < e && bytes[(pos - a) as usize] == b)
            };
            for pos in offset..end {
                if pos >= len {
                    cut = true;
                    continue;
                }
                let b = observed[pos as usize];
                if !holds(&newer, pos, b) {
                    bad = true;
                } else if base_byte(pos) != b && !holds(&older, pos, b) {
                    good = true;
                }
            }
        }
        out.push((*id, ack_status(good, bad, cut)));
    }
    out
}

/// An ack's status from what its bytes showed: some holding its store's
/// version or a later one (`good`), some holding anything else (`bad`),
/// some beyond the file's end (`cut`). `None`: nothing told.
fn ack_status(good: bool, bad: bool, cut: bool) -> Option<AckStatus> {
    match (good, bad) {
        (false, false) if !cut => None,
        (_, false) if cut => Some(AckStatus::Truncated),
        (_, false) => Some(AckStatus::Survived),
        (true, true) => Some(AckStatus::Torn),
        (false, true) => Some(AckStatus::Lost),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crash::CrashPoint;
    use crate::journal::JournalSnapshot;
    use crate::process_model::ChildExit;
    use crate::spec::{MappingKind, SyncPolicy, WorkloadParams};
    use crate::vocab::CrashKind;

    fn spec(policy: SyncPolicy) -> WriterSpec {
        let mut p = WorkloadParams::with_file_size(64 * 1024);
        p.txns = 6;
        p.large_every = 0;
        WriterSpec::generate(&p, MappingKind::Shared, policy, 4096, 5).unwrap()
    }

    /// A writer SIGKILLed before op `k`, nothing in flight.
    pub(super) fn facts(k: usize) -> TrialFacts {
        TrialFacts {
            kind: CrashKind::Sigkill,
            point: CrashPoint::BeforeOp(k),
            exit: ChildExit::Signaled(libc::SIGKILL),
            journal: JournalSnapshot { completed: k, in_flight: None, failed: None },
            external_truncate: None,
        }
    }

    /// The file if every completed store reached the disk (nothing lost).
    fn everything(spec: &WriterSpec, p: &Payloads, k: usize) -> Vec<u8> {
        let mut f = p.base.to_vec();
        for (i, op) in spec.ops[..k].iter().enumerate() {
            if let Some(r) = op.store_range() {
                f[r.start as usize..r.end as usize].copy_from_slice(p.store(spec, i));
            }
        }
        f
    }

    #[test]
    fn the_initial_file_is_allowed_without_syncs_and_keeps_nothing_more() {
        let s = spec(SyncPolicy::None);
        let p = Payloads::build(&s);
        let k = s.ops.len() - 1;
        let j = judge(&s, &p, &facts(k), &p.base).unwrap();
        assert!(!j.is_violation(), "{:?}", j.forbidden);
        assert_eq!(j.units_beyond_floor, 0);
        assert!(j.dirty_units > 0);
        assert_eq!(j.acks.completed, 6);
        assert_eq!(j.acks.guaranteed, 0);
        assert_eq!(j.judge_mismatch, None);
        assert_eq!(j.acks.survived + j.acks.torn + j.acks.lost, 6);
        assert!(j.acks.lost > 0);
    }

    #[test]
    fn everything_written_back_is_allowed_and_counts_as_kept_more() {
        let s = spec(SyncPolicy::None);
        let p = Payloads::build(&s);
        let k = s.ops.len() - 1;
        let j = judge(&s, &p, &facts(k), &everything(&s, &p, k)).unwrap();
        assert!(!j.is_violation(), "{:?}", j.forbidden);
        assert_eq!(j.units_beyond_floor, j.dirty_units);
        assert_eq!(j.units_at_newest, j.dirty_units);
        assert_eq!(j.acks.survived, 6);
        assert_eq!(j.acks.unguaranteed_survived, 6);
        assert_eq!(j.judge_mismatch, None);
    }

    #[test]
    fn a_lost_ms_synced_store_is_a_violation() {
        let s = spec(SyncPolicy::MsSyncEach);
        let p = Payloads::build(&s);
        let k = s.ops.len() - 1;
        // Nothing reached the disk although every store was MS_SYNCed.
        let j = judge(&s, &p, &facts(k), &p.base).unwrap();
        assert!(j.is_violation());
        assert!(matches!(j.forbidden, Some(Forbidden::Content { .. })));
        assert_eq!(j.acks.guaranteed, 6);
        assert!(j.acks.guaranteed_not_survived > 0);
        // With everything there, it is allowed and every ack survived.
        let ok = judge(&s, &p, &facts(k), &everything(&s, &p, k)).unwrap();
        assert!(!ok.is_violation(), "{:?}", ok.forbidden);
        assert_eq!(ok.acks.survived, 6);
        assert_eq!(ok.acks.guaranteed_not_survived, 0);
    }

    #[test]
    fn bytes_no_op_wrote_and_a_wrong_size_are_violations() {
        let s = spec(SyncPolicy::None);
        let p = Payloads::build(&s);
        let mut f = p.base.to_vec();
        f[70] ^= 0xff;
        assert!(judge(&s, &p, &facts(3), &f).unwrap().is_violation());
        let short = &p.base[..4096];
        assert!(matches!(judge(&s, &p, &facts(3), short).unwrap().forbidden, Some(Forbidden::Size { .. })));
    }

    #[test]
    fn direct_status_sees_torn_and_later_overwrites() {
        let mut s = spec(SyncPolicy::None);
        // Two stores over the same bytes, each acked: the second overwrites.
        s.ops = vec![
            Op::Store { offset: 0, len: 100, version: 1 },
            Op::Ack { id: 0, covers: vec![0] },
            Op::Store { offset: 50, len: 100, version: 2 },
            Op::Ack { id: 1, covers: vec![2] },
        ];
        let p = Payloads::build(&s);
        let mut f = p.base.to_vec();
        f[..100].copy_from_slice(p.store(&s, 0));
        f[50..150].copy_from_slice(p.store(&s, 2));
        let st = direct_ack_status(&s, &p, &facts(4), &f);
        assert_eq!(st, vec![(0, Some(AckStatus::Survived)), (1, Some(AckStatus::Survived))]);
        // Half of store 2 reverted to the base: torn; store 0 unaffected.
        f[100..150].copy_from_slice(&p.base[100..150]);
        let st = direct_ack_status(&s, &p, &facts(4), &f);
        assert_eq!(st, vec![(0, Some(AckStatus::Survived)), (1, Some(AckStatus::Torn))]);
        // Ack 1 had not completed at a crash before op 3.
        assert_eq!(direct_ack_status(&s, &p, &facts(3), &f).len(), 1);
    }

    /// The rule as first written: every op scanned for every byte.
    fn naive_direct_ack_status(
        spec: &WriterSpec,
        facts: &TrialFacts,
        observed: &[u8],
    ) -> Vec<(u32, Option<AckStatus>)> {
        let completed = facts.journal.completed.min(spec.ops.len());
        let len = observed.len() as u64;
        let covering = |pos: u64, ops: std::ops::Range<usize>| {
            spec.ops[ops].iter().filter_map(move |op| match *op {
                Op::Store { offset: o, len: l, version } if o <= pos && pos < o + l => Some(pattern_byte(pos, version)),
                _ => None,
            })
        };
        let mut out = Vec::new();
        for op in &spec.ops[..completed] {
            let Op::Ack { id, covers } = op else { continue };
            let (mut good, mut bad, mut cut) = (false, false, false);
            for &s in covers {
                let Op::Store { offset, len: n, .. } = spec.ops[s] else { continue };
                for pos in offset..offset + n {
                    if pos >= len {
                        cut = true;
                        continue;
                    }
                    let b = observed[pos as usize];
                    if !covering(pos, s..completed).any(|v| v == b) {
                        bad = true;
                    } else if pattern_byte(pos, 0) != b && !covering(pos, 0..s).any(|v| v == b) {
                        good = true;
                    }
                }
            }
            out.push((*id, ack_status(good, bad, cut)));
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(64))]
        /// Files mixing, page by page, the base, the newest content and a
        /// random older state, at a random crash point, cut at a random
        /// length: the fast rule agrees with the naive one everywhere.
        #[test]
        fn the_fast_ack_rule_equals_the_naive_one(
            seed in 0u64..1000,
            policy in 0usize..SyncPolicy::STANDARD.len(),
            k_frac in 0.0f64..=1.0,
            mix in proptest::collection::vec(0u8..3, 16),
            cut_len in proptest::option::of(0usize..64 * 1024),
        ) {
            let mut p = WorkloadParams::with_file_size(64 * 1024);
            p.txns = 8;
            let s = WriterSpec::generate(&p, MappingKind::Shared, SyncPolicy::STANDARD[policy], 4096, seed).unwrap();
            let pay = Payloads::build(&s);
            let k = ((s.ops.len() as f64) * k_frac) as usize;
            let newest = everything(&s, &pay, k);
            let older = everything(&s, &pay, k / 2);
            let mut f = pay.base.to_vec();
            for (page, m) in mix.iter().enumerate() {
                let r = page * 4096..(page + 1) * 4096;
                match m {
                    0 => {}
                    1 => f[r.clone()].copy_from_slice(&newest[r]),
                    _ => f[r.clone()].copy_from_slice(&older[r]),
                }
            }
            if let Some(n) = cut_len {
                f.truncate(n);
            }
            let fast = direct_ack_status(&s, &pay, &facts(k), &f);
            proptest::prop_assert_eq!(fast, naive_direct_ack_status(&s, &facts(k), &f));
        }
    }
}

#[cfg(test)]
mod judges_agree_tests {
    //! The per-ack judge of the model and the direct byte check must agree
    //! on every file the model allows (issue 17: the nightly's volatile-torn
    //! campaign reported a mismatch on a unit holding a store half applied).
    use super::tests::facts;
    use super::*;
    use crate::crash::CrashPoint;
    use crate::power_loss::{VersionOrigin, DEFAULT_TEAR};
    use crate::realcut::campaign::{plan, SoundnessConfig};
    use crate::spec::{MappingKind, SyncPolicy, WorkloadParams};
    use proptest::prelude::*;

    /// The state the nightly of 2026-12-06 reported (`vm-ext4-2-before:20-state4`).
    const NIGHTLY_STATE: &str = "newest:p0s5=v0,p4s0=v0,p4s3=v0,p4s6=v0,p5s0=v0,p5s5=v0,p5s6=v0,p6s0=v0,\
        p6s1=v0,p6s4=v0,p6s6=v0,p7s1=v0,p7s2=v0,p7s4=v0,p7s5=v0,p7s6=v0,p8s0=v0,p8s1=v0,p8s4=v3,p8s6=v0,p8s7=v0,\
        p9s7=v0,p10s0=v0,p10s2=v0,p10s3=v0,p10s4=v0,p10s5=v0,p10s7=v0,p11s1=v0,p11s2=v0,p11s4=v1,p11s5=v0,p11s6=v0";

    fn torn() -> PowerLossConfig {
        PowerLossConfig { tear: Some(DEFAULT_TEAR), ..Default::default() }
    }

    /// Put unit `d` of `file` half way between its allowed version `v - 1`
    /// and `v`: the bytes where they differ picked by `mask` (cycled), old
    /// where the bit is 0. Returns false if the two versions differ in fewer
    /// than two bytes (no mix of both is possible).
    fn half_apply(model: &PowerLossModel<'_>, d: usize, v: usize, mask: &[bool], file: &mut [u8]) -> bool {
        let unit = model.dim_unit(d);
        let len = (unit.range.end - unit.range.start) as usize;
        let (mut old, mut new) = (vec![0u8; len], vec![0u8; len]);
        unit.allowed()[v - 1].write_unit(unit.range, &mut old);
        unit.allowed()[v].write_unit(unit.range, &mut new);
        let start = unit.range.start as usize;
        let end = (unit.range.end as usize).min(file.len());
        let differing: Vec<usize> = (start..end).filter(|&i| old[i - start] != new[i - start]).collect();
        if differing.len() < 2 {
            return false;
        }
        for (n, &i) in differing.iter().enumerate() {
            // The first differing byte old, the last new: a real mix.
            let newer = if n == 0 {
                false
            } else if n + 1 == differing.len() {
                true
            } else {
                mask[n % mask.len()]
            };
            file[i] = if newer { new[i - start] } else { old[i - start] };
        }
        true
    }

    #[test]
    fn a_sector_holding_a_store_half_applied_is_torn_for_both_judges() {
        // The nightly's campaign, rebuilt from its command line
        // (`soundness --backend vm --disk volatile-torn --trials 30 --seed 20261206`).
        let cfg: SoundnessConfig = serde_json::from_value(serde_json::json!({
            "backend": "vm", "seed": 20261206u64, "filesystems": ["ext4"], "trials": 30,
            "scenarios": SoundnessConfig::default_scenarios(), "file_size": 65536, "txns": 12
        }))
        .unwrap();
        let (specs, trials) = plan(&cfg).unwrap();
        assert_eq!(trials[2].point, CrashPoint::BeforeOp(20), "the plan of the nightly's trial 2 changed");
        let spec = &specs.iter().find(|(w, _)| *w == trials[2].scenario).unwrap().1;
        let payloads = Payloads::build(spec);
        let facts = facts(20);
        let model = PowerLossModel::build(spec, &payloads, &facts, &torn()).unwrap();
        assert_eq!(model.dims(), 68, "the nightly's trial had 68 dirty units");
        let c = model.resolve(&NIGHTLY_STATE.parse().unwrap()).unwrap();
        let mut file = model.state_bytes(&c);
        // The state itself: both judges agree.
        let whole = judge_with(spec, &payloads, &facts, &file, &torn()).unwrap();
        assert_eq!(whole.judge_mismatch, None);
        assert_eq!(whole.state.as_deref(), Some(NIGHTLY_STATE));
        // Page 15, sector 0 holds ack 4's store (newest in that state) half
        // applied: the state text cannot say so, the bytes can.
        let d = (0..model.dims()).find(|&d| model.dim_unit(d).id.code() == "p15s0").unwrap();
        let v = c.versions[d] as usize;
        assert!(matches!(model.dim_unit(d).allowed()[v].origin, VersionOrigin::Store { .. }));
        assert!(half_apply(&model, d, v, &[true, false], &mut file));
        let j = judge_with(spec, &payloads, &facts, &file, &torn()).unwrap();
        assert_eq!(j.forbidden, None, "a store half applied is allowed");
        assert_eq!(j.judge_mismatch, None);
        let direct = direct_ack_status(spec, &payloads, &facts, &file);
        assert_eq!(direct.iter().find(|(id, _)| *id == 4).unwrap().1, Some(AckStatus::Torn));
        assert_eq!(j.acks.torn, whole.acks.torn + 1, "ack 4 went from survived to torn");
    }

    prop_compose! {
        fn torn_trial()(
            pages in 1u64..=6,
            txns in 1u32..=8,
            policy in 0..SyncPolicy::STANDARD.len(),
            tear in prop_oneof![Just(None), Just(Some(512u64)), Just(Some(1024))],
            seed in any::<u64>(),
            crash in any::<prop::sample::Index>(),
        ) -> (WriterSpec, usize, PowerLossConfig) {
            let mut p = WorkloadParams::with_file_size(pages * 4096);
            p.txns = txns;
            let spec = WriterSpec::generate(&p, MappingKind::Shared, SyncPolicy::STANDARD[policy], 4096, seed).unwrap();
            let k = crash.index(spec.ops.len() + 1);
            (spec, k, PowerLossConfig { tear, ..Default::default() })
        }
    }

    proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(256))]
        /// Random states with units at any allowed version (intermediate
        /// ones included, like the nightly's `p8s4=v3`), some of them
        /// holding a store half applied: the model allows every such file,
        /// and its judge agrees with the byte check on every ack.
        #[test]
        fn the_models_judge_and_the_byte_check_agree_on_every_allowed_file(
            (spec, k, cfg) in torn_trial(),
            picks in prop::collection::vec(any::<prop::sample::Index>(), 64),
            halves in prop::collection::vec((any::<prop::sample::Index>(), prop::collection::vec(any::<bool>(), 1..8)), 0..4),
        ) {
            let payloads = Payloads::build(&spec);
            let facts = facts(k);
            let model = PowerLossModel::build(&spec, &payloads, &facts, &cfg).unwrap();
            let size = model.size_index(model.newest_size()).unwrap();
            let mut c = model.floor_choice(size);
            for d in 0..model.dims_within(size) {
                c.versions[d] = picks[d % picks.len()].index(model.radix(d) as usize) as u32;
            }
            let mut file = model.state_bytes(&c);
            file.truncate(model.sizes()[size] as usize);
            let within = model.dims_within(size);
            for (which, mask) in &halves {
                if within == 0 {
                    break;
                }
                let d = which.index(within);
                let v = c.versions[d] as usize;
                if v > 0 && matches!(model.dim_unit(d).allowed()[v].origin, VersionOrigin::Store { .. }) {
                    half_apply(&model, d, v, mask, &mut file);
                }
            }
            let j = judge_with(&spec, &payloads, &facts, &file, &cfg).unwrap();
            prop_assert_eq!(&j.forbidden, &None);
            prop_assert_eq!(&j.judge_mismatch, &None);
        }
    }
}
