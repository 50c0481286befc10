//! The durability oracle: simulated power loss for *any* writer program, with
//! no root and no kernel module.
//!
//! [`run_traced`] runs a program under a tracer that sees only the
//! sync-relevant and namespace syscalls (a seccomp filter returns
//! `SECCOMP_RET_TRACE` for them and `SECCOMP_RET_ALLOW` for everything else;
//! ptrace receives the traps). Whenever a sync **returns successfully**, the
//! tracer copies what it covered, read from the page cache at that instant,
//! into a **durable shadow** of the file. After the run, the shadow of each file under the
//! watched directory is the lower bound of what a power loss at the end of
//! the run (or at the chosen crash point) is guaranteed to leave; the caller
//! reads the current page-cache content itself, and the power-loss model
//! allows any page between the two (floor = shadow page, newest = current).
//! With [`OracleConfig::history`], the oracle also records the versions in
//! between ([`crate::page_history`], `history.rs`): at every trapped call's
//! entry (and on `history_every` ticks, `ticker.rs`) it reads the watched
//! files that can have changed (mapped shared by a traced process, or
//! written or resized by a traced call) and keeps each page that changed
//! since the last read; a completed sync covering a page makes its versions obsolete.
//!
//! What each syscall contributes:
//!
//! | syscall (returned 0) | made durable |
//! |---|---|
//! | `msync(MS_SYNC)` | the page-rounded range, resolved through `/proc/PID/maps` to (file, offset); only `MAP_SHARED` file mappings; several mappings may be covered |
//! | `msync(MS_ASYNC)` / no `MS_SYNC` | nothing (`MS_ASYNC` is a no-op since Linux 2.6.19) |
//! | `fsync(fd)` / `fdatasync(fd)` | the whole file and its size |
//! | `syncfs(fd)` | every file the oracle holds on the fd's filesystem (same `st_dev`); the whole namespace when it is the watched directory's |
//! | `sync()` | every file the oracle holds, and the whole namespace |
//! | `sync_file_range` | nothing, but recorded: it flushes neither metadata nor the disk's cache, so counting it as durable would be unsound |
//! | a failed sync, or one in flight at the crash | nothing |
//! | a `write`/`pwrite64`/`writev`/`pwritev`/`pwritev2` through an `O_SYNC`/`O_DSYNC` fd (or with `RWF_SYNC`/`RWF_DSYNC`, or to an `FS_SYNC_FL` inode or a `sync` mount) | the written range, and the file's size |
//! | `fsync`/`fdatasync` of a directory | its entries (namespace trace only) |
//!
//! The evidence of each row: `msync(2)` and mm/msync.c (`MS_SYNC` runs
//! `vfs_fsync_range(.., datasync=1)` on the range; `MS_ASYNC` does nothing
//! since 2.6.19); `fsync(2)`/`fdatasync(2)` (the file's data and the
//! metadata a read needs, its size included: so the size an msync or an
//! fdatasync records is the file's size then, not the end of the range;
//! real cuts: `grow+msync` kept the whole grown size in 100/100 cuts per
//! filesystem, `reports/SOUNDNESS.md`); `sync(2)`/`syncfs(2)`;
//! `sync_file_range(2)` ("none of these operations writes out the file's
//! metadata"); `open(2)` for `O_SYNC`/`O_DSYNC` ("by the time write(2)
//! returns, the output data has been transferred ... along with any file
//! metadata that would be required to retrieve that data") and `pwritev2(2)`
//! for `RWF_DSYNC`/`RWF_SYNC`; `fsync(2)` again for a directory ("an explicit
//! fsync() on a file descriptor for the directory is also needed"), and
//! `mount(8)` (`dirsync`: "all directory updates within the filesystem
//! should be done synchronously") with `chattr(1)` (`D`) for synchronous
//! directories. A synchronous write copies the whole pages it touches,
//! as msync does: writeback writes whole pages (mm/filemap.c writes the
//! folios that intersect the range).
//!
//! The shadow is deliberately a *lower bound*: msync of one page may write a
//! whole large folio, filesystems commit more than asked; the model must
//! allow "more survived" (see `/work/shared/README.md`).
//!
//! ## The namespace
//!
//! Files are inodes: every file of the watched tree gets a [`FileId`] the
//! first time the oracle sees it (at start, or when the writer creates it),
//! one per inode *life*, and shadows are kept per `FileId` (a file replaced
//! under the same name is another file; a renamed file keeps its shadow).
//! The oracle holds a read-only descriptor to each (`namespace_log.rs`
//! explains why). The calls that change the tree or a size (`open*`/`creat`
//! with `O_CREAT`/`O_TRUNC`/`O_TMPFILE`, `mkdir*`, `mknod*`, `symlink*`,
//! `link*`, `unlink*`, `rmdir`, `rename*`, `truncate`, `ftruncate`,
//! `fallocate`, the write family) are recorded at their exit stop as
//! [`NsOp`](crate::namespace::NsOp)s when they succeeded and concern the
//! tree, with the syncs (`SyncData`, `SyncFile`, `SyncDir`, `SyncAll`), in
//! [`OracleOutcome::namespace`]; the end content of every file is read
//! through the held descriptor into [`OracleOutcome::inodes`].
//!
//! Refused, like io_uring (the writer is killed, the run ends with
//! [`OracleError::Unsupported`]): `copy_file_range`, `sendfile` and `splice`
//! into a watched file, `FICLONE`/`FICLONERANGE`/`FIDEDUPERANGE` on one,
//! `fallocate` with `FALLOC_FL_COLLAPSE_RANGE`/`FALLOC_FL_INSERT_RANGE`,
//! `renameat2` with `RENAME_EXCHANGE`/`RENAME_WHITEOUT`, `mknod` of
//! anything but a regular file, a file moved in from outside over an
//! existing one, a non-empty directory moved in, `openat2` with
//! `RESOLVE_IN_ROOT` that creates. Not seen at all: `io_submit` (Linux AIO)
//! writes, `open_by_handle_at`, and changes made by processes the oracle
//! does not trace.
//!
//! ## How a run works
//!
//! 1. The watched directory is snapshotted: each file gets its `FileId` and
//!    a held descriptor, each regular file's content is read.
//! 2. The calling thread forks a *launcher*: a tiny process that becomes a
//!    child subreaper, blocks every catchable signal, forks the writer,
//!    reports its pid and then only reaps (`wait4(-1)`) until it has no
//!    children left. Every process of the writer's tree is thus reaped by
//!    someone who is alive, even when a crash point kills parent and child
//!    together (PID 1 on this machine reaps orphans only every few seconds).
//! 3. The writer blocks on a pipe; the calling thread `PTRACE_SEIZE`s it with
//!    `EXITKILL | TRACESECCOMP | TRACECLONE | TRACEFORK | TRACEVFORK |
//!    TRACEVFORKDONE | TRACEEXEC | TRACESYSGOOD`, then releases it. Only then
//!    does the writer install the filter and `execve`: a filter that returns
//!    `SECCOMP_RET_TRACE` with no tracer attached makes the syscalls fail
//!    with ENOSYS (measured here).
//! 4. The tracer loop runs on the calling thread (a ptrace tracer is a
//!    thread) until the launcher is reaped, which happens only after every
//!    traced task's death was collected.
//!
//! Between the fork and the `execve`, the launcher and the writer make only
//! raw, async-signal-safe calls on data built before the fork (the caller is
//! multithreaded; another thread may hold the allocator's lock).
//!
//! ## Stops, threads and the maps cache
//!
//! A trapped call first stops at seccomp entry (the tracer counts it, may
//! crash there, and records what it needs to check the call later), then,
//! resumed with `PTRACE_SYSCALL`, at syscall exit, where the tracer reads the
//! result with `PTRACE_GET_SYSCALL_INFO`. Before copying for a successful
//! sync, every other traced task is stopped (`PTRACE_INTERRUPT`, then waiting
//! for each one's next stop, whose handling is deferred until after the
//! copy): a thread or process storing into the file during the copy would
//! make the shadow claim data no sync covered.
//!
//! A crash point ([`SyscallCrashPoint`]) counts calls of some kinds, or
//! every call recorded as an event, and strikes at the chosen one's seccomp
//! stop (before) or exit stop (after). [`CrashSignal::Kill`] kills every
//! traced task there. [`CrashSignal::Abort`] sends SIGABRT to the calling
//! thread alone and lets the run go on: after the call, the signal is
//! pending when the thread returns to user space, so it is taken before the
//! next instruction; before the call, the call is held back (syscall number
//! -1 at the seccomp stop: the kernel skips it) and at its exit stop given
//! back its number with the return value `-ERESTARTNOINTR`, which the
//! kernel's signal delivery turns into a restart of the call after the
//! handler (arch/x86/kernel/signal.c), so the writer sees what a signal
//! arriving just before the `syscall` instruction would have done.
//!
//! `/proc/PID/maps` is read at most once per address-space change: the
//! cache of an address space (processes sharing one are grouped with
//! `kcmp(KCMP_VM)`) is dropped when an `mmap`, `munmap`, `mremap`,
//! `remap_file_pages`, `shmat` or `shmdt` enters or returns, or at `execve`.
//! The maps are read at the msync's exit stop, so they are only right if
//! nothing changed what the synced range maps to while msync ran: an
//! `msync` copies nothing (`Ambiguous`) if a call that can *replace or
//! remove* a mapping over its range (`munmap`, `MAP_FIXED` mmap, `mremap`'s
//! old or fixed new range, `remap_file_pages`, `shmat(SHM_REMAP)`) was
//! under way at its entry or entered before its exit. Calls that only take
//! free space cannot matter: a successful `MS_SYNC` range had no hole.
//! Likewise an `fsync` whose fd named another inode at entry and at exit
//! copies nothing.
//!
//! ## Call stacks (source attribution)
//!
//! With [`OracleConfig::stacks`], the tracer captures the writer's
//! user-space call stack (`stack.rs`: DWARF CFI unwinding through
//! `framehop`, frame-pointer fallback, at most 32 frames, every read
//! bounded) at the seccomp stop of every sync call ([`SyncEvent::stack`])
//! and of every `write`/`writev` to fd 1 that completes ack lines
//! ([`OracleOutcome::ack_stacks`], numbered by the newlines written,
//! `tracer/attribution.rs`). Frames are plain data ([`Frame`]: object file
//! and offset), symbolized after the run by `crate::symbolize`. Cost,
//! measured on the msync-per-op benchmark (release build, loaded 2-core
//! machine): about 6.5 µs per stack inside the tracer (`PTRACE_GETREGS`
//! 1.7 µs, about 1.3 page-sized stack reads and the unwind 4.1 µs), so
//! 26–36 → 29–50 µs per traced msync on tmpfs, where nothing hides the
//! tracer, and a few percent on ext4, where an `MS_SYNC` costs 200+ µs.
//! Hence off by default, and on for `run --writer`'s power-loss trials,
//! whose reports use it.
//!
//! ## Requirements on the caller
//!
//! Run [`run_traced`] on a thread that has no other unreaped children and
//! that nobody else `waitpid(-1)`s for: the tracer collects with
//! `waitpid(-1, __WALL | __WNOTHREAD)`. Use a [`TraceControl`] from another
//! thread to crash the writer at a random time. If the writer's stdout goes
//! to a pipe, read it concurrently when it can exceed the pipe's buffer.
//!
//! Architecture Invariant: the oracle never `fsync`s, `sync`s or writes any
//! file of the writer; it only reads them.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

mod address_space;
pub mod bench;
mod failed_writeback;
mod filter;
mod history;
mod launch;
pub mod maps;
mod namespace_log;
mod paths;
mod shadow;
pub mod stack;
mod sys;
pub mod syscalls;
mod ticker;
mod tracer;
mod uffd;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::namespace::trace::{FileId, NamespaceTrace};
use crate::page_history::{HistoryMethod, HistoryStats, PageVersion};
use crate::vocab::CrashWhen;

pub use namespace_log::{MAX_FILES, MAX_NEWEST_BYTES};
pub use shadow::FileShadow;
pub use syscalls::{CountedCalls, CrashSignal, CrashSyscall, SyscallCrashPoint, TracedSyscall};

/// What the oracle watches and where it crashes the writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OracleConfig {
    /// Only files under this directory get shadows.
    pub watch_dir: PathBuf,
    /// Do the files present at start count as durable (e.g. the caller
    /// fsynced them before the run)? If not, their pages have no floor until
    /// a sync covers them, and their size is unknown until an fsync.
    pub assume_initial_durable: bool,
    /// `None`: run to the end (or until [`TraceControl::cancel`]).
    pub crash: Option<SyscallCrashPoint>,
    /// When the writer's first process ends (exit or signal, e.g. a kill
    /// from another thread), SIGKILL whatever it left running, so that the
    /// run ends at one instant. Default `true`.
    pub end_with_root: bool,
    /// Record the write history ([`crate::page_history`]): the versions
    /// each page held since its floor, read at every trapped call's entry.
    /// Default `false` (it reads every watched file at every stop).
    #[serde(default)]
    pub history: bool,
    /// With `history`: also stop every task on this period and read the
    /// files there (`--history-every`), for writers that store much
    /// between calls. Between [`crate::page_history::MIN_HISTORY_EVERY_US`]
    /// and [`crate::page_history::MAX_HISTORY_EVERY_US`] microseconds.
    #[serde(default)]
    pub history_every: Option<std::time::Duration>,
    /// Capture the writer's call stack at every sync call and every ack
    /// (a `write`/`writev` to fd 1), for source attribution
    /// ([`SyncEvent::stack`], [`OracleOutcome::ack_stacks`]). Default
    /// `false` (it costs a register read, a stack read and an unwind per
    /// such call); `run --writer` turns it on.
    #[serde(default)]
    pub stacks: bool,
    /// `eio-sync`: make one data sync fail with `EIO` without running it,
    /// and maybe cut the power at a later one (`tracer/fault_injection.rs`).
    #[serde(default)]
    pub fail_sync: Option<SyncFailure>,
    /// The writer runs in the mount namespace of this process (`enospc`:
    /// the capacity helper's, where a small filesystem covers the watched
    /// directory; the launch `setns`es into it, [`TracedLaunch::namespaces`]).
    /// The watched directory is then opened through `/proc/PID/root` and
    /// its mounts read from `/proc/PID/mountinfo`: crashlab's own view of
    /// that path is the directory beneath the mount.
    #[serde(default)]
    pub mount_namespace_of: Option<i32>,
}

/// The data sync to fail, and where to cut the power after it. Data syncs
/// are counted across every traced task in the order the tracer sees their
/// entries: `fsync`, `fdatasync` and `msync` with `MS_SYNC`
/// ([`syscalls::is_data_sync`]), whatever file they name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncFailure {
    /// The data sync (1-based) that fails with `EIO`.
    pub nth: u64,
    /// Kill every traced task just before data sync `cut_before` (> `nth`):
    /// the power cut ([`WriterEnd::CrashPoint`]); `None`: the writer runs
    /// to its end.
    pub cut_before: Option<u64>,
}

/// The data sync the oracle made fail (`eio-sync`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InjectedFailure {
    /// Its number among the data syncs ([`SyncFailure::nth`]).
    pub nth: u64,
    pub syscall: TracedSyscall,
    /// Index into [`OracleOutcome::events`].
    pub event: usize,
    /// The ranges of watched files it covered (`len` clipped at the file's
    /// end then), and the pages it left uncertain
    /// (`failed_writeback.rs`; none without the write history).
    pub covered: Vec<FailedRange>,
    /// Ack lines the writer had completed before the call (counted with
    /// [`OracleConfig::stacks`] only; 0 otherwise).
    pub acks_before: u64,
    /// Later completed syncs that covered part of what it covered (retries),
    /// and of those, the ones that found some of its pages clean and did
    /// not write them (left out of their [`SyncEvent::copied`]).
    #[serde(default)]
    pub retries: u64,
    #[serde(default)]
    pub found_clean: u64,
}

/// A range of one file a failed sync covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedRange {
    pub file: FileId,
    /// Relative to the watched directory, at the call.
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
    pub uncertain_pages: Vec<u64>,
}

impl OracleConfig {
    pub fn new(watch_dir: impl Into<PathBuf>) -> OracleConfig {
        OracleConfig {
            watch_dir: watch_dir.into(),
            assume_initial_durable: true,
            crash: None,
            end_with_root: true,
            history: false,
            history_every: None,
            stacks: false,
            fail_sync: None,
            mount_namespace_of: None,
        }
    }

    fn validate(&self) -> Result<(), OracleError> {
        if let Some(c) = &self.crash {
            if c.nth == 0 {
                return Err(OracleError::Invalid("the crash point's nth is 1-based; 0 was given".into()));
            }
            if matches!(&c.counted, CountedCalls::Kinds(k) if k.is_empty()) {
                return Err(OracleError::Invalid("the crash point counts no syscall kind".into()));
            }
        }
        if let Some(f) = self.fail_sync {
            if f.nth == 0 || f.cut_before.is_some_and(|c| c <= f.nth) {
                return Err(OracleError::Invalid(format!(
                    "the failed sync is 1-based and the power cut comes after it: {f:?}"
                )));
            }
        }
        if let Some(every) = self.history_every {
            use crate::page_history::{MAX_HISTORY_EVERY_US, MIN_HISTORY_EVERY_US};
            let us = every.as_micros() as u64;
            if !self.history {
                return Err(OracleError::Invalid("a history period was given without recording the history".into()));
            }
            if !(MIN_HISTORY_EVERY_US..=MAX_HISTORY_EVERY_US).contains(&us) {
                return Err(OracleError::Invalid(format!(
                    "the history period of {us} µs is outside {MIN_HISTORY_EVERY_US}..={MAX_HISTORY_EVERY_US} µs"
                )));
            }
        }
        Ok(())
    }
}

/// How to start the writer. File descriptors are borrowed: they must stay
/// open until [`run_traced`] returns, and must be ≥ 3 unless equal to their
/// target (dup2 happens in order 0, 1, 2).
#[derive(Debug, Clone)]
pub struct TracedLaunch<'fd> {
    /// Path to the program; a name without `/` is looked up in `PATH`.
    pub program: PathBuf,
    /// `argv[1..]` (`argv[0]` is `program`).
    pub args: Vec<OsString>,
    /// `None`: inherit the caller's environment; `Some`: exactly these.
    pub env: Option<Vec<(OsString, OsString)>>,
    pub cwd: Option<PathBuf>,
    /// `None`: inherit the caller's.
    pub stdin: Option<BorrowedFd<'fd>>,
    pub stdout: Option<BorrowedFd<'fd>>,
    pub stderr: Option<BorrowedFd<'fd>>,
    /// Put the writer in a new process group (its pid), e.g. so that a
    /// terminal's Ctrl-C does not reach it.
    pub new_process_group: bool,
    /// Namespaces the writer enters (`setns`, in this order, after the
    /// tracer seized it and before its `chdir`): e.g. `/proc/PID/ns/user`
    /// then `/proc/PID/ns/mnt` of the capacity helper. Empty: crashlab's.
    pub namespaces: Vec<BorrowedFd<'fd>>,
}

impl<'fd> TracedLaunch<'fd> {
    pub fn new(program: impl Into<PathBuf>) -> TracedLaunch<'fd> {
        TracedLaunch {
            program: program.into(),
            args: Vec::new(),
            env: None,
            cwd: None,
            stdin: None,
            stdout: None,
            stderr: None,
            new_process_group: false,
            namespaces: Vec::new(),
        }
    }

    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_owned());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    pub fn stdout(mut self, fd: BorrowedFd<'fd>) -> Self {
        self.stdout = Some(fd);
        self
    }

    pub fn stderr(mut self, fd: BorrowedFd<'fd>) -> Self {
        self.stderr = Some(fd);
        self
    }

    pub fn stdin(mut self, fd: BorrowedFd<'fd>) -> Self {
        self.stdin = Some(fd);
        self
    }

    pub fn new_process_group(mut self, yes: bool) -> Self {
        self.new_process_group = yes;
        self
    }
}

/// Shared between the tracer thread and any other thread: lets another
/// thread crash the writer at an arbitrary moment. One per run.
///
/// A plain `AtomicBool` would not do: the tracer sleeps in `waitpid` while
/// the writer runs between traps, and nothing would wake it. `cancel` kills
/// every traced process through pidfds (immune to pid reuse), which wakes
/// the tracer with their deaths.
#[derive(Debug, Default)]
pub struct TraceControl {
    cancelled: AtomicBool,
    writer: AtomicI32,
    pidfds: Mutex<Vec<(i32, OwnedFd)>>,
}

impl TraceControl {
    pub fn new() -> TraceControl {
        TraceControl::default()
    }

    /// The writer's pid once it is traced (also its process group when
    /// `new_process_group`).
    pub fn writer_pid(&self) -> Option<i32> {
        match self.writer.load(Ordering::SeqCst) {
            0 => None,
            p => Some(p),
        }
    }

    /// SIGKILL every traced process now. The run then ends with
    /// [`WriterEnd::Cancelled`]; before the writer started, with
    /// [`OracleError::Cancelled`].
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let fds = self.pidfds.lock().unwrap_or_else(|p| p.into_inner());
        for (_, fd) in fds.iter() {
            use std::os::fd::AsFd;
            // ESRCH: already dead; the tracer sees that anyway.
            let _ = sys::pidfd_kill(fd.as_fd());
        }
    }

    /// Send `sig` to every traced process now (e.g. SIGABRT: the tracer
    /// passes it on, and the run goes on until the writer ends). False when
    /// no process is traced yet (the writer has not started), so nothing
    /// was sent.
    pub fn signal(&self, sig: i32) -> bool {
        let fds = self.pidfds.lock().unwrap_or_else(|p| p.into_inner());
        for (_, fd) in fds.iter() {
            use std::os::fd::AsFd;
            // ESRCH: already dead; the tracer sees that anyway.
            let _ = sys::pidfd_signal(fd.as_fd(), sig);
        }
        !fds.is_empty()
    }

    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    fn register(&self, pid: i32, fd: OwnedFd) {
        self.pidfds.lock().unwrap_or_else(|p| p.into_inner()).push((pid, fd));
    }

    fn unregister(&self, pid: i32) {
        self.pidfds.lock().unwrap_or_else(|p| p.into_inner()).retain(|(p, _)| *p != pid);
    }
}

/// How a traced syscall returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyscallResult {
    Returned {
        value: i64,
    },
    Failed {
        errno: i32,
    },
    /// The task died (crash point, cancel, another thread's exit) before the
    /// call returned.
    InFlight,
}

/// Why a sync made nothing durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoGuarantee {
    /// It returned an error (an msync stopped by a hole may have flushed a
    /// prefix; nothing is *guaranteed*).
    Failed,
    /// It had not returned when the writer died.
    InFlight,
    /// `msync` without `MS_SYNC` (a no-op since Linux 2.6.19).
    NoMsSync,
    /// `sync_file_range` flushes neither metadata nor the disk cache.
    SyncFileRange,
    /// What it covered lies outside the watched directory, or in private or
    /// anonymous mappings, or is empty.
    NothingWatched,
    /// The oracle cannot tell what it covered (the address space or the fd
    /// changed while it ran; a copy failed): it claims nothing.
    Ambiguous { detail: String },
}

/// What a traced call did to the durable shadows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncEffect {
    /// Not a sync (`munmap`, `ftruncate`, the namespace calls, a write
    /// through a descriptor that is not synchronous).
    NotASync,
    /// The ranges in [`SyncEvent::copied`] became durable.
    Copied,
    /// Directory entries became durable and no file content was copied (an
    /// `fsync` of a directory; a `sync`/`syncfs` with no regular file to
    /// copy): see [`OracleOutcome::namespace`].
    EntriesSynced,
    NoGuarantee(NoGuarantee),
}

/// A range copied into a shadow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopiedRange {
    /// The file (its shadow is [`OracleOutcome::inodes`]`[file]`).
    pub file: FileId,
    /// Its path relative to the watched directory at the copy, by the
    /// entries the trace implies; empty for a file that had no name there
    /// (unlinked, or moved out).
    pub path: PathBuf,
    pub offset: u64,
    /// Bytes copied (clipped at the file's end at that instant).
    pub len: u64,
    /// The durable size it set (whole-file syncs only).
    pub size: Option<u64>,
}

/// One traced call, in the order the tracer saw the entries: every sync,
/// `munmap` and `ftruncate` (the crash-point kinds), and each namespace call
/// (`open` that creates or truncates, `mkdir`, `rename`, a write, ...) that
/// concerned a file of the watched tree; a `write` to a pipe or to a file
/// elsewhere is not listed. At most [`MAX_EVENTS`] per run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncEvent {
    /// Its index in [`OracleOutcome::events`]; the namespace trace's
    /// [`crate::namespace::NsEvent::call`] is this number.
    pub seq: u64,
    /// Process (thread group) and thread.
    pub pid: i32,
    pub tid: i32,
    pub syscall: TracedSyscall,
    /// The raw arguments (msync: addr, len, flags; fsync: fd; ...).
    pub args: [u64; 6],
    /// Its 1-based count among the crash point's kinds (all
    /// [`CrashSyscall`] kinds when there is no crash point).
    pub ordinal: Option<u64>,
    pub result: SyscallResult,
    /// For fd-based syncs: the file the fd named (absolute).
    pub file: Option<PathBuf>,
    pub effect: SyncEffect,
    pub copied: Vec<CopiedRange>,
    /// The writer's call stack at the call's entry, innermost first (sync
    /// calls only, with [`OracleConfig::stacks`]).
    #[serde(default)]
    pub stack: Vec<Frame>,
}

/// One frame of a writer's user-space call stack, as plain data: resolved
/// to an object file and an offset in it at capture, symbolized after the
/// run (`crate::symbolize`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Frame {
    /// The address looked up: the instruction pointer for the innermost
    /// frame; for the others, the byte before the return address (inside
    /// the call instruction, so that the line is the call's).
    pub address: u64,
    /// The mapped object as `/proc/PID/maps` named it (a path, or a
    /// pseudo-object like `[vdso]`); empty when no mapping holds `address`.
    pub object: PathBuf,
    /// `address` as an offset in `object`'s file (from the pseudo-object's
    /// start for a pseudo-object; `address` itself when no mapping holds it).
    pub offset: u64,
}

/// The stack of the write that completed ack lines `first_line..=last_line`
/// (1-based, counting every `\n` the writer's processes wrote to their fd 1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckStack {
    pub first_line: u64,
    pub last_line: u64,
    pub stack: Vec<Frame>,
}

/// The most [`AckStack`]s one run records; beyond, the run goes on and
/// [`OracleOutcome::ack_stacks_dropped`] says how many were not recorded.
pub const MAX_ACK_STACKS: usize = 100_000;

/// The crash point that struck (and, with [`CrashSignal::Kill`], ended the
/// run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrashHit {
    pub nth: u64,
    pub syscall: TracedSyscall,
    pub when: CrashWhen,
    pub signal: CrashSignal,
    pub tid: i32,
    /// Index into [`OracleOutcome::events`].
    pub event: usize,
}

/// How the writer ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriterEnd {
    /// Its first process exited (with `end_with_root`, anything it left
    /// running was then killed).
    Exited { code: i32 },
    /// Its first process died of a signal we did not send.
    Signaled { signal: i32 },
    /// Killed by our crash point ([`CrashSignal::Kill`]; after a
    /// [`CrashSignal::Abort`] the writer ends as it ends, see
    /// [`OracleOutcome::crash`]).
    CrashPoint(CrashHit),
    /// Killed through [`TraceControl::cancel`].
    Cancelled,
}

/// The most [`SyncEvent`]s one run may record (about 200 bytes each): a
/// writer that makes more traced calls on watched files fails with
/// [`OracleError::Limit`] instead of exhausting memory.
pub const MAX_EVENTS: usize = 2_000_000;

/// One regular file of the run at its end: what a power loss is guaranteed
/// to leave of its content (the floor) and what the page cache held (the
/// newest), for the power-loss model to choose between page by page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InodeImage {
    /// The durable floor, built from the content at start and the ranges
    /// completed syncs covered.
    pub shadow: FileShadow,
    /// Its whole content when the run ended, read through the oracle's
    /// descriptor (so also for a file with no name left). All images of a
    /// run add up to at most [`MAX_NEWEST_BYTES`].
    pub newest: Vec<u8>,
    /// With [`OracleConfig::history`]: the versions its pages held between
    /// their floor and the end (by page, then in the order seen; a page's
    /// newest content is [`InodeImage::newest`], not repeated here).
    #[serde(default)]
    pub history: Vec<PageVersion>,
    /// With the history and [`OracleConfig::stacks`]: per page changed
    /// since its floor, where the writer was when the oracle first saw it
    /// changed (page, index into [`OracleOutcome::change_stacks`]), by page.
    #[serde(default)]
    pub first_changed: Vec<(u64, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OracleOutcome {
    pub writer_pid: i32,
    /// The launcher (reaper) process; gone when `run_traced` returns.
    pub launcher_pid: i32,
    pub end: WriterEnd,
    /// The crash point that struck, if one did (whatever the end).
    pub crash: Option<CrashHit>,
    pub events: Vec<SyncEvent>,
    /// A view by path of the shadows at the end: every regular file under
    /// the watched directory when the run ended, by relative path, with the
    /// shadow of the file that path names then (a file replaced under the
    /// same name has the new file's shadow; a file made by another program
    /// has an empty one). Files with no name at the end are only in
    /// [`OracleOutcome::inodes`].
    pub files: BTreeMap<PathBuf, FileShadow>,
    /// What the writer did to the watched tree: its files (one
    /// [`FileId`] per inode life), the tree at start, and the entry and size
    /// operations and syncs in the order their calls returned.
    pub namespace: NamespaceTrace,
    /// Every regular file of [`OracleOutcome::namespace`] (unlinked ones
    /// included): its shadow and its end content.
    pub inodes: BTreeMap<FileId, InodeImage>,
    pub page_size: u64,
    /// Every traced process (the writer first).
    pub processes: Vec<i32>,
    /// Number of traced tasks (threads of all processes).
    pub threads: usize,
    /// Processes still running when the run ended and killed by us.
    pub leftovers_killed: usize,
    pub stats: TraceStats,
    /// How the write history was recorded, and what that found and cost.
    pub history_method: HistoryMethod,
    pub history: HistoryStats,
    /// With [`OracleConfig::stacks`]: the stack of each write to fd 1 that
    /// completed ack lines, in line order, at most [`MAX_ACK_STACKS`].
    #[serde(default)]
    pub ack_stacks: Vec<AckStack>,
    /// Writes that completed ack lines past [`MAX_ACK_STACKS`], whose
    /// stacks were not recorded.
    #[serde(default)]
    pub ack_stacks_dropped: u64,
    /// The stacks [`InodeImage::first_changed`] points to: the writer's
    /// stack at each stop where some page was first seen changed since its
    /// floor (at most [`MAX_ACK_STACKS`]; later first changes get none).
    #[serde(default)]
    pub change_stacks: Vec<Vec<Frame>>,
    /// With [`OracleConfig::fail_sync`]: the call made to fail, if the
    /// writer made that many data syncs.
    #[serde(default)]
    pub injected: Option<InjectedFailure>,
    /// The first traced call on a watched file that failed with `ENOSPC`
    /// or `EDQUOT` (`tracer/full_disk.rs`).
    #[serde(default)]
    pub no_space: Option<NoSpaceCall>,
    /// The first `SIGBUS` raised by the kernel in a traced process (a store
    /// into a page the filesystem could not back), where it struck.
    #[serde(default)]
    pub store_fault: Option<StoreFault>,
}

/// A traced call that failed because the filesystem was full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoSpaceCall {
    /// Index into [`OracleOutcome::events`].
    pub event: usize,
    pub syscall: TracedSyscall,
    pub errno: i32,
    /// The file it was on, relative to the watched directory (through its
    /// fd, or its mapping for `msync`); `None` when not known.
    pub path: Option<PathBuf>,
    /// The file offset it wrote or allocated at, where it has one
    /// (`pwrite*`, `fallocate`, `write` at the fd's position, `msync`).
    pub offset: Option<u64>,
    /// The bytes it asked for (`write*`, `fallocate`, `msync`) or the size
    /// (`ftruncate`).
    pub len: Option<u64>,
    /// Ack lines the writer had completed before it (with
    /// [`OracleConfig::stacks`]; 0 otherwise).
    pub acks_before: u64,
}

/// Where a kernel-raised `SIGBUS` struck a traced process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreFault {
    pub pid: i32,
    pub tid: i32,
    /// `si_code` (`BUS_ADRERR` for a page the filesystem could not back).
    pub code: i32,
    /// `si_addr`: the faulting address.
    pub address: u64,
    /// The mapped file holding it, relative to the watched directory
    /// (absolute when outside it); `None` when no file mapping holds it.
    pub path: Option<PathBuf>,
    /// The faulting address as an offset in that file.
    pub file_offset: Option<u64>,
    /// The instruction pointer at the fault.
    pub pc: u64,
    /// The call stack there (with [`OracleConfig::stacks`]).
    pub stack: Vec<Frame>,
    /// Ack lines completed before it (with [`OracleConfig::stacks`]).
    pub acks_before: u64,
}

/// Counters of the tracer's work, for diagnostics and the benchmark.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceStats {
    /// Seccomp stops (trapped syscall entries).
    pub seccomp_stops: u64,
    /// Syscall-exit stops.
    pub exit_stops: u64,
    /// Reads of `/proc/PID/maps` (the cache's misses).
    pub maps_reads: u64,
    /// `PTRACE_INTERRUPT`s sent to stop other tasks before a copy.
    pub tasks_interrupted: u64,
    /// Bytes copied into shadows.
    pub bytes_copied: u64,
    /// Call stacks captured ([`OracleConfig::stacks`]).
    #[serde(default)]
    pub stacks_captured: u64,
}

impl OracleOutcome {
    pub fn file(&self, rel: impl AsRef<Path>) -> Option<&FileShadow> {
        self.files.get(rel.as_ref())
    }

    /// The stack of the write that completed ack line `line` (1-based).
    pub fn ack_stack(&self, line: u64) -> Option<&AckStack> {
        let i = self.ack_stacks.partition_point(|a| a.last_line < line);
        self.ack_stacks.get(i).filter(|a| a.first_line <= line)
    }
}

/// Errors of the oracle; each names the syscall, path or program involved.
#[derive(Debug, thiserror::Error)]
pub enum OracleError {
    #[error("invalid oracle input: {0}")]
    Invalid(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error(
        "ptrace is unavailable: PTRACE_SEIZE of the writer {program} (pid {pid}) failed: {source}; the oracle \
         needs to trace its own children (check kernel.yama.ptrace_scope, a container's seccomp profile, \
         CAP_SYS_PTRACE)"
    )]
    PtraceUnavailable {
        pid: i32,
        program: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the writer {program}: {step} failed: {source}")]
    Launch {
        program: String,
        step: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("the writer {program} ended before execve ({status}) without saying why")]
    DiedBeforeExec { program: String, status: String },
    #[error("the writer uses io_uring; its fsyncs cannot be seen by the oracle (pid {pid} called io_uring_setup and was killed)")]
    IoUring { pid: i32 },
    #[error(
        "the writer called {call} {detail} (pid {pid}): crashlab cannot model its effect on durability yet, so the \
         run was stopped"
    )]
    Unsupported { pid: i32, call: &'static str, detail: String },
    #[error("{detail}: the oracle's limit of {limit} {what} was reached")]
    Limit { what: &'static str, limit: u64, detail: String },
    #[error("cannot follow {call} of {path} by the writer (pid {pid}): {source}")]
    Namespace {
        pid: i32,
        call: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error("cancelled before the writer started")]
    Cancelled,
    #[error("tracer error: {0}")]
    Tracer(String),
}

impl OracleError {
    fn io(what: impl Into<String>, source: io::Error) -> OracleError {
        OracleError::Io { what: what.into(), source }
    }
}

/// Run `launch` under the oracle until every process of it is dead and
/// reaped, and return what survives a power loss at that moment.
///
/// Must be called on a thread dedicated to it for the duration (see the
/// module docs): it forks from this thread and traces from it.
pub fn run_traced(
    launch: &TracedLaunch<'_>,
    cfg: &OracleConfig,
    control: &TraceControl,
) -> Result<OracleOutcome, OracleError> {
    cfg.validate()?;
    let prepared = launch::Prepared::new(launch)?;
    let page_size = crate::page_size::page_size();
    let mut ns = namespace_log::NamespaceLog::snapshot(&cfg.watch_dir, cfg.mount_namespace_of)?;
    let mut store = shadow::ShadowStore::snapshot(
        ns.regular_files().into_iter().map(|id| (id, ns.file(id))),
        page_size,
        cfg.assume_initial_durable,
        |id| ns.describe(id),
    )?;
    if cfg.history {
        store.record_history();
        ns.track_changes();
    }
    if control.is_cancelled() {
        return Err(OracleError::Cancelled);
    }
    tracer::run(prepared, cfg, control, ns, store)
}
