//! Hand-built trial outcomes and reports, for the tests of the external
//! report's readers and writers (merge, diff, html, junit, regressions).

use crate::program_plan::TrialPlan;
use crate::report::checker_verdict::CheckerVerdict;
use crate::report::external::*;
use crate::report::external_eio::{EioRange, EioSyncFacts};
use crate::report::external_power_loss::{
    aggregate_power_loss, PowerLossCalibration, PowerLossDelivery, PowerLossFinding, PowerLossSection,
    PowerLossTrialOutcome,
};
use crate::trial_space::Shard;
use crate::vocab::{CrashKind, Environment, ProcessEnd};

/// An `eio-sync` section of seed 5 and 6 data syncs: trial 0 failed
/// sync 3 of a writer that retried and acked (a violation), trial 1
/// one that exited with status 3 on the EIO (consistent).
pub fn eio_section() -> PowerLossSection {
    let facts = |retried: bool, acks_after: u64, end: &str| EioSyncFacts {
        nth: 3,
        syscall: "msync".into(),
        covered: vec![EioRange { path: "eio.log".into(), offset: 8192, len: 4096, uncertain_pages: 1 }],
        acks_before: 2,
        acks_after,
        later_syncs: retried as u64,
        retried,
        writer_end: end.into(),
    };
    let finding = PowerLossFinding {
        reason: "acked record 2 <missing>".into(),
        state: "newest:eio.log#p2=floor".into(),
        floor_set: vec!["eio.log page 2".into()],
        newest_set: vec![],
        newest_set_state: "floor:".into(),
        one_minimal: true,
        first_state: "floor:".into(),
        first_state_kind: "all units at their durable floor".into(),
        first_reason: "acked record 2 <missing>".into(),
        explanation: "checker failed: acked record 2 <missing>".into(),
        attribution: None,
    };
    let outcome = |t: u32, eio: EioSyncFacts, finding: Option<PowerLossFinding>| PowerLossTrialOutcome {
        plan: crate::program_plan::PowerLossPlan::eio_sync(5, t, 6, Some(3)).unwrap(),
        delivery: PowerLossDelivery::WriterFinishedFirst,
        acks: vec!["rec 2".into()],
        partial_line: None,
        files: vec![],
        dims: 1,
        namespace_ops: 0,
        exhaustive: true,
        states_total: 2,
        states_checked: 1,
        checker_runs: 1,
        states_skipped: 0,
        verdict: match &finding {
            Some(f) => CheckerVerdict::Violation { reason: f.reason.clone() },
            None => CheckerVerdict::Consistent,
        },
        finding,
        history: Default::default(),
        eio: Some(eio),
    };
    let outcomes = [
        outcome(0, facts(true, 1, "exited with status 0"), Some(finding)),
        outcome(1, facts(false, 0, "exited with status 3"), None),
    ];
    let calibration = PowerLossCalibration {
        traced_clean_ns: 1,
        sync_calls: 9,
        traced_calls: 20,
        by_syscall: Default::default(),
        data_syncs: 6,
    };
    aggregate_power_loss(None, 4096, 1 << 16, 64, calibration, &outcomes, &|t, _| format!("replay eio {t}"))
}

/// Trial `t` of a sigkill run of seed 5: killed after `t + 1` acks; a
/// violation when `failing`.
pub fn trial(t: u32, failing: bool) -> TrialOutcome {
    TrialOutcome {
        plan: TrialPlan::new(5, CrashKind::Sigkill, t),
        crash_at_ns: 1000 + t as u64,
        delivery: Delivery::Signal { signal: "SIGKILL".into() },
        writer_end: ProcessEnd::Signaled(libc::SIGKILL),
        acks: (0..=t).map(|i| format!("rec {i}")).collect(),
        partial_line: None,
        checker: if failing {
            CheckerVerdict::Violation { reason: format!("rec {t} <missing>") }
        } else {
            CheckerVerdict::Consistent
        },
    }
}

/// The report of a sigkill run of seed 5 whose trials are `outcomes`.
pub fn report_with(outcomes: &[TrialOutcome], shard: Option<Shard>) -> ExternalReport {
    let config = ExternalRunConfig {
        writer: "./w & <b>".into(),
        checker: "./c".into(),
        checker_server: false,
        setup: None,
        shell: false,
        crashes: vec![CrashKind::Sigkill],
        trials: 5,
        timeout_secs: 60,
        tear: None,
        allow_no_acks: false,
        shard,
        fs_model: None,
        history_off: false,
        history_every_us: None,
        points: None,
        real_fs: None,
        writeback: None,
        eio_at: None,
        capacity: None,
        capacity_fs: None,
    };
    let clean = CleanRun {
        writer_seed: 1,
        duration_ns: 2_000_000,
        acks: 10,
        last_ack: Some("rec 9".into()),
        checker: CheckerVerdict::Consistent,
        replay: "crashlab replay --writer ./w --checker ./c --crash clean --seed 5 --timeout 60".into(),
    };
    let replay = |t: u32| format!("crashlab replay --writer ./w --checker ./c --crash sigkill --seed 5 --trial {t}");
    let sections = vec![aggregate_section(CrashKind::Sigkill, outcomes, &replay)];
    let summary = ExternalSummary::of(&clean, &sections, None, None, false);
    ExternalReport {
        schema_version: EXTERNAL_SCHEMA_VERSION.into(),
        report_kind: EXTERNAL_REPORT_KIND.into(),
        protocol_version: PROTOCOL_VERSION,
        crashlab_version: "0.0.0-test".into(),
        run: ExternalRunInfo { started_at_unix: 1, duration_ms: 7, dir: "/tmp".into(), jobs: 2 },
        environment: Environment { kernel_release: "6.1.0-test".into(), fs_type: "ext4".into(), page_size: 4096 },
        seed: 5,
        config,
        clean_run: clean,
        traced_clean_run: None,
        crashes: sections,
        power_loss: None,
        power_loss_real: None,
        eio_sync: None,
        summary,
    }
}
