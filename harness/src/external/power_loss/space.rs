//! The states a simulated power loss may leave of a crashed writer's
//! directory: per file a *floor* image (what completed syncs guarantee) and a
//! *newest* image (the page cache when the writer died), and per unit (a page,
//! or a sector with `--tear`) a choice between the two, plus a choice between
//! the two sizes.
//!
//! Architecture Invariant: pure. The images are given; nothing here touches
//! a file.

use std::ops::Range;
use std::path::PathBuf;

/// One file of the crashed directory, as a power loss may leave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileImages {
    /// Relative to the trial directory.
    pub path: PathBuf,
    /// The floor image; its length is the floor size.
    pub floor: Vec<u8>,
    /// The newest image (the page cache); its length is the newest size.
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

/// What one coordinate of the state space chooses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DimKind {
    /// The file's size: its floor size or its newest size.
    Size,
    /// Unit `index` of the file (bytes `index * unit ..`).
    Unit(u64),
}

/// A coordinate of the state space: something that differs between a
/// file's floor and its newest image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Dim {
    pub file: usize,
    pub kind: DimKind,
}

/// A state: one bit per dimension, set = newest, clear = floor.
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

/// The state space of one crashed directory.
#[derive(Debug, Clone)]
pub struct StateSpace {
    pub files: Vec<FileImages>,
    /// Empty directories (relative), as in [`crate::external::DirImage`].
    pub dirs: Vec<PathBuf>,
    /// Bytes per unit: the page size, or the `--tear` sector size.
    pub unit: u64,
    pub page: u64,
    /// Sorted: by file, the size (if it differs) first, then units ascending.
    dims: Vec<Dim>,
    /// The dimensions of each file.
    file_dims: Vec<Range<usize>>,
}

impl StateSpace {
    /// `files` in any order (they are sorted by path); `unit` must divide `page`.
    pub fn new(mut files: Vec<FileImages>, dirs: Vec<PathBuf>, unit: u64, page: u64) -> StateSpace {
        assert!(unit > 0 && page % unit == 0, "a unit of {unit} bytes does not divide a page of {page}");
        files.sort_by(|a, b| a.path.cmp(&b.path));
        let mut dims = Vec::new();
        let mut file_dims = Vec::with_capacity(files.len());
        for (i, f) in files.iter().enumerate() {
            let first = dims.len();
            if f.floor.len() != f.newest.len() {
                dims.push(Dim { file: i, kind: DimKind::Size });
            }
            let len = f.floor.len().max(f.newest.len()) as u64;
            for u in 0..len.div_ceil(unit) {
                let end = ((u + 1) * unit).min(len);
                if !f.same(u * unit..end) {
                    dims.push(Dim { file: i, kind: DimKind::Unit(u) });
                }
            }
            file_dims.push(first..dims.len());
        }
        StateSpace { files, dirs, unit, page, dims, file_dims }
    }

    pub fn dims(&self) -> &[Dim] {
        &self.dims
    }

    pub fn dim_count(&self) -> usize {
        self.dims.len()
    }

    /// The number of states, if it fits in a u64.
    pub fn state_count(&self) -> Option<u64> {
        1u64.checked_shl(self.dims.len() as u32)
    }

    /// The dimension of `file`'s `kind`, if it is one.
    pub fn find(&self, file: usize, kind: DimKind) -> Option<usize> {
        let r = self.file_dims.get(file)?.clone();
        self.dims[r.clone()].binary_search(&Dim { file, kind }).ok().map(|i| r.start + i)
    }

    pub fn file_index(&self, path: &std::path::Path) -> Option<usize> {
        self.files.binary_search_by(|f| f.path.as_path().cmp(path)).ok()
    }

    /// The size of file `f` in state `bits`.
    pub fn size(&self, f: usize, bits: &Bits) -> u64 {
        let file = &self.files[f];
        match self.find(f, DimKind::Size) {
            Some(d) if !bits.get(d) => file.floor.len() as u64,
            _ => file.newest.len() as u64,
        }
    }

    /// The bytes unit dimension `d` holds in `bits`, within a file of `size`
    /// bytes: (offset, real bytes, zeros after them). Empty past the size.
    pub fn unit_bytes(&self, d: usize, bits: &Bits, size: u64) -> (u64, &[u8], usize) {
        let Dim { file, kind: DimKind::Unit(u) } = self.dims[d] else { panic!("dimension {d} is a size") };
        let f = &self.files[file];
        let start = (u * self.unit).min(size);
        let end = ((u + 1) * self.unit).min(size);
        let image = if bits.get(d) { &f.newest } else { &f.floor };
        let (bytes, zeros) = FileImages::padded(image, start..end);
        (start, bytes, zeros)
    }

    /// The whole content of file `f` in state `bits`.
    pub fn content(&self, f: usize, bits: &Bits) -> Vec<u8> {
        let size = self.size(f, bits);
        let file = &self.files[f];
        let mut out = vec![0u8; size as usize];
        // Units that are not dimensions are equal in both images (zeros past
        // an image's end included): start from the newest image...
        let n = file.newest.len().min(out.len());
        out[..n].copy_from_slice(&file.newest[..n]);
        // ...and put every unit at its floor where the state says so.
        for d in self.file_dims[f].clone() {
            if matches!(self.dims[d].kind, DimKind::Unit(_)) && !bits.get(d) {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, floor: &[u8], newest: &[u8]) -> FileImages {
        FileImages { path: path.into(), floor: floor.to_vec(), newest: newest.to_vec() }
    }

    #[test]
    fn dimensions_are_the_units_and_sizes_that_differ() {
        // 4-byte units in 8-byte pages.
        let s = StateSpace::new(
            vec![
                file("b", b"AAAABBBBCCCC", b"AAAAXXXXCCCCDD"),
                file("a", b"same", b"same"),
                // A shorter floor whose missing part is zeros equals a zero-padded newest.
                file("c", b"12", b"12\0\0\0\0\0\0"),
            ],
            vec![],
            4,
            8,
        );
        assert_eq!(s.files.iter().map(|f| f.path.to_str().unwrap()).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(
            s.dims(),
            [
                Dim { file: 1, kind: DimKind::Size },
                Dim { file: 1, kind: DimKind::Unit(1) },
                Dim { file: 1, kind: DimKind::Unit(3) },
                Dim { file: 2, kind: DimKind::Size },
            ]
        );
        assert_eq!(s.state_count(), Some(16));
        assert_eq!(s.find(1, DimKind::Unit(3)), Some(2));
        assert_eq!(s.find(1, DimKind::Unit(0)), None);
        assert_eq!(s.unit_name(3), "page 1 sector 1");
    }

    #[test]
    fn contents_mix_the_images_unit_by_unit() {
        let s = StateSpace::new(vec![file("f", b"AAAABBBB", b"XXXXYYYYZZ")], vec![], 4, 4);
        // dims: size, unit 0, unit 1, unit 2 (ZZ vs nothing).
        assert_eq!(s.dim_count(), 4);
        let mut b = Bits::all(4, true);
        assert_eq!(s.content(0, &b), b"XXXXYYYYZZ");
        b.set(2, false);
        assert_eq!(s.content(0, &b), b"XXXXBBBBZZ");
        b.set(3, false);
        assert_eq!(s.content(0, &b), b"XXXXBBBB\0\0", "past the floor image: zeros");
        b.set(0, false);
        assert_eq!(s.content(0, &b), b"XXXXBBBB");
        assert_eq!(s.content(0, &Bits::all(4, false)), b"AAAABBBB");
        assert_eq!(s.unit_bytes(1, &b, 8), (0, &b"XXXX"[..], 0));
        assert_eq!(s.unit_bytes(3, &Bits::all(4, false), 10), (8, &b""[..], 2));
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
