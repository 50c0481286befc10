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

use crate::disk_space::explain_disk_full;
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
        TestFile::create_with(path, Some(base), base.len() as u64, mapping)
    }

    /// Create `path` sparse: `size` bytes of holes (`ftruncate`, nothing
    /// written, no page allocated), mapped as `mapping`.
    pub fn create_sparse(path: &Path, size: u64, mapping: MappingKind) -> io::Result<TestFile> {
        TestFile::create_with(path, None, size, mapping)
    }

    fn create_with(path: &Path, base: Option<&[u8]>, size: u64, mapping: MappingKind) -> io::Result<TestFile> {
        let ctx = |what: &str, e: io::Error| {
            let e = explain_disk_full(path, e);
            io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| ctx("cannot create test file", e))?;
        match base {
            Some(base) => file.write_all_at(base, 0).map_err(|e| ctx("cannot write test file", e))?,
            None => file.set_len(size).map_err(|e| ctx("cannot size test file", e))?,
        }
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

    /// `e`, prefixed with the file's path, and saying so when the
    /// filesystem is full: every error of a test file names it.
    fn at(&self, e: io::Error) -> io::Error {
        let e = explain_disk_full(&self.path, e);
        io::Error::new(e.kind(), format!("{}: {e}", self.path.display()))
    }

    /// Truncate the file (the SIGBUS crash).
    pub fn truncate(&self, len: u64) -> io::Result<()> {
        self.file.set_len(len).map_err(|e| self.at(e))
    }

    /// Put the initial content back where a trial may have changed it:
    /// `ranges`, and everything from the shortest length the file had on.
    pub fn reset(&self, base: &[u8], ranges: &[ByteRange], shortest_len: u64) -> io::Result<()> {
        self.rewrite(base, ranges, shortest_len).map_err(|e| self.at(e))
    }

    /// Make the whole file a hole again at its full length (the `enospc`
    /// reset): `fallocate(PUNCH_HOLE | KEEP_SIZE)` frees every page a trial
    /// allocated, so the next trial starts sparse.
    pub fn punch_all(&self) -> io::Result<()> {
        self.file.set_len(self.size).map_err(|e| self.at(e))?;
        let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
        // SAFETY: fallocate on a descriptor we own.
        if unsafe { libc::fallocate(self.fd(), mode, 0, self.size as libc::off_t) } != 0 {
            return Err(self.at(io::Error::last_os_error()));
        }
        Ok(())
    }

    fn rewrite(&self, base: &[u8], ranges: &[ByteRange], shortest_len: u64) -> io::Result<()> {
        if shortest_len < self.size {
            // Growing again leaves zeros (or, on tmpfs, stale bytes stored
            // beyond EOF through the mapping), so rewrite the whole tail.
            self.file.set_len(self.size)?;
            self.file.write_all_at(&base[shortest_len as usize..], shortest_len)?;
        }
        // One write per run of touched pages: fewer syscalls than one per store.
        let page = crate::page_size::page_size();
        let mut spans: Vec<ByteRange> =
            ranges.iter().map(|r| ByteRange::new(r.start / page * page, r.end.div_ceil(page) * page)).collect();
        spans.sort_by_key(|r| r.start);
        let mut merged: Vec<ByteRange> = Vec::with_capacity(spans.len());
        for r in spans {
            match merged.last_mut() {
                Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
                _ => merged.push(r),
            }
        }
        for r in merged {
            let end = r.end.min(shortest_len);
            if r.start < end {
                self.file.write_all_at(&base[r.start as usize..end as usize], r.start)?;
            }
        }
        Ok(())
    }

    /// Read the whole file through a fresh descriptor into `buf` (its length
    /// set to the file's current length). The benchmark floor's read-back,
    /// and the `enospc` column's: `read(2)` of a tmpfs hole returns zeros
    /// without allocating it, where a read fault through a mapping would
    /// allocate the page (and, on a full filesystem, SIGBUS the worker).
    pub fn read_back(&self, buf: &mut PageBuffer) -> io::Result<()> {
        let f = File::open(&self.path).map_err(|e| self.at(e))?;
        let len = f.metadata().map_err(|e| self.at(e))?.len() as usize;
        if len > buf.capacity() {
            return Err(io::Error::other(format!(
                "{} grew to {len} bytes, beyond its mapping of {}",
                self.path.display(),
                self.size
            )));
        }
        buf.set_len(len);
        f.read_exact_at(buf, 0).map_err(|e| self.at(e))
    }

    /// The whole file as it is now, through a fresh descriptor mapped
    /// read-only: the page cache itself, with no copy (a 1 MiB `pread`
    /// costs about as much as the rest of a trial).
    pub fn view(&self) -> io::Result<FileView> {
        let f = File::open(&self.path).map_err(|e| self.at(e))?;
        let len = f.metadata().map_err(|e| self.at(e))?.len() as usize;
        if len == 0 {
            return Ok(FileView { ptr: std::ptr::NonNull::dangling().as_ptr(), len: 0 });
        }
        // SAFETY: a read-only shared mapping of a file we just opened; we
        // only read it, below its length, and unmap it in Drop.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ, libc::MAP_SHARED, f.as_raw_fd(), 0) };
        if p == libc::MAP_FAILED {
            return Err(self.at(io::Error::last_os_error()));
        }
        Ok(FileView { ptr: p.cast(), len })
    }
}

/// A read-only view of the file under test; see [`TestFile::view`].
pub struct FileView {
    ptr: *mut u8,
    len: usize,
}

impl std::ops::Deref for FileView {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `len` readable bytes of our mapping. Nobody writes the file
        // while the view lives (the writer is dead, the worker is here).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl Drop for FileView {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: unmapping exactly what `view` mapped.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }
}

impl Drop for TestFile {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `create` mapped.
        unsafe { libc::munmap(self.map.cast(), self.size as usize) };
        let _ = std::fs::remove_file(&self.path);
    }
}
