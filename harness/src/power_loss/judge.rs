//! Judging acks over power-loss states, from the choice vector alone.
//!
//! An ack survives a state iff every byte of every store it covers that is
//! still in the file holds its version or a newer one (the rule of
//! [`crate::process_model`]). Within one unit, that depends only on which
//! version the unit holds, so it is precomputed once per (size, ack, unit,
//! version) as two bits — "some covered bytes good", "some bad" — and a state
//! is judged by looking those bits up, never by comparing bytes. Stepping
//! from one state to the next (one unit changes, in Gray-code order) updates
//! only the acks that unit touches, and per-ack state counts are credited
//! lazily when an ack's status changes.
//!
//! Because units are independent, "guaranteed" (no allowed state loses or
//! tears the ack) and a minimal explanation (the one unit choice that breaks
//! it, found by the one minimizer, [`crate::explore::ddmin`], over the
//! tables) are read off the tables exactly, whether or not the states were
//! enumerated.

use std::collections::BTreeMap;
use std::convert::Infallible;

use serde::{Deserialize, Serialize};

use super::crash_state::CrashState;
use super::space::{ChoiceVector, PowerLossModel};
use super::unit::{Unit, UnitId, UnitVersion, VersionLabel, VersionOrigin};
use crate::explore::ddmin::ddmin;
use crate::live_image::Owner;
use crate::process_model::AckStatus;
use crate::spec::{ByteRange, MappingKind, MsyncFlags, Op};

/// Some of the covered bytes hold their version or a newer one.
const GOOD: u8 = 1;
/// Some of the covered bytes do not.
const BAD: u8 = 2;

/// A completed ack and the stores it vouches for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JudgedAck {
    pub id: u32,
    pub op: usize,
    pub stores: Vec<usize>,
}

/// A unit that fails an ack in every state of one size.
#[derive(Debug, Clone, Copy)]
enum UnitRef {
    Touched(usize),
    /// A unit the trial never changed, by its start offset.
    Untouched(u64),
}

/// What an ack's verdict owes to things the state's unit choices cannot
/// change, for one size.
#[derive(Debug, Clone, Default)]
struct FixedPart {
    bits: u8,
    /// Some covered bytes were cut off by a truncation after their store.
    cut: bool,
    bad_unit: Option<UnitRef>,
    /// A store's bytes this size leaves out although the file still had them
    /// at the crash (a size change that was never synced).
    bad_size: Option<(usize, ByteRange)>,
}

/// Dimension → ack: the ack's class bits for each version sit at `offset..`.
#[derive(Debug, Clone, Copy)]
struct Link {
    ack: u32,
    offset: u32,
}

#[derive(Debug, Clone, Copy)]
struct AckLink {
    dim: u32,
    offset: u32,
}

/// The tables for one allowed file size.
#[derive(Debug, Clone)]
struct Phase {
    fixed: Vec<FixedPart>,
    by_dim: Vec<Vec<Link>>,
    /// Per ack, its dimensions in file order.
    by_ack: Vec<Vec<AckLink>>,
    classes: Vec<u8>,
}

/// The precomputed judge of one trial's completed acks.
#[derive(Debug, Clone)]
pub struct AckJudge {
    acks: Vec<JudgedAck>,
    phases: Vec<Phase>,
    guaranteed: Vec<bool>,
}

fn classify(v: &UnitVersion<'_>, sub: ByteRange, store: usize) -> u8 {
    let mut bits = 0;
    for p in &v.pieces {
        if p.range.overlaps(&sub) {
            bits |= match p.owner {
                Owner::Store(t) if t >= store => GOOD,
                _ => BAD,
            };
        }
    }
    bits
}

fn status_of(bits: u8, cut: bool) -> AckStatus {
    match (bits & GOOD != 0, bits & BAD != 0, cut) {
        (_, false, false) => AckStatus::Survived,
        (_, false, true) => AckStatus::Truncated,
        (false, true, _) => AckStatus::Lost,
        (true, true, _) => AckStatus::Torn,
    }
}

fn status_word(s: AckStatus) -> &'static str {
    match s {
        AckStatus::Survived => "survived",
        AckStatus::Torn => "torn",
        AckStatus::Lost => "lost",
        AckStatus::Truncated => "truncated",
    }
}

impl AckJudge {
    pub fn build(model: &PowerLossModel<'_>) -> AckJudge {
        let acks: Vec<JudgedAck> = model
            .spec()
            .acks()
            .filter(|&(at, _, _)| at < model.completed())
            .map(|(op, id, covers)| JudgedAck { id, op, stores: covers.to_vec() })
            .collect();
        let phases: Vec<Phase> = (0..model.sizes().len()).map(|z| build_phase(model, &acks, z)).collect();
        let guaranteed = (0..acks.len())
            .map(|a| {
                phases.iter().all(|ph| {
                    ph.fixed[a].bits & BAD == 0
                        && ph.by_ack[a].iter().all(|l| {
                            let radix = model.radix(l.dim as usize) as usize;
                            ph.classes[l.offset as usize..][..radix].iter().all(|&c| c & BAD == 0)
                        })
                })
            })
            .collect();
        AckJudge { acks, phases, guaranteed }
    }

    /// The completed acks, in op order; indices into this slice name acks
    /// everywhere else in the judge.
    pub fn acks(&self) -> &[JudgedAck] {
        &self.acks
    }

    /// No allowed state loses or tears ack `a`.
    pub fn guaranteed(&self, a: usize) -> bool {
        self.guaranteed[a]
    }

    /// The status of every ack in one state, computed from scratch.
    pub fn evaluate(&self, c: &ChoiceVector) -> Vec<AckStatus> {
        (0..self.acks.len()).map(|a| self.evaluate_one(a, c)).collect()
    }

    /// The status of every ack in a real file `observed` that is in state
    /// `c`, except that the dimensions in `half_applied` hold a store half
    /// applied (each byte the value of the version `c` names or of the
    /// allowed version before it; see [`PowerLossModel::allows`]). A choice
    /// vector cannot say that, so those dimensions are classified byte by
    /// byte: a byte holding the newer version's value counts with the newer
    /// version's owner, any other with the older one's.
    ///
    /// Without this, a unit caught half way through a store of ack `a` was
    /// judged as if the store were whole (`Survived`) while its bytes said
    /// `Torn`: the nightly's judge mismatch (issue 17).
    pub fn evaluate_observed(
        &self,
        model: &PowerLossModel<'_>,
        c: &ChoiceVector,
        half_applied: &[usize],
        observed: &[u8],
    ) -> Vec<AckStatus> {
        (0..self.acks.len())
            .map(|a| {
                let ph = &self.phases[c.size];
                let mut bits = ph.fixed[a].bits;
                for l in &ph.by_ack[a] {
                    let d = l.dim as usize;
                    bits |= if half_applied.contains(&d) {
                        self.half_applied_bits(model, a, d, c.versions[d] as usize, observed)
                    } else {
                        ph.classes[l.offset as usize + c.versions[d] as usize]
                    };
                }
                status_of(bits, ph.fixed[a].cut)
            })
            .collect()
    }

    /// Ack `a`'s class bits from dimension `d`, whose unit holds in
    /// `observed` a mix of its allowed versions `newer - 1` and `newer`.
    fn half_applied_bits(&self, model: &PowerLossModel<'_>, a: usize, d: usize, newer: usize, observed: &[u8]) -> u8 {
        let unit = model.dim_unit(d);
        let allowed = unit.allowed();
        let (old, new) = (&allowed[newer.saturating_sub(1)], &allowed[newer]);
        let mut new_bytes = vec![0u8; (unit.range.end - unit.range.start) as usize];
        new.write_unit(unit.range, &mut new_bytes);
        let mut bits = 0;
        for &s in &self.acks[a].stores {
            let r = model.spec().ops[s].store_range().expect("acks cover stores");
            let end = r.end.min(unit.range.end).min(observed.len() as u64);
            let mut pos = r.start.max(unit.range.start);
            // Runs of bytes at one version, classified like a whole version.
            while pos < end {
                let at_new = |p: u64| observed[p as usize] == new_bytes[(p - unit.range.start) as usize];
                let newer_here = at_new(pos);
                let run_end = (pos..end).find(|&p| at_new(p) != newer_here).unwrap_or(end);
                let v = if newer_here { new } else { old };
                bits |= classify(v, ByteRange::new(pos, run_end), s);
                pos = run_end;
            }
        }
        bits
    }

    fn evaluate_one(&self, a: usize, c: &ChoiceVector) -> AckStatus {
        let ph = &self.phases[c.size];
        let mut bits = ph.fixed[a].bits;
        for l in &ph.by_ack[a] {
            bits |= ph.classes[l.offset as usize + c.versions[l.dim as usize] as usize];
        }
        status_of(bits, ph.fixed[a].cut)
    }

    /// The minimal explanation of why ack `a` is not guaranteed, with the
    /// state that shows it (`None` if it is guaranteed).
    ///
    /// The state is the all-newest one (what the page cache held) with the
    /// fewest changes that break the ack: one unit at the oldest version
    /// that fails it, or — when the ack fails in every state of some size —
    /// no change at all, or only the size.
    pub fn explain(&self, model: &PowerLossModel<'_>, a: usize) -> Option<(Explanation, ChoiceVector)> {
        if self.guaranteed[a] {
            return None;
        }
        let newest = model.size_index(model.newest_size()).expect("newest size is a size");
        let order = std::iter::once(newest).chain((0..model.sizes().len()).filter(|&z| z != newest));
        for z in order {
            let ph = &self.phases[z];
            let fixed = &ph.fixed[a];
            let mut c = model.newest_choice(z);
            if fixed.bits & BAD != 0 {
                if let Some(u) = fixed.bad_unit {
                    return Some(self.unit_explanation(model, a, u, &c));
                }
                if let Some((store, cut)) = fixed.bad_size {
                    return Some(self.size_explanation(model, a, store, cut, &c));
                }
            }
            // Each dimension that can fail the ack, at the oldest version
            // that does, in file order.
            let candidates: Vec<(usize, u32)> = ph.by_ack[a]
                .iter()
                .filter_map(|l| {
                    let d = l.dim as usize;
                    let classes = &ph.classes[l.offset as usize..][..model.radix(d) as usize];
                    classes.iter().position(|&b| b & BAD != 0).map(|j| (d, j as u32))
                })
                .collect();
            // Units are independent and an ack's bits are the union of its
            // units' bits, so a set of choices breaks the ack as soon as one
            // of them does: the 1-minimal sets are single units, and the one
            // minimizer finds the first in file order, in a few table lookups.
            let breaks = |set: &[(usize, u32)]| -> Result<bool, Infallible> {
                Ok(set.iter().any(|&(d, j)| self.class(z, a, d, j) & BAD != 0))
            };
            let Ok(minimal) = ddmin(&candidates, u32::MAX, breaks);
            if let [(d, j)] = minimal.set[..] {
                c.versions[d] = j;
                return Some(self.unit_explanation(model, a, UnitRef::Touched(model.dim_unit_index(d)), &c));
            }
        }
        unreachable!("ack {a} is not guaranteed, so some phase has a bad class")
    }

    /// Ack `a`'s class bits from dimension `d` at version `j`, in size `z`
    /// (none if the dimension does not touch the ack).
    fn class(&self, z: usize, a: usize, d: usize, j: u32) -> u8 {
        let ph = &self.phases[z];
        ph.by_ack[a].iter().find(|l| l.dim as usize == d).map_or(0, |l| ph.classes[l.offset as usize + j as usize])
    }

    /// The version unit `i` holds in state `c`.
    fn held<'m, 'a>(model: &'m PowerLossModel<'a>, i: usize, c: &ChoiceVector) -> (usize, &'m UnitVersion<'a>) {
        let u = &model.units()[i];
        let j = model.dim_of_unit(i).map_or(0, |d| c.versions[d] as usize);
        (j, &u.allowed()[j])
    }

    fn unit_explanation(
        &self,
        model: &PowerLossModel<'_>,
        a: usize,
        u: UnitRef,
        c: &ChoiceVector,
    ) -> (Explanation, ChoiceVector) {
        let spec = model.spec();
        let ack = &self.acks[a];
        let size = model.sizes()[c.size];
        let status = self.evaluate_one(a, c);
        let covered = |r: ByteRange| {
            ack.stores.iter().copied().find(|&s| {
                let sr = spec.ops[s].store_range().expect("acks cover stores");
                sr.overlaps(&r) && sr.start < size
            })
        };
        let (id, words) = match u {
            UnitRef::Untouched(start) => {
                let us = model.unit_size();
                let start = start / us * us;
                let id = model.unit_id_at(start);
                let store = covered(ByteRange::new(start, start + us)).expect("the unit holds covered bytes");
                let version = store_version(model, store);
                let why = if spec.mapping == MappingKind::Private {
                    format!(
                        "the only version it can hold: stores through a MAP_PRIVATE mapping never reach the file, \
                         so the store of version {version} (op {store}) is not in it"
                    )
                } else {
                    format!("it never changed: the store of version {version} (op {store}) never reached the file")
                };
                (id, format!("{id} holds version 0 (the initial content; {why})"))
            }
            UnitRef::Touched(i) => {
                let unit = &model.units()[i];
                let (j, v) = Self::held(model, i, c);
                let clipped = ByteRange::new(unit.range.start, unit.range.end.min(size).max(unit.range.start));
                let store = ack
                    .stores
                    .iter()
                    .copied()
                    .find(|&s| {
                        let sr = spec.ops[s].store_range().expect("acks cover stores");
                        sr.overlaps(&clipped)
                            && classify(v, ByteRange::new(sr.start.max(clipped.start), sr.end.min(clipped.end)), s)
                                & BAD
                                != 0
                    })
                    .expect("the chosen version fails a covered store");
                let reason = self.reason(model, unit, j, v, store);
                (unit.id, format!("{} holds {} ({reason})", unit.id, v.origin.describe()))
            }
        };
        let mut text = format!("ack {} {}: {words}", ack.id, status_word(status));
        if status == AckStatus::Torn {
            if let Some(good) = self.good_unit(model, a, c) {
                text.push_str(&format!(", while {good}"));
            }
        }
        let version = match u {
            UnitRef::Untouched(_) => VersionLabel::Version(0),
            UnitRef::Touched(i) => Self::held(model, i, c).1.label(),
        };
        let explanation = Explanation {
            ack: ack.id,
            op: ack.op,
            status,
            text,
            state: model.crash_state(c),
            pages: vec![PageChoice { unit: id, version }],
            size: None,
        };
        (explanation, c.clone())
    }

    /// Why version `j` of `unit` fails the bytes of `store`.
    fn reason(
        &self,
        model: &PowerLossModel<'_>,
        unit: &Unit<'_>,
        j: usize,
        v: &UnitVersion<'_>,
        store: usize,
    ) -> String {
        let spec = model.spec();
        let version = store_version(model, store);
        let the_store = format!("the store of version {version} (op {store})");
        if spec.mapping == MappingKind::Private {
            return format!("stores through a MAP_PRIVATE mapping never reach the file, so {the_store} is not in it");
        }
        if v.event > model.op_event(store) {
            return match v.origin {
                VersionOrigin::Truncation { .. } => format!("it zeroed the acked bytes of {the_store}"),
                _ => format!("the acked bytes of {the_store} are not in it"),
            };
        }
        if j > 0 {
            return format!("written back before {the_store}, which no completed sync covered");
        }
        let mut s = match unit.floor_sync {
            Some(k) => format!("its durable floor, made durable by op {k} ({})", spec.ops[k].kind_name()),
            None => "its durable floor: no completed sync covered it".to_string(),
        };
        s.push_str(&format!("; {the_store} was never synced"));
        if let Some(k) = self.in_flight_sync_covering(model, unit) {
            s.push_str(&format!(
                " (op {k}, {}, was still in flight, which guarantees nothing)",
                spec.ops[k].kind_name()
            ));
        }
        if unit.allowed().len() == 1 {
            s.push_str("; it is its only allowed version");
        }
        s
    }

    fn in_flight_sync_covering(&self, model: &PowerLossModel<'_>, unit: &Unit<'_>) -> Option<usize> {
        let k = model.in_flight_op()?;
        let ps = model.spec().page_size;
        match model.spec().ops[k] {
            Op::Fsync | Op::Fdatasync => Some(k),
            Op::Msync { range, flags: MsyncFlags::MsSync } => {
                let pages = ByteRange::new(range.start / ps * ps, range.end.div_ceil(ps) * ps);
                pages.overlaps(&unit.range).then_some(k)
            }
            _ => None,
        }
    }

    /// "page 3 holds version 7 (synced)": a unit holding good bytes of ack `a` in `c`.
    fn good_unit(&self, model: &PowerLossModel<'_>, a: usize, c: &ChoiceVector) -> Option<String> {
        let spec = model.spec();
        let size = model.sizes()[c.size];
        for &s in &self.acks[a].stores {
            let sr = spec.ops[s].store_range().expect("acks cover stores");
            if sr.start >= size {
                continue;
            }
            let within = ByteRange::new(sr.start, sr.end.min(size));
            let mut i = model.first_unit_ending_after(within.start);
            while let Some(unit) = model.units().get(i).filter(|u| u.range.start < within.end) {
                let sub = ByteRange::new(unit.range.start.max(within.start), unit.range.end.min(within.end));
                let (j, v) = Self::held(model, i, c);
                if classify(v, sub, s) & GOOD != 0 {
                    let durability = if j == 0 && unit.floor_sync.is_some() {
                        " (synced)"
                    } else if j == 0 {
                        ""
                    } else {
                        " (written back, never synced)"
                    };
                    return Some(format!("{} holds {}{durability}", unit.id, v.origin.describe()));
                }
                i += 1;
            }
        }
        None
    }

    fn size_explanation(
        &self,
        model: &PowerLossModel<'_>,
        a: usize,
        store: usize,
        cut: ByteRange,
        c: &ChoiceVector,
    ) -> (Explanation, ChoiceVector) {
        let ack = &self.acks[a];
        let size = model.sizes()[c.size];
        let status = self.evaluate_one(a, c);
        let which = if size == model.durable_size() {
            format!("its durable size; the change to {} bytes was never synced", model.crash_len())
        } else {
            "a size it had before the crash that no completed sync made final".to_string()
        };
        let text = format!(
            "ack {} {}: the file is {size} bytes ({which}), which leaves out bytes {}..{} of the store of \
             version {} (op {store})",
            ack.id,
            status_word(status),
            cut.start,
            cut.end,
            store_version(model, store)
        );
        let explanation = Explanation {
            ack: ack.id,
            op: ack.op,
            status,
            text,
            state: model.crash_state(c),
            pages: Vec::new(),
            size: Some(size),
        };
        (explanation, c.clone())
    }
}

fn store_version(model: &PowerLossModel<'_>, store: usize) -> u32 {
    match model.spec().ops[store] {
        Op::Store { version, .. } => version,
        _ => unreachable!("acks cover stores"),
    }
}

fn build_phase(model: &PowerLossModel<'_>, acks: &[JudgedAck], z: usize) -> Phase {
    let spec = model.spec();
    let size = model.sizes()[z];
    let mut phase =
        Phase { fixed: Vec::new(), by_dim: vec![Vec::new(); model.dims()], by_ack: Vec::new(), classes: Vec::new() };
    for (a, ack) in acks.iter().enumerate() {
        let mut fixed = FixedPart::default();
        let mut dim_bits: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
        for &s in &ack.stores {
            let r = spec.ops[s].store_range().expect("acks cover stores");
            if r.end > size {
                // Bytes at or beyond the smallest length the file had since
                // the store were cut on purpose; those below it were in the
                // file at the crash, and this size loses them.
                let beyond = ByteRange::new(r.start.max(size), r.end);
                let m = model.store_min_len(s).max(beyond.start);
                if beyond.end > m {
                    fixed.cut = true;
                }
                if beyond.start < m.min(beyond.end) {
                    fixed.bits |= BAD;
                    fixed.bad_size.get_or_insert((s, ByteRange::new(beyond.start, m.min(beyond.end))));
                }
            }
            if r.start >= size {
                continue;
            }
            let within = ByteRange::new(r.start, r.end.min(size));
            let mut pos = within.start;
            let mut i = model.first_unit_ending_after(pos);
            while pos < within.end {
                let Some(unit) = model.units().get(i).filter(|u| u.range.start < within.end) else {
                    // The rest was never changed: it holds the initial content.
                    fixed.bits |= BAD;
                    fixed.bad_unit.get_or_insert(UnitRef::Untouched(pos));
                    break;
                };
                if unit.range.start > pos {
                    fixed.bits |= BAD;
                    fixed.bad_unit.get_or_insert(UnitRef::Untouched(pos));
                }
                let sub = ByteRange::new(unit.range.start.max(within.start), unit.range.end.min(within.end));
                match model.dim_of_unit(i) {
                    Some(d) => {
                        let bits = dim_bits.entry(d).or_insert_with(|| vec![0; model.radix(d) as usize]);
                        for (j, v) in unit.allowed().iter().enumerate() {
                            bits[j] |= classify(v, sub, s);
                        }
                    }
                    None => {
                        let b = classify(unit.floor(), sub, s);
                        fixed.bits |= b;
                        if b & BAD != 0 {
                            fixed.bad_unit.get_or_insert(UnitRef::Touched(i));
                        }
                    }
                }
                pos = sub.end;
                i += 1;
            }
        }
        let mut links = Vec::new();
        for (d, bits) in dim_bits {
            if bits.iter().all(|&b| b == bits[0]) {
                // The choice cannot change this ack's verdict: fold it in.
                fixed.bits |= bits[0];
                if bits[0] & BAD != 0 {
                    fixed.bad_unit.get_or_insert(UnitRef::Touched(model.dim_unit_index(d)));
                }
                continue;
            }
            let offset = phase.classes.len() as u32;
            phase.classes.extend_from_slice(&bits);
            phase.by_dim[d].push(Link { ack: a as u32, offset });
            links.push(AckLink { dim: d as u32, offset });
        }
        phase.fixed.push(fixed);
        phase.by_ack.push(links);
    }
    phase
}

/// How many checked states gave an ack each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCounts {
    pub survived: u64,
    pub torn: u64,
    pub lost: u64,
    pub truncated: u64,
}

impl StatusCounts {
    fn add(&mut self, s: AckStatus, n: u64) {
        match s {
            AckStatus::Survived => self.survived += n,
            AckStatus::Torn => self.torn += n,
            AckStatus::Lost => self.lost += n,
            AckStatus::Truncated => self.truncated += n,
        }
    }

    pub fn total(&self) -> u64 {
        self.survived + self.torn + self.lost + self.truncated
    }
}

/// Follows the explorer from state to state and counts, per ack, the states
/// of each status. Costs O(acks touching the changed unit) per change: each
/// ack's status is credited to the states it held for when it changes.
pub struct AckTracker<'j> {
    judge: &'j AckJudge,
    phase: Option<usize>,
    good: Vec<u32>,
    bad: Vec<u32>,
    status: Vec<AckStatus>,
    since: Vec<u64>,
    counts: Vec<StatusCounts>,
}

impl<'j> AckTracker<'j> {
    pub fn new(judge: &'j AckJudge) -> AckTracker<'j> {
        let n = judge.acks.len();
        AckTracker {
            judge,
            phase: None,
            good: vec![0; n],
            bad: vec![0; n],
            status: vec![AckStatus::Survived; n],
            since: vec![0; n],
            counts: vec![StatusCounts::default(); n],
        }
    }

    /// Start judging states of size `z` from the choice `versions`; `now` is
    /// the number of states visited so far.
    pub fn enter_phase(&mut self, z: usize, versions: &[u32], now: u64) {
        self.flush(now);
        self.phase = Some(z);
        let ph = &self.judge.phases[z];
        for a in 0..self.judge.acks.len() {
            let (mut good, mut bad) = (0, 0);
            for l in &ph.by_ack[a] {
                let b = ph.classes[l.offset as usize + versions[l.dim as usize] as usize];
                good += (b & GOOD != 0) as u32;
                bad += (b & BAD != 0) as u32;
            }
            self.good[a] = good;
            self.bad[a] = bad;
            self.status[a] = self.status_now(ph, a);
        }
    }

    #[inline]
    fn status_now(&self, ph: &Phase, a: usize) -> AckStatus {
        let f = &ph.fixed[a];
        let bits = f.bits | if self.good[a] > 0 { GOOD } else { 0 } | if self.bad[a] > 0 { BAD } else { 0 };
        status_of(bits, f.cut)
    }

    /// Dimension `dim` goes from version `from` to `to` while building state `now`.
    #[inline]
    pub fn change(&mut self, dim: usize, from: u32, to: u32, now: u64) {
        let judge = self.judge;
        let ph = &judge.phases[self.phase.expect("enter_phase first")];
        for l in &ph.by_dim[dim] {
            let a = l.ack as usize;
            let old = ph.classes[l.offset as usize + from as usize];
            let new = ph.classes[l.offset as usize + to as usize];
            if old == new {
                continue;
            }
            self.good[a] = self.good[a] + (new & GOOD != 0) as u32 - (old & GOOD != 0) as u32;
            self.bad[a] = self.bad[a] + (new & BAD != 0) as u32 - (old & BAD != 0) as u32;
            let status = self.status_now(ph, a);
            if status != self.status[a] {
                self.counts[a].add(self.status[a], now - self.since[a]);
                self.since[a] = now;
                self.status[a] = status;
            }
        }
    }

    /// Close the books after `now` states.
    pub fn finish(&mut self, now: u64) {
        self.flush(now);
    }

    fn flush(&mut self, now: u64) {
        if self.phase.is_some() {
            for a in 0..self.judge.acks.len() {
                self.counts[a].add(self.status[a], now - self.since[a]);
                self.since[a] = now;
            }
        }
    }

    /// Ack `a`'s status in the current state.
    pub fn status(&self, a: usize) -> AckStatus {
        self.status[a]
    }

    /// Ack `a`'s counts (complete after [`AckTracker::finish`]).
    pub fn counts(&self, a: usize) -> StatusCounts {
        self.counts[a]
    }
}

/// One unit choice of an explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageChoice {
    #[serde(flatten)]
    pub unit: UnitId,
    pub version: VersionLabel,
}

/// Why an acked op is not guaranteed, shown on one exact state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    pub ack: u32,
    /// The index of the `Ack` op.
    pub op: usize,
    /// The ack's status in `state`: lost or torn.
    pub status: AckStatus,
    /// e.g. `ack 3 lost: page 2 holds version 0, the initial content (its
    /// durable floor: no completed sync covered it; the store of version 4
    /// (op 6) was never synced)`.
    pub text: String,
    /// The exact state that shows it.
    pub state: CrashState,
    /// The smallest set of unit choices that breaks the ack (empty when the
    /// file size alone does).
    pub pages: Vec<PageChoice>,
    /// Set when the file size is what breaks the ack.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}
