//! The example workloads under real power cuts (`--crash power-loss-real`:
//! a fresh filesystem on a loop device, the writer under the durability
//! oracle, the power cut at a sync call or a random time, remount, the
//! checker on the real post-cut directory, and that directory judged
//! against the simulated model of the same trace).
//!
//! What these tests may expect rests on what makes a page reach the disk
//! without a sync (`../shared/README.md`, measured on this machine kind, and
//! the kernel's documentation): nothing does in a trial's time. Dirty pages
//! are written back after `vm.dirty_expire_centisecs` (30 s by default)
//! or under memory pressure; `msync(MS_ASYNC)` is a no-op since Linux
//! 2.6.19 (mm/msync.c; measured: 0 pages moved to writeback); a process's
//! death and `munmap` write nothing back; and crashlab syncs nothing
//! between the writer's death and the cut (`FS_IOC_SHUTDOWN` with
//! `NOLOGFLUSH` on ext4 and xfs). So on ext4 and xfs, a record stored
//! through the mapping after the last `msync(MS_SYNC)` that covered it is
//! lost by the cut, always: a writer that acks such a record is caught by
//! every cut after that ack. That is what the mistakes' tests assert, per
//! trial, from the trial's crash point alone. (On btrfs a ranged msync
//! elsewhere flushed whole files in the measurements, so the mistakes are
//! tested on ext4 only.)
//!
//! And on every filesystem, whatever the cut kept, the post-cut directory
//! must be one of the model's states: a model soundness violation fails
//! every test here.
//!
//! These tests need root (loop devices, mounts, the shutdown ioctl) and the
//! oracle (ptrace, seccomp). Without root they fail, unless
//! `CRASHLAB_ALLOW_NO_ROOT=1` accepts not testing real cuts.

use std::path::Path;
use std::time::Duration;

use crashlab::external::ExternalConfig;
use crashlab::report::external::ExternalReport;
use crashlab::report::external_power_loss::PowerLossDelivery;
use crashlab::report::external_real_cut::RealCutSection;
use crashlab::report::external_real_cut::UnitKept;
use crashlab::vocab::real_cut::FsKind;
use crashlab::vocab::{CrashKind, CrashWhen};

mod programs;
use programs::{fast_dir, workload};

#[path = "../../harness/tests/support/root.rs"]
mod root;
use root::have_root;

fn config(example: &str, fs: FsKind, trials: u32, dir: &Path, options: &str) -> ExternalConfig {
    let writer = workload(example, "writer", options);
    let setup = workload(example, "setup", options);
    let mut c = ExternalConfig::new(&writer, &workload(example, "checker", ""), Some(&setup), false)
        .expect("the example commands parse");
    c.crashes = vec![CrashKind::PowerLossReal];
    c.real_cut.fs = fs;
    c.trials = trials;
    c.seed = 11;
    c.dir = dir.to_owned();
    c.timeout = Duration::from_secs(120);
    c
}

/// One real-cut run at a time in this test process: the oracle's launcher
/// is a fork of the process that lives as long as its writer, holding every
/// descriptor the process had open then, and a descriptor another run's
/// oracle held into its filesystem keeps that filesystem busy (its unmount,
/// the cut's second half, fails). The CLI runs one run per process.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Run, and check what every real-cut run must be: every trial ran, no
/// post-cut directory is outside the model (nor too large to judge), and
/// no mount or loop device is left behind.
fn run(config: &ExternalConfig) -> (ExternalReport, RealCutSection) {
    let report = {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        programs::run(config)
    };
    let section = report.power_loss_real.clone().expect("a power-loss-real section");
    let ctx = report.human_summary();
    assert_eq!(section.trials, config.trials as u64, "{ctx}");
    assert_eq!(section.model_violations, 0, "MODEL SOUNDNESS VIOLATION: {ctx}");
    assert_eq!(section.not_judged, 0, "{ctx}");
    assert!(section.outcomes.iter().all(|o| o.membership.allowed && o.evidence.is_none()), "{ctx}");
    let left = crashlab::realcut::sys::leftovers(&config.dir);
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(section.calibration.sync_calls > 0, "{ctx}");
    (report, section)
}

#[test]
fn correct_designs_pass_real_cuts_on_every_filesystem_and_stay_inside_the_model() {
    if !have_root("correct_designs_pass_real_cuts") {
        return;
    }
    let dir = fast_dir();
    for (example, fs, options) in [
        ("wal", FsKind::Ext4, "--records 16"),
        ("shadow", FsKind::Ext4, ""),
        ("atomic-replace", FsKind::Ext4, ""),
        ("redo-from-page", FsKind::Ext4, ""),
        ("wal", FsKind::Xfs, "--records 16"),
        ("atomic-replace", FsKind::Xfs, ""),
        ("wal", FsKind::Btrfs, "--records 16"),
    ] {
        let (report, s) = run(&config(example, fs, 6, dir.path(), options));
        let ctx = format!("{example} on {fs}: {}", report.human_summary());
        assert!(!report.violation_found(), "{ctx}");
        assert_eq!((s.fs, s.consistent), (fs, 6), "{ctx}");
        assert!(s.acks_seen > 0, "{ctx}");
        assert!(
            s.outcomes.iter().any(|o| matches!(o.delivery, PowerLossDelivery::Syscall { .. })),
            "no cut at a sync call: {ctx}"
        );
    }
}

/// Real cuts reach the model's "may survive" rules, not only its floor:
/// `redo-from-page` rewrites its data page between syncs of its header page,
/// and on ext4 a ranged `msync(MS_SYNC)` of the header writes back the
/// whole large folio the file's pages share (`../shared/README.md`: "an
/// msync of one page cleaned the whole file"), the data page at the version
/// it holds then, which the writer overwrites afterwards. A cut before the
/// data page's own sync then keeps that version: an intermediate version
/// (between floor and newest) or the newest, both unsynced data the kernel
/// kept. This is the kernel's writeback rule, not timing: no pressure is
/// needed (a syncfs helper only makes the newest content likelier).
///
/// How the count was chosen: measured on this machine kind (debug build),
/// 8 of 40 and 9 of 40 trials (seeds 1 and 2) kept an intermediate
/// version, p ≈ 0.2; 60 trials all miss with probability 0.8^60 ≈ 1.5e-6.
/// Kept unsynced pages were more frequent still.
#[test]
fn real_cuts_keep_unsynced_pages_and_intermediate_versions_of_a_page_rewritten_between_syncs() {
    if !have_root("real_cuts_keep_unsynced_pages_and_intermediate_versions") {
        return;
    }
    let dir = fast_dir();
    let (report, s) = run(&config("redo-from-page", FsKind::Ext4, 60, dir.path(), ""));
    let ctx = report.human_summary();
    assert!(!report.violation_found(), "{ctx}");
    let kept = |k| s.coverage.units.get(&k).copied().unwrap_or(0);
    assert!(kept(UnitKept::Intermediate) > 0, "no cut kept an intermediate version: {ctx}");
    assert!(kept(UnitKept::Newest) > 0, "no cut kept an unsynced page's newest content: {ctx}");
    assert!(kept(UnitKept::Floor) > 0, "no cut lost an unsynced page: {ctx}");
}

#[test]
fn acking_before_msync_is_caught_by_every_real_cut_just_before_that_msync() {
    if !have_root("acking_before_msync_is_caught") {
        return;
    }
    let dir = fast_dir();
    let (report, s) = run(&config("wal-ack-before-msync", FsKind::Ext4, 12, dir.path(), "--records 16"));
    let ctx = report.human_summary();
    // Just before the msync(MS_SYNC) of record k, record k is acked (the
    // writer stores, acks, then msyncs) and stored after the msync of
    // record k - 1: it is lost by the cut, and the checker must say so.
    let before_msync: Vec<_> = s
        .outcomes
        .iter()
        .filter(|o| {
            matches!(&o.delivery, PowerLossDelivery::Syscall { syscall, when: CrashWhen::Before, .. } if syscall == "msync")
        })
        .collect();
    assert!(!before_msync.is_empty(), "no cut just before an msync among 12 trials: {ctx}");
    for o in &before_msync {
        assert!(o.acks > 0, "{ctx}");
        assert!(o.checker.is_violation(), "trial {} kept an acked, unsynced record: {ctx}", o.plan.trial);
    }
    assert!(report.violation_found(), "{ctx}");
    // The lost records' units were seen at their floor.
    assert!(s.coverage.units.get(&UnitKept::Floor).copied().unwrap_or(0) > 0, "{ctx}");
}

#[test]
fn trusting_ms_async_is_caught_by_every_real_cut_after_an_ack() {
    if !have_root("trusting_ms_async_is_caught") {
        return;
    }
    let dir = fast_dir();
    let (report, s) = run(&config("wal-ms-async", FsKind::Ext4, 8, dir.path(), "--records 16"));
    let ctx = report.human_summary();
    // Nothing but the setup was ever synced: every acked record is lost.
    let acked: Vec<_> = s.outcomes.iter().filter(|o| o.acks > 0).collect();
    assert!(!acked.is_empty(), "{ctx}");
    for o in acked {
        assert!(o.checker.is_violation(), "trial {} kept MS_ASYNC records: {ctx}", o.plan.trial);
    }
    assert_eq!(s.violations, s.acks_seen, "{ctx}");
}

#[test]
fn without_root_or_with_a_shard_power_loss_real_is_refused_naming_the_reason() {
    let dir = fast_dir();
    let mut c = config("wal", FsKind::Ext4, 2, dir.path(), "--records 4");
    c.shard = Some("1/2".parse().unwrap());
    let e = c.validate().unwrap_err().to_string();
    if crashlab::realcut::sys::is_root() {
        assert!(e.contains("--shard 1/2") && e.contains("power-loss-real"), "{e}");
    } else {
        assert!(e.contains("power-loss-real") && e.contains("needs root"), "{e}");
    }
}

/// The check of the model is not vacuous: judged against a model too
/// small for the kernel, real cuts are reported as outside it, with their
/// evidence kept. Without the write history (`--history off`, which the
/// CLI refuses with `power-loss-real` for this reason) a page is allowed
/// only its floor or its newest content; but `redo-from-page` `msync`s its
/// header page on every operation, and on ext4 that writes back the whole
/// large folio, the data page included, at its version then (measured,
/// `../shared/README.md`: an msync of one page cleaned the whole file); a
/// cut after the next store to the data page finds that version, which is
/// neither. 12 trials spread their sync-call points over every header
/// msync, before and after: the cuts just before one after a data store
/// find it (4 of 12 when measured).
#[test]
fn a_model_too_small_for_the_kernel_is_caught_with_its_evidence_kept() {
    if !have_root("a_model_too_small_is_caught") {
        return;
    }
    let dir = fast_dir();
    let evidence = tempfile::tempdir().unwrap();
    let mut c = config("redo-from-page", FsKind::Ext4, 12, dir.path(), "");
    c.power_loss.history.record = false;
    c.real_cut.evidence_dir = Some(evidence.path().to_owned());
    let report = {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        crashlab::external::run_external(&c, &std::sync::atomic::AtomicBool::new(false), &|_| {}).unwrap()
    };
    let s = report.power_loss_real.as_ref().unwrap();
    let ctx = report.human_summary();
    assert!(s.model_violations > 0, "{ctx}");
    assert_eq!(s.violations, 0, "the program is correct: {ctx}");
    assert!(report.violation_found(), "a model violation fails the run: {ctx}");
    assert!(ctx.contains("MODEL SOUNDNESS VIOLATION power-loss-real trial "), "{ctx}");
    for o in s.outcomes.iter().filter(|o| o.is_model_violation()) {
        let why = o.membership.forbidden.as_deref().unwrap();
        assert!(why.contains("\"counter.db\" page ") && why.contains("holds none of the 2 version(s)"), "{why}");
        let kept = evidence.path().join(format!("trial-{}", o.plan.trial));
        assert_eq!(o.evidence.as_deref(), Some(kept.to_str().unwrap()));
        assert!(kept.join("dir/counter.db").is_file() && kept.join("acks").is_file(), "{}", kept.display());
        let text = std::fs::read_to_string(kept.join("why.txt")).unwrap();
        assert!(text.contains(why) && text.contains(&o.rerun), "{text}");
        assert!(o.rerun.contains("--crash power-loss-real --real-fs ext4 --seed 11 --trials "), "{}", o.rerun);
    }
    assert!(crashlab::realcut::sys::leftovers(dir.path()).is_empty());
}
