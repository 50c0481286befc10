//! From a [`MatrixConfig`] to cells of trials, run on the lab's worker pool,
//! to a [`SurvivalReport`].

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::crash::{crash_points, CrashKind, CrashPoint, PointSelection};
use crate::expectation::{expected_acks, PersistenceModel};
use crate::lab::pool::{run_batches, Batch, PoolConfig};
use crate::lab::protocol::{PowerLossPlan, TrialPlan};
use crate::power_loss::PowerLossConfig;
use crate::lab::trial::page_size;
use crate::report::{
    aggregate_cell, CellInput, MatrixConfig, ReplayLine, RunInfo, Summary, SurvivalReport, SCHEMA_VERSION,
};
use crate::scenario::{derive_seed, ScenarioId};
use crate::spec::{WorkloadParams, WriterSpec};
use crate::LabError;

/// Trials per message to a worker: large enough to amortize the pipe round
/// trip, small enough to balance two workers. Power-loss trials each judge
/// up to 65,536 states, so they travel in smaller batches.
const BATCH: usize = 32;
const POWER_LOSS_BATCH: usize = 4;

impl MatrixConfig {
    pub fn workload(&self) -> WorkloadParams {
        WorkloadParams { txns: self.txns, ..WorkloadParams::with_file_size(self.file_size) }
    }

    /// The writer of one scenario under this config.
    pub fn spec(&self, scenario: ScenarioId) -> Result<WriterSpec, LabError> {
        let seed = derive_seed(self.seed, &["spec", &scenario.to_string()]);
        WriterSpec::generate(&self.workload(), scenario.mapping, scenario.policy, page_size(), seed)
            .map_err(LabError::Spec)
    }

    pub fn replay_line(
        &self,
        scenario: ScenarioId,
        crash: CrashKind,
        model: PersistenceModel,
        point: CrashPoint,
    ) -> ReplayLine {
        ReplayLine {
            scenario,
            crash,
            point,
            seed: self.seed,
            file_size: self.file_size,
            txns: self.txns,
            model,
            tear: self.tear,
            state: None,
        }
    }

    /// How a power-loss cell of `model` simulates the loss.
    pub fn power_loss_config(&self, model: PersistenceModel) -> Option<PowerLossConfig> {
        match model {
            PersistenceModel::ProcessCrash => None,
            PersistenceModel::PowerLoss => Some(PowerLossConfig::default()),
            PersistenceModel::PowerLossTorn => Some(PowerLossConfig { tear: Some(self.tear), ..Default::default() }),
        }
    }

    /// The trial plan of one crash point of a cell.
    pub fn trial_plan(&self, scenario: ScenarioId, crash: CrashKind, model: PersistenceModel, point: CrashPoint) -> TrialPlan {
        let power_loss = self.power_loss_config(model).map(|config| PowerLossPlan {
            config,
            seed: derive_seed(self.seed, &["power-loss", &scenario.to_string(), model.name(), &point.to_string()]),
        });
        TrialPlan { kind: crash, point, power_loss }
    }
}

/// One cell, planned.
pub struct CellPlan {
    pub scenario: ScenarioId,
    pub crash: CrashKind,
    pub model: PersistenceModel,
    pub spec: Arc<WriterSpec>,
    pub points: Vec<CrashPoint>,
}

pub fn plan(config: &MatrixConfig) -> Result<Vec<CellPlan>, LabError> {
    if config.trials == 0 {
        return Err(LabError::Spec("--trials must be at least 1".into()));
    }
    if let Some(cfg) = config.power_loss_config(PersistenceModel::PowerLossTorn) {
        cfg.validate(page_size()).map_err(|e| LabError::Spec(format!("--tear {}: {e}", config.tear)))?;
    }
    let mut cells = Vec::new();
    for &scenario in &config.scenarios {
        let spec = Arc::new(config.spec(scenario)?);
        for &model in &config.models {
            if model.is_power_loss() {
                // Power loss at every op boundary: the instants at which a
                // sync has or has not completed, deterministically.
                let points = crash_points(&spec, CrashKind::Sigkill, PointSelection::Boundaries, 0);
                cells.push(CellPlan { scenario, crash: CrashKind::Sigkill, model, spec: spec.clone(), points });
                continue;
            }
            for &crash in &config.crashes {
                let seed = derive_seed(config.seed, &["points", &scenario.to_string(), crash.name()]);
                let points = crash_points(&spec, crash, config.points, seed);
                cells.push(CellPlan { scenario, crash, model, spec: spec.clone(), points });
            }
        }
    }
    if let Some(shard) = config.shard {
        // A shard runs one contiguous block of every cell's points; see
        // trial_space for why contiguous.
        for cell in &mut cells {
            cell.points = cell.points[shard.block(cell.points.len())].to_vec();
        }
    }
    Ok(cells)
}

/// Run the matrix. `dir` must exist; the pool's workers put their files there.
pub fn run_matrix(
    config: &MatrixConfig,
    pool: &PoolConfig,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<SurvivalReport, LabError> {
    let started = Instant::now();
    let started_at_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    crate::lab::pool::check_dir(&pool.dir)?;
    let cells = plan(config)?;
    let mut batches = Vec::new();
    let mut spans = Vec::new();
    for (key, cell) in cells.iter().enumerate() {
        let start = batches.len();
        let plans: Vec<TrialPlan> = cell
            .points
            .iter()
            .flat_map(|&point| {
                (0..config.trials).map(move |_| config.trial_plan(cell.scenario, cell.crash, cell.model, point))
            })
            .collect();
        let batch = if cell.model.is_power_loss() { POWER_LOSS_BATCH } else { BATCH };
        for chunk in plans.chunks(batch) {
            // One key per spec, so workers prepare each writer once.
            let spec_key = spec_key(&cells, key);
            batches.push(Batch { key: spec_key, spec: cell.spec.clone(), plans: chunk.to_vec() });
        }
        spans.push(start..batches.len());
    }
    let results = run_batches(pool, &batches, cancel, on_trials)?;
    let reports = cells
        .iter()
        .zip(spans)
        .map(|(cell, span)| {
            let records: Vec<_> = results[span].iter().flatten().cloned().collect();
            let replay = |p| config.replay_line(cell.scenario, cell.crash, cell.model, p);
            aggregate_cell(&CellInput {
                scenario: cell.scenario,
                crash: cell.crash,
                model: cell.model,
                expectation: expected_acks(cell.scenario.mapping, cell.scenario.policy, cell.crash, cell.model),
                points: &cell.points,
                records: &records,
                replay: &replay,
            })
        })
        .collect::<Vec<_>>();
    Ok(SurvivalReport {
        schema_version: SCHEMA_VERSION.into(),
        crashlab_version: env!("CARGO_PKG_VERSION").into(),
        run: RunInfo {
            started_at_unix,
            duration_ms: started.elapsed().as_millis() as u64,
            dir: pool.dir.display().to_string(),
        },
        environment: crate::environment::probe(&pool.dir),
        seed: config.seed,
        config: config.clone(),
        summary: Summary::of(&reports),
        cells: reports,
    })
}

/// The key of the spec of cell `i`: the index of the first cell with the
/// same scenario.
fn spec_key(cells: &[CellPlan], i: usize) -> u64 {
    cells.iter().position(|c| c.scenario == cells[i].scenario).unwrap_or(i) as u64
}

/// Write `report` as pretty JSON to `path`, creating parent directories.
pub fn write_report(report: &SurvivalReport, path: &Path) -> Result<(), LabError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| LabError::io(format!("cannot create {}", parent.display()), e))?;
    }
    let mut json = serde_json::to_string_pretty(report).expect("reports serialize");
    json.push('\n');
    std::fs::write(path, json).map_err(|e| LabError::io(format!("cannot write the report {}", path.display()), e))
}
