//! Recording the write history of the watched files
//! ([`crate::page_history`]): at each sample (every trapped call's entry
//! stop, and `--history-every` ticks), every regular file that has a name in
//! the watched tree and can have changed since the last sample (a traced
//! process maps it shared, or a traced call wrote or resized it: the tracer
//! chooses) is read through the oracle's descriptor and compared page by page with what the
//! previous sample read; each page that changed gets its new content as a
//! version. A completed sync that covers a page makes its versions so far
//! obsolete (the synced content is its new floor, and a power loss cannot
//! leave a page older than what a completed sync wrote), so they are
//! dropped; so are the versions of pages a shrink cut off (a version from
//! before a truncation is not known to be a state the file can come back
//! in: leaving it out can only miss a state, never add an impossible one).
//!
//! The reads only read: the oracle never writes or syncs a writer's file.
//!
//! Reading a whole file at a stop costs its size. Where the tracer could set
//! up write tracking for an address space (`uffd.rs`,
//! `tracer/write_protect.rs`: userfaultfd asynchronous write protection and
//! the `PAGEMAP_SCAN` ioctl report exactly the pages stored into), a sample
//! reads only those pages of the files it maps
//! ([`crate::page_history::HistoryMethod::UffdWriteProtect`]); everything
//! else is compared whole ([`crate::page_history::HistoryMethod::PageCompare`]):
//! files written by calls, files mapped by an address space without
//! tracking (a forked child's, or where userfaultfd is unavailable), and
//! every mapped file right after its address space changed.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::ops::Range;

use super::namespace_log::read_fully_at;
use crate::namespace::trace::FileId;
use crate::page_history::{HistoryStats, PageVersion, MAX_HISTORY_BYTES, MAX_PAGE_VERSIONS};

/// One file: what the previous sample read, and its pages' versions.
#[derive(Default)]
struct FileHistory {
    seen: Vec<u8>,
    /// Per page, in the order they were seen.
    versions: BTreeMap<u64, Vec<PageVersion>>,
    /// Per page changed since its floor: the stack (an index the tracer
    /// gave) of the stop where it was first seen changed.
    first_changed: BTreeMap<u64, u32>,
}

/// What [`History::finish`] gives per file.
#[derive(Default)]
pub(super) struct FileVersions {
    pub(super) versions: Vec<PageVersion>,
    /// (page, stack index), by page.
    pub(super) first_changed: Vec<(u64, u32)>,
}

/// The write history of one run.
pub(super) struct History {
    page: u64,
    files: HashMap<FileId, FileHistory>,
    /// Calls entered at the previous sample.
    prev_calls: Option<u64>,
    /// Bytes held in versions now.
    held: u64,
    buf: Vec<u8>,
    pub(super) stats: HistoryStats,
    /// Pages first seen changed since their floor by the last sample, still
    /// waiting for the tracer's stack ([`History::first_changed_at`]).
    newly_changed: Vec<(FileId, u64)>,
}

/// The bytes of page `p` of `image` (shorter at its end, empty past it).
fn page_of(image: &[u8], p: u64, page: u64) -> &[u8] {
    let start = ((p * page) as usize).min(image.len());
    let end = (((p + 1) * page) as usize).min(image.len());
    &image[start..end]
}

/// Equal when read as a page: bytes past the shorter one read as zeros
/// (a file grown by a hole reads zeros there).
fn same_page(a: &[u8], b: &[u8]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n] && a[n..].iter().chain(&b[n..]).all(|&x| x == 0)
}

impl History {
    /// `initial`: the content of the files present at start, as the
    /// shadows read it.
    pub(super) fn new<'a>(page: u64, initial: impl IntoIterator<Item = (FileId, &'a [u8])>) -> History {
        let files = initial
            .into_iter()
            .map(|(id, content)| (id, FileHistory { seen: content.to_vec(), ..FileHistory::default() }))
            .collect();
        History {
            page,
            files,
            prev_calls: None,
            held: 0,
            buf: Vec::new(),
            stats: HistoryStats::default(),
            newly_changed: Vec::new(),
        }
    }

    /// Read the files in `files` and record what changed since the last
    /// sample: the whole file (`None`), or only the pages listed (the pages
    /// write tracking reported written; the file's size cannot have changed
    /// without a traced call, which asks for the whole file). `calls`: the
    /// traced calls the writer had entered so far (the next one's number).
    /// A file that cannot be read is skipped (its history only misses
    /// versions).
    pub(super) fn sample<'a>(
        &mut self,
        files: impl IntoIterator<Item = (FileId, &'a File, Option<Vec<u64>>)>,
        calls: u64,
        timer: bool,
    ) {
        self.stats.samples += 1;
        self.stats.timer_samples += timer as u64;
        let after = self.prev_calls.and_then(|c| c.checked_sub(1));
        self.prev_calls = Some(calls);
        for (id, file, pages) in files {
            match pages {
                Some(pages) if self.files.contains_key(&id) => self.sample_pages(id, file, &pages, after, calls),
                _ => self.sample_whole(id, file, after, calls),
            }
        }
    }

    fn sample_whole(&mut self, id: FileId, file: &File, after: Option<u64>, calls: u64) {
        let page = self.page;
        let Ok(meta) = file.metadata() else { return };
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(meta.len() as usize, 0);
        let Ok(n) = read_fully_at(file, &mut buf, 0) else {
            self.buf = buf;
            return;
        };
        buf.truncate(n);
        self.stats.bytes_read += n as u64;
        let h = self.files.entry(id).or_default();
        if buf.len() < h.seen.len() {
            // A shrink: versions of the pages it cut off (the partial last
            // page included) are dropped.
            let first = buf.len() as u64 / page;
            for (_, vs) in h.versions.split_off(&first) {
                self.held -= vs.iter().map(|v| v.bytes.len() as u64).sum::<u64>();
            }
            h.first_changed.split_off(&first);
        }
        // Pages past the end now are no version: they are not there.
        for p in 0..(buf.len() as u64).div_ceil(page) {
            let now = page_of(&buf, p, page);
            if !same_page(now, page_of(&h.seen, p, page)) {
                let v = PageVersion { page: p, bytes: now.to_vec(), after_call: after, before_call: Some(calls) };
                if !h.first_changed.contains_key(&p) {
                    self.newly_changed.push((id, p));
                }
                Self::record(h, v, &mut self.held, &mut self.stats);
            }
        }
        self.buf = std::mem::replace(&mut h.seen, buf);
    }

    fn sample_pages(&mut self, id: FileId, file: &File, pages: &[u64], after: Option<u64>, calls: u64) {
        let page = self.page;
        let h = self.files.get_mut(&id).expect("checked by the caller");
        let mut buf = vec![0u8; page as usize];
        for &p in pages {
            let start = (p * page) as usize;
            if start >= h.seen.len() {
                continue;
            }
            let len = (page as usize).min(h.seen.len() - start);
            let Ok(n) = read_fully_at(file, &mut buf[..len], start as u64) else { continue };
            self.stats.bytes_read += n as u64;
            let now = &buf[..n];
            if !same_page(now, &h.seen[start..start + len]) {
                let v = PageVersion { page: p, bytes: now.to_vec(), after_call: after, before_call: Some(calls) };
                h.seen[start..start + n].copy_from_slice(now);
                if !h.first_changed.contains_key(&p) {
                    self.newly_changed.push((id, p));
                }
                Self::record(h, v, &mut self.held, &mut self.stats);
            }
        }
    }

    /// Keep `v` in its page's list, within the limits.
    fn record(h: &mut FileHistory, v: PageVersion, held: &mut u64, stats: &mut HistoryStats) {
        let vs = h.versions.entry(v.page).or_default();
        stats.versions += 1;
        if vs.len() >= MAX_PAGE_VERSIONS {
            let last = vs.last_mut().expect("full");
            *held = *held - last.bytes.len() as u64 + v.bytes.len() as u64;
            *last = v;
            stats.dropped += 1;
        } else if *held + v.bytes.len() as u64 > MAX_HISTORY_BYTES {
            stats.dropped += 1;
        } else {
            *held += v.bytes.len() as u64;
            vs.push(v);
        }
    }

    /// A completed sync made pages `pages` of `id` durable: their versions
    /// so far are obsolete.
    pub(super) fn synced(&mut self, id: FileId, pages: Range<u64>) {
        let Some(h) = self.files.get_mut(&id) else { return };
        let later = h.versions.split_off(&pages.end);
        for (_, vs) in h.versions.split_off(&pages.start) {
            self.held -= vs.iter().map(|v| v.bytes.len() as u64).sum::<u64>();
        }
        h.versions.extend(later);
        let later = h.first_changed.split_off(&pages.end);
        h.first_changed.split_off(&pages.start);
        h.first_changed.extend(later);
    }

    /// The pages the last sample saw changed for the first time since
    /// their floor; [`History::first_changed_at`] gives them their stack.
    pub(super) fn take_newly_changed(&mut self) -> Vec<(FileId, u64)> {
        std::mem::take(&mut self.newly_changed)
    }

    /// `pages` were first seen changed at the stop whose stack is `stack`.
    pub(super) fn first_changed_at(&mut self, pages: &[(FileId, u64)], stack: u32) {
        for &(id, p) in pages {
            if let Some(h) = self.files.get_mut(&id) {
                h.first_changed.entry(p).or_insert(stack);
            }
        }
    }

    /// A completed whole-file sync: every version of `id` is obsolete.
    pub(super) fn synced_whole(&mut self, id: FileId) {
        self.synced(id, 0..u64::MAX);
    }

    /// The versions of each file, by page then in the order seen, and the
    /// stack index of each page's first change since its floor.
    pub(super) fn finish(self) -> (HashMap<FileId, FileVersions>, HistoryStats) {
        let files = self
            .files
            .into_iter()
            .map(|(id, h)| {
                let versions = h.versions.into_values().flatten().collect::<Vec<_>>();
                (id, FileVersions { versions, first_changed: h.first_changed.into_iter().collect() })
            })
            .filter(|(_, f)| !f.versions.is_empty() || !f.first_changed.is_empty())
            .collect();
        (files, self.stats)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Seek, SeekFrom, Write};

    use super::*;

    fn write_at(f: &mut File, offset: u64, data: &[u8]) {
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.write_all(data).unwrap();
    }

    #[test]
    fn each_changed_page_gets_a_version_per_sample_and_a_sync_makes_them_obsolete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"aaaabbbb").unwrap();
        let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let id = FileId(1);
        let mut h = History::new(4, [(id, &b"aaaabbbb"[..])]);
        h.sample([(id, &f, None)], 0, false);
        write_at(&mut f, 4, b"BBB1");
        h.sample([(id, &f, None)], 3, false);
        write_at(&mut f, 4, b"BBB2");
        write_at(&mut f, 0, b"AAA1");
        h.sample([(id, &f, None)], 5, false);
        h.sample([(id, &f, None)], 6, false); // nothing changed
        let (files, stats) = History::finish(h);
        let vs = &files[&id].versions;
        type Shown<'a> = (u64, &'a [u8], Option<u64>, Option<u64>);
        let shown: Vec<Shown> = vs.iter().map(|v| (v.page, &v.bytes[..], v.after_call, v.before_call)).collect();
        assert_eq!(
            shown,
            vec![(0, &b"AAA1"[..], Some(2), Some(5)), (1, b"BBB1", None, Some(3)), (1, b"BBB2", Some(2), Some(5))]
        );
        assert_eq!((stats.samples, stats.versions, stats.dropped), (4, 3, 0));

        let mut h = History::new(4, [(id, &b"AAA1BBB2"[..])]);
        write_at(&mut f, 0, b"xxxxyyyy");
        h.sample([(id, &f, None)], 1, false);
        h.synced(id, 1..2);
        let (files, _) = History::finish(h);
        assert_eq!(files[&id].versions.iter().map(|v| v.page).collect::<Vec<_>>(), vec![0], "page 1 was synced");
    }

    #[test]
    fn a_shrink_drops_the_versions_of_the_pages_it_cut_and_growth_by_a_hole_is_no_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"").unwrap();
        let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let id = FileId(4);
        let mut h = History::new(4, std::iter::empty());
        write_at(&mut f, 0, b"abcdefghij");
        h.sample([(id, &f, None)], 1, false);
        f.set_len(5).unwrap();
        h.sample([(id, &f, None)], 2, false);
        f.set_len(12).unwrap(); // zeros: the same pages as read
        h.sample([(id, &f, None)], 3, false);
        let (files, stats) = History::finish(h);
        // Page 0 "abcd"; page 1 "efgh" then "e" (cut, so dropped with the
        // shrink, then seen again as "e"); page 2 "ij" dropped.
        let shown: Vec<(u64, &[u8])> = files[&id].versions.iter().map(|v| (v.page, &v.bytes[..])).collect();
        assert_eq!(shown, vec![(0, &b"abcd"[..]), (1, b"e")]);
        assert_eq!(stats.versions, 4);
    }

    #[test]
    fn a_sample_of_listed_pages_reads_and_records_only_those() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"aaaabbbbcccc").unwrap();
        let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let id = FileId(1);
        let mut h = History::new(4, [(id, &b"aaaabbbbcccc"[..])]);
        write_at(&mut f, 0, b"AAAABBBBCCCC");
        h.sample([(id, &f, Some(vec![1]))], 1, false);
        // Page 0 changed too, but only page 1 was listed: seen later, whole.
        h.sample([(id, &f, None)], 2, false);
        let (files, stats) = History::finish(h);
        let shown: Vec<(u64, &[u8])> = files[&id].versions.iter().map(|v| (v.page, &v.bytes[..])).collect();
        assert_eq!(shown, vec![(0, &b"AAAA"[..]), (1, b"BBBB"), (2, b"CCCC")]);
        assert_eq!(stats.bytes_read, 4 + 12);
    }

    #[test]
    fn a_page_keeps_its_first_versions_and_its_latest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"").unwrap();
        let mut f = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
        let id = FileId(1);
        let mut h = History::new(4, std::iter::empty());
        let n = MAX_PAGE_VERSIONS as u32 + 5;
        // Starting at 1: zeros over an empty file read the same (a hole).
        for i in 1..=n {
            write_at(&mut f, 0, &i.to_le_bytes());
            h.sample([(id, &f, None)], i as u64 + 1, false);
        }
        let (files, stats) = History::finish(h);
        let vs = &files[&id].versions;
        assert_eq!(vs.len(), MAX_PAGE_VERSIONS);
        assert_eq!(vs[0].bytes, 1u32.to_le_bytes());
        assert_eq!(vs[MAX_PAGE_VERSIONS - 2].bytes, (MAX_PAGE_VERSIONS as u32 - 1).to_le_bytes());
        assert_eq!(vs.last().unwrap().bytes, n.to_le_bytes(), "the latest");
        assert_eq!(stats.dropped, n as u64 - MAX_PAGE_VERSIONS as u64);
    }
}
