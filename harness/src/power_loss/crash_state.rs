//! The text form of one power-loss state, for replay lines and reports.
//!
//! A state lists only what differs from a default — the all-floor state
//! (`floor`) or the all-newest state (`newest`) — so the states explanations
//! point at (one unit away from the newest state) stay a few characters
//! long: `newest:p2=v0`, `floor:len=4096,p0=v5,p3=v7`, `newest:p1s3=v9`.
//! The text is exact only together with the trial (spec, facts, tear size)
//! that gave it meaning; [`super::PowerLossModel::resolve`] checks it fits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::space::{UnitId, VersionLabel};

/// What units not listed in a [`CrashState`] hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultChoice {
    /// Every unit at its durable floor, the file at its durable size.
    Floor,
    /// Every unit at its newest version, the file at its newest size.
    Newest,
}

impl DefaultChoice {
    fn name(self) -> &'static str {
        match self {
            DefaultChoice::Floor => "floor",
            DefaultChoice::Newest => "newest",
        }
    }
}

/// One power-loss state as text: `DEFAULT[:ITEM,ITEM...]` with items
/// `len=N` (the file size, if not the default's) and `UNIT=VERSION`
/// (`p3=v7`, `p3s5=t0`), units in file order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct CrashState {
    pub default: DefaultChoice,
    pub len: Option<u64>,
    pub units: Vec<(UnitId, VersionLabel)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad crash state `{text}`: {reason} (expected floor|newest[:len=N,pP[sS]=vN|tN,...])")]
pub struct ParseCrashStateError {
    pub text: String,
    pub reason: String,
}

impl fmt::Display for CrashState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.default.name())?;
        let mut sep = ':';
        if let Some(len) = self.len {
            write!(f, "{sep}len={len}")?;
            sep = ',';
        }
        for (unit, version) in &self.units {
            write!(f, "{sep}{}={version}", unit.code())?;
            sep = ',';
        }
        Ok(())
    }
}

impl FromStr for CrashState {
    type Err = ParseCrashStateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| ParseCrashStateError { text: s.to_string(), reason };
        let (head, items) = match s.split_once(':') {
            Some((h, rest)) => (h, Some(rest)),
            None => (s, None),
        };
        let default = match head {
            "floor" => DefaultChoice::Floor,
            "newest" => DefaultChoice::Newest,
            other => return Err(bad(format!("unknown default `{other}`"))),
        };
        let mut state = CrashState { default, len: None, units: Vec::new() };
        for item in items.map(|i| i.split(',').collect::<Vec<_>>()).unwrap_or_default() {
            let (key, value) = item.split_once('=').ok_or_else(|| bad(format!("item `{item}` has no `=`")))?;
            if key == "len" {
                if state.len.is_some() || !state.units.is_empty() {
                    return Err(bad("`len` must come first, once".into()));
                }
                let digits = !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit());
                state.len =
                    Some(value.parse().ok().filter(|_| digits).ok_or_else(|| bad(format!("bad length `{value}`")))?);
                continue;
            }
            let unit = UnitId::parse_code(key).ok_or_else(|| bad(format!("bad unit `{key}`")))?;
            let version: VersionLabel = value.parse().map_err(bad)?;
            if let Some(&(last, _)) = state.units.last() {
                if last >= unit {
                    return Err(bad(format!("units must be listed once, in file order (`{key}`)")));
                }
            }
            state.units.push((unit, version));
        }
        Ok(state)
    }
}

impl From<CrashState> for String {
    fn from(s: CrashState) -> String {
        s.to_string()
    }
}

impl TryFrom<String> for CrashState {
    type Error = ParseCrashStateError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(page: u64, sector: Option<u32>) -> UnitId {
        UnitId { page, sector }
    }

    #[test]
    fn text_round_trips_and_is_compact() {
        let cases = [
            (CrashState { default: DefaultChoice::Newest, len: None, units: vec![] }, "newest"),
            (
                CrashState {
                    default: DefaultChoice::Floor,
                    len: Some(4096),
                    units: vec![(unit(0, None), VersionLabel::Version(5)), (unit(3, None), VersionLabel::Version(7))],
                },
                "floor:len=4096,p0=v5,p3=v7",
            ),
            (
                CrashState {
                    default: DefaultChoice::Newest,
                    len: None,
                    units: vec![(unit(1, Some(3)), VersionLabel::Truncation(0))],
                },
                "newest:p1s3=t0",
            ),
        ];
        for (state, text) in cases {
            assert_eq!(state.to_string(), text);
            assert_eq!(text.parse::<CrashState>().unwrap(), state);
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<CrashState>(&json).unwrap(), state);
        }
    }

    #[test]
    fn malformed_states_are_refused() {
        for bad in [
            "",
            "oldest",
            "newest:",
            "newest:p1",
            "newest:p1=x",
            "newest:len=-1",
            "newest:p1=v1,len=4",
            "newest:p3=v1,p1=v2",
            "newest:p1=v1,p1=v2",
            "floor:len=1,len=2",
        ] {
            assert!(bad.parse::<CrashState>().is_err(), "`{bad}` must not parse");
        }
    }
}
