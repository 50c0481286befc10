//! `crashlab run --writer ... --crash power-loss` and its replay lines end
//! to end, with small `sh` writers (appending to a log, `sync FILE` for
//! durability) and a tiny C writer that uses io_uring; plus `crashlab bench
//! oracle` and `crashlab bench power-loss`.
//!
//! These need ptrace and seccomp (the durability oracle): where they are
//! missing the runs exit 2 with the oracle's message, and the tests fail.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "support/report_schema_validation.rs"]
mod report_schema_validation;

fn crashlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crashlab")).args(args).output().expect("crashlab runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Creates `log` durably (`sync log .` fsyncs the file and its directory:
/// without the latter its name may be lost, under `--fs-model posix`), then
/// appends a record, acks it, then makes it durable: the ack comes too early.
const ACK_BEFORE_SYNC: &str =
    r#": >> log; sync log .; for i in 1 2 3 4 5 6; do echo "rec $i" >> log; echo "rec $i"; sync log; done"#;
/// Creates `log` durably, then appends a record, makes it durable, then acks it.
const SYNC_BEFORE_ACK: &str =
    r#": >> log; sync log .; for i in 1 2 3 4 5 6; do echo "rec $i" >> log; sync log; echo "rec $i"; done"#;
/// Every acked line must be a line of `log` (it creates `log`: the state
/// directory must be restored after it).
const LOG_CHECKER: &str = r#"touch log; while read -r l; do grep -qx "$l" log || { echo "acked $l is missing" >&2; exit 1; }; done < "$CRASHLAB_ACKS""#;

fn run_power_loss(dir: &Path, writer: &str, extra: &[&str]) -> Output {
    let out = dir.join("report.json");
    let mut args = vec![
        "run",
        "--shell",
        "--writer",
        writer,
        "--checker",
        LOG_CHECKER,
        "--crash",
        "power-loss",
        "--trials",
        "8",
        "--seed",
        "5",
        "--dir",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    crashlab(&args)
}

/// The report of the run in `dir`, which must match the committed external schema.
fn report(dir: &Path) -> serde_json::Value {
    let r = serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    report_schema_validation::assert_valid_external_report(&r, "the report of `run --writer --crash power-loss`");
    r
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

/// Processes whose environment names a directory under `dir`.
fn processes_in(dir: &Path) -> Vec<String> {
    let needle = format!("CRASHLAB_DIR={}", std::fs::canonicalize(dir).unwrap().display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(env) = std::fs::read(entry.path().join("environ")) {
            if env.split(|&b| b == 0).any(|v| v.starts_with(needle.as_bytes())) {
                found.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    found
}

#[test]
fn acking_before_the_sync_is_caught_and_the_printed_replay_line_rebuilds_the_failing_state() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_power_loss(dir.path(), ACK_BEFORE_SYNC, &[]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("VIOLATION power-loss trial ") && text.contains("; minimal set: "), "{text}");
    assert!(stderr(&o).contains("violation(s) under power-loss") && stderr(&o).contains("replay: crashlab replay"));
    let r = report(dir.path());
    assert_eq!(r["schema_version"], crashlab::report::external::EXTERNAL_SCHEMA_VERSION);
    let pl = &r["power_loss"];
    // Two fsyncs (`sync log .`) make the log's name durable, one per record.
    assert_eq!(pl["calibration"]["by_syscall"]["fsync"], 8, "{pl}");
    // A failure at a sync call (just before an fsync, after its ack): its
    // replay is exact, since the writer does the same every time.
    let failures = pl["failures"].as_array().unwrap();
    let f = failures
        .iter()
        .find(|f| f["point"]["kind"] == "syscall")
        .unwrap_or_else(|| panic!("no failure at a sync call: {pl:#}"));
    assert!(f["finding"]["explanation"].as_str().unwrap().starts_with("checker failed: acked rec "), "{f}");
    let line = f["replay"].as_str().unwrap();
    let words = shell_words::split(line).expect("replay lines split like shell words");
    assert_eq!(words[..2], ["crashlab", "replay"]);
    assert!(line.contains("--crash power-loss") && line.contains(" --state "), "{line}");
    let state_dir = dir.path().join("state");
    let mut args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    let d = dir.path().to_str().unwrap().to_owned();
    let s = state_dir.to_str().unwrap().to_owned();
    args.extend(["--dir", &d, "--write-state", &s]);
    let replayed = crashlab(&args);
    assert_eq!(replayed.status.code(), Some(1), "{line}\n{}{}", stdout(&replayed), stderr(&replayed));
    let text = stdout(&replayed);
    assert!(text.contains("checker: VIOLATION: acked rec "), "{text}");
    assert!(text.contains(&format!("wrote the state's directory to {s}")), "{text}");
    // The state written is the one that failed: a log missing acked records.
    let log = std::fs::read_to_string(state_dir.join("log")).unwrap();
    let acked = f["acks"].as_u64().unwrap() as usize;
    assert!(log.lines().count() < acked, "{log:?} holds all {acked} acked records");
    std::fs::remove_dir_all(&state_dir).unwrap();
    // The whole trial again, without --state: explored and shrunk anew.
    let without: Vec<&str> = {
        let at = args.iter().position(|&a| a == "--state").unwrap();
        args[..at].iter().chain(&args[at + 2..args.len() - 2]).copied().collect()
    };
    let again = crashlab(&without);
    assert_eq!(again.status.code(), Some(1), "{}{}", stdout(&again), stderr(&again));
    assert!(stdout(&again).contains(&format!("minimal state: {}", f["finding"]["state"].as_str().unwrap())));
    assert_eq!(entries(dir.path()), ["report.json"], "the replays left files");
    assert_eq!(processes_in(dir.path()), Vec::<String>::new());
}

#[test]
fn syncing_before_acking_passes_whole_and_torn() {
    for tear in [None, Some("512")] {
        let dir = tempfile::tempdir().unwrap();
        let extra: Vec<&str> = tear.map(|t| vec!["--tear", t]).unwrap_or_default();
        let o = run_power_loss(dir.path(), SYNC_BEFORE_ACK, &extra);
        assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
        let r = report(dir.path());
        let pl = &r["power_loss"];
        assert_eq!(pl["consistent"], 8, "{pl:#}");
        assert_eq!(pl["unit_bytes"], tear.map_or(pl["unit_bytes"].clone(), |t| t.parse::<u64>().unwrap().into()));
        assert!(pl["acks_seen"].as_u64().unwrap() > 0, "{pl:#}");
        assert_eq!(r["config"]["tear"], tear.map_or(serde_json::Value::Null, |t| t.parse::<u64>().unwrap().into()));
        assert_eq!(entries(dir.path()), ["report.json"]);
    }
}

#[test]
fn a_writer_using_io_uring_is_refused_with_exit_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("uring.c");
    let bin = dir.path().join("uring");
    std::fs::write(
        &src,
        r#"#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(void) {
    char params[512];
    memset(params, 0, sizeof params);
    syscall(SYS_io_uring_setup, 4, params);
    return write(1, "ring\n", 5) == 5 ? 0 : 1;
}
"#,
    )
    .unwrap();
    let cc = Command::new("cc").arg("-o").arg(&bin).arg(&src).output().expect("cc runs (gcc is needed)");
    assert!(cc.status.success(), "{}", String::from_utf8_lossy(&cc.stderr));
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let out = work.join("r.json");
    let o = crashlab(&[
        "run",
        "--writer",
        bin.to_str().unwrap(),
        "--checker",
        "true",
        "--crash",
        "power-loss",
        "--trials",
        "2",
        "--dir",
        work.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}{}", stdout(&o));
    assert!(err.contains("--crash power-loss") && err.contains("--writer") && err.contains("io_uring"), "{err}");
    assert!(!out.exists(), "no report for a harness error");
    assert_eq!(entries(&work), Vec::<String>::new());
    assert_eq!(processes_in(&work), Vec::<String>::new());
}

#[test]
fn interrupting_a_power_loss_run_leaves_no_process_and_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    // A background child too: the oracle traces it, and must kill it.
    let writer = r#"sleep 30 & echo start; sleep 0.3; echo end"#;
    let mut child = Command::new(env!("CARGO_BIN_EXE_crashlab"))
        .args(["run", "--shell", "--writer", writer, "--checker", "true", "--crash", "power-loss"])
        .args(["--trials", "100000", "--jobs", "2", "--seed", "1", "--dir", dir.path().to_str().unwrap()])
        .args(["--out", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until power-loss trials are running (past both clean runs).
    let start = Instant::now();
    while processes_in(dir.path()).is_empty()
        || !entries(dir.path()).iter().any(|run| {
            std::fs::read_dir(dir.path().join(run)).is_ok_and(|mut e| e.any(|t| t.unwrap().file_name() == "pl-job-1"))
        })
    {
        assert!(start.elapsed() < Duration::from_secs(30), "power-loss trials never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(processes_in(dir.path()), Vec::<String>::new(), "writers outlived the harness");
    assert_eq!(entries(dir.path()), Vec::<String>::new(), "files outlived the harness");
}

#[test]
fn bench_oracle_and_bench_power_loss_print_figure_floor_and_ratio() {
    let o = crashlab(&["bench", "oracle", "--seconds", "0.5"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("untraced") && text.contains("traced") && text.contains("slowdown"), "{text}");
    // One figure per writer, the traced time (without and with the write
    // history) next to its untraced floor.
    let figures: Vec<&str> = text.lines().filter(|l| l.starts_with("figure, ")).collect();
    assert_eq!(figures.len(), 3, "{text}");
    assert!(figures[0].starts_with("figure, msync ") && figures[1].starts_with("figure, rewrite "), "{text}");
    assert!(figures[2].starts_with("figure, namespace "), "{text}");
    for f in figures {
        assert!(f.contains(": traced ") && f.contains("with the write history"), "{text}");
        assert!(f.contains("floor: untraced") && f.contains("ratios"), "{text}");
    }
    let o = crashlab(&["bench", "power-loss", "--seconds", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("ratio") && text.contains("floor"), "{text}");
}

/// A long run whose output is not a terminal says how it goes on stderr
/// every few seconds (here every 100 ms, through the internal override),
/// instead of staying silent until its end; `--quiet` silences it.
#[test]
fn a_run_off_a_terminal_prints_progress_lines_to_stderr() {
    let dir = tempfile::tempdir().unwrap();
    // Each checker run sleeps 100 ms: with 4 trials (at least one state
    // each) the checking alone lasts 4 intervals, so at least one line
    // comes once states are being checked.
    let slow_checker = format!("sleep 0.1; {LOG_CHECKER}");
    for quiet in [false, true] {
        let out = dir.path().join("report.json");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_crashlab"));
        cmd.args(["run", "--shell", "--writer", SYNC_BEFORE_ACK, "--checker", &slow_checker])
            .args(["--crash", "power-loss", "--trials", "4", "--seed", "5", "--dir", dir.path().to_str().unwrap()])
            .args(["--out", out.to_str().unwrap()])
            .env("CRASHLAB_PROGRESS_INTERVAL_MS", "100");
        if quiet {
            cmd.arg("--quiet");
        }
        let o = cmd.output().unwrap();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "{}{err}", stdout(&o));
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("crashlab: progress: ")).collect();
        if quiet {
            assert_eq!(lines, Vec::<&str>::new(), "--quiet: {err}");
        } else {
            assert!(!lines.is_empty(), "no progress line: {err}");
            assert!(lines.iter().all(|l| l.contains("/4 trials done") && l.contains(" s elapsed")), "{err}");
            assert!(lines.iter().any(|l| l.contains("power-loss states checked")), "{err}");
        }
    }
}

/// `--shard` splits the power-loss trials too, and the shards merge into
/// every trial of the unsharded run once, with the same writer seeds. (Which
/// trials fail is not compared: a trial crashed at a random time lands
/// wherever the writer happens to be.)
#[test]
fn power_loss_shards_merge_into_every_trial_of_the_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let trials = |r: &serde_json::Value| -> Vec<(u64, u64)> {
        r["power_loss"]["trials_detail"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["trial"].as_u64().unwrap(), t["writer_seed"].as_u64().unwrap()))
            .collect()
    };
    let o = run_power_loss(d, SYNC_BEFORE_ACK, &[]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let whole = trials(&report(d));
    assert_eq!(whole.iter().map(|t| t.0).collect::<Vec<_>>(), (0..8).collect::<Vec<_>>());
    let mut shard_files = Vec::new();
    for (i, block) in [(1, 0..4u64), (2, 4..8)] {
        let shard = format!("{i}/2");
        let o = run_power_loss(d, SYNC_BEFORE_ACK, &["--shard", &shard]);
        assert_eq!(o.status.code(), Some(0), "{shard}: {}{}", stdout(&o), stderr(&o));
        let r = report(d);
        assert_eq!(r["config"]["shard"], shard.as_str());
        assert_eq!(trials(&r).iter().map(|t| t.0).collect::<Vec<_>>(), block.collect::<Vec<_>>(), "{shard}");
        let file = d.join(format!("s{i}.json"));
        std::fs::rename(d.join("report.json"), &file).unwrap();
        shard_files.push(file);
    }
    let merged = d.join("merged.json");
    let o = crashlab(&[
        "report",
        "merge",
        shard_files[1].to_str().unwrap(),
        shard_files[0].to_str().unwrap(),
        "--out",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let m: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    report_schema_validation::assert_valid_external_report(&m, "the merged power-loss report");
    assert_eq!(trials(&m), whole, "every trial once, in order, with the unsharded run's writer seeds");
    assert_eq!(m["power_loss"]["trials"], 8);
    assert_eq!(m["summary"]["trials"], 8);
    assert!(m["config"].get("shard").is_none(), "a merged report is a whole run");
}

/// `--fs-model` names the namespace model of power-loss states: it is
/// refused where there is none, an unknown model is refused naming the
/// known ones, and a chosen model is in the report and the replay line.
#[test]
fn the_namespace_model_is_a_power_loss_flag_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let refused = |crash: &str, model: &str| {
        let o = crashlab(&[
            "run",
            "--writer",
            "true",
            "--checker",
            "true",
            "--crash",
            crash,
            "--fs-model",
            model,
            "--dir",
            d,
        ]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        stderr(&o)
    };
    let err = refused("sigkill", "ext4");
    assert!(err.contains("--fs-model applies to --crash power-loss, eio-sync and power-loss-real only"), "{err}");
    let err = refused("power-loss", "zfs");
    assert!(err.contains("unknown filesystem model \"zfs\"; known: posix, ext4, xfs, btrfs"), "{err}");
    let o = run_power_loss(dir.path(), ACK_BEFORE_SYNC, &["--fs-model", "xfs"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let r = report(dir.path());
    assert_eq!(r["config"]["fs_model"], "xfs");
    assert_eq!(r["power_loss"]["fs_model"], "xfs");
    let line = r["power_loss"]["failures"][0]["replay"].as_str().unwrap();
    assert!(line.contains(" --fs-model xfs "), "{line}");
}
