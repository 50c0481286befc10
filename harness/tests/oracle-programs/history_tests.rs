//! The write history (`OracleConfig::history`): the versions each page held
//! between its floor and the end, read at every trapped call and, with
//! `history_every`, on a timer.

use std::time::Duration;

use super::*;
use crashlab::page_history::HistoryMethod;

/// Page `p`'s recorded versions, each as its one repeated byte.
fn versions_of(out: &OracleOutcome, p: u64) -> Vec<u8> {
    let (_, inode) = out.inodes.iter().find(|(_, i)| !i.newest.is_empty()).expect("the watched file");
    inode
        .history
        .iter()
        .filter(|v| v.page == p)
        .map(|v| {
            assert!(v.bytes.iter().all(|&b| b == v.bytes[0]), "a version is one memset's content");
            v.bytes[0]
        })
        .collect()
}

#[test]
fn every_version_a_page_held_since_its_last_sync_is_recorded_in_order() {
    let r = run("versions", 2, |c| c.history = true);
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Exited { code: 0 }, "{}", r.stdout);
    // This kernel has userfaultfd write protection (`../shared/README.md`):
    // the mapped file's written pages are reported, and only they are read.
    assert_eq!(out.history_method, HistoryMethod::UffdWriteProtect, "{:?}", out.history);
    assert_eq!(out.history.write_tracked_spaces, 1);
    // B and C were made obsolete by the msync of page 0 (its floor is C);
    // D was seen at its ack. Page 1: X at its ack, Y at the exit.
    assert_eq!(versions_of(out, 0), b"D");
    assert_eq!(versions_of(out, 1), b"XY");
    let inode = out.inodes.values().find(|i| !i.newest.is_empty()).unwrap();
    let calls: Vec<Option<u64>> = inode.history.iter().filter(|v| v.page == 1).map(|v| v.before_call).collect();
    assert!(calls[0] <= calls[1], "in the order seen: {calls:?}");
    assert!(out.history.samples >= 5, "every trapped call samples: {:?}", out.history);
    assert_eq!(out.history.versions, 5, "B, C, D, X, Y each seen once: {:?}", out.history);
    assert_clean(out);

    let r = run("versions", 2, |_| {});
    let out = must(&r);
    assert_eq!(out.history_method, HistoryMethod::Off);
    assert!(out.inodes.values().all(|i| i.history.is_empty()) && out.history.samples == 0);
}

#[test]
fn only_files_a_traced_process_maps_or_a_traced_call_changes_are_read() {
    let r = run("versions", 2, |c| {
        c.history = true;
        // In the watched directory, never opened by the writer.
        std::fs::write(c.watch_dir.join("other"), vec![b'O'; 16 * page()]).unwrap();
    });
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Exited { code: 0 }, "{}", r.stdout);
    let h = &out.history;
    // Before its mmap, "data" is neither mapped nor written: it is read at
    // most at every sample after it, 2 pages each time.
    assert!(h.bytes_read <= h.samples * 2 * page() as u64, "{h:?}: the untouched file was read");
    assert_eq!(h.versions, 5, "{h:?}: every store was still seen");
}

#[test]
fn write_tracking_reads_only_the_pages_stored_into_and_misses_none() {
    // 16 pages mapped; one page stored into before each of 12 acks, the
    // same page twice in a row at times (a store of the same bytes is no
    // version). Compared whole, every sample would read 16 pages.
    let r = run("versions16", 16, |c| c.history = true);
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Exited { code: 0 }, "{}", r.stdout);
    let h = &out.history;
    assert_eq!(out.history_method, HistoryMethod::UffdWriteProtect, "{h:?}");
    // The first sample after the mmap reads the file whole; then each ack's
    // sample reads the one page stored into.
    assert!(h.bytes_read <= (16 + 13) * page() as u64, "{h:?}");
    assert_eq!(h.versions, 12, "{h:?}");
    let pages: Vec<u64> = versions_by_page(out);
    assert_eq!(pages, [0, 3, 3, 5, 7, 7, 9, 11, 13, 15, 15, 15].map(|p| p as u64));
    assert_clean(out);
}

/// The pages of every recorded version, in page order.
fn versions_by_page(out: &OracleOutcome) -> Vec<u64> {
    let (_, inode) = out.inodes.iter().find(|(_, i)| !i.newest.is_empty()).expect("the watched file");
    inode.history.iter().map(|v| v.page).collect()
}

#[test]
fn a_writer_that_stores_without_system_calls_is_sampled_on_the_timer() {
    // 400 ms of stores with no system call, sampled every millisecond: the
    // window is 400 periods wide, so even a loaded machine ticks inside it
    // more than twice.
    let r = run("spin-versions", 1, |c| {
        c.history = true;
        c.history_every = Some(Duration::from_millis(1));
    });
    let out = must(&r);
    assert_eq!(out.end, WriterEnd::Exited { code: 0 }, "{}", r.stdout);
    assert!(out.history.timer_samples >= 2, "{:?}", out.history);
    let inode = out.inodes.values().find(|i| !i.newest.is_empty()).unwrap();
    assert!(inode.history.len() >= 2, "the counter was seen at several values: {:?}", out.history);
    let counters: Vec<u64> =
        inode.history.iter().map(|v| u64::from_le_bytes(v.bytes[..8].try_into().unwrap())).collect();
    assert!(counters.windows(2).all(|w| w[0] < w[1]), "versions in the order seen: {counters:?}");
    assert_clean(out);

    // Without the timer, only trapped calls sample: the stores are seen at
    // most at the exit.
    let r = run("spin-versions", 1, |c| c.history = true);
    let out = must(&r);
    assert_eq!(out.history.timer_samples, 0);
    assert!(out.inodes.values().all(|i| i.history.len() <= 1), "{:?}", out.history);
}

#[test]
fn a_history_period_needs_the_history_and_has_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let control = TraceControl::new();
    for (history, every) in [(false, 1000), (true, 10), (true, 20_000_000)] {
        let mut cfg = OracleConfig::new(dir.path());
        cfg.history = history;
        cfg.history_every = Some(Duration::from_micros(every));
        let e = run_traced(&TracedLaunch::new(writer()), &cfg, &control).unwrap_err();
        assert!(matches!(e, OracleError::Invalid(_)), "{e}");
    }
}
