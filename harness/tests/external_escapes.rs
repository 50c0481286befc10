//! No process started by crashlab outlives its program, its trial or the
//! run, even one that left its process group: `setsid` daemons, double
//! forks, a daemon that changed credentials (root only), one that cleared
//! its environment; from a writer, a checker or a setup; under process
//! crashes and under `--crash power-loss`.
//!
//! The handshake: every daemon writes its pid into a fifo that the program
//! starting it reads before going on, and the program appends that pid to
//! `pids`; so a daemon that a program vouched for exists before the program
//! goes on, and nothing is left to timing. Every program (setup, writer,
//! checker) first checks that every daemon recorded so far is dead (with
//! `--jobs 1` the programs run one at a time: whatever an earlier program
//! started must be gone before the next starts), and exits 3 otherwise,
//! which fails the run; after the run the test checks the same, and that no
//! process carrying the test's marker is left.

use std::path::Path;
use std::process::{Command, Output};

/// Shell functions for the programs. `ESCAPE_DIR` (pids, fifos) and
/// `ESCAPE_MARK` come from crashlab's environment, which it passes down.
const PRELUDE: &str = r#"
alive() { { tr '\0' '\n' < "/proc/$1/environ"; } 2>/dev/null | grep -qx "ESCAPE_MARK=$ESCAPE_MARK"; }
check_dead() {
  [ -f "$ESCAPE_DIR/pids" ] || return 0
  while read -r p; do
    if alive "$p"; then echo "daemon $p started earlier is still running: $(tr '\0' ' ' < /proc/$p/cmdline)" >&2; exit 3; fi
  done < "$ESCAPE_DIR/pids"
}
daemon() {
  f=$(mktemp -u "$ESCAPE_DIR/fifo.XXXXXX")
  mkfifo -m 666 "$f"
  case $1 in
    setsid) setsid sh -c 'echo $$ > "$1"; exec sleep 1000' daemon "$f" < /dev/null > /dev/null 2>&1 & ;;
    double-fork) ( setsid sh -c 'echo $$ > "$1"; exec sleep 1000' daemon "$f" < /dev/null > /dev/null 2>&1 & ) ;;
    setpriv) setsid setpriv --reuid=65534 --regid=65534 --clear-groups \
               sh -c 'echo $$ > "$1"; exec sleep 1000' daemon "$f" < /dev/null > /dev/null 2>&1 & ;;
    env-cleared) setsid env -i sh -c 'echo $$ > "$1"; exec sleep 1000' daemon "$f" < /dev/null > /dev/null 2>&1 & ;;
  esac
  read -r p < "$f"
  rm -f "$f"
  echo "$p" >> "$ESCAPE_DIR/pids"
}
"#;

fn program(body: &str) -> String {
    format!("{PRELUDE}\n{body}")
}

fn writer(how: &str) -> String {
    program(&format!("check_dead; daemon {how}; echo ack 1; daemon {how}; echo ack 2"))
}

fn checker(how: &str) -> String {
    program(&format!("check_dead; daemon {how}; exit 0"))
}

struct Run {
    dir: tempfile::TempDir,
    mark: String,
}

impl Run {
    /// A directory everyone can reach (a daemon may run as nobody) and a
    /// marker unique to this test.
    fn new(name: &str) -> Run {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new().prefix("crashlab-escapes-").tempdir_in("/tmp").unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        Run { dir, mark: format!("{name}-{}", std::process::id()) }
    }

    fn crashlab(&self, args: &[&str]) -> Output {
        let out = self.dir.path().join("report.json");
        Command::new(env!("CARGO_BIN_EXE_crashlab"))
            // These writers start daemons; whether a crash lands before
            // their first ack is beside the point here.
            .args(["run", "--shell", "--allow-no-acks", "--seed", "3", "--dir", self.dir.path().to_str().unwrap()])
            .args(["--out", out.to_str().unwrap()])
            .args(args)
            .env("ESCAPE_DIR", self.dir.path())
            .env("ESCAPE_MARK", &self.mark)
            .output()
            .expect("crashlab runs")
    }

    fn recorded(&self) -> Vec<i32> {
        let pids = std::fs::read_to_string(self.dir.path().join("pids")).unwrap_or_default();
        pids.lines().map(|l| l.trim().parse().unwrap()).collect()
    }

    /// Processes carrying this test's marker (running: a zombie's
    /// environment reads empty).
    fn marked(&self) -> Vec<String> {
        let needle = format!("ESCAPE_MARK={}", self.mark);
        let mut found = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            if let Ok(env) = std::fs::read(entry.path().join("environ")) {
                if env.split(|&b| b == 0).any(|v| v == needle.as_bytes()) {
                    let cmd = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
                    found.push(format!("{}: {}", entry.file_name().to_string_lossy(), String::from_utf8_lossy(&cmd)));
                }
            }
        }
        found
    }

    /// Is `pid` still a running `sleep 1000`? (For daemons whose
    /// environment was cleared: no marker to look for.)
    fn sleeping(pid: i32) -> bool {
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        cmd == b"sleep\x001000\x00"
    }

    /// The run passed, at least `min` daemons were started, and none of
    /// them nor anything else marked is running now.
    fn assert_nothing_left(&self, o: &Output, min: usize) {
        let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        let (pids, marked) = (self.recorded(), self.marked());
        // Whatever happens, leave nothing behind for the next test.
        for p in pids.iter().copied().filter(|&p| Run::sleeping(p)) {
            // SAFETY: a pid this test's daemons recorded, still `sleep 1000`.
            unsafe { libc::kill(p, libc::SIGKILL) };
        }
        assert_eq!(o.status.code(), Some(0), "{text}");
        assert!(pids.len() >= min, "only {} daemons were started: {text}", pids.len());
        assert_eq!(marked, Vec::<String>::new(), "processes outlived the run: {text}");
        let running: Vec<i32> = pids.into_iter().filter(|&p| Run::sleeping(p)).collect();
        assert_eq!(running, Vec::<i32>::new(), "daemons outlived the run");
    }
}

fn shell_args<'a>(setup: &'a str, writer: &'a str, checker: &'a str) -> Vec<&'a str> {
    vec!["--setup", setup, "--writer", writer, "--checker", checker]
}

/// Daemons of the setup, the writer and the checker, by `setsid` and by a
/// double fork, are gone before the next program starts and after the run.
#[test]
fn daemons_of_every_program_die_with_it() {
    for how in ["setsid", "double-fork"] {
        let run = Run::new(how);
        let (setup, writer, checker) = (checker(how), writer(how), checker(how));
        let mut args = shell_args(&setup, &writer, &checker);
        args.extend(["--crash", "sigkill,sigabrt", "--trials", "4", "--jobs", "1"]);
        let o = run.crashlab(&args);
        // The clean run alone starts four: setup, two by the writer, checker.
        run.assert_nothing_left(&o, 4);
    }
}

/// With several jobs, one trial's cleanup never kills another job's
/// running writer (it would die of SIGKILL "on its own", a harness error),
/// and nothing is left after the run.
#[test]
fn concurrent_trials_kill_only_their_own_daemons() {
    let run = Run::new("jobs");
    // No check_dead: another job's daemons may rightly be running.
    let writer = program("daemon setsid; echo ack 1; sleep 0.01; daemon setsid; echo ack 2; sleep 0.01");
    let checker = program("daemon setsid; exit 0");
    let o = run.crashlab(&[
        "--writer",
        &writer,
        "--checker",
        &checker,
        "--crash",
        "sigabrt",
        "--trials",
        "12",
        "--jobs",
        "3",
    ]);
    run.assert_nothing_left(&o, 3);
}

/// A daemon that cleared its environment carries no tag: it cannot be told
/// from another trial's, so the `crashlab` command kills it as it exits.
#[test]
fn a_daemon_without_an_environment_dies_when_crashlab_exits() {
    let run = Run::new("env-cleared");
    let writer = program("daemon env-cleared; echo ack 1");
    let o = run.crashlab(&["--writer", &writer, "--checker", "true", "--crash", "sigkill", "--trials", "3"]);
    let text = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let pids = run.recorded();
    let running: Vec<i32> = pids.iter().copied().filter(|&p| Run::sleeping(p)).collect();
    for &p in &running {
        // SAFETY: a pid this test's daemons recorded, still `sleep 1000`.
        unsafe { libc::kill(p, libc::SIGKILL) };
    }
    assert_eq!(o.status.code(), Some(0), "{text}");
    assert!(!pids.is_empty(), "no daemon was started: {text}");
    assert_eq!(running, Vec::<i32>::new(), "daemons outlived the run");
}

/// Under the durability oracle too: the writer's daemons, and the setup's
/// and the checkers' (which run outside the oracle).
#[test]
fn power_loss_runs_leave_no_daemon() {
    let run = Run::new("power-loss");
    let (setup, writer, checker) = (checker("setsid"), writer("setsid"), checker("double-fork"));
    let mut args = shell_args(&setup, &writer, &checker);
    args.extend(["--crash", "power-loss", "--trials", "3", "--jobs", "1"]);
    let o = run.crashlab(&args);
    run.assert_nothing_left(&o, 4);
}

/// A daemon that changed credentials (here to nobody, which also clears
/// `PR_SET_PDEATHSIG`) is found and killed like any other. Needs root to
/// change credentials; CI runs as root, so there a non-root run fails
/// instead of passing without testing anything.
#[test]
fn a_daemon_that_changed_credentials_dies_too() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(std::env::var_os("CI").is_none(), "CI must run this test as root (it changes credentials)");
        eprintln!("skipped: changing credentials needs root");
        return;
    }
    assert!(Path::new("/usr/bin/setpriv").exists() || which("setpriv"), "this test needs setpriv (util-linux)");
    let run = Run::new("setpriv");
    let (setup, writer, checker) = (checker("setpriv"), writer("setpriv"), checker("setpriv"));
    let mut args = shell_args(&setup, &writer, &checker);
    args.extend(["--crash", "sigkill", "--trials", "3", "--jobs", "1"]);
    let o = run.crashlab(&args);
    // A setpriv that failed would never write its fifo: the run would hang
    // until --timeout and fail, not pass.
    run.assert_nothing_left(&o, 4);
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).exists()))
}
