//! The namespace workloads of a soundness campaign (`crashlab soundness
//! --workloads namespace`), as data: each is a fixed list of syscalls on a
//! fresh directory ([`NsScript`]: a setup made durable the way POSIX says,
//! then the measured steps), the content every file holds (unique per file,
//! so a name found after a cut tells which file it is), the
//! [`NamespaceTrace`] the steps performed (built from the step list itself:
//! no tracer), and the campaign's plan of cuts.
//!
//! Every workload comes in two variants: without the sync POSIX requires
//! for the operation under test (the base name) and with it (`+dirsync`, or
//! `+msync` for `grow`). The base variants are what per-filesystem models
//! need evidence for (does ext4 keep a new file's name after an fsync of the
//! file alone?); the `+` variants check the POSIX rules themselves.
//!
//! Architecture Invariant: pure.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};

use crate::crash::CrashPoint;
use crate::namespace::{Entry, FileId, FileKind, NamespaceTrace, NsEvent, NsOp, TracedFile};
use crate::vocab::FsKind;

/// What a workload exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NsWorkloadKind {
    /// A new file: create, ftruncate, write(2), fsync.
    Create,
    /// A new file: create, ftruncate, stores through a mapping, msync(MS_SYNC).
    CreateMmap,
    /// Atomic replace: a durable `state`; `state.tmp` written and fsynced,
    /// renamed over `state`.
    RenameOver,
    /// A durable file unlinked.
    Unlink,
    /// A durable `seg-1`; a new `seg-2` created, written and fsynced.
    NewSegment,
    /// A durable one-page file grown to four pages by ftruncate, page 3
    /// stored through a mapping.
    Grow,
    /// The same name created, fsynced and unlinked three times (ext4 reuses
    /// inode numbers).
    ReuseName,
    /// A new file `a` created, sized and written with no sync of its own,
    /// then a new file `b` created, written and fsynced: does the fsync of
    /// one file carry another's pending creation and size (one journal
    /// transaction on ext4)?
    SiblingFsync,
}

impl NsWorkloadKind {
    pub const ALL: [NsWorkloadKind; 8] = [
        NsWorkloadKind::Create,
        NsWorkloadKind::CreateMmap,
        NsWorkloadKind::RenameOver,
        NsWorkloadKind::Unlink,
        NsWorkloadKind::NewSegment,
        NsWorkloadKind::Grow,
        NsWorkloadKind::ReuseName,
        NsWorkloadKind::SiblingFsync,
    ];

    pub fn name(self) -> &'static str {
        match self {
            NsWorkloadKind::Create => "create",
            NsWorkloadKind::CreateMmap => "create-mmap",
            NsWorkloadKind::RenameOver => "rename-over",
            NsWorkloadKind::Unlink => "unlink",
            NsWorkloadKind::NewSegment => "new-segment",
            NsWorkloadKind::Grow => "grow",
            NsWorkloadKind::ReuseName => "reuse-name",
            NsWorkloadKind::SiblingFsync => "sibling-fsync",
        }
    }

    /// The suffix of the variant that has the sync POSIX requires.
    pub fn sync_suffix(self) -> &'static str {
        match self {
            NsWorkloadKind::Grow => "+msync",
            _ => "+dirsync",
        }
    }
}

/// A namespace workload: its kind, and whether it makes the sync POSIX
/// requires for the operation under test (`rename-over+dirsync`) or not
/// (`rename-over`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct NsWorkloadId {
    pub kind: NsWorkloadKind,
    pub posix_sync: bool,
}

impl NsWorkloadId {
    /// Every workload, each kind without then with its sync.
    pub fn all() -> Vec<NsWorkloadId> {
        NsWorkloadKind::ALL
            .into_iter()
            .flat_map(|kind| [false, true].map(|posix_sync| NsWorkloadId { kind, posix_sync }))
            .collect()
    }

    /// The names `--ns-workload` accepts, for messages.
    pub fn names() -> String {
        NsWorkloadId::all().iter().map(|w| w.to_string()).collect::<Vec<_>>().join(", ")
    }
}

impl std::fmt::Display for NsWorkloadId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind.name())?;
        if self.posix_sync {
            f.write_str(self.kind.sync_suffix())?;
        }
        Ok(())
    }
}

impl std::str::FromStr for NsWorkloadId {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NsWorkloadId::all()
            .into_iter()
            .find(|w| w.to_string() == s)
            .ok_or_else(|| format!("unknown namespace workload `{s}`; known: {}", NsWorkloadId::names()))
    }
}

impl From<NsWorkloadId> for String {
    fn from(w: NsWorkloadId) -> String {
        w.to_string()
    }
}

impl TryFrom<String> for NsWorkloadId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl JsonSchema for NsWorkloadId {
    fn schema_name() -> Cow<'static, str> {
        "NsWorkloadId".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<String> = NsWorkloadId::all().iter().map(|w| w.to_string()).collect();
        json_schema!({
            "type": "string",
            "description": "A namespace workload of a soundness campaign: KIND (without the sync POSIX requires) or \
                            KIND+dirsync / grow+msync (with it).",
            "enum": names
        })
    }
}

/// A file of a workload: its [`FileId`] number (1, 2, ...; 0 is the
/// directory), one per inode life.
pub type NsFile = u32;

/// One syscall of a workload (on the workload's own directory).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum NsStep {
    /// `openat(dir, name, O_CREAT|O_EXCL|O_RDWR)`: a new file.
    Create { name: String, file: NsFile },
    /// `ftruncate(fd, pages × page size)`.
    Truncate { file: NsFile, pages: u64 },
    /// `pwrite` of the file's content into pages `first..first+count`.
    Write { file: NsFile, first: u64, count: u64 },
    /// Stores of the file's content into pages `first..first+count` through
    /// a `MAP_SHARED` mapping of the file's current size (mapped on first
    /// use, mapped again when the file grew).
    Store { file: NsFile, first: u64, count: u64 },
    /// `fsync(fd)`.
    Fsync { file: NsFile },
    /// `msync(MS_SYNC)` of pages `first..first+count` of the mapping.
    Msync { file: NsFile, first: u64, count: u64 },
    /// `fsync` of the directory.
    FsyncDir,
    /// `renameat(dir, from, dir, to)`.
    Rename { from: String, to: String },
    /// `unlinkat(dir, name, 0)`.
    Unlink { name: String },
    /// `munmap` and `close`: the file's last reference goes (an unlinked
    /// file is freed, its inode number free for the next create).
    Close { file: NsFile },
}

impl NsStep {
    /// The syscall, as a trace names it.
    pub fn syscall(&self) -> &'static str {
        match self {
            NsStep::Create { .. } => "openat",
            NsStep::Truncate { .. } => "ftruncate",
            NsStep::Write { .. } => "pwrite64",
            NsStep::Store { .. } => "store",
            NsStep::Fsync { .. } | NsStep::FsyncDir => "fsync",
            NsStep::Msync { .. } => "msync",
            NsStep::Rename { .. } => "rename",
            NsStep::Unlink { .. } => "unlink",
            NsStep::Close { .. } => "close",
        }
    }
}

/// What a workload does: `setup` (made durable with the syncs POSIX asks
/// for: file fsync, then directory fsync; the trace's starting tree), then
/// the measured `steps`, cut at a boundary `before:K` (K steps done).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsScript {
    pub setup: Vec<NsStep>,
    pub steps: Vec<NsStep>,
}

fn create(name: &str, file: NsFile) -> NsStep {
    NsStep::Create { name: name.into(), file }
}

/// A file created, sized, written with `write(2)` and fsynced.
fn written_file(name: &str, file: NsFile, pages: u64) -> Vec<NsStep> {
    vec![
        create(name, file),
        NsStep::Truncate { file, pages },
        NsStep::Write { file, first: 0, count: pages },
        NsStep::Fsync { file },
    ]
}

/// A durable file: written, fsynced, its directory fsynced.
fn durable_file(name: &str, file: NsFile, pages: u64) -> Vec<NsStep> {
    let mut v = written_file(name, file, pages);
    v.push(NsStep::FsyncDir);
    v
}

impl NsWorkloadId {
    /// The workload's syscalls.
    pub fn script(self) -> NsScript {
        let sync = self.posix_sync;
        let dirsync = |mut v: Vec<NsStep>| {
            if sync {
                v.push(NsStep::FsyncDir);
            }
            v
        };
        match self.kind {
            NsWorkloadKind::Create => NsScript { setup: vec![], steps: dirsync(written_file("a", 1, 2)) },
            NsWorkloadKind::CreateMmap => NsScript {
                setup: vec![],
                steps: dirsync(vec![
                    create("a", 1),
                    NsStep::Truncate { file: 1, pages: 2 },
                    NsStep::Store { file: 1, first: 0, count: 2 },
                    NsStep::Msync { file: 1, first: 0, count: 2 },
                ]),
            },
            NsWorkloadKind::RenameOver => {
                let mut steps = written_file("state.tmp", 2, 2);
                steps.push(NsStep::Rename { from: "state.tmp".into(), to: "state".into() });
                NsScript { setup: durable_file("state", 1, 1), steps: dirsync(steps) }
            }
            NsWorkloadKind::Unlink => NsScript {
                setup: durable_file("victim", 1, 1),
                steps: dirsync(vec![NsStep::Unlink { name: "victim".into() }]),
            },
            NsWorkloadKind::NewSegment => {
                NsScript { setup: durable_file("seg-1", 1, 2), steps: dirsync(written_file("seg-2", 2, 2)) }
            }
            NsWorkloadKind::Grow => {
                let mut steps =
                    vec![NsStep::Truncate { file: 1, pages: 4 }, NsStep::Store { file: 1, first: 3, count: 1 }];
                if sync {
                    steps.push(NsStep::Msync { file: 1, first: 3, count: 1 });
                }
                NsScript { setup: durable_file("data", 1, 1), steps }
            }
            NsWorkloadKind::ReuseName => {
                let mut steps = Vec::new();
                for round in 1..=3 {
                    let last = round == 3;
                    steps.extend(written_file("name", round, 1));
                    if !last || sync {
                        steps.push(NsStep::FsyncDir);
                    }
                    steps.push(NsStep::Unlink { name: "name".into() });
                    if !last || sync {
                        steps.push(NsStep::FsyncDir);
                    }
                    steps.push(NsStep::Close { file: round });
                }
                NsScript { setup: vec![], steps }
            }
            NsWorkloadKind::SiblingFsync => {
                let mut steps = written_file("a", 1, 1);
                steps.pop(); // no fsync of a
                steps.extend(written_file("b", 2, 1));
                NsScript { setup: vec![], steps: dirsync(steps) }
            }
        }
    }
}

/// The first 8 bytes of every page of a file: `NSLB`, the file's number and
/// the page's index (16 bits each, little endian); the rest of the page is a
/// fill byte of the two. So a page tells which file wrote it and where, and
/// no two files' contents agree anywhere.
pub fn page_content(file: NsFile, page: u64, page_size: usize) -> Vec<u8> {
    let mut v = vec![fill_byte(file, page); page_size];
    v[..4].copy_from_slice(b"NSLB");
    v[4..6].copy_from_slice(&(file as u16).to_le_bytes());
    v[6..8].copy_from_slice(&(page as u16).to_le_bytes());
    v
}

fn fill_byte(file: NsFile, page: u64) -> u8 {
    ((file as u64 * 29 + page * 7) % 251) as u8 + 1
}

/// What one page of a file read back after a cut holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageSeen {
    /// All zero bytes (a hole, or data that never reached the disk).
    Zero,
    /// Exactly what file `file` writes at this page.
    Of { file: NsFile },
    /// Anything else: bytes no file of the workload writes there.
    Foreign,
}

/// Classify page `index` of a file read back (`bytes`: that page, shorter
/// for a file's partial last page).
pub fn classify_page(bytes: &[u8], index: u64, page_size: usize) -> PageSeen {
    if bytes.iter().all(|&b| b == 0) {
        return PageSeen::Zero;
    }
    if bytes.len() >= 8 && &bytes[..4] == b"NSLB" {
        let file = u16::from_le_bytes([bytes[4], bytes[5]]) as NsFile;
        if u16::from_le_bytes([bytes[6], bytes[7]]) as u64 == index
            && page_content(file, index, page_size)[..bytes.len()] == *bytes
        {
            return PageSeen::Of { file };
        }
    }
    PageSeen::Foreign
}

/// Per file of a workload cut at a boundary: the pages its writes (setup's
/// and the steps' before the cut) put in the page cache, and those a
/// completed sync of the file covered after they were written (setup pages
/// included: the setup fsynced them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileContent {
    pub written: BTreeSet<u64>,
    pub durable: BTreeSet<u64>,
}

/// What the namespace model and the judge need of a workload cut at
/// `before:K`: the trace, and each file's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsCutModelInput {
    pub trace: NamespaceTrace,
    /// Indexed by file number (0, the directory, is empty).
    pub content: Vec<FileContent>,
}

/// The names, sizes and content of a workload's files as its steps run.
#[derive(Default)]
struct Replay {
    tree: BTreeMap<String, NsFile>,
    size: BTreeMap<NsFile, u64>,
    content: Vec<FileContent>,
    /// Pages written since the file's last sync.
    dirty: BTreeMap<NsFile, BTreeSet<u64>>,
}

impl Replay {
    /// Apply one step; the namespace operation it makes, if any.
    fn apply(&mut self, step: &NsStep, page: u64) -> Option<NsOp> {
        match step {
            NsStep::Create { name, file } => {
                self.tree.insert(name.clone(), *file);
                self.size.insert(*file, 0);
                Some(NsOp::Create { dir: FileId::ROOT, name: name.as_bytes().to_vec(), file: FileId(*file) })
            }
            NsStep::Truncate { file, pages } => {
                self.size.insert(*file, pages * page);
                Some(NsOp::SetSize { file: FileId(*file), size: pages * page })
            }
            NsStep::Write { file, first, count } | NsStep::Store { file, first, count } => {
                self.content[*file as usize].written.extend(*first..first + count);
                self.dirty.entry(*file).or_default().extend(*first..first + count);
                None
            }
            NsStep::Fsync { file } => {
                self.content[*file as usize].durable.extend(self.dirty.remove(file).unwrap_or_default());
                Some(NsOp::SyncFile { file: FileId(*file), size: self.size[file] })
            }
            NsStep::Msync { file, first, count } => {
                let d = self.dirty.entry(*file).or_default();
                let synced: Vec<u64> = d.range(*first..first + count).copied().collect();
                for p in &synced {
                    d.remove(p);
                }
                self.content[*file as usize].durable.extend(synced);
                Some(NsOp::SyncData { file: FileId(*file), size: self.size[file] })
            }
            NsStep::FsyncDir => Some(NsOp::SyncDir { dir: FileId::ROOT }),
            NsStep::Rename { from, to } => {
                let file = self.tree.remove(from).expect("a workload renames a name it made");
                let replaced = self.tree.insert(to.clone(), file).map(FileId);
                Some(NsOp::Rename {
                    from_dir: FileId::ROOT,
                    from_name: from.as_bytes().to_vec(),
                    to_dir: FileId::ROOT,
                    to_name: to.as_bytes().to_vec(),
                    file: FileId(file),
                    replaced,
                })
            }
            NsStep::Unlink { name } => {
                let file = self.tree.remove(name).expect("a workload unlinks a name it made");
                Some(NsOp::Unlink { dir: FileId::ROOT, name: name.as_bytes().to_vec(), file: FileId(file) })
            }
            NsStep::Close { .. } => None,
        }
    }
}

/// The trace of `script` cut after `k` measured steps (`k ≤ steps.len()`):
/// the setup's files are the starting tree (durable), each measured step is
/// one traced call numbered `k` for step `k` (1-based, "at call 3" is step
/// 3). `inos` (from the run, by file number) only fills the report fields.
pub fn trace_of(script: &NsScript, k: usize, inos: &BTreeMap<NsFile, u64>) -> NsCutModelInput {
    let page = crate::page_size::page_size();
    let files = script.setup.iter().chain(&script.steps).filter_map(|s| match s {
        NsStep::Create { file, .. } => Some(*file),
        _ => None,
    });
    let max = files.max().unwrap_or(0) as usize;
    let mut trace = NamespaceTrace::default();
    trace.files.push(TracedFile {
        id: FileId::ROOT,
        kind: FileKind::Directory,
        dev: 0,
        ino: 0,
        at_start: true,
        initial_size: 0,
    });
    for f in 1..=max as NsFile {
        let at_start = script.setup.iter().any(|s| matches!(s, NsStep::Create { file, .. } if *file == f));
        trace.files.push(TracedFile {
            id: FileId(f),
            kind: FileKind::Regular,
            dev: 0,
            ino: inos.get(&f).copied().unwrap_or(0),
            at_start,
            initial_size: 0,
        });
    }
    let mut st = Replay { content: vec![FileContent::default(); max + 1], ..Replay::default() };
    for step in &script.setup {
        st.apply(step, page);
    }
    trace.initial = st
        .tree
        .iter()
        .map(|(n, f)| Entry { dir: FileId::ROOT, name: n.as_bytes().to_vec(), file: FileId(*f) })
        .collect();
    for (f, s) in &st.size {
        trace.files[*f as usize].initial_size = *s;
    }
    for (i, step) in script.steps[..k].iter().enumerate() {
        if let Some(op) = st.apply(step, page) {
            trace.events.push(NsEvent { call: i as u64 + 1, syscall: step.syscall().into(), op });
        }
    }
    let content = st.content;
    NsCutModelInput { trace, content }
}

/// The namespace part of a soundness campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NsCampaignConfig {
    pub workloads: Vec<NsWorkloadId>,
    /// Cuts right after each workload's last step, per filesystem; one more
    /// cut is made at each earlier step boundary.
    pub cuts_after_last_step: u32,
    /// Only this boundary (a rerun): `cuts_after_last_step` cuts there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub point: Option<CrashPoint>,
}

/// Cuts right after the last step per workload and filesystem unless told
/// otherwise (`--ns-cuts`).
pub const DEFAULT_NS_CUTS: u32 = 20;

/// One planned namespace cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsPlannedCut {
    pub fs: FsKind,
    pub workload: NsWorkloadId,
    pub point: CrashPoint,
}

/// The namespace cuts of a campaign, a pure function of its config: per
/// filesystem and workload, one cut at each boundary `before:0` ..
/// `before:n-1`, then `cuts_after_last_step` at `before:n` (or all of them
/// at `point`).
pub fn ns_plan(filesystems: &[FsKind], cfg: &NsCampaignConfig) -> Result<Vec<NsPlannedCut>, String> {
    if cfg.cuts_after_last_step == 0 {
        return Err("--ns-cuts must be at least 1".into());
    }
    if cfg.workloads.is_empty() {
        return Err("the namespace workloads are empty".into());
    }
    let mut out = Vec::new();
    for &fs in filesystems {
        for &workload in &cfg.workloads {
            let n = workload.script().steps.len();
            let mut points = Vec::new();
            match cfg.point {
                Some(CrashPoint::BeforeOp(k)) if k <= n => {
                    points.extend(std::iter::repeat_n(k, cfg.cuts_after_last_step as usize))
                }
                Some(p) => {
                    return Err(format!("--point {p}: {workload} has step boundaries before:0..=before:{n}"));
                }
                None => {
                    points.extend(0..n);
                    points.extend(std::iter::repeat_n(n, cfg.cuts_after_last_step as usize));
                }
            }
            out.extend(points.into_iter().map(|k| NsPlannedCut { fs, workload, point: CrashPoint::BeforeOp(k) }));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::namespace::{FsModel, NsModel};

    #[test]
    fn workload_names_parse_back_and_unknown_ones_name_the_choices() {
        for w in NsWorkloadId::all() {
            assert_eq!(w.to_string().parse::<NsWorkloadId>().unwrap(), w);
        }
        assert_eq!(NsWorkloadId::all().len(), 16);
        assert_eq!("grow+msync".parse::<NsWorkloadId>().unwrap().to_string(), "grow+msync");
        assert!("grow+dirsync".parse::<NsWorkloadId>().unwrap_err().contains("rename-over+dirsync"));
    }

    #[test]
    fn pages_tell_their_file_and_place_and_nothing_else_passes() {
        let p = 4096;
        let c = page_content(3, 2, p);
        assert_eq!(classify_page(&c, 2, p), PageSeen::Of { file: 3 });
        assert_eq!(classify_page(&c[..100], 2, p), PageSeen::Of { file: 3 }, "a partial last page");
        assert_eq!(classify_page(&c, 1, p), PageSeen::Foreign, "file 3's page 2 at page 1");
        assert_eq!(classify_page(&vec![0; p], 0, p), PageSeen::Zero);
        let mut torn = c.clone();
        torn[p - 1] = 0;
        assert_eq!(classify_page(&torn, 2, p), PageSeen::Foreign);
        assert_ne!(page_content(1, 0, p), page_content(2, 0, p));
    }

    #[test]
    fn every_workload_builds_a_trace_the_model_accepts_at_every_boundary_with_few_units() {
        for w in NsWorkloadId::all() {
            let s = w.script();
            for k in 0..=s.steps.len() {
                let input = trace_of(&s, k, &BTreeMap::new());
                let m = NsModel::new(input.trace.clone(), FsModel::Posix)
                    .unwrap_or_else(|e| panic!("{w} at before:{k}: {e}"));
                assert!(m.units().len() <= 8, "{w} at before:{k}: {} units", m.units().len());
                if k == 0 {
                    assert!(m.units().is_empty(), "{w}: the setup is durable");
                }
            }
        }
    }

    #[test]
    fn the_trace_of_rename_over_is_the_atomic_replace_with_its_sync_where_the_variant_has_it() {
        let page = crate::page_size::page_size();
        let w: NsWorkloadId = "rename-over".parse().unwrap();
        let s = w.script();
        let input = trace_of(&s, s.steps.len(), &BTreeMap::new());
        let t = &input.trace;
        assert_eq!(t.initial, vec![Entry { dir: FileId::ROOT, name: b"state".to_vec(), file: FileId(1) }]);
        assert_eq!(t.files[1].initial_size, page);
        assert!(t.files[1].at_start && !t.files[2].at_start);
        let calls: Vec<(u64, &str)> = t.events.iter().map(|e| (e.call, e.syscall.as_str())).collect();
        assert_eq!(calls, [(1, "openat"), (2, "ftruncate"), (4, "fsync"), (5, "rename")]);
        assert_eq!(
            t.events[3].op,
            NsOp::Rename {
                from_dir: FileId::ROOT,
                from_name: b"state.tmp".to_vec(),
                to_dir: FileId::ROOT,
                to_name: b"state".to_vec(),
                file: FileId(2),
                replaced: Some(FileId(1)),
            }
        );
        assert_eq!(input.content[1].durable, BTreeSet::from([0]));
        assert_eq!(input.content[2].durable, BTreeSet::from([0, 1]));
        let m = NsModel::new(t.clone(), FsModel::Posix).unwrap();
        assert_eq!(m.units().len(), 2, "the create and the rename; the size was fsynced");
        let synced = NsWorkloadId { posix_sync: true, ..w }.script();
        let m = NsModel::new(trace_of(&synced, synced.steps.len(), &BTreeMap::new()).trace, FsModel::Posix).unwrap();
        assert!(m.units().is_empty());
    }

    #[test]
    fn a_ranged_msync_makes_only_its_pages_durable() {
        let w: NsWorkloadId = "grow+msync".parse().unwrap();
        let s = w.script();
        let input = trace_of(&s, s.steps.len(), &BTreeMap::new());
        assert_eq!(input.content[1].written, BTreeSet::from([0, 3]));
        assert_eq!(input.content[1].durable, BTreeSet::from([0, 3]));
        let input = trace_of(&s, 2, &BTreeMap::new());
        assert_eq!(input.content[1].durable, BTreeSet::from([0]), "before the msync");
    }

    #[test]
    fn the_plan_cuts_every_earlier_boundary_once_and_the_end_as_often_as_asked() {
        let cfg = NsCampaignConfig {
            workloads: vec!["unlink".parse().unwrap(), "grow".parse().unwrap()],
            cuts_after_last_step: 3,
            point: None,
        };
        let p = ns_plan(&[FsKind::Ext4, FsKind::Xfs], &cfg).unwrap();
        let ext4_unlink: Vec<String> = p
            .iter()
            .filter(|c| c.fs == FsKind::Ext4 && c.workload.to_string() == "unlink")
            .map(|c| c.point.to_string())
            .collect();
        assert_eq!(ext4_unlink, ["before:0", "before:1", "before:1", "before:1"]);
        assert_eq!(p.len(), 2 * (4 + 5));
        let rerun = NsCampaignConfig { point: Some(CrashPoint::BeforeOp(2)), cuts_after_last_step: 1, ..cfg.clone() };
        assert!(ns_plan(&[FsKind::Ext4], &rerun).unwrap_err().contains("unlink has step boundaries"));
        let rerun = NsCampaignConfig { workloads: vec!["grow".parse().unwrap()], ..rerun };
        assert_eq!(ns_plan(&[FsKind::Ext4], &rerun).unwrap().len(), 1);
    }
}
