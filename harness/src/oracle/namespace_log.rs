//! The oracle's record of the writer's namespace: every file of the watched
//! tree as a [`FileId`] (one per inode *life*), the directory-entry and size
//! operations and the syncs, as the pure data of
//! [`crate::namespace::trace`].
//!
//! **Why the oracle holds a descriptor to every file it knows.** A file is
//! identified by `(st_dev, st_ino)` while the run lasts, and ext4 reuses a
//! freed inode number at once: a name unlinked and created again often gets
//! the same number. Holding a descriptor keeps the inode alive (unlinked but
//! not freed), so its number cannot be given to a later file during the run,
//! and a `(dev, ino)` seen at any time names at most one [`FileId`]. The same
//! descriptor lets the oracle read the **newest content** of every file at
//! the end, even of files the writer unlinked (a power loss may bring them
//! back when the unlink was not durable), and copy synced ranges without
//! opening paths that may name another file by then.
//!
//! Descriptors are `O_RDONLY | O_CLOEXEC | O_NOFOLLOW` (with `O_DIRECTORY`
//! for directories; `O_PATH` for symlinks, which cannot be opened for
//! reading, and for directories the oracle may not read). Reading never
//! starts writeback, and closing a read-only descriptor never does either
//! (ext4's delayed-allocation flush on close is for writers): holding them
//! changes nothing a power loss would leave. Nothing here writes or syncs.
//!
//! The entries the trace implies are kept up to date ([`NamespaceLog::emit`]
//! applies each operation): they tell which directories are still under the
//! watched directory (a directory moved out takes its subtree with it) and
//! which entry a file has, for messages.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::paths::{self, MountSync};
use super::sys;
use super::OracleError;
use crate::namespace::trace::{Entry, FileId, FileKind, Name, NamespaceTrace, NsEvent, NsOp, TracedFile};

/// The most files (of every kind, the watched directory included) one run
/// may know: each costs a held descriptor. Beyond it the run fails with
/// [`OracleError::Limit`].
pub const MAX_FILES: usize = 4096;

/// The most bytes of newest content (the end image of every regular file,
/// unlinked ones included) one outcome may carry. Beyond it the run fails
/// with [`OracleError::Limit`]: the images are whole files, held in memory
/// next to their shadows.
pub const MAX_NEWEST_BYTES: u64 = 1 << 30;

/// `(st_dev, st_ino)`.
pub type Ident = (u64, u64);

pub fn ident(st: &libc::stat) -> Ident {
    (st.st_dev, st.st_ino)
}

/// The kinds of file the trace models; anything else (fifos, sockets,
/// devices) is invisible to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Regular,
    Directory,
    Symlink,
}

pub fn kind_of(st: &libc::stat) -> Option<Kind> {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => Some(Kind::Regular),
        libc::S_IFDIR => Some(Kind::Directory),
        libc::S_IFLNK => Some(Kind::Symlink),
        _ => None,
    }
}

/// How to open a file the oracle starts to hold.
#[derive(Debug, Clone, Copy)]
pub enum Opener<'a> {
    /// `name` in a directory the oracle holds.
    At(FileId, &'a [u8]),
    /// A `/proc/TID/fd/N` magic link (an `O_TMPFILE` file has no name).
    ProcFd(&'a [u8]),
}

struct Held {
    file: File,
    /// The size the trace last recorded (regular files).
    size: u64,
    /// `FS_SYNC_FL`, or a `sync` mount: every write is `O_DSYNC`
    /// (`IS_SYNC` in the kernel's `iocb_flags`).
    sync_inode: bool,
    /// `FS_DIRSYNC_FL`/`FS_SYNC_FL`, or a `sync`/`dirsync` mount: every entry
    /// change in this directory is synchronous (`IS_DIRSYNC`).
    dirsync: bool,
}

pub struct NamespaceLog {
    watch: PathBuf,
    trace: NamespaceTrace,
    held: Vec<Held>,
    by_ino: HashMap<Ident, FileId>,
    names: BTreeMap<(FileId, Name), FileId>,
    /// One entry naming each file that has one (a directory's only one:
    /// directories have no hard links), for `in_tree` and `path_of`.
    parent: HashMap<FileId, (FileId, Name)>,
    mounts: Vec<(u64, MountSync)>,
    /// Files whose content or size a traced call changed since the last
    /// [`NamespaceLog::take_changed`] (the write history reads them), kept
    /// only once [`NamespaceLog::track_changes`] asked for it (else nothing
    /// would ever take them).
    changed: Vec<FileId>,
    track_changes: bool,
}

fn limit_files(detail: String) -> OracleError {
    OracleError::Limit { what: "tracked files", limit: MAX_FILES as u64, detail }
}

fn show(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

impl NamespaceLog {
    /// Walk the watched tree (regular files, directories, symlinks; other
    /// kinds are skipped) and hold every file. Must run before the writer
    /// starts. [`FileId`]s are given in the walk's order, names sorted.
    /// `mount_namespace_of`: the process whose mount namespace the writer
    /// will run in (see [`crate::oracle::OracleConfig::mount_namespace_of`]):
    /// the directory is opened as that namespace shows it, through
    /// `/proc/PID/root` (the walk crosses that namespace's mounts), and its
    /// mounts are that namespace's; the path itself (what the writer's
    /// `/proc/TID/cwd` shows) is the same in both.
    pub fn snapshot(watch_dir: &Path, mount_namespace_of: Option<i32>) -> Result<NamespaceLog, OracleError> {
        let watch = std::fs::canonicalize(watch_dir)
            .map_err(|e| OracleError::io(format!("cannot resolve the watched directory {}", watch_dir.display()), e))?;
        let proc_dir = mount_namespace_of.map_or_else(|| "/proc/self".to_owned(), |pid| format!("/proc/{pid}"));
        let mut open_path = match mount_namespace_of {
            Some(_) => format!("{proc_dir}/root").into_bytes(),
            None => Vec::new(),
        };
        open_path.extend_from_slice(watch.as_os_str().as_bytes());
        let what = || format!("cannot open the watched directory {} (as {})", watch.display(), show(&open_path));
        let fd = sys::open_at(None, &open_path, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW)
            .map_err(|e| OracleError::io(what(), e))?;
        let st = sys::lstat_at(fd.as_fd(), b"").map_err(|e| OracleError::io(what(), e))?.expect("an open directory");
        let mounts = std::fs::read_to_string(format!("{proc_dir}/mountinfo"))
            .map(|t| paths::parse_mountinfo(&t))
            .unwrap_or_default();
        let mut log = NamespaceLog {
            watch,
            trace: NamespaceTrace::default(),
            held: Vec::new(),
            by_ino: HashMap::new(),
            names: BTreeMap::new(),
            parent: HashMap::new(),
            mounts,
            changed: Vec::new(),
            track_changes: false,
        };
        log.hold(fd, &st, FileKind::Directory, true, 0)?;
        let mut stack = vec![FileId::ROOT];
        while let Some(dir) = stack.pop() {
            let listing = format!("/proc/self/fd/{}", log.held[dir.index()].file.as_raw_fd());
            let mut names: Vec<Vec<u8>> = std::fs::read_dir(&listing)
                .and_then(|it| it.map(|e| e.map(|e| e.file_name().as_bytes().to_vec())).collect())
                .map_err(|e| OracleError::io(format!("cannot list {}", log.describe_dir(dir)), e))?;
            names.sort();
            let mut subdirs = Vec::new();
            for name in names {
                let what = || format!("cannot stat {}", log.describe_at(dir, &name));
                let Some(st) = sys::lstat_at(log.fd(dir), &name).map_err(|e| OracleError::io(what(), e))? else {
                    continue;
                };
                let Some(kind) = kind_of(&st) else { continue };
                let file = match log.lookup(ident(&st)) {
                    // A hard link to a file already seen.
                    Some(f) => f,
                    None => {
                        let size = if kind == Kind::Regular { st.st_size as u64 } else { 0 };
                        let f = log.register(Opener::At(dir, &name), &st, true, size)?;
                        if kind == Kind::Directory {
                            subdirs.push(f);
                        }
                        f
                    }
                };
                log.trace.initial.push(Entry { dir, name: name.clone(), file });
                log.names.insert((dir, name.clone()), file);
                log.parent.entry(file).or_insert((dir, name));
            }
            // Depth first, in name order.
            stack.extend(subdirs.into_iter().rev());
        }
        Ok(log)
    }

    pub fn watch(&self) -> &Path {
        &self.watch
    }

    /// The watched directory's device.
    pub fn root_dev(&self) -> u64 {
        self.trace.files[0].dev
    }

    /// The device of a file (`st_dev` when the oracle first saw it).
    pub fn trace_file_dev(&self, id: FileId) -> u64 {
        self.trace.files[id.index()].dev
    }

    /// The inode number of a file (when the oracle first saw it).
    pub fn trace_file_ino(&self, id: FileId) -> u64 {
        self.trace.files[id.index()].ino
    }

    /// Does `name` in a held directory name an empty directory?
    pub fn is_empty_dir_at(&self, dir: FileId, name: &[u8]) -> io::Result<bool> {
        let fd = sys::open_at(Some(self.fd(dir)), name, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW)?;
        let mut it = std::fs::read_dir(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
        Ok(it.next().is_none())
    }

    fn mount_sync(&self, dev: u64) -> MountSync {
        self.mounts.iter().find(|(d, _)| *d == dev).map(|(_, m)| *m).unwrap_or_default()
    }

    /// Start holding `st`'s file (opened by `how`), as a new [`FileId`].
    /// `initial_size`: the size the trace starts it with (0 for a file the
    /// writer just created; its size for a file found at start or moved in).
    pub fn register(
        &mut self,
        how: Opener<'_>,
        st: &libc::stat,
        at_start: bool,
        initial_size: u64,
    ) -> Result<FileId, OracleError> {
        let Some(kind) = kind_of(st) else {
            return Err(OracleError::Invalid(format!(
                "{} is not a regular file, directory or symlink",
                self.show(how)
            )));
        };
        let open = |flags: libc::c_int| -> io::Result<OwnedFd> {
            match how {
                Opener::At(dir, name) => sys::open_at(Some(self.fd(dir)), name, flags | libc::O_NOFOLLOW),
                // The magic link must be followed.
                Opener::ProcFd(link) => sys::open_at(None, link, flags),
            }
        };
        let what = || format!("cannot open {} to follow it", self.show(how));
        let (fd, file_kind) = match kind {
            Kind::Regular => (open(libc::O_RDONLY).map_err(|e| OracleError::io(what(), e))?, FileKind::Regular),
            Kind::Directory => {
                let fd = open(libc::O_RDONLY | libc::O_DIRECTORY)
                    .or_else(|_| open(libc::O_PATH | libc::O_DIRECTORY))
                    .map_err(|e| OracleError::io(what(), e))?;
                (fd, FileKind::Directory)
            }
            Kind::Symlink => {
                let target = match how {
                    Opener::At(dir, name) => {
                        read_link_at(self.fd(dir), name).map_err(|e| OracleError::io(what(), e))?
                    }
                    Opener::ProcFd(_) => Vec::new(),
                };
                (open(libc::O_PATH).map_err(|e| OracleError::io(what(), e))?, FileKind::Symlink { target })
            }
        };
        // The name may have been replaced between the stat and the open.
        let now = sys::lstat_at(fd.as_fd(), b"").map_err(|e| OracleError::io(what(), e))?;
        if now.map(|n| ident(&n)) != Some(ident(st)) {
            return Err(OracleError::Tracer(format!(
                "{} changed while the oracle opened it (another process renamed it?)",
                self.show(how)
            )));
        }
        self.hold(fd, st, file_kind, at_start, initial_size)
    }

    fn hold(
        &mut self,
        fd: OwnedFd,
        st: &libc::stat,
        kind: FileKind,
        at_start: bool,
        initial_size: u64,
    ) -> Result<FileId, OracleError> {
        if self.held.len() >= MAX_FILES {
            return Err(limit_files(format!(
                "the writer's tree under {} has more files; crashlab needs one descriptor per file",
                self.watch.display()
            )));
        }
        let id = FileId(self.held.len() as u32);
        let (dev, ino) = ident(st);
        let flags = sys::inode_flags(fd.as_fd());
        let mount = self.mount_sync(dev);
        self.held.push(Held {
            file: File::from(fd),
            size: initial_size,
            sync_inode: mount.sync || flags & sys::FS_SYNC_FL != 0,
            dirsync: mount.sync || mount.dirsync || flags & (sys::FS_SYNC_FL | sys::FS_DIRSYNC_FL) != 0,
        });
        self.trace.files.push(TracedFile { id, kind, dev, ino, at_start, initial_size });
        self.by_ino.insert((dev, ino), id);
        Ok(id)
    }

    /// Read the inode flags again (after `FS_IOC_SETFLAGS`/`FS_IOC_FSSETXATTR`).
    pub fn refresh_flags(&mut self, id: FileId) {
        let dev = self.trace.files[id.index()].dev;
        let mount = self.mount_sync(dev);
        let flags = sys::inode_flags(self.fd(id));
        let h = &mut self.held[id.index()];
        h.sync_inode = mount.sync || flags & sys::FS_SYNC_FL != 0;
        h.dirsync = mount.sync || mount.dirsync || flags & (sys::FS_SYNC_FL | sys::FS_DIRSYNC_FL) != 0;
    }

    pub fn lookup(&self, id: Ident) -> Option<FileId> {
        self.by_ino.get(&id).copied()
    }

    /// The file a mapping of `/proc/PID/maps` shows. The device there is
    /// the superblock's, which is not `st_dev` on btrfs subvolumes or
    /// overlayfs: when the pair is unknown and the mapping's path lies under
    /// the watched directory, an inode number that only one known file has
    /// is taken as that file. (Never for a path elsewhere: another
    /// filesystem's inode may have the same number, and copying the watched
    /// file for its msync would claim durability nothing gave.)
    pub fn lookup_mapped(&self, dev: u64, ino: u64, path: &Path) -> Option<FileId> {
        if let Some(f) = self.lookup((dev, ino)) {
            return Some(f);
        }
        if !path.starts_with(&self.watch) {
            return None;
        }
        let mut found = self.by_ino.iter().filter(|((_, i), _)| *i == ino).map(|(_, &f)| f);
        match (found.next(), found.next()) {
            (Some(f), None) => Some(f),
            _ => None,
        }
    }

    pub fn kind(&self, id: FileId) -> &FileKind {
        &self.trace.files[id.index()].kind
    }

    pub fn is_regular(&self, id: FileId) -> bool {
        *self.kind(id) == FileKind::Regular
    }

    pub fn fd(&self, id: FileId) -> BorrowedFd<'_> {
        self.held[id.index()].file.as_fd()
    }

    pub fn file(&self, id: FileId) -> &File {
        &self.held[id.index()].file
    }

    pub fn sync_inode(&self, id: FileId) -> bool {
        self.held[id.index()].sync_inode
    }

    /// Is `id` a directory still under the watched directory (by the
    /// entries the trace implies)?
    pub fn in_tree(&self, id: FileId) -> bool {
        let mut d = id;
        for _ in 0..=self.held.len() {
            if d == FileId::ROOT {
                return true;
            }
            match self.parent.get(&d) {
                Some((p, _)) => d = *p,
                None => return false,
            }
        }
        false
    }

    /// The watched directory a `stat` result names, if it is one.
    pub fn watched_dir(&self, st: &libc::stat) -> Option<FileId> {
        let d = self.lookup(ident(st))?;
        (*self.kind(d) == FileKind::Directory && self.in_tree(d)).then_some(d)
    }

    /// `lstat` of `name` in a held directory. `Ok(None)`: no such entry.
    pub fn stat_in(&self, dir: FileId, name: &[u8]) -> io::Result<Option<libc::stat>> {
        sys::lstat_at(self.fd(dir), name)
    }

    /// The file's size now (through the held descriptor).
    pub fn size_now(&self, id: FileId) -> io::Result<u64> {
        Ok(self.held[id.index()].file.metadata()?.len())
    }

    pub fn recorded_size(&self, id: FileId) -> u64 {
        self.held[id.index()].size
    }

    /// After a call that may have changed the size of `file`: a
    /// [`NsOp::SetSize`] if it differs from the size last recorded.
    pub fn note_size(&mut self, call: u64, syscall: &str, file: FileId) -> io::Result<()> {
        let now = self.size_now(file)?;
        if now != self.held[file.index()].size {
            self.emit(call, syscall, NsOp::SetSize { file, size: now });
        }
        Ok(())
    }

    /// Keep the files traced calls change, for [`NamespaceLog::take_changed`].
    pub fn track_changes(&mut self) {
        self.track_changes = true;
    }

    /// A traced write returned on `file`: its content may have changed.
    pub fn note_written(&mut self, file: FileId) {
        if self.track_changes {
            self.changed.push(file);
        }
    }

    /// The files a traced call wrote or resized since the last call of
    /// this (each may be listed more than once).
    pub fn take_changed(&mut self) -> Vec<FileId> {
        std::mem::take(&mut self.changed)
    }

    /// Does `id` have a name in the watched tree now?
    pub fn is_named(&self, id: FileId) -> bool {
        self.parent.contains_key(&id)
    }

    /// Every regular file the oracle holds (unlinked ones included).
    pub fn regular_files(&self) -> Vec<FileId> {
        self.trace.files.iter().filter(|f| f.kind == FileKind::Regular).map(|f| f.id).collect()
    }

    /// Record one operation and apply it to the entries; after an entry
    /// change in a synchronous directory, a [`NsOp::SyncDir`] of it.
    pub fn emit(&mut self, call: u64, syscall: &str, op: NsOp) {
        let dirs = op.dirs();
        match &op {
            NsOp::Create { dir, name, file } | NsOp::Link { dir, name, file } => {
                self.names.insert((*dir, name.clone()), *file);
                self.parent.entry(*file).or_insert((*dir, name.clone()));
            }
            NsOp::Unlink { dir, name, file } => {
                self.names.remove(&(*dir, name.clone()));
                self.forget_name(*file, *dir, name);
            }
            NsOp::Rename { from_dir, from_name, to_dir, to_name, file, replaced } => {
                self.names.remove(&(*from_dir, from_name.clone()));
                self.names.insert((*to_dir, to_name.clone()), *file);
                if let Some(r) = replaced {
                    self.forget_name(*r, *to_dir, to_name);
                }
                if self.parent.get(file).is_none_or(|(d, n)| d == from_dir && n == from_name) {
                    self.parent.insert(*file, (*to_dir, to_name.clone()));
                }
            }
            NsOp::SetSize { file, size } => {
                self.held[file.index()].size = *size;
                if self.track_changes {
                    self.changed.push(*file);
                }
            }
            _ => {}
        }
        self.trace.events.push(NsEvent { call, syscall: syscall.to_string(), op });
        for dir in dirs {
            if self.held[dir.index()].dirsync {
                self.trace.events.push(NsEvent { call, syscall: syscall.to_string(), op: NsOp::SyncDir { dir } });
            }
        }
    }

    /// `dir/name` no longer names `file`: if it was the entry kept for it,
    /// keep another one (a hard link), if any.
    fn forget_name(&mut self, file: FileId, dir: FileId, name: &[u8]) {
        if self.parent.get(&file).is_some_and(|(d, n)| *d == dir && n == name) {
            self.parent.remove(&file);
            if let Some(((d, n), _)) = self.names.iter().find(|(_, &f)| f == file) {
                self.parent.insert(file, (*d, n.clone()));
            }
        }
    }

    /// The file's path under the watched directory by the entries the trace
    /// implies (one of them for a file with several), `None` for a file
    /// with no name there.
    pub fn path_of(&self, id: FileId) -> Option<PathBuf> {
        let mut parts: Vec<&[u8]> = Vec::new();
        let (mut dir, name) = self.parent.get(&id).map(|(d, n)| (*d, n.as_slice()))?;
        parts.push(name);
        while dir != FileId::ROOT {
            let (d, n) = self.parent.get(&dir)?;
            parts.push(n);
            dir = *d;
            if parts.len() > self.held.len() {
                return None;
            }
        }
        Some(parts.iter().rev().map(|p| Path::new(std::ffi::OsStr::from_bytes(p))).collect())
    }

    /// For messages: the file's path, or what is known of it.
    pub fn describe(&self, id: FileId) -> String {
        match self.path_of(id) {
            Some(p) => self.watch.join(p).display().to_string(),
            None if id == FileId::ROOT => self.watch.display().to_string(),
            None => format!("an unlinked or moved-out file (inode {})", self.trace.files[id.index()].ino),
        }
    }

    fn describe_dir(&self, dir: FileId) -> String {
        self.describe(dir)
    }

    pub fn describe_at(&self, dir: FileId, name: &[u8]) -> String {
        format!("{}/{}", self.describe(dir), show(name))
    }

    fn show(&self, how: Opener<'_>) -> String {
        match how {
            Opener::At(dir, name) => self.describe_at(dir, name),
            Opener::ProcFd(link) => show(link),
        }
    }

    /// Every regular file under the watched directory now, by relative path,
    /// with the [`FileId`] it is (`None`: a file the oracle never saw, made
    /// by another program).
    pub fn end_view(&self) -> io::Result<Vec<(PathBuf, Option<FileId>)>> {
        let mut out = Vec::new();
        let mut stack = vec![PathBuf::new()];
        while let Some(rel) = stack.pop() {
            for entry in std::fs::read_dir(self.watch.join(&rel))? {
                let entry = entry?;
                let ty = entry.file_type()?;
                let path = rel.join(entry.file_name());
                if ty.is_dir() {
                    stack.push(path);
                } else if ty.is_file() {
                    let st = sys::stat_path(self.watch.join(&path).as_os_str().as_bytes(), false)?;
                    out.push((path, st.and_then(|st| self.lookup(ident(&st)))));
                }
            }
        }
        Ok(out)
    }

    /// The newest content of every regular file, read through the held
    /// descriptors (after the run: every tracee is dead), within
    /// [`MAX_NEWEST_BYTES`] in all.
    pub fn newest_images(&self) -> Result<BTreeMap<FileId, Vec<u8>>, OracleError> {
        let mut out = BTreeMap::new();
        let mut total = 0u64;
        for id in self.regular_files() {
            let what = || format!("cannot read the end content of {}", self.describe(id));
            let size = self.size_now(id).map_err(|e| OracleError::io(what(), e))?;
            total += size;
            if total > MAX_NEWEST_BYTES {
                return Err(OracleError::Limit {
                    what: "bytes of end images",
                    limit: MAX_NEWEST_BYTES,
                    detail: format!(
                        "the writer's files add up to more ({} has {size} bytes); crashlab keeps every file's end \
                         content in memory",
                        self.describe(id)
                    ),
                });
            }
            let mut data = vec![0u8; size as usize];
            let n = read_fully_at(self.file(id), &mut data, 0).map_err(|e| OracleError::io(what(), e))?;
            data.truncate(n);
            out.insert(id, data);
        }
        Ok(out)
    }

    /// The trace, taken out at the end (the descriptors stay held until
    /// the log is dropped).
    pub fn take_trace(&mut self) -> NamespaceTrace {
        std::mem::take(&mut self.trace)
    }

    #[cfg(test)]
    pub fn trace(&self) -> &NamespaceTrace {
        &self.trace
    }
}

fn read_link_at(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<Vec<u8>> {
    let c = std::ffi::CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut buf = vec![0u8; paths::PATH_MAX];
    // SAFETY: `c` is NUL-terminated; the kernel writes at most `buf.len()`
    // bytes into `buf`, which we own.
    let n = unsafe { libc::readlinkat(dir.as_raw_fd(), c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// `pread` until `buf` is full or the file ends; the bytes read.
pub fn read_fully_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_walk_gives_ids_in_name_order_and_one_id_per_inode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir(p.join("d")).unwrap();
        std::fs::write(p.join("d/inner"), b"xyz").unwrap();
        std::fs::write(p.join("a"), b"hello").unwrap();
        std::fs::hard_link(p.join("a"), p.join("b")).unwrap();
        std::os::unix::fs::symlink("a", p.join("s")).unwrap();
        let log = NamespaceLog::snapshot(p, None).unwrap();
        let t = log.trace();
        let kinds: Vec<&FileKind> = t.files.iter().map(|f| &f.kind).collect();
        assert_eq!(
            kinds,
            [
                &FileKind::Directory,
                &FileKind::Regular,
                &FileKind::Directory,
                &FileKind::Symlink { target: b"a".to_vec() },
                &FileKind::Regular
            ]
        );
        assert!(t.files.iter().all(|f| f.at_start));
        assert_eq!(t.files[1].initial_size, 5);
        let e = |d: u32, n: &str, f: u32| Entry { dir: FileId(d), name: n.as_bytes().to_vec(), file: FileId(f) };
        assert_eq!(t.initial, vec![e(0, "a", 1), e(0, "b", 1), e(0, "d", 2), e(0, "s", 3), e(2, "inner", 4)]);
        assert!(log.in_tree(FileId(2)));
        assert_eq!(log.path_of(FileId(4)), Some(PathBuf::from("d/inner")));
        let ino = t.files[4].ino;
        let under = log.watch().join("d/inner");
        assert_eq!(log.lookup_mapped(0xdead, ino, &under), Some(FileId(4)), "a unique inode number under the tree");
        assert_eq!(log.lookup_mapped(0xdead, ino, Path::new("/elsewhere/x")), None, "never for another path");
        let images = log.newest_images().unwrap();
        assert_eq!(images[&FileId(1)], b"hello");
    }

    #[test]
    fn entry_operations_move_subtrees_out_and_emit_dirsync() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("d/e")).unwrap();
        let mut log = NamespaceLog::snapshot(dir.path(), None).unwrap();
        let (d, e) = (FileId(1), FileId(2));
        assert!(log.in_tree(e));
        log.emit(3, "rename", NsOp::Unlink { dir: FileId::ROOT, name: b"d".to_vec(), file: d });
        assert!(!log.in_tree(e), "moved out with its parent");
        log.held[0].dirsync = true;
        log.emit(4, "rename", NsOp::Link { dir: FileId::ROOT, name: b"x".to_vec(), file: d });
        assert!(log.in_tree(e));
        let ev = &log.trace().events;
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[2].op, NsOp::SyncDir { dir: FileId::ROOT });
        assert_eq!(ev[2].call, 4);
        assert_eq!(log.path_of(e), Some(PathBuf::from("x/e")));
    }

    #[test]
    fn more_files_than_the_limit_fail_clearly() {
        let dir = tempfile::tempdir().unwrap();
        // The watched directory is one of the MAX_FILES.
        for i in 0..MAX_FILES {
            std::fs::write(dir.path().join(format!("f{i}")), b"").unwrap();
        }
        match NamespaceLog::snapshot(dir.path(), None) {
            Err(e @ OracleError::Limit { limit, .. }) => {
                assert_eq!(limit, MAX_FILES as u64);
                assert!(e.to_string().contains("limit of 4096 tracked files"), "{e}");
            }
            other => panic!("expected the file limit, got {:?}", other.map(|_| ())),
        }
    }

    #[test]
    fn a_file_keeps_a_path_while_it_has_a_hard_link() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), b"x").unwrap();
        std::fs::hard_link(dir.path().join("a"), dir.path().join("b")).unwrap();
        let mut log = NamespaceLog::snapshot(dir.path(), None).unwrap();
        let f = FileId(1);
        assert_eq!(log.path_of(f), Some(PathBuf::from("a")));
        log.emit(2, "unlink", NsOp::Unlink { dir: FileId::ROOT, name: b"a".to_vec(), file: f });
        assert_eq!(log.path_of(f), Some(PathBuf::from("b")));
        let (from, to) = (b"b".to_vec(), b"c".to_vec());
        let op = NsOp::Rename {
            from_dir: FileId::ROOT,
            from_name: from,
            to_dir: FileId::ROOT,
            to_name: to,
            file: f,
            replaced: None,
        };
        log.emit(3, "rename", op);
        assert_eq!(log.path_of(f), Some(PathBuf::from("c")));
        log.emit(4, "unlink", NsOp::Unlink { dir: FileId::ROOT, name: b"c".to_vec(), file: f });
        assert_eq!(log.path_of(f), None);
        assert_eq!(log.describe(f), format!("an unlinked or moved-out file (inode {})", log.trace_file_ino(f)));
    }
}
