//! A `power-loss-real` column of the survival matrix (`crashlab matrix
//! --real loopcut:ext4,vm`): a backend and the filesystem it cuts, its text
//! form, label, cut and disk. The report names its cells by it; running
//! them is [`super::columns`]'s.
//!
//! Architecture Invariant: pure.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::fs::{CutMethod, FsKind};
use super::Backend;

/// One real column: a backend and the filesystem it cuts. Text form
/// `loopcut:ext4`, `loopcut:xfs`, `loopcut:btrfs`, `vm` (ext4 in the guest;
/// `vm:ext4` is read too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct RealColumn {
    pub backend: Backend,
    pub fs: FsKind,
}

impl RealColumn {
    /// How this column cuts the power: the shutdown ioctl where the
    /// filesystem has one, else a raw copy of the device; qemu killed for vm.
    pub fn cut(self) -> CutMethod {
        match self.backend {
            Backend::Loopcut => self.fs.default_cut(),
            Backend::Vm => CutMethod::VmSigkill,
        }
    }

    /// `loopcut/ext4`, `vm`: the column's short name in labels.
    pub fn short(self) -> String {
        match self.backend {
            Backend::Loopcut => format!("loopcut/{}", self.fs),
            Backend::Vm => "vm".into(),
        }
    }

    /// The column's label in tables and pages: `power-loss (real: loopcut/ext4)`.
    pub fn label(self) -> String {
        format!("power-loss (real: {})", self.short())
    }

    /// What the backend's disk does with acknowledged writes.
    pub fn disk(self) -> &'static str {
        match self.backend {
            Backend::Loopcut => super::LOOPCUT_DISK,
            Backend::Vm => super::VM_DISK,
        }
    }
}

impl fmt::Display for RealColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.backend {
            Backend::Loopcut => write!(f, "loopcut:{}", self.fs),
            Backend::Vm => f.write_str("vm"),
        }
    }
}

impl FromStr for RealColumn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (backend, fs) = s.split_once(':').map_or((s, None), |(b, f)| (b, Some(f)));
        let expected = "expected loopcut:ext4, loopcut:xfs, loopcut:btrfs or vm";
        let backend: Backend = backend.parse().map_err(|e| format!("real column `{s}`: {e}; {expected}"))?;
        let fs = fs.map(|f| f.parse::<FsKind>().map_err(|e| format!("real column `{s}`: {e}"))).transpose()?;
        match (backend, fs) {
            (Backend::Loopcut, Some(fs)) => Ok(RealColumn { backend, fs }),
            (Backend::Loopcut, None) => Err(format!("real column `{s}`: name the filesystem; {expected}")),
            (Backend::Vm, None | Some(FsKind::Ext4)) => Ok(RealColumn { backend, fs: FsKind::Ext4 }),
            (Backend::Vm, Some(fs)) => Err(format!("real column `{s}`: the vm backend tests ext4 only, not {fs}")),
        }
    }
}

impl From<RealColumn> for String {
    fn from(c: RealColumn) -> String {
        c.to_string()
    }
}

impl TryFrom<String> for RealColumn {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// The pattern of [`RealColumn`]'s text form (what `FromStr` accepts).
pub const REAL_COLUMN_PATTERN: &str = "^(loopcut:(ext4|xfs|btrfs)|vm(:ext4)?)$";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms_round_trip_and_bad_ones_say_what_is_expected() {
        for (text, label, cut) in [
            ("loopcut:ext4", "power-loss (real: loopcut/ext4)", CutMethod::Shutdown),
            ("loopcut:xfs", "power-loss (real: loopcut/xfs)", CutMethod::Shutdown),
            ("loopcut:btrfs", "power-loss (real: loopcut/btrfs)", CutMethod::RawCopy),
            ("vm", "power-loss (real: vm)", CutMethod::VmSigkill),
        ] {
            let c: RealColumn = text.parse().unwrap();
            assert_eq!(c.to_string(), text);
            assert_eq!(c.label(), label);
            assert_eq!(c.cut(), cut);
            assert!(c.disk().contains("no volatile write cache"), "{}", c.disk());
        }
        assert_eq!("vm:ext4".parse::<RealColumn>().unwrap(), "vm".parse().unwrap());
        let e = "loopcut".parse::<RealColumn>().unwrap_err();
        assert!(e.contains("name the filesystem") && e.contains("loopcut:ext4"), "{e}");
        assert!("vm:xfs".parse::<RealColumn>().unwrap_err().contains("ext4 only"));
        assert!("qemu:ext4".parse::<RealColumn>().unwrap_err().contains("unknown backend"));
        assert!("loopcut:zfs".parse::<RealColumn>().unwrap_err().contains("unknown filesystem"));
        let json = serde_json::to_string(&"loopcut:xfs".parse::<RealColumn>().unwrap()).unwrap();
        assert_eq!(json, "\"loopcut:xfs\"");
        assert!(serde_json::from_str::<RealColumn>("\"loopcut\"").is_err());
    }
}
