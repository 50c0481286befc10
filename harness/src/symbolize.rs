//! Symbolization of the oracle's stack frames ([`crate::oracle::Frame`]:
//! object file and offset) into function, source file and line, after the
//! run, while the writer's object files are still there.
//!
//! `addr2line` (with `gimli` and `object`, the crates `std`'s own
//! backtraces use) reads the DWARF line tables and inlined-function trees
//! (split DWARF and `.gnu_debuglink` files included); the function name
//! otherwise comes from the object's symbol table (`.symtab`, else
//! `.dynsym`), only when the address lies inside a sized function symbol,
//! so a stripped program's frame is `object+0xOFFSET` rather than the name
//! of some exported symbol before it. Chosen over `blazesym`: it shares
//! `gimli` with the unwinder (`framehop`), is small, and is what
//! `std::backtrace` is built on.
//!
//! Bounded: objects are parsed once (per path); an object larger than
//! [`MAX_OBJECT_BYTES`](crate::object_file::MAX_OBJECT_BYTES) is not read;
//! a parse error or a panic in
//! the DWARF reader gives the symbol-table answer or `object+offset`.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use object::{Object, ObjectSymbol, SymbolKind};

use crate::object_file::{read_bounded, LoadSegments};
use crate::oracle::Frame;
use crate::report::source_location::SourceFrame;

struct ObjectSymbols {
    dwarf: Option<addr2line::Loader>,
    segments: LoadSegments,
    /// Sized function symbols: (start, end, demangled name), by start.
    functions: Vec<(u64, u64, String)>,
}

impl ObjectSymbols {
    fn load(path: &Path) -> Option<ObjectSymbols> {
        let data = read_bounded(path)?;
        let file = object::File::parse(&*data).ok()?;
        let segments = LoadSegments::of(&file);
        let mut functions: Vec<(u64, u64, String)> = file
            .symbols()
            .chain(file.dynamic_symbols())
            .filter(|s| s.kind() == SymbolKind::Text && s.is_definition() && s.size() > 0)
            .filter_map(|s| {
                let name = s.name().ok()?;
                let name = addr2line::demangle_auto(name.into(), None).into_owned();
                Some((s.address(), s.address() + s.size(), name))
            })
            .collect();
        functions.sort();
        functions.dedup_by_key(|f| f.0);
        let dwarf = catch_unwind(|| addr2line::Loader::new(path).ok()).ok().flatten();
        Some(ObjectSymbols { dwarf, segments, functions })
    }

    fn symbol(&self, svma: u64) -> Option<&str> {
        let i = self.functions.partition_point(|f| f.0 <= svma);
        let (start, end, name) = self.functions.get(i.checked_sub(1)?)?;
        (*start <= svma && svma < *end).then_some(name.as_str())
    }

    /// (function, file, line) from DWARF: the innermost inlined frame.
    fn dwarf(&self, svma: u64) -> (Option<String>, Option<String>, Option<u32>) {
        let Some(loader) = &self.dwarf else { return (None, None, None) };
        let found = catch_unwind(AssertUnwindSafe(|| {
            let mut frames = loader.find_frames(svma).ok()?;
            let first = frames.next().ok()??;
            let function = first.function.as_ref().and_then(|f| f.demangle().ok()).map(|f| f.into_owned());
            let (file, line) = match &first.location {
                Some(l) => (l.file.map(str::to_owned), l.line),
                None => (None, None),
            };
            Some((function, file, line))
        }));
        found.ok().flatten().unwrap_or((None, None, None))
    }
}

/// Symbolizes frames, parsing each object once.
#[derive(Default)]
pub struct Symbolizer {
    objects: HashMap<PathBuf, Option<ObjectSymbols>>,
}

impl Symbolizer {
    pub fn new() -> Symbolizer {
        Symbolizer::default()
    }

    pub fn frame(&mut self, f: &Frame) -> SourceFrame {
        let mut out = SourceFrame {
            function: None,
            file: None,
            line: None,
            object: f.object.display().to_string(),
            offset: f.offset,
        };
        if !f.object.is_absolute() {
            return out;
        }
        let symbols = self.objects.entry(f.object.clone()).or_insert_with(|| ObjectSymbols::load(&f.object));
        let Some(symbols) = symbols else { return out };
        let Some(svma) = symbols.segments.address_of(f.offset) else { return out };
        let (function, file, line) = symbols.dwarf(svma);
        out.function = function.or_else(|| symbols.symbol(svma).map(str::to_owned));
        out.file = file;
        out.line = line;
        out
    }

    pub fn frames(&mut self, frames: &[Frame]) -> Vec<SourceFrame> {
        frames.iter().map(|f| self.frame(f)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(object: &str, offset: u64) -> Frame {
        Frame { address: 0, object: PathBuf::from(object), offset }
    }

    #[test]
    fn frames_without_a_readable_object_are_object_and_offset() {
        let mut s = Symbolizer::new();
        for object in ["[vdso]", "", "/no/such/object"] {
            let f = s.frame(&frame(object, 0x40));
            assert_eq!((f.function, f.file, f.line, f.offset), (None, None, None, 0x40), "{object}");
            assert_eq!(f.object, object);
        }
    }

    #[test]
    fn garbage_that_looks_like_elf_gives_object_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("broken.so");
        let mut junk = b"\x7fELF\x02\x01\x01".to_vec();
        junk.extend((0..4096u32).map(|i| (i * 7919 % 251) as u8));
        std::fs::write(&p, &junk).unwrap();
        let f = Symbolizer::new().frame(&frame(p.to_str().unwrap(), 0x100));
        assert_eq!((f.function, f.line), (None, None));
    }

    /// This test's own binary has DWARF (a debug build): the address of a
    /// function in it symbolizes to that function's name and this file.
    #[test]
    fn a_function_of_the_running_binary_symbolizes_to_its_name_and_file() {
        #[inline(never)]
        fn marker_function_for_symbolize() -> usize {
            std::hint::black_box(7)
        }
        let addr = marker_function_for_symbolize as *const () as usize as u64;
        let maps = std::fs::read("/proc/self/maps").unwrap();
        let m = crate::oracle::maps::parse_objects(&maps)
            .into_iter()
            .find(|m| m.start <= addr && addr < m.end)
            .expect("the function is mapped");
        let f = Symbolizer::new().frame(&frame(m.path.to_str().unwrap(), m.offset + (addr - m.start)));
        assert!(f.function.as_deref().is_some_and(|n| n.contains("marker_function_for_symbolize")), "{f:?}");
        assert!(f.file.as_deref().is_some_and(|p| p.ends_with("symbolize.rs")), "{f:?}");
    }
}
