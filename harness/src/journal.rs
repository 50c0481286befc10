//! What the journal says about a crashed writer: which ops completed, which
//! one was in flight, which failed.
//!
//! The journal itself is a `MAP_SHARED | MAP_ANONYMOUS` region the child
//! marks with atomics (see `lab::journal_region`); this module is the pure
//! decoding of its words into a [`JournalSnapshot`].
//!
//! Architecture Invariant: pure.

use serde::{Deserialize, Serialize};

/// Journal word values. A word per op; the child stores `STARTED` before the
/// op and `DONE` (or `FAILED_BASE + errno`) after it.
pub const PENDING: u32 = 0;
pub const STARTED: u32 = 1;
pub const DONE: u32 = 2;
pub const FAILED_BASE: u32 = 16;

/// An op that returned an error in the child (the child stops there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpFailure {
    pub op: usize,
    pub errno: i32,
}

/// The writer's progress when it died. Ops run strictly in order, so the
/// journal always reads: `completed` ops done, then at most one started
/// (in flight) or failed, then nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalSnapshot {
    /// Ops `0..completed` returned.
    pub completed: usize,
    /// The op that had started and not returned when the writer died.
    pub in_flight: Option<usize>,
    pub failed: Option<OpFailure>,
}

impl JournalSnapshot {
    /// Decode journal words. Errs when they break the in-order rule, which
    /// can only mean a harness bug or a corrupted journal.
    pub fn decode(words: &[u32]) -> Result<JournalSnapshot, String> {
        let completed = words.iter().take_while(|&&w| w == DONE).count();
        let mut snap = JournalSnapshot { completed, in_flight: None, failed: None };
        let mut rest = words[completed..].iter().enumerate();
        if let Some((_, &w)) = rest.next() {
            match w {
                PENDING => {}
                STARTED => snap.in_flight = Some(completed),
                w if w >= FAILED_BASE => {
                    snap.failed = Some(OpFailure { op: completed, errno: (w - FAILED_BASE) as i32 })
                }
                w => return Err(format!("journal word {w} at op {completed} is not a state")),
            }
        }
        if let Some((i, w)) = rest.find(|(_, &w)| w != PENDING) {
            return Err(format!(
                "journal out of order: op {} is in state {w} after op {completed} stopped",
                completed + 1 + i
            ));
        }
        Ok(snap)
    }

    /// Did op `i` return successfully?
    pub fn is_done(&self, i: usize) -> bool {
        i < self.completed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_prefix_in_flight_and_failure() {
        let s = JournalSnapshot::decode(&[DONE, DONE, STARTED, PENDING]).unwrap();
        assert_eq!(s, JournalSnapshot { completed: 2, in_flight: Some(2), failed: None });
        assert!(s.is_done(1) && !s.is_done(2));
        let s = JournalSnapshot::decode(&[DONE, FAILED_BASE + 5, PENDING]).unwrap();
        assert_eq!(s.failed, Some(OpFailure { op: 1, errno: 5 }));
        let s = JournalSnapshot::decode(&[DONE, DONE]).unwrap();
        assert_eq!(s.completed, 2);
        assert_eq!(s.in_flight, None);
    }

    #[test]
    fn refuses_out_of_order_journals() {
        assert!(JournalSnapshot::decode(&[DONE, PENDING, DONE]).is_err());
        assert!(JournalSnapshot::decode(&[STARTED, STARTED]).is_err());
        assert!(JournalSnapshot::decode(&[7]).is_err());
    }
}
