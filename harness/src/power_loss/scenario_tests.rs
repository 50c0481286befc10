//! Hand-built writers and journals whose power-loss outcome is worked out
//! from the semantics by hand (the expected numbers are in the comments).

use super::naive_oracle::NaiveModel;
use super::*;
use crate::crash::CrashPoint;
use crate::journal::JournalSnapshot;
use crate::process_model::{AckStatus, ChildExit};
use crate::spec::{pattern_byte, ByteRange, MappingKind, MsyncFlags, Op, SyncPolicy, WriterSpec};
use crate::vocab::CrashKind;

const PS: u64 = 4096;

fn spec(pages: u64, mapping: MappingKind, ops: Vec<Op>) -> WriterSpec {
    let s = WriterSpec { file_size: pages * PS, page_size: PS, mapping, policy: SyncPolicy::None, ops };
    s.validate().unwrap();
    s
}

fn store(offset: u64, len: u64, version: u32) -> Op {
    Op::Store { offset, len, version }
}

fn msync(start: u64, end: u64, flags: MsyncFlags) -> Op {
    Op::Msync { range: ByteRange::new(start, end), flags }
}

fn ack(id: u32, covers: &[usize]) -> Op {
    Op::Ack { id, covers: covers.to_vec() }
}

/// SIGKILL just before op `k`.
fn killed_before(k: usize) -> TrialFacts {
    TrialFacts {
        kind: CrashKind::Sigkill,
        point: CrashPoint::BeforeOp(k),
        exit: ChildExit::Signaled(libc::SIGKILL),
        journal: JournalSnapshot { completed: k, in_flight: None, failed: None },
        external_truncate: None,
    }
}

/// SIGKILL while op `op` was running.
fn killed_during(op: usize) -> TrialFacts {
    TrialFacts {
        point: CrashPoint::AtTime { permille: 500 },
        journal: JournalSnapshot { completed: op, in_flight: Some(op), failed: None },
        ..killed_before(op)
    }
}

fn analyze_with(s: &WriterSpec, f: &TrialFacts, cfg: &PowerLossConfig) -> PowerLossOutcome {
    try_analyze(s, &Payloads::build(s), f, cfg, 7).unwrap()
}

fn run(s: &WriterSpec, f: &TrialFacts) -> PowerLossOutcome {
    analyze_with(s, f, &PowerLossConfig::default())
}

/// (guaranteed, lost states, torn states, truncated states) per ack.
fn verdicts(o: &PowerLossOutcome) -> Vec<(bool, u64, u64, u64)> {
    o.acks.iter().map(|a| (a.guaranteed, a.lost_states, a.torn_states, a.truncated_states)).collect()
}

fn labels(model: &PowerLossModel<'_>, page: u64) -> Vec<String> {
    let u = model.units().iter().find(|u| u.id.page == page && u.id.sector.unwrap_or(0) == 0).unwrap();
    u.allowed().iter().map(|v| v.label().to_string()).collect()
}

/// Store on page 0, MS_SYNC of page 0, ack; store over pages 1-2, ack.
fn synced_then_unsynced() -> WriterSpec {
    spec(
        4,
        MappingKind::Shared,
        vec![
            store(100, 200, 1),
            msync(0, PS, MsyncFlags::MsSync),
            ack(0, &[0]),
            store(8000, 4000, 2),
            ack(1, &[3]),
            Op::Munmap,
        ],
    )
}

#[test]
fn ms_sync_guarantees_the_synced_page_and_only_it() {
    let s = synced_then_unsynced();
    let o = run(&s, &killed_before(6));
    // Pages 1 and 2 each hold v0 or v2: 4 states. Ack 1 is lost in (v0, v0),
    // torn in (v0, v2) and (v2, v0), intact in (v2, v2).
    assert!(o.exhaustive);
    assert_eq!(o.states_checked, 4);
    assert_eq!(o.dirty_units, 2);
    assert_eq!(verdicts(&o), vec![(true, 0, 0, 0), (false, 1, 2, 0)]);
    assert_eq!(o.explanations.len(), 1);
    let e = &o.explanations[0];
    assert_eq!(e.ack, 1);
    assert_eq!(e.status, AckStatus::Torn);
    assert_eq!(e.state.to_string(), "newest:p1=v0");
    assert_eq!(e.pages, vec![PageChoice { unit: UnitId { page: 1, sector: None }, version: VersionLabel::Version(0) }]);
    assert!(
        e.text.starts_with("ack 1 torn: page 1 holds version 0, the initial content (its durable floor"),
        "{}",
        e.text
    );
    assert!(e.text.contains("the store of version 2 (op 3) was never synced"), "{}", e.text);
    assert!(e.text.ends_with("while page 2 holds version 2 (written back, never synced)"), "{}", e.text);

    // The state rebuilds exactly: page 1's part of the store is old, page 2's new.
    let state: CrashState = e.state.to_string().parse().unwrap();
    let bytes = materialize(&s, &Payloads::build(&s), &killed_before(6), &PowerLossConfig::default(), &state).unwrap();
    assert_eq!(bytes.len() as u64, 4 * PS);
    assert!((8000..8192).all(|p| bytes[p as usize] == pattern_byte(p, 0)));
    assert!((8192..12000).all(|p| bytes[p as usize] == pattern_byte(p, 2)));
    assert!((100..300).all(|p| bytes[p as usize] == pattern_byte(p, 1)), "page 0 is synced at v1");
}

#[test]
fn ms_async_makes_nothing_durable_but_ms_sync_does() {
    let ops = |flags| vec![store(0, PS, 1), msync(0, PS, flags), ack(0, &[0]), Op::Munmap];
    let o = run(&spec(1, MappingKind::Shared, ops(MsyncFlags::MsAsync)), &killed_before(4));
    assert_eq!(o.states_checked, 2);
    assert_eq!(verdicts(&o), vec![(false, 1, 0, 0)]);
    assert!(o.explanations[0].text.starts_with("ack 0 lost: page 0 holds version 0"), "{}", o.explanations[0].text);
    let o = run(&spec(1, MappingKind::Shared, ops(MsyncFlags::MsSync)), &killed_before(4));
    assert_eq!(o.states_checked, 1);
    assert_eq!(verdicts(&o), vec![(true, 0, 0, 0)]);
    assert!(o.explanations.is_empty());
}

#[test]
fn a_sync_in_flight_guarantees_nothing() {
    for sync in [msync(0, PS, MsyncFlags::MsSync), Op::Fsync, Op::Fdatasync] {
        let s = spec(1, MappingKind::Shared, vec![store(0, PS, 1), ack(0, &[0]), sync.clone(), Op::Munmap]);
        let o = run(&s, &killed_during(2));
        assert_eq!(verdicts(&o), vec![(false, 1, 0, 0)], "{sync:?} in flight");
        let text = &o.explanations[0].text;
        assert!(
            text.contains(&format!("(op 2, {}, was still in flight, which guarantees nothing)", sync.kind_name())),
            "{text}"
        );
        // The same sync, completed, makes the ack durable.
        assert_eq!(verdicts(&run(&s, &killed_before(3))), vec![(true, 0, 0, 0)], "{sync:?} done");
    }
}

#[test]
fn overlapping_stores_count_newer_bytes_as_survival() {
    // op 0 writes [1000, 6000) (pages 0-1) as v1, op 1 overwrites [3000, 5000)
    // as v2, op 2 syncs page 1 only. Page 0: v0, v1, v2 allowed; page 1:
    // fixed at v2 (its bytes 4096..5000 are op 1's, 5000..6000 op 0's).
    let s = spec(
        2,
        MappingKind::Shared,
        vec![
            store(1000, 5000, 1),
            store(3000, 2000, 2),
            msync(PS, 2 * PS, MsyncFlags::MsSync),
            ack(0, &[0]),
            ack(1, &[1]),
            Op::Munmap,
        ],
    );
    let p = Payloads::build(&s);
    let model = PowerLossModel::build(&s, &p, &killed_before(6), &PowerLossConfig::default()).unwrap();
    assert_eq!(labels(&model, 0), ["v0", "v1", "v2"]);
    assert_eq!(labels(&model, 1), ["v2"]);
    let o = run(&s, &killed_before(6));
    // Ack 0: page 0 at v0 fails it while page 1 holds it: torn once; v1 and
    // v2 both hold it (v2's bytes are newer). Ack 1: page 0 at v0 or v1
    // lacks op 1's bytes while page 1 has them: torn twice.
    assert_eq!(o.states_checked, 3);
    assert_eq!(verdicts(&o), vec![(false, 0, 1, 0), (false, 0, 2, 0)]);
    // Page 0 at v0 is also the all-floor state, the shorter text.
    assert_eq!(o.explanations[1].state.to_string(), "floor");
}

#[test]
fn overlapping_sync_ranges_each_set_their_own_floors() {
    // op 0 writes all 3 pages (v1); op 1 syncs pages 0-1; op 2 rewrites pages
    // 1-2 (v2); op 3 syncs [4096, 5000), i.e. page 1. Floors: page 0 v1,
    // page 1 v2, page 2 the initial content.
    let s = spec(
        3,
        MappingKind::Shared,
        vec![
            store(0, 3 * PS, 1),
            msync(0, 2 * PS, MsyncFlags::MsSync),
            store(PS, 2 * PS, 2),
            msync(PS, PS + 904, MsyncFlags::MsSync),
            ack(0, &[0]),
            ack(1, &[2]),
            Op::Munmap,
        ],
    );
    let p = Payloads::build(&s);
    let model = PowerLossModel::build(&s, &p, &killed_before(7), &PowerLossConfig::default()).unwrap();
    assert_eq!(labels(&model, 0), ["v1"]);
    assert_eq!(labels(&model, 1), ["v2"]);
    assert_eq!(labels(&model, 2), ["v0", "v1", "v2"]);
    let o = run(&s, &killed_before(7));
    assert_eq!(verdicts(&o), vec![(false, 0, 1, 0), (false, 0, 2, 0)]);
    assert!(o.explanations[0].text.contains("page 2 holds version 0"), "{}", o.explanations[0].text);
}

#[test]
fn a_page_written_three_times_may_hold_any_of_its_versions() {
    let s = spec(
        1,
        MappingKind::Shared,
        vec![
            store(0, PS, 1),
            ack(0, &[0]),
            store(0, PS, 2),
            ack(1, &[2]),
            store(1000, 100, 3),
            ack(2, &[4]),
            Op::Munmap,
        ],
    );
    let p = Payloads::build(&s);
    let f = killed_before(7);
    let model = PowerLossModel::build(&s, &p, &f, &PowerLossConfig::default()).unwrap();
    assert_eq!(labels(&model, 0), ["v0", "v1", "v2", "v3"], "every intermediate version, not only old and new");
    let o = run(&s, &f);
    // Ack k is lost exactly when the page is older than its store.
    assert_eq!(verdicts(&o), vec![(false, 1, 0, 0), (false, 2, 0, 0), (false, 3, 0, 0)]);
    let mid = materialize(&s, &p, &f, &PowerLossConfig::default(), &"floor:p0=v2".parse().unwrap()).unwrap();
    assert!((0..PS).all(|i| mid[i as usize] == pattern_byte(i, 2)));
    assert!(o.explanations[2].text.contains("holds version 0, the initial content"), "{}", o.explanations[2].text);
}

#[test]
fn fsync_and_fdatasync_cover_the_whole_file() {
    for sync in [Op::Fsync, Op::Fdatasync] {
        let s = spec(
            4,
            MappingKind::Shared,
            vec![
                store(0, 10, 1),
                store(PS + 5, 3 * PS - 5, 2),
                sync.clone(),
                ack(0, &[0]),
                ack(1, &[1]),
                store(3 * PS, 8, 3),
                ack(2, &[5]),
                Op::Munmap,
            ],
        );
        let o = run(&s, &killed_before(8));
        assert_eq!(o.states_checked, 2, "only page 3, rewritten after the sync, varies");
        assert_eq!(verdicts(&o), vec![(true, 0, 0, 0), (true, 0, 0, 0), (false, 1, 0, 0)]);
    }
}

#[test]
fn truncation_offers_both_sizes_until_synced() {
    // Store on page 3, ack, truncate to 8192, no sync: sizes 16384 and 8192.
    // Page 3: v0, v1, t0 (zeros); page 2: v0, t0. At 16384: 2 x 3 states, the
    // ack intact only with page 3 at v1 (2 of 6); at 8192 its bytes are cut.
    let ops = |sync: bool| {
        let mut ops = vec![store(3 * PS + 100, 100, 1), ack(0, &[0]), Op::Truncate { len: 2 * PS }];
        if sync {
            ops.push(Op::Fsync);
        }
        ops.push(Op::Munmap);
        ops
    };
    let s = spec(4, MappingKind::Shared, ops(false));
    let o = run(&s, &killed_before(4));
    assert_eq!(o.sizes, vec![4 * PS, 2 * PS]);
    assert_eq!(o.states_checked, 7);
    assert_eq!(verdicts(&o), vec![(false, 4, 0, 1)]);
    let p = Payloads::build(&s);
    let model = PowerLossModel::build(&s, &p, &killed_before(4), &PowerLossConfig::default()).unwrap();
    assert_eq!(labels(&model, 3), ["v0", "v1", "t0"]);
    assert!(model.allows(&p.base, 4 * PS).is_ok(), "nothing written back at all");
    assert!(model.allows(&p.base, 2 * PS).is_ok(), "only the size change persisted");
    assert!(matches!(model.allows(&p.base, 3 * PS), Err(Forbidden::Size { len, .. }) if len == 3 * PS));

    // Synced: one size, the ack's bytes are cut in the only state, which is
    // the writer's doing, not a loss.
    let s = spec(4, MappingKind::Shared, ops(true));
    let o = run(&s, &killed_before(5));
    assert_eq!(o.sizes, vec![2 * PS]);
    assert_eq!(verdicts(&o), vec![(true, 0, 0, 1)]);
}

#[test]
fn unsynced_growth_can_lose_acked_bytes_to_the_old_size() {
    // Shrink to 4096 and fsync, grow back, store on page 2, ack. Sizes: 4096
    // (durable) and 16384. Page 2: t0 (floor), v1. At 4096 the ack's bytes
    // are gone although the file had them at the crash: lost. At 16384 it is
    // lost with page 2 at t0.
    let s = spec(
        4,
        MappingKind::Shared,
        vec![
            Op::Truncate { len: PS },
            Op::Fsync,
            Op::Truncate { len: 4 * PS },
            store(2 * PS + 10, 100, 1),
            ack(0, &[3]),
            Op::Munmap,
        ],
    );
    let o = run(&s, &killed_before(6));
    assert_eq!(o.sizes, vec![PS, 4 * PS]);
    assert_eq!(o.states_checked, 3);
    assert_eq!(verdicts(&o), vec![(false, 2, 0, 0)]);
    let text = &o.explanations[0].text;
    assert!(
        text.starts_with("ack 0 lost: page 2 holds the zeros of the truncation to 4096 bytes by op 0 (its durable floor, made durable by op 1 (fsync)"),
        "{text}"
    );
}

#[test]
fn the_parents_truncation_is_a_size_choice_too() {
    let s = synced_then_unsynced();
    let mut f = killed_during(3);
    f.kind = CrashKind::Sigbus;
    f.point = CrashPoint::TruncateBefore { op: 3, len: PS };
    f.exit = ChildExit::Signaled(libc::SIGBUS);
    f.external_truncate = Some((3, PS));
    let o = run(&s, &f);
    // Pages 1-3 each: v0 or the truncation's zeros (the in-flight store lies
    // beyond the new end). 8 states at 16384 bytes, 1 at 4096.
    assert_eq!(o.sizes, vec![4 * PS, PS]);
    assert_eq!(o.states_checked, 9);
    assert_eq!(verdicts(&o), vec![(true, 0, 0, 0)]);
    let p = Payloads::build(&s);
    let model = PowerLossModel::build(&s, &p, &f, &PowerLossConfig::default()).unwrap();
    let newest = model.state_bytes(&model.all_newest());
    assert_eq!(newest.len() as u64, PS);
    assert!(model.allows(&newest, PS).is_ok());
    assert!(matches!(model.allows(&newest, 2 * PS), Err(Forbidden::Size { .. })));
    assert!(matches!(model.allows(&newest, 4 * PS), Err(Forbidden::ShortBuffer { .. })));
}

#[test]
fn sector_tearing_multiplies_choices_and_names_sectors() {
    let s = spec(1, MappingKind::Shared, vec![store(0, PS, 1), ack(0, &[0]), Op::Munmap]);
    let torn = PowerLossConfig { tear: Some(512), ..Default::default() };
    assert_eq!(verdicts(&run(&s, &killed_before(3))), vec![(false, 1, 0, 0)]);
    let o = analyze_with(&s, &killed_before(3), &torn);
    // 8 sectors, each old or new: 256 states; all old loses the ack, all new
    // keeps it, the other 254 tear it.
    assert_eq!((o.unit_size, o.dirty_units, o.states_checked), (512, 8, 256));
    assert_eq!(verdicts(&o), vec![(false, 1, 254, 0)]);
    let e = &o.explanations[0];
    assert_eq!(e.state.to_string(), "newest:p0s0=v0");
    assert!(e.text.starts_with("ack 0 torn: page 0 sector 0 holds version 0"), "{}", e.text);
    assert!(e.text.ends_with("while page 0 sector 1 holds version 1 (written back, never synced)"), "{}", e.text);
    assert_eq!(e.pages[0].unit, UnitId { page: 0, sector: Some(0) });

    // A store over bytes 100..700 touches sectors 0 and 1 only.
    let s = spec(1, MappingKind::Shared, vec![store(100, 600, 1), ack(0, &[0]), Op::Munmap]);
    let o = analyze_with(&s, &killed_before(3), &torn);
    assert_eq!((o.dirty_units, o.states_checked), (2, 4));
    assert_eq!(verdicts(&o), vec![(false, 1, 2, 0)]);
}

#[test]
fn map_private_stores_never_reach_the_file() {
    let s = spec(
        1,
        MappingKind::Private,
        vec![store(0, PS, 1), msync(0, PS, MsyncFlags::MsSync), ack(0, &[0]), Op::Fsync, Op::Munmap],
    );
    let p = Payloads::build(&s);
    let f = killed_before(5);
    let o = run(&s, &f);
    assert_eq!((o.states_checked, o.dirty_units), (1, 0));
    assert_eq!(verdicts(&o), vec![(false, 1, 0, 0)]);
    assert!(o.explanations[0].text.contains("MAP_PRIVATE"), "{}", o.explanations[0].text);
    let model = PowerLossModel::build(&s, &p, &f, &PowerLossConfig::default()).unwrap();
    assert!(model.allows(&p.base, PS).is_ok());
    let mut written = p.base.to_vec();
    written.copy_from_slice(p.store(&s, 0));
    let err = model.allows(&written, PS).unwrap_err().to_string();
    assert!(err.starts_with("page 0 (bytes 0..4096) holds none of its allowed versions v0"), "{err}");
    assert!(err.contains("holds version 1 (op 0, not an allowed version here)"), "{err}");
}

#[test]
fn exhaustive_up_to_the_bound_then_sampled() {
    // Ten pages, each written once and acked, nothing synced: 1024 states.
    let mut ops = Vec::new();
    for p in 0..10u64 {
        ops.push(store(p * PS, 64, p as u32 + 1));
        ops.push(ack(p as u32, &[2 * p as usize]));
    }
    ops.push(Op::Munmap);
    let s = spec(10, MappingKind::Shared, ops);
    let f = killed_before(21);
    let cfg = |bound, samples| PowerLossConfig { tear: None, exhaustive_bound: bound, samples };
    let o = analyze_with(&s, &f, &cfg(1024, 256));
    assert!(o.exhaustive);
    assert_eq!((o.states_checked, o.state_space), (1024, Some(1024)));
    assert!(o.acks.iter().all(|a| !a.guaranteed && a.lost_states == 512 && a.torn_states == 0));

    // One below the bound: sampled. With no random samples the adversarial
    // states are: all old, all new, 10 "one new", 10 "one old", 9 prefixes
    // and 9 suffixes in write order, minus 4 coincidences (prefix 1 and
    // suffix 1 are "one new", prefix 9 and suffix 9 "one old") = 36; the
    // explanations' states are "one old" states already.
    let o = analyze_with(&s, &f, &cfg(1023, 0));
    assert!(!o.exhaustive);
    assert_eq!(o.states_checked, 36);
    // Ack i is lost where page i is old: all old, the 9 other "one new", its
    // own "one old" (11), and of the distinct prefixes/suffixes k = 2..=8 the
    // prefixes with k <= i and the suffixes with k < 10 - i: 7 for every i.
    assert!(o.acks.iter().all(|a| !a.guaranteed && a.lost_states == 18 && a.torn_states == 0), "{:?}", o.acks);
    let sampled = analyze_with(&s, &f, &cfg(1023, 100));
    assert!(sampled.states_checked > 36 && sampled.states_checked <= 136);
    assert_eq!(sampled, analyze_with(&s, &f, &cfg(1023, 100)), "same seed, same outcome");
}

#[test]
fn copy_on_write_walks_build_the_same_bytes_as_direct_materialization() {
    // Page 0: v0, v1, v2, v3 and the in-flight v5; page 1: v0, v2, v3, v5;
    // page 2: v0, v4, v5. 5 x 4 x 3 = 60 states without tearing.
    let s = spec(
        3,
        MappingKind::Shared,
        vec![
            store(0, 300, 1),
            store(200, 5000, 2),
            store(4000, 100, 3),
            store(2 * PS + 7, 50, 4),
            ack(0, &[0, 1]),
            store(PS - 10, 2 * PS, 5),
            Op::Munmap,
        ],
    );
    let p = Payloads::build(&s);
    let f = killed_during(5);
    for tear in [None, Some(1024)] {
        for bound in [1 << 16, 0] {
            let cfg = PowerLossConfig { tear, exhaustive_bound: bound, samples: 40 };
            let model = PowerLossModel::build(&s, &p, &f, &cfg).unwrap();
            let naive = NaiveModel::build(&s, &p, &f);
            let plan = ExplorationPlan::new(&model, &cfg, 3, &[]);
            let mut n = 0;
            let visited = explore(&model, &plan, true, None, |v| {
                let bytes = v.bytes.unwrap();
                assert_eq!(bytes, &model.state_bytes(v.choice)[..], "state {}", v.number);
                let (naive_bytes, _) = naive.state(&model.crash_state(v.choice), model.unit_size() as usize);
                assert_eq!(bytes, &naive_bytes[..], "state {}", model.crash_state(v.choice));
                n += 1;
            });
            assert_eq!(visited, n);
            if bound > 0 {
                assert_eq!(Some(visited), model.state_count(), "tear {tear:?}");
                if tear.is_none() {
                    assert_eq!(visited, 60);
                }
            }
        }
    }
}

#[test]
fn allows_names_the_first_forbidden_page() {
    let s = synced_then_unsynced();
    let p = Payloads::build(&s);
    let cfg = PowerLossConfig::default();
    let f = killed_before(6);
    let model = PowerLossModel::build(&s, &p, &f, &cfg).unwrap();
    let floor = model.state_bytes(&model.all_floor());
    assert!(model.allows(&floor, 4 * PS).is_ok());
    assert!(model.allows(&model.state_bytes(&model.all_newest()), 4 * PS).is_ok());

    // Page 0 back at the initial content: older than its synced floor.
    let mut older = floor.clone();
    older[..PS as usize].copy_from_slice(&p.base[..PS as usize]);
    let err = model.allows(&older, 4 * PS).unwrap_err();
    assert!(matches!(err, Forbidden::Content { unit: UnitId { page: 0, sector: None }, .. }));
    assert!(
        err.to_string().contains("holds v0, older than its durable floor v1 (made durable by op 1, msync(MS_SYNC))"),
        "{err}"
    );

    // Before op 3 ran, its bytes cannot be on disk.
    let early = PowerLossModel::build(&s, &p, &killed_before(3), &cfg).unwrap();
    let err = early.allows(&model.state_bytes(&model.all_newest()), 4 * PS).unwrap_err().to_string();
    assert!(err.starts_with("page 1 (bytes 4096..8192)"), "{err}");
    assert!(err.contains("at byte 8000") && err.contains("version 2 (op 3, which had not run when the writer died)"));

    // Store 3 in flight: any mix of its old and new bytes is allowed, bytes
    // of neither are not.
    let flight = PowerLossModel::build(&s, &p, &killed_during(3), &cfg).unwrap();
    let mut half = floor.clone();
    half[8000..10000].copy_from_slice(&p.store(&s, 3)[..2000]);
    assert!(flight.allows(&half, 4 * PS).is_ok());
    // Completed but never synced: writeback may have caught it half done
    // and the later writeback been lost. (Seen on a real cut: SOUNDNESS.md.)
    assert!(model.allows(&half, 4 * PS).is_ok(), "a completed, unsynced store may survive half applied");
    // Store 0 was made durable by the msync after it: never half applied.
    let mut half_synced = floor.clone();
    half_synced[100..200].copy_from_slice(&p.base[100..200]);
    let err = model.allows(&half_synced, 4 * PS).unwrap_err();
    assert!(matches!(err, Forbidden::Content { unit: UnitId { page: 0, .. }, .. }), "{err}");
    half[9000] = 0;
    let err = flight.allows(&half, 4 * PS).unwrap_err();
    assert!(matches!(err, Forbidden::Content { unit: UnitId { page: 2, .. }, .. }), "{err}");
    assert!(err.to_string().contains("at byte 9000"), "{err}");
}

#[test]
fn crash_states_resolve_only_to_what_the_model_allows() {
    let s = synced_then_unsynced();
    let p = Payloads::build(&s);
    let f = killed_before(6);
    let model = PowerLossModel::build(&s, &p, &f, &PowerLossConfig::default()).unwrap();
    let ok = |t: &str| model.resolve(&t.parse().unwrap());
    assert_eq!(ok("newest").unwrap(), model.all_newest());
    assert_eq!(ok("floor").unwrap(), model.all_floor());
    assert_eq!(ok("floor:p1=v2,p2=v2").unwrap(), model.all_newest());
    assert_eq!(ok("newest:p0=v1,p3=v0").unwrap(), model.all_newest(), "fixed and untouched pages may be named");
    for bad in ["newest:p1=v9", "newest:p0=v0", "newest:p3=v1", "newest:p1s1=v0", "newest:p4=v0", "newest:len=100"] {
        assert!(ok(bad).is_err(), "{bad}");
    }
    assert!(materialize(&s, &p, &f, &PowerLossConfig::default(), &"newest:p1=v7".parse().unwrap()).is_err());
    // Every state's text form rebuilds it.
    let plan = ExplorationPlan::new(&model, &PowerLossConfig::default(), 0, &[]);
    explore(&model, &plan, false, None, |v| {
        let text = model.crash_state(v.choice).to_string();
        assert_eq!(&model.resolve(&text.parse().unwrap()).unwrap(), v.choice, "{text}");
    });
}

#[test]
fn outcome_round_trips_through_json() {
    let s = synced_then_unsynced();
    let o = analyze_with(&s, &killed_before(6), &PowerLossConfig { tear: Some(512), ..Default::default() });
    let json = serde_json::to_string(&o).unwrap();
    assert!(json.contains("\"state\":\"newest:p1s7=v0\""), "{json}");
    assert_eq!(serde_json::from_str::<PowerLossOutcome>(&json).unwrap(), o);
}

#[test]
fn bad_configurations_and_facts_are_errors() {
    let s = synced_then_unsynced();
    let p = Payloads::build(&s);
    for tear in [0, 3000, 8192] {
        let cfg = PowerLossConfig { tear: Some(tear), ..Default::default() };
        assert!(matches!(try_analyze(&s, &p, &killed_before(6), &cfg, 0), Err(PowerLossError::Config(_))), "{tear}");
    }
    let mut f = killed_before(6);
    f.journal.in_flight = Some(2);
    assert!(matches!(try_analyze(&s, &p, &f, &PowerLossConfig::default(), 0), Err(PowerLossError::Facts(_))));
    assert!(try_analyze(&s, &p, &killed_before(7), &PowerLossConfig::default(), 0).is_err());
}
