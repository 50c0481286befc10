//! The text form of one power-loss state of an external run, for reports and
//! replay lines: `DEFAULT[:ITEM,ITEM...]` where `DEFAULT` (`floor` or
//! `newest`) is what every unit and size not listed holds, and each item is
//! either `FILE#UNIT=CHOICE` with `UNIT` one of `pN` (page N) or `pNsM`
//! (sector M of page N, with `--tear`), or `@CALL=CHOICE`, the namespace
//! operation (create, link, unlink, rename, size change) made by traced
//! call number CALL, and `CHOICE` `floor` (lost) or `newest` (persisted),
//! or, for a unit, `vN`: the N-th version its page was seen to hold between
//! its floor and the end (1-based, in the order the oracle's write history
//! recorded them: `data.db#p3=v2`).
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

use super::space::{Digits, Dim, StateSpace};
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

/// What an item holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemChoice {
    Extreme(Extreme),
    /// The page's `n`-th recorded intermediate version (1-based).
    Version(usize),
}

impl fmt::Display for ItemChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemChoice::Extreme(e) => f.write_str(e.name()),
            ItemChoice::Version(n) => write!(f, "v{n}"),
        }
    }
}

impl ItemChoice {
    fn parse(s: &str) -> Option<ItemChoice> {
        if let Some(e) = Extreme::parse(s) {
            return Some(ItemChoice::Extreme(e));
        }
        // Written canonically (`v01` is refused: one state, one text).
        let text = s.strip_prefix('v')?;
        text.parse::<usize>().ok().filter(|&n| n > 0 && n.to_string() == text).map(ItemChoice::Version)
    }
}

/// One state as text (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateText {
    pub default: Extreme,
    /// Sorted (operations first, by call; then by file, then unit); each
    /// item once.
    pub items: Vec<(ItemRef, ItemChoice)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad power-loss state `{text}`: {reason} (expected floor|newest[:@CALL=floor|newest,FILE#pN|FILE#pNsM=floor|newest|vN,...])")]
pub struct StateTextError {
    pub text: String,
    pub reason: String,
}

impl fmt::Display for StateText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items = self.items.iter().map(|(item, choice)| format!("{item}={choice}"));
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
            let choice = ItemChoice::parse(choice)
                .ok_or_else(|| bad(format!("item `{item}`: `{choice}` is not floor, newest or vN")))?;
            if let Some(call) = name.strip_prefix('@') {
                if let ItemChoice::Version(_) = choice {
                    return Err(bad(format!("item `{item}`: an operation is lost or persisted, it has no versions")));
                }
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
    pub fn of(space: &StateSpace, bits: &Digits, default: Extreme) -> StateText {
        let per_page = space.page / space.unit;
        let default_digit = |d: usize| if default.is_newest() { space.newest_digit(d) } else { 0 };
        let items = (0..space.dim_count())
            .filter(|&d| bits.get(d) != default_digit(d))
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
                let digit = bits.get(d);
                let choice = if digit == 0 {
                    ItemChoice::Extreme(Extreme::Floor)
                } else if space.is_newest(bits, d) {
                    ItemChoice::Extreme(Extreme::Newest)
                } else {
                    ItemChoice::Version(space.version_number(d, digit).expect("an intermediate digit is a version"))
                };
                (item, choice)
            })
            .collect();
        StateText { default, items }
    }

    /// The text of `bits` with whichever default lists fewer items.
    pub fn shortest(space: &StateSpace, bits: &Digits) -> StateText {
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
    pub fn resolve(&self, space: &StateSpace) -> Result<(Digits, Vec<String>), StateTextError> {
        let bad = |reason: String| StateTextError { text: self.to_string(), reason };
        let per_page = space.page / space.unit;
        let mut bits = space.extreme(self.default.is_newest());
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
                match *choice {
                    ItemChoice::Extreme(e) => space.set_extreme(&mut bits, d, e.is_newest()),
                    ItemChoice::Version(n) => match space.digit_of_version(d, n) {
                        Some(digit) => bits.set(d, digit),
                        None => notes
                            .push(format!("{name}: {} has no recorded version {n} in this trial", space.dim_name(d))),
                    },
                }
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
        let mut bits = s.extreme(true);
        bits.set(2, 0);
        bits.set(4, 0);
        let t = StateText::of(&s, &bits, Extreme::Newest);
        assert_eq!(t.to_string(), "newest:data.db#p1=floor,odd%2C%20name%23%3D.log#p0=floor");
        let parsed: StateText = t.to_string().parse().unwrap();
        assert_eq!(parsed, t);
        assert_eq!(parsed.resolve(&s).unwrap(), (bits.clone(), vec![]));
        let f = StateText::of(&s, &bits, Extreme::Floor);
        assert_eq!(f.to_string(), "floor:@1=newest,data.db#p0=newest,data.db#p2=newest");
        assert_eq!(f.resolve(&s).unwrap().0, bits);
        assert_eq!("newest".parse::<StateText>().unwrap().resolve(&s).unwrap().0, s.extreme(true));
    }

    #[test]
    fn sectors_calls_and_items_that_name_nothing() {
        let torn = space(4);
        let t: StateText =
            "newest:data.db#p1s1=floor,data.db#p0=floor,gone#p0=floor,@9=floor,data.db#len=floor".parse().unwrap();
        let (bits, notes) = t.resolve(&torn).unwrap();
        // A page item covers its sectors.
        assert_eq!(torn.members(&bits, false).len(), 3);
        assert_eq!(
            notes,
            vec![
                "@9: call 9 made no namespace operation that a power loss may lose in this trial".to_string(),
                "data.db#len: sizes are namespace operations now (`@CALL` items); this item names nothing".to_string(),
                "gone#p0: no file gone in this trial's directory".to_string(),
            ]
        );
        let (bits, _) = "newest:@1=floor".parse::<StateText>().unwrap().resolve(&torn).unwrap();
        assert_eq!(torn.members(&bits, false), vec![0]);
        let whole = space(8);
        assert!(t.resolve(&whole).unwrap_err().to_string().contains("names a sector, but this run has no --tear"));
        let s = test_space(&[("s", &[5; 8], &[5; 8])], &[], 8, 8);
        let (_, notes) = "floor:s#p0=newest".parse::<StateText>().unwrap().resolve(&s).unwrap();
        assert!(notes[0].contains("the same at its floor and newest"), "{notes:?}");
    }

    #[test]
    fn intermediate_versions_are_named_by_their_number_in_the_page_history() {
        use crate::page_history::PageVersion;
        let v =
            |page, bytes: &[u8]| PageVersion { page, bytes: bytes.to_vec(), after_call: None, before_call: Some(1) };
        let mut s = test_space(&[("f", b"AAAABBBB", b"XXXXYYYY")], &[], 4, 4);
        // Page 1's second version equals its newest content.
        s.files[0].history = vec![v(1, b"PPPP"), v(1, b"YYYY"), v(1, b"QQQQ")];
        let s = StateSpace::new(s.ns.clone(), s.files.clone(), 4, 4);
        assert_eq!(s.radices(), [2, 4]);
        let (bits, notes) = "newest:f#p1=v3".parse::<StateText>().unwrap().resolve(&s).unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(bits.get(1), 2, "floor, P, Q, newest");
        let t = StateText::of(&s, &bits, Extreme::Newest);
        assert_eq!(t.to_string(), "newest:f#p1=v3");
        let (again, _) = t.to_string().parse::<StateText>().unwrap().resolve(&s).unwrap();
        assert_eq!(again, bits);
        let (newest, _) = "floor:f#p1=v2".parse::<StateText>().unwrap().resolve(&s).unwrap();
        assert!(s.is_newest(&newest, 1), "v2 is the newest content");
        let (_, notes) = "newest:f#p1=v4,f#p0=v1".parse::<StateText>().unwrap().resolve(&s).unwrap();
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].contains("f page 0 has no recorded version 1"), "{notes:?}");
        assert!(notes[1].contains("f page 1 has no recorded version 4"), "{notes:?}");
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
            "newest:f#p1=v0",
            "newest:f#p1=v01",
            "newest:f#p1=v",
            "newest:@3=v1",
        ] {
            assert!(bad.parse::<StateText>().is_err(), "`{bad}` must not parse");
        }
    }
}
