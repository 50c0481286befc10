//! `crashlab run --writer ... --crash power-loss-real` through the CLI:
//! its flags refused where they do not apply (exit 2, naming the flag), its
//! outputs (JSON, page, JUnit), and its loop devices and mounts released
//! on every path: a run that ends, one whose writer hangs past `--timeout`,
//! and one interrupted by Ctrl-C.
//!
//! These tests need root (loop devices, mounts); without it they fail
//! unless `CRASHLAB_ALLOW_NO_ROOT=1` accepts not testing real cuts.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crashlab::realcut::sys::{leftovers, mounts_under};

#[path = "support/root.rs"]
mod root;
use root::have_root;

fn crashlab(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crashlab"))
        .args(args)
        .args(["--dir", dir.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

/// No loop device, mount or file left in `dir`.
fn assert_clean(dir: &Path, ctx: &str) {
    assert_eq!(leftovers(dir), Vec::<String>::new(), "{ctx}");
    assert_eq!(entries(dir), Vec::<String>::new(), "{ctx}");
}

#[test]
fn flags_of_real_cuts_are_refused_where_they_do_not_apply() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // (--crash, the flag and its value, what the refusal must say)
    let refusals = [
        ("sigkill", ["--real-fs", "xfs"], "--real-fs applies to --crash power-loss-real only"),
        ("power-loss-real", ["--real-fs", "zfs"], "unknown filesystem `zfs`"),
        ("power-loss-real", ["--history", "off"], "--history off with --crash power-loss-real"),
        ("power-loss", ["--writeback", "syncfs:300"], "--writeback syncfs:300 applies to --crash power-loss-real only"),
        // Below the documented 50 µs.
        ("power-loss-real", ["--writeback", "syncfs:1"], "--writeback"),
    ];
    for (crash, [flag, value], says) in refusals {
        let o = crashlab(d, &["run", "--writer", "true", "--checker", "true", "--crash", crash, flag, value]);
        assert_eq!(o.status.code(), Some(2), "{crash} {flag} {value}: {}", text(&o));
        assert!(text(&o).contains(says), "{crash} {flag} {value}: {}", text(&o));
    }
    let o = crashlab(d, &["matrix", "--crash", "power-loss-real", "--trials", "1"]);
    assert_eq!(o.status.code(), Some(2), "the matrix's real cuts are columns, not a crash kind: {}", text(&o));
}

#[test]
fn a_run_writes_its_section_page_and_junit_case_and_releases_its_filesystem() {
    if !have_root("a_run_writes_its_section") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap());
    let (out, html, junit) = (dir.path().join("r.json"), dir.path().join("r.html"), dir.path().join("r.xml"));
    // The writer creates, fsyncs and acks a file; the directory is never
    // fsynced, so a cut may lose its name (the checker accepts either).
    let writer = "echo data > f && sync f && echo ack";
    let o = crashlab(
        work.path(),
        &[
            "run",
            "--shell",
            "--writer",
            writer,
            "--checker",
            "true",
            "--crash",
            "power-loss-real",
            "--real-fs",
            "xfs",
            "--trials",
            "3",
            // Three cuts may all strike before the ack: not what this tests.
            "--allow-no-acks",
            "--seed",
            "4",
            "--out",
            out.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
            "--junit",
            junit.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("power-loss-real on xfs"), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(r["schema_version"], "1.9");
    assert_eq!(r["config"]["real_fs"], "xfs");
    let s = &r["power_loss_real"];
    assert_eq!((s["fs"].as_str(), s["cut"].as_str(), s["trials"].as_u64()), (Some("xfs"), Some("shutdown"), Some(3)));
    assert_eq!(s["model_violations"], 0, "{}", text(&o));
    assert!(std::fs::read_to_string(&html).unwrap().contains("<h2>Real power cuts (xfs, "));
    assert!(std::fs::read_to_string(&junit).unwrap().contains("<testcase name=\"power-loss-real\""));
    assert_clean(work.path(), &text(&o));
}

/// The dirty expiry sysctls, as text.
fn expiry() -> Vec<String> {
    ["/proc/sys/vm/dirty_expire_centisecs", "/proc/sys/vm/dirty_writeback_centisecs"]
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

#[test]
fn pressured_real_cuts_record_their_writeback_and_leave_the_kernel_as_they_found_it() {
    if !have_root("pressured_real_cuts") {
        return;
    }
    // A writer whose unsynced rewrites the pressure may push to the disk;
    // its checker accepts any content: what is asserted is the run's
    // bookkeeping, not what a cut kept (that is chance).
    let writer = "for i in 1 2 3 4 5 6; do echo $i > f; done; echo data > g && sync g && echo ack";
    for mode in ["syncfs:300", "expire:5"] {
        let before = expiry();
        let work = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap());
        let out = tempfile::tempdir().unwrap();
        let json = out.path().join("r.json");
        let o = crashlab(
            work.path(),
            &[
                "run",
                "--shell",
                "--writer",
                writer,
                "--checker",
                "true",
                "--crash",
                "power-loss-real",
                "--writeback",
                mode,
                "--trials",
                "2",
                "--allow-no-acks",
                "--seed",
                "3",
                "--out",
                json.to_str().unwrap(),
            ],
        );
        assert_eq!(o.status.code(), Some(0), "{mode}: {}", text(&o));
        let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        assert_eq!(r["config"]["writeback"], mode, "{}", text(&o));
        assert_eq!(r["power_loss_real"]["model_violations"], 0, "{}", text(&o));
        let rerun = r["power_loss_real"]["outcomes"][0]["rerun"].as_str().unwrap_or_default().to_owned();
        assert!(rerun.contains(&format!("--writeback {mode}")), "the rerun line re-creates the pressure: {rerun}");
        assert_eq!(expiry(), before, "{mode}: the dirty expiry is restored after the run");
        assert_clean(work.path(), &text(&o));
    }
}

#[test]
fn a_writer_hung_past_the_timeout_on_the_real_filesystem_leaves_no_mount() {
    if !have_root("a_writer_hung_past_the_timeout") {
        return;
    }
    let work = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap());
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("r.json");
    // Quick in the clean run (a tmpfs or the temp dir), hung on the ext4
    // filesystem of the real cuts (`stat -f` calls it ext2/ext3).
    let writer = r#"if [ "$(stat -f -c %T .)" = ext2/ext3 ]; then sleep 100; fi; echo ack"#;
    let o = crashlab(
        work.path(),
        &[
            "run",
            "--shell",
            "--writer",
            writer,
            "--checker",
            "true",
            "--crash",
            "power-loss-real",
            "--timeout",
            "1",
            "--out",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--timeout 1 s"), "{}", text(&o));
    assert!(text(&o).contains("on ext4"), "the error names the filesystem: {}", text(&o));
    assert_clean(work.path(), &text(&o));
}

#[test]
fn interrupting_real_cuts_releases_every_mount_and_loop_device() {
    if !have_root("interrupting_real_cuts") {
        return;
    }
    let work = tempfile::tempdir_in("/dev/shm").unwrap_or_else(|_| tempfile::tempdir().unwrap());
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("r.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_crashlab"))
        .args(["run", "--shell", "--writer", "echo start; sleep 0.1; echo end", "--checker", "true"])
        .args(["--crash", "power-loss-real", "--trials", "100000", "--seed", "1"])
        .args(["--dir", work.path().to_str().unwrap(), "--out", report.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the filesystem of the cuts is mounted, then for some cuts.
    let start = Instant::now();
    while mounts_under(work.path()).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(60), "the real cuts never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_clean(work.path(), &err);
}
