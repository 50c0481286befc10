//! Writeback pressure during real power cuts (`--writeback`): what, if
//! anything, pushes a writer's dirty pages to the disk while it runs, so
//! that real cuts also produce the states where unsynced data *did* reach
//! the disk (kept unsynced pages, intermediate versions, grown sizes).
//! Without it the writers finish long before the kernel writes anything
//! back, and cuts only ever show "everything unsynced is lost".
//!
//! Text form: `none`, `syncfs:US` (a helper process calls `syncfs(2)` on the
//! test filesystem every US microseconds while the writers run), `expire:CS`
//! (the campaign sets `vm.dirty_expire_centisecs` and
//! `vm.dirty_writeback_centisecs` to CS and restores them afterwards).
//!
//! Architecture Invariant: pure; nothing here starts a process or writes a
//! sysctl (that is `realcut::pressure`'s part).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Smallest `syncfs:US` period: below it the helper only spins on the
/// filesystem's locks (one `syncfs` of a small loop filesystem takes tens of
/// microseconds) and steals the writer's core.
pub const MIN_SYNCFS_US: u32 = 50;
/// Largest `syncfs:US` period: 10 s, longer than any trial, i.e. no pressure.
pub const MAX_SYNCFS_US: u32 = 10_000_000;
/// Smallest `expire:CS`: 1 centisecond (the kernel's unit; 0 would disable
/// periodic writeback for `dirty_writeback_centisecs`).
pub const MIN_EXPIRE_CS: u32 = 1;
/// Largest `expire:CS`: 3000 cs, the kernel's default expiry (30 s); above
/// it the setting would lower pressure, not raise it.
pub const MAX_EXPIRE_CS: u32 = 3000;

/// What pushes dirty pages to the disk while the writers of a cut run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(into = "String", try_from = "String")]
#[schemars(with = "String")]
pub enum Writeback {
    /// Nothing but the kernel's own writeback (default expiry 30 s).
    #[default]
    None,
    /// A helper process calls `syncfs(2)` on the filesystem under test every
    /// `every_us` microseconds, from before the first writer of a cut starts
    /// until the cut.
    Syncfs { every_us: u32 },
    /// `vm.dirty_expire_centisecs` and `vm.dirty_writeback_centisecs` set to
    /// `centisecs` for the whole campaign (root), restored afterwards.
    Expire { centisecs: u32 },
}

/// The pattern of [`Writeback`]'s text form (what `FromStr` accepts).
pub const WRITEBACK_PATTERN: &str = "^(none|syncfs:[0-9]+|expire:[0-9]+)$";

impl Writeback {
    pub fn is_none(&self) -> bool {
        *self == Writeback::None
    }
}

impl fmt::Display for Writeback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Writeback::None => f.write_str("none"),
            Writeback::Syncfs { every_us } => write!(f, "syncfs:{every_us}"),
            Writeback::Expire { centisecs } => write!(f, "expire:{centisecs}"),
        }
    }
}

fn number(flag_value: &str, n: &str, unit: &str, min: u32, max: u32) -> Result<u32, String> {
    let v: u32 = n.parse().map_err(|_| {
        format!(
            "--writeback {flag_value}: `{n}` is not a whole number of {unit} (expected none, syncfs:US or expire:CS)"
        )
    })?;
    if !(min..=max).contains(&v) {
        return Err(format!("--writeback {flag_value}: {v} {unit} is outside {min}..={max}"));
    }
    Ok(v)
}

impl FromStr for Writeback {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once(':') {
            None if s == "none" => Ok(Writeback::None),
            Some(("syncfs", n)) => {
                Ok(Writeback::Syncfs { every_us: number(s, n, "microseconds", MIN_SYNCFS_US, MAX_SYNCFS_US)? })
            }
            Some(("expire", n)) => {
                Ok(Writeback::Expire { centisecs: number(s, n, "centiseconds", MIN_EXPIRE_CS, MAX_EXPIRE_CS)? })
            }
            _ => Err(format!(
                "--writeback `{s}`: expected none, syncfs:US (e.g. syncfs:300) or expire:CS (e.g. expire:1)"
            )),
        }
    }
}

impl From<Writeback> for String {
    fn from(w: Writeback) -> String {
        w.to_string()
    }
}

impl TryFrom<String> for Writeback {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_text_form_round_trips_through_display_and_serde() {
        for (text, w) in [
            ("none", Writeback::None),
            ("syncfs:300", Writeback::Syncfs { every_us: 300 }),
            ("syncfs:50", Writeback::Syncfs { every_us: MIN_SYNCFS_US }),
            ("expire:1", Writeback::Expire { centisecs: 1 }),
            ("expire:3000", Writeback::Expire { centisecs: MAX_EXPIRE_CS }),
        ] {
            assert_eq!(text.parse::<Writeback>().unwrap(), w, "{text}");
            assert_eq!(w.to_string(), text);
            assert_eq!(serde_json::to_string(&w).unwrap(), format!("\"{text}\""));
            assert_eq!(serde_json::from_str::<Writeback>(&format!("\"{text}\"")).unwrap(), w);
            assert!(regex_like_pattern_accepts(text), "{text}");
        }
        assert_eq!(Writeback::default(), Writeback::None);
    }

    /// WRITEBACK_PATTERN without a regex crate: its three alternatives.
    fn regex_like_pattern_accepts(s: &str) -> bool {
        let digits = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
        assert_eq!(WRITEBACK_PATTERN, "^(none|syncfs:[0-9]+|expire:[0-9]+)$");
        s == "none" || s.strip_prefix("syncfs:").is_some_and(digits) || s.strip_prefix("expire:").is_some_and(digits)
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_and_the_expected_forms() {
        let e = "fsync:3".parse::<Writeback>().unwrap_err();
        assert!(e.starts_with("--writeback `fsync:3`") && e.contains("syncfs:US") && e.contains("expire:CS"), "{e}");
        let e = "syncfs:fast".parse::<Writeback>().unwrap_err();
        assert!(e.contains("--writeback syncfs:fast") && e.contains("microseconds"), "{e}");
        let e = "syncfs:10".parse::<Writeback>().unwrap_err();
        assert!(e.contains("10 microseconds is outside 50..=10000000"), "{e}");
        let e = "expire:0".parse::<Writeback>().unwrap_err();
        assert!(e.contains("0 centiseconds is outside 1..=3000"), "{e}");
        assert!("expire:3001".parse::<Writeback>().is_err());
        assert!("none:1".parse::<Writeback>().is_err());
        assert!(serde_json::from_str::<Writeback>("\"syncfs\"").is_err());
    }
}
