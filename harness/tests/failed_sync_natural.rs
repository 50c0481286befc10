//! A sync the kernel itself failed (not one crashlab injected) under the
//! durability oracle: the rule of `oracle/tracer/full_disk.rs`
//! (`hold_failed_writeback`) that `--crash enospc,power-loss` rests on for
//! a disk filesystem, measured end to end on ext4.
//!
//! The failing disk is the one of `failed_writeback_kernel.rs`: ext4 on a
//! loop device whose image lies on a small tmpfs, fully allocated, from
//! which the writer itself punches the block of its file's page 0 and then
//! takes the tmpfs's last pages with a ballast file. Its store into page 0
//! then cannot be written back: `fsync` fails with `ENOSPC`, and marks the
//! page clean (measured there), so a retried `fsync` returns 0 without
//! writing it. The documented semantics (reports/SOUNDNESS.md,
//! "`enospc,power-loss`"):
//! - a writer that retries the sync, trusts the 0 and acks is caught: the
//!   acked page may still be at its floor (zeros) after a power loss;
//! - a writer that frees the space, stores its data again and syncs again
//!   before acking is not: the new store dirtied the page, the sync wrote
//!   it (no false alarm).
//!
//! Root only (loop devices, mounts); without it the test fails, unless
//! `CRASHLAB_ALLOW_NO_ROOT=1` (then it says so and passes vacuously).

#[path = "support/root.rs"]
mod root;

use std::ffi::OsStr;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crashlab::external::{run_external, ExternalConfig};
use crashlab::private_mount::Mount;
use crashlab::realcut::fs::{find_program, run_command};
use crashlab::realcut::sys::LoopDevice;
use crashlab::report::external::ExternalReport;
use crashlab::vocab::CrashKind;

/// The setup: `data`, one page of zeros, durable. (The ballast of the
/// previous run is removed first, so that the setup's sync can write.)
const SETUP: &str = r#"rm -f "$1/ballast"; head -c 4096 /dev/zero > data && sync data && sync ."#;
/// The writer's first part: punch the image block under `data`'s page 0,
/// fill the tmpfs, store a page of `x` with `write(2)`, sync: it fails.
const BREAK_AND_STORE: &str = r#"blk=$(filefrag -v data | awk '$1=="0:" {print $4}' | tr -d .)
fallocate -p -o $((blk*4096)) -l 4096 "$1/image"
dd if=/dev/zero of="$1/ballast" bs=4096 2>/dev/null
store() { tr '\0' x < /dev/zero | head -c 4096 | dd of=data conv=notrunc bs=4096 count=1 iflag=fullblock 2>/dev/null; }
store
if sync data 2>/dev/null; then echo "the sync did not fail: the disk is not broken" >&2; exit 4; fi
"#;
/// Retries the sync and trusts its 0 (the fsyncgate mistake).
const TRUSTS_THE_RETRY: &str = r#"sync data && echo 'rec 0'
rm -f "$1/ballast"
sync data
"#;
/// Frees the space, stores its data again, syncs, then acks.
const STORES_AGAIN: &str = r#"rm -f "$1/ballast"
store
sync data && echo 'rec 0'
sync data
"#;
/// An acked `rec 0` needs page 0 all `x`.
const CHECKER: &str = r#"[ ! -s "$CRASHLAB_ACKS" ] || [ "$(head -c 4096 data | tr -d x | wc -c)" = 0 ] || { echo "rec 0 acked, data page 0 not x" >&2; exit 1; }"#;

fn run(scripts: &Path, mnt: &Path, backing: &Path, writer_tail: &str) -> ExternalReport {
    let write = |name: &str, text: &str| {
        let p = scripts.join(name);
        std::fs::write(&p, text).unwrap();
        format!("sh {} {}", p.display(), backing.display())
    };
    let setup = write("setup.sh", SETUP);
    let writer = write("writer.sh", &format!("{BREAK_AND_STORE}{writer_tail}"));
    let checker = write("checker.sh", CHECKER);
    let mut c = ExternalConfig::new(&writer, &checker, Some(&setup), false).unwrap();
    c.crashes = vec![CrashKind::PowerLoss];
    // 8 trials: the even ones at the sync calls, before and after each, so
    // one cuts just before the writer's last sync, after its ack.
    c.trials = 8;
    c.seed = 1;
    c.jobs = 1;
    c.dir = mnt.to_owned();
    c.timeout = Duration::from_secs(60);
    run_external(&c, &AtomicBool::new(false), &|_| {}).unwrap_or_else(|e| panic!("the run fails: {e}"))
}

#[test]
fn a_writer_trusting_a_retried_sync_after_a_real_enospc_is_caught_and_one_storing_again_passes() {
    if !root::have_root("failed_sync_natural") {
        return;
    }
    let Some(mkfs) = find_program("mkfs.ext4") else { panic!("mkfs.ext4 is not installed (scripts/test installs it)") };
    for tool in ["filefrag", "fallocate"] {
        assert!(find_program(tool).is_some(), "{tool} is not installed (e2fsprogs, util-linux)");
    }
    let image_len: u64 = 64 << 20;
    let scratch = tempfile::Builder::new().prefix("crashlab-failed-sync-").tempdir().unwrap();
    let (backing, mnt) = (scratch.path().join("backing"), scratch.path().join("mnt"));
    std::fs::create_dir(&backing).unwrap();
    std::fs::create_dir(&mnt).unwrap();
    // Dropped in reverse order on every path (a panic too): the ext4, the
    // loop device, the tmpfs.
    let _tmpfs = Mount::new(Path::new("tmpfs"), &backing, "tmpfs", &format!("size={}", image_len + (8 << 20))).unwrap();
    let image = backing.join("image");
    let file = std::fs::File::create(&image).unwrap();
    file.set_len(image_len).unwrap();
    let args = [OsStr::new("-q"), OsStr::new("-F"), OsStr::new("-b"), OsStr::new("4096"), image.as_os_str()];
    run_command(&mkfs, &args).unwrap();
    // Every block of the image allocated: the filesystem's own writes never fail.
    // SAFETY: fallocate on a descriptor we own.
    assert_eq!(unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&file), 0, 0, image_len as i64) }, 0);
    let device = LoopDevice::attach(&image, false).unwrap();
    let _ext4 = Mount::new(device.path(), &mnt, "ext4", "").unwrap();

    let report = run(scratch.path(), &mnt, &backing, TRUSTS_THE_RETRY);
    let summary = report.human_summary();
    let pl = report.power_loss.as_ref().expect("a power-loss section");
    assert!(pl.violations >= 1, "the retried sync wrote nothing: {summary}");
    let finding = &pl.failures[0].finding;
    assert_eq!(finding.floor_set, ["data page 0"], "{summary}");
    assert!(finding.reason.contains("data page 0 not x"), "{summary}");

    let report = run(scratch.path(), &mnt, &backing, STORES_AGAIN);
    assert_eq!(report.summary.violations, 0, "the page stored again was written: {}", report.human_summary());
    drop(device);
}
