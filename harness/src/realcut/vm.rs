//! The `vm` backend: a real guest kernel under qemu, killed. No root. qemu
//! runs under KVM when a probe guest boots with it, else TCG ([`vm_accel`](super::vm_accel)).
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
//! What this models, by default ([`VmDisk::NoCache`]): a disk with no
//! volatile write cache. Whatever the guest's block layer had acknowledged
//! is in the image file, whole and in order; nothing acknowledged is
//! reordered or torn. Unsynced data is lost unless the guest kernel wrote it
//! back on its own before the kill.
//!
//! [`VmDisk::Volatile`]: the disk is a [`VolatileDisk`] over the pristine
//! image, served by an [`NbdServer`] thread to qemu's NBD client (the guest
//! sees virtio-blk with a write-back cache, so it sends FLUSH). After the
//! kill the disk is handed back with its pending (unflushed) writes; each of
//! the disk states sampled from them ([`sample_states`]) is written out as
//! an image and goes through the same e2fsck, debugfs and judge. A state
//! e2fsck cannot repair is a finding of its own, not a soundness violation.
//! With the kernel's default writeback (30 s) the guest writes nothing
//! unsynced within a trial; [`VmGuest::writeback_centisecs`] shortens it.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::campaign::{plan, PlannedTrial, SoundnessConfig};
use super::fs::{find_program, run_command, CutMethod, FsKind};
use super::judge::{judge, judge_with, RealJudgement};
use super::nbd::{NbdServer, NbdStats};
use super::protocol::RealTrialRecord;
use super::report::{
    aggregate, rerun_line, FsSoundness, SoundnessEnvironment, SoundnessReport, SoundnessSummary,
    SOUNDNESS_SCHEMA_VERSION,
};
use super::sys::copy_sparse;
use super::vm_accel::{self, Accel, AccelChoice, AccelDecision, KVM_PROBE_TIMEOUT};
use super::volatile_disk::{sample_states, state_count, DiskCutMode, VolatileDisk};
use super::volatile_report::{CutSummary, DiskStateFinding, VolatileDiskReport, MAX_LISTED};
use super::{Backend, GuestFailure, RealcutError};
use crate::crash::{CrashKind, CrashPoint};
use crate::journal::{JournalSnapshot, OpFailure};
use crate::payload::Payloads;
use crate::power_loss::{PowerLossConfig, PowerLossModel, DEFAULT_TEAR};
use crate::process_model::{ChildExit, TrialFacts};
use crate::scenario::derive_seed;
use crate::spec::{MappingKind, MsyncFlags, Op, WriterSpec};

/// The guest writer's source, compiled by [`VmGuest::new`].
pub const WRITER_C: &str = include_str!("vm_writer.c");

/// Loaded in this order by the guest's init (the cloud kernel has ext4 built in).
pub const MODULES: [&str; 6] =
    ["virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci", "virtio_blk"];

/// The file's name inside the guest's filesystem.
const FILE: &str = "crashlab.dat";
/// The guest's ext4 image (the writer's file lives in it).
pub const IMAGE_BYTES: u64 = 32 << 20;
/// The guest's memory (`qemu -m`).
pub const GUEST_MEMORY_BYTES: u64 = 256 << 20;

/// The guest's disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum VmDisk {
    /// The image file itself (virtio-blk, `cache=none`): every write qemu
    /// acknowledged is in the image, whole and in order.
    #[default]
    NoCache,
    /// A [`VolatileDisk`] served by the harness over NBD: writes the guest
    /// did not flush (FLUSH or FUA) before the cut may be lost, reordered
    /// or (`torn`) torn per sector.
    Volatile(DiskCutMode),
}

impl VmDisk {
    pub const NAMES: &'static str = "no-cache, volatile-reorder, volatile-torn";

    pub fn name(self) -> &'static str {
        match self {
            VmDisk::NoCache => "no-cache",
            VmDisk::Volatile(DiskCutMode::Reorder) => "volatile-reorder",
            VmDisk::Volatile(DiskCutMode::Torn) => "volatile-torn",
        }
    }

    /// What the disk does with acknowledged writes (the report's
    /// `environment.disk`); `states_per_cut` for a volatile one.
    pub fn describe(self, states_per_cut: usize) -> String {
        match self {
            VmDisk::NoCache => super::VM_DISK.into(),
            VmDisk::Volatile(mode) => format!(
                "NBD-backed disk with a volatile write cache (qemu's NBD client to a server in the harness, \
                 virtio-blk with a write-back cache in the guest, qemu killed with SIGKILL): {}; per cut, up \
                 to {states_per_cut} of the disk states this allows are checked (all kept, none kept, then seeded \
                 random ones)",
                mode.describe()
            ),
        }
    }

    /// The model a disk's cuts are judged by. A disk that tears sectors
    /// breaks the page-whole model's assumption by construction, so its cuts
    /// are judged by the model that makes the same assumption as the disk:
    /// the torn-sector variant (`power-loss-torn`, 512-byte sectors).
    pub fn verdict_model(self) -> PowerLossConfig {
        match self {
            VmDisk::Volatile(DiskCutMode::Torn) => {
                PowerLossConfig { tear: Some(DEFAULT_TEAR), ..PowerLossConfig::default() }
            }
            VmDisk::NoCache | VmDisk::Volatile(DiskCutMode::Reorder) => PowerLossConfig::default(),
        }
    }

    /// [`Self::verdict_model`] in words (the report's `environment.model`).
    pub fn verdict_model_name(self) -> &'static str {
        match self {
            VmDisk::Volatile(DiskCutMode::Torn) => {
                "power-loss-torn (every 512-byte sector independently at any allowed version), judged byte for byte \
                 by PowerLossModel::allows"
            }
            VmDisk::NoCache | VmDisk::Volatile(DiskCutMode::Reorder) => {
                "power-loss (pages whole), judged byte for byte by PowerLossModel::allows"
            }
        }
    }
}

impl fmt::Display for VmDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for VmDisk {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "no-cache" => Ok(VmDisk::NoCache),
            "volatile-reorder" => Ok(VmDisk::Volatile(DiskCutMode::Reorder)),
            "volatile-torn" => Ok(VmDisk::Volatile(DiskCutMode::Torn)),
            _ => Err(format!("unknown disk `{s}` (expected {})", Self::NAMES)),
        }
    }
}

/// [`VmGuest::settle_before_cut`] for a writeback interval of `cs` centiseconds.
fn settle_for(cs: u32) -> Duration {
    Duration::from_millis((cs as u64 * 10 * 5).max(100))
}

/// A qemu option value with its commas doubled (qemu's escape).
fn qemu_escape(p: &Path) -> String {
    p.display().to_string().replace(',', ",,")
}

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
wb=$($B sed -n 's/.*crashlab\.writeback_cs=\([0-9]*\).*/\1/p' /proc/cmdline)
if [ -n "$wb" ]; then echo "$wb" > /proc/sys/vm/dirty_expire_centisecs; echo "$wb" > /proc/sys/vm/dirty_writeback_centisecs; fi
exec /writer /mnt/{FILE} /ops.txt /ops.bin "$k"
"#
    )
}

/// The guest kernel's command line: where the writer stops (`None`: never,
/// the bare boot-and-kill) and the writeback interval [`init_script`] sets.
pub fn kernel_cmdline(k: Option<usize>, writeback_centisecs: Option<u32>) -> String {
    format!(
        "console=ttyS0 panic=-1 quiet crashlab.k={}{}",
        k.unwrap_or(usize::MAX >> 1),
        writeback_centisecs.map_or(String::new(), |cs| format!(" crashlab.writeback_cs={cs}"))
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
    /// The guest's `vm.dirty_expire_centisecs` and
    /// `vm.dirty_writeback_centisecs`; `None`: the kernel's defaults (30 s
    /// and 5 s, longer than a trial: no page is written back unless synced).
    /// When set, the kill also waits [`settle_before_cut`](Self::settle_before_cut)
    /// after the writer stopped.
    pub writeback_centisecs: Option<u32>,
    /// TCG until [`choose_accel`](Self::choose_accel) finds KVM working.
    pub accel: Accel,
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
        Ok(VmGuest { assets, work: work.to_owned(), writer, timeout, writeback_centisecs: None, accel: Accel::Tcg })
    }

    /// Set [`accel`](Self::accel) as `choice` says; for `auto` and `kvm`,
    /// by booting a probe guest under KVM ([`vm_accel`](super::vm_accel)).
    pub fn choose_accel(&mut self, choice: AccelChoice) -> Result<AccelDecision, RealcutError> {
        let decision = vm_accel::decide(choice, vm_accel::kvm_device(), || self.probe_kvm())?;
        self.accel = decision.accel;
        Ok(decision)
    }

    /// Boot a guest whose writer has no ops under KVM and kill it once the
    /// writer reports ready: how long that took, or why it did not happen
    /// within [`KVM_PROBE_TIMEOUT`].
    fn probe_kvm(&self) -> Result<Duration, String> {
        let probe = VmGuest {
            assets: self.assets.clone(),
            work: self.work.join("kvm-probe"),
            writer: self.writer.clone(),
            timeout: KVM_PROBE_TIMEOUT,
            writeback_centisecs: None,
            accel: Accel::Kvm,
        };
        let page = crate::page_size::page_size();
        let spec = WriterSpec {
            file_size: page,
            page_size: page,
            mapping: MappingKind::Shared,
            policy: crate::spec::SyncPolicy::None,
            ops: Vec::new(),
        };
        let payloads = Payloads::build(&spec);
        let v = probe.prepare(0, &spec, &payloads).map_err(|e| e.to_string())?;
        let disk = probe.work.join("probe.img");
        copy_sparse(&v.pristine, &disk).map_err(|e| e.to_string())?;
        let started = Instant::now();
        let result = probe.boot_and_kill(&v.initramfs, &disk, None);
        let took = started.elapsed();
        let _ = std::fs::remove_dir_all(&probe.work);
        match result {
            Ok(p) if p.ready => Ok(took),
            Ok(_) => Err(format!("the guest ended without its writer reporting ready ({:.1} s)", took.as_secs_f64())),
            Err(RealcutError::Guest(g)) => {
                let qemu = if g.qemu_stderr.is_empty() { String::new() } else { format!("; qemu: {}", g.qemu_stderr) };
                Err(format!("{}{qemu}; the guest printed {} bytes on its serial console", g.why, g.console_bytes))
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// With a guest writeback interval set: how long the kill waits after
    /// the writer stopped, so that the flusher has run (pages older than the
    /// interval, looked for every interval) several times. Without it, the
    /// cut races the flusher and most trials see no writeback at all.
    pub fn settle_before_cut(&self) -> Option<Duration> {
        self.writeback_centisecs.map(settle_for)
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
        let image_size = format!("{}M", IMAGE_BYTES >> 20);
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
                image_size.as_ref(),
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
        let drive = format!("file={},format=raw,if=none,id=d0,cache=none", disk.display());
        self.boot_and_kill_on(initramfs, &drive, &disk.with_extension("console.log"), &disk.display().to_string(), k)
    }

    /// [`boot_and_kill`](Self::boot_and_kill) with the disk given as qemu's
    /// `-drive` value (`id=d0`); `what` names the disk in errors.
    fn boot_and_kill_on(
        &self,
        initramfs: &Path,
        drive: &str,
        console: &Path,
        what: &str,
        k: Option<usize>,
    ) -> Result<Progress, RealcutError> {
        let mut cmd = Command::new(&self.assets.qemu);
        cmd.args(self.accel.qemu_args())
            .args(["-m", &(GUEST_MEMORY_BYTES >> 20).to_string(), "-smp", "1", "-nodefaults", "-no-reboot"])
            .args(["-display", "none", "-monitor", "none"])
            .arg("-kernel")
            .arg(&self.assets.kernel)
            .arg("-initrd")
            .arg(initramfs)
            .arg("-append")
            .arg(kernel_cmdline(k, self.writeback_centisecs))
            .arg("-serial")
            .arg(format!("file:{}", console.display()))
            .args(["-chardev", "stdio,id=dbg,signal=off", "-device", "isa-debugcon,iobase=0x402,chardev=dbg"])
            .arg("-drive")
            .arg(drive)
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
                break Some(match k {
                    None => format!("the writer did not report ready within {:?}", self.timeout),
                    Some(k) => {
                        format!("the writer did not reach its kill point (before op {k}) within {:?}", self.timeout)
                    }
                });
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
        if let (None, Some(settle)) = (&ended, self.settle_before_cut()) {
            // The writer stopped before op k; the guest's flusher writes its
            // dirty pages back meanwhile (no flush follows: the disk caches them).
            std::thread::sleep(settle);
        }
        // The power cut.
        let _ = child.kill();
        let _ = child.wait();
        if let Some(why) = ended.or_else(|| progress.error.clone()) {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            let text = std::fs::read_to_string(console).unwrap_or_default();
            let tail: String = text.chars().rev().take(1500).collect::<Vec<_>>().into_iter().rev().collect();
            return Err(RealcutError::Guest(Box::new(GuestFailure {
                disk: what.to_owned(),
                why,
                qemu_stderr: err.trim().to_owned(),
                console: console.to_owned(),
                console_bytes: text.len() as u64,
                console_tail: tail,
            })));
        }
        Ok(progress)
    }

    /// Replay the journal of a copy of `image` (`e2fsck -fy`) and dump the
    /// file out of it (`debugfs`), no mount needed.
    pub fn read_file(&self, image: &Path) -> Result<Vec<u8>, RealcutError> {
        match self.fsck_and_dump(image)? {
            FsckOutcome::File { bytes, .. } => Ok(bytes),
            FsckOutcome::Unrepairable(run) => Err(RealcutError::Command {
                command: run.command,
                detail: format!("exit {:?}: {}", run.exit, run.output.trim()),
            }),
            FsckOutcome::NoFile { detail, .. } => Err(RealcutError::Command {
                command: format!("{} -R 'dump /{FILE} ...' {}", self.assets.debugfs.display(), image.display()),
                detail,
            }),
        }
    }

    /// `e2fsck -fy` on a copy of `image`, then `debugfs` dumps the file;
    /// a filesystem e2fsck could not repair, or one without the file, is an
    /// outcome (a disk state may legitimately lead there), not an error.
    pub fn fsck_and_dump(&self, image: &Path) -> Result<FsckOutcome, RealcutError> {
        let check = image.with_extension("fsck.img");
        copy_sparse(image, &check)?;
        let out = Command::new(&self.assets.e2fsck)
            .args(["-f", "-y"])
            .arg(&check)
            .stdin(Stdio::null())
            .output()
            .map_err(sys(format!("cannot run {}", self.assets.e2fsck.display())))?;
        let run = FsckRun {
            command: format!("{} -f -y {}", self.assets.e2fsck.display(), check.display()),
            exit: out.status.code(),
            output: format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
        };
        // 0: clean; 1: errors corrected (a replayed journal counts); 2: same,
        // reboot. 4 and up: errors left, or e2fsck could not work at all.
        if !matches!(run.exit, Some(0..=2)) {
            let _ = std::fs::remove_file(&check);
            return Ok(FsckOutcome::Unrepairable(run));
        }
        let dump = image.with_extension("file.bin");
        let _ = std::fs::remove_file(&dump);
        let req = format!("dump /{FILE} {}", dump.display());
        run_command(&self.assets.debugfs, &["-R".as_ref(), req.as_ref(), check.as_os_str()].map(std::ffi::OsStr::new))?;
        let read = std::fs::read(&dump);
        let _ = std::fs::remove_file(&check);
        let _ = std::fs::remove_file(&dump);
        match read {
            Ok(bytes) => Ok(FsckOutcome::File { fsck: run, bytes }),
            Err(e) => Ok(FsckOutcome::NoFile {
                fsck: run,
                detail: format!("`{} -R '{req}'` dumped no file: {e}", self.assets.debugfs.display()),
            }),
        }
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
        let facts = killed_before(k, journal);
        let judgement = judge(spec, payloads, &facts, &observed)
            .map_err(|e| RealcutError::Spec(format!("the model cannot judge vm trial before:{k}: {e}")))?;
        Ok(RealTrialRecord { fs: FsKind::Ext4, cut: CutMethod::VmSigkill, facts, judgement, kept: None, trial_ns })
    }

    /// One cut on a disk with a volatile write cache: the pristine image is
    /// served from a [`VolatileDisk`] by an [`NbdServer`] on
    /// `SLOT.nbd.sock`; boot, writer to op `k`, kill; then each sampled disk
    /// state is materialized (`SLOT.state.img`), its journal replayed and its
    /// file judged. The evidence of a state whose file the model forbids, or
    /// whose filesystem cannot be read, is kept in `EVIDENCE-stateJ`.
    pub fn volatile_trial(
        &self,
        vspec: &VmSpec,
        spec: &WriterSpec,
        payloads: &Payloads,
        trial: &VolatileVmTrial,
        disk: &VolatileDiskConfig,
        files: TrialFiles<'_>,
    ) -> Result<VolatileCut, RealcutError> {
        let TrialFiles { slot, evidence } = files;
        let k = trial.k;
        let base = std::fs::read(&vspec.pristine).map_err(sys(format!("cannot read {}", vspec.pristine.display())))?;
        let socket = slot.with_extension("nbd.sock");
        let server = NbdServer::start(&socket, VolatileDisk::new(base))?;
        // cache=writeback: the guest sees a write-back cache, so its block
        // layer sends FLUSH (and FUA, emulated with flushes by virtio-blk).
        let drive =
            format!("file=nbd+unix:///?socket={},format=raw,if=none,id=d0,cache=writeback", qemu_escape(&socket));
        let started = Instant::now();
        let console = slot.with_extension("console.log");
        let what = format!("the NBD disk {}", socket.display());
        let progress = self.boot_and_kill_on(&vspec.initramfs, &drive, &console, &what, Some(k))?;
        // qemu is dead, its connection closed: the disk is as the cut left it.
        let (vdisk, nbd) = server.finish()?;
        let boot_ns = started.elapsed().as_nanos() as u64;
        let journal = progress.journal().map_err(|e| RealcutError::Spec(format!("vm trial before:{k}: {e}")))?;
        let facts = killed_before(k, journal);
        let states = sample_states(&vdisk, disk.mode, disk.states_per_cut, trial.seed);
        let verdict_model = VmDisk::Volatile(disk.mode).verdict_model();
        let image = slot.with_extension("state.img");
        let pristine_groups = read_superblock(&vspec.pristine).ok().and_then(|sb| ext4_block_groups(&sb));
        let mut checked = Vec::with_capacity(states.len());
        for (j, state) in states.iter().enumerate() {
            let t = Instant::now();
            copy_sparse(&vspec.pristine, &image)?;
            write_patches(&image, &vdisk.patches(state)?)?;
            let outcome = self.fsck_and_dump(&image)?;
            let trial_ns = boot_ns + t.elapsed().as_nanos() as u64;
            let ev = StateEvidence {
                dir: PathBuf::from(format!("{}-state{j}", evidence.display())),
                image: &image,
                kernel: &self.assets.kernel_version,
                spec,
                facts: &facts,
                mode: disk.mode,
                state: state.to_string(),
                disk: &vdisk,
                nbd: &nbd,
            };
            let keep = |judgement: Option<&RealJudgement>, observed: Option<&[u8]>, fsck: &FsckRun| {
                keep_volatile_evidence(&ev, judgement, observed, fsck)
                    .map_err(|e| eprintln!("crashlab: cannot keep the evidence of {}: {e}", ev.dir.display()))
                    .ok()
            };
            let mut allowed_if_sectors_tear = None;
            let mut page_whole_allows = None;
            let (e2fsck_repaired, outcome) = match outcome {
                FsckOutcome::File { fsck, bytes } => {
                    let judgement = judge_with(spec, payloads, &facts, &bytes, &verdict_model).map_err(|e| {
                        RealcutError::Spec(format!(
                            "the model cannot judge vm trial before:{k} in disk state {state}: {e}"
                        ))
                    })?;
                    let mut rec = RealTrialRecord {
                        fs: FsKind::Ext4,
                        cut: CutMethod::VmSigkill,
                        facts,
                        judgement,
                        kept: None,
                        trial_ns,
                    };
                    let other_allows = |cfg: PowerLossConfig| model_allows(spec, payloads, &facts, &bytes, &cfg);
                    match disk.mode {
                        DiskCutMode::Reorder if rec.judgement.is_violation() => {
                            let torn = VmDisk::Volatile(DiskCutMode::Torn).verdict_model();
                            allowed_if_sectors_tear = Some(other_allows(torn)?);
                        }
                        // Judged by the torn model: would the page-whole
                        // one have allowed it too? (Observed tearing.)
                        DiskCutMode::Torn if !rec.judgement.is_violation() => {
                            page_whole_allows = Some(other_allows(PowerLossConfig::default())?);
                        }
                        _ => {}
                    }
                    if rec.judgement.is_violation() || rec.judgement.judge_mismatch.is_some() {
                        rec.kept = keep(Some(&rec.judgement), Some(&bytes), &fsck);
                    }
                    (fsck.answered_a_repair_question(), StateOutcome::Judged(Box::new(rec)))
                }
                FsckOutcome::Unrepairable(fsck) => {
                    let detail = format!(
                        "e2fsck -fy could not repair the filesystem (exit {}): {}",
                        fsck.exit.map_or("by signal".into(), |c| c.to_string()),
                        fsck.output_tail()
                    );
                    let (sb_start, sb_end) = EXT4_PRIMARY_SUPERBLOCK;
                    let torn = vdisk.tears_range(state, sb_start, sb_end)?;
                    let explanation = explain_unrepairable(torn, pristine_groups);
                    let kept = keep(None, None, &fsck);
                    (false, StateOutcome::Unreadable { detail, explanation, kept })
                }
                FsckOutcome::NoFile { fsck, detail } => {
                    let detail = format!("after e2fsck -fy (exit {:?}): {detail}", fsck.exit);
                    let kept = keep(None, None, &fsck);
                    (fsck.answered_a_repair_question(), StateOutcome::Unreadable { detail, explanation: None, kept })
                }
            };
            checked.push(CheckedState {
                state: state.to_string(),
                e2fsck_repaired,
                allowed_if_sectors_tear,
                page_whole_allows,
                outcome,
            });
        }
        let _ = std::fs::remove_file(&image);
        Ok(VolatileCut {
            pending_writes: vdisk.pending_writes().len() as u64,
            state_space: state_count(&vdisk, disk.mode),
            nbd,
            states: checked,
        })
    }
}

/// A guest writer stopped before op `k` and killed with its guest.
fn killed_before(k: usize, journal: JournalSnapshot) -> TrialFacts {
    TrialFacts {
        kind: CrashKind::Sigkill,
        point: CrashPoint::BeforeOp(k),
        exit: ChildExit::Signaled(libc::SIGKILL),
        journal,
        external_truncate: None,
    }
}

/// Does the power-loss model configured by `cfg` allow `observed`? (A
/// diagnosis beside the verdict's model.)
fn model_allows(
    spec: &WriterSpec,
    payloads: &Payloads,
    facts: &TrialFacts,
    observed: &[u8],
    cfg: &PowerLossConfig,
) -> Result<bool, RealcutError> {
    let model = PowerLossModel::build(spec, payloads, facts, cfg)
        .map_err(|e| RealcutError::Spec(format!("the power-loss model cannot judge {}: {e}", facts.point)))?;
    Ok(model.allows(observed, observed.len() as u64).is_ok())
}

/// Write `patches` (offset, bytes) into the image file at `path`.
/// The primary ext4 superblock of the image at `path`.
fn read_superblock(path: &Path) -> Result<Vec<u8>, RealcutError> {
    let (start, end) = EXT4_PRIMARY_SUPERBLOCK;
    let f = std::fs::File::open(path).map_err(sys(format!("cannot open {}", path.display())))?;
    let mut sb = vec![0u8; (end - start) as usize];
    f.read_exact_at(&mut sb, start).map_err(sys(format!("cannot read the superblock of {}", path.display())))?;
    Ok(sb)
}

fn write_patches(path: &Path, patches: &[(u64, Vec<u8>)]) -> Result<(), RealcutError> {
    let f =
        std::fs::OpenOptions::new().write(true).open(path).map_err(sys(format!("cannot open {}", path.display())))?;
    for (at, bytes) in patches {
        f.write_all_at(bytes, *at).map_err(sys(format!(
            "cannot write {} bytes at {at} of {}",
            bytes.len(),
            path.display()
        )))?;
    }
    Ok(())
}

/// One `e2fsck -fy` run.
#[derive(Debug, Clone)]
pub struct FsckRun {
    pub command: String,
    pub exit: Option<i32>,
    /// stdout then stderr.
    pub output: String,
}

impl FsckRun {
    /// Did e2fsck fix anything beyond replaying the journal? With `-y` it
    /// prints each repair as a question answered "yes".
    pub fn answered_a_repair_question(&self) -> bool {
        self.output.lines().any(|l| l.trim_end().ends_with("? yes"))
    }

    /// The last lines of the output (what it could not fix).
    pub fn output_tail(&self) -> String {
        let lines: Vec<&str> = self.output.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(8)..].join(" | ")
    }
}

/// What `e2fsck -fy` and `debugfs` made of an image.
#[derive(Debug, Clone)]
pub enum FsckOutcome {
    /// Repaired (exit 0..=2) and the file dumped.
    File { fsck: FsckRun, bytes: Vec<u8> },
    /// Exit 4 or more: errors left uncorrected, or e2fsck could not work.
    Unrepairable(FsckRun),
    /// Repaired, but no file to dump (e2fsck removed or moved it).
    NoFile { fsck: FsckRun, detail: String },
}

/// The volatile disk of a campaign: what a cut may do, states per cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolatileDiskConfig {
    pub mode: DiskCutMode,
    /// At most this many disk states are checked per cut (at least 1).
    pub states_per_cut: usize,
}

/// Where a volatile trial's files go: `SLOT.*` for the socket, console and
/// state images (one guest slot's, reused trial after trial), `EVIDENCE-stateJ`
/// for kept evidence.
#[derive(Debug, Clone, Copy)]
pub struct TrialFiles<'a> {
    pub slot: &'a Path,
    pub evidence: &'a Path,
}

/// One vm trial on the volatile disk: spec index, op boundary, and the seed
/// its random disk states are drawn from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolatileVmTrial {
    pub spec: usize,
    pub k: usize,
    pub seed: u64,
}

/// One cut on the volatile disk and its checked states.
#[derive(Debug, Clone)]
pub struct VolatileCut {
    /// What the guest sent the disk.
    pub nbd: NbdStats,
    /// Writes not yet flushed when qemu was killed.
    pub pending_writes: u64,
    /// States the mode allows (saturating).
    pub state_space: u64,
    pub states: Vec<CheckedState>,
}

/// One disk state of a cut, checked.
#[derive(Debug, Clone)]
pub struct CheckedState {
    /// Its text (`reorder kept=w3,w5`).
    pub state: String,
    /// e2fsck fixed more than the journal and the file was still read.
    pub e2fsck_repaired: bool,
    /// `volatile-reorder`, for a file the page-whole model forbids: does the
    /// model with torn sectors ([`PowerLossConfig::tear`] = 512) allow it?
    /// (A diagnosis only: the verdict is the page-whole model's.)
    pub allowed_if_sectors_tear: Option<bool>,
    /// `volatile-torn`, for a file the torn model (the verdict's) allows:
    /// does the page-whole model allow it too? `false` is observed tearing.
    pub page_whole_allows: Option<bool>,
    pub outcome: StateOutcome,
}

#[derive(Debug, Clone)]
pub enum StateOutcome {
    /// The file was read and judged (`trial_ns` includes the boot).
    Judged(Box<RealTrialRecord>),
    /// e2fsck could not repair the filesystem, or no file was left.
    /// `explanation`: the cause, when crashlab can tell (see
    /// [`explain_unrepairable`]).
    Unreadable { detail: String, explanation: Option<String>, kept: Option<PathBuf> },
}

/// Where ext4 keeps its primary superblock: bytes 1024..2048 of the device,
/// two 512-byte sectors (2 and 3).
const EXT4_PRIMARY_SUPERBLOCK: (u64, u64) = (1024, 2048);

/// How many block groups an ext4 superblock describes (`None`: not one).
/// Backup superblocks live in groups 1, 3, 5, 7, 9, 25, ... (sparse_super):
/// a filesystem of one group has none.
pub fn ext4_block_groups(superblock: &[u8]) -> Option<u64> {
    let le32 = |at: usize| superblock.get(at..at + 4).map(|b| u32::from_le_bytes(b.try_into().unwrap()) as u64);
    // s_magic (0xEF53) at 56, s_blocks_count_lo at 4, s_blocks_per_group at 32.
    if superblock.get(56..58)? != [0x53, 0xEF] {
        return None;
    }
    let (blocks, per_group) = (le32(4)?, le32(32)?);
    (per_group > 0).then(|| blocks.div_ceil(per_group))
}

/// Why e2fsck could not repair the filesystem of a disk state, when the
/// state shows it: a primary superblock torn between two writes (its two
/// sectors from different writes, a mix no write ever made), on a
/// filesystem with no backup superblock for e2fsck to fall back to. Real
/// drives that guarantee only 512-byte atomicity may do that; e2fsck on a
/// filesystem with backups repairs it (reports/SOUNDNESS.md).
pub fn explain_unrepairable(superblock_torn: bool, block_groups: Option<u64>) -> Option<String> {
    if !superblock_torn {
        return None;
    }
    let backups = match block_groups {
        Some(1) => {
            "this filesystem has one block group, so no backup superblock for e2fsck to fall back to".to_string()
        }
        Some(n) => format!("this filesystem has {n} block groups (backup superblocks exist, yet e2fsck failed)"),
        None => "the superblock of the image before the trial could not be read".to_string(),
    };
    Some(format!(
        "the disk state tears ext4's primary superblock (bytes 1024..2048, sectors 2-3) between two writes, and \
         {backups}: a property of ext4 on a drive that tears writes at 512-byte sectors, not of the power-loss model"
    ))
}

/// Where and how a vm campaign runs.
#[derive(Debug, Clone)]
pub struct VmRunConfig {
    /// Images, initramfs and the writer go here.
    pub work: PathBuf,
    /// Evidence of violations.
    pub keep_dir: PathBuf,
    /// Guests at once (each takes a host core).
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

/// Each spec's payloads, initramfs and pristine image, made once.
fn prepare_all(guest: &VmGuest, specs: &[&WriterSpec]) -> Result<Vec<(Payloads, VmSpec)>, RealcutError> {
    let mut prepared = Vec::new();
    for (key, spec) in specs.iter().enumerate() {
        let payloads = Payloads::build(spec);
        let v = guest.prepare(key as u64, spec, &payloads)?;
        prepared.push((payloads, v));
    }
    Ok(prepared)
}

/// Run `n` trials on `jobs` threads, one guest each: `run_one(i, j)` runs
/// trial `i` on guest slot `j`. Results in trial order; the first error
/// stops the others after their current trial; `cancel` stops them all.
fn run_on_guests<T: Send>(
    jobs: usize,
    n: usize,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
    run_one: &(dyn Fn(usize, usize) -> Result<T, RealcutError> + Sync),
) -> Result<Vec<T>, RealcutError> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: std::sync::Mutex<Vec<Option<T>>> = std::sync::Mutex::new((0..n).map(|_| None).collect());
    let first_error: std::sync::Mutex<Option<RealcutError>> = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for j in 0..jobs.clamp(1, n.max(1)) {
            let (next, results, first_error) = (&next, &results, &first_error);
            scope.spawn(move || loop {
                if cancel.load(Ordering::SeqCst) || first_error.lock().unwrap().is_some() {
                    return;
                }
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= n {
                    return;
                }
                match run_one(i, j) {
                    Ok(r) => {
                        results.lock().unwrap()[i] = Some(r);
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
    let prepared = prepare_all(guest, specs)?;
    run_on_guests(run.jobs, trials.len(), cancel, on_trials, &|i, j| {
        let VmTrial { spec: key, k } = trials[i];
        let (Some((payloads, v)), Some(spec)) = (prepared.get(key), specs.get(key)) else {
            return Err(RealcutError::Spec(format!("vm trial {i} names spec {key} of {}", specs.len())));
        };
        let disk = work.join(format!("trial-{j}.img"));
        let mut rec = guest.trial(v, spec, payloads, k, &disk)?;
        if rec.judgement.is_violation() || rec.judgement.judge_mismatch.is_some() {
            let dir = keep_dir.join(format!("vm-ext4-{i}-{}", rec.facts.point));
            rec.kept = keep_vm_evidence(&dir, &disk, &rec, spec, &guest.assets.kernel_version)
                .map_err(|e| eprintln!("crashlab: cannot keep the evidence of trial {i}: {e}"))
                .ok();
        }
        Ok(rec)
    })
}

/// [`run_vm_trials`] on a disk with a volatile write cache: each trial is
/// one cut whose sampled disk states are all checked. Returns the cuts in
/// trial order; evidence of a state whose file the model forbids, or whose
/// filesystem cannot be read, is kept under `keep_dir`.
pub fn run_vm_volatile_trials(
    guest: &VmGuest,
    specs: &[&WriterSpec],
    trials: &[VolatileVmTrial],
    disk: &VolatileDiskConfig,
    run: &VmRunConfig,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<Vec<VolatileCut>, RealcutError> {
    let (work, keep_dir) = (run.work.as_path(), run.keep_dir.as_path());
    let prepared = prepare_all(guest, specs)?;
    run_on_guests(run.jobs, trials.len(), cancel, on_trials, &|i, j| {
        let t = &trials[i];
        let (Some((payloads, v)), Some(spec)) = (prepared.get(t.spec), specs.get(t.spec)) else {
            return Err(RealcutError::Spec(format!("vm trial {i} names spec {} of {}", t.spec, specs.len())));
        };
        let slot = work.join(format!("trial-{j}"));
        let evidence = keep_dir.join(format!("vm-ext4-{i}-{}", CrashPoint::BeforeOp(t.k)));
        guest.volatile_trial(v, spec, payloads, t, disk, TrialFiles { slot: &slot, evidence: &evidence })
    })
}

/// The guest's disk and writeback, for [`run_vm`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmOptions {
    pub disk: VmDisk,
    /// Volatile disk: disk states checked per cut, at most.
    pub states_per_cut: usize,
    /// [`VmGuest::writeback_centisecs`].
    pub writeback_centisecs: Option<u32>,
    /// KVM or TCG ([`VmGuest::choose_accel`]).
    pub accel: AccelChoice,
}

impl VmOptions {
    /// The flags that select these options on `crashlab soundness` (for
    /// rerun lines): empty for the defaults.
    pub fn args(&self) -> String {
        let mut s = String::new();
        if let VmDisk::Volatile(_) = self.disk {
            s.push_str(&format!(" --disk {} --disk-states {}", self.disk, self.states_per_cut));
        }
        if let Some(cs) = self.writeback_centisecs {
            s.push_str(&format!(" --guest-writeback-cs {cs}"));
        }
        s
    }

    /// The report's `environment.disk`: the disk, and the guest's writeback
    /// when it is not the kernel's default (it decides what reaches the disk
    /// unsynced).
    pub fn describe(&self) -> String {
        let mut s = self.disk.describe(self.states_per_cut);
        if let Some(cs) = self.writeback_centisecs {
            s.push_str(&format!(
                "; guest writeback: vm.dirty_expire_centisecs = vm.dirty_writeback_centisecs = {cs} (dirty pages \
                 written back within about {} ms, with no flush after them), and qemu killed {} ms after the writer \
                 stopped",
                cs * 10 * 2,
                settle_for(cs).as_millis()
            ));
        }
        s
    }
}

/// Run a vm campaign (ext4 in the guest) on `opts.disk`. Trials run one at
/// a time, or `jobs` guests at once. On a volatile disk each trial is a cut
/// of which up to `opts.states_per_cut` disk states are checked, each
/// counted as a trial of the report; its `volatile_disk` section says what
/// the cuts did.
pub fn run_vm(
    cfg: &SoundnessConfig,
    assets: VmAssets,
    run: &VmRunConfig,
    opts: &VmOptions,
    cancel: &AtomicBool,
    on_trials: &(dyn Fn(usize) + Sync),
) -> Result<SoundnessReport, RealcutError> {
    let started = Instant::now();
    let (specs, trials) = plan(cfg)?;
    let mut guest = VmGuest::new(assets, &run.work, run.timeout)?;
    guest.writeback_centisecs = opts.writeback_centisecs;
    let accel = guest.choose_accel(opts.accel)?;
    let key_of = |t: &PlannedTrial| specs.iter().position(|(w, _)| *w == t.scenario).expect("planned");
    let vm_trials: Vec<VmTrial> = trials
        .iter()
        .map(|t| {
            let CrashPoint::BeforeOp(k) = t.point else { unreachable!("plans are op boundaries") };
            VmTrial { spec: key_of(t), k }
        })
        .collect();
    let spec_refs: Vec<&WriterSpec> = specs.iter().map(|(_, s)| s).collect();
    let kernel = guest.assets.kernel_version.clone();
    let states_per_cut = opts.states_per_cut.max(1);
    let opts = VmOptions { states_per_cut, ..*opts };
    let (mut filesystems, summary) = match opts.disk {
        VmDisk::NoCache => {
            let results = run_vm_trials(&guest, &spec_refs, &vm_trials, run, cancel, on_trials)?;
            let records: Vec<(PlannedTrial, RealTrialRecord)> = trials.iter().copied().zip(results).collect();
            aggregate(cfg, &kernel, &records)
        }
        VmDisk::Volatile(mode) => {
            let dcfg = VolatileDiskConfig { mode, states_per_cut };
            let vtrials: Vec<VolatileVmTrial> = trials
                .iter()
                .zip(&vm_trials)
                .map(|(t, v)| VolatileVmTrial { spec: v.spec, k: v.k, seed: volatile_seed(cfg.seed, mode, t) })
                .collect();
            let cuts = run_vm_volatile_trials(&guest, &spec_refs, &vtrials, &dcfg, run, cancel, on_trials)?;
            aggregate_volatile(cfg, &kernel, &trials, &cuts, &opts)
        }
    };
    for f in &mut filesystems {
        for v in &mut f.violation_details {
            v.rerun.push_str(&opts.args());
        }
    }
    Ok(SoundnessReport {
        schema_version: SOUNDNESS_SCHEMA_VERSION.into(),
        crashlab_version: env!("CARGO_PKG_VERSION").into(),
        backend: Backend::Vm,
        environment: SoundnessEnvironment {
            kernel_release: kernel,
            page_size: crate::page_size::page_size(),
            work_dir: run.work.display().to_string(),
            work_dir_fs: crate::environment::fs_type(&run.work),
            model: opts.disk.verdict_model_name().into(),
            disk: opts.describe(),
            accelerator: Some(accel.describe()),
        },
        seed: cfg.seed,
        config: cfg.clone(),
        duration_ms: started.elapsed().as_millis() as u64,
        filesystems,
        summary,
    })
}

/// The seed of one trial's random disk states: from the campaign seed and
/// the trial itself, so a rerun (`--scenario S --point P`) draws the same
/// choices.
pub fn volatile_seed(seed: u64, mode: DiskCutMode, t: &PlannedTrial) -> u64 {
    derive_seed(seed, &["volatile-disk", mode.name(), &t.scenario.to_string(), &t.point.to_string()])
}

/// How the vm backend cuts on a volatile disk, in words (the report's `cut_method`).
pub const VOLATILE_CUT_METHOD: &str = "qemu (virtio-blk with a write-back cache on an NBD disk served by the \
                                       harness) SIGKILLed at the writer's stop; per sampled disk state: the image \
                                       materialized, e2fsck -fy on a copy, debugfs dump";

/// The records of every judged disk state go through [`aggregate`] (each
/// state one trial); the cuts and the findings that are not soundness
/// violations go into the `volatile_disk` section.
fn aggregate_volatile(
    cfg: &SoundnessConfig,
    kernel: &str,
    trials: &[PlannedTrial],
    cuts: &[VolatileCut],
    opts: &VmOptions,
) -> (Vec<FsSoundness>, SoundnessSummary) {
    let VmDisk::Volatile(mode) = opts.disk else { unreachable!("a volatile disk") };
    let rerun = |p: &PlannedTrial| rerun_line(cfg, p) + &opts.args();
    let mut r = VolatileDiskReport {
        mode,
        states_per_cut: opts.states_per_cut as u32,
        guest_writeback_centisecs: opts.writeback_centisecs,
        cuts: 0,
        states_checked: 0,
        states_judged: 0,
        states_unreadable: 0,
        cuts_with_pending_writes: 0,
        pending_writes: 0,
        max_pending_writes: 0,
        writes: 0,
        fua_writes: 0,
        flushes: 0,
        cuts_without_flush: 0,
        states_e2fsck_repaired: 0,
        states_torn_observed: (mode == DiskCutMode::Torn).then_some(0),
        violations: Vec::new(),
        unreadable: Vec::new(),
        judge_mismatches: Vec::new(),
        per_cut: Vec::new(),
    };
    let mut records = Vec::new();
    // Evidence directory -> disk state, to name the state in the violation details.
    let mut state_of_kept: Vec<(String, String)> = Vec::new();
    for (p, cut) in trials.iter().zip(cuts) {
        r.cuts += 1;
        r.pending_writes += cut.pending_writes;
        r.max_pending_writes = r.max_pending_writes.max(cut.pending_writes);
        r.cuts_with_pending_writes += (cut.pending_writes > 0) as u64;
        r.writes += cut.nbd.writes;
        r.fua_writes += cut.nbd.fua_writes;
        r.flushes += cut.nbd.flushes;
        r.cuts_without_flush += (cut.nbd.flushes == 0) as u64;
        for st in &cut.states {
            r.states_checked += 1;
            let finding = |detail: String, explanation: Option<String>, kept: &Option<PathBuf>| DiskStateFinding {
                trial: r.cuts - 1,
                explanation,
                scenario: p.scenario,
                point: p.point,
                state: st.state.clone(),
                detail,
                allowed_if_sectors_tear: st.allowed_if_sectors_tear,
                kept: kept.as_ref().map(|k| k.display().to_string()),
                rerun: rerun(p),
            };
            match &st.outcome {
                StateOutcome::Judged(rec) => {
                    r.states_judged += 1;
                    r.states_e2fsck_repaired += st.e2fsck_repaired as u64;
                    if let (Some(n), Some(false)) = (r.states_torn_observed.as_mut(), st.page_whole_allows) {
                        *n += 1;
                    }
                    if let Some(f) = &rec.judgement.forbidden {
                        if r.violations.len() < MAX_LISTED {
                            r.violations.push(finding(f.to_string(), None, &rec.kept));
                        }
                    }
                    if let Some(m) = &rec.judgement.judge_mismatch {
                        if r.judge_mismatches.len() < MAX_LISTED {
                            r.judge_mismatches.push(finding(m.clone(), None, &rec.kept));
                        }
                    }
                    if let Some(k) = &rec.kept {
                        let tear = match st.allowed_if_sectors_tear {
                            Some(true) => "; the model with torn 512-byte sectors allows it",
                            Some(false) => "; the model with torn 512-byte sectors forbids it too",
                            None => "",
                        };
                        state_of_kept.push((k.display().to_string(), format!("{}{tear}", st.state)));
                    }
                    records.push((*p, (**rec).clone()));
                }
                StateOutcome::Unreadable { detail, explanation, kept } => {
                    r.states_unreadable += 1;
                    if r.unreadable.len() < MAX_LISTED {
                        r.unreadable.push(finding(detail.clone(), explanation.clone(), kept));
                    }
                }
            }
        }
        if r.per_cut.len() < MAX_LISTED {
            r.per_cut.push(CutSummary {
                scenario: p.scenario,
                point: p.point,
                writes: cut.nbd.writes,
                fua_writes: cut.nbd.fua_writes,
                flushes: cut.nbd.flushes,
                pending_writes: cut.pending_writes,
                state_space: cut.state_space,
                states_checked: cut.states.len() as u64,
            });
        }
    }
    let (mut filesystems, mut summary) = aggregate(cfg, kernel, &records);
    if filesystems.is_empty() && r.cuts > 0 {
        // Not one state was readable: still a section to tell so.
        filesystems.push(FsSoundness::empty(FsKind::Ext4, Backend::Vm, kernel, CutMethod::VmSigkill));
        summary.sound = true;
    }
    for f in &mut filesystems {
        f.cut_method = VOLATILE_CUT_METHOD.into();
        for v in &mut f.violation_details {
            if let Some((_, state)) = v.kept.as_ref().and_then(|k| state_of_kept.iter().find(|(d, _)| d == k)) {
                v.detail = format!("{} (disk state {state})", v.detail);
            }
        }
        f.volatile_disk = Some(r.clone());
    }
    (filesystems, summary)
}

/// What a kept disk state needs besides its judgement.
struct StateEvidence<'a> {
    dir: PathBuf,
    /// The materialized state, before e2fsck.
    image: &'a Path,
    kernel: &'a str,
    spec: &'a WriterSpec,
    facts: &'a TrialFacts,
    mode: DiskCutMode,
    state: String,
    disk: &'a VolatileDisk,
    nbd: &'a NbdStats,
}

fn keep_volatile_evidence(
    ev: &StateEvidence<'_>,
    judgement: Option<&RealJudgement>,
    observed: Option<&[u8]>,
    fsck: &FsckRun,
) -> Result<PathBuf, RealcutError> {
    let dir = &ev.dir;
    std::fs::create_dir_all(dir).map_err(sys(format!("cannot create {}", dir.display())))?;
    let what = match judgement {
        Some(_) => {
            "a real power cut (qemu killed) on a disk with a volatile write cache left, in a disk state the \
                    disk model allows, a file the simulated power-loss model forbids"
        }
        None => {
            "a real power cut (qemu killed) on a disk with a volatile write cache left, in a disk state the disk \
                 model allows, an ext4 that e2fsck -fy could not repair or without the file"
        }
    };
    let evidence = serde_json::json!({
        "what": what,
        "kernel_release": ev.kernel,
        "fs": FsKind::Ext4,
        "cut": CutMethod::VmSigkill,
        "cut_method": VOLATILE_CUT_METHOD,
        "disk": VmDisk::Volatile(ev.mode).name(),
        "disk_model": ev.mode.describe(),
        "disk_state": ev.state,
        "pending_writes": ev.disk.pending_extents(),
        "writes_received": ev.disk.writes_received(),
        "nbd": ev.nbd,
        "e2fsck": { "command": fsck.command, "exit": fsck.exit, "output": fsck.output },
        "file": FILE,
        "facts": ev.facts,
        "judgement": judgement,
        "spec": ev.spec,
    });
    std::fs::write(dir.join("trial.json"), serde_json::to_string_pretty(&evidence).expect("serializes"))
        .map_err(sys(format!("cannot write {}", dir.display())))?;
    copy_sparse(ev.image, &dir.join("post-cut-ext4.img"))?;
    if let Some(bytes) = observed {
        let p = dir.join("observed.bin");
        std::fs::write(&p, bytes).map_err(sys(format!("cannot write {}", p.display())))?;
    }
    Ok(dir.to_owned())
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
    use super::super::campaign::WorkloadId;
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
    fn the_guest_writeback_is_changed_only_when_asked() {
        assert_eq!(kernel_cmdline(Some(7), None), "console=ttyS0 panic=-1 quiet crashlab.k=7");
        assert_eq!(
            kernel_cmdline(Some(7), Some(1)),
            "console=ttyS0 panic=-1 quiet crashlab.k=7 crashlab.writeback_cs=1"
        );
        let s = init_script();
        let hook = s.lines().position(|l| l.contains("dirty_expire_centisecs")).expect("the writeback hook");
        assert!(s.lines().nth(hook).unwrap().starts_with("if [ -n \"$wb\" ]"), "only with crashlab.writeback_cs");
        assert!(s.lines().nth(hook).unwrap().contains("/proc/sys/vm/dirty_writeback_centisecs"));
        let exec = s.lines().position(|l| l.starts_with("exec /writer")).unwrap();
        assert!(hook < exec, "set before the writer runs");
    }

    #[test]
    fn vm_disks_parse_and_say_what_they_lose() {
        for d in [VmDisk::NoCache, VmDisk::Volatile(DiskCutMode::Reorder), VmDisk::Volatile(DiskCutMode::Torn)] {
            assert_eq!(d.name().parse::<VmDisk>().unwrap(), d);
        }
        let err = "volatile".parse::<VmDisk>().unwrap_err();
        assert!(err.contains("no-cache, volatile-reorder, volatile-torn"), "{err}");
        assert!(VmDisk::NoCache.describe(4).contains("no volatile write cache"));
        let torn = VmDisk::Volatile(DiskCutMode::Torn).describe(4);
        for words in ["NBD", "volatile write cache", "lost, reordered or torn", "512-byte sector", "up to 4"] {
            assert!(torn.contains(words), "{words}: {torn}");
        }
        assert!(!VmDisk::Volatile(DiskCutMode::Reorder).describe(4).contains("torn"));
        assert_eq!(VmOptions::default().args(), "");
        let o = VmOptions {
            disk: VmDisk::Volatile(DiskCutMode::Torn),
            states_per_cut: 6,
            writeback_centisecs: Some(1),
            ..VmOptions::default()
        };
        assert_eq!(o.args(), " --disk volatile-torn --disk-states 6 --guest-writeback-cs 1");
        assert!(o.describe().contains("dirty_writeback_centisecs = 1"), "{}", o.describe());
    }

    #[test]
    fn e2fsck_output_tells_a_repair_from_a_journal_replay() {
        let run = |output: &str| FsckRun { command: "e2fsck".into(), exit: Some(1), output: output.into() };
        let replay = "img: recovering journal\nPass 1: Checking inodes, blocks, and sizes\nimg: 12/8192 files";
        assert!(!run(replay).answered_a_repair_question());
        let fixed = "Pass 5: Checking group summary information\nBlock bitmap differences:  -1234\nFix? yes\n\n";
        assert!(run(fixed).answered_a_repair_question());
        assert_eq!(run("a\n\nb\nc\n").output_tail(), "a | b | c");
    }

    /// A real spec and two judged files: its initial content (allowed
    /// before op 0) and one with a byte no op wrote (forbidden).
    fn judged(cfg: &SoundnessConfig) -> (RealTrialRecord, RealTrialRecord) {
        let spec = cfg.spec(WorkloadId::PartialMsync).unwrap();
        let payloads = Payloads::build(&spec);
        let facts = killed_before(0, JournalSnapshot { completed: 0, in_flight: None, failed: None });
        let rec = |bytes: &[u8]| RealTrialRecord {
            fs: FsKind::Ext4,
            cut: CutMethod::VmSigkill,
            facts,
            judgement: judge(&spec, &payloads, &facts, bytes).unwrap(),
            kept: None,
            trial_ns: 2_000_000,
        };
        let mut bad = payloads.base.to_vec();
        bad[100] ^= 0xff;
        (rec(&payloads.base), rec(&bad))
    }

    #[test]
    fn volatile_cuts_aggregate_into_state_trials_findings_and_rerun_lines() {
        let cfg: SoundnessConfig = serde_json::from_value(serde_json::json!({
            "backend": "vm", "seed": 9, "filesystems": ["ext4"], "trials": 2,
            "scenarios": ["probe/partial-msync"], "file_size": 16384, "txns": 3
        }))
        .unwrap();
        let (ok, mut bad) = judged(&cfg);
        assert!(!ok.judgement.is_violation() && bad.judgement.is_violation());
        bad.kept = Some(PathBuf::from("/ev/vm-ext4-0-before:0-state1"));
        let p = PlannedTrial { fs: FsKind::Ext4, scenario: WorkloadId::PartialMsync, point: CrashPoint::BeforeOp(0) };
        let nbd = |writes, flushes| NbdStats { writes, flushes, ..NbdStats::default() };
        let state = |s: &str, outcome| CheckedState {
            state: s.into(),
            e2fsck_repaired: false,
            allowed_if_sectors_tear: None,
            page_whole_allows: None,
            outcome,
        };
        let cuts = vec![
            VolatileCut {
                nbd: nbd(5, 2),
                pending_writes: 3,
                state_space: 1 << 20,
                states: vec![
                    state("reorder kept=w4", StateOutcome::Judged(Box::new(ok.clone()))),
                    CheckedState {
                        allowed_if_sectors_tear: Some(true),
                        ..state("reorder kept=w3", StateOutcome::Judged(Box::new(bad)))
                    },
                ],
            },
            VolatileCut {
                nbd: nbd(1, 0),
                pending_writes: 0,
                state_space: 1,
                states: vec![state(
                    "reorder kept=none",
                    StateOutcome::Unreadable {
                        detail: "e2fsck -fy could not repair".into(),
                        explanation: None,
                        kept: None,
                    },
                )],
            },
        ];
        let opts = VmOptions {
            disk: VmDisk::Volatile(DiskCutMode::Reorder),
            states_per_cut: 4,
            writeback_centisecs: None,
            ..VmOptions::default()
        };
        let (fss, summary) = aggregate_volatile(&cfg, "6.1", &[p, p], &cuts, &opts);
        assert_eq!((summary.trials, summary.violations, summary.sound), (2, 1, false), "judged states are trials");
        let f = &fss[0];
        assert_eq!(f.cut_method, VOLATILE_CUT_METHOD);
        assert!(
            f.violation_details[0]
                .detail
                .ends_with("(disk state reorder kept=w3; the model with torn 512-byte sectors allows it)"),
            "{}",
            f.violation_details[0].detail
        );
        let v = f.volatile_disk.as_ref().unwrap();
        assert_eq!((v.cuts, v.states_checked, v.states_judged, v.states_unreadable), (2, 3, 2, 1));
        assert_eq!((v.pending_writes, v.max_pending_writes, v.cuts_with_pending_writes), (3, 3, 1));
        assert_eq!((v.writes, v.flushes, v.cuts_without_flush), (6, 2, 1));
        assert_eq!(v.violations.len(), 1);
        assert_eq!(v.violations[0].state, "reorder kept=w3");
        assert_eq!(v.violations[0].allowed_if_sectors_tear, Some(true));
        assert_eq!(v.violations[0].kept.as_deref(), Some("/ev/vm-ext4-0-before:0-state1"));
        assert!(
            v.violations[0].rerun.ends_with(
                "--point before:0 --seed 9 --size 16384 --txns 3 --trials 1 --disk volatile-reorder --disk-states 4"
            ),
            "{}",
            v.violations[0].rerun
        );
        assert_eq!(v.unreadable[0].state, "reorder kept=none");
        assert_eq!(v.states_torn_observed, None, "counted on a torn disk only");
        assert_eq!(v.per_cut.iter().map(|c| c.states_checked).collect::<Vec<_>>(), vec![2, 1]);
        // The section round-trips, and a report without it still reads.
        let json = serde_json::to_value(f).unwrap();
        assert_eq!(serde_json::from_value::<FsSoundness>(json.clone()).unwrap(), *f);
        let mut old = json;
        old.as_object_mut().unwrap().remove("volatile_disk");
        assert_eq!(serde_json::from_value::<FsSoundness>(old).unwrap().volatile_disk, None);
        // On a torn disk: judged states the page-whole model forbids are
        // counted as observed tearing (the verdict is the torn model's).
        let torn_cut = VolatileCut {
            nbd: nbd(2, 1),
            pending_writes: 2,
            state_space: 9,
            states: [Some(true), Some(false), Some(false)]
                .into_iter()
                .map(|a| CheckedState {
                    page_whole_allows: a,
                    ..state("torn kept=s8:w4", StateOutcome::Judged(Box::new(ok.clone())))
                })
                .collect(),
        };
        let opts = VmOptions { disk: VmDisk::Volatile(DiskCutMode::Torn), ..opts };
        let (fss, _) = aggregate_volatile(&cfg, "6.1", &[p], &[torn_cut], &opts);
        assert_eq!(fss[0].volatile_disk.as_ref().unwrap().states_torn_observed, Some(2));
    }

    #[test]
    fn a_disk_that_tears_sectors_is_judged_by_the_torn_sector_model() {
        assert_eq!(VmDisk::Volatile(DiskCutMode::Torn).verdict_model().tear, Some(DEFAULT_TEAR));
        assert_eq!(VmDisk::Volatile(DiskCutMode::Reorder).verdict_model().tear, None);
        assert_eq!(VmDisk::NoCache.verdict_model().tear, None);
        assert!(VmDisk::Volatile(DiskCutMode::Torn).verdict_model_name().starts_with("power-loss-torn"));
        assert!(VmDisk::NoCache.verdict_model_name().starts_with("power-loss (pages whole)"));
        // A file with one page half new, half old after an unsynced
        // overwrite of it: the torn model allows it, the page-whole forbids it.
        let cfg: SoundnessConfig = serde_json::from_value(serde_json::json!({
            "backend": "vm", "seed": 9, "filesystems": ["ext4"], "trials": 2,
            "scenarios": ["shared/no-sync"], "file_size": 16384, "txns": 3
        }))
        .unwrap();
        let spec = cfg.spec("shared/no-sync".parse().unwrap()).unwrap();
        let payloads = Payloads::build(&spec);
        let completed = spec.ops.len();
        let facts = killed_before(completed, JournalSnapshot { completed, in_flight: None, failed: None });
        let page_whole = PowerLossModel::build(&spec, &payloads, &facts, &PowerLossConfig::default()).unwrap();
        let newest = page_whole.state_bytes(&page_whole.all_newest());
        // The first page the writer changed, with its second sector reverted.
        let page = (0..newest.len()).find(|&i| newest[i] != payloads.base[i]).unwrap() / 4096 * 4096;
        let mut mixed = newest.clone();
        let sector = (page..page + 4096).step_by(512).find(|&s| newest[s..s + 512] != payloads.base[s..s + 512]);
        let s0 = sector.unwrap();
        mixed[s0..s0 + 512].copy_from_slice(&payloads.base[s0..s0 + 512]);
        let torn = VmDisk::Volatile(DiskCutMode::Torn).verdict_model();
        assert!(!judge_with(&spec, &payloads, &facts, &mixed, &torn).unwrap().is_violation());
        assert!(judge(&spec, &payloads, &facts, &mixed).unwrap().is_violation());
    }

    #[test]
    fn a_torn_superblock_on_a_filesystem_of_one_block_group_explains_a_lost_filesystem() {
        // An ext4 superblock as mkfs.ext4 writes it for the guest's 32 MiB
        // image: 8192 blocks of 4 KiB, 32768 blocks per group.
        let mut sb = vec![0u8; 1024];
        sb[4..8].copy_from_slice(&8192u32.to_le_bytes());
        sb[32..36].copy_from_slice(&32768u32.to_le_bytes());
        sb[56..58].copy_from_slice(&0xEF53u16.to_le_bytes());
        assert_eq!(ext4_block_groups(&sb), Some(1));
        sb[4..8].copy_from_slice(&65536u32.to_le_bytes());
        assert_eq!(ext4_block_groups(&sb), Some(2));
        sb[56] = 0;
        assert_eq!(ext4_block_groups(&sb), None, "not an ext4 superblock");
        let why = explain_unrepairable(true, Some(1)).unwrap();
        assert!(why.contains("primary superblock") && why.contains("no backup superblock"), "{why}");
        assert!(explain_unrepairable(false, Some(1)).is_none(), "an intact superblock explains nothing");
        assert!(explain_unrepairable(true, Some(3)).unwrap().contains("3 block groups"));
    }

    #[test]
    fn the_writer_source_is_the_one_embedded() {
        assert!(WRITER_C.contains("isa-debugcon"));
        assert!(WRITER_C.contains("outb"));
    }
}
