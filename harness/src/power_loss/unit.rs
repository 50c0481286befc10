//! The units of a power-loss model and their versions: what a page (or a
//! sector, when tearing is modelled) held at each point of a trial, with
//! the names a state's text gives them (`p3s5`, `v7`, `t0`).
//!
//! Versions are kept as lists of byte ranges with their [`Owner`] (who wrote
//! them last), so the judge can decide survival from owners alone and the
//! explorer can materialize a version with a few `memcpy`s from the payloads.
//!
//! Architecture Invariant: pure.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::explore::state_text::UnitCode;
use crate::live_image::Owner;
use crate::spec::ByteRange;

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
    /// The unit starting at byte `start` of a file of `page_size` pages,
    /// cut into sectors of `sector_size` bytes when tearing is modelled.
    pub fn at(start: u64, page_size: u64, sector_size: Option<u64>) -> UnitId {
        UnitId { page: start / page_size, sector: sector_size.map(|s| ((start % page_size) / s) as u32) }
    }

    /// The compact form crash states use: `p3`, or `p3s5` for sector 5 of
    /// page 3 (the state grammar's unit code).
    pub fn code(&self) -> String {
        UnitCode { page: self.page, sector: self.sector.map(u64::from) }.to_string()
    }

    pub fn parse_code(s: &str) -> Option<UnitId> {
        let code = UnitCode::parse(s)?;
        let sector = match code.sector {
            None => None,
            Some(s) => Some(u32::try_from(s).ok()?),
        };
        Some(UnitId { page: code.page, sector })
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
    pub(super) fn first_mismatch(&self, file: &[u8], len: u64) -> Option<u64> {
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
    pub(super) history: Vec<UnitVersion<'a>>,
    /// `history[floor]` is the content at the last completed sync covering
    /// the unit (or the initial content).
    pub(super) floor: usize,
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

    pub(super) fn position_of(&self, label: VersionLabel) -> Option<usize> {
        self.allowed().iter().position(|v| v.label() == label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_codes_and_version_labels_round_trip() {
        for id in [UnitId { page: 0, sector: None }, UnitId { page: 12, sector: Some(7) }] {
            assert_eq!(UnitId::parse_code(&id.code()), Some(id));
        }
        for bad in ["p", "3", "p3s", "ps1", "p-1", "p3x1", "p3s1s2", "p1s4294967296"] {
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
