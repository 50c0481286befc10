//! The layout rules of ARCHITECTURE.md, checked on the source text so that a
//! change that breaks one fails here, naming the files, instead of drifting
//! until someone draws the import graph again:
//!
//! - no source file is over 1,000 lines (a longer one is usually two
//!   concepts);
//! - no import cycle between source files (`use crate::...`, `super::...`
//!   and inline `crate::` paths, test modules left out);
//! - a file whose module docs say `Architecture Invariant: pure` imports
//!   only files that say so too (or the crate root's error types): pure
//!   logic never reaches up into forks, mounts or ptrace.
//!
//! The parser is deliberately small: it reads `use` trees and `crate::`
//! paths, resolves each to the deepest module file that exists, and ignores
//! everything else. A path it cannot resolve is no edge, so it can miss an
//! import but never invent one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_LINES: usize = 1000;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_owned()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// One crate's files by module path (`lab::trial`; the root is "").
struct Crate {
    files: BTreeMap<String, PathBuf>,
}

fn module_path(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts.join("::")
}

/// The file's text without comments, string literals and `#[cfg(test)]`
/// modules (tests may import whatever they test).
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if t.starts_with("#[cfg(test)]") {
            if let Some(next) = lines.peek() {
                let n = next.trim_start();
                if n.starts_with("mod ") || n.starts_with("pub mod ") || n.starts_with("pub(crate) mod ") {
                    if n.trim_end().ends_with(';') {
                        lines.next();
                        continue;
                    }
                    break; // test modules end the file here
                }
            }
        }
        let mut s = String::new();
        let mut in_str = false;
        let mut prev = ' ';
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if in_str {
                if c == '"' && prev != '\\' {
                    in_str = false;
                }
                prev = if prev == '\\' && c == '\\' { ' ' } else { c };
                continue;
            }
            if c == '\'' && chars.peek() == Some(&'"') {
                // The char literal '"' opens no string.
                chars.next();
                s.push('\'');
                continue;
            }
            if c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            if c == '"' {
                in_str = true;
                prev = ' ';
                continue;
            }
            s.push(c);
        }
        out.push_str(&s);
        out.push('\n');
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Expand a `use` tree (`a::{b, c::{d, e}}`) into full paths.
fn expand(tree: &str) -> Vec<String> {
    // `A as B` keeps `A`; then white space means nothing in a path.
    let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ").replace(" as ", "@");
    let tree: String = tree.chars().filter(|c| !c.is_whitespace()).collect();
    fn go(prefix: &str, t: &str, out: &mut Vec<String>) {
        match t.find('{') {
            None => {
                let t = t.split('@').next().unwrap_or(t);
                out.push(format!("{prefix}{t}"));
            }
            Some(open) => {
                let head = &t[..open];
                let inner = &t[open + 1..t.rfind('}').unwrap_or(t.len())];
                let mut depth = 0;
                let mut start = 0;
                let bytes: Vec<char> = inner.chars().collect();
                let mut parts = Vec::new();
                for (i, &c) in bytes.iter().enumerate() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            parts.push(bytes[start..i].iter().collect::<String>());
                            start = i + 1;
                        }
                        _ => {}
                    }
                }
                parts.push(bytes[start..].iter().collect::<String>());
                for p in parts.into_iter().filter(|p| !p.is_empty()) {
                    go(&format!("{prefix}{head}"), &p, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    go("", &tree, &mut out);
    out
}

/// Every module path `code` names: `use` trees and inline `crate::`/`super::` paths.
fn named_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    // `use` statements (rustfmt puts them at the start of a line; they may span lines).
    for (at, _) in code.match_indices("use ") {
        let line_start = code[..at].rfind('\n').map_or(0, |i| i + 1);
        let lead = code[line_start..at].trim();
        if !matches!(lead, "" | "pub" | "pub(crate)" | "pub(super)") {
            continue;
        }
        let after = &code[at + 4..];
        let end = after.find(';').unwrap_or(after.len());
        let tree = &after[..end];
        let path_like = tree.chars().all(|c| is_ident(c) || c.is_whitespace() || "{}:,*".contains(c));
        if path_like && tree.matches('{').count() == tree.matches('}').count() {
            paths.extend(expand(tree));
        }
    }
    // Inline paths.
    for anchor in ["crate::", "super::", "crashlab::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(anchor) {
            let at = from + i;
            from = at + anchor.len();
            if code[..at].chars().last().is_some_and(|c| is_ident(c) || c == ':') {
                continue;
            }
            let tail: String = code[at..].chars().take_while(|&c| is_ident(c) || c == ':').collect();
            paths.push(tail);
        }
    }
    paths
}

/// The module file a path names: its deepest prefix that is a module of
/// the crate. `current` is the module of the file the path is in.
fn resolve(krate: &Crate, current: &str, is_mod_file: bool, path: &str) -> Option<String> {
    let segs: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Vec<String> = Vec::new();
    let mut i = 0;
    match segs.first().copied() {
        Some("crate") | Some("crashlab") => i = 1,
        Some("super") => {
            base = current.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect();
            // In `a/b.rs` (module a::b) `super` is `a`; in `a/mod.rs` (module a) it is the root.
            while segs.get(i) == Some(&"super") {
                base.pop();
                i += 1;
            }
            let _ = is_mod_file;
        }
        Some("self") => {
            base = current.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect();
            i = 1;
        }
        _ => return None,
    }
    let mut best = None;
    let mut m = base.clone();
    if krate.files.contains_key(&m.join("::")) && !m.is_empty() {
        best = Some(m.join("::"));
    }
    for s in &segs[i..] {
        m.push((*s).to_string());
        let key = m.join("::");
        if krate.files.contains_key(&key) {
            best = Some(key);
        } else {
            break;
        }
    }
    if best.is_none() && i < segs.len() {
        // An item of the crate root (`crate::LabError`).
        return Some(String::new());
    }
    best
}

fn load(src: &Path, skip: &dyn Fn(&Path) -> bool) -> Crate {
    let mut all = Vec::new();
    rust_files(src, &mut all);
    let files = all.into_iter().filter(|f| !skip(f)).map(|f| (module_path(src, &f), f)).collect();
    Crate { files }
}

/// Edges module → modules it imports (itself left out).
fn edges(krate: &Crate, anchor_self: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (m, file) in &krate.files {
        let text = std::fs::read_to_string(file).unwrap();
        let code = code_of(&text);
        let is_mod = file.file_name().is_some_and(|n| n == "mod.rs" || n == "lib.rs" || n == "main.rs");
        let mut targets = BTreeSet::new();
        for p in named_paths(&code) {
            // The binary names the library as `crashlab::`: not an edge inside the binary's graph.
            if p.starts_with("crashlab::") && anchor_self != "crashlab" {
                continue;
            }
            if let Some(t) = resolve(krate, m, is_mod, &p) {
                if &t != m {
                    targets.insert(t);
                }
            }
        }
        out.insert(m.clone(), targets);
    }
    out
}

/// Strongly connected components with more than one module (Tarjan).
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct T<'g> {
        g: &'g BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on: BTreeSet<&'g str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    impl<'g> T<'g> {
        fn visit(&mut self, v: &'g str) {
            self.index.insert(v, self.next);
            self.low.insert(v, self.next);
            self.next += 1;
            self.stack.push(v);
            self.on.insert(v);
            for w in self.g.get(v).into_iter().flatten() {
                let w = w.as_str();
                if !self.g.contains_key(w) {
                    continue;
                }
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut comp = Vec::new();
                loop {
                    let w = self.stack.pop().unwrap();
                    self.on.remove(w);
                    comp.push(w.to_string());
                    if w == v {
                        break;
                    }
                }
                if comp.len() > 1 {
                    comp.sort();
                    self.out.push(comp);
                }
            }
        }
    }
    let mut t = T {
        g: graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v.as_str()) {
            t.visit(v);
        }
    }
    t.out
}

fn describe(cycle: &[String], graph: &BTreeMap<String, BTreeSet<String>>) -> String {
    let mut s = format!("{}:\n", cycle.join(", "));
    for a in cycle {
        for b in graph[a].iter().filter(|b| cycle.contains(b)) {
            s.push_str(&format!("    {a} -> {b}\n"));
        }
    }
    s
}

fn library() -> Crate {
    let src = repo().join("harness/src");
    let bin = src.join("cli");
    load(&src, &|f| {
        f.starts_with(&bin)
            || f.ends_with("main.rs")
            || f.file_name().is_some_and(|n| n.to_string_lossy().ends_with("tests.rs"))
    })
}

fn binary() -> Crate {
    let src = repo().join("harness/src");
    let bin = src.join("cli");
    load(&src, &|f| !(f.starts_with(&bin) || f.ends_with("main.rs")))
}

#[test]
fn no_source_file_is_over_a_thousand_lines() {
    let mut files = Vec::new();
    for dir in ["harness/src", "harness/tests", "scenarios"] {
        rust_files(&repo().join(dir), &mut files);
    }
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > MAX_LINES).then(|| format!("{} ({n} lines)", f.strip_prefix(repo()).unwrap().display()))
        })
        .collect();
    assert!(long.is_empty(), "over {MAX_LINES} lines (split by concept): {long:?}");
}

#[test]
fn no_two_source_files_import_each_other_in_a_loop() {
    for (name, krate, anchor) in [("library", library(), "crashlab"), ("binary", binary(), "crate")] {
        let graph = edges(&krate, anchor);
        let found = cycles(&graph);
        let text: Vec<String> = found.iter().map(|c| describe(c, &graph)).collect();
        assert!(found.is_empty(), "import cycles in the {name}:\n{}", text.join("\n"));
    }
}

fn is_pure(file: &Path) -> bool {
    let text = std::fs::read_to_string(file).unwrap();
    text.lines().take_while(|l| l.starts_with("//!") || l.trim().is_empty()).any(|l| {
        l.contains("Architecture Invariant: pure") || l.contains("Architecture Invariant: this module is pure")
    })
}

#[test]
fn a_module_documented_as_pure_imports_only_pure_modules() {
    let krate = library();
    let graph = edges(&krate, "crashlab");
    let mut bad = Vec::new();
    for (m, file) in &krate.files {
        if !is_pure(file) {
            continue;
        }
        for t in &graph[m] {
            // The crate root: LabError and the private temp dir helper's declarations.
            if t.is_empty() {
                continue;
            }
            if !is_pure(&krate.files[t]) {
                bad.push(format!("{m} (pure) imports {t} (not documented as pure)"));
            }
        }
    }
    assert!(bad.is_empty(), "pure modules reaching effects:\n{}", bad.join("\n"));
}

#[test]
fn the_checker_sees_an_import_loop_and_a_use_tree() {
    // The parser itself, on text: a test that could not fail would prove nothing above.
    let paths = named_paths(&code_of("use crate::a::{b::C, d};\nfn f() { crate::e::g(); }\n// use crate::z;\n"));
    assert!(paths.contains(&"crate::a::b::C".to_string()), "{paths:?}");
    assert!(paths.contains(&"crate::a::d".to_string()), "{paths:?}");
    assert!(paths.iter().any(|p| p.starts_with("crate::e::g")), "{paths:?}");
    assert!(!paths.iter().any(|p| p.contains('z')), "a comment is no import: {paths:?}");
    let mut g = BTreeMap::new();
    g.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    g.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    g.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    g.insert("d".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(cycles(&g), vec![vec!["a".to_string(), "b".to_string(), "c".to_string()]]);
}
