//! `eio-sync` trials (`--crash eio-sync[:K]`): power-loss trials whose
//! writer first sees one data sync fail with `EIO` (the oracle's
//! [`SyncFailure`]); the power is cut at a later data sync or after the
//! writer's end, and the states are explored as for `power-loss`, with the
//! pages the failed sync left uncertain held at their floor or a version
//! up to the failure (`oracle/failed_writeback.rs`). This file turns the
//! plan into the oracle's fault and the oracle's outcome into the report's
//! facts.

use crate::oracle::syscalls::is_data_sync;
use crate::oracle::{OracleOutcome, SyncEffect, SyncFailure, WriterEnd};
use crate::program_plan::{PowerLossPlan, PowerLossPoint};
use crate::report::external_eio::{EioRange, EioSyncFacts};
use crate::vocab::process_end::signal_name;

/// The oracle's fault for an `eio-sync` plan; `None` for other plans.
pub(crate) fn fault(plan: &PowerLossPlan) -> Option<SyncFailure> {
    match plan.point {
        PowerLossPoint::FailedSync { failed, cut } => Some(SyncFailure { nth: failed, cut_before: cut }),
        _ => None,
    }
}

/// The data syncs a traced run made (what `eio-sync` trials fail).
pub(crate) fn data_syncs(outcome: &OracleOutcome) -> u64 {
    outcome.events.iter().filter(|e| is_data_sync(e.syscall, &e.args)).count() as u64
}

/// How a writer's run ended, in the report's words.
pub(crate) fn end_text(end: &WriterEnd) -> String {
    match end {
        WriterEnd::Exited { code } => format!("exited with status {code}"),
        WriterEnd::Signaled { signal } => format!("died of {}", signal_name(*signal)),
        WriterEnd::CrashPoint(_) | WriterEnd::Cancelled => "was running at the power cut".to_owned(),
    }
}

/// The facts of the failed sync of a traced run that printed `acks` ack
/// lines; `None` when the writer never reached the planned sync.
pub(crate) fn facts(outcome: &OracleOutcome, acks: u64) -> Option<EioSyncFacts> {
    let inj = outcome.injected.as_ref()?;
    let later: Vec<_> = outcome.events[inj.event + 1..]
        .iter()
        .filter(|e| is_data_sync(e.syscall, &e.args) && e.effect == SyncEffect::Copied)
        .collect();
    let retried = inj.retries > 0;
    Some(EioSyncFacts {
        nth: inj.nth,
        syscall: inj.syscall.name().to_owned(),
        covered: inj
            .covered
            .iter()
            .map(|r| EioRange {
                path: r.path.display().to_string(),
                offset: r.offset,
                len: r.len,
                uncertain_pages: r.uncertain_pages.len() as u64,
            })
            .collect(),
        acks_before: inj.acks_before.min(acks),
        acks_after: acks.saturating_sub(inj.acks_before),
        later_syncs: later.len() as u64,
        retried,
        writer_end: end_text(&outcome.end),
    })
}
