//! One built-in trial, in the worker: fork the writer, crash it as planned,
//! reap it, read the file back, judge it, put the file back.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::crash::CrashPoint;
use crate::lab::capacity_mount::CapacityMount;
use crate::lab::child::{run_child, wait_child, ChildPlan, ChildTarget, Handshake};
use crate::lab::journal_region::JournalRegion;
use crate::lab::protocol::TrialPlan;
use crate::lab::test_file::TestFile;
use crate::page_buffer::PageBuffer;
use crate::page_size::page_size;
use crate::payload::{BaseImage, Payloads};
use crate::power_loss;
use crate::process_model::{self, ChildExit, TrialFacts};
use crate::spec::{ByteRange, Op, WriterSpec};
use crate::trial_record::TrialRecord;
use crate::vocab::CrashKind;
use crate::LabError;

/// A worker's state for one spec: its file, mapping, journal and images.
pub struct PreparedSpec {
    pub spec: WriterSpec,
    pub payloads: Payloads,
    /// Dropped before `capacity`: the file lives on its tmpfs.
    file: TestFile,
    /// `enospc`: the tmpfs of an exact capacity the sparse file lives on,
    /// and the buffer it is read back into (never through a mapping).
    capacity: Option<(CapacityMount, PageBuffer)>,
    journal: JournalRegion,
    /// Median duration of a clean run, fork to reap.
    pub clean_ns: u64,
    pub watchdog_secs: u32,
}

impl PreparedSpec {
    /// Prepare `spec` over `base`: a pattern file at `path`, or (`Sparse`)
    /// a sparse file on a tmpfs of exact capacity mounted over `path` (the
    /// caller has entered [`crate::private_mount::enter_private_namespaces`]).
    pub fn new(spec: WriterSpec, path: &Path, base: BaseImage, watchdog_secs: u32) -> Result<PreparedSpec, LabError> {
        spec.validate().map_err(LabError::Spec)?;
        let page = page_size();
        if spec.page_size != page {
            return Err(LabError::Spec(format!(
                "the spec was generated for {}-byte pages, this machine has {page}",
                spec.page_size
            )));
        }
        let payloads = Payloads::try_build_on(&spec, base).map_err(LabError::Spec)?;
        let prepare = |e| LabError::io("cannot prepare the file under test", e);
        let (file, capacity) = match base {
            BaseImage::Pattern => (TestFile::create(path, &payloads.base, spec.mapping).map_err(prepare)?, None),
            BaseImage::Sparse => {
                let mount = CapacityMount::new(path)?;
                let file = TestFile::create_sparse(&mount.dir().join("data.dat"), spec.file_size, spec.mapping)
                    .map_err(prepare)?;
                let size = spec.file_size as usize;
                let buf = PageBuffer::try_zeroed(0, size)
                    .map_err(|e| LabError::io("cannot allocate the enospc read-back buffer", e))?;
                (file, Some((mount, buf)))
            }
        };
        let journal = JournalRegion::new(spec.ops.len()).map_err(|e| LabError::io("cannot map the journal", e))?;
        let mut p = PreparedSpec { spec, payloads, file, capacity, journal, clean_ns: 0, watchdog_secs };
        // Calibrate the clean duration (for time-based crash points) and
        // check, before any crash, that the writer runs cleanly here.
        let mut times = Vec::new();
        for _ in 0..3 {
            let start = Instant::now();
            let rec = p.run(CrashKind::Clean, CrashPoint::None)?;
            times.push(start.elapsed().as_nanos() as u64);
            if !rec.verdict.violations.is_empty() {
                return Err(LabError::Spec(format!(
                    "a clean run of the writer already breaks the model: {}",
                    rec.verdict.violations[0].detail
                )));
            }
        }
        times.sort_unstable();
        p.clean_ns = times[1];
        Ok(p)
    }

    pub fn file_path(&self) -> &Path {
        self.file.path()
    }

    /// Run one trial as planned: the crash, the process-crash verdict, and
    /// the power-loss analysis of the same instant if asked.
    pub fn run_plan(&mut self, plan: &TrialPlan) -> Result<TrialRecord, LabError> {
        let mut record = self.run(plan.kind, plan.point)?;
        if let Some(pl) = plan.power_loss {
            let outcome = power_loss::try_analyze(&self.spec, &self.payloads, &record.facts, &pl.config, pl.seed)
                .map_err(|e| LabError::Spec(format!("power-loss analysis at {}: {e}", plan.point)))?;
            record.power_loss = Some(outcome);
        }
        Ok(record)
    }

    /// Run one trial and leave the file as it was before.
    pub fn run(&mut self, kind: CrashKind, point: CrashPoint) -> Result<TrialRecord, LabError> {
        point.fits(kind, &self.spec).map_err(LabError::Spec)?;
        if (kind == CrashKind::Enospc) != self.capacity.is_some() && kind != CrashKind::Clean {
            return Err(LabError::Spec(format!(
                "a {kind} trial on a writer prepared over a {} base image",
                if self.capacity.is_some() { "sparse" } else { "pattern" }
            )));
        }
        if let Some((mount, _)) = &self.capacity {
            // A clean run (the calibration) has room for the whole file.
            let pages = match point {
                CrashPoint::Capacity { pages } => pages,
                _ => self.spec.page_count(),
            };
            mount.set_free_pages(pages)?;
        }
        self.journal.clear();
        let pipes = if kind == CrashKind::Sigbus { Some((pipe()?, pipe()?)) } else { None };
        let handshake = pipes.map(|((_, c2p_w), (p2c_r, _))| Handshake { to_parent: c2p_w, from_parent: p2c_r });
        let started = Instant::now();
        // SAFETY: the worker is single-threaded (checked at start-up), so the
        // child may run ordinary code; it ends in `_exit` or a signal.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(LabError::io("fork failed", std::io::Error::last_os_error()));
        }
        if pid == 0 {
            let plan = ChildPlan {
                spec: &self.spec,
                payloads: &self.payloads,
                target: ChildTarget::of(&self.file),
                journal: &self.journal,
                kind,
                point,
                handshake,
                watchdog_secs: self.watchdog_secs,
            };
            run_child(&plan);
        }
        let mut external_truncate = None;
        match point {
            CrashPoint::TruncateBefore { op, len } => {
                let ((c2p_r, c2p_w), (p2c_r, p2c_w)) = pipes.expect("sigbus trials have pipes");
                close(c2p_w);
                close(p2c_r);
                let mut b = [0u8];
                // SAFETY: one-byte reads/writes on our own pipe ends. EOF means
                // the child died before reaching the op.
                if unsafe { libc::read(c2p_r, b.as_mut_ptr().cast(), 1) } == 1 {
                    self.file.truncate(len).map_err(|e| LabError::io("cannot truncate the test file", e))?;
                    external_truncate = Some((op, len));
                    unsafe { libc::write(p2c_w, b.as_ptr().cast(), 1) };
                }
                close(c2p_r);
                close(p2c_w);
            }
            CrashPoint::InsideStore { op, delay_ns } => {
                let limit = Duration::from_secs(self.watchdog_secs as u64);
                if spin_until_started(pid, started, limit, || self.journal.load(op) != crate::journal::PENDING) {
                    wait_until(pid, Instant::now(), Duration::from_nanos(delay_ns));
                }
                kill(pid);
            }
            CrashPoint::AtTime { permille } => {
                let target = Duration::from_nanos(self.clean_ns * permille as u64 / 1000);
                wait_until(pid, started, target);
                kill(pid);
            }
            CrashPoint::BeforeOp(_) | CrashPoint::Capacity { .. } | CrashPoint::None => {}
        }
        let exit = reap(pid)?;
        let journal = self.journal.snapshot().map_err(LabError::Journal)?;
        let facts = TrialFacts { kind, point, exit, journal, external_truncate };
        let read_back = |e| LabError::io("cannot read the test file back", e);
        if let Some((_, buf)) = &mut self.capacity {
            self.file.read_back(buf).map_err(read_back)?;
            let verdict = process_model::verify(&self.spec, &self.payloads, &facts, buf);
            self.file.punch_all().map_err(|e| LabError::io("cannot reset the sparse test file", e))?;
            return Ok(TrialRecord { facts, verdict, power_loss: None });
        }
        let view = self.file.view().map_err(read_back)?;
        let verdict = process_model::verify(&self.spec, &self.payloads, &facts, &view);
        let observed_len = view.len() as u64;
        drop(view);
        self.reset_after(&facts, !verdict.violations.is_empty() || observed_len != self.spec.file_size)?;
        Ok(TrialRecord { facts, verdict, power_loss: None })
    }

    /// Undo the trial: rewrite the ranges its ops may have touched.
    fn reset_after(&mut self, facts: &TrialFacts, everything: bool) -> Result<(), LabError> {
        let size = self.spec.file_size;
        let reached = (facts.journal.completed + 1).min(self.spec.ops.len());
        let mut shortest = facts.external_truncate.map_or(size, |(_, l)| l);
        let mut ranges: Vec<ByteRange> = Vec::new();
        for op in &self.spec.ops[..reached] {
            match *op {
                Op::Store { .. } => ranges.push(op.store_range().unwrap()),
                Op::Truncate { len } => shortest = shortest.min(len),
                _ => {}
            }
        }
        if everything {
            ranges = vec![ByteRange::new(0, size)];
        }
        self.file
            .reset(&self.payloads.base, &ranges, shortest)
            .map_err(|e| LabError::io("cannot reset the test file", e))
    }
}

fn pipe() -> Result<(i32, i32), LabError> {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(LabError::io("cannot create a pipe", std::io::Error::last_os_error()));
    }
    Ok((fds[0], fds[1]))
}

fn close(fd: i32) {
    // SAFETY: closing a descriptor we own.
    unsafe { libc::close(fd) };
}

fn kill(pid: i32) {
    // SAFETY: the child is unreaped, so the pid cannot have been reused.
    unsafe { libc::kill(pid, libc::SIGKILL) };
}

/// Has the child exited (without reaping it)?
fn exited(pid: i32) -> bool {
    // SAFETY: waitid with WNOWAIT only peeks.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT)
    };
    rc == 0 && unsafe { info.si_pid() } != 0
}

/// Busy-wait until `started()`, the child exits, or `limit` passes. A crash
/// inside a store must land microseconds after it began, so no sleeping.
fn spin_until_started(pid: i32, from: Instant, limit: Duration, started: impl Fn() -> bool) -> bool {
    let mut n = 0u32;
    loop {
        if started() {
            return true;
        }
        n = n.wrapping_add(1);
        if n % 1024 == 0 && (exited(pid) || from.elapsed() >= limit) {
            return started();
        }
        std::hint::spin_loop();
    }
}

/// Wait until `delay` after `from` (or the child's exit): sleep through the
/// bulk of it, spin the last stretch for precision.
fn wait_until(pid: i32, from: Instant, delay: Duration) {
    let mut n = 0u32;
    loop {
        let elapsed = from.elapsed();
        if elapsed >= delay {
            return;
        }
        let left = delay - elapsed;
        if left > Duration::from_micros(300) {
            std::thread::sleep(left - Duration::from_micros(200));
            if exited(pid) {
                return;
            }
        } else {
            n = n.wrapping_add(1);
            if n % 1024 == 0 && exited(pid) {
                return;
            }
            std::hint::spin_loop();
        }
    }
}

fn reap(pid: i32) -> Result<ChildExit, LabError> {
    wait_child(pid).map_err(|e| LabError::io("waitpid failed", e))
}
