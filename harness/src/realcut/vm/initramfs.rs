//! What goes into the guest: the spec's ops serialized for the C writer
//! (`writer.c`, embedded here), the newc cpio archive of the initramfs, the
//! init script and the kernel command line that tells it where to stop.
//!
//! Architecture Invariant: pure.

use crate::payload::Payloads;
use crate::spec::{MappingKind, MsyncFlags, Op, WriterSpec};

/// Loaded in this order by the guest's init (the cloud kernel has ext4 built in).
pub const MODULES: [&str; 6] =
    ["virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci", "virtio_blk"];

/// The file's name inside the guest's filesystem.
pub const FILE: &str = "crashlab.dat";

/// The guest writer's source, compiled by [`super::guest::VmGuest::new`].
pub const WRITER_C: &str = include_str!("writer.c");

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
    fn the_writer_source_is_the_one_embedded() {
        assert!(WRITER_C.contains("isa-debugcon"));
        assert!(WRITER_C.contains("outb"));
    }
}
