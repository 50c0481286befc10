//! The namespace calls at their stops: what the entry stop must see before
//! the call runs (what the path named then, the file an fd names), what the
//! exit stop records once the call succeeded, and the refusals. A part of
//! the tracer (its child module: it works on the tracer's state); the
//! bookkeeping is `namespace_log.rs`.
//!
//! Paths are resolved as the kernel resolves them (see `paths.rs`): the
//! parent fully, following symlinks, then the last component in that
//! directory without following it. Only calls whose directory is a watched
//! directory (one the oracle holds and that is still under the watched
//! directory) are recorded. A call whose path cannot be read from the tracee
//! is not recorded: it fails with EFAULT.
//!
//! One call makes at most one event that is not a sync: a `Create`, `Link`,
//! `Unlink`, `Rename`, `CreateUnnamed` or `SetSize`; then maybe a `SyncDir`
//! (a synchronous directory) or a `SyncData`/`SyncFile` (a write through an
//! `O_SYNC`/`O_DSYNC` descriptor).

use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use libc::pid_t;

use super::{fd_ident, Call, Tracer};
use crate::namespace::trace::{FileId, FileKind, Name, NamespaceTrace, NsOp};
use crate::oracle::namespace_log::{ident, kind_of, Ident, Kind, Opener};
use crate::oracle::paths::{self, FdInfo, PATH_MAX};
use crate::oracle::syscalls::{FICLONE, FICLONERANGE, FIDEDUPERANGE, FS_IOC_FSSETXATTR, FS_IOC_SETFLAGS};
use crate::oracle::{sys, FileShadow, InodeImage, OracleError, SyncEffect, SyscallResult, TracedSyscall};

// uapi fcntl.h and linux/fs.h, spelled out for the ones libc lacks or types
// differently.
const O_TMPFILE_BIT: u64 = 0o20000000;
const O_SYNC_BIT: u32 = 0o4000000;
const RESOLVE_IN_ROOT: u64 = 0x10;
const RWF_DSYNC: u64 = 0x2;
const RWF_SYNC: u64 = 0x4;
const RWF_APPEND: u64 = 0x10;
const RENAME_EXCHANGE: u64 = 1 << 1;
const RENAME_WHITEOUT: u64 = 1 << 2;
/// The most `FIDEDUPERANGE` destinations read to look for a watched one.
const MAX_DEDUPE_DESTS: usize = 256;

/// An entry of a watched directory.
#[derive(Debug, Clone)]
pub(super) struct At {
    dir: FileId,
    name: Name,
}

/// How a write is synchronous (`generic_write_sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WriteSync {
    /// `O_DSYNC`, `RWF_DSYNC`, or an `IS_SYNC` inode: `fdatasync` of the range.
    Data,
    /// `O_SYNC`, `RWF_SYNC`: `fsync` of the range.
    File,
}

/// What the entry stop of a namespace call saw.
#[derive(Debug, Clone)]
pub(super) enum NsCall {
    /// `open*`/`creat` with `O_CREAT` or `O_TRUNC`: the entry the last
    /// component names (`None`: its directory is not watched, but it is a
    /// symlink that may lead into the tree), and what it named before.
    Open { at: Option<At>, flags: u64, pre: Option<Ident>, via_symlink: bool },
    /// `O_TMPFILE` in a watched directory.
    TmpFile,
    /// `mkdir*`, `mknod*` of a regular file, `symlink*`.
    Make { at: At },
    /// `link*`: `source` is the file linked.
    Link { at: At, source: Ident },
    /// `unlink*`, `rmdir`.
    Unlink { at: At, file: FileId },
    /// `rename*` with at least one side in the tree.
    Rename { from: Option<At>, to: Option<At>, source: Ident, replaced: Option<FileId> },
    /// `truncate`, `ftruncate`, `fallocate`.
    Resize { file: FileId },
    /// The write family on a watched regular file.
    Write { file: FileId, fd: u64, sync: Option<WriteSync>, offset: Option<u64>, append: bool },
    /// `FS_IOC_SETFLAGS`/`FS_IOC_FSSETXATTR`: the sync flags may change.
    Flags { file: FileId },
}

/// What the entry stop decided.
pub(super) enum NsEnter {
    /// Not about the watched tree.
    Ignore,
    /// Record it at its exit stop.
    Track(Box<NsCall>),
    /// Refused: the writer is being killed and the run ends with the error.
    Refused,
}

/// A resolved path of a call: the directory the kernel will look the name
/// up in (the oracle's id if it is watched), the name, and a path the
/// tracer can use for that directory.
struct Resolved {
    dir: Option<FileId>,
    name: Name,
    parent_path: Vec<u8>,
}

fn kind_name(mode: u32) -> &'static str {
    match mode & libc::S_IFMT {
        libc::S_IFIFO => "a fifo",
        libc::S_IFCHR => "a character device",
        libc::S_IFBLK => "a block device",
        libc::S_IFSOCK => "a socket",
        _ => "a special file",
    }
}

impl Tracer<'_> {
    // ---- reading the call ----

    /// A NUL-terminated string of the tracee, at most `PATH_MAX` bytes.
    fn read_string(&self, tid: pid_t, addr: u64) -> Option<Vec<u8>> {
        if addr == 0 {
            return None;
        }
        let mut buf = vec![0u8; PATH_MAX];
        let n = sys::read_remote(tid, addr, &mut buf, self.page).ok()?;
        let end = buf[..n].iter().position(|&b| b == 0)?;
        buf.truncate(end);
        Some(buf)
    }

    fn read_u64s<const N: usize>(&self, tid: pid_t, addr: u64) -> Option<[u64; N]> {
        let mut buf = vec![0u8; N * 8];
        if sys::read_remote(tid, addr, &mut buf, self.page).ok()? != buf.len() {
            return None;
        }
        let mut out = [0u64; N];
        for (i, c) in buf.chunks_exact(8).enumerate() {
            out[i] = u64::from_le_bytes(c.try_into().expect("8 bytes"));
        }
        Some(out)
    }

    /// A path argument as the tracee means it ([`paths::as_tracee`]); when
    /// the writer runs in another mount namespace, an absolute one is
    /// walked from its root ([`paths::in_root_of`]).
    fn as_tracee(&self, raw: &[u8], tgid: pid_t, tid: pid_t) -> Vec<u8> {
        let path = paths::as_tracee(raw, tgid, tid);
        match self.cfg.mount_namespace_of {
            Some(_) => paths::in_root_of(path, tid),
            None => path,
        }
    }

    /// The path argument at `addr` of a call relative to `dirfd`, split.
    /// `None`: unreadable, or no entry (`.`, `/`).
    fn resolve(&self, tid: pid_t, tgid: pid_t, dirfd: u64, addr: u64) -> Option<Resolved> {
        let raw = self.read_string(tid, addr)?;
        let path = self.as_tracee(&raw, tgid, tid);
        let split = paths::split_last(&path)?;
        let parent_path = paths::join(&paths::base(tid, dirfd as i32 as i64), split.parent);
        let dir = sys::stat_path(&parent_path, true).ok().flatten().and_then(|st| self.ns.watched_dir(&st));
        Some(Resolved { dir, name: split.name.to_vec(), parent_path })
    }

    /// `lstat` of the entry: through the held directory when it is
    /// watched, else by path.
    fn stat_entry(&self, r: &Resolved) -> Option<libc::stat> {
        match r.dir {
            Some(d) => self.ns.stat_in(d, &r.name).ok().flatten(),
            None => sys::stat_path(&paths::join(&r.parent_path, &r.name), false).ok().flatten(),
        }
    }

    /// The known file an fd of the tracee names.
    fn fd_file(&self, tid: pid_t, fd: u64) -> Option<FileId> {
        fd_ident(tid, fd).and_then(|id| self.ns.lookup(id))
    }

    fn fd_regular(&self, tid: pid_t, fd: u64) -> Option<FileId> {
        self.fd_file(tid, fd).filter(|&f| self.ns.is_regular(f))
    }

    fn fdinfo(tid: pid_t, fd: u64) -> Option<FdInfo> {
        paths::parse_fdinfo(&std::fs::read_to_string(format!("/proc/{tid}/fdinfo/{fd}")).ok()?)
    }

    fn refuse(&mut self, tgid: pid_t, sys: TracedSyscall, detail: String) -> NsEnter {
        self.abort = Some(OracleError::Unsupported { pid: tgid, call: sys.name(), detail });
        self.start_killing();
        NsEnter::Refused
    }

    fn track(c: NsCall) -> Result<NsEnter, OracleError> {
        Ok(NsEnter::Track(Box::new(c)))
    }

    // ---- entry ----

    pub(super) fn ns_enter(
        &mut self,
        tid: pid_t,
        tgid: pid_t,
        sys: TracedSyscall,
        a: &[u64; 6],
    ) -> Result<NsEnter, OracleError> {
        use TracedSyscall as S;
        let cwd = libc::AT_FDCWD as u64;
        match sys {
            S::Open => self.enter_open(tid, tgid, sys, cwd, a[0], a[1]),
            S::Openat => self.enter_open(tid, tgid, sys, a[0], a[1], a[2]),
            S::Creat => {
                self.enter_open(tid, tgid, sys, cwd, a[0], (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64)
            }
            S::Openat2 => {
                let Some([flags, _mode, resolve]) = self.read_u64s::<3>(tid, a[2]) else { return Ok(NsEnter::Ignore) };
                let creates = flags & (libc::O_CREAT | libc::O_TRUNC) as u64 != 0 || flags & O_TMPFILE_BIT != 0;
                if creates && resolve & RESOLVE_IN_ROOT != 0 {
                    return Ok(self.refuse(tgid, sys, "with RESOLVE_IN_ROOT and O_CREAT/O_TRUNC/O_TMPFILE".into()));
                }
                self.enter_open(tid, tgid, sys, a[0], a[1], flags)
            }
            S::Mkdir | S::Symlink => self.enter_make(tid, tgid, cwd, if sys == S::Mkdir { a[0] } else { a[1] }),
            S::Mkdirat => self.enter_make(tid, tgid, a[0], a[1]),
            S::Symlinkat => self.enter_make(tid, tgid, a[1], a[2]),
            S::Mknod | S::Mknodat => {
                let (dirfd, path, mode) = if sys == S::Mknod { (cwd, a[0], a[1]) } else { (a[0], a[1], a[2]) };
                let mode = mode as u32;
                if mode & libc::S_IFMT == 0 || mode & libc::S_IFMT == libc::S_IFREG {
                    return self.enter_make(tid, tgid, dirfd, path);
                }
                match self.resolve(tid, tgid, dirfd, path) {
                    Some(r) if r.dir.is_some() => {
                        let at = self.ns.describe_at(r.dir.expect("checked"), &r.name);
                        Ok(self.refuse(tgid, sys, format!("to make {} at {at}", kind_name(mode))))
                    }
                    _ => Ok(NsEnter::Ignore),
                }
            }
            S::Link => self.enter_link(tid, tgid, cwd, a[0], cwd, a[1], 0),
            S::Linkat => self.enter_link(tid, tgid, a[0], a[1], a[2], a[3], a[4]),
            S::Unlink | S::Rmdir => self.enter_unlink(tid, tgid, cwd, a[0]),
            S::Unlinkat => self.enter_unlink(tid, tgid, a[0], a[1]),
            S::Rename => self.enter_rename(tid, tgid, sys, [cwd, a[0], cwd, a[1]], 0),
            S::Renameat => self.enter_rename(tid, tgid, sys, [a[0], a[1], a[2], a[3]], 0),
            S::Renameat2 => self.enter_rename(tid, tgid, sys, [a[0], a[1], a[2], a[3]], a[4]),
            S::Truncate => {
                let Some(raw) = self.read_string(tid, a[0]) else { return Ok(NsEnter::Ignore) };
                let path = paths::join(&paths::base(tid, libc::AT_FDCWD as i64), &self.as_tracee(&raw, tgid, tid));
                let file = sys::stat_path(&path, true).ok().flatten().and_then(|st| self.ns.lookup(ident(&st)));
                match file.filter(|&f| self.ns.is_regular(f)) {
                    Some(file) => Self::track(NsCall::Resize { file }),
                    None => Ok(NsEnter::Ignore),
                }
            }
            S::Ftruncate => match self.fd_regular(tid, a[0]) {
                Some(file) => Self::track(NsCall::Resize { file }),
                None => Ok(NsEnter::Ignore),
            },
            S::Fallocate => match self.fd_regular(tid, a[0]) {
                Some(file) => {
                    let mode = a[1] as i32;
                    if mode & (libc::FALLOC_FL_COLLAPSE_RANGE | libc::FALLOC_FL_INSERT_RANGE) != 0 {
                        let what = if mode & libc::FALLOC_FL_COLLAPSE_RANGE != 0 {
                            "FALLOC_FL_COLLAPSE_RANGE"
                        } else {
                            "FALLOC_FL_INSERT_RANGE"
                        };
                        let detail = format!("with {what} on {} (it moves data between pages)", self.ns.describe(file));
                        return Ok(self.refuse(tgid, sys, detail));
                    }
                    Self::track(NsCall::Resize { file })
                }
                None => Ok(NsEnter::Ignore),
            },
            S::Write | S::Pwrite64 | S::Writev | S::Pwritev | S::Pwritev2 => self.enter_write(tid, sys, a),
            S::CopyFileRange | S::Splice | S::Sendfile => {
                let out = if sys == S::Sendfile { a[0] } else { a[2] };
                match self.fd_regular(tid, out) {
                    Some(f) => {
                        let detail = format!("on {} (it writes into a watched file)", self.ns.describe(f));
                        Ok(self.refuse(tgid, sys, detail))
                    }
                    None => Ok(NsEnter::Ignore),
                }
            }
            S::Ioctl => self.enter_ioctl(tid, tgid, sys, a),
            _ => Ok(NsEnter::Ignore),
        }
    }

    fn enter_open(
        &mut self,
        tid: pid_t,
        tgid: pid_t,
        _sys: TracedSyscall,
        dirfd: u64,
        addr: u64,
        flags: u64,
    ) -> Result<NsEnter, OracleError> {
        if flags & libc::O_DSYNC as u64 != 0 {
            self.saw_sync_open = true;
        }
        if flags & O_TMPFILE_BIT != 0 {
            let Some(raw) = self.read_string(tid, addr) else { return Ok(NsEnter::Ignore) };
            let full = paths::join(&paths::base(tid, dirfd as i32 as i64), &self.as_tracee(&raw, tgid, tid));
            let dir = sys::stat_path(&full, true).ok().flatten().and_then(|st| self.ns.watched_dir(&st));
            return match dir {
                Some(_) => Self::track(NsCall::TmpFile),
                None => Ok(NsEnter::Ignore),
            };
        }
        if flags & (libc::O_CREAT | libc::O_TRUNC) as u64 == 0 {
            return Ok(NsEnter::Ignore);
        }
        let Some(r) = self.resolve(tid, tgid, dirfd, addr) else { return Ok(NsEnter::Ignore) };
        let st = self.stat_entry(&r);
        let is_link = st.is_some_and(|st| kind_of(&st) == Some(Kind::Symlink));
        // O_EXCL and O_NOFOLLOW never follow a final symlink (EEXIST, ELOOP).
        let via_symlink = is_link && flags & (libc::O_EXCL | libc::O_NOFOLLOW) as u64 == 0;
        if r.dir.is_none() && !via_symlink {
            return Ok(NsEnter::Ignore);
        }
        let pre = if via_symlink {
            sys::stat_path(&paths::join(&r.parent_path, &r.name), true).ok().flatten().map(|st| ident(&st))
        } else {
            st.map(|st| ident(&st))
        };
        let at = r.dir.map(|dir| At { dir, name: r.name });
        Self::track(NsCall::Open { at, flags, pre, via_symlink })
    }

    fn enter_make(&mut self, tid: pid_t, tgid: pid_t, dirfd: u64, addr: u64) -> Result<NsEnter, OracleError> {
        match self.resolve(tid, tgid, dirfd, addr) {
            Some(Resolved { dir: Some(dir), name, .. }) => Self::track(NsCall::Make { at: At { dir, name } }),
            _ => Ok(NsEnter::Ignore),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn enter_link(
        &mut self,
        tid: pid_t,
        tgid: pid_t,
        old_dirfd: u64,
        old: u64,
        new_dirfd: u64,
        new: u64,
        flags: u64,
    ) -> Result<NsEnter, OracleError> {
        let Some(Resolved { dir: Some(dir), name, .. }) = self.resolve(tid, tgid, new_dirfd, new) else {
            return Ok(NsEnter::Ignore);
        };
        let Some(raw) = self.read_string(tid, old) else { return Ok(NsEnter::Ignore) };
        let source = if raw.is_empty() && flags & libc::AT_EMPTY_PATH as u64 != 0 {
            // linkat(fd, "", ..., AT_EMPTY_PATH): the file fd names (O_TMPFILE).
            sys::stat_path(&paths::base(tid, old_dirfd as i32 as i64), true)
        } else {
            let path = paths::join(&paths::base(tid, old_dirfd as i32 as i64), &self.as_tracee(&raw, tgid, tid));
            sys::stat_path(&path, flags & libc::AT_SYMLINK_FOLLOW as u64 != 0)
        };
        match source.ok().flatten() {
            Some(st) => Self::track(NsCall::Link { at: At { dir, name }, source: ident(&st) }),
            None => Ok(NsEnter::Ignore),
        }
    }

    fn enter_unlink(&mut self, tid: pid_t, tgid: pid_t, dirfd: u64, addr: u64) -> Result<NsEnter, OracleError> {
        let Some(r) = self.resolve(tid, tgid, dirfd, addr) else { return Ok(NsEnter::Ignore) };
        let Some(dir) = r.dir else { return Ok(NsEnter::Ignore) };
        let file = self.stat_entry(&r).and_then(|st| self.ns.lookup(ident(&st)));
        match file {
            Some(file) => Self::track(NsCall::Unlink { at: At { dir, name: r.name }, file }),
            // A file the oracle never saw (another program's, a socket):
            // invisible to the trace.
            None => Ok(NsEnter::Ignore),
        }
    }

    fn enter_rename(
        &mut self,
        tid: pid_t,
        tgid: pid_t,
        sys: TracedSyscall,
        [old_dirfd, old, new_dirfd, new]: [u64; 4],
        flags: u64,
    ) -> Result<NsEnter, OracleError> {
        let (Some(from), Some(to)) = (self.resolve(tid, tgid, old_dirfd, old), self.resolve(tid, tgid, new_dirfd, new))
        else {
            return Ok(NsEnter::Ignore);
        };
        if from.dir.is_none() && to.dir.is_none() {
            return Ok(NsEnter::Ignore);
        }
        if flags & (RENAME_EXCHANGE | RENAME_WHITEOUT) != 0 {
            let what = if flags & RENAME_EXCHANGE != 0 { "RENAME_EXCHANGE" } else { "RENAME_WHITEOUT" };
            let side = |r: &Resolved| match r.dir {
                Some(d) => self.ns.describe_at(d, &r.name),
                None => String::from_utf8_lossy(&paths::join(&r.parent_path, &r.name)).into_owned(),
            };
            let detail = format!("with {what} on {} and {}", side(&from), side(&to));
            return Ok(self.refuse(tgid, sys, detail));
        }
        let Some(source) = self.stat_entry(&from) else { return Ok(NsEnter::Ignore) };
        let replaced = to.dir.and_then(|_| self.stat_entry(&to)).and_then(|st| self.ns.lookup(ident(&st)));
        let at = |r: Resolved| r.dir.map(|dir| At { dir, name: r.name });
        Self::track(NsCall::Rename { from: at(from), to: at(to), source: ident(&source), replaced })
    }

    fn enter_write(&mut self, tid: pid_t, sys: TracedSyscall, a: &[u64; 6]) -> Result<NsEnter, OracleError> {
        let Some(file) = self.fd_regular(tid, a[0]) else { return Ok(NsEnter::Ignore) };
        let rwf = if sys == TracedSyscall::Pwritev2 { a[5] } else { 0 };
        let wants_info = self.saw_sync_open || self.ns.sync_inode(file) || rwf & (RWF_SYNC | RWF_DSYNC) != 0;
        let info = if wants_info { Self::fdinfo(tid, a[0]) } else { None };
        let fflags = info.map_or(0, |i| i.flags);
        let sync = if rwf & RWF_SYNC != 0 || fflags & O_SYNC_BIT != 0 {
            Some(WriteSync::File)
        } else if rwf & RWF_DSYNC != 0 || fflags & libc::O_DSYNC as u32 != 0 || self.ns.sync_inode(file) {
            Some(WriteSync::Data)
        } else {
            None
        };
        let offset = match sys {
            TracedSyscall::Pwrite64 | TracedSyscall::Pwritev => Some(a[3]),
            TracedSyscall::Pwritev2 if a[3] as i64 != -1 => Some(a[3]),
            _ => None,
        };
        let append = fflags & libc::O_APPEND as u32 != 0 || rwf & RWF_APPEND != 0;
        Self::track(NsCall::Write { file, fd: a[0], sync, offset, append })
    }

    fn enter_ioctl(
        &mut self,
        tid: pid_t,
        tgid: pid_t,
        sys: TracedSyscall,
        a: &[u64; 6],
    ) -> Result<NsEnter, OracleError> {
        let req = a[1] as u32;
        let name = match req {
            FICLONE => "FICLONE",
            FICLONERANGE => "FICLONERANGE",
            FIDEDUPERANGE => "FIDEDUPERANGE",
            FS_IOC_SETFLAGS | FS_IOC_FSSETXATTR => {
                return match self.fd_file(tid, a[0]) {
                    Some(file) => Self::track(NsCall::Flags { file }),
                    None => Ok(NsEnter::Ignore),
                };
            }
            _ => return Ok(NsEnter::Ignore),
        };
        let mut watched = self.fd_regular(tid, a[0]);
        if req == FIDEDUPERANGE && watched.is_none() {
            // struct file_dedupe_range: u16 dest_count at 16, then 32-byte
            // file_dedupe_range_info records whose first field is the fd.
            if let Some([_, _, count]) = self.read_u64s::<3>(tid, a[2]) {
                let count = (count & 0xffff) as usize;
                for i in 0..count.min(MAX_DEDUPE_DESTS) {
                    if let Some([fd]) = self.read_u64s::<1>(tid, a[2] + 24 + 32 * i as u64) {
                        watched = watched.or(self.fd_regular(tid, fd));
                    }
                }
            }
        }
        match watched {
            Some(f) => {
                let detail = format!("({name}) on {} (it shares extents between files)", self.ns.describe(f));
                Ok(self.refuse(tgid, sys, detail))
            }
            None => Ok(NsEnter::Ignore),
        }
    }

    // ---- exit ----

    /// The exit of a namespace call that succeeded (`rval`: its result).
    /// `copy`: a synchronous write may stop the world and copy (not while
    /// the run is being killed). Returns the effect when it is a sync.
    pub(super) fn ns_exit(
        &mut self,
        tid: pid_t,
        tgid: pid_t,
        call: &Call,
        ns: NsCall,
        rval: i64,
        copy: bool,
    ) -> Result<Option<SyncEffect>, OracleError> {
        let seq = Self::seq_of(call.event);
        let name = call.sys.name();
        let fail =
            |source: std::io::Error, path: String| OracleError::Namespace { pid: tgid, call: name, path, source };
        match ns {
            NsCall::Write { file, fd, sync, offset, append } => {
                self.ns.note_written(file);
                let d = self.ns.describe(file);
                self.ns.note_size(seq, name, file).map_err(|e| fail(e, d))?;
                match sync {
                    Some(kind) if rval > 0 => {
                        if !copy {
                            return Ok(Some(ambiguous("the run was being stopped when it returned")));
                        }
                        let len = rval as u64;
                        let start = match (offset, append) {
                            (Some(off), false) => Some(off),
                            (_, true) => self.ns.size_now(file).ok().map(|s| s.saturating_sub(len)),
                            (None, false) => Self::fdinfo(tid, fd).map(|i| i.pos.saturating_sub(len)),
                        };
                        let Some(start) = start else {
                            return Ok(Some(ambiguous(&format!("cannot tell where the write on fd {fd} landed"))));
                        };
                        // generic_write_sync → vfs_fsync_range: writeback
                        // writes every page the range touches, whole, as
                        // they are now (clipped at the end of the file).
                        let first = start & !(self.page - 1);
                        let end = start.saturating_add(len).div_ceil(self.page).saturating_mul(self.page);
                        self.stop_world(tid)?;
                        let (copied, failure) = match self.copy_range_of(file, first, end - first) {
                            Ok(r) => (vec![r], None),
                            Err(e) => (Vec::new(), Some(e)),
                        };
                        if failure.is_none() {
                            let op = match kind {
                                WriteSync::File => NsOp::SyncFile { file, size: 0 },
                                WriteSync::Data => NsOp::SyncData { file, size: 0 },
                            };
                            self.sync_data(call, file, op);
                        }
                        return Ok(Some(self.record_copies(call, copied, failure)));
                    }
                    _ => {}
                }
            }
            NsCall::Open { at, flags, pre, via_symlink } => {
                let link = format!("/proc/{tid}/fd/{rval}");
                let Some(st) = sys::stat_path(link.as_bytes(), true).ok().flatten() else { return Ok(None) };
                self.settle_open(seq, name, at, flags, pre, via_symlink, &st, Some(&link))?;
            }
            NsCall::TmpFile => {
                let link = format!("/proc/{tid}/fd/{rval}");
                let Some(st) = sys::stat_path(link.as_bytes(), true).ok().flatten() else { return Ok(None) };
                if self.ns.lookup(ident(&st)).is_none() {
                    let file = self.ns.register(Opener::ProcFd(link.as_bytes()), &st, false, 0)?;
                    self.ns.emit(seq, name, NsOp::CreateUnnamed { file });
                }
            }
            other => self.settle(seq, tgid, call.sys, other, true)?,
        }
        Ok(None)
    }

    /// The exit of a namespace call that failed: only a size may have
    /// changed.
    pub(super) fn ns_failed(&mut self, tgid: pid_t, call: &Call, ns: NsCall) -> Result<(), OracleError> {
        match ns {
            NsCall::Resize { .. } | NsCall::Write { .. } => {
                self.settle(Self::seq_of(call.event), tgid, call.sys, ns, true)
            }
            _ => Ok(()),
        }
    }

    /// The namespace calls that need only the tree to be settled, after
    /// their exit (`returned`) or, for calls the kill caught in the kernel,
    /// at the end (did it happen? the tree tells).
    fn settle(
        &mut self,
        seq: u64,
        tgid: pid_t,
        sys: TracedSyscall,
        ns: NsCall,
        returned: bool,
    ) -> Result<(), OracleError> {
        let name = sys.name();
        let fail =
            |source: std::io::Error, path: String| OracleError::Namespace { pid: tgid, call: name, path, source };
        let entry =
            |log: &crate::oracle::namespace_log::NamespaceLog, at: &At| -> Result<Option<libc::stat>, OracleError> {
                log.stat_in(at.dir, &at.name).map_err(|e| fail(e, log.describe_at(at.dir, &at.name)))
            };
        match ns {
            NsCall::Resize { file } | NsCall::Write { file, .. } => {
                let d = self.ns.describe(file);
                self.ns.note_size(seq, name, file).map_err(|e| fail(e, d))?;
            }
            NsCall::Flags { file } => self.ns.refresh_flags(file),
            NsCall::Make { at } => {
                if let Some(st) = entry(&self.ns, &at)? {
                    if self.ns.lookup(ident(&st)).is_none() {
                        let file = self.ns.register(Opener::At(at.dir, &at.name), &st, false, 0)?;
                        self.ns.emit(seq, name, NsOp::Create { dir: at.dir, name: at.name, file });
                    }
                }
            }
            NsCall::Link { at, source } => {
                let Some(st) = entry(&self.ns, &at)? else { return Ok(()) };
                if ident(&st) != source {
                    return Ok(());
                }
                match self.ns.lookup(source) {
                    Some(file) => self.ns.emit(seq, name, NsOp::Link { dir: at.dir, name: at.name, file }),
                    // A file from outside the tree gets its first name here.
                    None => self.move_in(seq, tgid, sys, at, None, &st)?,
                }
            }
            NsCall::Unlink { at, file } => {
                let now = entry(&self.ns, &at)?.map(|st| ident(&st));
                let was = (self.ns.trace_file_dev(file), self.ns.trace_file_ino(file));
                if returned || now != Some(was) {
                    self.ns.emit(seq, name, NsOp::Unlink { dir: at.dir, name: at.name, file });
                }
            }
            NsCall::Rename { from, to, source, replaced } => {
                let known = self.ns.lookup(source);
                match (from, to) {
                    (Some(from), Some(to)) => {
                        let Some(st) = entry(&self.ns, &to)? else { return Ok(()) };
                        if ident(&st) != source || replaced == known && known.is_some() {
                            // Not done, or a no-op (both names were links to one file).
                            return Ok(());
                        }
                        match known {
                            Some(file) => self.ns.emit(
                                seq,
                                name,
                                NsOp::Rename {
                                    from_dir: from.dir,
                                    from_name: from.name,
                                    to_dir: to.dir,
                                    to_name: to.name,
                                    file,
                                    replaced,
                                },
                            ),
                            None => self.move_in(seq, tgid, sys, to, replaced, &st)?,
                        }
                    }
                    (Some(from), None) => {
                        let still = entry(&self.ns, &from)?.is_some_and(|st| ident(&st) == source);
                        if let (Some(file), false) = (known, still) {
                            self.ns.emit(seq, name, NsOp::Unlink { dir: from.dir, name: from.name, file });
                        }
                    }
                    (None, Some(to)) => {
                        let Some(st) = entry(&self.ns, &to)? else { return Ok(()) };
                        if ident(&st) == source {
                            self.move_in(seq, tgid, sys, to, replaced, &st)?;
                        }
                    }
                    (None, None) => {}
                }
            }
            NsCall::Open { at, flags, pre, via_symlink } => {
                // Only at the end (an exit has the fd): what the name names now.
                if let Some(at) = at.filter(|_| !via_symlink) {
                    if let Some(st) = entry(&self.ns, &at)? {
                        self.settle_open(seq, name, Some(at), flags, pre, false, &st, None)?;
                    }
                }
            }
            NsCall::TmpFile => {}
        }
        Ok(())
    }

    /// A file that enters the tree under `to` from outside (a rename or a
    /// link from elsewhere): a new file, with no floor. Its size is its
    /// `initial_size` (a `Create` cannot carry one). A directory must be
    /// empty, and the entry must not replace a file: the trace has no
    /// operation for those; refused.
    fn move_in(
        &mut self,
        seq: u64,
        tgid: pid_t,
        sys: TracedSyscall,
        to: At,
        replaced: Option<FileId>,
        st: &libc::stat,
    ) -> Result<(), OracleError> {
        let at = self.ns.describe_at(to.dir, &to.name);
        let Some(kind) = kind_of(st) else {
            // A fifo or socket: invisible, but the file it replaced lost its name.
            if let Some(file) = replaced {
                self.ns.emit(seq, sys.name(), NsOp::Unlink { dir: to.dir, name: to.name, file });
            }
            return Ok(());
        };
        let refuse = |detail: String| OracleError::Unsupported { pid: tgid, call: sys.name(), detail };
        if replaced.is_some() {
            return Err(refuse(format!(
                "moving a file from outside the watched directory over {at} (the trace cannot express a \
                 creation that replaces a file)"
            )));
        }
        if kind == Kind::Directory {
            let empty = self
                .ns
                .is_empty_dir_at(to.dir, &to.name)
                .map_err(|e| OracleError::io(format!("cannot list {at}"), e))?;
            if !empty {
                return Err(refuse(format!(
                    "moving a non-empty directory into the watched directory as {at} (its files were never seen \
                     created)"
                )));
            }
        }
        let size = if kind == Kind::Regular { st.st_size as u64 } else { 0 };
        let file = self.ns.register(Opener::At(to.dir, &to.name), st, false, size)?;
        self.ns.emit(seq, sys.name(), NsOp::Create { dir: to.dir, name: to.name, file });
        Ok(())
    }

    /// An `open` with `O_CREAT`/`O_TRUNC` that returned a descriptor naming
    /// `st` (`link`: its `/proc` link, `None` at the end).
    #[allow(clippy::too_many_arguments)]
    fn settle_open(
        &mut self,
        seq: u64,
        name: &'static str,
        at: Option<At>,
        flags: u64,
        pre: Option<Ident>,
        via_symlink: bool,
        st: &libc::stat,
        link: Option<&str>,
    ) -> Result<(), OracleError> {
        let now = ident(st);
        if let Some(file) = self.ns.lookup(now) {
            // It existed: an O_TRUNC may have cut it.
            if self.ns.is_regular(file) {
                let _ = self.ns.note_size(seq, name, file);
            }
            return Ok(());
        }
        if flags & libc::O_CREAT as u64 == 0 || pre == Some(now) || kind_of(st) != Some(Kind::Regular) {
            return Ok(());
        }
        // Created by this call: where?
        let place = if !via_symlink {
            at
        } else {
            // Through a dangling symlink: where the descriptor says.
            let target = link.and_then(|l| std::fs::read_link(l).ok());
            target.and_then(|t| {
                let (p, deleted) = paths::link_target(t.as_os_str().as_bytes());
                let split = paths::split_last(p).filter(|_| !deleted)?;
                let dir = sys::stat_path(split.parent, true).ok().flatten().and_then(|s| self.ns.watched_dir(&s))?;
                Some(At { dir, name: split.name.to_vec() })
            })
        };
        let Some(at) = place else { return Ok(()) };
        if self.ns.stat_in(at.dir, &at.name).ok().flatten().map(|s| ident(&s)) != Some(now) {
            return Ok(());
        }
        let file = self.ns.register(Opener::At(at.dir, &at.name), st, false, 0)?;
        self.ns.emit(seq, name, NsOp::Create { dir: at.dir, name: at.name, file });
        Ok(())
    }

    /// A syscall-exit stop reached while the run is being killed: a
    /// namespace call that completed is recorded (it changed the tree);
    /// syncs claim nothing.
    pub(super) fn ns_exit_while_killing(&mut self, tid: pid_t) -> Result<(), OracleError> {
        let Some(task) = self.tasks.get_mut(&tid) else { return Ok(()) };
        let tgid = task.tgid;
        if task.call.as_ref().is_none_or(|c| c.ns.is_none()) {
            return Ok(());
        }
        let Ok(sys::SyscallInfo::Exit { rval, is_error }) = sys::syscall_info(tid) else { return Ok(()) };
        let mut call = task.call.take().expect("checked");
        let ns = call.ns.take().expect("checked");
        if let Some(i) = call.event {
            self.events[i].result = if is_error {
                SyscallResult::Failed { errno: (-rval) as i32 }
            } else {
                SyscallResult::Returned { value: rval }
            };
        }
        if is_error {
            return Ok(());
        }
        if let Some(effect) = self.ns_exit(tid, tgid, &call, *ns, rval, false)? {
            if let Some(i) = call.event {
                self.events[i].effect = effect;
            }
        }
        Ok(())
    }

    /// At the end: the namespace calls the kill caught inside the kernel,
    /// settled by what the tree shows, in the order they were made.
    pub(super) fn settle_unfinished(&mut self) -> Result<(), OracleError> {
        let mut calls = std::mem::take(&mut self.ns_unfinished);
        calls.sort_by_key(|(seq, ..)| *seq);
        for (seq, tgid, sys, ns) in calls {
            if let Err(e) = self.settle(seq, tgid, sys, ns, false) {
                self.abort.get_or_insert(e);
            }
        }
        Ok(())
    }

    /// The outcome's three views of the files at the end: by path, the
    /// namespace trace, and by [`FileId`] with the newest content.
    #[allow(clippy::type_complexity)]
    pub(super) fn end_images(
        &mut self,
    ) -> Result<(BTreeMap<PathBuf, FileShadow>, NamespaceTrace, BTreeMap<FileId, InodeImage>), OracleError> {
        let mut store = self.store.take().expect("the store lives until the outcome");
        let view = self.ns.end_view().map_err(|e| {
            OracleError::io(format!("cannot list the watched directory {}", self.ns.watch().display()), e)
        })?;
        let newest = self.ns.newest_images()?;
        let (mut history, stats) = match store.history.take() {
            Some(h) => h.finish(),
            None => Default::default(),
        };
        self.history = stats;
        let mut inodes = BTreeMap::new();
        for (id, newest) in newest {
            let h = history.remove(&id).unwrap_or_default();
            let (history, first_changed) = (h.versions, h.first_changed);
            inodes.insert(id, InodeImage { shadow: store.take(id), newest, history, first_changed });
        }
        let mut files = BTreeMap::new();
        for (path, id) in view {
            let shadow = match id.and_then(|id| inodes.get(&id)) {
                Some(img) => img.shadow.clone(),
                None => store.fresh(),
            };
            files.insert(path, shadow);
        }
        let trace = self.ns.take_trace();
        debug_assert!(trace.files.iter().all(|f| f.kind != FileKind::Regular || inodes.contains_key(&f.id)));
        Ok((files, trace, inodes))
    }
}

fn ambiguous(detail: &str) -> SyncEffect {
    SyncEffect::NoGuarantee(crate::oracle::NoGuarantee::Ambiguous { detail: detail.to_string() })
}
