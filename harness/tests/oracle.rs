//! The durability oracle end to end: real writer programs (C, compiled here
//! with `cc`) traced with ptrace + seccomp, on the default temp dir.
//!
//! These tests need ptrace and seccomp. Where they are unavailable the tests
//! fail with the oracle's error (which says so), they do not skip.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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

/// The namespace trace of real writers (`oracle-programs/namespace.c`).
#[path = "oracle-programs/namespace_tests.rs"]
mod namespace_tests;

#[path = "oracle-programs/call_point_tests.rs"]
mod call_point_tests;

#[path = "oracle-programs/history_tests.rs"]
mod history_tests;

#[path = "oracle-programs/fault_tests.rs"]
mod fault_tests;
