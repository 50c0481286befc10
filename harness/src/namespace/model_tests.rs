//! Tests of the namespace model: the issue's cases by hand, and the model
//! against the brute-force oracle on random tiny traces.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;

use super::naive_oracle;
use super::trace::{Entry, FileId, FileKind, NamespaceTrace, NsEvent, NsOp, TracedFile};
use super::{FsModel, NsModel, NsState, NsUnitKind};

/// Builds traces call by call, keeping the real tree to pick valid ops.
struct Builder {
    trace: NamespaceTrace,
    tree: BTreeMap<(FileId, Vec<u8>), FileId>,
    size: BTreeMap<FileId, u64>,
    call: u64,
}

impl Builder {
    fn new() -> Builder {
        let root =
            TracedFile { id: FileId::ROOT, kind: FileKind::Directory, dev: 1, ino: 2, at_start: true, initial_size: 0 };
        Builder {
            trace: NamespaceTrace { files: vec![root], ..NamespaceTrace::default() },
            tree: BTreeMap::new(),
            size: BTreeMap::new(),
            call: 0,
        }
    }

    fn file(&mut self, kind: FileKind, at_start: bool, size: u64) -> FileId {
        let id = FileId(self.trace.files.len() as u32);
        self.trace.files.push(TracedFile { id, kind, dev: 1, ino: 100 + id.0 as u64, at_start, initial_size: size });
        id
    }

    /// A file present (and durable) at start.
    fn initial(&mut self, dir: FileId, name: &str, kind: FileKind, size: u64) -> FileId {
        let id = self.file(kind.clone(), true, size);
        self.trace.initial.push(Entry { dir, name: name.into(), file: id });
        self.tree.insert((dir, name.into()), id);
        if kind == FileKind::Regular {
            self.size.insert(id, size);
        }
        id
    }

    fn op(&mut self, syscall: &str, op: NsOp) {
        self.call += 1;
        match &op {
            NsOp::Create { dir, name, file } | NsOp::Link { dir, name, file } => {
                self.tree.insert((*dir, name.clone()), *file);
            }
            NsOp::Unlink { dir, name, .. } => {
                self.tree.remove(&(*dir, name.clone()));
            }
            NsOp::Rename { from_dir, from_name, to_dir, to_name, file, .. } => {
                self.tree.remove(&(*from_dir, from_name.clone()));
                self.tree.insert((*to_dir, to_name.clone()), *file);
            }
            NsOp::SetSize { file, size } => {
                self.size.insert(*file, *size);
            }
            _ => {}
        }
        self.trace.events.push(NsEvent { call: self.call, syscall: syscall.into(), op });
    }

    fn create(&mut self, dir: FileId, name: &str) -> FileId {
        let f = self.file(FileKind::Regular, false, 0);
        self.size.insert(f, 0);
        self.op("openat", NsOp::Create { dir, name: name.into(), file: f });
        f
    }

    fn mkdir(&mut self, dir: FileId, name: &str) -> FileId {
        let f = self.file(FileKind::Directory, false, 0);
        self.op("mkdir", NsOp::Create { dir, name: name.into(), file: f });
        f
    }

    fn rename(&mut self, from_dir: FileId, from: &str, to_dir: FileId, to: &str) {
        let file = self.tree[&(from_dir, from.as_bytes().to_vec())];
        let replaced = self.tree.get(&(to_dir, to.as_bytes().to_vec())).copied();
        self.op(
            "rename",
            NsOp::Rename { from_dir, from_name: from.into(), to_dir, to_name: to.into(), file, replaced },
        );
    }

    fn unlink(&mut self, dir: FileId, name: &str) {
        let file = self.tree[&(dir, name.as_bytes().to_vec())];
        self.op("unlink", NsOp::Unlink { dir, name: name.into(), file });
    }

    fn set_size(&mut self, file: FileId, size: u64) {
        self.op("ftruncate", NsOp::SetSize { file, size });
    }

    fn fsync(&mut self, file: FileId) {
        let size = self.size[&file];
        self.op("fsync", NsOp::SyncFile { file, size });
    }

    fn msync(&mut self, file: FileId) {
        let size = self.size[&file];
        self.op("msync", NsOp::SyncData { file, size });
    }

    fn fsync_dir(&mut self, dir: FileId) {
        self.op("fsync", NsOp::SyncDir { dir });
    }

    fn model(&self) -> NsModel {
        NsModel::new(self.trace.clone(), FsModel::Posix).expect("a consistent trace")
    }
}

fn names(state: &NsState, dir: FileId) -> BTreeMap<String, FileId> {
    state
        .entries
        .iter()
        .filter(|e| e.dir == dir)
        .map(|e| (String::from_utf8_lossy(&e.name).into_owned(), e.file))
        .collect()
}

/// Every state the model can leave: every choice vector, resolved.
fn model_states(m: &NsModel) -> BTreeSet<NsState> {
    let n = m.units().len();
    (0u64..1 << n).map(|mask| m.resolve(&m.canonical(|u| mask >> u & 1 == 1))).collect()
}

const ROOT: FileId = FileId::ROOT;

#[test]
fn an_atomic_replace_with_a_directory_fsync_leaves_only_the_new_file() {
    let mut b = Builder::new();
    let old = b.initial(ROOT, "state", FileKind::Regular, 8192);
    let tmp = b.create(ROOT, "state.tmp");
    b.set_size(tmp, 8192);
    b.msync(tmp);
    b.fsync(tmp);
    b.rename(ROOT, "state.tmp", ROOT, "state");
    b.fsync_dir(ROOT);
    let m = b.model();
    assert!(m.units().is_empty(), "everything was synced: {:?}", m.units());
    let s = m.floor();
    assert_eq!(names(&s, ROOT), BTreeMap::from([("state".to_owned(), tmp)]));
    assert_eq!(s.sizes, BTreeMap::from([(tmp, 8192)]));
    assert_ne!(old, tmp, "the new state is another file");
}

#[test]
fn without_the_directory_fsync_the_rename_may_be_lost_and_the_old_file_comes_back_whole() {
    let mut b = Builder::new();
    let old = b.initial(ROOT, "state", FileKind::Regular, 4096);
    let tmp = b.create(ROOT, "state.tmp");
    b.set_size(tmp, 8192);
    b.fsync(tmp);
    b.rename(ROOT, "state.tmp", ROOT, "state");
    let m = b.model();
    // The create and the rename: the size was synced (and the fsync made
    // nothing of the names durable).
    assert_eq!(m.units().iter().map(|u| u.kind).collect::<Vec<_>>(), [NsUnitKind::Entry, NsUnitKind::Entry]);
    let states = model_states(&m);
    let expected: BTreeSet<BTreeMap<String, FileId>> = [
        BTreeMap::from([("state".to_owned(), old)]),
        BTreeMap::from([("state".to_owned(), old), ("state.tmp".to_owned(), tmp)]),
        BTreeMap::from([("state".to_owned(), tmp)]),
    ]
    .into();
    assert_eq!(states.iter().map(|s| names(s, ROOT)).collect::<BTreeSet<_>>(), expected);
    let floor = m.floor();
    assert_eq!(floor.sizes[&old], 4096, "the old file keeps its own durable size");
    let rename = m.unit_of_call(4).expect("the rename is a unit");
    assert_eq!(
        m.explain_lost(rename),
        r#"rename("state.tmp" -> "state") at call 4 was lost: the directory "." was not fsynced after it"#
    );
}

#[test]
fn a_reused_name_is_a_new_file_each_time_and_never_holds_an_earlier_ones_size() {
    // SQLite's rollback journal in DELETE mode: created, synced, deleted at
    // every transaction.
    let mut b = Builder::new();
    let mut journals = Vec::new();
    for round in 0..3 {
        let j = b.create(ROOT, "db-journal");
        b.set_size(j, 512 * (round + 1));
        b.fsync(j);
        b.unlink(ROOT, "db-journal");
        journals.push(j);
    }
    let m = b.model();
    let distinct: BTreeSet<FileId> = journals.iter().copied().collect();
    assert_eq!(distinct.len(), 3);
    for s in model_states(&m) {
        if let Some(&j) = names(&s, ROOT).get("db-journal") {
            let round = journals.iter().position(|&x| x == j).unwrap() as u64;
            assert_eq!(s.sizes[&j], 512 * (round + 1), "each journal has its own durable size");
        }
    }
    // The last journal's unlink was never made durable: it may come back.
    assert!(model_states(&m).iter().any(|s| names(s, ROOT).get("db-journal") == Some(&journals[2])));
}

#[test]
fn a_grown_file_comes_back_only_at_sizes_it_really_had() {
    let mut b = Builder::new();
    let f = b.initial(ROOT, "data", FileKind::Regular, 4096);
    b.set_size(f, 8192);
    b.msync(f); // msync of one page of the new area: the whole size is durable
    b.set_size(f, 12288);
    b.set_size(f, 16384);
    let m = b.model();
    let sizes: BTreeSet<u64> = model_states(&m).iter().map(|s| s.sizes[&f]).collect();
    assert_eq!(sizes, BTreeSet::from([8192, 12288, 16384]));
    let u = m.units().len() - 1;
    assert_eq!(
        m.explain_lost(u),
        r#"ftruncate: the size of "data" set to 16384 bytes at call 4 was lost: no fsync, fdatasync or msync(MS_SYNC) of "data" completed after it"#
    );
}

#[test]
fn a_new_segment_without_a_directory_fsync_may_vanish_with_its_synced_content() {
    let mut b = Builder::new();
    let seg = b.create(ROOT, "seg-000002");
    b.set_size(seg, 16384);
    b.fsync(seg);
    let m = b.model();
    assert!(model_states(&m).iter().any(|s| !names(s, ROOT).contains_key("seg-000002")));
    let mut b2 = b;
    b2.fsync_dir(ROOT);
    let m2 = b2.model();
    assert!(m2.units().is_empty());
    assert_eq!(m2.floor().sizes[&seg], 16384);
}

#[test]
fn a_synced_file_in_a_new_directory_needs_the_parent_fsynced_too() {
    let mut b = Builder::new();
    let d = b.mkdir(ROOT, "sub");
    let f = b.create(d, "f");
    b.fsync(f);
    b.fsync_dir(d);
    let m = b.model();
    // fsync of "sub" makes "f" durable in it, but "sub" itself may be lost.
    assert_eq!(m.units().len(), 1);
    assert!(!m.floor().reachable().contains(&d));
    assert!(m.newest().reachable().contains(&f));
    assert_eq!(
        m.explain_lost(0),
        r#"mkdir(creating directory "sub") at call 1 was lost: the directory "." was not fsynced after it"#
    );
}

#[test]
fn an_inconsistent_trace_is_refused_naming_the_call() {
    let mut b = Builder::new();
    b.initial(ROOT, "a", FileKind::Regular, 0);
    let x = b.file(FileKind::Regular, false, 0);
    b.op("openat", NsOp::Create { dir: ROOT, name: "a".into(), file: x });
    let e = NsModel::new(b.trace, FsModel::Posix).unwrap_err();
    assert!(e.to_string().contains("at call 1 (openat)"), "{e}");
}

/// A random valid trace over up to three directories, three names and a
/// few files, driven by `choices`.
fn random_trace(choices: &[u8]) -> NamespaceTrace {
    let mut b = Builder::new();
    let sub = b.initial(ROOT, "d", FileKind::Directory, 0);
    b.initial(ROOT, "a", FileKind::Regular, 100);
    let mut dirs = vec![ROOT, sub];
    let names = ["a", "b", "c"];
    for c in choices.chunks(4) {
        let [op, x, y, z] =
            [c[0], c.get(1).copied().unwrap_or(0), c.get(2).copied().unwrap_or(0), c.get(3).copied().unwrap_or(0)];
        let dir = dirs[x as usize % dirs.len()];
        let name = names[y as usize % names.len()];
        let free = !b.tree.contains_key(&(dir, name.as_bytes().to_vec()));
        // An existing regular file's entry, picked by `y`.
        let regular: Vec<(FileId, Vec<u8>, FileId)> = b
            .tree
            .iter()
            .filter(|(_, f)| b.trace.file(**f).kind == FileKind::Regular)
            .map(|((d, n), f)| (*d, n.clone(), *f))
            .collect();
        let some = (!regular.is_empty()).then(|| regular[y as usize % regular.len()].clone());
        match op % 12 {
            0..=2 if free => {
                b.create(dir, name);
            }
            3 if free && dirs.len() < 3 => {
                let d = b.mkdir(dir, name);
                dirs.push(d);
            }
            4 | 5 => {
                if let Some((d, n, _)) = some {
                    b.unlink(d, std::str::from_utf8(&n).unwrap());
                }
            }
            6 | 7 => {
                if let Some((d, n, f)) = some {
                    let to_dir = dirs[z as usize % dirs.len()];
                    let to = names[z as usize / 4 % names.len()];
                    let target = b.tree.get(&(to_dir, to.as_bytes().to_vec())).copied();
                    // rename(2): two links to one file: nothing happens (no event).
                    let same_file = target == Some(f);
                    if !same_file
                        && target.is_none_or(|t| b.trace.file(t).kind == FileKind::Regular)
                        && (to_dir, to.as_bytes()) != (d, &n[..])
                    {
                        b.rename(d, std::str::from_utf8(&n).unwrap(), to_dir, to);
                    }
                }
            }
            8 => {
                if let Some((_, _, f)) = some {
                    b.set_size(f, 10 * (z as u64 % 4));
                }
            }
            9 => {
                if let Some((_, _, f)) = some {
                    if z % 2 == 0 {
                        b.fsync(f)
                    } else {
                        b.msync(f)
                    }
                }
            }
            10 => b.fsync_dir(dir),
            _ => {
                if z % 8 == 0 {
                    b.op("sync", NsOp::SyncAll);
                } else if let Some((_, _, file)) = some.filter(|_| free) {
                    b.op("link", NsOp::Link { dir, name: name.into(), file });
                }
            }
        }
    }
    b.trace
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn the_model_leaves_exactly_the_states_brute_force_finds(choices in proptest::collection::vec(any::<u8>(), 4..48)) {
        let trace = random_trace(&choices);
        for fs in FsModel::ALL {
            let Some(naive) = naive_oracle::states(&trace, fs, 12) else { continue };
            let m = NsModel::new(trace.clone(), fs).expect("the builder makes valid traces");
            prop_assert!(m.units().len() <= 12);
            let model = model_states(&m);
            prop_assert_eq!(&model, &naive, "{}: initial {:?} events {:?}", fs, trace.initial, trace.events.iter().map(|e| (e.call, &e.op)).collect::<Vec<_>>());
            prop_assert!(model.contains(&m.newest()));
            prop_assert!(model.contains(&m.floor()));
        }
    }
}

#[test]
fn the_differential_test_sees_traces_with_many_units_and_every_kind_of_operation() {
    // The property test above is only as good as its traces: over fixed
    // pseudo-random inputs, most traces must give the model real work.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut busy = 0;
    let mut kinds = std::collections::HashSet::new();
    for _ in 0..300 {
        let choices: Vec<u8> = (0..40)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (x >> 33) as u8
            })
            .collect();
        let trace = random_trace(&choices);
        for e in &trace.events {
            kinds.insert(std::mem::discriminant(&e.op));
        }
        let m = NsModel::new(trace.clone(), FsModel::Posix).unwrap();
        if let Some(naive) = naive_oracle::states(&trace, FsModel::Posix, 12) {
            assert_eq!(model_states(&m), naive, "{:?}", trace.events.iter().map(|e| &e.op).collect::<Vec<_>>());
            busy += usize::from(m.units().len() >= 4);
        }
    }
    assert!(busy >= 100, "only {busy} of 300 traces had 4 or more units");
    assert_eq!(kinds.len(), 9, "every operation but CreateUnnamed appears");
}

#[test]
fn a_synced_new_file_keeps_its_name_on_ext4_xfs_and_btrfs_but_not_under_posix() {
    let mut b = Builder::new();
    let seg = b.create(ROOT, "seg-2");
    b.set_size(seg, 16384);
    b.msync(seg);
    let lost_name = |fs| {
        let m = NsModel::new(b.trace.clone(), fs).unwrap();
        model_states(&m).iter().any(|s| !names(s, ROOT).contains_key("seg-2"))
    };
    assert!(lost_name(FsModel::Posix));
    for fs in [FsModel::Ext4, FsModel::Xfs, FsModel::Btrfs] {
        assert!(!lost_name(fs), "{fs}: the msync after the size change commits the creation");
    }
    // A sync with no size change since the creation anchors nothing for
    // fdatasync/msync (they commit only what a read needs).
    let mut b = Builder::new();
    let f = b.create(ROOT, "empty");
    b.msync(f);
    let m = NsModel::new(b.trace, FsModel::Ext4).unwrap();
    assert_eq!(m.units().len(), 1);
}

#[test]
fn an_fsync_of_one_file_commits_another_files_earlier_create_and_size_on_ext4_and_xfs_only() {
    // sibling-fsync: `a` created and sized, never synced; `b` created, sized, fsynced.
    let mut b = Builder::new();
    let a = b.create(ROOT, "a");
    b.set_size(a, 4096);
    let f = b.create(ROOT, "b");
    b.set_size(f, 4096);
    b.fsync(f);
    for (fs, kept) in [(FsModel::Posix, false), (FsModel::Ext4, true), (FsModel::Xfs, true), (FsModel::Btrfs, false)] {
        let m = NsModel::new(b.trace.clone(), fs).unwrap();
        let always = model_states(&m).iter().all(|s| s.sizes.get(&a) == Some(&4096));
        assert_eq!(always, kept, "{fs}");
    }
    // What came after the anchor (b's last change) is not committed by it.
    b.create(ROOT, "c");
    let g = b.create(ROOT, "g");
    b.set_size(g, 10);
    let m = NsModel::new(b.trace.clone(), FsModel::Ext4).unwrap();
    let calls: Vec<u64> = m.units().iter().map(|u| u.call).collect();
    assert_eq!(calls, [6, 7, 8], "c's create, g's create and size stay units");
}
