//! `crashlab matrix` (and `crashlab run --scenario`, one cell of it): the
//! survival matrix of the built-in writers, with its real power-cut columns
//! (`--real`, [`RealColumnArgs`]) checked before any trial runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;

use anyhow::{bail, Context, Result};
use clap::Args;

use crashlab::expectation::PersistenceModel;
use crashlab::lifecycle::family::LifecycleKind;
use crashlab::lifecycle::rows::{lifecycle_config, probe_oracle, run_lifecycle, without_power_loss_if, LifecycleRun};
use crashlab::matrix::{planned_trials_cancellable, run_matrix_with_real};
use crashlab::realcut::campaign::DEFAULT_WRITERS_PER_CUT;
use crashlab::realcut::columns::{check_available, default_image_dir, RealSetup};
use crashlab::realcut::loopcut::RealPoolConfig;
use crashlab::report::file::write_json_report;
use crashlab::report::survival::{MatrixConfig, SurvivalReport};
use crashlab::scenario::ScenarioId;
use crashlab::vocab::CrashKind;
use crashlab::vocab::{Backend, RealColumn};
use crashlab::{limits, LabError};

use super::campaign::{absolute, cancel_flag, check_common, dir_label, fresh_seed, pool_config, work_dir, CommonArgs};

#[derive(Args)]
pub struct MatrixArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Crash kinds (columns), comma-separated. `enospc` (MAP_SHARED rows
    /// only) is skipped, and the report says why, where its tmpfs cannot be
    /// mounted (no user namespaces).
    #[arg(long, value_delimiter = ',', default_value = "sigkill,abort,sigbus,clean,enospc")]
    pub crash: Vec<CrashKind>,
    /// Scenarios (rows) as MAPPING/POLICY, comma-separated. Default: all 12.
    #[arg(long, value_delimiter = ',')]
    pub scenario: Vec<ScenarioId>,
    #[command(flatten)]
    pub real: RealColumnArgs,
    #[command(flatten)]
    pub lifecycle: LifecycleArgs,
}

/// The file-lifecycle rows of the matrix: built-in protocol-v1 programs
/// (atomic replace via rename, a new file per op; with and without a
/// directory fsync) run by the external engine.
#[derive(Args, Clone)]
pub struct LifecycleArgs {
    /// File-lifecycle rows, comma-separated: replace-dirsync,
    /// replace-no-dirsync, create-dirsync, create-no-dirsync, or `all` or
    /// `none`. Default: all, unless --scenario picks rows (then none).
    #[arg(long, value_delimiter = ',', value_name = "KIND")]
    pub lifecycle: Vec<String>,
    /// Trials per lifecycle cell (1 to 10,000; a --shard runs its block).
    #[arg(long, default_value_t = crashlab::lifecycle::rows::DEFAULT_TRIALS,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub lifecycle_trials: u32,
    /// Ops (acks) per lifecycle writer run (1 to 1,000).
    #[arg(long, default_value_t = crashlab::lifecycle::family::DEFAULT_ACKS,
          value_parser = clap::value_parser!(u32).range(1..=1_000))]
    pub lifecycle_acks: u32,
}

impl LifecycleArgs {
    /// The rows `--lifecycle` names; without it, all of them unless
    /// `--scenario` chose rows (a matrix of chosen mmap rows stays that).
    pub fn kinds(&self, scenario_given: bool) -> Result<Vec<LifecycleKind>> {
        match self.lifecycle.as_slice() {
            [] if scenario_given => Ok(Vec::new()),
            [] => Ok(LifecycleKind::ALL.to_vec()),
            [one] if one == "none" => Ok(Vec::new()),
            [one] if one == "all" => Ok(LifecycleKind::ALL.to_vec()),
            names => {
                let mut kinds: Vec<LifecycleKind> = Vec::new();
                for n in names {
                    let k: LifecycleKind =
                        n.parse().map_err(|e| anyhow::anyhow!("--lifecycle {n}: {e}, all or none"))?;
                    if kinds.contains(&k) {
                        bail!("--lifecycle {n} given twice");
                    }
                    kinds.push(k);
                }
                Ok(kinds)
            }
        }
    }
}

pub fn run_matrix(
    common: &CommonArgs,
    scenarios: Vec<ScenarioId>,
    crashes: Vec<CrashKind>,
    real: Option<&RealColumnArgs>,
    lifecycle: Option<(&LifecycleArgs, Vec<LifecycleKind>)>,
) -> Result<ExitCode> {
    if crashes.is_empty() {
        bail!("--crash needs at least one crash kind");
    }
    if common.model.is_empty() {
        bail!("--model needs at least one persistence model");
    }
    let seed = common.seed.unwrap_or_else(fresh_seed);
    let mut config = MatrixConfig {
        seed,
        file_size: common.size,
        txns: common.txns,
        points: common.scenario_points()?,
        trials: common.trials,
        scenarios,
        crashes,
        models: common.model.clone(),
        tear: common.tear.unwrap_or(crashlab::power_loss::DEFAULT_TEAR),
        shard: common.shard,
        real: real.map(|r| r.real.clone()).unwrap_or_default(),
        real_sample: real.and_then(|r| r.real_sample),
    };
    // Bad sizes and counts fail here, naming the flag, before any worker
    // starts: first the fixed maxima (before any writer is generated), then
    // what the writers make of them, then what the machine can hold.
    check_common(common)?;
    crashlab::matrix::check_matrix_config(&config).map_err(anyhow::Error::msg)?;
    let cancel = cancel_flag()?;
    for s in &config.scenarios {
        if cancel.load(Ordering::SeqCst) {
            return Err(LabError::Interrupted.into());
        }
        config.spec(*s).map_err(|e| anyhow::anyhow!("--size {} / --txns {}: {e}", common.size, common.txns))?;
    }
    let dir = work_dir(&common.dir)?;
    let pool = pool_config(common, dir.path())?;
    let footprint = limits::matrix_footprint(&config, pool.jobs);
    let here = limits::Resources::probe(Some(dir.path()));
    limits::check_footprint(&footprint, &here, &dir_label(common.dir.as_deref(), dir.path()))
        .map_err(anyhow::Error::msg)?;
    // The main command needs nothing: where the enospc column's tmpfs
    // cannot be mounted, the column is skipped and the report says why.
    let enospc_skipped = skip_enospc_if_unavailable(&mut config, &pool)?;
    if let (Some(why), false) = (&enospc_skipped, common.quiet) {
        eprintln!("crashlab: the enospc column is skipped: its capacity-limited tmpfs cannot be mounted here ({why})");
    }
    // Real columns that cannot run here (no root, no guest) fail now, exit 2.
    let real_run = real_columns(real, &config.models, common.size, pool.jobs, common.timeout, common.dir.as_deref())?;
    let lifecycle_run = match lifecycle {
        Some((args, kinds)) => {
            lifecycle_config(&kinds, args.lifecycle_trials, args.lifecycle_acks, &config.crashes, &config.models)
                .and_then(|config| {
                    // The main command needs nothing: without ptrace the
                    // rows' power-loss cells are skipped, and said to be.
                    let probe = match config.power_loss {
                        true => std::env::current_exe().map_err(|e| e.to_string()).and_then(|exe| probe_oracle(&exe)),
                        false => Ok(()),
                    };
                    without_power_loss_if(config, probe)
                })
                .map(|config| -> Result<LifecycleRun> {
                    Ok(LifecycleRun {
                        config,
                        program: std::env::current_exe().context("cannot find the crashlab executable")?,
                        seed,
                        jobs: pool.jobs,
                        timeout: std::time::Duration::from_secs(common.timeout as u64),
                        dir: dir.path().to_owned(),
                        shard: common.shard,
                    })
                })
                .transpose()?
        }
        None => None,
    };
    if !common.quiet {
        eprintln!(
            "crashlab: seed {seed}; {} scenarios × {} crash kinds × {} models on {} worker(s) in {}",
            config.scenarios.len(),
            config.crashes.len(),
            config.models.len(),
            pool.jobs,
            dir.path().display()
        );
        if let Some(r) = &real_run {
            eprintln!("crashlab: {}", describe_real_columns(&config.real, r));
        }
        if let Some(why) = lifecycle_run.as_ref().and_then(|l| l.config.power_loss_skipped.as_ref()) {
            eprintln!("crashlab: the lifecycle rows' power-loss cells are skipped: the durability oracle cannot run here ({why})");
        }
        if let Some(l) = &lifecycle_run {
            let kinds: Vec<&str> = l.config.kinds.iter().map(|k| k.name()).collect();
            eprintln!(
                "crashlab: lifecycle rows {} ({} trials per cell, {} acks per run) through the external engine",
                kinds.join(", "),
                l.config.trials,
                l.config.acks
            );
        }
    }
    let lifecycle_trials = lifecycle_run.as_ref().map_or(0, LifecycleRun::planned_trials);
    let planned = planned_trials_cancellable(&config, &cancel)? + lifecycle_trials;
    let progress = crate::cli::progress::CampaignProgress::new(planned, common.quiet);
    let real_setup = real_run.as_ref().map(|r| &r.setup);
    let mut report = run_matrix_with_real(&config, &pool, real_setup, &cancel, &|n| progress.advance(n))?;
    report.enospc_skipped = enospc_skipped;
    // Restored now, reporting a failure (an error above restores on drop).
    if let Some(g) = real_run.and_then(|r| r.sysctls) {
        g.restore()?;
    }
    if let Some(l) = &lifecycle_run {
        report.lifecycle = Some(run_lifecycle(l, &cancel, &|n| progress.advance(n)).map_err(|e| {
            if e.is_interrupted() {
                anyhow::Error::new(LabError::Interrupted)
            } else {
                anyhow::Error::new(e).context("the lifecycle rows (--lifecycle none skips them)")
            }
        })?);
    }
    drop(progress);
    write_json_report("--out", &common.out, &report)?;
    common.outputs.write(&report, common.quiet)?;
    print_outcome(&report, common);
    Ok(if report.all_as_expected() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Probe the enospc column (a worker of its own mounts its tmpfs) when the
/// config has enospc cells; where it cannot run, drop it from `config` and
/// say why. Only asked for and unavailable with nothing else left is an error.
fn skip_enospc_if_unavailable(
    config: &mut MatrixConfig,
    pool: &crashlab::lab::pool::PoolConfig,
) -> Result<Option<String>> {
    let has_cells = config.crashes.contains(&CrashKind::Enospc)
        && config.models.iter().any(|m| *m == PersistenceModel::ProcessCrash || m.is_simulated_power_loss())
        && config.scenarios.iter().any(|s| s.mapping == crashlab::spec::MappingKind::Shared);
    if !has_cells {
        return Ok(None);
    }
    let Err(why) = crashlab::lab::pool::probe_capacity(pool)? else { return Ok(None) };
    config.crashes.retain(|&k| k != CrashKind::Enospc);
    if config.crashes.is_empty() {
        bail!("--crash enospc: the column's capacity-limited tmpfs cannot be mounted here: {why}");
    }
    Ok(Some(why))
}

fn print_outcome(report: &SurvivalReport, common: &CommonArgs) {
    if !common.quiet {
        print!("{}", report.human_summary());
    }
    let s = &report.summary;
    let unsound = match report.soundness_violations() {
        0 => String::new(),
        n => format!(", {n} MODEL SOUNDNESS VIOLATION(S) in real power cuts"),
    };
    let lifecycle = match &report.lifecycle {
        Some(l) => format!(
            "; lifecycle: {} cells, {} trials, {} unexpected",
            l.summary.cells, l.summary.trials, l.summary.unexpected
        ),
        None => String::new(),
    };
    println!(
        "{}: {} cells, {} trials, {} unexpected, {} with model violations{unsound}{lifecycle}; report: {}",
        if report.all_as_expected() { "ok" } else { "FAILED" },
        s.cells,
        s.trials,
        s.unexpected,
        s.model_violations,
        common.out.display()
    );
}

/// The real columns of `crashlab matrix`: real power cuts at the op
/// boundaries of the simulated power-loss cells, one column per backend and
/// filesystem, under the `power-loss-real` model.
#[derive(Args, Clone, Default)]
pub struct RealColumnArgs {
    /// Real power-cut columns of the power-loss-real model (which --model
    /// must list), comma-separated: loopcut:ext4, loopcut:xfs, loopcut:btrfs
    /// (the host kernel, loop devices: root) and vm (ext4 in a qemu guest,
    /// killed: see scripts/vm-setup.sh).
    #[arg(long, value_delimiter = ',', value_name = "BACKEND[:FS]")]
    pub real: Vec<RealColumn>,
    /// vm column: the directory scripts/vm-setup.sh filled. Default:
    /// $CRASHLAB_VM_DIR.
    #[arg(long, value_name = "DIR")]
    pub vm_dir: Option<PathBuf>,
    /// Where the evidence of a real cut the model forbids is kept (facts,
    /// file, post-cut image).
    #[arg(long, value_name = "DIR", default_value = "reports/out/real-evidence")]
    pub real_keep_dir: PathBuf,
    /// Real columns cut at N op boundaries of each writer, drawn from the
    /// seed (the same ones in every column), instead of at every boundary:
    /// a vm column costs ~4 s per cut.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub real_sample: Option<u32>,
    /// loopcut columns: writers of one cell sharing a power cut, each on a
    /// file of its own (1: a cut per writer).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_WRITERS_PER_CUT,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub real_writers_per_cut: u32,
    /// Testing aid: corrupt each loopcut file after the cut (shows the
    /// soundness-violation path).
    #[arg(long, hide = true)]
    pub real_inject_fault: bool,
    /// loopcut columns: what pushes dirty pages to the disk while the
    /// writers run (as `soundness --writeback`): none (default),
    /// syncfs:US (a helper calling syncfs every US µs until the cut) or
    /// expire:CS (the kernel's dirty expiry lowered for the run, restored
    /// on every exit).
    #[arg(long, value_name = "MODE")]
    pub real_writeback: Option<crashlab::vocab::Writeback>,
}

/// The real columns' setup and the directory their images live in (removed
/// on drop).
pub struct RealColumnsRun {
    pub setup: RealSetup,
    pub dir: tempfile::TempDir,
    /// `--real-writeback expire:CS`: the lowered expiry, restored when the
    /// run is dropped (in this process, never in a worker).
    pub sysctls: Option<crashlab::realcut::pressure::SysctlGuard>,
}

/// One line naming the real columns: backend, kernel, filesystem, cut.
pub fn describe_real_columns(columns: &[RealColumn], run: &RealColumnsRun) -> String {
    let host = crashlab::environment::kernel_release();
    let each: Vec<String> = columns
        .iter()
        .map(|c| {
            let kernel = match (&run.setup.vm, c.backend) {
                (Some(vm), Backend::Vm) => format!("guest kernel {}", vm.kernel_version),
                _ => format!("kernel {host}"),
            };
            let group = match c.backend {
                Backend::Loopcut => match run.setup.writeback {
                    crashlab::vocab::Writeback::None => format!(", {} writer(s) per cut", run.setup.writers_per_cut),
                    w => format!(", {} writer(s) per cut, writeback pressure {w}", run.setup.writers_per_cut),
                },
                Backend::Vm => String::new(),
            };
            format!("{} ({kernel}, {}, cut {}{group})", c.label(), c.fs, c.cut())
        })
        .collect();
    format!("real power cuts: {}; images in {}", each.join("; "), run.dir.path().display())
}

/// Check the real-column flags against `models` and that every requested
/// column can run here, before any trial runs: `unavailable: needs root`
/// for loopcut without root, the setup instruction for vm without a guest.
/// `args` is `None` for `crashlab run`, which makes no real cuts. Images go
/// in a fresh directory in `dir` (the matrix's `--dir`), by default on tmpfs.
pub fn real_columns(
    args: Option<&RealColumnArgs>,
    models: &[PersistenceModel],
    file_size: u64,
    jobs: usize,
    timeout: u32,
    dir: Option<&Path>,
) -> Result<Option<RealColumnsRun>> {
    let wanted = models.contains(&PersistenceModel::PowerLossReal);
    let columns = args.map_or(&[][..], |a| &a.real[..]);
    let names = |cs: &[RealColumn]| cs.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(",");
    match (wanted, args) {
        (true, None) => anyhow::bail!(
            "--model power-loss-real: real power cuts are columns of `crashlab matrix --real BACKEND[:FS],...`; \
             `run` makes none"
        ),
        (true, Some(_)) if columns.is_empty() => anyhow::bail!(
            "--model power-loss-real needs --real BACKEND[:FS],... (loopcut:ext4, loopcut:xfs, loopcut:btrfs, vm)"
        ),
        (false, _) if !columns.is_empty() => anyhow::bail!(
            "--real {}: add power-loss-real to --model (e.g. --model process-crash,power-loss,power-loss-real)",
            names(columns)
        ),
        (false, Some(a)) if a.real_writeback.is_some() => {
            anyhow::bail!(
                "--real-writeback: only the loopcut columns of --real (with --model ...,power-loss-real) use it"
            )
        }
        (false, _) => return Ok(None),
        (true, Some(_)) => {}
    }
    let a = args.expect("matched above");
    if let Some(c) = columns.iter().enumerate().find_map(|(i, c)| columns[..i].contains(c).then_some(c)) {
        anyhow::bail!("--real {c} given twice");
    }
    // The files of a cut group live in the column's filesystem image.
    for c in columns {
        let (image, writers) = match c.backend {
            Backend::Loopcut => (c.fs.image_size(), a.real_writers_per_cut),
            Backend::Vm => (crashlab::realcut::vm::IMAGE_BYTES, 1),
        };
        limits::check_fits_image(file_size, writers, "--real-writers-per-cut", image)
            .map_err(|e| anyhow::anyhow!("--real {c}: {e}"))?;
    }
    let vm_columns: Vec<RealColumn> = columns.iter().copied().filter(|c| c.backend == Backend::Vm).collect();
    let vm = if vm_columns.is_empty() {
        None
    } else {
        use crashlab::realcut::vm::assets::VmAssets;
        Some(VmAssets::locate(a.vm_dir.as_deref()).with_context(|| format!("--real {}", names(&vm_columns)))?)
    };
    let loopcut: Vec<RealColumn> = columns.iter().copied().filter(|c| c.backend == Backend::Loopcut).collect();
    check_available(&loopcut, None).with_context(|| format!("--real {}", names(&loopcut)))?;
    let dir = work_dir(&Some(dir.map_or_else(default_image_dir, Path::to_owned)))?;
    let pool = RealPoolConfig {
        command: RealPoolConfig::current_exe_command()?,
        jobs,
        dir: dir.path().to_owned(),
        keep_dir: absolute(&a.real_keep_dir)?,
        watchdog_secs: timeout,
        host_mounts: false,
        inject_fault: a.real_inject_fault,
    };
    let setup = RealSetup {
        pool,
        vm,
        vm_timeout: std::time::Duration::from_secs(timeout.max(1) as u64),
        writers_per_cut: a.real_writers_per_cut,
        writeback: a.real_writeback.unwrap_or_default(),
    };
    if !setup.writeback.is_none() && loopcut.is_empty() {
        anyhow::bail!("--real-writeback: only loopcut columns run on this host's kernel; add one to --real");
    }
    let sysctls = crashlab::realcut::pressure::campaign_pressure(setup.writeback)?;
    Ok(Some(RealColumnsRun { setup, dir, sysctls }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(names: &[&str]) -> LifecycleArgs {
        LifecycleArgs {
            lifecycle: names.iter().map(|s| s.to_string()).collect(),
            lifecycle_trials: 8,
            lifecycle_acks: 8,
        }
    }

    #[test]
    fn the_lifecycle_rows_default_to_all_unless_scenario_picks_rows() {
        assert_eq!(args(&[]).kinds(false).unwrap(), LifecycleKind::ALL.to_vec());
        assert!(args(&[]).kinds(true).unwrap().is_empty(), "--scenario alone keeps to its mmap rows");
        assert_eq!(args(&["all"]).kinds(true).unwrap(), LifecycleKind::ALL.to_vec());
        assert!(args(&["none"]).kinds(false).unwrap().is_empty());
        let two = args(&["create-no-dirsync", "replace-dirsync"]).kinds(false).unwrap();
        assert_eq!(two, vec![LifecycleKind::CreateNoDirsync, LifecycleKind::ReplaceDirsync]);
        let e = args(&["create-dirsync", "create-dirsync"]).kinds(false).unwrap_err().to_string();
        assert!(e.contains("--lifecycle create-dirsync given twice"), "{e}");
        let e = args(&["rename"]).kinds(false).unwrap_err().to_string();
        assert!(e.starts_with("--lifecycle rename: unknown lifecycle kind") && e.ends_with("all or none"), "{e}");
    }
}
