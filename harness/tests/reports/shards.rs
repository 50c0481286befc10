//! `--shard I/N` runs disjoint parts of a campaign; `report merge` joins
//! them into the report of the whole campaign.

use crate::campaign::{campaign, crashlab, deterministic_json, parse, text, SHARDS};
use crate::report_schema_validation::assert_valid_report;
use crashlab::report::survival::SurvivalReport;

#[test]
fn merged_shards_equal_one_unsharded_run_with_the_same_seed() {
    let c = campaign();
    let whole = parse(&c.whole);
    let shards: Vec<SurvivalReport> = c.shards.iter().map(|s| parse(s)).collect();
    // The shards split the trials: none empty, none overlapping, none missing.
    let trials: Vec<u64> = shards.iter().map(|s| s.summary.trials).collect();
    assert!(trials.iter().all(|&t| t > 0), "a shard ran nothing: {trials:?}");
    assert_eq!(trials.iter().sum::<u64>(), whole.summary.trials, "{trials:?}");

    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["report".to_string(), "merge".into()];
    // Reversed: merge takes the shards in any order.
    for (i, json) in c.shards.iter().enumerate().rev() {
        let name = format!("shard-{}.json", i + 1);
        std::fs::write(dir.path().join(&name), json).unwrap();
        args.push(name);
    }
    args.extend(["--out".into(), "merged/all.json".into()]);
    let o = crashlab(dir.path(), &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains(&format!("merged {SHARDS} shards")), "{}", text(&o.stdout));
    let merged_json = std::fs::read_to_string(dir.path().join("merged/all.json")).unwrap();
    let merged = parse(&merged_json);
    assert_eq!(merged.config.shard, None);
    let (m, w) = (deterministic_json(&merged), deterministic_json(&whole));
    if m != w {
        let diff: Vec<String> = m["cells"]
            .as_array()
            .unwrap()
            .iter()
            .zip(w["cells"].as_array().unwrap())
            .filter(|(a, b)| a != b)
            .map(|(a, b)| format!("merged {a}\n whole {b}"))
            .collect();
        panic!("the merged report differs from the unsharded one:\n{}", diff.join("\n"));
    }

    for (what, json) in [("the unsharded report", &c.whole), ("the merged report", &merged_json)]
        .into_iter()
        .chain(c.shards.iter().map(|s| ("a shard report", s)))
    {
        assert_valid_report(&serde_json::from_str(json).unwrap(), what);
    }
}

#[test]
fn campaign_side_outputs_are_written_and_the_progress_bar_stays_off_a_pipe() {
    let c = campaign();
    let whole = parse(&c.whole);
    // --html and --junit wrote their files (parent directories included).
    assert!(c.whole_html.starts_with("<!DOCTYPE html>"), "{}", &c.whole_html[..80.min(c.whole_html.len())]);
    assert_eq!(c.whole_html.matches("class=\"square").count(), whole.cells.len());
    let junit = quick_junit::Report::deserialize_from_str(&c.whole_junit).expect("valid JUnit XML");
    let cases: usize = junit.test_suites.iter().map(|s| s.test_cases.len()).sum();
    assert_eq!(cases, whole.cells.len(), "one test case per cell");
    // stderr was a pipe: no progress bar redraws in it.
    assert!(!c.whole_stderr.contains("ETA") && !c.whole_stderr.contains('\r'), "{}", c.whole_stderr);
}

#[test]
fn shards_that_do_not_belong_together_are_refused_with_the_reason() {
    let c = campaign();
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, json: &str| std::fs::write(dir.path().join(name), json).unwrap();
    write("1.json", &c.shards[0]);
    write("2.json", &c.shards[1]);
    write("3.json", &c.shards[2]);
    write("whole.json", &c.whole);
    write("other-seed.json", &c.shards[1].replace("\"seed\": 5", "\"seed\": 6"));
    let cases: &[(&[&str], &str)] = &[
        (&["1.json", "2.json"], "shard(s) 3 of 3 missing"),
        (&["1.json", "2.json", "3.json", "2.json"], "both shard 2/3"),
        (&["1.json", "whole.json"], "whole.json is not a shard report"),
        (&["1.json", "other-seed.json", "3.json"], "other-seed.json has seed 6"),
    ];
    for (files, message) in cases {
        let mut args = vec!["report", "merge"];
        args.extend_from_slice(files);
        args.extend(["--out", "m.json"]);
        let o = crashlab(dir.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{files:?}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains(message), "{files:?} should say `{message}`: {}", text(&o.stderr));
        assert!(!dir.path().join("m.json").exists(), "{files:?}: a refused merge wrote a report");
    }
}
