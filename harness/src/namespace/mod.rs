//! The namespace of a user's program after a power loss: which directory
//! entries and file sizes a crash may leave, from what the durability
//! oracle saw ([`trace`]), under a persistence model of the filesystem
//! ([`FsModel`]).
//!
//! Files are inodes ([`trace::FileId`]); a name is a directory entry that
//! points at one. Content durability belongs to the file (the oracle's
//! shadow, keyed by `FileId`), entry durability to the directory.
//!
//! Architecture Invariant: pure.

pub mod model;
#[cfg(test)]
mod model_tests;
pub mod naive_oracle;
pub mod trace;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use model::{NsModel, NsModelError, NsUnit, NsUnitKind};
pub use trace::{Entry, FileId, FileKind, Name, NamespaceTrace, NsEvent, NsOp, TracedFile};

/// Which rules decide what a completed sync made durable in the namespace
/// (`--fs-model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FsModel {
    /// The POSIX / man-page contract: an entry change (create, link,
    /// unlink, rename) is durable only once its directory was fsynced after
    /// it (or `sync`/`syncfs` ran); a size only once the file was synced.
    #[default]
    Posix,
    /// POSIX plus what real ext4 (`data=ordered`) cuts showed: a sync of a
    /// file makes its creation durable, and every entry and size change
    /// made before its last change (the journal commits in order). See
    /// [`model::fs_rule_forces`] for the rules and their evidence.
    Ext4,
    /// As ext4 (the log is ordered too).
    Xfs,
    /// POSIX plus: a sync of a file makes its own creation durable (and
    /// nothing of other files: real btrfs cuts lost them).
    Btrfs,
}

impl FsModel {
    pub const ALL: [FsModel; 4] = [FsModel::Posix, FsModel::Ext4, FsModel::Xfs, FsModel::Btrfs];

    pub fn name(self) -> &'static str {
        match self {
            FsModel::Posix => "posix",
            FsModel::Ext4 => "ext4",
            FsModel::Xfs => "xfs",
            FsModel::Btrfs => "btrfs",
        }
    }
}

impl fmt::Display for FsModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FsModel {
    type Err = String;

    fn from_str(s: &str) -> Result<FsModel, String> {
        FsModel::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<&str> = FsModel::ALL.iter().map(|m| m.name()).collect();
            format!("unknown filesystem model {s:?}; known: {}", names.join(", "))
        })
    }
}

/// One namespace a power loss may leave: the surviving entries and the size
/// of every regular file that has a name in it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct NsState {
    pub entries: BTreeSet<Entry>,
    pub sizes: BTreeMap<FileId, u64>,
}

impl NsState {
    /// Every name reachable from the root, as a path relative to it, with
    /// the file it names; a directory's entries after the directory. A
    /// directory is entered by its first name only (a second would be a
    /// cycle).
    pub fn paths(&self, trace: &NamespaceTrace) -> Vec<(PathBuf, FileId)> {
        let mut out = Vec::new();
        let mut entered = BTreeSet::from([FileId::ROOT]);
        let mut stack = vec![(PathBuf::new(), FileId::ROOT)];
        while let Some((path, dir)) = stack.pop() {
            for e in self.entries.iter().filter(|e| e.dir == dir) {
                let p = path.join(OsStr::from_bytes(&e.name));
                if trace.file(e.file).kind == FileKind::Directory {
                    if !entered.insert(e.file) {
                        continue;
                    }
                    stack.push((p.clone(), e.file));
                }
                out.push((p, e.file));
            }
        }
        out
    }

    /// The files that have at least one name reachable from the root.
    pub fn reachable(&self) -> BTreeSet<FileId> {
        let mut seen = BTreeSet::from([FileId::ROOT]);
        let mut stack = vec![FileId::ROOT];
        while let Some(dir) = stack.pop() {
            for e in self.entries.iter().filter(|e| e.dir == dir) {
                if seen.insert(e.file) {
                    stack.push(e.file);
                }
            }
        }
        seen
    }
}
