//! The example workloads made for a namespace-aware power-loss model
//! (`atomic-replace`, `segmented-log`, `grow-ftruncate`, each correct and,
//! for the first two, without its directory fsync), the SQLite examples
//! (`sqlite-JOURNAL-SYNC`, python3's `sqlite3`), and the `setup` role of
//! every example.
//!
//! These tests need nothing of that model: every writer, run to completion
//! after its setup, passes its checker; every checker flags directories made
//! by hand the way a power loss would leave them (a lost rename, a lost
//! segment, a size the writer never set, a torn or corrupt file, a rolled
//! back commit) and passes the ones its design allows. The last tests run
//! the new examples through crashlab with their setup under process crashes,
//! which never catch their mistakes (the page and dentry caches outlive the
//! process): they assert no violation, whatever the crash times.
//!
//! The SQLite tests need python3 with its standard `sqlite3` module (like
//! `crashlab-workload sqlite-*` itself); they fail saying so without it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crashlab::external::{run_external, ExternalConfig};
use crashlab::report::checker_verdict::CheckerVerdict;
use crashlab::vocab::CrashKind;

const WORKLOAD: &str = env!("CARGO_BIN_EXE_crashlab-workload");
const WORKLOADS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads");
const SEED: u64 = 5;
const PAGE: usize = 4096;

const SQLITE_EXAMPLES: [&str; 8] = [
    "sqlite-delete-off",
    "sqlite-delete-normal",
    "sqlite-delete-full",
    "sqlite-delete-extra",
    "sqlite-wal-off",
    "sqlite-wal-normal",
    "sqlite-wal-full",
    "sqlite-wal-extra",
];

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// Run `crashlab-workload EXAMPLE ROLE OPTIONS` in `dir`, as crashlab does
/// (`CRASHLAB_DIR`, `CRASHLAB_SEED`, `CRASHLAB_ACKS` for a checker).
fn role(example: &str, role: &str, dir: &Path, acks: Option<&Path>, options: &[&str]) -> Output {
    let mut cmd = Command::new(WORKLOAD);
    cmd.args([example, role])
        .args(options)
        .current_dir(dir)
        .env("CRASHLAB_DIR", dir)
        .env("CRASHLAB_SEED", SEED.to_string());
    if let Some(acks) = acks {
        cmd.env("CRASHLAB_ACKS", acks);
    }
    cmd.output().unwrap_or_else(|e| panic!("cannot run {WORKLOAD}: {e}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_owned()
}

/// A trial directory after `setup` and a writer run to completion: the
/// directory (inside a temp dir that also holds the acks file) and the acks.
struct Finished {
    tmp: tempfile::TempDir,
    example: String,
    acks: String,
}

impl Finished {
    fn dir(&self) -> PathBuf {
        self.tmp.path().join("trial")
    }

    /// The checker's exit code and first stderr line, with `acks` acked.
    fn check_with(&self, example: &str, acks: &str) -> (Option<i32>, String) {
        let file = self.tmp.path().join("acks");
        std::fs::write(&file, acks).unwrap();
        let out = role(example, "checker", &self.dir(), Some(&file), &[]);
        (out.status.code(), stderr(&out).lines().next().unwrap_or("").to_owned())
    }

    fn check(&self) -> (Option<i32>, String) {
        self.check_with(&self.example, &self.acks)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }
}

/// `setup` then `writer` (both with `options`) in a fresh directory.
fn finished(example: &str, options: &[&str]) -> Finished {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("trial");
    std::fs::create_dir(&dir).unwrap();
    // The setup gets the writer's --records (it sizes files like the writer), nothing else.
    let records = options.iter().position(|o| *o == "--records").map(|i| &options[i..i + 2]).unwrap_or(&[]);
    let out = role(example, "setup", &dir, None, records);
    assert!(out.status.success(), "{example} setup failed ({}): {}", out.status, stderr(&out));
    assert!(out.stdout.is_empty(), "{example} setup printed acks");
    let out = role(example, "writer", &dir, None, options);
    assert!(out.status.success(), "{example} writer failed ({}): {}", out.status, stderr(&out));
    Finished { tmp, example: example.to_owned(), acks: String::from_utf8(out.stdout).unwrap() }
}

fn assert_violation(found: (Option<i32>, String), starts: &str) {
    assert_eq!(found.0, Some(1), "expected a violation starting `{starts}`, got {found:?}");
    assert!(found.1.starts_with(starts), "expected `{starts}...`, got `{}`", found.1);
}

fn assert_consistent(found: (Option<i32>, String), what: &str) {
    assert_eq!(found, (Some(0), String::new()), "{what}");
}

/// The files a setup leaves, by example.
fn setup_files(example: &str) -> &'static [&'static str] {
    match example {
        "wal" | "wal-ack-before-msync" | "wal-ms-async" | "wal-map-private" => &["wal.log"],
        "shadow" => &["shadow.db"],
        "flag-before-payload" => &["records.db"],
        "lmdb" | "lmdb-nosync" => &["data.mdb", "lock.mdb"],
        "atomic-replace" | "atomic-replace-no-dir-fsync" => &["state"],
        "segmented-log" | "segmented-log-no-dir-fsync" => &["seg-000001"],
        "grow-ftruncate" => &["grow.db"],
        e if e.starts_with("sqlite-") => &["test.db"],
        e => panic!("no setup files listed for {e}"),
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn every_example_passes_its_checker_after_its_setup_alone_and_after_a_whole_writer_run() {
    let examples = [
        ("wal", 16),
        ("wal-ack-before-msync", 16),
        ("wal-ms-async", 16),
        ("wal-map-private", 16),
        ("shadow", 16),
        ("flag-before-payload", 4),
        ("lmdb", 16),
        ("lmdb-nosync", 16),
        ("atomic-replace", 16),
        ("atomic-replace-no-dir-fsync", 16),
        ("segmented-log", 160),
        ("segmented-log-no-dir-fsync", 160),
        ("grow-ftruncate", 16),
    ];
    let sqlite = SQLITE_EXAMPLES.map(|e| (e, 12));
    for (example, records) in examples.into_iter().chain(sqlite) {
        let n = records.to_string();
        // The setup alone: its files exist, nothing is acked, it is consistent.
        let tmp = tempfile::tempdir().unwrap();
        let out = role(example, "setup", tmp.path(), None, &["--records", &n]);
        assert!(out.status.success(), "{example} setup failed ({}): {}", out.status, stderr(&out));
        assert_eq!(names(tmp.path()), setup_files(example), "{example}: the setup's files");
        let empty = tempfile::NamedTempFile::new().unwrap();
        let out = role(example, "checker", tmp.path(), Some(empty.path()), &[]);
        assert_eq!(out.status.code(), Some(0), "{example}: the setup alone fails its checker: {}", stderr(&out));

        // Setup, then the writer to completion.
        let f = finished(example, &["--records", &n]);
        assert_eq!(f.acks.lines().count(), records, "{example}: {}", f.acks);
        for name in setup_files(example) {
            assert!(f.file(name).exists(), "{example}: {name} is gone after the writer");
        }
        assert_consistent(f.check(), example);
    }
}

#[test]
fn atomic_replace_checker_rejects_a_lost_rename_a_missing_state_and_torn_versions() {
    for example in ["atomic-replace", "atomic-replace-no-dir-fsync"] {
        let f = finished(example, &["--records", "6"]);
        assert_eq!(names(&f.dir()), ["state"], "{example}: the temporary file is renamed each time");
        let state = std::fs::read(f.file("state")).unwrap();
        let page = page_size();
        assert_eq!(state.len(), 2 * page);
        assert!(f.acks.starts_with("version 1 crc ") && f.acks.lines().last().unwrap().starts_with("version 6 "));

        // A leftover state.tmp (a crash before the rename) is ignored.
        std::fs::write(f.file("state.tmp"), b"half").unwrap();
        assert_consistent(f.check(), "state.tmp left over");
        std::fs::remove_file(f.file("state.tmp")).unwrap();

        // The rename lost: `state` names the setup's version 0 again.
        let lost = finished(example, &["--records", "0"]);
        std::fs::copy(lost.file("state"), f.file("state")).unwrap();
        assert_violation(f.check(), "acked version 6 is lost: state holds version 0");
        // ...which is fine while nothing was acked.
        assert_consistent(f.check_with(example, ""), "version 0, nothing acked");
        // One version ahead of the last ack: the update in flight.
        std::fs::write(f.file("state"), &state).unwrap();
        let five: String = f.acks.lines().take(5).map(|l| format!("{l}\n")).collect();
        assert_consistent(f.check_with(example, &five), "version 6 with 5 acked");
        let four: String = f.acks.lines().take(4).map(|l| format!("{l}\n")).collect();
        assert_violation(f.check_with(example, &four), "state holds version 6, never written after acked version 4");

        // A torn header, a torn payload, a state cut short.
        let mut bad = state.clone();
        bad[5] ^= 1; // the version
        std::fs::write(f.file("state"), &bad).unwrap();
        assert_violation(f.check(), "state is not a complete version: its header's CRC is wrong");
        let mut bad = state.clone();
        bad[page + 10] ^= 1;
        std::fs::write(f.file("state"), &bad).unwrap();
        assert_violation(f.check(), "state holds version 6 whose payload does not match its CRC: torn");
        std::fs::write(f.file("state"), &state[..page]).unwrap();
        assert_violation(f.check(), "state holds version 6 whose payload does not match its CRC");

        // No state at all.
        std::fs::remove_file(f.file("state")).unwrap();
        assert_violation(f.check(), "state is missing, but version 6 was acked");
        assert_consistent(f.check_with(example, ""), "no state, nothing acked (no setup ran)");
    }
}

#[test]
fn segmented_log_checker_rejects_a_lost_segment_and_a_torn_record() {
    for example in ["segmented-log", "segmented-log-no-dir-fsync"] {
        let f = finished(example, &["--records", "200"]);
        let segments: Vec<String> = names(&f.dir());
        assert!(segments.len() >= 3, "{example}: {segments:?}");
        for (i, name) in segments.iter().enumerate() {
            assert_eq!(*name, format!("seg-{:06}", i + 1));
            assert_eq!(std::fs::metadata(f.file(name)).unwrap().len() as usize, 4 * page_size());
        }
        let last = segments.last().unwrap().clone();
        let acked_in_last = f.acks.lines().filter(|l| l.contains(&format!(" seg {} ", segments.len()))).count();
        assert!(acked_in_last > 0);
        let first_in_last = f.acks.lines().count() - acked_in_last;

        // The newest segment's name lost, with every record acked in it.
        let bytes = std::fs::read(f.file(&last)).unwrap();
        std::fs::remove_file(f.file(&last)).unwrap();
        assert_violation(
            f.check(),
            &format!("acked record {first_in_last} is missing: its segment {last} does not exist"),
        );
        // Fine for the records acked before it.
        let before: String = f.acks.lines().take(first_in_last).map(|l| format!("{l}\n")).collect();
        assert_consistent(f.check_with(example, &before), "records of the earlier segments");

        // A segment whose name survived but whose content did not (all zeros).
        std::fs::write(f.file(&last), vec![0u8; bytes.len()]).unwrap();
        assert_violation(f.check(), &format!("acked record {first_in_last} is missing from {last}"));

        // A torn record in the middle of the log: everything after it is gone.
        std::fs::write(f.file(&last), &bytes).unwrap();
        let mut first = std::fs::read(f.file("seg-000001")).unwrap();
        first[16 + 3] ^= 0x40; // record 0's payload
        std::fs::write(f.file("seg-000001"), &first).unwrap();
        assert_violation(f.check(), "acked record 0 is missing from seg-000001");
    }
}

#[test]
fn grow_ftruncate_checker_rejects_sizes_the_writer_never_set_and_lost_records() {
    let f = finished("grow-ftruncate", &["--records", "5"]);
    let page = page_size();
    let step = 2 * page;
    let full = std::fs::read(f.file("grow.db")).unwrap();
    assert_eq!(full.len(), page + 5 * step, "1 page + 5 steps of 2 pages");
    assert!(f.acks.lines().last().unwrap().ends_with(&format!(" size {}", full.len())), "{}", f.acks);
    let set_len = |len: usize| {
        let file = std::fs::OpenOptions::new().write(true).open(f.file("grow.db")).unwrap();
        file.set_len(len as u64).unwrap();
    };

    // The end of the last msynced range: the last record's first page.
    set_len(page + 4 * step + page);
    assert_violation(
        f.check(),
        &format!("grow.db is {} bytes: not a length the writer ever set", page + 4 * step + page),
    );
    // One step short: the growth made durable by the last ack's msync lost.
    set_len(page + 4 * step);
    assert_violation(f.check(), &format!("grow.db is {} bytes: the size set before acked record 4", page + 4 * step));
    // ...which is fine if record 4 was never acked (its ftruncate was in flight).
    let four: String = f.acks.lines().take(4).map(|l| format!("{l}\n")).collect();
    assert_consistent(f.check_with("grow-ftruncate", &four), "4 acks, 4 steps");
    // One step more than the writer set after its last ack: never set.
    set_len(page + 6 * step);
    let three: String = f.acks.lines().take(3).map(|l| format!("{l}\n")).collect();
    assert_violation(
        f.check_with("grow-ftruncate", &three),
        &format!("grow.db is {} bytes: grown past", page + 6 * step),
    );
    std::fs::write(f.file("grow.db"), &full).unwrap();
    assert_consistent(f.check(), "back to the full file");

    // A record's payload lost (its page at zeros), one torn.
    let mut bytes = full.clone();
    bytes[page + 2 * step..page + 2 * step + page].fill(0);
    std::fs::write(f.file("grow.db"), &bytes).unwrap();
    assert_violation(f.check(), "acked record 2 is missing: its area at byte");
    let mut bytes = full.clone();
    bytes[page + 3 * step + 20] ^= 1;
    std::fs::write(f.file("grow.db"), &bytes).unwrap();
    assert_violation(f.check(), "acked record 3 is torn");

    std::fs::remove_file(f.file("grow.db")).unwrap();
    assert_violation(f.check(), "grow.db is missing, but record 4 was acked");
}

/// The setups of the older examples create durable files their writers then
/// use without truncating them: the setup of `wal` sized for the writer's
/// records, a writer after it leaves the same file a writer alone does.
#[test]
fn the_older_examples_write_the_same_files_with_or_without_their_setup() {
    for (example, file) in [("wal", "wal.log"), ("shadow", "shadow.db"), ("flag-before-payload", "records.db")] {
        let with = finished(example, &["--records", "4"]);
        let tmp = tempfile::tempdir().unwrap();
        let out = role(example, "writer", tmp.path(), None, &["--records", "4"]);
        assert!(out.status.success(), "{example}: {}", stderr(&out));
        assert_eq!(String::from_utf8(out.stdout).unwrap(), with.acks, "{example}: the same acks");
        assert_eq!(std::fs::read(tmp.path().join(file)).unwrap(), std::fs::read(with.file(file)).unwrap(), "{example}");
    }
}

// ---------------------------------------------------------------- SQLite

fn python() -> String {
    if let Ok(p) = std::env::var("CRASHLAB_PYTHON") {
        return p;
    }
    if Path::new("/usr/bin/python3").exists() { "/usr/bin/python3" } else { "python3" }.to_owned()
}

/// Run Python `code` (with the workload script importable as
/// `sqlite_workload`) with `args`; panics with its stderr on failure.
fn python_run(code: &str, args: &[&str]) {
    let out = Command::new(python())
        .arg("-c")
        .arg(format!("import sys\nsys.dont_write_bytecode = True\nsys.path.insert(0, {WORKLOADS_DIR:?})\n{code}"))
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("these tests need python3 with its sqlite3 module: cannot run {}: {e}", python()));
    assert!(out.status.success(), "python failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Delete rows `ids` of a finished database (as a rollback would have left
/// it without them).
fn delete_rows(db: &Path, ids: &[u32]) {
    let ids: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
    let mut args = vec![db.to_str().unwrap()];
    args.extend(ids.iter().map(String::as_str));
    python_run(
        "import sqlite3\nc = sqlite3.connect(sys.argv[1])\n\
         c.executemany('DELETE FROM txns WHERE id = ?', [(int(i),) for i in sys.argv[2:]])\nc.commit()\nc.close()",
        &args,
    );
}

#[test]
fn sqlite_writer_sets_and_reads_back_its_pragmas_and_every_mode_passes_when_nothing_is_lost() {
    let version = role("sqlite-wal-full", "version", Path::new("/"), None, &[]);
    assert!(version.status.success(), "python3 with sqlite3 is needed: {}", stderr(&version));
    for example in SQLITE_EXAMPLES {
        let f = finished(example, &["--records", "6", "--pace-us", "1"]);
        let expected: String = (0..6).map(|i| format!("txn {i}\n")).collect();
        assert_eq!(f.acks, expected, "{example}");
        // The writer closed the database: no journal or WAL is left, and
        // the journal mode the setup chose is in the file (WAL is persistent).
        assert_eq!(names(&f.dir()), ["test.db"], "{example}");
        let header = std::fs::read(f.file("test.db")).unwrap();
        let wal = example.starts_with("sqlite-wal-");
        assert_eq!((header[18], header[19]), if wal { (2, 2) } else { (1, 1) }, "{example}: file format versions");
        assert_consistent(f.check(), example);
        // The last transaction committed but not acked yet (the one in flight).
        let five: String = f.acks.lines().take(5).map(|l| format!("{l}\n")).collect();
        assert_consistent(f.check_with(example, &five), example);
        let bad = f.check_with(example, "txn 1\n");
        assert_eq!(bad.0, Some(2), "{example}: an ack line out of order is the checker's input error: {bad:?}");
    }
}

#[test]
fn sqlite_checker_requires_acked_transactions_only_where_sqlite_promises_them() {
    // How many of the last acked transactions may be missing in each mode:
    // None = any number.
    let allowed: [(&str, Option<usize>); 8] = [
        ("sqlite-delete-off", None),
        ("sqlite-delete-normal", None),
        ("sqlite-delete-full", Some(1)),
        ("sqlite-delete-extra", Some(0)),
        ("sqlite-wal-off", None),
        ("sqlite-wal-normal", None),
        ("sqlite-wal-full", Some(0)),
        ("sqlite-wal-extra", Some(0)),
    ];
    for (example, may_lose) in allowed {
        for lost in 1..=2usize {
            let f = finished(example, &["--records", "6"]);
            let ids: Vec<u32> = (6 - lost as u32..6).collect();
            delete_rows(&f.file("test.db"), &ids);
            let found = f.check();
            if may_lose.is_none_or(|n| lost <= n) {
                assert_consistent(found, &format!("{example}: {lost} last acked transactions rolled back"));
            } else {
                assert_violation(found, &format!("acked transaction {} is lost: the database holds", 6 - lost));
            }
        }
        // A hole (an earlier transaction missing, a later one present) is no
        // state any commit order leaves: a violation in every mode.
        let f = finished(example, &["--records", "6"]);
        delete_rows(&f.file("test.db"), &[2]);
        assert_violation(f.check(), "transaction 3 is present but transaction 2 is not");
        // A transaction present that was never acked nor in flight.
        let g = finished(example, &["--records", "6"]);
        assert_violation(
            g.check_with(example, "txn 0\ntxn 1\ntxn 2\ntxn 3\n"),
            "transactions 0..5 are present but only 4 were acked",
        );
        // The database gone.
        std::fs::remove_file(g.file("test.db")).unwrap();
        assert_violation(g.check(), "test.db is missing, but 6 transactions were acked");
    }
}

#[test]
fn sqlite_checker_rejects_a_corrupt_database_in_every_mode() {
    for example in SQLITE_EXAMPLES {
        let f = finished(example, &["--records", "40"]);
        let original = std::fs::read(f.file("test.db")).unwrap();
        assert!(original.len() >= 8 * PAGE, "{example}: {} bytes", original.len());
        // A b-tree page's header and cell pointers overwritten: integrity_check fails.
        let mut bytes = original.clone();
        bytes[PAGE..PAGE + 64].fill(0x5a);
        std::fs::write(f.file("test.db"), &bytes).unwrap();
        assert_violation(f.check(), "corrupt: ");
        // A payload byte changed inside a row: the row's checksum catches it.
        let mut bytes = original.clone();
        let last = original.len() - PAGE;
        let at = (last..original.len()).rev().find(|&i| original[i] != 0).expect("a non-empty last page") - 8;
        bytes[at] ^= 0xff;
        std::fs::write(f.file("test.db"), &bytes).unwrap();
        let found = f.check();
        assert_eq!(found.0, Some(1), "{example}: {found:?}");
        assert!(found.1.starts_with("corrupt: "), "{example}: {found:?}");
        // Not a database at all.
        std::fs::write(f.file("test.db"), vec![0x42u8; 2 * PAGE]).unwrap();
        assert_violation(f.check(), "corrupt: reading test.db fails: file is not a database");
    }
}

/// What a power loss does to `journal_mode=DELETE` when the journal's
/// unlink (the commit point) is lost: the journal is back, hot, and the
/// next reader rolls the acked transaction back. Made by hand: a hard link
/// keeps the journal of the last transaction through its unlink, and is
/// renamed back afterwards. FULL allows that loss (its last commit), EXTRA
/// (which fsyncs the directory after the unlink) does not.
#[test]
fn sqlite_delete_mode_rolls_the_last_commit_back_from_a_hot_journal_which_only_full_allows() {
    const HOT: &str = "import os, sqlite3, zlib\nimport sqlite_workload as w\n\
        d, txn, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])\n\
        db = os.path.join(d, 'test.db'); journal = db + '-journal'; kept = os.path.join(d, 'kept-journal')\n\
        c = sqlite3.connect(db)\nc.execute('PRAGMA synchronous=FULL')\ndata = w.payload(seed, txn)\n\
        c.execute('INSERT INTO txns VALUES (?, ?, ?)', (txn, data, zlib.crc32(data)))\n\
        os.link(journal, kept)\nc.commit()\nc.close()\nassert not os.path.exists(journal)\n\
        os.rename(kept, journal)\n";
    for (example, rolled_back_ok) in [("sqlite-delete-full", true), ("sqlite-delete-extra", false)] {
        let f = finished(example, &["--records", "5"]);
        let dir = f.dir();
        python_run(HOT, &[dir.to_str().unwrap(), "5", &SEED.to_string()]);
        assert_eq!(names(&dir), ["test.db", "test.db-journal"], "the journal is back");
        let acks = format!("{}txn 5\n", f.acks);
        let found = f.check_with(example, &acks);
        // The checker's open rolled transaction 5 back and removed the journal.
        assert_eq!(names(&dir), ["test.db"], "{example}: the hot journal was rolled back");
        if rolled_back_ok {
            assert_consistent(found, example);
        } else {
            assert_violation(found, "acked transaction 5 is lost: the database holds 5 of 6 acked transactions");
        }
        // Nothing else changed: with one ack fewer every mode is satisfied.
        assert_consistent(f.check_with(example, &f.acks), example);
    }
}

// ---------------------------------------------------- through crashlab

fn config(example: &str, crashes: &[CrashKind], trials: u32, dir: &Path, options: &str) -> ExternalConfig {
    assert!(!WORKLOAD.contains('\''), "the test quotes the path with '");
    let cmd = |role: &str, opts: &str| format!("'{WORKLOAD}' {example} {role} {opts}");
    let records = options.split_whitespace().skip_while(|w| *w != "--records").take(2).collect::<Vec<_>>().join(" ");
    let mut c = ExternalConfig::new(&cmd("writer", options), &cmd("checker", ""), Some(&cmd("setup", &records)), false)
        .expect("the example commands parse");
    c.crashes = crashes.to_vec();
    c.trials = trials;
    c.seed = 11;
    c.jobs = 2;
    c.dir = dir.to_owned();
    c.timeout = Duration::from_secs(120);
    c.allow_no_acks = true;
    c
}

/// A process crash keeps the page cache and the directory entries: the
/// correct designs and the mistakes of the directory alike pass (only a
/// power loss that models directory entries tells them apart). With their
/// setups, through crashlab.
#[test]
fn the_new_examples_and_their_setups_pass_every_process_crash_under_crashlab() {
    let dir = tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).unwrap();
    let runs: [(&str, &[CrashKind], &str); 6] = [
        ("atomic-replace", &CrashKind::PROCESS_CRASHES, "--records 24 --pace-us 300"),
        ("atomic-replace-no-dir-fsync", &CrashKind::PROCESS_CRASHES, "--records 24 --pace-us 300"),
        ("segmented-log", &CrashKind::PROCESS_CRASHES, "--records 120 --pace-us 100"),
        ("segmented-log-no-dir-fsync", &CrashKind::PROCESS_CRASHES, "--records 120 --pace-us 100"),
        // sigbus cuts grow.db to a length of crashlab's choosing, which its checker refuses.
        ("grow-ftruncate", &[CrashKind::Sigkill, CrashKind::Abort], "--records 24 --pace-us 300"),
        ("sqlite-delete-full", &[CrashKind::Sigkill], "--records 12 --pace-us 1000"),
    ];
    for (example, crashes, options) in runs {
        let config = config(example, crashes, 8, dir.path(), options);
        let report = run_external(&config, &AtomicBool::new(false), &|_| {})
            .unwrap_or_else(|e| panic!("{example}: the run fails: {e}"));
        assert_eq!(report.clean_run.checker, CheckerVerdict::Consistent, "{example}: {}", report.human_summary());
        assert!(report.clean_run.acks > 0, "{example}: {}", report.human_summary());
        assert!(!report.violation_found(), "{example}: {}", report.human_summary());
    }
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "trial directories left behind");
}
