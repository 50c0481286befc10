//! `crashlab run --crash enospc` end to end through the binary (its own
//! `__capacity` helper, no privilege asked): exit codes, the summary, the
//! page, the JUnit and the replay line of a writer that acks what a full
//! disk refused, and bad `--capacity` values refused with exit 2.

use std::path::Path;
use std::process::{Command, Output};

#[path = "support/report_schema_validation.rs"]
mod report_schema_validation;

/// One page per record, 64 records, each acked whether `dd` could write it
/// or not (`dd`'s failure is ignored).
const UNCHECKED_WRITER: &str = r#"i=0; while [ $i -lt 64 ]; do dd if=/dev/zero of=f$i bs=4096 count=1 2>/dev/null; echo "rec $i"; i=$((i+1)); done"#;
/// The same writer, stopping at the first failed write (exit 1).
const CHECKED_WRITER: &str = r#"i=0; while [ $i -lt 64 ]; do dd if=/dev/zero of=f$i bs=4096 count=1 2>/dev/null || exit 1; echo "rec $i"; i=$((i+1)); done"#;
/// Every acked record's file is whole.
const CHECKER: &str = r#"while read -r _ i; do [ "$(stat -c %s f$i)" = 4096 ] || { echo "rec $i is missing" >&2; exit 1; }; done < "$CRASHLAB_ACKS""#;

fn run(dir: &Path, writer: &str, extra: &[&str]) -> Output {
    let d = dir.to_str().unwrap();
    let (out, html, junit) = (format!("{d}/report.json"), format!("{d}/page.html"), format!("{d}/junit.xml"));
    let mut args = vec![
        "run",
        "--shell",
        "--writer",
        writer,
        "--checker",
        CHECKER,
        "--crash",
        "sigkill,enospc",
        "--trials",
        "2",
        "--seed",
        "3",
        "--dir",
        d,
        "--out",
        &out,
        "--html",
        &html,
        "--junit",
        &junit,
    ];
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_crashlab")).args(&args).output().expect("crashlab runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn a_writer_that_acks_writes_a_full_disk_refused_fails_with_exit_1_and_one_that_stops_passes() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), UNCHECKED_WRITER, &[]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(out.contains("VIOLATION enospc trial 0: rec 32 is missing"), "half of 64 pages: {out}");
    assert!(out.contains("enospc: 131072 bytes of tmpfs"), "{out}");
    // Traced (schema 1.8): the 32 pages of the tmpfs hold f0..f31, so the
    // first call to meet ENOSPC is dd's write of f32, after 32 acks.
    assert!(
        out.contains("first ENOSPC: write (call ") && out.contains("on f32 at offset 0, 4096 bytes, after 32 ack(s)"),
        "{out}"
    );
    assert!(!out.contains("not traced"), "{out}");
    assert!(err.contains("--crash enospc --seed 3 --trial 0") && err.contains("--capacity 131072"), "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    report_schema_validation::assert_valid_external_report(&report, "an enospc run");
    assert_eq!(report["config"]["capacity"], 131072);
    assert_eq!(report["crashes"][0]["violations"], 0, "no process crash makes a write fail");
    assert_eq!(report["crashes"][1]["enospc"]["exited_zero"], 2);
    assert_eq!(report["crashes"][1]["enospc"]["first_no_space"]["write"], 2);
    let html = std::fs::read_to_string(dir.path().join("page.html")).unwrap();
    assert!(html.contains("enospc: 131072 bytes of tmpfs") && html.contains("enospc trial 0"), "{html}");
    assert!(html.contains("first ENOSPC: write"), "the page shows the trace: {html}");
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(junit.contains("2 of 2 enospc trials violated the checker"), "{junit}");

    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), CHECKED_WRITER, &[]);
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}\n{}", text(&o.stderr));
    assert!(out.contains("exited with an error in 2"), "{out}");
}

#[test]
fn a_capacity_out_of_bounds_or_without_enospc_exits_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    for (bad, says) in [("0", "at least one page"), ("4097", "multiple of the page size"), ("2147483648", "maximum")] {
        let o = run(dir.path(), CHECKED_WRITER, &["--capacity", bad]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "--capacity {bad}: {err}");
        assert!(err.contains(&format!("--capacity {bad}")) && err.contains(says), "{err}");
    }
    let d = dir.path().to_str().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_crashlab"))
        .args(["run", "--shell", "--writer", "true", "--checker", "true", "--crash", "sigkill", "--capacity", "4096"])
        .args(["--dir", d, "--out", &format!("{d}/r.json")])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("only --crash enospc has a capacity"), "{}", text(&o.stderr));
}
