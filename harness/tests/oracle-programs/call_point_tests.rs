//! Crash points counted over every recorded call (`--points syscalls`),
//! and SIGABRT at a crash point: delivered as if it arrived just before the
//! call (which the kernel then restarts after a handler that returns) or
//! just after it returned. The writer is `writer appends[-handler] FILE`:
//! three 1-byte `write`s to FILE (O_APPEND), an ack line after each; its
//! handler prints FILE's size when it runs, so the output shows on which
//! side of the call the signal landed.

use super::*;
use crashlab::oracle::{CountedCalls, CrashSignal};

/// The 1-based position among the recorded events of the `k`-th (0-based)
/// write to the watched file, from an uncrashed run: under
/// `CountedCalls::Recorded`, the `nth` crash point is event `nth - 1`.
fn nth_of_write(mode: &str, k: usize) -> u64 {
    let r = run(mode, 0, |_| {});
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Exited { code: 0 }, "{}", r.stdout);
    assert_eq!(r.stdout, "wrote 0\nwrote 1\nwrote 2\n");
    let writes: Vec<&SyncEvent> = out.events.iter().filter(|e| e.syscall == TracedSyscall::Write).collect();
    assert_eq!(writes.len(), 3, "the acks go to a pipe and are not recorded: {writes:?}");
    writes[k].seq + 1
}

fn abort_at_second_write(mode: &str, when: CrashWhen) -> Run {
    let nth = nth_of_write(mode, 1);
    run(mode, 0, |c| c.crash = Some(SyscallCrashPoint::at_recorded(nth, when, CrashSignal::Abort)))
}

fn file_len(r: &Run) -> u64 {
    std::fs::metadata(&r.file).unwrap().len()
}

#[test]
fn recorded_crash_points_count_every_call_on_a_watched_file_and_kill_at_the_chosen_one() {
    let nth = nth_of_write("appends", 1);
    let r = run("appends", 0, |c| {
        c.crash = Some(SyscallCrashPoint::at_recorded(nth, CrashWhen::Before, CrashSignal::Kill))
    });
    let out = must(&r);
    let WriterEnd::CrashPoint(hit) = &out.end else { panic!("expected a crash point, got {:?}", out.end) };
    assert_eq!(
        (hit.nth, hit.syscall, hit.when, hit.signal),
        (nth, TracedSyscall::Write, CrashWhen::Before, CrashSignal::Kill)
    );
    assert_eq!(out.crash.as_ref(), Some(hit));
    assert_eq!(r.stdout, "wrote 0\n");
    assert_eq!(file_len(&r), 1, "the second write never ran");
    let r =
        run("appends", 0, |c| c.crash = Some(SyscallCrashPoint::at_recorded(nth, CrashWhen::After, CrashSignal::Kill)));
    assert!(matches!(must(&r).end, WriterEnd::CrashPoint(_)));
    assert_eq!(r.stdout, "wrote 0\n", "killed before its ack");
    assert_eq!(file_len(&r), 2, "the second write returned");
    assert_clean(must(&r));
}

#[test]
fn sigabrt_just_before_a_call_kills_a_writer_without_a_handler_before_the_call_runs() {
    let r = abort_at_second_write("appends", CrashWhen::Before);
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Signaled { signal: libc::SIGABRT });
    let hit = out.crash.as_ref().expect("the crash point struck");
    assert_eq!((hit.syscall, hit.when, hit.signal), (TracedSyscall::Write, CrashWhen::Before, CrashSignal::Abort));
    assert_eq!(r.stdout, "wrote 0\n");
    assert_eq!(file_len(&r), 1, "the held-back write never ran");
    assert_eq!(out.events[hit.event].result, SyscallResult::Failed { errno: libc::EINTR }, "marked as not run");
    assert_clean(out);
}

#[test]
fn sigabrt_just_after_a_call_kills_the_writer_before_its_next_instruction() {
    let r = abort_at_second_write("appends", CrashWhen::After);
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Signaled { signal: libc::SIGABRT });
    assert_eq!(r.stdout, "wrote 0\n", "the signal came before the ack");
    assert_eq!(file_len(&r), 2, "the write had returned");
    assert_clean(out);
}

#[test]
fn a_handler_that_returns_runs_before_a_held_back_call_which_then_runs() {
    let r = abort_at_second_write("appends-handler", CrashWhen::Before);
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Exited { code: 0 }, "the handler returned: the writer went on");
    assert_eq!(r.stdout, "wrote 0\nhandler size=1\nwrote 1\nwrote 2\n", "the handler ran before the second write");
    assert_eq!(file_len(&r), 3, "the restarted write ran once");
    let writes: Vec<&SyncEvent> = out.events.iter().filter(|e| e.syscall == TracedSyscall::Write).collect();
    assert_eq!(writes.len(), 4, "the held-back entry and its restart: {writes:?}");
    assert_eq!(writes[1].result, SyscallResult::Failed { errno: libc::EINTR });
    assert_eq!(writes[2].result, SyscallResult::Returned { value: 1 });
    assert!(matches!(out.crash, Some(ref h) if h.when == CrashWhen::Before && h.signal == CrashSignal::Abort));
    assert_clean(out);
}

#[test]
fn a_handler_that_returns_runs_right_after_the_call_returned() {
    let r = abort_at_second_write("appends-handler", CrashWhen::After);
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Exited { code: 0 });
    assert_eq!(r.stdout, "wrote 0\nhandler size=2\nwrote 1\nwrote 2\n", "the handler ran before the ack");
    assert_eq!(file_len(&r), 3);
    assert_eq!(out.events.iter().filter(|e| e.syscall == TracedSyscall::Write).count(), 3, "nothing restarted");
    assert_clean(out);
}

#[test]
fn a_crash_point_counting_no_kind_is_refused() {
    let mut cfg = OracleConfig::new(std::env::temp_dir());
    cfg.crash = Some(SyscallCrashPoint {
        nth: 1,
        counted: CountedCalls::Kinds(BTreeSet::new()),
        when: CrashWhen::Before,
        signal: CrashSignal::Kill,
    });
    let control = TraceControl::new();
    let err = run_traced(&TracedLaunch::new(writer()).arg("exit").arg("0"), &cfg, &control).unwrap_err();
    assert!(err.to_string().contains("counts no syscall kind"), "{err}");
}
