//! Validation of reports against the committed JSON Schemas
//! ([`ReportKind::committed_path`]), shared by the test suites of both
//! crates (`#[path]`-included) so every report a test produces is checked.

use std::sync::OnceLock;

use crashlab::report::schema::ReportKind;

/// Panic, listing every violation with its JSON pointer, unless `report`
/// (described by `what`) matches the committed schema of `kind`, compiled
/// once per test process.
fn assert_matches(kind: ReportKind, report: &serde_json::Value, what: &str) {
    static VALIDATORS: [OnceLock<jsonschema::Validator>; ReportKind::ALL.len()] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let i = ReportKind::ALL.iter().position(|&k| k == kind).expect("every kind is in ALL");
    let file = kind.committed_path();
    let validator = VALIDATORS[i].get_or_init(|| {
        let path = format!("{}/../{file}", env!("CARGO_MANIFEST_DIR"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read the committed schema {path}: {e}"));
        let schema: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("the committed schema {path} is not JSON: {e}"));
        jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("the committed schema {path} is invalid: {e}"))
    });
    let errors: Vec<String> =
        validator.iter_errors(report).map(|e| format!("  at {}: {e}", e.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "{what} does not match {file} (if the types changed on purpose, regenerate it: {}):\n{}",
        kind.regenerate_command(),
        errors.join("\n")
    );
}

/// A survival report (`crashlab matrix|run`) must match its committed schema.
#[allow(dead_code)]
pub fn assert_valid_report(report: &serde_json::Value, what: &str) {
    assert_matches(ReportKind::Survival, report, what);
}

/// As [`assert_valid_report`], for a typed report.
#[allow(dead_code)]
pub fn assert_valid(report: &crashlab::report::survival::SurvivalReport, what: &str) {
    assert_valid_report(&serde_json::to_value(report).expect("reports serialize"), what);
}

/// A soundness report (`crashlab soundness`) must match its committed schema.
#[allow(dead_code)]
pub fn assert_valid_soundness_report(report: &serde_json::Value, what: &str) {
    assert_matches(ReportKind::Soundness, report, what);
}

/// An external report (`crashlab run --writer`) must match its committed schema.
#[allow(dead_code)]
pub fn assert_valid_external_report(report: &serde_json::Value, what: &str) {
    assert_matches(ReportKind::External, report, what);
}
