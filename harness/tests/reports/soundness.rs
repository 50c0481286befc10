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

/// `sample()` as a 1.4 report with a namespace section: ext4 cut
/// `rename-over`, its rename lost in every cut; with `violation`, one cut
/// left a directory the model forbids. Checked against the schema.
fn with_namespace(violation: bool) -> serde_json::Value {
    let mut r = serde_json::to_value(sample()).unwrap();
    let details = if violation {
        serde_json::json!([{
            "workload": "rename-over",
            "point": "before:5",
            "detail": "the post-cut directory holds state.tmp and state, which no state of the model has",
            "rerun": "crashlab soundness --backend loopcut --fs ext4 --workloads namespace --ns-workload rename-over --point before:5 --ns-cuts 1"
        }])
    } else {
        serde_json::json!([])
    };
    let v = u64::from(violation);
    r["schema_version"] = "1.4".into();
    r["namespace"] = serde_json::json!({
        "config": { "workloads": ["rename-over"], "cuts_after_last_step": 4 },
        "model": "posix",
        "filesystems": [{
            "fs": "ext4", "cut": "shutdown", "cut_method": "FS_IOC_SHUTDOWN", "cuts": 9, "violations": v,
            "workloads": [{
                "workload": "rename-over", "cuts": 9, "cuts_after_last_step": 4, "violations": v,
                "cuts_reusing_an_inode": 0,
                "units": [{
                    "operation": "rename(\"state.tmp\" -> \"state\") at step 5", "kind": "rename",
                    "rule": "the directory was not fsynced after it", "context": "nothing synced after it",
                    "cuts": 4 - v, "kept": 0, "lost": 4 - v, "undetermined": 0
                }]
            }],
            "operations": [{ "kind": "rename", "context": "nothing synced after it", "cuts": 4 - v, "kept": 0,
                             "lost": 4 - v, "undetermined": 0 }],
            "violation_details": details,
            "mean_cut_ms": 10.5
        }]
    });
    r["summary"]["namespace"] = serde_json::json!({ "cuts": 9, "violations": v });
    r["summary"]["sound"] = (!violation).into();
    crate::report_schema_validation::assert_valid_soundness_report(&r, "a soundness report with a namespace section");
    r
}

/// The nightly compares a new report with the previous night's, which may
/// predate the namespace section (schema ≤ 1.3): that still diffs, and a
/// namespace violation in the new one is a regression (exit 1).
#[test]
fn report_diff_of_an_old_report_and_one_with_a_namespace_section_flags_only_a_namespace_violation() {
    let dir = tempfile::tempdir().unwrap();
    for (name, violation) in [("sound.json", false), ("unsound.json", true)] {
        std::fs::write(dir.path().join(name), serde_json::to_string_pretty(&with_namespace(violation)).unwrap())
            .unwrap();
    }
    let o = crashlab(dir.path(), &["report", "diff", SAMPLE, "sound.json"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(text(&o.stdout).contains("new namespace section: 9 cuts, 0 violations"), "{}", text(&o.stdout));
    let o = crashlab(dir.path(), &["report", "diff", "sound.json", SAMPLE]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    let o = crashlab(dir.path(), &["report", "diff", SAMPLE, "unsound.json"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", text(&o.stdout), text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("REGRESSION: 1 namespace violation(s) in rename-over")
            && out.contains("--ns-workload rename-over --point before:5"),
        "{out}"
    );
    // The page of the same report lists it.
    let o = crashlab(dir.path(), &["report", "html", "unsound.json", "--out", "u.html"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let page = std::fs::read_to_string(dir.path().join("u.html")).unwrap();
    assert!(
        page.contains("Namespace operations") && page.contains("--ns-workload rename-over --point before:5"),
        "{page}"
    );
}
