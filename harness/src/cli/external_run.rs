//! `crashlab run --writer ...` and `crashlab replay --writer ...`: the
//! command line of workload protocol v1 (see `crashlab::external`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;

use crashlab::external::power_loss::{replay_power_loss, HistoryOptions, PowerLossReplayed, StateText};
use crashlab::external::{replay_trial_in_state, run_external, ExternalConfig, ExternalError, Replayed};
use crashlab::namespace::FsModel;
use crashlab::program_plan::ProgramPoints;
use crashlab::report::checker_verdict::CheckerVerdict;
use crashlab::report::external::ReplayTarget;
use crashlab::report::external_power_loss::{PowerLossFile, PowerLossTrialOutcome};
use crashlab::report::file::write_json_report;
use crashlab::vocab::CrashKind;
use crashlab::LabError;

/// The external form of `crashlab run` (flattened into its arguments).
#[derive(Args, Clone, Default)]
pub struct ExternalArgs {
    /// Crash your own program instead of a built-in scenario (workload
    /// protocol v1, see the README): it writes in $CRASHLAB_DIR and prints one
    /// line per durable operation. One command line, split into words like a
    /// shell would; no shell runs unless --shell. Runs --trials trials per
    /// --crash kind and writes the external report (--out), and with
    /// --html, --junit, --regressions FILE its page, its JUnit XML and its
    /// failing trials' replay lines; --shard I/N runs a contiguous block of
    /// every crash kind's trials (`crashlab report merge` joins the shards).
    /// Flags of the built-in scenarios only (--size, --txns, --model, and
    /// --points other than `default` or `syscalls`) are refused with it
    /// rather than silently ignored.
    #[arg(long, value_name = "CMD", conflicts_with_all = ["scenario", "size", "txns", "model"])]
    pub writer: Option<String>,
    /// Judges a crashed directory: exit 0 consistent with every line of
    /// $CRASHLAB_ACKS, 1 violation (reason on the first line of stderr).
    #[arg(long, value_name = "CMD", requires = "writer")]
    pub checker: Option<String>,
    /// Instead of --checker (protocol v1.1, see the README): started once
    /// per job, reads one request `STATE_DIR<TAB>ACKS_PATH` per line on
    /// stdin and answers each with one line, `ok` or `violation REASON`.
    #[arg(long, value_name = "CMD", requires = "writer", conflicts_with = "checker")]
    pub checker_server: Option<String>,
    /// Runs before the writer in every trial's (empty) directory.
    #[arg(long, value_name = "CMD", requires = "writer")]
    pub setup: Option<String>,
    /// Run --writer, --checker and --setup with `sh -c` instead of splitting
    /// them into words.
    #[arg(long, requires = "writer")]
    pub shell: bool,
    /// Accept a run in which nothing was acknowledged (the clean run, or
    /// every trial of a crash kind, saw no ack line). Without it such a run
    /// exits 2: the checker only judged an empty ack set, nothing was tested.
    #[arg(long, requires = "writer")]
    pub allow_no_acks: bool,
    /// --crash power-loss: the namespace's persistence model. `posix` (the
    /// default): the POSIX contract, a new or renamed entry is durable only
    /// once its directory was fsynced. `ext4`, `xfs`, `btrfs`: also what
    /// real cuts of that filesystem showed (a sync of a file commits its
    /// creation; on ext4 and xfs, everything before its last change), see
    /// reports/SOUNDNESS.md.
    #[arg(long, value_name = "MODEL", requires = "writer")]
    pub fs_model: Option<FsModel>,
    /// --crash power-loss: record the write history (`on`, the default), so
    /// that a page may also hold a version it had between its last sync and
    /// the crash, or not (`off`: its floor or its newest content only).
    #[arg(long, value_name = "on|off", requires = "writer", value_parser = parse_on_off)]
    pub history: Option<bool>,
    /// --crash power-loss: also stop the writer every US microseconds
    /// (100..=10000000) to record the history there, for writers that
    /// store much between two system calls.
    #[arg(long, value_name = "US", requires = "writer")]
    pub history_every: Option<u64>,
    /// --crash power-loss-real (root): the filesystem the real cuts are
    /// made on, a fresh one on a loop device: `ext4` (the default) or `xfs`
    /// (FS_IOC_SHUTDOWN), `btrfs` (a raw copy of the device).
    #[arg(long, value_name = "FS", requires = "writer")]
    pub real_fs: Option<crashlab::vocab::real_cut::FsKind>,
    /// --crash power-loss-real: what pushes the writer's dirty pages to the
    /// disk while it runs, so that cuts also keep unsynced data: `none` (the
    /// default), `syncfs:US` (a helper calls syncfs on the test filesystem
    /// every US µs, 50..=10000000, from the setup's end to the cut) or
    /// `expire:CS` (the kernel's dirty expiry and writeback period set to CS
    /// centiseconds, 1..=3000, for the run; restored on every exit).
    #[arg(long, value_name = "MODE", requires = "writer")]
    pub writeback: Option<crashlab::vocab::writeback::Writeback>,
    /// --crash enospc: the bytes the writer's filesystem holds (a tmpfs in
    /// a user + mount namespace, no privilege needed): a whole number of
    /// pages, 1 page to 1 GiB. Default: half of what the clean run's
    /// directory allocated, so that the disk fills partway through the run.
    #[arg(long, value_name = "BYTES", requires = "writer")]
    pub capacity: Option<u64>,
    /// --crash enospc: the filesystem of that capacity: `tmpfs` (the
    /// default, no privilege: a user + mount namespace) or, as root, `ext4`
    /// (a fresh one on a loop device, no journal; at least 256 KiB).
    #[arg(long, value_name = "FS", requires = "writer")]
    pub capacity_fs: Option<crashlab::vocab::capacity::CapacityFs>,
}

/// The external form of `crashlab replay` (flattened into its arguments).
#[derive(Args, Clone, Default)]
pub struct ExternalReplayArgs {
    /// Replay a trial of your own program (as printed by `crashlab run --writer`).
    #[arg(long, value_name = "CMD", conflicts_with_all = ["scenario", "point"])]
    pub writer: Option<String>,
    #[arg(long, value_name = "CMD", requires = "writer")]
    pub checker: Option<String>,
    /// A checker server (protocol v1.1), as printed in the replay line.
    #[arg(long, value_name = "CMD", requires = "writer", conflicts_with = "checker")]
    pub checker_server: Option<String>,
    #[arg(long, value_name = "CMD", requires = "writer")]
    pub setup: Option<String>,
    #[arg(long, requires = "writer")]
    pub shell: bool,
    /// The trial index to replay (with --writer).
    #[arg(long, requires = "writer")]
    pub trial: Option<u32>,
    /// The clean run's duration the crash time is a fraction of (with
    /// --trial), as printed in the replay line.
    #[arg(long, requires = "trial")]
    pub clean_ns: Option<u64>,
    /// --crash power-loss (and any crash with --points syscalls): the
    /// traced clean run's count of the calls crash points are spread over
    /// (it places the trial's crash point), as printed in the replay line.
    #[arg(long, requires = "trial")]
    pub calls: Option<u64>,
    /// `syscalls`: the trial crashed at a traced call, as printed in the
    /// replay line (`default` otherwise).
    #[arg(long, value_name = "POINTS", requires = "writer")]
    pub points: Option<ProgramPoints>,
    /// --crash power-loss: the namespace model, as printed in the replay line.
    #[arg(long, value_name = "MODEL", requires = "writer")]
    pub fs_model: Option<FsModel>,
    /// --crash power-loss: record the write history (`on`, the default), so
    /// that a page may also hold a version it had between its last sync and
    /// the crash, or not (`off`: its floor or its newest content only).
    #[arg(long, value_name = "on|off", requires = "writer", value_parser = parse_on_off)]
    pub history: Option<bool>,
    /// --crash power-loss: also stop the writer every US microseconds
    /// (100..=10000000) to record the history there, for writers that
    /// store much between two system calls.
    #[arg(long, value_name = "US", requires = "writer")]
    pub history_every: Option<u64>,
    /// --crash enospc: the bytes the writer's filesystem holds (a tmpfs in
    /// a user + mount namespace, no privilege needed): a whole number of
    /// pages, 1 page to 1 GiB. Default: half of what the clean run's
    /// directory allocated, so that the disk fills partway through the run.
    #[arg(long, value_name = "BYTES", requires = "writer")]
    pub capacity: Option<u64>,
    /// --crash enospc: the filesystem of that capacity: `tmpfs` (the
    /// default, no privilege: a user + mount namespace) or, as root, `ext4`
    /// (a fresh one on a loop device, no journal; at least 256 KiB).
    #[arg(long, value_name = "FS", requires = "writer")]
    pub capacity_fs: Option<crashlab::vocab::capacity::CapacityFs>,
}

/// The first flag of `flags` (name, given) that was given: they apply to
/// --writer only. (clap's `requires = "writer"` is not enough: clap lets a
/// missing required argument pass when it conflicts with one given, and
/// --writer conflicts with --scenario.)
fn refuse_without_writer(flags: &[(&str, bool)]) -> Result<()> {
    match flags.iter().find(|(_, given)| *given) {
        Some((flag, _)) => bail!("{flag} applies to --writer (your own program) only; --writer is missing"),
        None => Ok(()),
    }
}

impl ExternalArgs {
    /// Refuse the flags of --writer when there is none.
    pub fn check_without_writer(&self) -> Result<()> {
        refuse_without_writer(&[
            ("--checker", self.checker.is_some()),
            ("--checker-server", self.checker_server.is_some()),
            ("--setup", self.setup.is_some()),
            ("--shell", self.shell),
            ("--allow-no-acks", self.allow_no_acks),
            ("--fs-model", self.fs_model.is_some()),
            ("--history", self.history.is_some()),
            ("--history-every", self.history_every.is_some()),
            ("--real-fs", self.real_fs.is_some()),
            ("--writeback", self.writeback.is_some()),
            ("--capacity", self.capacity.is_some()),
            ("--capacity-fs", self.capacity_fs.is_some()),
        ])
    }
}

impl ExternalReplayArgs {
    /// Refuse the flags of --writer when there is none.
    pub fn check_without_writer(&self) -> Result<()> {
        refuse_without_writer(&[
            ("--checker", self.checker.is_some()),
            ("--checker-server", self.checker_server.is_some()),
            ("--setup", self.setup.is_some()),
            ("--shell", self.shell),
            ("--trial", self.trial.is_some()),
            ("--points", self.points.is_some()),
            ("--fs-model", self.fs_model.is_some()),
            ("--history", self.history.is_some()),
            ("--history-every", self.history_every.is_some()),
            ("--capacity", self.capacity.is_some()),
            ("--capacity-fs", self.capacity_fs.is_some()),
        ])
    }
}

fn parse_on_off(s: &str) -> std::result::Result<bool, String> {
    match s {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => Err(format!("`{s}` is not on or off")),
    }
}

/// `--history` and `--history-every` into the options, checked: they apply
/// to power-loss trials only, and the period has bounds.
fn history_options(history: Option<bool>, every: Option<u64>, power_loss: bool) -> Result<HistoryOptions> {
    use crashlab::page_history::{MAX_HISTORY_EVERY_US, MIN_HISTORY_EVERY_US};
    if (history.is_some() || every.is_some()) && !power_loss {
        bail!("--history and --history-every apply to --crash power-loss and power-loss-real only");
    }
    let record = history.unwrap_or(true);
    if every.is_some() && !record {
        bail!("--history-every needs the history: it cannot go with --history off");
    }
    if let Some(us) = every {
        if !(MIN_HISTORY_EVERY_US..=MAX_HISTORY_EVERY_US).contains(&us) {
            bail!(
                "--history-every {us}: the period must be {MIN_HISTORY_EVERY_US}..={MAX_HISTORY_EVERY_US} microseconds"
            );
        }
    }
    Ok(HistoryOptions { record, every: every.map(Duration::from_micros) })
}

/// The flags of `crashlab replay` a power-loss replay of --writer uses that
/// the built-in replay shares.
pub struct PowerLossReplayArgs {
    pub tear: Option<u64>,
    pub state: Option<String>,
    pub write_state: Option<PathBuf>,
}

/// The config of `writer` judged by exactly one of `checker` (protocol v1)
/// and `server` (v1.1).
fn config(
    writer: &str,
    checker: Option<&str>,
    server: Option<&str>,
    setup: Option<&str>,
    shell: bool,
) -> Result<ExternalConfig> {
    match (checker, server) {
        (Some(c), None) => ExternalConfig::new(writer, c, setup, shell).map_err(external_error),
        (None, Some(s)) => ExternalConfig::with_checker_server(writer, s, setup, shell).map_err(external_error),
        (Some(_), Some(_)) => bail!("--checker and --checker-server: give one of them, not both"),
        (None, None) => bail!("--writer needs --checker CMD (protocol v1) or --checker-server CMD (protocol v1.1)"),
    }
}

/// `ExternalError` → the CLI's error; an interruption becomes the one `main`
/// turns into exit 130.
fn external_error(e: ExternalError) -> anyhow::Error {
    if e.is_interrupted() {
        anyhow::Error::new(LabError::Interrupted)
    } else {
        anyhow::Error::new(e)
    }
}

/// One item of `--crash`: a crash kind, and for `eio-sync:K` the data sync
/// every trial fails (`eio-sync` alone spreads it over the run). The same
/// text in the replay line re-creates the trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrashArg {
    pub kind: CrashKind,
    pub eio_at: Option<u64>,
    /// `enospc,power-loss` as one value (the replay line of an `enospc`
    /// trial judged at a power loss after the full disk).
    pub then_power_loss: bool,
}

impl std::str::FromStr for CrashArg {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(k) = s.strip_prefix("eio-sync:") {
            let k = k
                .parse::<u64>()
                .ok()
                .filter(|&k| k > 0)
                .ok_or_else(|| format!("`{s}`: eio-sync:K needs K, the data sync to fail, a number from 1"))?;
            return Ok(CrashArg { kind: CrashKind::EioSync, eio_at: Some(k), then_power_loss: false });
        }
        if s == "enospc,power-loss" {
            return Ok(CrashArg { kind: CrashKind::Enospc, eio_at: None, then_power_loss: true });
        }
        Ok(CrashArg { kind: s.parse()?, eio_at: None, then_power_loss: false })
    }
}

/// The kinds of `--crash`, and its one `eio-sync:K`.
pub fn crash_kinds(crashes: &[CrashArg]) -> Result<(Vec<CrashKind>, Option<u64>)> {
    let mut at: Option<u64> = None;
    for c in crashes {
        match (at, c.eio_at) {
            (Some(a), Some(b)) if a != b => bail!("--crash: eio-sync:{a} and eio-sync:{b}; give one failed sync"),
            (_, Some(b)) => at = Some(b),
            _ => {}
        }
    }
    Ok((crashes.iter().map(|c| c.kind).collect(), at))
}

/// Does `--crash` run traced power losses (`power-loss` or `eio-sync`)?
/// Do the crashes include one judged by the simulated power-loss model
/// (`power-loss-real` judges its cuts against the same model, so the
/// model's flags apply to it too)?
fn traced_power_loss(crashes: &[CrashKind]) -> bool {
    crashes.iter().any(|c| matches!(c, CrashKind::PowerLoss | CrashKind::EioSync | CrashKind::PowerLossReal))
}

/// `crashlab run --writer W --checker C --crash K[,K...] ...`.
pub fn run(common: &crate::cli::campaign::CommonArgs, crashes: &[CrashArg], args: &ExternalArgs) -> Result<ExitCode> {
    let Some(writer) = &args.writer else { bail!("--checker and --checker-server need --writer") };
    let mut config =
        config(writer, args.checker.as_deref(), args.checker_server.as_deref(), args.setup.as_deref(), args.shell)?;
    let (crashes, eio_at) = crash_kinds(crashes)?;
    let crashes = &crashes[..];
    config.crashes = crashes.to_vec();
    config.eio_at = eio_at;
    config.trials = common.trials;
    config.seed = common.seed.unwrap_or_else(crate::cli::campaign::fresh_seed);
    config.jobs = common.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    config.timeout = Duration::from_secs(common.timeout as u64);
    config.tear = common.tear;
    config.allow_no_acks = args.allow_no_acks;
    config.shard = common.shard;
    config.capacity = args.capacity;
    config.capacity_fs = args.capacity_fs.unwrap_or_default();
    config.points = common.program_points()?;
    if config.points == ProgramPoints::Syscalls
        && !crashes.iter().any(|c| {
            matches!(c, CrashKind::Sigkill | CrashKind::Abort | CrashKind::PowerLoss | CrashKind::PowerLossReal)
        })
    {
        bail!("--points syscalls places sigkill, abort and power-loss crashes; --crash has none of them");
    }
    if let Some(model) = args.fs_model {
        if !traced_power_loss(crashes) {
            bail!("--fs-model applies to --crash power-loss, eio-sync and power-loss-real only");
        }
        config.power_loss.fs_model = model;
    }
    config.power_loss.history = history_options(args.history, args.history_every, traced_power_loss(crashes))?;
    if crashes.contains(&CrashKind::PowerLossReal) && args.history == Some(false) {
        // Measured: real ext4 cuts of `redo-from-page` keep versions of a
        // page between its floor and its newest content (a sync of another
        // page writes the whole large folio), which only the history records.
        bail!(
            "--history off with --crash power-loss-real: real cuts keep versions of pages between their last sync \
             and the crash, which only the write history records; without it every such cut would be reported as \
             outside the model"
        );
    }
    if let Some(d) = &common.dir {
        config.dir = d.clone();
    }
    if let Some(fs) = args.real_fs {
        if !crashes.contains(&CrashKind::PowerLossReal) {
            bail!("--real-fs applies to --crash power-loss-real only");
        }
        config.real_cut.fs = fs;
    }
    if let Some(w) = args.writeback {
        if !crashes.contains(&CrashKind::PowerLossReal) {
            bail!(
                "--writeback {w} applies to --crash power-loss-real only (the simulated kinds have no disk to push to)"
            );
        }
        config.real_cut.writeback = w;
    }
    // A forbidden post-cut directory is kept beside the report.
    config.real_cut.evidence_dir = Some(common.out.with_extension("evidence"));
    config.validate().map_err(external_error)?;
    let cancel = crate::cli::campaign::cancel_flag()?;
    if !common.quiet {
        eprintln!(
            "crashlab: seed {}; {} × {} trials{} of `{}` on {} job(s) in {}",
            config.seed,
            config.crashes.iter().map(|c| c.name()).collect::<Vec<_>>().join(","),
            config.trials_per_kind(),
            config.shard.map(|s| format!(" (shard {s} of {} per kind)", config.trials)).unwrap_or_default(),
            config.writer.text,
            config.jobs,
            config.dir.display()
        );
    }
    let mut kinds = config.crashes.clone();
    kinds.sort();
    kinds.dedup();
    let planned = kinds.len() as u64 * config.trials_per_kind() as u64;
    let progress = crate::cli::progress::ExternalProgress::new(&config.progress, planned, common.quiet);
    // `expire:CS` lowers the kernel's dirty expiry for the whole run; the
    // guard restores it when dropped (every exit of this function, Ctrl-C
    // and SIGTERM included: they only set the cancel flag), and a state file
    // restores it after a SIGKILL of this process (`realcut::pressure`).
    let sysctls = if config.crashes.contains(&CrashKind::PowerLossReal) {
        crashlab::realcut::pressure::campaign_pressure(config.real_cut.writeback)
            .with_context(|| format!("--writeback {}", config.real_cut.writeback))?
    } else {
        None
    };
    let report = progress.around(|| run_external(&config, &cancel, &|_| {})).map_err(external_error);
    if let Some(guard) = sysctls {
        guard.restore().context("--writeback: restoring the dirty expiry")?;
    }
    let report = report?;
    write_json_report("--out", &common.out, &report)?;
    common.outputs.write_external(&report, common.quiet)?;
    if !common.quiet {
        print!("{}", report.human_summary());
    }
    let s = &report.summary;
    println!(
        "{}: {} trials, {} violations{}; report: {}",
        if report.violation_found() {
            "FAILED"
        } else if report.nothing_acked() {
            "NOT TESTED"
        } else {
            "ok"
        },
        s.trials,
        s.violations,
        if s.clean_run_passed { "" } else { ", the clean run already fails the checker" },
        common.out.display()
    );
    if report.violation_found() {
        // The replay lines on stderr too, where a CI log shows them.
        if let CheckerVerdict::Violation { reason } = &report.clean_run.checker {
            eprintln!("crashlab: violation in the clean run: {reason}\n  replay: {}", report.clean_run.replay);
        }
        for section in &report.crashes {
            if let Some(v) = section.failures.first() {
                eprintln!(
                    "crashlab: {} violation(s) under {}, first in trial {}: {}\n  replay: {}",
                    section.violations, section.crash, v.trial, v.reason, v.replay
                );
            }
        }
        if let Some(r) = &report.power_loss_real {
            for o in r.outcomes.iter().filter(|o| o.is_model_violation()) {
                eprintln!(
                    "crashlab: MODEL SOUNDNESS VIOLATION: power-loss-real trial {} on {}: {}\n  kept in {}\n  rerun: {}",
                    o.plan.trial,
                    r.fs,
                    o.membership.forbidden.as_deref().unwrap_or(""),
                    o.evidence.as_deref().unwrap_or("(not kept)"),
                    o.rerun
                );
            }
            if let Some(o) = r.outcomes.iter().find(|o| o.checker.is_violation()) {
                eprintln!(
                    "crashlab: {} violation(s) under power-loss-real on {}, first in trial {}: {}\n  rerun: {}",
                    r.violations,
                    r.fs,
                    o.plan.trial,
                    o.checker.reason().unwrap_or(""),
                    o.rerun
                );
            }
        }
        for (kind, section) in [("power-loss", &report.power_loss), ("eio-sync", &report.eio_sync)] {
            if let Some(v) = section.as_ref().and_then(|p| p.failures.first().map(|v| (p.violations, v))) {
                let (count, v) = v;
                eprintln!(
                    "crashlab: {count} violation(s) under {kind}, first in trial {}: {}\n  first failing state {}: {}\n  replay: {}",
                    v.trial, v.finding.explanation, v.finding.first_state, v.finding.first_reason, v.replay
                );
            }
        }
        return Ok(ExitCode::from(1));
    }
    if report.nothing_acked() {
        // Not a pass: stderr too, where a CI log shows it.
        if let Some(text) = report.no_acks_text() {
            eprintln!("crashlab: {text}");
        }
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// `crashlab replay --writer W --checker C --crash K --seed S --trial T --clean-ns N
/// [--calls C --state S]`.
pub fn replay(
    args: &ExternalReplayArgs,
    crash: CrashArg,
    seed: u64,
    dir: Option<&Path>,
    timeout_secs: u32,
    json: bool,
    pl: PowerLossReplayArgs,
) -> Result<ExitCode> {
    let Some(writer) = &args.writer else { bail!("--checker and --checker-server need --writer") };
    let mut config =
        config(writer, args.checker.as_deref(), args.checker_server.as_deref(), args.setup.as_deref(), args.shell)?;
    config.seed = seed;
    config.timeout = Duration::from_secs(timeout_secs as u64);
    config.dir = dir.map_or_else(std::env::temp_dir, PathBuf::from);
    config.eio_at = crash.eio_at;
    let after_full_disk = crash.then_power_loss;
    let crash = crash.kind;
    // `clean` replays the clean run.
    let kind = (crash != CrashKind::Clean).then_some(crash);
    if let Some(k @ (CrashKind::PowerLoss | CrashKind::EioSync)) = kind {
        config.crashes = vec![k];
        return replay_power_loss_cli(args, config, json, pl);
    }
    if !after_full_disk && (pl.tear.is_some() || pl.state.is_some() || args.fs_model.is_some()) {
        bail!("--tear, --state and --fs-model apply to --crash power-loss and enospc,power-loss only");
    }
    if after_full_disk && pl.write_state.is_some() {
        bail!("--write-state applies to --crash power-loss and eio-sync only");
    }
    config.tear = pl.tear;
    config.power_loss.fs_model = args.fs_model.unwrap_or_default();
    config.power_loss.history = history_options(args.history, args.history_every, after_full_disk)?;
    let state = pl.state.as_deref().map(str::parse::<StateText>).transpose().map_err(|e| anyhow!("--state: {e}"))?;
    let at_calls = args.points == Some(ProgramPoints::Syscalls);
    if args.calls.is_some() && !at_calls {
        bail!("--calls applies to --crash power-loss, and to other crashes with --points syscalls");
    }
    let target = match (kind, args.trial, args.clean_ns) {
        (None, None, _) => ReplayTarget::Clean,
        (None, Some(_), _) => bail!("--trial: --crash clean replays the clean run, which has no trial index"),
        (Some(_), None, _) => bail!("--trial is required to replay a crash of --writer (or use --crash clean)"),
        (Some(_), Some(_), None) => bail!("--clean-ns is required with --trial (copy it from the replay line)"),
        (Some(crash), Some(trial), Some(clean_ns)) if at_calls => {
            if !matches!(crash, CrashKind::Sigkill | CrashKind::Abort) {
                bail!("--points syscalls: --crash {crash} has no call points (sigkill, abort and power-loss do)");
            }
            let Some(calls) = args.calls else {
                bail!("--points syscalls needs --calls (copy it from the replay line)");
            };
            ReplayTarget::TrialAtCalls { crash, trial, clean_ns, calls }
        }
        (Some(crash), Some(trial), Some(clean_ns)) => ReplayTarget::Trial { crash, trial, clean_ns },
    };
    config.points = args.points.unwrap_or_default();
    config.crashes = vec![kind.unwrap_or(CrashKind::Sigkill)];
    if after_full_disk {
        config.crashes.push(CrashKind::PowerLoss);
    }
    config.capacity = args.capacity;
    config.capacity_fs = args.capacity_fs.unwrap_or_default();
    let cancel = crate::cli::campaign::cancel_flag()?;
    let replayed = replay_trial_in_state(&config, target, state.as_ref(), &cancel).map_err(external_error)?;
    let verdict = match &replayed {
        Replayed::Clean(clean, acks) => {
            if json {
                println!("{}", serde_json::to_string_pretty(clean)?);
            } else {
                println!("the clean run of seed {seed} (CRASHLAB_SEED={}): no crash", clean.writer_seed);
                println!("  the writer finished in {:.3} ms", clean.duration_ns as f64 / 1e6);
                print_acks(acks, None);
                print_verdict(&clean.checker);
            }
            clean.checker.clone()
        }
        Replayed::Trial(o) => {
            if json {
                println!("{}", serde_json::to_string_pretty(o)?);
            } else {
                let clean_ns = match target {
                    ReplayTarget::Trial { clean_ns, .. } | ReplayTarget::TrialAtCalls { clean_ns, .. } => clean_ns,
                    _ => unreachable!("a trial target"),
                };
                let at_call = matches!(o.delivery, crashlab::report::external::Delivery::Call { .. });
                if let crashlab::report::external::Delivery::Capacity { .. } = o.delivery {
                    println!(
                        "{} trial {} of seed {} (CRASHLAB_SEED={}): no crash; the writer ran on a filesystem of a hard capacity",
                        o.plan.crash, o.plan.trial, seed, o.plan.writer_seed
                    );
                } else if at_call {
                    println!(
                        "{} trial {} of seed {} (CRASHLAB_SEED={}): crash at a call the durability oracle traced",
                        o.plan.crash, o.plan.trial, seed, o.plan.writer_seed
                    );
                } else {
                    println!(
                        "{} trial {} of seed {} (CRASHLAB_SEED={}): crash {:.3} ms after the writer's start ({:.4} of the calibrated {:.3} ms)",
                        o.plan.crash,
                        o.plan.trial,
                        seed,
                        o.plan.writer_seed,
                        o.crash_at_ns as f64 / 1e6,
                        o.plan.at_ppm as f64 / 1e6,
                        clean_ns as f64 / 1e6
                    );
                }
                println!("  {}", o.delivery);
                println!("  the writer ended with {}", o.writer_end);
                print_acks(&o.acks, o.partial_line.as_deref());
                print_verdict(&o.checker);
                if let crashlab::report::external::Delivery::Capacity { .. } = o.delivery {
                    println!(
                        "note: nothing is crashed: a deterministic writer meets the full disk of the same capacity at the same point; the acks above are what this replay saw"
                    );
                } else if at_call {
                    println!(
                        "note: the crash at a traced call replays exactly for a deterministic writer; the acks above are what this replay saw"
                    );
                } else {
                    println!(
                        "note: the crash time is replayed, not the point in the writer it hit: a random-time crash may land elsewhere; the acks above are what this replay saw"
                    );
                }
            }
            o.checker.clone()
        }
    };
    Ok(if verdict.is_violation() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn replay_power_loss_cli(
    args: &ExternalReplayArgs,
    mut config: ExternalConfig,
    json: bool,
    pl: PowerLossReplayArgs,
) -> Result<ExitCode> {
    let (Some(trial), Some(clean_ns), Some(calls)) = (args.trial, args.clean_ns, args.calls) else {
        bail!("--crash {} needs --trial, --clean-ns and --calls (copy them from the replay line)", config.crashes[0]);
    };
    config.points = args.points.unwrap_or_default();
    config.tear = pl.tear;
    config.power_loss.fs_model = args.fs_model.unwrap_or_default();
    config.power_loss.history = history_options(args.history, args.history_every, true)?;
    let state = pl.state.as_deref().map(str::parse::<StateText>).transpose().map_err(|e| anyhow!("--state: {e}"))?;
    let cancel = crate::cli::campaign::cancel_flag()?;
    let replayed =
        replay_power_loss(&config, trial, clean_ns, calls, state.as_ref(), pl.write_state.as_deref(), &cancel)
            .map_err(external_error)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&replayed)?);
    }
    let verdict = match &replayed {
        PowerLossReplayed::Trial(o) => {
            if !json {
                print_power_loss_trial(o, config.seed);
            }
            o.verdict.clone()
        }
        PowerLossReplayed::State { plan, delivery, acks, files, state, resolved, notes, verdict, written_to } => {
            if !json {
                println!(
                    "{} trial {} of seed {} (CRASHLAB_SEED={}), {}: {delivery}",
                    trial_kind(&plan.point),
                    plan.trial,
                    config.seed,
                    plan.writer_seed,
                    plan.point
                );
                print_acks(acks, None);
                print_files(files);
                println!(
                    "  state {state}{}",
                    if resolved != state { format!(" (here: {resolved})") } else { String::new() }
                );
                for n in notes {
                    println!("  note: {n}");
                }
                if let Some(p) = written_to {
                    println!("  wrote the state's directory to {}", p.display());
                }
                print_verdict(verdict);
                print_power_loss_note();
            }
            verdict.clone()
        }
    };
    Ok(if verdict.is_violation() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

fn print_power_loss_trial(o: &PowerLossTrialOutcome, seed: u64) {
    println!(
        "{} trial {} of seed {} (CRASHLAB_SEED={}), {}: {}",
        trial_kind(&o.plan.point),
        o.plan.trial,
        seed,
        o.plan.writer_seed,
        o.plan.point,
        o.delivery
    );
    print_acks(&o.acks, o.partial_line.as_deref());
    print_files(&o.files);
    println!(
        "  {} of {} states checked ({}), {} checker runs",
        o.states_checked,
        o.states_total,
        if o.exhaustive { "the space is walked whole" } else { "the space is sampled" },
        o.checker_runs
    );
    match &o.finding {
        None => println!("checker: consistent in every state checked"),
        Some(f) => {
            println!("checker: VIOLATION: {}", f.explanation);
            println!("  minimal state: {}", f.state);
            println!("  first failing state: {} ({}): {}", f.first_state, f.first_state_kind, f.first_reason);
        }
    }
    print_power_loss_note();
}

fn print_files(files: &[PowerLossFile]) {
    for f in files {
        println!(
            "  {}: durable floor {} bytes, newest {} bytes, {} unit(s) differ{}",
            f.path,
            f.floor_size,
            f.newest_size,
            f.dirty_units,
            match f.intermediate_versions {
                0 => String::new(),
                n => format!(" ({n} intermediate version(s) besides floor and newest)"),
            }
        );
    }
}

fn print_power_loss_note() {
    println!(
        "note: a crash at a sync call replays exactly for a deterministic writer; a timed crash replays the time, not the instruction it hit"
    );
}

fn print_acks(acks: &[String], partial: Option<&str>) {
    println!("  {} acknowledged line(s):", acks.len());
    for a in acks {
        println!("    {a}");
    }
    if let Some(p) = partial {
        println!("  an unfinished line (not an ack): {p}");
    }
}

fn print_verdict(v: &CheckerVerdict) {
    match v {
        CheckerVerdict::Consistent => println!("checker: consistent"),
        CheckerVerdict::Violation { reason } => println!("checker: VIOLATION: {reason}"),
    }
}

/// The crash kind a power-loss-shaped trial belongs to.
fn trial_kind(point: &crashlab::program_plan::PowerLossPoint) -> &'static str {
    match point {
        crashlab::program_plan::PowerLossPoint::FailedSync { .. } => "eio-sync",
        _ => "power-loss",
    }
}
