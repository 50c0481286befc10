//! The differential oracle of the namespace model: every namespace a power
//! loss may leave, by brute force over subsets of the trace's operations,
//! with no dependency analysis at all.
//!
//! A subset of the entry and size operations is possible when it contains
//! every operation a later sync made durable (the POSIX rules stated
//! directly, plus the per-filesystem rules of [`super::model::fs_rule_forces`],
//! which only list events, with the previous operation on each of their
//! names, recursively: the model's deliberate over-approximation, see
//! `model.rs`) and replaying it in order on the starting tree meets
//! every operation's recorded precondition exactly (a create finds its name
//! free, an unlink or rename finds its name naming its file, a rename finds
//! its target naming what it replaced). Its state is the replayed tree
//! reachable from the root and the sizes of the files in it. Exponential on
//! purpose: only for tiny traces in tests.
//!
//! Architecture Invariant: pure.

use std::collections::{BTreeMap, BTreeSet};

use super::model::fs_rule_forces;
use super::trace::{Entry, FileId, FileKind, NamespaceTrace, NsOp};
use super::{FsModel, NsState};

/// Is event `i` made durable by a later sync (POSIX rules)?
fn required(trace: &NamespaceTrace, i: usize) -> bool {
    let later = &trace.events[i + 1..];
    let all = later.iter().any(|e| e.op == NsOp::SyncAll);
    let dir_synced = |d: FileId| later.iter().any(|e| e.op == NsOp::SyncDir { dir: d });
    match &trace.events[i].op {
        NsOp::Create { dir, .. } | NsOp::Link { dir, .. } | NsOp::Unlink { dir, .. } => all || dir_synced(*dir),
        NsOp::Rename { to_dir, .. } => all || dir_synced(*to_dir),
        NsOp::SetSize { file, .. } => {
            all || later
                .iter()
                .any(|e| matches!(e.op, NsOp::SyncData { file: f, .. } | NsOp::SyncFile { file: f, .. } if f == *file))
        }
        _ => false,
    }
}

/// Every state under `fs_model`, or `None` if the trace has more than
/// `max_ops` optional operations.
pub fn states(trace: &NamespaceTrace, fs_model: FsModel, max_ops: usize) -> Option<BTreeSet<NsState>> {
    let mut by_fs: BTreeSet<usize> = fs_rule_forces(trace, fs_model).into_iter().collect();
    // With, recursively, the previous operation on each of their names.
    let names = |i: usize| -> Vec<(FileId, Vec<u8>)> {
        match &trace.events[i].op {
            NsOp::Create { dir, name, .. } | NsOp::Link { dir, name, .. } | NsOp::Unlink { dir, name, .. } => {
                vec![(*dir, name.clone())]
            }
            NsOp::Rename { from_dir, from_name, to_dir, to_name, .. } => {
                vec![(*from_dir, from_name.clone()), (*to_dir, to_name.clone())]
            }
            _ => Vec::new(),
        }
    };
    let mut todo: Vec<usize> = by_fs.iter().copied().collect();
    while let Some(i) = todo.pop() {
        for n in names(i) {
            if let Some(p) = (0..i).rev().find(|&p| names(p).contains(&n)) {
                if by_fs.insert(p) {
                    todo.push(p);
                }
            }
        }
    }
    let optional: Vec<usize> = (0..trace.events.len())
        .filter(|&i| {
            matches!(
                trace.events[i].op,
                NsOp::Create { .. }
                    | NsOp::Link { .. }
                    | NsOp::Unlink { .. }
                    | NsOp::Rename { .. }
                    | NsOp::SetSize { .. }
            ) && !required(trace, i)
                && !by_fs.contains(&i)
        })
        .collect();
    if optional.len() > max_ops {
        return None;
    }
    let mut out = BTreeSet::new();
    for mask in 0u64..1 << optional.len() {
        let kept = |i: usize| match optional.iter().position(|&o| o == i) {
            Some(bit) => mask >> bit & 1 == 1,
            None => true,
        };
        if let Some(state) = replay(trace, kept) {
            out.insert(state);
        }
    }
    Some(out)
}

fn replay(trace: &NamespaceTrace, kept: impl Fn(usize) -> bool) -> Option<NsState> {
    let mut tree: BTreeMap<(FileId, Vec<u8>), FileId> =
        trace.initial.iter().map(|e| ((e.dir, e.name.clone()), e.file)).collect();
    let mut size: BTreeMap<FileId, u64> =
        trace.files.iter().filter(|f| f.kind == FileKind::Regular).map(|f| (f.id, f.initial_size)).collect();
    let mut real_size = size.clone();
    for (i, ev) in trace.events.iter().enumerate() {
        // The real sizes, for the syncs, whatever is kept.
        match &ev.op {
            NsOp::Create { file, .. } | NsOp::CreateUnnamed { file } if trace.file(*file).kind == FileKind::Regular => {
                real_size.insert(*file, trace.file(*file).initial_size);
            }
            NsOp::SetSize { file, size: s } => {
                real_size.insert(*file, *s);
            }
            _ => {}
        }
        let keep = kept(i);
        // Each kept operation's precondition, exactly as recorded.
        let applies = match &ev.op {
            NsOp::Create { dir, name, file } if keep => {
                if trace.file(*file).kind == FileKind::Regular {
                    size.insert(*file, trace.file(*file).initial_size);
                }
                tree.insert((*dir, name.clone()), *file).is_none()
            }
            NsOp::Link { dir, name, file } if keep => tree.insert((*dir, name.clone()), *file).is_none(),
            NsOp::Unlink { dir, name, file } if keep => tree.remove(&(*dir, name.clone())) == Some(*file),
            NsOp::Rename { from_dir, from_name, to_dir, to_name, file, replaced } if keep => {
                tree.remove(&(*from_dir, from_name.clone())) == Some(*file)
                    && tree.insert((*to_dir, to_name.clone()), *file) == *replaced
            }
            NsOp::SetSize { file, size: s } if keep => {
                size.insert(*file, *s);
                true
            }
            NsOp::SyncData { file, size: s } | NsOp::SyncFile { file, size: s } => {
                size.insert(*file, *s);
                true
            }
            NsOp::SyncAll => {
                size.clone_from(&real_size);
                true
            }
            _ => true,
        };
        if !applies {
            return None;
        }
    }
    let mut state = NsState {
        entries: tree.into_iter().map(|((dir, name), file)| Entry { dir, name, file }).collect(),
        sizes: BTreeMap::new(),
    };
    let reachable = state.reachable();
    state.entries.retain(|e| reachable.contains(&e.dir));
    state.sizes = size.into_iter().filter(|(f, _)| reachable.contains(f)).collect();
    Some(state)
}
