//! What one trial of a built-in writer found: the facts of its crash, the
//! process-crash verdict, and the power-loss outcome of the same instant.
//! The lab's workers produce it, the pool carries it as JSON, the survival
//! report aggregates it.
//!
//! Architecture Invariant: pure data.

use serde::{Deserialize, Serialize};

use crate::power_loss::PowerLossOutcome;
use crate::process_model::{ProcessVerdict, TrialFacts};

/// What a trial found. Pure data, sent back to the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    pub facts: TrialFacts,
    /// The process-crash verdict on the file as the crash left it.
    pub verdict: ProcessVerdict,
    /// The simulated power-loss verdict at the same instant, when planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_loss: Option<PowerLossOutcome>,
}
