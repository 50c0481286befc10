//! What a crash test found, the panic message that explains its simplest
//! violation, and the `CRASHLAB_REPLAY` instruction that reruns one trial.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use super::{reexec, Crash, TestkitError};
use crate::external::power_loss::PowerLossReplayed;
use crate::external::Replayed;
use crate::program_plan::ProgramPoints;
use crate::report::checker_verdict::CheckerVerdict;
use crate::report::external::{ExternalReport, ReplayTarget};
use crate::report::external_power_loss::PowerLossSection;

/// The environment variable that makes [`super::CrashTest::run`] replay one
/// trial (its value is a [`ReplaySpec`]) instead of running the campaign.
pub const REPLAY_ENV: &str = "CRASHLAB_REPLAY";

/// Where a report's replay instructions point.
pub(super) struct Context {
    /// The resolved test name (libtest's full path).
    pub test: String,
    /// What was given to `CrashTest::new`.
    pub given: String,
    /// The test binary.
    pub binary: PathBuf,
}

/// One trial to replay: `test=NAME crash=KIND trial=N seed=S clean-ns=NS`,
/// `test=NAME crash=clean seed=S` for the uncrashed calibration run, or
/// `test=NAME crash=power-loss trial=N seed=S clean-ns=NS calls=C [state=TEXT]`
/// (`state=` last, taken verbatim to the end: one power-loss state to
/// rebuild and check, as the report names it; without it the whole trial
/// is explored again). A trial of [`super::CrashTest::points`]`(Syscalls)`
/// adds `calls=C points=syscalls` (a process crash) or `points=syscalls`
/// (power loss).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplaySpec {
    /// The test's full name (libtest's).
    pub test: String,
    /// `None`: the clean run.
    pub crash: Option<Crash>,
    pub trial: u32,
    pub seed: u64,
    /// The clean run's duration the crash time is a fraction of (for power
    /// loss, the clean run under the durability oracle).
    pub clean_ns: u64,
    /// Power loss: the sync calls of the traced clean run (with the seed and
    /// the trial, they give the crash point).
    pub calls: u64,
    /// Power loss: the one state to rebuild and check.
    pub state: Option<String>,
    /// Where the trial crashed: at a traced call (`points=syscalls`; then
    /// `calls` and `clean_ns` come from the traced clean run, for process
    /// crashes too) or by default.
    pub points: ProgramPoints,
}

impl ReplaySpec {
    pub(super) fn target(&self) -> ReplayTarget {
        match self.crash {
            None => ReplayTarget::Clean,
            Some(Crash::PowerLoss) => {
                ReplayTarget::PowerLoss { trial: self.trial, clean_ns: self.clean_ns, calls: self.calls }
            }
            Some(crash) if self.points == ProgramPoints::Syscalls => {
                ReplayTarget::TrialAtCalls { crash, trial: self.trial, clean_ns: self.clean_ns, calls: self.calls }
            }
            Some(crash) => ReplayTarget::Trial { crash, trial: self.trial, clean_ns: self.clean_ns },
        }
    }

    /// The replay requested through `CRASHLAB_REPLAY`, if it names `test`;
    /// a value that cannot be parsed is an error for every crash test (it is
    /// a mistake worth stopping for).
    pub(super) fn from_env(test: &str) -> Result<Option<ReplaySpec>, TestkitError> {
        let Some(value) = std::env::var_os(REPLAY_ENV) else { return Ok(None) };
        let value = value.to_string_lossy().into_owned();
        let spec = value.parse::<ReplaySpec>().map_err(|reason| TestkitError::BadReplay {
            test: test.to_owned(),
            value: value.clone(),
            reason,
        })?;
        Ok((spec.test == test).then_some(spec))
    }
}

impl fmt::Display for ReplaySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.crash {
            None => write!(f, "test={} crash=clean seed={}", self.test, self.seed),
            Some(c) => {
                write!(
                    f,
                    "test={} crash={c} trial={} seed={} clean-ns={}",
                    self.test, self.trial, self.seed, self.clean_ns
                )?;
                if c == Crash::PowerLoss || self.points == ProgramPoints::Syscalls {
                    write!(f, " calls={}", self.calls)?;
                }
                if self.points == ProgramPoints::Syscalls {
                    write!(f, " points=syscalls")?;
                }
                if let Some(state) = &self.state {
                    write!(f, " state={state}")?;
                }
                Ok(())
            }
        }
    }
}

impl FromStr for ReplaySpec {
    type Err = String;

    fn from_str(s: &str) -> Result<ReplaySpec, String> {
        let (mut test, mut crash, mut trial, mut seed, mut clean_ns, mut calls) = (None, None, None, None, None, None);
        let mut points = ProgramPoints::Default;
        // A state text runs to the end of the value.
        let (s, state) = match s.find("state=") {
            Some(i) if i == 0 || s[..i].ends_with(char::is_whitespace) => (&s[..i], Some(s[i + 6..].trim().to_owned())),
            _ => (s, None),
        };
        for word in s.split_whitespace() {
            let (key, value) = word.split_once('=').ok_or_else(|| format!("`{word}` is not key=value"))?;
            let number = |v: &str| v.parse::<u64>().map_err(|_| format!("{key}=`{v}` is not an unsigned integer"));
            match key {
                "test" => test = Some(value.to_owned()),
                "crash" if value == "clean" => crash = Some(None),
                "crash" => crash = Some(Some(value.parse::<Crash>()?)),
                "trial" => {
                    trial = Some(u32::try_from(number(value)?).map_err(|_| format!("trial={value} is too big"))?)
                }
                "seed" => seed = Some(number(value)?),
                "clean-ns" => clean_ns = Some(number(value)?),
                "calls" => calls = Some(number(value)?),
                "points" => points = value.parse::<ProgramPoints>()?,
                _ => {
                    return Err(format!(
                        "unknown key `{key}` (expected test, crash, trial, seed, clean-ns, calls, points, state)"
                    ))
                }
            }
        }
        let missing = |k: &str| format!("`{k}=` is missing");
        let test = test.ok_or_else(|| missing("test"))?;
        let crash = crash.ok_or_else(|| missing("crash"))?;
        let seed = seed.ok_or_else(|| missing("seed"))?;
        let (trial, clean_ns) = match crash {
            None => (0, 0),
            Some(_) => (trial.ok_or_else(|| missing("trial"))?, clean_ns.ok_or_else(|| missing("clean-ns"))?),
        };
        let power_loss = crash == Some(Crash::PowerLoss);
        let at_calls = crash.is_some() && points == ProgramPoints::Syscalls;
        if crash.is_none() && points == ProgramPoints::Syscalls {
            return Err("`points=syscalls`: crash=clean has no crash point".into());
        }
        let calls = match calls {
            Some(c) if power_loss || at_calls => c,
            None if power_loss || at_calls => return Err(missing("calls")),
            Some(_) => return Err("`calls=` belongs to crash=power-loss, or to points=syscalls".into()),
            None => 0,
        };
        if state.is_some() && !power_loss {
            return Err("`state=` belongs to crash=power-loss only".into());
        }
        Ok(ReplaySpec { test, crash, trial, seed, clean_ns, calls, state, points })
    }
}

/// The counts of one crash kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashCounts {
    pub crash: Crash,
    pub trials: u64,
    /// Trials in which the crash struck the running writer (the others'
    /// writers finished first, or had nothing to cut).
    pub crashed: u64,
    /// Acknowledged lines over all its trials.
    pub acks: u64,
    pub violations: u64,
}

/// One trial whose checker found a violation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// `None`: the clean run (nothing crashed the writer).
    pub crash: Option<Crash>,
    pub trial: u32,
    /// The checker's reason.
    pub reason: String,
    /// How the crash was delivered (`SIGKILL sent to the writer's process
    /// group`, a file cut, ...).
    pub delivery: String,
    /// When the crash was planned, after the writer's start.
    pub crash_at_ns: Option<u64>,
    /// How the writer ended (`signal SIGKILL`, `exit 0`, ...).
    pub writer_end: String,
    pub acks: u64,
    pub last_ack: Option<String>,
    pub replay: ReplaySpec,
    /// The same trial as a `crashlab replay --writer ...` command line.
    pub cli_replay: String,
}

impl Violation {
    fn trial_name(&self) -> String {
        match self.crash {
            None => "the clean run (no crash)".to_owned(),
            Some(c) => format!("{c} trial {}", self.trial),
        }
    }
}

/// What a crash test found.
#[derive(Debug, Clone)]
pub struct CrashReport {
    /// The test's full name (libtest's).
    pub test: String,
    pub seed: u64,
    /// Acknowledgements of the clean (uncrashed) run.
    pub clean_run_acks: u64,
    /// How long the clean run's writer took.
    pub clean_run_ns: u64,
    /// Crash trials run, over all crash kinds (the clean run not counted).
    pub trials: u64,
    /// Trials in which the crash struck a running writer.
    pub crashed: u64,
    /// Acknowledged lines seen over all crash trials.
    pub acks: u64,
    pub per_crash: Vec<CrashCounts>,
    /// Every violation, the clean run's first, then by crash kind and trial.
    pub violations: Vec<Violation>,
    /// This report is one replayed trial (`CRASHLAB_REPLAY`).
    pub replayed: bool,
    /// The whole external-run report (every trial), when not a replay.
    pub external: Option<ExternalReport>,
    binary: PathBuf,
    given: String,
}

impl CrashReport {
    pub(super) fn from_external(context: Context, report: ExternalReport) -> CrashReport {
        let clean_ns = report.clean_run.duration_ns;
        // Process crashes at traced calls are placed by the traced clean run.
        let traced = report.traced_clean_run.as_ref().filter(|_| report.config.points == Some(ProgramPoints::Syscalls));
        let spec = |crash: Option<Crash>, trial: u32| match (crash, traced) {
            (Some(crash), Some(t)) => ReplaySpec {
                test: context.test.clone(),
                crash: Some(crash),
                trial,
                seed: report.seed,
                clean_ns: t.traced_clean_ns,
                calls: t.traced_calls,
                state: None,
                points: ProgramPoints::Syscalls,
            },
            _ => ReplaySpec {
                test: context.test.clone(),
                crash,
                trial,
                seed: report.seed,
                clean_ns: if crash.is_some() { clean_ns } else { 0 },
                calls: 0,
                state: None,
                points: ProgramPoints::Default,
            },
        };
        let mut violations = Vec::new();
        if let CheckerVerdict::Violation { reason } = &report.clean_run.checker {
            violations.push(Violation {
                crash: None,
                trial: 0,
                reason: reason.clone(),
                delivery: "none: the writer ran to its end".into(),
                crash_at_ns: None,
                writer_end: "exit 0".into(),
                acks: report.clean_run.acks,
                last_ack: report.clean_run.last_ack.clone(),
                replay: spec(None, 0),
                cli_replay: report.clean_run.replay.clone(),
            });
        }
        let mut per_crash = Vec::new();
        for s in &report.crashes {
            per_crash.push(CrashCounts {
                crash: s.crash,
                trials: s.trials,
                crashed: s.crashed,
                acks: s.acks_seen,
                violations: s.violations,
            });
            for f in &s.failures {
                let detail = s.trials_detail.iter().find(|t| t.trial == f.trial);
                violations.push(Violation {
                    crash: Some(s.crash),
                    trial: f.trial,
                    reason: f.reason.clone(),
                    delivery: f.delivery.to_string(),
                    crash_at_ns: detail.map(|t| t.crash_at_ns),
                    writer_end: f.writer_end.to_string(),
                    acks: f.acks,
                    last_ack: f.last_ack.clone(),
                    replay: spec(Some(s.crash), f.trial),
                    cli_replay: f.replay.clone(),
                });
            }
        }
        if let Some(p) = &report.power_loss {
            per_crash.push(power_loss_counts(p));
            violations.extend(power_loss_violations(
                p,
                &context.test,
                report.seed,
                report.config.points.unwrap_or_default(),
            ));
        }
        CrashReport {
            test: context.test,
            seed: report.seed,
            clean_run_acks: report.clean_run.acks,
            clean_run_ns: clean_ns,
            trials: per_crash.iter().map(|c| c.trials).sum(),
            crashed: per_crash.iter().map(|c| c.crashed).sum(),
            acks: per_crash.iter().map(|c| c.acks).sum(),
            per_crash,
            violations,
            replayed: false,
            external: Some(report),
            binary: context.binary,
            given: context.given,
        }
    }

    pub(super) fn from_replay(context: Context, spec: &ReplaySpec, replayed: Replayed, cli: String) -> CrashReport {
        let mut report = CrashReport {
            test: context.test,
            seed: spec.seed,
            clean_run_acks: 0,
            clean_run_ns: spec.clean_ns,
            trials: 0,
            crashed: 0,
            acks: 0,
            per_crash: Vec::new(),
            violations: Vec::new(),
            replayed: true,
            external: None,
            binary: context.binary,
            given: context.given,
        };
        let violation = |reason: &str, delivery: String, at, end: String, acks: &[String]| Violation {
            crash: spec.crash,
            trial: spec.trial,
            reason: reason.to_owned(),
            delivery,
            crash_at_ns: at,
            writer_end: end,
            acks: acks.len() as u64,
            last_ack: acks.last().cloned(),
            replay: spec.clone(),
            cli_replay: cli.clone(),
        };
        match replayed {
            Replayed::Clean(clean, acks) => {
                report.clean_run_acks = clean.acks;
                report.clean_run_ns = clean.duration_ns;
                if let Some(reason) = clean.checker.reason() {
                    let v = violation(reason, "none: the writer ran to its end".into(), None, "exit 0".into(), &acks);
                    report.violations.push(v);
                }
            }
            Replayed::Trial(o) => {
                let struck = !matches!(
                    o.delivery,
                    crate::report::external::Delivery::WriterFinishedFirst
                        | crate::report::external::Delivery::NothingToCut
                );
                let v = o.checker.reason().map(|reason| {
                    violation(reason, o.delivery.to_string(), Some(o.crash_at_ns), o.writer_end.to_string(), &o.acks)
                });
                report.per_crash.push(CrashCounts {
                    crash: o.plan.crash,
                    trials: 1,
                    crashed: struck as u64,
                    acks: o.acks.len() as u64,
                    violations: v.is_some() as u64,
                });
                report.trials = 1;
                report.crashed = struck as u64;
                report.acks = o.acks.len() as u64;
                report.violations.extend(v);
            }
        }
        report
    }

    pub(super) fn from_power_loss_replay(
        context: Context,
        spec: &ReplaySpec,
        replayed: PowerLossReplayed,
        cli: String,
    ) -> CrashReport {
        let (delivery, acks, verdict, explanation) = match &replayed {
            PowerLossReplayed::Trial(o) => {
                let explanation =
                    o.finding.as_ref().map(|f| format!("; minimal state `{}`: {}", f.state, f.explanation));
                (o.delivery.to_string(), &o.acks, &o.verdict, explanation.unwrap_or_default())
            }
            PowerLossReplayed::State { delivery, acks, verdict, resolved, .. } => {
                (delivery.to_string(), acks, verdict, format!("; state `{resolved}`"))
            }
        };
        let violation = verdict.reason().map(|reason| Violation {
            crash: Some(Crash::PowerLoss),
            trial: spec.trial,
            reason: reason.to_owned(),
            delivery: format!("{delivery}{explanation}"),
            crash_at_ns: None,
            writer_end: "killed by the durability oracle, or ended on its own".into(),
            acks: acks.len() as u64,
            last_ack: acks.last().cloned(),
            replay: spec.clone(),
            cli_replay: cli,
        });
        CrashReport {
            test: context.test,
            seed: spec.seed,
            clean_run_acks: 0,
            clean_run_ns: spec.clean_ns,
            trials: 1,
            crashed: !matches!(&replayed, PowerLossReplayed::Trial(o) if o.delivery == crate::report::external_power_loss::PowerLossDelivery::WriterFinishedFirst)
                as u64,
            acks: acks.len() as u64,
            per_crash: vec![CrashCounts {
                crash: Crash::PowerLoss,
                trials: 1,
                crashed: 1,
                acks: acks.len() as u64,
                violations: violation.is_some() as u64,
            }],
            violations: violation.into_iter().collect(),
            replayed: true,
            external: None,
            binary: context.binary,
            given: context.given,
        }
    }

    pub fn violation_found(&self) -> bool {
        !self.violations.is_empty()
    }

    /// The violation easiest to explain: a failing clean run first, then
    /// the one with the fewest acknowledgements (earliest trial on ties).
    pub fn simplest_violation(&self) -> Option<&Violation> {
        self.violations.iter().min_by_key(|v| (v.crash.is_some(), v.acks))
    }

    /// `CRASHLAB_REPLAY='...' cargo test ...` for `spec`: the package comes
    /// from `CARGO_PKG_NAME`, which cargo sets when it runs tests.
    pub fn replay_command(&self, spec: &ReplaySpec) -> String {
        let package = std::env::var("CARGO_PKG_NAME").map(|p| format!(" -p {p}")).unwrap_or_default();
        format!(
            "{REPLAY_ENV}={} cargo test{package} -- {}",
            shell_words::quote(&spec.to_string()),
            reexec::libtest_args(&self.test)
        )
    }

    /// The same replay, running the test binary directly.
    pub fn replay_binary_command(&self, spec: &ReplaySpec) -> String {
        format!(
            "{REPLAY_ENV}={} {} {}",
            shell_words::quote(&spec.to_string()),
            shell_words::quote(&self.binary.to_string_lossy()),
            reexec::libtest_args(&self.test)
        )
    }

    /// What [`super::CrashTest::run`] panics with, or `None` if nothing was
    /// violated.
    pub fn failure_message(&self) -> Option<String> {
        let v = self.simplest_violation()?;
        let mut m = String::new();
        let name = if self.given == self.test { self.test.clone() } else { format!("{} ({})", self.given, self.test) };
        if self.replayed {
            m += &format!("crashlab testkit: `{name}`: the replayed {} violated the checker.\n", v.trial_name());
        } else if v.crash.is_none() {
            m += &format!(
                "crashlab testkit: `{name}`: the checker rejects what the writer left when nothing crashed it \
                 (seed {}); no crash was tried.\n",
                self.seed
            );
        } else {
            let per: Vec<String> =
                self.per_crash.iter().map(|c| format!("{} {}/{}", c.crash, c.violations, c.trials)).collect();
            m += &format!(
                "crashlab testkit: `{name}` violated its checker after a crash in {} of {} trials ({}; seed {}).\n\
                 The violation with the fewest acks: {}\n",
                self.violations.len(),
                self.trials,
                per.join(", "),
                self.seed,
                v.trial_name()
            );
        }
        m += &format!("  checker: {}\n", v.reason);
        match v.crash_at_ns {
            Some(at) => {
                m += &format!(
                    "  crash:   {}, planned {} after the writer started (its clean run took {})\n",
                    v.delivery,
                    millis(at),
                    millis(self.clean_run_ns)
                )
            }
            None if v.crash.is_some() => m += &format!("  crash:   {}\n", v.delivery),
            None => {}
        }
        let last = v.last_ack.as_ref().map(|l| format!(", the last `{l}`")).unwrap_or_default();
        m += &format!("  writer:  ended with {} after {} acks{last}\n", v.writer_end, v.acks);
        m += &format!("  replay:  {}\n", self.replay_command(&v.replay));
        m += &format!("      or:  {}\n", self.replay_binary_command(&v.replay));
        m += &format!("      or:  {}\n", v.cli_replay);
        if v.crash.is_some_and(|c| c != Crash::PowerLoss) {
            m += "  A replay re-creates the crash time, not the instruction it hit: a writer whose timeline is \
                  dominated by sleeps replays best.\n";
        }
        let others: Vec<&Violation> = self.violations.iter().filter(|o| !std::ptr::eq(*o, v)).collect();
        if !others.is_empty() {
            m += &format!("Other violations ({}):\n", others.len());
            for o in others.iter().take(5) {
                m += &format!("  {} ({} acks): {}\n", o.trial_name(), o.acks, o.reason);
            }
            if others.len() > 5 {
                m += &format!("  ... and {} more\n", others.len() - 5);
            }
        }
        Some(m)
    }
}

fn power_loss_counts(p: &PowerLossSection) -> CrashCounts {
    CrashCounts {
        crash: Crash::PowerLoss,
        trials: p.trials,
        crashed: p.trials - p.finished_first,
        acks: p.acks_seen,
        violations: p.violations,
    }
}

/// Each power-loss violation, replayed by rebuilding its minimal state.
fn power_loss_violations(p: &PowerLossSection, test: &str, seed: u64, points: ProgramPoints) -> Vec<Violation> {
    p.failures
        .iter()
        .map(|f| Violation {
            crash: Some(Crash::PowerLoss),
            trial: f.trial,
            reason: f.finding.reason.clone(),
            delivery: format!("{}; minimal state `{}`: {}", f.delivery, f.finding.state, f.finding.explanation),
            crash_at_ns: None,
            writer_end: "killed by the durability oracle, or ended on its own".into(),
            acks: f.acks,
            last_ack: f.last_ack.clone(),
            replay: ReplaySpec {
                test: test.to_owned(),
                crash: Some(Crash::PowerLoss),
                trial: f.trial,
                seed,
                clean_ns: p.calibration.traced_clean_ns,
                calls: p.calibration.crash_point_calls(points),
                state: Some(f.finding.state.clone()),
                points,
            },
            cli_replay: f.replay.clone(),
        })
        .collect()
}

fn millis(ns: u64) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

impl fmt::Display for CrashReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per: Vec<String> = self.per_crash.iter().map(|c| format!("{} {}", c.crash, c.trials)).collect();
        write!(
            f,
            "`{}`: {}{} trials ({}), {} struck a running writer, {} acks, {} violations (seed {}; clean run: {} acks in {})",
            self.test,
            if self.replayed { "replayed " } else { "" },
            self.trials,
            per.join(", "),
            self.crashed,
            self.acks,
            self.violations.len(),
            self.seed,
            self.clean_run_acks,
            millis(self.clean_run_ns)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_specs_round_trip_through_text() {
        let trial = ReplaySpec {
            test: "tests::log".into(),
            crash: Some(Crash::Abort),
            trial: 12,
            seed: 7,
            clean_ns: 17_250_000,
            calls: 0,
            state: None,
            points: ProgramPoints::Default,
        };
        assert_eq!(trial.to_string(), "test=tests::log crash=abort trial=12 seed=7 clean-ns=17250000");
        assert_eq!(trial.to_string().parse::<ReplaySpec>().unwrap(), trial);
        let clean = ReplaySpec {
            test: "log".into(),
            crash: None,
            trial: 0,
            seed: 3,
            clean_ns: 0,
            calls: 0,
            state: None,
            points: ProgramPoints::Default,
        };
        assert_eq!(clean.to_string(), "test=log crash=clean seed=3");
        assert_eq!(clean.to_string().parse::<ReplaySpec>().unwrap(), clean);
        assert_eq!(clean.target(), ReplayTarget::Clean);
        assert_eq!(trial.target(), ReplayTarget::Trial { crash: Crash::Abort, trial: 12, clean_ns: 17_250_000 });
        let power = ReplaySpec {
            test: "log".into(),
            crash: Some(Crash::PowerLoss),
            trial: 4,
            seed: 1,
            clean_ns: 90,
            calls: 12,
            state: Some("newest:my file.bin#p3=floor".into()),
            points: ProgramPoints::Default,
        };
        let text = "test=log crash=power-loss trial=4 seed=1 clean-ns=90 calls=12 state=newest:my file.bin#p3=floor";
        assert_eq!(power.to_string(), text);
        assert_eq!(text.parse::<ReplaySpec>().unwrap(), power);
        assert_eq!(power.target(), ReplayTarget::PowerLoss { trial: 4, clean_ns: 90, calls: 12 });
        let whole_trial = ReplaySpec { state: None, ..power.clone() };
        assert_eq!(whole_trial.to_string().parse::<ReplaySpec>().unwrap(), whole_trial);
        let at_call = ReplaySpec { calls: 31, points: ProgramPoints::Syscalls, ..trial.clone() };
        let text = "test=tests::log crash=abort trial=12 seed=7 clean-ns=17250000 calls=31 points=syscalls";
        assert_eq!(at_call.to_string(), text);
        assert_eq!(text.parse::<ReplaySpec>().unwrap(), at_call);
        assert_eq!(
            at_call.target(),
            ReplayTarget::TrialAtCalls { crash: Crash::Abort, trial: 12, clean_ns: 17_250_000, calls: 31 }
        );
        let power_at_call = ReplaySpec { points: ProgramPoints::Syscalls, ..power };
        let text = "test=log crash=power-loss trial=4 seed=1 clean-ns=90 calls=12 points=syscalls state=newest:my file.bin#p3=floor";
        assert_eq!(power_at_call.to_string(), text);
        assert_eq!(text.parse::<ReplaySpec>().unwrap(), power_at_call);
    }

    #[test]
    fn bad_replay_specs_say_what_is_wrong() {
        let e = |s: &str| s.parse::<ReplaySpec>().unwrap_err();
        assert!(e("test=a crash=sigkill seed=1 clean-ns=5").contains("`trial=` is missing"), "{}", e(""));
        assert!(e("test=a crash=boom seed=1").contains("unknown crash kind `boom`"));
        assert!(e("test=a crash=clean seed=x").contains("seed=`x` is not an unsigned integer"));
        assert!(e("test=a crash=clean seed=1 colour=red").contains("unknown key `colour`"));
        assert!(e("test=a crash=clean seed").contains("`seed` is not key=value"));
        assert!(e("crash=clean seed=1").contains("`test=` is missing"));
        assert!(e("test=a crash=power-loss trial=1 seed=1 clean-ns=5").contains("`calls=` is missing"));
        assert!(e("test=a crash=sigkill trial=1 seed=1 clean-ns=5 calls=3").contains("or to points=syscalls"));
        assert!(e("test=a crash=sigkill trial=1 seed=1 clean-ns=5 points=syscalls").contains("`calls=` is missing"));
        assert!(e("test=a crash=clean seed=1 points=syscalls").contains("no crash point"));
        assert!(e("test=a crash=sigkill trial=1 seed=1 clean-ns=5 points=all").contains("--points `all`"));
        assert!(e("test=a crash=clean seed=1 state=newest").contains("power-loss only"));
    }
}
