//! One trial with a real power cut, as the realcut worker runs it
//! ([`super::worker`]).
//!
//! A trial: map the file (on the mounted filesystem), start the writer,
//! which executes the spec's ops marking the journal and SIGKILLs itself
//! before op `k`, exactly as the lab's child does; reap it; **cut the
//! power** (shutdown ioctl, or a raw copy of the device); read the file back
//! after the log replay; judge it against the simulated model; restore the
//! file's pages (`pwrite` + `fdatasync`, long after the cut) for the next
//! trial.
//!
//! Before a writer runs, its file's page cache is dropped and made again as
//! the request's [`PageCacheStart`] says (read back, or written whole), the
//! same for every trial: folio sizes decide what a ranged msync writes back.
//!
//! A **cut group** shares one cut among up to `writers_per_cut` trials: each
//! writer has a file of its own (slot `j` of the spec), runs and dies in
//! turn, and one cut, one remount and one reset serve them all. The cut
//! (unmount, mount, log replay) is most of a trial's cost, so grouping is
//! what makes real cuts cheap; what it changes for a writer is only that the
//! later writers of its group run, on their own files, between its death
//! and the cut (as any other process on a real machine might).
//!
//! The floors (the bare cut loop, the workload's ops without the harness)
//! are measured here too, with the same cut and read-back.
//!
//! Architecture Invariant: the harness syncs nothing between a writer's
//! death and the cut; the worker keeps each writer's descriptor and mapping
//! open until after the cut, so no last `close` (which can start writeback,
//! e.g. ext4's `auto_da_alloc`) comes before it either.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::crash::CrashPoint;
use crate::lab::child::{clone_writer, execute_op, wait_child, ChildPlan, ChildTarget, WriterStack};
use crate::lab::journal_region::JournalRegion;
use crate::payload::Payloads;
use crate::process_model::{ChildExit, TrialFacts};
use crate::realcut::campaign::PageCacheStart;
use crate::realcut::fs::LiveFs;
use crate::realcut::judge::judge;
use crate::realcut::pressure::{start_pressure, PressureGuard};
use crate::realcut::protocol::RealTrialRecord;
use crate::realcut::RealcutError;
use crate::spec::{MappingKind, WriterSpec};
use crate::vocab::CrashKind;
use crate::vocab::{CutMethod, Writeback};

/// Raw-copy cuts trim the live filesystem every this many trials.
pub(super) const TRIM_EVERY: u64 = 8;

/// A spec the worker was given: its payloads and its journal.
pub(super) struct SpecState {
    pub(super) key: u64,
    pub(super) spec: WriterSpec,
    pub(super) payloads: Payloads,
    pub(super) journal: JournalRegion,
}

impl SpecState {
    /// The file of the `slot`-th writer of a cut group.
    fn file_name(&self, slot: usize) -> String {
        format!("crashlab-{:016x}-{slot}.dat", self.key)
    }
}

/// Make the spec's file of `slot` at version 0 and durable (fsync of file
/// and directory), its page cache as `page_cache` says.
pub(super) fn create_file(
    fs: &LiveFs,
    st: &SpecState,
    slot: usize,
    page_cache: PageCacheStart,
) -> Result<(), RealcutError> {
    let path = fs.mount_point().join(st.file_name(slot));
    write_durable(&path, &st.payloads.base)?;
    File::open(fs.mount_point())
        .and_then(|d| d.sync_all())
        .map_err(RealcutError::sys(format!("cannot fsync {}", fs.mount_point().display())))?;
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .map_err(RealcutError::sys(format!("cannot open {}", path.display())))?;
    let base: &[u8] = &st.payloads.base;
    start_page_cache(&f, &path, page_cache, base, &mut vec![0u8; base.len()])
}

/// Make the page cache of `file` (open for reading and writing, clean, its
/// size `base.len()`) what `page_cache` says the writer starts from: drop
/// it, then read the file back (into `scratch`, `base.len()` bytes), or
/// write `base` over it whole and `fdatasync` it. Without this the first
/// cut group of each writer ran on the folios `create_file`'s write made
/// and every later one on folios a read made, which changed how often
/// unsynced pages survived with the number of writers per cut.
fn start_page_cache(
    file: &File,
    path: &Path,
    page_cache: PageCacheStart,
    base: &[u8],
    scratch: &mut [u8],
) -> Result<(), RealcutError> {
    // SAFETY: fadvise on a descriptor we own; the pages are clean (synced),
    // so DONTNEED drops them.
    let rc = unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    if rc != 0 {
        let e = std::io::Error::from_raw_os_error(rc);
        return Err(RealcutError::Sys { what: format!("posix_fadvise(DONTNEED) of {}", path.display()), source: e });
    }
    match page_cache {
        PageCacheStart::Read => {
            file.read_exact_at(scratch, 0).map_err(RealcutError::sys(format!("cannot read {}", path.display())))
        }
        PageCacheStart::Written => {
            file.write_all_at(base, 0).map_err(RealcutError::sys(format!("cannot rewrite {}", path.display())))?;
            file.sync_data().map_err(RealcutError::sys(format!("cannot fdatasync {}", path.display())))
        }
    }
}

fn write_durable(path: &Path, bytes: &[u8]) -> Result<(), RealcutError> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(RealcutError::sys(format!("cannot create {}", path.display())))?;
    f.write_all_at(bytes, 0).map_err(RealcutError::sys(format!("cannot write {}", path.display())))?;
    f.sync_all().map_err(RealcutError::sys(format!("cannot fsync {}", path.display())))
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
        if self.len > 0 {
            // SAFETY: unmapping exactly what `new` mapped (len 0: already
            // unmapped by the workload). munmap writes nothing back.
            unsafe { libc::munmap(self.ptr.cast(), self.len) };
        }
    }
}

fn last_err() -> std::io::Error {
    std::io::Error::last_os_error()
}

/// The writers of one cut group on one filesystem.
pub(super) struct CutGroup<'a> {
    pub(super) fs: &'a mut LiveFs,
    pub(super) st: &'a SpecState,
    pub(super) stack: &'a mut WriterStack,
    pub(super) cut: CutMethod,
    pub(super) watchdog_secs: u32,
    pub(super) inject_fault: bool,
    /// Pressure from before the first writer until the cut.
    pub(super) writeback: Writeback,
}

impl CutGroup<'_> {
    fn path(&self, slot: usize) -> PathBuf {
        self.fs.mount_point().join(self.st.file_name(slot))
    }

    /// Run the writers of `points` in turn (writer `j` on slot `j`), cut the
    /// power once, read every file back and judge it.
    pub(super) fn run(&mut self, points: &[CrashPoint]) -> Result<Vec<RealTrialRecord>, RealcutError> {
        let spec = &self.st.spec;
        if let Some(p) = points.iter().find(|p| !matches!(p, CrashPoint::BeforeOp(k) if *k <= spec.ops.len())) {
            return Err(RealcutError::Spec(format!(
                "real power cuts come at op boundaries (before:K, K ≤ {}), not `{p}`",
                spec.ops.len()
            )));
        }
        let started = Instant::now();
        // Started before the first writer, stopped at the cut (and on any
        // error, by its drop, before the worker may unmount).
        let mut pressure = start_pressure(self.writeback, self.fs.mount_point())?;
        // Each writer's descriptor and mapping stay open until after the cut.
        let mut held: Vec<(Mapping, File)> = Vec::with_capacity(points.len());
        let mut facts = Vec::with_capacity(points.len());
        for (slot, &point) in points.iter().enumerate() {
            let path = self.path(slot);
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(RealcutError::sys(format!("cannot open {}", path.display())))?;
            let map = Mapping::new(&file, spec.file_size as usize, spec.mapping, &path)?;
            self.st.journal.clear();
            let plan = ChildPlan {
                spec,
                payloads: &self.st.payloads,
                target: ChildTarget { map: map.ptr, fd: file.as_raw_fd(), size: map.len as u64 },
                journal: &self.st.journal,
                kind: CrashKind::Sigkill,
                point,
                handshake: None,
                watchdog_secs: self.watchdog_secs,
            };
            // SAFETY: the worker is single-threaded (checked at start-up);
            // the plan lives until the writer has died (clone_writer returns
            // then). The writer runs the lab's own op executor and SIGKILLs
            // itself at its boundary.
            let pid = unsafe { clone_writer(&plan, self.stack) }
                .map_err(|e| RealcutError::Sys { what: "clone of a writer failed".into(), source: e })?;
            let exit = reap(pid)?;
            let journal = self.st.journal.snapshot().map_err(RealcutError::Spec)?;
            // The writer shared our memory: a munmap it began is ours too.
            let unmapped = spec.ops.iter().enumerate().any(|(i, op)| {
                matches!(op, crate::spec::Op::Munmap) && (i < journal.completed || journal.in_flight == Some(i))
            });
            let mut map = map;
            if unmapped {
                map.len = 0;
            }
            facts.push(TrialFacts { kind: CrashKind::Sigkill, point, exit, journal, external_truncate: None });
            held.push((map, file));
        }
        let t_writers = started.elapsed();
        let names: Vec<String> = (0..points.len()).map(|slot| self.st.file_name(slot)).collect();
        let (inject_fault, size) = (self.inject_fault, spec.file_size);
        let observed =
            cut_and_read(self.fs, self.cut, held, &mut pressure, &names, |p| read_back(p, inject_fault, size))?;
        let group_ns = started.elapsed().as_nanos() as u64;
        if profile() {
            eprintln!(
                "realcut profile: {} writers {:?}, cut+read {:?}",
                points.len(),
                t_writers,
                started.elapsed() - t_writers
            );
        }
        let writers = points.len() as u64;
        facts
            .into_iter()
            .zip(observed)
            .map(|(facts, observed)| {
                let point = facts.point;
                let judgement = judge(spec, &self.st.payloads, &facts, &observed)
                    .map_err(|e| RealcutError::Spec(format!("the model cannot judge trial {point}: {e}")))?;
                Ok(RealTrialRecord {
                    fs: self.fs.kind(),
                    cut: self.cut,
                    facts,
                    judgement,
                    kept: None,
                    trial_ns: group_ns / writers,
                })
            })
            .collect()
    }

    /// Keep what a violation needs for inspection: the journal and facts,
    /// the file as read, the post-cut image.
    pub(super) fn keep_evidence(
        &mut self,
        dir: &Path,
        rec: &RealTrialRecord,
        slot: usize,
        group: &[CrashPoint],
    ) -> Result<PathBuf, RealcutError> {
        std::fs::create_dir_all(dir).map_err(RealcutError::sys(format!("cannot create {}", dir.display())))?;
        let evidence = serde_json::json!({
            "what": "a real power cut left a file the simulated power-loss model forbids",
            "kernel_release": crate::environment::kernel_release(),
            "fs": rec.fs,
            "cut": rec.cut,
            "cut_method": rec.cut.describe(),
            "device": self.fs.device().display().to_string(),
            "file": self.st.file_name(slot),
            "cut_group": {
                "writers": group.len(),
                "slot": slot,
                "points": group,
                "note": "the writers of one cut ran in slot order, each on its own file, before the one cut",
            },
            "facts": rec.facts,
            "judgement": rec.judgement,
            "spec": self.st.spec,
        });
        let json = serde_json::to_string_pretty(&evidence).expect("evidence serializes");
        std::fs::write(dir.join("trial.json"), json)
            .map_err(RealcutError::sys(format!("cannot write {}", dir.display())))?;
        // The file as the model judged it (read back through the mount).
        let observed = match self.cut {
            CutMethod::Shutdown => std::fs::read(self.path(slot)).ok(),
            CutMethod::RawCopy | CutMethod::VmSigkill => None,
        };
        if let Some(bytes) = observed {
            std::fs::write(dir.join("observed.bin"), bytes)
                .map_err(RealcutError::sys(format!("cannot write {}", dir.display())))?;
        }
        self.fs.save_image(self.cut, &dir.join(format!("post-cut-{}.img", rec.fs)))?;
        Ok(dir.to_owned())
    }

    /// Put version 0 back, durably, into the files of the first `slots`
    /// slots for the next group, each page cache as `page_cache` says
    /// ([`start_page_cache`]). Long after the cut. `read`: rewrite the pages
    /// that differ and `fdatasync` each changed file (data and size are what
    /// the model starts from; the first one commits the others' changes too),
    /// then drop and re-read the cache. `written`: the whole file is written
    /// and synced there anyway, so only its size is put back here.
    pub(super) fn reset(&mut self, slots: usize, page_cache: PageCacheStart) -> Result<(), RealcutError> {
        let base: &[u8] = &self.st.payloads.base;
        let page = self.st.spec.page_size as usize;
        let mut files = Vec::with_capacity(slots);
        let mut now = vec![0u8; base.len()];
        for slot in 0..slots {
            let path = self.path(slot);
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(RealcutError::sys(format!("cannot open {} to reset it", path.display())))?;
            let len = f.metadata().map_err(RealcutError::sys(format!("cannot stat {}", path.display())))?.len();
            let mut dirty = false;
            if len != base.len() as u64 {
                f.set_len(base.len() as u64).map_err(RealcutError::sys(format!("cannot resize {}", path.display())))?;
                dirty = true;
            }
            if page_cache == PageCacheStart::Read {
                let n = f.read_at(&mut now, 0).map_err(RealcutError::sys(format!("cannot read {}", path.display())))?;
                for start in (0..base.len()).step_by(page) {
                    let end = (start + page).min(base.len());
                    if end > n || now[start..end] != base[start..end] {
                        f.write_all_at(&base[start..end], start as u64)
                            .map_err(RealcutError::sys(format!("cannot reset {}", path.display())))?;
                        dirty = true;
                    }
                }
            }
            files.push((f, path, dirty));
        }
        if page_cache == PageCacheStart::Read {
            for (f, path, _) in files.iter().filter(|(_, _, dirty)| *dirty) {
                f.sync_data().map_err(RealcutError::sys(format!("cannot fdatasync {}", path.display())))?;
            }
        }
        for (f, path, _) in &files {
            start_page_cache(f, path, page_cache, base, &mut now)?;
        }
        Ok(())
    }
}

fn not_here() -> RealcutError {
    RealcutError::Spec("the vm-sigkill cut belongs to the vm backend, not to the realcut worker".into())
}

/// The power cut and what follows it, the same for trials and floors: cut
/// `fs` by `cut` before anything else touches it, then drop `held` (the
/// descriptors and mappings kept open through the cut), replay the log
/// (remount, or mount the raw copy) and read each of `names` from the
/// filesystem's root with `read`.
///
/// `pressure` is stopped at the cut: right after the shutdown ioctl (it
/// pushed writeback until the power went; its descriptor must be closed
/// before the unmount), or right before the raw copy (a copy taken while a
/// `syncfs` rewrites the device could mix blocks of before and after it:
/// no state a power cut leaves).
fn cut_and_read<H>(
    fs: &mut LiveFs,
    cut: CutMethod,
    held: H,
    pressure: &mut PressureGuard,
    names: &[String],
    read: impl Fn(&Path) -> Result<Vec<u8>, RealcutError>,
) -> Result<Vec<Vec<u8>>, RealcutError> {
    match cut {
        CutMethod::Shutdown => {
            fs.shutdown()?;
            pressure.stop()?;
            drop(held);
            fs.remount()?;
            names.iter().map(|n| read(&fs.mount_point().join(n))).collect()
        }
        CutMethod::RawCopy => {
            pressure.stop()?;
            fs.raw_copy()?;
            drop(held);
            let copy = fs.mount_copy()?;
            let files = names.iter().map(|n| read(&copy.path().join(n))).collect::<Result<Vec<_>, _>>();
            copy.release()?;
            files
        }
        CutMethod::VmSigkill => Err(not_here()),
    }
}

/// A file after the cut (`inject_fault`: corrupted first).
fn read_back(path: &Path, inject_fault: bool, size: u64) -> Result<Vec<u8>, RealcutError> {
    if inject_fault {
        corrupt(path, size)?;
    }
    read_plain(path)
}

fn read_plain(path: &Path) -> Result<Vec<u8>, RealcutError> {
    std::fs::read(path).map_err(RealcutError::sys(format!("cannot read {} after the cut", path.display())))
}

/// `CRASHLAB_REALCUT_PROFILE=1`: print where a trial's time goes, on stderr.
pub(super) fn profile() -> bool {
    std::env::var_os("CRASHLAB_REALCUT_PROFILE").is_some()
}

/// Testing aid: bytes no op writes, in the middle of the file, after the cut.
fn corrupt(path: &Path, size: u64) -> Result<(), RealcutError> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(RealcutError::sys(format!("cannot open {}", path.display())))?;
    f.write_all_at(&[0xA5; 64], size / 2).map_err(RealcutError::sys(format!("cannot corrupt {}", path.display())))
}

fn reap(pid: i32) -> Result<ChildExit, RealcutError> {
    wait_child(pid).map_err(|e| RealcutError::Sys { what: format!("waitpid {pid}"), source: e })
}

/// The benchmark floor: no fork, no journal, no model: one page written
/// through a fresh mapping and msync(MS_SYNC)ed, the cut, the file read back.
pub(super) fn floor(fs: &mut LiveFs, cut: CutMethod, size: u64, trials: u32) -> Result<u64, RealcutError> {
    let name = ["crashlab-floor.dat".to_string()];
    let path = fs.mount_point().join(&name[0]);
    write_durable(&path, &vec![0x5a; size as usize])?;
    let page = crate::page_size::page_size() as usize;
    let start = Instant::now();
    for i in 0..trials {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(RealcutError::sys(format!("cannot open {}", path.display())))?;
        let map = Mapping::new(&file, size as usize, MappingKind::Shared, &path)?;
        // SAFETY: one page inside our mapping.
        unsafe {
            std::ptr::write_bytes(map.ptr, (i % 251) as u8 + 1, page);
            if libc::msync(map.ptr.cast(), page, libc::MS_SYNC) != 0 {
                return Err(RealcutError::Sys { what: format!("msync of {}", path.display()), source: last_err() });
            }
        }
        let bytes = cut_and_read(fs, cut, (map, file), &mut PressureGuard::idle(), &name, read_plain)?.remove(0);
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

/// The workload floor: for each point `before:k`, the spec's first `k` ops
/// executed bare in this process on a file of its own (the same op code the
/// writer child runs), then the cut, the remount and the file read back. No
/// fork, no journal, no model, no reset (only the size is put back, so later
/// stores stay inside the file): the least a loop doing this workload's
/// writes and cuts must do.
pub(super) fn workload_floor(
    fs: &mut LiveFs,
    st: &SpecState,
    cut: CutMethod,
    points: &[CrashPoint],
) -> Result<u64, RealcutError> {
    let spec = &st.spec;
    let name = [format!("crashlab-{:016x}-workload-floor.dat", st.key)];
    let path = fs.mount_point().join(&name[0]);
    write_durable(&path, &st.payloads.base)?;
    let start = Instant::now();
    for (i, &point) in points.iter().enumerate() {
        let CrashPoint::BeforeOp(k) = point else {
            return Err(RealcutError::Spec(format!("workload floor: {point} is not an op boundary")));
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(RealcutError::sys(format!("cannot open {}", path.display())))?;
        if file.metadata().map_err(RealcutError::sys(format!("cannot stat {}", path.display())))?.len()
            != spec.file_size
        {
            file.set_len(spec.file_size).map_err(RealcutError::sys(format!("cannot resize {}", path.display())))?;
        }
        let mut map = Mapping::new(&file, spec.file_size as usize, spec.mapping, &path)?;
        let target = ChildTarget { map: map.ptr, fd: file.as_raw_fd(), size: map.len as u64 };
        for op in 0..k.min(spec.ops.len()) {
            // SAFETY: the spec was validated when prepared; after its
            // munmap nothing touches the mapping, and Drop skips it.
            if unsafe { execute_op(spec, &st.payloads, target, op) } != 0 {
                return Err(RealcutError::Sys {
                    what: format!("workload floor: op {op} ({:?}) on {}", spec.ops[op], path.display()),
                    source: last_err(),
                });
            }
            if matches!(spec.ops[op], crate::spec::Op::Munmap) {
                map.len = 0;
            }
        }
        std::hint::black_box(cut_and_read(fs, cut, (map, file), &mut PressureGuard::idle(), &name, read_plain)?);
        if cut == CutMethod::RawCopy && (i as u64 + 1) % TRIM_EVERY == 0 {
            fs.trim()?;
        }
    }
    Ok(start.elapsed().as_nanos() as u64)
}
