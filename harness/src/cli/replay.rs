//! `crashlab replay`: rerun one trial from the line a report printed.

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Args;

use crashlab::crash::{CrashPoint, PointSelection};
use crashlab::expectation::PersistenceModel;
use crashlab::payload::Payloads;
use crashlab::power_loss::{self, AckJudge, CrashState, PowerLossModel};
use crashlab::report::survival::{MatrixConfig, Verdict};
use crashlab::scenario::ScenarioId;
use crashlab::spec::WriterSpec;
use crashlab::trial_record::TrialRecord;
use crashlab::trial_replay::{replay_trial, ReplayOutcome};
use crashlab::{flag_limits, limits};

#[derive(Args)]
pub struct ReplayArgs {
    #[arg(long, required_unless_present = "writer")]
    scenario: Option<ScenarioId>,
    /// sigkill, abort (also read as sigabrt), sigbus or clean; with --writer
    /// also power-loss, eio-sync[:K], enospc and enospc,power-loss (an enospc
    /// trial with its power-loss states; --state checks one of them).
    #[arg(long)]
    crash: crate::cli::external_run::CrashArg,
    /// The crash point, as printed: before:K, inside:K+Nns, time:Ppermille,
    /// truncate:K@LEN or none.
    #[arg(long, required_unless_present = "writer")]
    point: Option<CrashPoint>,
    #[arg(long)]
    seed: u64,
    #[arg(long, default_value_t = 256 * 1024)]
    size: u64,
    #[arg(long, default_value_t = 12)]
    txns: u32,
    /// Directory for the file under test. Default: the system temp dir.
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 60)]
    timeout: u32,
    /// Print the trial record as JSON instead of prose.
    #[arg(long)]
    json: bool,
    /// The persistence model to judge the crash instant under.
    #[arg(long, default_value = "process-crash")]
    model: PersistenceModel,
    /// Sector size of power-loss-torn (default 512); with --writer, as
    /// printed in the replay line.
    #[arg(long)]
    tear: Option<u64>,
    /// A power-loss state to rebuild exactly (as printed in explanations):
    /// prints which acks it loses and writes its bytes with --write-state.
    /// With --writer: rebuilds that state's directory and runs the checker.
    #[arg(long)]
    state: Option<String>,
    /// Write the bytes of --state to this file (with --writer: the state's
    /// directory, which must not exist).
    #[arg(long, requires = "state")]
    write_state: Option<std::path::PathBuf>,
    /// Replay a trial of your own program (`crashlab run --writer`).
    #[command(flatten)]
    external: crate::cli::external_run::ExternalReplayArgs,
}

pub fn run(a: ReplayArgs) -> Result<ExitCode> {
    if a.external.writer.is_some() {
        use crate::cli::external_run::{replay, PowerLossReplayArgs};
        let pl = PowerLossReplayArgs { tear: a.tear, state: a.state, write_state: a.write_state };
        return replay(&a.external, a.crash, a.seed, a.dir.as_deref(), a.timeout, a.json, pl);
    }
    a.external.check_without_writer()?;
    let crash = a.crash.kind;
    let state = a.state.as_deref().map(str::parse::<CrashState>).transpose().context("--state")?;
    let tear = a.tear.unwrap_or(crashlab::power_loss::DEFAULT_TEAR);
    let scenario = a.scenario.expect("clap requires --scenario without --writer");
    let point = a.point.expect("clap requires --point without --writer");
    let config = MatrixConfig {
        seed: a.seed,
        file_size: a.size,
        txns: a.txns,
        points: PointSelection::All,
        trials: 1,
        scenarios: vec![scenario],
        crashes: vec![crash],
        models: vec![a.model],
        tear,
        shard: None,
        real: Vec::new(),
        real_sample: None,
    };
    if state.is_some() && !a.model.is_power_loss() {
        anyhow::bail!("--state needs --model power-loss or power-loss-torn");
    }
    flag_limits::check_size("--size", a.size).map_err(anyhow::Error::msg)?;
    flag_limits::check_txns(a.txns).map_err(anyhow::Error::msg)?;
    flag_limits::check_timeout(a.timeout).map_err(anyhow::Error::msg)?;
    let spec = config.spec(scenario).with_context(|| format!("--scenario {} --size {}", scenario, a.size))?;
    let dir = crate::cli::campaign::work_dir(&a.dir)?;
    // One trial on one worker: the writer's images, one record.
    let one = MatrixConfig {
        points: PointSelection::Random(1),
        models: vec![PersistenceModel::ProcessCrash],
        ..config.clone()
    };
    limits::check_footprint(
        &limits::matrix_footprint(&one, 1),
        &limits::Resources::probe(Some(dir.path())),
        &crate::cli::campaign::dir_label(a.dir.as_deref(), dir.path()),
    )
    .map_err(anyhow::Error::msg)?;
    let pool = crashlab::lab::pool::PoolConfig {
        command: crashlab::worker_pool::WorkerCommand::current_exe()?,
        jobs: 1,
        dir: dir.path().to_owned(),
        watchdog_secs: a.timeout,
    };
    let line = config.replay_line(scenario, crash, a.model, point);
    let ReplayOutcome { record, cell } = replay_trial(&line, &pool)?;
    let record = &record;
    if a.json {
        println!("{}", serde_json::to_string_pretty(record)?);
    } else {
        let f = &record.facts;
        let v = &record.verdict;
        println!("{} under {} at {}", scenario, crash, point);
        println!("  writer ended with {}; {} of {} ops completed", f.exit, f.journal.completed, spec.ops.len());
        if let Some(i) = f.journal.in_flight {
            println!("  in flight: op {i} ({})", spec.ops[i].kind_name());
        }
        if let Some((op, len)) = f.external_truncate {
            println!("  the file was truncated to {len} bytes when the writer reached op {op}");
        }
        if let Some(s) = v.faulting_store {
            println!("  store op {s} died of SIGBUS");
        }
        if let Some(fl) = v.in_flight {
            println!(
                "  in-flight store {}: {} of {} bytes new{}",
                fl.op,
                fl.new_bytes,
                fl.bytes,
                if fl.torn() { " (torn)" } else { "" }
            );
        }
        println!("  file: {} bytes (model: {})", v.file_len, v.expected_len);
        for ack in &v.acks {
            println!("  ack {} (op {}): {:?}", ack.id, ack.op, ack.status);
        }
        for x in &v.violations {
            println!(
                "  VIOLATION {:?}{}: {}",
                x.kind,
                x.range.map(|r| format!(" [{}, {})", r.start, r.end)).unwrap_or_default(),
                x.detail
            );
        }
    }
    if let Some(pl) = &record.power_loss {
        if !a.json {
            println!(
                "  power loss ({}): {} states checked{}, {} dirty units of {} bytes, sizes {:?}",
                a.model,
                pl.states_checked,
                if pl.exhaustive { " (all of them)" } else { " (sampled)" },
                pl.dirty_units,
                pl.unit_size,
                pl.sizes
            );
            for ack in &pl.acks {
                println!(
                    "  ack {} (op {}): {}",
                    ack.id,
                    ack.op,
                    if ack.guaranteed {
                        "guaranteed".to_string()
                    } else {
                        format!("may be lost ({} states lose it, {} tear it)", ack.lost_states, ack.torn_states)
                    }
                );
            }
            for e in &pl.explanations {
                println!("  {}\n    state: {}", e.text, e.state);
            }
        }
    }
    if let Some(state) = &state {
        judge_state(&spec, &config, a.model, record, state, a.write_state.as_deref())?;
    }
    let model = a.model;
    println!(
        "verdict ({model} model): {:?}{}",
        cell.verdict,
        cell.verdict_reason.map(|r| format!(": {r}")).unwrap_or_default()
    );
    if point.is_timed() {
        println!(
            "note: {} is a timed point; the replay reruns the same plan, the journal above says where it landed",
            point
        );
    }
    Ok(if cell.verdict == Verdict::AsExpected { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Rebuild one power-loss state and say what it does to every completed ack.
fn judge_state(
    spec: &WriterSpec,
    config: &MatrixConfig,
    model: PersistenceModel,
    record: &TrialRecord,
    state: &CrashState,
    write_to: Option<&std::path::Path>,
) -> Result<()> {
    let cfg = config.power_loss_config(model).expect("--state is only accepted with a power-loss model");
    let payloads = Payloads::build(spec);
    let pl = PowerLossModel::build(spec, &payloads, &record.facts, &cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
    let choice = pl.resolve(state).map_err(|e| anyhow::anyhow!("--state: {e}"))?;
    let judge = AckJudge::build(&pl);
    println!("  state {state}:");
    for (ack, status) in judge.acks().iter().zip(judge.evaluate(&choice)) {
        println!("    ack {} (op {}): {:?}", ack.id, ack.op, status);
    }
    if let Some(path) = write_to {
        let bytes =
            power_loss::materialize(spec, &payloads, &record.facts, &cfg, state).map_err(|e| anyhow::anyhow!(e))?;
        crashlab::report::file::write_atomically("--write-state", path, &bytes)?;
        println!("  wrote the state's {} bytes to {}", std::fs::metadata(path)?.len(), path.display());
    }
    Ok(())
}
