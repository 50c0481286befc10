//! The report of an external run: its types (serialized as JSON), the
//! aggregation of trial outcomes per crash kind, the replay line and the
//! human summary.
//!
//! Architecture Invariant: pure. Ordering is deterministic (sections in
//! the order of `--crash`, trials by index), so two runs with the same seed
//! list the same trials with the same plans. What a trial *found* (acks,
//! how the writer ended, the verdict) depends on timing: a random-time kill
//! lands wherever the writer happens to be.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use crate::namespace::FsModel;
use crate::program_plan::{ProgramPoints, TrialPlan};
use crate::report::checker_verdict::CheckerVerdict;
use crate::report::external_enospc::{capacity_text, is_full, EnospcSection, FullDiskTrace};
use crate::report::external_power_loss::{PowerLossCalibration, PowerLossSection};
use crate::summary_text::write_failure;
use crate::trial_space::Shard;
use crate::vocab::capacity::CapacityFs;
use crate::vocab::CrashKind;
use crate::vocab::CrashWhen;
use crate::vocab::Environment;
use crate::vocab::ProcessEnd;

/// Bumped in the major part when a reader of the old format would misread
/// the new one; in the minor part when fields are only added.
/// 1.1 added `power_loss` (the report's section for `--crash power-loss`)
/// and `config.tear`; 1.2 `summary.no_acks`, the verdict `nothing-acked`
/// and `config.allow_no_acks`; 1.3 `config.shard` (`run --writer --shard`),
/// and the crash kind `sigabrt` is also read as `abort`; 1.4 the
/// namespace model: `power_loss.fs_model`, each trial's `namespace_ops`,
/// state texts with `@CALL` items, and `floor_size` the size in the state
/// where every operation that may be lost was lost; 1.5 `--points
/// syscalls`: `config.points`, the delivery `call` and the power-loss point
/// `call`, `power_loss.calibration.traced_calls`; 1.6 the write history (`config.history_off`,
/// `config.history_every_us`, `power_loss.history_method`, `history`,
/// `files[].intermediate_versions`, `vN` state items) and `--checker-server`:
/// `config.checker_server`, and `states_skipped` (power-loss states
/// byte-identical to one already checked in their trial, not checked again)
/// in the power-loss section and each trial; and source attribution:
/// `finding.attribution` (the lost ack's and the syncs' call stacks,
/// symbolized); 1.7 `--crash enospc`: `config.capacity`, the delivery
/// `capacity` and the section's `enospc` ([`EnospcSection`]); 1.8 traced `enospc`: the
/// delivery's `traced` (first `ENOSPC` call, faulting store) or `not_traced`, and their counts.
pub const EXTERNAL_SCHEMA_VERSION: &str = "1.9";

/// The `report_kind` of every external report: what tells it from a
/// survival report (which has no `report_kind`).
pub const EXTERNAL_REPORT_KIND: &str = "external";

/// The workload protocol this crashlab speaks (see the module docs).
pub const PROTOCOL_VERSION: u32 = 1;

/// JSON pointers (with `*` for any array index) of fields that differ
/// between two runs with the same seed, even for a deterministic writer.
pub const EXTERNAL_NONDETERMINISTIC_FIELDS: &[&str] = &[
    "/run/started_at_unix",
    "/run/duration_ms",
    "/run/dir",
    "/run/jobs",
    "/environment/kernel_release",
    "/environment/fs_type",
    "/clean_run/duration_ns",
    "/crashes/*/crashed",
    "/crashes/*/finished_first",
    "/crashes/*/nothing_to_cut",
    "/crashes/*/died_of_sigbus",
    "/crashes/*/exited_after_cut",
    "/crashes/*/enospc",
    "/crashes/*/acks_seen",
    "/crashes/*/max_acks",
    "/crashes/*/consistent",
    "/crashes/*/violations",
    "/crashes/*/writer_ends",
    "/crashes/*/failures",
    "/crashes/*/trials_detail/*/crash_at_ns",
    "/crashes/*/trials_detail/*/delivery",
    "/crashes/*/trials_detail/*/writer_end",
    "/crashes/*/trials_detail/*/acks",
    "/crashes/*/trials_detail/*/last_ack",
    "/crashes/*/trials_detail/*/checker",
    "/traced_clean_run/traced_clean_ns",
    "/power_loss/calibration/traced_clean_ns",
    "/power_loss/finished_first",
    "/power_loss/exhaustive_trials",
    "/power_loss/states_checked",
    "/power_loss/checker_runs",
    "/power_loss/states_skipped",
    "/power_loss/acks_seen",
    "/power_loss/max_acks",
    "/power_loss/consistent",
    "/power_loss/violations",
    "/power_loss/failures",
    "/power_loss/trials_detail/*/delivery",
    "/power_loss/trials_detail/*/acks",
    "/power_loss/trials_detail/*/last_ack",
    "/power_loss/trials_detail/*/files",
    "/power_loss/trials_detail/*/dims",
    "/power_loss/trials_detail/*/exhaustive",
    "/power_loss/trials_detail/*/states_total",
    "/power_loss/trials_detail/*/states_checked",
    "/power_loss/trials_detail/*/checker_runs",
    "/power_loss/trials_detail/*/states_skipped",
    "/power_loss/trials_detail/*/verdict",
    "/eio_sync/calibration/traced_clean_ns",
    "/eio_sync/finished_first",
    "/eio_sync/exhaustive_trials",
    "/eio_sync/states_checked",
    "/eio_sync/checker_runs",
    "/eio_sync/states_skipped",
    "/eio_sync/acks_seen",
    "/eio_sync/max_acks",
    "/eio_sync/consistent",
    "/eio_sync/violations",
    "/eio_sync/failures",
    "/eio_sync/trials_detail/*/delivery",
    "/eio_sync/trials_detail/*/acks",
    "/eio_sync/trials_detail/*/last_ack",
    "/eio_sync/trials_detail/*/files",
    "/eio_sync/trials_detail/*/dims",
    "/eio_sync/trials_detail/*/exhaustive",
    "/eio_sync/trials_detail/*/states_total",
    "/eio_sync/trials_detail/*/states_checked",
    "/eio_sync/trials_detail/*/checker_runs",
    "/eio_sync/trials_detail/*/states_skipped",
    "/eio_sync/trials_detail/*/verdict",
    "/summary/violations",
    "/summary/no_acks",
    "/summary/verdict",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExternalReport {
    pub schema_version: String,
    /// Always `external`: tells this report from a survival report.
    pub report_kind: String,
    pub protocol_version: u32,
    pub crashlab_version: String,
    pub run: ExternalRunInfo,
    pub environment: Environment,
    pub seed: u64,
    pub config: ExternalRunConfig,
    pub clean_run: CleanRun,
    /// `--points syscalls` with `sigkill` or `abort` (schema 1.5): the clean
    /// run under the durability oracle whose traced calls (and duration,
    /// for the random times) placed the process crashes; the power-loss
    /// trials use the same run (`power_loss.calibration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traced_clean_run: Option<PowerLossCalibration>,
    /// One section per process-crash kind, in the order given; empty when
    /// the clean run already failed the checker.
    pub crashes: Vec<CrashSection>,
    /// The `power-loss` trials (schema 1.1), when `--crash` lists it and the
    /// clean run passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_loss: Option<PowerLossSection>,
    /// The `power-loss-real` trials (schema 1.7): real cuts, judged by the
    /// checker and against the simulated model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_loss_real: Option<crate::report::external_real_cut::RealCutSection>,
    /// The `eio-sync` trials (schema 1.7), when `--crash` lists it and the
    /// clean run passed: power-loss trials after one failed data sync
    /// (`report/external_eio.rs`); `calibration.data_syncs` is what the
    /// failed syncs were chosen among.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eio_sync: Option<PowerLossSection>,
    pub summary: ExternalSummary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExternalRunInfo {
    pub started_at_unix: u64,
    pub duration_ms: u64,
    /// The directory the trial directories were made in.
    pub dir: String,
    pub jobs: usize,
}

/// Everything that decides which trials run (with the seed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExternalRunConfig {
    pub writer: String,
    pub checker: String,
    /// `--checker-server` (schema 1.6): `checker` is a checker server
    /// (protocol v1.1), started once per job, not a v1 checker.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub checker_server: bool,
    pub setup: Option<String>,
    /// The commands ran under `sh -c`.
    pub shell: bool,
    pub crashes: Vec<CrashKind>,
    /// Trials per crash kind.
    pub trials: u32,
    pub timeout_secs: u64,
    /// `--tear` (schema 1.1): power-loss states per sector of this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tear: Option<u64>,
    /// `--allow-no-acks` (schema 1.2): a run that saw no ack is a pass, not
    /// `nothing-acked`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_no_acks: bool,
    /// `--shard I/N` (schema 1.3): this report holds one contiguous block
    /// of every crash kind's trials (`Shard::block` of `trials`);
    /// `crashlab report merge` joins the N reports into the whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// `--fs-model` (schema 1.4), when not `posix`: the namespace model of
    /// power-loss states.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fs_model: Option<FsModel>,
    /// `--points` (schema 1.5), when not `default`: where trials crash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub points: Option<ProgramPoints>,
    /// `--history off` (schema 1.6): power-loss states without intermediate
    /// versions (every unit at its floor or its newest content).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub history_off: bool,
    /// `--history-every US` (schema 1.6): the write history was also
    /// sampled on this period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_every_us: Option<u64>,
    /// `--real-fs` (schema 1.7): the filesystem of `power-loss-real` cuts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub real_fs: Option<crate::vocab::real_cut::FsKind>,
    /// `--writeback` (schema 1.7), with `--crash power-loss-real`, when not
    /// `none`: what pushed dirty pages to the disk during the real cuts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writeback: Option<crate::vocab::writeback::Writeback>,
    /// `--crash eio-sync:K` (schema 1.7): the data sync every `eio-sync`
    /// trial fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eio_at: Option<u64>,
    /// `--capacity` (schema 1.7), with `--crash enospc`: the bytes the
    /// filesystem of the `enospc` trials held, given or derived from the
    /// clean run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
    /// `--capacity-fs` (schema 1.7), when not `tmpfs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity_fs: Option<CapacityFs>,
}

/// The calibration run: setup, writer to completion, checker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CleanRun {
    pub writer_seed: u64,
    pub duration_ns: u64,
    pub acks: u64,
    pub last_ack: Option<String>,
    pub checker: CheckerVerdict,
    /// Replays the clean run.
    pub replay: String,
}

/// How the crash was delivered in one trial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Delivery {
    /// The signal went to the writer's process group while it ran.
    Signal { signal: String },
    /// A mapped file was cut while the writer's group was stopped.
    Truncation {
        /// Relative to the trial directory.
        file: String,
        from_len: u64,
        to_len: u64,
        /// Where the file's last non-zero byte ended.
        data_end: u64,
    },
    /// The writer exited before the crash time: a clean finish, checked too.
    WriterFinishedFirst,
    /// `sigbus`: the writer exited before any file it mapped in the trial
    /// directory had an all-zero tail to cut.
    NothingToCut,
    /// `--points syscalls` (schema 1.5): the signal struck the writer just
    /// before (the call had not run) or just after (it had returned) the
    /// `nth` call the durability oracle traced (see
    /// [`crate::program_plan::ProgramPoints::Syscalls`]).
    Call { signal: String, nth: u64, syscall: String, when: CrashWhen },
    /// `enospc` (schema 1.7): nothing was sent; the writer ran to its end
    /// on a `filesystem` of `capacity` bytes, which held `used` bytes and
    /// had `free` left when it ended.
    Capacity {
        capacity: u64,
        filesystem: String,
        used: u64,
        free: u64,
        /// Schema 1.8: what the durability oracle saw of the full disk, or
        /// (`not_traced`) why the writer was not traced (the oracle could not run).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traced: Option<Box<FullDiskTrace>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        not_traced: Option<String>,
        /// Schema 1.9, `--crash enospc,power-loss`: the states a power loss at the writer's end may leave.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        power_loss: Option<crate::report::external_enospc_power_loss::EnospcPowerLoss>,
    },
}

impl Delivery {
    /// Did the crash reach the running writer (a signal sent, a file cut)?
    /// What [`CrashSection::crashed`] counts.
    pub fn struck_the_writer(&self) -> bool {
        match self {
            Delivery::Signal { .. } | Delivery::Truncation { .. } | Delivery::Call { .. } => true,
            // The full filesystem is what strikes an `enospc` writer.
            Delivery::Capacity { free, .. } => is_full(*free),
            Delivery::WriterFinishedFirst | Delivery::NothingToCut => false,
        }
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Delivery::Signal { signal } => write!(f, "{signal} sent to the writer's process group"),
            Delivery::Truncation { file, from_len, to_len, data_end } => {
                write!(f, "{file} cut from {from_len} to {to_len} bytes (its last non-zero byte ended at {data_end})")
            }
            Delivery::WriterFinishedFirst => f.write_str("the writer finished before the crash time"),
            Delivery::NothingToCut => f.write_str("the writer exited before it mapped a file with a zero tail to cut"),
            Delivery::Call { signal, nth, syscall, when } => {
                write!(f, "{signal} to the writer just {when} traced call {nth} ({syscall})")
            }
            Delivery::Capacity { capacity: c, filesystem: fs, used, free, traced: t, not_traced: why, power_loss } => {
                f.write_str(&capacity_text(*c, fs, *used, *free, t.as_deref(), why.as_deref(), power_loss.as_ref()))
            }
        }
    }
}

/// Everything one trial found (what replay prints; the report keeps a
/// [`TrialSummary`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrialOutcome {
    pub plan: TrialPlan,
    /// The crash time planned, after the writer's start.
    pub crash_at_ns: u64,
    pub delivery: Delivery,
    pub writer_end: ProcessEnd,
    /// The acknowledged lines, in order (invalid UTF-8 replaced).
    pub acks: Vec<String>,
    /// A last line the writer had begun but not ended with `\n`: not an ack.
    pub partial_line: Option<String>,
    pub checker: CheckerVerdict,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TrialSummary {
    pub trial: u32,
    pub writer_seed: u64,
    pub crash_at_ns: u64,
    pub delivery: Delivery,
    pub writer_end: ProcessEnd,
    pub acks: u64,
    pub last_ack: Option<String>,
    pub checker: CheckerVerdict,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ViolationReport {
    pub trial: u32,
    pub reason: String,
    pub delivery: Delivery,
    pub writer_end: ProcessEnd,
    pub acks: u64,
    pub last_ack: Option<String>,
    /// Reruns this trial.
    pub replay: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CrashSection {
    pub crash: CrashKind,
    pub trials: u64,
    /// Trials where the crash struck the running writer (a signal sent or a
    /// file cut before it exited).
    pub crashed: u64,
    /// Trials whose writer finished before the crash time.
    pub finished_first: u64,
    /// `sigbus` trials that found no zero tail to cut.
    pub nothing_to_cut: u64,
    /// `sigbus` trials whose writer then died of SIGBUS.
    pub died_of_sigbus: u64,
    /// `sigbus` trials whose writer ran on after the cut and ended otherwise.
    pub exited_after_cut: u64,
    /// Acknowledged lines over all trials.
    pub acks_seen: u64,
    pub max_acks: u64,
    pub consistent: u64,
    pub violations: u64,
    /// How the writers ended (`signal SIGKILL`, `exit 0`, ...) and how often.
    pub writer_ends: BTreeMap<String, u64>,
    /// Every violation, by trial, with its replay line.
    pub failures: Vec<ViolationReport>,
    pub trials_detail: Vec<TrialSummary>,
    /// `enospc` (schema 1.7): the capacity, the filesystem and what the
    /// writers did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enospc: Option<EnospcSection>,
}

impl CrashSection {
    /// A section of `crash` with no trial (what aggregation and merging add to).
    pub fn empty(crash: CrashKind) -> CrashSection {
        CrashSection {
            crash,
            trials: 0,
            crashed: 0,
            finished_first: 0,
            nothing_to_cut: 0,
            died_of_sigbus: 0,
            exited_after_cut: 0,
            acks_seen: 0,
            max_acks: 0,
            consistent: 0,
            violations: 0,
            writer_ends: BTreeMap::new(),
            failures: Vec::new(),
            trials_detail: Vec::new(),
            enospc: None,
        }
    }

    /// Trials whose crash struck the running writer before its first ack:
    /// they test only how a program recovers from its own start-up.
    pub fn struck_before_first_ack(&self) -> u64 {
        self.trials_detail.iter().filter(|t| t.delivery.struck_the_writer() && t.acks == 0).count() as u64
    }

    /// Whether most crashes struck before the writer acked anything, while
    /// its clean run did ack: crash times are a fraction of the clean run
    /// counted from the spawn, so a writer whose start-up is long next to its
    /// work (or slower in the trials than in the clean run, as on a loaded
    /// machine) is mostly crashed before it does anything.
    pub fn mostly_struck_before_first_ack(&self, clean_acks: u64) -> bool {
        clean_acks > 0 && self.crashed > 0 && 2 * self.struck_before_first_ack() > self.crashed
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ExternalSummary {
    pub trials: u64,
    pub violations: u64,
    pub clean_run_passed: bool,
    /// Where no ack line was seen at all (schema 1.2): `clean-run`, and each
    /// crash kind none of whose trials saw one. The checker then only ever
    /// judged an empty ack set: nothing the writer vouched for was tested.
    #[serde(default)]
    pub no_acks: Vec<String>,
    /// `violation-found`; else `nothing-acked` when `no_acks` is not empty
    /// (unless `config.allow_no_acks`); else `no-violation-found`.
    pub verdict: String,
}

/// What a replay line re-creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplayTarget {
    /// The clean (calibration) run and its check.
    Clean,
    /// One crash trial; `clean_ns` is the calibrated duration its crash time
    /// is a fraction of.
    Trial { crash: CrashKind, trial: u32, clean_ns: u64 },
    /// One power-loss trial: `clean_ns` is the traced clean run's duration,
    /// `calls` its count of sync calls, or of every traced call with
    /// `--points syscalls` (together they give the crash point).
    PowerLoss { trial: u32, clean_ns: u64, calls: u64 },
    /// One process-crash trial under `--points syscalls`: `clean_ns` is the
    /// traced clean run's duration, `calls` its count of traced calls.
    TrialAtCalls { crash: CrashKind, trial: u32, clean_ns: u64, calls: u64 },
    /// One `eio-sync` trial: `syncs` is the traced clean run's count of
    /// data syncs (with the seed and `--crash eio-sync:K`, it gives the
    /// failed sync and the power cut).
    EioSync { trial: u32, clean_ns: u64, syncs: u64 },
}

/// The exact command that reruns one trial of an external run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalReplayLine {
    pub config: ExternalRunConfig,
    pub seed: u64,
    pub target: ReplayTarget,
    /// With a power-loss target: rebuild and check only this state
    /// (`--state`, a [`crate::external::power_loss::StateText`]).
    pub state: Option<String>,
}

impl ExternalReplayLine {
    pub fn with_state(mut self, state: &str) -> ExternalReplayLine {
        self.state = Some(state.to_owned());
        self
    }
}

fn last_ack(acks: &[String]) -> Option<String> {
    acks.last().cloned()
}

/// One crash kind's section from its trials (any order).
pub fn aggregate_section(crash: CrashKind, outcomes: &[TrialOutcome], replay: &dyn Fn(u32) -> String) -> CrashSection {
    let mut sorted: Vec<&TrialOutcome> = outcomes.iter().collect();
    sorted.sort_by_key(|o| o.plan.trial);
    let mut s = CrashSection { trials: sorted.len() as u64, ..CrashSection::empty(crash) };
    for o in sorted {
        s.crashed += o.delivery.struck_the_writer() as u64;
        match &o.delivery {
            Delivery::Signal { .. } | Delivery::Call { .. } => {}
            Delivery::Truncation { .. } if o.writer_end == ProcessEnd::Signaled(libc::SIGBUS) => s.died_of_sigbus += 1,
            Delivery::Truncation { .. } => s.exited_after_cut += 1,
            Delivery::WriterFinishedFirst => s.finished_first += 1,
            Delivery::NothingToCut => s.nothing_to_cut += 1,
            Delivery::Capacity { capacity, filesystem, free, traced, not_traced, power_loss, .. } => {
                let e = s.enospc.get_or_insert_with(|| EnospcSection::empty(*capacity, filesystem));
                e.count(*free, o.writer_end, traced.as_deref(), not_traced.as_deref(), power_loss.as_ref())
            }
        }
        let acks = o.acks.len() as u64;
        s.acks_seen += acks;
        s.max_acks = s.max_acks.max(acks);
        *s.writer_ends.entry(o.writer_end.to_string()).or_default() += 1;
        match &o.checker {
            CheckerVerdict::Consistent => s.consistent += 1,
            CheckerVerdict::Violation { reason } => {
                s.violations += 1;
                s.failures.push(ViolationReport {
                    trial: o.plan.trial,
                    reason: reason.clone(),
                    delivery: o.delivery.clone(),
                    writer_end: o.writer_end,
                    acks,
                    last_ack: last_ack(&o.acks),
                    replay: replay(o.plan.trial),
                });
            }
        }
        s.trials_detail.push(TrialSummary {
            trial: o.plan.trial,
            writer_seed: o.plan.writer_seed,
            crash_at_ns: o.crash_at_ns,
            delivery: o.delivery.clone(),
            writer_end: o.writer_end,
            acks,
            last_ack: last_ack(&o.acks),
            checker: o.checker.clone(),
        });
    }
    s
}

/// The verdict of a run in which the checker only ever saw an empty ack set.
pub const VERDICT_NOTHING_ACKED: &str = "nothing-acked";

impl ExternalSummary {
    pub fn of(
        clean: &CleanRun,
        sections: &[CrashSection],
        power_loss: Option<&PowerLossSection>,
        eio_sync: Option<&PowerLossSection>,
        allow_no_acks: bool,
    ) -> ExternalSummary {
        let traced = [(CrashKind::PowerLoss, power_loss), (CrashKind::EioSync, eio_sync)];
        let traced = traced.iter().filter_map(|(k, s)| s.map(|s| (*k, s)));
        let violations =
            sections.iter().map(|s| s.violations).sum::<u64>() + traced.clone().map(|(_, p)| p.violations).sum::<u64>();
        let clean_run_passed = !clean.checker.is_violation();
        let mut no_acks: Vec<String> = Vec::new();
        if clean.acks == 0 {
            no_acks.push("clean-run".into());
        }
        no_acks.extend(sections.iter().filter(|s| s.trials > 0 && s.acks_seen == 0).map(|s| s.crash.name().to_owned()));
        no_acks
            .extend(traced.clone().filter(|(_, p)| p.trials > 0 && p.acks_seen == 0).map(|(k, _)| k.name().to_owned()));
        let verdict = if violations > 0 || !clean_run_passed {
            "violation-found"
        } else if !no_acks.is_empty() && !allow_no_acks {
            VERDICT_NOTHING_ACKED
        } else {
            "no-violation-found"
        };
        ExternalSummary {
            trials: sections.iter().map(|s| s.trials).sum::<u64>() + traced.map(|(_, p)| p.trials).sum::<u64>(),
            violations,
            clean_run_passed,
            no_acks,
            verdict: verdict.into(),
        }
    }

    /// Count the `power-loss-real` trials in (schema 1.7): a model
    /// violation fails the run like a checker's.
    pub fn add_real_cuts(&mut self, r: &crate::report::external_real_cut::RealCutSection, allow_no_acks: bool) {
        self.trials += r.trials;
        self.violations += r.violations + r.model_violations;
        if r.trials > 0 && r.acks_seen == 0 {
            self.no_acks.push(CrashKind::PowerLossReal.name().to_owned());
        }
        if self.violations > 0 {
            self.verdict = "violation-found".into();
        } else if !self.no_acks.is_empty() && !allow_no_acks {
            self.verdict = VERDICT_NOTHING_ACKED.into();
        }
    }
}

impl ExternalReport {
    /// Did the checker report a violation anywhere (the clean run included)?
    pub fn violation_found(&self) -> bool {
        !self.summary.clean_run_passed || self.summary.violations > 0
    }

    /// No violation, but the clean run or every trial of a crash kind saw
    /// no ack, and `--allow-no-acks` was not given: not a pass (the CLI
    /// exits 2).
    pub fn nothing_acked(&self) -> bool {
        self.summary.verdict == VERDICT_NOTHING_ACKED
    }

    /// What `summary.no_acks` means, in one paragraph; `None` when every
    /// part of the run saw an ack.
    pub fn no_acks_text(&self) -> Option<String> {
        let no_acks = &self.summary.no_acks;
        if no_acks.is_empty() {
            return None;
        }
        let kinds: Vec<&str> = no_acks.iter().map(String::as_str).filter(|k| *k != "clean-run").collect();
        let clean = no_acks.iter().any(|k| k == "clean-run");
        let what = match (clean, kinds.is_empty()) {
            (true, _) => "the clean run (no crash) printed no ack line, so no trial can have seen one".to_owned(),
            (false, false) => format!(
                "no trial of {} saw an ack line (every crash struck before the writer's first ack)",
                kinds.join(", ")
            ),
            (false, true) => unreachable!("no_acks is not empty"),
        };
        Some(format!(
            "NOTHING ACKNOWLEDGED: {what}: the checker only ever judged an empty ack set, so nothing the writer \
             vouched for was tested. A writer prints one line per operation it considers durable (protocol v1); \
             pass --allow-no-acks if acking nothing is the point{}.",
            if self.config.allow_no_acks { " (it was passed: this is not an error)" } else { "" }
        ))
    }

    /// The human summary: one line per crash kind, then every violation
    /// with its replay line.
    pub fn human_summary(&self) -> String {
        let mut out = String::new();
        let e = &self.environment;
        let c = &self.config;
        let _ = writeln!(
            out,
            "crashlab {} external run (protocol v{}): seed {}, {} on {} (kernel {}), {} job(s)",
            self.crashlab_version,
            self.protocol_version,
            self.seed,
            self.run.dir,
            e.fs_type,
            e.kernel_release,
            self.run.jobs
        );
        let _ = writeln!(out, "  writer:  {}{}", c.writer, if c.shell { "  (sh -c)" } else { "" });
        let _ = writeln!(out, "  checker: {}", c.checker);
        if let Some(s) = &c.setup {
            let _ = writeln!(out, "  setup:   {s}");
        }
        if c.points == Some(ProgramPoints::Syscalls) {
            let _ = writeln!(
                out,
                "  points:  syscalls: sigkill, abort and power-loss trials under the durability oracle, crashed \
                 just before or just after a traced call (even trials) or at a random time (odd trials)"
            );
        }
        if let Some(t) = &self.traced_clean_run {
            let _ = writeln!(
                out,
                "traced clean run: {:.1} ms, {} traced calls ({} sync calls)",
                t.traced_clean_ns as f64 / 1e6,
                t.traced_calls,
                t.sync_calls
            );
        }
        if let Some(shard) = c.shard {
            let _ = writeln!(
                out,
                "  shard {shard} only: trials {:?} of each crash kind; `crashlab report merge` joins the shards",
                shard.block(c.trials as usize)
            );
        }
        let clean = &self.clean_run;
        let _ = writeln!(
            out,
            "clean run: {:.1} ms, {} acks, checker: {}",
            clean.duration_ns as f64 / 1e6,
            clean.acks,
            verdict_text(&clean.checker)
        );
        if !self.crashes.is_empty() {
            let _ = writeln!(
                out,
                "\n{:<9} {:>6} {:>7} {:>8} {:>9} {:>9} {:>10} {:>10}",
                "crash", "trials", "crashed", "finished", "acks", "max acks", "consistent", "violations"
            );
        }
        for s in &self.crashes {
            let _ = writeln!(
                out,
                "{:<9} {:>6} {:>7} {:>8} {:>9} {:>9} {:>10} {:>10}",
                s.crash.name(),
                s.trials,
                s.crashed,
                s.finished_first,
                s.acks_seen,
                s.max_acks,
                s.consistent,
                s.violations
            );
            if s.crash == CrashKind::Sigbus {
                let _ = writeln!(
                    out,
                    "          sigbus: {} died of SIGBUS, {} ran on after the cut, {} found nothing to cut",
                    s.died_of_sigbus, s.exited_after_cut, s.nothing_to_cut
                );
            }
            if let Some(e) = &s.enospc {
                let _ = writeln!(out, "          enospc: {e}");
            }
            if s.mostly_struck_before_first_ack(clean.acks) {
                let _ = writeln!(
                    out,
                    "          note: {} of {} crashes struck before the writer's first ack (crash times fall in \
                     the {:.1} ms clean run, counted from the spawn); to crash it mid-work more often, give it \
                     more work per run or a pause after each ack",
                    s.struck_before_first_ack(),
                    s.crashed,
                    clean.duration_ns as f64 / 1e6
                );
            }
        }
        if let Some(p) = &self.power_loss {
            p.write_summary(&mut out);
        }
        if let Some(r) = &self.power_loss_real {
            r.write_summary(&mut out);
        }
        if let Some(p) = &self.eio_sync {
            p.write_eio_summary(&mut out);
        }
        if let CheckerVerdict::Violation { reason } = &clean.checker {
            let headline = format!("\nVIOLATION in the clean run (no crash at all): {reason}");
            write_failure(&mut out, "", &headline, &[], "replay", &clean.replay);
        }
        for s in &self.crashes {
            for v in &s.failures {
                let headline = format!("\nVIOLATION {} trial {}: {}", s.crash, v.trial, v.reason);
                let details = [format!(
                    "{}; writer ended with {}; {} acks{}",
                    v.delivery,
                    v.writer_end,
                    v.acks,
                    v.last_ack.as_ref().map(|a| format!(", the last `{a}`")).unwrap_or_default()
                )];
                write_failure(&mut out, "", &headline, &details, "replay", &v.replay);
            }
        }
        for p in self.power_loss.iter().chain(&self.eio_sync) {
            p.write_failures(&mut out);
        }
        if let Some(text) = self.no_acks_text() {
            let _ = writeln!(out, "\n{text}");
        }
        let s = &self.summary;
        let _ = writeln!(out, "\n{} trials, {} violations: {}", s.trials, s.violations, s.verdict);
        out
    }
}

fn verdict_text(v: &CheckerVerdict) -> String {
    match v {
        CheckerVerdict::Consistent => "consistent".into(),
        CheckerVerdict::Violation { reason } => format!("VIOLATION: {reason}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(trial: u32, delivery: Delivery, end: ProcessEnd, acks: usize, checker: CheckerVerdict) -> TrialOutcome {
        TrialOutcome {
            plan: TrialPlan::new(5, CrashKind::Sigbus, trial),
            crash_at_ns: 1000,
            delivery,
            writer_end: end,
            acks: (0..acks).map(|i| format!("rec {i}")).collect(),
            partial_line: None,
            checker,
        }
    }

    #[test]
    fn sections_count_deliveries_acks_and_verdicts_in_trial_order() {
        let cut = Delivery::Truncation { file: "f".into(), from_len: 8192, to_len: 4096, data_end: 100 };
        let bad = CheckerVerdict::Violation { reason: "rec 1 missing".into() };
        let outcomes = vec![
            outcome(2, cut.clone(), ProcessEnd::Exited(0), 3, CheckerVerdict::Consistent),
            outcome(0, cut, ProcessEnd::Signaled(libc::SIGBUS), 2, bad.clone()),
            outcome(1, Delivery::NothingToCut, ProcessEnd::Exited(0), 4, CheckerVerdict::Consistent),
            outcome(3, Delivery::WriterFinishedFirst, ProcessEnd::Exited(0), 4, bad),
        ];
        let s = aggregate_section(CrashKind::Sigbus, &outcomes, &|t| format!("replay {t}"));
        assert_eq!((s.trials, s.crashed, s.finished_first, s.nothing_to_cut), (4, 2, 1, 1));
        assert_eq!((s.died_of_sigbus, s.exited_after_cut), (1, 1));
        assert_eq!((s.acks_seen, s.max_acks, s.consistent, s.violations), (13, 4, 2, 2));
        assert_eq!(s.writer_ends["exit 0"], 3);
        assert_eq!(s.writer_ends["signal SIGBUS"], 1);
        assert_eq!(s.failures.iter().map(|f| f.trial).collect::<Vec<_>>(), vec![0, 3]);
        assert_eq!(s.failures[0].replay, "replay 0");
        assert_eq!(s.failures[0].last_ack.as_deref(), Some("rec 1"));
        assert_eq!(s.trials_detail.iter().map(|t| t.trial).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_section_whose_crashes_mostly_struck_before_any_ack_says_so() {
        let kill = || Delivery::Signal { signal: "SIGKILL".into() };
        let killed = ProcessEnd::Signaled(libc::SIGKILL);
        let section = |acks: &[usize]| {
            let mut outcomes: Vec<_> = (0..acks.len() as u32)
                .map(|t| outcome(t, kill(), killed, acks[t as usize], CheckerVerdict::Consistent))
                .collect();
            // A writer that finished first saw no crash at all: not counted.
            outcomes.push(outcome(
                acks.len() as u32,
                Delivery::WriterFinishedFirst,
                ProcessEnd::Exited(0),
                0,
                CheckerVerdict::Consistent,
            ));
            aggregate_section(CrashKind::Sigkill, &outcomes, &|t| format!("replay {t}"))
        };
        let early = section(&[0, 0, 3, 0]);
        assert_eq!((early.crashed, early.struck_before_first_ack()), (4, 3));
        assert!(early.mostly_struck_before_first_ack(64));
        // A writer that acks nothing even when not crashed: nothing to warn about.
        assert!(!early.mostly_struck_before_first_ack(0));
        let half = section(&[0, 0, 3, 5]);
        assert_eq!(half.struck_before_first_ack(), 2);
        assert!(!half.mostly_struck_before_first_ack(64), "half is not most");
    }
}
