//! How much room a filesystem has, and disk-full errors that say so.
//!
//! Shared by the flag limits (`limits`: will the files fit?) and the lab
//! and the users' programs (an I/O error or a SIGBUS on a full disk). A
//! leaf module: it imports nothing from the crate, so effect modules low
//! in the tree can use it without reaching up.

use std::path::Path;

/// Free bytes (for an unprivileged user) and size of the filesystem holding `path`.
pub fn disk_space(path: &Path) -> Option<(u64, u64)> {
    let s = nix::sys::statvfs::statvfs(path).ok()?;
    let unit = s.fragment_size() as u64;
    Some((s.blocks_available() as u64 * unit, s.blocks() as u64 * unit))
}

/// `1.5 GiB`, `256 KiB`, `512 B`.
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    let mut v = b as f64;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{b} B")
    } else if v.fract() == 0.0 {
        format!("{v:.0} {}", UNITS[unit])
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Is this error "the filesystem is full" (ENOSPC, or EDQUOT: a quota)?
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// `e`, with the note that the filesystem holding `path` is full and how
/// much it has free, when `e` says so. `path` may be a file or a directory
/// (the file need not exist: its directory is asked).
pub fn explain_disk_full(path: &Path, e: std::io::Error) -> std::io::Error {
    if !is_disk_full(&e) {
        return e;
    }
    let dir = if path.is_dir() { path } else { path.parent().unwrap_or(path) };
    let space = match disk_space(dir) {
        Some((free, total)) => format!("{} free of {}", human_bytes(free), human_bytes(total)),
        None => "free space unknown".to_string(),
    };
    let what = if e.raw_os_error() == Some(libc::EDQUOT) {
        "your disk quota there is used up"
    } else {
        "the filesystem is full"
    };
    std::io::Error::new(e.kind(), format!("{e}; {what} ({} holds {space})", dir.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_as_people_write_them() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(256 * 1024), "256 KiB");
        assert_eq!(human_bytes(3 << 29), "1.5 GiB");
    }

    #[test]
    fn a_full_disk_is_said_so_with_the_free_space() {
        let dir = tempfile::tempdir().unwrap();
        let e = explain_disk_full(&dir.path().join("f"), std::io::Error::from_raw_os_error(libc::ENOSPC));
        let text = e.to_string();
        assert!(text.contains("the filesystem is full") && text.contains(" free of "), "{text}");
        assert!(text.contains(&dir.path().display().to_string()), "{text}");
        assert_eq!(e.raw_os_error(), None, "a new message, the same kind");
        assert_eq!(e.kind(), std::io::ErrorKind::StorageFull);
        let other = explain_disk_full(dir.path(), std::io::Error::from_raw_os_error(libc::EACCES));
        assert_eq!(other.raw_os_error(), Some(libc::EACCES), "other errors pass unchanged");
    }
}
