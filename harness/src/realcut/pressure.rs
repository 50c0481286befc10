//! Writeback pressure during real cuts ([`Writeback`]), the effects: the
//! `syncfs` helper process of one cut, and the campaign-wide dirty-expiry
//! sysctls with their restoration.
//!
//! Two scopes, two owners:
//! - [`start_pressure`] (per cut, in the process that runs the writers,
//!   e.g. the realcut worker): `syncfs:US` starts `crashlab __syncfs-pressure
//!   PATH US` by fork+exec (`std::process::Command`, nothing of ours runs
//!   between fork and exec but one `prctl`) and waits for its first
//!   `syncfs`; the returned [`PressureGuard`] kills and reaps it. The caller
//!   starts it before the first writer and stops it at the cut, and in any
//!   case before an unmount (the helper holds a descriptor of the
//!   filesystem). The helper dies with its parent (`PR_SET_PDEATHSIG`), so
//!   a SIGKILLed worker leaves no helper behind.
//! - [`campaign_pressure`] (per campaign, in the CLI, never in a worker a
//!   test or watchdog may SIGKILL): `expire:CS` sets
//!   `vm.dirty_expire_centisecs` and `vm.dirty_writeback_centisecs` and the
//!   returned [`SysctlGuard`] restores them on drop: normal exit, errors,
//!   panics, and Ctrl-C/SIGTERM (the CLI's handler only sets the cancel flag;
//!   the campaign returns and the guard drops). Only a SIGKILL of the CLI
//!   itself skips the drop: for that the saved values are first written to
//!   a state file ([`DEFAULT_SYSCTL_STATE`], under `/run`, a tmpfs emptied at
//!   boot, when the sysctls are back to their boot values anyway) and the
//!   next campaign (any `--writeback`) restores them. The file is `flock`ed
//!   while a campaign holds the sysctls: a second pressured campaign is
//!   refused instead of saving the first one's lowered values as originals.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::realcut::RealcutError;
use crate::vocab::writeback::Writeback;

/// The hidden subcommand of the `syncfs` helper.
pub const SYNCFS_HELPER: &str = "__syncfs-pressure";

/// The sysctls `expire:CS` sets, in the order they are set (restored in
/// reverse).
pub const EXPIRY_SYSCTLS: [&str; 2] = ["/proc/sys/vm/dirty_expire_centisecs", "/proc/sys/vm/dirty_writeback_centisecs"];

/// Where the values saved by a [`SysctlGuard`] wait to be restored.
pub const DEFAULT_SYSCTL_STATE: &str = "/run/crashlab/writeback-sysctls";

/// The per-cut pressure of [`start_pressure`]; stops it on drop.
#[derive(Debug)]
pub struct PressureGuard {
    helper: Option<Child>,
}

impl PressureGuard {
    /// No pressure to stop (`none`, or `expire:CS`, which is campaign-wide).
    pub fn idle() -> PressureGuard {
        PressureGuard { helper: None }
    }

    /// Is a helper running?
    pub fn is_active(&self) -> bool {
        self.helper.is_some()
    }

    /// Stop the helper and reap it: after this it holds no descriptor of
    /// the filesystem. Idempotent.
    pub fn stop(&mut self) -> Result<(), RealcutError> {
        if let Some(mut child) = self.helper.take() {
            // SIGKILL: the helper needs no cleanup; a syncfs in progress
            // finishes in the kernel first (it sleeps uninterruptibly).
            let _ = child.kill();
            child.wait().map_err(RealcutError::sys(format!("waitpid of the syncfs helper {}", child.id())))?;
        }
        Ok(())
    }
}

impl Drop for PressureGuard {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("crashlab: {e}");
        }
    }
}

/// Start the per-cut pressure of `writeback` on the filesystem mounted at
/// `mount_dir`: for `syncfs:US` a helper process calling `syncfs(2)` on it
/// every US µs, running when this returns (its first `syncfs` done); for
/// `none` and `expire:CS` nothing ([`campaign_pressure`] sets the expiry).
/// The calling process must be the `crashlab` binary (the CLI or a realcut
/// worker): the helper is `current_exe() __syncfs-pressure`. The helper
/// dies with the thread that started it.
pub fn start_pressure(writeback: Writeback, mount_dir: &Path) -> Result<PressureGuard, RealcutError> {
    let Writeback::Syncfs { every_us } = writeback else {
        return Ok(PressureGuard::idle());
    };
    let exe = std::env::current_exe().map_err(RealcutError::sys("cannot find the crashlab executable"))?;
    start_syncfs_helper(&exe, mount_dir, every_us)
}

/// [`start_pressure`]'s `syncfs` helper from the binary `exe`.
pub fn start_syncfs_helper(exe: &Path, mount_dir: &Path, every_us: u32) -> Result<PressureGuard, RealcutError> {
    let command = format!("{} {SYNCFS_HELPER} {} {every_us}", exe.display(), mount_dir.display());
    let mut cmd = Command::new(exe);
    cmd.arg(SYNCFS_HELPER).arg(mount_dir).arg(every_us.to_string());
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork
    // and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(RealcutError::sys(format!("cannot start `{command}`")))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let mut guard = PressureGuard { helper: Some(child) };
    // The handshake: the helper prints `ready` after its first syncfs.
    if read_ready(stdout) {
        return Ok(guard);
    }
    let mut child = guard.helper.take().expect("the helper was just started");
    let _ = child.kill();
    let status = child.wait().map_or_else(|e| e.to_string(), |s| s.to_string());
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    Err(RealcutError::Command {
        command,
        detail: format!("ended before its first syncfs ({status}): {}", stderr.trim()),
    })
}

fn read_ready(stdout: ChildStdout) -> bool {
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).is_ok() && line.trim_end() == "ready"
}

/// Entry point of `crashlab __syncfs-pressure PATH US`: `syncfs(2)` on PATH
/// every US µs until killed; `ready` on stdout after the first. Returns the
/// exit code (2: bad arguments or the first syncfs failed). Errors after
/// the first are expected (the filesystem was shut down by the cut) and do
/// not stop it: its parent kills it.
pub fn syncfs_pressure_main(args: impl IntoIterator<Item = std::ffi::OsString>) -> i32 {
    let args: Vec<_> = args.into_iter().collect();
    let usage = "usage: crashlab __syncfs-pressure PATH MICROSECONDS";
    let (path, every_us) = match args.as_slice() {
        [p, us] => match us.to_str().and_then(|u| u.parse::<u32>().ok()) {
            Some(us) => (PathBuf::from(p), us),
            None => {
                eprintln!(
                    "crashlab {SYNCFS_HELPER}: `{}` is not a number of microseconds; {usage}",
                    us.to_string_lossy()
                );
                return 2;
            }
        },
        _ => {
            eprintln!("crashlab {SYNCFS_HELPER}: {usage}");
            return 2;
        }
    };
    let dir = match File::open(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("crashlab {SYNCFS_HELPER}: cannot open {}: {e}", path.display());
            return 2;
        }
    };
    let fd = dir.as_raw_fd();
    // SAFETY: syncfs on a descriptor we own.
    if unsafe { libc::syncfs(fd) } != 0 {
        eprintln!("crashlab {SYNCFS_HELPER}: syncfs of {}: {}", path.display(), std::io::Error::last_os_error());
        return 2;
    }
    let mut out = std::io::stdout().lock();
    if writeln!(out, "ready").and_then(|_| out.flush()).is_err() {
        return 2;
    }
    let pause = libc::timespec {
        tv_sec: (every_us / 1_000_000) as libc::time_t,
        tv_nsec: (every_us % 1_000_000) as i64 * 1000,
    };
    loop {
        // SAFETY: plain system calls on our descriptor and a local timespec.
        unsafe {
            libc::nanosleep(&pause, std::ptr::null_mut());
            libc::syncfs(fd);
        }
    }
}

/// Values of the expiry sysctls, as read from `/proc/sys` (in the order of
/// [`EXPIRY_SYSCTLS`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiryValues(pub Vec<(PathBuf, String)>);

impl ExpiryValues {
    /// The current values of `paths`.
    pub fn read(paths: &[PathBuf]) -> Result<ExpiryValues, RealcutError> {
        let values = paths
            .iter()
            .map(|p| {
                let v =
                    std::fs::read_to_string(p).map_err(RealcutError::sys(format!("cannot read {}", p.display())))?;
                Ok((p.clone(), v.trim().to_string()))
            })
            .collect::<Result<_, RealcutError>>()?;
        Ok(ExpiryValues(values))
    }

    /// Write every value back, the last first; every one is tried.
    pub fn write(&self) -> Result<(), RealcutError> {
        let mut first = None;
        for (p, v) in self.0.iter().rev() {
            if let Err(e) = std::fs::write(p, format!("{v}\n")) {
                first.get_or_insert(RealcutError::Sys {
                    what: format!("cannot restore {} to {v}", p.display()),
                    source: e,
                });
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// `PATH VALUE` lines (the state file's content).
    fn to_text(&self) -> String {
        self.0.iter().map(|(p, v)| format!("{} {v}\n", p.display())).collect()
    }

    fn parse(text: &str, state: &Path) -> Result<ExpiryValues, RealcutError> {
        let values = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (p, v) = l.rsplit_once(' ').ok_or_else(|| {
                    RealcutError::Spec(format!("{}: unreadable line `{l}` (expected PATH VALUE)", state.display()))
                })?;
                // Only the two sysctls' names are ever written back.
                let name = Path::new(p).file_name().and_then(|n| n.to_str()).unwrap_or("");
                let known = EXPIRY_SYSCTLS.iter().any(|s| s.ends_with(&format!("/{name}")));
                if name.is_empty() || !known || v.parse::<u64>().is_err() {
                    return Err(RealcutError::Spec(format!(
                        "{}: line `{l}` is not a saved vm sysctl; remove the file after checking the values",
                        state.display()
                    )));
                }
                Ok((PathBuf::from(p), v.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(ExpiryValues(values))
    }
}

/// The longest a campaign setting the sysctls waits for the state file's
/// lock while its holder has saved nothing there: such a holder is a look
/// for a dead campaign's values that found the file empty, or a campaign
/// between taking the lock and saving (each holds it for microseconds). A
/// holder that has saved values is a live campaign: no wait, a refusal.
const BRIEF_HOLD: Duration = Duration::from_secs(5);

/// Is the state file at `path` empty (or absent): nothing saved in it?
fn nothing_saved(path: &Path) -> bool {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().is_empty(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// The state file of [`SysctlGuard`], locked.
struct StateFile {
    file: File,
    path: PathBuf,
}

impl StateFile {
    /// Open (create) and lock `path`. `Ok(None)`: another process holds it.
    fn lock(path: &Path) -> Result<Option<StateFile>, RealcutError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(RealcutError::sys(format!("cannot create {}", parent.display())))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(RealcutError::sys(format!("cannot open {}", path.display())))?;
        // SAFETY: flock on a descriptor we own; released when it closes
        // (also when the process dies).
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                return Ok(None);
            }
            return Err(RealcutError::Sys { what: format!("cannot lock {}", path.display()), source: e });
        }
        Ok(Some(StateFile { file, path: path.to_owned() }))
    }

    /// [`StateFile::lock`] for a campaign about to set the sysctls: a
    /// holder that saved nothing is waited out ([`BRIEF_HOLD`]); one that
    /// saved values holds the sysctls (`Ok(None)`). Without the wait, a
    /// campaign starting while another looked for leftovers was refused
    /// (once in CI, `realcut_pressure`).
    fn lock_for_campaign(path: &Path) -> Result<Option<StateFile>, RealcutError> {
        let start = Instant::now();
        loop {
            if let Some(f) = StateFile::lock(path)? {
                return Ok(Some(f));
            }
            if !nothing_saved(path) || start.elapsed() >= BRIEF_HOLD {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Values a process that died holding the sysctls saved, if any.
    fn leftover(&mut self) -> Result<Option<ExpiryValues>, RealcutError> {
        let mut text = String::new();
        self.file
            .seek(SeekFrom::Start(0))
            .and_then(|_| self.file.read_to_string(&mut text))
            .map_err(RealcutError::sys(format!("cannot read {}", self.path.display())))?;
        if text.trim().is_empty() {
            return Ok(None);
        }
        ExpiryValues::parse(&text, &self.path).map(Some)
    }

    /// Replace the content with `text`, durably (it must outlive a crash of
    /// this process, not of the machine: /run is a tmpfs).
    fn save(&mut self, text: &str) -> Result<(), RealcutError> {
        let what = format!("cannot write {}", self.path.display());
        self.file.set_len(0).map_err(RealcutError::sys(what.clone()))?;
        self.file.seek(SeekFrom::Start(0)).map_err(RealcutError::sys(what.clone()))?;
        self.file.write_all(text.as_bytes()).and_then(|_| self.file.sync_all()).map_err(RealcutError::sys(what))
    }
}

/// Restore the expiry sysctls a campaign that died (SIGKILL of its CLI)
/// left lowered, as its state file at `state` says. Returns what it
/// restored; `None` when nothing was left or another campaign holds them.
pub fn restore_leftover_sysctls(state: &Path) -> Result<Option<ExpiryValues>, RealcutError> {
    // Nothing saved, nothing to restore: no lock taken, so that this look
    // never holds up a campaign taking the lock to set the sysctls.
    if nothing_saved(state) {
        return Ok(None);
    }
    let Some(mut f) = StateFile::lock(state)? else { return Ok(None) };
    let Some(saved) = f.leftover()? else { return Ok(None) };
    saved.write()?;
    f.save("")?;
    Ok(Some(saved))
}

/// `vm.dirty_expire_centisecs` and `vm.dirty_writeback_centisecs` lowered
/// for a campaign; restored on drop (or by [`SysctlGuard::restore`], which
/// reports failure).
pub struct SysctlGuard {
    saved: Option<ExpiryValues>,
    state: StateFile,
}

impl SysctlGuard {
    /// Set both expiry sysctls to `centisecs`, having saved their values in
    /// the state file [`DEFAULT_SYSCTL_STATE`] (leftovers of a dead
    /// campaign are restored first, so they are what is saved).
    pub fn set(centisecs: u32) -> Result<SysctlGuard, RealcutError> {
        let paths: Vec<PathBuf> = EXPIRY_SYSCTLS.iter().map(PathBuf::from).collect();
        SysctlGuard::set_paths(centisecs, &paths, Path::new(DEFAULT_SYSCTL_STATE))
    }

    /// [`SysctlGuard::set`] on other files (tests use plain files).
    pub fn set_paths(centisecs: u32, paths: &[PathBuf], state: &Path) -> Result<SysctlGuard, RealcutError> {
        let Some(mut state_file) = StateFile::lock_for_campaign(state)? else {
            return Err(RealcutError::Unavailable(format!(
                "--writeback expire:{centisecs}: another crashlab campaign holds the dirty-expiry sysctls (lock {}); \
                 wait for it or use --writeback syncfs:US",
                state.display()
            )));
        };
        if let Some(left) = state_file.leftover()? {
            left.write()?;
            eprintln!(
                "crashlab: restored {} as an interrupted campaign saved them in {}",
                left.0.iter().map(|(p, v)| format!("{}={v}", p.display())).collect::<Vec<_>>().join(", "),
                state.display()
            );
        }
        let saved = ExpiryValues::read(paths)?;
        state_file.save(&saved.to_text())?;
        let guard = SysctlGuard { saved: Some(saved), state: state_file };
        for p in paths {
            std::fs::write(p, format!("{centisecs}\n"))
                .map_err(RealcutError::sys(format!("--writeback expire:{centisecs}: cannot write {}", p.display())))?;
        }
        // (On an error above, dropping `guard` restores what was saved.)
        Ok(guard)
    }

    /// The values that will be restored.
    pub fn saved(&self) -> Option<&ExpiryValues> {
        self.saved.as_ref()
    }

    /// Restore the saved values and clear the state file.
    pub fn restore(mut self) -> Result<(), RealcutError> {
        self.restore_now()
    }

    /// What a SIGKILL does: the descriptor (and its lock) closes, nothing
    /// is restored.
    #[cfg(test)]
    fn die(mut self) {
        self.saved = None;
    }

    fn restore_now(&mut self) -> Result<(), RealcutError> {
        if let Some(saved) = self.saved.take() {
            saved.write()?;
            self.state.save("")?;
        }
        Ok(())
    }
}

impl Drop for SysctlGuard {
    fn drop(&mut self) {
        if let Err(e) = self.restore_now() {
            eprintln!("crashlab: {e}; the saved values stay in {} for the next campaign", self.state.path.display());
        }
    }
}

/// The campaign-wide part of `writeback`: the lowered expiry for
/// `expire:CS` (root). Every mode first restores what a dead campaign left
/// lowered ([`restore_leftover_sysctls`]).
pub fn campaign_pressure(writeback: Writeback) -> Result<Option<SysctlGuard>, RealcutError> {
    match writeback {
        Writeback::Expire { centisecs } => {
            if !crate::realcut::sys::is_root() {
                return Err(RealcutError::NeedsRoot);
            }
            Ok(Some(SysctlGuard::set(centisecs)?))
        }
        Writeback::None | Writeback::Syncfs { .. } => {
            if crate::realcut::sys::is_root() {
                if let Some(v) = restore_leftover_sysctls(Path::new(DEFAULT_SYSCTL_STATE))? {
                    eprintln!(
                        "crashlab: restored {} as an interrupted campaign saved them in {DEFAULT_SYSCTL_STATE}",
                        v.0.iter().map(|(p, v)| format!("{}={v}", p.display())).collect::<Vec<_>>().join(", ")
                    );
                }
            }
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_sysctls(dir: &Path) -> Vec<PathBuf> {
        let paths = vec![dir.join("dirty_expire_centisecs"), dir.join("dirty_writeback_centisecs")];
        std::fs::write(&paths[0], "3000\n").unwrap();
        std::fs::write(&paths[1], "500\n").unwrap();
        paths
    }

    fn values(paths: &[PathBuf]) -> Vec<String> {
        paths.iter().map(|p| std::fs::read_to_string(p).unwrap().trim().to_string()).collect()
    }

    #[test]
    fn a_sysctl_guard_sets_both_values_and_restores_them_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let paths = fake_sysctls(dir.path());
        let state = dir.path().join("state");
        let g = SysctlGuard::set_paths(7, &paths, &state).unwrap();
        assert_eq!(values(&paths), ["7", "7"]);
        assert!(std::fs::read_to_string(&state).unwrap().contains("dirty_expire_centisecs 3000"));
        drop(g);
        assert_eq!(values(&paths), ["3000", "500"]);
        assert_eq!(std::fs::read_to_string(&state).unwrap(), "", "nothing left to restore");
    }

    #[test]
    fn a_second_guard_is_refused_while_the_first_holds_the_sysctls() {
        let dir = tempfile::tempdir().unwrap();
        let paths = fake_sysctls(dir.path());
        let state = dir.path().join("state");
        let g = SysctlGuard::set_paths(7, &paths, &state).unwrap();
        let e = SysctlGuard::set_paths(9, &paths, &state).err().unwrap().to_string();
        assert!(e.contains("another crashlab campaign") && e.contains("expire:9"), "{e}");
        assert_eq!(restore_leftover_sysctls(&state).unwrap(), None, "a live campaign's values are not touched");
        assert_eq!(values(&paths), ["7", "7"]);
        g.restore().unwrap();
        assert_eq!(values(&paths), ["3000", "500"]);
    }

    /// A campaign that looks for a dead campaign's values (every root
    /// campaign does, at its start) never makes one that is setting the
    /// sysctls fail: here one thread looks as fast as it can while the
    /// other sets and restores them 200 times. Without the fix the look
    /// held the lock for nothing and the setting was refused.
    #[test]
    fn looking_for_leftovers_never_refuses_a_campaign_setting_the_sysctls() {
        let dir = tempfile::tempdir().unwrap();
        let paths = fake_sysctls(dir.path());
        let state = dir.path().join("state");
        std::fs::write(&state, "").unwrap();
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let mut looks = 0u64;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    assert_eq!(restore_leftover_sysctls(&state).unwrap(), None, "nothing was left");
                    looks += 1;
                }
                assert!(looks > 0);
            });
            // The looker stops however this ends (a panic here included:
            // the scope waits for it).
            struct Stop<'a>(&'a std::sync::atomic::AtomicBool);
            impl Drop for Stop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
            let _stop = Stop(&done);
            for i in 0..200 {
                let g = SysctlGuard::set_paths(7, &paths, &state)
                    .unwrap_or_else(|e| panic!("setting {i} was refused: {e}"));
                g.restore().unwrap();
            }
        });
        assert_eq!(values(&paths), ["3000", "500"]);
    }

    #[test]
    fn values_a_dead_campaign_saved_are_restored_by_the_next_one() {
        let dir = tempfile::tempdir().unwrap();
        let paths = fake_sysctls(dir.path());
        let state = dir.path().join("state");
        let g = SysctlGuard::set_paths(7, &paths, &state).unwrap();
        // A SIGKILL: nothing is restored; the lock goes with the descriptor.
        g.die();
        assert_eq!(values(&paths), ["7", "7"]);
        let restored = restore_leftover_sysctls(&state).unwrap().unwrap();
        assert_eq!(restored.0.len(), 2);
        assert_eq!(values(&paths), ["3000", "500"]);
        // And a new guard saves the real originals, not the lowered ones.
        std::fs::write(&paths[0], "1\n").unwrap();
        std::fs::write(&state, format!("{} 3000\n{} 500\n", paths[0].display(), paths[1].display())).unwrap();
        let g = SysctlGuard::set_paths(5, &paths, &state).unwrap();
        assert_eq!(g.saved().unwrap().0[0].1, "3000");
        drop(g);
        assert_eq!(values(&paths), ["3000", "500"]);
    }

    #[test]
    fn a_state_file_that_is_not_saved_sysctls_is_refused_not_written_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::write(&state, "/etc/passwd 0\n").unwrap();
        let e = restore_leftover_sysctls(&state).unwrap_err().to_string();
        assert!(e.contains("not a saved vm sysctl"), "{e}");
    }

    #[test]
    fn no_pressure_and_expiry_start_no_helper() {
        assert!(!start_pressure(Writeback::None, Path::new("/")).unwrap().is_active());
        assert!(!start_pressure(Writeback::Expire { centisecs: 1 }, Path::new("/")).unwrap().is_active());
    }

    #[test]
    fn a_helper_that_cannot_start_its_pressure_is_an_error_naming_the_command() {
        let e = start_syncfs_helper(Path::new("/bin/false"), Path::new("/"), 300).unwrap_err().to_string();
        assert!(e.contains("/bin/false __syncfs-pressure / 300") && e.contains("before its first syncfs"), "{e}");
    }
}
