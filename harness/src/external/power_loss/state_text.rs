//! The text form of one power-loss state of an external run, for reports and
//! replay lines: `DEFAULT[:ITEM,ITEM...]` where `DEFAULT` (`floor` or
//! `newest`) is what every unit and size not listed holds, and each item is
//! `FILE#UNIT=CHOICE` with `UNIT` one of `len` (the file's size), `pN`
//! (page N) or `pNsM` (sector M of page N, with `--tear`) and `CHOICE`
//! `floor` or `newest`. File names are relative to the trial directory, with
//! `%`, `,`, `#`, `=`, `:` and bytes outside printable ASCII written `%XX`.
//!
//! `newest:data.db#p3=floor` is the page cache with page 3 of `data.db` at
//! its durable floor. A state names units, not bytes: it means the same
//! thing in any rerun of its trial, whatever content the rerun finds.
//!
//! The frame, the defaults, the unit codes and the escaping are the one
//! state grammar's ([`crate::explore::state_text`]); this file gives the
//! items their meaning in a directory's state space.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::space::{Bits, DimKind, StateSpace};
use crate::explore::state_text::{escape_path, split_state, unescape_path, write_state, Extreme, UnitCode};

/// What an item of a state names inside a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitRef {
    Len,
    Page(u64),
    Sector { page: u64, sector: u64 },
}

impl fmt::Display for UnitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            UnitRef::Len => f.write_str("len"),
            UnitRef::Page(page) => UnitCode { page, sector: None }.fmt(f),
            UnitRef::Sector { page, sector } => UnitCode { page, sector: Some(sector) }.fmt(f),
        }
    }
}

impl UnitRef {
    fn parse(s: &str) -> Option<UnitRef> {
        if s == "len" {
            return Some(UnitRef::Len);
        }
        Some(match UnitCode::parse(s)? {
            UnitCode { page, sector: None } => UnitRef::Page(page),
            UnitCode { page, sector: Some(sector) } => UnitRef::Sector { page, sector },
        })
    }
}

/// One state as text (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateText {
    pub default: Extreme,
    /// Sorted by file, then unit; each (file, unit) once.
    pub items: Vec<(PathBuf, UnitRef, Extreme)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad power-loss state `{text}`: {reason} (expected floor|newest[:FILE#len|pN|pNsM=floor|newest,...])")]
pub struct StateTextError {
    pub text: String,
    pub reason: String,
}

impl fmt::Display for StateText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items =
            self.items.iter().map(|(path, unit, choice)| format!("{}#{unit}={}", escape_path(path), choice.name()));
        write_state(f, self.default, items)
    }
}

impl FromStr for StateText {
    type Err = StateTextError;
    fn from_str(s: &str) -> Result<StateText, StateTextError> {
        let bad = |reason: String| StateTextError { text: s.to_owned(), reason };
        let (head, texts) = split_state(s);
        let default = Extreme::parse(head).ok_or_else(|| bad(format!("unknown default `{head}`")))?;
        let mut items = Vec::new();
        for item in texts {
            let (name, choice) = item.rsplit_once('=').ok_or_else(|| bad(format!("item `{item}` has no `=`")))?;
            let choice = Extreme::parse(choice)
                .ok_or_else(|| bad(format!("item `{item}`: `{choice}` is not floor or newest")))?;
            let (file, unit) = name.rsplit_once('#').ok_or_else(|| bad(format!("item `{item}` has no `#`")))?;
            let path = unescape_path(file).ok_or_else(|| bad(format!("item `{item}`: bad file name")))?;
            let unit = UnitRef::parse(unit).ok_or_else(|| bad(format!("item `{item}`: bad unit `{unit}`")))?;
            items.push((path, unit, choice));
        }
        items.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        if items.windows(2).any(|w| w[0].0 == w[1].0 && w[0].1 == w[1].1) {
            return Err(bad("a unit is listed twice".into()));
        }
        Ok(StateText { default, items })
    }
}

impl StateText {
    /// The text of `bits`: `default`, and every dimension that differs from it.
    pub fn of(space: &StateSpace, bits: &Bits, default: Extreme) -> StateText {
        let per_page = space.page / space.unit;
        let items = (0..space.dim_count())
            .filter(|&d| bits.get(d) != default.is_newest())
            .map(|d| {
                let dim = space.dims()[d];
                let unit = match dim.kind {
                    DimKind::Size => UnitRef::Len,
                    DimKind::Unit(u) if per_page == 1 => UnitRef::Page(u),
                    DimKind::Unit(u) => UnitRef::Sector { page: u / per_page, sector: u % per_page },
                };
                let choice = if default.is_newest() { Extreme::Floor } else { Extreme::Newest };
                (space.files[dim.file].path.clone(), unit, choice)
            })
            .collect();
        StateText { default, items }
    }

    /// The text of `bits` with whichever default lists fewer items.
    pub fn shortest(space: &StateSpace, bits: &Bits) -> StateText {
        let floor = StateText::of(space, bits, Extreme::Floor);
        let newest = StateText::of(space, bits, Extreme::Newest);
        if floor.items.len() < newest.items.len() {
            floor
        } else {
            newest
        }
    }

    /// The state of `space` this text names, and notes on items that name
    /// nothing there (a file the rerun did not leave, a unit equal at its
    /// floor and newest). Errors only for items that cannot fit any trial
    /// of this unit size.
    pub fn resolve(&self, space: &StateSpace) -> Result<(Bits, Vec<String>), StateTextError> {
        let bad = |reason: String| StateTextError { text: self.to_string(), reason };
        let per_page = space.page / space.unit;
        let mut bits = Bits::all(space.dim_count(), self.default.is_newest());
        let mut notes = Vec::new();
        for (path, unit, choice) in &self.items {
            let name = format!("{}#{unit}", escape_path(path));
            let Some(f) = space.file_index(path) else {
                notes.push(format!("{name}: no file {} in this trial's directory", path.display()));
                continue;
            };
            let kinds: Vec<DimKind> = match *unit {
                UnitRef::Len => vec![DimKind::Size],
                UnitRef::Page(p) => (0..per_page).map(|s| DimKind::Unit(p * per_page + s)).collect(),
                UnitRef::Sector { page, sector } => {
                    if per_page == 1 {
                        return Err(bad(format!("{name} names a sector, but this run has no --tear")));
                    }
                    if sector >= per_page {
                        return Err(bad(format!("{name}: a page has {per_page} sectors")));
                    }
                    vec![DimKind::Unit(page * per_page + sector)]
                }
            };
            let dims: Vec<usize> = kinds.into_iter().filter_map(|k| space.find(f, k)).collect();
            if dims.is_empty() {
                notes.push(format!("{name}: the same at its floor and newest in this trial"));
            }
            for d in dims {
                bits.set(d, choice.is_newest());
            }
        }
        Ok((bits, notes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::power_loss::space::FileImages;

    fn space(unit: u64) -> StateSpace {
        let files = vec![
            FileImages { path: "data.db".into(), floor: vec![1; 16], newest: vec![2; 24] },
            FileImages { path: "odd, name#=.log".into(), floor: vec![0; 8], newest: vec![9; 8] },
        ];
        StateSpace::new(files, vec![], unit, 8)
    }

    #[test]
    fn texts_round_trip_and_name_only_the_exceptions() {
        let s = space(8);
        // data.db: size, p0, p1, p2; odd: p0.
        assert_eq!(s.dim_count(), 5);
        let mut bits = Bits::all(5, true);
        bits.set(2, false);
        bits.set(4, false);
        let t = StateText::of(&s, &bits, Extreme::Newest);
        assert_eq!(t.to_string(), "newest:data.db#p1=floor,odd%2C%20name%23%3D.log#p0=floor");
        let parsed: StateText = t.to_string().parse().unwrap();
        assert_eq!(parsed, t);
        assert_eq!(parsed.resolve(&s).unwrap(), (bits.clone(), vec![]));
        let f = StateText::of(&s, &bits, Extreme::Floor);
        assert_eq!(f.to_string(), "floor:data.db#len=newest,data.db#p0=newest,data.db#p2=newest");
        assert_eq!(f.resolve(&s).unwrap().0, bits);
        assert_eq!("newest".parse::<StateText>().unwrap().resolve(&s).unwrap().0, Bits::all(5, true));
    }

    #[test]
    fn sectors_and_items_that_name_nothing() {
        let torn = space(4);
        let t: StateText = "newest:data.db#p1s1=floor,data.db#p0=floor,gone#p0=floor".parse().unwrap();
        let (bits, notes) = t.resolve(&torn).unwrap();
        // A page item covers its sectors.
        assert_eq!(bits.members(torn.dim_count(), false).len(), 3);
        assert_eq!(notes, vec!["gone#p0: no file gone in this trial's directory".to_string()]);
        let whole = space(8);
        assert!(t.resolve(&whole).unwrap_err().to_string().contains("names a sector, but this run has no --tear"));
        let same = FileImages { path: "s".into(), floor: vec![5; 8], newest: vec![5; 8] };
        let s = StateSpace::new(vec![same], vec![], 8, 8);
        let (_, notes) = "floor:s#p0=newest".parse::<StateText>().unwrap().resolve(&s).unwrap();
        assert!(notes[0].contains("the same at its floor and newest"), "{notes:?}");
    }

    #[test]
    fn malformed_texts_are_refused() {
        for bad in [
            "",
            "oldest",
            "newest:",
            "newest:f#p1",
            "newest:f#p1=old",
            "newest:f#q1=floor",
            "newest:p1=floor",
            "newest:f#p1=floor,f#p1=newest",
            "newest:f#p=floor",
            "newest:%ZZ#p1=floor",
            "newest:f#p1s=floor",
        ] {
            assert!(bad.parse::<StateText>().is_err(), "`{bad}` must not parse");
        }
    }
}
