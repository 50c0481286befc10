//! A full filesystem as the tracer sees it (`enospc`): the first traced
//! call on a watched file that failed with `ENOSPC` or `EDQUOT`, and the
//! first `SIGBUS` the kernel raised in a traced process (a store through a
//! `MAP_SHARED` mapping into a page the filesystem could not back: tmpfs's
//! `shmem_fault` returns `VM_FAULT_SIGBUS` when it cannot allocate, ext4's
//! `page_mkwrite` likewise, and the kernel sends `SIGBUS` with
//! `BUS_ADRERR` and `si_addr` the faulting address; `../shared/README.md`).
//!
//! Both are read at stops the tracer has anyway (a call's exit stop, a
//! signal-delivery stop), once per run, so they cost nothing until the
//! disk is full. The signal is delivered as it would be untraced.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use libc::pid_t;

use super::{Call, Tracer};
use crate::oracle::syscalls::is_data_sync;
use crate::oracle::{maps, paths, sys, NoSpaceCall, StoreFault, SyscallResult, TracedSyscall};

/// What the tracer saw of a full disk.
#[derive(Default)]
pub(super) struct FullDisk {
    pub(super) no_space: Option<NoSpaceCall>,
    pub(super) fault: Option<StoreFault>,
}

/// `path` relative to the watched directory `watch`, or as it is when
/// outside.
fn relative(path: &Path, watch: &Path) -> PathBuf {
    path.strip_prefix(watch).map(Path::to_path_buf).unwrap_or_else(|_| path.to_path_buf())
}

/// The file a mapping of `tgid` holds at `address`, and the address's
/// offset in it.
fn mapped_file(tgid: pid_t, address: u64) -> Option<(PathBuf, u64)> {
    let text = std::fs::read(format!("/proc/{tgid}/maps")).ok()?;
    let m = maps::parse_objects(&text).into_iter().find(|m| m.start <= address && address < m.end && m.inode != 0)?;
    Some((m.path, address - m.start + m.offset))
}

impl Tracer<'_> {
    /// At a recorded call's exit stop: the first `ENOSPC`/`EDQUOT`.
    pub(super) fn note_no_space(&mut self, tid: pid_t, tgid: pid_t, call: &Call, result: SyscallResult) {
        let (Some(event), SyscallResult::Failed { errno }) = (call.event, result) else { return };
        if self.full_disk.no_space.is_some() || (errno != libc::ENOSPC && errno != libc::EDQUOT) {
            return;
        }
        let a = &call.args;
        let fd_path = || {
            let link = std::fs::read_link(format!("/proc/{tid}/fd/{}", a[0])).ok()?;
            let (target, _deleted) = paths::link_target(link.as_os_str().as_bytes());
            Some(PathBuf::from(OsStr::from_bytes(target)))
        };
        let fd_pos = || {
            let text = std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{}", a[0])).ok()?;
            paths::parse_fdinfo(&text).map(|i| i.pos)
        };
        let (path, offset, len) = match call.sys {
            TracedSyscall::Write | TracedSyscall::Writev => (fd_path(), fd_pos(), Some(a[2])),
            TracedSyscall::Pwrite64 => (fd_path(), Some(a[3]), Some(a[2])),
            TracedSyscall::Pwritev | TracedSyscall::Pwritev2 => (fd_path(), Some(a[3]), None),
            TracedSyscall::Fallocate => (fd_path(), Some(a[2]), Some(a[3])),
            TracedSyscall::Ftruncate => (fd_path(), None, Some(a[1])),
            TracedSyscall::Fsync | TracedSyscall::Fdatasync | TracedSyscall::SyncFileRange => (fd_path(), None, None),
            TracedSyscall::Msync => match mapped_file(tgid, a[0]) {
                Some((p, off)) => (Some(p), Some(off), Some(a[1])),
                None => (None, None, Some(a[1])),
            },
            _ => (None, None, None),
        };
        let watch = self.ns.watch().to_path_buf();
        self.full_disk.no_space = Some(NoSpaceCall {
            event,
            syscall: call.sys,
            errno,
            path: path.map(|p| relative(&p, &watch)),
            offset,
            len,
            acks_before: self.attribution.lines(),
        });
    }

    /// A data sync (`fsync`, `fdatasync`, `msync(MS_SYNC)`) the kernel
    /// failed with a writeback error (`ENOSPC`, `EDQUOT`, `EIO`) made
    /// nothing durable (the oracle copies nothing for a failed call), and
    /// the failed writeback marked its pages clean: a later sync that
    /// returns 0 does not write them (vfs.rst, "Handling errors during
    /// writeback"; measured on ext4 and xfs with `ENOSPC` from the block
    /// layer: `harness/tests/failed_writeback_kernel.rs`). So its range is
    /// held at its floor as an injected `EIO`'s is (`failed_writeback.rs`),
    /// until a store shows the page dirtied again. tmpfs never fails a sync.
    pub(super) fn hold_failed_writeback(&mut self, tid: pid_t, tgid: pid_t, call: &Call, result: SyscallResult) {
        let SyscallResult::Failed { errno } = result else { return };
        if ![libc::ENOSPC, libc::EDQUOT, libc::EIO].contains(&errno) || !is_data_sync(call.sys, &call.args) {
            return;
        }
        self.failed_ranges(tid, tgid, call.sys, &call.args);
    }

    /// At a signal-delivery stop: the first kernel-raised `SIGBUS`, then the
    /// signal goes on to the tracee.
    pub(super) fn on_signal(&mut self, tid: pid_t, sig: i32) -> Result<(), crate::oracle::OracleError> {
        if sig == libc::SIGBUS && self.full_disk.fault.is_none() {
            self.note_store_fault(tid);
        }
        self.resume(tid, sig)
    }

    fn note_store_fault(&mut self, tid: pid_t) {
        let Ok(info) = sys::get_siginfo(tid) else { return };
        // si_code > 0: raised by the kernel (a fault), not sent by a process.
        if info.si_code <= 0 {
            return;
        }
        // SAFETY: a kernel-raised SIGBUS carries the fault fields.
        let address = unsafe { info.si_addr() } as u64;
        let tgid = self.tasks.get(&tid).map_or(tid, |t| t.tgid);
        let pc = sys::get_regs(tid).map_or(0, |r| r.rip);
        let (path, file_offset) = match mapped_file(tgid, address) {
            Some((p, off)) => (Some(relative(&p, self.ns.watch())), Some(off)),
            None => (None, None),
        };
        let stack = self.capture_stack(tid);
        self.full_disk.fault = Some(StoreFault {
            pid: tgid,
            tid,
            code: info.si_code,
            address,
            path,
            file_offset,
            pc,
            stack,
            acks_before: self.attribution.lines(),
        });
    }
}
