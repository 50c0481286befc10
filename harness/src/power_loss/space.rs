//! The state space of a power loss: for every unit (a page, or a sector of a
//! page when tearing is modelled) the versions it may hold, and the sizes the
//! file may have.
//!
//! Why a product of independent choices: writeback picks dirty pages in an
//! order the writer cannot observe and may write any of them at any moment,
//! so after a power loss each page holds whatever it held when it was last
//! written back — any version between its *durable floor* (its content at the
//! last completed sync covering it) and the crash. Nothing ties one page's
//! choice to another's.
//!
//! The units and their versions are in [`super::unit`]; the byte-level
//! membership check [`PowerLossModel::allows`] is in [`super::allows`]; the
//! text of a state in [`super::crash_state`]. The model describes its
//! dimensions (units with more than one allowed version) and their radices
//! to the exploration kernel ([`crate::explore`]).
//!
//! Architecture Invariant: pure; cost is in ops and touched units, never in
//! file bytes (except for materializing and [`PowerLossModel::allows`]).

use std::collections::BTreeMap;

use super::unit::{Piece, Unit, UnitId, UnitVersion, VersionOrigin};
use super::{PowerLossConfig, PowerLossError};
use crate::live_image::{FileEvent, Owner};
use crate::payload::Payloads;
use crate::process_model::{file_events, TrialFacts};
use crate::spec::{ByteRange, MappingKind, MsyncFlags, Op, WriterSpec};

/// One state: a size and one allowed version per dirty unit ("dimension").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ChoiceVector {
    /// Index into [`PowerLossModel::sizes`].
    pub size: usize,
    /// Per dimension, an index into its unit's allowed versions
    /// (0: the durable floor). Dimensions wholly beyond the size are 0.
    pub versions: Vec<u32>,
}

/// The power-loss model of one trial.
pub struct PowerLossModel<'a> {
    spec: &'a WriterSpec,
    payloads: &'a Payloads,
    unit_size: u64,
    torn: bool,
    /// Every unit the trial changed, in file order.
    units: Vec<Unit<'a>>,
    /// Indices into `units` of those with more than one allowed version.
    dirty: Vec<usize>,
    /// Per unit: its dimension, or `u32::MAX` when it has one allowed version.
    dim_of_unit: Vec<u32>,
    sizes: Vec<u64>,
    durable_size: u64,
    newest_size: u64,
    /// The file length when the writer died, the in-flight op aside.
    crash_len: u64,
    /// Per op: for a completed store, the smallest length the file had from
    /// that store until the crash (bytes at or beyond it were cut by a
    /// truncation, not lost). `u64::MAX` otherwise.
    store_min_len: Vec<u64>,
    /// Per op: its 1-based position in the trial's events (`usize::MAX`: it
    /// never ran).
    op_event: Vec<usize>,
    completed: usize,
    in_flight_op: Option<usize>,
    /// Per size: how many dimensions start below it (a prefix of `dirty`).
    dims_within: Vec<usize>,
}

/// A unit version while the timeline is replayed: owners, no bytes yet.
struct VersionBuild {
    origin: VersionOrigin,
    in_flight: bool,
    event: usize,
    pieces: Vec<(ByteRange, Owner)>,
}

/// A unit while the timeline is replayed.
struct UnitBuild {
    pieces: Vec<(ByteRange, Owner)>,
    history: Vec<VersionBuild>,
    floor: usize,
    floor_sync: Option<usize>,
}

struct Builder<'s> {
    spec: &'s WriterSpec,
    unit_size: u64,
    units: BTreeMap<u64, UnitBuild>,
    len: u64,
    sizes: Vec<u64>,
    durable_size: u64,
    store_min_len: Vec<u64>,
    applied_stores: Vec<usize>,
    truncations: u32,
}

impl Builder<'_> {
    /// Paint `owner` over `r` in every unit it touches; each unit that
    /// changes gets a new version.
    fn change(&mut self, r: ByteRange, owner: Owner, origin: VersionOrigin, in_flight: bool, event: usize) {
        if r.is_empty() {
            return;
        }
        let us = self.unit_size;
        for u in r.start / us..r.end.div_ceil(us) {
            let ur = ByteRange::new(u * us, (u + 1) * us);
            let sub = ByteRange::new(r.start.max(ur.start), r.end.min(ur.end));
            let unit = self.units.entry(u).or_insert_with(|| UnitBuild {
                pieces: vec![(ur, Owner::Base)],
                history: vec![VersionBuild {
                    origin: VersionOrigin::Initial,
                    in_flight: false,
                    event: 0,
                    pieces: vec![(ur, Owner::Base)],
                }],
                floor: 0,
                floor_sync: None,
            });
            if paint(&mut unit.pieces, sub, owner) {
                unit.history.push(VersionBuild { origin, in_flight, event, pieces: unit.pieces.clone() });
            }
        }
    }

    fn store(&mut self, op: usize, in_flight: bool, event: usize) {
        let Op::Store { offset, len, version } = self.spec.ops[op] else { unreachable!("not a store") };
        if !in_flight {
            self.store_min_len[op] = self.len;
            self.applied_stores.push(op);
        }
        if self.spec.mapping == MappingKind::Private {
            return;
        }
        // Bytes beyond EOF (inside the last page) are not part of the file.
        let r = ByteRange::new(offset, (offset + len).min(self.len).max(offset));
        self.change(r, Owner::Store(op), VersionOrigin::Store { op, version }, in_flight, event);
    }

    /// A completed durable sync of `r` (`None`: the whole file).
    fn sync(&mut self, r: Option<ByteRange>, op: usize) {
        let us = self.unit_size;
        let units: Box<dyn Iterator<Item = &mut UnitBuild>> = match r {
            None => Box::new(self.units.values_mut()),
            Some(r) => Box::new(self.units.range_mut(r.start / us..r.end.div_ceil(us)).map(|(_, u)| u)),
        };
        for u in units {
            u.floor = u.history.len() - 1;
            u.floor_sync = Some(op);
        }
        // MS_SYNC, fsync and fdatasync all commit the size the data needs.
        self.sizes = vec![self.len];
        self.durable_size = self.len;
    }

    fn truncate(&mut self, len: u64, op: Option<usize>, in_flight: bool, event: usize) {
        let ordinal = self.truncations;
        self.truncations += 1;
        if len < self.len {
            let origin = VersionOrigin::Truncation { ordinal, op, len };
            self.change(ByteRange::new(len, self.len), Owner::Zero, origin, in_flight, event);
        }
        self.len = len;
        self.sizes.push(len);
        for &s in &self.applied_stores {
            self.store_min_len[s] = self.store_min_len[s].min(len);
        }
    }
}

/// Paint `owner` over `r` in a unit's sorted pieces; false if nothing changed.
fn paint(pieces: &mut Vec<(ByteRange, Owner)>, r: ByteRange, owner: Owner) -> bool {
    if pieces.iter().all(|(pr, po)| !pr.overlaps(&r) || *po == owner) {
        return false;
    }
    let mut out: Vec<(ByteRange, Owner)> = Vec::with_capacity(pieces.len() + 2);
    let push = |out: &mut Vec<(ByteRange, Owner)>, pr: ByteRange, po: Owner| {
        if pr.is_empty() {
            return;
        }
        // Adjacent runs of one owner are contiguous in their source too.
        match out.last_mut() {
            Some((last, lo)) if *lo == po && last.end == pr.start => last.end = pr.end,
            _ => out.push((pr, po)),
        }
    };
    let mut placed = false;
    for &(pr, po) in pieces.iter() {
        if pr.end <= r.start {
            push(&mut out, pr, po);
            continue;
        }
        if pr.start < r.start {
            push(&mut out, ByteRange::new(pr.start, r.start), po);
        }
        if !placed && pr.start < r.end {
            push(&mut out, r, owner);
            placed = true;
        }
        if pr.end > r.end {
            push(&mut out, ByteRange::new(pr.start.max(r.end), pr.end), po);
        }
    }
    *pieces = out;
    true
}

fn check_facts(spec: &WriterSpec, facts: &TrialFacts) -> Result<(), PowerLossError> {
    let n = spec.ops.len();
    let j = &facts.journal;
    let bad = |m: String| Err(PowerLossError::Facts(m));
    if j.completed > n {
        return bad(format!("{} ops completed of {n}", j.completed));
    }
    if let Some(i) = j.in_flight {
        if i != j.completed || i >= n {
            return bad(format!("op {i} in flight after {} completed ops of {n}", j.completed));
        }
    }
    if let Some((_, len)) = facts.external_truncate {
        if len > spec.file_size {
            return bad(format!("external truncation to {len} beyond the mapping size {}", spec.file_size));
        }
    }
    Ok(())
}

impl<'a> PowerLossModel<'a> {
    /// Replay the trial's file events and keep, per unit, its versions since
    /// its durable floor. The op in flight at the crash adds one more
    /// possible version (a store's fully applied bytes, a truncation's
    /// zeros); a sync in flight adds nothing, because it guarantees nothing.
    pub fn build(
        spec: &'a WriterSpec,
        payloads: &'a Payloads,
        facts: &TrialFacts,
        cfg: &PowerLossConfig,
    ) -> Result<PowerLossModel<'a>, PowerLossError> {
        cfg.validate(spec.page_size)?;
        check_facts(spec, facts)?;
        let unit_size = cfg.tear.unwrap_or(spec.page_size);
        let mut b = Builder {
            spec,
            unit_size,
            units: BTreeMap::new(),
            len: spec.file_size,
            sizes: vec![spec.file_size],
            durable_size: spec.file_size,
            store_min_len: vec![u64::MAX; spec.ops.len()],
            applied_stores: Vec::new(),
            truncations: 0,
        };
        let shared = spec.mapping == MappingKind::Shared;
        let events = file_events(facts);
        let event_count = events.len();
        let mut op_event = vec![usize::MAX; spec.ops.len()];
        for (i, e) in events.into_iter().enumerate() {
            let event = i + 1;
            if let FileEvent::Op(op) = e {
                op_event[op] = event;
            }
            match e {
                FileEvent::ExternalTruncate(len) => b.truncate(len, None, false, event),
                FileEvent::Op(i) => match spec.ops[i] {
                    Op::Store { .. } => b.store(i, false, event),
                    // msync of a MAP_PRIVATE mapping never reaches the file
                    // (Linux only fsyncs shared mappings), so it syncs nothing.
                    Op::Msync { range, flags: MsyncFlags::MsSync } if shared => {
                        let ps = spec.page_size;
                        let pages = ByteRange::new(range.start / ps * ps, range.end.div_ceil(ps) * ps);
                        b.sync(Some(pages), i)
                    }
                    // MS_ASYNC has been a no-op since Linux 2.6.19.
                    Op::Msync { .. } => {}
                    Op::Fsync | Op::Fdatasync => b.sync(None, i),
                    Op::Truncate { len } => b.truncate(len, Some(i), false, event),
                    Op::Ack { .. } | Op::Munmap => {}
                },
            }
        }
        let crash_len = b.len;
        if let Some(i) = facts.journal.in_flight {
            op_event[i] = event_count + 1;
            match spec.ops[i] {
                Op::Store { .. } => b.store(i, true, event_count + 1),
                Op::Truncate { len } => b.truncate(len, Some(i), true, event_count + 1),
                _ => {}
            }
        }
        let newest_size = b.len;
        let mut sizes: Vec<u64> = Vec::new();
        for s in b.sizes {
            if !sizes.contains(&s) {
                sizes.push(s);
            }
        }

        let ps = spec.page_size;
        let torn = cfg.tear.is_some();
        let base = &payloads.base;
        let resolve = |pieces: &[(ByteRange, Owner)]| -> Vec<Piece<'a>> {
            pieces
                .iter()
                .map(|&(range, owner)| {
                    let (s, e) = (range.start as usize, range.end as usize);
                    let src = match owner {
                        Owner::Base => Some(&base[s..e]),
                        Owner::Store(op) => {
                            let at = spec.ops[op].store_range().expect("owner is a store").start as usize;
                            Some(&payloads.store(spec, op)[s - at..e - at])
                        }
                        Owner::Zero => None,
                    };
                    Piece { range, owner, src }
                })
                .collect()
        };
        let units: Vec<Unit<'a>> = b
            .units
            .into_iter()
            .map(|(u, ub)| {
                let range = ByteRange::new(u * unit_size, (u + 1) * unit_size);
                let id = UnitId::at(range.start, ps, torn.then_some(unit_size));
                let history = ub
                    .history
                    .iter()
                    .map(|v| UnitVersion {
                        origin: v.origin,
                        in_flight: v.in_flight,
                        event: v.event,
                        pieces: resolve(&v.pieces),
                    })
                    .collect();
                Unit { id, range, history, floor: ub.floor, floor_sync: ub.floor_sync }
            })
            .collect();
        let dirty: Vec<usize> = (0..units.len()).filter(|&i| units[i].allowed().len() > 1).collect();
        let mut dim_of_unit = vec![u32::MAX; units.len()];
        for (d, &u) in dirty.iter().enumerate() {
            dim_of_unit[u] = d as u32;
        }
        let dims_within = sizes.iter().map(|&s| dirty.partition_point(|&u| units[u].range.start < s)).collect();
        Ok(PowerLossModel {
            spec,
            payloads,
            unit_size,
            torn,
            units,
            dirty,
            dim_of_unit,
            sizes,
            durable_size: b.durable_size,
            newest_size,
            crash_len,
            store_min_len: b.store_min_len,
            op_event,
            completed: facts.journal.completed,
            in_flight_op: facts.journal.in_flight,
            dims_within,
        })
    }

    pub fn spec(&self) -> &'a WriterSpec {
        self.spec
    }

    pub fn payloads(&self) -> &'a Payloads {
        self.payloads
    }

    pub fn unit_size(&self) -> u64 {
        self.unit_size
    }

    pub fn is_torn(&self) -> bool {
        self.torn
    }

    /// Every unit the trial changed, in file order (others hold the initial
    /// content in every state).
    pub fn units(&self) -> &[Unit<'a>] {
        &self.units
    }

    /// The number of dimensions: units with more than one allowed version.
    pub fn dims(&self) -> usize {
        self.dirty.len()
    }

    /// The unit of dimension `d`.
    pub fn dim_unit(&self, d: usize) -> &Unit<'a> {
        &self.units[self.dirty[d]]
    }

    /// The index into [`PowerLossModel::units`] of dimension `d`.
    pub fn dim_unit_index(&self, d: usize) -> usize {
        self.dirty[d]
    }

    /// How many versions dimension `d` may hold.
    pub fn radix(&self, d: usize) -> u32 {
        self.dim_unit(d).allowed().len() as u32
    }

    pub(super) fn dim_of_unit(&self, unit: usize) -> Option<usize> {
        let d = self.dim_of_unit[unit];
        (d != u32::MAX).then_some(d as usize)
    }

    /// The file sizes a power loss may leave, durable size first.
    pub fn sizes(&self) -> &[u64] {
        &self.sizes
    }

    /// The size at the last completed durable sync (or the initial size).
    pub fn durable_size(&self) -> u64 {
        self.durable_size
    }

    /// The size if everything up to the crash, the op in flight included, happened.
    pub fn newest_size(&self) -> u64 {
        self.newest_size
    }

    /// The file length when the writer died (the op in flight aside).
    pub fn crash_len(&self) -> u64 {
        self.crash_len
    }

    pub fn size_index(&self, len: u64) -> Option<usize> {
        self.sizes.iter().position(|&s| s == len)
    }

    /// Dimensions that lie (at least partly) below size `z`: a prefix.
    pub fn dims_within(&self, z: usize) -> usize {
        self.dims_within[z]
    }

    /// The smallest length the file had from completed store `op` to the crash.
    pub(super) fn store_min_len(&self, op: usize) -> u64 {
        self.store_min_len[op]
    }

    /// When op `op` happened, comparable with [`UnitVersion`] events.
    pub(super) fn op_event(&self, op: usize) -> usize {
        self.op_event[op]
    }

    pub(super) fn completed(&self) -> usize {
        self.completed
    }

    pub(super) fn in_flight_op(&self) -> Option<usize> {
        self.in_flight_op
    }

    /// The unit starting at byte `start` (a multiple of the unit size).
    pub(super) fn unit_id_at(&self, start: u64) -> UnitId {
        UnitId::at(start, self.spec.page_size, self.torn.then_some(self.unit_size))
    }

    /// Index of the first unit whose range ends after `pos`.
    pub(super) fn first_unit_ending_after(&self, pos: u64) -> usize {
        self.units.partition_point(|u| u.range.end <= pos)
    }

    /// The total number of states (`None` beyond `u64`).
    pub fn state_count(&self) -> Option<u64> {
        let mut total: u128 = 0;
        for z in 0..self.sizes.len() {
            let mut n: u128 = 1;
            for d in 0..self.dims_within(z) {
                n = n.saturating_mul(self.radix(d) as u128);
            }
            total = total.saturating_add(n);
        }
        u64::try_from(total).ok()
    }

    /// Every dimension at its durable floor, with size `z`.
    pub fn floor_choice(&self, z: usize) -> ChoiceVector {
        ChoiceVector { size: z, versions: vec![0; self.dims()] }
    }

    /// Every dimension below size `z` at its newest version.
    pub fn newest_choice(&self, z: usize) -> ChoiceVector {
        let mut c = self.floor_choice(z);
        for d in 0..self.dims_within(z) {
            c.versions[d] = self.radix(d) - 1;
        }
        c
    }

    /// The all-floor state: what the disk holds if nothing unsynced was
    /// written back.
    pub fn all_floor(&self) -> ChoiceVector {
        self.floor_choice(self.size_index(self.durable_size).expect("durable size is a size"))
    }

    /// The all-newest state: everything written back, the op in flight
    /// included.
    pub fn all_newest(&self) -> ChoiceVector {
        self.newest_choice(self.size_index(self.newest_size).expect("newest size is a size"))
    }

    /// Dimensions beyond the size do not show in the file; set them to 0 so
    /// one file has one choice vector.
    pub fn canonicalize(&self, c: &mut ChoiceVector) {
        for v in &mut c.versions[self.dims_within(c.size)..] {
            *v = 0;
        }
    }

    /// The whole mapping (not cut to a size) with every unit at its floor.
    pub fn floor_image(&self) -> Vec<u8> {
        let mut file = self.payloads.base.to_vec();
        for u in &self.units {
            u.floor().write_into(&mut file);
        }
        file
    }

    /// Write dimension `d` at allowed version `v` into a whole-mapping buffer.
    #[inline]
    pub fn write_dim(&self, d: usize, v: u32, file: &mut [u8]) {
        self.dim_unit(d).allowed()[v as usize].write_into(file);
    }

    /// The bytes of one state, built from scratch (the explorer builds them
    /// copy-on-write instead).
    pub fn state_bytes(&self, c: &ChoiceVector) -> Vec<u8> {
        let mut file = self.floor_image();
        for (d, &v) in c.versions.iter().enumerate() {
            self.write_dim(d, v, &mut file);
        }
        file.truncate(self.sizes[c.size] as usize);
        file
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paint_splits_merges_and_reports_no_change() {
        let r = |a, b| ByteRange::new(a, b);
        let mut p = vec![(r(0, 100), Owner::Base)];
        assert!(paint(&mut p, r(10, 20), Owner::Store(1)));
        assert_eq!(p, vec![(r(0, 10), Owner::Base), (r(10, 20), Owner::Store(1)), (r(20, 100), Owner::Base)]);
        assert!(paint(&mut p, r(15, 30), Owner::Store(2)));
        assert_eq!(
            p,
            vec![
                (r(0, 10), Owner::Base),
                (r(10, 15), Owner::Store(1)),
                (r(15, 30), Owner::Store(2)),
                (r(30, 100), Owner::Base)
            ]
        );
        assert!(paint(&mut p, r(50, 100), Owner::Zero));
        assert!(!paint(&mut p, r(60, 100), Owner::Zero), "zeros over zeros change nothing");
        assert!(paint(&mut p, r(0, 100), Owner::Store(3)));
        assert_eq!(p, vec![(r(0, 100), Owner::Store(3))]);
    }
}
