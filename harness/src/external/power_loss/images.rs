//! From what the oracle recorded (or, when the writer never started, from
//! the directory the setup left) to the namespace trace and the per-file
//! floor and newest images the state space is built from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::space::FileImages;
use crate::external::dir_image::DirImage;
use crate::namespace::{FileId, FileKind, NamespaceTrace, NsModel, NsState};
use crate::oracle::OracleOutcome;

/// Give every file its label: its first path when the writer died, else
/// the last path it had with `~ID`, so that every label is unique.
pub(crate) fn label(ns: &NsModel, images: &mut [FileImages]) {
    let mut at_end: BTreeMap<FileId, PathBuf> = BTreeMap::new();
    for (path, file) in ns.newest().paths(ns.trace()) {
        let first = at_end.entry(file).or_insert_with(|| path.clone());
        if path < *first {
            *first = path;
        }
    }
    for image in images {
        image.path = match at_end.remove(&image.id) {
            Some(p) => p,
            None => PathBuf::from(format!("{}~{}", ns.path(image.id).unwrap_or("unnamed"), image.id.0)),
        };
    }
}

/// The trace and the images of a traced run (unlabelled: see [`label`]).
pub(crate) fn of_outcome(o: &OracleOutcome) -> (NamespaceTrace, Vec<FileImages>) {
    let images = o
        .inodes
        .iter()
        .map(|(id, inode)| FileImages {
            id: *id,
            path: PathBuf::new(),
            floor: inode.shadow.content.clone(),
            newest: inode.newest.clone(),
            history: inode.history.clone(),
        })
        .collect();
    (o.namespace.clone(), images)
}

/// The trace of a run that did nothing and the images of the directory the
/// setup left (durable: floor = newest).
pub(crate) fn of_setup(image: &DirImage) -> (NamespaceTrace, Vec<FileImages>) {
    let sized: Vec<(PathBuf, u64)> = image.files.iter().map(|(p, c)| (p.clone(), c.len() as u64)).collect();
    let trace = NamespaceTrace::of_tree(&image.dirs, &sized);
    let start = NsState { entries: trace.initial.iter().cloned().collect(), sizes: BTreeMap::new() };
    let ids: BTreeMap<PathBuf, FileId> =
        start.paths(&trace).into_iter().filter(|(_, f)| trace.file(*f).kind == FileKind::Regular).collect();
    let images = image
        .files
        .iter()
        .filter_map(|(p, content)| {
            Some(FileImages {
                id: *ids.get(p)?,
                path: p.clone(),
                floor: content.clone(),
                newest: content.clone(),
                history: Vec::new(),
            })
        })
        .collect();
    (trace, images)
}
