//! The durability oracle end to end: real writer programs (C, compiled here
//! with `cc`) traced with ptrace + seccomp, on the default temp dir.
//!
//! These tests need ptrace and seccomp. Where they are unavailable the tests
//! fail with the oracle's error (which says so), they do not skip.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crashlab::namespace::{Entry, FileId, FileKind, NamespaceTrace, NsOp};
use crashlab::oracle::{
    run_traced, CrashSyscall, NoGuarantee, OracleConfig, OracleError, OracleOutcome, SyncEffect, SyncEvent,
    SyscallCrashPoint, SyscallResult, TraceControl, TracedLaunch, TracedSyscall, WriterEnd,
};
use crashlab::vocab::CrashWhen;

/// A test program, compiled once per source version: named by a hash of
/// the source, built under a temporary name and renamed into place, so that
/// concurrent test binaries neither race nor pile up copies.
fn compiled(name: &str) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/oracle-programs/{name}.c"));
    let text = std::fs::read(&src).unwrap_or_else(|e| panic!("cannot read {}: {e}", src.display()));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let out = dir.join(format!("oracle-{name}-{:016x}", h.finish()));
    if out.exists() {
        return out;
    }
    let tmp = dir.join(format!("oracle-{name}-{}.tmp", std::process::id()));
    let o = Command::new("cc")
        .args(["-O1", "-Wall", "-Wextra", "-Werror", "-pthread", "-o"])
        .arg(&tmp)
        .arg(&src)
        .output()
        .expect("cc runs (gcc is required for the oracle tests)");
    assert!(o.status.success(), "cc {} failed:\n{}", src.display(), String::from_utf8_lossy(&o.stderr));
    std::fs::rename(&tmp, &out).unwrap();
    out
}

/// The test writer (`oracle-programs/writer.c`).
fn writer() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| compiled("writer"))
}

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: a valid two-int array; both fds are ours on success.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0, "pipe2");
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

fn gettid() -> i32 {
    // SAFETY: no arguments.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

/// A watched directory with `data` = `pages` pages of 'A'.
fn setup(pages: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data");
    std::fs::write(&file, vec![b'A'; pages * page()]).unwrap();
    (dir, file)
}

struct Run {
    result: Result<OracleOutcome, OracleError>,
    stdout: String,
    writer_pid: Option<i32>,
    /// Keeps the watched directory alive while the test inspects the run.
    _dir: tempfile::TempDir,
    file: PathBuf,
}

/// Run `writer MODE FILE` under the oracle, collecting its stdout.
fn run(mode: &str, pages: usize, configure: impl FnOnce(&mut OracleConfig)) -> Run {
    let (dir, file) = setup(pages);
    let mut cfg = OracleConfig::new(dir.path());
    configure(&mut cfg);
    let (r, w) = pipe();
    let control = TraceControl::new();
    let launch = TracedLaunch::new(writer()).arg(mode).arg(&file).stdout(w.as_fd()).new_process_group(true);
    let result = run_traced(&launch, &cfg, &control);
    drop(launch);
    drop(w);
    let mut stdout = String::new();
    File::from(r).read_to_string(&mut stdout).unwrap();
    Run { result, stdout, writer_pid: control.writer_pid(), _dir: dir, file }
}

fn must(run: &Run) -> &OracleOutcome {
    match &run.result {
        Ok(o) => o,
        Err(e) => panic!("the oracle must work on this machine (it needs ptrace and seccomp): {e}"),
    }
}

fn page_of(content: &[u8], i: usize) -> &[u8] {
    &content[i * page()..((i + 1) * page()).min(content.len())]
}

fn is_page(bytes: Option<&[u8]>, b: u8) -> bool {
    bytes.is_some_and(|p| p.len() == page() && p.iter().all(|&x| x == b))
}

fn msyncs(out: &OracleOutcome) -> Vec<&SyncEvent> {
    out.events.iter().filter(|e| e.syscall == TracedSyscall::Msync).collect()
}

fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// No process of the run is left (not even a zombie: /proc lists those),
/// and no task anywhere is still traced by this thread.
fn assert_no_leftovers(pids: impl IntoIterator<Item = i32>) {
    for pid in pids {
        assert!(
            !alive(pid),
            "process {pid} of the run still exists: {:?}",
            std::fs::read_to_string(format!("/proc/{pid}/status"))
        );
    }
    let me = gettid().to_string();
    for proc_entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(tasks) = std::fs::read_dir(proc_entry.path().join("task")) else { continue };
        for task in tasks.flatten() {
            let Ok(status) = std::fs::read_to_string(task.path().join("status")) else { continue };
            let tracer = status.lines().find_map(|l| l.strip_prefix("TracerPid:")).map(str::trim);
            assert_ne!(tracer, Some(me.as_str()), "{} is still traced by this test's thread", task.path().display());
        }
    }
}

fn assert_clean(out: &OracleOutcome) {
    assert_no_leftovers(out.processes.iter().copied().chain([out.launcher_pid]));
}

#[test]
fn ms_sync_pages_become_durable_ms_async_and_unsynced_pages_do_not() {
    let r = run("msync4", 4, |_| {});
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Exited { code: 0 }, "stdout: {}", r.stdout);
    assert_eq!(r.stdout, "synced 0\nsynced 2\nasync 1\n");
    let f = out.file("data").expect("a shadow for the watched file");
    for (i, b) in [(0, b'B'), (1, b'A'), (2, b'B'), (3, b'A')] {
        assert!(is_page(Some(page_of(&f.content, i)), b), "shadow page {i} should be all {}", b as char);
        assert!(is_page(f.floor_page(i as u64), b), "floor of page {i}");
    }
    assert_eq!(f.copied_pages, BTreeSet::from([0, 2]));
    assert_eq!(f.durable_size, Some(4 * page() as u64));
    // The page cache has every store: the shadow is not just a copy of it.
    let now = std::fs::read(&r.file).unwrap();
    assert!((0..4).all(|i| is_page(Some(page_of(&now, i)), b'B')));
    let ms = msyncs(out);
    assert_eq!(ms.len(), 3);
    assert_eq!(ms[0].effect, SyncEffect::Copied);
    assert_eq!((ms[0].copied[0].offset, ms[0].copied[0].len), (0, page() as u64));
    assert_eq!(ms[1].copied[0].offset, 2 * page() as u64);
    assert_eq!(ms[2].effect, SyncEffect::NoGuarantee(NoGuarantee::NoMsSync));
    assert!(ms.iter().all(|e| e.result == SyscallResult::Returned { value: 0 } && e.pid == out.writer_pid));
    // Without a crash point, ordinals count every crash-point kind (the
    // dynamic loader's munmap included), consecutively.
    let ordinals: Vec<u64> = out.events.iter().filter_map(|e| e.ordinal).collect();
    assert_eq!(ordinals, (1..=ordinals.len() as u64).collect::<Vec<_>>());
    assert!(ms.iter().all(|e| e.ordinal.is_some()));
    assert_eq!(out.stats.maps_reads, 1, "two MS_SYNC msyncs with no mmap between share one maps read");
    assert_eq!(out.stats.bytes_copied, 2 * page() as u64);
    assert_clean(out);
}

#[test]
fn initial_content_has_no_floor_unless_declared_durable() {
    let r = run("msync4", 4, |c| c.assume_initial_durable = false);
    let out = must(&r);
    let f = out.file("data").unwrap();
    assert!(is_page(f.floor_page(0), b'B'));
    assert_eq!(f.floor_page(1), None, "initial 'A' pages are not durable here");
    assert_eq!(f.floor_page(3), None);
    assert_eq!(f.durable_size, None, "msync never makes a size durable");
    assert_clean(out);
}

#[test]
fn fsync_makes_the_whole_file_and_its_size_durable() {
    let r = run("fsync-grow", 2, |_| {});
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Exited { code: 0 }, "stdout: {}", r.stdout);
    let f = out.file("data").unwrap();
    assert_eq!(f.initial_size, 2 * page() as u64);
    assert_eq!(f.durable_size, Some(5 * page() as u64));
    assert_eq!(f.content.len(), 5 * page());
    for i in 0..5 {
        assert!(is_page(f.floor_page(i), b'C'), "page {i} as of the fsync");
    }
    assert_eq!(f.copied_pages, (0..5).collect());
    let now = std::fs::read(&r.file).unwrap();
    assert!(is_page(Some(page_of(&now, 0)), b'D'), "the later store is in the page cache only");
    let fsync = out.events.iter().find(|e| e.syscall == TracedSyscall::Fsync).expect("fsync traced");
    assert_eq!(fsync.effect, SyncEffect::Copied);
    assert_eq!(fsync.copied[0].size, Some(5 * page() as u64));
    assert_eq!(fsync.file.as_deref(), Some(std::fs::canonicalize(&r.file).unwrap().as_path()));
    let trunc = out.events.iter().find(|e| e.syscall == TracedSyscall::Ftruncate).expect("ftruncate traced");
    assert_eq!(trunc.effect, SyncEffect::NotASync);
    assert_clean(out);
}

#[test]
fn a_failed_msync_copies_nothing() {
    let r = run("msync-fail", 4, |_| {});
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Exited { code: 0 }, "stdout: {}", r.stdout);
    assert_eq!(r.stdout, "enomem hole\nenomem span\n");
    let ms = msyncs(out);
    assert_eq!(ms.len(), 2);
    for e in &ms {
        assert_eq!(e.result, SyscallResult::Failed { errno: libc::ENOMEM });
        assert_eq!(e.effect, SyncEffect::NoGuarantee(NoGuarantee::Failed));
        assert!(e.copied.is_empty());
    }
    let f = out.file("data").unwrap();
    assert!(f.copied_pages.is_empty(), "copied: {:?}", f.copied_pages);
    assert!((0..4).all(|i| is_page(f.floor_page(i), b'A')));
    assert_clean(out);
}

fn crash_at_second_msync(when: CrashWhen) -> Run {
    run("seq3", 4, |c| c.crash = Some(SyscallCrashPoint::new(2, [CrashSyscall::Msync], when)))
}

#[test]
fn a_crash_before_the_second_msync_keeps_only_the_first() {
    let r = crash_at_second_msync(CrashWhen::Before);
    let out = must(&r);
    let WriterEnd::CrashPoint(hit) = &out.end else { panic!("expected a crash point, got {:?}", out.end) };
    assert_eq!((hit.nth, hit.syscall, hit.when, hit.tid), (2, TracedSyscall::Msync, CrashWhen::Before, out.writer_pid));
    assert_eq!(r.stdout, "ack 1\n", "only the first msync returned");
    let f = out.file("data").unwrap();
    assert_eq!(f.copied_pages, BTreeSet::from([0]));
    assert!(is_page(f.floor_page(0), b'B'));
    assert!(is_page(f.floor_page(1), b'A'), "page 1 was stored but its msync never ran");
    let ms = msyncs(out);
    assert_eq!(ms.len(), 2, "nothing runs after the crash point");
    assert_eq!(ms[1].result, SyscallResult::InFlight);
    assert_eq!(ms[1].ordinal, Some(2));
    assert_eq!(out.events[hit.event].ordinal, Some(2));
    assert_clean(out);
}

#[test]
fn a_crash_after_the_second_msync_includes_it() {
    let r = crash_at_second_msync(CrashWhen::After);
    let out = must(&r);
    let WriterEnd::CrashPoint(hit) = &out.end else { panic!("expected a crash point, got {:?}", out.end) };
    assert_eq!((hit.nth, hit.when), (2, CrashWhen::After));
    // Killed at the syscall-exit stop: msync completed, its ack never printed.
    assert_eq!(r.stdout, "ack 1\n");
    let f = out.file("data").unwrap();
    assert_eq!(f.copied_pages, BTreeSet::from([0, 1]));
    assert!(is_page(f.floor_page(1), b'B'));
    assert!(is_page(f.floor_page(2), b'A'));
    assert_eq!(msyncs(out)[1].result, SyscallResult::Returned { value: 0 });
    assert_eq!(out.stats.maps_reads, 1);
    assert_clean(out);
}

#[test]
fn a_second_thread_that_syncs_is_followed() {
    let r = run("thread", 4, |_| {});
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Exited { code: 0 }, "stdout: {}", r.stdout);
    assert_eq!(r.stdout, "thread synced\njoined\n");
    assert!(out.threads >= 2, "threads seen: {}", out.threads);
    let ms = msyncs(out);
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0].pid, out.writer_pid);
    assert_ne!(ms[0].tid, out.writer_pid, "the sync came from the second thread");
    let f = out.file("data").unwrap();
    assert_eq!(f.copied_pages, BTreeSet::from([1]));
    assert!(is_page(f.floor_page(1), b'B'));
    assert!(is_page(f.floor_page(0), b'A'), "the main thread's stores into page 0 were never synced");
    // The main thread was spinning in user space when the copy happened: it
    // had to be stopped first.
    assert!(out.stats.tasks_interrupted >= 1, "{:?}", out.stats);
    assert_clean(out);
}

#[test]
fn a_forked_child_that_syncs_is_followed() {
    let r = run("fork", 4, |_| {});
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Exited { code: 0 }, "stdout: {}", r.stdout);
    assert_eq!(r.stdout, "child synced\nparent done\n");
    assert_eq!(out.processes.len(), 2, "processes: {:?}", out.processes);
    let ms = msyncs(out);
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0].pid, out.processes[1]);
    assert_ne!(ms[0].pid, out.writer_pid);
    let f = out.file("data").unwrap();
    assert_eq!(f.copied_pages, BTreeSet::from([2, 3]));
    assert!(is_page(f.floor_page(2), b'B'), "the parent's store, inherited mapping");
    assert!(is_page(f.floor_page(3), b'C'));
    // The parent sat in waitpid: interrupted for the copy, and restarted
    // transparently (the writer checks waitpid's result).
    assert!(out.stats.tasks_interrupted >= 1, "{:?}", out.stats);
    assert_clean(out);
}

#[test]
fn a_crash_kills_and_reaps_the_whole_tree() {
    let r =
        run("fork-sleeper", 4, |c| c.crash = Some(SyscallCrashPoint::new(2, [CrashSyscall::Msync], CrashWhen::Before)));
    let out = must(&r);
    assert!(matches!(out.end, WriterEnd::CrashPoint(_)), "{:?}", out.end);
    let child: i32 =
        r.stdout.lines().next().and_then(|l| l.strip_prefix("child ")).and_then(|p| p.parse().ok()).unwrap();
    assert_eq!(r.stdout, format!("child {child}\nack 1\n"));
    assert!(out.processes.contains(&child));
    assert_eq!(out.file("data").unwrap().copied_pages, BTreeSet::from([0]));
    assert_clean(out);
}

#[test]
fn msyncs_racing_with_unrelated_mmap_churn_all_count() {
    let r = run("churn", 4, |_| {});
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Exited { code: 0 }, "stdout: {}", r.stdout);
    let ms = msyncs(out);
    assert_eq!(ms.len(), 50);
    // The churning thread only ever unmaps its own mappings, and a mapping
    // without MAP_FIXED only takes free space: neither can change what
    // page 0 of the main mapping maps to, so every msync counts.
    for e in &ms {
        assert_eq!(e.effect, SyncEffect::Copied, "{e:?}");
        assert_eq!(e.copied.len(), 1, "{e:?}");
        assert_eq!((e.copied[0].offset, e.copied[0].len), (0, page() as u64));
    }
    let f = out.file("data").unwrap();
    assert_eq!(f.copied_pages, BTreeSet::from([0]));
    assert!(is_page(f.floor_page(0), b'B'));
    // The churning thread's 'Q' stores into page 1 were never synced.
    assert!(is_page(f.floor_page(1), b'A'));
    assert!(out.stats.maps_reads >= 1);
    assert_clean(out);
}

#[test]
fn a_vforked_child_that_execs_is_followed() {
    let r = run("vfork", 4, |_| {});
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Exited { code: 0 }, "stdout: {}", r.stdout);
    assert_eq!(r.stdout, "vforked\n");
    assert_eq!(out.processes.len(), 2, "{:?}", out.processes);
    let f = out.file("data").unwrap();
    assert_eq!(f.copied_pages, BTreeSet::from([0, 1]));
    assert_clean(out);
}

#[test]
fn io_uring_is_refused_with_a_clear_error() {
    let r = run("io_uring", 1, |_| {});
    match &r.result {
        Err(e @ OracleError::IoUring { pid }) => {
            assert_eq!(Some(*pid), r.writer_pid);
            assert!(e.to_string().contains("the writer uses io_uring; its fsyncs cannot be seen by the oracle"), "{e}");
        }
        other => panic!("io_uring must be refused, got {other:?}"),
    }
    assert_eq!(r.stdout, "", "killed at io_uring_setup's entry, before it returned");
    assert_no_leftovers(r.writer_pid);
}

#[test]
fn traced_syscalls_return_normally_and_untraced_ones_work() {
    // The ENOSYS pitfall: a RET_TRACE filter without a tracer fails the
    // traced calls. Every one of them must succeed here.
    let r = run("plain", 1, |_| {});
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Exited { code: 0 }, "stdout: {}", r.stdout);
    assert_eq!(r.stdout, "ok\n");
    let kinds: Vec<_> = out.events.iter().map(|e| e.syscall).collect();
    for k in [
        TracedSyscall::Fsync,
        TracedSyscall::Fdatasync,
        TracedSyscall::SyncFileRange,
        TracedSyscall::Syncfs,
        TracedSyscall::Msync,
        TracedSyscall::Munmap,
        TracedSyscall::Ftruncate,
    ] {
        assert!(kinds.contains(&k), "{k:?} not traced: {kinds:?}");
    }
    for e in &out.events {
        // The pwrite returns its byte count (it is listed: it wrote a watched file).
        let value = if e.syscall == TracedSyscall::Pwrite64 { 1 } else { 0 };
        assert_eq!(e.result, SyscallResult::Returned { value }, "{e:?}");
    }
    let effect = |k| out.events.iter().find(|e| e.syscall == k).unwrap().effect.clone();
    assert_eq!(effect(TracedSyscall::Fsync), SyncEffect::Copied);
    assert_eq!(effect(TracedSyscall::Fdatasync), SyncEffect::Copied);
    assert_eq!(effect(TracedSyscall::Syncfs), SyncEffect::Copied);
    assert_eq!(effect(TracedSyscall::SyncFileRange), SyncEffect::NoGuarantee(NoGuarantee::SyncFileRange));
    assert_eq!(effect(TracedSyscall::Msync), SyncEffect::NoGuarantee(NoGuarantee::NoMsSync));
    let f = out.file("data").unwrap();
    assert_eq!(f.floor_page(0).map(|p| p[0]), Some(b'Z'), "the pwrite was fsynced");
    assert_eq!(f.durable_size, Some(page() as u64), "the final ftruncate was never synced");
    assert_eq!(std::fs::metadata(&r.file).unwrap().len(), 2 * page() as u64);
    assert_clean(out);
}

/// Run `forever` and act from another thread after its first ack.
fn run_forever(act: impl FnOnce(&TraceControl) + Send) -> (Run, usize) {
    run_forever_as("forever", act)
}

fn run_forever_as(mode: &str, act: impl FnOnce(&TraceControl) + Send) -> (Run, usize) {
    let (dir, file) = setup(1);
    let cfg = OracleConfig::new(dir.path());
    let (r, w) = pipe();
    let control = TraceControl::new();
    let (result, acks) = std::thread::scope(|s| {
        let control = &control;
        let reader = s.spawn(move || {
            let mut lines = BufReader::new(File::from(r)).lines();
            let first = lines.next().expect("a first ack").unwrap();
            assert_eq!(first, "ack 0");
            act(control);
            1 + lines.count()
        });
        let launch = TracedLaunch::new(writer()).arg(mode).arg(&file).stdout(w.as_fd());
        let result = run_traced(&launch, &cfg, control);
        drop(launch);
        drop(w);
        (result, reader.join().unwrap())
    });
    (Run { result, stdout: String::new(), writer_pid: control.writer_pid(), _dir: dir, file }, acks)
}

fn assert_acked_syncs_were_copied(out: &OracleOutcome, acks: usize) {
    let copied = msyncs(out).iter().filter(|e| e.effect == SyncEffect::Copied).count();
    // Each ack is printed after its msync returned, i.e. after the copy.
    assert!(copied >= acks, "{acks} acks but only {copied} copied msyncs");
    assert!(out.file("data").unwrap().copied_pages.contains(&0));
}

#[test]
fn cancel_from_another_thread_ends_the_run() {
    let (r, acks) = run_forever(|c| c.cancel());
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Cancelled);
    assert_acked_syncs_were_copied(out, acks);
    assert_clean(out);
}

/// A cancel that lands while the tracer is stopping the other processes for
/// an msync's copy is still a cancel: the deaths it causes are seen inside
/// that wait. The delays sweep the msync loop so that some cancels land
/// there; before every wait noticed a cancel, about 1 run in 8 of a similar
/// shell writer ended as "died of SIGKILL on its own".
#[test]
fn a_cancel_while_other_processes_are_being_stopped_is_still_a_cancel() {
    for i in 0..24u64 {
        let (r, acks) = run_forever_as("forever-with-child", |c| {
            std::thread::sleep(std::time::Duration::from_micros(137 * i));
            c.cancel()
        });
        let out = must(&r);
        assert_eq!(out.end, WriterEnd::Cancelled, "run {i} (cancelled {}µs after the first ack)", 137 * i);
        assert_acked_syncs_were_copied(out, acks);
        assert_clean(out);
    }
}

#[test]
fn a_kill_of_the_writer_from_another_thread_ends_the_run() {
    let (r, acks) = run_forever(|c| {
        let pid = c.writer_pid().expect("the writer is traced");
        // SAFETY: kill has no memory arguments; the pid is traced and
        // unreaped, so it cannot have been reused.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    });
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Signaled { signal: libc::SIGKILL });
    assert_acked_syncs_were_copied(out, acks);
    assert_clean(out);
}

#[test]
fn exit_codes_are_reported() {
    let control = TraceControl::new();
    let dir = tempfile::tempdir().unwrap();
    let launch = TracedLaunch::new(writer()).args(["exit", "7"]);
    let out = run_traced(&launch, &OracleConfig::new(dir.path()), &control).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.end, WriterEnd::Exited { code: 7 });
    assert!(out.events.iter().all(|e| e.syscall != TracedSyscall::Msync));
    assert_clean(&out);
}

#[test]
fn launch_failures_name_the_program_and_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = OracleConfig::new(dir.path());

    let control = TraceControl::new();
    let missing = dir.path().join("no-such-program");
    match run_traced(&TracedLaunch::new(&missing), &cfg, &control) {
        Err(e @ OracleError::Launch { step: "execve", .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("no-such-program") && msg.contains("execve"), "{msg}");
        }
        other => panic!("expected an execve failure, got {other:?}"),
    }
    assert_no_leftovers(control.writer_pid());

    let control = TraceControl::new();
    let launch = TracedLaunch::new(writer()).cwd(dir.path().join("no-such-dir"));
    match run_traced(&launch, &cfg, &control) {
        Err(OracleError::Launch { step, .. }) => assert!(step.contains("chdir"), "{step}"),
        other => panic!("expected a chdir failure, got {other:?}"),
    }
    assert_no_leftovers(control.writer_pid());

    let control = TraceControl::new();
    match run_traced(&TracedLaunch::new("crashlab-no-such-program-in-path"), &cfg, &control) {
        Err(OracleError::Invalid(msg)) => assert!(msg.contains("not found in PATH"), "{msg}"),
        other => panic!("expected a PATH lookup failure, got {other:?}"),
    }

    let bad = OracleConfig {
        crash: Some(SyscallCrashPoint::new(0, [CrashSyscall::Msync], CrashWhen::Before)),
        ..OracleConfig::new(dir.path())
    };
    assert!(matches!(run_traced(&TracedLaunch::new(writer()), &bad, &control), Err(OracleError::Invalid(_))));
}

// ---- the namespace trace ----

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
    assert_eq!(ops(out), vec![NsOp::SyncData { file: f, size: 4 * p }, NsOp::SyncFile { file: f, size: 4 * p }]);
    assert_eq!(syscalls(out), ["pwrite64", "write"]);
    let shadow = out.file("data").unwrap();
    assert!(is_page(shadow.floor_page(1), b'D'), "the O_DSYNC write is durable");
    assert!(is_page(shadow.floor_page(2), b'A'), "the plain write is not");
    assert!(is_page(shadow.floor_page(3), b'S'), "the O_SYNC write is durable");
    assert_eq!(shadow.copied_pages, BTreeSet::from([1, 3]));
    let writes: Vec<_> = out.events.iter().filter(|e| e.syscall.name().contains("write")).collect();
    assert_eq!(writes.len(), 3);
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
