//! The page-cache image a writer leaves after a prefix of its ops, as a map
//! from byte ranges to the op that last wrote them.
//!
//! This is "what the kernel holds" under the process-crash model: every
//! completed store of a `MAP_SHARED` mapping, synced or not; nothing of a
//! `MAP_PRIVATE` one. Truncations cut the image; growing it again adds zeros.
//!
//! Architecture Invariant: pure; cost is in the number of ops, never in bytes.

use crate::spec::{ByteRange, MappingKind, Op, WriterSpec};

/// Who wrote a byte last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The initial content (version 0).
    Base,
    /// The store at this op index.
    Store(usize),
    /// Zeros: the file was truncated below this byte and grown again.
    Zero,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub range: ByteRange,
    pub owner: Owner,
}

/// Disjoint, sorted segments covering `[0, len)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveImage {
    pub len: u64,
    pub segments: Vec<Segment>,
}

/// Something that changed the file, in the order it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileEvent {
    /// Op `i` of the spec completed.
    Op(usize),
    /// Someone else (the crashing parent) truncated the file to this length.
    ExternalTruncate(u64),
}

impl LiveImage {
    pub fn initial(spec: &WriterSpec) -> LiveImage {
        LiveImage {
            len: spec.file_size,
            segments: vec![Segment { range: ByteRange::new(0, spec.file_size), owner: Owner::Base }],
        }
    }

    /// The image after `events`.
    pub fn after(spec: &WriterSpec, events: impl IntoIterator<Item = FileEvent>) -> LiveImage {
        let mut image = LiveImage::initial(spec);
        for e in events {
            image.apply(spec, e);
        }
        image
    }

    pub fn apply(&mut self, spec: &WriterSpec, event: FileEvent) {
        match event {
            FileEvent::ExternalTruncate(len) => self.truncate(len),
            FileEvent::Op(i) => match spec.ops[i] {
                Op::Store { offset, len, .. } if spec.mapping == MappingKind::Shared => {
                    // Bytes stored beyond EOF (inside the last page) are not
                    // part of the file.
                    let end = (offset + len).min(self.len);
                    if offset < end {
                        self.paint(ByteRange::new(offset, end), Owner::Store(i));
                    }
                }
                Op::Truncate { len } => self.truncate(len),
                _ => {}
            },
        }
    }

    fn truncate(&mut self, len: u64) {
        if len < self.len {
            self.segments.retain(|s| s.range.start < len);
            if let Some(last) = self.segments.last_mut() {
                last.range.end = last.range.end.min(len);
            }
        } else if len > self.len {
            self.segments.push(Segment { range: ByteRange::new(self.len, len), owner: Owner::Zero });
        }
        self.len = len;
    }

    fn paint(&mut self, r: ByteRange, owner: Owner) {
        let mut out = Vec::with_capacity(self.segments.len() + 2);
        let mut placed = false;
        for s in &self.segments {
            if s.range.end <= r.start || s.range.start >= r.end {
                if !placed && s.range.start >= r.end {
                    out.push(Segment { range: r, owner });
                    placed = true;
                }
                out.push(*s);
                continue;
            }
            if s.range.start < r.start {
                out.push(Segment { range: ByteRange::new(s.range.start, r.start), owner: s.owner });
            }
            if !placed {
                out.push(Segment { range: r, owner });
                placed = true;
            }
            if s.range.end > r.end {
                out.push(Segment { range: ByteRange::new(r.end, s.range.end), owner: s.owner });
            }
        }
        if !placed {
            out.push(Segment { range: r, owner });
        }
        self.segments = out;
    }

    /// The segments overlapping `r`, clipped to it.
    pub fn within(&self, r: ByteRange) -> impl Iterator<Item = Segment> + '_ {
        self.segments.iter().filter(move |s| s.range.overlaps(&r)).map(move |s| Segment {
            range: ByteRange::new(s.range.start.max(r.start), s.range.end.min(r.end)),
            owner: s.owner,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::SyncPolicy;

    fn spec(mapping: MappingKind, ops: Vec<Op>) -> WriterSpec {
        WriterSpec { file_size: 16384, page_size: 4096, mapping, policy: SyncPolicy::None, ops }
    }

    fn owners(img: &LiveImage) -> Vec<(u64, u64, Owner)> {
        img.segments.iter().map(|s| (s.range.start, s.range.end, s.owner)).collect()
    }

    #[test]
    fn later_stores_win_and_segments_stay_disjoint() {
        let s = spec(
            MappingKind::Shared,
            vec![
                Op::Store { offset: 100, len: 100, version: 1 },
                Op::Store { offset: 150, len: 100, version: 2 },
                Op::Store { offset: 0, len: 10, version: 3 },
            ],
        );
        let img = LiveImage::after(&s, (0..3).map(FileEvent::Op));
        assert_eq!(
            owners(&img),
            vec![
                (0, 10, Owner::Store(2)),
                (10, 100, Owner::Base),
                (100, 150, Owner::Store(0)),
                (150, 250, Owner::Store(1)),
                (250, 16384, Owner::Base),
            ]
        );
    }

    #[test]
    fn private_stores_never_reach_the_image() {
        let s = spec(MappingKind::Private, vec![Op::Store { offset: 0, len: 10, version: 1 }]);
        assert_eq!(LiveImage::after(&s, [FileEvent::Op(0)]), LiveImage::initial(&s));
    }

    #[test]
    fn truncate_cuts_and_regrowth_is_zero() {
        let s = spec(
            MappingKind::Shared,
            vec![
                Op::Store { offset: 8000, len: 1000, version: 1 },
                Op::Truncate { len: 8500 },
                Op::Truncate { len: 16384 },
            ],
        );
        let img = LiveImage::after(&s, (0..3).map(FileEvent::Op));
        assert_eq!(
            owners(&img),
            vec![(0, 8000, Owner::Base), (8000, 8500, Owner::Store(0)), (8500, 16384, Owner::Zero)]
        );
        let cut = LiveImage::after(&s, [FileEvent::ExternalTruncate(4096), FileEvent::Op(0)]);
        assert_eq!(cut.len, 4096);
        assert_eq!(owners(&cut), vec![(0, 4096, Owner::Base)]);
    }
}
