//! A guest in a work directory: the writer compiled once, each spec's
//! initramfs and pristine image made once, qemu booted and killed with
//! SIGKILL at the writer's stop (its progress read from the debug port),
//! and one trial on a disk with no volatile cache.

use std::io::Read;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::assets::VmAssets;
use super::initramfs::FILE;
use super::initramfs::MODULES;
use super::initramfs::{cpio_newc, init_script, kernel_cmdline, serialize_ops, CpioEntry, WRITER_C};
use super::{settle_for, GUEST_MEMORY_BYTES, IMAGE_BYTES};
use crate::crash::CrashPoint;
use crate::journal::{JournalSnapshot, OpFailure};
use crate::payload::Payloads;
use crate::process_model::{ChildExit, TrialFacts};
use crate::realcut::fs::run_command;
use crate::realcut::judge::judge;
use crate::realcut::protocol::RealTrialRecord;
use crate::realcut::sys::copy_sparse;
use crate::realcut::vm_accel::{self, Accel, AccelChoice, AccelDecision, KVM_PROBE_TIMEOUT};
use crate::realcut::{GuestFailure, RealcutError};
use crate::spec::{MappingKind, WriterSpec};
use crate::vocab::CrashKind;
use crate::vocab::{CutMethod, FsKind};

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
    pub(super) work: PathBuf,
    pub(super) writer: Vec<u8>,
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
        std::fs::create_dir_all(work).map_err(RealcutError::sys(format!("cannot create {}", work.display())))?;
        let src = work.join("writer.c");
        let bin = work.join("writer");
        std::fs::write(&src, WRITER_C).map_err(RealcutError::sys(format!("cannot write {}", src.display())))?;
        run_command(
            &assets.gcc,
            &["-static".as_ref(), "-O2".as_ref(), "-o".as_ref(), bin.as_os_str(), src.as_os_str()],
        )?;
        let writer = std::fs::read(&bin).map_err(RealcutError::sys(format!("cannot read {}", bin.display())))?;
        Ok(VmGuest { assets, work: work.to_owned(), writer, timeout, writeback_centisecs: None, accel: Accel::Tcg })
    }

    /// Set [`accel`](Self::accel) as `choice` says; for `auto` and `kvm`,
    /// by booting a probe guest under KVM ([`vm_accel`](crate::realcut::vm_accel)).
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
        std::fs::create_dir_all(&seed).map_err(RealcutError::sys(format!("cannot create {}", seed.display())))?;
        // The base pattern has no all-zero block, so mkfs -d allocates it all.
        std::fs::write(seed.join(FILE), &*payloads.base)
            .map_err(RealcutError::sys(format!("cannot write {}", seed.display())))?;
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
        let read = |p: &Path| std::fs::read(p).map_err(RealcutError::sys(format!("cannot read {}", p.display())));
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
            .map_err(RealcutError::sys(format!("cannot write {}", initramfs.display())))?;
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
    pub(super) fn boot_and_kill_on(
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
        let mut child =
            cmd.spawn().map_err(RealcutError::sys(format!("cannot start {}", self.assets.qemu.display())))?;
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
}

/// A guest writer stopped before op `k` and killed with its guest.
pub(super) fn killed_before(k: usize, journal: JournalSnapshot) -> TrialFacts {
    TrialFacts {
        kind: CrashKind::Sigkill,
        point: CrashPoint::BeforeOp(k),
        exit: ChildExit::Signaled(libc::SIGKILL),
        journal,
        external_truncate: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
