//! Snapshots of the deterministic part of the survival report: with crash
//! points at op boundaries only, every count is a function of the seed.
//! The semantic checks live in process_crash.rs; these catch any drift.

mod common;

use crashlab::crash::PointSelection;
use crashlab::report::survival::NONDETERMINISTIC_FIELDS;
use crashlab::vocab::CrashKind;
use serde_json::json;

#[test]
fn process_crash_matrix_counts() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::config(5, PointSelection::Boundaries, CrashKind::MATRIX.to_vec());
    let report = common::run(&config, dir.path());
    // In-flight tear counts depend on where memcpy was when SIGBUS hit, so
    // they stay out; everything else is deterministic.
    let cells: Vec<_> = report
        .cells
        .iter()
        .map(|c| {
            json!({
                "cell": format!("{} {} [{}]", c.scenario, c.crash, c.model),
                "trials": c.trials,
                "acked": c.acked,
                "survived": c.survived,
                "lost": c.lost,
                "torn": c.torn,
                "truncated": c.truncated,
                "sigbus_faults": c.sigbus_faults,
                "expectation": c.expectation,
                "verdict": c.verdict,
                "replay": c.replay,
            })
        })
        .collect();
    insta::assert_json_snapshot!(cells);
}

#[test]
fn whole_report_with_nondeterministic_fields_redacted() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(9, PointSelection::Boundaries, vec![CrashKind::Abort, CrashKind::Clean]);
    config.scenarios = vec!["shared/ack-before-sync".parse().unwrap(), "private/ms-sync-each".parse().unwrap()];
    let report = common::run(&config, dir.path());
    let mut settings = insta::Settings::clone_current();
    for pointer in NONDETERMINISTIC_FIELDS {
        // JSON pointer → insta selector: /run/dir → .run.dir
        settings.add_redaction(&pointer.replace('/', ".").replace(".*", "[]"), "[redacted]");
    }
    settings.bind(|| insta::assert_json_snapshot!(report));
}
