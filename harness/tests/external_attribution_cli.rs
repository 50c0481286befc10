//! Source attribution in `crashlab run --writer --crash power-loss`: a C
//! writer (`oracle-programs/attributed_log.c`, compiled here with `-g`)
//! acks a record before the msync that makes its count durable; every
//! violation's JSON finding carries the ack's stack (the marked `write`
//! line) and the stack of the last msync that covered the header page (the
//! marked `msync` line), and the text summary says where.
//!
//! Needs ptrace and seccomp (the durability oracle), and gcc.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::path::{Path, PathBuf};
use std::process::Command;

#[path = "support/report_schema_validation.rs"]
mod report_schema_validation;

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle-programs/attributed_log.c")
}

fn marked_line(marker: &str) -> u64 {
    let text = std::fs::read_to_string(source()).unwrap();
    text.lines().position(|l| l.contains(marker)).unwrap_or_else(|| panic!("no {marker} in the source")) as u64 + 1
}

/// A checker: the header's count covers every ack.
const CHECKER: &str = r#"n=$(wc -l < "$CRASHLAB_ACKS"); c=$(head -c 16 data | tr -dc 0-9); [ "${c:-0}" -ge "$n" ] || { echo "count $c < $n acks" >&2; exit 1; }"#;

#[test]
fn a_power_loss_violation_names_the_ack_line_and_the_last_sync_of_its_page() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("attributed-log");
    let o = Command::new("cc")
        .args(["-g", "-O1", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&bin)
        .arg(source())
        .output()
        .expect("cc runs (gcc is required)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let checker = dir.path().join("checker.sh");
    std::fs::write(&checker, CHECKER).unwrap();
    let setup = dir.path().join("setup.sh");
    std::fs::write(&setup, "printf 'count=0' > data && truncate -s 64K data").unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let out = dir.path().join("report.json");
    let o = Command::new(env!("CARGO_BIN_EXE_crashlab"))
        .args(["run", "--writer"])
        .arg(&bin)
        .arg("--setup")
        .arg(format!("sh {}", setup.display()))
        .arg("--checker")
        .arg(format!("sh {}", checker.display()))
        .args(["--crash", "power-loss", "--trials", "16", "--seed", "3", "--dir"])
        .arg(&work)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("crashlab runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "a violation is found:\n{stdout}{stderr}");
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    report_schema_validation::assert_valid_external_report(&r, "the report of the attributed writer");
    let failures = r["power_loss"]["failures"].as_array().expect("power-loss failures");
    assert!(!failures.is_empty());
    let best = |frames: &serde_json::Value| -> (String, u64) {
        let f = frames
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["line"].is_u64())
            .unwrap_or_else(|| panic!("a frame with a line: {frames}"));
        (f["function"].as_str().unwrap_or_default().to_owned(), f["line"].as_u64().unwrap())
    };
    let (ack_line, header_sync) = (marked_line("ACK-LINE"), marked_line("HEADER-SYNC-LINE"));
    let mut synced_before = 0;
    for v in failures {
        let a = &v["finding"]["attribution"];
        assert!(a.is_object(), "every violation is attributed: {v}");
        assert_eq!(a["ack"]["line"], v["acks"], "the last ack: {v}");
        assert_eq!(best(&a["ack"]["frames"]), ("print_ack".to_owned(), ack_line), "{v}");
        let header_units = |u: &serde_json::Value| u.as_array().unwrap().iter().any(|n| n == "data page 0");
        match a["syncs"].as_array() {
            // The first record's count was never synced: its floor is the setup's.
            None => assert!(header_units(&a["never_synced"]), "{v}"),
            Some(syncs) => {
                assert_eq!(syncs.len(), 1, "{v}");
                assert!(header_units(&syncs[0]["units"]), "{v}");
                assert_eq!(syncs[0]["syscall"], "msync");
                assert_eq!(best(&syncs[0]["frames"]), ("sync_header".to_owned(), header_sync), "{v}");
                synced_before += 1;
            }
        }
        // The write history first saw the header changed (its count raised
        // since its last msync) at the next traced call: the ack's write.
        let changed = a["changed"].as_array().unwrap_or_else(|| panic!("where the header changed: {v}"));
        assert_eq!(changed.len(), 1, "{v}");
        assert!(header_units(&changed[0]["units"]), "{v}");
        assert_eq!(best(&changed[0]["frames"]), ("print_ack".to_owned(), ack_line), "{v}");
        let explanation = v["finding"]["explanation"].as_str().unwrap();
        assert!(explanation.contains(&format!("attributed_log.c:{ack_line} (print_ack)")), "{explanation}");
        assert!(explanation.contains("data page 0 changed after its last sync before the call at"), "{explanation}");
    }
    assert!(synced_before > 0, "some violation comes after an earlier header msync: {failures:?}");
    assert!(stdout.contains(&format!("was printed at {}:{ack_line} (print_ack)", source().display())), "{stdout}");
}
