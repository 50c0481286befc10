//! What the kernel's documented semantics say must become of acknowledged
//! ops, per mapping, sync policy and persistence model. The verdict of a
//! cell compares what was observed with this table.
//!
//! This table is written from the semantics, not computed by the models, so
//! that a model bug shows up as an unexpected verdict.
//!
//! Architecture Invariant: pure.

use serde::{Deserialize, Serialize};

use crate::crash::CrashKind;
use crate::spec::{MappingKind, SyncPolicy};

/// The persistence model a verdict comes from. Every number in a report
/// names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PersistenceModel {
    /// The process died; the kernel and its page cache lived on.
    ProcessCrash,
}

impl PersistenceModel {
    pub fn name(self) -> &'static str {
        match self {
            PersistenceModel::ProcessCrash => "process-crash",
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            PersistenceModel::ProcessCrash => {
                "process crash: the page cache outlives the process, so every completed MAP_SHARED store \
                 is in the file, synced or not; MAP_PRIVATE stores never are"
            }
        }
    }
}

impl std::fmt::Display for PersistenceModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AckExpectation {
    /// Every acked op survives (bytes cut off by a truncation excepted).
    AllSurvive,
    /// No acked op reaches the file.
    AllLost,
    /// The model promises nothing either way.
    MayBeLost,
}

pub fn expected_acks(
    mapping: MappingKind,
    _policy: SyncPolicy,
    _kind: CrashKind,
    model: PersistenceModel,
) -> AckExpectation {
    match (model, mapping) {
        // The page cache outlives the process: msync or not, the stores are there.
        (PersistenceModel::ProcessCrash, MappingKind::Shared) => AckExpectation::AllSurvive,
        // Private pages are copies; not even MS_SYNC writes them to the file.
        (PersistenceModel::ProcessCrash, MappingKind::Private) => AckExpectation::AllLost,
    }
}
