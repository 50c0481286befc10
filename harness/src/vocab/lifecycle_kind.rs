//! The rows of the matrix's file-lifecycle family (`crate::lifecycle`),
//! as words the report, the expectation table and the programs share, and
//! the two kinds of reason their checker gives.
//!
//! Architecture Invariant: pure.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// One row of the lifecycle family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LifecycleKind {
    /// Atomic replace via rename, then an fsync of the directory.
    ReplaceDirsync,
    /// Atomic replace via rename, no fsync of the directory.
    ReplaceNoDirsync,
    /// A new file per op, then an fsync of the directory.
    CreateDirsync,
    /// A new file per op, no fsync of the directory.
    CreateNoDirsync,
}

impl LifecycleKind {
    pub const ALL: [LifecycleKind; 4] = [
        LifecycleKind::ReplaceDirsync,
        LifecycleKind::ReplaceNoDirsync,
        LifecycleKind::CreateDirsync,
        LifecycleKind::CreateNoDirsync,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LifecycleKind::ReplaceDirsync => "replace-dirsync",
            LifecycleKind::ReplaceNoDirsync => "replace-no-dirsync",
            LifecycleKind::CreateDirsync => "create-dirsync",
            LifecycleKind::CreateNoDirsync => "create-no-dirsync",
        }
    }

    /// Does the writer fsync the directory before each ack?
    pub fn dir_fsync(self) -> bool {
        matches!(self, LifecycleKind::ReplaceDirsync | LifecycleKind::CreateDirsync)
    }

    /// Replace (`state` renamed over) rather than create (`seg-N`)?
    pub fn replaces(self) -> bool {
        matches!(self, LifecycleKind::ReplaceDirsync | LifecycleKind::ReplaceNoDirsync)
    }

    /// What the writer does per op, for tables and docs.
    pub fn describe(self) -> &'static str {
        match self {
            LifecycleKind::ReplaceDirsync => {
                "state.tmp written through a mapping, msync(MS_SYNC), fsync, rename over state, fsync of the directory, ack"
            }
            LifecycleKind::ReplaceNoDirsync => {
                "state.tmp written through a mapping, msync(MS_SYNC), fsync, rename over state, ack (no directory fsync)"
            }
            LifecycleKind::CreateDirsync => {
                "a new seg-N written through a mapping, msync(MS_SYNC), fsync, fsync of the directory, ack"
            }
            LifecycleKind::CreateNoDirsync => {
                "a new seg-N written through a mapping, msync(MS_SYNC), fsync, ack (no directory fsync)"
            }
        }
    }
}

impl fmt::Display for LifecycleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LifecycleKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        LifecycleKind::ALL.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let names: Vec<&str> = LifecycleKind::ALL.iter().map(|k| k.name()).collect();
            format!("unknown lifecycle kind `{s}` (expected one of {})", names.join(", "))
        })
    }
}

/// How a checker's reason starts when an acked op is missing.
pub const LOST_PREFIX: &str = "lost: ";

/// How a checker's reason starts when a file holds what no write produced.
pub const CORRUPT_PREFIX: &str = "corrupt: ";
