//! `/proc/PID/maps`, reduced to what `msync` can make durable: shared,
//! file-backed mappings. Pure parsing and range resolution; the tracer
//! decides when to re-read (only after `mmap`/`munmap`/`mremap`/`execve`,
//! since a re-read costs ~43 µs measured here).
//!
//! Architecture Invariant: pure.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// One `MAP_SHARED` mapping of a file (perms `..s`, inode ≠ 0).
///
/// A `MAP_SHARED` mapping of a file opened read-only shows as private (`p`):
/// the kernel drops `VM_SHARED` when the mapping can never be written, and
/// msync skips it exactly as it skips private mappings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedFileMapping {
    pub start: u64,
    pub end: u64,
    /// File offset of `start`.
    pub offset: u64,
    /// The device (`major:minor` of the superblock, as `makedev` encodes
    /// it: `st_dev` except on btrfs subvolumes and overlayfs).
    pub dev: u64,
    pub inode: u64,
    /// The file's path as the kernel prints it now (it follows renames).
    pub path: PathBuf,
    /// The file was unlinked (" (deleted)"). It may still come back after a
    /// power loss (an unlink is not durable until its directory is synced):
    /// its syncs count.
    pub deleted: bool,
}

/// A piece of an address range that lies in one shared file mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePiece<'a> {
    pub mapping: &'a SharedFileMapping,
    pub file_offset: u64,
    pub len: u64,
}

fn hex(s: &[u8]) -> Option<u64> {
    u64::from_str_radix(std::str::from_utf8(s).ok()?, 16).ok()
}

/// Split off the next whitespace-separated field.
fn field(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = s.trim_ascii_start();
    let end = s.iter().position(|b| b.is_ascii_whitespace()).unwrap_or(s.len());
    if end == 0 {
        None
    } else {
        Some((&s[..end], &s[end..]))
    }
}

fn parse_line(line: &[u8]) -> Option<SharedFileMapping> {
    let m = parse_object_line(line).filter(|m| m.shared && m.inode != 0)?;
    Some(SharedFileMapping {
        start: m.start,
        end: m.end,
        offset: m.offset,
        dev: m.dev,
        inode: m.inode,
        path: m.path,
        deleted: m.deleted,
    })
}

/// One mapping of a named object (a file, or a pseudo-object such as
/// `[vdso]`), shared or private: what a stack frame's address is resolved
/// against (`oracle/stack.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMapping {
    pub start: u64,
    pub end: u64,
    /// File offset of `start` (meaningless for a pseudo-object).
    pub offset: u64,
    pub dev: u64,
    /// 0 for a pseudo-object (`[vdso]`, `[stack]`, ...).
    pub inode: u64,
    pub executable: bool,
    /// `MAP_SHARED` (perms `..s`).
    pub shared: bool,
    pub path: PathBuf,
    /// The file was unlinked (" (deleted)", not part of `path`).
    pub deleted: bool,
}

fn parse_object_line(line: &[u8]) -> Option<ObjectMapping> {
    let (range, rest) = field(line)?;
    let (perms, rest) = field(rest)?;
    let (offset, rest) = field(rest)?;
    let (dev, rest) = field(rest)?;
    let (inode, rest) = field(rest)?;
    let inode: u64 = std::str::from_utf8(inode).ok()?.parse().ok()?;
    let colon = dev.iter().position(|&b| b == b':')?;
    let dev = libc::makedev(hex(&dev[..colon])? as u32, hex(&dev[colon + 1..])? as u32);
    let dash = range.iter().position(|&b| b == b'-')?;
    let (start, end) = (hex(&range[..dash])?, hex(&range[dash + 1..])?);
    // The path is the rest of the line after the padding; it may hold spaces.
    let mut path = rest.trim_ascii_start();
    let deleted = path.ends_with(b" (deleted)");
    if deleted {
        path = &path[..path.len() - b" (deleted)".len()];
    }
    if path.is_empty() {
        return None;
    }
    Some(ObjectMapping {
        start,
        end,
        offset: hex(offset)?,
        dev,
        inode,
        executable: perms.get(2) == Some(&b'x'),
        shared: perms.get(3) == Some(&b's'),
        path: PathBuf::from(OsStr::from_bytes(path)),
        deleted,
    })
}

/// Every mapping of a maps file that names an object, sorted by address.
pub fn parse_objects(text: &[u8]) -> Vec<ObjectMapping> {
    text.split(|&b| b == b'\n').filter_map(parse_object_line).collect()
}

/// The shared file mappings of a maps file, sorted by address (the kernel
/// prints them sorted).
pub fn parse(text: &[u8]) -> Vec<SharedFileMapping> {
    text.split(|&b| b == b'\n').filter_map(parse_line).collect()
}

/// The pieces of `[start, end)` that lie in shared file mappings, in address
/// order. Gaps and other mappings are skipped: they have nothing to sync.
pub fn resolve(maps: &[SharedFileMapping], start: u64, end: u64) -> Vec<FilePiece<'_>> {
    let first = maps.partition_point(|m| m.end <= start);
    maps[first..]
        .iter()
        .take_while(|m| m.start < end)
        .map(|m| {
            let s = start.max(m.start);
            let e = end.min(m.end);
            FilePiece { mapping: m, file_offset: m.offset + (s - m.start), len: e - s }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
55d0c0a00000-55d0c0a01000 r--p 00000000 fd:01 131 /usr/bin/writer
7f0000000000-7f0000004000 rw-s 00000000 fd:01 4242                       /tmp/w dir/data file
7f0000004000-7f0000006000 rw-s 00008000 fd:01 4243                       /tmp/w/other (deleted)
7f0000006000-7f0000007000 rw-p 00000000 fd:01 4244                       /tmp/w/private
7f0000007000-7f0000008000 rw-s 00000000 00:01 77                         /dev/zero (deleted)
7f0000008000-7f0000009000 rw-p 00000000 00:00 0 
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]
";

    #[test]
    fn keeps_only_shared_file_mappings_with_paths_containing_spaces() {
        let m = parse(SAMPLE.as_bytes());
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].path, PathBuf::from("/tmp/w dir/data file"));
        assert_eq!((m[0].start, m[0].end, m[0].offset, m[0].inode), (0x7f00_0000_0000, 0x7f00_0000_4000, 0, 4242));
        assert!(!m[0].deleted);
        assert_eq!(m[0].dev, libc::makedev(0xfd, 0x01));
        assert_eq!(m[1].path, PathBuf::from("/tmp/w/other"));
        assert!(m[1].deleted);
        assert_eq!(m[1].offset, 0x8000);
    }

    #[test]
    fn object_mappings_keep_every_named_mapping_with_its_permissions() {
        let m = parse_objects(SAMPLE.as_bytes());
        assert_eq!(m.len(), 6, "the anonymous mapping has no name");
        assert_eq!(m[0].path, PathBuf::from("/usr/bin/writer"));
        assert!(!m[0].executable);
        assert_eq!(m[5].path, PathBuf::from("[stack]"));
        assert_eq!(m[5].inode, 0);
        assert!(m[1].shared && !m[1].deleted && m[2].shared && m[2].deleted, "{m:?}");
        assert_eq!(m[2].path, PathBuf::from("/tmp/w/other"));
        assert!(!m[3].shared);
        let x = parse_objects(b"7f00-7f10 r-xp 00001000 fd:01 9 /lib/libc.so.6\n");
        assert!(x[0].executable);
        assert_eq!((x[0].start, x[0].end, x[0].offset), (0x7f00, 0x7f10, 0x1000));
    }

    #[test]
    fn resolves_a_range_across_mappings_with_file_offsets() {
        let m = parse(SAMPLE.as_bytes());
        let pieces = resolve(&m, 0x7f00_0000_3000, 0x7f00_0000_5000);
        assert_eq!(pieces.len(), 2);
        assert_eq!((pieces[0].mapping.inode, pieces[0].file_offset, pieces[0].len), (4242, 0x3000, 0x1000));
        assert_eq!((pieces[1].mapping.inode, pieces[1].file_offset, pieces[1].len), (4243, 0x8000, 0x1000));
        assert!(resolve(&m, 0x7f00_0000_6000, 0x7f00_0000_7000).is_empty(), "private mappings sync nothing");
        assert!(resolve(&m, 0x1000, 0x2000).is_empty());
    }
}
