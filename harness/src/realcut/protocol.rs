//! The messages between a soundness campaign and a realcut worker
//! (`crashlab __realcut-worker`): one JSON object per line, as in
//! [`crate::lab::protocol`].
//!
//! Architecture Invariant: pure data.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::campaign::PageCacheStart;
use super::judge::RealJudgement;
use super::ns_judge::{NsJudgement, ObservedDir};
use super::ns_workload::{NsFile, NsWorkloadId};
use crate::crash::CrashPoint;
use crate::process_model::TrialFacts;
use crate::spec::WriterSpec;
use crate::vocab::{CutMethod, FsKind, Writeback};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum RealRequest {
    /// Build the payloads and journal of `spec`; its file is made on each
    /// filesystem when first used there.
    Prepare { key: u64, spec: WriterSpec },
    /// Run trials of a prepared spec on `fs` (made on first use), cutting
    /// the power after each crash.
    Run {
        key: u64,
        fs: FsKind,
        cut: CutMethod,
        points: Vec<CrashPoint>,
        /// Where to keep the evidence of a violation (made on demand).
        keep_dir: PathBuf,
        /// Testing aid: corrupt the file after the cut, so the violation
        /// path (exit 1, evidence kept) can be tested on a sound kernel.
        #[serde(default)]
        inject_fault: bool,
        /// Trials sharing one cut (a cut group): each writer on a file of
        /// its own, one after the other, then one cut for all of them.
        #[serde(default = "super::campaign::one_writer")]
        writers_per_cut: u32,
        /// How each file's page cache is made before its writer runs.
        #[serde(default)]
        page_cache: PageCacheStart,
        /// The per-cut writeback pressure while the writers run
        /// ([`crate::realcut::pressure::start_pressure`]).
        #[serde(default)]
        writeback: Writeback,
    },
    /// Run namespace cuts of `workload` on `fs` (made on first use): each
    /// point on a fresh directory of its own, one cut each.
    RunNamespace {
        workload: NsWorkloadId,
        fs: FsKind,
        cut: CutMethod,
        points: Vec<CrashPoint>,
        /// Where to keep the evidence of a violation (made on demand).
        keep_dir: PathBuf,
        /// Testing aid: put a file no step made into the directory after
        /// the cut (the violation path on a sound kernel).
        #[serde(default)]
        inject_fault: bool,
    },
    /// The benchmark floor on `fs`: `trials` bare loops of one write +
    /// msync(MS_SYNC) of `size` bytes, the cut, and reading the file back.
    Floor { fs: FsKind, cut: CutMethod, size: u64, trials: u32 },
    /// The workload floor: the ops of prepared spec `key` up to each point,
    /// executed bare (in the worker: no fork, no journal, no model, no
    /// reset), each followed by the cut and reading the file back.
    WorkloadFloor { key: u64, fs: FsKind, cut: CutMethod, points: Vec<CrashPoint> },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum RealResponse {
    Prepared { key: u64 },
    Ran { records: Vec<RealTrialRecord> },
    RanNamespace { records: Vec<NsCutRecord> },
    Floor { trials: u32, nanos: u64 },
    Error { message: String },
}

/// One real power cut and what the model made of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealTrialRecord {
    pub fs: FsKind,
    pub cut: CutMethod,
    pub facts: TrialFacts,
    pub judgement: RealJudgement,
    /// The directory holding the evidence of a violation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<PathBuf>,
    /// Nanoseconds from fork to the file read back after the cut; for a cut
    /// shared by several writers, the group's time divided among them.
    pub trial_ns: u64,
}

/// One real power cut of a namespace workload and what the namespace
/// model made of the directory it left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsCutRecord {
    pub fs: FsKind,
    pub cut: CutMethod,
    pub workload: NsWorkloadId,
    pub point: CrashPoint,
    pub judgement: NsJudgement,
    /// The directory as read after the cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<ObservedDir>,
    /// The inode number each file of the workload got when it was created,
    /// by file number (`reuse-name`: did the filesystem reuse one?).
    pub inos: Vec<(NsFile, u64)>,
    /// The directory holding the evidence of a violation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept: Option<PathBuf>,
    /// Nanoseconds from the directory's creation to the post-cut directory read.
    pub cut_ns: u64,
}

impl NsCutRecord {
    /// Did a file get an inode number an earlier file of the same cut had?
    pub fn reused_an_inode(&self) -> bool {
        let mut seen = std::collections::HashSet::new();
        self.inos.iter().any(|(_, ino)| !seen.insert(*ino))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_request_of_an_older_harness_means_one_writer_per_cut_on_read_page_cache_without_pressure() {
        let req: RealRequest = serde_json::from_str(
            r#"{"request":"run","key":0,"fs":"ext4","cut":"shutdown","points":[],"keep_dir":"/k"}"#,
        )
        .unwrap();
        assert!(matches!(
            req,
            RealRequest::Run { page_cache: PageCacheStart::Read, writers_per_cut: 1, writeback: Writeback::None, .. }
        ));
    }
}
