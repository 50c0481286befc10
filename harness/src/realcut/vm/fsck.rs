//! After the cut: the image's journal replayed on a copy (`e2fsck -fy`)
//! and the file dumped (`debugfs`), no mount needed; an image that cannot be
//! repaired, or has lost the file, is an outcome, not an error. Also the
//! image's superblock: why e2fsck could not repair a disk state.

use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::{Command, Stdio};

use super::guest::VmGuest;
use super::initramfs::FILE;
use crate::realcut::fs::run_command;
use crate::realcut::sys::copy_sparse;
use crate::realcut::RealcutError;

impl VmGuest {
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
            .map_err(RealcutError::sys(format!("cannot run {}", self.assets.e2fsck.display())))?;
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
}

/// The primary ext4 superblock of the image at `path`.
pub(super) fn read_superblock(path: &Path) -> Result<Vec<u8>, RealcutError> {
    let (start, end) = EXT4_PRIMARY_SUPERBLOCK;
    let f = std::fs::File::open(path).map_err(RealcutError::sys(format!("cannot open {}", path.display())))?;
    let mut sb = vec![0u8; (end - start) as usize];
    f.read_exact_at(&mut sb, start)
        .map_err(RealcutError::sys(format!("cannot read the superblock of {}", path.display())))?;
    Ok(sb)
}

/// Write `patches` (offset, bytes) into the image file at `path`.
pub(super) fn write_patches(path: &Path, patches: &[(u64, Vec<u8>)]) -> Result<(), RealcutError> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(RealcutError::sys(format!("cannot open {}", path.display())))?;
    for (at, bytes) in patches {
        f.write_all_at(bytes, *at).map_err(RealcutError::sys(format!(
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

/// Where ext4 keeps its primary superblock: bytes 1024..2048 of the device,
/// two 512-byte sectors (2 and 3).
pub(super) const EXT4_PRIMARY_SUPERBLOCK: (u64, u64) = (1024, 2048);

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
