//! The external report (`run --writer`) as a first-class report: `--shard`,
//! `--html`, `--junit`, `--regressions` on a writer run, then `report
//! show|diff|merge|html` on what it wrote, every report checked against
//! the committed external schema.
//!
//! The checker here judges by `CRASHLAB_SEED` alone (a trial whose writer
//! seed ends in 2, 3 or 4 is a violation), so which trials fail is a
//! function of the run's seed, not of timing: merged shards must give the
//! very verdicts of the unsharded run.

use std::path::Path;
use std::process::Output;

use crate::campaign::{crashlab, text};
use crate::report_schema_validation::assert_valid_external_report;
use crashlab::report::external::EXTERNAL_NONDETERMINISTIC_FIELDS;

const WRITER: &str = r#"for i in 1 2 3 4 5 6; do echo "rec $i" >> log; echo "rec $i"; sleep 0.003; done"#;
/// Fails trials by their writer's seed: deterministic per trial.
const CHECKER: &str =
    r#"touch log; case $CRASHLAB_SEED in *[2-4]) echo "seed $CRASHLAB_SEED says no" >&2; exit 1;; esac; exit 0"#;
/// Fails more trials (every one the first fails, and those ending in 5-6).
const STRICTER_CHECKER: &str =
    r#"touch log; case $CRASHLAB_SEED in *[2-6]) echo "seed $CRASHLAB_SEED says no" >&2; exit 1;; esac; exit 0"#;
const TRIALS: u64 = 7;

fn run_writer(dir: &Path, checker: &str, out: &str, extra: &[&str]) -> Output {
    let out = dir.join(out);
    let mut args = vec![
        "run",
        "--shell",
        "--writer",
        WRITER,
        "--checker",
        checker,
        "--crash",
        "sigkill,sigabrt",
        "--trials",
        "7",
        "--seed",
        "7",
        "--jobs",
        "2",
        "--quiet",
        "--dir",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    crashlab(dir, &args)
}

fn read_json(path: &Path) -> serde_json::Value {
    let value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_valid_external_report(&value, &path.display().to_string());
    value
}

/// `value` with every field of [`EXTERNAL_NONDETERMINISTIC_FIELDS`] (JSON
/// pointers, `*` for any index) set to null.
fn redacted(mut value: serde_json::Value) -> serde_json::Value {
    fn redact(v: &mut serde_json::Value, parts: &[&str]) {
        let Some((first, rest)) = parts.split_first() else {
            *v = serde_json::Value::Null;
            return;
        };
        match (*first, v) {
            ("*", serde_json::Value::Array(items)) => items.iter_mut().for_each(|i| redact(i, rest)),
            (key, serde_json::Value::Object(map)) => {
                if let Some(child) = map.get_mut(key) {
                    redact(child, rest)
                }
            }
            _ => {}
        }
    }
    for pointer in EXTERNAL_NONDETERMINISTIC_FIELDS {
        let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
        redact(&mut value, &parts);
    }
    value
}

/// (kind, trial, writer seed, verdict) of every trial.
fn verdicts(r: &serde_json::Value) -> Vec<(String, u64, u64, String)> {
    let mut out = Vec::new();
    for s in r["crashes"].as_array().unwrap() {
        for t in s["trials_detail"].as_array().unwrap() {
            out.push((
                s["crash"].as_str().unwrap().to_owned(),
                t["trial"].as_u64().unwrap(),
                t["writer_seed"].as_u64().unwrap(),
                t["checker"]["verdict"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
}

fn expected_violation(writer_seed: u64) -> bool {
    matches!(writer_seed % 10, 2..=4)
}

#[test]
fn a_sharded_writer_run_writes_every_output_and_its_shards_merge_into_the_unsharded_report() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let whole = run_writer(d, CHECKER, "whole.json", &[]);
    let whole_json = read_json(&d.join("whole.json"));
    let expected: Vec<_> = verdicts(&whole_json);
    assert_eq!(expected.len() as u64, 2 * TRIALS, "every trial of both kinds");
    for (kind, trial, seed, verdict) in &expected {
        let bad = expected_violation(*seed);
        assert_eq!(verdict == "violation", bad, "{kind} trial {trial} (seed {seed}) judged {verdict}");
    }
    let failing = expected.iter().filter(|v| v.3 == "violation").count();
    assert!(failing > 0, "seed 7 has failing trials (the test needs some): {expected:?}");
    assert_eq!(whole.status.code(), Some(1), "violations exit 1: {}", text(&whole.stderr));

    for i in 1..=3 {
        let shard = format!("{i}/3");
        let (html, junit, regressions) =
            (d.join(format!("s{i}.html")), d.join(format!("s{i}.xml")), d.join("regressions.txt"));
        let o = run_writer(
            d,
            CHECKER,
            &format!("s{i}.json"),
            &[
                "--shard",
                &shard,
                "--html",
                html.to_str().unwrap(),
                "--junit",
                junit.to_str().unwrap(),
                "--regressions",
                regressions.to_str().unwrap(),
            ],
        );
        let code = o.status.code();
        assert!(code == Some(0) || code == Some(1), "shard {shard}: {:?} {}", code, text(&o.stderr));
        let r = read_json(&d.join(format!("s{i}.json")));
        assert_eq!(r["config"]["shard"], shard.as_str());
        // Shard::block(7) of 3: 0..2, 2..4, 4..7.
        let block: Vec<u64> = match i {
            1 => vec![0, 1],
            2 => vec![2, 3],
            _ => vec![4, 5, 6],
        };
        for s in r["crashes"].as_array().unwrap() {
            let trials: Vec<u64> =
                s["trials_detail"].as_array().unwrap().iter().map(|t| t["trial"].as_u64().unwrap()).collect();
            assert_eq!(trials, block, "shard {shard} runs a contiguous block of {}", s["crash"]);
        }
        let page = std::fs::read_to_string(&html).unwrap();
        assert!(page.starts_with("<!DOCTYPE html>") && page.contains("What survived, per crash kind"), "{page}");
        for v in verdicts(&r).iter().filter(|v| v.3 == "violation") {
            assert!(page.contains(&format!("<h3>{} trial {}</h3>", v.0, v.1)), "shard {shard}: {v:?} on the page");
        }
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert_eq!(xml.matches("<testcase ").count(), 3, "clean run, sigkill, abort: {xml}");
        let failing_kinds = r["crashes"].as_array().unwrap().iter().filter(|s| s["violations"] != 0).count();
        assert_eq!(xml.matches("<failure ").count(), failing_kinds, "{xml}");
    }
    let lines: Vec<String> = std::fs::read_to_string(d.join("regressions.txt"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(String::from)
        .collect();
    assert_eq!(lines.len(), failing, "one replay line per failing trial of the three shards: {lines:#?}");
    assert!(lines.iter().all(|l| l.starts_with("crashlab replay --writer ")), "{lines:#?}");

    let merged_path = d.join("merged.json");
    let o = crashlab(d, &["report", "merge", "s2.json", "s3.json", "s1.json", "--out", merged_path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains(&format!("merged 3 shards: {} trials, {failing} violations", 2 * TRIALS)));
    let merged = read_json(&merged_path);
    assert_eq!(verdicts(&merged), expected, "same trials, same writer seeds, same verdicts, in the same order");
    assert_eq!(merged["summary"]["violations"], whole_json["summary"]["violations"]);
    for (m, w) in merged["crashes"].as_array().unwrap().iter().zip(whole_json["crashes"].as_array().unwrap()) {
        for count in ["trials", "violations", "consistent"] {
            assert_eq!(m[count], w[count], "{} {count}", w["crash"]);
        }
    }
    assert_eq!(redacted(merged.clone()), redacted(whole_json.clone()), "only nondeterministic fields differ");

    // The merged report compares equal to the unsharded one ...
    let o = crashlab(d, &["report", "diff", "whole.json", "merged.json"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", text(&o.stdout), text(&o.stderr));
    assert!(text(&o.stdout).contains("0 regression(s), 0 fix(es)"), "{}", text(&o.stdout));
    // ... and a stricter checker's run regresses from it: exit 1, naming trials.
    run_writer(d, STRICTER_CHECKER, "stricter.json", &[]);
    let stricter = read_json(&d.join("stricter.json"));
    let newly_failing = verdicts(&stricter)
        .iter()
        .zip(&expected)
        .filter(|(after, before)| after.3 == "violation" && before.3 != "violation")
        .count();
    let o = crashlab(d, &["report", "diff", "whole.json", "stricter.json"]);
    let out = text(&o.stdout);
    if newly_failing > 0 {
        assert_eq!(o.status.code(), Some(1), "{out}");
        assert_eq!(out.matches("REGRESSION ").count(), newly_failing, "{out}");
        assert!(out.contains(": consistent → VIOLATION"), "{out}");
    } else {
        assert_eq!(o.status.code(), Some(0), "{out}");
    }
    // Backwards: the same trials are fixes, not regressions.
    let o = crashlab(d, &["report", "diff", "stricter.json", "whole.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert_eq!(text(&o.stdout).matches("fixed ").count(), newly_failing);

    let o = crashlab(d, &["report", "show", "s1.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let shown = text(&o.stdout);
    assert!(shown.contains("external run") && shown.contains("shard 1/3 only"), "{shown}");
    let o = crashlab(d, &["report", "html", "merged.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let page = std::fs::read_to_string(d.join("merged.html")).unwrap();
    assert_eq!(page.matches("<div class=\"failure\">").count(), failing, "every violation on the page");
}

#[test]
fn report_commands_refuse_mixed_kinds_and_incomplete_shards_and_read_both_spellings_of_abort() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    run_writer(d, CHECKER, "s1.json", &["--shard", "1/2"]);
    read_json(&d.join("s1.json"));
    let survival = concat!(env!("CARGO_MANIFEST_DIR"), "/../reports/samples/survival-matrix-tmpfs.json");
    let o = crashlab(d, &["report", "diff", survival, "s1.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("only reports of one kind compare"), "{}", text(&o.stderr));
    let o = crashlab(d, &["report", "merge", "s1.json", "--out", "m.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("shard(s) 2 of 2 missing"), "{}", text(&o.stderr));
    assert!(!d.join("m.json").exists(), "nothing written");
    let o = crashlab(d, &["report", "merge", "s1.json", survival, "--out", "m.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("s1.json is an external report"), "{}", text(&o.stderr));

    // One spelling is written (`abort`, as the built-in scenarios say); the
    // signal's name, what reports before the one crash kind wrote, still reads.
    let original = std::fs::read_to_string(d.join("s1.json")).unwrap();
    assert!(original.contains(r#""crash": "abort""#));
    std::fs::write(d.join("sigabrt.json"), original.replace(r#""crash": "abort""#, r#""crash": "sigabrt""#)).unwrap();
    let o = crashlab(d, &["report", "show", "sigabrt.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("\nabort "), "{}", text(&o.stdout));
}
