//! `crashlab bench faults`: trials/s of one writer under several crash
//! kinds (`--kinds`, by default `sigkill`, `power-loss`, `eio-sync` and
//! `enospc`),
//! measured in the same run: rounds of one whole `run --writer` per kind,
//! the kinds' order rotated each round (so a machine whose load drifts
//! weighs on all alike), medians of the rounds' rates, and each kind's
//! cost per trial against `sigkill` and against a traced `power-loss`
//! trial (issue 15's target: a fault kind costs at most 1.5 times a traced
//! power-loss trial). `enospc` trials are traced (the first `ENOSPC` call,
//! the faulting store); an `enospc (untraced)` row measures the same
//! trials run as where the oracle cannot run, for the tracing's cost.
//! With both `enospc` and `power-loss` in `--kinds`, an
//! `enospc+power-loss` row measures traced `enospc` trials with their
//! power-loss states judged (`--crash enospc,power-loss` without its
//! separate power-loss trials) against the same rounds' power-loss trials.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use anyhow::Result;
use clap::Args;

use crashlab::external::{run_external, ExternalConfig};
use crashlab::vocab::CrashKind;

use crate::cli::external_run::CrashArg;

#[derive(Args)]
pub struct FaultBenchArgs {
    /// The crash kinds to measure, comma-separated (each run has one).
    #[arg(long, value_delimiter = ',', default_value = "sigkill,power-loss,eio-sync,enospc")]
    kinds: Vec<CrashArg>,
    /// The example workloads' binary (default: `crashlab-workload` next to
    /// this crashlab, as `cargo build -p crashlab-scenarios` puts it).
    #[arg(long, value_name = "PATH")]
    workload: Option<PathBuf>,
    /// The example run as setup, writer and checker (one that passes every
    /// kind, so that no run shrinks a violation: `eio-stop` exits on the
    /// EIO, as any correct writer does).
    #[arg(long, default_value = "eio-stop")]
    example: String,
    #[arg(long, default_value_t = 16)]
    records: u32,
    /// Trials of each run.
    #[arg(long, default_value_t = 12)]
    trials: u32,
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory for the runs' directories. Default: the system temp dir.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// One kind's measurement.
struct KindRate {
    kind: CrashKind,
    /// `enospc` run as where the oracle cannot run.
    untraced: bool,
    /// `enospc` trials with their power-loss states judged.
    after_full_disk: bool,
    /// Trials/s of each round.
    rates: Vec<f64>,
    violations: u64,
}

impl KindRate {
    fn label(&self) -> String {
        if self.untraced {
            format!("{} (untraced)", self.kind)
        } else if self.after_full_disk {
            format!("{}+power-loss", self.kind)
        } else {
            self.kind.name().to_owned()
        }
    }

    fn median(&self) -> f64 {
        let mut r = self.rates.clone();
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    }
}

/// `crashlab bench faults`.
pub fn run(a: FaultBenchArgs) -> Result<ExitCode> {
    let workload = match &a.workload {
        Some(w) => w.clone(),
        None => std::env::current_exe()?.with_file_name("crashlab-workload"),
    };
    anyhow::ensure!(
        workload.is_file(),
        "--workload {}: no such file (build it with `cargo build -p crashlab-scenarios`, or give its path)",
        workload.display()
    );
    anyhow::ensure!(!a.kinds.is_empty() && a.rounds > 0 && a.trials > 0, "--kinds, --rounds and --trials: at least 1");
    let (kinds, eio_at) = crate::cli::external_run::crash_kinds(&a.kinds)?;
    let w = shell_words::quote(&workload.to_string_lossy()).into_owned();
    let (ex, n) = (&a.example, a.records);
    let mut base = ExternalConfig::new(
        &format!("{w} {ex} writer --records {n}"),
        &format!("{w} {ex} checker"),
        Some(&format!("{w} {ex} setup --records {n}")),
        false,
    )?;
    if let Some(d) = &a.dir {
        base.dir = d.clone();
    }
    let config = |kind: CrashKind, untraced: bool, after_full_disk: bool| {
        let mut c = base.clone();
        c.oracle_unavailable = untraced.then(|| "bench faults: the untraced baseline".to_owned());
        c.enospc_states_without_power_loss_trials = after_full_disk;
        c.crashes = vec![kind];
        c.eio_at = eio_at.filter(|_| kind == CrashKind::EioSync);
        c.trials = a.trials;
        c.seed = a.seed;
        c.jobs = 1;
        c
    };
    let states_after = kinds.contains(&CrashKind::PowerLoss);
    let mut measured: Vec<KindRate> = kinds
        .iter()
        .flat_map(|&kind| {
            let enospc = kind == CrashKind::Enospc;
            // (untraced, after_full_disk) of each row of the kind.
            let rows = [
                Some((false, false)),
                enospc.then_some((true, false)),
                (enospc && states_after).then_some((false, true)),
            ];
            rows.into_iter().flatten().map(move |(untraced, after_full_disk)| KindRate {
                kind,
                untraced,
                after_full_disk,
                rates: Vec::new(),
                violations: 0,
            })
        })
        .collect();
    for round in 0..a.rounds {
        for i in 0..measured.len() {
            let at = (i + round) % measured.len();
            let m = &mut measured[at];
            let c = config(m.kind, m.untraced, m.after_full_disk);
            let start = Instant::now();
            let report = run_external(&c, &AtomicBool::new(false), &|_| {})?;
            m.rates.push(a.trials as f64 / start.elapsed().as_secs_f64());
            m.violations += report.summary.violations;
        }
    }
    let fs = crashlab::environment::fs_type(&base.dir);
    println!(
        "crashlab bench faults on {fs} ({}): example `{ex}` ({n} records), {} trials per run, 1 job, seed {}; {} rounds, \
         the kinds' order rotated each round; medians of the rounds' rates (whole runs timed: clean run, traced \
         clean run where the kind has one, trials, states)",
        base.dir.display(),
        a.trials,
        a.seed,
        a.rounds
    );
    let rate_of =
        |k: CrashKind| measured.iter().find(|m| m.kind == k && !m.untraced && !m.after_full_disk).map(KindRate::median);
    let (sigkill, power_loss) = (rate_of(CrashKind::Sigkill), rate_of(CrashKind::PowerLoss));
    println!(
        "{:>18} {:>10} {:>14} {:>18} {:>11}",
        "kind", "trials/s", "cost / sigkill", "cost / power-loss", "violations"
    );
    let ratio = |base: Option<f64>, rate: f64| base.map_or("-".to_owned(), |b| format!("{:.2}x", b / rate));
    for m in &measured {
        let rate = m.median();
        println!(
            "{:>18} {:>10.1} {:>14} {:>18} {:>11}",
            m.label(),
            rate,
            ratio(sigkill, rate),
            ratio(power_loss, rate),
            m.violations
        );
    }
    let after = measured.iter().find(|m| m.after_full_disk).map(KindRate::median);
    let figures = [
        ("eio-sync", rate_of(CrashKind::EioSync)),
        ("enospc (traced)", rate_of(CrashKind::Enospc)),
        ("enospc+power-loss (traced, its power-loss states judged)", after),
    ];
    for (what, rate) in figures {
        if let (Some(pl), Some(rate)) = (power_loss, rate) {
            println!(
                "figure: {what} {rate:.1} trials/s; baseline: traced power-loss {pl:.1} trials/s, same run; cost \
                 ratio {:.2} (target <= 1.5)",
                pl / rate
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
