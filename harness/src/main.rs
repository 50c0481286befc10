//! The `crashlab` command: a thin layer over the library. Raw arguments are
//! parsed by clap, resolved into a config (defaults, validation, the seed),
//! then handed to the engine.
//!
//! Exit codes: 0 every verdict as expected; 1 a model violation or an
//! unexpected verdict was found (a result, reported); 2 the harness failed
//! or the input was bad.

use std::process::ExitCode;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use crashlab::scenario::ScenarioId;
use crashlab::LabError;

mod cli;
use cli::campaign::{check_common, CommonArgs};
use cli::{bench, replay};

#[derive(Parser)]
#[command(name = "crashlab", version, about = "What survives a crash of a program writing through mmap?")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the standard survival matrix (mapping × sync policy × crash kind)
    /// and write a JSON survival report.
    Matrix(cli::matrix::MatrixArgs),
    /// Run one cell of the matrix: one scenario under one crash kind; or
    /// crash your own program (--writer, workload protocol v1).
    Run(RunArgs),
    /// Rerun one trial exactly, from the line a report prints.
    Replay(replay::ReplayArgs),
    /// Measure trials/s against a bare fork+store+kill+wait+read floor.
    Bench(bench::BenchArgs),
    /// Read, compare (diff), merge shards of, and render (html) survival
    /// reports; print their JSON Schema.
    Report(cli::report::ReportArgs),
    /// Check the simulated power-loss model against real power cuts
    /// (loopcut: loop devices, root; vm: a qemu guest killed).
    Soundness(cli::soundness::SoundnessArgs),
}

#[derive(Args)]
#[command(group(clap::ArgGroup::new("workload").required(true).args(["scenario", "writer"])))]
struct RunArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// The scenario, as MAPPING/POLICY (e.g. shared/ms-sync-each).
    #[arg(long)]
    scenario: Option<ScenarioId>,
    /// Crash kinds, comma-separated. With --scenario: sigkill, abort, sigbus
    /// or clean (power loss is a model there: --model power-loss). With
    /// --writer: sigkill, abort, sigbus, power-loss, power-loss-real, eio-sync
    /// (eio-sync:K fails the K-th data sync in every trial) or enospc (the
    /// clean run always runs first). `sigabrt` is read as abort. With both
    /// enospc and power-loss, each traced enospc trial is also judged at a
    /// power loss at the writer's end: every state it may leave (floors:
    /// what completed syncs made durable on the full filesystem; a failed
    /// sync makes nothing durable), besides the separate power-loss trials.
    #[arg(long, value_delimiter = ',', required = true)]
    crash: Vec<cli::external_run::CrashArg>,
    /// Your own program instead of a scenario (workload protocol v1).
    #[command(flatten)]
    external: cli::external_run::ExternalArgs,
}

/// The hidden subcommands crashlab starts itself (`__worker`: a forking
/// lab worker; `__realcut-worker` and `__syncfs-pressure`: `crashlab
/// soundness`; `__lifecycle`: a lifecycle row's setup, writer or checker;
/// `__capacity`: the filesystem of `--crash enospc`), run before `Cli::parse`:
/// building the whole command-line parser costs about 1 ms of start-up
/// (measured: `crashlab __capacity` 3.4 ms before, against an exec floor of
/// 1.4 ms for `/bin/true`), and some of them start once per trial (the
/// capacity helper, the lifecycle programs). Their arguments are the rest
/// of the command line, as the parser hands them over.
fn internal_main(args: &[std::ffi::OsString]) -> Option<ExitCode> {
    let name = args.get(1)?.to_str()?;
    let rest = args[2..].to_vec();
    use crashlab::{external::capacity_helper, lifecycle::program, realcut::pressure, worker_pool};
    let code = match name {
        // Before anything could start a thread: the worker forks.
        worker_pool::LAB_WORKER => crashlab::lab::worker::worker_main(rest),
        // Also forks: before anything could start a thread.
        worker_pool::REALCUT_WORKER => crashlab::realcut::worker::realcut_worker_main(rest),
        // A loop of syncfs calls, killed by its parent: nothing below.
        pressure::SYNCFS_HELPER => pressure::syncfs_pressure_main(rest),
        // A protocol-v1 program, single-threaded (the oracle traces it):
        // nothing below may run in it.
        program::SUBCOMMAND => program::lifecycle_main(rest),
        // Forks the writer: before anything could start a thread.
        capacity_helper::SUBCOMMAND => capacity_helper::capacity_main(rest),
        _ => return None,
    };
    Some(ExitCode::from(code as u8))
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(code) = internal_main(&args) {
        return code;
    }
    let cli = Cli::parse_from(args);
    // Dropped on every way out of here, returns and panics alike.
    let _leftovers = KillLeftovers;
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            if matches!(e.downcast_ref::<LabError>(), Some(LabError::Interrupted)) {
                eprintln!("crashlab: interrupted; workers stopped, temporary files removed");
                return ExitCode::from(130);
            }
            eprintln!("crashlab: error: {}", error_text(&e));
            ExitCode::from(2)
        }
    }
}

/// `e` and its causes as one line, like anyhow's `{:#}` ("context: cause:
/// cause"), but a cause whose text the line already holds is not added
/// again: many error types put their cause in their own message *and*
/// return it from `source()`, which `{:#}` would print twice ("Is a
/// directory (os error 21): Is a directory (os error 21)").
fn error_text(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}

fn dispatch(command: Command) -> Result<ExitCode> {
    match command {
        Command::Matrix(a) => {
            let lifecycle = a.lifecycle.kinds(!a.scenario.is_empty())?;
            let scenarios = if a.scenario.is_empty() { ScenarioId::standard() } else { a.scenario };
            cli::matrix::run_matrix(&a.common, scenarios, a.crash, Some(&a.real), Some((&a.lifecycle, lifecycle)))
        }
        Command::Run(a) => match a.scenario {
            Some(s) => {
                a.external.check_without_writer()?;
                let (crash, _) = cli::external_run::crash_kinds(&a.crash)?;
                cli::matrix::run_matrix(&a.common, vec![s], crash, None, None)
            }
            None => {
                check_common(&a.common)?;
                cli::external_run::run(&a.common, &a.crash, &a.external)
            }
        },
        Command::Replay(a) => replay::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Report(a) => cli::report::run(a),
        Command::Soundness(a) => cli::soundness::run(a),
    }
}

/// Kills and reaps whatever crashlab's descendants left running, once it
/// has started a program of yours (`run --writer`): what left its process
/// group and could not be attributed to a trial (see
/// `external/escapes.rs`). Nothing of crashlab's own is running by then.
/// Ctrl-C, SIGTERM and SIGHUP cancel the run and come here too.
struct KillLeftovers;

impl Drop for KillLeftovers {
    fn drop(&mut self) {
        crashlab::external::kill_all_descendants();
    }
}

#[cfg(test)]
mod tests {
    use super::error_text;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read {what}: {source}")]
    struct Both {
        what: &'static str,
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        let io = || std::io::Error::from_raw_os_error(libc::EISDIR);
        let e = anyhow::Error::new(Both { what: "r.json", source: io() }).context("--out");
        let text = error_text(&e);
        assert_eq!(text, format!("--out: cannot read r.json: {}", io()));
        // A cause the message does not hold is still added.
        let e = anyhow::Error::new(io()).context("cannot read r.json");
        assert_eq!(error_text(&e), format!("cannot read r.json: {}", io()));
    }
}
