//! An object file (executable or shared library) as source attribution
//! reads it: whole, bounded in size, and with its load segments, which turn
//! an offset in the file (what a stack frame records) into the address the
//! object states (what its unwind and debug information use). Shared by the
//! unwinder (`oracle/stack.rs`) and the symbolizer (`symbolize.rs`).

use std::ops::Range;
use std::path::Path;

use object::{Object, ObjectSegment};

/// Objects larger than this are not read: a frame in one gives no unwind
/// information and no symbol (`object+offset`).
pub const MAX_OBJECT_BYTES: u64 = 1 << 30;

/// The bytes of the regular file at `path`, if it is at most
/// [`MAX_OBJECT_BYTES`] and readable.
pub fn read_bounded(path: &Path) -> Option<Vec<u8>> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() || meta.len() > MAX_OBJECT_BYTES {
        return None;
    }
    std::fs::read(path).ok()
}

/// Each segment's file range and the stated address of its start.
#[derive(Debug, Clone, Default)]
pub struct LoadSegments(Vec<(Range<u64>, u64)>);

impl LoadSegments {
    pub fn of(file: &object::File<'_>) -> LoadSegments {
        LoadSegments(
            file.segments()
                .map(|s| {
                    let (off, len) = s.file_range();
                    (off..off.saturating_add(len), s.address())
                })
                .collect(),
        )
    }

    /// The stated address of a file offset; `None` outside every segment.
    pub fn address_of(&self, offset: u64) -> Option<u64> {
        self.0.iter().find(|(r, _)| r.contains(&offset)).map(|(r, addr)| addr + (offset - r.start))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_maps_into_its_segment_and_nowhere_else() {
        let s = LoadSegments(vec![(0..0x1000, 0), (0x1000..0x3000, 0x401000)]);
        assert_eq!(s.address_of(0x10), Some(0x10));
        assert_eq!(s.address_of(0x1234), Some(0x401234));
        assert_eq!(s.address_of(0x3000), None);
    }

    #[test]
    fn a_missing_file_or_a_directory_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_bounded(dir.path()).is_none());
        assert!(read_bounded(&dir.path().join("none")).is_none());
    }
}
