//! `crashlab report show|diff|merge|html` on soundness reports (`crashlab
//! soundness`), a report kind like the others: told from its JSON, shown,
//! compared filesystem by filesystem, rendered, and refused by `merge`,
//! which joins shards, with the reason (soundness campaigns have none).

use crate::campaign::{crashlab, text};
use crashlab::realcut::report::SoundnessReport;
use crashlab::report::file::write_json_report;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../reports/samples/soundness-loopcut.json");

fn sample() -> SoundnessReport {
    serde_json::from_str(&std::fs::read_to_string(SAMPLE).unwrap()).unwrap()
}

#[test]
fn report_show_prints_a_soundness_report_human_summary() {
    let dir = tempfile::tempdir().unwrap();
    let o = crashlab(dir.path(), &["report", "show", SAMPLE]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), sample().human_summary());
}

#[test]
fn report_diff_exits_1_when_a_sound_filesystem_turns_unsound_and_0_on_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let o = crashlab(dir.path(), &["report", "diff", SAMPLE, SAMPLE]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(text(&o.stdout).contains("result: 0 regression(s)"), "{}", text(&o.stdout));
    let mut worse = sample();
    worse.filesystems[0].violations = 1;
    worse.summary.violations = 1;
    worse.summary.sound = false;
    write_json_report("--out", &dir.path().join("worse.json"), &worse).unwrap();
    let o = crashlab(dir.path(), &["report", "diff", SAMPLE, "worse.json"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", text(&o.stdout), text(&o.stderr));
    let fs = &worse.filesystems[0].fs;
    assert!(text(&o.stdout).contains(&format!("changed {fs} (")), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("REGRESSION"), "{}", text(&o.stdout));
    // Kinds do not mix.
    let survival = concat!(env!("CARGO_MANIFEST_DIR"), "/../reports/samples/survival-matrix-tmpfs.json");
    let o = crashlab(dir.path(), &["report", "diff", SAMPLE, survival]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("a soundness report"), "{}", text(&o.stderr));
}

#[test]
fn report_html_renders_a_soundness_report_and_merge_refuses_it_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let o = crashlab(dir.path(), &["report", "html", SAMPLE, "--out", "s.html"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let page = std::fs::read_to_string(dir.path().join("s.html")).unwrap();
    assert!(page.contains("crashlab soundness") && page.contains("Per filesystem"), "{page}");
    let o = crashlab(dir.path(), &["report", "merge", SAMPLE, SAMPLE, "--out", "m.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("has no --shard"), "{}", text(&o.stderr));
    assert!(!dir.path().join("m.json").exists(), "nothing written");
}
