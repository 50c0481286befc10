//! A directory that shows one power-loss state after another to the
//! checker, rewriting only what changed between consecutive states.
//!
//! A checker may write (a database library opening its file may recover a
//! journal in place), create or remove files. Reusing the directory is
//! sound only if the next state starts from exactly the last one, so after
//! every checker run the directory is compared with the state it was shown
//! (names, sizes, every byte: a read, much cheaper than rewriting a file,
//! and it never sends dirty pages to the disk); on any difference the next
//! state is written whole into an emptied directory.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::space::{Bits, DimKind, StateSpace};
use crate::external::checker::write_acks_file;
use crate::external::ExternalError;

struct Shown {
    /// Which trial's space the directory shows.
    key: u64,
    bits: Bits,
    /// Open for writing, one per file of the space.
    files: Vec<File>,
}

/// One job's state directory and the acks file the checker reads.
pub(crate) struct StateDir {
    pub dir: PathBuf,
    pub acks: PathBuf,
    shown: Option<Shown>,
    /// Whole rewrites so far (the first of each trial included).
    pub full_writes: u64,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> ExternalError {
    move |e| ExternalError::io(what, e)
}

impl StateDir {
    pub fn new(dir: PathBuf, acks: PathBuf) -> StateDir {
        StateDir { dir, acks, shown: None, full_writes: 0 }
    }

    /// Make the directory show `bits` of `space` (trial `key`) and the acks
    /// file hold `acks`.
    pub fn show(&mut self, key: u64, space: &StateSpace, acks: &[Vec<u8>], bits: &Bits) -> Result<(), ExternalError> {
        match self.shown.take() {
            Some(mut shown) if shown.key == key => {
                let result = self.update(space, &mut shown, bits);
                if result.is_ok() {
                    self.shown = Some(shown);
                }
                result
            }
            _ => {
                write_acks_file(&self.acks, acks)?;
                self.write_whole(key, space, bits)
            }
        }
    }

    fn update(&self, space: &StateSpace, shown: &mut Shown, bits: &Bits) -> Result<(), ExternalError> {
        let changed: Vec<usize> = shown.bits.diff(bits).collect();
        let dims = space.dims();
        // A file whose size changes is rewritten whole; the others unit by unit.
        let mut whole: Vec<usize> =
            changed.iter().filter(|&&d| dims[d].kind == DimKind::Size).map(|&d| dims[d].file).collect();
        whole.dedup();
        for &f in &whole {
            let content = space.content(f, bits);
            let path = self.dir.join(&space.files[f].path);
            let file = &shown.files[f];
            file.set_len(content.len() as u64)
                .and_then(|_| file.write_all_at(&content, 0))
                .map_err(io(format!("cannot write the state file {}", path.display())))?;
        }
        let zeros = [0u8; 4096];
        for d in changed {
            let f = dims[d].file;
            if whole.contains(&f) {
                continue;
            }
            let size = space.size(f, bits);
            let (offset, bytes, mut pad) = space.unit_bytes(d, bits, size);
            let file = &shown.files[f];
            let what = || format!("cannot write the state file {}", self.dir.join(&space.files[f].path).display());
            file.write_all_at(bytes, offset).map_err(io(what()))?;
            let mut at = offset + bytes.len() as u64;
            while pad > 0 {
                let n = pad.min(zeros.len());
                file.write_all_at(&zeros[..n], at).map_err(io(what()))?;
                at += n as u64;
                pad -= n;
            }
        }
        shown.bits = bits.clone();
        Ok(())
    }

    fn write_whole(&mut self, key: u64, space: &StateSpace, bits: &Bits) -> Result<(), ExternalError> {
        self.full_writes += 1;
        std::fs::create_dir_all(&self.dir)
            .map_err(io(format!("cannot create the state directory {}", self.dir.display())))?;
        clear_dir(&self.dir)?;
        for d in &space.dirs {
            let path = self.dir.join(d);
            std::fs::create_dir_all(&path).map_err(io(format!("cannot create {}", path.display())))?;
        }
        let mut files = Vec::with_capacity(space.files.len());
        for (f, images) in space.files.iter().enumerate() {
            let path = self.dir.join(&images.path);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io(format!("cannot create {}", parent.display())))?;
            }
            let file = File::options()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .and_then(|file| file.write_all_at(&space.content(f, bits), 0).map(|_| file))
                .map_err(io(format!("cannot write the state file {}", path.display())))?;
            files.push(file);
        }
        self.shown = Some(Shown { key, bits: bits.clone(), files });
        Ok(())
    }

    /// After a checker run: is the directory still exactly the state shown?
    /// If not, the next [`StateDir::show`] rewrites it whole. Returns whether
    /// it was intact.
    pub fn verify(&mut self, space: &StateSpace) -> Result<bool, ExternalError> {
        let Some(shown) = &self.shown else { return Ok(false) };
        let intact = intact(&self.dir, space, &shown.bits)
            .map_err(io(format!("cannot read back the state directory {}", self.dir.display())))?;
        if !intact {
            self.shown = None;
        }
        Ok(intact)
    }
}

fn intact(root: &Path, space: &StateSpace, bits: &Bits) -> std::io::Result<bool> {
    let mut found = 0usize;
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let mut empty = true;
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            empty = false;
            let child = rel.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                stack.push(child);
                continue;
            }
            let Some(f) = space.file_index(&child).filter(|_| kind.is_file()) else { return Ok(false) };
            let bytes = std::fs::read(root.join(&child))?;
            if bytes != space.content(f, bits) {
                return Ok(false);
            }
            found += 1;
        }
        if empty && !rel.as_os_str().is_empty() && !space.dirs.contains(&rel) {
            return Ok(false);
        }
    }
    Ok(found == space.files.len())
}

/// Remove everything inside `dir`.
pub(crate) fn clear_dir(dir: &Path) -> Result<(), ExternalError> {
    let fail = |e| ExternalError::io(format!("cannot empty the directory {}", dir.display()), e);
    for entry in std::fs::read_dir(dir).map_err(fail)? {
        let entry = entry.map_err(fail)?;
        let path = entry.path();
        let removed = if entry.file_type().map_err(fail)?.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.map_err(fail)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::external::power_loss::space::FileImages;

    fn space() -> StateSpace {
        let files = vec![
            FileImages { path: "a".into(), floor: vec![1; 8], newest: vec![2; 12] },
            FileImages { path: "sub/b".into(), floor: vec![3; 8], newest: vec![4; 8] },
        ];
        StateSpace::new(files, vec!["empty".into()], 4, 4)
    }

    fn read(dir: &Path, name: &str) -> Vec<u8> {
        std::fs::read(dir.join(name)).unwrap()
    }

    #[test]
    fn consecutive_states_are_written_incrementally_and_checked_back() {
        let tmp = tempfile::tempdir().unwrap();
        let mut sd = StateDir::new(tmp.path().join("state"), tmp.path().join("state.acks"));
        let s = space();
        let n = s.dim_count();
        assert_eq!(n, 6, "a: size + 3 units; b: 2 units");
        let acks = vec![b"rec 1".to_vec()];
        let mut bits = Bits::all(n, true);
        sd.show(1, &s, &acks, &bits).unwrap();
        assert_eq!(read(&sd.dir, "a"), vec![2; 12]);
        assert_eq!(std::fs::read_to_string(&sd.acks).unwrap(), "rec 1\n");
        assert!(sd.dir.join("empty").is_dir());
        for d in [1, 4, 0] {
            bits.set(d, false);
            sd.show(1, &s, &acks, &bits).unwrap();
            assert!(sd.verify(&s).unwrap());
        }
        assert_eq!(read(&sd.dir, "a"), [vec![1; 4], vec![2; 4]].concat(), "size at its floor");
        assert_eq!(read(&sd.dir, "sub/b"), [vec![3; 4], vec![4; 4]].concat());
        bits.set(0, true);
        sd.show(1, &s, &acks, &bits).unwrap();
        assert_eq!(read(&sd.dir, "a"), [vec![1; 4], vec![2; 8]].concat());
        assert_eq!(sd.full_writes, 1);

        // A checker that writes, or leaves a file: the next state is rewritten whole.
        std::fs::write(sd.dir.join("a"), b"scribbled").unwrap();
        assert!(!sd.verify(&s).unwrap());
        sd.show(1, &s, &acks, &bits).unwrap();
        assert_eq!(read(&sd.dir, "a"), [vec![1; 4], vec![2; 8]].concat());
        assert!(sd.verify(&s).unwrap());
        std::fs::write(sd.dir.join("lock"), b"").unwrap();
        assert!(!sd.verify(&s).unwrap());
        sd.show(1, &s, &acks, &bits).unwrap();
        assert!(!sd.dir.join("lock").exists());
        assert_eq!(sd.full_writes, 3);
        // Another trial: whole again.
        sd.show(2, &s, &[], &Bits::all(n, false)).unwrap();
        assert_eq!(read(&sd.dir, "a"), vec![1; 8]);
        assert_eq!(std::fs::read_to_string(&sd.acks).unwrap(), "");
        assert!(sd.verify(&s).unwrap());
    }
}
