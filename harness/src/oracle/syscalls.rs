//! The system calls the durability oracle traces, and the crash points
//! counted in them: numbers, names and kinds, as data.
//!
//! Architecture Invariant: pure.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::vocab::CrashWhen;

/// The syscalls the filter sends to the tracer: the syncs, the calls that
/// change the address space (for the maps cache), `ftruncate` (a crash-point
/// kind), `exit_group`, `io_uring_setup` (refused), and the calls that change
/// the watched tree's namespace or file sizes (`open*` with `O_CREAT`,
/// `O_TRUNC`, `O_TMPFILE` or a sync flag, `mkdir*`, `link*`, `rename*`, the
/// write family, ...) or that the oracle must refuse (`copy_file_range`,
/// `sendfile`, `splice`, cloning `ioctl`s).
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
    Open,
    Openat,
    Openat2,
    Creat,
    Mkdir,
    Mkdirat,
    Mknod,
    Mknodat,
    Symlink,
    Symlinkat,
    Link,
    Linkat,
    Unlink,
    Unlinkat,
    Rmdir,
    Rename,
    Renameat,
    Renameat2,
    Truncate,
    Fallocate,
    Write,
    Pwrite64,
    Writev,
    Pwritev,
    Pwritev2,
    CopyFileRange,
    Sendfile,
    Splice,
    Ioctl,
}

/// When the filter traps a syscall: always, or only for some argument
/// values (checked in the filter, so the other calls cost no stop).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trap {
    Always,
    /// The low 32 bits of argument `arg` have a bit of `mask` set.
    AnyBit {
        arg: u8,
        mask: u32,
    },
    /// The low 32 bits of argument `arg` are one of `values`.
    OneOf {
        arg: u8,
        values: &'static [u32],
    },
}

/// `open` flags that make an open matter to the namespace (create,
/// truncate, unnamed file) or to durability (synchronous writes through the
/// fd): `O_CREAT | O_TRUNC | __O_TMPFILE | O_DSYNC` (`O_SYNC` includes the
/// `O_DSYNC` bit). Not `O_TMPFILE` itself, which includes `O_DIRECTORY`:
/// every `opendir` would stop.
pub const OPEN_FLAGS_TRAPPED: u32 = 0o100 | 0o1000 | 0o20000000 | 0o10000;

/// The `ioctl` requests the oracle looks at (uapi `linux/fs.h`): the three
/// that share or move extents between files (refused) and the two that can
/// set `FS_SYNC_FL`/`FS_DIRSYNC_FL` (the flags are read again after them).
pub const FICLONE: u32 = 0x4004_9409;
pub const FICLONERANGE: u32 = 0x4020_940d;
pub const FIDEDUPERANGE: u32 = 0xc018_9436;
pub const FS_IOC_SETFLAGS: u32 = 0x4008_6602;
pub const FS_IOC_FSSETXATTR: u32 = 0x401c_5820;
const IOCTLS_TRAPPED: [u32; 5] = [FICLONE, FICLONERANGE, FIDEDUPERANGE, FS_IOC_SETFLAGS, FS_IOC_FSSETXATTR];

impl TracedSyscall {
    pub const ALL: [TracedSyscall; 44] = [
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
        TracedSyscall::Open,
        TracedSyscall::Openat,
        TracedSyscall::Openat2,
        TracedSyscall::Creat,
        TracedSyscall::Mkdir,
        TracedSyscall::Mkdirat,
        TracedSyscall::Mknod,
        TracedSyscall::Mknodat,
        TracedSyscall::Symlink,
        TracedSyscall::Symlinkat,
        TracedSyscall::Link,
        TracedSyscall::Linkat,
        TracedSyscall::Unlink,
        TracedSyscall::Unlinkat,
        TracedSyscall::Rmdir,
        TracedSyscall::Rename,
        TracedSyscall::Renameat,
        TracedSyscall::Renameat2,
        TracedSyscall::Truncate,
        TracedSyscall::Fallocate,
        TracedSyscall::Write,
        TracedSyscall::Pwrite64,
        TracedSyscall::Writev,
        TracedSyscall::Pwritev,
        TracedSyscall::Pwritev2,
        TracedSyscall::CopyFileRange,
        TracedSyscall::Sendfile,
        TracedSyscall::Splice,
        TracedSyscall::Ioctl,
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
            TracedSyscall::Open => libc::SYS_open,
            TracedSyscall::Openat => libc::SYS_openat,
            TracedSyscall::Openat2 => libc::SYS_openat2,
            TracedSyscall::Creat => libc::SYS_creat,
            TracedSyscall::Mkdir => libc::SYS_mkdir,
            TracedSyscall::Mkdirat => libc::SYS_mkdirat,
            TracedSyscall::Mknod => libc::SYS_mknod,
            TracedSyscall::Mknodat => libc::SYS_mknodat,
            TracedSyscall::Symlink => libc::SYS_symlink,
            TracedSyscall::Symlinkat => libc::SYS_symlinkat,
            TracedSyscall::Link => libc::SYS_link,
            TracedSyscall::Linkat => libc::SYS_linkat,
            TracedSyscall::Unlink => libc::SYS_unlink,
            TracedSyscall::Unlinkat => libc::SYS_unlinkat,
            TracedSyscall::Rmdir => libc::SYS_rmdir,
            TracedSyscall::Rename => libc::SYS_rename,
            TracedSyscall::Renameat => libc::SYS_renameat,
            TracedSyscall::Renameat2 => libc::SYS_renameat2,
            TracedSyscall::Truncate => libc::SYS_truncate,
            TracedSyscall::Fallocate => libc::SYS_fallocate,
            TracedSyscall::Write => libc::SYS_write,
            TracedSyscall::Pwrite64 => libc::SYS_pwrite64,
            TracedSyscall::Writev => libc::SYS_writev,
            TracedSyscall::Pwritev => libc::SYS_pwritev,
            TracedSyscall::Pwritev2 => libc::SYS_pwritev2,
            TracedSyscall::CopyFileRange => libc::SYS_copy_file_range,
            TracedSyscall::Sendfile => libc::SYS_sendfile,
            TracedSyscall::Splice => libc::SYS_splice,
            TracedSyscall::Ioctl => libc::SYS_ioctl,
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
            TracedSyscall::Open => "open",
            TracedSyscall::Openat => "openat",
            TracedSyscall::Openat2 => "openat2",
            TracedSyscall::Creat => "creat",
            TracedSyscall::Mkdir => "mkdir",
            TracedSyscall::Mkdirat => "mkdirat",
            TracedSyscall::Mknod => "mknod",
            TracedSyscall::Mknodat => "mknodat",
            TracedSyscall::Symlink => "symlink",
            TracedSyscall::Symlinkat => "symlinkat",
            TracedSyscall::Link => "link",
            TracedSyscall::Linkat => "linkat",
            TracedSyscall::Unlink => "unlink",
            TracedSyscall::Unlinkat => "unlinkat",
            TracedSyscall::Rmdir => "rmdir",
            TracedSyscall::Rename => "rename",
            TracedSyscall::Renameat => "renameat",
            TracedSyscall::Renameat2 => "renameat2",
            TracedSyscall::Truncate => "truncate",
            TracedSyscall::Fallocate => "fallocate",
            TracedSyscall::Write => "write",
            TracedSyscall::Pwrite64 => "pwrite64",
            TracedSyscall::Writev => "writev",
            TracedSyscall::Pwritev => "pwritev",
            TracedSyscall::Pwritev2 => "pwritev2",
            TracedSyscall::CopyFileRange => "copy_file_range",
            TracedSyscall::Sendfile => "sendfile",
            TracedSyscall::Splice => "splice",
            TracedSyscall::Ioctl => "ioctl",
        }
    }

    /// When the filter traps it.
    pub fn trap(self) -> Trap {
        match self {
            TracedSyscall::Open => Trap::AnyBit { arg: 1, mask: OPEN_FLAGS_TRAPPED },
            TracedSyscall::Openat => Trap::AnyBit { arg: 2, mask: OPEN_FLAGS_TRAPPED },
            TracedSyscall::Ioctl => Trap::OneOf { arg: 1, values: &IOCTLS_TRAPPED },
            _ => Trap::Always,
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

    /// Is it one the oracle always lists as a [`SyncEvent`]? (The
    /// address-space calls other than `munmap` are only bookkeeping for the
    /// maps cache; `exit_group` and `io_uring_setup` end the run; the
    /// namespace calls are listed only when they concern a watched file, see
    /// [`TracedSyscall::is_namespace`].)
    pub(super) fn recorded(self) -> bool {
        match self {
            TracedSyscall::Munmap | TracedSyscall::Ftruncate => true,
            TracedSyscall::ExitGroup | TracedSyscall::IoUringSetup => false,
            s if s.is_namespace() => false,
            s => !s.changes_maps(),
        }
    }

    /// Is it looked at for the namespace trace: a call that can create,
    /// name, remove or resize a watched file, write to one, or must be
    /// refused when it touches one? (`ftruncate` is one too, besides being
    /// a crash-point kind.)
    pub fn is_namespace(self) -> bool {
        !(self.is_sync()
            || self.changes_maps()
            || matches!(self, TracedSyscall::ExitGroup | TracedSyscall::IoUringSetup))
    }

    /// Is it a sync (may make something durable)?
    pub fn is_sync(self) -> bool {
        matches!(
            self,
            TracedSyscall::Msync
                | TracedSyscall::Fsync
                | TracedSyscall::Fdatasync
                | TracedSyscall::SyncFileRange
                | TracedSyscall::Syncfs
                | TracedSyscall::Sync
        )
    }

    /// The write family: a write may change a size, and is a sync through
    /// an `O_SYNC`/`O_DSYNC` descriptor.
    pub fn is_write(self) -> bool {
        matches!(
            self,
            TracedSyscall::Write
                | TracedSyscall::Pwrite64
                | TracedSyscall::Writev
                | TracedSyscall::Pwritev
                | TracedSyscall::Pwritev2
        )
    }
}

/// Is a call of `sys` with `args` a data sync, one `eio-sync` can fail:
/// `fsync`, `fdatasync`, or `msync` with `MS_SYNC` (an `MS_ASYNC` msync
/// starts no writeback since Linux 2.6.19, so it has none to fail)?
/// `syncfs`, `sync` and `sync_file_range` are not failed: they are not what
/// a program syncs its own data with, and `sync(2)` reports no error.
pub fn is_data_sync(sys: TracedSyscall, args: &[u64; 6]) -> bool {
    match sys {
        TracedSyscall::Fsync | TracedSyscall::Fdatasync => true,
        TracedSyscall::Msync => args[2] as i32 & libc::MS_SYNC != 0,
        _ => false,
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

/// Which calls a [`SyscallCrashPoint`] counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountedCalls {
    /// Every call of these kinds.
    Kinds(BTreeSet<CrashSyscall>),
    /// Every call the oracle records as an event (`OracleOutcome::events`):
    /// every sync, `munmap` and `ftruncate`, and every call that concerned
    /// a file of the watched tree (`open` creating or truncating one,
    /// `write`, `rename`, `unlink`, `fallocate`, ...). A `write` to a pipe
    /// (the acks) or to a file elsewhere does not count.
    Recorded,
}

/// How a crash point crashes the writer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashSignal {
    /// SIGKILL to every traced process: the run ends there.
    #[default]
    Kill,
    /// SIGABRT to the thread that made the call, as if it had arrived just
    /// before the call was made (the call is held back and restarted once
    /// the signal is handled: a handler that returns sees the call run) or
    /// just after it returned. The run goes on until the writer ends, of
    /// the signal or otherwise.
    Abort,
}

/// Crash the writer at the `nth` (1-based) call that `counted` counts,
/// across all threads and processes in the order the tracer sees their
/// entries. Calls made by the dynamic loader count too (`munmap` happens at
/// start-up).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyscallCrashPoint {
    pub nth: u64,
    pub counted: CountedCalls,
    pub when: CrashWhen,
    pub signal: CrashSignal,
}

impl SyscallCrashPoint {
    /// SIGKILL at the `nth` call of one of `kinds`.
    pub fn new(nth: u64, kinds: impl IntoIterator<Item = CrashSyscall>, when: CrashWhen) -> SyscallCrashPoint {
        SyscallCrashPoint {
            nth,
            counted: CountedCalls::Kinds(kinds.into_iter().collect()),
            when,
            signal: CrashSignal::Kill,
        }
    }

    /// `signal` at the `nth` call the oracle records, of any kind.
    pub fn at_recorded(nth: u64, when: CrashWhen, signal: CrashSignal) -> SyscallCrashPoint {
        SyscallCrashPoint { nth, counted: CountedCalls::Recorded, when, signal }
    }

    /// Does a call of `sys` (recorded as an event or not) count?
    pub(super) fn counts(&self, sys: TracedSyscall, recorded: bool) -> bool {
        match &self.counted {
            CountedCalls::Kinds(kinds) => CrashSyscall::of(sys).is_some_and(|k| kinds.contains(&k)),
            CountedCalls::Recorded => recorded,
        }
    }
}
