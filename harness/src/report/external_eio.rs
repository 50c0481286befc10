//! The `eio-sync` part of a trial (schema 1.7): the data sync crashlab made
//! fail with `EIO`, what it covered, and what the writer did next. The
//! trials themselves are power-loss trials (`external_power_loss.rs`):
//! their section has the same shape, under `eio_sync`.
//!
//! Architecture Invariant: pure.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The failed sync of one `eio-sync` trial, and the writer's reaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EioSyncFacts {
    /// Its number among the data syncs (`fsync`, `fdatasync`,
    /// `msync(MS_SYNC)`), and which call it was.
    pub nth: u64,
    pub syscall: String,
    /// The ranges of the watched directory's files it covered.
    pub covered: Vec<EioRange>,
    /// Ack lines printed before the call, and after it (until the power
    /// cut or the writer's end).
    pub acks_before: u64,
    pub acks_after: u64,
    /// Data syncs the writer made after it that made something durable,
    /// and whether one of them covered part of the failed range (a retry).
    pub later_syncs: u64,
    pub retried: bool,
    /// How the writer's run ended: `exited with status N`, `died of SIGX`,
    /// or `power cut` (it was still running).
    pub writer_end: String,
}

/// One file's range a failed sync covered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EioRange {
    /// Relative to the trial directory.
    pub path: String,
    pub offset: u64,
    pub len: u64,
    /// Pages it left uncertain: their durable content stays their floor or
    /// a version they had up to the failure, even across later successful
    /// syncs, until the writer stores into them again.
    pub uncertain_pages: u64,
}

impl EioSyncFacts {
    /// What the writer did after the failed call, in a few words.
    pub fn next(&self) -> String {
        let mut parts = Vec::new();
        if self.retried {
            parts.push("retried the sync".to_owned());
        }
        parts.push(match self.acks_after {
            0 => "made no more acks".to_owned(),
            1 => "made 1 more ack".to_owned(),
            n => format!("made {n} more acks"),
        });
        parts.push(self.writer_end.clone());
        parts.join(", ")
    }
}

impl fmt::Display for EioSyncFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (data sync {}) failed with EIO", self.syscall, self.nth)?;
        for r in &self.covered {
            write!(f, "; {} bytes {}..{} ({} pages uncertain)", r.path, r.offset, r.offset + r.len, r.uncertain_pages)?;
        }
        write!(f, "; then the writer {}", self.next())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_facts_read_as_the_call_its_range_and_what_the_writer_did_next() {
        let f = EioSyncFacts {
            nth: 3,
            syscall: "msync".into(),
            covered: vec![EioRange { path: "log".into(), offset: 4096, len: 4096, uncertain_pages: 1 }],
            acks_before: 2,
            acks_after: 1,
            later_syncs: 1,
            retried: true,
            writer_end: "exited with status 0".into(),
        };
        assert_eq!(
            f.to_string(),
            "msync (data sync 3) failed with EIO; log bytes 4096..8192 (1 pages uncertain); then the writer \
             retried the sync, made 1 more ack, exited with status 0"
        );
        let quits = EioSyncFacts { retried: false, acks_after: 0, writer_end: "exited with status 3".into(), ..f };
        assert_eq!(quits.next(), "made no more acks, exited with status 3");
    }
}
