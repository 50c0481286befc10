//! `crashlab::testkit` used the way a user would, from ordinary `#[test]`s of
//! one test binary run by cargo's default multithreaded runner: the binary
//! re-executes itself as the setup, writer and checker of each test while
//! the other tests run alongside.
//!
//! The workload: records of one 64 KiB payload each, in slots of a mapped
//! file. A slot's header holds a commit flag, the record's number and a salt
//! (the trial's seed); every payload byte is a function of salt, record and
//! position, so the checker needs no checksum. The payload is filled slowly
//! (8 chunks with a 1 ms sleep after each): the writer's timeline is
//! dominated by fills, so a crash at a random time usually lands inside one.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crashlab::testkit::{
    Crash, CrashReport, CrashTest, ProgramPoints, ReplaySpec, TestkitError, WriterCtx, REPLAY_ENV,
};

const RECORDS: usize = 6;
const PAYLOAD: usize = 64 * 1024;
const HEADER: usize = 16;
const SLOT: usize = (HEADER + PAYLOAD).next_multiple_of(4096);
const FILE: &str = "records.bin";
const COMMITTED: u32 = 0xC0DE_C0DE;
const CHUNKS: usize = 8;

fn payload_byte(salt: u32, record: u32, i: usize) -> u8 {
    let mut z = ((salt as u64) << 32 | record as u64) ^ (i as u64 / 8).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z >> (8 * (i % 8))) as u8 | 1 // never zero
}

fn fill_payload_slowly(ctx: &mut WriterCtx, record: usize, salt: u32) {
    let start = record * SLOT + HEADER;
    for chunk in 0..CHUNKS {
        let range = start + chunk * PAYLOAD / CHUNKS..start + (chunk + 1) * PAYLOAD / CHUNKS;
        let map = ctx.map();
        for i in range.clone() {
            map[i] = payload_byte(salt, record as u32, i - start);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn store_header(ctx: &mut WriterCtx, record: usize, salt: u32) {
    let at = record * SLOT;
    let map = ctx.map();
    map[at + 4..at + 8].copy_from_slice(&(record as u32).to_le_bytes());
    map[at + 8..at + 12].copy_from_slice(&salt.to_le_bytes());
    // The flag last, in one aligned 4-byte store.
    map[at..at + 4].copy_from_slice(&COMMITTED.to_le_bytes());
}

/// Correct: payload, msync, then the commit flag, msync, ack.
fn payload_then_flag(ctx: &mut WriterCtx) -> crashlab::testkit::WriterResult {
    let salt = ctx.seed() as u32;
    for record in 0..RECORDS {
        // Writer output goes to stderr: it must never be taken for an ack.
        println!("writing record {record}");
        fill_payload_slowly(ctx, record, salt);
        ctx.msync(record * SLOT + HEADER..record * SLOT + HEADER + PAYLOAD)?;
        store_header(ctx, record, salt);
        ctx.msync(record * SLOT..record * SLOT + HEADER)?;
        ctx.ack(format!("rec {record}"));
    }
    Ok(())
}

/// The bug: the commit flag is stored before the payload is filled.
fn flag_then_payload(ctx: &mut WriterCtx) -> crashlab::testkit::WriterResult {
    let salt = ctx.seed() as u32;
    for record in 0..RECORDS {
        store_header(ctx, record, salt);
        fill_payload_slowly(ctx, record, salt);
        ctx.msync(record * SLOT..(record + 1) * SLOT)?;
        ctx.ack(format!("rec {record}"));
    }
    Ok(())
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    // A file may end early after a sigbus crash cut its zero tail.
    bytes.get(at..at + 4).map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap()))
}

/// Every committed record holds its whole payload; every acked record is
/// committed.
fn check_records(dir: &Path, acks: &[String]) -> Result<(), String> {
    let bytes = std::fs::read(dir.join(FILE)).map_err(|e| format!("cannot read {FILE}: {e}"))?;
    let mut committed = [false; RECORDS];
    for (record, is_committed) in committed.iter_mut().enumerate() {
        let at = record * SLOT;
        if u32_at(&bytes, at) != COMMITTED {
            continue;
        }
        let (number, salt) = (u32_at(&bytes, at + 4), u32_at(&bytes, at + 8));
        if number as usize != record {
            return Err(format!("record {record} is committed with the number {number}"));
        }
        for i in 0..PAYLOAD {
            if bytes.get(at + HEADER + i).copied().unwrap_or(0) != payload_byte(salt, number, i) {
                return Err(format!("record {record} is committed but its payload is incomplete at byte {i}"));
            }
        }
        *is_committed = true;
    }
    for line in acks {
        let record: usize = line
            .strip_prefix("rec ")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("an ack line that is no ack of this writer: `{line}`"))?;
        if !committed.get(record).copied().unwrap_or(false) {
            return Err(format!("acked record {record} is not committed"));
        }
    }
    Ok(())
}

/// Where runs make their temporary directories: tmpfs when there is one
/// (fast msync), else the default temp dir. None in a re-executed role:
/// the test function runs again there up to `run()`, which ends the process
/// without dropping anything (a directory made there was left behind, one
/// per writer, checker and setup run).
struct Base(Option<tempfile::TempDir>);

impl Base {
    fn path(&self) -> &Path {
        // A role never reads it: its directory comes from CRASHLAB_DIR.
        self.0.as_ref().map_or(Path::new("/nonexistent/crashlab-testkit-role"), |t| t.path())
    }
}

fn base_dir() -> Base {
    if crashlab::testkit::is_reexecution() {
        return Base(None);
    }
    Base(Some(tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).unwrap()))
}

/// Nothing of a run is left: its temporary directory is gone, and no
/// process runs with a trial directory under `base` (every writer, checker
/// and setup re-execution has `CRASHLAB_DIR` there).
fn assert_no_leftovers(base: &Path) {
    let left: Vec<PathBuf> = std::fs::read_dir(base).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "files left behind: {left:?}");
    let needle = format!("CRASHLAB_DIR={}", std::fs::canonicalize(base).unwrap().display());
    let mut alive = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
        // Gone meanwhile, or a zombie (empty environ): not running.
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else { continue };
        if environ.split(|&b| b == 0).any(|var| var.starts_with(needle.as_bytes())) {
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            alive.push(format!("{pid}: {}", String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    assert!(alive.is_empty(), "processes of the run still alive: {alive:#?}");
}

fn correct_log(name: &str, base: &Path) -> CrashTest<'static> {
    CrashTest::new(name)
        .file(FILE, RECORDS * SLOT)
        .writer(payload_then_flag)
        .checker(check_records)
        .crashes([Crash::Sigkill, Crash::Abort, Crash::Sigbus])
        .trials(16)
        .seed(1)
        .jobs(2)
        .dir(base)
}

fn flag_first_log(name: &str, base: &Path) -> CrashTest<'static> {
    CrashTest::new(name)
        .file(FILE, RECORDS * SLOT)
        .writer(flag_then_payload)
        .checker(check_records)
        .crashes([Crash::Sigkill, Crash::Abort])
        .trials(16)
        .seed(5)
        .jobs(2)
        .dir(base)
}

fn assert_crashes_struck(report: &CrashReport) {
    assert_eq!(report.per_crash.len(), report.external.as_ref().unwrap().crashes.len());
    for c in &report.per_crash {
        assert!(c.crashed > 0, "no {} crash struck a running writer: {report}", c.crash);
        assert!(c.acks > 0, "no {} trial saw an ack: {report}", c.crash);
    }
    assert_eq!(report.clean_run_acks, RECORDS as u64, "{report}");
}

/// The README's example (its `RECORD` moved into the function).
#[test]
fn my_log_survives_crashes() {
    const RECORD: usize = 512;
    let report = CrashTest::new("my_log_survives_crashes") // this test's name: it is re-executed by it
        .file("log.bin", 64 * 1024) // created in every trial directory, mapped MAP_SHARED for the writer
        .writer(|ctx| {
            for i in 0..100 {
                let at = i * RECORD;
                ctx.map()[at..at + RECORD].fill(i as u8 + 1);
                ctx.msync(at..at + RECORD)?; // msync(MS_SYNC) of the pages covering the range
                ctx.ack(format!("rec {i}")); // one protocol line: this record is durable
            }
            Ok(())
        })
        .checker(|dir, acks| {
            let log = std::fs::read(dir.join("log.bin")).map_err(|e| e.to_string())?;
            for i in 0..acks.len() {
                let record = log.get(i * RECORD..(i + 1) * RECORD).unwrap_or(&[]);
                if record.len() != RECORD || record.iter().any(|&b| b != i as u8 + 1) {
                    return Err(format!("acked record {i} is not in the log"));
                }
            }
            Ok(())
        })
        .crashes([Crash::Sigkill, Crash::Abort, Crash::Sigbus])
        .trials(50)
        .seed(1)
        .run(); // panics on a violation, with the explanation and a replay line
    assert_eq!(report.violations.len(), 0);
}

#[test]
fn a_correct_writer_passes_every_process_crash() {
    let base = base_dir();
    let report = correct_log("a_correct_writer_passes_every_process_crash", base.path()).run();
    assert!(!report.violation_found(), "{report}");
    assert_eq!(report.trials, 3 * 16);
    assert_crashes_struck(&report);
    // The re-executed test binary dies of the crashes like any program:
    // SIGKILL, SIGABRT, and SIGBUS at its next store into a cut file.
    let external = report.external.as_ref().unwrap();
    for (section, end) in external.crashes.iter().zip(["signal SIGKILL", "signal SIGABRT", "signal SIGBUS"]) {
        assert!(section.writer_ends.contains_key(end), "{}: {:?}", section.crash, section.writer_ends);
    }
    assert_no_leftovers(base.path());
}

#[test]
fn a_commit_flag_stored_before_its_payload_is_caught() {
    let base = base_dir();
    let report = flag_first_log("a_commit_flag_stored_before_its_payload_is_caught", base.path()).try_run().unwrap();
    assert_crashes_struck(&report);
    for c in &report.per_crash {
        assert!(c.violations > 0, "{} never caught the flag stored first: {report}", c.crash);
    }
    for v in &report.violations {
        assert!(v.crash.is_some(), "the clean run passes: {v:?}");
        assert!(v.reason.contains("is committed but its payload is incomplete"), "{}", v.reason);
        assert_eq!(v.replay.test, report.test);
        assert_eq!(v.replay.seed, 5);
        assert!(v.cli_replay.starts_with("crashlab replay --writer "), "{}", v.cli_replay);
    }
    let message = report.failure_message().expect("a violation explains itself");
    let simplest = report.simplest_violation().unwrap();
    assert!(message.contains(&format!("checker: {}", simplest.reason)), "{message}");
    assert!(message.contains(&report.replay_binary_command(&simplest.replay)), "{message}");
    assert!(message.contains(&format!("{REPLAY_ENV}='{}'", simplest.replay)), "{message}");
    assert_no_leftovers(base.path());
}

/// `run` panics on a violation, with the checker's reason, the crash and
/// the replay line; the same test then serves as the replay target of
/// `the_printed_replay_line_re_creates_the_violation`.
#[test]
#[should_panic(expected = "is committed but its payload is incomplete")]
fn run_panics_with_the_explanation_of_a_violation() {
    let base = base_dir();
    flag_first_log("run_panics_with_the_explanation_of_a_violation", base.path()).run();
}

#[test]
fn the_printed_replay_line_re_creates_the_violation() {
    let base = base_dir();
    // The same CrashTest as `run_panics_with_the_explanation_of_a_violation`:
    // its violations are trials of that test too.
    let report = flag_first_log("the_printed_replay_line_re_creates_the_violation", base.path()).try_run().unwrap();
    let target = "run_panics_with_the_explanation_of_a_violation";
    // Crash times in the middle of the run land inside a payload fill even
    // if a replayed writer runs somewhat faster or slower.
    let middle =
        |v: &&crashlab::testkit::Violation| (v.crash_at_ns.unwrap() as i64 - report.clean_run_ns as i64 / 2).abs();
    let mut violations: Vec<_> = report.violations.iter().collect();
    violations.sort_by_key(middle);
    assert!(!violations.is_empty(), "{report}");
    let mut outputs = Vec::new();
    // Timing on a loaded machine varies: one of three replays must land
    // where its original did.
    for v in violations.iter().cycle().take(3) {
        let spec = ReplaySpec { test: target.into(), ..v.replay.clone() };
        let out = Command::new(std::env::current_exe().unwrap())
            .args([target, "--exact", "--nocapture"])
            .env(REPLAY_ENV, spec.to_string())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        // The target is #[should_panic]: it passes when the replay reproduced the violation.
        let headline = format!("the replayed {} trial {} violated the checker", v.crash.unwrap(), v.trial);
        if out.status.success() && stderr.contains(&headline) {
            assert!(stderr.contains("is committed but its payload is incomplete"), "{stderr}");
            assert_no_leftovers(base.path());
            return;
        }
        // Otherwise it must at least have replayed exactly that one trial.
        assert!(stderr.contains(&format!("replayed 1 trials ({} 1)", v.crash.unwrap())), "{spec}: {stderr}");
        outputs.push(stderr);
    }
    panic!("no replay reproduced its violation:\n{}", outputs.join("\n---\n"));
}

#[test]
fn several_crash_tests_run_at_once_in_one_process() {
    // Three campaigns from three threads of this one test, while cargo's
    // runner runs the other tests of this binary on its own threads. In a
    // re-execution the first thread to reach `run` plays the role.
    let name = "several_crash_tests_run_at_once_in_one_process";
    let reports: Vec<(Base, CrashReport)> = std::thread::scope(|s| {
        let runs: Vec<_> = (0..3)
            .map(|_| {
                s.spawn(|| {
                    let base = base_dir();
                    let report = correct_log(name, base.path()).crashes([Crash::Sigkill]).trials(12).run();
                    (base, report)
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for (base, report) in &reports {
        assert!(!report.violation_found(), "{report}");
        assert_crashes_struck(report);
        assert_no_leftovers(base.path());
    }
}

#[test]
fn a_name_that_selects_no_test_is_an_error_not_a_pass() {
    let base = base_dir();
    let e = correct_log("no_such_test_in_this_binary", base.path()).try_run().unwrap_err();
    assert!(matches!(e, TestkitError::Probe { .. }), "{e}");
    let text = e.to_string();
    assert!(text.contains("runs no test") && text.contains("no_such_test_in_this_binary"), "{text}");
    assert!(text.contains("this thread is named `a_name_that_selects_no_test_is_an_error_not_a_pass`"), "{text}");
    assert_no_leftovers(base.path());
}

#[test]
fn a_checker_that_panics_on_the_uncrashed_result_is_a_violation_of_the_clean_run() {
    let base = base_dir();
    let report = CrashTest::new("a_checker_that_panics_on_the_uncrashed_result_is_a_violation_of_the_clean_run")
        .file(FILE, 4096)
        .writer(|ctx| {
            ctx.map()[0] = 1;
            ctx.msync(0..1)?;
            ctx.ack("one");
            Ok(())
        })
        .checker(|_, acks| {
            assert_eq!(acks, ["two"], "the checker expected another ack");
            Ok(())
        })
        .dir(base.path())
        .try_run()
        .unwrap();
    assert_eq!(report.trials, 0, "no crash is tried when the clean run fails: {report}");
    let v = report.simplest_violation().unwrap();
    assert_eq!(v.crash, None);
    assert!(v.reason.starts_with("the checker panicked at"), "{}", v.reason);
    assert!(v.reason.contains("the checker expected another ack"), "{}", v.reason);
    let message = report.failure_message().unwrap();
    assert!(message.contains("rejects what the writer left when nothing crashed it"), "{message}");
    assert!(message.contains(&format!("{REPLAY_ENV}='test={} crash=clean seed=0'", report.test)), "{message}");
    assert_no_leftovers(base.path());
}

#[test]
fn a_writer_that_fails_when_not_crashed_is_a_harness_error() {
    let base = base_dir();
    let e = CrashTest::new("a_writer_that_fails_when_not_crashed_is_a_harness_error")
        .file(FILE, 4096)
        .writer(|ctx| {
            ctx.ack("about to fail");
            panic!("the writer gives up");
        })
        .checker(|_, _| Ok(()))
        .dir(base.path())
        .try_run()
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, TestkitError::Run { .. }), "{text}");
    assert!(text.contains("the clean run") && text.contains("the writer panicked at"), "{text}");
    assert!(text.contains("the writer gives up"), "{text}");
    assert_no_leftovers(base.path());
}

#[test]
fn bad_builder_input_is_refused_before_anything_runs() {
    let e = |t: CrashTest<'static>| t.try_run().unwrap_err().to_string();
    let name = "bad_builder_input_is_refused_before_anything_runs";
    assert!(e(CrashTest::new(name).checker(|_, _| Ok(()))).contains("no writer"));
    assert!(e(CrashTest::new(name).writer(|_| Ok(()))).contains("no checker"));
    let both = || CrashTest::new(name).writer(|_| Ok(())).checker(|_, _| Ok(()));
    assert!(e(both().file("a/b", 10)).contains("one path component"));
    assert!(e(both().file("a", 0)).contains("an empty file cannot be mapped"));
    assert!(e(both().file("a", 1).file("a", 2)).contains("declared twice"));
    let real = e(both().crashes([Crash::PowerLossReal]));
    assert!(real.contains("Crash::PowerLossReal") && real.contains("--crash power-loss-real"), "{real}");
}

const PAGE: usize = 4096;
const PAGES: usize = 12;

/// One page per record, each byte `record + 1`; `ack_first` acks a record
/// before its msync instead of after it.
fn page_log(name: &str, base: &Path, ack_first: bool) -> CrashTest<'static> {
    CrashTest::new(name)
        .file("pages.bin", PAGES * PAGE)
        .writer(move |ctx| {
            for i in 0..PAGES {
                ctx.map()[i * PAGE..(i + 1) * PAGE].fill(i as u8 + 1);
                if ack_first {
                    ctx.ack(format!("page {i}"));
                    ctx.msync(i * PAGE..(i + 1) * PAGE)?;
                } else {
                    ctx.msync(i * PAGE..(i + 1) * PAGE)?;
                    ctx.ack(format!("page {i}"));
                }
                // Room for a crash at a random time to land between records.
                std::thread::sleep(Duration::from_millis(1));
            }
            Ok(())
        })
        .checker(|dir, acks| {
            let bytes = std::fs::read(dir.join("pages.bin")).map_err(|e| e.to_string())?;
            for i in 0..acks.len() {
                let page = bytes.get(i * PAGE..(i + 1) * PAGE).unwrap_or(&[]);
                if page.len() != PAGE || page.iter().any(|&b| b != i as u8 + 1) {
                    return Err(format!("acked page {i} is lost"));
                }
            }
            Ok(())
        })
        .crashes([Crash::Sigkill, Crash::PowerLoss])
        .trials(12)
        .seed(3)
        .jobs(2)
        .dir(base)
}

fn counts(report: &CrashReport, crash: Crash) -> &crashlab::testkit::CrashCounts {
    report.per_crash.iter().find(|c| c.crash == crash).unwrap_or_else(|| panic!("no {crash} counts: {report}"))
}

#[test]
fn power_loss_keeps_what_was_synced_before_the_ack() {
    let base = base_dir();
    let report = page_log("power_loss_keeps_what_was_synced_before_the_ack", base.path(), false).run();
    assert!(!report.violation_found(), "{report}");
    let power_loss = counts(&report, Crash::PowerLoss);
    assert_eq!(power_loss.trials, 12);
    assert!(power_loss.acks > 0, "{report}");
    assert_no_leftovers(base.path());
}

/// Acking before msync survives every process crash (the page cache
/// outlives the process) and is caught by a power loss, whose violation
/// replays exactly from its minimal state.
#[test]
fn power_loss_catches_an_ack_before_msync_that_process_crashes_miss() {
    let base = base_dir();
    let name = "power_loss_catches_an_ack_before_msync_that_process_crashes_miss";
    let report = page_log(name, base.path(), true).try_run().unwrap();
    assert_eq!(counts(&report, Crash::Sigkill).violations, 0, "{report}");
    assert!(counts(&report, Crash::PowerLoss).violations > 0, "{report}");
    let v = report.violations.iter().find(|v| v.crash == Some(Crash::PowerLoss)).unwrap();
    assert!(v.reason.starts_with("acked page ") && v.reason.ends_with(" is lost"), "{}", v.reason);
    let state = v.replay.state.as_deref().expect("a power-loss violation names its minimal state");
    assert!(state.contains("pages.bin"), "{state}");
    assert!(v.cli_replay.contains("--crash power-loss") && v.cli_replay.contains("--state"), "{}", v.cli_replay);
    let message = report.failure_message().unwrap();
    assert!(message.contains(&format!("{REPLAY_ENV}='{}'", report.simplest_violation().unwrap().replay)), "{message}");

    let replayed = page_log(name, base.path(), true).replay(v.replay.clone()).try_run().unwrap();
    assert!(replayed.replayed, "{replayed}");
    let again = replayed.simplest_violation().unwrap_or_else(|| panic!("the replay of {} passed", v.replay));
    assert_eq!(again.reason, v.reason);
    assert_no_leftovers(base.path());
}

/// A writer that never acks tests nothing: the run is an error, not a pass,
/// unless `allow_no_acks()` says that is the point.
#[test]
fn a_writer_that_never_acks_is_an_error_unless_allowed() {
    let base = base_dir();
    let name = "a_writer_that_never_acks_is_an_error_unless_allowed";
    let silent = || {
        CrashTest::new(name)
            .file(FILE, 4096)
            .writer(|ctx| {
                ctx.map()[0] = 1;
                Ok(())
            })
            .checker(|_, _| Ok(()))
            .crashes([Crash::Sigkill])
            .trials(2)
            .dir(base.path())
    };
    let e = silent().try_run().unwrap_err();
    let text = e.to_string();
    assert!(matches!(&e, TestkitError::NothingAcked { report, .. } if report.trials == 2), "{text}");
    assert!(text.contains("NOTHING ACKNOWLEDGED") && text.contains(".allow_no_acks()"), "{text}");
    let report = silent().allow_no_acks().try_run().unwrap();
    assert_eq!((report.trials, report.clean_run_acks, report.acks), (2, 0, 0), "{report}");
    assert_no_leftovers(base.path());
}

/// A store that counts a record in the mapped header before the `pwrite`
/// that appends it: a kill between the two leaves a count the file does not
/// hold.
fn header_first_kv(name: &str, base: &Path) -> CrashTest<'static> {
    use std::os::unix::fs::FileExt;
    CrashTest::new(name)
        .file("kv.bin", 4096)
        .writer(|ctx| {
            for i in 0..3u32 {
                ctx.map()[..4].copy_from_slice(&(i + 1).to_le_bytes()); // the mistake: counted first
                ctx.file("kv.bin").write_all_at(&[i as u8 + 1; 64], 4096 + 64 * i as u64)?;
                ctx.ack(format!("rec {i}"));
            }
            Ok(())
        })
        .checker(|dir, _acks| {
            let kv = std::fs::read(dir.join("kv.bin")).map_err(|e| e.to_string())?;
            let count = u32::from_le_bytes(kv[..4].try_into().unwrap()) as usize;
            let held = (kv.len() - 4096) / 64;
            match count > held {
                true => Err(format!("the header counts {count} records, the file holds {held}")),
                false => Ok(()),
            }
        })
        .crashes([Crash::Sigkill])
        .points(ProgramPoints::Syscalls)
        .seed(3)
        .dir(base)
}

/// `points(Syscalls)` crashes just before every traced call, the `pwrite`
/// of `header_first_kv` included, so its window of a few microseconds is
/// hit on every run, whatever the machine's load; the replay spec of such a
/// trial strikes the same call again.
#[test]
fn a_header_counted_before_its_extending_write_is_caught_at_that_call() {
    const NAME: &str = "a_header_counted_before_its_extending_write_is_caught_at_that_call";
    const TRIALS: u32 = 240;
    let base = base_dir();
    let report = header_first_kv(NAME, base.path()).trials(TRIALS).try_run().unwrap();
    let external = report.external.as_ref().expect("the whole run's report");
    let calls = external.traced_clean_run.as_ref().expect("the traced clean run").traced_calls;
    assert!(4 * calls <= TRIALS as u64, "{calls} traced calls: raise TRIALS to reach every one");
    let at_pwrite: Vec<_> =
        report.violations.iter().filter(|v| v.delivery.contains("just before traced call")).collect();
    assert_eq!(at_pwrite.len(), 3, "one kill before each pwrite: {report}");
    for v in &at_pwrite {
        assert!(v.delivery.contains("(pwrite64)"), "{}", v.delivery);
        assert!(v.replay.to_string().ends_with(&format!("calls={calls} points=syscalls")), "{}", v.replay);
        assert!(v.cli_replay.contains("--points syscalls"), "{}", v.cli_replay);
    }
    let v = at_pwrite[0];
    let replayed = header_first_kv(NAME, base.path()).replay(v.replay.clone()).try_run().unwrap();
    assert!(replayed.replayed);
    assert_eq!(replayed.violations.len(), 1, "{replayed}");
    assert_eq!((&replayed.violations[0].reason, &replayed.violations[0].delivery), (&v.reason, &v.delivery));
    assert_no_leftovers(base.path());
}
