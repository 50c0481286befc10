//! The system calls the durability oracle traces, and the crash points
//! counted in them: numbers, names and kinds, as data.
//!
//! Architecture Invariant: pure.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::vocab::CrashWhen;

/// The syscalls the filter sends to the tracer: the syncs, the calls that
/// change the address space (for the maps cache), `ftruncate` (a crash-point
/// kind), `exit_group`, and `io_uring_setup` (refused).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TracedSyscall {
    Msync,
    Fsync,
    Fdatasync,
    SyncFileRange,
    Syncfs,
    Sync,
    Mmap,
    Munmap,
    Mremap,
    RemapFilePages,
    Shmat,
    Shmdt,
    Ftruncate,
    ExitGroup,
    IoUringSetup,
}

impl TracedSyscall {
    pub const ALL: [TracedSyscall; 15] = [
        TracedSyscall::Msync,
        TracedSyscall::Fsync,
        TracedSyscall::Fdatasync,
        TracedSyscall::SyncFileRange,
        TracedSyscall::Syncfs,
        TracedSyscall::Sync,
        TracedSyscall::Mmap,
        TracedSyscall::Munmap,
        TracedSyscall::Mremap,
        TracedSyscall::RemapFilePages,
        TracedSyscall::Shmat,
        TracedSyscall::Shmdt,
        TracedSyscall::Ftruncate,
        TracedSyscall::ExitGroup,
        TracedSyscall::IoUringSetup,
    ];

    /// The x86_64 syscall number.
    pub fn nr(self) -> i64 {
        match self {
            TracedSyscall::Msync => libc::SYS_msync,
            TracedSyscall::Fsync => libc::SYS_fsync,
            TracedSyscall::Fdatasync => libc::SYS_fdatasync,
            TracedSyscall::SyncFileRange => libc::SYS_sync_file_range,
            TracedSyscall::Syncfs => libc::SYS_syncfs,
            TracedSyscall::Sync => libc::SYS_sync,
            TracedSyscall::Mmap => libc::SYS_mmap,
            TracedSyscall::Munmap => libc::SYS_munmap,
            TracedSyscall::Mremap => libc::SYS_mremap,
            TracedSyscall::RemapFilePages => libc::SYS_remap_file_pages,
            TracedSyscall::Shmat => libc::SYS_shmat,
            TracedSyscall::Shmdt => libc::SYS_shmdt,
            TracedSyscall::Ftruncate => libc::SYS_ftruncate,
            TracedSyscall::ExitGroup => libc::SYS_exit_group,
            TracedSyscall::IoUringSetup => libc::SYS_io_uring_setup,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TracedSyscall::Msync => "msync",
            TracedSyscall::Fsync => "fsync",
            TracedSyscall::Fdatasync => "fdatasync",
            TracedSyscall::SyncFileRange => "sync_file_range",
            TracedSyscall::Syncfs => "syncfs",
            TracedSyscall::Sync => "sync",
            TracedSyscall::Mmap => "mmap",
            TracedSyscall::Munmap => "munmap",
            TracedSyscall::Mremap => "mremap",
            TracedSyscall::RemapFilePages => "remap_file_pages",
            TracedSyscall::Shmat => "shmat",
            TracedSyscall::Shmdt => "shmdt",
            TracedSyscall::Ftruncate => "ftruncate",
            TracedSyscall::ExitGroup => "exit_group",
            TracedSyscall::IoUringSetup => "io_uring_setup",
        }
    }

    /// The code carried in `SECCOMP_RET_DATA` (never 0, so that a stray
    /// trap from another filter is not mistaken for ours).
    pub(super) fn ret_data(self) -> u32 {
        TracedSyscall::ALL.iter().position(|&s| s == self).expect("listed") as u32 + 1
    }

    pub(super) fn from_ret_data(data: u32) -> Option<TracedSyscall> {
        (data as usize).checked_sub(1).and_then(|i| TracedSyscall::ALL.get(i).copied())
    }

    /// Does it change the address space (so the maps cache and the msyncs
    /// under way must hear of it)?
    pub(super) fn changes_maps(self) -> bool {
        matches!(
            self,
            TracedSyscall::Mmap
                | TracedSyscall::Munmap
                | TracedSyscall::Mremap
                | TracedSyscall::RemapFilePages
                | TracedSyscall::Shmat
                | TracedSyscall::Shmdt
        )
    }

    /// Is it one the oracle lists as a [`SyncEvent`]? (The address-space
    /// calls other than `munmap` are only bookkeeping for the maps cache;
    /// `exit_group` and `io_uring_setup` end the run.)
    pub(super) fn recorded(self) -> bool {
        match self {
            TracedSyscall::Munmap => true,
            TracedSyscall::ExitGroup | TracedSyscall::IoUringSetup => false,
            s => !s.changes_maps(),
        }
    }
}

/// The syscalls a [`SyscallCrashPoint`] can count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashSyscall {
    Msync,
    Fsync,
    Fdatasync,
    Ftruncate,
    Munmap,
}

impl CrashSyscall {
    pub const ALL: [CrashSyscall; 5] = [
        CrashSyscall::Msync,
        CrashSyscall::Fsync,
        CrashSyscall::Fdatasync,
        CrashSyscall::Ftruncate,
        CrashSyscall::Munmap,
    ];

    pub fn syscall(self) -> TracedSyscall {
        match self {
            CrashSyscall::Msync => TracedSyscall::Msync,
            CrashSyscall::Fsync => TracedSyscall::Fsync,
            CrashSyscall::Fdatasync => TracedSyscall::Fdatasync,
            CrashSyscall::Ftruncate => TracedSyscall::Ftruncate,
            CrashSyscall::Munmap => TracedSyscall::Munmap,
        }
    }

    pub(super) fn of(sys: TracedSyscall) -> Option<CrashSyscall> {
        CrashSyscall::ALL.into_iter().find(|c| c.syscall() == sys)
    }
}

/// Kill the whole traced tree (SIGKILL) at the `nth` (1-based) call whose
/// kind is in `kinds`, counted across all threads and processes in the order
/// the tracer sees their entries. Calls made by the dynamic loader count too
/// (`munmap` happens at start-up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallCrashPoint {
    pub nth: u64,
    pub kinds: BTreeSet<CrashSyscall>,
    pub when: CrashWhen,
}

impl SyscallCrashPoint {
    pub fn new(nth: u64, kinds: impl IntoIterator<Item = CrashSyscall>, when: CrashWhen) -> SyscallCrashPoint {
        SyscallCrashPoint { nth, kinds: kinds.into_iter().collect(), when }
    }
}
