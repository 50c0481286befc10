//! What a failed sync leaves uncertain (the `eio-sync` model).
//!
//! When writeback of a dirty page fails, Linux records the error in the
//! mapping's `errseq_t` and **marks the page clean**
//! (`Documentation/filesystems/vfs.rst`, "Handling errors during
//! writeback": "the page is marked clean ... and the error is recorded";
//! `Documentation/core-api/errseq.rst`: the error is reported once to each
//! open file description that syncs after it). A later `fsync`/`msync` of
//! the same range therefore finds nothing dirty there and returns success
//! without writing it (LWN, "PostgreSQL's fsync() surprise", 2018). So the
//! durable content of such a page is the floor or any version it held up to
//! the failure, **even after a later successful sync**, until the program
//! stores into it again (which dirties it again) and a sync covers it.
//!
//! This file keeps, per file, the pages a failed sync covered, with a hash
//! of the content each had at the failure. A later copy into the shadow is
//! *held back* for such a page (its floor stays) while it is known not to
//! have been stored into since. The evidence of a store, and the side chosen
//! when there is none:
//! - its content differs from the content at the failure: stored;
//! - write tracking (userfaultfd write protection) reported it written: stored;
//! - the file was compared whole at some history sample since the failure
//!   (written by a call, mapped by an address space without write tracking),
//!   or the history is not recorded: the oracle cannot tell a store of the
//!   same bytes from no store, so it takes the page as stored (durable
//!   after the next sync). Holding it back there could raise a false alarm
//!   on a program that rewrote its data and synced again; trusting the sync
//!   can only miss a bug.
//!
//! Architecture Invariant: pure.

use std::collections::BTreeMap;
#[cfg(test)]
use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use crate::namespace::trace::FileId;

/// The pages failed syncs left uncertain, by file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FailedWriteback {
    /// Per file, per page: a hash of its content at the failure.
    files: BTreeMap<FileId, BTreeMap<u64, u64>>,
}

/// The hash of a page's content (fixed keys: stable across runs).
fn content_hash(bytes: &[u8]) -> u64 {
    #[allow(deprecated)]
    let mut h = std::hash::SipHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

impl FailedWriteback {
    /// A sync covering page `page` of `file`, whose content is `content`
    /// now, failed: the page stays uncertain until it is stored into.
    pub fn failed(&mut self, file: FileId, page: u64, content: &[u8]) {
        self.files.entry(file).or_default().insert(page, content_hash(content));
    }

    /// `pages` of `file` were stored into since the failure: the next sync
    /// writes them.
    pub fn stored(&mut self, file: FileId, pages: impl IntoIterator<Item = u64>) {
        if let Some(f) = self.files.get_mut(&file) {
            for p in pages {
                f.remove(&p);
            }
            if f.is_empty() {
                self.files.remove(&file);
            }
        }
    }

    /// The oracle cannot tell which pages of `file` were stored into since
    /// the failure: it takes them all as stored (see the module docs).
    pub fn unknown(&mut self, file: FileId) {
        self.files.remove(&file);
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn has_file(&self, file: FileId) -> bool {
        self.files.contains_key(&file)
    }

    /// A completed sync is copying page `page` of `file`, whose content is
    /// `now`: must the copy be held back (the page keeps its floor)? Yes
    /// while the page is uncertain and holds what it held at the failure; a
    /// different content proves a store, which ends the uncertainty.
    pub fn holds_back(&mut self, file: FileId, page: u64, now: &[u8]) -> bool {
        let Some(f) = self.files.get_mut(&file) else { return false };
        match f.get(&page) {
            Some(&h) if h == content_hash(now) => true,
            Some(_) => {
                f.remove(&page);
                if f.is_empty() {
                    self.files.remove(&file);
                }
                false
            }
            None => false,
        }
    }

    /// The uncertain pages of `file`.
    #[cfg(test)]
    pub fn pages(&self, file: FileId) -> BTreeSet<u64> {
        self.files.get(&file).map(|f| f.keys().copied().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: FileId = FileId(1);

    #[test]
    fn an_unstored_page_is_held_back_at_every_later_sync() {
        let mut w = FailedWriteback::default();
        w.failed(F, 3, b"acked");
        assert!(w.holds_back(F, 3, b"acked"), "the retried sync finds the page clean");
        assert!(w.holds_back(F, 3, b"acked"), "and so does any later one");
        assert!(!w.holds_back(F, 2, b"acked"), "a page the failed sync did not cover syncs as usual");
        assert!(!w.holds_back(FileId(2), 3, b"acked"), "another file syncs as usual");
        assert_eq!(w.pages(F), BTreeSet::from([3]));
    }

    #[test]
    fn a_page_whose_content_changed_was_stored_into_and_syncs_again() {
        let mut w = FailedWriteback::default();
        w.failed(F, 0, b"old");
        assert!(!w.holds_back(F, 0, b"new"), "a store dirtied it again");
        assert!(!w.holds_back(F, 0, b"old"), "and the uncertainty is over, even if it is rewritten back");
        assert!(w.is_empty());
    }

    #[test]
    fn reported_stores_and_unknown_files_end_the_uncertainty() {
        let mut w = FailedWriteback::default();
        for p in 0..4 {
            w.failed(F, p, b"x");
        }
        w.failed(FileId(2), 0, b"y");
        w.stored(F, [1, 2]);
        assert_eq!(w.pages(F), BTreeSet::from([0, 3]));
        assert!(!w.holds_back(F, 1, b"x"), "stored with the same bytes: written again");
        w.stored(F, [3]);
        assert_eq!(w.pages(F), BTreeSet::from([0]));
        w.unknown(FileId(2));
        assert!(!w.has_file(FileId(2)) && !w.holds_back(FileId(2), 0, b"y"));
        w.stored(F, [0]);
        assert!(w.is_empty());
    }
}
