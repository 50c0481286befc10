//! A disk with a volatile write cache, as a pure model: what a guest wrote,
//! what it flushed, and which disk images a power cut may leave.
//!
//! A real disk acknowledges a write once the data is in its cache. Only a
//! FLUSH (every write acknowledged before it) or a FUA write (itself) is
//! promised to be on the media when acknowledged; the rest may reach the
//! media in any order, or not at all, when the power goes. [`VolatileDisk`]
//! keeps the **durable** image (what the media is guaranteed to hold) and
//! the **pending** writes since the last flush, in the order they arrived,
//! each with its write id (`w0`, `w1`, ... over the disk's life). Reads see
//! the **newest** content, as the guest does.
//!
//! After a cut, the disk may hold one of these images ([`DiskCutMode`]):
//! - `reorder`: each pending write reached the media whole or not at all,
//!   any subset of them; where kept writes overlap, the later one wins (the
//!   drive writes the newest cached copy of an address).
//! - `torn`: each 512-byte sector independently holds its durable value or
//!   one of the values it took in the cache (right after a pending write
//!   covering it). For whole-sector writes, which the NBD server asks for,
//!   every `reorder` image is also a `torn` one.
//!
//! A [`DiskState`] names one such image compactly (`reorder kept=w3-w5,w9`,
//! `torn kept=s16-s23:w3`) and [`VolatileDisk::image`] materializes it
//! deterministically. [`sample_states`] picks the states a trial checks.
//!
//! Architecture Invariant: pure (no I/O); every random choice comes from the
//! seed passed in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::error::RealcutError;
use crate::explore::gray::MixedRadixGray;

/// The unit a torn write tears at: the classic disk sector.
pub const SECTOR: u64 = 512;

/// States checked per cut unless told otherwise: all kept, none kept, two random.
pub const DEFAULT_STATES_PER_CUT: usize = 4;

/// A write's id: its position among every write the disk received (`w0` first).
pub type WriteId = u64;

/// The values one sector took in the cache, oldest first, each with the
/// write that gave it.
pub type SectorVersions = Vec<(WriteId, Vec<u8>)>;

/// What a power cut may do with the writes the disk had not flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DiskCutMode {
    /// Any subset of the pending writes reached the media, each whole.
    Reorder,
    /// Each sector independently holds its durable value or any value a
    /// pending write gave it.
    Torn,
}

impl DiskCutMode {
    pub fn name(self) -> &'static str {
        match self {
            DiskCutMode::Reorder => "reorder",
            DiskCutMode::Torn => "torn",
        }
    }

    /// What the disk does with unflushed writes, in words (for reports).
    pub fn describe(self) -> &'static str {
        match self {
            DiskCutMode::Reorder => {
                "writes not flushed (FLUSH) or written FUA before the cut may be lost or reordered: any subset of \
                 them reached the media, each whole"
            }
            DiskCutMode::Torn => {
                "writes not flushed (FLUSH) or written FUA before the cut may be lost, reordered or torn: each \
                 512-byte sector they covered independently holds its flushed value or any value they gave it"
            }
        }
    }
}

impl fmt::Display for DiskCutMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DiskCutMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reorder" => Ok(DiskCutMode::Reorder),
            "torn" => Ok(DiskCutMode::Torn),
            _ => Err(format!("unknown disk cut mode `{s}` (expected reorder or torn)")),
        }
    }
}

/// A piece of a pending write: a whole write, or what a later FUA write
/// left of it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PendingExtent {
    write: WriteId,
    offset: u64,
    data: Vec<u8>,
}

impl PendingExtent {
    fn end(&self) -> u64 {
        self.offset + self.data.len() as u64
    }
}

/// A pending write as listed in evidence: its id and the bytes it still
/// holds in the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingWrite {
    pub write: WriteId,
    pub offset: u64,
    pub len: u64,
}

/// The disk: durable image, newest image, pending writes.
#[derive(Debug, Clone)]
pub struct VolatileDisk {
    durable: Vec<u8>,
    /// `durable` with every pending write applied in order: what reads see.
    newest: Vec<u8>,
    /// In arrival order; pieces of one write are adjacent.
    pending: Vec<PendingExtent>,
    next_write: WriteId,
    /// Sectors any write touched: the only ones a state can set apart from
    /// the image the disk started with.
    written: BTreeSet<u64>,
}

impl VolatileDisk {
    /// A disk whose media holds `image`, nothing cached.
    pub fn new(image: Vec<u8>) -> VolatileDisk {
        VolatileDisk {
            newest: image.clone(),
            durable: image,
            pending: Vec::new(),
            next_write: 0,
            written: BTreeSet::new(),
        }
    }

    pub fn size(&self) -> u64 {
        self.durable.len() as u64
    }

    fn range(&self, offset: u64, len: u64) -> Result<std::ops::Range<usize>, RealcutError> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size() => Ok(offset as usize..end as usize),
            _ => Err(RealcutError::Spec(format!(
                "disk access of {len} bytes at {offset} is beyond the disk's {} bytes",
                self.size()
            ))),
        }
    }

    /// The newest content (what the guest reads back).
    pub fn read(&self, offset: u64, len: u64) -> Result<&[u8], RealcutError> {
        Ok(&self.newest[self.range(offset, len)?])
    }

    /// Take a write. Without `fua` it waits in the cache until the next
    /// flush; with `fua` it is on the media when this returns, and the
    /// bytes it covers are no longer pending for older writes (the drive
    /// holds one copy per address: the newest).
    pub fn write(&mut self, offset: u64, data: &[u8], fua: bool) -> Result<WriteId, RealcutError> {
        let r = self.range(offset, data.len() as u64)?;
        let id = self.next_write;
        self.next_write += 1;
        if data.is_empty() {
            return Ok(id);
        }
        self.newest[r.clone()].copy_from_slice(data);
        let end = offset + data.len() as u64;
        self.written.extend(offset / SECTOR..end.div_ceil(SECTOR));
        if fua {
            self.durable[r].copy_from_slice(data);
            // Cut the covered bytes out of older pending writes.
            let mut kept = Vec::with_capacity(self.pending.len() + 1);
            for e in self.pending.drain(..) {
                if e.end() <= offset || e.offset >= end {
                    kept.push(e);
                    continue;
                }
                if e.offset < offset {
                    let n = (offset - e.offset) as usize;
                    kept.push(PendingExtent { write: e.write, offset: e.offset, data: e.data[..n].to_vec() });
                }
                if e.end() > end {
                    let from = (end - e.offset) as usize;
                    kept.push(PendingExtent { write: e.write, offset: end, data: e.data[from..].to_vec() });
                }
            }
            self.pending = kept;
        } else {
            self.pending.push(PendingExtent { write: id, offset, data: data.to_vec() });
        }
        Ok(id)
    }

    /// Every pending write reaches the media, in order.
    pub fn flush(&mut self) {
        for e in self.pending.drain(..) {
            let (s, n) = (e.offset as usize, e.data.len());
            self.durable[s..s + n].copy_from_slice(&e.data);
        }
        debug_assert!(self.durable == self.newest, "a flushed disk holds the newest content");
    }

    /// The ids of the writes still pending (not flushed, not superseded by a
    /// FUA write), in order.
    pub fn pending_writes(&self) -> Vec<WriteId> {
        let mut ids: Vec<WriteId> = self.pending.iter().map(|e| e.write).collect();
        ids.dedup();
        ids
    }

    /// The pending pieces, for evidence.
    pub fn pending_extents(&self) -> Vec<PendingWrite> {
        self.pending
            .iter()
            .map(|e| PendingWrite { write: e.write, offset: e.offset, len: e.data.len() as u64 })
            .collect()
    }

    /// Writes received so far (the next write's id).
    pub fn writes_received(&self) -> u64 {
        self.next_write
    }

    /// Per sector a pending write touched: the values it took in the cache,
    /// each with the write that gave it (oldest first). A sector a write
    /// covers only in part takes the write's bytes over its value just before.
    pub fn sector_versions(&self) -> BTreeMap<u64, SectorVersions> {
        let mut current: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
        let mut versions: BTreeMap<u64, SectorVersions> = BTreeMap::new();
        for e in &self.pending {
            for s in e.offset / SECTOR..e.end().div_ceil(SECTOR) {
                let (lo, hi) = self.sector_bounds(s);
                let value = current.entry(s).or_insert_with(|| self.durable[lo as usize..hi as usize].to_vec());
                let (from, to) = (e.offset.max(lo), e.end().min(hi));
                value[(from - lo) as usize..(to - lo) as usize]
                    .copy_from_slice(&e.data[(from - e.offset) as usize..(to - e.offset) as usize]);
                let list = versions.entry(s).or_default();
                // Two pieces of one write (split by a FUA write inside the
                // sector) give the sector one value, not two.
                match list.last_mut() {
                    Some((w, v)) if *w == e.write => *v = value.clone(),
                    _ => list.push((e.write, value.clone())),
                }
            }
        }
        versions
    }

    fn sector_bounds(&self, s: u64) -> (u64, u64) {
        (s * SECTOR, ((s + 1) * SECTOR).min(self.size()))
    }

    /// The image a power cut leaves in `state`.
    pub fn image(&self, state: &DiskState) -> Result<Vec<u8>, RealcutError> {
        let mut img = self.durable.clone();
        match state {
            DiskState::Reorder { kept } => {
                let pending: BTreeSet<WriteId> = self.pending_writes().into_iter().collect();
                if let Some(w) = kept.iter().find(|w| !pending.contains(w)) {
                    return Err(RealcutError::Spec(format!("disk state `{state}`: w{w} is not a pending write")));
                }
                for e in self.pending.iter().filter(|e| kept.contains(&e.write)) {
                    let (s, n) = (e.offset as usize, e.data.len());
                    img[s..s + n].copy_from_slice(&e.data);
                }
            }
            DiskState::Torn { sectors } => {
                let versions = self.sector_versions();
                for (&s, &w) in sectors {
                    let Some((_, value)) = versions.get(&s).and_then(|v| v.iter().find(|(id, _)| *id == w)) else {
                        return Err(RealcutError::Spec(format!(
                            "disk state `{state}`: no pending write w{w} covered sector {s}"
                        )));
                    };
                    let (lo, hi) = self.sector_bounds(s);
                    img[lo as usize..hi as usize].copy_from_slice(value);
                }
            }
        }
        Ok(img)
    }

    /// Does `state` leave the bytes `start..end` of the disk holding no
    /// content they ever had as a whole: neither the durable one nor the
    /// cache's after any pending write (applied in order)? That is a
    /// structure torn between writes, e.g. a superblock whose two sectors
    /// come from different writes.
    pub fn tears_range(&self, state: &DiskState, start: u64, end: u64) -> Result<bool, RealcutError> {
        let end = end.min(self.size());
        if start >= end {
            return Ok(false);
        }
        let (s, e) = (start as usize, end as usize);
        let img = self.image(state)?;
        let mut whole = self.durable[s..e].to_vec();
        if img[s..e] == whole[..] {
            return Ok(false);
        }
        for p in &self.pending {
            let (from, to) = (p.offset.max(start), p.end().min(end));
            if from >= to {
                continue;
            }
            whole[(from - start) as usize..(to - start) as usize]
                .copy_from_slice(&p.data[(from - p.offset) as usize..(to - p.offset) as usize]);
            if img[s..e] == whole[..] {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The image of `state` as runs of sectors to write over the image the
    /// disk started with (every sector any write touched, merged into runs):
    /// cheaper to apply to a copy of a sparse base image than the whole
    /// [`image`](Self::image).
    pub fn patches(&self, state: &DiskState) -> Result<Vec<(u64, Vec<u8>)>, RealcutError> {
        let img = self.image(state)?;
        let mut runs: Vec<(u64, Vec<u8>)> = Vec::new();
        for &s in &self.written {
            let (lo, hi) = self.sector_bounds(s);
            match runs.last_mut() {
                Some((at, bytes)) if *at + bytes.len() as u64 == lo => {
                    bytes.extend_from_slice(&img[lo as usize..hi as usize])
                }
                _ => runs.push((lo, img[lo as usize..hi as usize].to_vec())),
            }
        }
        Ok(runs)
    }

    /// Every pending write kept: the newest content.
    pub fn all_kept(&self, mode: DiskCutMode) -> DiskState {
        match mode {
            DiskCutMode::Reorder => DiskState::Reorder { kept: self.pending_writes().into_iter().collect() },
            DiskCutMode::Torn => DiskState::Torn {
                sectors: self
                    .sector_versions()
                    .into_iter()
                    .map(|(s, v)| (s, v.last().expect("a touched sector has a value").0))
                    .collect(),
            },
        }
    }

    /// No pending write kept: the durable content.
    pub fn none_kept(mode: DiskCutMode) -> DiskState {
        match mode {
            DiskCutMode::Reorder => DiskState::Reorder { kept: BTreeSet::new() },
            DiskCutMode::Torn => DiskState::Torn { sectors: BTreeMap::new() },
        }
    }
}

/// One image a power cut may leave, named by the choices that make it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DiskState {
    /// These pending writes reached the media whole (applied in write
    /// order); the others were lost.
    Reorder { kept: BTreeSet<WriteId> },
    /// Each listed sector holds the value the named write gave it in the
    /// cache; every other sector holds its durable value.
    Torn { sectors: BTreeMap<u64, WriteId> },
}

impl DiskState {
    pub fn mode(&self) -> DiskCutMode {
        match self {
            DiskState::Reorder { .. } => DiskCutMode::Reorder,
            DiskState::Torn { .. } => DiskCutMode::Torn,
        }
    }
}

/// `reorder kept=w3-w5,w9`, `reorder kept=none`, `torn kept=s16-s23:w3,s40:w9`,
/// `torn kept=none`: runs of consecutive ids (sectors holding one write's value).
impl fmt::Display for DiskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} kept=", self.mode())?;
        let mut runs: Vec<String> = Vec::new();
        match self {
            DiskState::Reorder { kept } => {
                let mut it = kept.iter().copied().peekable();
                while let Some(first) = it.next() {
                    let mut last = first;
                    while it.peek() == Some(&(last + 1)) {
                        last = it.next().expect("peeked");
                    }
                    runs.push(if first == last { format!("w{first}") } else { format!("w{first}-w{last}") });
                }
            }
            DiskState::Torn { sectors } => {
                let mut it = sectors.iter().map(|(&s, &w)| (s, w)).peekable();
                while let Some((first, w)) = it.next() {
                    let mut last = first;
                    while it.peek() == Some(&(last + 1, w)) {
                        last = it.next().expect("peeked").0;
                    }
                    runs.push(if first == last { format!("s{first}:w{w}") } else { format!("s{first}-s{last}:w{w}") });
                }
            }
        }
        if runs.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&runs.join(","))
        }
    }
}

impl FromStr for DiskState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| format!("disk state `{s}`: {why}");
        let (mode, rest) = s.split_once(' ').ok_or_else(|| bad("expected `MODE kept=...`"))?;
        let mode: DiskCutMode = mode.parse().map_err(|e: String| bad(&e))?;
        let list = rest.strip_prefix("kept=").ok_or_else(|| bad("expected `kept=`"))?;
        let items: Vec<&str> = if list == "none" { Vec::new() } else { list.split(',').collect() };
        let num = |t: &str, prefix: char| -> Result<u64, String> {
            t.strip_prefix(prefix).and_then(|n| n.parse().ok()).ok_or_else(|| bad(&format!("bad item `{t}`")))
        };
        let range = |t: &str, prefix: char| -> Result<(u64, u64), String> {
            let (a, b) = t.split_once('-').unwrap_or((t, t));
            let (a, b) = (num(a, prefix)?, num(b, prefix)?);
            if a > b {
                return Err(bad(&format!("empty run `{t}`")));
            }
            Ok((a, b))
        };
        match mode {
            DiskCutMode::Reorder => {
                let mut kept = BTreeSet::new();
                for t in items {
                    let (a, b) = range(t, 'w')?;
                    kept.extend(a..=b);
                }
                Ok(DiskState::Reorder { kept })
            }
            DiskCutMode::Torn => {
                let mut sectors = BTreeMap::new();
                for t in items {
                    let (run, w) = t.split_once(':').ok_or_else(|| bad(&format!("`{t}` lacks `:wN`")))?;
                    let (a, b) = range(run, 's')?;
                    let w = num(w, 'w')?;
                    sectors.extend((a..=b).map(|s| (s, w)));
                }
                Ok(DiskState::Torn { sectors })
            }
        }
    }
}

/// How many states `mode` allows for this disk (saturating).
pub fn state_count(disk: &VolatileDisk, mode: DiskCutMode) -> u64 {
    match mode {
        DiskCutMode::Reorder => 1u64.checked_shl(disk.pending_writes().len() as u32).unwrap_or(u64::MAX),
        DiskCutMode::Torn => disk.sector_versions().values().fold(1u64, |n, v| n.saturating_mul(v.len() as u64 + 1)),
    }
}

/// The states a trial checks: at most `k` distinct ones. First every
/// pending write kept (the newest image), then none kept (the durable
/// image), then, if the mode allows at most `k` states, all the others in a
/// fixed order; else random ones drawn from `seed` (each pending write kept
/// with probability 1/2; each sector a uniform choice among its durable
/// value and its cached values). With nothing pending there is one state.
pub fn sample_states(disk: &VolatileDisk, mode: DiskCutMode, k: usize, seed: u64) -> Vec<DiskState> {
    let mut out: Vec<DiskState> = Vec::new();
    let add = |out: &mut Vec<DiskState>, s: DiskState| {
        if out.len() < k.max(1) && !out.contains(&s) {
            out.push(s);
        }
    };
    add(&mut out, disk.all_kept(mode));
    add(&mut out, VolatileDisk::none_kept(mode));
    let ids = disk.pending_writes();
    let versions = disk.sector_versions();
    if state_count(disk, mode) <= k as u64 {
        // Every state: one digit per pending write (kept or not) or per
        // written sector (0 its durable value, j its j-th cached value).
        let sectors: Vec<(&u64, &SectorVersions)> = versions.iter().collect();
        let radices: Vec<u32> = match mode {
            DiskCutMode::Reorder => vec![2; ids.len()],
            DiskCutMode::Torn => sectors.iter().map(|(_, v)| v.len() as u32 + 1).collect(),
        };
        let state_of = |digits: &[u32]| match mode {
            DiskCutMode::Reorder => {
                DiskState::Reorder { kept: ids.iter().zip(digits).filter(|(_, &d)| d == 1).map(|(&w, _)| w).collect() }
            }
            DiskCutMode::Torn => DiskState::Torn {
                sectors: sectors
                    .iter()
                    .zip(digits)
                    .filter(|(_, &d)| d > 0)
                    .map(|((&s, v), &d)| (s, v[d as usize - 1].0))
                    .collect(),
            },
        };
        let mut all = MixedRadixGray::new(radices);
        loop {
            add(&mut out, state_of(all.digits()));
            if all.advance().is_none() {
                return out;
            }
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Enough draws that a space larger than k all but surely yields k states.
    for _ in 0..64 * k {
        if out.len() >= k {
            break;
        }
        let s = match mode {
            DiskCutMode::Reorder => {
                DiskState::Reorder { kept: ids.iter().copied().filter(|_| rng.random_bool(0.5)).collect() }
            }
            DiskCutMode::Torn => DiskState::Torn {
                sectors: versions
                    .iter()
                    .filter_map(|(&s, v)| {
                        let d = rng.random_range(0..=v.len());
                        (d > 0).then(|| (s, v[d - 1].0))
                    })
                    .collect(),
            },
        };
        add(&mut out, s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: usize = SECTOR as usize;

    /// A disk of `sectors` sectors, sector i filled with byte `i`.
    fn disk(sectors: usize) -> VolatileDisk {
        VolatileDisk::new((0..sectors * S).map(|i| (i / S) as u8).collect())
    }

    fn fill(b: u8, sectors: usize) -> Vec<u8> {
        vec![b; sectors * S]
    }

    fn sector(img: &[u8], s: usize) -> &[u8] {
        &img[s * S..(s + 1) * S]
    }

    fn images(d: &VolatileDisk, states: &[DiskState]) -> BTreeSet<Vec<u8>> {
        states.iter().map(|s| d.image(s).unwrap()).collect()
    }

    #[test]
    fn a_range_is_torn_only_when_its_sectors_hold_no_content_it_ever_had_whole() {
        let mut d = disk(8);
        // w0 rewrites sectors 0-7 (a 4 KiB block holding a 1 KiB structure
        // in sectors 2-3); w1 rewrites sectors 2-3 again.
        d.write(0, &fill(0xA0, 8), false).unwrap();
        let torn = |d: &VolatileDisk, sectors: &[(u64, WriteId)]| {
            let state = DiskState::Torn { sectors: sectors.iter().copied().collect() };
            d.tears_range(&state, 2 * SECTOR, 4 * SECTOR).unwrap()
        };
        assert!(!torn(&d, &[]), "durable: whole");
        assert!(!torn(&d, &[(2, 0), (3, 0)]), "both sectors of w0: whole");
        assert!(!torn(&d, &[(0, 0), (5, 0)]), "w0 kept outside the range only: the range is durable");
        assert!(torn(&d, &[(2, 0)]), "sector 2 new, sector 3 old: torn");
        assert!(torn(&d, &[(1, 0), (3, 0)]), "sector 3 new, sector 2 old: torn");
        d.write(2 * SECTOR, &fill(0xB1, 2), false).unwrap();
        assert!(!torn(&d, &[(2, 1), (3, 1)]), "both at w1: whole");
        assert!(torn(&d, &[(2, 0), (3, 1)]), "one sector from each write: torn");
        // The reorder model keeps writes whole: never torn.
        for kept in [vec![], vec![0], vec![1], vec![0, 1]] {
            let state = DiskState::Reorder { kept: kept.into_iter().collect() };
            assert!(!d.tears_range(&state, 2 * SECTOR, 4 * SECTOR).unwrap());
        }
    }

    #[test]
    fn a_flushed_write_is_durable_and_a_later_one_may_be_lost() {
        let mut d = disk(4);
        let a = d.write(0, &fill(0xAA, 1), false).unwrap();
        d.flush();
        let b = d.write(S as u64, &fill(0xBB, 1), false).unwrap();
        assert_eq!((a, b), (0, 1));
        assert_eq!(d.pending_writes(), vec![1]);
        // Reads see both.
        assert_eq!(d.read(0, 2 * SECTOR).unwrap(), [fill(0xAA, 1), fill(0xBB, 1)].concat());
        let states = sample_states(&d, DiskCutMode::Reorder, 4, 7);
        assert_eq!(states.len(), 2, "exactly {{A}} and {{A+B}}: {states:?}");
        let mut only_a = d.image(&VolatileDisk::none_kept(DiskCutMode::Reorder)).unwrap();
        assert_eq!(sector(&only_a, 0), &fill(0xAA, 1)[..]);
        assert_eq!(sector(&only_a, 1), &[1u8; S][..], "B lost: sector 1 holds its base value");
        let both = d.image(&d.all_kept(DiskCutMode::Reorder)).unwrap();
        assert_eq!(sector(&both, 1), &fill(0xBB, 1)[..]);
        only_a[S..2 * S].copy_from_slice(&fill(0xBB, 1));
        assert_eq!(only_a, both, "the two states differ in sector 1 only");
        // Torn: B is one sector, so the same two images.
        assert_eq!(images(&d, &sample_states(&d, DiskCutMode::Torn, 4, 7)).len(), 2);
    }

    #[test]
    fn reorder_enumerates_every_subset_when_it_fits_and_later_writes_win() {
        let mut d = disk(4);
        d.write(0, &fill(1, 2), false).unwrap(); // w0: sectors 0-1
        d.write(S as u64, &fill(2, 1), false).unwrap(); // w1: sector 1
        let states = sample_states(&d, DiskCutMode::Reorder, 8, 1);
        assert_eq!(states.len(), 4);
        let want: BTreeSet<(u8, u8)> = [(0, 1), (1, 1), (0, 2), (1, 2)].into();
        let got: BTreeSet<(u8, u8)> = states
            .iter()
            .map(|s| {
                let img = d.image(s).unwrap();
                (img[0], img[S])
            })
            .collect();
        assert_eq!(got, want, "w1 over w0 in sector 1 when both kept, never w0 over w1");
        let both = d.image(&"reorder kept=w0-w1".parse().unwrap()).unwrap();
        assert_eq!((both[0], both[S]), (1, 2));
    }

    #[test]
    fn a_fua_write_is_durable_at_once_and_supersedes_older_pending_bytes() {
        let mut d = disk(4);
        d.write(0, &fill(0x11, 3), false).unwrap(); // w0: sectors 0-2, pending
        d.write(S as u64, &fill(0x22, 1), true).unwrap(); // w1: sector 1, FUA
        assert_eq!(d.pending_writes(), vec![0]);
        assert_eq!(
            d.pending_extents(),
            vec![
                PendingWrite { write: 0, offset: 0, len: SECTOR },
                PendingWrite { write: 0, offset: 2 * SECTOR, len: SECTOR }
            ]
        );
        for s in sample_states(&d, DiskCutMode::Torn, 16, 3) {
            let img = d.image(&s).unwrap();
            assert_eq!(sector(&img, 1), &fill(0x22, 1)[..], "{s}: the FUA sector is never lost nor overwritten");
        }
        let none = d.image(&VolatileDisk::none_kept(DiskCutMode::Reorder)).unwrap();
        assert_eq!((none[0], none[S], none[2 * S]), (0, 0x22, 2));
        let all = d.image(&d.all_kept(DiskCutMode::Reorder)).unwrap();
        assert_eq!((all[0], all[S], all[2 * S]), (0x11, 0x22, 0x11));
        assert_eq!(all, d.read(0, d.size()).unwrap(), "all kept is what the guest reads");
        // A flush then leaves nothing pending: one state.
        d.flush();
        assert!(d.pending_writes().is_empty());
        let only = sample_states(&d, DiskCutMode::Reorder, 4, 3);
        assert_eq!(only.len(), 1);
        assert_eq!(d.image(&only[0]).unwrap(), all);
    }

    #[test]
    fn torn_states_mix_only_values_that_were_written_per_sector() {
        let mut d = disk(4);
        d.write(0, &fill(0xA0, 2), false).unwrap(); // w0: sectors 0-1
        d.write(0, &fill(0xB0, 1), false).unwrap(); // w1: sector 0
        let states = sample_states(&d, DiskCutMode::Torn, 100, 5);
        // Sector 0: base, w0, w1 (3 values); sector 1: base, w0 (2): 6 states.
        assert_eq!(states.len(), 6);
        let got: BTreeSet<(u8, u8)> = images(&d, &states).iter().map(|img| (img[0], img[S])).collect();
        let want: BTreeSet<(u8, u8)> = [(0, 1), (0xA0, 1), (0xB0, 1), (0, 0xA0), (0xA0, 0xA0), (0xB0, 0xA0)].into();
        assert_eq!(got, want);
        // The torn state (w0 in sector 1 only) is no reorder state: reorder
        // keeps w0 whole.
        let reorder = images(&d, &sample_states(&d, DiskCutMode::Reorder, 100, 5));
        let torn_only = d.image(&"torn kept=s1:w0".parse().unwrap()).unwrap();
        assert!(!reorder.contains(&torn_only));
        for img in &reorder {
            assert!(got.contains(&(img[0], img[S])), "every reorder image is a torn one");
        }
        // Sectors 2-3 were never written: always their base value.
        for img in images(&d, &states) {
            assert_eq!(&img[2 * S..], disk(4).read(2 * SECTOR, 2 * SECTOR).unwrap());
        }
    }

    #[test]
    fn a_partial_sector_write_tears_over_the_value_before_it() {
        let mut d = disk(2);
        d.write(0, &[0xEE; 100], false).unwrap(); // w0: 100 bytes of sector 0
        d.write(50, &[0xFF; 10], false).unwrap(); // w1: bytes 50..60
        let v = d.sector_versions();
        let s0 = &v[&0];
        assert_eq!(s0.len(), 2);
        assert_eq!(&s0[0].1[..100], &[0xEE; 100][..]);
        assert_eq!(s0[0].1[100], 0, "the rest of the sector keeps its durable value");
        assert_eq!(&s0[1].1[..50], &[0xEE; 50][..], "w1's value includes w0's bytes before it");
        assert_eq!(&s0[1].1[50..60], &[0xFF; 10][..]);
    }

    #[test]
    fn random_samples_are_seeded_distinct_and_start_with_all_and_none() {
        let mut d = disk(64);
        for i in 0..20u64 {
            d.write(i * 3 % 64 * SECTOR, &fill(i as u8 + 100, 1), false).unwrap();
        }
        for mode in [DiskCutMode::Reorder, DiskCutMode::Torn] {
            let a = sample_states(&d, mode, 6, 42);
            assert_eq!(a.len(), 6);
            assert_eq!(a[0], d.all_kept(mode));
            assert_eq!(a[1], VolatileDisk::none_kept(mode));
            assert_eq!(a, sample_states(&d, mode, 6, 42), "same seed, same states");
            assert_ne!(a, sample_states(&d, mode, 6, 43), "another seed, other states");
            let distinct: BTreeSet<&DiskState> = a.iter().collect();
            assert_eq!(distinct.len(), 6);
            assert_eq!(images(&d, &a[..2]).len(), 2);
        }
    }

    #[test]
    fn states_print_compactly_and_parse_back() {
        let mut d = disk(32);
        for s in [3u64, 4, 5, 9] {
            d.write(s * SECTOR, &fill(7, 1), false).unwrap();
        }
        d.write(16 * SECTOR, &fill(8, 8), false).unwrap(); // w4
        let all = d.all_kept(DiskCutMode::Reorder);
        assert_eq!(all.to_string(), "reorder kept=w0-w4");
        let torn = d.all_kept(DiskCutMode::Torn);
        assert_eq!(torn.to_string(), "torn kept=s3:w0,s4:w1,s5:w2,s9:w3,s16-s23:w4");
        assert_eq!(VolatileDisk::none_kept(DiskCutMode::Torn).to_string(), "torn kept=none");
        for s in [all, torn, VolatileDisk::none_kept(DiskCutMode::Reorder), "reorder kept=w0,w2-w3".parse().unwrap()] {
            assert_eq!(s.to_string().parse::<DiskState>().unwrap(), s);
        }
        for bad in ["reorder", "torn kept=s1", "reorder kept=w3-w1", "mirror kept=none", "reorder kept=x1"] {
            assert!(bad.parse::<DiskState>().is_err(), "{bad}");
        }
    }

    #[test]
    fn states_that_do_not_belong_to_the_disk_and_out_of_range_accesses_are_refused() {
        let mut d = disk(4);
        d.write(0, &fill(1, 1), false).unwrap();
        assert!(d.image(&"reorder kept=w5".parse().unwrap()).is_err());
        assert!(d.image(&"torn kept=s2:w0".parse().unwrap()).is_err(), "w0 never covered sector 2");
        assert!(d.write(3 * SECTOR + 1, &fill(1, 1), false).is_err());
        assert!(d.read(u64::MAX, 2).is_err());
    }

    #[test]
    fn patches_rebuild_the_image_over_the_base() {
        let mut d = disk(16);
        d.write(2 * SECTOR, &fill(9, 2), false).unwrap();
        d.flush();
        d.write(3 * SECTOR, &fill(10, 1), false).unwrap();
        d.write(8 * SECTOR, &fill(11, 1), true).unwrap();
        for s in sample_states(&d, DiskCutMode::Torn, 4, 0) {
            let mut img = disk(16).read(0, 16 * SECTOR).unwrap().to_vec();
            let runs = d.patches(&s).unwrap();
            assert_eq!(
                runs.iter().map(|(at, b)| (*at, b.len())).collect::<Vec<_>>(),
                vec![(2 * SECTOR, 2 * S), (8 * SECTOR, S)]
            );
            for (at, bytes) in runs {
                img[at as usize..at as usize + bytes.len()].copy_from_slice(&bytes);
            }
            assert_eq!(img, d.image(&s).unwrap(), "{s}");
        }
    }
}
