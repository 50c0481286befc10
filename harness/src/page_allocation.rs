//! Which pages a built-in `MAP_SHARED` writer makes its filesystem allocate
//! when its file starts sparse (all holes), and which store a capacity of
//! `N` free pages stops: the prediction behind the matrix's `enospc`
//! column (`CrashPoint::Capacity`).
//!
//! The rule (tmpfs, which is the page cache: `Documentation/filesystems/
//! tmpfs.rst`, "size: the limit of allocated bytes"; measured in
//! `../shared/README.md`, "Faults that are not crashes"):
//! - a store through the mapping allocates every page it touches that is
//!   not yet allocated (the write fault allocates a whole page);
//! - a store that needs more pages than are free dies of `SIGBUS` (the
//!   write fault cannot allocate: `VM_FAULT_SIGBUS`), before any later op;
//! - `ftruncate` to `len` frees the pages wholly beyond `len` (the page
//!   holding `len` stays, its tail zeroed);
//! - nothing else allocates: `msync`, `fsync`, `munmap`, acks.
//!
//! Which pages of the faulting store were written before the fault is not
//! predicted (`memcpy` need not copy in address order): the process model
//! lets each of its bytes be old or new, as for any store in flight.
//!
//! Architecture Invariant: pure; cost is in the pages the ops touch.

use std::collections::BTreeSet;

use crate::spec::{Op, WriterSpec};

/// One store that allocates pages of the sparse file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocatingStore {
    /// The store's op index.
    pub op: usize,
    /// Pages allocated just before it.
    pub before: u64,
    /// Pages it allocates.
    pub new: u64,
}

/// Walk the writer's ops from a sparse file: every store that allocates,
/// in op order.
pub fn allocating_stores(spec: &WriterSpec) -> Vec<AllocatingStore> {
    let ps = spec.page_size;
    let mut allocated: BTreeSet<u64> = BTreeSet::new();
    let mut out = Vec::new();
    for (i, op) in spec.ops.iter().enumerate() {
        match *op {
            Op::Store { offset, len, .. } => {
                let pages = offset / ps..=(offset + len - 1) / ps;
                let before = allocated.len() as u64;
                let new = pages.filter(|p| allocated.insert(*p)).count() as u64;
                if new > 0 {
                    out.push(AllocatingStore { op: i, before, new });
                }
            }
            Op::Truncate { len } => {
                let kept = len.div_ceil(ps);
                allocated.retain(|&p| p < kept);
            }
            Op::Msync { .. } | Op::Fsync | Op::Fdatasync | Op::Ack { .. } | Op::Munmap => {}
        }
    }
    out
}

/// The most pages the file holds at any point of a whole run: a capacity
/// of at least this many free pages never faults.
pub fn peak_pages(spec: &WriterSpec) -> u64 {
    allocating_stores(spec).iter().map(|s| s.before + s.new).max().unwrap_or(0)
}

/// The store that dies of `SIGBUS` when the filesystem has room for
/// `pages` more pages than the sparse file holds at the start: the first
/// that needs more than are free. `None`: the run completes.
pub fn capacity_fault(spec: &WriterSpec, pages: u64) -> Option<usize> {
    allocating_stores(spec).into_iter().find(|s| s.before + s.new > pages).map(|s| s.op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ByteRange, MappingKind, MsyncFlags, SyncPolicy};

    const PS: u64 = 4096;

    fn spec(ops: Vec<Op>) -> WriterSpec {
        WriterSpec { file_size: 8 * PS, page_size: PS, mapping: MappingKind::Shared, policy: SyncPolicy::None, ops }
    }

    fn store(offset: u64, len: u64, version: u32) -> Op {
        Op::Store { offset, len, version }
    }

    #[test]
    fn each_store_allocates_only_the_pages_it_touches_first() {
        let s = spec(vec![
            store(100, 10, 1),   // page 0
            store(PS - 1, 2, 2), // pages 0, 1: one new
            Op::Msync { range: ByteRange::new(0, 2 * PS), flags: MsyncFlags::MsSync },
            store(50, 20, 3),         // page 0 again: nothing new
            store(3 * PS, 2 * PS, 4), // pages 3, 4
            Op::Ack { id: 0, covers: vec![0] },
            Op::Munmap,
        ]);
        assert_eq!(
            allocating_stores(&s),
            vec![
                AllocatingStore { op: 0, before: 0, new: 1 },
                AllocatingStore { op: 1, before: 1, new: 1 },
                AllocatingStore { op: 4, before: 2, new: 2 },
            ]
        );
        assert_eq!(peak_pages(&s), 4);
    }

    #[test]
    fn the_first_store_needing_one_page_more_than_is_free_faults() {
        let s = spec(vec![store(0, 10, 1), store(PS, 2 * PS, 2), store(10, 10, 3), store(5 * PS, 1, 4)]);
        assert_eq!(capacity_fault(&s, 0), Some(0), "no room: the very first store");
        assert_eq!(capacity_fault(&s, 1), Some(1));
        assert_eq!(capacity_fault(&s, 2), Some(1), "store 1 needs two pages, one is free");
        assert_eq!(capacity_fault(&s, 3), Some(3), "store 2 rewrites an allocated page");
        assert_eq!(capacity_fault(&s, 4), None);
        assert_eq!(capacity_fault(&s, 100), None);
    }

    #[test]
    fn a_truncate_frees_the_pages_wholly_beyond_it_and_they_count_again() {
        let s = spec(vec![
            store(0, 3 * PS, 1),           // pages 0..3
            Op::Truncate { len: PS + 10 }, // page 1 holds the end: 0 and 1 stay
            Op::Truncate { len: 8 * PS },
            store(2 * PS, 10, 2), // page 2 again: freed, so new
            store(PS, 10, 3),     // page 1 stayed
        ]);
        assert_eq!(
            allocating_stores(&s),
            vec![AllocatingStore { op: 0, before: 0, new: 3 }, AllocatingStore { op: 3, before: 2, new: 1 }]
        );
        assert_eq!(peak_pages(&s), 3);
        assert_eq!(capacity_fault(&s, 2), Some(0));
        assert_eq!(capacity_fault(&s, 3), None, "the truncate gave back what the refill takes");
    }
}
