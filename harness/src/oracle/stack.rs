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
//! [`MAX_STACK_READS`] word reads outside the first [`STACK_WINDOW`] bytes
//! above the stack pointer (read in one `process_vm_readv`); an object larger
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
/// Bytes above the stack pointer read in one go at each capture.
pub const STACK_WINDOW: usize = 16 * 1024;
/// Word reads allowed outside that window per capture.
pub const MAX_STACK_READS: usize = 256;

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
        let mut window = vec![0u8; STACK_WINDOW];
        let got = sys::read_remote(tid, regs.rsp, &mut window, self.page).unwrap_or(0);
        window.truncate(got);
        let mut reads = 0usize;
        let page = self.page;
        let mut read_stack = |addr: u64| -> Result<u64, ()> {
            if let Some(off) = addr.checked_sub(regs.rsp).map(|o| o as usize) {
                if let Some(w) = window.get(off..off.saturating_add(8)).filter(|w| w.len() == 8) {
                    return Ok(u64::from_le_bytes(w.try_into().expect("8 bytes")));
                }
            }
            reads += 1;
            if reads > MAX_STACK_READS {
                return Err(());
            }
            let mut w = [0u8; 8];
            match sys::read_remote(tid, addr, &mut w, page) {
                Ok(8) => Ok(u64::from_le_bytes(w)),
                _ => Err(()),
            }
        };
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

    /// A frame-pointer walk over memory that is all garbage (a chain that
    /// loops, or points anywhere) stops within the bounds.
    #[test]
    fn a_walk_over_garbage_memory_stops_within_the_bounds() {
        let unwinder: UnwinderX86_64<Bytes> = UnwinderX86_64::new();
        let mut cache = CacheX86_64::new();
        for pattern in [0u64, u64::MAX, 0x1000, 0xdead_beef_dead_beef] {
            let mut reads = 0usize;
            let mut read_stack = |addr: u64| -> Result<u64, ()> {
                reads += 1;
                if reads > MAX_STACK_READS {
                    return Err(());
                }
                // A frame pointer that points at itself, or garbage.
                Ok(if pattern == 0x1000 { addr } else { pattern.wrapping_add(addr) })
            };
            let mut iter = unwinder.iter_frames(
                0x40_0000,
                UnwindRegsX86_64::new(0x40_0000, 0x7000, 0x1000),
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
            assert!(n <= MAX_FRAMES);
            assert!(reads <= MAX_STACK_READS + 1, "pattern {pattern:#x}: {reads} reads");
        }
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
