//! Source attribution in the external report (schema 1.6): where in the
//! writer's code a power-loss violation's lost ack was printed and its
//! syncs were called, as symbolized call-stack frames.
//!
//! Architecture Invariant: pure.

use serde::{Deserialize, Serialize};

/// One frame of the writer's call stack, symbolized after the run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SourceFrame {
    /// The function (demangled; the innermost inlined one), from the debug
    /// information or else the symbol table; absent when neither names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// The source file and line, from the debug information (`-g`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The object file (or pseudo-object like `[vdso]`) the address lies
    /// in, as the writer's `/proc/PID/maps` named it; empty when none.
    pub object: String,
    /// The address as an offset in `object`'s file (for a return address,
    /// the byte before it: inside the call).
    pub offset: u64,
}

impl SourceFrame {
    /// `src/log.c:110 (main)`, `flush (in /usr/bin/w+0x1234)`, or
    /// `/usr/bin/w+0x1234`.
    pub fn location(&self) -> String {
        let at = format!("{}+{:#x}", if self.object.is_empty() { "?" } else { &self.object }, self.offset);
        match (&self.file, self.line, &self.function) {
            (Some(file), Some(line), Some(f)) => format!("{file}:{line} ({f})"),
            (Some(file), Some(line), None) => format!("{file}:{line}"),
            (_, _, Some(f)) => format!("{f} (in {at})"),
            _ => at,
        }
    }

    /// Source of the Rust standard library (`/rustc/HASH/library/...`, as
    /// rustc records it), which a program links in: like the C library's
    /// wrappers, rarely what a reader looks for.
    fn in_runtime_sources(&self) -> bool {
        self.file.as_deref().is_some_and(|f| f.starts_with("/rustc/"))
    }

    /// A shared library (`*.so`, `*.so.N`): the C library's wrapper of a
    /// call is rarely what a reader looks for.
    fn in_shared_library(&self) -> bool {
        let name = self.object.rsplit('/').next().unwrap_or("");
        name.ends_with(".so") || name.contains(".so.")
    }
}

/// The frame that best says where in the writer's code a stack was: the
/// innermost one with a source line outside a language's runtime (Rust's
/// standard library, linked into the program, has lines too: its sources
/// are named `/rustc/HASH/library/...`); else the innermost with a line;
/// else the innermost outside shared libraries (the program's own code,
/// named by its symbol table or by offset); else the innermost.
pub fn best_frame(frames: &[SourceFrame]) -> Option<&SourceFrame> {
    let with_line = |f: &&SourceFrame| f.file.is_some() && f.line.is_some();
    frames
        .iter()
        .find(|f| with_line(f) && !f.in_runtime_sources())
        .or_else(|| frames.iter().find(with_line))
        .or_else(|| frames.iter().find(|f| !f.in_shared_library() && !f.object.starts_with('[')))
        .or_else(|| frames.first())
}

/// The ack a violation broke, with the stack of the write that printed
/// it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AckAttribution {
    /// Its 1-based line number among the writer's acks: the one the
    /// checker's reason quotes (the longest ack text of at least 3 bytes
    /// found in it, the later on a tie), else the last ack printed before
    /// the power failed (the newest promise, the one a power loss is
    /// likeliest to break).
    pub line: u64,
    /// Innermost first.
    pub frames: Vec<SourceFrame>,
}

/// A sync call that the explanation's units depend on: the last one whose
/// copy covered them before the power failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SyncAttribution {
    /// The traced call's number (0-based, in the oracle's order of entries).
    pub call: u64,
    pub syscall: String,
    /// The explanation's units (of `floor_set`) it covered last.
    pub units: Vec<String>,
    /// Innermost first.
    pub frames: Vec<SourceFrame>,
}

/// Where the writer was when the oracle first saw units of the explanation
/// changed since their last sync (the write history's sample at the next
/// traced call after the store or write: the stack of that call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChangeAttribution {
    /// The explanation's units (of `floor_set`) first seen changed there.
    pub units: Vec<String>,
    /// Innermost first.
    pub frames: Vec<SourceFrame>,
}

/// Where a power-loss violation comes from in the writer's code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PowerLossAttribution {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<AckAttribution>,
    /// Where the explanation's units were first seen changed after their
    /// last sync (the write history).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changed: Vec<ChangeAttribution>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub syncs: Vec<SyncAttribution>,
    /// The explanation's units that no sync of the writer covered before
    /// the power failed (their floor is what the setup left).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub never_synced: Vec<String>,
}

impl PowerLossAttribution {
    /// The sentence appended to a violation's explanation: `the ack
    /// (line 12) was printed at src/log.c:110 (main); page 3 of data.db was
    /// last synced by msync at src/log.c:102 (flush)`. Empty when nothing is
    /// known.
    pub fn sentence(&self) -> String {
        let mut parts = Vec::new();
        if let Some(ack) = &self.ack {
            if let Some(f) = best_frame(&ack.frames) {
                parts.push(format!("the ack (line {}) was printed at {}", ack.line, f.location()));
            }
        }
        for c in &self.changed {
            if let Some(f) = best_frame(&c.frames) {
                parts.push(format!(
                    "{} changed after its last sync before the call at {}",
                    c.units.join(", "),
                    f.location()
                ));
            }
        }
        for s in &self.syncs {
            if let Some(f) = best_frame(&s.frames) {
                parts.push(format!("{} was last synced by {} at {}", s.units.join(", "), s.syscall, f.location()));
            }
        }
        if !self.never_synced.is_empty() {
            parts.push(format!("{} never synced by the writer", self.never_synced.join(", ")));
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: Option<&str>, file: Option<&str>, line: Option<u32>, object: &str) -> SourceFrame {
        SourceFrame {
            function: function.map(str::to_owned),
            file: file.map(str::to_owned),
            line,
            object: object.into(),
            offset: 0x1234,
        }
    }

    #[test]
    fn a_location_says_the_line_else_the_function_else_the_object_and_offset() {
        assert_eq!(frame(Some("main"), Some("src/log.c"), Some(110), "/w").location(), "src/log.c:110 (main)");
        assert_eq!(frame(Some("flush"), None, None, "/usr/bin/w").location(), "flush (in /usr/bin/w+0x1234)");
        assert_eq!(frame(None, None, None, "/usr/bin/w").location(), "/usr/bin/w+0x1234");
        assert_eq!(frame(None, None, None, "").location(), "?+0x1234");
    }

    #[test]
    fn the_best_frame_skips_the_c_library_for_the_program() {
        let libc = frame(Some("msync"), None, None, "/usr/lib/x86_64-linux-gnu/libc.so.6");
        let prog = frame(Some("flush"), None, None, "/tmp/w");
        assert_eq!(best_frame(&[libc.clone(), prog.clone()]), Some(&prog));
        let with_line = frame(Some("main"), Some("w.c"), Some(9), "/tmp/w");
        assert_eq!(best_frame(&[libc.clone(), prog, with_line.clone()]), Some(&with_line));
        assert_eq!(best_frame(std::slice::from_ref(&libc)), Some(&libc));
        assert_eq!(best_frame(&[]), None);
        // Rust's standard library has lines too, in the program itself.
        let std_write =
            frame(Some("FileDesc::write"), Some("/rustc/59807616/library/std/src/sys/fd/unix.rs"), Some(346), "/tmp/w");
        let ack = frame(Some("w::ack"), Some("src/common.rs"), Some(205), "/tmp/w");
        assert_eq!(best_frame(&[std_write.clone(), ack.clone()]), Some(&ack));
        assert_eq!(best_frame(std::slice::from_ref(&std_write)), Some(&std_write), "else it is all there is");
    }

    #[test]
    fn the_sentence_names_the_ack_and_each_sync() {
        let a = PowerLossAttribution {
            ack: Some(AckAttribution { line: 12, frames: vec![frame(Some("main"), Some("log.c"), Some(110), "/w")] }),
            syncs: vec![SyncAttribution {
                call: 4,
                syscall: "msync".into(),
                units: vec!["data.db page 3".into()],
                frames: vec![frame(Some("flush"), Some("log.c"), Some(102), "/w")],
            }],
            never_synced: vec!["data.db page 4".into()],
            changed: vec![ChangeAttribution {
                units: vec!["data.db page 3".into()],
                frames: vec![frame(Some("append"), Some("log.c"), Some(95), "/w")],
            }],
        };
        assert_eq!(
            a.sentence(),
            "the ack (line 12) was printed at log.c:110 (main); data.db page 3 changed after its last sync before \
             the call at log.c:95 (append); data.db page 3 was last synced by msync at log.c:102 (flush); data.db \
             page 4 never synced by the writer"
        );
        assert_eq!(PowerLossAttribution::default().sentence(), "");
    }
}
