//! Reading and writing report files safely. Every reader of a report or of
//! the regressions file reads through [`read_text`] (at most
//! [`MAX_REPORT_BYTES`]), and every report-like output (`--out`, `--html`,
//! `--junit`, `report merge --out`, `report html --out`, `--write-state`)
//! is written through [`write_atomically`].
//!
//! **Reading.** A report grows with its cells, not its trials: a cell keeps
//! at most 5 failures and 5 explanations (`report::survival::MAX_FAILURES`), so the
//! full default matrix (72 cells, 2006 trials) is about 100 KiB and even a
//! campaign of thousands of cells with failures everywhere stays under
//! 10 MiB. [`MAX_REPORT_BYTES`] (64 MiB) is far above that and still low
//! enough that decoding a hostile file of that size (JSON decodes to
//! several times its size in memory) cannot exhaust a machine. The cap is
//! enforced while reading (`stat` first for regular files, then a reader
//! that never holds more than cap + 1 bytes), so `/dev/zero`, a FIFO or an
//! endless pipe are refused instead of eating memory.
//!
//! **Writing.** A report is written to a fresh temporary file in the
//! target's directory (created `O_EXCL` with a random name, so nothing can
//! be planted there), flushed (`fsync`), renamed over the target and the
//! directory flushed. Readers see the old file or the new one, never a
//! mixture: a full disk or any other failure leaves the previous report
//! byte-identical (the temporary file is removed), concurrent writers of one
//! path each install a complete file (the last rename wins), and a symbolic
//! link at the target is replaced, never followed, so a link planted in a
//! shared directory cannot redirect the write. Streams are the exception:
//! a character device, FIFO or socket named directly (`--out /dev/null`),
//! or through a link owned by root or by the user running crashlab
//! (`/dev/stdout`), is written in place, as there is nothing to replace.

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use crate::output_error::OutputError;

/// The most bytes crashlab reads from a report or the regressions file
/// (see the module documentation for why 64 MiB).
pub const MAX_REPORT_BYTES: u64 = 64 << 20;

/// Why a file could not be read. The path is named by the caller's error.
#[derive(Debug, thiserror::Error)]
pub enum ReadFileError {
    #[error("it is a directory")]
    Directory,
    #[error(
        "it is larger than {} MiB, the most crashlab reads from a report or a regressions file \
         (real ones stay under 10 MiB)",
        MAX_REPORT_BYTES >> 20
    )]
    TooLarge,
    #[error("it is not UTF-8 text")]
    NotUtf8,
    /// The OS error is the whole message: it is not also exposed as
    /// `source()`, so `{:#}` chains do not print it twice.
    #[error("{0}")]
    Io(std::io::Error),
}

/// The text of the file at `path`, at most [`MAX_REPORT_BYTES`] of it.
pub fn read_text(path: &Path) -> Result<String, ReadFileError> {
    let mut file = File::open(path).map_err(ReadFileError::Io)?;
    read_text_from(&mut file)
}

/// The rest of the text of the open `file`, at most [`MAX_REPORT_BYTES`].
pub fn read_text_from(file: &mut File) -> Result<String, ReadFileError> {
    let meta = file.metadata().map_err(ReadFileError::Io)?;
    if meta.is_dir() {
        return Err(ReadFileError::Directory);
    }
    let hint = if meta.is_file() {
        if meta.len() > MAX_REPORT_BYTES {
            return Err(ReadFileError::TooLarge);
        }
        meta.len()
    } else {
        0
    };
    let bytes = read_at_most(file, MAX_REPORT_BYTES, hint)?;
    String::from_utf8(bytes).map_err(|_| ReadFileError::NotUtf8)
}

/// Everything `reader` yields, if that is at most `cap` bytes. The buffer
/// never grows past `cap + 1` bytes (enough to tell that there is more),
/// whatever the reader is. `hint` is the expected size (0: unknown).
pub fn read_at_most(reader: &mut impl Read, cap: u64, hint: u64) -> Result<Vec<u8>, ReadFileError> {
    let limit = usize::try_from(cap.saturating_add(1)).unwrap_or(usize::MAX);
    let first = usize::try_from(hint.saturating_add(1)).unwrap_or(usize::MAX).clamp(8192, limit.max(1));
    let mut buf: Vec<u8> = Vec::new();
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if buf.len() >= limit {
                return Err(ReadFileError::TooLarge);
            }
            // First the expected size, then doubling, never past `limit`.
            let grow = if buf.is_empty() { first } else { buf.len() }.min(limit - buf.len());
            buf.try_reserve_exact(grow).map_err(|e| ReadFileError::Io(std::io::Error::other(e)))?;
            buf.resize(buf.len() + grow, 0);
        }
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ReadFileError::Io(e)),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

/// Write `report` (any report kind) as pretty JSON and a final newline to
/// `path` (the value of `flag`, named in errors), atomically: the one JSON
/// writer of every report crashlab writes.
pub fn write_json_report(flag: &str, path: &Path, report: &impl serde::Serialize) -> Result<(), OutputError> {
    let mut json = serde_json::to_string_pretty(report).expect("reports serialize");
    json.push('\n');
    write_atomically(flag, path, json.as_bytes())
}

/// Write `bytes` to `path` (the value of `flag`, named in errors) as
/// described in the module documentation: atomically, creating the parent
/// directories, replacing rather than following a symbolic link.
pub fn write_atomically(flag: &str, path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    write_atomically_with(flag, path, |f| f.write_all(bytes))
}

/// [`write_atomically`] with the content produced by `fill`, which writes
/// into the temporary file (the seam the tests use to make a write fail).
pub fn write_atomically_with(
    flag: &str,
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), OutputError> {
    let fail = |step: String, error: Option<std::io::Error>, kept: bool| OutputError {
        flag: flag.to_owned(),
        path: path.to_owned(),
        step,
        error,
        kept,
    };
    let Some(name) = path.file_name() else {
        return Err(fail("not a file name".into(), None, true));
    };
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent)
        .map_err(|e| fail(format!("cannot create its directory {}", parent.display()), Some(e), true))?;

    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            return Err(fail("it is a directory".into(), None, true));
        }
        Ok(m) if m.file_type().is_block_device() => {
            return Err(fail("it is a block device, not a file".into(), None, true));
        }
        Ok(m) if is_stream(&m) => return write_stream(path, false, fill).map_err(|(s, e)| fail(s, e, false)),
        // A link to a stream, owned by root or by us (`/dev/stdout`): followed.
        Ok(m)
            if m.file_type().is_symlink()
                && trusted_owner(m.uid())
                && std::fs::metadata(path).is_ok_and(|t| is_stream(&t)) =>
        {
            return write_stream(path, true, fill).map_err(|(s, e)| fail(s, e, false));
        }
        _ => {}
    }

    // Keep the temporary name short of NAME_MAX whatever the target's name.
    let shown: String = name.to_string_lossy().chars().take(64).collect();
    let mut temp = tempfile::Builder::new()
        .prefix(&format!(".{shown}."))
        .suffix(".tmp")
        // Like a file created by open(2): 0666 less the umask (not 0600).
        .permissions(std::fs::Permissions::from_mode(0o666))
        .tempfile_in(parent)
        .map_err(|e| fail(format!("cannot create a temporary file in {}", parent.display()), Some(e), true))?;
    // On any error below `temp` is dropped, which removes it.
    fill(temp.as_file_mut())
        .and_then(|()| temp.as_file_mut().sync_all())
        .map_err(|e| fail(format!("cannot write the temporary file {}", temp.path().display()), Some(e), true))?;
    // rename(2): atomic, and it replaces a symbolic link instead of following it.
    temp.persist(path).map_err(|e| fail("cannot rename the temporary file over it".into(), Some(e.error), true))?;
    // Make the rename itself durable. Some filesystems cannot fsync a
    // directory (EINVAL); the file is in place either way.
    match File::open(parent).and_then(|d| d.sync_all()) {
        Err(e) if e.raw_os_error() != Some(libc::EINVAL) => {
            Err(fail(format!("written, but its directory {} cannot be flushed", parent.display()), Some(e), false))
        }
        _ => Ok(()),
    }
}

fn is_stream(m: &std::fs::Metadata) -> bool {
    let t = m.file_type();
    t.is_char_device() || t.is_fifo() || t.is_socket()
}

/// Whether a symbolic link may be followed to a stream: only the links of
/// root (`/dev/stdout`) and of the user running crashlab, the rule of the
/// kernel's `fs.protected_symlinks` for shared directories.
fn trusted_owner(uid: u32) -> bool {
    // SAFETY: geteuid has no preconditions.
    uid == 0 || uid == unsafe { libc::geteuid() }
}

/// Write into a character device, FIFO or socket in place (no temporary
/// file, no truncation, no fsync: there is nothing to replace or flush).
fn write_stream(
    path: &Path,
    follow: bool,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), (String, Option<std::io::Error>)> {
    let flags = libc::O_CLOEXEC | if follow { 0 } else { libc::O_NOFOLLOW };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(flags)
        .open(path)
        .map_err(|e| ("cannot open it".to_owned(), Some(e)))?;
    // Re-check what was opened: it may have been swapped since it was looked at.
    let m = f.metadata().map_err(|e| ("cannot stat it".to_owned(), Some(e)))?;
    if !is_stream(&m) {
        return Err(("it changed while being opened".to_owned(), None));
    }
    fill(&mut f).and_then(|()| f.flush()).map_err(|e| ("cannot write it".to_owned(), Some(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_never_holds_more_than_the_cap_plus_one() {
        let e = read_at_most(&mut std::io::repeat(0), 100_000, 0).unwrap_err();
        assert!(matches!(e, ReadFileError::TooLarge), "{e}");
        // A reader that records the biggest buffer it was handed.
        struct Spy(usize);
        impl Read for Spy {
            fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                self.0 = self.0.max(b.len());
                b.fill(b'x');
                Ok(b.len())
            }
        }
        let mut spy = Spy(0);
        assert!(read_at_most(&mut spy, 100_000, 0).is_err());
        assert!(spy.0 <= 100_001, "asked to fill {} bytes at once", spy.0);
        let exact = read_at_most(&mut std::io::repeat(7).take(100_000), 100_000, 0).unwrap();
        assert_eq!(exact.len(), 100_000, "exactly the cap is accepted");
        let small = read_at_most(&mut &b"{}"[..], 100_000, 2).unwrap();
        assert_eq!(small, b"{}");
    }

    #[test]
    fn read_text_refuses_a_directory_and_a_device_past_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(read_text(dir.path()), Err(ReadFileError::Directory)));
        assert!(matches!(read_text(Path::new("/dev/zero")), Err(ReadFileError::TooLarge)));
        assert!(matches!(read_text(&dir.path().join("missing")), Err(ReadFileError::Io(_))));
        std::fs::write(dir.path().join("bin"), [0xff, 0xfe]).unwrap();
        assert!(matches!(read_text(&dir.path().join("bin")), Err(ReadFileError::NotUtf8)));
        // A sparse regular file past the cap is refused from its size, unread.
        let big = File::create(dir.path().join("big")).unwrap();
        big.set_len(MAX_REPORT_BYTES + 1).unwrap();
        assert!(matches!(read_text(&dir.path().join("big")), Err(ReadFileError::TooLarge)));
    }

    #[test]
    fn a_failed_write_leaves_the_previous_file_byte_identical_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("r.json");
        std::fs::write(&out, b"{\"previous\": true}\n").unwrap();
        // The disk fills up halfway through the new report.
        let e = write_atomically_with("--out", &out, |w| {
            w.write_all(b"{\"new\": ")?;
            Err(std::io::Error::from_raw_os_error(libc::ENOSPC))
        })
        .unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with(&format!("--out {}:", out.display())), "{msg}");
        assert!(msg.contains("No space left on device") && msg.contains("unchanged"), "{msg}");
        assert_eq!(std::fs::read(&out).unwrap(), b"{\"previous\": true}\n");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("r.json")], "the temporary file is removed");
    }

    #[test]
    fn a_directory_that_cannot_be_created_fails_naming_flag_and_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        // The parent is a regular file: no temporary file can be made there,
        // for root too.
        let out = dir.path().join("file/r.json");
        let e = write_atomically("--html", &out, b"page").unwrap_err();
        assert!(e.to_string().starts_with(&format!("--html {}: cannot create its directory", out.display())), "{e}");
        let e = write_atomically("--out", dir.path(), b"x").unwrap_err();
        assert!(e.to_string().contains("it is a directory"), "{e}");
    }

    #[test]
    fn a_symlink_at_the_target_is_replaced_and_its_target_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let out = dir.path().join("r.json");
        std::os::unix::fs::symlink(&victim, &out).unwrap();
        write_atomically("--out", &out, b"{}\n").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(std::fs::symlink_metadata(&out).unwrap().is_file(), "the link itself was replaced");
        assert_eq!(std::fs::read(&out).unwrap(), b"{}\n");
        // A dangling link, too.
        let dangling = dir.path().join("dangling");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        write_atomically("--out", &dangling, b"{}\n").unwrap();
        assert!(!dir.path().join("nowhere").exists());
    }

    #[test]
    fn streams_are_written_in_place() {
        write_atomically("--out", Path::new("/dev/null"), b"{}\n").unwrap();
        assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    }

    #[test]
    fn a_new_file_gets_the_usual_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("r.json");
        write_atomically("--out", &out, b"{}").unwrap();
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let umask = status.lines().find_map(|l| l.strip_prefix("Umask:")).expect("Umask in /proc/self/status");
        let umask = u32::from_str_radix(umask.trim(), 8).unwrap();
        assert_eq!(mode & 0o777, 0o666 & !umask);
    }

    #[test]
    fn concurrent_writers_of_one_path_always_leave_valid_json() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("r.json");
        std::thread::scope(|s| {
            for t in 0..6 {
                let out = &out;
                s.spawn(move || {
                    for i in 0..25 {
                        // Big enough that a plain write would take several syscalls.
                        let body = serde_json::json!({ "writer": t, "round": i, "pad": "x".repeat(100_000 + t * 997) });
                        write_atomically("--out", out, body.to_string().as_bytes()).unwrap();
                    }
                });
            }
            // Meanwhile, every read sees one writer's complete file.
            s.spawn(|| {
                for _ in 0..200 {
                    if let Ok(text) = std::fs::read_to_string(&out) {
                        serde_json::from_str::<serde_json::Value>(&text).expect("always a whole report");
                    }
                }
            });
        });
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(v["round"], 24);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left behind");
    }
}
