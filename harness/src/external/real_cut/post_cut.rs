//! A real post-cut directory: read from the remounted filesystem into a
//! [`RealDir`] (symlinks are read, never followed), written back out for
//! the checker, and kept as evidence when the model forbids it.

use std::path::{Path, PathBuf};

use crate::external::power_loss::membership::RealDir;
use crate::external::ExternalError;
use crate::report::external_real_cut::Membership;

fn io(what: String) -> impl FnOnce(std::io::Error) -> ExternalError {
    move |e| ExternalError::io(what, e)
}

/// Read the tree under `root`. A missing `root` is an error naming it: the
/// trial directory was synced before the writer started.
pub(crate) fn read_dir(root: &Path) -> Result<RealDir, ExternalError> {
    let mut out = RealDir::default();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        for entry in std::fs::read_dir(&dir).map_err(io(format!("cannot list the post-cut {}", dir.display())))? {
            let entry = entry.map_err(io(format!("cannot list the post-cut {}", dir.display())))?;
            let child = rel.join(entry.file_name());
            let path = root.join(&child);
            let meta = std::fs::symlink_metadata(&path).map_err(io(format!("cannot stat {}", path.display())))?;
            let t = meta.file_type();
            if t.is_dir() {
                out.dirs.insert(child.clone());
                stack.push(child);
            } else if t.is_file() {
                let bytes = std::fs::read(&path).map_err(io(format!("cannot read {}", path.display())))?;
                out.files.insert(child, bytes);
            } else if t.is_symlink() {
                let target = std::fs::read_link(&path).map_err(io(format!("cannot read {}", path.display())))?;
                out.symlinks.insert(child, std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()).to_vec());
            } else {
                out.others.insert(child);
            }
        }
    }
    Ok(out)
}

/// Write `dir` under `dest` (created; must not exist): directories,
/// files, symlinks (entries of other kinds are left out: a checker cannot
/// be shown a device node crashlab made).
pub(crate) fn write_dir(dest: &Path, dir: &RealDir) -> Result<(), ExternalError> {
    std::fs::create_dir_all(dest).map_err(io(format!("cannot create {}", dest.display())))?;
    let mut dirs: Vec<&PathBuf> = dir.dirs.iter().collect();
    dirs.sort_by_key(|p| p.components().count());
    for d in dirs {
        let p = dest.join(d);
        std::fs::create_dir_all(&p).map_err(io(format!("cannot create {}", p.display())))?;
    }
    for (rel, bytes) in &dir.files {
        let p = dest.join(rel);
        std::fs::write(&p, bytes).map_err(io(format!("cannot write {}", p.display())))?;
    }
    for (rel, target) in &dir.symlinks {
        let p = dest.join(rel);
        let target: &std::ffi::OsStr = std::os::unix::ffi::OsStrExt::from_bytes(target);
        std::os::unix::fs::symlink(target, &p).map_err(io(format!("cannot create the symlink {}", p.display())))?;
    }
    Ok(())
}

/// Keep a post-cut directory the model forbids: `dest/dir` holds it,
/// `dest/acks` the acknowledged lines, `dest/why.txt` the judgement and
/// the rerun line.
pub(crate) fn keep_evidence(
    dest: &Path,
    dir: &RealDir,
    membership: &Membership,
    acks: &[Vec<u8>],
    rerun: &str,
) -> Result<(), ExternalError> {
    if dest.exists() {
        std::fs::remove_dir_all(dest).map_err(io(format!("cannot replace {}", dest.display())))?;
    }
    write_dir(&dest.join("dir"), dir)?;
    crate::external::write_acks_file(&dest.join("acks"), acks)?;
    let why = format!(
        "MODEL SOUNDNESS VIOLATION: the simulated power-loss model forbids this real post-cut directory.\n{}\n\
         {} entries of other kinds were left out of dir/: {:?}\nrerun: {rerun}\n",
        membership.forbidden.as_deref().unwrap_or(""),
        dir.others.len(),
        dir.others
    );
    std::fs::write(dest.join("why.txt"), why).map_err(io(format!("cannot write {}/why.txt", dest.display())))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_read_back_after_writing_it_is_the_same_directory() {
        let t = tempfile::tempdir().unwrap();
        let mut d = RealDir::default();
        d.dirs.insert("sub".into());
        d.dirs.insert("sub/deeper".into());
        d.files.insert("a".into(), b"alpha".to_vec());
        d.files.insert("sub/deeper/b".into(), vec![]);
        d.symlinks.insert("link".into(), b"sub/deeper/b".to_vec());
        write_dir(&t.path().join("x"), &d).unwrap();
        assert_eq!(read_dir(&t.path().join("x")).unwrap(), d);
    }
}
