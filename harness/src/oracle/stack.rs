//! Stack capture: the user-space call stack of a ptrace-stopped task, as
//! plain [`Frame`]s (address, object file, offset in it) to be symbolized
//! after the run (`crate::symbolize`).
//!
//! Unwinding uses the DWARF call-frame information of each object
//! (`.eh_frame`, with `.eh_frame_hdr` as its index: present in nearly every
//! x86_64 ELF object, with or without `-g`, with or without frame pointers)
//! through `framehop`, which falls back to a frame-pointer step where an
//! address has no CFI. Objects are parsed once per `(dev, inode)`: only the
//! unwind sections are kept. Each address space (by the tracer's space id
//! and generation, which changes at every `mmap`/`munmap`/`execve`) gets its
//! module list from `/proc/PID/maps` once.
//!
//! Bounded and failure-tolerant by design: at most [`MAX_FRAMES`] frames and
//! [`MAX_STACK_READS`] reads of the stack, each at most a page (one
//! `process_vm_readv` each; the cost is per page: 16 KiB read at once cost
//! 5.6 µs, more than the rest of a capture together); an object larger
//! than [`MAX_OBJECT_BYTES`](crate::object_file::MAX_OBJECT_BYTES) or that
//! does not parse gives no CFI (the
//! frame-pointer fallback still runs); an unreadable word ends the walk. A
//! stack that cannot be walked gives the frames found so far, never an error.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use framehop::x86_64::{CacheX86_64, UnwindRegsX86_64, UnwinderX86_64};
use framehop::{FrameAddress, Module, ModuleSectionInfo, Unwinder};
use libc::pid_t;
use object::{Object, ObjectSection};

use super::maps::{self, ObjectMapping};
use super::sys;
use super::Frame;
use crate::object_file::{read_bounded, LoadSegments};

/// The most frames one stack keeps (the innermost ones).
pub const MAX_FRAMES: usize = 32;
/// Reads of the writer's stack per capture.
pub const MAX_STACK_READS: usize = 64;

type Bytes = Arc<[u8]>;

/// What one object file contributes to unwinding: its unwind sections and
/// the segments that map file offsets to its stated addresses.
struct ObjectUnwind {
    sections: Vec<(&'static [u8], Range<u64>, Bytes)>,
    segments: LoadSegments,
}

const UNWIND_SECTIONS: [&[u8]; 5] = [b".eh_frame", b".eh_frame_hdr", b".text", b".got", b".debug_frame"];

impl ObjectUnwind {
    fn load(path: &Path) -> Option<ObjectUnwind> {
        let data = read_bounded(path)?;
        let file = object::File::parse(&*data).ok()?;
        let mut sections = Vec::new();
        for name in UNWIND_SECTIONS {
            let Some(s) = file.section_by_name_bytes(name) else { continue };
            let range = s.address()..s.address().saturating_add(s.size());
            // `.text` and `.got` only need their addresses (the CFI's
            // pointer encodings are relative to them).
            let bytes: Bytes = match name {
                b".text" | b".got" => Arc::from(&[][..]),
                _ => match s.uncompressed_data() {
                    Ok(d) => Arc::from(d.as_ref()),
                    Err(_) => continue,
                },
            };
            sections.push((name, range, bytes));
        }
        Some(ObjectUnwind { sections, segments: LoadSegments::of(&file) })
    }
}

struct SectionInfo(Arc<ObjectUnwind>);

impl ModuleSectionInfo<Bytes> for SectionInfo {
    fn base_svma(&self) -> u64 {
        0
    }

    fn section_svma_range(&mut self, name: &[u8]) -> Option<Range<u64>> {
        self.0.sections.iter().find(|(n, _, _)| *n == name).map(|(_, r, _)| r.clone())
    }

    fn section_data(&mut self, name: &[u8]) -> Option<Bytes> {
        self.0.sections.iter().find(|(n, _, d)| *n == name && !d.is_empty()).map(|(_, _, d)| d.clone())
    }
}

/// One address space's modules, for one generation of it.
struct SpaceModules {
    key: (u64, u64),
    maps: Vec<ObjectMapping>,
    unwinder: UnwinderX86_64<Bytes>,
}

/// Captures stacks across a run; caches objects and address spaces.
pub struct StackCapturer {
    objects: HashMap<(u64, u64), Option<Arc<ObjectUnwind>>>,
    spaces: HashMap<pid_t, SpaceModules>,
    cache: Box<CacheX86_64>,
    page: u64,
    /// Stacks captured, for the benchmark's counters.
    pub captured: u64,
}

impl StackCapturer {
    pub fn new(page: u64) -> StackCapturer {
        StackCapturer {
            objects: HashMap::new(),
            spaces: HashMap::new(),
            cache: Box::new(CacheX86_64::new()),
            page,
            captured: 0,
        }
    }

    /// The stack of `tid` (of process `tgid`), stopped under ptrace, whose
    /// address space is `space` (the tracer's id and generation of it: when
    /// it changes, the maps are read again). Never fails: a stack that
    /// cannot be read is empty or cut short.
    pub fn capture(&mut self, tid: pid_t, tgid: pid_t, space: (u64, u64)) -> Vec<Frame> {
        self.captured += 1;
        let Ok(regs) = sys::get_regs(tid) else { return Vec::new() };
        if self.spaces.get(&tgid).is_none_or(|s| s.key != space) {
            let modules = self.modules(tgid, space);
            self.spaces.insert(tgid, modules);
        }
        let modules = &self.spaces[&tgid];
        let page = self.page;
        let mut memory =
            StackMemory::new(page, |addr, buf: &mut [u8]| sys::read_remote(tid, addr, buf, page).unwrap_or(0));
        let mut read_stack = |addr: u64| memory.word(addr);
        let mut frames = Vec::new();
        let mut iter = modules.unwinder.iter_frames(
            regs.rip,
            UnwindRegsX86_64::new(regs.rip, regs.rsp, regs.rbp),
            &mut self.cache,
            &mut read_stack,
        );
        while frames.len() < MAX_FRAMES {
            match iter.next() {
                Ok(Some(addr)) => frames.push(frame_at(&modules.maps, addr)),
                Ok(None) | Err(_) => break,
            }
        }
        frames
    }

    fn modules(&mut self, tgid: pid_t, key: (u64, u64)) -> SpaceModules {
        let text = std::fs::read(format!("/proc/{tgid}/maps")).unwrap_or_default();
        let maps = maps::parse_objects(&text);
        let mut unwinder = UnwinderX86_64::new();
        // One module per object: its executable mappings' span.
        let mut seen: Vec<(u64, u64)> = Vec::new();
        // A deleted object's path may name another file now: no CFI for it
        // (the frame-pointer fallback still walks through it).
        for m in maps.iter().filter(|m| m.executable && m.inode != 0 && !m.deleted) {
            let id = (m.dev, m.inode);
            if seen.contains(&id) {
                continue;
            }
            seen.push(id);
            let object = self.objects.entry(id).or_insert_with(|| ObjectUnwind::load(&m.path).map(Arc::new)).clone();
            let Some(object) = object else { continue };
            let Some(svma) = object.segments.address_of(m.offset) else { continue };
            let base_avma = m.start.wrapping_sub(svma);
            let span = maps
                .iter()
                .filter(|o| (o.dev, o.inode) == id && o.executable)
                .fold(m.start..m.end, |r, o| r.start.min(o.start)..r.end.max(o.end));
            let name = m.path.display().to_string();
            unwinder.add_module(Module::new(name, span, base_avma, SectionInfo(object)));
        }
        SpaceModules { key, maps, unwinder }
    }
}

/// The writer's stack memory as the unwinder reads it: words served from
/// chunks, each the rest of the page that holds the word asked for (the
/// cost of a remote read is per page), read with one call of `read` (which
/// returns the bytes it could read), at most [`MAX_STACK_READS`] of them.
struct StackMemory<R: FnMut(u64, &mut [u8]) -> usize> {
    read: R,
    page: u64,
    chunks: Vec<(u64, Vec<u8>)>,
}

impl<R: FnMut(u64, &mut [u8]) -> usize> StackMemory<R> {
    fn new(page: u64, read: R) -> StackMemory<R> {
        StackMemory { read, page, chunks: Vec::new() }
    }

    fn word(&mut self, addr: u64) -> Result<u64, ()> {
        let cached = |chunks: &[(u64, Vec<u8>)]| {
            chunks.iter().find_map(|(start, bytes)| {
                let off = usize::try_from(addr.checked_sub(*start)?).ok()?;
                let w = bytes.get(off..off.checked_add(8)?)?;
                Some(u64::from_le_bytes(w.try_into().expect("8 bytes")))
            })
        };
        if let Some(w) = cached(&self.chunks) {
            return Ok(w);
        }
        if self.chunks.len() >= MAX_STACK_READS {
            return Err(());
        }
        // A word that straddles the page's end takes the next page too.
        let mut len = self.page - addr % self.page;
        if len < 8 {
            len += self.page;
        }
        let mut bytes = vec![0u8; len as usize];
        let got = (self.read)(addr, &mut bytes).min(len as usize);
        bytes.truncate(got);
        self.chunks.push((addr, bytes));
        cached(&self.chunks[self.chunks.len() - 1..]).ok_or(())
    }
}

/// A frame: the address looked up (for a return address, the byte before
/// it, inside the call instruction) resolved against the mappings.
fn frame_at(maps: &[ObjectMapping], addr: FrameAddress) -> Frame {
    let address = addr.address_for_lookup();
    let i = maps.partition_point(|m| m.end <= address);
    match maps.get(i).filter(|m| m.start <= address) {
        Some(m) if m.inode != 0 => Frame { address, object: m.path.clone(), offset: m.offset + (address - m.start) },
        // A pseudo-object (`[vdso]`): the offset from its start.
        Some(m) => Frame { address, object: m.path.clone(), offset: address - m.start },
        None => Frame { address, object: PathBuf::new(), offset: address },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(start: u64, end: u64, offset: u64, inode: u64, path: &str) -> ObjectMapping {
        let path = PathBuf::from(path);
        ObjectMapping { start, end, offset, dev: 1, inode, executable: true, shared: false, path, deleted: false }
    }

    #[test]
    fn a_frame_is_resolved_to_its_object_and_file_offset() {
        let maps = vec![mapping(0x1000, 0x3000, 0x4000, 7, "/bin/w"), mapping(0x9000, 0xa000, 0, 0, "[vdso]")];
        let ip = frame_at(&maps, FrameAddress::from_instruction_pointer(0x1010));
        assert_eq!((ip.object, ip.offset), (PathBuf::from("/bin/w"), 0x4010));
        // A return address is looked up one byte before it.
        let ret = frame_at(&maps, FrameAddress::from_return_address(0x2000).unwrap());
        assert_eq!((ret.address, ret.offset), (0x1fff, 0x4fff));
        let v = frame_at(&maps, FrameAddress::from_instruction_pointer(0x9020));
        assert_eq!((v.object, v.offset), (PathBuf::from("[vdso]"), 0x20));
        let none = frame_at(&maps, FrameAddress::from_instruction_pointer(0x5000));
        assert_eq!((none.object, none.offset), (PathBuf::new(), 0x5000));
    }

    /// A walk over memory that is all garbage (a frame pointer that points
    /// at itself, or anywhere) stops within the bounds: at most
    /// [`MAX_FRAMES`] frames, at most [`MAX_STACK_READS`] reads of at most
    /// two pages each.
    #[test]
    fn a_walk_over_garbage_memory_stops_within_the_bounds() {
        let unwinder: UnwinderX86_64<Bytes> = UnwinderX86_64::new();
        let mut cache = CacheX86_64::new();
        for pattern in [0u64, u64::MAX, 0x1000, 0xdead_beef_dead_beef, 0x10] {
            let (mut reads, mut largest) = (0usize, 0usize);
            let mut memory = StackMemory::new(4096, |addr: u64, buf: &mut [u8]| {
                reads += 1;
                largest = largest.max(buf.len());
                for (i, w) in buf.chunks_mut(8).enumerate() {
                    let at = addr + 8 * i as u64;
                    // 0x1000: each word holds its own address (a frame
                    // pointer chain that loops); 0x10: it points just above.
                    let v = match pattern {
                        0x1000 => at,
                        0x10 => at + 0x10,
                        p => p.wrapping_add(at),
                    };
                    w.copy_from_slice(&v.to_le_bytes()[..w.len()]);
                }
                buf.len()
            });
            let mut read_stack = |addr: u64| memory.word(addr);
            let mut iter = unwinder.iter_frames(
                0x40_0000,
                UnwindRegsX86_64::new(0x40_0000, 0x7000, 0x7100),
                &mut cache,
                &mut read_stack,
            );
            let mut n = 0;
            while n < MAX_FRAMES {
                match iter.next() {
                    Ok(Some(_)) => n += 1,
                    _ => break,
                }
            }
            assert!(n <= MAX_FRAMES, "pattern {pattern:#x}: {n} frames");
            assert!(reads <= MAX_STACK_READS, "pattern {pattern:#x}: {reads} reads");
            assert!(largest <= 2 * 4096, "pattern {pattern:#x}: a read of {largest} bytes");
        }
    }

    #[test]
    fn stack_memory_serves_words_from_one_read_per_page_and_fails_where_nothing_is_readable() {
        let mut reads = Vec::new();
        let mut memory = StackMemory::new(4096, |addr: u64, buf: &mut [u8]| {
            reads.push((addr, buf.len()));
            // Readable up to 0x3000 only.
            let n = (0x3000u64.saturating_sub(addr) as usize).min(buf.len());
            for (i, b) in buf[..n].iter_mut().enumerate() {
                *b = ((addr as usize + i) / 8) as u8;
            }
            n
        });
        assert_eq!(memory.word(0x1008), Ok(u64::from_le_bytes([1; 8])));
        assert_eq!(memory.word(0x1ff0), Ok(u64::from_le_bytes([0x3fe_u64 as u8; 8])));
        // A word straddling the page's end: the read takes the next page too.
        assert!(memory.word(0x2ffc).is_err(), "it runs past the readable end");
        assert!(memory.word(0x3000).is_err());
        assert_eq!(reads[0], (0x1008, 4096 - 8), "the rest of the page");
        assert_eq!(reads.len(), 3, "0x1ff0 came from the first read: {reads:?}");
        assert_eq!(reads[1], (0x2ffc, 4 + 4096));
    }

    #[test]
    fn an_object_that_is_not_elf_gives_no_unwind_information() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("junk");
        std::fs::write(&p, b"\x7fELF garbage that is not an object").unwrap();
        assert!(ObjectUnwind::load(&p).is_none());
        assert!(ObjectUnwind::load(&dir.path().join("missing")).is_none());
    }

    /// The test binary itself: its `.eh_frame` is found, and a file offset
    /// in its text maps to a stated address.
    #[test]
    fn the_running_binary_has_unwind_sections_and_load_segments() {
        let exe = std::env::current_exe().unwrap();
        let o = ObjectUnwind::load(&exe).expect("the test binary parses");
        assert!(o.sections.iter().any(|(n, _, d)| *n == b".eh_frame" && !d.is_empty()));
        assert!(!o.segments.is_empty());
    }
}
