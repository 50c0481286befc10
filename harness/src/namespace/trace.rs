//! What the durability oracle saw a writer do to its directory tree, as
//! data: the files it touched (each a [`FileId`], one per inode *life*: a
//! name re-created after an unlink is a new file even when the filesystem
//! reuses the inode number), the tree when the run started, and the
//! namespace and size operations and completed syncs, in the order the
//! oracle saw them.
//!
//! Content is not here: what a file's pages hold at its durable floor and in
//! the page cache is the oracle's shadow and end image, keyed by the same
//! [`FileId`].
//!
//! Architecture Invariant: pure.

use serde::{Deserialize, Serialize};

/// One component of a path (no `/`, never `.` or `..`), as bytes.
pub type Name = Vec<u8>;

/// A file for the length of one inode's life, numbered in the order the
/// oracle first saw it. [`FileId::ROOT`] is the watched directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileId(pub u32);

impl FileId {
    pub const ROOT: FileId = FileId(0);

    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What a file is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Regular,
    Directory,
    Symlink { target: Vec<u8> },
}

/// One file the run touched or found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracedFile {
    pub id: FileId,
    pub kind: FileKind,
    /// `st_dev` and `st_ino` when the oracle first saw it (for reports; the
    /// identity is `id`).
    pub dev: u64,
    pub ino: u64,
    /// It existed when the run started (its names are in
    /// [`NamespaceTrace::initial`]).
    pub at_start: bool,
    /// Its size when the run started, or when it entered the watched tree:
    /// 0 for a file created during the run, its size then for a file moved
    /// or linked in from outside (a [`NsOp::Create`] gives it this size).
    pub initial_size: u64,
}

/// A directory entry: `name` in directory `dir` names `file`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry {
    pub dir: FileId,
    pub name: Name,
    pub file: FileId,
}

/// One change the writer made, or one completed sync, as the namespace
/// model needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NsOp {
    /// A new file got its first name: an `open`/`openat`/`openat2`/`creat`
    /// with `O_CREAT` that created it, `mkdir(at)`, `symlink(at)`, `mknod(at)`
    /// of a regular file, or a file moved or linked in from outside the
    /// watched tree. A new regular file has its `initial_size` (0 unless
    /// it came from outside).
    Create { dir: FileId, name: Name, file: FileId },
    /// A file with no name yet (`O_TMPFILE`): it exists, but in no
    /// directory until a [`NsOp::Link`] names it.
    CreateUnnamed { file: FileId },
    /// `link(at)`: one more name for an existing file (or the first name of
    /// an `O_TMPFILE` file).
    Link { dir: FileId, name: Name, file: FileId },
    /// `unlink(at)` or `rmdir`: `name` no longer names `file`.
    Unlink { dir: FileId, name: Name, file: FileId },
    /// `rename(at)`/`renameat2` (`RENAME_NOREPLACE` included): the entry
    /// `from_dir/from_name` → `file` moved to `to_dir/to_name`, which named
    /// `replaced` before (that file loses that name).
    Rename { from_dir: FileId, from_name: Name, to_dir: FileId, to_name: Name, file: FileId, replaced: Option<FileId> },
    /// The file's size changed to `size`: `truncate`/`ftruncate`, an open
    /// with `O_TRUNC`, `fallocate` growing it, a `write` past its end.
    SetSize { file: FileId, size: u64 },
    /// A completed `fdatasync` or `msync(MS_SYNC)` of the file (or a write
    /// through an `O_SYNC`/`O_DSYNC` descriptor): what it covered of the
    /// content (the shadow holds exactly that) and the file's size at that
    /// moment are durable (fdatasync(2):
    /// a size change is metadata "needed to allow a subsequent data
    /// retrieval"; msync(MS_SYNC) is `vfs_fsync_range(.., datasync=1)`).
    /// Its name is not.
    SyncData { file: FileId, size: u64 },
    /// A completed `fsync` of a regular file: as [`NsOp::SyncData`] plus
    /// its other metadata. Its name is not made durable (fsync(2): "an
    /// explicit fsync() on a file descriptor for the directory is also
    /// needed").
    SyncFile { file: FileId, size: u64 },
    /// A completed `fsync`/`fdatasync` of a directory, or an operation in
    /// a directory opened or marked `O_DIRSYNC`/`DIRSYNC`: every entry
    /// change in `dir` made before it is durable.
    SyncDir { dir: FileId },
    /// A completed `sync()`, or `syncfs()` of the watched filesystem:
    /// everything before it is durable.
    SyncAll,
}

impl NsOp {
    /// The directories whose entries it changes.
    pub fn dirs(&self) -> Vec<FileId> {
        match self {
            NsOp::Create { dir, .. } | NsOp::Link { dir, .. } | NsOp::Unlink { dir, .. } => vec![*dir],
            NsOp::Rename { from_dir, to_dir, .. } if from_dir == to_dir => vec![*to_dir],
            NsOp::Rename { from_dir, to_dir, .. } => vec![*from_dir, *to_dir],
            _ => Vec::new(),
        }
    }
}

/// One recorded operation and the traced call that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsEvent {
    /// The traced call's sequence number (the oracle's `SyncEvent::seq`
    /// space): "at call 57" in explanations, `@57` in state texts. One call
    /// makes at most one event that is not a sync.
    pub call: u64,
    /// The syscall's name as the user wrote it (`renameat2`, `openat`, ...).
    pub syscall: String,
    pub op: NsOp,
}

/// Everything the namespace model is built from.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NamespaceTrace {
    /// Indexed by [`FileId`]; `files[0]` is the watched directory.
    pub files: Vec<TracedFile>,
    /// The tree when the run started (durable: the setup's files are taken
    /// as synced, as for content).
    pub initial: Vec<Entry>,
    /// In the order the oracle saw the calls return.
    pub events: Vec<NsEvent>,
}

impl NamespaceTrace {
    pub fn file(&self, id: FileId) -> &TracedFile {
        &self.files[id.index()]
    }
}
