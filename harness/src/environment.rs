//! Facts about the machine a report was made on.

use std::path::Path;

use crate::vocab::Environment;

pub fn probe(dir: &Path) -> Environment {
    Environment { kernel_release: kernel_release(), fs_type: fs_type(dir), page_size: crate::page_size::page_size() }
}

pub fn kernel_release() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// The filesystem holding `dir`, named from statfs's magic number.
pub fn fs_type(dir: &Path) -> String {
    let magic = match nix::sys::statfs::statfs(dir) {
        Ok(s) => s.filesystem_type().0 as u64,
        Err(e) => return format!("unknown ({e})"),
    };
    match magic {
        0xEF53 => "ext4".into(),
        0x0102_1994 => "tmpfs".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x794C_7630 => "overlayfs".into(),
        0x6573_5546 => "fuse".into(),
        0x2FC1_2FC1 => "zfs".into(),
        0xF2F5_2010 => "f2fs".into(),
        0x6969 => "nfs".into(),
        0x5346_544E => "ntfs".into(),
        0x4D44 => "vfat".into(),
        m => format!("unknown (magic {m:#x})"),
    }
}

/// Where the kernel's console messages go and which of them it prints
/// there (`/proc/sys/kernel/printk`, `/proc/consoles`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelConsole {
    /// Messages of a level below this are printed on the consoles.
    pub loglevel: u32,
    pub consoles: Vec<String>,
}

impl KernelConsole {
    pub fn probe() -> Option<KernelConsole> {
        let printk = std::fs::read_to_string("/proc/sys/kernel/printk").ok()?;
        let consoles = std::fs::read_to_string("/proc/consoles").unwrap_or_default();
        KernelConsole::parse(&printk, &consoles)
    }

    /// [`Self::cut_message_note`] for this machine, if any.
    pub fn cut_message_note_here() -> Option<String> {
        KernelConsole::probe().and_then(|c| c.cut_message_note())
    }

    pub fn parse(printk: &str, consoles: &str) -> Option<KernelConsole> {
        let loglevel = printk.split_whitespace().next()?.parse().ok()?;
        let consoles = consoles.lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect();
        Some(KernelConsole { loglevel, consoles })
    }

    /// A note when every power cut writes to a serial console: ext4's
    /// shutdown message is KERN_ALERT (1) and jbd2's "Aborting journal" is
    /// KERN_ERR (3), both printed synchronously on a console whose loglevel
    /// is above 3. On the project's machines that cost ~1.5 ms per cut,
    /// more than the rest of a bare cut; real-cut timings depend on it.
    pub fn cut_message_note(&self) -> Option<String> {
        let serial: Vec<&str> = self.consoles.iter().map(String::as_str).filter(|c| c.starts_with("ttyS")).collect();
        (self.loglevel > 3 && !serial.is_empty()).then(|| {
            format!(
                "kernel console loglevel {} prints every cut's shutdown/journal-abort messages on {} \
                 (synchronous, ~1.5 ms per cut here); `dmesg -n 1` makes cuts faster, and timings differ with it",
                self.loglevel,
                serial.join(",")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serial_console_printing_errors_gets_a_note_and_a_quiet_one_does_not() {
        let noisy = KernelConsole::parse("4\t4\t1\t7\n", "ttyS0                -W- (EC  p a)    4:64\n").unwrap();
        assert_eq!(noisy, KernelConsole { loglevel: 4, consoles: vec!["ttyS0".into()] });
        assert!(noisy.cut_message_note().unwrap().contains("ttyS0"));
        let quiet = KernelConsole::parse("1 4 1 7", "ttyS0 -W- (EC p a) 4:64").unwrap();
        assert_eq!(quiet.cut_message_note(), None);
        let virtual_only = KernelConsole::parse("7 4 1 7", "tty0 -WU (EC p  ) 4:1").unwrap();
        assert_eq!(virtual_only.cut_message_note(), None);
        assert_eq!(KernelConsole::parse("", ""), None);
    }
}
