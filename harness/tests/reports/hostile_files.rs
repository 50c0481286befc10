//! Hostile inputs and outputs of the report commands: devices, directories
//! and junk as reports (bounded reads, exit 2, the cause printed once), and
//! outputs that fail or are planted symlinks (atomic writes: the previous
//! file survives, a link's target is untouched), and concurrent appends to
//! the regressions file.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::campaign::{campaign, crashlab, normalized, parse, regressed, text};
use crashlab::report::file::MAX_REPORT_BYTES;
use crashlab::report::regressions::{append_regressions, read_regressions, HEADER};

#[test]
fn a_directory_as_a_report_is_refused_and_the_cause_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    let o = crashlab(dir.path(), &["report", "show", "d"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("cannot read the report d"), "{err}");
    assert_eq!(err.to_lowercase().matches("directory").count(), 1, "the cause, exactly once: {err}");
    assert!(!err.contains("os error 21): "), "no repeated OS error: {err}");

    // The OS error of a missing file, too.
    let o = crashlab(dir.path(), &["report", "show", "missing.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(text(&o.stderr).matches("No such file or directory").count(), 1, "{}", text(&o.stderr));
}

#[test]
fn devices_and_junk_as_reports_exit_2_naming_the_file_and_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let previous = campaign().whole.as_bytes();
    std::fs::write(dir.path().join("prev.json"), previous).unwrap();
    std::fs::write(dir.path().join("now.json"), previous).unwrap();
    std::fs::write(dir.path().join("junk.json"), "{\"schema_version\": ").unwrap();
    let cap = format!("{} MiB", MAX_REPORT_BYTES >> 20);
    let cases: Vec<(Vec<&str>, Vec<&str>)> = vec![
        (vec!["report", "show", "/dev/zero"], vec!["/dev/zero", &cap]),
        (vec!["report", "html", "/dev/zero", "--out", "prev.json"], vec!["/dev/zero", &cap]),
        (vec!["report", "diff", "now.json", "/dev/zero"], vec!["/dev/zero", &cap]),
        (vec!["report", "merge", "/dev/zero", "--out", "prev.json"], vec!["/dev/zero", &cap]),
        (vec!["report", "show", "junk.json"], vec!["junk.json", "not JSON"]),
        (vec!["report", "merge", "now.json", "junk.json", "--out", "prev.json"], vec!["junk.json", "not JSON"]),
        (vec!["report", "html", "/nonexistent/r.json", "--out", "prev.json"], vec!["/nonexistent/r.json"]),
    ];
    for (args, needles) in cases {
        let o = crashlab(dir.path(), &args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        for n in needles {
            assert!(err.contains(n), "{args:?} should say {n}: {err}");
        }
        assert_eq!(std::fs::read(dir.path().join("prev.json")).unwrap(), previous, "{args:?} touched --out");
    }
}

/// `crashlab ARGS` in `cwd` unable to write more than `bytes` to any file
/// (RLIMIT_FSIZE, SIGXFSZ ignored: writes past it fail with EFBIG), as on
/// a full disk; for root too.
fn crashlab_with_file_limit(cwd: &Path, bytes: u64, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crashlab"));
    cmd.current_dir(cwd).args(args);
    // SAFETY: signal and setrlimit are async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let lim = libc::rlimit { rlim_cur: bytes, rlim_max: bytes };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.output().expect("crashlab runs")
}

#[test]
fn a_write_that_fails_midway_leaves_the_previous_output_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.json"), &campaign().whole).unwrap();
    let previous = b"<html>the previous page</html>\n";
    for flag_args in [&["report", "html", "r.json", "--out", "page.html"][..], &["report", "html", "r.json"]] {
        let out = flag_args.get(4).copied().unwrap_or("r.html");
        std::fs::write(dir.path().join(out), previous).unwrap();
        let o = crashlab_with_file_limit(dir.path(), 4096, flag_args);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag_args:?}: {err}");
        assert!(err.contains(&format!("--out {out}:")) && err.contains("unchanged"), "{err}");
        assert_eq!(std::fs::read(dir.path().join(out)).unwrap(), previous, "{flag_args:?}");
    }
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "a temporary file was left: {names:?}");
}

#[test]
fn a_planted_symlink_at_out_is_replaced_and_its_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.json"), &campaign().whole).unwrap();
    std::fs::write(dir.path().join("victim"), "precious\n").unwrap();
    std::os::unix::fs::symlink(dir.path().join("victim"), dir.path().join("page.html")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("victim"), dir.path().join("merged.json")).unwrap();
    for args in [
        &["report", "html", "r.json", "--out", "page.html"][..],
        &["report", "merge", "r.json", "--out", "merged.json"],
    ] {
        let o = crashlab(dir.path(), args);
        // merge refuses an unsharded report, html writes: either way the victim stays.
        assert_eq!(std::fs::read_to_string(dir.path().join("victim")).unwrap(), "precious\n", "{args:?}");
        if o.status.success() {
            let out = dir.path().join(args[4]);
            assert!(std::fs::symlink_metadata(&out).unwrap().is_file(), "{args:?}: the link itself is replaced");
        }
    }
    assert!(std::fs::read_to_string(dir.path().join("page.html")).unwrap().starts_with("<!DOCTYPE html>"));
}

#[test]
fn an_out_whose_parent_is_a_file_fails_naming_the_flag_and_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.json"), &campaign().whole).unwrap();
    std::fs::write(dir.path().join("file"), "x").unwrap();
    let o = crashlab(dir.path(), &["report", "html", "r.json", "--out", "file/page.html"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("--out file/page.html: cannot create its directory file"), "{err}");
    assert_eq!(err.matches("Not a directory").count() + err.matches("File exists").count(), 1, "{err}");
}

#[test]
fn concurrent_appends_to_the_regressions_file_lose_and_repeat_nothing() {
    let base = regressed(&normalized(&parse(&campaign().whole), "k", "fs"));
    // Eight reports, each failing at a point of its own.
    let reports: Vec<_> = (0..8)
        .map(|t| {
            let mut r = base.clone();
            for c in &mut r.cells {
                for f in &mut c.failures {
                    f.replay = f.replay.replace("--point before:3", &format!("--point before:{}", 3 + t));
                }
            }
            r
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("regressions.txt");
    std::thread::scope(|s| {
        for r in &reports {
            let path = &path;
            s.spawn(move || {
                for _ in 0..10 {
                    append_regressions(path, r).unwrap();
                }
            });
        }
    });
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(HEADER) && text.matches(HEADER).count() == 1, "{text}");
    let recorded = read_regressions(&path).unwrap();
    let mut lines: Vec<String> = recorded.iter().map(|r| r.replay.to_string()).collect();
    lines.sort();
    lines.dedup();
    assert_eq!(lines.len(), 8, "each failing trial exactly once: {text}");
    assert_eq!(recorded.len(), 8, "{text}");
}

#[test]
fn a_planted_symlink_at_the_regressions_file_is_refused() {
    let after = regressed(&normalized(&parse(&campaign().whole), "k", "fs"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("victim"), "precious\n").unwrap();
    let path = dir.path().join("regressions.txt");
    std::os::unix::fs::symlink(dir.path().join("victim"), &path).unwrap();
    let e = append_regressions(&path, &after).unwrap_err().to_string();
    assert!(e.contains("regressions.txt") && e.contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read_to_string(dir.path().join("victim")).unwrap(), "precious\n");
}
