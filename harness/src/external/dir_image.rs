//! A directory's regular files as bytes in memory, and back: how a
//! simulated crash state (built from durable and page-cache images of each
//! file) becomes a real directory a checker can read.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::ExternalError;

/// The regular files of a directory tree, by path relative to its root.
/// Directories are implied by the paths; empty directories are listed in
/// `dirs`. Ordered, so equal trees compare and print equal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirImage {
    pub files: BTreeMap<PathBuf, Vec<u8>>,
    pub dirs: Vec<PathBuf>,
}

/// Create the tree `image` under `dest`, which must not exist yet (so a
/// state is never mixed with a previous one). Paths must be relative and
/// stay inside `dest`.
pub fn materialize_dir(dest: &Path, image: &DirImage) -> Result<(), ExternalError> {
    let io = |what: String| move |e| ExternalError::io(what, e);
    std::fs::create_dir(dest).map_err(io(format!("cannot create the directory {}", dest.display())))?;
    for dir in &image.dirs {
        let path = dest.join(checked_relative(dir)?);
        std::fs::create_dir_all(&path).map_err(io(format!("cannot create {}", path.display())))?;
    }
    for (rel, bytes) in &image.files {
        let path = dest.join(checked_relative(rel)?);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(format!("cannot create {}", parent.display())))?;
        }
        std::fs::write(&path, bytes).map_err(io(format!("cannot write {}", path.display())))?;
    }
    Ok(())
}

/// Read the tree under `root` (regular files and directories; symlinks and
/// other file types are refused, naming the path).
pub fn snapshot_dir(root: &Path) -> Result<DirImage, ExternalError> {
    let mut image = DirImage::default();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let dir = root.join(&rel);
        let entries =
            std::fs::read_dir(&dir).map_err(|e| ExternalError::io(format!("cannot list {}", dir.display()), e))?;
        let mut empty = true;
        for entry in entries {
            let entry = entry.map_err(|e| ExternalError::io(format!("cannot list {}", dir.display()), e))?;
            empty = false;
            let child = rel.join(entry.file_name());
            let path = root.join(&child);
            let kind =
                entry.file_type().map_err(|e| ExternalError::io(format!("cannot stat {}", path.display()), e))?;
            if kind.is_dir() {
                stack.push(child);
            } else if kind.is_file() {
                let bytes = std::fs::read(&path)
                    .map_err(|e| ExternalError::io(format!("cannot read {}", path.display()), e))?;
                image.files.insert(child, bytes);
            } else {
                return Err(ExternalError::BadInput(format!(
                    "{}: only regular files and directories can be captured",
                    path.display()
                )));
            }
        }
        if empty && !rel.as_os_str().is_empty() {
            image.dirs.push(rel);
        }
    }
    image.dirs.sort();
    Ok(image)
}

fn checked_relative(p: &Path) -> Result<&Path, ExternalError> {
    if p.as_os_str().is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(ExternalError::BadInput(format!(
            "{}: a directory image holds only relative paths inside its root",
            p.display()
        )));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_round_trip_through_a_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let mut image = DirImage::default();
        image.files.insert("a.log".into(), b"abc".to_vec());
        image.files.insert("sub/deeper/b.db".into(), vec![0u8; 5000]);
        image.files.insert("empty".into(), Vec::new());
        image.dirs.push("hollow".into());
        let dest = tmp.path().join("state-0");
        materialize_dir(&dest, &image).unwrap();
        assert_eq!(std::fs::read(dest.join("sub/deeper/b.db")).unwrap().len(), 5000);
        assert_eq!(snapshot_dir(&dest).unwrap(), image);
        // A second state never lands on top of the first.
        assert!(materialize_dir(&dest, &image).is_err());
    }

    #[test]
    fn escaping_paths_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).unwrap();
        for (i, bad) in ["../x", "/etc/x", "a/../../x", ""].into_iter().enumerate() {
            let mut image = DirImage::default();
            image.files.insert(bad.into(), vec![1]);
            let e = materialize_dir(&root.join(format!("state-{i}")), &image).unwrap_err().to_string();
            assert!(e.contains("relative paths"), "{bad}: {e}");
        }
        assert!(!root.join("x").exists() && !tmp.path().join("x").exists());
    }
}
