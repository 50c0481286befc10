//! Where and how real power cuts are made: the backend, the filesystem, the
//! cut, and a matrix column naming the first two. Plain words shared by the
//! real-cut runners, the soundness report and the survival report.
//!
//! Architecture Invariant: pure; nothing here touches a device.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What the loopcut backend's "disk" does with the writes it acknowledged.
pub const LOOPCUT_DISK: &str = "a loop device over a file: no volatile write cache; writes the filesystem issued \
                                before the cut are kept whole and in order (acknowledged writes are neither \
                                reordered nor torn)";

/// What the vm backend's "disk" does with the writes it acknowledged.
pub const VM_DISK: &str = "virtio-blk, cache=none, qemu killed with SIGKILL: a disk with no volatile write cache; \
                           acknowledged writes are never reordered or torn";

/// Where real power cuts are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Backend {
    /// The host kernel, filesystems on loop devices (root).
    Loopcut,
    /// A guest kernel under qemu, killed (no root).
    Vm,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Loopcut => "loopcut",
            Backend::Vm => "vm",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "loopcut" => Ok(Backend::Loopcut),
            "vm" => Ok(Backend::Vm),
            _ => Err(format!("unknown backend `{s}` (expected loopcut or vm)")),
        }
    }
}

/// A filesystem the loopcut backend can cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FsKind {
    Ext4,
    Xfs,
    Btrfs,
}

impl FsKind {
    pub const ALL: [FsKind; 3] = [FsKind::Ext4, FsKind::Xfs, FsKind::Btrfs];

    pub fn name(self) -> &'static str {
        match self {
            FsKind::Ext4 => "ext4",
            FsKind::Xfs => "xfs",
            FsKind::Btrfs => "btrfs",
        }
    }

    /// The mkfs program and its arguments before the image path.
    pub fn mkfs(self) -> (&'static str, &'static [&'static str]) {
        match self {
            // 4 KiB blocks (mke2fs picks 1 KiB for small images), everything
            // initialized now so no lazy-init thread writes during trials.
            FsKind::Ext4 => {
                ("mkfs.ext4", &["-q", "-F", "-b", "4096", "-E", "lazy_itable_init=0,lazy_journal_init=0,nodiscard"])
            }
            FsKind::Xfs => ("mkfs.xfs", &["-q", "-f", "-K"]),
            FsKind::Btrfs => ("mkfs.btrfs", &["-q", "-f", "-K"]),
        }
    }

    /// The Debian package that has the mkfs program.
    pub fn package(self) -> &'static str {
        match self {
            FsKind::Ext4 => "e2fsprogs",
            FsKind::Xfs => "xfsprogs",
            FsKind::Btrfs => "btrfs-progs",
        }
    }

    /// Image size: above each mkfs's minimum (xfs: 300 MB). Sparse, so only
    /// what mkfs and the trials write takes memory or disk.
    pub fn image_size(self) -> u64 {
        match self {
            FsKind::Ext4 => 64 << 20,
            FsKind::Xfs => 320 << 20,
            FsKind::Btrfs => 256 << 20,
        }
    }

    /// Mount options of a copy mounted while the original is: xfs refuses a
    /// second filesystem with the same UUID; btrfs gives a single-device
    /// clone a temporary fsid by itself.
    pub fn copy_mount_options(self) -> &'static str {
        match self {
            FsKind::Xfs => "nouuid",
            _ => "",
        }
    }

    /// How a power cut is made: the shutdown ioctl where the filesystem has
    /// it, else a raw copy of the device.
    pub fn default_cut(self) -> CutMethod {
        match self {
            FsKind::Ext4 | FsKind::Xfs => CutMethod::Shutdown,
            FsKind::Btrfs => CutMethod::RawCopy,
        }
    }

    /// Can the loopcut backend cut this filesystem this way?
    pub fn supports(self, cut: CutMethod) -> bool {
        match cut {
            CutMethod::RawCopy => true,
            CutMethod::Shutdown => self != FsKind::Btrfs,
            CutMethod::VmSigkill => false,
        }
    }
}

impl fmt::Display for FsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FsKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FsKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown filesystem `{s}` (expected ext4, xfs or btrfs)"))
    }
}

/// How the power is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CutMethod {
    /// `FS_IOC_SHUTDOWN` with `NOLOGFLUSH`, unmount, mount again (log replay).
    Shutdown,
    /// Copy the device with `O_DIRECT` while the page cache still holds the
    /// dirty pages; mount the copy (log replay). The live filesystem goes on.
    RawCopy,
    /// The vm backend: qemu killed with SIGKILL; the journal replayed on a
    /// copy of the image (`e2fsck -fy`), the file dumped (`debugfs`).
    VmSigkill,
}

impl CutMethod {
    pub fn name(self) -> &'static str {
        match self {
            CutMethod::Shutdown => "shutdown",
            CutMethod::RawCopy => "raw-copy",
            CutMethod::VmSigkill => "vm-sigkill",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            CutMethod::Shutdown => "FS_IOC_SHUTDOWN(NOLOGFLUSH), umount, mount (log replay), read",
            CutMethod::RawCopy => "O_DIRECT copy of the device with dirty pages still cached, mount the copy, read",
            CutMethod::VmSigkill => {
                "qemu (virtio-blk cache=none) SIGKILLed at the writer's stop; e2fsck -fy on a copy, debugfs dump"
            }
        }
    }
}

impl fmt::Display for CutMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CutMethod {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "shutdown" => Ok(CutMethod::Shutdown),
            "raw-copy" => Ok(CutMethod::RawCopy),
            _ => Err(format!("unknown cut method `{s}` (expected shutdown or raw-copy)")),
        }
    }
}

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
            Backend::Loopcut => LOOPCUT_DISK,
            Backend::Vm => VM_DISK,
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
