//! Validation of reports against the committed JSON Schemas
//! (`reports/survival-report.schema.json`, `reports/soundness-report.schema.json`),
//! shared by the test suites of both crates (`#[path]`-included) so every
//! report a test produces is checked.

use std::sync::OnceLock;

/// A committed schema, compiled once per test process.
fn compile(file: &str) -> jsonschema::Validator {
    let path = format!("{}/../reports/{file}", env!("CARGO_MANIFEST_DIR"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read the committed schema {path}: {e}"));
    let schema: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("the committed schema {path} is not JSON: {e}"));
    jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("the committed schema {path} is invalid: {e}"))
}

/// Panic, listing every violation with its JSON pointer, unless `report`
/// (described by `what`) matches the schema `reports/{file}`.
fn assert_matches(
    validator: &jsonschema::Validator,
    file: &str,
    regenerate: &str,
    report: &serde_json::Value,
    what: &str,
) {
    let errors: Vec<String> =
        validator.iter_errors(report).map(|e| format!("  at {}: {e}", e.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "{what} does not match reports/{file} (if the types changed on purpose, regenerate it: {regenerate}):\n{}",
        errors.join("\n")
    );
}

/// A survival report (`crashlab matrix|run`) must match its committed schema.
#[allow(dead_code)]
pub fn assert_valid_report(report: &serde_json::Value, what: &str) {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    let file = "survival-report.schema.json";
    let v = V.get_or_init(|| compile(file));
    assert_matches(
        v,
        file,
        "cargo run -p crashlab -- report schema > reports/survival-report.schema.json",
        report,
        what,
    );
}

/// As [`assert_valid_report`], for a typed report.
#[allow(dead_code)]
pub fn assert_valid(report: &crashlab::report::SurvivalReport, what: &str) {
    assert_valid_report(&serde_json::to_value(report).expect("reports serialize"), what);
}

/// A soundness report (`crashlab soundness`) must match its committed schema.
#[allow(dead_code)]
pub fn assert_valid_soundness_report(report: &serde_json::Value, what: &str) {
    static V: OnceLock<jsonschema::Validator> = OnceLock::new();
    let file = "soundness-report.schema.json";
    let v = V.get_or_init(|| compile(file));
    assert_matches(
        v,
        file,
        "cargo run -p crashlab -- report schema soundness > reports/soundness-report.schema.json",
        report,
        what,
    );
}
