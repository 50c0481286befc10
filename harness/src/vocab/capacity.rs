//! The capacity of the filesystem an `enospc` trial's writer runs on
//! (`--capacity BYTES`): its bounds, and the default derived from the clean
//! run.
//!
//! The writer of an `enospc` trial runs in a directory that can hold only
//! so many bytes (a size-limited tmpfs in a user + mount namespace), so the
//! filesystem really fills up: `write`/`fallocate`/`ftruncate`-then-store
//! see `ENOSPC` or `SIGBUS` at the point the kernel would give them on any
//! full disk. tmpfs counts its size in pages, so a capacity is a whole
//! number of pages; it must be at least one (a tmpfs `size=0` means no
//! limit at all, the opposite of what is asked).
//!
//! As root, `--capacity-fs ext4` gives the writer a small ext4 instead
//! (a loop device): a disk filesystem, with its own metadata inside the
//! capacity and delayed allocation.
//!
//! Architecture Invariant: pure.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The filesystem of an `enospc` trial (`--capacity-fs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CapacityFs {
    /// A size-limited tmpfs in a user + mount namespace: no privilege.
    #[default]
    Tmpfs,
    /// A fresh ext4 (no journal, no reserved blocks) on a loop device of
    /// the capacity's size, in a mount namespace: root only.
    Ext4,
}

/// The smallest ext4 crashlab makes: mkfs.ext4 needs room for its
/// superblock, group descriptors, bitmaps and inode table (a 256 KiB image
/// leaves about 216 KiB for files).
pub const MIN_EXT4_CAPACITY: u64 = 256 << 10;

impl CapacityFs {
    pub fn name(self) -> &'static str {
        match self {
            CapacityFs::Tmpfs => "tmpfs",
            CapacityFs::Ext4 => "ext4",
        }
    }

    /// Loop devices and mounts of disk filesystems need root.
    pub fn needs_root(self) -> bool {
        self == CapacityFs::Ext4
    }

    /// The least capacity this filesystem can be made with.
    pub fn min_capacity(self, page: u64) -> u64 {
        match self {
            CapacityFs::Tmpfs => page,
            CapacityFs::Ext4 => MIN_EXT4_CAPACITY.max(page),
        }
    }
}

impl fmt::Display for CapacityFs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CapacityFs {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "tmpfs" => Ok(CapacityFs::Tmpfs),
            "ext4" => Ok(CapacityFs::Ext4),
            other => Err(format!("unknown capacity filesystem `{other}` (expected tmpfs, or ext4 as root)")),
        }
    }
}

/// The largest `--capacity`: 1 GiB. A tmpfs lives in memory; the capacity
/// is there to run out, and a run that needs more than this to reach the
/// interesting point can shrink its writer's `--records`.
pub const MAX_CAPACITY: u64 = 1 << 30;

/// `--capacity BYTES` checked: a whole number of pages from one page
/// (256 KiB for ext4) to [`MAX_CAPACITY`]. The error names the flag and
/// the bound.
pub fn check_capacity(bytes: u64, page: u64, fs: CapacityFs) -> Result<u64, String> {
    if fs == CapacityFs::Ext4 && bytes < MIN_EXT4_CAPACITY {
        return Err(format!(
            "--capacity {bytes}: --capacity-fs ext4 needs at least {MIN_EXT4_CAPACITY} bytes (its own metadata)"
        ));
    }
    if bytes < page {
        return Err(format!(
            "--capacity {bytes}: at least one page ({page} bytes); a tmpfs counts its size in pages, and size 0 means no limit"
        ));
    }
    if bytes > MAX_CAPACITY {
        return Err(format!("--capacity {bytes} is above the maximum {MAX_CAPACITY} (1 GiB: a tmpfs lives in memory)"));
    }
    if bytes % page != 0 {
        return Err(format!(
            "--capacity {bytes}: not a multiple of the page size ({page} bytes); a tmpfs counts its size in pages"
        ));
    }
    Ok(bytes)
}

/// The capacity when `--capacity` is not given: half of what the clean
/// run's directory allocated (`allocated`, the sum of its files' blocks),
/// rounded down to a page, at least the filesystem's least capacity (one
/// page for tmpfs) and at most [`MAX_CAPACITY`].
///
/// Half, because the point of the kind is a disk that fills *partway
/// through* the writer's work: with half of the space the clean run
/// needed, a writer that allocates as it goes runs out near the middle,
/// with acks before and work left after. A writer that allocated at most
/// one page cannot be cut short by this rule (one page is the least a
/// tmpfs can be), and its trials then say the filesystem never filled;
/// nor can a writer that allocated less than twice ext4's least capacity.
pub fn default_capacity(allocated: u64, page: u64, fs: CapacityFs) -> u64 {
    let half = (allocated / 2) / page * page;
    half.clamp(fs.min_capacity(page), MAX_CAPACITY / page * page)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u64 = 4096;

    #[test]
    fn a_capacity_is_a_whole_number_of_pages_between_one_page_and_one_gib() {
        assert_eq!(check_capacity(PAGE, PAGE, CapacityFs::Tmpfs), Ok(PAGE));
        assert_eq!(check_capacity(16 * PAGE, PAGE, CapacityFs::Tmpfs), Ok(16 * PAGE));
        assert_eq!(check_capacity(MAX_CAPACITY, PAGE, CapacityFs::Tmpfs), Ok(MAX_CAPACITY));
        let zero = check_capacity(0, PAGE, CapacityFs::Tmpfs).unwrap_err();
        assert!(zero.contains("--capacity 0") && zero.contains("no limit"), "{zero}");
        let odd = check_capacity(PAGE + 1, PAGE, CapacityFs::Tmpfs).unwrap_err();
        assert!(odd.contains("multiple of the page size"), "{odd}");
        let huge = check_capacity(MAX_CAPACITY + PAGE, PAGE, CapacityFs::Tmpfs).unwrap_err();
        assert!(huge.contains("maximum"), "{huge}");
        let small_ext4 = check_capacity(16 * PAGE, PAGE, CapacityFs::Ext4).unwrap_err();
        assert!(small_ext4.contains("ext4 needs at least 262144"), "{small_ext4}");
        assert_eq!(check_capacity(64 * PAGE, PAGE, CapacityFs::Ext4), Ok(64 * PAGE));
        assert_eq!("ext4".parse::<CapacityFs>(), Ok(CapacityFs::Ext4));
        assert!("xfs".parse::<CapacityFs>().unwrap_err().contains("tmpfs, or ext4"));
    }

    #[test]
    fn the_default_capacity_is_half_the_clean_runs_allocation_in_whole_pages() {
        assert_eq!(default_capacity(64 * PAGE, PAGE, CapacityFs::Tmpfs), 32 * PAGE);
        // 5 pages: half is 2.5 pages, rounded down.
        assert_eq!(default_capacity(5 * PAGE, PAGE, CapacityFs::Tmpfs), 2 * PAGE);
        // Nothing or one page allocated: still a tmpfs of one page, never size 0.
        assert_eq!(default_capacity(0, PAGE, CapacityFs::Tmpfs), PAGE);
        assert_eq!(default_capacity(PAGE, PAGE, CapacityFs::Tmpfs), PAGE);
        assert_eq!(default_capacity(u64::MAX, PAGE, CapacityFs::Tmpfs), MAX_CAPACITY);
        // ext4 is never made smaller than its least capacity.
        assert_eq!(default_capacity(64 * PAGE, PAGE, CapacityFs::Ext4), MIN_EXT4_CAPACITY);
        assert_eq!(default_capacity(256 * PAGE, PAGE, CapacityFs::Ext4), 128 * PAGE);
    }
}
