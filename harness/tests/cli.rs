//! The `crashlab` binary end to end: exit codes, error messages, replay
//! lines, and cleanup when interrupted.

#[path = "support/processes.rs"]
mod processes;
use processes::{processes_mentioning, start_long_matrix};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

#[path = "support/report_schema_validation.rs"]
mod report_schema_validation;
use report_schema_validation::assert_valid_report;

fn crashlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crashlab")).args(args).output().expect("crashlab runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn matrix_writes_a_versioned_report_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nested/report.json");
    let o = crashlab(&[
        "matrix",
        "--scenario",
        "shared/no-sync,private/no-sync",
        "--crash",
        "abort,sigbus",
        "--seed",
        "3",
        "--out",
        out.to_str().unwrap(),
        "--dir",
        dir.path().to_str().unwrap(),
        "--size",
        "65536",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(stdout.contains("model process-crash"), "{stdout}");
    assert!(stdout.contains("shared/no-sync"), "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_valid_report(&report, "the report of `crashlab matrix`/`run`");
    assert_eq!(report["schema_version"], crashlab::report::survival::SCHEMA_VERSION);
    assert_eq!(report["seed"], 3);
    // 2 scenarios × (2 crash kinds under process-crash + power-loss + power-loss-torn).
    let cells = report["cells"].as_array().unwrap();
    assert_eq!(cells.len(), 8);
    let models: std::collections::BTreeSet<&str> = cells.iter().map(|c| c["model"].as_str().unwrap()).collect();
    assert_eq!(models, ["power-loss", "power-loss-torn", "process-crash"].into_iter().collect());
    assert!(report["environment"]["page_size"].as_u64().unwrap() >= 4096);
    // Only the report and nothing else is left in --dir.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("nested")]);
}

#[test]
fn a_printed_replay_line_reruns_the_trial() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = crashlab(&[
        "run",
        "--scenario",
        "shared/ms-sync-each",
        "--crash",
        "sigbus",
        "--seed",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_valid_report(&report, "the report of `crashlab matrix`/`run`");
    let line = report["cells"][0]["replay"].as_str().unwrap().to_owned();
    assert!(line.starts_with("crashlab replay "), "{line}");
    let args: Vec<&str> = line.split_whitespace().skip(1).collect();
    let o = crashlab(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("truncated to"), "{text}");
    assert!(text.contains("verdict (process-crash model): AsExpected"), "{text}");
}

#[test]
fn bad_input_exits_2_and_names_the_culprit() {
    let cases: &[(&[&str], &str)] = &[
        (&["matrix", "--points", "sometimes"], "--points"),
        (&["matrix", "--crash", "meteor"], "meteor"),
        (&["matrix", "--size", "1000"], "--size 1000"),
        (&["matrix", "--dir", "/nonexistent/crashlab"], "/nonexistent/crashlab"),
        (&["matrix", "--scenario", "shared/sometimes"], "sometimes"),
        (&["matrix", "--jobs", "0", "--crash", "clean"], "--jobs"),
        (&["run", "--scenario", "shared/no-sync"], "--crash"),
        (
            &["replay", "--scenario", "shared/no-sync", "--crash", "sigbus", "--point", "before:3", "--seed", "1"],
            "--point",
        ),
        (&["matrix", "--crash", "clean", "--out", "/proc/crashlab/report.json"], "/proc/crashlab"),
    ];
    for (args, culprit) in cases {
        let o = crashlab(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(culprit), "{args:?} should name {culprit}: {}", stderr(&o));
    }
}

#[test]
fn interrupting_a_run_leaves_no_process_and_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().to_str().unwrap().to_owned();
    let mut child = start_long_matrix(dir.path());
    // Wait until the workers are busy in their work directory.
    let start = Instant::now();
    while std::fs::read_dir(dir.path()).unwrap().count() == 0 || processes_mentioning(&marker).len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(20), "workers never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(processes_mentioning(&marker), Vec::<String>::new(), "workers or writers outlived the harness");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    assert!(!Path::new(&dir.path().join("r.json")).exists());
}

#[test]
fn a_power_loss_explanation_replays_to_the_exact_losing_state() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let o = crashlab(&[
        "run",
        "--scenario",
        "shared/ack-before-sync",
        "--crash",
        "sigkill",
        "--model",
        "power-loss",
        "--seed",
        "8",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(0), "acks at risk are the expected lesson here: {}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_valid_report(&report, "the report of `crashlab matrix`/`run`");
    let cell = &report["cells"][0];
    assert_eq!(cell["model"], "power-loss");
    let e = &cell["explanations"][0];
    let ack = e["ack"].as_u64().unwrap();
    let line = e["replay"].as_str().unwrap();
    assert!(line.contains("--state "), "{line}");
    let state_file = dir.path().join("state.bin");
    let mut args: Vec<&str> = line.split_whitespace().skip(1).collect();
    args.extend(["--write-state", state_file.to_str().unwrap()]);
    let o = crashlab(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    // The state section judges the explained ack lost (or torn), exactly.
    let verdict_line = text
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("state "))
        .find(|l| l.trim_start().starts_with(&format!("ack {ack} ")))
        .unwrap_or_else(|| panic!("no verdict for ack {ack} in the state section:\n{text}"));
    assert!(verdict_line.contains("Lost") || verdict_line.contains("Torn"), "{verdict_line}");
    assert_eq!(std::fs::metadata(&state_file).unwrap().len(), 256 * 1024);
}
