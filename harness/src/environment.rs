//! Facts about the machine a report was made on.

use std::path::Path;

use crate::report::Environment;

pub fn probe(dir: &Path) -> Environment {
    Environment { kernel_release: kernel_release(), fs_type: fs_type(dir), page_size: crate::lab::trial::page_size() }
}

pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// The filesystem holding `dir`, named from statfs's magic number.
pub fn fs_type(dir: &Path) -> String {
    let magic = match nix::sys::statfs::statfs(dir) {
        Ok(s) => s.filesystem_type().0 as u64,
        Err(e) => return format!("unknown ({e})"),
    };
    match magic {
        0xEF53 => "ext4".into(),
        0x0102_1994 => "tmpfs".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x794C_7630 => "overlayfs".into(),
        0x6573_5546 => "fuse".into(),
        0x2FC1_2FC1 => "zfs".into(),
        0xF2F5_2010 => "f2fs".into(),
        0x6969 => "nfs".into(),
        0x5346_544E => "ntfs".into(),
        0x4D44 => "vfat".into(),
        m => format!("unknown (magic {m:#x})"),
    }
}
