//! Where a power-loss violation comes from in the writer's code: the stack
//! of the write that printed the ack the checker's reason names (else the
//! last ack before the power failed), and of
//! the last sync call that covered each unit the minimal explanation needs
//! at its floor, kept from the trial's oracle run and symbolized (only for
//! a violation, while the writer's objects are still on disk).

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;

use super::space::{Dim, StateSpace};
use crate::namespace::trace::FileId;
use crate::oracle::{AckStack, Frame, OracleOutcome, SyncEffect};
use crate::report::source_location::{AckAttribution, ChangeAttribution, PowerLossAttribution, SyncAttribution};
use crate::symbolize::Symbolizer;

/// A completed sync call that copied ranges, with its stack.
struct SyncStack {
    seq: u64,
    syscall: &'static str,
    copied: Vec<(FileId, Range<u64>)>,
    stack: Vec<Frame>,
}

/// What a trial's oracle run recorded for attribution.
#[derive(Default)]
pub(crate) struct TrialStacks {
    /// In call order.
    syncs: Vec<SyncStack>,
    acks: Vec<AckStack>,
    /// Per (file, page) changed since its floor: the stack where the write
    /// history first saw it changed (an index into `change_stacks`).
    changed: HashMap<(FileId, u64), u32>,
    change_stacks: Vec<Vec<Frame>>,
    /// The run captured stacks (without them, nothing is attributed).
    recorded: bool,
}

impl TrialStacks {
    pub(crate) fn of(outcome: Option<&OracleOutcome>) -> TrialStacks {
        let Some(o) = outcome.filter(|o| o.stats.stacks_captured > 0) else { return TrialStacks::default() };
        let syncs = o
            .events
            .iter()
            .filter(|e| e.effect == SyncEffect::Copied)
            .map(|e| SyncStack {
                seq: e.seq,
                syscall: e.syscall.name(),
                copied: e.copied.iter().map(|c| (c.file, c.offset..c.offset.saturating_add(c.len))).collect(),
                stack: e.stack.clone(),
            })
            .collect();
        let changed = o
            .inodes
            .iter()
            .flat_map(|(id, inode)| inode.first_changed.iter().map(move |&(page, stack)| ((*id, page), stack)))
            .collect();
        TrialStacks {
            syncs,
            acks: o.ack_stacks.clone(),
            changed,
            change_stacks: o.change_stacks.clone(),
            recorded: true,
        }
    }

    /// The attribution of a violation whose minimal explanation needs the
    /// dimensions `floor_set` at their floor, with the checker's `reason`,
    /// in a trial that printed the ack lines `acks`.
    pub(crate) fn attribute(
        &self,
        space: &StateSpace,
        floor_set: &[usize],
        reason: &str,
        acks: &[Vec<u8>],
    ) -> PowerLossAttribution {
        if !self.recorded {
            return PowerLossAttribution::default();
        }
        let mut symbolizer = Symbolizer::new();
        let acks = ack_named_by(reason, acks).unwrap_or(acks.len() as u64);
        let ack = self
            .acks
            .iter()
            .find(|a| a.first_line <= acks && acks <= a.last_line)
            .map(|a| AckAttribution { line: acks, frames: symbolizer.frames(&a.stack) });
        let mut by_sync: BTreeMap<usize, Vec<String>> = BTreeMap::new();
        let mut by_change: BTreeMap<u32, Vec<String>> = BTreeMap::new();
        let mut never_synced = Vec::new();
        let per_page = space.page / space.unit;
        for &d in floor_set {
            let Dim::Unit { file, unit } = space.dims()[d] else { continue };
            let id = space.files[file].id;
            if let Some(&stack) = self.changed.get(&(id, unit / per_page)) {
                by_change.entry(stack).or_default().push(space.dim_name(d));
            }
            let range = unit * space.unit..(unit + 1) * space.unit;
            let last = self
                .syncs
                .iter()
                .rposition(|s| s.copied.iter().any(|(f, r)| *f == id && r.start < range.end && range.start < r.end));
            match last {
                Some(i) => by_sync.entry(i).or_default().push(space.dim_name(d)),
                None => never_synced.push(space.dim_name(d)),
            }
        }
        let syncs = by_sync
            .into_iter()
            .map(|(i, units)| {
                let s = &self.syncs[i];
                SyncAttribution {
                    call: s.seq,
                    syscall: s.syscall.to_owned(),
                    units,
                    frames: symbolizer.frames(&s.stack),
                }
            })
            .collect();
        let changed = by_change
            .into_iter()
            .filter_map(|(i, units)| {
                let stack = self.change_stacks.get(i as usize)?;
                Some(ChangeAttribution { units, frames: symbolizer.frames(stack) })
            })
            .collect();
        PowerLossAttribution { ack, changed, syncs, never_synced }
    }
}

/// The shortest ack text that counts as quoted by a checker's reason:
/// shorter ones (`3`) are found in any number the reason prints.
const MIN_QUOTED_ACK: usize = 3;

/// The 1-based line of the ack the checker's `reason` quotes: the longest
/// ack text (at least [`MIN_QUOTED_ACK`] bytes) found in it, the later one
/// on a tie.
fn ack_named_by(reason: &str, acks: &[Vec<u8>]) -> Option<u64> {
    let reason = reason.as_bytes();
    let quoted = |a: &[u8]| a.len() >= MIN_QUOTED_ACK && reason.windows(a.len()).any(|w| w == a);
    acks.iter().enumerate().filter(|(_, a)| quoted(a)).max_by_key(|(i, a)| (a.len(), *i)).map(|(i, _)| i as u64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acks(texts: &[&str]) -> Vec<Vec<u8>> {
        texts.iter().map(|t| t.as_bytes().to_vec()).collect()
    }

    #[test]
    fn the_ack_a_reason_quotes_is_the_longest_found_and_the_later_on_a_tie() {
        let a = acks(&["rec 1", "rec 12", "rec 2", "rec 1"]);
        assert_eq!(ack_named_by("acked rec 12 is missing", &a), Some(2), "rec 12, not rec 1");
        assert_eq!(ack_named_by("acked rec 1 is missing", &a), Some(4), "the later of two equal acks");
        assert_eq!(ack_named_by("count 3 < 4 acks", &a), None);
        assert_eq!(ack_named_by("count 3 < 4 acks", &acks(&["3", "4"])), None, "too short to count as quoted");
        assert_eq!(ack_named_by("anything", &[]), None);
    }
}
