//! Writeback pressure (`soundness --writeback`) end to end: a pressured
//! campaign's coverage shows the states only pressure makes reachable (kept
//! unsynced pages, intermediate versions), and `expire:CS` always gives the
//! dirty-expiry sysctls back: after Ctrl-C, SIGTERM, a SIGKILLed worker, and
//! (through the state file) after a SIGKILL of the CLI itself.
//!
//! These tests need root (loop devices, mounts, /proc/sys). Without it they
//! print why and fail, unless CRASHLAB_ALLOW_NO_ROOT=1 (then they pass
//! vacuously, saying so). The sysctl tests change machine-wide settings:
//! they run one at a time (a lock) and each checks the values it found are
//! back.

#[path = "support/processes.rs"]
mod processes;
use processes::processes_mentioning;

#[path = "support/report_schema_validation.rs"]
mod report_schema_validation;

#[path = "support/root.rs"]
mod root;
use root::have_root;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crashlab::realcut::pressure::EXPIRY_SYSCTLS;

/// One sysctl test at a time: they share the machine's settings.
static SYSCTLS: Mutex<()> = Mutex::new(());

fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    let parent = if shm.is_dir() { shm.to_path_buf() } else { std::env::temp_dir() };
    tempfile::Builder::new().prefix("crashlab-pressure-test-").tempdir_in(parent).unwrap()
}

fn sysctl_values() -> Vec<String> {
    EXPIRY_SYSCTLS.iter().map(|p| std::fs::read_to_string(p).unwrap().trim().to_string()).collect()
}

/// A centisecond value unlike any default, so seeing it means the campaign
/// set it.
const MARK_CS: &str = "7";

/// A campaign far longer than any test waits, under `--writeback expire:7`.
/// Returns once the sysctls carry the mark and a loop device is attached
/// (a trial is under way): the handshake, not a sleep.
fn start_expire_campaign(work: &Path) -> Child {
    let dir = work.join("images");
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_crashlab"))
        .args(["soundness", "--fs", "ext4", "--trials", "1000000", "--seed", "1", "--jobs", "1"])
        .args(["--writeback", &format!("expire:{MARK_CS}"), "--out"])
        .arg(work.join("r.json"))
        .arg("--keep-dir")
        .arg(work.join("evidence"))
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while sysctl_values() != [MARK_CS, MARK_CS] || crashlab::realcut::sys::loop_devices_under(&dir).is_empty() {
        // A campaign that ended at once says why (it once failed here only
        // as a timeout, its reason unread).
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the campaign ended ({status}) before it set the sysctls: {}", stderr_of(&mut child));
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the campaign never set the sysctls and started a trial");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    err
}

/// Run `signal_it` on a campaign under `expire:7` and check the sysctls
/// are what they were before; returns the exit status and stderr.
fn expire_campaign_ended_by(test: &str, signal_it: impl FnOnce(&Child, &Path)) -> Option<(Option<i32>, String)> {
    if !have_root(test) {
        return None;
    }
    let _one_at_a_time = SYSCTLS.lock().unwrap_or_else(|e| e.into_inner());
    let before = sysctl_values();
    assert_ne!(before, [MARK_CS, MARK_CS], "the mark must differ from the machine's values");
    let work = scratch();
    let mut child = start_expire_campaign(work.path());
    signal_it(&child, &work.path().join("images"));
    let status = child.wait().unwrap();
    let err = stderr_of(&mut child);
    assert_eq!(sysctl_values(), before, "{test}: the dirty-expiry sysctls were not restored; stderr: {err}");
    Some((status.code(), err))
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, sig) };
}

#[test]
fn ctrl_c_restores_the_dirty_expiry_sysctls() {
    let Some((code, err)) =
        expire_campaign_ended_by("ctrl_c_restores_the_dirty_expiry_sysctls", |c, _| signal(c, libc::SIGINT))
    else {
        return;
    };
    assert_eq!(code, Some(130), "{err}");
}

#[test]
fn sigterm_restores_the_dirty_expiry_sysctls() {
    let Some((code, err)) =
        expire_campaign_ended_by("sigterm_restores_the_dirty_expiry_sysctls", |c, _| signal(c, libc::SIGTERM))
    else {
        return;
    };
    assert_eq!(code, Some(130), "SIGTERM stops the campaign like Ctrl-C: {err}");
}

#[test]
fn a_sigkilled_worker_fails_the_campaign_and_the_sysctls_are_restored() {
    let Some((code, err)) =
        expire_campaign_ended_by("a_sigkilled_worker_fails_the_campaign_and_the_sysctls_are_restored", |_, dir| {
            let needle = dir.to_string_lossy().to_string();
            let workers: Vec<String> =
                processes_mentioning(&needle).into_iter().filter(|p| p.contains("__realcut-worker")).collect();
            assert!(!workers.is_empty(), "no realcut worker mentions {needle}");
            for w in workers {
                let pid: i32 = w.split(':').next().unwrap().parse().unwrap();
                // SAFETY: a process our child started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        })
    else {
        return;
    };
    assert_eq!(code, Some(2), "a dead worker is a harness failure: {err}");
    assert!(err.contains("realcut worker"), "the error names the worker: {err}");
}

#[test]
fn a_sigkilled_cli_leaves_its_saved_values_for_the_next_campaign_to_restore() {
    let test = "a_sigkilled_cli_leaves_its_saved_values_for_the_next_campaign_to_restore";
    if !have_root(test) {
        return;
    }
    let _one_at_a_time = SYSCTLS.lock().unwrap_or_else(|e| e.into_inner());
    let before = sysctl_values();
    let work = scratch();
    let mut child = start_expire_campaign(work.path());
    signal(&child, libc::SIGKILL);
    child.wait().unwrap();
    // No destructor ran: the values are still lowered, and saved.
    assert_eq!(sysctl_values(), [MARK_CS, MARK_CS]);
    let state = std::fs::read_to_string(crashlab::realcut::pressure::DEFAULT_SYSCTL_STATE).unwrap();
    assert!(state.contains(&format!("dirty_expire_centisecs {}", before[0])), "{state}");
    // Wait for the killed campaign's worker to go (its parent-death signal).
    let dir = work.path().join("images");
    let start = Instant::now();
    while !processes_mentioning(&dir.to_string_lossy()).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30), "the worker outlived its CLI by 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The next campaign, of any pressure, restores them first.
    let out = Command::new(env!("CARGO_BIN_EXE_crashlab"))
        .args(["soundness", "--fs", "ext4", "--trials", "1", "--seed", "1", "--jobs", "1", "--out"])
        .arg(work.path().join("next.json"))
        .arg("--keep-dir")
        .arg(work.path().join("evidence"))
        .arg("--dir")
        .arg(work.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("restored") && err.contains("as an interrupted campaign saved them"), "{err}");
    assert_eq!(sysctl_values(), before);
    assert_eq!(std::fs::read_to_string(crashlab::realcut::pressure::DEFAULT_SYSCTL_STATE).unwrap(), "");
}

fn rule(fs: &serde_json::Value, name: &str) -> (u64, u64) {
    let r = fs["coverage"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"] == name)
        .unwrap_or_else(|| panic!("no rule {name} in {}", fs["coverage"]));
    (r["chances"].as_u64().unwrap(), r["exercised"].as_u64().unwrap())
}

#[test]
fn a_pressured_campaign_shows_kept_unsynced_pages_and_counts_every_rule_on_ext4() {
    let test = "a_pressured_campaign_shows_kept_unsynced_pages_and_counts_every_rule_on_ext4";
    if !have_root(test) {
        return;
    }
    // The writer: shared/no-sync rewriting two pages (8 KiB) over 200
    // transactions, one writer per cut (the cut comes right after its
    // death), a syncfs every 1000 µs while it runs.
    //
    // How the count was chosen: measured on this machine kind, the cuts
    // kept an unsynced page in 115 of 297 ext4 post-cut files with a chance
    // (debug build, loaded machine) and in 93 of 598 (16%, unloaded); n cuts
    // all miss with probability (1-p)^n: 0.84^200 ≈ 7e-16.
    //
    // Intermediate versions are counted (the rule has its row and its
    // chances) but not required here: the built-in writers are so fast that
    // a syncfs rarely falls between two rewrites of a page and the cut (8 of
    // 297 files on a loaded machine, 0 of 593 on an idle one: timing, not a
    // rule). They are required of real cuts of a user's program whose
    // pages reach the disk at a version by the kernel's own rule
    // (`scenarios/tests/external_power_loss_real.rs`).
    let work = scratch();
    let dir = work.path().join("images");
    std::fs::create_dir_all(&dir).unwrap();
    let out_path = work.path().join("report.json");
    let out = Command::new(env!("CARGO_BIN_EXE_crashlab"))
        .args(["soundness", "--fs", "ext4", "--scenario", "shared/no-sync", "--size", "8192", "--txns", "200"])
        .args(["--writers-per-cut", "1", "--writeback", "syncfs:1000", "--seed", "16", "--trials", "200"])
        .args(["--jobs", "1", "--out"])
        .arg(&out_path)
        .arg("--keep-dir")
        .arg(work.path().join("evidence"))
        .arg("--dir")
        .arg(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out_path).unwrap()).unwrap();
    report_schema_validation::assert_valid_soundness_report(&report, test);
    assert_eq!(report["config"]["writeback"], "syncfs:1000");
    let ext4 = &report["filesystems"][0];
    assert_eq!(ext4["violations"], 0);
    let (chances, newer) = rule(ext4, "pages-newer-than-floor");
    assert!(chances > 0 && newer > 0, "no kept unsynced page in {chances} chances: {stdout}");
    let (chances, _) = rule(ext4, "intermediate-versions");
    assert!(chances > 0, "the intermediate-versions rule had no chance in a rewriting writer's cuts: {stdout}");
    assert!(stdout.contains("coverage:") && stdout.contains("intermediate-versions"), "{stdout}");
    assert!(crashlab::realcut::sys::leftovers(&dir).is_empty(), "the campaign left mounts or loop devices");
}
