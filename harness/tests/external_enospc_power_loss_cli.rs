//! `crashlab run --crash enospc,power-loss` end to end through the binary:
//! a writer that stops at the first write the full disk refuses but never
//! syncs anything passes plain `enospc` (a process crash keeps the page
//! cache) and fails here, exit 1: a power loss at its end may leave any
//! unsynced file or entry at its floor (nothing), losing an acked record.
//! The summary, the page and the JUnit show it; the replay line of the
//! failing state, run as printed, fails again in that state.

use std::path::Path;
use std::process::{Command, Output};

#[path = "support/report_schema_validation.rs"]
mod report_schema_validation;

/// One page per record, 64 records, stopping at the first failed write
/// (exit 1); nothing is synced.
const CHECKED_WRITER: &str = r#"i=0; while [ $i -lt 64 ]; do dd if=/dev/zero of=f$i bs=4096 count=1 2>/dev/null || exit 1; echo "rec $i"; i=$((i+1)); done"#;
/// Every acked record's file is whole.
const CHECKER: &str = r#"while read -r _ i; do [ "$(stat -c %s f$i 2>/dev/null)" = 4096 ] || { echo "rec $i is missing" >&2; exit 1; }; done < "$CRASHLAB_ACKS""#;

fn run(dir: &Path, crash: &str) -> Output {
    let d = dir.to_str().unwrap();
    let (out, html, junit) = (format!("{d}/report.json"), format!("{d}/page.html"), format!("{d}/junit.xml"));
    Command::new(env!("CARGO_BIN_EXE_crashlab"))
        .args(["run", "--shell", "--writer", CHECKED_WRITER, "--checker", CHECKER, "--crash", crash])
        .args(["--trials", "1", "--seed", "3", "--dir", d, "--out", &out, "--html", &html, "--junit", &junit])
        .output()
        .expect("crashlab runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn an_unsynced_writer_passes_enospc_fails_enospc_power_loss_and_its_state_replays() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), "enospc");
    assert_eq!(o.status.code(), Some(0), "{}\n{}", text(&o.stdout), text(&o.stderr));

    let o = run(dir.path(), "enospc,power-loss");
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(out.contains("VIOLATION enospc trial 0: at a power loss after the full disk: rec "), "{out}");
    assert!(out.contains("at a power loss after the full disk: 1 trial(s) judged"), "{out}");
    assert!(err.contains("--crash enospc,power-loss --seed 3 --trial 0"), "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap()).unwrap();
    report_schema_validation::assert_valid_external_report(&report, "an enospc,power-loss run");
    assert_eq!(report["schema_version"], "1.9");
    let section = &report["crashes"][0];
    assert_eq!((section["crash"].as_str(), section["violations"].as_u64()), (Some("enospc"), Some(1)));
    assert_eq!(section["enospc"]["power_loss"]["judged"], 1);
    assert_eq!(section["enospc"]["power_loss"]["violations"], 1);
    let pl = &section["trials_detail"][0]["delivery"]["power_loss"];
    assert_eq!(pl["judged"], "states");
    let html = std::fs::read_to_string(dir.path().join("page.html")).unwrap();
    assert!(html.contains("at a power loss after the full disk"), "{html}");
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(junit.contains("at a power loss after the full disk"), "{junit}");

    // The failing state's replay line, run as printed (in a directory of
    // its own), re-creates the trial and fails in that state.
    let line = pl["replay"].as_str().expect("a replay line");
    let state = pl["finding"]["state"].as_str().unwrap();
    assert!(line.contains(&format!("--state {}", shell_words::quote(state))), "{line}");
    let words = shell_words::split(line).unwrap();
    assert_eq!(words[..2], ["crashlab", "replay"]);
    let replay_dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_crashlab"))
        .args(&words[1..])
        .args(["--dir", replay_dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{out}\n{err}");
    assert!(
        out.contains(&format!("at a power loss at the writer's end, state {state}: checker failed: rec ")),
        "{out}"
    );
    assert!(out.contains("checker: VIOLATION: at a power loss after the full disk"), "{out}");
}
