//! The `vm` backend: a real guest kernel under qemu (TCG), killed. No root.
//!
//! The guest: a Debian cloud kernel (unpacked by `scripts/vm-setup.sh`
//! into `$CRASHLAB_VM_DIR`), an initramfs this module builds (static
//! busybox, the virtio modules, the static C writer [`WRITER_C`] compiled
//! here with `gcc -static`, the spec's ops serialized), and an ext4 image
//! holding the file as a virtio disk with `cache=none`. The writer reports
//! its progress on an `isa-debugcon` port (read from qemu's stdout; the
//! serial console lags by kilobytes) and stops before op `k`; qemu is then
//! killed with SIGKILL: the power cut. The journal is replayed on a copy of
//! the image (`e2fsck -fy`) and the file read out (`debugfs -R dump`).
//!
//! What this models: a disk with no volatile write cache. Whatever the
//! guest's block layer had acknowledged is in the image file, whole and in
//! order; nothing acknowledged is reordered or torn. Unsynced data is lost
//! unless the guest kernel wrote it back on its own before the kill.

use std::io::Read;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::campaign::{plan, PlannedTrial, SoundnessConfig};
use super::fs::{find_program, run_command, CutMethod, FsKind};
use super::judge::judge;
use super::protocol::RealTrialRecord;
use super::report::{aggregate, SoundnessEnvironment, SoundnessReport, SOUNDNESS_SCHEMA_VERSION};
use super::sys::copy_sparse;
use super::{Backend, RealcutError};
use crate::crash::{CrashKind, CrashPoint};
use crate::journal::{JournalSnapshot, OpFailure};
use crate::payload::Payloads;
use crate::process_model::{ChildExit, TrialFacts};
use crate::spec::{MappingKind, MsyncFlags, Op, WriterSpec};

/// The guest writer's source, compiled by [`VmGuest::new`].
pub const WRITER_C: &str = include_str!("vm_writer.c");

/// Loaded in this order by the guest's init (the cloud kernel has ext4 built in).
pub const MODULES: [&str; 6] =
    ["virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci", "virtio_blk"];

/// The file's name inside the guest's filesystem.
const FILE: &str = "crashlab.dat";

fn sys(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RealcutError {
    let what = what.into();
    move |source| RealcutError::Sys { what, source }
}

/// What `scripts/vm-setup.sh` put in the vm directory, and the host tools.
#[derive(Debug, Clone)]
pub struct VmAssets {
    pub dir: PathBuf,
    pub kernel: PathBuf,
    /// The guest kernel's release (the package's ABI name).
    pub kernel_version: String,
    pub modules: Vec<PathBuf>,
    pub busybox: PathBuf,
    pub qemu: PathBuf,
    pub mkfs: PathBuf,
    pub e2fsck: PathBuf,
    pub debugfs: PathBuf,
    pub gcc: PathBuf,
}

impl VmAssets {
    /// Find everything, or say exactly what is missing and how to get it.
    pub fn locate(dir: Option<&Path>) -> Result<VmAssets, RealcutError> {
        let dir = match dir {
            Some(d) => d.to_owned(),
            None => std::env::var_os("CRASHLAB_VM_DIR").map(PathBuf::from).ok_or_else(|| {
                RealcutError::Unavailable(
                    "the vm backend needs --vm-dir or CRASHLAB_VM_DIR, filled by scripts/vm-setup.sh".into(),
                )
            })?,
        };
        let setup = |what: &str| {
            RealcutError::Unavailable(format!(
                "{what} missing in {}; run CRASHLAB_VM_DIR={} scripts/vm-setup.sh",
                dir.display(),
                dir.display()
            ))
        };
        let file = |name: &str| -> Result<PathBuf, RealcutError> {
            let p = dir.join(name);
            if p.is_file() {
                Ok(p)
            } else {
                Err(setup(&p.display().to_string()))
            }
        };
        let kernel = file("vmlinuz")?;
        let kernel_version = std::fs::read_to_string(file("kernel-version")?)
            .map_err(sys(format!("cannot read {}/kernel-version", dir.display())))?
            .trim()
            .to_string();
        let modules = MODULES.iter().map(|m| file(&format!("modules/{m}.ko"))).collect::<Result<Vec<_>, _>>()?;
        let busybox = file("busybox")?;
        let tool = |name: &str, package: &str| {
            find_program(name).ok_or_else(|| {
                RealcutError::Unavailable(format!(
                    "{name} not found (apt-get install -y --no-install-recommends {package})"
                ))
            })
        };
        Ok(VmAssets {
            kernel,
            kernel_version,
            modules,
            busybox,
            qemu: tool("qemu-system-x86_64", "qemu-system-x86")?,
            mkfs: tool("mkfs.ext4", "e2fsprogs")?,
            e2fsck: tool("e2fsck", "e2fsprogs")?,
            debugfs: tool("debugfs", "e2fsprogs")?,
            gcc: tool("gcc", "gcc libc6-dev")?,
            dir,
        })
    }
}

/// The op list as the guest writer reads it, and the stores' bytes.
pub fn serialize_ops(spec: &WriterSpec, payloads: &Payloads) -> (String, Vec<u8>) {
    let mut text = format!(
        "{} {} {} {}\n",
        spec.file_size,
        spec.page_size,
        (spec.mapping == MappingKind::Shared) as u8,
        spec.ops.len()
    );
    let mut blob = Vec::new();
    for (i, op) in spec.ops.iter().enumerate() {
        let line = match *op {
            Op::Store { offset, len, .. } => {
                let at = blob.len();
                blob.extend_from_slice(payloads.store(spec, i));
                format!("S {offset} {len} {at}")
            }
            Op::Msync { range, flags } => {
                format!("M {} {} {}", range.start, range.len(), (flags == MsyncFlags::MsSync) as u8)
            }
            Op::Fsync => "F".into(),
            Op::Fdatasync => "Y".into(),
            Op::Ack { id, .. } => format!("A {id}"),
            Op::Truncate { len } => format!("T {len}"),
            Op::Munmap => "U".into(),
        };
        text.push_str(&line);
        text.push('\n');
    }
    (text, blob)
}

/// An initramfs entry.
pub struct CpioEntry {
    pub name: String,
    /// `0o040755` for a directory, `0o100755` for an executable, ...
    pub mode: u32,
    pub data: Vec<u8>,
}

/// A `newc` cpio archive (what the kernel unpacks as an initramfs).
pub fn cpio_newc(entries: &[CpioEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    let pad = |out: &mut Vec<u8>| {
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    let put = |out: &mut Vec<u8>, ino: u32, name: &str, mode: u32, data: &[u8]| {
        let nlink = if mode & 0o040000 != 0 { 2 } else { 1 };
        let fields = [ino, mode, 0, 0, nlink, 0, data.len() as u32, 0, 0, 0, 0, name.len() as u32 + 1, 0];
        out.extend_from_slice(b"070701");
        for f in fields {
            out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        pad(out);
        out.extend_from_slice(data);
        pad(out);
    };
    for (i, e) in entries.iter().enumerate() {
        put(&mut out, i as u32 + 1, &e.name, e.mode, &e.data);
    }
    put(&mut out, 0, "TRAILER!!!", 0, &[]);
    out
}

/// The guest's /init: modules, the disk, then the writer (as PID 1).
pub fn init_script() -> String {
    let mods = MODULES.join(" ");
    format!(
        r#"#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t devtmpfs devtmpfs /dev
for m in {mods}; do $B insmod /lib/modules/$m.ko || echo "crashlab: insmod $m failed"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 500 ]; do $B usleep 10000; i=$((i+1)); done
$B mount -t ext4 /dev/vda /mnt || echo "crashlab: cannot mount /dev/vda"
k=$($B sed -n 's/.*crashlab\.k=\([0-9]*\).*/\1/p' /proc/cmdline)
exec /writer /mnt/{FILE} /ops.txt /ops.bin "$k"
"#
    )
}

/// The writer's progress as read from the debug port.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub ready: bool,
    /// Ops started and done, in order.
    pub started: Vec<usize>,
    pub done: Vec<usize>,
    pub failed: Option<(usize, i32)>,
    /// The writer said "K": it stopped, waiting for the kill.
    pub stopped: bool,
    /// The writer could not run ("X ...").
    pub error: Option<String>,
}

impl Progress {
    /// Feed one line of the debug port.
    pub fn line(&mut self, l: &str) {
        let l = l.trim();
        let num = |s: &str| s.trim().parse::<usize>().ok();
        match l.split_at_checked(1) {
            Some(("R", "")) => self.ready = true,
            Some(("K", "")) => self.stopped = true,
            Some(("S", n)) => self.started.extend(num(n)),
            Some(("D", n)) => self.done.extend(num(n)),
            Some(("F", rest)) => {
                let mut it = rest.split_whitespace();
                if let (Some(op), Some(e)) = (it.next().and_then(num), it.next().and_then(|e| e.parse().ok())) {
                    self.failed = Some((op, e));
                }
            }
            Some(("X", rest)) => self.error = Some(rest.trim().to_string()),
            _ => {}
        }
    }

    /// The journal this progress amounts to; errs if it is not in order.
    pub fn journal(&self) -> Result<JournalSnapshot, String> {
        if self.done.iter().enumerate().any(|(i, &d)| d != i) {
            return Err(format!("ops reported done out of order: {:?}", self.done));
        }
        let completed = self.done.len();
        let in_flight =
            self.started.last().copied().filter(|&s| s == completed && self.failed.is_none_or(|(f, _)| f != s));
        let failed = self.failed.map(|(op, errno)| OpFailure { op, errno });
        Ok(JournalSnapshot { completed, in_flight, failed })
    }
}

/// A spec made ready for the guest: its initramfs and pristine disk image.
pub struct VmSpec {
    pub initramfs: PathBuf,
    pub pristine: PathBuf,
}

/// The guest machinery in a work directory.
pub struct VmGuest {
    pub assets: VmAssets,
    work: PathBuf,
    writer: Vec<u8>,
    pub timeout: Duration,
}

impl VmGuest {
    /// Compile the writer (`gcc -static`) into `work`.
    pub fn new(assets: VmAssets, work: &Path, timeout: Duration) -> Result<VmGuest, RealcutError> {
        std::fs::create_dir_all(work).map_err(sys(format!("cannot create {}", work.display())))?;
        let src = work.join("writer.c");
        let bin = work.join("writer");
        std::fs::write(&src, WRITER_C).map_err(sys(format!("cannot write {}", src.display())))?;
        run_command(
            &assets.gcc,
            &["-static".as_ref(), "-O2".as_ref(), "-o".as_ref(), bin.as_os_str(), src.as_os_str()],
        )?;
        let writer = std::fs::read(&bin).map_err(sys(format!("cannot read {}", bin.display())))?;
        Ok(VmGuest { assets, work: work.to_owned(), writer, timeout })
    }

    /// Build the initramfs and the pristine ext4 image of `spec`.
    pub fn prepare(&self, key: u64, spec: &WriterSpec, payloads: &Payloads) -> Result<VmSpec, RealcutError> {
        let dir = self.work.join(format!("spec-{key}"));
        let seed = dir.join("seed");
        std::fs::create_dir_all(&seed).map_err(sys(format!("cannot create {}", seed.display())))?;
        // The base pattern has no all-zero block, so mkfs -d allocates it all.
        std::fs::write(seed.join(FILE), &*payloads.base).map_err(sys(format!("cannot write {}", seed.display())))?;
        let pristine = dir.join("pristine.img");
        let _ = std::fs::remove_file(&pristine);
        run_command(
            &self.assets.mkfs,
            &[
                "-q".as_ref(),
                "-F".as_ref(),
                "-b".as_ref(),
                "4096".as_ref(),
                "-E".as_ref(),
                "nodiscard".as_ref(),
                "-d".as_ref(),
                seed.as_os_str(),
                pristine.as_os_str(),
                "32M".as_ref(),
            ]
            .map(std::ffi::OsStr::new),
        )?;
        let (ops, blob) = serialize_ops(spec, payloads);
        let read = |p: &Path| std::fs::read(p).map_err(sys(format!("cannot read {}", p.display())));
        let dir_entry = |name: &str| CpioEntry { name: name.into(), mode: 0o040755, data: Vec::new() };
        let mut entries = vec![
            dir_entry("bin"),
            dir_entry("dev"),
            dir_entry("proc"),
            dir_entry("mnt"),
            dir_entry("lib"),
            dir_entry("lib/modules"),
            CpioEntry { name: "init".into(), mode: 0o100755, data: init_script().into_bytes() },
            CpioEntry { name: "bin/busybox".into(), mode: 0o100755, data: read(&self.assets.busybox)? },
            CpioEntry { name: "writer".into(), mode: 0o100755, data: self.writer.clone() },
            CpioEntry { name: "ops.txt".into(), mode: 0o100644, data: ops.into_bytes() },
            CpioEntry { name: "ops.bin".into(), mode: 0o100644, data: blob },
        ];
        for (m, p) in MODULES.iter().zip(&self.assets.modules) {
            entries.push(CpioEntry { name: format!("lib/modules/{m}.ko"), mode: 0o100644, data: read(p)? });
        }
        let initramfs = dir.join("initramfs.cpio");
        std::fs::write(&initramfs, cpio_newc(&entries))
            .map_err(sys(format!("cannot write {}", initramfs.display())))?;
        Ok(VmSpec { initramfs, pristine })
    }

    /// Boot the guest on `disk`, let the writer run up to op `k` (`None`:
    /// kill as soon as it is ready: the bare boot-and-kill), then SIGKILL
    /// qemu. Returns the writer's progress.
    pub fn boot_and_kill(&self, initramfs: &Path, disk: &Path, k: Option<usize>) -> Result<Progress, RealcutError> {
        let console = disk.with_extension("console.log");
        let mut cmd = Command::new(&self.assets.qemu);
        cmd.args(["-machine", "pc,accel=tcg", "-m", "256", "-smp", "1", "-nodefaults", "-no-reboot"])
            .args(["-display", "none", "-monitor", "none"])
            .arg("-kernel")
            .arg(&self.assets.kernel)
            .arg("-initrd")
            .arg(initramfs)
            .arg("-append")
            .arg(format!("console=ttyS0 panic=-1 quiet crashlab.k={}", k.unwrap_or(usize::MAX >> 1)))
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .args(["-chardev", "stdio,id=dbg,signal=off", "-device", "isa-debugcon,iobase=0x402,chardev=dbg"])
            .arg("-drive")
            .arg(format!("file={},format=raw,if=none,id=d0,cache=none", disk.display()))
            .args(["-device", "virtio-blk-pci,drive=d0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // SAFETY: prctl is async-signal-safe: qemu dies with its caller.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(sys(format!("cannot start {}", self.assets.qemu.display())))?;
        let mut out = child.stdout.take().expect("piped");
        let deadline = Instant::now() + self.timeout;
        let mut progress = Progress::default();
        let mut pending = String::new();
        let mut buf = [0u8; 4096];
        let ended = loop {
            let done = progress.stopped || progress.error.is_some() || (k.is_none() && progress.ready);
            if done {
                break None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Some(format!("no kill point after {:?}", self.timeout));
            }
            let mut pfd = libc::pollfd { fd: out.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            // SAFETY: one pollfd on a descriptor we own.
            let rc = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(1000) as i32) };
            if rc <= 0 {
                continue;
            }
            match out.read(&mut buf) {
                Ok(0) | Err(_) => break Some("qemu exited before the kill point".into()),
                Ok(n) => {
                    pending.push_str(&String::from_utf8_lossy(&buf[..n]));
                    while let Some(i) = pending.find('\n') {
                        let line: String = pending.drain(..=i).collect();
                        progress.line(&line);
                    }
                }
            }
        };
        // The power cut.
        let _ = child.kill();
        let _ = child.wait();
        if let Some(why) = ended.or_else(|| progress.error.clone()) {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let tail = std::fs::read_to_string(&console).unwrap_or_default();
            let tail: String = tail.chars().rev().take(1500).collect::<Vec<_>>().into_iter().rev().collect();
            return Err(RealcutError::Spec(format!(
                "vm trial on {}: {why}; qemu stderr: {}; console tail ({}):\n{tail}",
                disk.display(),
                err.trim(),
                console.display()
            )));
        }
        Ok(progress)
    }

    /// Replay the journal of a copy of `image` (`e2fsck -fy`) and dump the
    /// file out of it (`debugfs`), no mount needed.
    pub fn read_file(&self, image: &Path) -> Result<Vec<u8>, RealcutError> {
        let check = image.with_extension("fsck.img");
        copy_sparse(image, &check)?;
        let out = Command::new(&self.assets.e2fsck)
            .args(["-f", "-y"])
            .arg(&check)
            .stdin(Stdio::null())
            .output()
            .map_err(sys(format!("cannot run {}", self.assets.e2fsck.display())))?;
        // 0: clean; 1: errors corrected (a replayed journal counts); 2: same, reboot.
        if !matches!(out.status.code(), Some(0..=2)) {
            return Err(RealcutError::Command {
                command: format!("{} -f -y {}", self.assets.e2fsck.display(), check.display()),
                detail: format!("{}: {}", out.status, String::from_utf8_lossy(&out.stdout).trim()),
            });
        }
        let dump = image.with_extension("file.bin");
        let _ = std::fs::remove_file(&dump);
        let req = format!("dump /{FILE} {}", dump.display());
        run_command(&self.assets.debugfs, &["-R".as_ref(), req.as_ref(), check.as_os_str()].map(std::ffi::OsStr::new))?;
        let bytes = std::fs::read(&dump).map_err(|e| RealcutError::Command {
            command: format!("{} -R '{req}' {}", self.assets.debugfs.display(), check.display()),
            detail: format!("no file dumped: {e}"),
        })?;
        let _ = std::fs::remove_file(&check);
        let _ = std::fs::remove_file(&dump);
        Ok(bytes)
    }

    /// One trial: a fresh copy of the pristine image, boot, writer to op
    /// `k`, kill, read back, judge.
    pub fn trial(
        &self,
        vspec: &VmSpec,
        spec: &WriterSpec,
        payloads: &Payloads,
        k: usize,
        disk: &Path,
    ) -> Result<RealTrialRecord, RealcutError> {
        copy_sparse(&vspec.pristine, disk)?;
        let started = Instant::now();
        let progress = self.boot_and_kill(&vspec.initramfs, disk, Some(k))?;
        let observed = self.read_file(disk)?;
        let trial_ns = started.elapsed().as_nanos() as u64;
        let journal = progress.journal().map_err(|e| RealcutError::Spec(format!("vm trial before:{k}: {e}")))?;
        let facts = TrialFacts {
            kind: CrashKind::Sigkill,
            point: CrashPoint::BeforeOp(k),
            exit: ChildExit::Signaled(libc::SIGKILL),
            journal,
            external_truncate: None,
        };
        let judgement = judge(spec, payloads, &facts, &observed)
            .map_err(|e| RealcutError::Spec(format!("the model cannot judge vm trial before:{k}: {e}")))?;
        Ok(RealTrialRecord { fs: FsKind::Ext4, cut: CutMethod::VmSigkill, facts, judgement, kept: None, trial_ns })
    }
}

/// Where and how a vm campaign runs.
#[derive(Debug, Clone)]
pub struct VmRunConfig {
    /// Images, initramfs and the writer go here.
    pub work: PathBuf,
    /// Evidence of violations.
    pub keep_dir: PathBuf,
    /// Guests at once (each takes a core under TCG).
    pub jobs: usize,
    /// A guest that has not reached its kill point by then is killed and reported.
    pub timeout: Duration,
}

/// One vm trial to run: the index of its spec in the `specs` given to
/// [`run_vm_trials`], and the op boundary the guest writer stops before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmTrial {
    pub spec: usize,
    pub k: usize,
}

/// Run `trials` on `jobs` guests at once (ext4 in the guest), each spec
/// prepared once (initramfs, pristine image). Returns the records in trial
/// order; the evidence of a violation or a judge mismatch is kept under
/// `keep_dir`. `on_trials` is told of each finished trial.
pub fn run_vm_trials(
    guest: &VmGuest,
    specs: &[&WriterSpec],
    trials: &[VmTrial],
    run: &VmRunConfig,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<Vec<RealTrialRecord>, RealcutError> {
    let (work, keep_dir) = (run.work.as_path(), run.keep_dir.as_path());
    let mut prepared = Vec::new();
    for (key, spec) in specs.iter().enumerate() {
        let payloads = Payloads::build(spec);
        let v = guest.prepare(key as u64, spec, &payloads)?;
        prepared.push((payloads, v));
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<RealTrialRecord>>> = std::sync::Mutex::new(vec![None; trials.len()]);
    let first_error: std::sync::Mutex<Option<RealcutError>> = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for j in 0..run.jobs.clamp(1, trials.len().max(1)) {
            let (prepared, next, results, first_error) = (&prepared, &next, &results, &first_error);
            scope.spawn(move || loop {
                if cancel.load(Ordering::SeqCst) || first_error.lock().unwrap().is_some() {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(&VmTrial { spec: key, k }) = trials.get(i) else { return };
                let (Some((payloads, v)), Some(spec)) = (prepared.get(key), specs.get(key)) else {
                    first_error
                        .lock()
                        .unwrap()
                        .get_or_insert(RealcutError::Spec(format!("vm trial {i} names spec {key} of {}", specs.len())));
                    return;
                };
                let disk = work.join(format!("trial-{j}.img"));
                match guest.trial(v, spec, payloads, k, &disk) {
                    Ok(mut rec) => {
                        if rec.judgement.is_violation() || rec.judgement.judge_mismatch.is_some() {
                            let dir = keep_dir.join(format!("vm-ext4-{i}-{}", rec.facts.point));
                            rec.kept = keep_vm_evidence(&dir, &disk, &rec, spec, &guest.assets.kernel_version)
                                .map_err(|e| eprintln!("crashlab: cannot keep the evidence of trial {i}: {e}"))
                                .ok();
                        }
                        results.lock().unwrap()[i] = Some(rec);
                        on_trials(1);
                    }
                    Err(e) => {
                        first_error.lock().unwrap().get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if cancel.load(Ordering::SeqCst) {
        return Err(RealcutError::Interrupted);
    }
    if let Some(e) = first_error.into_inner().unwrap() {
        return Err(e);
    }
    Ok(results.into_inner().unwrap().into_iter().map(|r| r.expect("every trial ran")).collect())
}

/// Run a vm campaign (ext4 in the guest). Trials run one at a time, or
/// `jobs` guests at once.
pub fn run_vm(
    cfg: &SoundnessConfig,
    assets: VmAssets,
    run: &VmRunConfig,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<SoundnessReport, RealcutError> {
    let started = Instant::now();
    let (specs, trials) = plan(cfg)?;
    let guest = VmGuest::new(assets, &run.work, run.timeout)?;
    let key_of = |t: &PlannedTrial| specs.iter().position(|(w, _)| *w == t.scenario).expect("planned");
    let vm_trials: Vec<VmTrial> = trials
        .iter()
        .map(|t| {
            let CrashPoint::BeforeOp(k) = t.point else { unreachable!("plans are op boundaries") };
            VmTrial { spec: key_of(t), k }
        })
        .collect();
    let spec_refs: Vec<&WriterSpec> = specs.iter().map(|(_, s)| s).collect();
    let results = run_vm_trials(&guest, &spec_refs, &vm_trials, run, cancel, on_trials)?;
    let records: Vec<(PlannedTrial, RealTrialRecord)> = trials.iter().copied().zip(results).collect();
    let kernel = guest.assets.kernel_version.clone();
    let (filesystems, summary) = aggregate(cfg, &kernel, &records);
    Ok(SoundnessReport {
        schema_version: SOUNDNESS_SCHEMA_VERSION.into(),
        crashlab_version: env!("CARGO_PKG_VERSION").into(),
        backend: Backend::Vm,
        environment: SoundnessEnvironment {
            kernel_release: kernel,
            page_size: crate::lab::trial::page_size(),
            work_dir: run.work.display().to_string(),
            work_dir_fs: crate::environment::fs_type(&run.work),
            model: "power-loss (pages whole), judged byte for byte by PowerLossModel::allows".into(),
            disk: super::VM_DISK.into(),
        },
        seed: cfg.seed,
        config: cfg.clone(),
        duration_ms: started.elapsed().as_millis() as u64,
        filesystems,
        summary,
    })
}

fn keep_vm_evidence(
    dir: &Path,
    disk: &Path,
    rec: &RealTrialRecord,
    spec: &WriterSpec,
    kernel: &str,
) -> Result<PathBuf, RealcutError> {
    std::fs::create_dir_all(dir).map_err(sys(format!("cannot create {}", dir.display())))?;
    let evidence = serde_json::json!({
        "what": "a real power cut (qemu killed) left a file the simulated power-loss model forbids",
        "kernel_release": kernel,
        "fs": rec.fs,
        "cut": rec.cut,
        "cut_method": rec.cut.describe(),
        "file": FILE,
        "facts": rec.facts,
        "judgement": rec.judgement,
        "spec": spec,
    });
    std::fs::write(dir.join("trial.json"), serde_json::to_string_pretty(&evidence).expect("serializes"))
        .map_err(sys(format!("cannot write {}", dir.display())))?;
    copy_sparse(disk, &dir.join("post-cut-ext4.img"))?;
    Ok(dir.to_owned())
}

/// vm trials/min next to a bare boot-and-kill of the same guest.
#[derive(Debug, Clone)]
pub struct VmBench {
    pub boot_and_kill_per_min: f64,
    pub trials_per_min: f64,
}

pub fn bench_vm(guest: &VmGuest, spec: &WriterSpec, trials: u32) -> Result<VmBench, RealcutError> {
    let payloads = Payloads::build(spec);
    let v = guest.prepare(999, spec, &payloads)?;
    let disk = guest.work.join("bench.img");
    let n = spec.ops.len();
    let (mut bare, mut full) = (Duration::ZERO, Duration::ZERO);
    for i in 0..trials as usize {
        copy_sparse(&v.pristine, &disk)?;
        let t = Instant::now();
        guest.boot_and_kill(&v.initramfs, &disk, None)?;
        bare += t.elapsed();
        let t = Instant::now();
        let rec = guest.trial(&v, spec, &payloads, (i * 7 + 3) % (n + 1), &disk)?;
        full += t.elapsed();
        if let Some(f) = rec.judgement.forbidden {
            return Err(RealcutError::Spec(format!("bench trial: model soundness violation: {f}")));
        }
    }
    let per_min = |d: Duration| trials as f64 / d.as_secs_f64() * 60.0;
    Ok(VmBench { boot_and_kill_per_min: per_min(bare), trials_per_min: per_min(full) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{SyncPolicy, WorkloadParams};

    #[test]
    fn ops_serialize_to_the_guest_format_with_the_store_bytes() {
        let spec = WriterSpec::generate(
            &WorkloadParams { txns: 3, ..WorkloadParams::with_file_size(16384) },
            MappingKind::Shared,
            SyncPolicy::MsSyncEach,
            4096,
            1,
        )
        .unwrap();
        let p = Payloads::build(&spec);
        let (text, blob) = serialize_ops(&spec, &p);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], format!("16384 4096 1 {}", spec.ops.len()));
        assert_eq!(lines.len(), spec.ops.len() + 1);
        assert_eq!(blob.len() as u64, spec.store_bytes());
        let Op::Store { offset, len, .. } = spec.ops[0] else { panic!("a store first") };
        assert_eq!(lines[1], format!("S {offset} {len} 0"));
        assert_eq!(&blob[..len as usize], p.store(&spec, 0));
        assert!(lines[2].starts_with("M ") && lines[2].ends_with(" 1"), "{}", lines[2]);
        assert_eq!(lines[3], "A 0");
        assert_eq!(*lines.last().unwrap(), "U");
    }

    #[test]
    fn cpio_archives_are_newc_aligned_and_end_with_a_trailer() {
        let a = cpio_newc(&[
            CpioEntry { name: "bin".into(), mode: 0o040755, data: vec![] },
            CpioEntry { name: "bin/x".into(), mode: 0o100755, data: b"hello".to_vec() },
        ]);
        assert_eq!(a.len() % 4, 0);
        assert!(a.starts_with(b"070701"));
        // Second header: after the first (110 + "bin\0" padded to 116).
        assert_eq!(&a[116..122], b"070701");
        let h2 = &a[116..];
        assert_eq!(&h2[6 + 6 * 8..6 + 7 * 8], b"00000005", "file size field");
        assert_eq!(&h2[110..116], b"bin/x\0");
        assert_eq!(&h2[116..121], b"hello");
        let s = String::from_utf8_lossy(&a);
        assert!(s.contains("TRAILER!!!"));
    }

    #[test]
    fn progress_lines_become_a_journal() {
        let mut p = Progress::default();
        for l in ["R", "S0", "D0", "S1", "D1", "S2", "D2", "K"] {
            p.line(l);
        }
        assert!(p.ready && p.stopped);
        assert_eq!(p.journal().unwrap(), JournalSnapshot { completed: 3, in_flight: None, failed: None });
        let mut f = Progress::default();
        for l in ["R", "S0", "D0", "S1", "F1 5", "K"] {
            f.line(l);
        }
        assert_eq!(
            f.journal().unwrap(),
            JournalSnapshot { completed: 1, in_flight: None, failed: Some(OpFailure { op: 1, errno: 5 }) }
        );
        let mut bad = Progress::default();
        bad.line("D1");
        assert!(bad.journal().is_err());
        let mut x = Progress::default();
        x.line("X /mnt/crashlab.dat: No such file or directory");
        assert_eq!(x.error.as_deref(), Some("/mnt/crashlab.dat: No such file or directory"));
    }

    #[test]
    fn the_init_script_loads_the_modules_in_order_and_runs_the_writer() {
        let s = init_script();
        assert!(s.starts_with("#!/bin/busybox sh"));
        assert!(s.contains("virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci virtio_blk"));
        assert!(s.contains("exec /writer /mnt/crashlab.dat /ops.txt /ops.bin"));
    }

    #[test]
    fn the_writer_source_is_the_one_embedded() {
        assert!(WRITER_C.contains("isa-debugcon"));
        assert!(WRITER_C.contains("outb"));
    }
}
