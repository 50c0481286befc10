//! From what the oracle recorded (or, when the writer never started, from
//! the directory the setup left) to the namespace trace and the per-file
//! floor and newest images the state space is built from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::space::FileImages;
use crate::external::dir_image::DirImage;
use crate::namespace::{FileId, FileKind, NamespaceTrace};
use crate::oracle::OracleOutcome;

/// The label of every regular file: its path when the writer died, else its
/// last path with `~ID`, so that every label is unique.
fn labels(trace: &NamespaceTrace) -> BTreeMap<FileId, PathBuf> {
    let ns = crate::namespace::NsModel::new(trace.clone(), Default::default());
    let mut out = BTreeMap::new();
    let Ok(ns) = ns else { return out };
    let end = ns.newest();
    let layout_paths = paths_of(&end, trace);
    for f in trace.files.iter().filter(|f| f.kind == FileKind::Regular) {
        let label = match layout_paths.get(&f.id) {
            Some(p) => p.clone(),
            None => PathBuf::from(format!("{}~{}", ns.path(f.id).unwrap_or("unnamed"), f.id.0)),
        };
        out.insert(f.id, label);
    }
    out
}

/// The first path (in sorted order) of every file reachable in `state`.
fn paths_of(state: &crate::namespace::NsState, trace: &NamespaceTrace) -> BTreeMap<FileId, PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let mut out: BTreeMap<FileId, PathBuf> = BTreeMap::new();
    let mut stack = vec![(PathBuf::new(), FileId::ROOT)];
    let mut seen = std::collections::BTreeSet::from([FileId::ROOT]);
    while let Some((path, dir)) = stack.pop() {
        for e in state.entries.iter().filter(|e| e.dir == dir) {
            let p = path.join(std::ffi::OsStr::from_bytes(&e.name));
            if trace.file(e.file).kind == FileKind::Directory {
                if seen.insert(e.file) {
                    stack.push((p, e.file));
                }
            } else {
                let slot = out.entry(e.file).or_insert_with(|| p.clone());
                if p < *slot {
                    *slot = p;
                }
            }
        }
    }
    out
}

/// The trace and the images of a traced run.
pub(crate) fn of_outcome(o: &OracleOutcome) -> (NamespaceTrace, Vec<FileImages>) {
    let trace = o.namespace.clone();
    let labels = labels(&trace);
    let images = o
        .inodes
        .iter()
        .filter_map(|(id, inode)| {
            Some(FileImages {
                id: *id,
                path: labels.get(id)?.clone(),
                floor: inode.shadow.content.clone(),
                newest: inode.newest.clone(),
            })
        })
        .collect();
    (trace, images)
}

/// The trace of a run that did nothing and the images of the directory the
/// setup left (durable: floor = newest).
pub(crate) fn of_setup(image: &DirImage) -> (NamespaceTrace, Vec<FileImages>) {
    let sized: Vec<(PathBuf, u64)> = image.files.iter().map(|(p, c)| (p.clone(), c.len() as u64)).collect();
    let trace = NamespaceTrace::of_tree(&image.dirs, &sized);
    let labels = labels(&trace);
    let by_label: BTreeMap<&PathBuf, FileId> = labels.iter().map(|(id, p)| (p, *id)).collect();
    let images = image
        .files
        .iter()
        .filter_map(|(p, content)| {
            Some(FileImages { id: *by_label.get(p)?, path: p.clone(), floor: content.clone(), newest: content.clone() })
        })
        .collect();
    (trace, images)
}
