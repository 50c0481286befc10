//! The `power-loss-real` columns of the survival matrix (`crashlab matrix
//! --model ...,power-loss-real --real loopcut:ext4`): real power cuts at the
//! op boundaries of the simulated power-loss cells, each column labelled
//! with its backend, kernel and filesystem, a file the simulated model
//! forbids a loud model violation, and a column that cannot run here a
//! failed run (exit 2), never a silently missing column.
//!
//! The loopcut tests need root (loop devices, mount). Without it they print
//! why and fail, unless CRASHLAB_ALLOW_NO_ROOT=1 (then they pass vacuously,
//! saying so).

use std::path::Path;
use std::process::{Command, Output};

use crashlab::realcut::sys::leftovers;

#[path = "support/report_schema_validation.rs"]
mod report_schema_validation;
use report_schema_validation::assert_valid_report;

#[path = "support/root.rs"]
mod root;
use root::have_root;

/// A scratch directory on tmpfs when there is one (images are fastest there).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    tempfile::Builder::new().prefix("crashlab-realcols-test-").tempdir_in(base).unwrap()
}

fn text(o: &Output) -> String {
    format!("stdout:\n{}\nstderr:\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

struct Run {
    out: Output,
    report: Option<serde_json::Value>,
}

/// `crashlab matrix ARGS` with every output (report, page, regressions,
/// evidence, files and images) inside `work`.
fn matrix(work: &Path, args: &[&str]) -> Run {
    let dir = work.join("files");
    std::fs::create_dir_all(&dir).unwrap();
    let out_path = work.join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_crashlab"))
        .arg("matrix")
        .args(args)
        .arg("--out")
        .arg(&out_path)
        .arg("--html")
        .arg(work.join("report.html"))
        .arg("--regressions")
        .arg(work.join("regressions.txt"))
        .arg("--real-keep-dir")
        .arg(work.join("evidence"))
        .arg("--dir")
        .arg(&dir)
        .output()
        .expect("crashlab runs");
    let report = std::fs::read_to_string(&out_path).ok().map(|s| serde_json::from_str(&s).expect("report is JSON"));
    Run { out, report }
}

fn cell<'a>(report: &'a serde_json::Value, scenario: &str, model: &str) -> &'a serde_json::Value {
    report["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["scenario"] == scenario && c["model"] == model)
        .unwrap_or_else(|| panic!("no {scenario} [{model}] cell"))
}

fn n(v: &serde_json::Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

fn assert_nothing_left(dir: &Path) {
    assert_eq!(leftovers(dir), Vec::<String>::new(), "loop devices or mounts outlived the run");
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "left behind in {}: {left:?}", dir.display());
}

#[test]
fn the_loopcut_ext4_column_keeps_ms_synced_acks_loses_unsynced_ones_and_stays_inside_the_model() {
    if !have_root("the_loopcut_ext4_column_keeps_ms_synced_acks_loses_unsynced_ones_and_stays_inside_the_model") {
        return;
    }
    let work = scratch();
    let r = matrix(
        work.path(),
        &[
            "--scenario",
            "shared/ms-sync-each,shared/no-sync",
            // Without the default enospc column's power-loss cells.
            "--crash",
            "sigkill",
            "--model",
            "power-loss,power-loss-real",
            "--real",
            "loopcut:ext4",
            "--seed",
            "11",
            "--size",
            "65536",
        ],
    );
    assert_eq!(r.out.status.code(), Some(0), "{}", text(&r.out));
    let report = r.report.expect("a report");
    assert_valid_report(&report, "a matrix report with a real column");
    assert_eq!(report["schema_version"], crashlab::report::survival::SCHEMA_VERSION);
    assert_eq!(report["config"]["real"], serde_json::json!(["loopcut:ext4"]));
    assert_eq!(report["cells"].as_array().unwrap().len(), 4, "2 scenarios × (power-loss + one real column)");
    let kernel = report["environment"]["kernel_release"].as_str().unwrap();
    for scenario in ["shared/ms-sync-each", "shared/no-sync"] {
        let sim = cell(&report, scenario, "power-loss");
        let real = cell(&report, scenario, "power-loss-real");
        // The same op boundaries as the simulated cell.
        assert_eq!(real["crash"], "sigkill");
        assert_eq!(real["crash_points"], sim["crash_points"], "{real}");
        assert_eq!(real["trials"], sim["trials"], "{real}");
        // Labelled with its backend, kernel, filesystem and cut.
        let info = &real["real"];
        assert_eq!(info["backend"], "loopcut", "{real}");
        assert_eq!(info["fs"], "ext4");
        assert_eq!(info["cut"], "shutdown");
        assert_eq!(info["kernel_release"], kernel, "loopcut cuts on the host's kernel");
        assert!(info["disk"].as_str().unwrap().contains("no volatile write cache"), "{info}");
        // The simulated model held against every real cut.
        assert_eq!(info["soundness_violations"], 0, "{real}");
        assert_eq!(real["model_violations"], 0, "{real}");
        assert_eq!(info["judge_mismatches"], 0, "{real}");
        assert_eq!(real["verdict"], "as-expected", "{real}");
        assert_eq!(real["expectation"], sim["expectation"], "the expectation is power-loss's");
        assert!(real["replay"].as_str().unwrap().starts_with("crashlab soundness --backend loopcut --fs ext4"));
    }
    let sync = cell(&report, "shared/ms-sync-each", "power-loss-real");
    assert!(n(&sync["acked"]) > 0, "no MS_SYNCed ack was ever completed: {sync}");
    assert_eq!(sync["survived"], sync["acked"], "an MS_SYNCed ack was lost by a real power cut: {sync}");
    let nosync = cell(&report, "shared/no-sync", "power-loss-real");
    assert!(n(&nosync["acked"]) > 0, "{nosync}");
    // As measured on ext4: the shutdown cut drops pages never written back.
    assert!(n(&nosync["lost"]) > 0, "a real cut should lose unsynced stores: {nosync}");
    assert!(n(&nosync["real"]["trials_with_unsynced_pages"]) > 0, "{nosync}");

    let stdout = String::from_utf8_lossy(&r.out.stdout);
    assert!(stdout.contains("model power-loss (real: loopcut/ext4)"), "{stdout}");
    assert!(stdout.contains(&format!("backend loopcut, kernel {kernel}, ext4, cut shutdown")), "{stdout}");
    assert!(!stdout.contains("SOUNDNESS VIOLATION"), "{stdout}");
    let html = std::fs::read_to_string(work.path().join("report.html")).unwrap();
    assert!(html.contains("power-loss (real: loopcut/ext4)</th>"), "the heatmap has the real column");
    assert!(html.contains(&format!("kernel {kernel}<br>ext4 · shutdown")), "labelled with kernel and cut");
    assert!(!work.path().join("regressions.txt").exists(), "nothing failed, nothing recorded");
    assert_nothing_left(&work.path().join("files"));
}

#[test]
fn a_real_cut_the_model_forbids_fails_the_matrix_loudly() {
    if !have_root("a_real_cut_the_model_forbids_fails_the_matrix_loudly") {
        return;
    }
    let work = scratch();
    // The testing aid corrupts the file after each cut: bytes no op wrote.
    let r = matrix(
        work.path(),
        &[
            "--scenario",
            "shared/ms-sync-each",
            "--model",
            "power-loss-real",
            "--real",
            "loopcut:ext4",
            "--seed",
            "5",
            "--size",
            "65536",
            "--txns",
            "2",
            "--real-inject-fault",
        ],
    );
    assert_eq!(r.out.status.code(), Some(1), "{}", text(&r.out));
    let report = r.report.expect("a report");
    assert_valid_report(&report, "a matrix report with a soundness violation");
    let c = cell(&report, "shared/ms-sync-each", "power-loss-real");
    assert_eq!(c["verdict"], "model-violation");
    assert_eq!(c["real"]["soundness_violations"], c["trials"], "every cut was corrupted: {c}");
    let stdout = String::from_utf8_lossy(&r.out.stdout);
    assert!(
        stdout.contains("!!! MODEL SOUNDNESS VIOLATION under power-loss (real: loopcut/ext4)"),
        "the table says so: {stdout}"
    );
    assert!(stdout.contains("bytes no op wrote"), "{stdout}");
    let last = stdout.lines().last().unwrap();
    assert!(last.starts_with("FAILED:") && last.contains("MODEL SOUNDNESS VIOLATION(S) in real power cuts"), "{last}");
    let evidence = c["failures"][0]["details"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|d| d.as_str().unwrap().strip_prefix("evidence kept in "))
        .expect("the evidence is named")
        .to_owned();
    assert!(Path::new(&evidence).join("trial.json").is_file(), "{evidence}");
    assert!(c["failures"][0]["replay"].as_str().unwrap().starts_with("crashlab soundness --backend loopcut --fs ext4"));
    // Real cuts rerun with `crashlab soundness`, not replay: they stay out
    // of the regressions file the scenario tests replay.
    assert!(!work.path().join("regressions.txt").exists());
    assert_nothing_left(&work.path().join("files"));
}

#[test]
fn without_root_a_loopcut_column_fails_the_run_instead_of_vanishing() {
    if !have_root("without_root_a_loopcut_column_fails_the_run_instead_of_vanishing") {
        return;
    }
    // Run the CLI as `nobody`.
    use std::os::unix::process::CommandExt;
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_crashlab"))
        .args(["matrix", "--scenario", "shared/no-sync", "--model", "power-loss,power-loss-real"])
        .args(["--real", "loopcut:ext4", "--seed", "1", "--dir"])
        .arg(work.path())
        .arg("--out")
        .arg(work.path().join("r.json"))
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--real loopcut:ext4: unavailable: needs root"), "{err}");
    assert!(!work.path().join("r.json").exists(), "no report without the requested column");
}

#[test]
fn a_vm_column_without_its_guest_fails_and_says_how_to_set_it_up() {
    let empty = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_crashlab"))
        .args(["matrix", "--scenario", "shared/no-sync", "--model", "power-loss-real", "--real", "vm", "--vm-dir"])
        .arg(empty.path())
        .arg("--out")
        .arg(empty.path().join("r.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--real vm: unavailable"), "{err}");
    assert!(err.contains("scripts/vm-setup.sh") && err.contains(&*empty.path().to_string_lossy()), "{err}");
    assert!(!empty.path().join("r.json").exists());
}

#[test]
fn the_real_model_and_real_columns_come_together() {
    let run = |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_crashlab")).args(args).output().unwrap();
    let o = run(&["matrix", "--model", "power-loss,power-loss-real", "--out", "/dev/null"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--model power-loss-real needs --real"), "{}", text(&o));
    let o = run(&["matrix", "--real", "loopcut:xfs", "--out", "/dev/null"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("add power-loss-real to --model"), "{}", text(&o));
    let o = run(&["matrix", "--model", "power-loss-real", "--real", "loopcut", "--out", "/dev/null"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("name the filesystem"), "{}", text(&o));
    let o = run(&["run", "--scenario", "shared/no-sync", "--crash", "sigkill", "--model", "power-loss-real"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("`run` makes none"), "{}", text(&o));
    // The default models make no real cut (and need no root).
    let o = run(&["matrix", "--help"]);
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(help.contains("[default: process-crash,power-loss,power-loss-torn]"), "{help}");
}
