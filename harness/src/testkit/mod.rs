//! Crash-testing Rust code from an ordinary `#[test]`: the writer and the
//! checker are closures, crashlab runs them as programs of workload
//! protocol v1 (see [`crate::external`]) by **re-executing the test binary**.
//!
//! ```no_run
//! use crashlab::testkit::{Crash, CrashTest};
//!
//! const RECORD: usize = 512;
//!
//! #[test]
//! fn my_log_survives_crashes() {
//!     let report = CrashTest::new("my_log_survives_crashes") // this test's name: it is re-executed by it
//!         .file("log.bin", 64 * 1024) // created in every trial directory, mapped MAP_SHARED for the writer
//!         .writer(|ctx| {
//!             for i in 0..100 {
//!                 let at = i * RECORD;
//!                 ctx.map()[at..at + RECORD].fill(i as u8 + 1);
//!                 ctx.msync(at..at + RECORD)?; // msync(MS_SYNC) of the pages covering the range
//!                 ctx.ack(format!("rec {i}")); // one protocol line: this record is durable
//!             }
//!             Ok(())
//!         })
//!         .checker(|dir, acks| {
//!             let log = std::fs::read(dir.join("log.bin")).map_err(|e| e.to_string())?;
//!             for i in 0..acks.len() {
//!                 let record = log.get(i * RECORD..(i + 1) * RECORD).unwrap_or(&[]);
//!                 if record.len() != RECORD || record.iter().any(|&b| b != i as u8 + 1) {
//!                     return Err(format!("acked record {i} is not in the log"));
//!                 }
//!             }
//!             Ok(())
//!         })
//!         .crashes([Crash::Sigkill, Crash::Abort, Crash::Sigbus])
//!         .trials(50)
//!         .seed(1)
//!         .run(); // panics on a violation, with the explanation and a replay line
//!     assert_eq!(report.violations.len(), 0);
//! }
//! ```
//!
//! # How it runs
//!
//! [`CrashTest::run`] is called twice over in different processes:
//!
//! - **In the test** (cargo's test runner, multithreaded): it builds an
//!   [`ExternalConfig`](crate::external::ExternalConfig) whose setup, writer
//!   and checker commands all re-execute the test binary
//!   (`std::env::current_exe()`) with `TEST_NAME --exact --nocapture
//!   --test-threads 1 --include-ignored` and the environment variable
//!   `CRASHLAB_TESTKIT_ROLE` = `setup`, `writer` or `checker`, then hands it
//!   to [`run_external`](crate::external::run_external): one clean run, then
//!   `trials` trials per crash kind, each crashing the writer at a seeded
//!   time.
//! - **In a re-executed test binary**: libtest runs the same test function
//!   again; `run` sees the role and does only that role's work, then exits
//!   the process without returning to the test body:
//!   - `setup` creates every [`file`](CrashTest::file) (zero-filled, at its
//!     size) in the empty trial directory;
//!   - `writer` maps them `MAP_SHARED` and calls the writer closure with a
//!     [`WriterCtx`]; each [`WriterCtx::ack`] is one line of protocol v1;
//!   - `checker-server` (the default checker): one process per job that
//!     judges every directory of that job (workload protocol v1.1, see
//!     `crashlab::external`'s `checker_server`): for each request it makes
//!     the directory its working directory and calls the checker closure on
//!     it with the acknowledged lines; `Ok` answers `ok` (consistent),
//!     `Err(reason)` answers `violation REASON` (`reason`, newlines
//!     flattened, is the report's reason). No process start per state, so
//!     `Crash::PowerLoss` tests check thousands of states per second;
//!   - `checker` (with [`CrashTest::checker_per_process`]): the same for one
//!     directory, in a process of its own, exiting 0 or 1 (protocol v1).
//!
//! Code before `.run()` in the test function therefore runs in every
//! re-execution too: keep it cheap and free of side effects outside the
//! trial directory. One `CrashTest` per test function.
//!
//! # Fork safety
//!
//! The test process never runs Rust code in a forked child. The probe is
//! started by `std::process::Command`; crashlab's external runner starts the
//! setup, writer and checker (and, for power loss, the durability oracle its
//! writer) through a fork or vfork-style clone whose child makes only
//! async-signal-safe system calls on data prepared before it (`prctl`,
//! `setpgid`, `dup2`, `execve`, ...). The closures run only in freshly
//! exec'd processes, the writer with a fresh mapping, so several crash
//! tests can run at once under the default multithreaded test runner.
//!
//! # Protocol details the closures see
//!
//! - The writer's acknowledgements go to the pipe crashlab reads (a
//!   `/bin/sh` wrapper moves it to descriptor 3 before `exec`), because
//!   libtest prints its own lines (`running 1 test`, ...) on standard output
//!   before any test code runs. Standard output of the re-executed binary
//!   goes to `/dev/null` until the role starts, then to standard error, so
//!   `println!` in a writer shows up in crashlab's diagnostics rather than
//!   being taken for an acknowledgement.
//! - A writer that panics or returns `Err` fails the run (a harness error,
//!   naming the panic or error): a correct writer must finish when nothing
//!   crashes it. A checker that panics reports a violation whose reason is
//!   the panic message (an `assert!` in a checker is a verdict, not a
//!   malfunction).
//! - The trial directory starts empty for every trial; the setup role
//!   creates the declared files before the writer starts, so a checker
//!   always finds them. The `sigbus` crash may leave a file shorter (it cuts
//!   an all-zero tail the writer had not written yet).
//! - The writer runs with `MALLOC_ARENA_MAX=1`: libtest runs the test on a
//!   thread of its own, whose glibc malloc arena would be mapped and trimmed
//!   with a varying number of `munmap`s, and power-loss crash points are
//!   numbered over the writer's `msync`/`fsync`/`ftruncate`/`munmap` calls.
//!   With one arena a run and its replay make the same calls.
//! - `CRASHLAB_SEED` varies per trial ([`WriterCtx::seed`]); the checker
//!   closure gets the directory and the acknowledged lines. Its process (a
//!   checker server) has the run's seed as `CRASHLAB_SEED` and no
//!   `CRASHLAB_DIR`; with [`CrashTest::checker_per_process`] it has the
//!   same `CRASHLAB_SEED` as the writer of that directory and
//!   `CRASHLAB_DIR` (`std::env::var`). Either way its working directory is
//!   the directory it judges. The closure is called many times in one
//!   process: it must not carry anything from one call to the next.
//! - A run in which nothing was acknowledged (the clean run, or every trial
//!   of a crash kind, saw no [`WriterCtx::ack`]) tested nothing: it is
//!   [`TestkitError::NothingAcked`] unless [`CrashTest::allow_no_acks`].
//!
//! # Results and replay
//!
//! [`CrashTest::try_run`] returns a [`CrashReport`] (trials, crashes that
//! struck a running writer, acknowledgements seen, every violation);
//! [`CrashTest::run`] panics when the report holds a violation, with the
//! violation that had the fewest acknowledgements (the simplest to
//! explain): the checker's reason, where the crash struck, and a replay
//! line such as
//!
//! ```text
//! CRASHLAB_REPLAY='test=my_log_survives_crashes crash=sigkill trial=12 seed=1 clean-ns=17250000' cargo test -p my-crate -- my_log_survives_crashes --exact --nocapture
//! ```
//!
//! With `CRASHLAB_REPLAY` set and naming this test, `run` reruns that one
//! trial (same `CRASHLAB_SEED`, same crash time) instead of the campaign.
//! The crash *time* is replayed, not the instruction it hit: a writer whose
//! timeline is dominated by sleeps replays most faithfully.
//!
//! Side effects on the test process, as for every crashlab run: it lowers
//! its own soft core-dump limit to 1 byte (inherited by the programs it
//! starts), so crashed writers leave no core files in trial directories;
//! and it becomes a child subreaper (`PR_SET_CHILD_SUBREAPER`), so that a
//! daemon started by a writer, checker or setup is reparented to it and
//! killed when that program ends (see `external/escapes.rs`). Orphans of
//! the test process's other children come to it too, and those that have
//! exited are reaped (zombies of its main thread that no crashlab program
//! owns); a test that starts a child from the main thread and waits for it
//! by pid while a crash test runs could see its exit taken. A daemon that
//! clears its environment is not attributed to a trial here (only the
//! `crashlab` command kills everything below it as it exits): it outlives
//! the test process.

mod child;
mod reexec;
mod report;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::external::power_loss::{replay_power_loss, StateText};
use crate::external::{replay_trial, run_external, ExternalConfig, ExternalError};
pub use crate::program_plan::ProgramPoints;
pub use crate::vocab::CrashKind as Crash;
pub use child::WriterCtx;
pub use report::{CrashCounts, CrashReport, ReplaySpec, Violation, REPLAY_ENV};

/// The environment variable that tells a re-executed test binary which role
/// to play (`setup`, `writer`, `checker` or `probe`).
pub const ROLE_ENV: &str = "CRASHLAB_TESTKIT_ROLE";

/// Is this process a re-execution of the test binary playing a role (the
/// writer, the checker, the setup)? Such a process runs the test function
/// again up to [`CrashTest::run`], which never returns there (the role ends
/// the process). So whatever the test does before `run()` happens in every
/// re-execution too, and nothing it creates there is ever dropped: make
/// temporary directories and other resources only when this is `false`.
pub fn is_reexecution() -> bool {
    std::env::var_os(ROLE_ENV).is_some()
}

/// What a writer closure returns: `?` works on I/O errors, strings and
/// any other error type.
pub type WriterResult = Result<(), Box<dyn std::error::Error>>;

type WriterFn<'a> = Box<dyn FnOnce(&mut WriterCtx) -> WriterResult + 'a>;
type CheckerFn<'a> = Box<dyn Fn(&Path, &[String]) -> Result<(), String> + 'a>;

/// Why a crash test could not produce a verdict. None of these is a verdict
/// on the code under test: a violation is a result, in the [`CrashReport`].
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// The builder was used wrongly (no writer, no checker, a bad file).
    /// Bad numbers (zero trials or jobs) come back as [`TestkitError::Run`]
    /// with the runner's own message.
    #[error("crash test `{test}`: {reason}")]
    Config { test: String, reason: String },
    #[error("crash test `{test}`: cannot find the test binary to re-execute (std::env::current_exe): {error}")]
    CurrentExe { test: String, error: std::io::Error },
    /// Re-executing the test binary with the test's name did not reach this
    /// `CrashTest`: the name is wrong, or the test does not get to `.run()`.
    #[error("crash test `{test}`: {reason}")]
    Probe { test: String, reason: String },
    /// No violation, but the clean run or every trial of a crash kind saw
    /// no ack ([`WriterCtx::ack`]): the checker only judged an empty ack
    /// set, so nothing was tested. [`CrashTest::allow_no_acks`] accepts it.
    #[error("crash test `{test}`: {text}")]
    NothingAcked { test: String, text: String, report: Box<CrashReport> },
    /// `CRASHLAB_REPLAY` names this test but cannot be used.
    #[error("crash test `{test}`: {REPLAY_ENV}=`{value}`: {reason}")]
    BadReplay { test: String, value: String, reason: String },
    /// The run itself failed (a writer that fails when not crashed, a
    /// checker malfunction, a timeout, I/O), with its replay line if a
    /// trial failed.
    #[error("crash test `{test}`: {error}")]
    Run { test: String, error: Box<ExternalError> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileSpec {
    name: String,
    len: usize,
}

/// A crash test of a writer closure and a checker closure (see the module
/// docs). Build it, then call [`run`](CrashTest::run) or
/// [`try_run`](CrashTest::try_run).
pub struct CrashTest<'a> {
    /// As given to [`CrashTest::new`].
    name: String,
    files: Vec<FileSpec>,
    writer: Option<WriterFn<'a>>,
    checker: Option<CheckerFn<'a>>,
    crashes: Vec<Crash>,
    trials: u32,
    seed: u64,
    jobs: usize,
    timeout: Duration,
    dir: Option<PathBuf>,
    replay: Option<ReplaySpec>,
    allow_no_acks: bool,
    points: ProgramPoints,
    /// Run the checker in a process of its own per directory (protocol v1)
    /// instead of one checker server per job (v1.1).
    checker_per_process: bool,
    tear: Option<u64>,
}

impl<'a> CrashTest<'a> {
    /// `test_name` is the name of the `#[test]` function this is built in,
    /// as libtest knows it: the bare function name works when the test
    /// function calls `run` on its own thread (the test thread carries the
    /// full path, e.g. `tests::my_test`, and is used); otherwise give the
    /// full path. It selects the test when the binary is re-executed.
    ///
    /// Defaults: crash kinds `sigkill` and `sigabrt`, 50 trials per kind,
    /// seed 0, up to 4 trials at a time (fewer on fewer cores), 60 s for any
    /// one program, trial directories under the system's temp dir.
    pub fn new(test_name: &str) -> CrashTest<'a> {
        CrashTest {
            name: test_name.to_owned(),
            files: Vec::new(),
            writer: None,
            checker: None,
            crashes: vec![Crash::Sigkill, Crash::Abort],
            trials: 50,
            seed: 0,
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()).min(4),
            timeout: Duration::from_secs(60),
            dir: None,
            replay: None,
            allow_no_acks: false,
            points: ProgramPoints::Default,
            checker_per_process: false,
            tear: None,
        }
    }

    /// A file the setup creates (zero-filled, `len` bytes) in every trial
    /// directory and the writer maps `MAP_SHARED` ([`WriterCtx::map`]).
    pub fn file(mut self, name: &str, len: usize) -> Self {
        self.files.push(FileSpec { name: name.to_owned(), len });
        self
    }

    /// The writer: mutates the files, acknowledges each operation it
    /// considers durable with [`WriterCtx::ack`], and returns `Ok(())` when
    /// done. It must finish successfully when nothing crashes it.
    pub fn writer(mut self, writer: impl FnOnce(&mut WriterCtx) -> WriterResult + 'a) -> Self {
        self.writer = Some(Box::new(writer));
        self
    }

    /// The checker: given the crashed trial directory and the acknowledged
    /// lines (in order), `Ok(())` if the directory is consistent and holds
    /// every acknowledged operation, `Err(reason)` otherwise. It is called
    /// once per directory, many times in one process (see *How it runs*):
    /// it must judge each directory on its own, keeping nothing between
    /// calls.
    pub fn checker(mut self, checker: impl Fn(&Path, &[String]) -> Result<(), String> + 'a) -> Self {
        self.checker = Some(Box::new(checker));
        self
    }

    /// Run the checker closure in a process of its own for every directory
    /// (workload protocol v1) instead of in one checker server per job
    /// (v1.1, the default): much slower, but its process then has the
    /// `CRASHLAB_SEED` of the writer of the directory it judges (a server
    /// has the run's seed) and `CRASHLAB_DIR`.
    pub fn checker_per_process(mut self) -> Self {
        self.checker_per_process = true;
        self
    }

    /// The crash kinds to try, `trials` trials each.
    pub fn crashes(mut self, crashes: impl IntoIterator<Item = Crash>) -> Self {
        self.crashes = crashes.into_iter().collect();
        self
    }

    /// Where the trials crash: by default process crashes at random times
    /// and power losses at sync calls or random times;
    /// [`ProgramPoints::Syscalls`] puts every crash kind just before or just
    /// after any call the durability oracle traces (every sync, every call
    /// on a file of the trial directory), mixed with random times, with the
    /// writer traced in every trial (`crashlab run --points syscalls`).
    /// Give it `trials` of about four times the writer's traced calls to
    /// reach every one.
    pub fn points(mut self, points: ProgramPoints) -> Self {
        self.points = points;
        self
    }

    /// `Crash::PowerLoss`: a power loss may tear pages into sectors of
    /// `bytes` (it must divide the page size): each sector holds its old or
    /// its new content on its own (the CLI's `--tear`).
    pub fn tear(mut self, bytes: u64) -> Self {
        self.tear = Some(bytes);
        self
    }

    /// Trials per crash kind.
    pub fn trials(mut self, trials: u32) -> Self {
        self.trials = trials;
        self
    }

    /// Every random choice (each trial's `CRASHLAB_SEED`, crash time, sigbus
    /// cut) derives from it.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Trials run at once (each is its own processes).
    pub fn jobs(mut self, jobs: usize) -> Self {
        self.jobs = jobs;
        self
    }

    /// The longest any one setup, writer or checker may run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Where the run makes its temporary directory (removed at the end), e.g.
    /// `/dev/shm` for tmpfs. Default: the system's temp dir.
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = Some(dir.into());
        self
    }

    /// Accept a run in which nothing was acknowledged (the clean run, or
    /// every trial of a crash kind, saw no ack): by default that is
    /// [`TestkitError::NothingAcked`], since the checker then judged only an
    /// empty ack set (the CLI's `--allow-no-acks`).
    pub fn allow_no_acks(mut self) -> Self {
        self.allow_no_acks = true;
        self
    }

    /// Replay one trial (a [`Violation::replay`]) instead of running the
    /// campaign, as `CRASHLAB_REPLAY` does; its `test` is ignored. The
    /// builder must describe the same test (writer, seed, crash kinds) as
    /// the run that found it.
    pub fn replay(mut self, spec: ReplaySpec) -> Self {
        self.replay = Some(spec);
        self
    }

    /// Run the campaign (or, with `CRASHLAB_REPLAY` naming this test, replay
    /// one trial) and return its report; panic if a violation was found or
    /// the run failed, with the explanation and a replay line. Prints a
    /// one-line summary to standard error when it passes.
    pub fn run(self) -> CrashReport {
        match self.try_run() {
            Err(e) => panic!("crashlab testkit: {e}"),
            Ok(report) => {
                if let Some(message) = report.failure_message() {
                    panic!("{message}");
                }
                eprintln!("crashlab testkit: {report}");
                report
            }
        }
    }

    /// Like [`run`](CrashTest::run), but a violation is returned in the
    /// report ([`CrashReport::violation_found`]) instead of panicking, and a
    /// failure to run as an error.
    ///
    /// In a re-executed test binary (the writer's, checker's or setup's
    /// process) this does that role's work and exits the process: it never
    /// returns there.
    pub fn try_run(self) -> Result<CrashReport, TestkitError> {
        if let Some(role) = child::Role::from_env() {
            child::serve(role, &reexec::resolve_test_name(&self.name), self.files, self.writer, self.checker);
        }
        self.run_in_test()
    }

    fn run_in_test(self) -> Result<CrashReport, TestkitError> {
        let test = reexec::resolve_test_name(&self.name);
        let config_error = |reason: &str| TestkitError::Config { test: test.clone(), reason: reason.to_owned() };
        if self.writer.is_none() {
            return Err(config_error("no writer: call .writer(|ctx| ...)"));
        }
        if self.checker.is_none() {
            return Err(config_error("no checker: call .checker(|dir, acks| ...)"));
        }
        self.validate_files().map_err(|r| config_error(&r))?;
        if self.crashes.contains(&Crash::PowerLossReal) {
            // Its report section is not read into a CrashReport: refused,
            // never silently passed.
            return Err(config_error(
                "Crash::PowerLossReal: real power cuts run from `crashlab run --writer ... --crash power-loss-real` \
                 (root), not from the testkit",
            ));
        }
        if self.crashes.contains(&Crash::Enospc) {
            // Its writer runs through the capacity helper, a subcommand of
            // the crashlab binary that a test binary does not serve.
            return Err(config_error("Crash::Enospc runs with `crashlab run --writer ... --crash enospc` only"));
        }
        let replay = match self.replay.clone() {
            Some(spec) => Some(ReplaySpec { test: test.clone(), ..spec }),
            None => ReplaySpec::from_env(&test)?,
        };
        let exe = std::env::current_exe().map_err(|error| TestkitError::CurrentExe { test: test.clone(), error })?;
        reexec::probe(&exe, &test, self.timeout)?;
        let commands = reexec::Commands::new(&exe, &test, !self.files.is_empty());
        let setup = commands.setup.as_deref();
        let config = if self.checker_per_process {
            ExternalConfig::new(&commands.writer, &commands.checker, setup, false)
        } else {
            ExternalConfig::with_checker_server(&commands.writer, &commands.checker_server, setup, false)
        };
        let mut config = config.map_err(|error| TestkitError::Run { test: test.clone(), error: Box::new(error) })?;
        if self.crashes.contains(&Crash::EioSync) {
            // Its section and replay are not read here yet: refused rather
            // than silently not reported.
            let error = crate::external::ExternalError::BadInput(
                "Crash::EioSync: the testkit does not run eio-sync trials yet; use `crashlab run --writer ... \
                 --crash eio-sync`"
                    .into(),
            );
            return Err(TestkitError::Run { test: test.clone(), error: Box::new(error) });
        }
        config.crashes = self.crashes.clone();
        config.trials = self.trials;
        config.seed = self.seed;
        config.jobs = self.jobs;
        config.timeout = self.timeout;
        config.allow_no_acks = self.allow_no_acks;
        config.points = self.points;
        config.tear = self.tear;
        if let Some(dir) = &self.dir {
            config.dir = dir.clone();
        }
        let run_error = |error| TestkitError::Run { test: test.clone(), error: Box::new(error) };
        let context = report::Context { test: test.clone(), given: self.name.clone(), binary: exe };
        let cancel = AtomicBool::new(false);
        match replay {
            None => {
                let report = run_external(&config, &cancel, &|_| {}).map_err(run_error)?;
                let text = report
                    .nothing_acked()
                    .then(|| report.no_acks_text())
                    .flatten()
                    .map(|t| t.replace("pass --allow-no-acks", "call .allow_no_acks()"));
                let report = CrashReport::from_external(context, report);
                match text {
                    Some(text) => Err(TestkitError::NothingAcked { test, text, report: Box::new(report) }),
                    None => Ok(report),
                }
            }
            Some(spec) => {
                config.seed = spec.seed;
                config.crashes = vec![spec.crash.unwrap_or(Crash::Sigkill)];
                config.points = spec.points;
                let target = spec.target();
                let mut line = config.replay_line(target);
                if spec.crash == Some(Crash::PowerLoss) {
                    let state =
                        spec.state.as_deref().map(|text| text.parse::<StateText>()).transpose().map_err(|e| {
                            TestkitError::BadReplay {
                                test: test.clone(),
                                value: spec.to_string(),
                                reason: format!("state=: {e}"),
                            }
                        })?;
                    line.state = spec.state.clone();
                    let replayed = replay_power_loss(
                        &config,
                        spec.trial,
                        spec.clean_ns,
                        spec.calls,
                        state.as_ref(),
                        None,
                        &cancel,
                    )
                    .map_err(run_error)?;
                    return Ok(CrashReport::from_power_loss_replay(context, &spec, replayed, line.to_string()));
                }
                let replayed = replay_trial(&config, target, &cancel).map_err(run_error)?;
                Ok(CrashReport::from_replay(context, &spec, replayed, line.to_string()))
            }
        }
    }

    fn validate_files(&self) -> Result<(), String> {
        for (i, f) in self.files.iter().enumerate() {
            let bad = |why: &str| Err(format!(".file(\"{}\", {}): {why}", f.name, f.len));
            if f.name.is_empty() || f.name.contains('/') || f.name == "." || f.name == ".." {
                return bad("the name must be one path component inside the trial directory");
            }
            if f.len == 0 {
                return bad("an empty file cannot be mapped");
            }
            if self.files[..i].iter().any(|g| g.name == f.name) {
                return bad("declared twice");
            }
        }
        Ok(())
    }
}
