//! Running the user's checker on a directory and classifying what it says:
//! the one way the engine checks a directory ([`Checker::check`]), whichever
//! protocol the checker speaks (v1: a process per directory, [`run_checker`];
//! v1.1: one server per job, [`super::checker_server`]). Reusable as is for
//! any way of producing the directory: a process crash (the crashed trial
//! directory) or a simulated power-loss state ([`super::materialize_dir`]).

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};

use super::checker_server::CheckerServer;
use super::command::{CommandLine, Role};
use super::config::{ExternalConfig, Supervision};
use super::process::{Stdout, Supervised};
use super::{ExternalError, ENV_ACKS, ENV_DIR, ENV_SEED};
use crate::report::checker_verdict::CheckerVerdict;
use crate::vocab::process_end::ProcessEnd;

/// What a checker of `role`'s protocol must do, said after every malfunction.
pub(crate) fn rule(role: Role) -> &'static str {
    match role {
        Role::CheckerServer => super::checker_server::V11_RULE,
        _ => "a checker must exit 0 (consistent) or 1 (violation, reason on the first line of stderr)",
    }
}

/// One job's checker: what the engine asks to judge each directory.
pub(crate) enum Checker {
    /// Protocol v1: the command runs once per directory.
    Command { line: CommandLine },
    /// Protocol v1.1: the command is started at the first check, in `cwd`
    /// (made then, a directory of crashlab's), and serves every later one;
    /// it is killed and reaped when this is dropped.
    Server { line: CommandLine, cwd: PathBuf, run_seed: u64, running: Option<Box<CheckerServer>> },
}

impl Checker {
    /// The checker of one job of `config`'s run; `server_cwd` is where a
    /// server would run (a path inside the run's directory, not made yet).
    pub fn for_job(config: &ExternalConfig, server_cwd: PathBuf) -> Checker {
        match config.checker.role {
            Role::CheckerServer => {
                Checker::Server { line: config.checker.clone(), cwd: server_cwd, run_seed: config.seed, running: None }
            }
            _ => Checker::Command { line: config.checker.clone() },
        }
    }

    /// Judge `dir`, whose acknowledged lines are in `acks_file` (outside
    /// `dir`) and whose writer had `writer_seed` (told to a v1 checker only).
    pub fn check(
        &mut self,
        dir: &Path,
        acks_file: &Path,
        writer_seed: u64,
        supervision: &Supervision<'_>,
    ) -> Result<CheckerVerdict, ExternalError> {
        match self {
            Checker::Command { line } => run_checker(line, dir, acks_file, writer_seed, supervision),
            Checker::Server { line, cwd, run_seed, running } => {
                let server = match running {
                    Some(s) => s,
                    None => {
                        std::fs::create_dir_all(&*cwd).map_err(|e| {
                            ExternalError::io(
                                format!("cannot create the checker server's directory {}", cwd.display()),
                                e,
                            )
                        })?;
                        running.insert(Box::new(CheckerServer::start(line, cwd, *run_seed, supervision)?))
                    }
                };
                let verdict = server.check(dir, acks_file, supervision);
                if verdict.is_err() {
                    // Killed and reaped now; a later check starts afresh.
                    *running = None;
                }
                verdict
            }
        }
    }
}

/// Used when a checker exits 1 without saying why.
pub const NO_REASON: &str = "(the checker exited 1 without a reason on stderr)";

/// Run `checker` with `dir` as its working directory and `CRASHLAB_DIR`,
/// `acks_file` as `CRASHLAB_ACKS`, and `seed` (the `CRASHLAB_SEED` the
/// writer of that directory had) as `CRASHLAB_SEED`. Exit 0 → [`CheckerVerdict::Consistent`],
/// exit 1 → [`CheckerVerdict::Violation`]; any other status, a signal, or
/// running past `supervision.timeout` → [`ExternalError::CheckerMalfunction`]
/// (never a pass). `acks_file` must not be inside `dir`.
pub fn run_checker(
    checker: &CommandLine,
    dir: &Path,
    acks_file: &Path,
    seed: u64,
    supervision: &Supervision<'_>,
) -> Result<CheckerVerdict, ExternalError> {
    let seed = seed.to_string();
    let env = [(ENV_DIR, dir.as_os_str()), (ENV_ACKS, acks_file.as_os_str()), (ENV_SEED, OsStr::new(&seed))];
    let mut child = Supervised::spawn(checker, dir, &env, Stdout::Discard, supervision.die_with_crashlab)?;
    let until = child.started() + supervision.timeout;
    let finished = child.finish(until, &|| supervision.stopped())?;
    let malfunction = |how: String, stderr: Option<String>| ExternalError::CheckerMalfunction {
        command: checker.text.clone(),
        role: checker.role,
        how,
        on: dir.display().to_string(),
        stderr: stderr.map(|l| format!(" (stderr: {l})")).unwrap_or_default(),
    };
    let Some(finished) = finished else {
        return Err(malfunction(
            format!("was still running after --timeout {} s and was killed", supervision.timeout_secs()),
            None,
        ));
    };
    match finished.end {
        ProcessEnd::Exited(0) => Ok(CheckerVerdict::Consistent),
        ProcessEnd::Exited(1) => Ok(CheckerVerdict::Violation {
            reason: finished.stderr_first_line().unwrap_or_else(|| NO_REASON.to_owned()),
        }),
        ProcessEnd::Exited(c) => Err(malfunction(format!("exited with status {c}"), finished.stderr_first_line())),
        end @ ProcessEnd::Signaled(_) => Err(malfunction(format!("died of {end}"), finished.stderr_first_line())),
    }
}

/// Write the acknowledged lines to `path`, one per line, in order.
pub fn write_acks_file(path: &Path, acks: &[Vec<u8>]) -> Result<(), ExternalError> {
    let what = || format!("cannot write the acks file {}", path.display());
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(|e| ExternalError::io(what(), e))?);
    for line in acks {
        f.write_all(line).and_then(|_| f.write_all(b"\n")).map_err(|e| ExternalError::io(what(), e))?;
    }
    f.flush().map_err(|e| ExternalError::io(what(), e))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use super::*;
    use crate::external::command::Role;

    fn check(script: &str, timeout: Duration) -> Result<CheckerVerdict, ExternalError> {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("trial");
        std::fs::create_dir(&dir).unwrap();
        let acks = tmp.path().join("trial.acks");
        write_acks_file(&acks, &[b"rec 1".to_vec(), b"rec 2".to_vec()]).unwrap();
        let checker = CommandLine::parse(Role::Checker, script, true).unwrap();
        let cancel = AtomicBool::new(false);
        run_checker(&checker, &dir, &acks, 42, &Supervision::new(timeout, &cancel))
    }

    #[test]
    fn exit_0_is_consistent_and_exit_1_a_violation_with_the_first_stderr_line() {
        let minute = Duration::from_secs(60);
        // The protocol's environment: cwd, CRASHLAB_DIR, the acks file and
        // the writer's CRASHLAB_SEED.
        let env_ok = r#"test "$PWD" = "$CRASHLAB_DIR" && test "$(cat "$CRASHLAB_ACKS")" = "$(printf 'rec 1\nrec 2')" && test "$CRASHLAB_SEED" = 42"#;
        assert_eq!(check(env_ok, minute).unwrap(), CheckerVerdict::Consistent);
        assert_eq!(
            check("echo noise; echo >&2; echo 'rec 2 is missing' >&2; echo detail >&2; exit 1", minute).unwrap(),
            CheckerVerdict::Violation { reason: "rec 2 is missing".into() }
        );
        assert_eq!(check("exit 1", minute).unwrap(), CheckerVerdict::Violation { reason: NO_REASON.into() });
    }

    #[test]
    fn any_other_end_is_a_malfunction_never_a_pass() {
        let minute = Duration::from_secs(60);
        let e = check("echo 'cannot parse' >&2; exit 2", minute).unwrap_err().to_string();
        assert!(e.starts_with("checker malfunction") && e.contains("exited with status 2"), "{e}");
        assert!(e.contains("cannot parse"), "{e}");
        let e = check("kill -KILL $$", minute).unwrap_err().to_string();
        assert!(e.contains("died of signal SIGKILL"), "{e}");
        let e = check("sleep 30", Duration::from_millis(300)).unwrap_err().to_string();
        assert!(e.contains("was still running after --timeout"), "{e}");
    }
}
