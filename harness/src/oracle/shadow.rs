//! The durable shadows: per file under the watched directory, the content a
//! power loss is guaranteed to leave (a lower bound), built from the files'
//! content at start and the ranges completed syncs covered.
//!
//! Copies read the page cache through `pread` at the instant the sync
//! returned, with every traced task stopped. They never write the file and
//! never sync anything: syncing would make more durable than the writer did.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{CopiedRange, OracleError};

/// The durable shadow of one file (see the module docs of [`crate::oracle`]).
///
/// Page `i` has a guaranteed ("floor") content when [`FileShadow::floor_page`]
/// returns it: it was copied by a completed sync, or it existed at start and
/// the caller declared the starting files durable. Other pages of the file may
/// hold any version a power loss leaves: the oracle guarantees nothing there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileShadow {
    pub page_size: u64,
    pub existed_at_start: bool,
    /// Size at start (0 if the file did not exist).
    pub initial_size: u64,
    /// The caller's `assume_initial_durable`, for a file that existed at start.
    pub initial_durable: bool,
    /// The size a power loss is guaranteed to leave: the size at the last
    /// completed `fsync`/`fdatasync`/`syncfs`/`sync` covering the file, else
    /// the initial size if initial files are durable, else `None` (unknown).
    /// `msync` never changes it: it is a ranged data sync.
    pub durable_size: Option<u64>,
    /// The shadow bytes: initial content overlaid with every synced range in
    /// sync order. A whole-file sync replaces it with the file's content
    /// (so it also shrinks with the file).
    pub content: Vec<u8>,
    /// Every page index a completed sync ever copied.
    pub copied_pages: BTreeSet<u64>,
}

impl FileShadow {
    fn new(page_size: u64, existed: bool, initial: Vec<u8>, initial_durable: bool) -> FileShadow {
        let size = initial.len() as u64;
        let durable = existed && initial_durable;
        FileShadow {
            page_size,
            existed_at_start: existed,
            initial_size: size,
            initial_durable: durable,
            durable_size: if durable { Some(size) } else { None },
            content: initial,
            copied_pages: BTreeSet::new(),
        }
    }

    /// Pages the shadow holds bytes for.
    pub fn page_count(&self) -> u64 {
        (self.content.len() as u64).div_ceil(self.page_size)
    }

    /// Is the shadow content of page `idx` guaranteed to survive?
    pub fn is_page_durable(&self, idx: u64) -> bool {
        idx < self.page_count()
            && (self.copied_pages.contains(&idx) || (self.initial_durable && idx * self.page_size < self.initial_size))
    }

    /// The guaranteed content of page `idx` (shorter than a page at the end
    /// of the content), or `None` if nothing is guaranteed for it.
    pub fn floor_page(&self, idx: u64) -> Option<&[u8]> {
        if !self.is_page_durable(idx) {
            return None;
        }
        let start = (idx * self.page_size) as usize;
        let end = (start + self.page_size as usize).min(self.content.len());
        Some(&self.content[start..end])
    }

    fn overlay(&mut self, offset: u64, data: &[u8]) {
        let (start, end) = (offset as usize, offset as usize + data.len());
        if self.content.len() < end {
            self.content.resize(end, 0);
        }
        self.content[start..end].copy_from_slice(data);
        self.mark(offset, data.len() as u64);
    }

    fn mark(&mut self, offset: u64, len: u64) {
        if len > 0 {
            self.copied_pages.extend(offset / self.page_size..(offset + len).div_ceil(self.page_size));
        }
    }
}

/// An open file of the watched directory, identified by inode so that a file
/// replaced under the same name is not mistaken for the one the writer synced.
struct OpenFile {
    inode: u64,
    file: File,
}

/// Where a file's bytes come from when it is not in the cache: the path the
/// kernel printed, or a `/proc/PID/fd/N` link (which reaches the inode even
/// after a rename).
pub enum Source<'a> {
    Path,
    ProcFd(&'a Path),
}

pub struct ShadowStore {
    watch: PathBuf,
    page_size: u64,
    initial_durable: bool,
    files: BTreeMap<PathBuf, FileShadow>,
    open: HashMap<PathBuf, OpenFile>,
    buf: Vec<u8>,
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        if ty.is_dir() {
            walk(&entry.path(), out)?;
        } else if ty.is_file() {
            out.push(entry.path());
        }
    }
    Ok(())
}

fn read_fully_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

impl ShadowStore {
    /// Record the content of every regular file under `watch_dir` (symlinks
    /// are not followed). Must run before the writer starts.
    pub fn snapshot(watch_dir: &Path, page_size: u64, initial_durable: bool) -> Result<ShadowStore, OracleError> {
        let watch = std::fs::canonicalize(watch_dir)
            .map_err(|e| OracleError::io(format!("cannot resolve the watched directory {}", watch_dir.display()), e))?;
        let mut paths = Vec::new();
        walk(&watch, &mut paths)
            .map_err(|e| OracleError::io(format!("cannot list the watched directory {}", watch.display()), e))?;
        let mut files = BTreeMap::new();
        for path in paths {
            let content =
                std::fs::read(&path).map_err(|e| OracleError::io(format!("cannot read {}", path.display()), e))?;
            let rel = path.strip_prefix(&watch).expect("walked under the watched directory").to_path_buf();
            files.insert(rel, FileShadow::new(page_size, true, content, initial_durable));
        }
        Ok(ShadowStore { watch, page_size, initial_durable, files, open: HashMap::new(), buf: Vec::new() })
    }

    pub fn watch_dir(&self) -> &Path {
        &self.watch
    }

    /// The path relative to the watched directory, if it lies under it.
    pub fn relative(&self, abs: &Path) -> Option<PathBuf> {
        abs.strip_prefix(&self.watch).ok().filter(|r| !r.as_os_str().is_empty()).map(Path::to_path_buf)
    }

    /// The open file for `abs` whose inode is `inode`. `Ok(None)`: the path
    /// now names another file (replaced since the kernel printed it).
    fn file(&mut self, abs: &Path, inode: u64, source: Source<'_>) -> io::Result<Option<&OpenFile>> {
        let cached = self.open.get(abs).is_some_and(|f| f.inode == inode);
        if !cached {
            let file = match source {
                Source::Path => File::open(abs)?,
                Source::ProcFd(link) => File::open(link)?,
            };
            let meta = file.metadata()?;
            if meta.ino() != inode || !meta.is_file() {
                return Ok(None);
            }
            self.open.insert(abs.to_path_buf(), OpenFile { inode, file });
        }
        Ok(self.open.get(abs))
    }

    fn shadow(&mut self, rel: &Path) -> &mut FileShadow {
        let (page, durable) = (self.page_size, self.initial_durable);
        self.files.entry(rel.to_path_buf()).or_insert_with(|| FileShadow::new(page, false, Vec::new(), durable))
    }

    /// Copy `[offset, offset + len)` of the file (clipped at its current
    /// end) into its shadow: what a completed `msync(MS_SYNC)` guarantees.
    /// `Ok(None)`: the file is not under the watched directory or was
    /// replaced; nothing is claimed.
    pub fn copy_range(
        &mut self,
        abs: &Path,
        inode: u64,
        source: Source<'_>,
        offset: u64,
        len: u64,
    ) -> io::Result<Option<CopiedRange>> {
        let Some(rel) = self.relative(abs) else { return Ok(None) };
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(len as usize, 0);
        let read = match self.file(abs, inode, source)? {
            Some(f) => read_fully_at(&f.file, &mut buf, offset),
            None => {
                self.buf = buf;
                return Ok(None);
            }
        };
        let n = match read {
            Ok(n) => n,
            Err(e) => {
                self.buf = buf;
                return Err(e);
            }
        };
        self.shadow(&rel).overlay(offset, &buf[..n]);
        self.buf = buf;
        Ok(Some(CopiedRange { path: rel, offset, len: n as u64, size: None }))
    }

    /// Copy the whole file and its size: what a completed `fsync`,
    /// `fdatasync`, `syncfs` or `sync` guarantees.
    pub fn copy_whole(&mut self, abs: &Path, inode: u64, source: Source<'_>) -> io::Result<Option<CopiedRange>> {
        let Some(rel) = self.relative(abs) else { return Ok(None) };
        let Some(f) = self.file(abs, inode, source)? else { return Ok(None) };
        let size = f.file.metadata()?.len();
        let mut data = vec![0u8; size as usize];
        let n = read_fully_at(&f.file, &mut data, 0)?;
        // A file that shrank between fstat and pread is what it is now.
        data.truncate(n);
        let shadow = self.shadow(&rel);
        shadow.content = data;
        shadow.mark(0, n as u64);
        shadow.durable_size = Some(n as u64);
        Ok(Some(CopiedRange { path: rel, offset: 0, len: n as u64, size: Some(n as u64) }))
    }

    /// Every regular file under the watched directory now, with its inode and
    /// device (for `syncfs`, which covers one filesystem).
    pub fn current_files(&self) -> io::Result<Vec<(PathBuf, u64, u64)>> {
        let mut paths = Vec::new();
        walk(&self.watch, &mut paths)?;
        let mut out = Vec::with_capacity(paths.len());
        for p in paths {
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_file() => out.push((p, m.ino(), m.dev())),
                Ok(_) => {}
                // Removed since the listing: nothing to copy.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }

    /// The shadows, with an (empty, non-durable) entry for every file created
    /// during the run that no sync covered, so the caller sees every file.
    pub fn finish(mut self) -> BTreeMap<PathBuf, FileShadow> {
        if let Ok(now) = self.current_files() {
            for (abs, _, _) in now {
                if let Some(rel) = self.relative(&abs) {
                    self.shadow(&rel);
                }
            }
        }
        self.files
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_marks_pages_and_floor_follows_initial_durability() {
        let mut s = FileShadow::new(4, true, b"aaaabbbbcc".to_vec(), false);
        assert_eq!(s.page_count(), 3);
        assert_eq!(s.floor_page(0), None, "initial content is not durable here");
        s.overlay(4, b"XXXX");
        assert_eq!(s.floor_page(1), Some(&b"XXXX"[..]));
        assert_eq!(s.floor_page(0), None);
        s.overlay(12, b"ZZ");
        assert_eq!(s.content, b"aaaaXXXXcc\0\0ZZ");
        assert_eq!(s.copied_pages.iter().copied().collect::<Vec<_>>(), vec![1, 3]);
        assert_eq!(s.durable_size, None);

        let d = FileShadow::new(4, true, b"aaaabb".to_vec(), true);
        assert_eq!(d.floor_page(1), Some(&b"bb"[..]));
        assert_eq!(d.durable_size, Some(6));
        let created = FileShadow::new(4, false, Vec::new(), true);
        assert!(!created.initial_durable, "a file created during the run was never durable at start");
    }

    #[test]
    fn copies_read_the_file_and_whole_copies_set_the_size() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), vec![b'a'; 10]).unwrap();
        let mut store = ShadowStore::snapshot(dir.path(), 4, true).unwrap();
        let abs = store.watch_dir().join("f");
        std::fs::write(&abs, b"0123456789abcdef").unwrap();
        let ino = std::fs::metadata(&abs).unwrap().ino();
        let r = store.copy_range(&abs, ino, Source::Path, 4, 4).unwrap().unwrap();
        assert_eq!((r.offset, r.len), (4, 4));
        assert_eq!(store.copy_range(&abs, ino + 1, Source::Path, 0, 4).unwrap(), None, "another inode");
        assert_eq!(store.copy_range(Path::new("/etc/hostname"), 1, Source::Path, 0, 4).unwrap(), None);
        let f = &store.files[Path::new("f")];
        assert_eq!(f.content, b"aaaa4567aa");
        assert_eq!(f.durable_size, Some(10));
        let r = store.copy_whole(&abs, ino, Source::Path).unwrap().unwrap();
        assert_eq!(r.size, Some(16));
        let out = store.finish();
        assert_eq!(out[Path::new("f")].content, b"0123456789abcdef");
        assert_eq!(out[Path::new("f")].durable_size, Some(16));
        assert_eq!(out[Path::new("f")].copied_pages.len(), 4);
    }
}
