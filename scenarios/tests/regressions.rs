//! Every trial recorded in scenarios/regressions.txt, rerun on every commit
//! like proptest's regression seeds: each must now come out as the kernel's
//! semantics promise. A line that does not parse fails the test.

mod common;

use std::path::Path;

use crashlab::report::regressions::{parse_regressions, read_regressions, Regression};
use crashlab::report::survival::{CellReport, Verdict};
use crashlab::trial_replay::replay_trial;

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/regressions.txt");

/// Rerun every regression (from `file`, for messages); panic unless each
/// comes out as expected. Returns the one-trial cell of each.
fn replay_all(regressions: &[Regression], file: &str) -> Vec<CellReport> {
    let dir = tempfile::tempdir().unwrap();
    let pool = common::pool(dir.path(), 1);
    let cells: Vec<CellReport> = regressions
        .iter()
        .map(|r| {
            replay_trial(&r.replay, &pool)
                .unwrap_or_else(|e| panic!("{file}:{}: cannot replay `{}`: {e}", r.line, r.replay))
                .cell
        })
        .collect();
    let failed: Vec<String> = regressions
        .iter()
        .zip(&cells)
        .filter(|(_, c)| c.verdict != Verdict::AsExpected)
        .map(|(r, c)| {
            let reason = c.verdict_reason.as_deref().unwrap_or_default();
            format!("{file}:{}: {}\n  {:?}: {reason}\n  {:#?}", r.line, r.replay, c.verdict, c.failures)
        })
        .collect();
    assert!(failed.is_empty(), "recorded regressions still fail:\n{}", failed.join("\n"));
    cells
}

#[test]
fn recorded_regressions_now_come_out_as_expected() {
    let regressions = read_regressions(Path::new(FILE)).unwrap_or_else(|e| panic!("{e}"));
    replay_all(&regressions, "scenarios/regressions.txt");
}

/// The replay path itself, on lines of every model (the committed file is
/// usually empty): each runs a real trial and is judged.
#[test]
fn replayed_lines_run_real_trials_and_are_judged() {
    let text = "\
crashlab replay --scenario shared/ms-sync-each --crash sigkill --point before:5 --seed 3 --size 65536 --txns 4
crashlab replay --scenario private/no-sync --crash sigbus --point truncate:1@8192 --seed 3 --size 65536 --txns 4
crashlab replay --scenario shared/fsync-every-4 --crash sigkill --point before:6 --seed 3 --size 65536 --txns 4 --model power-loss-torn --tear 512
";
    let regressions = parse_regressions(text, Path::new("inline")).unwrap();
    assert_eq!(regressions.len(), 3);
    let cells = replay_all(&regressions, "inline");
    let acked: Vec<u64> = cells.iter().map(|c| c.acked).collect();
    assert!(acked[0] > 0 && acked[2] > 0, "writers killed mid-run had acked ops to judge: {acked:?}");
    assert_eq!(
        (cells[1].trials, cells[1].sigbus_faults),
        (1, 1),
        "the truncated writer died of SIGBUS: {:?}",
        cells[1]
    );
    assert_eq!(cells[2].model.to_string(), "power-loss-torn");
    assert!(cells[2].states_checked.unwrap_or(0) > 0, "power-loss states were judged: {:?}", cells[2]);
}
