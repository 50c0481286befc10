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

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::space::{Digits, Dim, Layout, StateSpace};
use crate::external::checker::write_acks_file;
use crate::external::ExternalError;

struct Shown {
    /// Which trial's space the directory shows.
    key: u64,
    bits: Digits,
    layout: Layout,
    /// Open for writing, one per file that has a name in the state.
    files: HashMap<usize, File>,
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
    pub fn show(&mut self, key: u64, space: &StateSpace, acks: &[Vec<u8>], bits: &Digits) -> Result<(), ExternalError> {
        match self.shown.take() {
            // A namespace change (names, sizes) rewrites the directory whole.
            Some(mut shown)
                if shown.key == key && !shown.bits.diff(bits).any(|d| matches!(space.dims()[d], Dim::Op(_))) =>
            {
                let result = self.update(space, &mut shown, bits);
                if result.is_ok() {
                    self.shown = Some(shown);
                }
                result
            }
            Some(shown) if shown.key == key => self.write_whole(key, space, bits),
            _ => {
                write_acks_file(&self.acks, acks)?;
                self.write_whole(key, space, bits)
            }
        }
    }

    /// Rewrite the content units that changed (the namespace did not).
    fn update(&self, space: &StateSpace, shown: &mut Shown, bits: &Digits) -> Result<(), ExternalError> {
        let zeros = [0u8; 4096];
        for d in shown.bits.diff(bits).collect::<Vec<_>>() {
            let Dim::Unit { file: f, .. } = space.dims()[d] else { unreachable!("namespace changes rewrite whole") };
            let (Some(size), Some(file)) = (shown.layout.sizes[f], shown.files.get(&f)) else {
                continue; // no name in this state: nothing to show
            };
            let (offset, bytes, mut pad) = space.unit_bytes(d, bits, size);
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

    fn write_whole(&mut self, key: u64, space: &StateSpace, bits: &Digits) -> Result<(), ExternalError> {
        self.full_writes += 1;
        std::fs::create_dir_all(&self.dir)
            .map_err(io(format!("cannot create the state directory {}", self.dir.display())))?;
        clear_dir(&self.dir)?;
        let (layout, files) = write_layout(&self.dir, space, bits)?;
        self.shown = Some(Shown { key, bits: bits.clone(), layout, files });
        Ok(())
    }

    /// After a checker run: is the directory still exactly the state shown?
    /// If not, the next [`StateDir::show`] rewrites it whole. Returns whether
    /// it was intact.
    pub fn verify(&mut self, space: &StateSpace) -> Result<bool, ExternalError> {
        let Some(shown) = &self.shown else { return Ok(false) };
        let intact = intact(&self.dir, space, &shown.layout, &shown.bits)
            .map_err(io(format!("cannot read back the state directory {}", self.dir.display())))?;
        if !intact {
            self.shown = None;
        }
        Ok(intact)
    }
}

/// Write the directory `bits` leaves into the empty directory `dir`: its
/// directories, each file once and its other names as hard links, its
/// symlinks. Returns the layout and each file's open handle.
pub(crate) fn write_layout(
    dir: &Path,
    space: &StateSpace,
    bits: &Digits,
) -> Result<(Layout, HashMap<usize, File>), ExternalError> {
    let layout = space.layout(bits);
    for d in &layout.dirs {
        let path = dir.join(d);
        std::fs::create_dir(&path).map_err(io(format!("cannot create {}", path.display())))?;
    }
    let mut files: HashMap<usize, File> = HashMap::new();
    let mut first_path: HashMap<usize, PathBuf> = HashMap::new();
    for (rel, f) in &layout.files {
        let path = dir.join(rel);
        if let Some(first) = first_path.get(f) {
            // Another name of the same file: a hard link, as the writer made it.
            std::fs::hard_link(first, &path).map_err(io(format!(
                "cannot link {} to {}",
                path.display(),
                first.display()
            )))?;
            continue;
        }
        let size = layout.sizes[*f].expect("a named file has a size");
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|file| file.write_all_at(&space.content(*f, bits, size), 0).map(|_| file))
            .map_err(io(format!("cannot write the state file {}", path.display())))?;
        files.insert(*f, file);
        first_path.insert(*f, path);
    }
    for (rel, target) in &layout.symlinks {
        let path = dir.join(rel);
        std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(target), &path)
            .map_err(io(format!("cannot create the symlink {}", path.display())))?;
    }
    Ok((layout, files))
}

fn intact(root: &Path, space: &StateSpace, layout: &Layout, bits: &Digits) -> std::io::Result<bool> {
    let (mut files, mut dirs, mut links) = (0usize, 0usize, 0usize);
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for entry in std::fs::read_dir(root.join(&rel))? {
            let entry = entry?;
            let child = rel.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if layout
                    .dirs
                    .binary_search_by(|d| (d.components().count(), d).cmp(&(child.components().count(), &child)))
                    .is_err()
                {
                    return Ok(false);
                }
                dirs += 1;
                stack.push(child);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(root.join(&child))?;
                if !layout.symlinks.iter().any(|(p, t)| *p == child && t.as_slice() == target.as_os_str().as_bytes()) {
                    return Ok(false);
                }
                links += 1;
            } else {
                let Some(f) = layout.file_at(&child).filter(|_| kind.is_file()) else { return Ok(false) };
                let bytes = std::fs::read(root.join(&child))?;
                if bytes != space.content(f, bits, layout.sizes[f].unwrap_or(0)) {
                    return Ok(false);
                }
                files += 1;
            }
        }
    }
    Ok(files == layout.files.len() && dirs == layout.dirs.len() && links == layout.symlinks.len())
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
    use crate::external::power_loss::space::test_space;

    fn space() -> StateSpace {
        test_space(&[("a", &[1; 8], &[2; 12]), ("sub/b", &[3; 8], &[4; 8])], &["empty"], 4, 4)
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
        assert_eq!(n, 6, "a's size change; a: 3 units; b: 2 units");
        let acks = vec![b"rec 1".to_vec()];
        let mut bits = s.extreme(true);
        sd.show(1, &s, &acks, &bits).unwrap();
        assert_eq!(read(&sd.dir, "a"), vec![2; 12]);
        assert_eq!(std::fs::read_to_string(&sd.acks).unwrap(), "rec 1\n");
        assert!(sd.dir.join("empty").is_dir());
        for d in [1, 4, 0] {
            bits.set(d, 0);
            sd.show(1, &s, &acks, &bits).unwrap();
            assert!(sd.verify(&s).unwrap());
        }
        assert_eq!(read(&sd.dir, "a"), [vec![1; 4], vec![2; 4]].concat(), "size at its floor");
        assert_eq!(read(&sd.dir, "sub/b"), [vec![3; 4], vec![4; 4]].concat());
        bits.set(0, 1);
        sd.show(1, &s, &acks, &bits).unwrap();
        assert_eq!(read(&sd.dir, "a"), [vec![1; 4], vec![2; 8]].concat());
        assert_eq!(sd.full_writes, 3, "units are rewritten in place; a size change rewrites whole");

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
        assert_eq!(sd.full_writes, 5);
        // Another trial: whole again.
        sd.show(2, &s, &[], &s.extreme(false)).unwrap();
        assert_eq!(read(&sd.dir, "a"), vec![1; 8]);
        assert_eq!(std::fs::read_to_string(&sd.acks).unwrap(), "");
        assert!(sd.verify(&s).unwrap());
    }

    #[test]
    fn a_namespace_state_shows_hard_links_and_symlinks_and_a_lost_link_rewrites_whole() {
        use crate::external::power_loss::space::FileImages;
        use crate::namespace::{FileId, FileKind, FsModel, NamespaceTrace, NsEvent, NsModel, NsOp, TracedFile};
        use std::os::unix::fs::MetadataExt;
        let mut trace = NamespaceTrace::of_tree(&[], &[("a".into(), 4)]);
        let link = FileId(2);
        trace.files.push(TracedFile {
            id: link,
            kind: FileKind::Symlink { target: b"a".to_vec() },
            dev: 0,
            ino: 0,
            at_start: false,
            initial_size: 0,
        });
        let a = FileId(1);
        trace.events = vec![
            NsEvent {
                call: 1,
                syscall: "link".into(),
                op: NsOp::Link { dir: FileId::ROOT, name: b"b".to_vec(), file: a },
            },
            NsEvent {
                call: 2,
                syscall: "symlink".into(),
                op: NsOp::Create { dir: FileId::ROOT, name: b"s".to_vec(), file: link },
            },
        ];
        let ns = NsModel::new(trace, FsModel::Posix).unwrap();
        let files = vec![FileImages {
            id: a,
            path: "a".into(),
            floor: b"old!".to_vec(),
            newest: b"new!".to_vec(),
            history: vec![],
        }];
        let s = StateSpace::new(ns, files, 4, 4);
        assert_eq!(s.dim_count(), 3, "the link, the symlink, a's page");
        let tmp = tempfile::tempdir().unwrap();
        let mut sd = StateDir::new(tmp.path().join("state"), tmp.path().join("state.acks"));
        let mut bits = s.extreme(true);
        sd.show(1, &s, &[], &bits).unwrap();
        let ino = |n: &str| std::fs::metadata(sd.dir.join(n)).unwrap().ino();
        assert_eq!(ino("a"), ino("b"), "one file, two names");
        assert_eq!(std::fs::read_link(sd.dir.join("s")).unwrap(), PathBuf::from("a"));
        assert_eq!(read(&sd.dir, "b"), b"new!");
        assert!(sd.verify(&s).unwrap());
        bits.set(2, 0);
        sd.show(1, &s, &[], &bits).unwrap();
        assert_eq!(read(&sd.dir, "b"), b"old!", "a unit rewritten in place shows under both names");
        assert_eq!(sd.full_writes, 1);
        bits.set(0, 0);
        sd.show(1, &s, &[], &bits).unwrap();
        assert!(!sd.dir.join("b").exists(), "the link was lost");
        assert!(sd.dir.join("s").symlink_metadata().is_ok());
        assert_eq!(sd.full_writes, 2);
        assert!(sd.verify(&s).unwrap());
        std::fs::remove_file(sd.dir.join("s")).unwrap();
        assert!(!sd.verify(&s).unwrap(), "a missing symlink is noticed");
    }
}
