//! Files real power cuts left, kept from `crashlab soundness` evidence,
//! judged again by the models. Each one once showed the simulated model
//! wrong; these tests keep it right.

use std::path::Path;

use crashlab::payload::Payloads;
use crashlab::power_loss::{PowerLossConfig, DEFAULT_TEAR};
use crashlab::process_model::TrialFacts;
use crashlab::realcut::judge::{judge, judge_with};
use crashlab::spec::{pattern_byte, Op, WriterSpec};

fn evidence(name: &str) -> (WriterSpec, TrialFacts, Vec<u8>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/realcut-evidence").join(name);
    let trial: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("trial.json")).unwrap()).unwrap();
    let spec: WriterSpec = serde_json::from_value(trial["spec"].clone()).unwrap();
    let facts: TrialFacts = serde_json::from_value(trial["facts"].clone()).unwrap();
    (spec, facts, std::fs::read(dir.join("observed.bin")).unwrap())
}

/// A vm cut on a disk that tears unflushed writes (guest writeback every
/// 10 ms): op 10, a completed 32 KiB store at 4873 that no sync covered,
/// survived with its first 7 bytes old. glibc's memcpy stores its
/// unaligned head last, and the page was written back in between; the
/// later writeback of the whole store was lost in the cut.
#[test]
fn a_completed_unsynced_store_written_back_half_applied_is_allowed() {
    let (spec, facts, observed) = evidence("half-applied-store");
    let payloads = Payloads::build(&spec);
    let Op::Store { offset: 4873, len: 32768, version } = spec.ops[10] else { panic!("op 10: {:?}", spec.ops[10]) };
    assert_eq!(facts.journal.completed, 11, "op 10 completed");
    // What the file holds: the store's head old, the rest of its sector new.
    assert!((4873..4880).all(|p| observed[p] == payloads.base[p]), "the unaligned head is old");
    assert!((4880..5120).all(|p| observed[p] == pattern_byte(p as u64, version)), "the rest is new");
    // Judged by the model the disk meets (torn sectors), and by the
    // page-whole one: both allow a store half applied.
    let torn = PowerLossConfig { tear: Some(DEFAULT_TEAR), ..PowerLossConfig::default() };
    let j = judge_with(&spec, &payloads, &facts, &observed, &torn).unwrap();
    assert!(!j.is_violation(), "{:?}", j.forbidden);
    assert_eq!(j.acks.guaranteed_not_survived, 0);
    // The disk also tore other sectors of the store's pages: within one
    // store's range, that too is a mix of its old and new bytes, so the
    // page-whole model allows the file as well.
    let whole = judge(&spec, &payloads, &facts, &observed).unwrap();
    assert!(!whole.is_violation(), "{:?}", whole.forbidden);
    // A byte of neither version in the same sector is still forbidden.
    let mut bad = observed.clone();
    bad[4900] = !(observed[4900] | payloads.base[4900]) | 1;
    assert!(bad[4900] != payloads.base[4900] && bad[4900] != pattern_byte(4900, version));
    assert!(judge_with(&spec, &payloads, &facts, &bad, &torn).unwrap().is_violation());
    assert!(judge(&spec, &payloads, &facts, &bad).unwrap().is_violation());
}
