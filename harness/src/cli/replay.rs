//! `crashlab replay`: rerun one trial from the line a report printed.

use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;

use crashlab::crash::{CrashKind, CrashPoint, PointSelection};
use crashlab::expectation::{expected_acks, PersistenceModel};
use crashlab::lab::pool::{run_batches, Batch};
use crashlab::lab::protocol::TrialPlan;
use crashlab::report::{aggregate_cell, CellInput, MatrixConfig, Verdict};
use crashlab::scenario::ScenarioId;

#[derive(Args)]
pub struct ReplayArgs {
    #[arg(long)]
    scenario: ScenarioId,
    #[arg(long)]
    crash: CrashKind,
    /// The crash point, as printed: before:K, inside:K+Nns, time:Ppermille,
    /// truncate:K@LEN or none.
    #[arg(long)]
    point: CrashPoint,
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
}

pub fn run(a: ReplayArgs) -> Result<ExitCode> {
    let config = MatrixConfig {
        seed: a.seed,
        file_size: a.size,
        txns: a.txns,
        points: PointSelection::All,
        trials: 1,
        scenarios: vec![a.scenario],
        crashes: vec![a.crash],
    };
    let spec = config.spec(a.scenario).with_context(|| format!("--scenario {} --size {}", a.scenario, a.size))?;
    a.point.fits(a.crash, &spec).map_err(|e| anyhow::anyhow!("--point: {e}"))?;
    let dir = crate::work_dir(&a.dir)?;
    let common_jobs = crashlab::lab::pool::PoolConfig {
        command: crashlab::lab::pool::WorkerCommand::current_exe()?,
        jobs: 1,
        dir: dir.path().to_owned(),
        watchdog_secs: a.timeout,
    };
    let batch =
        Batch { key: 0, spec: Arc::new(spec.clone()), plans: vec![TrialPlan { kind: a.crash, point: a.point }] };
    let records = run_batches(&common_jobs, &[batch], &AtomicBool::new(false), &|_| {})?;
    let record = &records[0][0];
    if a.json {
        println!("{}", serde_json::to_string_pretty(record)?);
    } else {
        let f = &record.facts;
        let v = &record.verdict;
        println!("{} under {} at {}", a.scenario, a.crash, a.point);
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
    let replay = |p| config.replay_line(a.scenario, a.crash, p);
    let model = PersistenceModel::ProcessCrash;
    let cell = aggregate_cell(&CellInput {
        scenario: a.scenario,
        crash: a.crash,
        model,
        expectation: expected_acks(a.scenario.mapping, a.scenario.policy, a.crash, model),
        points: &[a.point],
        records: &records[0],
        replay: &replay,
    });
    println!(
        "verdict ({model} model): {:?}{}",
        cell.verdict,
        cell.verdict_reason.map(|r| format!(": {r}")).unwrap_or_default()
    );
    if a.point.is_timed() {
        println!(
            "note: {} is a timed point; the replay reruns the same plan, the journal above says where it landed",
            a.point
        );
    }
    Ok(if cell.verdict == Verdict::AsExpected { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
