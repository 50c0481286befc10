//! What a user's checker said about one directory: consistent, or a
//! violation with its reason. The verdict of every external trial, clean
//! run and power-loss state; a leaf, so the report sections and the code
//! that runs checkers all take it from here.
//!
//! Architecture Invariant: pure (a leaf).

use serde::{Deserialize, Serialize};

/// What the checker said about one directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "verdict", rename_all = "kebab-case")]
pub enum CheckerVerdict {
    /// Exit 0: consistent, every acknowledged operation present.
    Consistent,
    /// Exit 1: a violation; `reason` is the first non-empty line of stderr.
    Violation { reason: String },
}

impl CheckerVerdict {
    pub fn is_violation(&self) -> bool {
        matches!(self, CheckerVerdict::Violation { .. })
    }

    /// The reason of a violation.
    pub fn reason(&self) -> Option<&str> {
        match self {
            CheckerVerdict::Consistent => None,
            CheckerVerdict::Violation { reason } => Some(reason),
        }
    }
}
