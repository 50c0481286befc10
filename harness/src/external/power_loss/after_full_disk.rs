//! `--crash enospc,power-loss`: a traced `enospc` trial is also judged at a
//! power loss at the writer's end, however it ended (died of `SIGBUS`,
//! stopped on an error, ran to its end). Its states are built from the
//! trace exactly as a `power-loss` trial's: floors are what completed syncs
//! made durable on the small filesystem, newest is what the filesystem held
//! at the end, plus the write history's intermediate versions. A sync that
//! failed (`ENOSPC`, `EDQUOT`, `EIO`) made nothing durable: the oracle
//! copies nothing for a call that returned an error
//! (`NoGuarantee::Failed`). The states are checked in order on one job (the
//! trial already holds one), the first failing one shrunk, as a replay does.

use super::engine::{judge_states, traced_of_run, StatesJudged};
use super::state_text::StateText;
use crate::external::config::{ExternalConfig, Supervision};
use crate::external::traced::TracedRun;
use crate::external::trial::TrialSlot;
use crate::external::ExternalError;
use crate::program_plan::{PowerLossPlan, PowerLossPoint, TrialPlan};
use crate::report::external::ReplayTarget;
use crate::report::external_enospc_power_loss::{EnospcPowerLoss, EnospcStates};
use crate::report::external_power_loss::PowerLossDelivery;
use crate::scenario::derive_seed;

/// How an `enospc` trial's states are replayed: the trial's replay target,
/// and the one state to check (`--state`), if any.
#[derive(Clone, Copy)]
pub(crate) struct StatesReplay<'a> {
    pub target: ReplayTarget,
    pub state: Option<&'a StateText>,
}

/// The power-loss plan of `enospc` trial `plan`: its writer seed, the
/// power cut after the writer's end, the states drawn from a seed of its
/// own.
fn plan_after_full_disk(seed: u64, plan: &TrialPlan) -> PowerLossPlan {
    let t = plan.trial.to_string();
    PowerLossPlan {
        trial: plan.trial,
        writer_seed: plan.writer_seed,
        point: PowerLossPoint::Time { at_ppm: 1_000_000 },
        state_seed: derive_seed(seed, &["external", "enospc", &t, "power-loss-states"]),
    }
}

/// Judge the states a power loss at the end of traced `enospc` trial
/// `plan` (its run `run`, in `slot`) may leave.
pub(crate) fn judge_after_full_disk(
    config: &ExternalConfig,
    supervision: &Supervision<'_>,
    slot: &TrialSlot,
    plan: &TrialPlan,
    run: TracedRun,
    replay: StatesReplay<'_>,
) -> Result<EnospcPowerLoss, ExternalError> {
    let pl_plan = plan_after_full_disk(config.seed, plan);
    let how = run.outcome.as_ref().map_or_else(|| "never started".to_owned(), |o| super::eio::end_text(&o.end));
    let delivery = PowerLossDelivery::WriterEnded { how };
    let traced = traced_of_run(config, &slot.dir, &pl_plan, delivery, run, "enospc")?;
    let work = slot.dir.with_file_name(format!(
        "{}-after-full-disk",
        slot.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    ));
    let files = traced.files();
    let dims = traced.space.dim_count() as u64;
    let states = match judge_states(config, supervision, &work, &traced, replay.target, replay.state)? {
        StatesJudged::All(o) => EnospcStates {
            files,
            dims,
            exhaustive: o.exhaustive,
            states_total: o.states_total,
            states_checked: o.states_checked,
            checker_runs: o.checker_runs,
            verdict: o.verdict,
            finding: o.finding.map(Box::new),
            state: None,
            notes: Vec::new(),
            replay: None,
        },
        StatesJudged::One { resolved, notes, verdict } => EnospcStates {
            files,
            dims,
            exhaustive: false,
            states_total: traced.order.len(),
            states_checked: 1,
            checker_runs: 1,
            verdict,
            finding: None,
            state: Some(resolved),
            notes,
            replay: None,
        },
    };
    Ok(EnospcPowerLoss::States(Box::new(states)))
}
