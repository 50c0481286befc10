//! Real process crashes of the built-in writers on real files, judged
//! against the kernel semantics in the catalogue (not against crashlab's own
//! model), on the default temp dir and on tmpfs.

mod common;

use crashlab::crash::PointSelection;
use crashlab::expectation::PersistenceModel;
use crashlab::report::survival::{CellReport, Verdict};
use crashlab::spec::MappingKind;
use crashlab::vocab::CrashKind;
use crashlab_scenarios::{catalogue, AckFate};

fn check_fate(cell: &CellReport, fate: AckFate, rationale: &str, fs: &str) {
    let ctx = format!("{} {} on {fs} ({rationale}); replay: {}", cell.scenario, cell.crash, cell.replay);
    assert_eq!(cell.model_violations, 0, "{ctx}: {:#?}", cell.failures);
    assert_eq!(cell.model, PersistenceModel::ProcessCrash);
    assert!(cell.acked > 0 || cell.crash == CrashKind::Sigbus, "{ctx}: no acked op to judge");
    match fate {
        AckFate::Survive => {
            assert_eq!(cell.lost + cell.torn, 0, "{ctx}: acked ops lost");
            assert_eq!(cell.survived + cell.truncated, cell.acked, "{ctx}");
        }
        AckFate::NeverReachFile => {
            assert_eq!(cell.survived + cell.torn, 0, "{ctx}: private stores reached the file");
            assert_eq!(cell.lost + cell.truncated, cell.acked, "{ctx}");
        }
    }
    assert_eq!(cell.verdict, Verdict::AsExpected, "{ctx}: {:?}", cell.verdict_reason);
}

#[test]
fn every_scenario_under_every_process_crash_matches_kernel_semantics() {
    for (fs, dir) in common::filesystems() {
        let config = common::config(7, PointSelection::All, CrashKind::MATRIX.to_vec());
        let report = common::run(&config, dir.path());
        let catalogue = catalogue();
        // enospc is a column of the MAP_SHARED rows only.
        let shared = catalogue.iter().filter(|s| s.id.mapping == MappingKind::Shared).count();
        assert_eq!(report.cells.len(), catalogue.len() * (CrashKind::MATRIX.len() - 1) + shared);
        for cell in &report.cells {
            let entry = catalogue.iter().find(|s| s.id == cell.scenario).expect("every cell is in the catalogue");
            check_fate(cell, entry.process_crash_fate(cell.crash), entry.rationale, fs);
            match cell.crash {
                // Killing just before each of n ops and after the last: n + 1 boundaries.
                CrashKind::Abort => assert_eq!(cell.trials, cell.crash_points),
                CrashKind::Clean => {
                    assert_eq!(cell.trials, 1);
                    assert_eq!(cell.acked, config.txns as u64, "a clean run acks every transaction");
                }
                CrashKind::Sigbus => {
                    // Every truncation is followed by a store; most of them reach
                    // beyond the new EOF and must die of SIGBUS.
                    assert!(cell.sigbus_faults > 0, "{} on {fs}: no writer died of SIGBUS", cell.scenario);
                }
                CrashKind::Sigkill => {}
                CrashKind::PowerLoss | CrashKind::PowerLossReal | CrashKind::EioSync => {
                    panic!("the matrix has no {} crash column (power loss is a model)", cell.crash)
                }
                CrashKind::Enospc => {
                    // `all`: every capacity from none to the run's peak;
                    // all but the peak (the control) run out and fault.
                    assert_eq!(cell.scenario.mapping, MappingKind::Shared);
                    assert_eq!(cell.sigbus_faults + 1, cell.trials, "{} on {fs}", cell.scenario);
                }
            }
        }
        assert!(report.all_as_expected(), "{}", report.human_summary());
    }
}

#[test]
fn stores_killed_mid_copy_are_torn_yet_never_garbage() {
    // memcpy into a mapping is not atomic: a SIGKILL landing inside a large
    // store leaves some of its bytes new and the rest old, never anything
    // else. Aim many kills inside the large stores of an msync-heavy writer
    // (clean pages make the copy slow enough to be hit).
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::config(11, PointSelection::Random(300), vec![CrashKind::Sigkill]);
    config.scenarios = vec!["shared/ms-sync-every-4".parse().unwrap()];
    config.file_size = 256 * 1024;
    let report = common::run(&config, dir.path());
    let cell = &report.cells[0];
    assert_eq!(cell.model_violations, 0, "{:#?}", cell.failures);
    assert!(cell.in_flight_stores > 0, "no kill landed inside a store in 300 tries");
    assert!(cell.in_flight_torn > 0, "{} kills inside a store, none left it torn", cell.in_flight_stores);
}
