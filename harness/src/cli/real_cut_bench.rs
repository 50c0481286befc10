//! `crashlab bench power-loss-real`: trials/s of real power cuts of a
//! user's program (`--crash power-loss-real`) next to the simulated power
//! loss (`--crash power-loss`) of the same writer, measured in the same
//! run, interleaved (root); and each `--writeback` pressure mode's real
//! cuts against the unpressured ones (`none`), in the same rounds.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use clap::Args;

use crashlab::external::{run_external, ExternalConfig};
use crashlab::vocab::real_cut::FsKind;
use crashlab::vocab::writeback::Writeback;
use crashlab::vocab::CrashKind;

#[derive(Args)]
pub struct RealCutBenchArgs {
    /// The example workloads' binary (default: `crashlab-workload` next to
    /// this crashlab, as `cargo build -p crashlab-scenarios` puts it).
    #[arg(long, value_name = "PATH")]
    workload: Option<PathBuf>,
    /// The example measured (a correct one: the benchmark fails on a violation).
    #[arg(long, default_value = "wal")]
    example: String,
    /// Trials of each run.
    #[arg(long, default_value_t = 20)]
    trials: u32,
    /// Rounds, each one run of each kind, interleaved.
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// The filesystem of the real cuts.
    #[arg(long, default_value = "ext4")]
    real_fs: FsKind,
    /// Pressure modes also measured (comma-separated, e.g.
    /// `syncfs:300,expire:5`), each against the real cuts without pressure.
    #[arg(long, value_delimiter = ',', value_name = "MODES")]
    writeback: Vec<Writeback>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory for the runs (and the real cuts' image). Default: /dev/shm
    /// when there is one, else the system temp dir.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// One run of one kind: trials/s over the whole run, and for power loss
/// the states checked.
fn measure(c: &ExternalConfig) -> Result<(f64, u64)> {
    let start = Instant::now();
    let report = run_external(c, &AtomicBool::new(false), &|_| {})?;
    let secs = start.elapsed().as_secs_f64();
    ensure!(!report.violation_found(), "`{}` is correct, but the run found a violation", c.writer.text);
    let states = report.power_loss.as_ref().map_or(0, |p| p.states_checked);
    if let Some(r) = &report.power_loss_real {
        ensure!(r.model_violations == 0, "a real cut left a directory the model forbids: {}", report.human_summary());
    }
    Ok((c.trials as f64 / secs, states))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// `crashlab bench power-loss-real`.
pub fn run(a: RealCutBenchArgs) -> Result<ExitCode> {
    ensure!(a.trials > 0 && a.rounds > 0, "--trials and --rounds must be at least 1");
    if let Some(why) = crashlab::external::real_cut::options::unavailable() {
        anyhow::bail!("bench power-loss-real: {why}");
    }
    let workload = match a.workload {
        Some(w) => w,
        None => std::env::current_exe()?.with_file_name("crashlab-workload"),
    };
    ensure!(
        workload.is_file(),
        "--workload {}: no such file (build it with `cargo build -p crashlab-scenarios`, or give its path)",
        workload.display()
    );
    let w = shell_words::quote(&workload.to_string_lossy()).into_owned();
    let ex = &a.example;
    let dir = a.dir.unwrap_or_else(|| {
        let shm = PathBuf::from("/dev/shm");
        if shm.is_dir() {
            shm
        } else {
            std::env::temp_dir()
        }
    });
    let config = |crash: CrashKind| -> Result<ExternalConfig> {
        let mut c = ExternalConfig::new(
            &format!("{w} {ex} writer"),
            &format!("{w} {ex} checker"),
            Some(&format!("{w} {ex} setup")),
            false,
        )
        .context("the example's command lines")?;
        c.crashes = vec![crash];
        c.trials = a.trials;
        c.seed = a.seed;
        c.jobs = 1;
        c.dir = dir.clone();
        c.real_cut.fs = a.real_fs;
        Ok(c)
    };
    let simulated = config(CrashKind::PowerLoss)?;
    let real = config(CrashKind::PowerLossReal)?;
    let pressured: Vec<ExternalConfig> = a
        .writeback
        .iter()
        .filter(|w| !w.is_none())
        .map(|&w| {
            let mut c = real.clone();
            c.real_cut.writeback = w;
            c
        })
        .collect();
    println!(
        "crashlab bench power-loss-real: `{ex}` (its setup, writer, checker), {} trials per run, seed {}, 1 job, in {}; \
         whole runs timed (clean run, traced calibration, trials; for real cuts the filesystem's mkfs too)",
        a.trials,
        a.seed,
        dir.display()
    );
    let (mut sim_rates, mut real_rates, mut states) = (Vec::new(), Vec::new(), 0);
    let mut pressured_rates = vec![Vec::new(); pressured.len()];
    for _ in 0..a.rounds {
        let (r, s) = measure(&simulated)?;
        sim_rates.push(r);
        states = s;
        real_rates.push(measure(&real)?.0);
        for (c, rates) in pressured.iter().zip(&mut pressured_rates) {
            // `expire:CS` is set around the run, as the CLI does; its guard
            // restores the kernel's values before the next run.
            let sysctls = crashlab::realcut::pressure::campaign_pressure(c.real_cut.writeback)?;
            let rate = measure(c);
            if let Some(g) = sysctls {
                g.restore()?;
            }
            rates.push(rate?.0);
        }
    }
    let (sim, real_rate) = (median(sim_rates), median(real_rates));
    println!("{:>34} {:>10} {:>8}", "kind", "trials/s", "ratio");
    println!("{:>34} {:>10.1} {:>8}", format!("power-loss ({states} states checked)"), sim, "1.00");
    println!(
        "{:>34} {:>10.1} {:>8.2}",
        format!("power-loss-real ({}, {})", a.real_fs, a.real_fs.default_cut()),
        real_rate,
        real_rate / sim
    );
    for (c, rates) in pressured.iter().zip(pressured_rates) {
        let rate = median(rates);
        println!(
            "{:>34} {:>10.1} {:>8.2}   ({:.2}× the unpressured real cuts)",
            format!("power-loss-real, --writeback {}", c.real_cut.writeback),
            rate,
            rate / sim,
            rate / real_rate
        );
    }
    println!("medians of {} interleaved rounds", a.rounds);
    Ok(ExitCode::SUCCESS)
}
