//! The states a simulated power loss may leave of a crashed writer's
//! directory: the namespace (which entry operations and size changes
//! persisted, [`crate::namespace::NsModel`]: one binary dimension per
//! operation no sync made durable) and, per file (an inode: a `FileId`), a
//! *floor* image (what completed syncs guarantee) and a *newest* image (the
//! page cache when the writer died), with one binary dimension per unit (a
//! page, or a sector with `--tear`) where the two differ.
//!
//! Architecture Invariant: pure. The images and the trace are given;
//! nothing here touches a file.

use std::collections::HashMap;
use std::ops::Range;
use std::path::PathBuf;

use crate::namespace::{FileId, FileKind, NsModel, NsState};

/// One file (inode) of the crashed directory, as a power loss may leave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileImages {
    pub id: FileId,
    /// How reports and state texts name it: its path when the writer died,
    /// or, for a file that had no name then, the last path it had with
    /// `~ID` appended.
    pub path: PathBuf,
    /// The floor image (the shadow: synced content; its length is not the
    /// file's size, which the namespace decides).
    pub floor: Vec<u8>,
    /// The newest image (the page cache).
    pub newest: Vec<u8>,
}

impl FileImages {
    /// Bytes `range` of `image`, reading zeros past its end: a file grown
    /// past what a state keeps reads as zeros there (a hole).
    fn padded(image: &[u8], range: Range<u64>) -> (&[u8], usize) {
        let start = (range.start as usize).min(image.len());
        let end = (range.end as usize).min(image.len());
        (&image[start..end], (range.end - range.start) as usize - (end - start))
    }

    fn same(&self, range: Range<u64>) -> bool {
        let (a, _) = FileImages::padded(&self.floor, range.clone());
        let (b, _) = FileImages::padded(&self.newest, range);
        let common = a.len().min(b.len());
        // Past the shorter real part, the other reads zeros (padding).
        a[..common] == b[..common] && a[common..].iter().chain(&b[common..]).all(|&x| x == 0)
    }
}

/// A coordinate of the state space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Dim {
    /// Namespace unit `u` ([`NsModel::units`]): an entry operation or a size
    /// change that may be lost.
    Op(usize),
    /// Unit `unit` of file `file` (bytes `unit * unit_bytes ..`).
    Unit { file: usize, unit: u64 },
}

/// A state: one bit per dimension, set = newest (persisted), clear = floor
/// (lost).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Bits(Vec<u64>);

impl Bits {
    pub fn all(n: usize, newest: bool) -> Bits {
        let mut b = Bits(vec![if newest { !0 } else { 0 }; n.div_ceil(64)]);
        if newest && n % 64 != 0 {
            *b.0.last_mut().expect("n > 0") &= (1u64 << (n % 64)) - 1;
        }
        b
    }

    pub fn get(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    pub fn set(&mut self, i: usize, newest: bool) {
        if newest {
            self.0[i / 64] |= 1 << (i % 64);
        } else {
            self.0[i / 64] &= !(1 << (i % 64));
        }
    }

    /// The dimensions where `self` and `other` differ, ascending.
    pub fn diff<'a>(&'a self, other: &'a Bits) -> impl Iterator<Item = usize> + 'a {
        self.0.iter().zip(&other.0).enumerate().flat_map(|(w, (a, b))| {
            let mut x = a ^ b;
            std::iter::from_fn(move || {
                (x != 0).then(|| {
                    let i = x.trailing_zeros() as usize;
                    x &= x - 1;
                    w * 64 + i
                })
            })
        })
    }

    /// The dimensions set to newest (`true`) or floor (`false`), ascending.
    pub fn members(&self, n: usize, newest: bool) -> Vec<usize> {
        (0..n).filter(|&i| self.get(i) == newest).collect()
    }
}

/// What a state's directory holds: its directories, every name of every
/// regular file, its symlinks, and each file's size.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layout {
    /// Every directory but the root, parents first.
    pub dirs: Vec<PathBuf>,
    /// Every name of a regular file, sorted, with the file's index.
    pub files: Vec<(PathBuf, usize)>,
    pub symlinks: Vec<(PathBuf, Vec<u8>)>,
    /// Per file index: its size, if it has a name in this state.
    pub sizes: Vec<Option<u64>>,
}

impl Layout {
    /// The file a path names, if it is a regular file's name.
    pub fn file_at(&self, path: &std::path::Path) -> Option<usize> {
        self.files.binary_search_by(|(p, _)| p.as_path().cmp(path)).ok().map(|i| self.files[i].1)
    }
}

/// The state space of one crashed directory.
#[derive(Debug, Clone)]
pub struct StateSpace {
    pub ns: NsModel,
    /// Sorted by path (label).
    pub files: Vec<FileImages>,
    by_id: HashMap<FileId, usize>,
    /// Bytes per unit: the page size, or the `--tear` sector size.
    pub unit: u64,
    pub page: u64,
    /// The namespace units first, then by file, units ascending.
    dims: Vec<Dim>,
    /// The dimensions of each file.
    file_dims: Vec<Range<usize>>,
}

impl StateSpace {
    /// `files` in any order (they are sorted by path); one per regular file
    /// of the namespace trace; `unit` must divide `page`.
    pub fn new(ns: NsModel, mut files: Vec<FileImages>, unit: u64, page: u64) -> StateSpace {
        assert!(unit > 0 && page % unit == 0, "a unit of {unit} bytes does not divide a page of {page}");
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let by_id = files.iter().enumerate().map(|(i, f)| (f.id, i)).collect();
        let mut dims: Vec<Dim> = (0..ns.units().len()).map(Dim::Op).collect();
        let mut file_dims = Vec::with_capacity(files.len());
        for (i, f) in files.iter().enumerate() {
            let first = dims.len();
            let len = f.floor.len().max(f.newest.len()) as u64;
            for u in 0..len.div_ceil(unit) {
                let end = ((u + 1) * unit).min(len);
                if !f.same(u * unit..end) {
                    dims.push(Dim::Unit { file: i, unit: u });
                }
            }
            file_dims.push(first..dims.len());
        }
        StateSpace { ns, files, by_id, unit, page, dims, file_dims }
    }

    pub fn dims(&self) -> &[Dim] {
        &self.dims
    }

    pub fn dim_count(&self) -> usize {
        self.dims.len()
    }

    /// The dimensions of the namespace: `0..op_count()`.
    pub fn op_count(&self) -> usize {
        self.ns.units().len()
    }

    /// The content dimensions of file `f`.
    pub fn file_dims(&self, f: usize) -> Range<usize> {
        self.file_dims[f].clone()
    }

    /// The dimension of unit `unit` of file `file`, if it is one.
    pub fn find(&self, file: usize, unit: u64) -> Option<usize> {
        let r = self.file_dims.get(file)?.clone();
        self.dims[r.clone()].binary_search(&Dim::Unit { file, unit }).ok().map(|i| r.start + i)
    }

    pub fn file_index(&self, path: &std::path::Path) -> Option<usize> {
        self.files.binary_search_by(|f| f.path.as_path().cmp(path)).ok()
    }

    fn ns_bits(&self, bits: &Bits) -> Vec<bool> {
        (0..self.op_count()).map(|u| bits.get(u)).collect()
    }

    /// `bits` made a state a power loss may leave: the namespace part
    /// resolved ([`NsModel::canonical`]), and the content units of files
    /// that have no name in it set to newest (they cannot be seen). A
    /// canonical state is returned unchanged; two states with the same
    /// canonical form leave the same directory.
    pub fn canonical(&self, bits: &Bits) -> Bits {
        let mut out = bits.clone();
        let (ns, state) = self.ns.canonical_state(|u| bits.get(u));
        for (u, &p) in ns.iter().enumerate() {
            out.set(u, p);
        }
        for (f, file) in self.files.iter().enumerate() {
            if !state.sizes.contains_key(&file.id) {
                for d in self.file_dims[f].clone() {
                    out.set(d, true);
                }
            }
        }
        out
    }

    /// The namespace of `bits`.
    pub fn namespace(&self, bits: &Bits) -> NsState {
        self.ns.resolve(&self.ns_bits(bits))
    }

    /// The directory `bits` leaves: paths from the namespace's entries.
    pub fn layout(&self, bits: &Bits) -> Layout {
        let state = self.namespace(bits);
        let mut out = Layout { sizes: vec![None; self.files.len()], ..Layout::default() };
        for (p, file) in state.paths(self.ns.trace()) {
            match &self.ns.trace().file(file).kind {
                FileKind::Directory => out.dirs.push(p),
                FileKind::Symlink { target } => out.symlinks.push((p, target.clone())),
                FileKind::Regular => {
                    if let Some(&f) = self.by_id.get(&file) {
                        out.files.push((p, f));
                        out.sizes[f] = state.sizes.get(&file).copied();
                    }
                }
            }
        }
        out.dirs.sort_by_key(|p| (p.components().count(), p.clone()));
        out.files.sort();
        out.symlinks.sort();
        out
    }

    /// The bytes unit dimension `d` holds in `bits`, within a file of `size`
    /// bytes: (offset, real bytes, zeros after them). Empty past the size.
    pub fn unit_bytes(&self, d: usize, bits: &Bits, size: u64) -> (u64, &[u8], usize) {
        let Dim::Unit { file, unit: u } = self.dims[d] else { panic!("dimension {d} is a namespace operation") };
        let f = &self.files[file];
        let start = (u * self.unit).min(size);
        let end = ((u + 1) * self.unit).min(size);
        let image = if bits.get(d) { &f.newest } else { &f.floor };
        let (bytes, zeros) = FileImages::padded(image, start..end);
        (start, bytes, zeros)
    }

    /// The whole content of file `f` in state `bits`, at `size` bytes.
    pub fn content(&self, f: usize, bits: &Bits, size: u64) -> Vec<u8> {
        let file = &self.files[f];
        let mut out = vec![0u8; size as usize];
        // Units that are not dimensions are equal in both images (zeros past
        // an image's end included): start from the newest image...
        let n = file.newest.len().min(out.len());
        out[..n].copy_from_slice(&file.newest[..n]);
        // ...and put every unit at its floor where the state says so.
        for d in self.file_dims[f].clone() {
            if !bits.get(d) {
                let (offset, bytes, zeros) = self.unit_bytes(d, bits, size);
                let o = offset as usize;
                out[o..o + bytes.len()].copy_from_slice(bytes);
                out[o + bytes.len()..o + bytes.len() + zeros].fill(0);
            }
        }
        out
    }

    /// A unit's name in reports: `page 3`, `page 3 sector 2`.
    pub fn unit_name(&self, u: u64) -> String {
        let per_page = self.page / self.unit;
        if per_page == 1 {
            format!("page {u}")
        } else {
            format!("page {} sector {}", u / per_page, u % per_page)
        }
    }

    /// A dimension's name in reports: `data.db page 3`, or the namespace
    /// operation (`rename("a" -> "b") at call 57`).
    pub fn dim_name(&self, d: usize) -> String {
        match self.dims[d] {
            Dim::Op(u) => self.ns.describe(u),
            Dim::Unit { file, unit } => format!("{} {}", self.files[file].path.display(), self.unit_name(unit)),
        }
    }
}

/// Spaces for tests: each file existed (durable) at its floor's size, and
/// got its newest image's size by one `ftruncate` no sync covered.
#[cfg(test)]
pub(crate) fn test_space(files: &[(&str, &[u8], &[u8])], dirs: &[&str], unit: u64, page: u64) -> StateSpace {
    use crate::namespace::{FsModel, NamespaceTrace, NsEvent, NsOp};
    use std::os::unix::ffi::OsStrExt;
    let dirs: Vec<PathBuf> = dirs.iter().map(PathBuf::from).collect();
    let sized: Vec<(PathBuf, u64)> = files.iter().map(|(p, floor, _)| (PathBuf::from(p), floor.len() as u64)).collect();
    let mut trace = NamespaceTrace::of_tree(&dirs, &sized);
    let mut images = Vec::new();
    for (path, floor, newest) in files {
        let id = trace
            .initial
            .iter()
            .find(|e| std::path::Path::new(path).file_name().unwrap().as_bytes() == e.name.as_slice())
            .expect("listed")
            .file;
        if floor.len() != newest.len() {
            let call = trace.events.len() as u64 + 1;
            trace.events.push(NsEvent {
                call,
                syscall: "ftruncate".into(),
                op: NsOp::SetSize { file: id, size: newest.len() as u64 },
            });
        }
        images.push(FileImages { id, path: path.into(), floor: floor.to_vec(), newest: newest.to_vec() });
    }
    StateSpace::new(NsModel::new(trace, FsModel::Posix).expect("a valid trace"), images, unit, page)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dimensions_are_the_namespace_operations_then_the_units_that_differ() {
        // 4-byte units in 8-byte pages.
        let s = test_space(
            &[
                ("b", b"AAAABBBBCCCC", b"AAAAXXXXCCCCDD"),
                ("a", b"same", b"same"),
                // A shorter floor whose missing part is zeros equals a zero-padded newest.
                ("c", b"12", b"12\0\0\0\0\0\0"),
            ],
            &[],
            4,
            8,
        );
        assert_eq!(s.files.iter().map(|f| f.path.to_str().unwrap()).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(s.dims(), [Dim::Op(0), Dim::Op(1), Dim::Unit { file: 1, unit: 1 }, Dim::Unit { file: 1, unit: 3 }]);
        assert_eq!(s.find(1, 3), Some(3));
        assert_eq!(s.find(1, 0), None);
        assert_eq!(s.unit_name(3), "page 1 sector 1");
        assert_eq!(s.dim_name(0), r#"ftruncate: the size of "b" set to 14 bytes at call 1"#);
        assert_eq!(s.dim_name(3), "b page 1 sector 1");
    }

    #[test]
    fn contents_mix_the_images_unit_by_unit_at_the_namespaces_size() {
        let s = test_space(&[("f", b"AAAABBBB", b"XXXXYYYYZZ")], &[], 4, 4);
        // dims: the size change, unit 0, unit 1, unit 2 (ZZ vs nothing).
        assert_eq!(s.dim_count(), 4);
        let mut b = Bits::all(4, true);
        let size = |b: &Bits| s.layout(b).sizes[0].unwrap();
        assert_eq!(s.content(0, &b, size(&b)), b"XXXXYYYYZZ");
        b.set(2, false);
        assert_eq!(s.content(0, &b, size(&b)), b"XXXXBBBBZZ");
        b.set(3, false);
        assert_eq!(s.content(0, &b, size(&b)), b"XXXXBBBB\0\0", "past the floor image: zeros");
        b.set(0, false);
        assert_eq!(size(&b), 8);
        assert_eq!(s.content(0, &b, size(&b)), b"XXXXBBBB");
        assert_eq!(s.content(0, &Bits::all(4, false), 8), b"AAAABBBB");
        assert_eq!(s.unit_bytes(1, &b, 8), (0, &b"XXXX"[..], 0));
        assert_eq!(s.unit_bytes(3, &Bits::all(4, false), 10), (8, &b""[..], 2));
    }

    #[test]
    fn layouts_follow_the_namespace_and_canonical_states_hide_nothing() {
        use crate::namespace::{Entry, FsModel, NamespaceTrace, NsEvent, NsOp, TracedFile};
        // "state" at start; "state.tmp" created, synced, renamed over it; no
        // directory fsync.
        let mut trace = NamespaceTrace::of_tree(&[], &[("state".into(), 4)]);
        let tmp = FileId(2);
        trace.files.push(TracedFile {
            id: tmp,
            kind: FileKind::Regular,
            dev: 0,
            ino: 0,
            at_start: false,
            initial_size: 0,
        });
        let ev = |call, syscall: &str, op| NsEvent { call, syscall: syscall.into(), op };
        trace.events = vec![
            ev(1, "openat", NsOp::Create { dir: FileId::ROOT, name: b"state.tmp".to_vec(), file: tmp }),
            ev(2, "ftruncate", NsOp::SetSize { file: tmp, size: 4 }),
            ev(3, "fsync", NsOp::SyncFile { file: tmp, size: 4 }),
            ev(
                4,
                "rename",
                NsOp::Rename {
                    from_dir: FileId::ROOT,
                    from_name: b"state.tmp".to_vec(),
                    to_dir: FileId::ROOT,
                    to_name: b"state".to_vec(),
                    file: tmp,
                    replaced: Some(FileId(1)),
                },
            ),
        ];
        assert_eq!(trace.initial, vec![Entry { dir: FileId::ROOT, name: b"state".to_vec(), file: FileId(1) }]);
        let ns = NsModel::new(trace, FsModel::Posix).unwrap();
        let files = vec![
            FileImages { id: FileId(1), path: "state~1".into(), floor: b"old!".to_vec(), newest: b"old!".to_vec() },
            FileImages { id: tmp, path: "state".into(), floor: b"new!".to_vec(), newest: b"NEW!".to_vec() },
        ];
        let s = StateSpace::new(ns, files, 4, 4);
        // The create, the rename; the new file's one page.
        assert_eq!(s.dims(), [Dim::Op(0), Dim::Op(1), Dim::Unit { file: 0, unit: 0 }]);
        let newest = Bits::all(3, true);
        let l = s.layout(&newest);
        assert_eq!(l.files, vec![(PathBuf::from("state"), 0)]);
        assert_eq!(l.sizes, vec![Some(4), None]);
        let mut lost = newest.clone();
        lost.set(1, false); // the rename lost: both names, each its own file
        let l = s.layout(&lost);
        assert_eq!(l.files, vec![(PathBuf::from("state"), 1), (PathBuf::from("state.tmp"), 0)]);
        assert_eq!(s.canonical(&lost), lost);
        let mut no_create = newest.clone();
        no_create.set(0, false); // without its create, the rename cannot persist
        let c = s.canonical(&no_create);
        assert!(!c.get(1), "the rename follows its create");
        assert_eq!(s.layout(&c).files, vec![(PathBuf::from("state"), 1)]);
        let mut hidden = c.clone();
        hidden.set(2, false); // the new file's page: it has no name, so this changes nothing
        assert_eq!(s.canonical(&hidden), c);
    }

    #[test]
    fn bits_diff_and_members() {
        let a = Bits::all(70, false);
        let mut b = Bits::all(70, true);
        assert_eq!(a.diff(&b).count(), 70);
        b.set(3, false);
        b.set(65, false);
        assert_eq!(b.members(70, false), vec![3, 65]);
        assert!(!b.get(69 + 64), "out of range reads as floor");
        assert_eq!(Bits::all(70, true).diff(&b).collect::<Vec<_>>(), vec![3, 65]);
    }
}
