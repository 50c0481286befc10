//! The realcut worker (`crashlab __realcut-worker`): real power cuts on
//! loop-mounted filesystems. Like the lab's worker it is single-threaded
//! (checked), started by fork+exec, and alone forks writer children; it
//! speaks [`RealRequest`]/[`RealResponse`] JSON lines on stdin/stdout.
//!
//! A trial: map the file (on the mounted filesystem), fork the writer, which
//! executes the spec's ops marking the journal and SIGKILLs itself before op
//! `k`, exactly as the lab's child does; reap it; **cut the power** at once
//! (shutdown ioctl, or a raw copy of the device); read the file back after
//! the log replay; judge it against the simulated model; restore the file's
//! pages (`pwrite` + `fsync`, long after the cut) for the next trial.
//!
//! Cleanup: every loop device and mount is an RAII guard held by the
//! session, released when stdin closes (the harness stopped, Ctrl-C
//! included: SIGINT is ignored here), on errors and on panics. By default
//! the worker also lives in a private mount namespace with autoclear loop
//! devices, so even a SIGKILL leaves nothing mounted or attached.
//!
//! Architecture Invariant: nothing syncs between the writer's death and the
//! cut.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, Write};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::crash::{CrashKind, CrashPoint};
use crate::lab::child::{run_child, wait_child, ChildPlan, ChildTarget};
use crate::lab::journal_region::JournalRegion;
use crate::payload::Payloads;
use crate::process_model::{ChildExit, TrialFacts};
use crate::realcut::fs::{CutMethod, FsKind, LiveFs};
use crate::realcut::judge::judge;
use crate::realcut::protocol::{RealRequest, RealResponse, RealTrialRecord};
use crate::realcut::sys::{is_root, private_mount_namespace};
use crate::realcut::RealcutError;
use crate::spec::{MappingKind, WriterSpec};

pub struct RealcutWorkerArgs {
    /// Where the filesystem images and mount points go (a fresh directory
    /// the campaign made and removes).
    pub dir: PathBuf,
    pub id: u32,
    pub watchdog_secs: u32,
    /// Mount in the caller's mount namespace (visible in /proc/mounts; the
    /// cleanup tests use it) instead of a private one.
    pub host_mounts: bool,
}

struct SpecState {
    key: u64,
    spec: WriterSpec,
    payloads: Payloads,
    journal: JournalRegion,
}

impl SpecState {
    fn file_name(&self) -> String {
        format!("crashlab-{:016x}.dat", self.key)
    }
}

/// Everything the worker holds; dropping it unmounts and detaches all.
struct Session {
    fses: Vec<LiveFs>,
    specs: Vec<SpecState>,
    /// (spec key, filesystem) pairs whose file exists, durable, at version 0.
    files: HashSet<(u64, FsKind)>,
    kept: u32,
    trials: u64,
}

/// Raw-copy cuts trim the live filesystem every this many trials.
const TRIM_EVERY: u64 = 8;

/// Entry point of `crashlab __realcut-worker --dir D --id N --watchdog S
/// [--host-mounts]`. Returns the exit code.
pub fn realcut_worker_main(args: impl IntoIterator<Item = OsString>) -> i32 {
    let mut dir = None;
    let (mut id, mut watchdog, mut host_mounts) = (0u32, 60u32, false);
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        let mut value = || it.next().and_then(|v| v.into_string().ok());
        match a.to_str() {
            Some("--dir") => dir = value().map(PathBuf::from),
            Some("--id") => id = value().and_then(|v| v.parse().ok()).unwrap_or(0),
            Some("--watchdog") => watchdog = value().and_then(|v| v.parse().ok()).unwrap_or(60),
            Some("--host-mounts") => host_mounts = true,
            _ => {}
        }
    }
    let Some(dir) = dir else {
        eprintln!("crashlab realcut worker: --dir is required (started by `crashlab soundness`, not by hand)");
        return 2;
    };
    let args = RealcutWorkerArgs { dir, id, watchdog_secs: watchdog, host_mounts };
    let stdin = std::io::stdin().lock();
    let stdout = std::io::BufWriter::new(std::io::stdout().lock());
    match serve(&args, stdin, stdout) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("crashlab realcut worker {id}: {e}");
            2
        }
    }
}

/// Serve requests until stdin closes, then unmount and detach everything.
pub fn serve(args: &RealcutWorkerArgs, input: impl BufRead, mut output: impl Write) -> Result<(), RealcutError> {
    let threads = crate::lab::worker::thread_count();
    if threads != Some(1) {
        return Err(RealcutError::Spec(format!(
            "the realcut worker must be single-threaded to fork safely, but has {threads:?} threads"
        )));
    }
    if !is_root() {
        return Err(RealcutError::NeedsRoot);
    }
    // SAFETY: ignoring a signal; setrlimit with a valid struct.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        let zero = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        libc::setrlimit(libc::RLIMIT_CORE, &zero);
    }
    if !args.host_mounts {
        private_mount_namespace()?;
    }
    let mut session = Session { fses: Vec::new(), specs: Vec::new(), files: HashSet::new(), kept: 0, trials: 0 };
    for line in input.lines() {
        let line = line.map_err(|e| RealcutError::Sys { what: "cannot read requests".into(), source: e })?;
        if line.trim().is_empty() {
            continue;
        }
        let response = match serde_json::from_str::<RealRequest>(&line) {
            Err(e) => RealResponse::Error { message: format!("bad request: {e}") },
            Ok(req) => {
                handle(args, &mut session, req).unwrap_or_else(|e| RealResponse::Error { message: e.to_string() })
            }
        };
        serde_json::to_writer(&mut output, &response).expect("responses serialize");
        output
            .write_all(b"\n")
            .and_then(|_| output.flush())
            .map_err(|e| RealcutError::Sys { what: "cannot answer".into(), source: e })?;
    }
    // Orderly release, reporting what could not be undone.
    let mut first_err = None;
    for fs in session.fses.drain(..) {
        if let Err(e) = fs.release() {
            eprintln!("crashlab realcut worker {}: {e}", args.id);
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

fn handle(args: &RealcutWorkerArgs, s: &mut Session, req: RealRequest) -> Result<RealResponse, RealcutError> {
    match req {
        RealRequest::Prepare { key, spec } => {
            if !s.specs.iter().any(|p| p.key == key) {
                spec.validate().map_err(RealcutError::Spec)?;
                let page = crate::lab::trial::page_size();
                if spec.page_size != page {
                    return Err(RealcutError::Spec(format!(
                        "the spec was made for {}-byte pages, this machine has {page}",
                        spec.page_size
                    )));
                }
                let payloads = Payloads::build(&spec);
                let journal = JournalRegion::new(spec.ops.len())
                    .map_err(|e| RealcutError::Sys { what: "cannot map the journal".into(), source: e })?;
                s.specs.push(SpecState { key, spec, payloads, journal });
            }
            Ok(RealResponse::Prepared { key })
        }
        RealRequest::Run { key, fs, cut, points, keep_dir, inject_fault } => {
            if !fs.supports(cut) {
                return Err(RealcutError::Spec(format!("{fs} has no {cut} cut (no FS_IOC_SHUTDOWN); use raw-copy")));
            }
            let fi = live_fs(args, s, fs)?;
            let si = s
                .specs
                .iter()
                .position(|p| p.key == key)
                .ok_or_else(|| RealcutError::Spec(format!("spec {key:016x} was not prepared")))?;
            let mut records = Vec::with_capacity(points.len());
            for point in points {
                let r = (|| {
                    if s.files.insert((key, fs)) {
                        create_file(&s.fses[fi], &s.specs[si])?;
                    }
                    let mut trial = Trial {
                        fs: &mut s.fses[fi],
                        st: &s.specs[si],
                        cut,
                        watchdog_secs: args.watchdog_secs,
                        inject_fault,
                    };
                    let mut rec = trial.run(point)?;
                    if rec.judgement.is_violation() || rec.judgement.judge_mismatch.is_some() {
                        s.kept += 1;
                        let dir = keep_dir.join(format!("{fs}-w{}-{}-{}", args.id, s.kept, point));
                        rec.kept = Some(trial.keep_evidence(&dir, &rec)?);
                    }
                    let t = Instant::now();
                    trial.reset()?;
                    s.trials += 1;
                    if cut == CutMethod::RawCopy && s.trials % TRIM_EVERY == 0 {
                        // Copy-on-write filesystems write somewhere new each
                        // time: keep the backing file (what is copied) small.
                        trial.fs.trim()?;
                    }
                    if profile() {
                        eprintln!("realcut profile: reset {:?}", t.elapsed());
                    }
                    Ok(rec)
                })();
                match r {
                    Ok(rec) => records.push(rec),
                    Err(e) => {
                        // The filesystem may be shut down or unmounted: drop
                        // it (unmount, detach); the next request makes a new one.
                        let broken = s.fses.remove(fi);
                        s.files.retain(|(_, f)| *f != fs);
                        drop(broken);
                        return Err(e);
                    }
                }
            }
            Ok(RealResponse::Ran { records })
        }
        RealRequest::Floor { fs, cut, size, trials } => {
            if !fs.supports(cut) {
                return Err(RealcutError::Spec(format!("{fs} has no {cut} cut")));
            }
            let fi = live_fs(args, s, fs)?;
            match floor(&mut s.fses[fi], cut, size, trials) {
                Ok(nanos) => Ok(RealResponse::Floor { trials, nanos }),
                Err(e) => {
                    s.fses.remove(fi);
                    s.files.retain(|(_, f)| *f != fs);
                    Err(e)
                }
            }
        }
    }
}

/// The index of the session's filesystem `kind`, made on first use.
fn live_fs(args: &RealcutWorkerArgs, s: &mut Session, kind: FsKind) -> Result<usize, RealcutError> {
    if let Some(i) = s.fses.iter().position(|f| f.kind() == kind) {
        return Ok(i);
    }
    let fs = LiveFs::create(kind, &args.dir.join(format!("w{}-{kind}", args.id)))?;
    s.fses.push(fs);
    Ok(s.fses.len() - 1)
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> RealcutError {
    move |source| RealcutError::Sys { what, source }
}

/// Make the spec's file at version 0 and durable (fsync of file and directory).
fn create_file(fs: &LiveFs, st: &SpecState) -> Result<(), RealcutError> {
    let path = fs.mount_point().join(st.file_name());
    write_durable(&path, &st.payloads.base)?;
    File::open(fs.mount_point())
        .and_then(|d| d.sync_all())
        .map_err(io_err(format!("cannot fsync {}", fs.mount_point().display())))
}

fn write_durable(path: &Path, bytes: &[u8]) -> Result<(), RealcutError> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io_err(format!("cannot create {}", path.display())))?;
    f.write_all_at(bytes, 0).map_err(io_err(format!("cannot write {}", path.display())))?;
    f.sync_all().map_err(io_err(format!("cannot fsync {}", path.display())))
}

/// A shared or private mapping of the file under test; unmapped on drop.
struct Mapping {
    ptr: *mut u8,
    len: usize,
}

impl Mapping {
    fn new(file: &File, len: usize, mapping: MappingKind, path: &Path) -> Result<Mapping, RealcutError> {
        let flags = match mapping {
            MappingKind::Shared => libc::MAP_SHARED,
            MappingKind::Private => libc::MAP_PRIVATE,
        };
        // SAFETY: mapping a file we hold open; unmapped in Drop.
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, file.as_raw_fd(), 0)
        };
        if p == libc::MAP_FAILED {
            return Err(RealcutError::Sys { what: format!("cannot mmap {}", path.display()), source: last_err() });
        }
        Ok(Mapping { ptr: p.cast(), len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `new` mapped. munmap writes nothing back.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

fn last_err() -> std::io::Error {
    std::io::Error::last_os_error()
}

struct Trial<'a> {
    fs: &'a mut LiveFs,
    st: &'a SpecState,
    cut: CutMethod,
    watchdog_secs: u32,
    inject_fault: bool,
}

impl Trial<'_> {
    fn path(&self) -> PathBuf {
        self.fs.mount_point().join(self.st.file_name())
    }

    fn run(&mut self, point: CrashPoint) -> Result<RealTrialRecord, RealcutError> {
        let spec = &self.st.spec;
        if !matches!(point, CrashPoint::BeforeOp(k) if k <= spec.ops.len()) {
            return Err(RealcutError::Spec(format!(
                "real power cuts come at op boundaries (before:K, K ≤ {}), not `{point}`",
                spec.ops.len()
            )));
        }
        let path = self.path();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(format!("cannot open {}", path.display())))?;
        let map = Mapping::new(&file, spec.file_size as usize, spec.mapping, &path)?;
        self.st.journal.clear();
        let started = Instant::now();
        // SAFETY: the worker is single-threaded (checked at start-up); the
        // child runs the ops and ends in `_exit` or a signal.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(RealcutError::Sys { what: "fork failed".into(), source: last_err() });
        }
        if pid == 0 {
            // The lab's own child: the same op executor, SIGKILL at a boundary.
            run_child(&ChildPlan {
                spec,
                payloads: &self.st.payloads,
                target: ChildTarget { map: map.ptr, fd: file.as_raw_fd(), size: map.len as u64 },
                journal: &self.st.journal,
                kind: CrashKind::Sigkill,
                point,
                handshake: None,
                watchdog_secs: self.watchdog_secs,
            });
        }
        let exit = reap(pid)?;
        let t_writer = started.elapsed();
        let journal = self.st.journal.snapshot().map_err(RealcutError::Spec)?;
        // The power cut, before anything else touches the filesystem.
        let observed = match self.cut {
            CutMethod::Shutdown => {
                self.fs.shutdown()?;
                drop(map);
                drop(file);
                self.fs.remount()?;
                if self.inject_fault {
                    corrupt(&path, spec.file_size)?;
                }
                std::fs::read(&path).map_err(io_err(format!("cannot read {} after the cut", path.display())))?
            }
            CutMethod::RawCopy => {
                self.fs.raw_copy()?;
                drop(map);
                drop(file);
                let copy = self.fs.mount_copy()?;
                let p = copy.path().join(self.st.file_name());
                if self.inject_fault {
                    corrupt(&p, spec.file_size)?;
                }
                let bytes = std::fs::read(&p).map_err(io_err(format!("cannot read {} after the cut", p.display())))?;
                copy.release()?;
                bytes
            }
            CutMethod::VmSigkill => return Err(not_here()),
        };
        let trial_ns = started.elapsed().as_nanos() as u64;
        if profile() {
            eprintln!("realcut profile: writer {:?}, cut+read {:?}", t_writer, started.elapsed() - t_writer);
        }
        let facts = TrialFacts { kind: CrashKind::Sigkill, point, exit, journal, external_truncate: None };
        let judgement = judge(spec, &self.st.payloads, &facts, &observed)
            .map_err(|e| RealcutError::Spec(format!("the model cannot judge trial {point}: {e}")))?;
        Ok(RealTrialRecord { fs: self.fs.kind(), cut: self.cut, facts, judgement, kept: None, trial_ns })
    }

    /// Keep what a violation needs for inspection: the journal and facts,
    /// the file as read, the post-cut image.
    fn keep_evidence(&mut self, dir: &Path, rec: &RealTrialRecord) -> Result<PathBuf, RealcutError> {
        std::fs::create_dir_all(dir).map_err(io_err(format!("cannot create {}", dir.display())))?;
        let evidence = serde_json::json!({
            "what": "a real power cut left a file the simulated power-loss model forbids",
            "kernel_release": crate::environment::kernel_release(),
            "fs": rec.fs,
            "cut": rec.cut,
            "cut_method": rec.cut.describe(),
            "device": self.fs.device().display().to_string(),
            "file": self.st.file_name(),
            "facts": rec.facts,
            "judgement": rec.judgement,
            "spec": self.st.spec,
        });
        let json = serde_json::to_string_pretty(&evidence).expect("evidence serializes");
        std::fs::write(dir.join("trial.json"), json).map_err(io_err(format!("cannot write {}", dir.display())))?;
        // The file as the model judged it (read back through the mount).
        let observed = match self.cut {
            CutMethod::Shutdown => std::fs::read(self.path()).ok(),
            CutMethod::RawCopy | CutMethod::VmSigkill => None,
        };
        if let Some(bytes) = observed {
            std::fs::write(dir.join("observed.bin"), bytes)
                .map_err(io_err(format!("cannot write {}", dir.display())))?;
        }
        self.fs.save_image(self.cut, &dir.join(format!("post-cut-{}.img", rec.fs)))?;
        Ok(dir.to_owned())
    }

    /// Put version 0 back, durably, for the next trial: rewrite the pages
    /// that differ, then fsync. (Long after the cut: the trial is over.)
    fn reset(&mut self) -> Result<(), RealcutError> {
        let path = self.path();
        let base: &[u8] = &self.st.payloads.base;
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(format!("cannot open {} to reset it", path.display())))?;
        let len = f.metadata().map_err(io_err(format!("cannot stat {}", path.display())))?.len();
        let mut changed = false;
        if len != base.len() as u64 {
            f.set_len(base.len() as u64).map_err(io_err(format!("cannot resize {}", path.display())))?;
            changed = true;
        }
        let mut now = vec![0u8; base.len()];
        let n = f.read_at(&mut now, 0).map_err(io_err(format!("cannot read {}", path.display())))?;
        let page = self.st.spec.page_size as usize;
        for start in (0..base.len()).step_by(page) {
            let end = (start + page).min(base.len());
            if end > n || now[start..end] != base[start..end] {
                f.write_all_at(&base[start..end], start as u64)
                    .map_err(io_err(format!("cannot reset {}", path.display())))?;
                changed = true;
            }
        }
        if changed {
            f.sync_all().map_err(io_err(format!("cannot fsync {}", path.display())))?;
        }
        Ok(())
    }
}

fn not_here() -> RealcutError {
    RealcutError::Spec("the vm-sigkill cut belongs to the vm backend, not to the realcut worker".into())
}

/// `CRASHLAB_REALCUT_PROFILE=1`: print where a trial's time goes, on stderr.
fn profile() -> bool {
    std::env::var_os("CRASHLAB_REALCUT_PROFILE").is_some()
}

/// Testing aid: bytes no op writes, in the middle of the file, after the cut.
fn corrupt(path: &Path, size: u64) -> Result<(), RealcutError> {
    let f = OpenOptions::new().write(true).open(path).map_err(io_err(format!("cannot open {}", path.display())))?;
    f.write_all_at(&[0xA5; 64], size / 2).map_err(io_err(format!("cannot corrupt {}", path.display())))
}

fn reap(pid: i32) -> Result<ChildExit, RealcutError> {
    wait_child(pid).map_err(|e| RealcutError::Sys { what: format!("waitpid {pid}"), source: e })
}

/// The benchmark floor: no fork, no journal, no model: one page written
/// through a fresh mapping and msync(MS_SYNC)ed, the cut, the file read back.
fn floor(fs: &mut LiveFs, cut: CutMethod, size: u64, trials: u32) -> Result<u64, RealcutError> {
    let path = fs.mount_point().join("crashlab-floor.dat");
    write_durable(&path, &vec![0x5a; size as usize])?;
    let page = crate::lab::trial::page_size() as usize;
    let start = Instant::now();
    for i in 0..trials {
        {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(io_err(format!("cannot open {}", path.display())))?;
            let map = Mapping::new(&file, size as usize, MappingKind::Shared, &path)?;
            // SAFETY: one page inside our mapping.
            unsafe {
                std::ptr::write_bytes(map.ptr, (i % 251) as u8 + 1, page);
                if libc::msync(map.ptr.cast(), page, libc::MS_SYNC) != 0 {
                    return Err(RealcutError::Sys { what: format!("msync of {}", path.display()), source: last_err() });
                }
            }
            if cut == CutMethod::Shutdown {
                fs.shutdown()?;
            } else {
                fs.raw_copy()?;
            }
        }
        let bytes = match cut {
            CutMethod::Shutdown => {
                fs.remount()?;
                std::fs::read(&path).map_err(io_err(format!("cannot read {}", path.display())))?
            }
            CutMethod::RawCopy => {
                let copy = fs.mount_copy()?;
                let b = std::fs::read(copy.path().join("crashlab-floor.dat"))
                    .map_err(io_err(format!("cannot read the copy of {}", path.display())))?;
                copy.release()?;
                b
            }
            CutMethod::VmSigkill => return Err(not_here()),
        };
        if cut == CutMethod::RawCopy && (i as u64 + 1) % TRIM_EVERY == 0 {
            fs.trim()?;
        }
        if bytes.len() != size as usize || bytes[0] != (i % 251) as u8 + 1 {
            return Err(RealcutError::Spec(format!(
                "floor: the MS_SYNCed page of {} did not survive the cut on {}",
                path.display(),
                fs.kind()
            )));
        }
    }
    Ok(start.elapsed().as_nanos() as u64)
}
