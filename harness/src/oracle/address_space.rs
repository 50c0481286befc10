//! What the tracer knows of an address space while msyncs run: which
//! address-space calls (`mmap MAP_FIXED`, `munmap`, `mremap`, ...) could
//! have replaced the mapping of a range, and whether one ran during an
//! msync, in which case the maps read after it may not be what it synced
//! (the sync is then ambiguous, never trusted). Also the cache of the
//! space's shared file mappings, dropped at each such call.
//!
//! Architecture Invariant: pure (the tracer feeds it the calls it sees).

use libc::pid_t;

use super::maps::SharedFileMapping;
use super::syscalls::TracedSyscall;

/// The address range whose mapping an address-space call may replace or
/// remove. Calls that only take free space (`mmap` without `MAP_FIXED`,
/// `MAP_FIXED_NOREPLACE`, `shmat` without `SHM_REMAP`) and `shmdt` (which
/// removes SysV segments only) cannot change what a *mapped* range maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Clobber {
    Harmless,
    /// Up to two half-open ranges (mremap: old place and fixed new place).
    Ranges([(u64, u64); 2]),
    Everything,
}

impl Clobber {
    pub(super) fn range(start: u64, len: u64, page: u64) -> (u64, u64) {
        (start, start.saturating_add(len.saturating_add(page - 1) & !(page - 1)))
    }

    pub(super) fn of(sys: TracedSyscall, a: &[u64; 6], page: u64) -> Clobber {
        const MAP_FIXED_NOREPLACE: u64 = 0x10_0000;
        const MREMAP_FIXED: u64 = 2;
        const SHM_REMAP: u64 = 0o40000;
        let none = (0, 0);
        match sys {
            TracedSyscall::Mmap if a[3] & MAP_FIXED_NOREPLACE == 0 && a[3] & libc::MAP_FIXED as u64 != 0 => {
                Clobber::Ranges([Clobber::range(a[0], a[1], page), none])
            }
            TracedSyscall::Munmap | TracedSyscall::RemapFilePages => {
                Clobber::Ranges([Clobber::range(a[0], a[1], page), none])
            }
            TracedSyscall::Mremap => {
                let new = if a[3] & MREMAP_FIXED != 0 { Clobber::range(a[4], a[2], page) } else { none };
                Clobber::Ranges([Clobber::range(a[0], a[1], page), new])
            }
            // The segment's size is not in the arguments.
            TracedSyscall::Shmat if a[1] != 0 && a[2] & SHM_REMAP != 0 => Clobber::Everything,
            _ => Clobber::Harmless,
        }
    }

    pub(super) fn overlaps(&self, start: u64, end: u64) -> bool {
        match self {
            Clobber::Harmless => false,
            Clobber::Everything => true,
            Clobber::Ranges(rs) => rs.iter().any(|&(s, e)| s < e && s < end && start < e),
        }
    }
}

/// One address space (shared by processes created with CLONE_VM).
#[derive(Default)]
pub(super) struct Space {
    pub(super) maps: Option<Vec<SharedFileMapping>>,
    /// Bumped at every address-space call's entry and exit and at exec.
    pub(super) gen: u64,
    /// Address-space calls between entry and exit, by tid.
    pub(super) in_flight: Vec<(pid_t, Clobber)>,
    /// msyncs between entry and exit; while there are any, every
    /// address-space call's clobber is logged with its entry generation.
    pub(super) pending_msyncs: u32,
    pub(super) log: Vec<(u64, Clobber)>,
}

impl Space {
    pub(super) fn call_entered(&mut self, tid: pid_t, clobber: Clobber) {
        self.gen += 1;
        self.maps = None;
        if self.pending_msyncs > 0 {
            self.log.push((self.gen, clobber));
        }
        self.in_flight.push((tid, clobber));
    }

    pub(super) fn call_ended(&mut self, tid: pid_t) {
        self.gen += 1;
        self.maps = None;
        if let Some(i) = self.in_flight.iter().position(|&(t, _)| t == tid) {
            self.in_flight.swap_remove(i);
        }
    }

    pub(super) fn msync_entered(&mut self) -> (u64, Vec<Clobber>) {
        self.pending_msyncs += 1;
        (self.gen, self.in_flight.iter().map(|&(_, c)| c).filter(|c| *c != Clobber::Harmless).collect())
    }

    pub(super) fn msync_ended(&mut self) {
        self.pending_msyncs = self.pending_msyncs.saturating_sub(1);
        if self.pending_msyncs == 0 {
            self.log.clear();
        }
    }

    /// Could `[start, end)` have mapped something else while an msync that
    /// entered at `entry_gen` (with `busy` under way) ran? Then the maps
    /// read now may not be what it synced.
    pub(super) fn range_changed(&self, start: u64, end: u64, entry_gen: u64, busy: &[Clobber]) -> bool {
        busy.iter().any(|c| c.overlaps(start, end))
            || self.log.iter().any(|(g, c)| *g > entry_gen && c.overlaps(start, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 4096;

    fn args(a: &[u64]) -> [u64; 6] {
        let mut out = [0; 6];
        out[..a.len()].copy_from_slice(a);
        out
    }

    #[test]
    fn only_calls_that_can_replace_a_mapping_clobber() {
        let plain = Clobber::of(TracedSyscall::Mmap, &args(&[0, P, 3, libc::MAP_SHARED as u64, 5, 0]), P);
        assert_eq!(plain, Clobber::Harmless);
        let fixed =
            Clobber::of(TracedSyscall::Mmap, &args(&[0x10000, 1, 3, (libc::MAP_SHARED | libc::MAP_FIXED) as u64]), P);
        assert_eq!(fixed, Clobber::Ranges([(0x10000, 0x10000 + P), (0, 0)]), "length rounded up to a page");
        let noreplace =
            Clobber::of(TracedSyscall::Mmap, &args(&[0x10000, P, 3, 0x10_0000 | libc::MAP_FIXED as u64]), P);
        assert_eq!(noreplace, Clobber::Harmless);
        let moved = Clobber::of(TracedSyscall::Mremap, &args(&[0x10000, P, 2 * P, 1 | 2, 0x50000]), P);
        assert_eq!(moved, Clobber::Ranges([(0x10000, 0x10000 + P), (0x50000, 0x50000 + 2 * P)]));
        assert_eq!(Clobber::of(TracedSyscall::Shmat, &args(&[7, 0x10000, 0o40000]), P), Clobber::Everything);
        assert_eq!(Clobber::of(TracedSyscall::Shmat, &args(&[7, 0, 0]), P), Clobber::Harmless);
        assert_eq!(Clobber::of(TracedSyscall::Shmdt, &args(&[0x10000]), P), Clobber::Harmless);
    }

    #[test]
    fn an_msync_is_ambiguous_only_if_an_overlapping_change_ran_during_it() {
        let unmap = |a: u64| Clobber::Ranges([(a, a + P), (0, 0)]);
        let mut s = Space::default();
        // Completed before the msync: irrelevant.
        s.call_entered(1, unmap(0x1000));
        s.call_ended(1);
        // Under way when the msync enters: counts if it overlaps.
        s.call_entered(2, unmap(0x2000));
        let (gen, busy) = s.msync_entered();
        assert!(s.range_changed(0x2000, 0x3000, gen, &busy));
        assert!(!s.range_changed(0x1000, 0x2000, gen, &busy));
        // Entering during it: counts if it overlaps.
        s.call_entered(3, unmap(0x8000));
        s.call_entered(4, Clobber::Harmless);
        assert!(s.range_changed(0x8000, 0x9000, gen, &busy));
        assert!(!s.range_changed(0x9000, 0xa000, gen, &busy));
        s.msync_ended();
        assert!(s.log.is_empty(), "the log lives only while msyncs are under way");
        assert_eq!(s.in_flight.len(), 3);
    }
}
