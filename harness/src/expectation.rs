//! What the kernel's documented semantics say must become of acknowledged
//! ops, per mapping, sync policy and persistence model. The verdict of a
//! cell compares what was observed with this table.
//!
//! This table is written from the semantics, not computed by the models, so
//! that a model bug shows up as an unexpected verdict.
//!
//! Architecture Invariant: pure.

use serde::{Deserialize, Serialize};

use crate::spec::{MappingKind, SyncPolicy};
use crate::vocab::CrashKind;
use crate::vocab::LifecycleKind;

/// The persistence model a verdict comes from. Every number in a report
/// names one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PersistenceModel {
    /// The process died; the kernel and its page cache lived on.
    ProcessCrash,
    /// The machine lost power at the crash instant (simulated): each page
    /// holds any version between its last completed sync and the crash.
    PowerLoss,
    /// As `PowerLoss`, and each sector (`tear` bytes, 512 by default) of a
    /// page independently holds any of the page's allowed versions.
    PowerLossTorn,
    /// A real power cut (`crashlab matrix --real ...`): the writer is
    /// SIGKILLed at an op boundary and the power cut at once on a real
    /// kernel and filesystem (loopcut, vm). Counts are what the real file
    /// held; a file outside what `PowerLoss` allows is a model violation (the
    /// simulated model is unsound there). Opt-in: not in the default models.
    PowerLossReal,
}

impl PersistenceModel {
    pub const ALL: [PersistenceModel; 4] = [
        PersistenceModel::ProcessCrash,
        PersistenceModel::PowerLoss,
        PersistenceModel::PowerLossTorn,
        PersistenceModel::PowerLossReal,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PersistenceModel::ProcessCrash => "process-crash",
            PersistenceModel::PowerLoss => "power-loss",
            PersistenceModel::PowerLossTorn => "power-loss-torn",
            PersistenceModel::PowerLossReal => "power-loss-real",
        }
    }

    /// A power loss, simulated or real: acks count as survived only if
    /// they are kept (in every allowed state, or in the real file).
    pub fn is_power_loss(self) -> bool {
        self != PersistenceModel::ProcessCrash
    }

    /// A power loss simulated from the journal by the lab's own trials.
    pub fn is_simulated_power_loss(self) -> bool {
        matches!(self, PersistenceModel::PowerLoss | PersistenceModel::PowerLossTorn)
    }

    /// Real power cuts, one cell per real column (`--real`).
    pub fn is_real(self) -> bool {
        self == PersistenceModel::PowerLossReal
    }

    pub fn describe(self) -> &'static str {
        match self {
            PersistenceModel::ProcessCrash => {
                "process crash: the page cache outlives the process, so every completed MAP_SHARED store \
                 is in the file, synced or not; MAP_PRIVATE stores never are"
            }
            PersistenceModel::PowerLoss => {
                "simulated power loss at the crash instant: only what a completed MS_SYNC/fsync/fdatasync \
                 covered is guaranteed; every other page may hold any version it had since (MS_ASYNC \
                 guarantees nothing). Columns: survived = guaranteed in every allowed state; lost/torn = \
                 lost/torn in some state"
            }
            PersistenceModel::PowerLossTorn => {
                "simulated power loss with torn pages: as power-loss, and each sector of a page may hold a \
                 different allowed version"
            }
            PersistenceModel::PowerLossReal => {
                "real power cut at the crash instant (the writer SIGKILLed at an op boundary, then the power cut \
                 on a real kernel and filesystem): survived/lost/torn = what the real post-cut file held, byte \
                 for byte; a file the simulated power-loss model forbids is a model soundness violation"
            }
        }
    }
}

impl std::str::FromStr for PersistenceModel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PersistenceModel::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            format!(
                "unknown persistence model `{s}` (expected process-crash, power-loss, power-loss-torn or \
                 power-loss-real)"
            )
        })
    }
}

impl std::fmt::Display for PersistenceModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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
    policy: SyncPolicy,
    _kind: CrashKind,
    model: PersistenceModel,
) -> AckExpectation {
    match (model, mapping) {
        // Private pages are copies; not even MS_SYNC writes them to the file.
        (_, MappingKind::Private) => AckExpectation::AllLost,
        // The page cache outlives the process: msync or not, the stores are there.
        // `enospc` too: a store the full filesystem cannot back dies of
        // SIGBUS before any later op runs, so every ack was made after its
        // store completed into an allocated page (tmpfs.rst; shared/README.md).
        (PersistenceModel::ProcessCrash, MappingKind::Shared) => AckExpectation::AllSurvive,
        // msync(2): MS_SYNC "requests an update and waits for it to complete";
        // fsync(2) flushes all modified data. A writer that waits for one
        // before acking keeps its acks through a power loss, torn sectors
        // included (the floor of every acked byte is its own version).
        (_, MappingKind::Shared) if policy.syncs_before_ack() => AckExpectation::AllSurvive,
        // No sync, MS_ASYNC (a no-op since 2.6.19) or a sync after the ack:
        // writeback may or may not have happened. (A real power cut promises
        // what the simulated one does: the same arms; so does a power loss
        // at an `enospc` SIGBUS, which is a process death like a SIGKILL.)
        (_, MappingKind::Shared) => AckExpectation::MayBeLost,
    }
}

/// What becomes of the acks of the file-lifecycle family
/// ([`LifecycleKind`]) under `model`: written from the documented
/// semantics, like [`expected_acks`], not derived from the namespace model.
/// (Corruption is never expected in any kind: see
/// `report::survival_lifecycle::judge_lifecycle`.)
pub fn expected_lifecycle_acks(kind: LifecycleKind, model: PersistenceModel) -> AckExpectation {
    match model {
        // A process crash leaves the kernel running: the page cache holds
        // every completed store and the dentry cache every completed
        // rename(2) and creation, whatever was synced. rename(2): "If newpath
        // already exists, it will be atomically replaced, so that there is
        // no point at which another process attempting to access newpath
        // will find it missing"; the name refers to the old or the new file.
        PersistenceModel::ProcessCrash => AckExpectation::AllSurvive,
        // fsync(2): "Calling fsync() does not necessarily ensure that the
        // entry in the directory containing the file has also reached disk.
        // For that an explicit fsync() on a file descriptor for the
        // directory is also needed." The `-dirsync` kinds make that call
        // before acking (after the file's own msync(MS_SYNC) and fsync), so
        // every acked rename or creation is durable; the `-no-dirsync` kinds
        // never do, so any acked rename or creation may be undone (the name
        // `state` then refers to an older complete version: still never a
        // mixed file, since each version was fsynced before its rename).
        _ if kind.dir_fsync() => AckExpectation::AllSurvive,
        _ => AckExpectation::MayBeLost,
    }
}
