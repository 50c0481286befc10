//! `--crash enospc` on the disk-full examples (`scenarios/workloads/disk_full.rs`):
//! each writer runs on a tmpfs of a hard capacity in a user + mount
//! namespace (no privilege) that fills partway through its run, and the
//! checker judges what it left. The writer that fills a sparse file through
//! a mapping dies of SIGBUS and loses nothing acked; the one that
//! preallocates with `fallocate` stops with an error; the one that ignores
//! `write`'s result is caught, by `enospc` only.

mod programs;

#[path = "../../harness/tests/support/root.rs"]
mod root;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crashlab::external::{replay_trial, ExternalConfig, Replayed};
use crashlab::report::external::{CrashSection, ExternalReport, ReplayTarget};
use crashlab::report::external_enospc::EnospcSection;
use crashlab::vocab::CrashKind;

use programs::{fast_dir, workload};

const TRIALS: u32 = 3;

fn config(example: &str, crashes: &[CrashKind], dir: &Path) -> ExternalConfig {
    config_with(example, crashes, dir, "--records 64")
}

/// `options` go to the writer.
fn config_with(example: &str, crashes: &[CrashKind], dir: &Path, options: &str) -> ExternalConfig {
    let mut c =
        ExternalConfig::new(&workload(example, "writer", options), &workload(example, "checker", ""), None, false)
            .expect("the example commands parse");
    c.crashes = crashes.to_vec();
    c.trials = TRIALS;
    c.seed = 15;
    c.jobs = 2;
    c.dir = dir.to_owned();
    c.timeout = Duration::from_secs(60);
    // The test binary cannot serve the helper; the crate's worker does.
    c.capacity_helper = Some(env!("CARGO_BIN_EXE_crashlab-worker").into());
    c
}

fn section(report: &ExternalReport, crash: CrashKind) -> &CrashSection {
    report.crashes.iter().find(|s| s.crash == crash).unwrap_or_else(|| panic!("no {crash} section"))
}

fn enospc(report: &ExternalReport) -> &EnospcSection {
    let s = section(report, CrashKind::Enospc);
    s.enospc.as_ref().unwrap_or_else(|| panic!("the enospc section has no capacity part: {}", report.human_summary()))
}

#[test]
fn a_writer_filling_a_sparse_file_through_a_mapping_dies_of_sigbus_and_loses_no_ack() {
    let dir = fast_dir();
    let report = programs::run(&config("fill-mapped", &[CrashKind::Sigkill, CrashKind::Enospc], dir.path()));
    let summary = report.human_summary();
    assert_eq!(report.summary.violations, 0, "{summary}");
    let e = enospc(&report);
    // 64 one-page records allocate 64 pages in the clean run: the default
    // capacity is half of that, so every trial fills the tmpfs and its
    // store into the first page past it faults.
    let page = crashlab::page_size::page_size();
    let capacity = report.config.capacity.expect("the report says the capacity used");
    assert!(capacity <= 32 * page && capacity >= page, "{capacity}: {summary}");
    assert_eq!(e.capacity, capacity);
    assert_eq!(e.filesystem, "tmpfs");
    assert_eq!((e.died_of_sigbus, e.full_at_end), (TRIALS as u64, TRIALS as u64), "{summary}");
    let s = section(&report, CrashKind::Enospc);
    // It acked every record that fit, and none past the capacity.
    assert!(s.max_acks > 0 && s.max_acks < 64, "{summary}");
    assert!(summary.contains("enospc: ") && summary.contains("not traced"), "{summary}");
}

#[test]
fn a_writer_that_preallocates_stops_on_enospc_and_passes() {
    let dir = fast_dir();
    let report = programs::run(&config("fill-fallocate", &[CrashKind::Sigkill, CrashKind::Enospc], dir.path()));
    let summary = report.human_summary();
    assert_eq!(report.summary.violations, 0, "{summary}");
    let e = enospc(&report);
    assert_eq!((e.exited_with_error, e.died_of_sigbus), (TRIALS as u64, 0), "{summary}");
    assert!(section(&report, CrashKind::Enospc).max_acks < 64, "{summary}");
}

#[test]
fn a_writer_that_ignores_write_errors_is_caught_by_enospc_only_and_its_replay_line_reruns_it() {
    let dir = fast_dir();
    let c = config("append-unchecked", &[CrashKind::Sigkill, CrashKind::Enospc], dir.path());
    let report = programs::run(&c);
    let summary = report.human_summary();
    assert_eq!(section(&report, CrashKind::Sigkill).violations, 0, "{summary}");
    let s = section(&report, CrashKind::Enospc);
    assert_eq!(s.violations, TRIALS as u64, "{summary}");
    let e = enospc(&report);
    assert_eq!((e.exited_zero, e.full_at_end), (TRIALS as u64, TRIALS as u64), "{summary}");
    let failure = &s.failures[0];
    assert!(failure.reason.contains("is missing"), "{}", failure.reason);
    let capacity = report.config.capacity.unwrap();
    assert!(failure.replay.contains("--crash enospc --seed 15 --trial 0"), "{}", failure.replay);
    assert!(failure.replay.contains(&format!("--capacity {capacity}")), "{}", failure.replay);
    // The library replay of that trial finds it again.
    let mut replay = c.clone();
    replay.crashes = vec![CrashKind::Enospc];
    replay.capacity = Some(capacity);
    let target = ReplayTarget::Trial { crash: CrashKind::Enospc, trial: failure.trial, clean_ns: 0 };
    match replay_trial(&replay, target, &AtomicBool::new(false)).expect("the replay runs") {
        Replayed::Trial(o) => assert!(o.checker.is_violation(), "{o:?}"),
        other => panic!("a trial was replayed, not {other:?}"),
    }
}

#[test]
fn a_capacity_given_is_the_one_used_and_one_out_of_bounds_is_refused_naming_the_flag() {
    let dir = fast_dir();
    let page = crashlab::page_size::page_size();
    let mut c = config("fill-mapped", &[CrashKind::Enospc], dir.path());
    c.capacity = Some(3 * page);
    let report = programs::run(&c);
    assert_eq!(enospc(&report).capacity, 3 * page);
    // Three pages hold three one-page records, and the fourth store faults.
    assert_eq!(section(&report, CrashKind::Enospc).max_acks, 3, "{}", report.human_summary());
    c.capacity = Some(page + 1);
    let e = c.validate().unwrap_err().to_string();
    assert!(e.contains("--capacity") && e.contains("page size"), "{e}");
    let mut sigkill_only = config("fill-mapped", &[CrashKind::Sigkill], dir.path());
    sigkill_only.capacity = Some(page);
    let e = sigkill_only.validate().unwrap_err().to_string();
    assert!(e.contains("--capacity") && e.contains("enospc"), "{e}");
}

#[test]
fn a_writer_that_hangs_on_a_full_disk_is_killed_at_the_timeout_and_leaves_nothing_behind() {
    let dir = fast_dir();
    // 64 pages fit the clean run's directory; on half of that `dd` fails
    // and the writer waits forever (the unique sleep marks its process).
    let writer = "dd if=/dev/zero of=f bs=4096 count=64 2>/dev/null || sleep 607.25; echo done";
    let mut c = ExternalConfig::new(writer, "true", None, true).unwrap();
    c.crashes = vec![CrashKind::Enospc];
    c.trials = 1;
    c.dir = dir.path().to_owned();
    c.timeout = Duration::from_secs(2);
    c.capacity_helper = Some(env!("CARGO_BIN_EXE_crashlab-worker").into());
    let e = crashlab::external::run_external(&c, &AtomicBool::new(false), &|_| {}).unwrap_err().to_string();
    assert!(e.contains("--writer") && e.contains("--timeout 2 s") && e.contains("enospc trial 0"), "{e}");
    assert!(e.contains("--capacity"), "the error's replay line has the capacity: {e}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "the run left files");
    let hung = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|p| std::fs::read(p.ok()?.path().join("cmdline")).ok())
        .any(|cmd| String::from_utf8_lossy(&cmd).contains("607.25"));
    assert!(!hung, "the hung writer outlived its trial");
}

#[test]
fn a_setup_that_leaves_more_than_the_capacity_is_an_error_naming_the_flag() {
    let dir = fast_dir();
    let page = crashlab::page_size::page_size();
    let setup = "dd if=/dev/zero of=big bs=4096 count=8 2>/dev/null";
    let mut c = ExternalConfig::new("echo done", "true", Some(setup), true).unwrap();
    c.crashes = vec![CrashKind::Enospc];
    c.trials = 1;
    c.dir = dir.path().to_owned();
    c.capacity = Some(page);
    c.capacity_helper = Some(env!("CARGO_BIN_EXE_crashlab-worker").into());
    let e = crashlab::external::run_external(&c, &AtomicBool::new(false), &|_| {}).unwrap_err().to_string();
    assert!(e.contains("--writer") && e.contains("what --setup left") && e.contains("--capacity"), "{e}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "the run left files");
}

#[test]
fn as_root_a_small_ext4_fills_up_too_and_leaves_no_loop_device_or_mount() {
    if !root::have_root("a_small_ext4_fills_up_too") {
        return;
    }
    let dir = fast_dir();
    let capacity = crashlab::vocab::capacity::MIN_EXT4_CAPACITY;
    for (example, ends) in [("fill-mapped", "SIGBUS"), ("fill-fallocate", "error")] {
        // 128 one-page records (512 KiB) on a 256 KiB ext4.
        let mut c = config_with(example, &[CrashKind::Enospc], dir.path(), "--records 128");
        c.capacity = Some(capacity);
        c.capacity_fs = crashlab::vocab::capacity::CapacityFs::Ext4;
        let report = programs::run(&c);
        let summary = report.human_summary();
        assert_eq!(report.summary.violations, 0, "{example}: {summary}");
        let e = enospc(&report);
        assert_eq!((e.filesystem.as_str(), e.capacity), ("ext4", capacity), "{summary}");
        let ended = if ends == "SIGBUS" { e.died_of_sigbus } else { e.exited_with_error };
        assert_eq!(ended, TRIALS as u64, "{example} ends with {ends} when ext4 is full: {summary}");
        assert!(section(&report, CrashKind::Enospc).max_acks < 128, "{summary}");
    }
    assert!(crashlab::realcut::sys::loop_devices_under(dir.path()).is_empty(), "a loop device was left");
    assert!(crashlab::realcut::sys::mounts_under(dir.path()).is_empty(), "a mount was left");
}
