//! A real third-party target: LMDB with `MDB_WRITEMAP` (examples `lmdb` and
//! `lmdb-nosync` of `crashlab-workload`, which load the system's
//! `liblmdb.so.0`; Debian: `apt-get install liblmdb0`).
//!
//! What these tests establish: under process crashes both modes keep every
//! acknowledged commit (the page cache outlives the process); under a
//! simulated power loss the default durable mode still does once its
//! environment exists (created by the setup), and `MDB_NOSYNC` loses
//! acknowledged commits. LMDB never fsyncs the directory after creating
//! `data.mdb`, so under the strict POSIX model (`posix`) the very
//! first commits of a fresh environment may vanish with the file's name
//! (on ext4 and xfs the journal commit of the first msync also commits the
//! creation: `reports/SOUNDNESS.md`).

use std::path::Path;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crashlab::external::power_loss::{replay_power_loss, PowerLossReplayed, StateText};
use crashlab::external::{run_external, ExternalConfig};
use crashlab::report::checker_verdict::CheckerVerdict;
use crashlab::report::external::ExternalReport;
use crashlab::report::external_power_loss::PowerLossSection;
use crashlab::vocab::CrashKind;

const WORKLOAD: &str = env!("CARGO_BIN_EXE_crashlab-workload");

fn command(example: &str, role: &str, options: &str) -> String {
    assert!(!WORKLOAD.contains('\''), "the test quotes the path with '");
    format!("'{WORKLOAD}' {example} {role} {options}")
}

fn config(example: &str, crashes: &[CrashKind], trials: u32, dir: &Path, options: &str) -> ExternalConfig {
    // Under power loss the environment is created (and its directory
    // fsynced) by the setup: what is tested is its commits, not its creation.
    let setup = crashes.contains(&CrashKind::PowerLoss).then(|| command(example, "setup", options));
    let mut c = ExternalConfig::new(
        &command(example, "writer", options),
        &command(example, "checker", ""),
        setup.as_deref(),
        false,
    )
    .expect("the example commands parse");
    c.crashes = crashes.to_vec();
    c.trials = trials;
    c.seed = 7;
    c.jobs = 2;
    c.dir = dir.to_owned();
    c.timeout = Duration::from_secs(120);
    c
}

fn run(config: &ExternalConfig) -> ExternalReport {
    let report = run_external(config, &AtomicBool::new(false), &|_| {})
        .unwrap_or_else(|e| panic!("`{}`: the run fails: {e}", config.writer.text));
    assert_eq!(report.clean_run.checker, CheckerVerdict::Consistent, "{}", report.human_summary());
    report
}

/// tmpfs when there is one (the commits' msync is cheap there), else the
/// default temp dir; process-crash semantics are the same on both.
fn fast_dir() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).unwrap()
}

fn assert_empty(dir: &Path) {
    assert!(std::fs::read_dir(dir).unwrap().next().is_none(), "trial directories left in {}", dir.display());
}

#[test]
fn durable_and_nosync_keep_every_acked_commit_through_process_crashes() {
    let dir = fast_dir();
    let mut died_of_sigbus = 0;
    for example in ["lmdb", "lmdb-nosync"] {
        // Paced (see `external_examples.rs`): crashes land after commits
        // even when spawning is slow next to an unpaced millisecond run.
        let report = run(&config(example, &CrashKind::PROCESS_CRASHES, 40, dir.path(), "--pace-us 300"));
        assert!(!report.violation_found(), "{example}: {}", report.human_summary());
        assert_eq!(report.clean_run.acks, 64);
        for s in &report.crashes {
            let ctx = format!("{example} {}: {}", s.crash, report.human_summary());
            assert!(s.crashed > 0 && s.acks_seen > 0, "{ctx}");
            if s.crash == CrashKind::Sigbus {
                died_of_sigbus += s.died_of_sigbus;
            } else {
                // Some signal struck between two commits of a running writer.
                assert!(s.trials_detail.iter().any(|t| t.acks > 0 && t.acks < 64), "{ctx}");
            }
        }
    }
    // LMDB grows its data into the cut zero tail of data.mdb: some writers
    // die of SIGBUS in the middle of a commit (about 1 in 5 per trial).
    assert!(died_of_sigbus > 0, "no LMDB writer died of SIGBUS in 80 sigbus trials");
    assert_empty(dir.path());
}

fn power_loss(report: &ExternalReport) -> &PowerLossSection {
    report.power_loss.as_ref().expect("a power-loss section")
}

#[test]
fn the_durable_mode_keeps_every_acked_commit_through_power_loss() {
    let dir = fast_dir();
    let report = run(&config("lmdb", &[CrashKind::PowerLoss], 20, dir.path(), "--records 24"));
    let p = power_loss(&report);
    assert!(!report.violation_found(), "{}", report.human_summary());
    assert_eq!(p.trials, 20);
    // Every commit is two msync(MS_SYNC) calls (data pages, then the meta page).
    assert!(p.calibration.by_syscall.get("msync").copied().unwrap_or(0) >= 48, "{:?}", p.calibration);
    let judged = p.trials_detail.iter().filter(|t| t.acks > 0 && t.states_checked > 0).count();
    assert!(judged >= 10, "too few trials with acked commits to judge: {}", report.human_summary());
    assert_empty(dir.path());
}

#[test]
fn nosync_loses_acked_commits_under_power_loss() {
    let dir = fast_dir();
    let config = config("lmdb-nosync", &[CrashKind::PowerLoss], 20, dir.path(), "--records 24");
    let report = run(&config);
    let p = power_loss(&report);
    assert!(report.violation_found(), "{}", report.human_summary());
    assert_eq!(p.calibration.by_syscall.get("msync"), None, "MDB_NOSYNC commits without msync: {:?}", p.calibration);
    // Nothing is ever synced: every trial with an acked commit can lose it.
    for t in &p.trials_detail {
        assert_eq!(t.verdict.is_violation(), t.acks > 0, "trial {}: {:?}", t.trial, t);
    }
    for f in &p.failures {
        assert!(f.finding.reason.contains("acknowledged"), "{}", f.finding.reason);
    }
    // The minimal state of a violation, rebuilt from its replay line's
    // --state, fails the checker again (a crash at a sync call replays exactly).
    let f = p.failures.iter().find(|f| matches!(f.point, crashlab::program_plan::PowerLossPoint::Syscall { .. }));
    let f = f.unwrap_or(&p.failures[0]);
    assert!(f.replay.starts_with("crashlab replay --writer ") && f.replay.contains(" --state "), "{}", f.replay);
    let state: StateText = f.finding.state.parse().unwrap();
    let (clean_ns, calls) = (p.calibration.traced_clean_ns, p.calibration.sync_calls);
    let replayed =
        replay_power_loss(&config, f.trial, clean_ns, calls, Some(&state), None, &AtomicBool::new(false)).unwrap();
    let PowerLossReplayed::State { verdict, .. } = replayed else { panic!("a state replay checks one state") };
    assert!(verdict.is_violation(), "replaying {} passed", f.replay);
    assert_empty(dir.path());
}

/// Without the setup, the writer creates the environment itself and LMDB
/// never fsyncs the directory after creating `data.mdb`: under the POSIX
/// contract its name, and every commit in it, may be lost.
#[test]
fn a_fresh_environment_without_a_directory_fsync_can_lose_its_name_under_posix() {
    let dir = fast_dir();
    let mut config = config("lmdb", &[CrashKind::PowerLoss], 6, dir.path(), "--records 8");
    config.setup = None;
    let report = run(&config);
    let p = power_loss(&report);
    assert!(report.violation_found(), "{}", report.human_summary());
    for f in &p.failures {
        let e = &f.finding.explanation;
        assert!(
            e.contains(r#"minimal set: openat(creating "data.mdb") at call "#)
                && e.contains(r#"was lost: the directory "." was not fsynced after it"#),
            "{e}"
        );
    }
    assert_empty(dir.path());
}

/// The checker is not vacuous: run it by hand on a finished database with
/// what a crash could have done to it.
#[test]
fn the_checker_rejects_a_lost_commit_a_wrong_value_and_an_unopenable_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    std::fs::create_dir(&db).unwrap();
    let writer = Command::new(WORKLOAD)
        .args(["lmdb", "writer", "--records", "8"])
        .env("CRASHLAB_DIR", &db)
        .env("CRASHLAB_SEED", "3")
        .output()
        .unwrap();
    assert!(writer.status.success(), "{}", String::from_utf8_lossy(&writer.stderr));
    let acks = String::from_utf8(writer.stdout).unwrap();
    assert_eq!(acks.lines().count(), 8);
    let check = |acks: &str| {
        let file = tmp.path().join("acks");
        std::fs::write(&file, acks).unwrap();
        let out = Command::new(WORKLOAD)
            .args(["lmdb", "checker"])
            .env("CRASHLAB_DIR", &db)
            .env("CRASHLAB_ACKS", &file)
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).trim().to_owned())
    };
    assert_eq!(check(&acks), (Some(0), String::new()));
    let (code, reason) = check(&format!("{acks}txn 8\n"));
    assert_eq!(code, Some(1));
    assert!(reason.starts_with("acknowledged transaction 8 is missing"), "{reason}");

    let data = db.join("data.mdb");
    let mut bytes = std::fs::read(&data).unwrap();
    let key = bytes.windows(9).position(|w| w == b"t00004k03").expect("the key is in the file");
    bytes[key + 13] ^= 0x55; // inside its value
    std::fs::write(&data, &bytes).unwrap();
    let (code, reason) = check(&acks);
    assert_eq!(code, Some(1));
    assert!(reason.starts_with("key t00004k03 holds a wrong value"), "{reason}");

    bytes[..8192].fill(0); // both meta pages
    std::fs::write(&data, &bytes).unwrap();
    let (code, reason) = check(&acks);
    assert_eq!(code, Some(1));
    assert!(reason.contains("the environment does not open"), "{reason}");
    // Nothing acknowledged, nothing promised.
    assert_eq!(check("").0, Some(0));
}

/// LMDB does not checksum pages, and a page lost to zeros (what a power loss
/// leaves of a page written without a sync) can make LMDB 0.9 fail one of its
/// own assertions and `abort()` while reading. The checker must still give a
/// verdict for every such state (a checker that dies is a harness error):
/// zero each page of a finished database in turn and run it.
#[test]
fn the_checker_gives_a_verdict_on_every_single_lost_page_even_when_lmdb_aborts() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    std::fs::create_dir(&db).unwrap();
    let writer = Command::new(WORKLOAD)
        .args(["lmdb-nosync", "writer", "--records", "16"])
        .env("CRASHLAB_DIR", &db)
        .env("CRASHLAB_SEED", "3")
        .output()
        .unwrap();
    assert!(writer.status.success(), "{}", String::from_utf8_lossy(&writer.stderr));
    let acks = tmp.path().join("acks");
    std::fs::write(&acks, &writer.stdout).unwrap();
    let data = db.join("data.mdb");
    let original = std::fs::read(&data).unwrap();
    let page = 4096;
    let used = original.chunks(page).rposition(|p| p.iter().any(|&b| b != 0)).unwrap() + 1;
    let (mut violations, mut aborts) = (0, 0);
    for lost in 0..used {
        let mut bytes = original.clone();
        bytes[lost * page..(lost + 1) * page].fill(0);
        std::fs::write(&data, &bytes).unwrap();
        let out = Command::new(WORKLOAD)
            .args(["lmdb-nosync", "checker"])
            .env("CRASHLAB_DIR", &db)
            .env("CRASHLAB_ACKS", &acks)
            .output()
            .unwrap();
        let reason = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        match out.status.code() {
            Some(0) => {}
            Some(1) => {
                violations += 1;
                aborts += reason.contains("fails LMDB's assertion") as usize;
            }
            _ => panic!("page {lost} lost: the checker gave no verdict ({}): {reason}", out.status),
        }
    }
    // The two meta pages alone make most of the file unreadable when lost.
    assert!(violations >= 2, "{violations} of {used} single-page losses were violations");
    assert!(aborts > 0, "no single-page loss made LMDB abort ({violations} violations of {used})");
}
