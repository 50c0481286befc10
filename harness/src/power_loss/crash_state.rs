//! The text form of one power-loss state, for replay lines and reports.
//!
//! A state lists only what differs from a default — the all-floor state
//! (`floor`) or the all-newest state (`newest`) — so the states explanations
//! point at (one unit away from the newest state) stay a few characters
//! long: `newest:p2=v0`, `floor:len=4096,p0=v5,p3=v7`, `newest:p1s3=v9`.
//! The text is exact only together with the trial (spec, facts, tear size)
//! that gave it meaning; [`PowerLossModel::resolve`] checks it fits.
//!
//! The frame (`DEFAULT[:ITEM,...]`), the defaults and the unit codes are the
//! one state grammar's ([`crate::explore::state_text`]); the items `len=N`
//! and `UNIT=VERSION` are this world's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::space::{ChoiceVector, PowerLossModel};
use super::unit::{UnitId, VersionLabel};
use super::PowerLossError;
use crate::explore::state_text::{split_state, write_state, Extreme};

/// One power-loss state as text: `DEFAULT[:ITEM,ITEM...]` with items
/// `len=N` (the file size, if not the default's) and `UNIT=VERSION`
/// (`p3=v7`, `p3s5=t0`), units in file order. Units not listed hold their
/// durable floor (`floor`: the file at its durable size) or their newest
/// version (`newest`: the file at its newest size).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct CrashState {
    pub default: Extreme,
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
        let len = self.len.map(|len| format!("len={len}"));
        let units = self.units.iter().map(|(unit, version)| format!("{}={version}", unit.code()));
        write_state(f, self.default, len.into_iter().chain(units))
    }
}

impl FromStr for CrashState {
    type Err = ParseCrashStateError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| ParseCrashStateError { text: s.to_string(), reason };
        let (head, items) = split_state(s);
        let default = Extreme::parse(head).ok_or_else(|| bad(format!("unknown default `{head}`")))?;
        let mut state = CrashState { default, len: None, units: Vec::new() };
        for item in items {
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

impl PowerLossModel<'_> {
    /// The text form of a state: only what differs from the all-floor or the
    /// all-newest state, whichever is shorter.
    pub fn crash_state(&self, c: &ChoiceVector) -> CrashState {
        let within = self.dims_within(c.size);
        let listed = |default: Extreme| {
            let def_len = match default {
                Extreme::Floor => self.durable_size(),
                Extreme::Newest => self.newest_size(),
            };
            let len = (self.sizes()[c.size] != def_len).then_some(self.sizes()[c.size]);
            let units: Vec<(UnitId, VersionLabel)> = (0..within)
                .filter(|&d| {
                    let v = c.versions[d];
                    match default {
                        Extreme::Floor => v != 0,
                        Extreme::Newest => v != self.radix(d) - 1,
                    }
                })
                .map(|d| (self.dim_unit(d).id, self.dim_unit(d).allowed()[c.versions[d] as usize].label()))
                .collect();
            CrashState { default, len, units }
        };
        let newest = listed(Extreme::Newest);
        let floor = listed(Extreme::Floor);
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
            Extreme::Floor => self.durable_size(),
            Extreme::Newest => self.newest_size(),
        });
        let z = self.size_index(len).ok_or_else(|| err(format!("size {len} is not one of {:?}", self.sizes())))?;
        let mut c = match s.default {
            Extreme::Floor => self.floor_choice(z),
            Extreme::Newest => self.newest_choice(z),
        };
        let ps = self.spec().page_size;
        for &(id, label) in &s.units {
            let start = id.page * ps + id.sector.map_or(0, |s| s as u64 * self.unit_size());
            let shape_ok = id.sector.is_some() == self.is_torn()
                && !matches!(id.sector, Some(s) if s as u64 >= ps / self.unit_size())
                && start < self.spec().file_size;
            if !shape_ok {
                return Err(err(format!("there is no unit {id} with units of {} bytes", self.unit_size())));
            }
            let i = self.first_unit_ending_after(start);
            match self.units().get(i).filter(|u| u.range.start == start) {
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
            (CrashState { default: Extreme::Newest, len: None, units: vec![] }, "newest"),
            (
                CrashState {
                    default: Extreme::Floor,
                    len: Some(4096),
                    units: vec![(unit(0, None), VersionLabel::Version(5)), (unit(3, None), VersionLabel::Version(7))],
                },
                "floor:len=4096,p0=v5,p3=v7",
            ),
            (
                CrashState {
                    default: Extreme::Newest,
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

    /// The texts already out there (committed report samples, which carry
    /// replay lines) must keep parsing and printing exactly as they were.
    #[test]
    fn every_state_in_the_committed_samples_reads_and_prints_back_the_same() {
        fn states(v: &serde_json::Value, out: &mut Vec<String>) {
            match v {
                serde_json::Value::Object(m) => {
                    for (k, v) in m {
                        match v.as_str() {
                            Some(text) if k == "state" => out.push(text.to_owned()),
                            _ => states(v, out),
                        }
                    }
                }
                serde_json::Value::Array(a) => a.iter().for_each(|v| states(v, out)),
                _ => {}
            }
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../reports/samples");
        let mut found = Vec::new();
        for name in ["survival-matrix-tmpfs.json", "survival-matrix-ext4.json"] {
            let text = std::fs::read_to_string(dir.join(name)).unwrap();
            states(&serde_json::from_str(&text).unwrap(), &mut found);
        }
        let mut sectors = 0;
        for text in &found {
            let state: CrashState = text.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(&state.to_string(), text);
            sectors += state.units.iter().filter(|(u, _)| u.sector.is_some()).count();
        }
        assert!(found.len() > 10 && sectors > 0, "the samples hold page and sector states: {found:?}");
    }
}
