//! One real power cut of a namespace workload, as the realcut worker runs
//! it ([`super::worker`]): a fresh directory on the mounted filesystem
//! (made durable: `mkdir`, fsync of its parent), the workload's setup, its
//! first `K` measured steps, the cut (the same as the page writers':
//! `FS_IOC_SHUTDOWN(NOLOGFLUSH)` then unmount and mount, or an `O_DIRECT`
//! copy of the device mounted on its own), the directory read back (names,
//! kinds, sizes, inode numbers, each page classified by
//! [`classify_page`]), judged by [`judge_namespace`]; then, long after the
//! cut, the directory removed from the live filesystem.
//!
//! The steps run in the worker itself, one syscall each: no writer process
//! dies, which changes nothing a cut sees, because the worker keeps every
//! descriptor and mapping the steps opened until after the cut (as it does
//! for the page writers): no last `close` (ext4's `auto_da_alloc`) and no
//! `munmap` comes between the last step and the cut. Only a `close` step
//! (`reuse-name`, which needs the inode freed) closes before it.
//!
//! One workload per cut, never a group: a sync of one workload commits the
//! others' pending operations too on a journalling filesystem (ext4 has one
//! running transaction), which would make their "lost" or "kept" mean
//! nothing.
//!
//! Architecture Invariant: the harness syncs nothing between the last step
//! and the cut.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::fs::LiveFs;
use super::ns_judge::{judge_namespace, ObservedDir, ObservedEntry, ObservedKind};
use super::ns_workload::{classify_page, page_content, trace_of, NsFile, NsStep, NsWorkloadId};
use super::protocol::NsCutRecord;
use super::RealcutError;
use crate::crash::CrashPoint;
use crate::vocab::CutMethod;

/// A `MAP_SHARED` mapping; unmapped on drop (munmap writes nothing back).
struct Map {
    ptr: *mut u8,
    len: usize,
}

impl Map {
    fn new(file: &File, len: usize, what: &Path) -> Result<Map, RealcutError> {
        // SAFETY: mapping a file we hold open; unmapped in Drop.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(RealcutError::Sys {
                what: format!("cannot mmap {}", what.display()),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(Map { ptr: p.cast(), len })
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: exactly what `new` mapped.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// A workload file's descriptor and its mappings (the newest last), open
/// until the cut unless a `close` step closes them.
struct Open {
    file: File,
    path: PathBuf,
    size: u64,
    maps: Vec<Map>,
}

/// The descriptors and mappings of one cut's steps.
#[derive(Default)]
struct Held {
    open: BTreeMap<NsFile, Open>,
    inos: Vec<(NsFile, u64)>,
}

fn fsync_dir(dir: &Path) -> Result<(), RealcutError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(RealcutError::sys(format!("cannot fsync {}", dir.display())))
}

impl Held {
    fn get(&mut self, file: NsFile) -> Result<&mut Open, RealcutError> {
        self.open.get_mut(&file).ok_or_else(|| RealcutError::Spec(format!("step on file {file}, which is not open")))
    }

    /// Run one step in `dir`.
    fn step(&mut self, dir: &Path, step: &NsStep, page: u64) -> Result<(), RealcutError> {
        let pages = |first: u64, count: u64| (first * page) as usize..((first + count) * page) as usize;
        match step {
            NsStep::Create { name, file } => {
                let path = dir.join(name);
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create_new(true)
                    .mode(0o644)
                    .open(&path)
                    .map_err(RealcutError::sys(format!("cannot create {}", path.display())))?;
                let ino = f.metadata().map_err(RealcutError::sys(format!("cannot stat {}", path.display())))?.ino();
                self.inos.push((*file, ino));
                self.open.insert(*file, Open { file: f, path, size: 0, maps: Vec::new() });
            }
            NsStep::Truncate { file, pages: n } => {
                let o = self.get(*file)?;
                o.file
                    .set_len(n * page)
                    .map_err(RealcutError::sys(format!("cannot ftruncate {}", o.path.display())))?;
                o.size = n * page;
            }
            NsStep::Write { file, first, count } => {
                let o = self.get(*file)?;
                for p in *first..first + count {
                    o.file
                        .write_all_at(&page_content(*file, p, page as usize), p * page)
                        .map_err(RealcutError::sys(format!("cannot write {}", o.path.display())))?;
                }
            }
            NsStep::Store { file, first, count } => {
                let o = self.get(*file)?;
                if o.maps.last().is_none_or(|m| (m.len as u64) < o.size) {
                    o.maps.push(Map::new(&o.file, o.size as usize, &o.path)?);
                }
                let m = o.maps.last().expect("mapped");
                let range = pages(*first, *count);
                assert!(range.end <= m.len, "a store inside the mapping");
                for p in *first..first + count {
                    let bytes = page_content(*file, p, page as usize);
                    // SAFETY: page p lies inside the mapping (checked above).
                    unsafe {
                        std::ptr::copy_nonoverlapping(bytes.as_ptr(), m.ptr.add((p * page) as usize), bytes.len())
                    };
                }
            }
            NsStep::Fsync { file } => {
                let o = self.get(*file)?;
                o.file.sync_all().map_err(RealcutError::sys(format!("cannot fsync {}", o.path.display())))?;
            }
            NsStep::Msync { file, first, count } => {
                let o = self.get(*file)?;
                let m = o.maps.last().ok_or_else(|| RealcutError::Spec("msync before any store".into()))?;
                let range = pages(*first, *count);
                // SAFETY: a page-aligned range inside our mapping.
                if unsafe { libc::msync(m.ptr.add(range.start).cast(), range.len(), libc::MS_SYNC) } != 0 {
                    return Err(RealcutError::Sys {
                        what: format!("msync(MS_SYNC) of {}", o.path.display()),
                        source: std::io::Error::last_os_error(),
                    });
                }
            }
            NsStep::FsyncDir => fsync_dir(dir)?,
            NsStep::Rename { from, to } => std::fs::rename(dir.join(from), dir.join(to))
                .map_err(RealcutError::sys(format!("cannot rename {from} to {to} in {}", dir.display())))?,
            NsStep::Unlink { name } => std::fs::remove_file(dir.join(name))
                .map_err(RealcutError::sys(format!("cannot unlink {name} in {}", dir.display())))?,
            NsStep::Close { file } => {
                self.open.remove(file);
            }
        }
        Ok(())
    }
}

/// Read the workload's directory `dir` after the cut.
fn read_dir(dir: &Path, page: u64) -> Result<ObservedDir, RealcutError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ObservedDir { present: false, entries: Vec::new() })
        }
        Err(e) => {
            return Err(RealcutError::Sys { what: format!("cannot list {} after the cut", dir.display()), source: e })
        }
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(RealcutError::sys(format!("cannot list {} after the cut", dir.display())))?;
        let path = e.path();
        let md =
            std::fs::symlink_metadata(&path).map_err(RealcutError::sys(format!("cannot stat {}", path.display())))?;
        let name = e.file_name().to_string_lossy().into_owned();
        let (kind, pages) = if md.file_type().is_file() {
            let bytes = std::fs::read(&path).map_err(RealcutError::sys(format!("cannot read {}", path.display())))?;
            let pages = bytes
                .chunks(page as usize)
                .enumerate()
                .map(|(i, b)| classify_page(b, i as u64, page as usize))
                .collect();
            (ObservedKind::Regular, pages)
        } else if md.file_type().is_dir() {
            (ObservedKind::Directory, Vec::new())
        } else {
            (ObservedKind::Other, Vec::new())
        };
        out.push(ObservedEntry { name, kind, size: md.len(), ino: md.ino(), pages });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ObservedDir { present: true, entries: out })
}

/// Testing aid: a file no step made, with bytes no file writes.
fn inject(dir: &Path) -> Result<(), RealcutError> {
    std::fs::write(dir.join("intruder"), [0xA5u8; 64])
        .map_err(RealcutError::sys(format!("cannot inject a fault into {}", dir.display())))
}

/// One namespace cut of `workload` at `point` in the directory `name` of
/// the mounted filesystem.
pub(super) struct NsCut<'a> {
    pub(super) fs: &'a mut LiveFs,
    pub(super) cut: CutMethod,
    pub(super) workload: NsWorkloadId,
    pub(super) point: CrashPoint,
    pub(super) name: String,
    pub(super) inject_fault: bool,
}

impl NsCut<'_> {
    /// Run it: setup, steps, cut, read back, judge. The directory stays on
    /// the live filesystem for [`NsCut::keep_evidence`]; [`NsCut::clean`]
    /// removes it.
    pub(super) fn run(&mut self) -> Result<NsCutRecord, RealcutError> {
        let script = self.workload.script();
        let CrashPoint::BeforeOp(k) = self.point else {
            return Err(RealcutError::Spec(format!("namespace cuts come at step boundaries, not `{}`", self.point)));
        };
        if k > script.steps.len() {
            return Err(RealcutError::Spec(format!(
                "{}: before:{k} is past its last step boundary before:{}",
                self.workload,
                script.steps.len()
            )));
        }
        let page = crate::page_size::page_size();
        let started = Instant::now();
        let root = self.fs.mount_point().to_owned();
        let dir = root.join(&self.name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(RealcutError::sys(format!("cannot remove {}", dir.display())))?;
        }
        std::fs::create_dir(&dir).map_err(RealcutError::sys(format!("cannot create {}", dir.display())))?;
        fsync_dir(&root)?;
        let mut held = Held::default();
        for step in script.setup.iter().chain(&script.steps[..k]) {
            held.step(&dir, step, page)?;
        }
        let inos = std::mem::take(&mut held.inos);
        // The cut: nothing between the last step and here syncs anything.
        let observed = match self.cut {
            CutMethod::Shutdown => {
                self.fs.shutdown()?;
                drop(held);
                self.fs.remount()?;
                if self.inject_fault {
                    inject(&dir)?;
                }
                read_dir(&dir, page)?
            }
            CutMethod::RawCopy => {
                self.fs.raw_copy()?;
                drop(held);
                let copy = self.fs.mount_copy()?;
                let copied = copy.path().join(&self.name);
                let read =
                    if self.inject_fault { inject(&copied) } else { Ok(()) }.and_then(|()| read_dir(&copied, page));
                copy.release()?;
                read?
            }
            CutMethod::VmSigkill => {
                return Err(RealcutError::Spec("the vm-sigkill cut belongs to the vm backend".into()));
            }
        };
        let cut_ns = started.elapsed().as_nanos() as u64;
        let input = trace_of(&script, k, &inos.iter().copied().collect());
        let judgement = judge_namespace(&input, &observed).map_err(|e| {
            RealcutError::Spec(format!("the namespace model cannot judge {} at {}: {e}", self.workload, self.point))
        })?;
        Ok(NsCutRecord {
            fs: self.fs.kind(),
            cut: self.cut,
            workload: self.workload,
            point: self.point,
            judgement,
            inos,
            kept: None,
            cut_ns,
            observed: Some(observed),
        })
    }

    /// Keep what a violation needs for inspection: the steps, the trace and
    /// content the model was built from, the directory as read, the
    /// judgement, the post-cut image.
    pub(super) fn keep_evidence(&mut self, dest: &Path, rec: &NsCutRecord) -> Result<PathBuf, RealcutError> {
        std::fs::create_dir_all(dest).map_err(RealcutError::sys(format!("cannot create {}", dest.display())))?;
        let script = self.workload.script();
        let k = match self.point {
            CrashPoint::BeforeOp(k) => k,
            _ => script.steps.len(),
        };
        let input = trace_of(&script, k, &rec.inos.iter().copied().collect());
        let evidence = serde_json::json!({
            "what": "a real power cut left a directory the namespace model (posix) forbids",
            "kernel_release": crate::environment::kernel_release(),
            "fs": rec.fs,
            "cut": rec.cut,
            "cut_method": rec.cut.describe(),
            "device": self.fs.device().display().to_string(),
            "directory": self.name,
            "workload": rec.workload,
            "point": rec.point,
            "script": script,
            "trace": input.trace,
            "content": input.content,
            "inos": rec.inos,
            "observed": rec.observed,
            "judgement": rec.judgement,
        });
        let json = serde_json::to_string_pretty(&evidence).expect("evidence serializes");
        std::fs::write(dest.join("cut.json"), json)
            .map_err(RealcutError::sys(format!("cannot write {}", dest.display())))?;
        self.fs.save_image(self.cut, &dest.join(format!("post-cut-{}.img", rec.fs)))?;
        Ok(dest.to_owned())
    }

    /// Remove the workload's directory from the live filesystem (long after
    /// the cut; the next cut's fsync of the root commits it).
    pub(super) fn clean(&self) -> Result<(), RealcutError> {
        let dir = self.fs.mount_point().join(&self.name);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RealcutError::Sys { what: format!("cannot remove {}", dir.display()), source: e }),
        }
    }
}
