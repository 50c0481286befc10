//! From a [`MatrixConfig`] to cells of trials, run on the lab's worker pool
//! (and, for the `power-loss-real` columns, on realcut workers or guests),
//! to a [`SurvivalReport`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::crash::{crash_points, CrashPoint, PointSelection};
use crate::expectation::{expected_acks, PersistenceModel};
use crate::lab::pool::{run_batches, Batch, PoolConfig};
use crate::lab::protocol::{PowerLossPlan, TrialPlan};
use crate::page_size::page_size;
use crate::payload::BaseImage;
use crate::power_loss::PowerLossConfig;
use crate::realcut::campaign::{PlannedTrial, SoundnessConfig, WorkloadId};
use crate::realcut::columns::{run_real_cells, RealCell, RealSetup};
use crate::realcut::RealcutError;
use crate::report::survival::{CellReport, MatrixConfig, ReplayLine, RunInfo, Summary, SurvivalReport, SCHEMA_VERSION};
use crate::report::survival_cells::{aggregate_cell, aggregate_real_cell, CellInput, RealCellInput};
use crate::scenario::{derive_seed, ScenarioId};
use crate::spec::{MappingKind, WorkloadParams, WriterSpec};
use crate::vocab::CrashKind;
use crate::vocab::{Backend, RealColumn};
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
            // Real cuts are judged by the realcut judge, not simulated here.
            PersistenceModel::PowerLossReal => None,
        }
    }

    /// The command that reruns the real cut of `column` at `point` of `scenario`.
    pub fn real_rerun_line(&self, scenario: ScenarioId, column: RealColumn, point: CrashPoint) -> String {
        let cfg = SoundnessConfig {
            backend: column.backend,
            seed: self.seed,
            filesystems: vec![column.fs],
            cut: None,
            trials: 1,
            scenarios: vec![WorkloadId::Scenario(scenario)],
            point: None,
            file_size: self.file_size,
            txns: self.txns,
            // A rerun is one trial: one writer, one cut.
            writers_per_cut: 1,
            page_cache: None,
            writeback: crate::vocab::Writeback::None,
        };
        let trial = PlannedTrial { fs: column.fs, scenario: WorkloadId::Scenario(scenario), point };
        crate::realcut::report::rerun_line(&cfg, &trial)
    }

    /// The trial plan of one crash point of a cell.
    pub fn trial_plan(
        &self,
        scenario: ScenarioId,
        crash: CrashKind,
        model: PersistenceModel,
        point: CrashPoint,
    ) -> TrialPlan {
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
    /// The real column of a `power-loss-real` cell.
    pub real: Option<RealColumn>,
}

pub fn plan(config: &MatrixConfig) -> Result<Vec<CellPlan>, LabError> {
    plan_cancellable(config, &AtomicBool::new(false))
}

/// The fixed maxima of a matrix config ([`crate::flag_limits`]): checked
/// before any writer is generated, so a huge value costs nothing.
pub fn check_matrix_config(config: &MatrixConfig) -> Result<(), String> {
    use crate::flag_limits::{check_points, check_size, check_trials, check_txns, MATRIX_TRIALS};
    check_size("--size", config.file_size)?;
    check_txns(config.txns)?;
    check_trials(config.trials, MATRIX_TRIALS)?;
    check_points(config.points)?;
    let only_private = config.scenarios.iter().all(|s| s.mapping == MappingKind::Private);
    let only_process_crash = config.models.iter().all(|m| *m == PersistenceModel::ProcessCrash);
    if config.crashes == [CrashKind::Enospc] && only_private && only_process_crash {
        return Err("--crash enospc: not applicable to MAP_PRIVATE scenarios (a private store into a hole copies to \
                    anonymous memory and never allocates a page of the file); pick a shared/... scenario"
            .into());
    }
    if let Some(k) = config.crashes.iter().find(|k| !CrashKind::MATRIX.contains(k)) {
        return Err(format!(
            "--crash {k}: the matrix simulates power loss as a persistence model of its SIGKILLed writers \
             (--crash sigkill --model power-loss, the default models); --crash power-loss is for `run --writer`"
        ));
    }
    Ok(())
}

/// [`plan`], stopping with `Interrupted` between writers once `cancel` is
/// set: a large config takes a while to plan. Configs beyond the fixed
/// maxima of [`crate::flag_limits`] are refused before any writer is generated.
pub fn plan_cancellable(config: &MatrixConfig, cancel: &AtomicBool) -> Result<Vec<CellPlan>, LabError> {
    check_matrix_config(config).map_err(LabError::Spec)?;
    if let Some(cfg) = config.power_loss_config(PersistenceModel::PowerLossTorn) {
        cfg.validate(page_size()).map_err(|e| LabError::Spec(format!("--tear {}: {e}", config.tear)))?;
    }
    let real_model = config.models.contains(&PersistenceModel::PowerLossReal);
    if real_model && config.real.is_empty() {
        return Err(LabError::Spec(
            "the power-loss-real model needs real columns (--real loopcut:ext4,loopcut:xfs,loopcut:btrfs,vm)".into(),
        ));
    }
    if !real_model && !config.real.is_empty() {
        return Err(LabError::Spec(format!(
            "real columns ({}) run under the power-loss-real model: add it to --model",
            config.real.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
        )));
    }
    if let Some(c) = config.real.iter().enumerate().find_map(|(i, c)| config.real[..i].contains(c).then_some(c)) {
        return Err(LabError::Spec(format!("--real {c} given twice")));
    }
    let mut cells = Vec::new();
    for &scenario in &config.scenarios {
        if cancel.load(Ordering::SeqCst) {
            return Err(LabError::Interrupted);
        }
        let spec = Arc::new(config.spec(scenario)?);
        for &model in &config.models {
            if model.is_power_loss() {
                // Power loss at every op boundary: the instants at which a
                // sync has or has not completed, deterministically. Real
                // cuts come at the same instants, one cell per real column.
                let mut points = crash_points(&spec, CrashKind::Sigkill, PointSelection::Boundaries, 0);
                let columns: Vec<Option<RealColumn>> =
                    if model.is_real() { config.real.iter().copied().map(Some).collect() } else { vec![None] };
                if let (true, Some(n)) = (model.is_real(), config.real_sample) {
                    // One sample per scenario: every real column cuts at the
                    // same instants, so the columns compare like for like.
                    let seed = derive_seed(config.seed, &["real-sample", &scenario.to_string()]);
                    points = sample_points(points, n, seed);
                }
                for real in columns {
                    let crash = CrashKind::Sigkill;
                    cells.push(CellPlan { scenario, crash, model, spec: spec.clone(), points: points.clone(), real });
                }
                // The enospc column's instants are its SIGBUSes: a simulated
                // power loss at each boundary capacity (one per store that
                // allocates, and the control), judged as at a SIGKILL.
                let enospc = config.crashes.contains(&CrashKind::Enospc) && scenario.mapping == MappingKind::Shared;
                if enospc && model.is_simulated_power_loss() {
                    let points = crash_points(&spec, CrashKind::Enospc, PointSelection::Boundaries, 0);
                    let crash = CrashKind::Enospc;
                    cells.push(CellPlan { scenario, crash, model, spec: spec.clone(), points, real: None });
                }
                continue;
            }
            for &crash in &config.crashes {
                // A MAP_PRIVATE store into a hole copies to anonymous
                // memory and allocates no page of the file: no cell, not
                // a pass (the report and README say "not applicable").
                if crash == CrashKind::Enospc && scenario.mapping != MappingKind::Shared {
                    continue;
                }
                let seed = derive_seed(config.seed, &["points", &scenario.to_string(), crash.name()]);
                let points = crash_points(&spec, crash, config.points, seed);
                cells.push(CellPlan { scenario, crash, model, spec: spec.clone(), points, real: None });
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
/// A config with real columns needs [`run_matrix_with_real`].
pub fn run_matrix(
    config: &MatrixConfig,
    pool: &PoolConfig,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<SurvivalReport, LabError> {
    run_matrix_with_real(config, pool, None, cancel, on_trials)
}

/// A realcut error as the engine reports it (the message is kept whole:
/// `unavailable: needs root ...`).
fn lab_error(e: RealcutError) -> LabError {
    match e {
        RealcutError::Interrupted => LabError::Interrupted,
        e => LabError::Spec(e.to_string()),
    }
}

/// Run the matrix, the `power-loss-real` columns on `real` (required when
/// the config has real columns; checked before any trial runs).
pub fn run_matrix_with_real(
    config: &MatrixConfig,
    pool: &PoolConfig,
    real: Option<&RealSetup>,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<SurvivalReport, LabError> {
    let started = Instant::now();
    let started_at_unix = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    crate::lab::pool::check_dir(&pool.dir)?;
    let cells = plan_cancellable(config, cancel)?;
    let setup = match (config.real.is_empty(), real) {
        (true, _) => None,
        (false, None) => {
            return Err(LabError::Spec(format!(
                "real columns ({}) need a real-cut setup (run_matrix_with_real)",
                config.real.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",")
            )))
        }
        (false, Some(setup)) => {
            let vm = setup.vm.as_ref();
            crate::realcut::columns::check_available(&config.real, vm).map_err(lab_error)?;
            Some(setup)
        }
    };
    let mut batches = Vec::new();
    let mut spans = Vec::new();
    for (key, cell) in cells.iter().enumerate() {
        if cancel.load(Ordering::SeqCst) {
            return Err(LabError::Interrupted);
        }
        let start = batches.len();
        if cell.real.is_some() {
            spans.push(start..start);
            continue;
        }
        let plans: Vec<TrialPlan> = cell
            .points
            .iter()
            .flat_map(|&point| {
                (0..config.trials).map(move |_| config.trial_plan(cell.scenario, cell.crash, cell.model, point))
            })
            .collect();
        let batch = if cell.model.is_power_loss() { POWER_LOSS_BATCH } else { BATCH };
        for chunk in plans.chunks(batch) {
            // One key per spec and base image, so workers prepare each
            // writer once per file it starts from.
            let base = BaseImage::for_crash(cell.crash);
            let spec_key = spec_key(&cells, key) + if base == BaseImage::Sparse { cells.len() as u64 } else { 0 };
            batches.push(Batch { key: spec_key, spec: cell.spec.clone(), base, plans: chunk.to_vec() });
        }
        spans.push(start..batches.len());
    }
    let results = run_batches(pool, &batches, cancel, on_trials)?;
    let real_reports = match setup {
        Some(setup) => run_real(config, &cells, setup, cancel, on_trials)?,
        None => Vec::new(),
    };
    let mut real_reports = real_reports.into_iter();
    let reports = cells
        .iter()
        .zip(spans)
        .map(|(cell, span)| {
            if cell.real.is_some() {
                return real_reports.next().expect("one report per real cell");
            }
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
        lifecycle: None,
        enospc_skipped: None,
        cells: reports,
    })
}

/// Run the real cells of `cells` (in order) and aggregate each.
fn run_real(
    config: &MatrixConfig,
    cells: &[CellPlan],
    setup: &RealSetup,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<Vec<CellReport>, LabError> {
    let mut real_cells = Vec::new();
    let mut plans = Vec::new();
    for (i, cell) in cells.iter().enumerate() {
        let Some(column) = cell.real else { continue };
        let points: Vec<CrashPoint> =
            cell.points.iter().flat_map(|&p| std::iter::repeat_n(p, config.trials as usize)).collect();
        real_cells.push(RealCell { column, key: spec_key(cells, i), spec: &cell.spec, points });
        plans.push(cell);
    }
    let records = run_real_cells(setup, &real_cells, cancel, on_trials).map_err(lab_error)?;
    let host_kernel = crate::environment::kernel_release();
    let reports = plans
        .iter()
        .zip(&real_cells)
        .zip(&records)
        .map(|((cell, rc), records)| {
            let kernel_release = match (rc.column.backend, &setup.vm) {
                (Backend::Vm, Some(vm)) => vm.kernel_version.clone(),
                _ => host_kernel.clone(),
            };
            let rerun = |p| match setup.writeback {
                crate::vocab::Writeback::None => config.real_rerun_line(cell.scenario, rc.column, p),
                w => format!("{} --writeback {w}", config.real_rerun_line(cell.scenario, rc.column, p)),
            };
            aggregate_real_cell(&RealCellInput {
                scenario: cell.scenario,
                column: rc.column,
                kernel_release,
                expectation: expected_acks(cell.scenario.mapping, cell.scenario.policy, cell.crash, cell.model),
                points: &cell.points,
                records,
                rerun: &rerun,
                writeback: setup.writeback,
            })
        })
        .collect();
    Ok(reports)
}

/// At most `n` of `points`, drawn with `seed` without repeats, in their
/// original order. `n` of 0 is refused by the CLI.
pub fn sample_points(points: Vec<CrashPoint>, n: u32, seed: u64) -> Vec<CrashPoint> {
    use rand::seq::index::sample;
    use rand::SeedableRng;
    if points.len() <= n as usize {
        return points;
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut chosen = sample(&mut rng, points.len(), n as usize).into_vec();
    chosen.sort_unstable();
    chosen.into_iter().map(|i| points[i]).collect()
}

/// The key of the spec of cell `i`: the index of the first cell with the
/// same scenario.
fn spec_key(cells: &[CellPlan], i: usize) -> u64 {
    cells.iter().position(|c| c.scenario == cells[i].scenario).unwrap_or(i) as u64
}

/// Trials a run of `config` performs (its shard only, if it has one): the
/// total a progress bar counts towards.
pub fn planned_trials(config: &MatrixConfig) -> Result<u64, LabError> {
    planned_trials_cancellable(config, &AtomicBool::new(false))
}

/// [`planned_trials`], stopping with `Interrupted` once `cancel` is set.
pub fn planned_trials_cancellable(config: &MatrixConfig, cancel: &AtomicBool) -> Result<u64, LabError> {
    let points: u64 = plan_cancellable(config, cancel)?.iter().map(|c| c.points.len() as u64).sum();
    Ok(points * config.trials as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker_pool::WorkerCommand;

    fn config(models: Vec<PersistenceModel>, real: &[&str]) -> MatrixConfig {
        MatrixConfig {
            seed: 3,
            file_size: 65536,
            txns: 4,
            points: PointSelection::All,
            trials: 2,
            scenarios: vec!["shared/no-sync".parse().unwrap(), "private/ms-sync-each".parse().unwrap()],
            crashes: vec![CrashKind::Abort],
            models,
            tear: 512,
            shard: None,
            real: real.iter().map(|c| c.parse().unwrap()).collect(),
            real_sample: None,
        }
    }

    #[test]
    fn each_real_column_is_a_cell_at_the_simulated_power_loss_points() {
        let c = config(vec![PersistenceModel::PowerLoss, PersistenceModel::PowerLossReal], &["loopcut:ext4", "vm"]);
        let cells = plan(&c).unwrap();
        assert_eq!(cells.len(), 6, "2 scenarios × (power-loss + 2 real columns)");
        for scenario in &c.scenarios {
            let row: Vec<&CellPlan> = cells.iter().filter(|x| x.scenario == *scenario).collect();
            let labels: Vec<Option<String>> = row.iter().map(|x| x.real.map(|r| r.to_string())).collect();
            assert_eq!(labels, vec![None, Some("loopcut:ext4".into()), Some("vm".into())]);
            assert!(row.iter().all(|x| x.crash == CrashKind::Sigkill && x.points == row[0].points));
            assert_eq!(row[0].points.len(), row[0].spec.ops.len() + 1, "every op boundary");
        }
        assert_eq!(planned_trials(&c).unwrap(), cells.iter().map(|x| 2 * x.points.len() as u64).sum::<u64>());
        let shard = MatrixConfig { shard: Some(crate::trial_space::Shard::new(2, 3).unwrap()), ..c.clone() };
        let sharded = plan(&shard).unwrap();
        assert!(sharded.iter().zip(&cells).all(|(s, w)| s.real == w.real && s.points.len() < w.points.len()));
        assert!(c.real_rerun_line(c.scenarios[0], c.real[1], CrashPoint::BeforeOp(3)).starts_with(
            "crashlab soundness --backend vm --fs ext4 --scenario shared/no-sync --point before:3 --seed 3 --size \
             65536 --txns 4 --trials 1"
        ));
    }

    #[test]
    fn a_real_sample_cuts_the_same_few_boundaries_in_every_real_column_only() {
        let full = config(vec![PersistenceModel::PowerLoss, PersistenceModel::PowerLossReal], &["loopcut:ext4", "vm"]);
        let sampled = MatrixConfig { real_sample: Some(3), ..full.clone() };
        let (all, some) = (plan(&full).unwrap(), plan(&sampled).unwrap());
        for (a, s) in all.iter().zip(&some) {
            if s.real.is_none() {
                assert_eq!(s.points, a.points, "simulated cells keep every boundary");
                continue;
            }
            assert_eq!(s.points.len(), 3);
            assert!(s.points.windows(2).all(|w| w[0] < w[1]), "distinct, in boundary order: {:?}", s.points);
            assert!(s.points.iter().all(|p| a.points.contains(p)));
        }
        for scenario in &full.scenarios {
            let real: Vec<&CellPlan> = some.iter().filter(|c| c.scenario == *scenario && c.real.is_some()).collect();
            assert!(real.len() == 2 && real[0].points == real[1].points, "same boundaries in both columns");
        }
        assert_eq!(
            plan(&sampled).unwrap().iter().map(|c| c.points.clone()).collect::<Vec<_>>(),
            some.iter().map(|c| c.points.clone()).collect::<Vec<_>>(),
            "a function of the config"
        );
        let other = plan(&MatrixConfig { seed: 4, ..sampled.clone() }).unwrap();
        assert!(
            other.iter().zip(&some).any(|(o, s)| s.real.is_some() && o.points != s.points),
            "another seed, another sample"
        );
        // A sample as large as the boundaries is all of them.
        let n = all[1].points.len() as u32;
        let big = plan(&MatrixConfig { real_sample: Some(n + 5), ..full.clone() }).unwrap();
        assert!(big.iter().zip(&all).all(|(b, a)| b.points == a.points));
    }

    #[test]
    fn real_columns_and_the_real_model_come_together() {
        let e = plan(&config(vec![PersistenceModel::PowerLossReal], &[])).err().unwrap().to_string();
        assert!(e.contains("needs real columns (--real"), "{e}");
        let e = plan(&config(vec![PersistenceModel::PowerLoss], &["loopcut:xfs"])).err().unwrap().to_string();
        assert!(e.contains("loopcut:xfs") && e.contains("add it to --model"), "{e}");
        let e = plan(&config(vec![PersistenceModel::PowerLossReal], &["vm", "vm"])).err().unwrap().to_string();
        assert!(e.contains("--real vm given twice"), "{e}");
        // Without a real-cut setup the engine refuses before running anything.
        let dir = tempfile::tempdir().unwrap();
        let pool = PoolConfig {
            command: WorkerCommand::binary("/nonexistent/crashlab"),
            jobs: 1,
            dir: dir.path().to_owned(),
            watchdog_secs: 5,
        };
        let c = config(vec![PersistenceModel::PowerLossReal], &["loopcut:ext4"]);
        let e = run_matrix(&c, &pool, &AtomicBool::new(false), &|_| {}).err().unwrap().to_string();
        assert!(e.contains("need a real-cut setup"), "{e}");
    }

    #[test]
    fn the_enospc_column_has_cells_for_map_shared_rows_only() {
        let c = MatrixConfig {
            crashes: vec![CrashKind::Sigkill, CrashKind::Enospc],
            ..config(vec![PersistenceModel::ProcessCrash], &[])
        };
        let cells = plan(&c).unwrap();
        let labels: Vec<String> = cells.iter().map(|x| format!("{} {}", x.scenario, x.crash)).collect();
        assert_eq!(
            labels,
            ["shared/no-sync sigkill", "shared/no-sync enospc", "private/ms-sync-each sigkill"],
            "a private store allocates no page of the file: no enospc cell"
        );
        let enospc = &cells[1];
        assert!(!enospc.points.is_empty());
        assert!(enospc.points.iter().all(|p| matches!(p, CrashPoint::Capacity { .. })));
        // Under the simulated power-loss models: the sigkill cell at every
        // boundary, then the enospc cell at every boundary capacity.
        let pl = MatrixConfig { models: vec![PersistenceModel::PowerLoss], ..c.clone() };
        let cells = plan(&pl).unwrap();
        let labels: Vec<String> = cells.iter().map(|x| format!("{} {} {}", x.scenario, x.crash, x.model)).collect();
        assert_eq!(
            labels,
            [
                "shared/no-sync sigkill power-loss",
                "shared/no-sync enospc power-loss",
                "private/ms-sync-each sigkill power-loss"
            ]
        );
        let bounds = crash_points(&cells[1].spec, CrashKind::Enospc, PointSelection::Boundaries, 0);
        assert_eq!(cells[1].points, bounds);
    }

    #[test]
    fn the_matrix_refuses_power_loss_as_a_crash_kind_and_names_the_model_instead() {
        let c = MatrixConfig { crashes: vec![CrashKind::Sigkill, CrashKind::PowerLoss], ..config(vec![], &[]) };
        let e = check_matrix_config(&c).unwrap_err();
        assert!(e.contains("--crash power-loss") && e.contains("--model power-loss"), "{e}");
        assert!(plan(&c).is_err(), "planning must refuse it too");
        let ok =
            MatrixConfig { crashes: CrashKind::MATRIX.to_vec(), ..config(vec![PersistenceModel::ProcessCrash], &[]) };
        let private = MatrixConfig {
            crashes: vec![CrashKind::Enospc],
            scenarios: vec!["private/no-sync".parse().unwrap()],
            ..ok.clone()
        };
        let e = check_matrix_config(&private).unwrap_err();
        assert!(e.contains("--crash enospc: not applicable to MAP_PRIVATE"), "{e}");
        let with_shared = MatrixConfig { scenarios: ok.scenarios.clone(), ..private.clone() };
        assert_eq!(check_matrix_config(&with_shared), Ok(()), "a MAP_SHARED row has the column");
        assert_eq!(check_matrix_config(&ok), Ok(()));
    }
}
