//! `eio-sync` (`OracleConfig::fail_sync`): one data sync made to fail with
//! `EIO` without running, what it leaves uncertain in the shadow, and the
//! power cut at a later data sync.

use super::*;
use crashlab::oracle::SyncFailure;

fn fail(nth: u64, cut_before: Option<u64>) -> impl FnOnce(&mut OracleConfig) {
    move |c: &mut OracleConfig| {
        c.history = true;
        c.stacks = true;
        c.fail_sync = Some(SyncFailure { nth, cut_before });
    }
}

#[test]
fn a_retried_msync_that_succeeds_does_not_make_the_failed_page_durable() {
    // Data syncs: 1 the first msync of page 0 (failed), 2 its retry, 3 the
    // msync of page 1. A real failed writeback leaves page 0 clean, so the
    // retry writes nothing: page 0 keeps its floor ('A') in the shadow.
    let r = run("eio-msync", 2, fail(1, None));
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Exited { code: 0 }, "{}", r.stdout);
    assert_eq!(r.stdout, "first EIO\nretry 0\n", "the first msync fails, the retry succeeds");
    let f = out.file("data").unwrap();
    assert!(is_page(f.floor_page(0), b'A'), "the retry did not write page 0");
    assert!(is_page(f.floor_page(1), b'C'), "page 1 was synced as usual");
    let inj = out.injected.as_ref().expect("the failed sync");
    assert_eq!((inj.nth, inj.syscall), (1, TracedSyscall::Msync));
    assert_eq!(inj.covered.len(), 1);
    assert_eq!((inj.covered[0].offset, inj.covered[0].len), (0, page() as u64));
    assert_eq!(inj.covered[0].uncertain_pages, vec![0]);
    assert_eq!(inj.acks_before, 0);
    let ms = msyncs(out);
    assert_eq!(ms[0].result, SyscallResult::Failed { errno: libc::EIO });
    assert_eq!(ms[0].effect, SyncEffect::NoGuarantee(NoGuarantee::Failed));
    assert_eq!(ms[1].result, SyscallResult::Returned { value: 0 });
    assert_eq!((inj.retries, inj.found_clean), (1, 1), "the retry covered page 0 and found it clean");
    assert!(ms[1].copied.is_empty(), "the retry wrote nothing: its record says so: {:?}", ms[1].copied);
    assert_eq!(ms[2].copied.len(), 1, "page 1's msync copied it");
    // The page cache holds every store: the failed call was only skipped.
    let now = std::fs::read(&r.file).unwrap();
    assert!(is_page(Some(page_of(&now, 0)), b'B'));
    assert_clean(out);
}

#[test]
fn a_page_stored_again_after_the_failure_is_durable_after_the_next_sync() {
    // The same bytes stored again dirty the page again: write tracking
    // reports the store, so the retry's copy stands (no false alarm on a
    // writer that rewrites its data and syncs again).
    let r = run("eio-msync-rewrite", 2, fail(1, None));
    let out = must(&r);
    assert_eq!(r.stdout, "first EIO\nretry 0\n");
    assert_eq!(out.history_method, crashlab::page_history::HistoryMethod::UffdWriteProtect);
    let f = out.file("data").unwrap();
    assert!(is_page(f.floor_page(0), b'B'), "the rewritten page was synced by the retry");
    let inj = out.injected.as_ref().unwrap();
    assert_eq!((inj.retries, inj.found_clean), (1, 0), "a retry that wrote the page");
    assert_eq!(msyncs(out)[1].copied.len(), 1);
    assert_clean(out);
}

#[test]
fn without_the_write_history_a_later_sync_is_trusted() {
    // No evidence of stores without the history: the side that cannot
    // raise a false alarm.
    let r = run("eio-msync", 2, |c| c.fail_sync = Some(SyncFailure { nth: 1, cut_before: None }));
    let out = must(&r);
    assert_eq!(r.stdout, "first EIO\nretry 0\n");
    let f = out.file("data").unwrap();
    assert!(is_page(f.floor_page(0), b'B'));
    assert!(out.injected.as_ref().unwrap().covered[0].uncertain_pages.is_empty());
    assert_clean(out);
}

#[test]
fn a_failed_fsync_keeps_the_file_at_its_floor_across_a_retried_fsync_and_the_writer_may_exit() {
    let r = run("eio-fsync", 2, fail(1, None));
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Exited { code: 7 }, "the writer stops on the EIO: {}", r.stdout);
    assert_eq!(r.stdout, "first EIO\nretry 0\n");
    let f = out.file("data").unwrap();
    assert!(is_page(f.floor_page(0), b'A'), "the retried fsync did not write page 0");
    assert!(is_page(f.floor_page(1), b'A'));
    let inj = out.injected.as_ref().unwrap();
    assert_eq!(inj.syscall, TracedSyscall::Fsync);
    assert_eq!(inj.covered[0].uncertain_pages, vec![0, 1], "fsync covers the whole file");
    assert_clean(out);
}

#[test]
fn the_power_is_cut_just_before_the_planned_later_data_sync() {
    let r = run("eio-msync", 2, fail(1, Some(3)));
    let out = must(&r);
    let WriterEnd::CrashPoint(hit) = &out.end else { panic!("cut: {:?}", out.end) };
    assert_eq!((hit.nth, hit.syscall, hit.when), (3, TracedSyscall::Msync, CrashWhen::Before));
    assert_eq!(r.stdout, "first EIO\nretry 0\n", "both acks came before data sync 3");
    let f = out.file("data").unwrap();
    assert!(is_page(f.floor_page(0), b'A'));
    assert_eq!(f.floor_page(1), Some(&vec![b'A'; page()][..]), "the msync of page 1 never ran");
    assert_clean(out);
}

#[test]
fn a_failed_sync_and_a_cut_before_it_are_refused() {
    let r = run("eio-msync", 2, |c| c.fail_sync = Some(SyncFailure { nth: 2, cut_before: Some(2) }));
    assert!(matches!(r.result, Err(OracleError::Invalid(_))), "{:?}", r.result.as_ref().err());
}
