//! The power-loss engine: calibrate under the oracle, then per trial crash
//! the traced writer, build the state space, check states on `jobs` threads,
//! shrink the first failing state; and replay one trial or one state.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::explore::StateOrder;
use super::seen_states::{SeenStates, StateDigest};
use super::space::{Digits, Dim, StateSpace};
use super::state_dir::{write_layout, StateDir};
use super::state_text::StateText;
use crate::explore::ddmin::ddmin;
use crate::explore::state_text::Extreme;
use crate::external::checker::Checker;
use crate::external::config::{in_trial, ExternalConfig, Supervision};
use crate::external::dir_image::snapshot_dir;
use crate::external::process::AckLines;
use crate::external::traced::{run_writer_traced, CrashAt, TracedRun};
use crate::external::trial::{lossy, run_setup, sigbus_hint, TrialSlot};
use crate::external::{canonical, run_dir, ExternalError};
use crate::namespace::NsModel;
use crate::oracle::{CrashSignal, CrashSyscall, SyscallCrashPoint, WriterEnd};
use crate::program_plan::{PowerLossPlan, PowerLossPoint, TrialPlan};
use crate::report::checker_verdict::CheckerVerdict;
use crate::report::external::ReplayTarget;
use crate::report::external_power_loss::{
    PowerLossCalibration, PowerLossDelivery, PowerLossFile, PowerLossFinding, PowerLossTrialOutcome,
};

/// States per unit of work: one job checks them in order, so a state
/// directory moves from one to the next by rewriting what changed.
const CHUNK: u64 = 32;

/// Calibrate: setup and the writer to completion under the oracle, to time
/// it and count the calls that can be crash points. (The untraced clean run
/// has already shown that the checker accepts an uncrashed result.)
pub(crate) fn calibrate(
    config: &ExternalConfig,
    slot: &TrialSlot,
    supervision: &Supervision<'_>,
) -> Result<PowerLossCalibration, ExternalError> {
    slot.clear()?;
    // The same CRASHLAB_SEED as the untraced clean run.
    let seed = TrialPlan::clean_writer_seed(config.seed).to_string();
    run_setup(config, &slot.dir, &seed, supervision)?;
    let run = run_writer_traced(config, &slot.dir, &seed, CrashAt::Never, false, supervision, false)?;
    let outcome = run.outcome.as_ref().expect("an uncrashed run starts the writer");
    if outcome.end != (WriterEnd::Exited { code: 0 }) {
        return Err(writer_failed(config, &slot.dir, &run, &outcome.end, "on the traced clean run (no crash)"));
    }
    let mut by_syscall = BTreeMap::new();
    let mut calls = 0;
    for e in &outcome.events {
        if let Some(n) = e.ordinal {
            calls = calls.max(n);
            *by_syscall.entry(e.syscall.name().to_owned()).or_insert(0) += 1;
        }
    }
    let eio = config.crashes.contains(&crate::vocab::CrashKind::EioSync);
    Ok(PowerLossCalibration {
        traced_clean_ns: run.elapsed.as_nanos() as u64,
        sync_calls: calls,
        traced_calls: outcome.events.len() as u64,
        by_syscall,
        data_syncs: if eio { super::eio::data_syncs(outcome) } else { 0 },
    })
}

fn writer_failed(config: &ExternalConfig, dir: &Path, run: &TracedRun, end: &WriterEnd, when: &str) -> ExternalError {
    let how = match end {
        WriterEnd::Exited { code } => format!("exited with status {code}"),
        WriterEnd::Signaled { signal } => format!(
            "died of signal {}{}",
            crate::vocab::process_end::signal_name(*signal),
            sigbus_hint(crate::vocab::ProcessEnd::Signaled(*signal), dir)
        ),
        other => format!("ended with {other:?}"),
    };
    ExternalError::Failed {
        role: config.writer.role,
        flag: config.writer.role.flag(),
        command: config.writer.text.clone(),
        how: format!("{how} {when}; a writer must exit 0 when left alone"),
        stderr: run.stderr_first_line().map(|l| format!(" (stderr: {l})")).unwrap_or_default(),
    }
}

/// A crashed trial: what the writer acknowledged and the states a power
/// loss may leave.
pub(crate) struct Traced {
    pub plan: PowerLossPlan,
    pub delivery: PowerLossDelivery,
    pub lines: AckLines,
    pub space: StateSpace,
    pub order: StateOrder,
    /// What recording the write history cost and found.
    pub history: crate::page_history::HistoryStats,
    /// For a sampled order, each state resolved (`None`: an earlier state
    /// of the order resolves to the same, and is checked instead); empty for
    /// an exhaustive walk, which meets every resolved state as itself.
    sampled: Vec<Option<Digits>>,
    /// The stacks of its acks and syncs, for a violation's attribution.
    stacks: super::attribution::TrialStacks,
    /// `eio-sync`: the failed sync and what the writer did next.
    eio: Option<crate::report::external_eio::EioSyncFacts>,
}

impl Traced {
    pub(crate) fn files(&self) -> Vec<PowerLossFile> {
        let floor = self.space.ns.floor();
        let newest = self.space.ns.newest();
        self.space
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| PowerLossFile {
                path: f.path.display().to_string(),
                floor_size: floor.sizes.get(&f.id).copied().unwrap_or(0),
                newest_size: newest.sizes.get(&f.id).copied().unwrap_or(f.newest.len() as u64),
                dirty_units: self.space.file_dims(i).len() as u64,
                intermediate_versions: self.space.file_dims(i).map(|d| self.space.radix(d) as u64 - 2).sum(),
            })
            .collect()
    }

    /// The `index`-th state of the order, as checked: resolved to a state a
    /// power loss may leave. `None` when an exhaustive walk meets a state
    /// that is another one's duplicate (that one is checked in its turn).
    fn state(&self, index: u64) -> Option<Digits> {
        if !self.order.is_exhaustive() {
            return self.sampled[index as usize].clone();
        }
        let bits = self.order.state(index);
        (self.space.canonical(&bits) == bits).then_some(bits)
    }
}

/// Setup, the writer under the oracle crashed at the plan's point, then the
/// crashed directory read back (the page cache: never synced) and its
/// states built.
pub(crate) fn trace_trial(
    config: &ExternalConfig,
    slot: &TrialSlot,
    plan: &PowerLossPlan,
    clean: Duration,
    supervision: &Supervision<'_>,
) -> Result<Traced, ExternalError> {
    trace_trial_with(config, slot, plan, clean, supervision, &mut || Ok(()))
}

/// [`trace_trial`], with `after_setup` run between the setup and the
/// writer (a real cut makes the setup's directory durable there, as the
/// model assumes it is).
pub(crate) fn trace_trial_with(
    config: &ExternalConfig,
    slot: &TrialSlot,
    plan: &PowerLossPlan,
    clean: Duration,
    supervision: &Supervision<'_>,
    after_setup: &mut dyn FnMut() -> Result<(), ExternalError>,
) -> Result<Traced, ExternalError> {
    slot.clear()?;
    let seed = plan.writer_seed.to_string();
    run_setup(config, &slot.dir, &seed, supervision)?;
    after_setup()?;
    let crash = match plan.point {
        PowerLossPoint::Syscall { nth, when } => CrashAt::Syscall(SyscallCrashPoint::new(nth, CrashSyscall::ALL, when)),
        PowerLossPoint::Call { nth, when } => {
            CrashAt::Syscall(SyscallCrashPoint::at_recorded(nth, when, CrashSignal::Kill))
        }
        PowerLossPoint::Time { .. } => {
            CrashAt::Time(plan.crash_after(clean).expect("a timed point"), CrashSignal::Kill)
        }
        PowerLossPoint::FailedSync { .. } => CrashAt::FailSync(super::eio::fault(plan).expect("an eio-sync point")),
    };
    // Stacks: a violation's attribution.
    let run = run_writer_traced(config, &slot.dir, &seed, crash, config.power_loss.history.record, supervision, true)?;
    let delivery = match (&run.outcome, run.killed_at) {
        (None, at) => PowerLossDelivery::BeforeExec { at_ns: at.unwrap_or_default().as_nanos() as u64 },
        (Some(o), at) => match &o.end {
            WriterEnd::CrashPoint(hit) => {
                let (nth, syscall, when) = (hit.nth, hit.syscall.name().to_owned(), hit.when);
                match plan.point {
                    PowerLossPoint::Call { .. } => PowerLossDelivery::Call { nth, syscall, when },
                    PowerLossPoint::FailedSync { .. } => PowerLossDelivery::DataSync { nth, syscall },
                    _ => PowerLossDelivery::Syscall { nth, syscall, when },
                }
            }
            WriterEnd::Cancelled => PowerLossDelivery::Time { at_ns: at.unwrap_or_default().as_nanos() as u64 },
            WriterEnd::Exited { code: 0 } => PowerLossDelivery::WriterFinishedFirst,
            // A writer may stop on the EIO it was given: a result, not an error.
            end @ (WriterEnd::Exited { .. } | WriterEnd::Signaled { .. })
                if matches!(plan.point, PowerLossPoint::FailedSync { .. }) =>
            {
                PowerLossDelivery::WriterEnded { how: super::eio::end_text(end) }
            }
            end => {
                return Err(writer_failed(
                    config,
                    &slot.dir,
                    &run,
                    end,
                    "on its own, before it was crashed (under the durability oracle)",
                ))
            }
        },
    };
    traced_of_run(config, &slot.dir, plan, delivery, run, "power-loss")
}

/// The states of a traced run in `dir` (whatever ended it: a crash point,
/// the writer's own end), to be checked as trial `plan` of `kind`.
pub(crate) fn traced_of_run(
    config: &ExternalConfig,
    dir: &Path,
    plan: &PowerLossPlan,
    delivery: PowerLossDelivery,
    run: TracedRun,
    kind: &str,
) -> Result<Traced, ExternalError> {
    let (trace, mut images) = match &run.outcome {
        Some(o) => super::images::of_outcome(o),
        // Nothing ran: everything is as the setup left it, durable.
        None => super::images::of_setup(&snapshot_dir(dir)?),
    };
    let ns = NsModel::new(trace, config.power_loss.fs_model).map_err(|e| {
        ExternalError::BadInput(format!(
            "{kind} trial {}: {e}; crashlab cannot tell what the writer's directory held (did another program change it?)",
            plan.trial
        ))
    })?;
    super::images::label(&ns, &mut images);
    let page = crate::page_size::page_size();
    let space = StateSpace::new(ns, images, config.tear.unwrap_or(page), page);
    let order = StateOrder::new(space.radices(), &config.power_loss.explore, plan.state_seed);
    // An exhaustive walk meets every resolved state as itself (others are
    // skipped as they come); a sample may resolve several states to one.
    let sampled = if order.is_exhaustive() {
        Vec::new()
    } else {
        let mut seen = std::collections::HashSet::new();
        (0..order.len())
            .map(|i| {
                let bits = space.canonical(&order.state(i));
                seen.insert(bits.clone()).then_some(bits)
            })
            .collect()
    };
    let history = run.outcome.as_ref().map(|o| o.history).unwrap_or_default();
    let stacks = super::attribution::TrialStacks::of(run.outcome.as_ref());
    let eio = run.outcome.as_ref().and_then(|o| super::eio::facts(o, run.lines.lines.len() as u64));
    Ok(Traced { plan: *plan, delivery, lines: run.lines, space, order, history, sampled, stacks, eio })
}

/// One job's state directory and checker.
struct Job {
    sd: StateDir,
    checker: Checker,
}

/// A state's verdict, and whether the checker ran for it (not when a state
/// with a byte-identical directory was checked already: its verdict).
struct Judged {
    verdict: CheckerVerdict,
    ran: bool,
}

/// Judge `bits` of trial `key`: the verdict of a state of `seen` with a
/// byte-identical directory, or the job's checker's in its state directory.
fn check(
    ctx: &Ctx<'_>,
    job: &mut Job,
    seen: &Mutex<SeenStates>,
    key: u64,
    t: &Traced,
    bits: &Digits,
) -> Result<Judged, ExternalError> {
    let digest = StateDigest::of(&t.space, bits);
    if let Some(verdict) = seen.lock().unwrap().verdict(&t.space, bits, &digest) {
        ctx.config.progress.state_skipped();
        return Ok(Judged { verdict, ran: false });
    }
    job.sd.show(key, &t.space, &t.lines.lines, bits)?;
    ctx.config.progress.state_checked();
    let verdict = job.checker.check(&job.sd.dir, &job.sd.acks, t.plan.writer_seed, ctx.supervision).map_err(|e| {
        let state = StateText::of(&t.space, bits, Extreme::Newest).to_string();
        let line = ctx.config.replay_line(replay_target(ctx, t.plan.trial)).with_state(&state);
        in_trial(e, format!("power-loss trial {} in state {state}", t.plan.trial), &line)
    })?;
    job.sd.verify(&t.space)?;
    seen.lock().unwrap().record(bits, &digest, &verdict);
    Ok(Judged { verdict, ran: true })
}

/// What checking a trial's states needs besides the state directory.
struct Ctx<'a> {
    config: &'a ExternalConfig,
    supervision: &'a Supervision<'a>,
    clean_ns: u64,
    calls: u64,
    /// `eio-sync` trials (`calls` counts data syncs).
    eio: bool,
    /// The replay target of trials that are not power-loss or `eio-sync`
    /// trials (an `enospc` trial's states after the full disk).
    other: Option<ReplayTarget>,
}

/// Shrink the first failing state (`first`, index `first_index`) to a
/// minimal explanation: a 1-minimal set of units not at their newest
/// content (each at the version the failing state gave it: its floor or an
/// intermediate version) and operations lost, with everything else newest;
/// then, with that set, a 1-minimal set of units at their newest content
/// with every other unit at its floor (operations as in the first set's
/// state).
fn shrink(
    ctx: &Ctx<'_>,
    job: &mut Job,
    seen: &Mutex<SeenStates>,
    key: u64,
    t: &Traced,
    first_index: u64,
    first_reason: &str,
) -> Result<(PowerLossFinding, Runs), ExternalError> {
    let space = &t.space;
    let n = space.dim_count();
    let first = t.state(first_index).expect("a failing state was checked");
    let mut known: HashMap<Digits, Option<String>> = HashMap::new();
    known.insert(first.clone(), Some(first_reason.to_owned()));
    let mut runs = Runs::default();
    let mut test = |bits: Digits, known: &mut HashMap<Digits, Option<String>>| -> Result<bool, ExternalError> {
        // Only a choice that is its own resolved state counts: losing an
        // early operation can make later ones impossible (a rename whose
        // source was never created), and an explanation must name what was
        // lost, not what it dragged along. Such a choice is taken as
        // passing, without running the checker.
        if space.canonical(&bits) != bits {
            return Ok(false);
        }
        if let Some(r) = known.get(&bits) {
            return Ok(r.is_some());
        }
        let judged = check(ctx, job, seen, key, t, &bits)?;
        runs.add(judged.ran);
        let v = judged.verdict;
        let failed = v.is_violation();
        known.insert(bits, v.reason().map(str::to_owned));
        Ok(failed)
    };
    let budget = ctx.config.power_loss.shrink_budget;
    // Everything newest but `kept`, which hold their digit in `reference`
    // (the failing state the set comes from).
    let newest_but = |reference: &Digits, kept: &[usize]| {
        let mut b = space.extreme(true);
        kept.iter().for_each(|&d| b.set(d, reference.get(d)));
        b
    };
    let mut reference = first.clone();
    let not_newest = space.members(&first, false);
    let mut floor_set = ddmin(&not_newest, budget, |x| test(newest_but(&first, x), &mut known))?;
    // Blame the latest operation that explains the failure: an operation
    // lost early drags the later ones that need it (losing the creation of
    // "state.tmp" loses its rename too), which is true but indirect. While
    // letting a cause persist, with what then has to be lost instead, still
    // fails, move the blame there and minimize again.
    let ops = space.op_count();
    'blame: for _ in 0..2 * ops {
        let causes: Vec<usize> = floor_set.set.iter().copied().filter(|&c| c < ops).collect();
        for c in causes {
            let rest: Vec<usize> = floor_set.set.iter().copied().filter(|&d| d != c).collect();
            let b = space.canonical(&newest_but(&reference, &rest));
            let candidate = space.members(&b, false);
            if !space.is_newest(&b, c) || candidate == floor_set.set {
                continue;
            }
            if test(b.clone(), &mut known)? {
                reference = b;
                floor_set = ddmin(&candidate, budget, |x| test(newest_but(&reference, x), &mut known))?;
                continue 'blame;
            }
        }
        break;
    }
    let minimal = newest_but(&reference, &floor_set.set);
    // The second step asks which *content* the failure needs: namespace
    // operations stay as in the minimal state (every other one persisted),
    // and so do the units of the first set (at their version). Losing the
    // other operations too would need their whole history lost with them
    // (a choice must be its own resolved state), a long list that explains
    // nothing.
    let others: Vec<usize> = (ops..n).filter(|d| !floor_set.set.contains(d)).collect();
    let second_base = |y: &[usize]| {
        let mut b = space.extreme(false);
        floor_set.set.iter().for_each(|&d| b.set(d, minimal.get(d)));
        y.iter().for_each(|&d| space.set_extreme(&mut b, d, true));
        (0..ops).filter(|d| !floor_set.set.contains(d)).for_each(|d| space.set_extreme(&mut b, d, true));
        b
    };
    let newest_set = ddmin(&others, budget, |y| test(second_base(y), &mut known))?;
    let second = second_base(&newest_set.set);
    let reason = known.get(&minimal).cloned().flatten().expect("ddmin returns a set it saw fail");
    let name = |d: usize| space.dim_name(d);
    // "X at its durable floor" or "X holds the version written between call
    // 41 and call 42" for a unit; "OP was lost: WHY" for an operation.
    let at_floor = |d: usize| match space.dims()[d] {
        Dim::Op(u) => space.ns.explain_lost(u),
        Dim::Unit { .. } if minimal.get(d) == 0 => format!("{} at its durable floor", name(d)),
        Dim::Unit { .. } => format!("{} holds {}", name(d), space.version_name(d, minimal.get(d))),
    };
    let at_newest = |d: usize| match space.dims()[d] {
        Dim::Op(_) => format!("{} persisted", name(d)),
        Dim::Unit { .. } => format!("{} holds its newest content", name(d)),
    };
    let list = |ds: &[usize], f: &dyn Fn(usize) -> String| ds.iter().map(|&d| f(d)).collect::<Vec<_>>().join(", ");
    let floor_names: Vec<String> = floor_set.set.iter().map(|&d| name(d)).collect();
    let newest_names: Vec<String> = newest_set.set.iter().map(|&d| name(d)).collect();
    // Of the operations lost, those that are lost only because another one
    // is (a create of a name whose unlink was lost): named after the causes.
    let (dragged, causes): (Vec<usize>, Vec<usize>) = floor_set.set.iter().partition(|&&d| {
        matches!(space.dims()[d], Dim::Op(_)) && {
            let mut b = minimal.clone();
            space.set_extreme(&mut b, d, true);
            !space.is_newest(&space.canonical(&b), d)
        }
    });
    let dragged_text = match dragged.len() {
        0 => String::new(),
        k => {
            let shown: Vec<String> = dragged.iter().take(3).map(|&d| name(d)).collect();
            let more = if k > 3 { format!(" and {} more", k - 3) } else { String::new() };
            format!(
                " (lost with it, since {} on it: {}{more})",
                if k == 1 { "it depends" } else { "they depend" },
                shown.join(", ")
            )
        }
    };
    let minimal_text = match floor_set.set.len() {
        0 => format!(
            "none: the checker fails with every unit at its newest content and every operation persisted, which is what a process crash leaves{}",
            match newest_set.set.len() {
                0 => " (and with every unit at its durable floor and every operation lost)".to_owned(),
                _ => format!(
                    " (with everything else at its durable floor or lost, it fails as soon as {})",
                    list(&newest_set.set, &at_newest)
                ),
            }
        ),
        _ => format!(
            "{}{}{}",
            list(&causes, &at_floor),
            dragged_text,
            if newest_set.set.is_empty() {
                " (it fails with everything else newest, and with everything else at its floor or lost)".to_owned()
            } else {
                format!(" while {}", list(&newest_set.set, &at_newest))
            }
        ),
    };
    let one_minimal = floor_set.one_minimal && newest_set.one_minimal;
    let attribution = t.stacks.attribute(&t.space, &floor_set.set, &reason, &t.lines.lines);
    let located = match attribution.sentence() {
        s if s.is_empty() => s,
        s => format!("; {s}"),
    };
    let explanation = format!(
        "checker failed: {reason}; minimal set{}: {minimal_text}{located}",
        if one_minimal { "" } else { " (shrink budget spent: not known to be 1-minimal)" }
    );
    let finding = PowerLossFinding {
        reason,
        state: StateText::of(&t.space, &minimal, Extreme::Newest).to_string(),
        floor_set: floor_names,
        newest_set: newest_names,
        newest_set_state: StateText::of(&t.space, &second, Extreme::Floor).to_string(),
        one_minimal,
        first_state: StateText::shortest(&t.space, &first).to_string(),
        first_state_kind: t.order.name(first_index),
        first_reason: first_reason.to_owned(),
        explanation,
        attribution: (attribution != Default::default()).then(|| Box::new(attribution)),
    };
    Ok((finding, runs))
}

/// Checker runs, and states whose verdict was taken from a byte-identical one.
#[derive(Debug, Default, Clone, Copy)]
struct Runs {
    checker: u64,
    skipped: u64,
}

impl Runs {
    fn add(&mut self, ran: bool) {
        if ran {
            self.checker += 1;
        } else {
            self.skipped += 1;
        }
    }

    fn plus(self, o: Runs) -> Runs {
        Runs { checker: self.checker + o.checker, skipped: self.skipped + o.skipped }
    }
}

fn outcome(
    t: &Traced,
    first_fail: Option<u64>,
    runs: Runs,
    finding: Option<PowerLossFinding>,
) -> PowerLossTrialOutcome {
    PowerLossTrialOutcome {
        plan: t.plan,
        delivery: t.delivery.clone(),
        acks: lossy(&t.lines.lines),
        partial_line: (!t.lines.partial.is_empty()).then(|| String::from_utf8_lossy(&t.lines.partial).into_owned()),
        files: t.files(),
        dims: t.space.dim_count() as u64,
        namespace_ops: t.space.op_count() as u64,
        exhaustive: t.order.is_exhaustive(),
        states_total: t.order.len(),
        states_checked: first_fail.map_or(t.order.len(), |i| i + 1),
        checker_runs: runs.checker,
        states_skipped: runs.skipped as u32,
        verdict: match &finding {
            None => CheckerVerdict::Consistent,
            Some(f) => CheckerVerdict::Violation { reason: f.reason.clone() },
        },
        finding,
        history: t.history,
        eio: t.eio.clone(),
    }
}

/// A trial whose states are being checked.
struct Live {
    traced: Arc<Traced>,
    pending_chunks: usize,
    /// The lowest failing state index found so far, with its reason.
    first_fail: Option<(u64, String)>,
    runs: Runs,
    /// The trial's states judged so far, shared by the jobs checking it.
    seen: Arc<Mutex<SeenStates>>,
}

#[derive(Default)]
struct Sched {
    next_trial: usize,
    chunks: VecDeque<(usize, Range<u64>)>,
    live: HashMap<usize, Live>,
    busy: usize,
    outcomes: Vec<Option<PowerLossTrialOutcome>>,
    error: Option<ExternalError>,
}

enum Task {
    Trace(usize),
    Check(usize, Range<u64>),
}

/// Run the power-loss trials `plans` on `config.jobs` threads. The unit of
/// work is a trace (one trial's writer) or a chunk of one trial's states;
/// chunks go first, so at most `jobs` traced trials wait in memory. A trial
/// is finished (shrunk, reported) by whichever job checks its last chunk.
pub(crate) fn run_power_loss_trials(
    config: &ExternalConfig,
    run_dir: &Path,
    plans: &[PowerLossPlan],
    calibration: &PowerLossCalibration,
    supervision: &Supervision<'_>,
    abandon: &AtomicBool,
) -> Result<Vec<PowerLossTrialOutcome>, ExternalError> {
    let clean = Duration::from_nanos(calibration.traced_clean_ns);
    let eio = plans.iter().any(|p| matches!(p.point, PowerLossPoint::FailedSync { .. }));
    let calls = if eio { calibration.data_syncs } else { calibration.sync_calls };
    let ctx = Ctx { config, supervision, clean_ns: calibration.traced_clean_ns, calls, eio, other: None };
    // Its own directories: a run makes power-loss trials, then eio-sync ones.
    let prefix = if eio { "eio" } else { "pl" };
    let sched = Mutex::new(Sched { outcomes: vec![None; plans.len()], ..Sched::default() });
    let wake = Condvar::new();
    std::thread::scope(|scope| {
        for job in 0..config.jobs.min(plans.len()).max(1) {
            let (sched, wake, ctx) = (&sched, &wake, &ctx);
            scope.spawn(move || {
                let fail = |e: ExternalError| {
                    let mut s = sched.lock().unwrap();
                    if !e.is_interrupted() {
                        s.error.get_or_insert(e);
                    }
                    abandon.store(true, Ordering::SeqCst);
                    wake.notify_all();
                };
                let slot = match TrialSlot::create(run_dir, &format!("{prefix}-job-{job}")) {
                    Ok(s) => s,
                    Err(e) => return fail(e),
                };
                let state_name = format!("{prefix}-job-{job}-state");
                // One state directory and one checker (server) per job; the
                // server is killed when the job ends, on every path.
                let mut job = Job {
                    sd: StateDir::new(run_dir.join(&state_name), run_dir.join(format!("{state_name}.acks"))),
                    checker: Checker::for_job(config, run_dir.join(format!("{prefix}-job-{job}-server"))),
                };
                loop {
                    let task = {
                        let mut s = sched.lock().unwrap();
                        loop {
                            if s.error.is_some() || supervision.stopped() {
                                return;
                            }
                            if let Some((i, r)) = s.chunks.pop_front() {
                                s.busy += 1;
                                break Task::Check(i, r);
                            }
                            if s.next_trial < plans.len() {
                                s.next_trial += 1;
                                s.busy += 1;
                                break Task::Trace(s.next_trial - 1);
                            }
                            if s.busy == 0 {
                                return;
                            }
                            // Woken when work appears; the timeout re-reads the cancel flag.
                            s = wake.wait_timeout(s, Duration::from_millis(50)).unwrap().0;
                        }
                    };
                    let result = match task {
                        Task::Trace(i) => trace_task(ctx, &slot, &plans[i], clean).map(|t| {
                            let n = t.order.len();
                            let ranges: Vec<Range<u64>> =
                                (0..n.div_ceil(CHUNK)).map(|c| c * CHUNK..((c + 1) * CHUNK).min(n)).collect();
                            let mut s = sched.lock().unwrap();
                            s.live.insert(
                                i,
                                Live {
                                    traced: Arc::new(t),
                                    pending_chunks: ranges.len(),
                                    first_fail: None,
                                    runs: Runs::default(),
                                    seen: Arc::default(),
                                },
                            );
                            s.chunks.extend(ranges.into_iter().map(|r| (i, r)));
                        }),
                        Task::Check(i, range) => check_task(ctx, sched, &mut job, i, range),
                    };
                    let mut s = sched.lock().unwrap();
                    s.busy -= 1;
                    wake.notify_all();
                    drop(s);
                    if let Err(e) = result {
                        return fail(e);
                    }
                }
            });
        }
    });
    if supervision.cancel.load(Ordering::SeqCst) {
        return Err(ExternalError::Interrupted);
    }
    let s = sched.into_inner().unwrap();
    if let Some(e) = s.error {
        return Err(e);
    }
    Ok(s.outcomes.into_iter().map(|o| o.expect("every trial finished")).collect())
}

fn replay_target(ctx: &Ctx<'_>, trial: u32) -> ReplayTarget {
    if let Some(t) = ctx.other {
        return t;
    }
    if ctx.eio {
        return ReplayTarget::EioSync { trial, clean_ns: ctx.clean_ns, syncs: ctx.calls };
    }
    ReplayTarget::PowerLoss { trial, clean_ns: ctx.clean_ns, calls: ctx.calls }
}

fn trace_task(ctx: &Ctx<'_>, slot: &TrialSlot, plan: &PowerLossPlan, clean: Duration) -> Result<Traced, ExternalError> {
    trace_trial(ctx.config, slot, plan, clean, ctx.supervision).map_err(|e| {
        let line = ctx.config.replay_line(replay_target(ctx, plan.trial));
        let kind = if ctx.eio { "eio-sync" } else { "power-loss" };
        in_trial(e, format!("{kind} trial {}", plan.trial), &line)
    })
}

fn check_task(
    ctx: &Ctx<'_>,
    sched: &Mutex<Sched>,
    job: &mut Job,
    i: usize,
    range: Range<u64>,
) -> Result<(), ExternalError> {
    let (traced, seen) = {
        let s = sched.lock().unwrap();
        (s.live[&i].traced.clone(), s.live[&i].seen.clone())
    };
    let key = i as u64;
    let mut runs = Runs::default();
    let mut found = None;
    for index in range {
        // A lower failing state is known: this one cannot be the first.
        if sched.lock().unwrap().live[&i].first_fail.as_ref().is_some_and(|(f, _)| *f < index) {
            break;
        }
        let Some(bits) = traced.state(index) else { continue };
        let judged = check(ctx, job, &seen, key, &traced, &bits)?;
        runs.add(judged.ran);
        if let CheckerVerdict::Violation { reason } = judged.verdict {
            found = Some((index, reason));
            break;
        }
    }
    let finished = {
        let mut s = sched.lock().unwrap();
        let live = s.live.get_mut(&i).expect("live while chunks are pending");
        live.runs = live.runs.plus(runs);
        if let Some((index, reason)) = found {
            if live.first_fail.as_ref().is_none_or(|(f, _)| index < *f) {
                live.first_fail = Some((index, reason));
            }
        }
        live.pending_chunks -= 1;
        if live.pending_chunks == 0 {
            s.live.remove(&i)
        } else {
            None
        }
    };
    let Some(live) = finished else { return Ok(()) };
    let t = &live.traced;
    let (finding, shrink_runs) = match &live.first_fail {
        Some((index, reason)) => {
            let (f, r) = shrink(ctx, job, &seen, key, t, *index, reason)?;
            (Some(f), r)
        }
        None => (None, Runs::default()),
    };
    let o = outcome(t, live.first_fail.as_ref().map(|f| f.0), live.runs.plus(shrink_runs), finding);
    sched.lock().unwrap().outcomes[i] = Some(o);
    ctx.config.progress.trial_done();
    Ok(())
}

/// What a power-loss replay re-created. (One per `crashlab replay`: the
/// variants' sizes do not matter.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "replayed", rename_all = "kebab-case")]
pub enum PowerLossReplayed {
    /// The whole trial: every state, then the shrink.
    Trial(PowerLossTrialOutcome),
    /// One state of the trial, checked.
    State {
        plan: PowerLossPlan,
        delivery: PowerLossDelivery,
        acks: Vec<String>,
        files: Vec<PowerLossFile>,
        /// The state as given, and as it reads against this rerun.
        state: String,
        resolved: String,
        /// Items of the state that name nothing in this rerun.
        notes: Vec<String>,
        verdict: CheckerVerdict,
        /// Where the state's directory was written (`--write-state`).
        written_to: Option<PathBuf>,
    },
}

/// Re-create power-loss trial `trial` (its writer seed and crash point from
/// `config.seed` and `calls`; a timed point as a fraction of `clean_ns`) and
/// either check the one state `state` (optionally writing its directory to
/// `write_state`, which must not exist) or explore the trial again whole. A
/// crash at a sync call replays exactly for a deterministic writer; a timed
/// crash replays the time, not the instruction it hit.
pub fn replay_power_loss(
    config: &ExternalConfig,
    trial: u32,
    clean_ns: u64,
    calls: u64,
    state: Option<&StateText>,
    write_state: Option<&Path>,
    cancel: &AtomicBool,
) -> Result<PowerLossReplayed, ExternalError> {
    config.validate()?;
    if let Some(p) = write_state.filter(|p| p.exists()) {
        return Err(ExternalError::BadInput(format!("--write-state {}: already exists", p.display())));
    }
    let tmp = run_dir(&config.dir)?;
    let dir = canonical(tmp.path())?;
    let supervision = config.supervision(cancel);
    // An `eio-sync` replay: `calls` counts data syncs.
    let eio = config.crashes.contains(&crate::vocab::CrashKind::EioSync);
    let ctx = Ctx { config, supervision: &supervision, clean_ns, calls, eio, other: None };
    let plan = if eio {
        PowerLossPlan::eio_sync(config.seed, trial, calls, config.eio_at)
            .ok_or_else(|| ExternalError::BadInput("--calls 0: an eio-sync trial needs a data sync to fail".into()))?
    } else {
        PowerLossPlan::new(config.seed, trial, calls, config.points)
    };
    let slot = TrialSlot::create(&dir, "replay")?;
    let t = trace_task(&ctx, &slot, &plan, Duration::from_nanos(clean_ns))?;
    let mut job = Job {
        sd: StateDir::new(dir.join("replay-state"), dir.join("replay-state.acks")),
        checker: Checker::for_job(config, dir.join("replay-server")),
    };
    let seen = Mutex::new(SeenStates::default());
    let mut line = config.replay_line(replay_target(&ctx, trial));
    line.state = state.map(|s| s.to_string());
    let name = format!("{} trial {trial}", if eio { "eio-sync" } else { "power-loss" });
    let result = (|| match state {
        Some(text) => {
            let (bits, notes, verdict) = check_state_text(&ctx, &mut job, &seen, &t, text)?;
            if let Some(path) = write_state {
                std::fs::create_dir_all(path)
                    .map_err(|e| ExternalError::io(format!("--write-state: cannot create {}", path.display()), e))?;
                write_layout(path, &t.space, &bits)?;
            }
            Ok(PowerLossReplayed::State {
                plan,
                delivery: t.delivery.clone(),
                acks: lossy(&t.lines.lines),
                files: t.files(),
                state: text.to_string(),
                resolved: StateText::of(&t.space, &bits, Extreme::Newest).to_string(),
                notes,
                verdict,
                written_to: write_state.map(Path::to_path_buf),
            })
        }
        None => Ok(PowerLossReplayed::Trial(explore_in_order(&ctx, &mut job, &seen, &t)?)),
    })();
    drop(tmp);
    result.map_err(|e| in_trial(e, name, &line))
}

/// Resolve `text` against the states of `t` and check the state it names:
/// the state, notes on what it named that this trial lacks, the verdict.
fn check_state_text(
    ctx: &Ctx<'_>,
    job: &mut Job,
    seen: &Mutex<SeenStates>,
    t: &Traced,
    text: &StateText,
) -> Result<(Digits, Vec<String>, CheckerVerdict), ExternalError> {
    let (bits, mut notes) = text.resolve(&t.space).map_err(|e| ExternalError::BadInput(format!("--state: {e}")))?;
    let resolved = t.space.canonical(&bits);
    if resolved != bits {
        notes.push(
            "some operations chosen to persist cannot without an operation they need, which was lost: \
             they are lost too (see the resolved state)"
                .to_owned(),
        );
    }
    let verdict = check(ctx, job, seen, 0, t, &resolved)?.verdict;
    Ok((resolved, notes, verdict))
}

/// Check the states of `t` in order on one job, up to the first failing
/// one, and shrink it: what a replay, and an `enospc` trial's states after
/// the full disk, do without the scheduler.
fn explore_in_order(
    ctx: &Ctx<'_>,
    job: &mut Job,
    seen: &Mutex<SeenStates>,
    t: &Traced,
) -> Result<PowerLossTrialOutcome, ExternalError> {
    let mut first = None;
    let mut runs = Runs::default();
    for index in 0..t.order.len() {
        let Some(bits) = t.state(index) else { continue };
        let judged = check(ctx, job, seen, 0, t, &bits)?;
        runs.add(judged.ran);
        if let CheckerVerdict::Violation { reason } = judged.verdict {
            first = Some((index, reason));
            break;
        }
    }
    let (finding, shrink_runs) = match &first {
        Some((index, reason)) => {
            let (f, r) = shrink(ctx, job, seen, 0, t, *index, reason)?;
            (Some(f), r)
        }
        None => (None, Runs::default()),
    };
    Ok(outcome(t, first.map(|f| f.0), runs.plus(shrink_runs), finding))
}

/// What judging a trial's states on one job found: every state in order
/// (shrunk at the first failure), or the one state a replay named.
pub(crate) enum StatesJudged {
    All(Box<PowerLossTrialOutcome>),
    One { resolved: String, notes: Vec<String>, verdict: CheckerVerdict },
}

/// Judge the states of `t`, a trial that is not a power-loss or `eio-sync`
/// one (an `enospc` trial's states after the full disk; `target` replays
/// it), on one job whose state directory and checker server live under
/// `work`: every state, or only `state`.
pub(crate) fn judge_states(
    config: &ExternalConfig,
    supervision: &Supervision<'_>,
    work: &Path,
    t: &Traced,
    target: ReplayTarget,
    state: Option<&StateText>,
) -> Result<StatesJudged, ExternalError> {
    let ctx = Ctx { config, supervision, clean_ns: 0, calls: 0, eio: false, other: Some(target) };
    let name = |what: &str| {
        let mut n = work.as_os_str().to_owned();
        n.push(what);
        PathBuf::from(n)
    };
    let mut job = Job {
        sd: StateDir::new(name("-state"), name("-state.acks")),
        checker: Checker::for_job(config, name("-server")),
    };
    let seen = Mutex::new(SeenStates::default());
    match state {
        None => explore_in_order(&ctx, &mut job, &seen, t).map(|o| StatesJudged::All(Box::new(o))),
        Some(text) => {
            let (bits, notes, verdict) = check_state_text(&ctx, &mut job, &seen, t, text)?;
            let resolved = StateText::of(&t.space, &bits, Extreme::Newest).to_string();
            Ok(StatesJudged::One { resolved, notes, verdict })
        }
    }
}
