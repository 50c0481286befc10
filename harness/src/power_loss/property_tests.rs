//! Properties over random generated writers and crash instants, checked
//! against the naive oracle and the process-crash model.

use std::collections::HashSet;

use proptest::prelude::*;

use super::naive_oracle::NaiveModel;
use super::*;
use crate::crash::CrashPoint;
use crate::journal::JournalSnapshot;
use crate::process_model::{verify, AckStatus, ChildExit, ViolationKind};
use crate::spec::{MappingKind, Op, SyncPolicy, WorkloadParams};
use crate::vocab::CrashKind;

const PS: u64 = 4096;

#[derive(Debug, Clone)]
struct Trial {
    spec: WriterSpec,
    facts: TrialFacts,
    cfg: PowerLossConfig,
    /// The writer or the parent truncates: "syncs before ack" says nothing then.
    truncates: bool,
}

fn policy() -> impl Strategy<Value = SyncPolicy> {
    prop_oneof![
        (0..SyncPolicy::STANDARD.len()).prop_map(|i| SyncPolicy::STANDARD[i]),
        (1u32..4).prop_map(SyncPolicy::MsSyncEvery),
        (1u32..4).prop_map(SyncPolicy::FsyncEvery),
    ]
}

/// Insert a shrink to `len` and a regrow to the full size before op `at`,
/// renumbering the acks' covers.
fn with_truncation(mut spec: WriterSpec, at: usize, len: u64) -> WriterSpec {
    let at = at.min(spec.ops.len() - 1);
    for op in &mut spec.ops {
        if let Op::Ack { covers, .. } = op {
            covers.iter_mut().filter(|c| **c >= at).for_each(|c| *c += 2);
        }
    }
    spec.ops.splice(at..at, [Op::Truncate { len }, Op::Truncate { len: spec.file_size }]);
    spec.validate().expect("shrink + regrow keeps the spec valid");
    spec
}

prop_compose! {
    fn trial()(
        pages in 1u64..=4,
        txns in 1u32..=5,
        max_store in 1u64..=6000,
        large_every in 0u32..=3,
        large_store in 1u64..=8192,
        private in prop::bool::weighted(0.15),
        policy in policy(),
        seed in any::<u64>(),
        crash in any::<prop::sample::Index>(),
        in_flight in any::<bool>(),
        tear in prop_oneof![Just(None), Just(Some(1024)), Just(Some(512))],
        truncation in prop::option::weighted(0.25, (any::<prop::sample::Index>(), 0u64..16384)),
        external in prop::option::weighted(0.15, (any::<prop::sample::Index>(), 0u64..16384)),
    ) -> Trial {
        let file_size = pages * PS;
        let params = WorkloadParams {
            file_size,
            txns,
            max_store: max_store.min(file_size),
            large_every,
            large_store: large_store.min(file_size),
        };
        let mapping = if private { MappingKind::Private } else { MappingKind::Shared };
        let mut spec = WriterSpec::generate(&params, mapping, policy, PS, seed).unwrap();
        if let Some((at, len)) = truncation {
            let at = at.index(spec.ops.len());
            spec = with_truncation(spec, at, len % file_size);
        }
        let n = spec.ops.len();
        let k = crash.index(n + 1);
        let in_flight = (in_flight && k < n).then_some(k);
        let facts = TrialFacts {
            kind: CrashKind::Sigkill,
            point: CrashPoint::BeforeOp(k),
            exit: ChildExit::Signaled(libc::SIGKILL),
            journal: JournalSnapshot { completed: k, in_flight, failed: None },
            external_truncate: external.map(|(at, len)| (at.index(n + 1), len % file_size)),
        };
        let cfg = PowerLossConfig { tear, exhaustive_bound: 512, samples: 24 };
        Trial { truncates: truncation.is_some() || external.is_some(), spec, facts, cfg }
    }
}

fn hash(bytes: &[u8]) -> u64 {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Every state the explorer produces is allowed, is the state its text
    /// names, matches the naive oracle byte for byte and ack for ack, and the
    /// incremental counts equal per-state judgements.
    #[test]
    fn every_produced_state_is_allowed_and_agrees_with_the_oracle(t in trial(), seed in any::<u64>()) {
        let p = Payloads::build(&t.spec);
        let model = PowerLossModel::build(&t.spec, &p, &t.facts, &t.cfg).unwrap();
        let naive = NaiveModel::build(&t.spec, &p, &t.facts);
        prop_assert_eq!(model.sizes(), &naive.sizes[..]);
        let judge = AckJudge::build(&model);
        let witnesses: Vec<ChoiceVector> =
            (0..judge.acks().len()).filter_map(|a| judge.explain(&model, a)).map(|(_, c)| c).collect();
        let plan = ExplorationPlan::new(&model, &t.cfg, seed, &witnesses);
        let mut tracker = AckTracker::new(&judge);
        let mut direct = vec![judge::StatusCounts::default(); judge.acks().len()];
        let mut choices = HashSet::new();
        let mut files = HashSet::new();
        let unit = model.unit_size() as usize;
        let visited = explore(&model, &plan, true, Some(&mut tracker), |v| {
            let bytes = v.bytes.unwrap();
            if let Err(e) = model.allows(bytes, v.len) {
                panic!("state {} forbidden: {e}", model.crash_state(v.choice));
            }
            let text = model.crash_state(v.choice).to_string();
            let parsed: CrashState = text.parse().unwrap();
            assert_eq!(&model.resolve(&parsed).unwrap(), v.choice, "{}", text);
            let (naive_bytes, owners) = naive.state(&parsed, unit);
            assert!(bytes == &naive_bytes[..], "state {text}: model and oracle bytes differ");
            let statuses = judge.evaluate(v.choice);
            assert_eq!(statuses, naive.judge(&t.spec, &owners), "state {}", text);
            for (a, s) in statuses.into_iter().enumerate() {
                match s {
                    AckStatus::Survived => direct[a].survived += 1,
                    AckStatus::Torn => direct[a].torn += 1,
                    AckStatus::Lost => direct[a].lost += 1,
                    AckStatus::Truncated => direct[a].truncated += 1,
                }
            }
            choices.insert(v.choice.clone());
            files.insert(hash(bytes));
        });
        prop_assert_eq!(visited as usize, choices.len(), "no state twice");
        for (a, d) in direct.iter().enumerate() {
            prop_assert_eq!(tracker.counts(a), *d, "ack {}", a);
            // Guaranteed exactly when no checked state loses or tears it
            // (witnesses are checked, so sampling cannot hide a loss).
            prop_assert_eq!(judge.guaranteed(a), d.lost + d.torn == 0, "ack {}", a);
        }
        // The extremes are always produced, by choice and by bytes.
        prop_assert!(choices.contains(&model.all_floor()));
        prop_assert!(choices.contains(&model.all_newest()));
        let [floor, newest] = naive.extremes();
        prop_assert!(files.contains(&hash(&floor)), "the oracle's all-floor file was not produced");
        prop_assert!(files.contains(&hash(&newest)), "the oracle's all-newest file was not produced");
        if plan.is_exhaustive() {
            prop_assert_eq!(Some(visited), model.state_count());
        }
    }

    /// Per unit, the allowed versions are exactly the oracle's page versions
    /// since the page's floor, restricted to the unit.
    #[test]
    fn allowed_versions_are_the_oracles(t in trial()) {
        let p = Payloads::build(&t.spec);
        let model = PowerLossModel::build(&t.spec, &p, &t.facts, &t.cfg).unwrap();
        let naive = NaiveModel::build(&t.spec, &p, &t.facts);
        let unit = model.unit_size() as usize;
        let mut file = vec![0u8; t.spec.file_size as usize];
        for u in model.units() {
            let (page, off) = ((u.range.start / PS) as usize, (u.range.start % PS) as usize);
            let want = naive.unit_versions(page, off, unit);
            let got: Vec<_> = u
                .allowed()
                .iter()
                .map(|v| {
                    v.write_into(&mut file);
                    (v.label(), file[u.range.start as usize..u.range.end as usize].to_vec())
                })
                .collect();
            prop_assert_eq!(got, want, "{}", u.id);
        }
        // Units the model never touched have one version in the oracle too.
        for page in 0..(t.spec.file_size / PS) as usize {
            for off in (0..PS as usize).step_by(unit) {
                let start = (page * PS as usize + off) as u64;
                if !model.units().iter().any(|u| u.range.start == start) {
                    prop_assert_eq!(naive.unit_versions(page, off, unit).len(), 1, "page {} at {}", page, off);
                }
            }
        }
    }

    /// A shared-mapping writer that syncs before every ack never loses or
    /// tears an acked op, in any state.
    #[test]
    fn syncing_before_every_ack_guarantees_every_ack(t in trial(), seed in any::<u64>()) {
        prop_assume!(t.spec.policy.syncs_before_ack() && t.spec.mapping == MappingKind::Shared && !t.truncates);
        let o = analyze(&t.spec, &Payloads::build(&t.spec), &t.facts, &t.cfg, seed);
        for a in &o.acks {
            prop_assert!(a.guaranteed && a.lost_states == 0 && a.torn_states == 0, "{:?}: {:?}", a, o.explanations);
        }
        prop_assert!(o.explanations.is_empty());
    }

    /// The all-newest state without a truncation in flight is what the
    /// process-crash model allows: the page cache at the crash.
    #[test]
    fn the_all_newest_state_is_a_process_crash_state(t in trial()) {
        let in_flight_truncate =
            t.facts.journal.in_flight.is_some_and(|i| matches!(t.spec.ops[i], Op::Truncate { .. }));
        prop_assume!(!in_flight_truncate);
        let p = Payloads::build(&t.spec);
        let model = PowerLossModel::build(&t.spec, &p, &t.facts, &t.cfg).unwrap();
        let newest = model.state_bytes(&model.all_newest());
        let v = verify(&t.spec, &p, &t.facts, &newest);
        let bad: Vec<_> = v.violations.iter().filter(|x| x.kind != ViolationKind::Exit).collect();
        prop_assert!(bad.is_empty(), "{:?}", bad);
    }
}
