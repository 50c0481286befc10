//! Validation of survival reports against the committed JSON Schema
//! (`reports/survival-report.schema.json`), shared by the test suites of both
//! crates (`#[path]`-included) so every report a test produces is checked.

use std::sync::OnceLock;

/// The committed schema, compiled once per test process.
fn validator() -> &'static jsonschema::Validator {
    static VALIDATOR: OnceLock<jsonschema::Validator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../reports/survival-report.schema.json");
        let text =
            std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read the committed schema {path}: {e}"));
        let schema: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("the committed schema {path} is not JSON: {e}"));
        jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("the committed schema {path} is invalid: {e}"))
    })
}

/// Panic, listing every violation with its JSON pointer, unless `report`
/// (described by `what`) matches the committed schema.
pub fn assert_valid_report(report: &serde_json::Value, what: &str) {
    let errors: Vec<String> =
        validator().iter_errors(report).map(|e| format!("  at {}: {e}", e.instance_path())).collect();
    assert!(
        errors.is_empty(),
        "{what} does not match reports/survival-report.schema.json (if the types changed on purpose, regenerate \
         it: cargo run -p crashlab -- report schema > reports/survival-report.schema.json):\n{}",
        errors.join("\n")
    );
}

/// As [`assert_valid_report`], for a typed report.
#[allow(dead_code)]
pub fn assert_valid(report: &crashlab::report::SurvivalReport, what: &str) {
    assert_valid_report(&serde_json::to_value(report).expect("reports serialize"), what);
}
