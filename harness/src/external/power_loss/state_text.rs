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

use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use super::space::{Bits, DimKind, StateSpace};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Choice {
    Floor,
    Newest,
}

impl Choice {
    fn name(self) -> &'static str {
        match self {
            Choice::Floor => "floor",
            Choice::Newest => "newest",
        }
    }

    fn parse(s: &str) -> Option<Choice> {
        match s {
            "floor" => Some(Choice::Floor),
            "newest" => Some(Choice::Newest),
            _ => None,
        }
    }

    fn is_newest(self) -> bool {
        self == Choice::Newest
    }
}

/// What an item of a state names inside a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnitRef {
    Len,
    Page(u64),
    Sector { page: u64, sector: u64 },
}

impl fmt::Display for UnitRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnitRef::Len => f.write_str("len"),
            UnitRef::Page(p) => write!(f, "p{p}"),
            UnitRef::Sector { page, sector } => write!(f, "p{page}s{sector}"),
        }
    }
}

impl UnitRef {
    fn parse(s: &str) -> Option<UnitRef> {
        if s == "len" {
            return Some(UnitRef::Len);
        }
        let rest = s.strip_prefix('p')?;
        let number =
            |t: &str| (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok()).flatten();
        match rest.split_once('s') {
            Some((p, sec)) => Some(UnitRef::Sector { page: number(p)?, sector: number(sec)? }),
            None => Some(UnitRef::Page(number(rest)?)),
        }
    }
}

/// One state as text (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateText {
    pub default: Choice,
    /// Sorted by file, then unit; each (file, unit) once.
    pub items: Vec<(PathBuf, UnitRef, Choice)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad power-loss state `{text}`: {reason} (expected floor|newest[:FILE#len|pN|pNsM=floor|newest,...])")]
pub struct StateTextError {
    pub text: String,
    pub reason: String,
}

fn escape(path: &Path) -> String {
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_graphic() && !b"%,#=:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn unescape(s: &str) -> Option<PathBuf> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    (!out.is_empty()).then(|| PathBuf::from(std::ffi::OsString::from_vec(out)))
}

impl fmt::Display for StateText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.default.name())?;
        let mut sep = ':';
        for (path, unit, choice) in &self.items {
            write!(f, "{sep}{}#{unit}={}", escape(path), choice.name())?;
            sep = ',';
        }
        Ok(())
    }
}

impl FromStr for StateText {
    type Err = StateTextError;
    fn from_str(s: &str) -> Result<StateText, StateTextError> {
        let bad = |reason: String| StateTextError { text: s.to_owned(), reason };
        let (head, rest) = match s.split_once(':') {
            Some((h, r)) => (h, Some(r)),
            None => (s, None),
        };
        let default = Choice::parse(head).ok_or_else(|| bad(format!("unknown default `{head}`")))?;
        let mut items = Vec::new();
        for item in rest.map(|r| r.split(',').collect::<Vec<_>>()).unwrap_or_default() {
            let (name, choice) = item.rsplit_once('=').ok_or_else(|| bad(format!("item `{item}` has no `=`")))?;
            let choice = Choice::parse(choice)
                .ok_or_else(|| bad(format!("item `{item}`: `{choice}` is not floor or newest")))?;
            let (file, unit) = name.rsplit_once('#').ok_or_else(|| bad(format!("item `{item}` has no `#`")))?;
            let path = unescape(file).ok_or_else(|| bad(format!("item `{item}`: bad file name")))?;
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
    pub fn of(space: &StateSpace, bits: &Bits, default: Choice) -> StateText {
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
                let choice = if default.is_newest() { Choice::Floor } else { Choice::Newest };
                (space.files[dim.file].path.clone(), unit, choice)
            })
            .collect();
        StateText { default, items }
    }

    /// The text of `bits` with whichever default lists fewer items.
    pub fn shortest(space: &StateSpace, bits: &Bits) -> StateText {
        let floor = StateText::of(space, bits, Choice::Floor);
        let newest = StateText::of(space, bits, Choice::Newest);
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
            let name = format!("{}#{unit}", escape(path));
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
        let t = StateText::of(&s, &bits, Choice::Newest);
        assert_eq!(t.to_string(), "newest:data.db#p1=floor,odd%2C%20name%23%3D.log#p0=floor");
        let parsed: StateText = t.to_string().parse().unwrap();
        assert_eq!(parsed, t);
        assert_eq!(parsed.resolve(&s).unwrap(), (bits.clone(), vec![]));
        let f = StateText::of(&s, &bits, Choice::Floor);
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
