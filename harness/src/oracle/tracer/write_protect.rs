//! Write tracking for the write history ([`crate::oracle::uffd`]): after
//! a traced process maps a watched file shared and writable, the tracer
//! makes it create a userfaultfd (a `userfaultfd(2)` call injected at the
//! `mmap`'s exit stop), takes a duplicate and closes the writer's copy
//! (another injected call), so that the writer's descriptors are as they
//! were. From then on a history sample asks the kernel which pages of that
//! address space's watched mappings were written, and reads only those.
//!
//! Where it cannot be set up (userfaultfd disabled, a process that forked
//! from the one that set it up: a child's address space is not registered,
//! an injected call interrupted by a signal), or right after the address
//! space changed (the registered ranges are re-derived from the maps), the
//! files are compared whole: tracking only ever narrows which pages are
//! read, and a page it does not report was not stored into.
//!
//! Injecting a call: at a syscall-exit stop the instruction before the
//! task's `rip` is the `syscall` it just made; the tracer points `rip`
//! back at it with another call's number and arguments, runs it (its entry
//! and exit stops, `PTRACE_SYSCALL`), reads the result and restores every
//! register, so the task returns from its own call as if nothing happened.
//! Neither call is trapped by the seccomp filter. If anything else stops
//! the task meanwhile (a signal, its death), the registers are restored
//! where possible and that stop is queued for the loop as usual.

use std::collections::HashMap;

use libc::pid_t;

use super::{fd_ident, is_esrch, tracer_err, Tracer};
use crate::namespace::trace::FileId;
use crate::oracle::maps::SharedFileMapping;
use crate::oracle::sys::{self, WaitStatus};
use crate::oracle::uffd::{WriteTracking, UFFD_USER_MODE_ONLY};
use crate::oracle::OracleError;

/// A registered range of a watched file's mapping.
struct Tracked {
    start: u64,
    end: u64,
    file: FileId,
    /// File offset of `start`.
    offset: u64,
}

/// Write tracking of one address space.
pub(super) struct SpaceTracking {
    tracking: WriteTracking,
    /// The address space's generation when the ranges were registered.
    gen: Option<u64>,
    ranges: Vec<Tracked>,
}

/// What a history sample must read of the mapped files.
#[derive(Default)]
pub(super) struct MappedChanges {
    /// Files to compare whole.
    pub(super) whole: Vec<FileId>,
    /// Pages write tracking reported written, by file.
    pub(super) pages: HashMap<FileId, Vec<u64>>,
}

impl Tracer<'_> {
    /// At the exit stop of a successful `mmap`: if it mapped a watched file
    /// shared and writable and the address space has no write tracking yet,
    /// set it up. Failing to is not an error of the run: the files are then
    /// compared whole.
    ///
    /// Returns whether the task is still at that exit stop (to be resumed
    /// by the caller); `false` when another stop came during an injected
    /// call, which the loop handles (and resumes) in its turn.
    pub(super) fn track_writes_after_mmap(
        &mut self,
        tid: pid_t,
        tgid: pid_t,
        args: &[u64; 6],
    ) -> Result<bool, OracleError> {
        if !self.cfg.history || self.killing {
            return Ok(true);
        }
        let Some(space) = self.procs.get(&tgid).map(|p| p.space) else { return Ok(true) };
        if self.tracking.contains_key(&space) || self.tracking_refused.contains(&space) {
            return Ok(true);
        }
        let (prot, flags, fd) = (args[2], args[3], args[4]);
        if flags & libc::MAP_SHARED as u64 == 0 || prot & libc::PROT_WRITE as u64 == 0 {
            return Ok(true);
        }
        let watched = fd_ident(tid, fd).and_then(|i| self.ns.lookup(i)).is_some_and(|id| self.ns.is_regular(id));
        if !watched {
            return Ok(true);
        }
        let flags = (libc::O_CLOEXEC | libc::O_NONBLOCK) as u64 | UFFD_USER_MODE_ONLY;
        let uffd = match self.inject(tid, tgid, libc::SYS_userfaultfd, [flags, 0, 0, 0, 0, 0])? {
            // Not run: try again at the next mmap.
            Injected::NotRun => return Ok(true),
            Injected::Deferred => return Ok(false),
            Injected::Ran(fd) if fd < 0 => {
                self.tracking_refused.insert(space);
                return Ok(true);
            }
            Injected::Ran(fd) => fd as u64,
        };
        let dup = sys::pidfd_open(tgid).and_then(|p| sys::pidfd_getfd(&p, uffd as i32));
        // The writer's own copy goes, whatever happened to ours.
        let still_stopped =
            !matches!(self.inject(tid, tgid, libc::SYS_close, [uffd, 0, 0, 0, 0, 0])?, Injected::Deferred);
        match dup.and_then(|fd| WriteTracking::new(fd, tgid)) {
            Ok(tracking) => {
                self.tracking.insert(space, SpaceTracking { tracking, gen: None, ranges: Vec::new() });
                if let Some(h) = self.store.as_mut().and_then(|s| s.history.as_mut()) {
                    h.stats.write_tracked_spaces += 1;
                }
            }
            Err(_) => {
                self.tracking_refused.insert(space);
            }
        }
        Ok(still_stopped)
    }

    /// What changed in the files `space`'s watched shared mappings (`maps`,
    /// current) show, at generation `gen`: the pages tracking reported, or
    /// the whole files.
    pub(super) fn mapped_changes(
        &mut self,
        space: u64,
        gen: u64,
        maps: &[(SharedFileMapping, FileId)],
        out: &mut MappedChanges,
    ) {
        let page = self.page;
        let Some(t) = self.tracking.get_mut(&space) else {
            out.whole.extend(maps.iter().map(|(_, id)| *id));
            return;
        };
        if t.gen != Some(gen) {
            // The maps changed since the ranges were registered: register
            // what is mapped now, protect it (the scan's report is not
            // needed: the files are read whole this time).
            t.ranges = maps
                .iter()
                .filter(|(m, _)| t.tracking.register(m.start, m.end).is_ok())
                .map(|(m, id)| Tracked { start: m.start, end: m.end, file: *id, offset: m.offset })
                .collect();
            t.ranges.retain(|r| t.tracking.written(r.start, r.end).is_ok());
            t.gen = Some(gen);
            out.whole.extend(maps.iter().map(|(_, id)| *id));
            return;
        }
        let mut reported = 0;
        for r in &t.ranges {
            match t.tracking.written(r.start, r.end) {
                Ok(regions) => {
                    let pages = out.pages.entry(r.file).or_default();
                    for (s, e) in regions {
                        let (s, e) = (s.max(r.start), e.min(r.end));
                        let first = (r.offset + (s - r.start)) / page;
                        let n = (e.saturating_sub(s)).div_ceil(page);
                        pages.extend(first..first + n);
                        reported += n;
                    }
                }
                Err(_) => out.whole.push(r.file),
            }
        }
        // A file mapped but not registered (registration failed) is read whole.
        out.whole.extend(maps.iter().filter(|(m, _)| !t.ranges.iter().any(|r| r.start == m.start)).map(|(_, id)| *id));
        if let Some(h) = self.store.as_mut().and_then(|s| s.history.as_mut()) {
            h.stats.pages_reported += reported;
        }
    }

    /// Make the task `tid`, stopped at a syscall exit, run syscall `nr` with
    /// `args`, and put it back as it was.
    fn inject(&mut self, tid: pid_t, tgid: pid_t, nr: i64, args: [u64; 6]) -> Result<Injected, OracleError> {
        let saved = match sys::get_regs(tid) {
            Ok(r) => r,
            Err(e) if is_esrch(&e) => return Ok(Injected::NotRun),
            Err(e) => return Err(tracer_err("PTRACE_GETREGS to inject a call", tid, e)),
        };
        // The `syscall` instruction (0f 05) just before rip.
        let mut insn = [0u8; 2];
        let read = sys::read_remote(tgid, saved.rip.wrapping_sub(2), &mut insn, self.page);
        if read.ok() != Some(2) || insn != [0x0f, 0x05] {
            return Ok(Injected::NotRun);
        }
        let mut r = saved;
        r.rax = nr as u64;
        (r.rdi, r.rsi, r.rdx, r.r10, r.r8, r.r9) = (args[0], args[1], args[2], args[3], args[4], args[5]);
        r.rip = saved.rip - 2;
        if let Err(e) = sys::set_regs(tid, &r) {
            return if is_esrch(&e) {
                Ok(Injected::NotRun)
            } else {
                Err(tracer_err("PTRACE_SETREGS to inject a call", tid, e))
            };
        }
        for _ in 0..2 {
            let stopped = sys::resume(sys::PTRACE_SYSCALL, tid, 0).and_then(|()| sys::wait_task(tid));
            match stopped {
                Ok(status)
                    if sys::decode_status(status) == (WaitStatus::Stopped { sig: libc::SIGTRAP | 0x80, event: 0 }) => {}
                Ok(status) => {
                    // A signal or a death came first: put the registers
                    // back if it still can, and let the loop handle it.
                    let _ = sys::set_regs(tid, &saved);
                    self.deferred.push_back((tid, status));
                    return Ok(Injected::Deferred);
                }
                // Dead: its end comes through the loop's wait.
                Err(e) if is_esrch(&e) => return Ok(Injected::Deferred),
                Err(e) => return Err(tracer_err("running an injected call", tid, e)),
            }
        }
        let result = sys::get_regs(tid).map(|r| r.rax as i64);
        match (sys::set_regs(tid, &saved), result) {
            (Ok(()), Ok(rax)) => Ok(Injected::Ran(rax)),
            (Ok(()), Err(_)) => Ok(Injected::NotRun),
            (Err(e), _) if is_esrch(&e) => Ok(Injected::Deferred),
            (Err(e), _) => Err(tracer_err("PTRACE_SETREGS after an injected call", tid, e)),
        }
    }
}

/// What became of an injected call.
enum Injected {
    /// It ran and returned this (a negative errno on failure); the task is
    /// back at its own call's exit stop.
    Ran(i64),
    /// It did not run; the task is back at its own call's exit stop.
    NotRun,
    /// Another stop (or the task's death) came first: queued for the loop,
    /// which resumes the task; the caller must not.
    Deferred,
}

#[cfg(test)]
mod tests {
    use crate::oracle::TracedSyscall;

    #[test]
    fn the_injected_calls_are_not_trapped_by_the_filter() {
        // An injected call that stopped at a seccomp stop would be taken
        // for one of the writer's own.
        for nr in [libc::SYS_userfaultfd, libc::SYS_close] {
            assert!(TracedSyscall::ALL.iter().all(|s| s.nr() != nr), "syscall {nr} is traced");
        }
    }
}
