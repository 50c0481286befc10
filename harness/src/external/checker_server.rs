//! The client of a checker server (**protocol v1.1**, `--checker-server`):
//! one long-lived checker process per job, asked about one directory per
//! request instead of started once per directory.
//!
//! # Protocol v1.1
//!
//! Everything of protocol v1 holds (see [`crate::external`]) except how the
//! checker is run. crashlab starts the `--checker-server` command once per
//! job that checks (lazily, before its first check), with
//!
//! - its working directory an empty directory of crashlab's (not a state
//!   directory: the server must use the paths of each request, never its
//!   working directory);
//! - `CRASHLAB_SEED` = the run's seed (`--seed`). The per-trial seed a v1
//!   checker gets (the one its directory's writer had) is *not* sent: a
//!   checker that needs the writer's seed must stay a v1 `--checker`;
//! - no `CRASHLAB_DIR` and no `CRASHLAB_ACKS`.
//!
//! For every directory to judge (a crashed trial directory, a power-loss
//! state, the clean run's directory) crashlab writes one request line on
//! the server's standard input:
//!
//! ```text
//! STATE_DIR<TAB>ACKS_PATH<LF>
//! ```
//!
//! (absolute paths; the acks file is as in v1: the acknowledged lines, one
//! per line, outside the directory) and reads one answer line on its
//! standard output:
//!
//! - `ok`: the directory is consistent and holds every acknowledged
//!   operation (v1's exit 0);
//! - `violation REASON`: it is not; `REASON` (the rest of the line; may be
//!   empty) is the report's reason (v1's exit 1).
//!
//! The next request comes only after the answer. The server must flush
//! after each answer, must leave the directory as it found it (a state
//! directory is reused, and checked afterwards as for v1), and must not
//! print anything else on standard output (diagnostics go to standard
//! error). An answer line may hold at most [`MAX_ANSWER_BYTES`].
//!
//! Anything else is a *checker malfunction* (a harness error, never a pass,
//! exactly as for v1): another line, an answer longer than the cap, no
//! answer within `--timeout` of the request, the server closing its
//! standard output or standard input, or exiting or dying at any point. The
//! error names the command, the request and what happened, with the last
//! line the server printed on standard error.
//!
//! At the end of the job (and on every other way out: an error, a
//! violation elsewhere, Ctrl-C), crashlab kills the server's process group
//! and whatever it started that left it, and reaps them, as for every
//! program of protocol v1.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Instant;

use super::command::CommandLine;
use super::config::Supervision;
use super::process::{LineWake, Serving, Stdout, Supervised, MAX_ACK_LINE_BYTES};
use super::{ExternalError, ENV_SEED};
use crate::report::checker_verdict::CheckerVerdict;
use crate::vocab::process_end::ProcessEnd;

/// The longest answer line (without its `\n`) protocol v1.1 accepts: the
/// cap of one v1 ack line, for the same reason (a pipe's capacity without a
/// newline is a runaway program, not an answer).
pub const MAX_ANSWER_BYTES: usize = MAX_ACK_LINE_BYTES;

/// What a server must do, said after every malfunction.
pub(crate) const V11_RULE: &str =
    "a checker server must answer each request with one line, `ok` or `violation REASON`, and keep running";

/// Used when a server answers `violation` without a reason.
pub const NO_SERVER_REASON: &str = "(the checker server answered `violation` without a reason)";

/// What an answer line says (pure): a verdict, or why it is no answer. A
/// reason that is not UTF-8 is taken with its bad bytes replaced.
pub(crate) fn parse_answer(line: &[u8]) -> Result<CheckerVerdict, String> {
    if line == b"ok" {
        return Ok(CheckerVerdict::Consistent);
    }
    let reason = match line.strip_prefix(b"violation ") {
        Some(rest) => Some(String::from_utf8_lossy(rest).trim().to_owned()),
        None => (line == b"violation").then(String::new),
    };
    match reason {
        Some(r) if r.is_empty() => Ok(CheckerVerdict::Violation { reason: NO_SERVER_REASON.to_owned() }),
        Some(reason) => Ok(CheckerVerdict::Violation { reason }),
        None => {
            let text = String::from_utf8_lossy(line);
            let shown: String = text.chars().take(200).collect();
            let more = if shown.len() < text.len() { "..." } else { "" };
            Err(format!("answered {shown:?}{more}, which is neither `ok` nor `violation REASON`"))
        }
    }
}

/// The request line for `dir` and `acks` (pure). A path holding a tab or a
/// newline cannot be sent on one line.
pub(crate) fn request_line(dir: &Path, acks: &Path) -> Result<Vec<u8>, ExternalError> {
    for p in [dir, acks] {
        if p.as_os_str().as_bytes().iter().any(|&b| b == b'\t' || b == b'\n') {
            return Err(ExternalError::BadInput(format!(
                "--checker-server: the path {} holds a tab or a newline, which protocol v1.1 cannot send \
                 (choose a --dir without them)",
                p.display()
            )));
        }
    }
    Ok([dir.as_os_str().as_bytes(), b"\t", acks.as_os_str().as_bytes(), b"\n"].concat())
}

/// A running checker server.
pub(crate) struct CheckerServer {
    line: CommandLine,
    child: Supervised,
}

impl CheckerServer {
    /// Start `line` in `cwd` (a directory of crashlab's) with the run's
    /// `seed` as `CRASHLAB_SEED`.
    pub fn start(
        line: &CommandLine,
        cwd: &Path,
        seed: u64,
        supervision: &Supervision<'_>,
    ) -> Result<CheckerServer, ExternalError> {
        let seed = seed.to_string();
        let env = [(ENV_SEED, OsStr::new(&seed))];
        let child = Supervised::spawn_serving(
            line,
            cwd,
            &env,
            Stdout::Lines,
            supervision.die_with_crashlab,
            Serving::Requests,
        )?;
        Ok(CheckerServer { line: line.clone(), child })
    }

    /// Ask the server about `dir` (its acknowledged lines in `acks`).
    pub fn check(
        &mut self,
        dir: &Path,
        acks: &Path,
        supervision: &Supervision<'_>,
    ) -> Result<CheckerVerdict, ExternalError> {
        let request = request_line(dir, acks)?;
        let until = Instant::now() + supervision.timeout;
        let stop = || supervision.stopped();
        let shown = format!("the request {:?}", String::from_utf8_lossy(&request[..request.len() - 1]));
        let timeout = supervision.timeout_secs();
        if !self.child.write_stdin(&request, until, &stop)? {
            let how = if Instant::now() >= until {
                How::Is(format!("did not read the request within --timeout {timeout} s and was killed"))
            } else {
                How::UnlessEnded("stopped reading requests (its standard input is closed)")
            };
            return Err(self.malfunction(how, &shown, &stop));
        }
        let how = match self.child.next_line(until, &stop) {
            Ok(LineWake::Line(answer)) => match parse_answer(&answer) {
                Ok(verdict) => return Ok(verdict),
                Err(how) => How::Is(how),
            },
            Ok(LineWake::Exited) => How::UnlessEnded("ended"),
            Ok(LineWake::StdoutClosed) => How::UnlessEnded("closed its standard output"),
            Ok(LineWake::Deadline) => How::Is(format!("did not answer within --timeout {timeout} s and was killed")),
            Err(ExternalError::AckOverflow { .. }) => {
                How::Is(format!("answered a line of more than {} KiB", MAX_ANSWER_BYTES / 1024))
            }
            Err(e) => return Err(e),
        };
        Err(self.malfunction(how, &shown, &stop))
    }

    /// The malfunction `how` on request `on`. The server is reaped if it
    /// has ended (or ends within [`END_GRACE`] when `how` allows: a closed
    /// pipe is mostly a process exiting); otherwise it is killed when this
    /// server is dropped.
    fn malfunction(&mut self, how: How, on: &str, stop: &dyn Fn() -> bool) -> ExternalError {
        let mut stderr = self.child.stderr_last_line();
        let grace = match how {
            How::Is(_) => std::time::Duration::ZERO,
            How::UnlessEnded(_) => END_GRACE,
        };
        let ended = match self.child.finish(Instant::now() + grace, stop) {
            Ok(ended) => ended,
            // Its output went past the cap (the malfunction itself): it is
            // killed when this server is dropped.
            Err(ExternalError::AckOverflow { .. }) => None,
            Err(e) => return e,
        };
        let end = ended.map(|f| {
            stderr = super::process::last_line(&f.stderr).or(stderr.take());
            match f.end {
                ProcessEnd::Exited(c) => format!("exited with status {c}"),
                end @ ProcessEnd::Signaled(_) => format!("died of {end}"),
            }
        });
        let how = match (how, end) {
            (How::Is(how), _) => how,
            (How::UnlessEnded(_), Some(end)) => end,
            (How::UnlessEnded(how), None) => how.to_owned(),
        };
        ExternalError::CheckerMalfunction {
            command: self.line.text.clone(),
            role: self.line.role,
            how,
            on: on.to_owned(),
            stderr: stderr.map(|l| format!(" (last line of its stderr: {l})")).unwrap_or_default(),
        }
    }
}

/// How long a server whose pipe closed is given to show how it ended.
const END_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// What went wrong: this, or, if the server has ended, how it ended.
enum How {
    Is(String),
    UnlessEnded(&'static str),
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::time::Duration;

    use super::*;
    use crate::external::checker::write_acks_file;
    use crate::external::command::Role;

    #[test]
    fn answers_are_ok_or_violation_with_a_reason_and_nothing_else() {
        assert_eq!(parse_answer(b"ok"), Ok(CheckerVerdict::Consistent));
        assert_eq!(
            parse_answer(b"violation rec 2 is missing"),
            Ok(CheckerVerdict::Violation { reason: "rec 2 is missing".into() })
        );
        for bare in [&b"violation"[..], b"violation ", b"violation   "] {
            assert_eq!(parse_answer(bare), Ok(CheckerVerdict::Violation { reason: NO_SERVER_REASON.into() }));
        }
        assert_eq!(
            parse_answer(b"violation rec \xff lost"),
            Ok(CheckerVerdict::Violation { reason: "rec \u{fffd} lost".into() }),
            "a reason that is not UTF-8 is still a violation"
        );
        for garbage in [&b"OK"[..], b"ok ", b"", b"yes", b"violations x", b"violation\tx", b" ok"] {
            let e = parse_answer(garbage).unwrap_err();
            assert!(e.contains("neither `ok` nor `violation REASON`"), "{garbage:?}: {e}");
        }
    }

    #[test]
    fn a_path_with_a_tab_or_newline_cannot_be_requested() {
        let ok = request_line(Path::new("/tmp/a b/state"), Path::new("/tmp/a b/state.acks")).unwrap();
        assert_eq!(ok, b"/tmp/a b/state\t/tmp/a b/state.acks\n");
        for bad in ["/tmp/a\tb", "/tmp/a\nb"] {
            let e = request_line(Path::new(bad), Path::new("/tmp/acks")).unwrap_err().to_string();
            assert!(e.contains("--checker-server") && e.contains("tab or a newline"), "{e}");
        }
    }

    /// A server started from `script` (sh), with one state directory and
    /// its acks file; `check` asks about it.
    struct Fixture {
        _tmp: tempfile::TempDir,
        dir: std::path::PathBuf,
        acks: std::path::PathBuf,
        server: CheckerServer,
    }

    fn start(script: &str, timeout: Duration, cancel: &AtomicBool) -> Fixture {
        start_with(script, Supervision::new(timeout, cancel))
    }

    fn start_with(script: &str, supervision: Supervision<'_>) -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        std::fs::create_dir(&dir).unwrap();
        let cwd = tmp.path().join("server");
        std::fs::create_dir(&cwd).unwrap();
        let acks = tmp.path().join("state.acks");
        write_acks_file(&acks, &[b"rec 1".to_vec()]).unwrap();
        let line = CommandLine::parse(Role::CheckerServer, script, true).unwrap();
        let server = CheckerServer::start(&line, &cwd, 7, &supervision).unwrap();
        Fixture { _tmp: tmp, dir, acks, server }
    }

    impl Fixture {
        fn check(&mut self, timeout: Duration, cancel: &AtomicBool) -> Result<CheckerVerdict, ExternalError> {
            self.server.check(&self.dir, &self.acks, &Supervision::new(timeout, cancel))
        }
    }

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_server_answers_request_after_request_with_the_protocol_environment() {
        let cancel = AtomicBool::new(false);
        // ok while the state holds no file "bad", else a violation naming
        // the first ack; the environment is v1.1's: the run's seed, no
        // CRASHLAB_DIR or CRASHLAB_ACKS, a cwd that is not the state.
        let script = r#"test "$CRASHLAB_SEED" = 7 && test -z "${CRASHLAB_DIR+x}${CRASHLAB_ACKS+x}" || exit 9
            while IFS="$(printf '\t')" read -r dir acks; do
              test "$PWD" != "$dir" || exit 8
              if test -e "$dir/bad"; then echo "violation $(head -n1 "$acks") is lost"; else echo ok; fi
            done"#;
        // Started by crashlab's clone (with the parent-death signal) and
        // by posix_spawn (without): the same pipes either way.
        for die_with_crashlab in [true, false] {
            let mut supervision = Supervision::new(MINUTE, &cancel);
            supervision.die_with_crashlab = die_with_crashlab;
            let mut f = start_with(script, supervision);
            assert_eq!(f.check(MINUTE, &cancel).unwrap(), CheckerVerdict::Consistent);
            std::fs::write(f.dir.join("bad"), b"").unwrap();
            let lost = CheckerVerdict::Violation { reason: "rec 1 is lost".into() };
            assert_eq!(f.check(MINUTE, &cancel).unwrap(), lost);
            std::fs::remove_file(f.dir.join("bad")).unwrap();
            assert_eq!(f.check(MINUTE, &cancel).unwrap(), CheckerVerdict::Consistent);
        }
    }

    fn malfunction(script: &str, timeout: Duration) -> String {
        let cancel = AtomicBool::new(false);
        let mut f = start(script, MINUTE, &cancel);
        let e = f.check(timeout, &cancel).unwrap_err().to_string();
        assert!(e.starts_with("checker malfunction: `") && e.contains("(--checker-server)"), "{e}");
        assert!(e.contains("the request \"") && e.contains(&*f.dir.to_string_lossy()), "names the request: {e}");
        assert!(e.contains(V11_RULE), "{e}");
        e
    }

    #[test]
    fn a_garbage_answer_is_a_malfunction_with_the_last_stderr_line() {
        let e = malfunction("read -r r; echo 'starting' >&2; echo 'loaded 3 rows' >&2; echo yes; sleep 60", MINUTE);
        assert!(e.contains(r#"answered "yes", which is neither"#), "{e}");
        assert!(e.contains("(last line of its stderr: loaded 3 rows)"), "{e}");
    }

    #[test]
    fn an_answer_past_the_cap_is_a_malfunction() {
        let e = malfunction("read -r r; head -c 70000 /dev/zero | tr '\\0' x; echo; sleep 60", MINUTE);
        assert!(e.contains("answered a line of more than 64 KiB"), "{e}");
    }

    #[test]
    fn a_server_that_exits_or_dies_is_a_malfunction() {
        let e = malfunction("read -r r; echo 'out of memory' >&2; exit 3", MINUTE);
        assert!(e.contains("exited with status 3") && e.contains("(last line of its stderr: out of memory)"), "{e}");
        let e = malfunction("read -r r; kill -KILL $$", MINUTE);
        assert!(e.contains("died of signal SIGKILL"), "{e}");
        // Exiting 0 is a malfunction too: a server serves until it is killed.
        let e = malfunction("exit 0", MINUTE);
        assert!(e.contains("exited with status 0") || e.contains("standard input is closed"), "{e}");
        let e = malfunction("exec >&-; sleep 60", MINUTE);
        assert!(e.contains("closed its standard output"), "{e}");
    }

    #[test]
    fn a_server_that_hangs_past_the_timeout_is_killed_and_a_malfunction() {
        let started = Instant::now();
        let e = malfunction("read -r r; sleep 60", Duration::from_millis(300));
        assert!(e.contains("did not answer within --timeout"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(30), "the timeout was not held: {:?}", started.elapsed());
    }

    /// A server whose child has exited unreaped (a zombie), then the
    /// server killed by the end of the job: nothing is left, neither the
    /// server nor its child, running or as a zombie.
    #[test]
    fn a_server_and_a_zombie_child_it_left_are_gone_after_the_job() {
        let cancel = AtomicBool::new(false);
        // `sh -c 'true & exec sleep'`-like: the background child exits
        // and stays a zombie of the server, which never waits for it.
        let script = r#"(exit 0) & echo "child $!" >&2; exec sh -c 'while read -r r; do echo ok; done'"#;
        let mut f = start(script, MINUTE, &cancel);
        assert_eq!(f.check(MINUTE, &cancel).unwrap(), CheckerVerdict::Consistent);
        let pid = f.server.child.pid();
        let child: i32 = f.server.child.stderr_last_line().unwrap().trim_start_matches("child ").parse().unwrap();
        let alive = |p: i32| std::path::Path::new(&format!("/proc/{p}")).exists();
        assert!(alive(pid));
        drop(f);
        assert!(!alive(pid), "the server {pid} is gone, reaped");
        // The zombie child was the server's; with the server gone it is
        // reparented and reaped by whoever reaps orphans (crashlab, a
        // subreaper, or init): it must not stay ours.
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(child) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!alive(child), "the server's child {child} is gone");
    }
}
