//! The one grammar of a power-loss state's text, shared by both worlds:
//!
//! ```text
//! STATE   = DEFAULT [ ":" ITEM { "," ITEM } ]
//! DEFAULT = "floor" | "newest"        what every unit not listed holds
//! UNIT    = "p" PAGE [ "s" SECTOR ]   a page, or a sector of it (torn pages)
//! ```
//!
//! Built-in states list `len=N` and `UNIT=VERSION` items
//! (`floor:len=4096,p0=v5,p3=v7`, [`crate::power_loss::CrashState`]);
//! users' programs list `FILE#UNIT=floor|newest` items with the file name
//! escaped by [`escape_path`] (`newest:data.db#p3=floor`,
//! [`crate::external::power_loss::StateText`]). Each world reads its items'
//! meaning; the frame, the defaults, the unit codes and the escaping are
//! here, so the two texts cannot drift apart. These texts are in replay
//! lines, regressions files and users' CI logs: they must keep parsing and
//! printing exactly as they do.
//!
//! Architecture Invariant: pure.

use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The two ends of every unit's allowed versions: its durable floor (what
/// completed syncs guarantee) and its newest version (the page cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Extreme {
    Floor,
    Newest,
}

impl Extreme {
    pub fn name(self) -> &'static str {
        match self {
            Extreme::Floor => "floor",
            Extreme::Newest => "newest",
        }
    }

    pub fn parse(s: &str) -> Option<Extreme> {
        match s {
            "floor" => Some(Extreme::Floor),
            "newest" => Some(Extreme::Newest),
            _ => None,
        }
    }

    pub fn is_newest(self) -> bool {
        self == Extreme::Newest
    }
}

/// A state text cut into its default's text and its items' texts (none
/// without a `:`; `newest:` has one empty item, which no world accepts).
pub fn split_state(text: &str) -> (&str, Vec<&str>) {
    match text.split_once(':') {
        Some((head, items)) => (head, items.split(',').collect()),
        None => (text, Vec::new()),
    }
}

/// Write `default` and `items` in the state frame.
pub fn write_state<I: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    default: Extreme,
    items: impl IntoIterator<Item = I>,
) -> fmt::Result {
    f.write_str(default.name())?;
    let mut sep = ':';
    for item in items {
        write!(f, "{sep}{item}")?;
        sep = ',';
    }
    Ok(())
}

/// A unit's code: `p3`, or `p3s5` for sector 5 of page 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitCode {
    pub page: u64,
    pub sector: Option<u64>,
}

impl UnitCode {
    /// Digits only, each number within `u64`.
    pub fn parse(s: &str) -> Option<UnitCode> {
        let rest = s.strip_prefix('p')?;
        let number =
            |t: &str| (!t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())).then(|| t.parse().ok()).flatten();
        match rest.split_once('s') {
            Some((p, sec)) => Some(UnitCode { page: number(p)?, sector: Some(number(sec)?) }),
            None => Some(UnitCode { page: number(rest)?, sector: None }),
        }
    }
}

impl fmt::Display for UnitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.sector {
            None => write!(f, "p{}", self.page),
            Some(s) => write!(f, "p{}s{s}", self.page),
        }
    }
}

/// A file name as an item writes it: `%`, `,`, `#`, `=`, `:` (the
/// grammar's separators) and bytes outside printable ASCII as `%XX`.
pub fn escape_path(path: &Path) -> String {
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

/// The file name [`escape_path`] wrote; `None` if empty or badly escaped.
pub fn unescape_path(s: &str) -> Option<PathBuf> {
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

#[cfg(test)]
mod tests {
    use super::*;

    struct Frame(Extreme, Vec<&'static str>);

    impl fmt::Display for Frame {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write_state(f, self.0, &self.1)
        }
    }

    #[test]
    fn the_frame_splits_and_writes_back_the_same_text() {
        for (text, default, items) in [
            ("newest", Extreme::Newest, vec![]),
            ("floor:len=4096,p0=v5", Extreme::Floor, vec!["len=4096", "p0=v5"]),
            ("newest:data.db#p3=floor", Extreme::Newest, vec!["data.db#p3=floor"]),
        ] {
            let (head, got) = split_state(text);
            assert_eq!((Extreme::parse(head), &got), (Some(default), &items));
            assert_eq!(Frame(default, items).to_string(), text);
        }
        assert_eq!(split_state("newest:"), ("newest", vec![""]));
        assert_eq!(Extreme::parse("oldest"), None);
    }

    #[test]
    fn unit_codes_round_trip_and_refuse_what_is_not_one() {
        for code in [UnitCode { page: 0, sector: None }, UnitCode { page: 12, sector: Some(7) }] {
            assert_eq!(UnitCode::parse(&code.to_string()), Some(code));
        }
        assert_eq!(UnitCode::parse("p3s5").unwrap().to_string(), "p3s5");
        for bad in ["p", "3", "p3s", "ps1", "p-1", "p3x1", "p3s1s2", "len", "p99999999999999999999"] {
            assert_eq!(UnitCode::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn escaped_paths_hold_no_separator_and_come_back() {
        let path = Path::new("odd, name#=.log");
        assert_eq!(escape_path(path), "odd%2C%20name%23%3D.log");
        assert_eq!(unescape_path(&escape_path(path)).as_deref(), Some(path));
        assert_eq!(unescape_path("%ZZ"), None);
        assert_eq!(unescape_path("%4"), None);
        assert_eq!(unescape_path(""), None);
    }
}
