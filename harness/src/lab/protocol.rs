//! The messages between the pool and a worker: one JSON object per line.
//! Trials travel in batches so one pipe round trip serves many trials.

use serde::{Deserialize, Serialize};

use crate::crash::CrashPoint;
use crate::payload::BaseImage;
use crate::power_loss::PowerLossConfig;
use crate::spec::WriterSpec;
use crate::trial_record::TrialRecord;
use crate::vocab::CrashKind;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    /// Create the file under test for `spec` over `base` (a sparse one on
    /// a tmpfs of exact capacity for `enospc`), map it, calibrate a clean run.
    Prepare {
        key: u64,
        spec: WriterSpec,
        #[serde(default)]
        base: BaseImage,
    },
    /// Can this worker mount the `enospc` column's tmpfs and set its
    /// capacity? Asked of a worker of its own before the column runs.
    ProbeCapacity,
    /// Run trials of a prepared spec, in order.
    Run { key: u64, trials: Vec<TrialPlan> },
    /// The benchmark floor: a bare loop of fork + the spec's stores + SIGKILL
    /// + waitpid + read-back, `trials` times.
    Floor { spec: WriterSpec, trials: u32 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrialPlan {
    pub kind: CrashKind,
    pub point: CrashPoint,
    /// Also judge a simulated power loss at the crash instant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_loss: Option<PowerLossPlan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowerLossPlan {
    pub config: PowerLossConfig,
    /// Seeds the sampled states when the space is too large to exhaust.
    pub seed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    Prepared {
        key: u64,
        clean_ns: u64,
    },
    Ran {
        records: Vec<TrialRecord>,
    },
    Floor {
        trials: u32,
        nanos: u64,
    },
    /// `None`: the `enospc` column can run; else why not.
    CapacityProbe {
        unavailable: Option<String>,
    },
    Error {
        message: String,
    },
}
