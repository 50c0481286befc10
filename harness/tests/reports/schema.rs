//! The committed JSON Schemas are the ones the types generate, and the
//! committed sample reports match them.

use crate::campaign::{crashlab, text};
use crate::report_schema_validation::{
    assert_valid_external_report, assert_valid_report, assert_valid_soundness_report,
};
use crashlab::report::schema::ReportKind;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

#[test]
fn the_committed_schemas_are_what_the_report_types_generate() {
    for kind in ReportKind::ALL {
        let path = kind.committed_path();
        let regenerate = kind.regenerate_command();
        let committed = std::fs::read_to_string(format!("{ROOT}/{path}"))
            .unwrap_or_else(|e| panic!("cannot read {path} ({e}); create it with `{regenerate}`"));
        let generated = kind.schema_text();
        if committed != generated {
            let line = committed.lines().zip(generated.lines()).position(|(a, b)| a != b).map_or_else(
                || {
                    format!(
                        "lengths differ: {} lines committed, {} generated",
                        committed.lines().count(),
                        generated.lines().count()
                    )
                },
                |i| format!("first difference at line {}", i + 1),
            );
            panic!("{path} is stale: the report types changed ({line}). Regenerate it from the repository root:\n  {regenerate}");
        }
        // The command the message names prints exactly that text.
        let args: Vec<&str> =
            regenerate.split(" -- ").nth(1).unwrap().split(" > ").next().unwrap().split(' ').collect();
        let o = crashlab(std::path::Path::new(ROOT), &args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", text(&o.stderr));
        assert_eq!(text(&o.stdout), generated, "{args:?}");
    }
    // Without a kind: the survival report's, as before the soundness schema.
    let o = crashlab(std::path::Path::new(ROOT), &["report", "schema"]);
    assert_eq!(text(&o.stdout), ReportKind::Survival.schema_text());
}

/// The samples are what a reader sees first: they must match the formats
/// they illustrate. Which schema is picked from the file name.
#[test]
fn the_committed_samples_match_their_schemas() {
    let dir = format!("{ROOT}/reports/samples");
    let mut checked = (0, 0, 0);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !name.ends_with(".json") {
            continue;
        }
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        if name.starts_with("soundness-") {
            assert_valid_soundness_report(&report, &name);
            checked.1 += 1;
        } else if name.starts_with("survival-") {
            assert_valid_report(&report, &name);
            checked.0 += 1;
        } else if name.starts_with("external-") {
            assert_valid_external_report(&report, &name);
            // And crashlab reads it back as an external report.
            let r = crashlab::report::read::read_any_report(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            let crashlab::report::read::AnyReport::External(r) = r else {
                panic!("{name} reads as {} report", r.kind_text())
            };
            // Its page, when committed beside it, is what `report html` renders.
            let page = path.with_extension("html");
            if page.exists() {
                let rendered = crashlab::report::external_html::render_external_html(&r);
                assert!(
                    std::fs::read_to_string(&page).unwrap() == rendered,
                    "{} is stale: regenerate it with `crashlab report html reports/samples/{name}`",
                    page.display()
                );
            }
            checked.2 += 1;
        } else {
            panic!("reports/samples/{name}: name it survival-*, soundness-* or external-* so its schema is known");
        }
    }
    assert!(
        checked.0 >= 2 && checked.1 >= 2 && checked.2 >= 1,
        "samples checked (survival, soundness, external): {checked:?}"
    );
}

/// The soundness schema is not vacuous: it refuses a report with a field of
/// the wrong type, a missing field, and a malformed workload name.
#[test]
fn the_soundness_schema_refuses_malformed_reports() {
    let text = std::fs::read_to_string(format!("{ROOT}/reports/samples/soundness-loopcut.json")).unwrap();
    let good: serde_json::Value = serde_json::from_str(&text).unwrap();
    let schema = ReportKind::Soundness.schema();
    let v = jsonschema::validator_for(&schema).unwrap();
    assert!(v.is_valid(&good));
    let mut wrong_type = good.clone();
    wrong_type["summary"]["sound"] = "yes".into();
    let mut missing = good.clone();
    missing["filesystems"][0].as_object_mut().unwrap().remove("kept_more");
    let mut bad_workload = good.clone();
    bad_workload["filesystems"][0]["scenarios"][0]["scenario"] = "shared/sometimes".into();
    for (what, bad) in
        [("a string for a bool", wrong_type), ("no kept_more", missing), ("a bad workload", bad_workload)]
    {
        assert!(!v.is_valid(&bad), "the soundness schema accepts {what}");
    }
}
