//! Where a crash at a traced sync call strikes: before the call runs or
//! after it returned. The durability oracle acts on it; plans, replay lines
//! and reports name it.
//!
//! Architecture Invariant: pure.

use serde::{Deserialize, Serialize};

/// At which stop of the chosen call the writer is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashWhen {
    /// At its seccomp entry stop: the call never runs.
    Before,
    /// At its syscall-exit stop, after a successful sync was copied: the
    /// call completed but the writer never saw its return.
    After,
}

impl CrashWhen {
    pub fn name(self) -> &'static str {
        match self {
            CrashWhen::Before => "before",
            CrashWhen::After => "after",
        }
    }
}

impl std::fmt::Display for CrashWhen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
