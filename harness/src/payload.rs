//! The bytes a spec writes, materialized once per spec: the initial file image
//! (version 0) and one slice per store. The child `memcpy`s from here (no
//! byte generation inside a trial) and the verifier compares against here.
//!
//! Architecture Invariant: pure; built before fork, only read afterwards.

use serde::{Deserialize, Serialize};

use crate::page_buffer::PageBuffer;
use crate::spec::{fill_pattern, Op, WriterSpec};
use crate::vocab::CrashKind;

/// What the file under test holds before a trial's first op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BaseImage {
    /// Version 0 of the pattern on every byte: written, so every page is
    /// backed (every column but `enospc`).
    #[default]
    Pattern,
    /// Zeros, as a sparse file reads: nothing written, no page backed, so
    /// each store allocates what it touches (`enospc`).
    Sparse,
}

impl BaseImage {
    /// The base image of a trial of `kind`.
    pub fn for_crash(kind: CrashKind) -> BaseImage {
        match kind {
            CrashKind::Enospc => BaseImage::Sparse,
            _ => BaseImage::Pattern,
        }
    }
}

pub struct Payloads {
    /// The initial content of the whole file. Writer children never read it,
    /// so it is kept out of them (see [`PageBuffer`]).
    pub base: PageBuffer,
    /// What `base` is.
    pub base_image: BaseImage,
    arena: Vec<u8>,
    /// Per op: where its store bytes sit in `arena` (`usize::MAX` if not a store).
    start: Vec<usize>,
}

impl Payloads {
    /// Panics if the memory cannot be had; see [`Payloads::try_build`].
    pub fn build(spec: &WriterSpec) -> Payloads {
        Payloads::try_build(spec).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The payloads of `spec`, or why the memory for them cannot be had
    /// (the lab's workers answer that instead of dying).
    pub fn try_build(spec: &WriterSpec) -> Result<Payloads, String> {
        Payloads::try_build_on(spec, BaseImage::Pattern)
    }

    /// The payloads of `spec` over the base image `base_image`.
    pub fn try_build_on(spec: &WriterSpec, base_image: BaseImage) -> Result<Payloads, String> {
        let size = spec.file_size as usize;
        let mut base = PageBuffer::try_zeroed(size, size)
            .map_err(|e| format!("the initial image of a {}-byte file: {e}", spec.file_size))?;
        if base_image == BaseImage::Pattern {
            fill_pattern(&mut base, 0, 0);
        }
        let mut arena = Vec::new();
        arena
            .try_reserve_exact(spec.store_bytes() as usize)
            .map_err(|e| format!("cannot allocate the {} bytes the writer's stores write: {e}", spec.store_bytes()))?;
        let mut start = Vec::with_capacity(spec.ops.len());
        for op in &spec.ops {
            match *op {
                Op::Store { offset, len, version } => {
                    start.push(arena.len());
                    let at = arena.len();
                    arena.resize(at + len as usize, 0);
                    fill_pattern(&mut arena[at..], offset, version);
                }
                _ => start.push(usize::MAX),
            }
        }
        Ok(Payloads { base, base_image, arena, start })
    }

    /// The bytes store op `op` writes (panics if `op` is not a store).
    pub fn store(&self, spec: &WriterSpec, op: usize) -> &[u8] {
        let Op::Store { len, .. } = spec.ops[op] else { panic!("op {op} is not a store") };
        let at = self.start[op];
        &self.arena[at..at + len as usize]
    }

    /// Total bytes held (for memory accounting).
    pub fn heap_bytes(&self) -> usize {
        self.base.len() + self.arena.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{pattern_byte, MappingKind, SyncPolicy, WorkloadParams};

    #[test]
    fn store_bytes_are_the_pattern_of_their_version() {
        let spec = WriterSpec::generate(
            &WorkloadParams::with_file_size(64 * 1024),
            MappingKind::Shared,
            SyncPolicy::None,
            4096,
            1,
        )
        .unwrap();
        let p = Payloads::build(&spec);
        for (i, op) in spec.ops.iter().enumerate() {
            if let Op::Store { offset, version, .. } = *op {
                let bytes = p.store(&spec, i);
                for (j, b) in bytes.iter().enumerate() {
                    assert_eq!(*b, pattern_byte(offset + j as u64, version));
                }
            }
        }
        assert_eq!(p.base[100], pattern_byte(100, 0));
        let sparse = Payloads::try_build_on(&spec, BaseImage::Sparse).unwrap();
        assert!(sparse.base.iter().all(|&b| b == 0), "a sparse file reads as zeros");
        assert_eq!(sparse.store(&spec, 0), p.store(&spec, 0), "stores write the same bytes on either base");
        assert_eq!(BaseImage::for_crash(CrashKind::Enospc), BaseImage::Sparse);
        assert_eq!(BaseImage::for_crash(CrashKind::Sigbus), BaseImage::Pattern);
    }
}
