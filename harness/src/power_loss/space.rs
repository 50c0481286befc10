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
//! Versions are kept as lists of byte ranges with their [`Owner`] (who wrote
//! them last), so the judge can decide survival from owners alone and the
//! explorer can materialize a version with a few `memcpy`s from the payloads.
//!
//! Architecture Invariant: pure; cost is in ops and touched units, never in
//! file bytes (except for materializing and [`PowerLossModel::allows`]).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::crash_state::{CrashState, DefaultChoice};
use super::{PowerLossConfig, PowerLossError};
use crate::live_image::{FileEvent, Owner};
use crate::payload::Payloads;
use crate::process_model::{file_events, TrialFacts};
use crate::spec::{pattern_byte, ByteRange, MappingKind, MsyncFlags, Op, WriterSpec};

/// A unit of persistence: a page, or one sector of a page when the model
/// tears pages into sectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UnitId {
    pub page: u64,
    /// The sector within the page, when tearing is modelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sector: Option<u32>,
}

impl UnitId {
    /// The compact form crash states use: `p3`, or `p3s5` for sector 5 of page 3.
    pub fn code(&self) -> String {
        match self.sector {
            None => format!("p{}", self.page),
            Some(s) => format!("p{}s{s}", self.page),
        }
    }

    pub fn parse_code(s: &str) -> Option<UnitId> {
        let rest = s.strip_prefix('p')?;
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        match rest.split_once('s') {
            None if digits(rest) => Some(UnitId { page: rest.parse().ok()?, sector: None }),
            Some((p, sec)) if digits(p) && digits(sec) => {
                Some(UnitId { page: p.parse().ok()?, sector: Some(sec.parse().ok()?) })
            }
            _ => None,
        }
    }
}

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sector {
            None => write!(f, "page {}", self.page),
            Some(s) => write!(f, "page {} sector {s}", self.page),
        }
    }
}

/// The name of a unit version, unique within the unit and stable across
/// rebuilds of the model, so a state written as text rebuilds exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum VersionLabel {
    /// The content right after the store of this spec version (`v0`: the
    /// initial content). Store versions are unique within a spec.
    Version(u32),
    /// The zeros the `n`-th truncation of the trial (0-based, parent's
    /// included) left beyond its new end.
    Truncation(u32),
}

impl fmt::Display for VersionLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionLabel::Version(v) => write!(f, "v{v}"),
            VersionLabel::Truncation(t) => write!(f, "t{t}"),
        }
    }
}

impl FromStr for VersionLabel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("bad version `{s}` (expected vN or tN)");
        let (tag, n) = s.split_at_checked(1).ok_or_else(bad)?;
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: u32 = n.parse().map_err(|_| bad())?;
        match tag {
            "v" => Ok(VersionLabel::Version(n)),
            "t" => Ok(VersionLabel::Truncation(n)),
            _ => Err(bad()),
        }
    }
}

impl From<VersionLabel> for String {
    fn from(v: VersionLabel) -> String {
        v.to_string()
    }
}

impl TryFrom<String> for VersionLabel {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// What made a unit version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionOrigin {
    Initial,
    Store {
        op: usize,
        version: u32,
    },
    /// A truncation to `len` zeroed the unit's bytes beyond `len`; `op` is
    /// `None` when the parent truncated.
    Truncation {
        ordinal: u32,
        op: Option<usize>,
        len: u64,
    },
}

impl VersionOrigin {
    pub fn label(&self) -> VersionLabel {
        match *self {
            VersionOrigin::Initial => VersionLabel::Version(0),
            VersionOrigin::Store { version, .. } => VersionLabel::Version(version),
            VersionOrigin::Truncation { ordinal, .. } => VersionLabel::Truncation(ordinal),
        }
    }

    /// Words for explanations: "version 7", "the zeros of the truncation to 4096 bytes by op 5".
    pub fn describe(&self) -> String {
        match *self {
            VersionOrigin::Initial => "version 0, the initial content".into(),
            VersionOrigin::Store { version, .. } => format!("version {version}"),
            VersionOrigin::Truncation { op: Some(op), len, .. } => {
                format!("the zeros of the truncation to {len} bytes by op {op}")
            }
            VersionOrigin::Truncation { op: None, len, .. } => {
                format!("the zeros of the parent's truncation to {len} bytes")
            }
        }
    }
}

/// A run of a unit's bytes with one owner; `src` is where its bytes are
/// (`None`: zeros), resolved once so materializing is plain `memcpy`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Piece<'a> {
    pub(super) range: ByteRange,
    pub(super) owner: Owner,
    pub(super) src: Option<&'a [u8]>,
}

/// One content a unit had at some point of the trial.
#[derive(Debug, Clone)]
pub struct UnitVersion<'a> {
    pub origin: VersionOrigin,
    /// Made by the op that was in flight at the crash: it may or may not have
    /// happened, and a store in flight may be any mix of old and new bytes.
    pub in_flight: bool,
    /// Position in the trial's event order, 1-based (0: the initial
    /// content); orders versions against ops (see [`PowerLossModel::op_event`]).
    pub(super) event: usize,
    /// Disjoint, sorted, covering the unit.
    pub(super) pieces: Vec<Piece<'a>>,
}

impl UnitVersion<'_> {
    pub fn label(&self) -> VersionLabel {
        self.origin.label()
    }

    /// Write this version's bytes into `file` (a buffer of the whole mapping).
    #[inline]
    pub(super) fn write_into(&self, file: &mut [u8]) {
        for p in &self.pieces {
            let dst = &mut file[p.range.start as usize..p.range.end as usize];
            match p.src {
                Some(s) => dst.copy_from_slice(s),
                None => dst.fill(0),
            }
        }
    }

    /// Write this version's bytes into `out`, a buffer of the unit `range`
    /// alone (offset 0 is `range.start`).
    pub(crate) fn write_unit(&self, range: ByteRange, out: &mut [u8]) {
        for p in &self.pieces {
            let dst = &mut out[(p.range.start - range.start) as usize..(p.range.end - range.start) as usize];
            match p.src {
                Some(s) => dst.copy_from_slice(s),
                None => dst.fill(0),
            }
        }
    }

    /// The first offset below `len` where `file` differs from this version.
    fn first_mismatch(&self, file: &[u8], len: u64) -> Option<u64> {
        for p in &self.pieces {
            let end = p.range.end.min(len);
            if p.range.start >= end {
                break;
            }
            let got = &file[p.range.start as usize..end as usize];
            let same = match p.src {
                Some(s) => *got == s[..got.len()],
                None => got.iter().all(|&b| b == 0),
            };
            if !same {
                let want = |i: usize| p.src.map_or(0, |s| s[i]);
                let i = (0..got.len()).find(|&i| got[i] != want(i)).expect("slices differ");
                return Some(p.range.start + i as u64);
            }
        }
        None
    }
}

/// A unit the trial changed at some point, with its whole history.
#[derive(Debug, Clone)]
pub struct Unit<'a> {
    pub id: UnitId,
    pub range: ByteRange,
    history: Vec<UnitVersion<'a>>,
    /// `history[floor]` is the content at the last completed sync covering
    /// the unit (or the initial content).
    floor: usize,
    /// The op whose completion set the floor, if any sync did.
    pub floor_sync: Option<usize>,
}

impl<'a> Unit<'a> {
    /// The versions a power loss may leave, oldest (the durable floor) first.
    pub fn allowed(&self) -> &[UnitVersion<'a>] {
        &self.history[self.floor..]
    }

    /// Every version the unit had, including those older than the floor.
    pub fn history(&self) -> &[UnitVersion<'a>] {
        &self.history
    }

    pub fn floor(&self) -> &UnitVersion<'a> {
        &self.history[self.floor]
    }

    fn position_of(&self, label: VersionLabel) -> Option<usize> {
        self.allowed().iter().position(|v| v.label() == label)
    }
}

/// One state: a size and one allowed version per dirty unit ("dimension").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ChoiceVector {
    /// Index into [`PowerLossModel::sizes`].
    pub size: usize,
    /// Per dimension, an index into its unit's allowed versions
    /// (0: the durable floor). Dimensions wholly beyond the size are 0.
    pub versions: Vec<u32>,
}

/// Why a file cannot be a state of the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "forbidden", rename_all = "snake_case")]
pub enum Forbidden {
    #[error("the file is {len} bytes; the model allows only {allowed:?}")]
    Size { len: u64, allowed: Vec<u64> },
    #[error("only {have} bytes given for a file of {len} bytes")]
    ShortBuffer { len: u64, have: u64 },
    #[error("{unit} (bytes {}..{}) {detail}", range.start, range.end)]
    Content { unit: UnitId, range: ByteRange, detail: String },
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
                let id =
                    UnitId { page: range.start / ps, sector: torn.then_some(((range.start % ps) / unit_size) as u32) };
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

    /// The text form of a state: only what differs from the all-floor or the
    /// all-newest state, whichever is shorter.
    pub fn crash_state(&self, c: &ChoiceVector) -> CrashState {
        let within = self.dims_within(c.size);
        let listed = |default: DefaultChoice| {
            let def_len = match default {
                DefaultChoice::Floor => self.durable_size,
                DefaultChoice::Newest => self.newest_size,
            };
            let len = (self.sizes[c.size] != def_len).then_some(self.sizes[c.size]);
            let units: Vec<(UnitId, VersionLabel)> = (0..within)
                .filter(|&d| {
                    let v = c.versions[d];
                    match default {
                        DefaultChoice::Floor => v != 0,
                        DefaultChoice::Newest => v != self.radix(d) - 1,
                    }
                })
                .map(|d| (self.dim_unit(d).id, self.dim_unit(d).allowed()[c.versions[d] as usize].label()))
                .collect();
            CrashState { default, len, units }
        };
        let newest = listed(DefaultChoice::Newest);
        let floor = listed(DefaultChoice::Floor);
        let weight = |s: &CrashState| s.units.len() + s.len.is_some() as usize;
        if weight(&floor) < weight(&newest) {
            floor
        } else {
            newest
        }
    }

    /// The choice vector a text state names. Units not listed take the
    /// default; a listed unit must name one of its allowed versions.
    pub fn resolve(&self, s: &CrashState) -> Result<ChoiceVector, PowerLossError> {
        let err = |reason: String| PowerLossError::State { state: s.to_string(), reason };
        let len = s.len.unwrap_or(match s.default {
            DefaultChoice::Floor => self.durable_size,
            DefaultChoice::Newest => self.newest_size,
        });
        let z = self.size_index(len).ok_or_else(|| err(format!("size {len} is not one of {:?}", self.sizes)))?;
        let mut c = match s.default {
            DefaultChoice::Floor => self.floor_choice(z),
            DefaultChoice::Newest => self.newest_choice(z),
        };
        let ps = self.spec.page_size;
        for &(id, label) in &s.units {
            let start = id.page * ps + id.sector.map_or(0, |s| s as u64 * self.unit_size);
            let shape_ok = id.sector.is_some() == self.torn
                && !matches!(id.sector, Some(s) if s as u64 >= ps / self.unit_size)
                && start < self.spec.file_size;
            if !shape_ok {
                return Err(err(format!("there is no unit {id} with units of {} bytes", self.unit_size)));
            }
            let i = self.first_unit_ending_after(start);
            match self.units.get(i).filter(|u| u.range.start == start) {
                Some(u) => {
                    let Some(v) = u.position_of(label) else {
                        let allowed: Vec<String> = u.allowed().iter().map(|v| v.label().to_string()).collect();
                        return Err(err(format!("{id} cannot hold {label}; it may hold {}", allowed.join(", "))));
                    };
                    if let Some(d) = self.dim_of_unit(i) {
                        c.versions[d] = v as u32;
                    }
                }
                None if label == VersionLabel::Version(0) => {}
                None => return Err(err(format!("{id} never changed; it can only hold v0"))),
            }
        }
        self.canonicalize(&mut c);
        Ok(c)
    }

    /// Is this file (`len` bytes, taken from the front of `state_bytes`) one
    /// the model allows? Checks the size, then every unit against its allowed
    /// versions; a unit may also hold a store **half applied** (any mix of
    /// the old and new bytes of a store that made one of its allowed
    /// versions from the previous one; see [`Self::half_applied_store`]).
    /// Names the first forbidden unit.
    pub fn allows(&self, state_bytes: &[u8], len: u64) -> Result<(), Forbidden> {
        if self.size_index(len).is_none() {
            return Err(Forbidden::Size { len, allowed: self.sizes.clone() });
        }
        if (state_bytes.len() as u64) < len {
            return Err(Forbidden::ShortBuffer { len, have: state_bytes.len() as u64 });
        }
        let file = &state_bytes[..len as usize];
        let mut pos = 0u64;
        for unit in &self.units {
            if unit.range.start >= len {
                break;
            }
            self.check_untouched(file, ByteRange::new(pos, unit.range.start))?;
            self.check_unit(unit, file, len)?;
            pos = unit.range.end;
        }
        self.check_untouched(file, ByteRange::new(pos.min(len), len))
    }

    /// Units the trial never changed must hold the initial content.
    fn check_untouched(&self, file: &[u8], r: ByteRange) -> Result<(), Forbidden> {
        let (s, e) = (r.start as usize, r.end as usize);
        if file[s..e] == self.payloads.base[s..e] {
            return Ok(());
        }
        let bad = s + (s..e).position(|i| file[i] != self.payloads.base[i]).expect("differs");
        let us = self.unit_size;
        let start = bad as u64 / us * us;
        let range = ByteRange::new(start, start + us);
        let unit = Unit {
            id: self.unit_id_at(start),
            range,
            history: vec![UnitVersion {
                origin: VersionOrigin::Initial,
                in_flight: false,
                event: 0,
                pieces: vec![Piece {
                    range,
                    owner: Owner::Base,
                    src: Some(&self.payloads.base[start as usize..(start + us) as usize]),
                }],
            }],
            floor: 0,
            floor_sync: None,
        };
        Err(self.forbidden(&unit, file, file.len() as u64))
    }

    fn unit_id_at(&self, start: u64) -> UnitId {
        let ps = self.spec.page_size;
        UnitId { page: start / ps, sector: self.torn.then_some(((start % ps) / self.unit_size) as u32) }
    }

    fn check_unit(&self, unit: &Unit<'_>, file: &[u8], len: u64) -> Result<(), Forbidden> {
        let allowed = unit.allowed();
        if allowed.iter().any(|v| v.first_mismatch(file, len).is_none()) {
            return Ok(());
        }
        if Self::half_applied_in(unit, self.unit_size, file, len).is_some() {
            return Ok(());
        }
        Err(self.forbidden(unit, file, len))
    }

    /// Does dimension `d` hold a store half applied in `file`? Its allowed
    /// version made by that store (the newer of the pair), if so.
    pub fn half_applied_store(&self, d: usize, file: &[u8]) -> Option<u32> {
        Self::half_applied_in(self.dim_unit(d), self.unit_size, file, file.len() as u64).map(|v| v as u32)
    }

    /// A store is copied into the page cache a few bytes at a time (memcpy
    /// may even store its unaligned head last), and writeback does not wait
    /// for it: a page written back while a store was copying into it holds
    /// that store half applied, and if the power goes before a later
    /// writeback of the page reaches the disk, that is what survives. So
    /// for every pair of consecutive allowed versions where the newer one
    /// was made by a store (in flight at the crash, or completed but not
    /// yet made durable), each byte may hold the older or the newer value.
    /// Measured: a vm cut on a volatile-cache disk kept a completed 32 KiB
    /// store with its first 7 bytes old (reports/SOUNDNESS.md). Pairs below
    /// the floor are excluded: a completed sync wrote the whole newer page.
    /// Returns the index (in `allowed`) of the newer version of the first
    /// pair that explains `file`'s bytes of this unit.
    fn half_applied_in(unit: &Unit<'_>, unit_size: u64, file: &[u8], len: u64) -> Option<usize> {
        let allowed = unit.allowed();
        (1..allowed.len()).find(|&k| {
            matches!(allowed[k].origin, VersionOrigin::Store { .. })
                && Self::is_mix_of(&allowed[k - 1], &allowed[k], unit, unit_size, file, len)
        })
    }

    /// Each of the unit's bytes in `file` holds `old`'s value or `new`'s.
    fn is_mix_of(
        old: &UnitVersion<'_>,
        new: &UnitVersion<'_>,
        unit: &Unit<'_>,
        unit_size: u64,
        file: &[u8],
        len: u64,
    ) -> bool {
        let us = unit_size as usize;
        let (mut old_bytes, mut new_bytes) = (vec![0u8; us], vec![0u8; us]);
        let base = unit.range.start;
        old.write_unit(unit.range, &mut old_bytes);
        new.write_unit(unit.range, &mut new_bytes);
        let end = unit.range.end.min(len);
        (unit.range.start..end).all(|pos| {
            let (i, got) = ((pos - base) as usize, file[pos as usize]);
            got == old_bytes[i] || got == new_bytes[i]
        })
    }

    /// Say what a forbidden unit holds: an older version than its floor, a
    /// store from after the crash, zeros, or bytes no op wrote.
    fn forbidden(&self, unit: &Unit<'_>, file: &[u8], len: u64) -> Forbidden {
        let allowed: Vec<String> = unit.allowed().iter().map(|v| v.label().to_string()).collect();
        let floor = unit.floor();
        let floor_words = match unit.floor_sync {
            Some(op) => format!("{} (made durable by op {op}, {})", floor.label(), self.spec.ops[op].kind_name()),
            None => format!("{} (no completed sync covered it)", floor.label()),
        };
        let detail = if let Some(old) =
            unit.history()[..unit.floor].iter().rev().find(|v| v.first_mismatch(file, len).is_none())
        {
            format!(
                "holds {}, older than its durable floor {floor_words}; it may hold only {}",
                old.label(),
                allowed.join(", ")
            )
        } else {
            let newest = unit.allowed().last().expect("a unit has a version");
            let pos = newest.first_mismatch(file, len).unwrap_or(unit.range.start);
            format!(
                "holds none of its allowed versions {} (durable floor {floor_words}): at byte {pos} it differs \
                 from {} and holds {}",
                allowed.join(", "),
                newest.label(),
                self.identify(file, pos, unit.range.end.min(len))
            )
        };
        Forbidden::Content { unit: unit.id, range: unit.range, detail }
    }

    /// Name the bytes at `pos`: compare the 8-byte word holding it (a single
    /// byte matches another version by chance one time in 256).
    fn identify(&self, file: &[u8], pos: u64, end: u64) -> String {
        // With tiny tear sizes the word may reach into a neighbouring unit;
        // it only serves to name the bytes.
        let w0 = pos & !7;
        let w1 = (w0 + 8).min(end);
        let word = &file[w0 as usize..w1 as usize];
        let is = |version: u32| word.iter().zip(w0..).all(|(&b, p)| b == pattern_byte(p, version));
        if word.iter().all(|&b| b == 0) {
            return "zeros".into();
        }
        if is(0) {
            return "version 0 (the initial content)".into();
        }
        for (i, op) in self.spec.ops.iter().enumerate() {
            if let Op::Store { offset, len, version } = *op {
                if offset <= w0 && w1 <= offset + len && is(version) {
                    let when = if i >= self.completed && Some(i) != self.in_flight_op {
                        "which had not run when the writer died"
                    } else {
                        "not an allowed version here"
                    };
                    return format!("version {version} (op {i}, {when})");
                }
            }
        }
        "bytes no op wrote".into()
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

    #[test]
    fn unit_codes_and_version_labels_round_trip() {
        for id in [UnitId { page: 0, sector: None }, UnitId { page: 12, sector: Some(7) }] {
            assert_eq!(UnitId::parse_code(&id.code()), Some(id));
        }
        for bad in ["p", "3", "p3s", "ps1", "p-1", "p3x1", "p3s1s2"] {
            assert_eq!(UnitId::parse_code(bad), None, "{bad}");
        }
        for l in [VersionLabel::Version(0), VersionLabel::Version(41), VersionLabel::Truncation(2)] {
            assert_eq!(l.to_string().parse::<VersionLabel>(), Ok(l));
        }
        for bad in ["", "v", "x3", "v-1", "t1a", "é1"] {
            assert!(bad.parse::<VersionLabel>().is_err(), "{bad}");
        }
    }
}
