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
use crate::page_history::PageVersion;

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
    /// The versions its pages held in between (the oracle's write
    /// history), by page then in the order seen; empty when not recorded.
    pub history: Vec<PageVersion>,
}

impl FileImages {
    /// Bytes `range` of `image`, reading zeros past its end: a file grown
    /// past what a state keeps reads as zeros there (a hole).
    fn padded(image: &[u8], range: Range<u64>) -> (&[u8], usize) {
        let start = (range.start as usize).min(image.len());
        let end = (range.end as usize).min(image.len());
        (&image[start..end], (range.end - range.start) as usize - (end - start))
    }

    /// Bytes `range` of the version `source`, reading zeros past its end.
    fn version(&self, source: Source, range: Range<u64>, page: u64) -> (&[u8], usize) {
        match source {
            Source::Floor => FileImages::padded(&self.floor, range),
            Source::Newest => FileImages::padded(&self.newest, range),
            // A unit's range lies in its page, or is empty (a state whose
            // size ends before the unit).
            Source::History(_) if range.is_empty() => (&[], 0),
            Source::History(k) => {
                let v = &self.history[k];
                let base = v.page * page;
                FileImages::padded(&v.bytes, range.start - base..range.end - base)
            }
        }
    }

    fn same(&self, a: Source, b: Source, range: Range<u64>, page: u64) -> bool {
        let (a, _) = self.version(a, range.clone(), page);
        let (b, _) = self.version(b, range, page);
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

/// Where one version a unit may hold comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The floor image (what completed syncs guarantee).
    Floor,
    /// [`FileImages::history`]`[k]`: a version its page held in between.
    History(usize),
    /// The newest image (the page cache).
    Newest,
}

/// A state: per dimension, which of its versions it holds. `0` is the
/// floor (an operation: lost); the dimension's radix minus one is the
/// newest content (an operation: persisted); a unit's digits in between
/// are the intermediate versions of its page, in the order they were seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Digits(Vec<u8>);

impl Digits {
    /// Every dimension at digit 0 (the floor, every operation lost).
    pub fn floor(n: usize) -> Digits {
        Digits(vec![0; n])
    }

    pub fn from_digits(digits: &[u32]) -> Digits {
        Digits(digits.iter().map(|&d| u8::try_from(d).expect("a radix fits a byte")).collect())
    }

    pub fn get(&self, i: usize) -> u32 {
        self.0.get(i).map_or(0, |&d| d as u32)
    }

    pub fn set(&mut self, i: usize, digit: u32) {
        self.0[i] = u8::try_from(digit).expect("a radix fits a byte");
    }

    /// The dimensions where `self` and `other` differ, ascending.
    pub fn diff<'a>(&'a self, other: &'a Digits) -> impl Iterator<Item = usize> + 'a {
        self.0.iter().zip(&other.0).enumerate().filter(|(_, (a, b))| a != b).map(|(i, _)| i)
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
    /// Per dimension, the versions it may hold (an operation: none listed,
    /// radix 2), floor first and newest last, each content once.
    versions: Vec<Vec<Source>>,
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
        let mut versions: Vec<Vec<Source>> = vec![Vec::new(); dims.len()];
        let mut file_dims = Vec::with_capacity(files.len());
        let per_page = page / unit;
        for (i, f) in files.iter().enumerate() {
            let first = dims.len();
            let history_end = f.history.iter().map(|v| (v.page + 1) * page).max().unwrap_or(0);
            let len = (f.floor.len().max(f.newest.len()) as u64).max(history_end);
            // The history is by page: each page's versions, in order.
            let mut by_page: HashMap<u64, Vec<usize>> = HashMap::new();
            for (k, v) in f.history.iter().enumerate() {
                by_page.entry(v.page).or_default().push(k);
            }
            for u in 0..len.div_ceil(unit) {
                let range = u * unit..((u + 1) * unit).min(len);
                // Floor first and newest last, always (the families and
                // the explanations rely on both ends); in between, each
                // content not already there. A page that went A, B, A keeps
                // A at both ends: two digits with one content.
                let mut sources = vec![Source::Floor];
                for k in by_page.get(&(u / per_page)).into_iter().flatten() {
                    let c = Source::History(*k);
                    if !sources.iter().chain([&Source::Newest]).any(|&s| f.same(s, c, range.clone(), page)) {
                        sources.push(c);
                    }
                }
                if sources.len() > 1 || !f.same(Source::Floor, Source::Newest, range.clone(), page) {
                    sources.push(Source::Newest);
                }
                if sources.len() > 1 {
                    dims.push(Dim::Unit { file: i, unit: u });
                    versions.push(sources);
                }
            }
            file_dims.push(first..dims.len());
        }
        StateSpace { ns, files, by_id, unit, page, dims, versions, file_dims }
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

    /// How many versions dimension `d` may hold (2 for an operation).
    pub fn radix(&self, d: usize) -> u32 {
        self.versions[d].len().max(2) as u32
    }

    pub fn radices(&self) -> Vec<u32> {
        (0..self.dims.len()).map(|d| self.radix(d)).collect()
    }

    /// The digit of `d`'s newest content (an operation: persisted).
    pub fn newest_digit(&self, d: usize) -> u32 {
        self.radix(d) - 1
    }

    /// Every dimension at its newest content and every operation persisted
    /// (`true`: the page cache, what a process crash leaves), or everything
    /// at its floor and lost.
    pub fn extreme(&self, newest: bool) -> Digits {
        let mut out = Digits::floor(self.dims.len());
        if newest {
            (0..self.dims.len()).for_each(|d| out.set(d, self.newest_digit(d)));
        }
        out
    }

    pub fn is_newest(&self, digits: &Digits, d: usize) -> bool {
        digits.get(d) == self.newest_digit(d)
    }

    /// Put dimension `d` at its newest content (`true`) or its floor.
    pub fn set_extreme(&self, digits: &mut Digits, d: usize, newest: bool) {
        digits.set(d, if newest { self.newest_digit(d) } else { 0 });
    }

    /// The dimensions at their newest content (`true`), or not (`false`:
    /// at the floor, lost, or at an intermediate version), ascending.
    pub fn members(&self, digits: &Digits, newest: bool) -> Vec<usize> {
        (0..self.dims.len()).filter(|&d| self.is_newest(digits, d) == newest).collect()
    }

    /// Where digit `digit` of dimension `d` comes from (an operation's
    /// digits are lost and persisted: `Floor` and `Newest`).
    pub fn source(&self, d: usize, digit: u32) -> Source {
        match self.versions[d].get(digit as usize) {
            Some(&s) => s,
            None if digit == 0 => Source::Floor,
            None => Source::Newest,
        }
    }

    /// The intermediate version `digit` of unit dimension `d`, if it is one.
    pub fn version(&self, d: usize, digit: u32) -> Option<&PageVersion> {
        let Dim::Unit { file, .. } = self.dims[d] else { return None };
        match self.source(d, digit) {
            Source::History(k) => Some(&self.files[file].history[k]),
            _ => None,
        }
    }

    /// The digit of dimension `d` holding its page's `n`-th recorded
    /// version (1-based, in the order seen; a version equal to one kept
    /// earlier maps to that one's digit), if the page has one.
    pub fn digit_of_version(&self, d: usize, n: usize) -> Option<u32> {
        let Dim::Unit { file, unit } = self.dims[d] else { return None };
        let f = &self.files[file];
        let page = unit / (self.page / self.unit);
        let k = f.history.iter().enumerate().filter(|(_, v)| v.page == page).nth(n.checked_sub(1)?)?.0;
        let range = unit * self.unit..(unit + 1) * self.unit;
        let sources = &self.versions[d];
        sources.iter().position(|&s| f.same(s, Source::History(k), range.clone(), self.page)).map(|i| i as u32)
    }

    /// The 1-based number of the recorded version of its page that digit
    /// `digit` of unit dimension `d` holds (its first, if several).
    pub fn version_number(&self, d: usize, digit: u32) -> Option<usize> {
        let Dim::Unit { file, unit } = self.dims[d] else { return None };
        let Source::History(k) = self.source(d, digit) else { return None };
        let page = unit / (self.page / self.unit);
        Some(self.files[file].history[..=k].iter().filter(|v| v.page == page).count())
    }

    fn ns_bits(&self, digits: &Digits) -> Vec<bool> {
        (0..self.op_count()).map(|u| digits.get(u) == 1).collect()
    }

    /// `bits` made a state a power loss may leave: the namespace part
    /// resolved ([`NsModel::canonical`]), and the content units of files
    /// that have no name in it set to newest (they cannot be seen). A
    /// canonical state is returned unchanged; two states with the same
    /// canonical form leave the same directory.
    pub fn canonical(&self, digits: &Digits) -> Digits {
        let mut out = digits.clone();
        let (ns, state) = self.ns.canonical_state(|u| digits.get(u) == 1);
        for (u, &p) in ns.iter().enumerate() {
            out.set(u, p as u32);
        }
        for (f, file) in self.files.iter().enumerate() {
            if !state.sizes.contains_key(&file.id) {
                for d in self.file_dims[f].clone() {
                    self.set_extreme(&mut out, d, true);
                }
            }
        }
        out
    }

    /// The namespace of `bits`.
    pub fn namespace(&self, bits: &Digits) -> NsState {
        self.ns.resolve(&self.ns_bits(bits))
    }

    /// The directory `bits` leaves: paths from the namespace's entries.
    pub fn layout(&self, bits: &Digits) -> Layout {
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
    pub fn unit_bytes(&self, d: usize, digits: &Digits, size: u64) -> (u64, &[u8], usize) {
        let Dim::Unit { file, unit: u } = self.dims[d] else { panic!("dimension {d} is a namespace operation") };
        let start = (u * self.unit).min(size);
        let end = ((u + 1) * self.unit).min(size);
        let (bytes, zeros) = self.files[file].version(self.source(d, digits.get(d)), start..end, self.page);
        (start, bytes, zeros)
    }

    /// The whole content of file `f` in state `bits`, at `size` bytes.
    pub fn content(&self, f: usize, bits: &Digits, size: u64) -> Vec<u8> {
        let file = &self.files[f];
        let mut out = vec![0u8; size as usize];
        // Units that are not dimensions are equal in both images (zeros past
        // an image's end included): start from the newest image...
        let n = file.newest.len().min(out.len());
        out[..n].copy_from_slice(&file.newest[..n]);
        // ...and put every other unit at the version the state says.
        for d in self.file_dims[f].clone() {
            if !self.is_newest(bits, d) {
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

    /// What digit `digit` of unit dimension `d` holds, in reports: `its
    /// durable floor`, `its newest content`, or `the version written between
    /// call 41 and call 42`.
    pub fn version_name(&self, d: usize, digit: u32) -> String {
        match self.source(d, digit) {
            Source::Floor => "its durable floor".to_owned(),
            Source::Newest => "its newest content".to_owned(),
            Source::History(_) => {
                let v = self.version(d, digit).expect("a history source");
                format!("the version {}", v.when())
            }
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
        images.push(FileImages {
            id,
            path: path.into(),
            floor: floor.to_vec(),
            newest: newest.to_vec(),
            history: vec![],
        });
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
        let mut b = s.extreme(true);
        let size = |b: &Digits| s.layout(b).sizes[0].unwrap();
        assert_eq!(s.content(0, &b, size(&b)), b"XXXXYYYYZZ");
        b.set(2, 0);
        assert_eq!(s.content(0, &b, size(&b)), b"XXXXBBBBZZ");
        b.set(3, 0);
        assert_eq!(s.content(0, &b, size(&b)), b"XXXXBBBB\0\0", "past the floor image: zeros");
        b.set(0, 0);
        assert_eq!(size(&b), 8);
        assert_eq!(s.content(0, &b, size(&b)), b"XXXXBBBB");
        assert_eq!(s.content(0, &Digits::floor(4), 8), b"AAAABBBB");
        assert_eq!(s.unit_bytes(1, &b, 8), (0, &b"XXXX"[..], 0));
        assert_eq!(s.unit_bytes(3, &Digits::floor(4), 10), (8, &b""[..], 2));
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
            FileImages {
                id: FileId(1),
                path: "state~1".into(),
                floor: b"old!".to_vec(),
                newest: b"old!".to_vec(),
                history: vec![],
            },
            FileImages {
                id: tmp,
                path: "state".into(),
                floor: b"new!".to_vec(),
                newest: b"NEW!".to_vec(),
                history: vec![],
            },
        ];
        let s = StateSpace::new(ns, files, 4, 4);
        // The create, the rename; the new file's one page.
        assert_eq!(s.dims(), [Dim::Op(0), Dim::Op(1), Dim::Unit { file: 0, unit: 0 }]);
        let newest = s.extreme(true);
        let l = s.layout(&newest);
        assert_eq!(l.files, vec![(PathBuf::from("state"), 0)]);
        assert_eq!(l.sizes, vec![Some(4), None]);
        let mut lost = newest.clone();
        lost.set(1, 0); // the rename lost: both names, each its own file
        let l = s.layout(&lost);
        assert_eq!(l.files, vec![(PathBuf::from("state"), 1), (PathBuf::from("state.tmp"), 0)]);
        assert_eq!(s.canonical(&lost), lost);
        let mut no_create = newest.clone();
        no_create.set(0, 0); // without its create, the rename cannot persist
        let c = s.canonical(&no_create);
        assert_eq!(c.get(1), 0, "the rename follows its create");
        assert_eq!(s.layout(&c).files, vec![(PathBuf::from("state"), 1)]);
        let mut hidden = c.clone();
        hidden.set(2, 0); // the new file's page: it has no name, so this changes nothing
        assert_eq!(s.canonical(&hidden), c);
    }

    #[test]
    fn intermediate_versions_sit_between_floor_and_newest_once_each() {
        use crate::page_history::PageVersion;
        let v =
            |page, bytes: &[u8], b| PageVersion { page, bytes: bytes.to_vec(), after_call: None, before_call: Some(b) };
        let mut s = test_space(&[("f", b"AAAABBBBCCCC", b"XXXXBBBBZZZZ")], &[], 4, 4);
        // Page 0: Y then X (= newest) then Y again; page 1: went to Q and
        // back (floor = newest); page 2: nothing recorded.
        s.files[0].history = vec![v(0, b"YYYY", 1), v(0, b"XXXX", 2), v(0, b"YYYY", 3), v(1, b"QQQQ", 2)];
        let s = StateSpace::new(s.ns.clone(), s.files.clone(), 4, 4);
        assert_eq!(
            s.dims(),
            [Dim::Unit { file: 0, unit: 0 }, Dim::Unit { file: 0, unit: 1 }, Dim::Unit { file: 0, unit: 2 }]
        );
        assert_eq!(s.radices(), [3, 3, 2], "page 0: A, Y, X; page 1: B, Q, B; page 2: C, Z");
        let mut d = s.extreme(false);
        d.set(0, 1);
        d.set(1, 1);
        assert_eq!(s.content(0, &d, 12), b"YYYYQQQQCCCC");
        assert_eq!(s.version_name(0, 1), "the version written before call 1");
        assert_eq!(s.version_name(0, 2), "its newest content");
        assert_eq!(
            (s.digit_of_version(0, 1), s.digit_of_version(0, 2), s.digit_of_version(0, 3)),
            (Some(1), Some(2), Some(1))
        );
        assert_eq!(s.digit_of_version(0, 4), None);
        assert_eq!(s.version_number(1, 1), Some(1));
        assert_eq!(s.content(0, &s.extreme(true), 12), b"XXXXBBBBZZZZ");
        assert_eq!(s.content(0, &d, 2), b"YY", "a state whose size ends inside or before a unit");
        assert_eq!(s.members(&d, true), Vec::<usize>::new());
        assert_eq!(s.members(&s.extreme(true), false), Vec::<usize>::new());
    }

    #[test]
    fn digits_diff() {
        let a = Digits::floor(70);
        let mut b = Digits::floor(70);
        b.set(3, 2);
        b.set(65, 1);
        assert_eq!(a.diff(&b).collect::<Vec<_>>(), vec![3, 65]);
        assert_eq!(b.get(69 + 64), 0, "out of range reads as floor");
    }
}
