//! The durable shadows: per file of the watched tree (per [`FileId`], an
//! inode's life), the content a power loss is guaranteed to leave (a lower
//! bound), built from the files' content at start and the ranges completed
//! syncs covered.
//!
//! Copies read the page cache through `pread` at the instant the sync
//! returned, with every traced task stopped. They never write the file and
//! never sync anything: syncing would make more durable than the writer did.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io;

use serde::{Deserialize, Serialize};

use super::failed_writeback::FailedWriteback;
use super::history::History;
use super::namespace_log::read_fully_at;
use super::OracleError;
use crate::namespace::trace::FileId;

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

    /// After a whole copy: pages `held` keep the floor they had in
    /// `before` (a failed sync left them clean, so this sync did not write
    /// them).
    fn keep_floor(&mut self, before: &FileShadow, held: &[u64]) {
        let ps = self.page_size as usize;
        for &p in held {
            let (start, end) = (p as usize * ps, ((p as usize + 1) * ps).min(self.content.len()));
            if start >= end {
                continue;
            }
            let old = before.content.get(start..before.content.len().min(end)).unwrap_or(&[]);
            self.content[start..end].fill(0);
            self.content[start..start + old.len()].copy_from_slice(old);
            if !before.is_page_durable(p) {
                self.copied_pages.remove(&p);
            }
        }
    }

    fn mark(&mut self, offset: u64, len: u64) {
        if len > 0 {
            self.copied_pages.extend(offset / self.page_size..(offset + len).div_ceil(self.page_size));
        }
    }
}

/// The shadows of one run, by [`FileId`]: a file replaced under the same
/// name is another file with a shadow of its own, a renamed file keeps its
/// shadow. Copies read through the descriptor the namespace log holds for
/// the file, so they reach the inode the sync covered even after a rename
/// or an unlink.
pub struct ShadowStore {
    page_size: u64,
    initial_durable: bool,
    shadows: BTreeMap<FileId, FileShadow>,
    buf: Vec<u8>,
    /// The versions pages held since their floor, when recorded: kept
    /// here because a copy into a shadow is what makes them obsolete.
    pub(super) history: Option<History>,
    /// The pages a failed sync left uncertain (`eio-sync`): copies hold
    /// them back while they were not stored into since.
    pub(super) failed: FailedWriteback,
    /// The pages the copies since the last [`ShadowStore::take_held_back`]
    /// held back (they are not durable: the copy's record leaves them out).
    held_back: Vec<(FileId, u64)>,
}

impl ShadowStore {
    /// The shadows of the regular files found at start, with their content
    /// read now (before the writer starts) through `files`.
    pub fn snapshot<'f>(
        files: impl IntoIterator<Item = (FileId, &'f File)>,
        page_size: u64,
        initial_durable: bool,
        describe: impl Fn(FileId) -> String,
    ) -> Result<ShadowStore, OracleError> {
        let mut shadows = BTreeMap::new();
        for (id, file) in files {
            let what = || format!("cannot read {}", describe(id));
            let size = file.metadata().map_err(|e| OracleError::io(what(), e))?.len();
            let mut content = vec![0u8; size as usize];
            let n = read_fully_at(file, &mut content, 0).map_err(|e| OracleError::io(what(), e))?;
            content.truncate(n);
            shadows.insert(id, FileShadow::new(page_size, true, content, initial_durable));
        }
        Ok(ShadowStore {
            page_size,
            initial_durable,
            shadows,
            buf: Vec::new(),
            history: None,
            failed: FailedWriteback::default(),
            held_back: Vec::new(),
        })
    }

    /// Record the write history from now on, starting from the content
    /// the snapshot read.
    pub fn record_history(&mut self) {
        let initial = self.shadows.iter().map(|(id, s)| (*id, s.content.as_slice()));
        self.history = Some(History::new(self.page_size, initial));
    }

    fn shadow(&mut self, id: FileId) -> &mut FileShadow {
        let (page, durable) = (self.page_size, self.initial_durable);
        self.shadows.entry(id).or_insert_with(|| FileShadow::new(page, false, Vec::new(), durable))
    }

    /// Copy `[offset, offset + len)` of the file (clipped at its current
    /// end) into its shadow: what a completed `msync(MS_SYNC)` or a write
    /// through an `O_DSYNC` descriptor guarantees. Returns the bytes copied.
    pub fn copy_range(&mut self, id: FileId, file: &File, offset: u64, len: u64) -> io::Result<u64> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(len as usize, 0);
        let n = match read_fully_at(file, &mut buf, offset) {
            Ok(n) => n,
            Err(e) => {
                self.buf = buf;
                return Err(e);
            }
        };
        if !self.failed.has_file(id) {
            self.shadow(id).overlay(offset, &buf[..n]);
            if let Some(h) = self.history.as_mut() {
                h.synced(id, offset / self.page_size..(offset + n as u64).div_ceil(self.page_size));
            }
        } else {
            // Page by page: a page a failed sync left clean is not written
            // by this one (`failed_writeback.rs`).
            let mut at = 0;
            while at < n {
                let pos = offset + at as u64;
                let page = pos / self.page_size;
                let end = (((page + 1) * self.page_size - offset) as usize).min(n);
                let whole_page = page_bytes(&buf[..n], offset, page, self.page_size);
                if self.failed.holds_back(id, page, whole_page) {
                    self.held_back.push((id, page));
                } else {
                    self.shadow(id).overlay(pos, &buf[at..end]);
                    if let Some(h) = self.history.as_mut() {
                        h.synced(id, page..page + 1);
                    }
                }
                at = end;
            }
        }
        self.buf = buf;
        Ok(n as u64)
    }

    /// A sync covering `[offset, offset + len)` of the file failed (an
    /// injected `EIO`): its pages stay uncertain ([`FailedWriteback`]).
    /// Without the write history there is no evidence of later stores, so
    /// nothing is held back (the side that cannot raise a false alarm).
    /// Returns the uncertain pages of the range.
    pub fn fail_range(&mut self, id: FileId, file: &File, offset: u64, len: u64) -> io::Result<Vec<u64>> {
        if self.history.is_none() {
            return Ok(Vec::new());
        }
        let first = offset / self.page_size;
        let end = offset.saturating_add(len).min(file.metadata()?.len());
        let mut buf = vec![0u8; (end.div_ceil(self.page_size).saturating_sub(first) * self.page_size) as usize];
        let n = read_fully_at(file, &mut buf, first * self.page_size)?;
        buf.truncate(n);
        let mut pages = Vec::new();
        for (i, chunk) in buf.chunks(self.page_size as usize).enumerate() {
            let page = first + i as u64;
            self.failed.failed(id, page, chunk);
            pages.push(page);
        }
        Ok(pages)
    }

    /// Copy the whole file and its size: what a completed `fsync`,
    /// `fdatasync`, `syncfs` or `sync` guarantees. Returns the size.
    pub fn copy_whole(&mut self, id: FileId, file: &File) -> io::Result<u64> {
        let size = file.metadata()?.len();
        let mut data = vec![0u8; size as usize];
        let n = read_fully_at(file, &mut data, 0)?;
        // A file that shrank between fstat and pread is what it is now.
        data.truncate(n);
        let held: Vec<u64> = if self.failed.has_file(id) {
            let pages = (n as u64).div_ceil(self.page_size);
            let ps = self.page_size;
            (0..pages).filter(|&p| self.failed.holds_back(id, p, page_bytes(&data, 0, p, ps))).collect()
        } else {
            Vec::new()
        };
        self.held_back.extend(held.iter().map(|&p| (id, p)));
        let shadow = self.shadow(id);
        let before = (!held.is_empty()).then(|| shadow.clone());
        shadow.content = data;
        shadow.mark(0, n as u64);
        shadow.durable_size = Some(n as u64);
        if let Some(before) = before {
            shadow.keep_floor(&before, &held);
        }
        if let Some(h) = self.history.as_mut() {
            // The held pages keep their versions: they may still be on disk.
            let mut from = 0;
            for &p in &held {
                h.synced(id, from..p);
                from = p + 1;
            }
            if from == 0 {
                h.synced_whole(id);
            } else {
                h.synced(id, from..u64::MAX);
            }
        }
        Ok(n as u64)
    }

    /// The pages copies held back since the last call, by file then page.
    pub(super) fn take_held_back(&mut self) -> Vec<(FileId, u64)> {
        std::mem::take(&mut self.held_back)
    }

    /// An empty shadow, never durable: a file the oracle never saw.
    pub fn fresh(&self) -> FileShadow {
        FileShadow::new(self.page_size, false, Vec::new(), self.initial_durable)
    }

    /// The shadow of `id` (an empty one, never durable, for a file no sync
    /// covered and that did not exist at start).
    pub fn take(&mut self, id: FileId) -> FileShadow {
        let fresh = FileShadow::new(self.page_size, false, Vec::new(), self.initial_durable);
        self.shadows.remove(&id).unwrap_or(fresh)
    }
}

/// The bytes of page `page` within `data` (read from `offset`), or the
/// part of it `data` holds.
fn page_bytes(data: &[u8], offset: u64, page: u64, page_size: u64) -> &[u8] {
    let start = (page * page_size).saturating_sub(offset) as usize;
    let end = (((page + 1) * page_size).saturating_sub(offset) as usize).min(data.len());
    &data[start.min(end)..end]
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
        let abs = dir.path().join("f");
        std::fs::write(&abs, vec![b'a'; 10]).unwrap();
        let f = File::open(&abs).unwrap();
        let id = FileId(1);
        let mut store = ShadowStore::snapshot([(id, &f)], 4, true, |_| "f".into()).unwrap();
        std::fs::write(&abs, b"0123456789abcdef").unwrap();
        assert_eq!(store.copy_range(id, &f, 4, 4).unwrap(), 4);
        assert_eq!(store.copy_range(id, &f, 14, 4).unwrap(), 2, "clipped at the end");
        let s = store.take(id);
        assert_eq!(s.content, b"aaaa4567aa\0\0\0\0ef");
        assert_eq!(s.durable_size, Some(10));
        let mut store = ShadowStore::snapshot([(id, &f)], 4, true, |_| "f".into()).unwrap();
        assert_eq!(store.copy_whole(id, &f).unwrap(), 16);
        let s = store.take(id);
        assert_eq!(s.content, b"0123456789abcdef");
        assert_eq!(s.durable_size, Some(16));
        assert_eq!(s.copied_pages.len(), 4);
        let other = store.take(FileId(2));
        assert!(!other.existed_at_start && other.durable_size.is_none() && other.content.is_empty());
    }
}
