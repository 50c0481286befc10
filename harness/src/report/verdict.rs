//! The verdict of a survival report's cell, mmap or lifecycle: a leaf, so
//! that both cell types take it from here without importing each other.
//!
//! Architecture Invariant: pure (a leaf).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Everything observed is what the model and the expectation allow.
    AsExpected,
    /// The files were inside the model, but acked ops fared otherwise than
    /// the expectation table says (a bug in crashlab's model or table).
    Unexpected,
    /// Something the model forbids happened: the kernel surprised us.
    ModelViolation,
}
