//! `crashlab report show|diff|html`, the JUnit and HTML renderings of a
//! report with a failure, the version check of readers, and the
//! regressions file.

use crate::campaign::{campaign, crashlab, normalized, parse, regressed, text};
use crate::report_schema_validation::assert_valid;
use crashlab::report::diff::ReportDiff;
use crashlab::report::file::write_json_report;
use crashlab::report::html::render_html;
use crashlab::report::junit::junit_xml;
use crashlab::report::regressions::{append_regressions, read_regressions, HEADER};
use crashlab::report::survival::SurvivalReport;
use crashlab::vocab::CrashKind;

/// The campaign without its SIGBUS cells, whose in-flight tear column is not
/// deterministic, and with fixed stand-ins for machine and time.
fn summary_report() -> SurvivalReport {
    let mut r = normalized(&parse(&campaign().whole), "6.1.0-test", "ext4");
    r.cells.retain(|c| c.crash != CrashKind::Sigbus);
    r.summary = crashlab::report::survival::Summary::of(&r.cells);
    r
}

#[test]
fn report_show_prints_the_human_summary() {
    let report = summary_report();
    assert_valid(&report, "the summary report");
    let summary = report.human_summary();
    insta::assert_snapshot!("human_summary", summary);
    let dir = tempfile::tempdir().unwrap();
    write_json_report("--out", &dir.path().join("r.json"), &report).unwrap();
    let o = crashlab(dir.path(), &["report", "show", "r.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), summary);
}

#[test]
fn report_diff_shows_changed_cells_and_exits_1_on_a_regression() {
    let before = normalized(&parse(&campaign().whole), "6.1.0-test", "ext4");
    let after = regressed(&before);
    assert_valid(&after, "the regressed report");
    let diff = ReportDiff::between("before.json", &before, "after.json", &after);
    assert_eq!(diff.regressions(), 1);
    insta::assert_snapshot!("diff_with_a_regression", diff.render());

    let dir = tempfile::tempdir().unwrap();
    write_json_report("--out", &dir.path().join("before.json"), &before).unwrap();
    write_json_report("--out", &dir.path().join("after.json"), &after).unwrap();
    let o = crashlab(dir.path(), &["report", "diff", "before.json", "after.json"]);
    assert_eq!(o.status.code(), Some(1), "a regression exits 1: {}", text(&o.stderr));
    assert_eq!(text(&o.stdout), diff.render());
    // Backwards it is an improvement, not a regression (the vanished cell
    // and the extra trial are changes, not regressions).
    let o = crashlab(dir.path(), &["report", "diff", "after.json", "before.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("improved shared/no-sync sigkill [process-crash]"), "{}", text(&o.stdout));
    let o = crashlab(dir.path(), &["report", "diff", "before.json", "before.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(
        text(&o.stdout).contains("(0 differ)") && text(&o.stdout).contains("0 regression(s)"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn readers_refuse_a_newer_major_schema_version_and_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let newer = campaign().whole.replacen("\"schema_version\": \"1.", "\"schema_version\": \"2.", 1);
    assert_ne!(newer, campaign().whole, "the report starts with schema_version 1.x");
    std::fs::write(dir.path().join("future.json"), newer).unwrap();
    std::fs::write(dir.path().join("now.json"), &campaign().whole).unwrap();
    for args in [
        &["report", "show", "future.json"][..],
        &["report", "diff", "now.json", "future.json"],
        &["report", "html", "future.json"],
    ] {
        let o = crashlab(dir.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stdout));
        let err = text(&o.stderr);
        assert!(
            err.contains("future.json") && err.contains("schema_version 2.") && err.contains("newer major"),
            "{args:?}: {err}"
        );
    }
    let o = crashlab(dir.path(), &["report", "show", "missing.json"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("missing.json"), "{}", text(&o.stderr));
}

#[test]
fn junit_marks_failing_cells_with_reason_details_and_replay() {
    let after = regressed(&normalized(&parse(&campaign().whole), "k", "fs"));
    let junit = quick_junit::Report::deserialize_from_str(&junit_xml(&after).unwrap()).expect("valid JUnit XML");
    let cases: Vec<&quick_junit::TestCase> = junit.test_suites.iter().flat_map(|s| &s.test_cases).collect();
    assert_eq!(cases.len(), after.cells.len());
    let failing: Vec<_> =
        cases.iter().filter(|c| !matches!(c.status, quick_junit::TestCaseStatus::Success { .. })).collect();
    assert_eq!(failing.len(), 1, "exactly the one broken cell fails");
    assert_eq!(failing[0].name.as_str(), "shared/no-sync sigkill [process-crash]");
    let quick_junit::TestCaseStatus::NonSuccess { message, ty, description, .. } = &failing[0].status else {
        unreachable!()
    };
    assert!(message.as_ref().unwrap().as_str().contains("model forbids"));
    assert_eq!(ty.as_ref().unwrap().as_str(), "model-violation");
    let description = description.as_ref().unwrap().as_str();
    assert!(description.contains("<script>alert"), "details travel verbatim (XML-escaped on the wire): {description}");
    assert!(description.contains("replay: crashlab replay --scenario shared/no-sync --crash sigkill --point before:3"));
}

#[test]
fn the_html_page_is_self_contained_and_escapes_report_text() {
    let after = regressed(&normalized(&parse(&campaign().whole), "k", "fs"));
    let html = render_html(&after);
    for external in ["http://", "https://", "<link", "<script", "src=", "@import", "url("] {
        assert!(!html.contains(external), "the page must need nothing outside itself, found `{external}`");
    }
    assert!(html.contains("holds version 7 &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more"));

    // `report html` writes FILE.html next to FILE by default.
    let dir = tempfile::tempdir().unwrap();
    write_json_report("--out", &dir.path().join("after.json"), &after).unwrap();
    let o = crashlab(dir.path(), &["report", "html", "after.json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(std::fs::read_to_string(dir.path().join("after.html")).unwrap(), html);
}

#[test]
fn failing_trials_are_appended_to_the_regressions_file_once() {
    let after = regressed(&normalized(&parse(&campaign().whole), "k", "fs"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("regressions.txt");
    assert_eq!(append_regressions(&path, &after).unwrap(), 1);
    assert_eq!(append_regressions(&path, &after).unwrap(), 0, "a line already recorded is not appended again");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with(HEADER), "{text}");
    let recorded = read_regressions(&path).unwrap();
    assert_eq!(recorded.len(), 1);
    let broken = after.cells.iter().find(|c| !c.failures.is_empty()).unwrap();
    assert_eq!(recorded[0].replay.to_string(), broken.failures[0].replay);
    // The comment before it says what failed, on one line.
    let comment = text.lines().nth(recorded[0].line - 2).unwrap();
    assert!(comment.starts_with("# 2023-11-14 shared/no-sync sigkill [process-crash] model violation"), "{comment}");
}

#[test]
fn bad_report_flags_exit_2_and_name_the_culprit() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("r.json");
    let out = out.to_str().unwrap();
    let one_cell =
        ["run", "--scenario", "shared/no-sync", "--crash", "clean", "--model", "process-crash", "--out", out];
    let with = |extra: &[&'static str]| one_cell.iter().copied().chain(extra.iter().copied()).collect::<Vec<&str>>();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (with(&["--shard", "5/4"]), "--shard"),
        (with(&["--shard", "1/0"]), "--shard"),
        (with(&["--html", "/proc/crashlab/r.html"]), "--html /proc/crashlab/r.html"),
        (with(&["--junit", "/proc/crashlab/r.xml"]), "--junit /proc/crashlab/r.xml"),
        (vec!["report", "merge", "--out", "m.json"], "<FILES>"),
        (vec!["report", "diff", "only-one.json"], "<AFTER>"),
        (vec!["report", "html", "/nonexistent/r.json"], "/nonexistent/r.json"),
    ];
    for (args, culprit) in cases {
        let o = crashlab(dir.path(), &args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(text(&o.stderr).contains(culprit), "{args:?} should name {culprit}: {}", text(&o.stderr));
    }
}
