//! `eio-sync`: one data sync made to fail with `EIO`, and the power cut
//! after it ([`crate::oracle::SyncFailure`]). A part of the tracer (its
//! child module: it works on the tracer's state).
//!
//! The failing call is not performed: at its seccomp stop its syscall
//! number becomes -1 (the kernel skips it, as for an abort crash point),
//! and at its exit stop its return value becomes `-EIO`. What it covered is
//! then held uncertain by the shadow store (`failed_writeback.rs`): a real
//! failed writeback marks the pages clean, so the retried sync that returns
//! success did not write them. The power cut is a kill of every traced task
//! at the seccomp stop of a later data sync, before it runs.

use libc::pid_t;

use super::{fd_ident, is_esrch, sys, tracer_err, Call, Tracer};
use crate::namespace::trace::FileId;
use crate::oracle::maps;
use crate::oracle::syscalls::is_data_sync;
use crate::oracle::{
    CopiedRange, CrashHit, CrashSignal, FailedRange, InjectedFailure, NoGuarantee, OracleError, SyncEffect,
    SyscallResult, TracedSyscall,
};
use crate::vocab::CrashWhen;

/// What the fault plan does with a call at its seccomp stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fault {
    /// Nothing: it runs.
    None,
    /// It is the failed sync: skipped, `-EIO` at its exit stop.
    Fail,
    /// The power is cut here: every task is being killed.
    Cut,
}

impl Tracer<'_> {
    /// At the seccomp stop of `sys` (its event `event`, if recorded):
    /// count it if it is a data sync, and fail it or cut the power there
    /// as the plan says.
    pub(super) fn fault_at_entry(
        &mut self,
        tid: pid_t,
        tgid: pid_t,
        sys: TracedSyscall,
        args: &[u64; 6],
        event: Option<usize>,
    ) -> Result<Fault, OracleError> {
        let Some(plan) = self.cfg.fail_sync else { return Ok(Fault::None) };
        if !is_data_sync(sys, args) || self.crash.is_some() {
            return Ok(Fault::None);
        }
        self.data_syncs += 1;
        let n = self.data_syncs;
        if plan.cut_before == Some(n) {
            let event = event.unwrap_or(0);
            self.crash =
                Some(CrashHit { nth: n, syscall: sys, when: CrashWhen::Before, signal: CrashSignal::Kill, tid, event });
            self.start_killing();
            return Ok(Fault::Cut);
        }
        if plan.nth != n {
            return Ok(Fault::None);
        }
        let mut regs = match sys::get_regs(tid) {
            Ok(r) => r,
            Err(e) if is_esrch(&e) => return Ok(Fault::None),
            Err(e) => return Err(tracer_err("PTRACE_GETREGS at the failed sync", tid, e)),
        };
        regs.orig_rax = u64::MAX;
        match sys::set_regs(tid, &regs) {
            Ok(()) => {}
            Err(e) if is_esrch(&e) => return Ok(Fault::None),
            Err(e) => return Err(tracer_err("PTRACE_SETREGS at the failed sync", tid, e)),
        }
        let covered = self.failed_ranges(tid, tgid, sys, args);
        self.injected = Some(InjectedFailure {
            nth: n,
            syscall: sys,
            event: event.unwrap_or(0),
            covered,
            acks_before: self.attribution.lines(),
            retries: 0,
            found_clean: 0,
        });
        Ok(Fault::Fail)
    }

    /// The exit stop of the skipped call: it returns `-EIO`.
    pub(super) fn fail_at_exit(&mut self, tid: pid_t, tgid: pid_t, call: Call) -> Result<(), OracleError> {
        if call.sys == TracedSyscall::Msync {
            self.space_of(tgid).msync_ended();
        }
        if let Some(i) = call.event {
            self.events[i].result = SyscallResult::Failed { errno: libc::EIO };
            self.events[i].effect = SyncEffect::NoGuarantee(NoGuarantee::Failed);
        }
        let mut regs = match sys::get_regs(tid) {
            Ok(r) => r,
            Err(e) if is_esrch(&e) => return Ok(()),
            Err(e) => return Err(tracer_err("PTRACE_GETREGS after the failed sync", tid, e)),
        };
        regs.rax = (-libc::EIO) as i64 as u64;
        match sys::set_regs(tid, &regs) {
            Ok(()) => self.resume(tid, 0),
            Err(e) if is_esrch(&e) => Ok(()),
            Err(e) => Err(tracer_err("PTRACE_SETREGS after the failed sync", tid, e)),
        }
    }

    /// What the failed call would have synced, held uncertain in the
    /// shadow store: the watched files an msync range maps, or the file an
    /// fd names. A range the oracle cannot resolve is left out (its pages
    /// then sync as usual later: the side that cannot raise a false alarm).
    pub(super) fn failed_ranges(
        &mut self,
        tid: pid_t,
        tgid: pid_t,
        sys: TracedSyscall,
        args: &[u64; 6],
    ) -> Vec<FailedRange> {
        let mut targets: Vec<(FileId, u64, u64)> = Vec::new();
        if sys == TracedSyscall::Msync {
            let (addr, len) = (args[0], args[1]);
            let end = len.checked_add(self.page - 1).map(|l| l & !(self.page - 1)).and_then(|l| addr.checked_add(l));
            if let (Some(end), Ok(mappings)) = (end, self.take_maps(tgid)) {
                for piece in maps::resolve(&mappings, addr, end) {
                    let m = piece.mapping;
                    if let Some(id) =
                        self.ns.lookup_mapped(m.dev, m.inode, &m.path).filter(|&id| self.ns.is_regular(id))
                    {
                        targets.push((id, piece.file_offset, piece.len));
                    }
                }
                self.space_of(tgid).maps = Some(mappings);
            }
        } else if let Some(id) = fd_ident(tid, args[0]).and_then(|i| self.ns.lookup(i)) {
            if self.ns.is_regular(id) {
                targets.push((id, 0, u64::MAX));
            }
        }
        let mut covered = Vec::new();
        for (id, offset, len) in targets {
            let store = self.store.as_mut().expect("the store lives until the outcome");
            let file = self.ns.file(id);
            let size = file.metadata().map_or(0, |m| m.len());
            let Ok(uncertain_pages) = store.fail_range(id, file, offset, len) else { continue };
            let path = self.ns.path_of(id).unwrap_or_default();
            covered.push(FailedRange {
                file: id,
                path,
                offset,
                len: len.min(size.saturating_sub(offset)),
                uncertain_pages,
            });
        }
        covered
    }

    /// Before a later sync's copy (every task stopped): read what changed
    /// since the last sample, so that a store made meanwhile by another
    /// thread counts as the evidence it is.
    pub(super) fn refresh_failed_evidence(&mut self) {
        if self.store.as_ref().is_some_and(|s| !s.failed.is_empty()) {
            self.sample_history(None, false);
        }
    }

    /// A history sample read `files` (whole: `None`; or the pages write
    /// tracking reported written): what that says about the pages a failed
    /// sync left uncertain.
    pub(super) fn note_failed_evidence(&mut self, files: &[(FileId, Option<Vec<u64>>)]) {
        let Some(store) = self.store.as_mut().filter(|s| !s.failed.is_empty()) else { return };
        for (id, pages) in files {
            match pages {
                Some(pages) => store.failed.stored(*id, pages.iter().copied()),
                None => store.failed.unknown(*id),
            }
        }
    }
}

impl Tracer<'_> {
    /// A sync completed with `copied`: count it as a retry of the failed
    /// sync if it covered part of that, and leave out of its record the
    /// pages it held back (they were not written: the attribution of a
    /// violation must not name it as their last sync).
    pub(super) fn settle_held_back(&mut self, copied: Vec<CopiedRange>) -> Vec<CopiedRange> {
        let Some(store) = self.store.as_mut() else { return copied };
        let held = store.take_held_back();
        let Some(inj) = self.injected.as_mut() else { return copied };
        let overlaps = |c: &CopiedRange| {
            inj.covered.iter().any(|r| {
                r.file == c.file
                    && c.offset < r.offset.saturating_add(r.len)
                    && r.offset < c.offset.saturating_add(c.len)
            })
        };
        if copied.iter().any(overlaps) {
            inj.retries += 1;
            inj.found_clean += !held.is_empty() as u64;
        }
        if held.is_empty() {
            return copied;
        }
        split_out(copied, &held, self.page)
    }
}

/// `copied` without the pages `held` (file, page): each range split around
/// them.
fn split_out(copied: Vec<CopiedRange>, held: &[(FileId, u64)], page: u64) -> Vec<CopiedRange> {
    let mut out = Vec::new();
    for c in copied {
        let end = c.offset.saturating_add(c.len);
        let mut from = c.offset;
        let mut pages: Vec<u64> = held.iter().filter(|(f, _)| *f == c.file).map(|&(_, p)| p).collect();
        pages.sort_unstable();
        for p in pages {
            let (ps, pe) = (p * page, (p + 1) * page);
            if pe <= from || ps >= end {
                continue;
            }
            if ps > from {
                out.push(CopiedRange { offset: from, len: ps - from, ..c.clone() });
            }
            from = pe.min(end);
        }
        if from < end {
            out.push(CopiedRange { offset: from, len: end - from, ..c.clone() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_pages_are_cut_out_of_the_copied_ranges() {
        let r = |offset, len| CopiedRange { file: FileId(1), path: "f".into(), offset, len, size: Some(40) };
        let out = split_out(vec![r(0, 40)], &[(FileId(1), 1), (FileId(2), 0), (FileId(1), 3)], 10);
        let pieces: Vec<(u64, u64)> = out.iter().map(|c| (c.offset, c.len)).collect();
        assert_eq!(pieces, vec![(0, 10), (20, 10)], "pages 1 and 3 of file 1 left out, file 2's page ignored");
        assert!(out.iter().all(|c| c.size == Some(40)), "each piece says the durable size the whole copy set");
        assert_eq!(split_out(vec![r(10, 10)], &[(FileId(1), 1)], 10), vec![], "a range of held pages only: nothing");
    }
}
