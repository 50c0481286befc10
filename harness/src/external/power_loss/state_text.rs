//! The text form of one power-loss state of an external run, for reports and
//! replay lines: `DEFAULT[:ITEM,ITEM...]` where `DEFAULT` (`floor` or
//! `newest`) is what every unit and size not listed holds, and each item is
//! either `FILE#UNIT=CHOICE` with `UNIT` one of `pN` (page N) or `pNsM`
//! (sector M of page N, with `--tear`), or `@CALL=CHOICE`, the namespace
//! operation (create, link, unlink, rename, size change) made by traced
//! call number CALL, and `CHOICE` `floor` (lost) or `newest` (persisted).
//! File names are relative to the trial directory, with `%`, `,`, `#`, `=`,
//! `:` and bytes outside printable ASCII written `%XX`; a file that had no
//! name when the writer died is named by its last path and `~ID`.
//!
//! `newest:data.db#p3=floor` is the page cache with page 3 of `data.db` at
//! its durable floor; `newest:@57=floor` is everything the writer did, but
//! the operation of call 57 lost. A state names units, not bytes: it means
//! the same thing in any rerun of its trial, whatever content the rerun
//! finds. (`FILE#len=...`, the size item of texts written before sizes
//! came from the namespace, is read and noted as naming nothing.)
//!
//! The frame, the defaults, the unit codes and the escaping are the one
//! state grammar's ([`crate::explore::state_text`]); this file gives the
//! items their meaning in a directory's state space.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::space::{Bits, Dim, StateSpace};
use crate::explore::state_text::{escape_path, split_state, unescape_path, write_state, Extreme, UnitCode};

/// What an item of a state names inside a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitRef {
    /// An old text's size item: sizes are namespace operations now.
    Len,
    Page(u64),
    Sector {
        page: u64,
        sector: u64,
    },
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

/// What one item of a state names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemRef {
    /// The namespace operation of traced call `call`.
    Op(u64),
    /// A unit of a file.
    Unit(PathBuf, UnitRef),
}

impl fmt::Display for ItemRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemRef::Op(call) => write!(f, "@{call}"),
            ItemRef::Unit(path, unit) => write!(f, "{}#{unit}", escape_path(path)),
        }
    }
}

/// One state as text (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateText {
    pub default: Extreme,
    /// Sorted (operations first, by call; then by file, then unit); each
    /// item once.
    pub items: Vec<(ItemRef, Extreme)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad power-loss state `{text}`: {reason} (expected floor|newest[:@CALL|FILE#pN|FILE#pNsM=floor|newest,...])")]
pub struct StateTextError {
    pub text: String,
    pub reason: String,
}

impl fmt::Display for StateText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items = self.items.iter().map(|(item, choice)| format!("{item}={}", choice.name()));
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
            if let Some(call) = name.strip_prefix('@') {
                let call = call
                    .parse::<u64>()
                    .ok()
                    .filter(|c| c.to_string() == call)
                    .ok_or_else(|| bad(format!("item `{item}`: `{call}` is not a call number")))?;
                items.push((ItemRef::Op(call), choice));
                continue;
            }
            let (file, unit) = name.rsplit_once('#').ok_or_else(|| bad(format!("item `{item}` has no `#`")))?;
            let path = unescape_path(file).ok_or_else(|| bad(format!("item `{item}`: bad file name")))?;
            let unit = UnitRef::parse(unit).ok_or_else(|| bad(format!("item `{item}`: bad unit `{unit}`")))?;
            items.push((ItemRef::Unit(path, unit), choice));
        }
        items.sort_by(|a, b| a.0.cmp(&b.0));
        if items.windows(2).any(|w| w[0].0 == w[1].0) {
            return Err(bad("an item is listed twice".into()));
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
                let item = match space.dims()[d] {
                    Dim::Op(u) => ItemRef::Op(space.ns.units()[u].call),
                    Dim::Unit { file, unit: u } => {
                        let unit = if per_page == 1 {
                            UnitRef::Page(u)
                        } else {
                            UnitRef::Sector { page: u / per_page, sector: u % per_page }
                        };
                        ItemRef::Unit(space.files[file].path.clone(), unit)
                    }
                };
                let choice = if default.is_newest() { Extreme::Floor } else { Extreme::Newest };
                (item, choice)
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
    /// floor and newest, a call whose operation a sync made durable).
    /// Errors only for items that cannot fit any trial of this unit size.
    pub fn resolve(&self, space: &StateSpace) -> Result<(Bits, Vec<String>), StateTextError> {
        let bad = |reason: String| StateTextError { text: self.to_string(), reason };
        let per_page = space.page / space.unit;
        let mut bits = Bits::all(space.dim_count(), self.default.is_newest());
        let mut notes = Vec::new();
        for (item, choice) in &self.items {
            let name = item.to_string();
            let dims: Vec<usize> = match item {
                ItemRef::Op(call) => match space.ns.unit_of_call(*call) {
                    Some(u) => vec![u],
                    None => {
                        notes.push(format!(
                            "{name}: call {call} made no namespace operation that a power loss may lose in this trial"
                        ));
                        continue;
                    }
                },
                ItemRef::Unit(path, unit) => {
                    let Some(f) = space.file_index(path) else {
                        notes.push(format!("{name}: no file {} in this trial's directory", path.display()));
                        continue;
                    };
                    let units: Vec<u64> = match *unit {
                        UnitRef::Len => {
                            notes.push(format!(
                                "{name}: sizes are namespace operations now (`@CALL` items); this item names nothing"
                            ));
                            continue;
                        }
                        UnitRef::Page(p) => (0..per_page).map(|s| p * per_page + s).collect(),
                        UnitRef::Sector { page, sector } => {
                            if per_page == 1 {
                                return Err(bad(format!("{name} names a sector, but this run has no --tear")));
                            }
                            if sector >= per_page {
                                return Err(bad(format!("{name}: a page has {per_page} sectors")));
                            }
                            vec![page * per_page + sector]
                        }
                    };
                    let dims: Vec<usize> = units.into_iter().filter_map(|u| space.find(f, u)).collect();
                    if dims.is_empty() {
                        notes.push(format!("{name}: the same at its floor and newest in this trial"));
                    }
                    dims
                }
            };
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
    use crate::external::power_loss::space::test_space;

    fn space(unit: u64) -> StateSpace {
        test_space(&[("data.db", &[1; 16], &[2; 24]), ("odd, name#=.log", &[0; 8], &[9; 8])], &[], unit, 8)
    }

    #[test]
    fn texts_round_trip_and_name_only_the_exceptions() {
        let s = space(8);
        // data.db's size change (call 1); data.db p0, p1, p2; odd: p0.
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
        assert_eq!(f.to_string(), "floor:@1=newest,data.db#p0=newest,data.db#p2=newest");
        assert_eq!(f.resolve(&s).unwrap().0, bits);
        assert_eq!("newest".parse::<StateText>().unwrap().resolve(&s).unwrap().0, Bits::all(5, true));
    }

    #[test]
    fn sectors_calls_and_items_that_name_nothing() {
        let torn = space(4);
        let t: StateText =
            "newest:data.db#p1s1=floor,data.db#p0=floor,gone#p0=floor,@9=floor,data.db#len=floor".parse().unwrap();
        let (bits, notes) = t.resolve(&torn).unwrap();
        // A page item covers its sectors.
        assert_eq!(bits.members(torn.dim_count(), false).len(), 3);
        assert_eq!(
            notes,
            vec![
                "@9: call 9 made no namespace operation that a power loss may lose in this trial".to_string(),
                "data.db#len: sizes are namespace operations now (`@CALL` items); this item names nothing".to_string(),
                "gone#p0: no file gone in this trial's directory".to_string(),
            ]
        );
        let (bits, _) = "newest:@1=floor".parse::<StateText>().unwrap().resolve(&torn).unwrap();
        assert_eq!(bits.members(torn.dim_count(), false), vec![0]);
        let whole = space(8);
        assert!(t.resolve(&whole).unwrap_err().to_string().contains("names a sector, but this run has no --tear"));
        let s = test_space(&[("s", &[5; 8], &[5; 8])], &[], 8, 8);
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
            "newest:@=floor",
            "newest:@x=floor",
            "newest:@01=floor",
            "newest:@3=floor,@3=newest",
        ] {
            assert!(bad.parse::<StateText>().is_err(), "`{bad}` must not parse");
        }
    }
}
