//! The file under test: one per worker and spec, reused across trials.
//!
//! Reusing one file and rewriting only the ranges a trial touched beat fresh
//! files, `copy_file_range` and reflinks end to end on this project's
//! machines (see shared/README.md), so that is what we do.
//!
//! Architecture Invariant: nothing here ever calls fsync, sync or unmounts.
//! Between a crash and its inspection that would change what survived.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use crate::page_buffer::PageBuffer;
use crate::spec::{ByteRange, MappingKind};

pub struct TestFile {
    path: PathBuf,
    file: File,
    size: u64,
    map: *mut u8,
}

impl TestFile {
    /// Create `path` with content `base` and map it as `mapping`. The mapping
    /// is inherited by every forked child.
    pub fn create(path: &Path, base: &[u8], mapping: MappingKind) -> io::Result<TestFile> {
        let ctx = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| ctx("cannot create test file", e))?;
        file.write_all_at(base, 0).map_err(|e| ctx("cannot write test file", e))?;
        let size = base.len() as u64;
        let flags = match mapping {
            MappingKind::Shared => libc::MAP_SHARED,
            MappingKind::Private => libc::MAP_PRIVATE,
        };
        // SAFETY: mapping a file we hold open; unmapped in Drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(ctx("cannot mmap test file", io::Error::last_os_error()));
        }
        Ok(TestFile { path: path.to_owned(), file, size, map: p.cast() })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn fd(&self) -> i32 {
        self.file.as_raw_fd()
    }

    pub fn map_ptr(&self) -> *mut u8 {
        self.map
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Truncate the file (the SIGBUS crash).
    pub fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len)
    }

    /// Put the initial content back where a trial may have changed it:
    /// `ranges`, and everything from the shortest length the file had on.
    pub fn reset(&self, base: &[u8], ranges: &[ByteRange], shortest_len: u64) -> io::Result<()> {
        if shortest_len < self.size {
            // Growing again leaves zeros (or, on tmpfs, stale bytes stored
            // beyond EOF through the mapping), so rewrite the whole tail.
            self.file.set_len(self.size)?;
            self.file.write_all_at(&base[shortest_len as usize..], shortest_len)?;
        }
        for r in ranges {
            let end = r.end.min(shortest_len);
            if r.start < end {
                self.file.write_all_at(&base[r.start as usize..end as usize], r.start)?;
            }
        }
        Ok(())
    }

    /// Read the whole file through a fresh descriptor into `buf` (its length
    /// set to the file's current length).
    pub fn read_back(&self, buf: &mut PageBuffer) -> io::Result<()> {
        let f = File::open(&self.path)?;
        let len = f.metadata()?.len() as usize;
        if len > buf.capacity() {
            return Err(io::Error::other(format!(
                "{} grew to {len} bytes, beyond its mapping of {}",
                self.path.display(),
                self.size
            )));
        }
        buf.set_len(len);
        f.read_exact_at(buf, 0)
    }
}

impl Drop for TestFile {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `create` mapped.
        unsafe { libc::munmap(self.map.cast(), self.size as usize) };
        let _ = std::fs::remove_file(&self.path);
    }
}
