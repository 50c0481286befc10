//! Simulated power loss on real crashes of the built-in writers: the
//! writer is SIGKILLed at every op boundary and the model judges every state
//! a power loss at that instant may leave. Expected outcomes come from
//! msync(2)/fsync(2): only a completed MS_SYNC or fsync makes data durable;
//! MS_ASYNC schedules nothing on Linux since 2.6.19.

mod common;

use crashlab::crash::PointSelection;
use crashlab::expectation::PersistenceModel;
use crashlab::report::survival::{CellReport, Verdict};
use crashlab::spec::{MappingKind, SyncPolicy};
use crashlab::vocab::CrashKind;
use serde_json::json;

fn power_loss_report(seed: u64) -> crashlab::report::survival::SurvivalReport {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(seed, PointSelection::Boundaries, vec![CrashKind::Sigkill]);
    config.models = vec![PersistenceModel::PowerLoss, PersistenceModel::PowerLossTorn];
    common::run(&config, dir.path())
}

fn ctx(c: &CellReport) -> String {
    format!("{} [{}] replay: {}", c.scenario, c.model, c.replay)
}

#[test]
fn only_syncs_that_completed_before_the_ack_keep_acks_through_power_loss() {
    let report = power_loss_report(21);
    assert_eq!(report.cells.len(), 12 * 2);
    for c in &report.cells {
        assert!(c.model.is_power_loss());
        assert_eq!(c.model_violations, 0, "{}: {:#?}", ctx(c), c.failures);
        assert!(c.acked > 0, "{}", ctx(c));
        assert!(c.states_checked.unwrap() >= c.trials, "{}: at least one state per trial", ctx(c));
        match (c.mapping, c.sync_policy) {
            (MappingKind::Private, _) => {
                assert_eq!(c.survived, 0, "{}: MAP_PRIVATE stores are never carried to the file", ctx(c));
            }
            (MappingKind::Shared, p) if p.syncs_before_ack() => {
                assert_eq!(c.survived, c.acked, "{}: MS_SYNC/fsync completed before every ack", ctx(c));
                assert!(c.explanations.is_empty(), "{}", ctx(c));
            }
            (MappingKind::Shared, SyncPolicy::None | SyncPolicy::MsAsyncEach) => {
                // Nothing ever becomes durable: no ack is guaranteed, and each
                // one is shown lost on an exact state.
                assert_eq!(c.survived, 0, "{}: MS_ASYNC and no sync guarantee nothing", ctx(c));
                assert!(!c.explanations.is_empty(), "{}", ctx(c));
            }
            (MappingKind::Shared, SyncPolicy::AckBeforeSync) => {
                // The ack just before its msync is at risk; once the msync
                // returns, it is durable. So some acks are at risk, not all.
                assert!(c.lost + c.torn > 0, "{}: acking before msync must lose something", ctx(c));
                assert!(c.survived > 0, "{}: the msync after each ack does make it durable", ctx(c));
                let e = &c.explanations[0];
                assert!(e.text.contains("lost") || e.text.contains("torn"), "{}", e.text);
                assert!(e.replay.contains("--state "), "{}", e.replay);
            }
            other => panic!("unexpected row {other:?}"),
        }
        assert_eq!(c.verdict, Verdict::AsExpected, "{}: {:?}", ctx(c), c.verdict_reason);
    }
}

#[test]
fn power_loss_counts_snapshot() {
    let report = power_loss_report(22);
    let cells: Vec<_> = report
        .cells
        .iter()
        .map(|c| {
            json!({
                "cell": format!("{} {} [{}]", c.scenario, c.crash, c.model),
                "trials": c.trials,
                "acked": c.acked,
                "guaranteed": c.survived,
                "may_lose": c.lost,
                "may_tear": c.torn,
                "states_checked": c.states_checked,
                "exhaustive_trials": c.exhaustive_trials,
                "verdict": c.verdict,
                "first_explanation": c.explanations.first().map(|e| (&e.text, &e.replay)),
            })
        })
        .collect();
    insta::assert_json_snapshot!(cells);
}
