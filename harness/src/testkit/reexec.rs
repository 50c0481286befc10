//! Re-executing the test binary: which test name selects this test, the
//! command lines of the three protocol roles, and the probe that proves the
//! re-execution reaches this `CrashTest` before any trial runs.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::child::PROBE_TOKEN;
use super::{TestkitError, ROLE_ENV};

/// libtest arguments after the test's name: run exactly that test, on one
/// thread, with output going straight to the descriptors (not captured),
/// whether or not it is `#[ignore]`d.
const LIBTEST_ARGS: [&str; 5] = ["--exact", "--nocapture", "--test-threads", "1", "--include-ignored"];

/// How often the probe looks whether its process has exited.
const PROBE_POLL: Duration = Duration::from_millis(5);

/// The name libtest selects this test by. libtest names each test's thread
/// after the test's full path (`module::name`): when the thread's name is
/// `given` or ends in `::given`, that full path is the name; otherwise
/// `given` is taken as it is (the probe says if it selects nothing).
pub(super) fn resolve_test_name(given: &str) -> String {
    match std::thread::current().name() {
        Some(thread) if thread == given || thread.strip_suffix(given).is_some_and(|head| head.ends_with("::")) => {
            thread.to_owned()
        }
        _ => given.to_owned(),
    }
}

/// The command lines crashlab runs (workload protocol v1, and the checker
/// as a v1.1 server), as text for [`crate::external::ExternalConfig`].
pub(super) struct Commands {
    pub setup: Option<String>,
    pub writer: String,
    pub checker: String,
    pub checker_server: String,
}

impl Commands {
    pub fn new(exe: &Path, test: &str, with_setup: bool) -> Commands {
        // The role is exported by the shell: crashlab removes every
        // CRASHLAB_* variable it does not set itself from a program's
        // environment. The writer's stdout (crashlab's pipe) moves to
        // descriptor 3 and libtest's own lines on stdout go to /dev/null.
        // MALLOC_ARENA_MAX=1: libtest runs the test on a thread of its own,
        // for which glibc would map a malloc arena and trim it with one or
        // two munmaps depending on where the kernel placed it. Power-loss
        // crash points are numbered over the writer's msync/fsync/ftruncate/
        // munmap calls, so that noise would shift them between a run and
        // its replay; from the main arena the sequence is the same each time.
        let writer = format!(r#"export {ROLE_ENV}=writer MALLOC_ARENA_MAX=1; exec "$0" "$@" 3>&1 >/dev/null"#);
        // The server answers on descriptor 3 too, for the same reason.
        let server = format!(r#"export {ROLE_ENV}=checker-server; exec "$0" "$@" 3>&1 >/dev/null"#);
        let other = |role: &str| format!(r#"export {ROLE_ENV}={role}; exec "$0" "$@" >/dev/null"#);
        let line = |script: String| {
            let exe = exe.to_string_lossy();
            let mut argv: Vec<&str> = vec!["/bin/sh", "-c", &script, &exe, test];
            argv.extend(LIBTEST_ARGS);
            shell_words::join(argv)
        };
        Commands {
            setup: with_setup.then(|| line(other("setup"))),
            writer: line(writer),
            checker: line(other("checker")),
            checker_server: line(server),
        }
    }
}

/// The arguments (after the program) that run just this test with its
/// output shown, for replay instructions.
pub(super) fn libtest_args(test: &str) -> String {
    let mut argv = vec![test];
    argv.extend(&LIBTEST_ARGS[..2]);
    shell_words::join(argv)
}

/// Re-execute the test binary in the `probe` role and check that it reaches
/// `CrashTest::run` for `test`. Without this, a wrong name would select no
/// test: every re-execution would exit 0 having done nothing, and an empty
/// writer with a passing checker looks like a pass.
pub(super) fn probe(exe: &Path, test: &str, timeout: Duration) -> Result<(), TestkitError> {
    let err = |reason: String| TestkitError::Probe { test: test.to_owned(), reason };
    let mut cmd = Command::new(exe);
    cmd.arg(test).args(LIBTEST_ARGS).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // Like crashlab's own children: no CRASHLAB_* of ours leaks in (a
    // CRASHLAB_REPLAY must not turn the probe into a replay).
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CRASHLAB_") {
            cmd.env_remove(name);
        }
    }
    cmd.env(ROLE_ENV, "probe");
    let mut child = cmd.spawn().map_err(|e| err(format!("cannot re-execute {}: {e}", exe.display())))?;
    let (mut stdout, mut stderr) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    let (status, out, errs) = std::thread::scope(|s| {
        // Read both pipes while waiting, so a chatty test cannot block on a full pipe.
        let out = s.spawn(move || read_all(&mut stdout));
        let errs = s.spawn(move || read_all(&mut stderr));
        let deadline = Instant::now() + timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if Instant::now() < deadline => std::thread::sleep(PROBE_POLL),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!("the probe was still running after {} s and was killed", timeout.as_secs()));
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!("cannot wait for the probe: {e}"));
                }
            }
        };
        (status, out.join().unwrap_or_default(), errs.join().unwrap_or_default())
    });
    let status = status.map_err(err)?;
    let reached = out.lines().any(|l| l.trim_end() == format!("{PROBE_TOKEN} {test}"));
    if reached && status.success() {
        return Ok(());
    }
    let command = format!("{} {}", exe.display(), libtest_args(test));
    if out.lines().any(|l| l.trim() == "running 0 tests") {
        let thread =
            std::thread::current().name().map(|t| format!(" (this thread is named `{t}`)")).unwrap_or_default();
        return Err(err(format!(
            "`{command}` runs no test: `{test}` is not the full name of a test in this binary{thread}. \
             Give CrashTest::new the name of the test function it is in, as `cargo test -- --list` prints it"
        )));
    }
    Err(err(format!(
        "`{command}` (with {ROLE_ENV}=probe) did not reach CrashTest::run for `{test}` ({status}); \
         is it called on every run of this test? Its output ended with:\n{}",
        tail(&format!("{out}{errs}"), 12)
    )))
}

fn read_all(pipe: &mut impl Read) -> String {
    let mut bytes = Vec::new();
    let _ = pipe.read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The last `n` lines of `text`, indented.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].iter().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_test_path_is_taken_from_the_thread_name_only_when_it_ends_in_the_given_name() {
        let resolve = |thread: &str, given: &str| {
            let given = given.to_owned();
            std::thread::Builder::new().name(thread.into()).spawn(move || resolve_test_name(&given)).unwrap().join()
        };
        assert_eq!(resolve("tests::my_test", "my_test").unwrap(), "tests::my_test");
        assert_eq!(resolve("my_test", "my_test").unwrap(), "my_test");
        assert_eq!(resolve("tests::my_test", "tests::my_test").unwrap(), "tests::my_test");
        // Not a path-component match: keep what was given.
        assert_eq!(resolve("tests::not_my_test", "my_test").unwrap(), "my_test");
        assert_eq!(resolve("worker", "my_test").unwrap(), "my_test");
    }

    #[test]
    fn role_commands_split_back_into_the_re_execution() {
        let exe = Path::new("/tmp/dir with space/my-tests-0123");
        let c = Commands::new(exe, "tests::t", true);
        let writer = shell_words::split(&c.writer).unwrap();
        assert_eq!(writer[..2], ["/bin/sh", "-c"]);
        assert_eq!(
            writer[2],
            format!(r#"export {ROLE_ENV}=writer MALLOC_ARENA_MAX=1; exec "$0" "$@" 3>&1 >/dev/null"#)
        );
        assert_eq!(
            writer[3..],
            [exe.to_str().unwrap(), "tests::t", "--exact", "--nocapture", "--test-threads", "1", "--include-ignored"]
        );
        let checker = shell_words::split(&c.checker).unwrap();
        assert_eq!(checker[2], format!(r#"export {ROLE_ENV}=checker; exec "$0" "$@" >/dev/null"#));
        let server = shell_words::split(&c.checker_server).unwrap();
        assert_eq!(server[2], format!(r#"export {ROLE_ENV}=checker-server; exec "$0" "$@" 3>&1 >/dev/null"#));
        assert_eq!(server[3..], writer[3..], "the same test, re-executed");
        let setup = shell_words::split(c.setup.as_deref().unwrap()).unwrap();
        assert_eq!(setup[2], format!(r#"export {ROLE_ENV}=setup; exec "$0" "$@" >/dev/null"#));
        assert!(Commands::new(exe, "t", false).setup.is_none());
    }
}
