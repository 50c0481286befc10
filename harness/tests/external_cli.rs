//! `crashlab run --writer` / `replay --writer` end to end (workload protocol
//! v1), with small `sh` writers and checkers: exit codes, messages, replay
//! lines, and no process or file left behind, even after Ctrl-C.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

#[path = "support/report_schema_validation.rs"]
mod report_schema_validation;

use report_schema_validation::assert_valid_external_report;

fn crashlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crashlab")).args(args).output().expect("crashlab runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `crashlab run --shell --writer W --checker C` plus `extra`, in `dir`;
/// the report it wrote, if any, must match the committed external schema.
fn run_shell(dir: &Path, writer: &str, checker: &str, extra: &[&str]) -> Output {
    let o = run_shell_unchecked(dir, writer, checker, extra);
    if let Ok(text) = std::fs::read_to_string(dir.join("report.json")) {
        let report: serde_json::Value = serde_json::from_str(&text).expect("the report is JSON");
        assert_valid_external_report(&report, "the report of `run --writer`");
    }
    o
}

fn run_shell_unchecked(dir: &Path, writer: &str, checker: &str, extra: &[&str]) -> Output {
    let out = dir.join("report.json");
    let mut args = vec![
        "run",
        "--shell",
        "--writer",
        writer,
        "--checker",
        checker,
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

/// A log writer: appends `rec I` to `log` and acks it, ten times.
const LOG_WRITER: &str = r#"for i in 1 2 3 4 5 6 7 8 9 10; do echo "rec $i" >> log; echo "rec $i"; sleep 0.005; done"#;
/// The same, acking each record before writing it: loses acks to a kill.
const ACK_FIRST_WRITER: &str =
    r#"for i in 1 2 3 4 5 6 7 8 9 10; do echo "rec $i"; sleep 0.005; echo "rec $i" >> log; done"#;
/// Every acked line must be a line of `log`.
const LOG_CHECKER: &str = r#"touch log; while read -r l; do grep -qx "$l" log || { echo "acked $l is missing" >&2; exit 1; }; done < "$CRASHLAB_ACKS""#;

/// Processes whose environment names a trial directory under `dir`.
fn processes_in(dir: &Path) -> Vec<String> {
    let needle = format!("CRASHLAB_DIR={}", std::fs::canonicalize(dir).unwrap().display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(env) = std::fs::read(entry.path().join("environ")) {
            if env.split(|&b| b == 0).any(|v| v.starts_with(needle.as_bytes())) {
                let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                found.push(format!("{}: {}", entry.file_name().to_string_lossy(), String::from_utf8_lossy(&cmd)));
            }
        }
    }
    found
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    v
}

#[test]
fn a_correct_writer_passes_and_the_report_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_shell(dir.path(), LOG_WRITER, LOG_CHECKER, &["--crash", "sigkill,sigabrt", "--trials", "8"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("ok: 16 trials, 0 violations"), "{}", stdout(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["schema_version"], crashlab::report::external::EXTERNAL_SCHEMA_VERSION);
    assert_eq!(report["report_kind"], "external");
    assert_eq!(report["protocol_version"], 1);
    assert_eq!(report["seed"], 5);
    assert_eq!(report["config"]["writer"], LOG_WRITER);
    assert_eq!(report["clean_run"]["acks"], 10);
    assert_eq!(report["clean_run"]["checker"]["verdict"], "consistent");
    let crashes: Vec<&str> =
        report["crashes"].as_array().unwrap().iter().map(|c| c["crash"].as_str().unwrap()).collect();
    assert_eq!(crashes, ["sigkill", "abort"], "one spelling written, whichever was given");
    assert_eq!(report["crashes"][0]["trials_detail"].as_array().unwrap().len(), 8);
    assert!(report["environment"]["page_size"].as_u64().unwrap() >= 4096);
    assert_eq!(report["summary"]["verdict"], "no-violation-found");
}

#[test]
fn a_violation_exits_1_with_a_replay_line_that_reruns_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_shell(dir.path(), ACK_FIRST_WRITER, LOG_CHECKER, &["--crash", "sigkill", "--trials", "12"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("VIOLATION sigkill trial"), "{}", stdout(&o));
    assert!(stderr(&o).contains("replay: crashlab replay --writer"), "{}", stderr(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    let failures = report["crashes"][0]["failures"].as_array().unwrap();
    assert!(!failures.is_empty());
    assert!(failures[0]["reason"].as_str().unwrap().starts_with("acked rec "), "{}", failures[0]);
    // Replay the failure whose kill came nearest the middle of the run: a
    // replay that runs somewhat faster or slower still kills the writer
    // between an ack and its record. One of three replays must reproduce it.
    let clean_ns = report["clean_run"]["duration_ns"].as_i64().unwrap();
    let details = report["crashes"][0]["trials_detail"].as_array().unwrap();
    let middle = |f: &&serde_json::Value| {
        let trial = f["trial"].as_u64().unwrap() as usize;
        (details[trial]["crash_at_ns"].as_i64().unwrap() - clean_ns / 2).abs()
    };
    let line = failures.iter().min_by_key(middle).unwrap()["replay"].as_str().unwrap();
    let words = shell_words::split(line).expect("replay lines split like shell words");
    assert_eq!(words[..2], ["crashlab", "replay"]);
    let mut args: Vec<&str> = words[1..].iter().map(String::as_str).collect();
    let d = dir.path().to_str().unwrap().to_owned();
    args.extend(["--dir", &d]);
    let mut r = crashlab(&args);
    for _ in 0..2 {
        if r.status.code() != Some(0) {
            break;
        }
        r = crashlab(&args);
    }
    assert_eq!(r.status.code(), Some(1), "{line}\n{}{}", stdout(&r), stderr(&r));
    assert!(stdout(&r).contains("checker: VIOLATION: acked rec "), "{}", stdout(&r));
    assert!(stdout(&r).contains("the crash time is replayed"), "{}", stdout(&r));
    assert_eq!(entries(dir.path()), ["report.json"]);
}

#[test]
fn a_checker_that_rejects_the_clean_run_is_a_violation() {
    let dir = tempfile::tempdir().unwrap();
    let o = run_shell(dir.path(), "echo one", "echo 'always wrong' >&2; exit 1", &["--crash", "sigkill"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stdout(&o).contains("VIOLATION in the clean run (no crash at all): always wrong"), "{}", stdout(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["summary"]["clean_run_passed"], false);
    assert_eq!(report["crashes"].as_array().unwrap().len(), 0, "no crash trials after a failed clean run");
    let line = report["clean_run"]["replay"].as_str().unwrap();
    assert!(line.contains("--crash clean --seed 5"), "{line}");
    let words = shell_words::split(line).unwrap();
    let r = crashlab(&words[1..].iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(r.status.code(), Some(1), "{}", stderr(&r));
    assert!(stdout(&r).contains("checker: VIOLATION: always wrong"), "{}", stdout(&r));
}

#[test]
fn bad_input_and_malfunctions_exit_2_and_name_the_culprit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = dir.path().join("r.json");
    let o = out.to_str().unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["run", "--writer", "no-such-writer-xyz", "--checker", "true", "--crash", "sigkill"],
            &["--writer", "no-such-writer-xyz", "not found"],
        ),
        (
            &["run", "--writer", "true", "--checker", "./no/such/checker", "--crash", "sigkill"],
            &["--checker", "./no/such/checker"],
        ),
        (
            &["run", "--writer", "echo 'unterminated", "--checker", "true", "--crash", "sigkill"],
            &["--writer", "cannot split"],
        ),
        (&["run", "--writer", "true", "--crash", "sigkill"], &["--checker"]),
        (&["run", "--writer", "true", "--checker", "true", "--crash", "meteor"], &["--crash", "meteor"]),
        (
            &["run", "--writer", "true", "--checker", "true", "--crash", "sigkill", "--tear", "512"],
            &["--tear 512", "only --crash power-loss"],
        ),
        (
            &["run", "--writer", "true", "--checker", "true", "--crash", "power-loss", "--tear", "1000"],
            &["--tear 1000", "must divide the page size"],
        ),
        (
            &["run", "--writer", "true", "--checker", "true", "--scenario", "shared/no-sync", "--crash", "sigkill"],
            &["--writer", "--scenario"],
        ),
        (&["run", "--writer", "true", "--checker", "true", "--crash", "sigkill", "--trials", "0"], &["--trials"]),
        (&["run", "--crash", "sigkill"], &["--scenario", "--writer"]),
        (
            &["run", "--writer", "true", "--checker", "true", "--crash", "sigkill", "--size", "8192"],
            &["--writer", "--size"],
        ),
        // A writer that never prints and hangs: killed at --timeout, named.
        (
            &["run", "--writer", "sleep 30", "--checker", "true", "--crash", "sigkill", "--timeout", "1"],
            &["writer `sleep 30` (--writer)", "--timeout 1"],
        ),
        // A writer that fails when left alone.
        (
            &["run", "--shell", "--writer", "echo nope >&2; exit 4", "--checker", "true", "--crash", "sigkill"],
            &["--writer", "exited with status 4", "nope"],
        ),
        // Checkers that neither pass nor fail: never a pass.
        (
            &["run", "--writer", "true", "--checker", "sh -c 'exit 3'", "--crash", "sigkill"],
            &["checker malfunction", "exited with status 3"],
        ),
        (
            &["run", "--writer", "true", "--checker", "sh -c 'kill -SEGV $$'", "--crash", "sigkill"],
            &["checker malfunction", "SIGSEGV"],
        ),
        (
            &["run", "--writer", "true", "--checker", "sleep 30", "--crash", "sigkill", "--timeout", "1"],
            &["checker malfunction", "--timeout 1"],
        ),
        (
            &["run", "--shell", "--writer", "true", "--setup", "exit 5", "--checker", "true", "--crash", "sigkill"],
            &["--setup", "exited with status 5"],
        ),
        (&["replay", "--writer", "true", "--checker", "true", "--crash", "sigkill", "--seed", "1"], &["--trial"]),
    ];
    for (args, needles) in cases {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--dir", d]);
        if args[0] == "run" {
            all.extend(["--out", o]);
            if !args.contains(&"--trials") {
                all.extend(["--trials", "2"]);
            }
        }
        let result = crashlab(&all);
        let err = stderr(&result);
        assert_eq!(result.status.code(), Some(2), "{all:?}: {err}{}", stdout(&result));
        for needle in *needles {
            assert!(err.contains(needle), "{all:?} should say {needle:?}: {err}");
        }
        assert!(!stdout(&result).contains("ok:"), "{all:?} reported a pass: {}", stdout(&result));
        assert!(!out.exists(), "{all:?} wrote a report");
        assert_eq!(entries(dir.path()), Vec::<String>::new(), "{all:?} left files");
        assert_eq!(processes_in(dir.path()), Vec::<String>::new(), "{all:?} left processes");
    }
}

#[test]
fn no_process_and_no_file_outlives_a_run() {
    let dir = tempfile::tempdir().unwrap();
    // The writer leaves a background child holding its stdout: the group
    // kill must take it down, or the run would hang and leak it.
    let writer = r#"sleep 30 & for i in 1 2 3 4 5; do echo "rec $i" >> log; echo "rec $i"; sleep 0.005; done"#;
    let o = run_shell(dir.path(), writer, LOG_CHECKER, &["--crash", "sigkill,sigabrt,sigbus", "--trials", "4"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(processes_in(dir.path()), Vec::<String>::new(), "processes outlived the run");
    assert_eq!(entries(dir.path()), ["report.json"], "temporary files outlived the run");
}

#[test]
fn interrupting_a_run_leaves_no_process_and_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let writer = r#"sleep 30 & echo start; sleep 0.3; echo end"#;
    let mut child = Command::new(env!("CARGO_BIN_EXE_crashlab"))
        .args(["run", "--shell", "--writer", writer, "--checker", "true", "--crash", "sigkill", "--trials", "100000"])
        .args(["--jobs", "2", "--seed", "1", "--dir", dir.path().to_str().unwrap(), "--out", out.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until crash trials are running (past the clean run).
    let start = Instant::now();
    while processes_in(dir.path()).len() < 2
        || !entries(dir.path()).iter().any(|run| {
            std::fs::read_dir(dir.path().join(run)).is_ok_and(|mut e| e.any(|t| t.unwrap().file_name() == "job-1"))
        })
    {
        assert!(start.elapsed() < Duration::from_secs(20), "trials never started");
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

/// PR_SET_PDEATHSIG: a writer or checker crashlab is waiting for dies with
/// it, even when crashlab is SIGKILLed (no cleanup code runs then; the
/// trial directories stay, the test removes them).
#[test]
fn a_sigkilled_crashlab_leaves_no_writer_or_checker_running() {
    for (writer, checker) in [("echo start; exec sleep 30", "true"), ("echo start", "exec sleep 30")] {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_crashlab"))
            .args(["run", "--shell", "--writer", writer, "--checker", checker, "--crash", "sigkill"])
            .args(["--dir", dir.path().to_str().unwrap(), "--out", dir.path().join("r.json").to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The clean run waits for the sleeping program.
        let start = Instant::now();
        while processes_in(dir.path()).is_empty() {
            assert!(start.elapsed() < Duration::from_secs(20), "the program never started");
            std::thread::sleep(Duration::from_millis(10));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        // The kernel delivers the parent-death signal as crashlab's threads exit.
        let start = Instant::now();
        while !processes_in(dir.path()).is_empty() && start.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(processes_in(dir.path()), Vec::<String>::new(), "`{writer}` / `{checker}` outlived crashlab");
    }
}

#[test]
fn bench_external_prints_the_floor_and_the_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let o = crashlab(&["bench", "external", "--seconds", "0.2", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("floor t/s") && text.contains("ratio"), "{text}");
    // The numbers row: floor, 1 job, ratio, no-pdeathsig, ratio, 2 jobs, speedup.
    let row = text.lines().skip_while(|l| !l.contains("floor t/s")).nth(1).expect("a row of numbers");
    let numbers: Vec<f64> = row.split_whitespace().map(|w| w.trim_end_matches('x').parse().unwrap()).collect();
    assert_eq!(numbers.len(), 7, "{row}");
    assert!(numbers.iter().all(|&n| n > 0.0), "{row}");
    assert_eq!(entries(dir.path()), Vec::<String>::new());
}

/// Protocol v1 caps one ack line (64 KiB) and the acks of one writer run
/// (16 MiB, 1048576 lines): a writer past a cap is a protocol error of its
/// trial (exit 2 naming the writer and the cap), killed and cleaned up; it
/// once made crashlab abort on a 4 GiB allocation. Every path that reads
/// acks is covered: the clean run, a crash trial (`sigbus` with no mapped
/// file never crashes the writer, so the flood is sure to come) and the
/// traced run of `power-loss` (the writer floods only when traced).
#[test]
fn a_writer_past_an_ack_cap_exits_2_naming_it_and_leaves_nothing() {
    let after_clean = r#"echo ack 0; if [ -e ../clean-done ]; then cat /dev/zero; fi; touch ../clean-done"#;
    let when_traced =
        r#"echo ack 0; grep -q '^TracerPid:[[:space:]]*0$' /proc/self/status && exit 0; exec cat /dev/zero"#;
    let cases: &[(&str, &str, &str, &str)] = &[
        ("echo ack 0; cat /dev/zero", "sigkill", "the clean run", "printed a line of more than 64 KiB"),
        ("yes ack", "sigkill", "the clean run", "printed more than 1048576 lines"),
        ("while :; do printf '%01000d\\n' 0; done", "sigkill", "the clean run", "printed more than 16 MiB"),
        (after_clean, "sigbus", "sigbus trial", "printed a line of more than 64 KiB"),
        (when_traced, "power-loss", "the clean run under the durability oracle", "printed a line of more than 64 KiB"),
    ];
    for &(writer, crash, trial, cap) in cases {
        let dir = tempfile::tempdir().unwrap();
        let o = run_shell(dir.path(), writer, "true", &["--crash", crash, "--trials", "2", "--timeout", "60"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{writer}: {err}{}", stdout(&o));
        for needle in [trial, &format!("the writer `{writer}` (--writer) {cap}"), "caps one ack line at 64 KiB"] {
            assert!(err.contains(needle), "{writer}: should say {needle:?}: {err}");
        }
        assert!(!err.contains("memory allocation"), "{err}");
        assert_eq!(entries(dir.path()), Vec::<String>::new(), "{writer}: files left");
        assert_eq!(processes_in(dir.path()), Vec::<String>::new(), "{writer}: processes left");
    }
}

/// A run in which nothing was acknowledged tested nothing: the checker only
/// judged an empty ack set. It is not a pass (exit 2, said in the summary
/// and on stderr, verdict `nothing-acked`) unless `--allow-no-acks`.
#[test]
fn a_run_that_acks_nothing_exits_2_unless_allowed() {
    // The clean run acks nothing; then a writer whose clean run acks but
    // whose trials never get to (the clean run leaves a marker, trials
    // sleep until their crash, which falls inside the short clean run).
    let acks_only_clean = "[ -e ../clean-done ] && exec sleep 30; echo ack; touch ../clean-done";
    for (writer, no_acks, says) in [
        ("true", vec!["clean-run", "sigkill"], "the clean run (no crash) printed no ack line"),
        (acks_only_clean, vec!["sigkill"], "no trial of sigkill saw an ack line"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let o = run_shell(dir.path(), writer, "true", &["--crash", "sigkill", "--trials", "3"]);
        let (out, err) = (stdout(&o), stderr(&o));
        assert_eq!(o.status.code(), Some(2), "{writer}: {out}{err}");
        assert!(out.contains("NOTHING ACKNOWLEDGED: ") && out.contains(says), "{writer}: {out}");
        assert!(out.contains("NOT TESTED: 3 trials") && !out.contains("ok:"), "{writer}: {out}");
        assert!(err.contains("NOTHING ACKNOWLEDGED") && err.contains("--allow-no-acks"), "{writer}: {err}");
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
        assert_eq!(report["summary"]["verdict"], "nothing-acked");
        assert_eq!(report["summary"]["no_acks"], serde_json::json!(no_acks));

        let o = run_shell(dir.path(), writer, "true", &["--crash", "sigkill", "--trials", "3", "--allow-no-acks"]);
        assert_eq!(o.status.code(), Some(0), "{writer}: {}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).contains("ok: 3 trials") && stdout(&o).contains(says), "{}", stdout(&o));
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
        assert_eq!(report["summary"]["verdict"], "no-violation-found");
        assert_eq!(report["config"]["allow_no_acks"], true);
        assert_eq!(entries(dir.path()), ["report.json"]);
    }
}

/// The checker gets the `CRASHLAB_SEED` its directory's writer had, in the
/// clean run, every crash trial and every power-loss state.
#[test]
fn the_checker_gets_the_seed_of_its_writer() {
    let writer = r#"echo "seed $CRASHLAB_SEED"; sleep 0.05; echo "seed $CRASHLAB_SEED""#;
    // Exit 3 (a malfunction: exit 2) without a seed; a violation when an
    // ack names another seed.
    let checker = r#"test -n "$CRASHLAB_SEED" || exit 3; while read -r l; do test "$l" = "seed $CRASHLAB_SEED" || { echo "$l is not seed $CRASHLAB_SEED" >&2; exit 1; }; done < "$CRASHLAB_ACKS""#;
    let dir = tempfile::tempdir().unwrap();
    // Power-loss trials crash at the shell's own sync calls too, often
    // before its first ack: acks are not the point here.
    let extra = ["--crash", "sigkill,power-loss", "--trials", "4", "--allow-no-acks"];
    let o = run_shell(dir.path(), writer, checker, &extra);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    assert_eq!(report["clean_run"]["acks"], 2, "the clean run's checker saw acks to compare");
}

/// A writer killed by SIGBUS because its filesystem is full: the message
/// says how much room the filesystem has left, instead of only "died of
/// signal SIGBUS". The full filesystem is a 64 KiB tmpfs mounted in a
/// private mount namespace (`unshare -Urm`, also as root): the mount dies
/// with the namespace, on every path.
#[test]
fn a_writer_killed_by_sigbus_on_a_full_filesystem_is_told_so() {
    let mmap_writer = r#"exec python3 -c "import mmap, os
f = os.open('big', os.O_RDWR | os.O_CREAT)
os.ftruncate(f, 1 << 20)
m = mmap.mmap(f, 1 << 20)
m[:] = b'x' * (1 << 20)""#;
    let script = r#"mount -t tmpfs -o size=64k crashlab-full "$1" && shift && exec "$@""#;
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    std::fs::create_dir(&full).unwrap();
    let crashlab = env!("CARGO_BIN_EXE_crashlab");
    let f = full.to_str().unwrap();
    let o = Command::new("unshare")
        .args(["-Urm", "sh", "-c", script, "sh", f, crashlab, "run", "--shell", "--writer", mmap_writer])
        .args(["--checker", "true", "--crash", "sigkill", "--trials", "1", "--dir", f, "--out", "/dev/null"])
        .output()
        .expect("unshare runs");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}{}", stdout(&o));
    assert!(err.contains("died of signal SIGBUS (the filesystem of "), "{err}");
    assert!(
        err.contains(" has 0 bytes free: a store into a page the filesystem could not allocate raises SIGBUS"),
        "{err}"
    );
    assert_eq!(entries(&full), Vec::<String>::new(), "the mount was private: nothing of it is visible here");
}

/// Flags only the built-in scenarios have are refused on a --writer run,
/// naming the flag, before anything runs: accepted and silently ignored,
/// they would mislead a CI pipeline, which cannot notice. (--html, --junit,
/// --shard and --regressions have a meaning there: see tests/reports.)
#[test]
fn flags_a_writer_run_cannot_honour_are_refused_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let out = file("r.json");
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("--size", vec!["--size".into(), "8192".into()]),
        ("--txns", vec!["--txns".into(), "3".into()]),
        ("--model", vec!["--model".into(), "power-loss".into()]),
    ];
    for (flag, extra) in cases {
        let mut args = vec!["run", "--writer", "true", "--checker", "true", "--crash", "sigkill", "--out", &out];
        args.extend(extra.iter().map(String::as_str));
        let started = Instant::now();
        let o = crashlab(&args);
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("--writer <CMD>' cannot be used with") && err.contains(flag), "{flag}: {err}");
        assert!(started.elapsed() < Duration::from_secs(10), "{flag}: refused before anything ran");
        assert_eq!(entries(dir.path()), Vec::<String>::new(), "{flag}: nothing written");
    }
    // --points takes the values of its world, and says which.
    let refused: [(&[&str], &str); 4] = [
        (
            &["run", "--writer", "true", "--checker", "true", "--crash", "sigkill", "--points", "boundaries"],
            "--points boundaries is for built-in scenarios",
        ),
        (
            &["run", "--writer", "true", "--checker", "true", "--crash", "sigbus", "--points", "syscalls"],
            "--crash has none of them",
        ),
        (&["matrix", "--points", "syscalls"], "--points syscalls is for --writer"),
        (
            &["run", "--writer", "true", "--checker", "true", "--crash", "sigkill", "--points", "everywhere"],
            "`default` or `syscalls` with --writer",
        ),
    ];
    for (args, message) in refused {
        let mut args = args.to_vec();
        args.extend(["--out", &out]);
        let o = crashlab(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(message), "{args:?}: {}", stderr(&o));
        assert_eq!(entries(dir.path()), Vec::<String>::new(), "{args:?}: nothing written");
    }
    // The flags a writer run does use still work.
    let o = crashlab(&[
        "run",
        "--writer",
        "true",
        "--checker",
        "true",
        "--crash",
        "sigkill",
        "--trials",
        "2",
        "--allow-no-acks",
        "--jobs",
        "1",
        "--timeout",
        "5",
        "--seed",
        "4",
        "--out",
        &out,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn the_flags_of_your_own_program_are_refused_with_a_built_in_scenario() {
    // clap lets --writer's dependents through when --scenario (which
    // conflicts with --writer) is given: crashlab checks them itself.
    for (flag, value) in [("--allow-no-acks", None), ("--history", Some("off")), ("--checker", Some("true"))] {
        let mut args = vec!["run", "--scenario", "shared/no-sync", "--crash", "sigkill", "--trials", "1", flag];
        args.extend(value);
        let o = crashlab(&args);
        assert_eq!(o.status.code(), Some(2), "{flag}: {}", stderr(&o));
        assert!(stderr(&o).contains(&format!("{flag} applies to --writer")), "{flag}: {}", stderr(&o));
    }
    let o = crashlab(&[
        "replay",
        "--scenario",
        "shared/no-sync",
        "--crash",
        "sigkill",
        "--seed",
        "1",
        "--point",
        "none",
        "--fs-model",
        "ext4",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--writer"), "{}", stderr(&o));
}
