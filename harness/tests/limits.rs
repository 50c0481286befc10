//! Hostile numbers and hostile disks (issue 11): flags beyond what the
//! machine can hold are refused before anything starts (exit 2, naming the
//! flag and the limit, quickly, no panic); Ctrl-C is heard while a worker
//! prepares; crashlab's own temporary directories are private (0700); and a
//! full filesystem is reported with its path and free space.
//!
//! The full-filesystem tests mount a tiny tmpfs, which needs root. Without
//! it they print why and fail, unless CRASHLAB_ALLOW_NO_ROOT=1 (then they
//! pass vacuously, saying so), as the real power-cut tests do.

#[path = "support/processes.rs"]
mod processes;
use processes::{processes_mentioning, start_long_matrix};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crashlab::lab::pool::{run_batches, Batch, PoolConfig};
use crashlab::lab::protocol::TrialPlan;
use crashlab::lab::test_file::TestFile;
use crashlab::payload::BaseImage;
use crashlab::spec::{ByteRange, MappingKind, SyncPolicy, WorkloadParams, WriterSpec};
use crashlab::worker_pool::WorkerCommand;
use crashlab::LabError;

fn crashlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crashlab")).args(args).output().expect("crashlab runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_refused(args: &[&str], culprits: &[&str]) {
    let start = Instant::now();
    let o = crashlab(args);
    let took = start.elapsed();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
    for c in culprits {
        assert!(err.contains(c), "{args:?} should name {c:?}: {err}");
    }
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{args:?} panicked: {err}");
    assert!(took < Duration::from_secs(10), "{args:?} took {took:?} to refuse");
}

#[test]
fn numbers_beyond_the_limits_are_refused_at_once_naming_flag_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let out = out.to_str().unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        // A 1 TiB file used to panic in page_buffer.rs in every worker.
        (&["matrix", "--size", "1099511627776"], &["--size 1099511627776", "1073741824"]),
        // 10^8 transactions used to grow to 12.5 GB before anything ran.
        (&["matrix", "--txns", "100000000"], &["--txns 100000000", "100000"]),
        (&["matrix", "--points", "random:4000000000"], &["random:N", "1000000"]),
        (&["matrix", "--trials", "4000000000"], &["--trials 4000000000", "1000000"]),
        (&["matrix", "--jobs", "100000"], &["--jobs 100000", "1024"]),
        (&["matrix", "--timeout", "0"], &["--timeout"]),
        (&["run", "--scenario", "shared/no-sync", "--crash", "clean", "--trials", "0"], &["--trials"]),
        (&["run", "--writer", "true", "--checker", "true", "--crash", "sigkill", "--jobs", "0"], &["--jobs"]),
        // Within every maximum, but not within this machine's memory: a
        // gibibyte image in each of hundreds of workers.
        (&["matrix", "--size", "1073741824", "--jobs", "1024"], &["of memory", "half of the", "--size 1 GiB"]),
        // Millions of records, each listing thousands of acks.
        (&["matrix", "--txns", "50000", "--trials", "1000"], &["of memory", "trial records", "--txns 50000"]),
        (
            &[
                "replay",
                "--scenario",
                "shared/no-sync",
                "--crash",
                "clean",
                "--point",
                "none",
                "--seed",
                "1",
                "--size",
                "1099511627776",
            ],
            &["--size 1099511627776", "1073741824"],
        ),
        (
            &[
                "replay",
                "--scenario",
                "shared/no-sync",
                "--crash",
                "clean",
                "--point",
                "none",
                "--seed",
                "1",
                "--txns",
                "100000000",
            ],
            &["--txns 100000000"],
        ),
        (&["bench", "--sizes", "4096,1099511627776"], &["--sizes 1099511627776", "1073741824"]),
        (&["soundness", "--jobs", "0"], &["--jobs must be at least 1"]),
        (&["soundness", "--timeout", "0"], &["--timeout"]),
        (&["soundness", "--trials", "4000000000"], &["--trials 4000000000", "1000000"]),
        (&["soundness", "--txns", "100000000"], &["--txns 100000000"]),
        (&["soundness", "--size", "1099511627776"], &["--size 1099511627776"]),
        // The files of a cut group must fit in the filesystem image.
        (&["soundness", "--fs", "ext4", "--size", "67108864"], &["--size 67108864", "64 MiB", "--writers-per-cut"]),
        (&["soundness", "--backend", "vm", "--size", "33554432"], &["--size 33554432", "32 MiB"]),
        (
            &["matrix", "--model", "power-loss,power-loss-real", "--real", "loopcut:ext4", "--size", "33554432"],
            &["--real loopcut:ext4: --size 33554432 × 4 writers per cut", "--real-writers-per-cut"],
        ),
    ];
    for (args, culprits) in cases {
        let mut args = args.to_vec();
        if matches!(args[0], "matrix" | "run" | "soundness") {
            args.extend(["--out", out]);
        }
        assert_refused(&args, culprits);
    }
    assert!(!Path::new(out).exists(), "no report from a refused run");
}

#[test]
fn a_private_tempdir_is_0700_whatever_the_umask() {
    let parent = tempfile::tempdir().unwrap();
    // SAFETY: umask only changes this process's file-creation mask.
    let old = unsafe { libc::umask(0o002) };
    let d = crashlab::private_tempdir_in("crashlab-test-", parent.path());
    unsafe { libc::umask(old) };
    let mode = std::fs::metadata(d.unwrap().path()).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "{mode:o}");
}

/// The work directory of a running matrix is 0700 (it was 0755: anyone
/// could read the files under test).
#[test]
fn the_work_directory_of_a_run_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().to_str().unwrap().to_owned();
    let mut child = start_long_matrix(dir.path());
    let start = Instant::now();
    let work = loop {
        let entries: Vec<PathBuf> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
        if let Some(w) = entries.into_iter().find(|p| p.is_dir()) {
            break w;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no work directory appeared");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mode = std::fs::metadata(&work).unwrap().permissions().mode() & 0o7777;
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(mode, 0o700, "{} is {mode:o}", work.display());
    assert_eq!(status.code(), Some(130));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(processes_mentioning(&marker), Vec::<String>::new());
}

/// A worker that never answers (here: one that sleeps) does not hold up
/// Ctrl-C: the pool kills it and returns `Interrupted` at once. A real
/// worker preparing a gibibyte file, or running long power-loss trials,
/// used to be waited for.
#[test]
fn cancelling_does_not_wait_for_a_busy_worker() {
    let dir = tempfile::tempdir().unwrap();
    // A duration of its own, to find the process by.
    let mark = format!("sleep 600.{}", std::process::id());
    let cfg = PoolConfig {
        command: WorkerCommand {
            program: "sh".into(),
            args: vec!["-c".into(), format!("exec {mark}").into(), "sh".into()],
        },
        jobs: 1,
        dir: dir.path().to_owned(),
        watchdog_secs: 5,
    };
    let spec =
        WriterSpec::generate(&WorkloadParams::with_file_size(65536), MappingKind::Shared, SyncPolicy::None, 4096, 1)
            .unwrap();
    let plan = TrialPlan {
        kind: crashlab::vocab::CrashKind::Clean,
        point: crashlab::crash::CrashPoint::None,
        power_loss: None,
    };
    let batches = vec![Batch { key: 0, spec: Arc::new(spec), base: BaseImage::Pattern, plans: vec![plan] }];
    let cancel = Arc::new(AtomicBool::new(false));
    let c = cancel.clone();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        c.store(true, Ordering::SeqCst);
    });
    let start = Instant::now();
    let r = run_batches(&cfg, &batches, &cancel, &|_| {});
    let took = start.elapsed();
    setter.join().unwrap();
    assert!(matches!(r, Err(LabError::Interrupted)), "{:?}", r.err());
    // The worker sleeps 600 s: waiting for it would take that long. The
    // bound only tells the two apart, whatever the load.
    assert!(took < Duration::from_secs(120), "took {took:?}");
    assert_eq!(processes_mentioning(&mark), Vec::<String>::new(), "the worker outlived the cancel");
}

/// False (after printing why) when the test cannot run here and may pass.
fn have_root(test: &str) -> bool {
    if crashlab::realcut::sys::is_root() {
        return true;
    }
    let reason = format!("{test}: unavailable: needs root (mounting a tmpfs); running as non-root");
    if std::env::var_os("CRASHLAB_ALLOW_NO_ROOT").is_some_and(|v| v == "1") {
        eprintln!("{reason}; CRASHLAB_ALLOW_NO_ROOT=1, so not run");
        return false;
    }
    panic!("{reason}. Run as root, or set CRASHLAB_ALLOW_NO_ROOT=1 to accept not testing full filesystems.");
}

/// A tmpfs of `bytes` mounted on a fresh directory, unmounted (lazily, so
/// even with open files) when dropped: on every exit path of a test, panics
/// included.
struct TinyTmpfs {
    dir: tempfile::TempDir,
}

impl TinyTmpfs {
    fn mount(bytes: u64) -> TinyTmpfs {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let target = CString::new(dir.path().as_os_str().as_bytes()).unwrap();
        let options = CString::new(format!("size={bytes},mode=0700")).unwrap();
        // SAFETY: valid C strings; mounting a fresh tmpfs on our own directory.
        let rc = unsafe {
            libc::mount(
                c"crashlab-test-tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                options.as_ptr().cast(),
            )
        };
        assert_eq!(rc, 0, "cannot mount a tmpfs on {}: {}", dir.path().display(), std::io::Error::last_os_error());
        TinyTmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fill it: a file grows until the filesystem has no block left.
    fn fill(&self, name: &str) {
        let mut f = std::fs::File::create(self.path().join(name)).unwrap();
        let chunk = vec![0x5au8; 4096];
        while std::io::Write::write_all(&mut f, &chunk).is_ok() {}
    }
}

impl Drop for TinyTmpfs {
    fn drop(&mut self) {
        use std::os::unix::ffi::OsStrExt;
        let target = std::ffi::CString::new(self.dir.path().as_os_str().as_bytes()).unwrap();
        // SAFETY: unmounting what `mount` mounted (lazily: even if a file
        // there is still open).
        unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH) };
    }
}

/// `worker 1: cannot reset the test file: No space left on device` named
/// neither the file nor the cause; now both, with the free space.
#[test]
fn a_full_filesystem_under_the_lab_is_named_with_its_free_space() {
    if !have_root("a_full_filesystem_under_the_lab_is_named_with_its_free_space") {
        return;
    }
    let fs = TinyTmpfs::mount(256 * 1024);
    let path = fs.path().join("crashlab-w1-test.dat");
    let base = vec![7u8; 64 * 1024];
    let file = TestFile::create(&path, &base, MappingKind::Shared).unwrap();
    // The SIGBUS crash truncates the file; meanwhile the disk fills up.
    file.truncate(0).unwrap();
    fs.fill("filler");
    let e = file.reset(&base, &[ByteRange::new(0, 4096)], 0).unwrap_err().to_string();
    let dir = fs.path().display().to_string();
    assert!(e.contains(&path.display().to_string()), "names the file: {e}");
    assert!(e.contains("the filesystem is full") && e.contains(&format!("{dir} holds 0 B free of 256 KiB")), "{e}");
    // Creating a test file there says the same.
    let e = TestFile::create(&fs.path().join("other.dat"), &base, MappingKind::Shared).err().unwrap().to_string();
    assert!(e.contains("other.dat") && e.contains("the filesystem is full"), "{e}");
    drop(file);
}

/// `--dir` on a full filesystem is refused before any worker starts, naming
/// the directory and saying it is full. Run in a mount namespace of its own
/// (`unshare -m`), so the tmpfs vanishes with the command whatever happens.
#[test]
fn a_run_on_a_full_dir_is_refused_saying_the_filesystem_is_full() {
    if !have_root("a_run_on_a_full_dir_is_refused_saying_the_filesystem_is_full") {
        return;
    }
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("full");
    std::fs::create_dir(&dir).unwrap();
    let out = scratch.path().join("r.json");
    let script = r#"mount -t tmpfs -o size=64k crashlab-test-tmpfs "$1" || exit 99
        dd if=/dev/zero of="$1/filler" bs=4096 2>/dev/null
        shift; exec "$@""#;
    let o = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&dir)
        .arg(env!("CARGO_BIN_EXE_crashlab"))
        .args(["matrix", "--crash", "clean", "--seed", "1", "--dir"])
        .arg(&dir)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("unshare runs (util-linux)");
    let err = stderr(&o);
    assert_ne!(o.status.code(), Some(99), "cannot mount a tmpfs: {err}");
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("--dir {}", dir.display())), "names the directory: {err}");
    assert!(err.contains("the filesystem is full") && err.contains("0 B free of 64 KiB"), "{err}");
    assert!(!out.exists());
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "the tmpfs was private to the command");
}
