//! The durability oracle's namespace trace, end to end: writers of
//! `namespace.c` create, link, rename, unlink, resize and sync files under
//! a watched directory; each test asserts the exact events the syscalls'
//! documented semantics give, and replays the trace on the initial tree: it
//! must be the real tree at the end. A module of `tests/oracle.rs` (its
//! helpers are the parent's).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crashlab::namespace::{Entry, FileId, FileKind, NamespaceTrace, NsOp};
use crashlab::oracle::{
    run_traced, CrashSyscall, OracleConfig, OracleError, OracleOutcome, SyncEffect, SyscallCrashPoint, TraceControl,
    TracedLaunch, TracedSyscall, WriterEnd,
};
use crashlab::vocab::CrashWhen;

use super::{assert_clean, assert_no_leftovers, compiled, is_page, page, page_of, pipe};

/// The namespace writer (`oracle-programs/namespace.c`).
fn namespace_writer() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compiled("namespace"))
}

struct NsRun {
    result: Result<OracleOutcome, OracleError>,
    stdout: String,
    writer_pid: Option<i32>,
    dir: tempfile::TempDir,
    _outside: tempfile::TempDir,
}

/// Run `namespace MODE DIR OUTSIDE` on a watched DIR prepared by `setup`.
fn run_ns(mode: &str, setup: impl FnOnce(&Path)) -> NsRun {
    run_ns_with(mode, setup, |_| {})
}

fn run_ns_with(mode: &str, setup: impl FnOnce(&Path), configure: impl FnOnce(&mut OracleConfig)) -> NsRun {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    setup(dir.path());
    let mut cfg = OracleConfig::new(dir.path());
    configure(&mut cfg);
    let (r, w) = pipe();
    let control = TraceControl::new();
    let launch = TracedLaunch::new(namespace_writer()).arg(mode).arg(dir.path()).arg(outside.path()).stdout(w.as_fd());
    let result = run_traced(&launch, &cfg, &control);
    drop(launch);
    drop(w);
    let mut stdout = String::new();
    File::from(r).read_to_string(&mut stdout).unwrap();
    NsRun { result, stdout, writer_pid: control.writer_pid(), dir, _outside: outside }
}

fn must_ns(run: &NsRun) -> &OracleOutcome {
    match &run.result {
        Ok(o) => {
            assert_eq!(o.end, WriterEnd::Exited { code: 0 }, "stdout: {}", run.stdout);
            o
        }
        Err(e) => panic!("the oracle must work on this machine (it needs ptrace and seccomp): {e}"),
    }
}

fn name(s: &str) -> Vec<u8> {
    s.as_bytes().to_vec()
}

fn ops(out: &OracleOutcome) -> Vec<NsOp> {
    out.namespace.events.iter().map(|e| e.op.clone()).collect()
}

fn syscalls(out: &OracleOutcome) -> Vec<&str> {
    out.namespace.events.iter().map(|e| e.syscall.as_str()).collect()
}

/// The entries reachable from the root and the size of every regular file
/// among them.
type Tree = (BTreeSet<Entry>, BTreeMap<FileId, u64>);

fn reachable(entries: &BTreeMap<(FileId, Vec<u8>), FileId>, sizes: &BTreeMap<FileId, u64>) -> Tree {
    let mut out = BTreeSet::new();
    let mut out_sizes = BTreeMap::new();
    let mut stack = vec![FileId::ROOT];
    while let Some(dir) = stack.pop() {
        for ((d, n), &f) in entries.range((dir, Vec::new())..) {
            if *d != dir {
                break;
            }
            if out.insert(Entry { dir, name: n.clone(), file: f }) {
                stack.push(f);
            }
            if let Some(&s) = sizes.get(&f) {
                out_sizes.insert(f, s);
            }
        }
    }
    (out, out_sizes)
}

/// The trace replayed on the initial tree, as the namespace model reads it.
fn replay(t: &NamespaceTrace) -> Tree {
    let mut entries: BTreeMap<(FileId, Vec<u8>), FileId> =
        t.initial.iter().map(|e| ((e.dir, e.name.clone()), e.file)).collect();
    let mut sizes: BTreeMap<FileId, u64> =
        t.files.iter().filter(|f| f.kind == FileKind::Regular).map(|f| (f.id, f.initial_size)).collect();
    for ev in &t.events {
        match &ev.op {
            NsOp::Create { dir, name, file } => {
                assert_eq!(entries.insert((*dir, name.clone()), *file), None, "{ev:?} over an existing entry");
            }
            NsOp::Link { dir, name, file } => {
                assert_eq!(entries.insert((*dir, name.clone()), *file), None, "{ev:?} over an existing entry");
            }
            NsOp::Unlink { dir, name, file } => {
                assert_eq!(entries.remove(&(*dir, name.clone())), Some(*file), "{ev:?}");
            }
            NsOp::Rename { from_dir, from_name, to_dir, to_name, file, replaced } => {
                assert_eq!(entries.remove(&(*from_dir, from_name.clone())), Some(*file), "{ev:?}");
                assert_eq!(entries.insert((*to_dir, to_name.clone()), *file), *replaced, "{ev:?}");
            }
            NsOp::SetSize { file, size } => {
                sizes.insert(*file, *size);
            }
            _ => {}
        }
    }
    reachable(&entries, &sizes)
}

/// The real tree under `root` now, with each file named by the trace's id
/// for its (dev, inode) (the oracle held every file, so no number was
/// reused during the run).
fn real_tree(root: &Path, t: &NamespaceTrace) -> Tree {
    use std::os::unix::fs::MetadataExt;
    let id_of = |m: &std::fs::Metadata| {
        t.files.iter().rev().find(|f| f.dev == m.dev() && f.ino == m.ino()).map(|f| f.id).unwrap_or_else(|| {
            panic!("a file the trace does not know: inode {}", m.ino());
        })
    };
    let mut entries = BTreeMap::new();
    let mut sizes = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), FileId::ROOT)];
    while let Some((path, dir)) = stack.pop() {
        for e in std::fs::read_dir(&path).unwrap() {
            let e = e.unwrap();
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let f = id_of(&m);
            entries.insert((dir, e.file_name().as_encoded_bytes().to_vec()), f);
            if m.is_dir() {
                stack.push((e.path(), f));
            } else if m.is_file() {
                sizes.insert(f, m.len());
            }
        }
    }
    reachable(&entries, &sizes)
}

/// The trace replayed on the initial tree is the tree at the end; every
/// event names a listed call of the same syscall; one call makes at most
/// one event that is not a sync; the end images have the end sizes.
fn assert_trace_consistent(out: &OracleOutcome, root: &Path) {
    let t = &out.namespace;
    assert_eq!(replay(t), real_tree(root, t), "the replayed trace must be the real tree: {:#?}", t.events);
    let mut non_sync_calls = BTreeSet::new();
    for ev in &t.events {
        let call = &out.events[ev.call as usize];
        assert_eq!(call.seq, ev.call);
        assert_eq!(call.syscall.name(), ev.syscall, "{ev:?} names {call:?}");
        let is_sync =
            matches!(ev.op, NsOp::SyncData { .. } | NsOp::SyncFile { .. } | NsOp::SyncDir { .. } | NsOp::SyncAll);
        assert!(is_sync || non_sync_calls.insert(ev.call), "two non-sync events for call {}: {:#?}", ev.call, t.events);
    }
    let (_, sizes) = real_tree(root, t);
    for (f, size) in sizes {
        assert_eq!(out.inodes[&f].newest.len() as u64, size, "end image of {f:?}");
    }
    for f in &t.files {
        assert_eq!(out.inodes.contains_key(&f.id), f.kind == FileKind::Regular, "{f:?}");
    }
}

#[test]
fn an_atomic_replace_is_create_resize_syncs_rename_and_directory_sync() {
    let p = page() as u64;
    let r = run_ns("atomic-replace", |d| std::fs::write(d.join("state"), vec![b'O'; page()]).unwrap());
    let out = must_ns(&r);
    assert_eq!(r.stdout, "replaced\n");
    let (root, old, new) = (FileId::ROOT, FileId(1), FileId(2));
    assert_eq!(
        ops(out),
        vec![
            NsOp::Create { dir: root, name: name("tmp"), file: new },
            NsOp::SetSize { file: new, size: 2 * p },
            NsOp::SyncData { file: new, size: 2 * p },
            NsOp::SyncFile { file: new, size: 2 * p },
            NsOp::Rename {
                from_dir: root,
                from_name: name("tmp"),
                to_dir: root,
                to_name: name("state"),
                file: new,
                replaced: Some(old),
            },
            NsOp::SyncDir { dir: root },
        ]
    );
    assert_eq!(syscalls(out), ["openat", "ftruncate", "msync", "fsync", "rename", "fsync"]);
    let t = &out.namespace;
    assert_eq!(t.initial, vec![Entry { dir: root, name: name("state"), file: old }]);
    assert!(t.file(old).at_start && !t.file(new).at_start);
    assert_eq!((t.file(old).initial_size, t.file(new).initial_size), (p, 0));
    // The replaced file is still there for the model: its content at start.
    assert_eq!(out.inodes[&old].newest, vec![b'O'; page()]);
    assert_eq!(out.inodes[&new].newest, vec![b'N'; 2 * page()]);
    assert_eq!(out.inodes[&new].shadow.durable_size, Some(2 * p));
    assert_eq!(out.file("state"), Some(&out.inodes[&new].shadow), "the path view shows the new file");
    assert_eq!(out.files.len(), 1);
    // The directory fsync is listed; the rename is not a crash-point kind.
    let fsyncs: Vec<_> = out.events.iter().filter(|e| e.syscall == TracedSyscall::Fsync).collect();
    assert_eq!(fsyncs[1].effect, SyncEffect::EntriesSynced);
    let rename = out.events.iter().find(|e| e.syscall == TracedSyscall::Rename).unwrap();
    assert_eq!((rename.ordinal, &rename.effect), (None, &SyncEffect::NotASync));
    assert_trace_consistent(out, r.dir.path());
    assert_clean(out);
}

#[test]
fn a_name_created_three_times_is_three_files_and_unlinked_ones_keep_their_content() {
    let r = run_ns("recreate", |_| {});
    let out = must_ns(&r);
    let inos: Vec<u64> =
        r.stdout.lines().map(|l| l.strip_prefix("ino ").expect("an ino line").parse().unwrap()).collect();
    assert_eq!(inos.len(), 3);
    let (root, f) = (FileId::ROOT, |i| FileId(i));
    let mut want = Vec::new();
    for (i, content) in [(1, "1"), (2, "22"), (3, "333")] {
        want.push(NsOp::Create { dir: root, name: name("f"), file: f(i) });
        want.push(NsOp::SetSize { file: f(i), size: content.len() as u64 });
        if i < 3 {
            want.push(NsOp::Unlink { dir: root, name: name("f"), file: f(i) });
        }
        assert_eq!(out.inodes[&f(i)].newest, content.as_bytes(), "file {i}'s newest content");
        assert_eq!(out.namespace.file(f(i)).ino, inos[i as usize - 1]);
    }
    assert_eq!(ops(out), want);
    assert_eq!(syscalls(out), ["openat", "write", "unlink", "openat", "write", "unlink", "openat", "write"]);
    assert_eq!(out.files.keys().collect::<Vec<_>>(), [Path::new("f")]);
    assert_trace_consistent(out, r.dir.path());
    assert_clean(out);
}

#[test]
fn an_o_tmpfile_file_is_created_unnamed_and_linked() {
    let r = run_ns("tmpfile", |_| {});
    let out = must_ns(&r);
    let (root, a, b) = (FileId::ROOT, FileId(1), FileId(2));
    let mut want = vec![
        NsOp::CreateUnnamed { file: a },
        NsOp::SetSize { file: a, size: 5 },
        NsOp::Link { dir: root, name: name("linked"), file: a },
        NsOp::CreateUnnamed { file: b },
        NsOp::SetSize { file: b, size: 2 },
    ];
    if r.stdout.contains("empty path linked") {
        want.push(NsOp::Link { dir: root, name: name("empty-path"), file: b });
    } else {
        assert!(r.stdout.contains("empty path refused"), "{}", r.stdout);
    }
    assert_eq!(ops(out), want);
    assert_eq!(out.inodes[&a].newest, b"hello");
    assert_eq!(out.inodes[&b].newest, b"hi");
    assert_trace_consistent(out, r.dir.path());
    assert_clean(out);
}

#[test]
fn a_new_directory_its_file_and_their_syncs() {
    let r = run_ns("mkdir", |_| {});
    let out = must_ns(&r);
    let (root, sub, f) = (FileId::ROOT, FileId(1), FileId(2));
    assert_eq!(
        ops(out),
        vec![
            NsOp::Create { dir: root, name: name("sub"), file: sub },
            NsOp::Create { dir: sub, name: name("f"), file: f },
            NsOp::SetSize { file: f, size: 3 },
            NsOp::SyncFile { file: f, size: 3 },
            NsOp::SyncDir { dir: sub },
        ]
    );
    assert_eq!(syscalls(out), ["mkdir", "openat", "write", "fsync", "fsync"]);
    assert_eq!(out.namespace.file(sub).kind, FileKind::Directory);
    assert_eq!(out.file("sub/f").unwrap().durable_size, Some(3));
    assert_trace_consistent(out, r.dir.path());
    assert_clean(out);
}

#[test]
fn a_write_past_the_end_sets_the_size_and_a_pwrite_inside_does_not() {
    let r = run_ns("write-sizes", |d| std::fs::write(d.join("data"), vec![b'A'; page()]).unwrap());
    let out = must_ns(&r);
    assert_eq!(ops(out), vec![NsOp::SetSize { file: FileId(1), size: page() as u64 + 3 }]);
    assert_eq!(syscalls(out), ["write"]);
    let pwrite = out.events.iter().find(|e| e.syscall == TracedSyscall::Pwrite64).expect("the pwrite is listed");
    assert_eq!(pwrite.effect, SyncEffect::NotASync);
    assert_trace_consistent(out, r.dir.path());
    assert_clean(out);
}

#[test]
fn writes_through_o_dsync_and_o_sync_descriptors_are_syncs_of_their_range() {
    let p = page() as u64;
    let r = run_ns("dsync", |d| std::fs::write(d.join("data"), vec![b'A'; 4 * page()]).unwrap());
    let out = must_ns(&r);
    let f = FileId(1);
    assert_eq!(
        ops(out),
        vec![
            NsOp::SyncData { file: f, size: 4 * p },
            NsOp::SyncFile { file: f, size: 4 * p },
            NsOp::SyncData { file: f, size: 4 * p },
        ]
    );
    assert_eq!(syscalls(out), ["pwrite64", "write", "pwrite64"]);
    let shadow = out.file("data").unwrap();
    assert!(is_page(shadow.floor_page(1), b'D'), "the O_DSYNC write is durable");
    assert!(is_page(shadow.floor_page(2), b'A'), "the plain write is not");
    assert!(is_page(shadow.floor_page(3), b'S'), "the O_SYNC write is durable");
    // The one-byte write made its whole page durable, as writeback writes it.
    let first = shadow.floor_page(0).unwrap();
    assert_eq!((first[0], first[100], first[1]), (b'M', b'd', b'A'));
    assert_eq!(shadow.copied_pages, BTreeSet::from([0, 1, 3]));
    let writes: Vec<_> = out.events.iter().filter(|e| e.syscall.name().contains("write")).collect();
    assert_eq!(writes.len(), 4);
    assert_eq!((writes[3].copied[0].offset, writes[3].copied[0].len), (0, p));
    assert_eq!(writes[0].effect, SyncEffect::Copied);
    assert_eq!((writes[0].copied[0].offset, writes[0].copied[0].len), (p, p));
    assert_eq!(writes[1].effect, SyncEffect::NotASync);
    assert_eq!((writes[2].copied[0].offset, writes[2].copied[0].len), (3 * p, p));
    assert!(is_page(Some(page_of(&out.inodes[&f].newest, 2)), b'P'), "the page cache has the plain write");
    assert_trace_consistent(out, r.dir.path());
    assert_clean(out);
}

#[test]
fn an_msync_of_one_page_makes_the_whole_grown_size_durable() {
    let p = page() as u64;
    let r = run_ns("msync-grown", |d| std::fs::write(d.join("data"), vec![b'A'; page()]).unwrap());
    let out = must_ns(&r);
    let f = FileId(1);
    assert_eq!(ops(out), vec![NsOp::SetSize { file: f, size: 4 * p }, NsOp::SyncData { file: f, size: 4 * p }]);
    assert_eq!(syscalls(out), ["ftruncate", "msync"]);
    assert_eq!(out.file("data").unwrap().copied_pages, BTreeSet::from([3]));
    assert_trace_consistent(out, r.dir.path());
    assert_clean(out);
}

fn assert_refused(r: &NsRun, call: &str, words: &[&str], stdout: &str) {
    match &r.result {
        Err(e @ OracleError::Unsupported { pid, call: c, .. }) => {
            assert_eq!(Some(*pid), r.writer_pid);
            assert_eq!(*c, call);
            let msg = e.to_string();
            assert!(msg.contains(&format!("the writer called {call}")), "{msg}");
            assert!(msg.contains("crashlab cannot model its effect on durability"), "{msg}");
            for w in words {
                assert!(msg.contains(w), "{msg} should name {w}");
            }
        }
        other => panic!("{call} must be refused, got {other:?}"),
    }
    assert_eq!(r.stdout, stdout, "killed at the call's entry, before it ran");
    assert_no_leftovers(r.writer_pid);
}

#[test]
fn copy_file_range_into_a_watched_file_is_refused() {
    let r = run_ns("copy-file-range", |d| std::fs::write(d.join("data"), vec![b'A'; 2 * page()]).unwrap());
    assert_refused(&r, "copy_file_range", &["data"], "copying\n");
    assert_eq!(std::fs::read(r.dir.path().join("data")).unwrap(), vec![b'A'; 2 * page()], "it never ran");
}

#[test]
fn rename_exchange_is_refused() {
    let r = run_ns("exchange", |d| std::fs::write(d.join("data"), b"d").unwrap());
    assert_refused(&r, "renameat2", &["RENAME_EXCHANGE", "data", "other"], "exchanging\n");
    assert_eq!(std::fs::read(r.dir.path().join("data")).unwrap(), b"d", "it never ran");
}

#[test]
fn a_fifo_in_the_watched_directory_is_refused() {
    let r = run_ns("fifo", |_| {});
    assert_refused(&r, "mknodat", &["a fifo", "fifo"], "fifo outside\n");
    assert!(!r.dir.path().join("fifo").exists(), "it never ran");
}

#[test]
fn operations_outside_the_watched_directory_are_not_recorded() {
    let r = run_ns("outside", |d| std::fs::write(d.join("data"), b"d").unwrap());
    let out = must_ns(&r);
    assert_eq!(r.stdout, "outside done\n");
    assert_eq!(ops(out), vec![]);
    assert_eq!(out.namespace.files.len(), 2, "the watched directory and its file");
    let listed: Vec<_> = out.events.iter().filter(|e| e.syscall.is_namespace()).map(|e| e.syscall).collect();
    assert_eq!(listed, [TracedSyscall::Ftruncate], "only the crash-point kind is listed, as before");
    assert_trace_consistent(out, r.dir.path());
    assert_clean(out);
}

#[test]
fn files_moved_in_and_out_symlinks_directories_and_links() {
    let r = run_ns("moves", |d| std::fs::write(d.join("data"), b"data").unwrap());
    let out = must_ns(&r);
    assert_eq!(r.stdout, "moved\n");
    let root = FileId::ROOT;
    let (data, moved_in, link, d, f) = (FileId(1), FileId(2), FileId(3), FileId(4), FileId(5));
    assert_eq!(
        ops(out),
        vec![
            NsOp::Create { dir: root, name: name("moved-in"), file: moved_in },
            NsOp::Unlink { dir: root, name: name("data"), file: data },
            NsOp::Create { dir: root, name: name("link"), file: link },
            NsOp::Create { dir: root, name: name("d1"), file: d },
            NsOp::Create { dir: d, name: name("f"), file: f },
            NsOp::SetSize { file: f, size: 10 },
            NsOp::Rename {
                from_dir: root,
                from_name: name("d1"),
                to_dir: root,
                to_name: name("d2"),
                file: d,
                replaced: None
            },
            NsOp::SetSize { file: f, size: 4 },
            NsOp::SetSize { file: moved_in, size: 0 },
            NsOp::Link { dir: root, name: name("hard"), file: f },
            NsOp::Unlink { dir: d, name: name("f"), file: f },
            NsOp::Unlink { dir: root, name: name("d2"), file: d },
        ]
    );
    assert_eq!(
        syscalls(out),
        [
            "rename", "rename", "symlink", "mkdir", "openat", "write", "rename", "truncate", "openat", "link",
            "unlink", "rmdir"
        ]
    );
    let t = &out.namespace;
    assert_eq!(t.file(moved_in).initial_size, 12, "a file moved in starts with its size");
    assert!(!t.file(moved_in).at_start);
    assert_eq!(t.file(link).kind, FileKind::Symlink { target: name("moved-in") });
    assert!(!out.inodes[&moved_in].shadow.existed_at_start, "no floor for a file from outside");
    assert_eq!(out.inodes[&data].newest, b"data", "moved out, still followed");
    assert_trace_consistent(out, r.dir.path());
    assert_clean(out);
}

#[test]
fn a_crash_point_cuts_the_namespace_trace_where_it_struck() {
    let p = page() as u64;
    // Killed at the entry of the first fsync: the rename never happened.
    let r = run_ns_with(
        "atomic-replace",
        |d| std::fs::write(d.join("state"), vec![b'O'; page()]).unwrap(),
        |c| c.crash = Some(SyscallCrashPoint::new(1, [CrashSyscall::Fsync], CrashWhen::Before)),
    );
    let out = match &r.result {
        Ok(o) => o,
        Err(e) => panic!("{e}"),
    };
    assert!(matches!(out.end, WriterEnd::CrashPoint(_)), "{:?}", out.end);
    let new = FileId(2);
    assert_eq!(
        ops(out),
        vec![
            NsOp::Create { dir: FileId::ROOT, name: name("tmp"), file: new },
            NsOp::SetSize { file: new, size: 2 * p },
            NsOp::SyncData { file: new, size: 2 * p },
        ]
    );
    assert_eq!(out.files.keys().collect::<Vec<_>>(), [Path::new("state"), Path::new("tmp")]);
    assert_eq!(out.file("state"), Some(&out.inodes[&FileId(1)].shadow), "the old state is still the named one");
    assert_trace_consistent(out, r.dir.path());
    assert_clean(out);
}

/// `FS_DIRSYNC_FL` on the watched directory (ext4, xfs, btrfs have it;
/// ext4 passes it on to new subdirectories): every entry change in a
/// synchronous directory is followed by a `SyncDir` of it.
#[test]
fn entry_changes_in_a_dirsync_directory_are_synced_at_once() {
    const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;
    const FS_IOC_SETFLAGS: libc::c_ulong = 0x4008_6602;
    const FS_DIRSYNC_FL: libc::c_long = 0x0001_0000;
    let mut supported = true;
    let r = run_ns("mkdir", |d| {
        let f = File::open(d).unwrap();
        let mut flags: libc::c_long = 0;
        // SAFETY: both ioctls take a pointer to a long we own.
        let ok = unsafe {
            use std::os::fd::AsRawFd;
            libc::ioctl(f.as_raw_fd(), FS_IOC_GETFLAGS, &mut flags) == 0 && {
                flags |= FS_DIRSYNC_FL;
                libc::ioctl(f.as_raw_fd(), FS_IOC_SETFLAGS, &flags) == 0
            }
        };
        supported = ok;
    });
    if !supported {
        let fs = Command::new("stat").args(["-f", "-c", "%T"]).arg(r.dir.path()).output().unwrap();
        panic!(
            "FS_DIRSYNC_FL cannot be set on the temp dir ({}): run this test where it can",
            String::from_utf8_lossy(&fs.stdout).trim()
        );
    }
    let out = must_ns(&r);
    let (root, sub, f) = (FileId::ROOT, FileId(1), FileId(2));
    // Whether the new directory inherited the flag is the filesystem's
    // business (ext4 passes it on): ask it.
    let sub_flags = {
        let d = File::open(r.dir.path().join("sub")).unwrap();
        let mut flags: libc::c_long = 0;
        // SAFETY: FS_IOC_GETFLAGS writes a long we own.
        assert_eq!(unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&d), FS_IOC_GETFLAGS, &mut flags) }, 0);
        flags
    };
    let inherited = sub_flags & FS_DIRSYNC_FL != 0;
    let mut want = vec![
        NsOp::Create { dir: root, name: name("sub"), file: sub },
        NsOp::SyncDir { dir: root },
        NsOp::Create { dir: sub, name: name("f"), file: f },
    ];
    if inherited {
        want.push(NsOp::SyncDir { dir: sub });
    }
    want.extend([NsOp::SetSize { file: f, size: 3 }, NsOp::SyncFile { file: f, size: 3 }, NsOp::SyncDir { dir: sub }]);
    assert_eq!(ops(out), want);
    assert_trace_consistent(out, r.dir.path());
    assert_clean(out);
}
