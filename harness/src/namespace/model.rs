//! The persistence model of a program's namespace: from a [`NamespaceTrace`],
//! which entry operations and size changes a power loss may lose, and the
//! namespace ([`NsState`]) each choice leaves.
//!
//! # The rules (`--fs-model posix`, the default)
//!
//! Each rule is the POSIX / man-page contract; nothing here rests on what a
//! particular filesystem does beyond it.
//!
//! - An entry operation (create, link, unlink, rename) is **durable** once a
//!   later `fsync`/`fdatasync` of its directory completed (fsync(2): "Calling
//!   fsync() does not necessarily ensure that the entry in the directory
//!   containing the file has also reached disk. For that an explicit fsync()
//!   on a file descriptor for the directory is also needed."), or a later
//!   `sync()`/`syncfs()` of the filesystem (sync(2)). A rename between two
//!   directories is durable once its *destination* directory was synced: it
//!   is one operation, kept or lost whole (rename(2) is atomic; a crash
//!   leaves the new name or the old one).
//! - A size is durable once a later `fsync`, `fdatasync` or
//!   `msync(MS_SYNC)` of the file completed: the size the file had *then*
//!   (fdatasync(2): a size change "would require a metadata flush";
//!   msync(MS_SYNC) is `vfs_fsync_range(.., datasync=1)` in mm/msync.c).
//!   A file's size after a power loss is one it really had: its durable size
//!   or one it was given later.
//! - Anything not durable may or may not persist, **consistently with the
//!   history**: an operation persists only where its precondition held
//!   when the writer made it (a rename needs its source name to name its
//!   file and its target to name what it replaced, so a rename of a file
//!   whose creation was lost cannot persist; a create needs its name free),
//!   each directory's entries independently of the others'. A size
//!   persists only after the file's previous size did (sizes persist in
//!   order) and only for a file whose creation persisted. An operation a
//!   sync made durable must find what it found (a durable rename moved an
//!   entry that existed): a choice that gives it no way to (the previous
//!   operation on its name lost, and no earlier history making the same
//!   entry) is impossible and resolves to the choice with that previous
//!   operation persisted. (Forcing those previous operations outright, as
//!   this model did before, left out states where an earlier history
//!   made the entry: the brute-force differential test found one.)
//! - A file whose every name was lost is gone; a file moved into a
//!   directory whose own creation was lost is gone too.
//!
//! Each operation that is not durable is one binary **unit** (persisted or
//! lost). Any choice vector is resolved to a possible state by
//! [`NsModel::canonical`]: the units are replayed in order and a chosen
//! unit persists only if its precondition holds (and a durable operation's
//! needs persist where the choice leaves it none). So every choice vector
//! names a state a power loss may leave; the all-lost and all-persisted
//! vectors are the floor and the namespace the writer saw.
//!
//! `naive_oracle.rs` enumerates the same states by brute force over
//! subsets of operations; `model_tests.rs` checks that both agree on random
//! traces.
//!
//! Architecture Invariant: pure.

use std::collections::{BTreeMap, HashMap};

use super::trace::{Entry, FileId, FileKind, Name, NamespaceTrace, NsOp};
use super::{FsModel, NsState};

/// What a unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NsUnitKind {
    /// An entry operation no later sync of its directory covered.
    Entry,
    /// A size change no later sync of its file covered.
    Size,
}

/// One operation a power loss may lose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsUnit {
    /// Index into the trace's events.
    pub event: usize,
    /// The traced call that made it.
    pub call: u64,
    pub kind: NsUnitKind,
}

/// The trace does not describe a possible history: an operation's
/// precondition failed when it was replayed (another program changed the
/// directory, or threads raced on one name between the tracer's stops).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NsModelError {
    #[error("the namespace trace is inconsistent at call {call} ({syscall}): {detail}")]
    Inconsistent { call: u64, syscall: String, detail: String },
}

/// The entries of a tree, by (directory, name).
type Tree = BTreeMap<(FileId, Name), FileId>;

/// The model of one trial's namespace.
#[derive(Debug, Clone)]
pub struct NsModel {
    trace: NamespaceTrace,
    units: Vec<NsUnit>,
    /// Per event: its unit, if it is one.
    unit_of: Vec<Option<usize>>,
    /// Per event: a sync made it durable (entry and size events only).
    forced: Vec<bool>,
    /// Per event: the previous event on each of its names (and, for a
    /// size change, on its file's size), which made what it found.
    deps: Vec<Vec<usize>>,
    /// Per event: the file's real size right after it (size-setting and
    /// sync events; `SyncAll` has none).
    sizes_at: Vec<Option<(FileId, u64)>>,
    /// Per `SyncAll` event: every regular file's size then.
    all_sizes_at: HashMap<usize, Vec<(FileId, u64)>>,
    /// The path of every file where it last had a name (for explanations).
    paths: Vec<Option<String>>,
    /// Per file: some `link` names it (its creation is then not the only
    /// way it can exist).
    linked: Vec<bool>,
}

fn lossy(name: &[u8]) -> String {
    String::from_utf8_lossy(name).into_owned()
}

/// The path of `name` in `dir`, from the directories' known paths.
fn join(paths: &[Option<String>], dir: FileId, name: &[u8]) -> String {
    match paths.get(dir.index()).and_then(|p| p.as_deref()) {
        Some(".") | None => lossy(name),
        Some(p) => format!("{p}/{}", lossy(name)),
    }
}

impl NsModel {
    /// Check the trace by replaying it, and find its units.
    pub fn new(trace: NamespaceTrace, fs_model: FsModel) -> Result<NsModel, NsModelError> {
        let n = trace.events.len();
        let mut tree: Tree = trace.initial.iter().map(|e| ((e.dir, e.name.clone()), e.file)).collect();
        let mut size: BTreeMap<FileId, u64> =
            trace.files.iter().filter(|f| f.kind == FileKind::Regular).map(|f| (f.id, f.initial_size)).collect();
        let mut sizes_at = vec![None; n];
        let mut all_sizes_at = HashMap::new();
        // The last event on each (dir, name), each file's creation and last
        // size event, and each file's linking: the dependencies.
        let mut last_on_name: HashMap<(FileId, Name), usize> = HashMap::new();
        let mut last_size: HashMap<FileId, usize> = HashMap::new();
        // What a durable operation needs durable too: the previous
        // operation on each of its names (a durable rename moved an entry
        // that existed), the previous size change of its file.
        let mut deps: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut linked: Vec<bool> = vec![false; trace.files.len()];
        for ev in &trace.events {
            if let NsOp::Link { file, .. } = ev.op {
                if let Some(l) = linked.get_mut(file.index()) {
                    *l = true;
                }
            }
        }
        let mut paths: Vec<Option<String>> = vec![None; trace.files.len()];
        paths[0] = Some(".".to_owned());
        {
            // Initial paths: directories before their entries (walk from the root).
            let mut stack = vec![FileId::ROOT];
            while let Some(dir) = stack.pop() {
                for e in trace.initial.iter().filter(|e| e.dir == dir) {
                    if e.file.index() < paths.len() && paths[e.file.index()].is_none() {
                        paths[e.file.index()] = Some(join(&paths, dir, &e.name));
                        stack.push(e.file);
                    }
                }
            }
        }
        for (i, ev) in trace.events.iter().enumerate() {
            let bad =
                |detail: String| NsModelError::Inconsistent { call: ev.call, syscall: ev.syscall.clone(), detail };
            let check_file = |f: FileId| -> Result<(), NsModelError> {
                if f.index() < trace.files.len() {
                    Ok(())
                } else {
                    Err(bad(format!("file {} is not in the trace's file list", f.0)))
                }
            };
            match &ev.op {
                NsOp::Create { dir, name, file } | NsOp::Link { dir, name, file } => {
                    check_file(*dir)?;
                    check_file(*file)?;
                    if let Some(old) = tree.get(&(*dir, name.clone())) {
                        return Err(bad(format!("{:?} already names file {}", lossy(name), old.0)));
                    }
                    deps[i].extend(last_on_name.get(&(*dir, name.clone())));
                    tree.insert((*dir, name.clone()), *file);
                    last_on_name.insert((*dir, name.clone()), i);
                    let created = matches!(ev.op, NsOp::Create { .. });
                    if created && trace.file(*file).kind == FileKind::Regular {
                        size.insert(*file, trace.file(*file).initial_size);
                    }
                    paths[file.index()] = Some(join(&paths, *dir, name));
                }
                NsOp::CreateUnnamed { file } => {
                    check_file(*file)?;
                    size.insert(*file, 0);
                }
                NsOp::Unlink { dir, name, file } => {
                    match tree.get(&(*dir, name.clone())) {
                        Some(f) if f == file => {}
                        other => {
                            return Err(bad(format!(
                                "{:?} names {:?}, not file {}",
                                lossy(name),
                                other.map(|f| f.0),
                                file.0
                            )))
                        }
                    }
                    deps[i].extend(last_on_name.get(&(*dir, name.clone())));
                    tree.remove(&(*dir, name.clone()));
                    last_on_name.insert((*dir, name.clone()), i);
                }
                NsOp::Rename { from_dir, from_name, to_dir, to_name, file, replaced } => {
                    match tree.get(&(*from_dir, from_name.clone())) {
                        Some(f) if f == file => {}
                        other => {
                            return Err(bad(format!(
                                "{:?} names {:?}, not file {}",
                                lossy(from_name),
                                other.map(|f| f.0),
                                file.0
                            )))
                        }
                    }
                    if *replaced == Some(*file) {
                        return Err(bad(
                            "a rename between two links to one file does nothing (rename(2)), so it is no event".into(),
                        ));
                    }
                    if tree.get(&(*to_dir, to_name.clone())) != replaced.as_ref() {
                        return Err(bad(format!(
                            "{:?} names {:?}, not {:?}",
                            lossy(to_name),
                            tree.get(&(*to_dir, to_name.clone())).map(|f| f.0),
                            replaced.map(|f| f.0)
                        )));
                    }
                    // No directory dependency: a rename is visible in both
                    // directories, so losing either one's creation does not
                    // hide it (a file moved into a directory whose own entry
                    // was lost is gone).
                    deps[i].extend(last_on_name.get(&(*from_dir, from_name.clone())));
                    deps[i].extend(last_on_name.get(&(*to_dir, to_name.clone())));
                    tree.remove(&(*from_dir, from_name.clone()));
                    tree.insert((*to_dir, to_name.clone()), *file);
                    last_on_name.insert((*from_dir, from_name.clone()), i);
                    last_on_name.insert((*to_dir, to_name.clone()), i);
                    paths[file.index()] = Some(join(&paths, *to_dir, to_name));
                }
                NsOp::SetSize { file, size: s } => {
                    check_file(*file)?;
                    deps[i].extend(last_size.get(file));
                    size.insert(*file, *s);
                    last_size.insert(*file, i);
                    sizes_at[i] = Some((*file, *s));
                }
                NsOp::SyncData { file, size: s } | NsOp::SyncFile { file, size: s } => {
                    check_file(*file)?;
                    size.insert(*file, *s);
                    sizes_at[i] = Some((*file, *s));
                }
                NsOp::SyncDir { dir } => check_file(*dir)?,
                NsOp::SyncAll => {
                    all_sizes_at.insert(i, size.iter().map(|(f, s)| (*f, *s)).collect());
                }
            }
            deps[i].sort_unstable();
            deps[i].dedup();
        }
        // Which events a later sync made durable (scan backwards: a sync
        // covers everything of its scope before it).
        let mut forced = vec![false; n];
        let mut synced_dirs: Vec<FileId> = Vec::new();
        let mut synced_files: Vec<FileId> = Vec::new();
        let mut synced_all = false;
        for (i, ev) in trace.events.iter().enumerate().rev() {
            match &ev.op {
                NsOp::SyncDir { dir } => synced_dirs.push(*dir),
                NsOp::SyncData { file, .. } | NsOp::SyncFile { file, .. } => synced_files.push(*file),
                NsOp::SyncAll => synced_all = true,
                NsOp::Create { dir, .. } | NsOp::Link { dir, .. } | NsOp::Unlink { dir, .. } => {
                    forced[i] = synced_all || synced_dirs.contains(dir);
                }
                NsOp::Rename { to_dir, .. } => forced[i] = synced_all || synced_dirs.contains(to_dir),
                NsOp::SetSize { file, .. } => forced[i] = synced_all || synced_files.contains(file),
                NsOp::CreateUnnamed { .. } => {}
            }
        }
        // What the filesystem makes durable beyond the contract, with what
        // such an operation needs: the previous operation on each of its
        // names, recursively. For a rule that makes one operation durable
        // alone (btrfs: a file's own creation) that over-approximates: it
        // leaves out states where the name was free because its earlier
        // occupant never arrived, which can only hide a state, never add
        // one a kernel cannot produce. (What a POSIX-durable operation
        // needs is not forced here: another history may give it what it
        // finds; the replay persists its needs only when the choice gives
        // it no other way, see `replay`.)
        let mut by_fs = vec![false; n];
        for i in fs_rule_forces(&trace, fs_model) {
            by_fs[i] = true;
        }
        for i in (0..n).rev() {
            if by_fs[i] {
                forced[i] = true;
                for &d in &deps[i] {
                    by_fs[d] = true;
                }
            }
        }
        let mut units = Vec::new();
        let mut unit_of = vec![None; n];
        for (i, ev) in trace.events.iter().enumerate() {
            let kind = match ev.op {
                NsOp::Create { .. } | NsOp::Link { .. } | NsOp::Unlink { .. } | NsOp::Rename { .. } => {
                    NsUnitKind::Entry
                }
                NsOp::SetSize { .. } => NsUnitKind::Size,
                _ => continue,
            };
            if forced[i] {
                continue;
            }
            unit_of[i] = Some(units.len());
            units.push(NsUnit { event: i, call: ev.call, kind });
        }
        Ok(NsModel { trace, units, unit_of, forced, deps, sizes_at, all_sizes_at, paths, linked })
    }

    pub fn trace(&self) -> &NamespaceTrace {
        &self.trace
    }

    pub fn units(&self) -> &[NsUnit] {
        &self.units
    }

    /// The unit the traced call `call` made, if that call's operation may
    /// be lost.
    pub fn unit_of_call(&self, call: u64) -> Option<usize> {
        self.units.iter().position(|u| u.call == call)
    }

    /// The choice vector resolved to a state a power loss may leave: the
    /// units are replayed in trace order and a chosen unit persists only if
    /// its precondition holds in what persisted before it (its name names
    /// what it did when the writer made the call; for a size change, the
    /// file's previous size persisted and the file exists). A vector that
    /// is already possible is returned unchanged.
    pub fn canonical(&self, chosen: impl Fn(usize) -> bool) -> Vec<bool> {
        self.replay(chosen).0
    }

    /// [`NsModel::canonical`] and the namespace it leaves, from one replay.
    pub fn canonical_state(&self, chosen: impl Fn(usize) -> bool) -> (Vec<bool>, NsState) {
        self.replay(chosen)
    }

    /// The namespace a power loss leaves when the units `persisted` persist
    /// (resolved as by [`NsModel::canonical`] first).
    pub fn resolve(&self, persisted: &[bool]) -> NsState {
        assert_eq!(persisted.len(), self.units.len(), "one choice per unit");
        self.replay(|u| persisted[u]).1
    }

    /// Replay `chosen`; when an operation a sync made durable cannot
    /// happen (what it found was not made: the choice is impossible),
    /// persist what it needs (the previous operation on each of its names,
    /// recursively) and replay again. A possible choice is replayed once
    /// and returned as it is; an impossible one resolves to a possible one.
    fn replay(&self, chosen: impl Fn(usize) -> bool) -> (Vec<bool>, NsState) {
        let mut needed = vec![false; self.units.len()];
        loop {
            match self.replay_once(|u| needed[u] || chosen(u)) {
                Ok(replayed) => return replayed,
                Err((failed, replayed)) => {
                    let mut added = false;
                    let mut seen = vec![false; self.trace.events.len()];
                    let mut stack = vec![failed];
                    while let Some(e) = stack.pop() {
                        for &d in &self.deps[e] {
                            if !std::mem::replace(&mut seen[d], true) {
                                if let Some(u) = self.unit_of[d] {
                                    added |= !std::mem::replace(&mut needed[u], true);
                                }
                                stack.push(d);
                            }
                        }
                    }
                    if !added {
                        // Everything it needs persists: it holds then (its
                        // needs replay the writer's own history of its names).
                        debug_assert!(false, "a durable operation's needs are all persisted, and it still fails");
                        return replayed;
                    }
                }
            }
        }
    }

    /// One replay, or the first durable operation whose precondition failed
    /// (with the replay as it went on without it).
    #[allow(clippy::type_complexity)]
    fn replay_once(
        &self,
        chosen: impl Fn(usize) -> bool,
    ) -> Result<(Vec<bool>, NsState), (usize, (Vec<bool>, NsState))> {
        let mut failed = None;
        let mut out = vec![false; self.units.len()];
        let mut tree: Tree = self.trace.initial.iter().map(|e| ((e.dir, e.name.clone()), e.file)).collect();
        let mut size: BTreeMap<FileId, u64> =
            self.trace.files.iter().filter(|f| f.kind == FileKind::Regular).map(|f| (f.id, f.initial_size)).collect();
        // Per file: its size so far is one it really had at this point of
        // the history (no size change of it was lost since its last sync),
        // and it was not born by a create that was lost.
        let mut size_in_step = vec![true; self.trace.files.len()];
        let mut unborn = vec![false; self.trace.files.len()];
        let name = |d: FileId, n: &Name| (d, n.clone());
        for (i, ev) in self.trace.events.iter().enumerate() {
            let unit = self.unit_of[i];
            let want = self.forced[i] || unit.is_some_and(&chosen);
            let keep = match &ev.op {
                NsOp::Create { dir, name: n, file } => {
                    let ok = want && !tree.contains_key(&name(*dir, n));
                    if ok {
                        tree.insert(name(*dir, n), *file);
                    } else if !self.linked[file.index()] {
                        unborn[file.index()] = true;
                    }
                    ok
                }
                NsOp::Link { dir, name: n, file } => {
                    let ok = want && !tree.contains_key(&name(*dir, n));
                    if ok {
                        tree.insert(name(*dir, n), *file);
                    }
                    ok
                }
                NsOp::Unlink { dir, name: n, file } => {
                    let ok = want && tree.get(&name(*dir, n)) == Some(file);
                    if ok {
                        tree.remove(&name(*dir, n));
                    }
                    ok
                }
                NsOp::Rename { from_dir, from_name, to_dir, to_name, file, replaced } => {
                    let ok = want
                        && tree.get(&name(*from_dir, from_name)) == Some(file)
                        && tree.get(&name(*to_dir, to_name)) == replaced.as_ref();
                    if ok {
                        tree.remove(&name(*from_dir, from_name));
                        tree.insert(name(*to_dir, to_name), *file);
                    }
                    ok
                }
                NsOp::SetSize { file, size: s } => {
                    let f = file.index();
                    let ok = self.forced[i] || (want && size_in_step[f] && !unborn[f]);
                    if ok {
                        size.insert(*file, *s);
                    } else {
                        size_in_step[f] = false;
                    }
                    ok
                }
                NsOp::SyncData { .. } | NsOp::SyncFile { .. } => {
                    let (file, s) = self.sizes_at[i].expect("a sync records its size");
                    size.insert(file, s);
                    size_in_step[file.index()] = true;
                    true
                }
                NsOp::SyncAll => {
                    for &(file, s) in &self.all_sizes_at[&i] {
                        size.insert(file, s);
                        size_in_step[file.index()] = true;
                    }
                    true
                }
                NsOp::SyncDir { .. } | NsOp::CreateUnnamed { .. } => true,
            };
            if !keep && self.forced[i] && failed.is_none() {
                failed = Some(i);
            }
            if let Some(u) = unit {
                out[u] = keep;
            }
        }
        let entries = tree.into_iter().map(|((dir, name), file)| Entry { dir, name, file }).collect();
        let mut state = NsState { entries, sizes: BTreeMap::new() };
        let reachable = state.reachable();
        state.sizes = size.into_iter().filter(|(f, _)| reachable.contains(f)).collect();
        state.entries.retain(|e| reachable.contains(&e.dir));
        match failed {
            None => Ok((out, state)),
            Some(i) => Err((i, (out, state))),
        }
    }

    /// Every unit persisted: the namespace the writer saw when it died.
    pub fn newest(&self) -> NsState {
        self.resolve(&vec![true; self.units.len()])
    }

    /// Every unit lost: what the syncs guarantee.
    pub fn floor(&self) -> NsState {
        self.resolve(&vec![false; self.units.len()])
    }

    /// The path a file last had (`.` for the watched directory), for
    /// reports; `None` for a file that never had a name.
    pub fn path(&self, file: FileId) -> Option<&str> {
        self.paths.get(file.index()).and_then(|p| p.as_deref())
    }

    fn dir_name(&self, dir: FileId) -> String {
        format!("{:?}", self.path(dir).unwrap_or("?"))
    }

    fn entry_name(&self, dir: FileId, name: &[u8]) -> String {
        format!("{:?}", join(&self.paths, dir, name))
    }

    /// The operation of unit `u` in words: `rename("state.tmp" -> "state")
    /// at call 57`.
    pub fn describe(&self, u: usize) -> String {
        let ev = &self.trace.events[self.units[u].event];
        let what = match &ev.op {
            NsOp::Create { dir, name, file } => {
                let kind = match self.trace.file(*file).kind {
                    FileKind::Directory => "directory ",
                    FileKind::Symlink { .. } => "symlink ",
                    FileKind::Regular => "",
                };
                format!("{}(creating {kind}{})", ev.syscall, self.entry_name(*dir, name))
            }
            NsOp::Link { dir, name, .. } => format!("{}({})", ev.syscall, self.entry_name(*dir, name)),
            NsOp::Unlink { dir, name, .. } => format!("{}({})", ev.syscall, self.entry_name(*dir, name)),
            NsOp::Rename { from_dir, from_name, to_dir, to_name, .. } => format!(
                "{}({} -> {})",
                ev.syscall,
                self.entry_name(*from_dir, from_name),
                self.entry_name(*to_dir, to_name)
            ),
            NsOp::SetSize { file, size } => format!(
                "{}: the size of {:?} set to {size} bytes",
                ev.syscall,
                self.path(*file).unwrap_or("an unnamed file")
            ),
            _ => unreachable!("only entry and size events are units"),
        };
        format!("{what} at call {}", ev.call)
    }

    /// Why unit `u` was not durable, in the words of the rule it missed.
    pub fn why_not_durable(&self, u: usize) -> String {
        let ev = &self.trace.events[self.units[u].event];
        match &ev.op {
            NsOp::Create { dir, .. } | NsOp::Link { dir, .. } | NsOp::Unlink { dir, .. } => {
                format!("the directory {} was not fsynced after it", self.dir_name(*dir))
            }
            NsOp::Rename { to_dir, .. } => format!("the directory {} was not fsynced after it", self.dir_name(*to_dir)),
            NsOp::SetSize { file, .. } => format!(
                "no fsync, fdatasync or msync(MS_SYNC) of {:?} completed after it",
                self.path(*file).unwrap_or("the file")
            ),
            _ => unreachable!("only entry and size events are units"),
        }
    }

    /// `describe` and `why_not_durable` in one sentence: `rename("a" ->
    /// "b") at call 57 was lost: the directory "." was not fsynced after it`.
    pub fn explain_lost(&self, u: usize) -> String {
        format!("{} was lost: {}", self.describe(u), self.why_not_durable(u))
    }
}

/// The events a sync makes durable under `fs_model` beyond the POSIX
/// contract (indices into the trace's events; repeats possible). A sync of a file makes
/// durable what was done up to its *anchor*: the file's last creation or
/// size change before the sync (for `fsync`), or its last size change (for
/// `fdatasync` and `msync(MS_SYNC)`, which commit only metadata a later read
/// needs). No anchor, no rule.
///
/// - ext4, xfs, btrfs: the file's own creation (the entry that first named
///   it). ext4's fsync waits for the journal transaction of the inode's
///   last change, xfs forces its log to the inode's last change, btrfs
///   logs a new inode with its new name; evidence: `reports/SOUNDNESS.md`,
///   "Namespace operations on real cuts" (create, create-mmap, new-segment,
///   rename-over, reuse-name: kept in every cut on all three).
/// - ext4, xfs (not btrfs): every entry and size change made up to the
///   anchor, in any file or directory: the journal commits transactions in
///   order, and the anchor's is committed. Evidence: `sibling-fsync` (the
///   other file's create and size kept 100/100 on ext4 and xfs, lost
///   100/100 on btrfs).
pub fn fs_rule_forces(trace: &NamespaceTrace, fs_model: FsModel) -> Vec<usize> {
    if fs_model == FsModel::Posix {
        return Vec::new();
    }
    let ordered_journal = matches!(fs_model, FsModel::Ext4 | FsModel::Xfs);
    let mut out = Vec::new();
    // Per file: its creation event and its last creation-or-size event and
    // last size event so far.
    let mut created: HashMap<FileId, usize> = HashMap::new();
    let mut last_change: HashMap<FileId, usize> = HashMap::new();
    let mut last_size: HashMap<FileId, usize> = HashMap::new();
    for (j, ev) in trace.events.iter().enumerate() {
        let anchor = match &ev.op {
            NsOp::Create { file, .. } => {
                created.insert(*file, j);
                last_change.insert(*file, j);
                None
            }
            NsOp::SetSize { file, .. } => {
                last_change.insert(*file, j);
                last_size.insert(*file, j);
                None
            }
            NsOp::SyncFile { file, .. } => last_change.get(file).map(|&a| (*file, a)),
            NsOp::SyncData { file, .. } => last_size.get(file).map(|&a| (*file, a)),
            _ => None,
        };
        let Some((file, anchor)) = anchor else { continue };
        if let Some(&c) = created.get(&file).filter(|&&c| c <= anchor) {
            out.push(c);
        }
        if ordered_journal {
            for (i, e) in trace.events[..=anchor].iter().enumerate() {
                if matches!(
                    e.op,
                    NsOp::Create { .. }
                        | NsOp::Link { .. }
                        | NsOp::Unlink { .. }
                        | NsOp::Rename { .. }
                        | NsOp::SetSize { .. }
                ) {
                    out.push(i);
                }
            }
        }
    }
    out
}

impl NamespaceTrace {
    /// The trace of a run that did nothing to a tree: `dirs` (relative
    /// paths of directories, parents first or not) and `files` (relative
    /// paths of regular files with their sizes), all durable.
    pub fn of_tree(dirs: &[std::path::PathBuf], files: &[(std::path::PathBuf, u64)]) -> NamespaceTrace {
        use super::trace::TracedFile;
        use std::os::unix::ffi::OsStrExt;
        let mut trace = NamespaceTrace::default();
        let add = |trace: &mut NamespaceTrace, kind: FileKind, size: u64| {
            let id = FileId(trace.files.len() as u32);
            trace.files.push(TracedFile { id, kind, dev: 0, ino: 0, at_start: true, initial_size: size });
            id
        };
        add(&mut trace, FileKind::Directory, 0);
        let mut by_path: BTreeMap<std::path::PathBuf, FileId> = BTreeMap::new();
        by_path.insert(std::path::PathBuf::new(), FileId::ROOT);
        let mut all_dirs: Vec<std::path::PathBuf> = Vec::new();
        for d in dirs.iter().chain(files.iter().map(|(p, _)| p)) {
            let mut a = d.parent();
            while let Some(p) = a.filter(|p| !p.as_os_str().is_empty()) {
                all_dirs.push(p.to_path_buf());
                a = p.parent();
            }
        }
        all_dirs.extend(dirs.iter().cloned());
        all_dirs.sort_by_key(|p| p.components().count());
        all_dirs.dedup();
        let mut seen = std::collections::BTreeSet::new();
        for d in all_dirs {
            if !seen.insert(d.clone()) {
                continue;
            }
            let id = add(&mut trace, FileKind::Directory, 0);
            let parent = by_path[d.parent().unwrap_or(std::path::Path::new(""))];
            let name = d.file_name().expect("a relative path").as_bytes().to_vec();
            trace.initial.push(Entry { dir: parent, name, file: id });
            by_path.insert(d, id);
        }
        for (p, size) in files {
            let id = add(&mut trace, FileKind::Regular, *size);
            let parent = by_path[p.parent().unwrap_or(std::path::Path::new(""))];
            let name = p.file_name().expect("a relative path").as_bytes().to_vec();
            trace.initial.push(Entry { dir: parent, name, file: id });
        }
        trace
    }
}
