//! Judging the directory a real power cut left a namespace workload,
//! against the namespace model ([`NsModel`], `--fs-model posix`) of the
//! steps that ran: is it one of the model's states? And, for every
//! operation the model says may be lost (a unit), was it kept or lost in
//! this directory? The second answer is the evidence a per-filesystem model
//! cites ("ext4 kept a new file's name after an fsync of the file alone in
//! N of N cuts").
//!
//! Each surviving name is mapped to a file of the trace by its content
//! (every page of a workload's file says which file wrote it, see
//! [`super::ns_workload::page_content`]): a state fits the directory when it has exactly its
//! names, each naming a regular file of the size found, whose pages hold
//! that file's content or zeros, and never zeros where a completed sync made
//! the file's page durable. A directory no state fits is a **model
//! soundness violation**.
//!
//! Architecture Invariant: pure.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::ns_workload::{FileContent, NsCutModelInput, NsFile, PageSeen};
use crate::namespace::{FileId, FsModel, NamespaceTrace, NsModel, NsOp, NsState};

/// What kind of entry a name was after the cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObservedKind {
    Regular,
    Directory,
    Other,
}

/// One entry of the workload's directory after the cut.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedEntry {
    pub name: String,
    pub kind: ObservedKind,
    pub size: u64,
    pub ino: u64,
    /// Each page of a regular file, classified ([`super::ns_workload::classify_page`]).
    pub pages: Vec<PageSeen>,
}

impl ObservedEntry {
    /// `"state"=#2 8192 B`, `"a"=zero 4096 B`, `"a"=#1/zero 8192 B`.
    pub fn text(&self) -> String {
        let what = match self.kind {
            ObservedKind::Directory => return format!("{:?}=directory", self.name),
            ObservedKind::Other => return format!("{:?}=not a regular file", self.name),
            ObservedKind::Regular => {
                let mut kinds: Vec<String> = Vec::new();
                for p in &self.pages {
                    let k = match p {
                        PageSeen::Zero => "zero".to_string(),
                        PageSeen::Of { file } => format!("#{file}"),
                        PageSeen::Foreign => "foreign".to_string(),
                    };
                    if !kinds.contains(&k) {
                        kinds.push(k);
                    }
                }
                if kinds.is_empty() {
                    "empty".to_string()
                } else {
                    kinds.join("/")
                }
            }
        };
        format!("{:?}={what} {} B", self.name, self.size)
    }
}

/// The workload's directory after the cut, entries by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservedDir {
    /// The directory itself survived (it was made durable before the setup).
    pub present: bool,
    pub entries: Vec<ObservedEntry>,
}

impl ObservedDir {
    pub fn text(&self) -> String {
        if !self.present {
            return "no directory".into();
        }
        if self.entries.is_empty() {
            return "(empty)".into();
        }
        self.entries.iter().map(ObservedEntry::text).collect::<Vec<_>>().join(", ")
    }
}

/// What kind of operation a unit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NsOpKind {
    Create,
    Link,
    Unlink,
    Rename,
    /// A size change (ftruncate).
    Size,
}

impl NsOpKind {
    pub fn name(self) -> &'static str {
        match self {
            NsOpKind::Create => "create",
            NsOpKind::Link => "link",
            NsOpKind::Unlink => "unlink",
            NsOpKind::Rename => "rename",
            NsOpKind::Size => "size",
        }
    }
}

/// What the cut did with an operation the model says may be lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitOutcome {
    /// Persisted in every state that fits the directory.
    Kept,
    /// Lost in every state that fits the directory.
    Lost,
    /// Kept in some fitting states, lost in others (a create and the unlink
    /// of the same name leave the same directory either way).
    Undetermined,
}

/// One unit of the model and what the cut did with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsUnitOutcome {
    /// `rename("state.tmp" -> "state") at step 5`.
    pub operation: String,
    pub kind: NsOpKind,
    /// Why the model does not guarantee it (the POSIX rule missed).
    pub rule: String,
    /// What the workload synced after it (`then fsync of this file`,
    /// `nothing synced after it`): what a per-filesystem rule would rest on.
    pub context: String,
    pub outcome: UnitOutcome,
}

/// What one real post-cut directory says about the namespace model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsJudgement {
    /// The directory as read ([`ObservedDir::text`]).
    pub observed: String,
    /// Distinct states the model allows at this boundary.
    pub states: u64,
    /// The directory fits none of them: a **model soundness violation**.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbidden: Option<String>,
    /// Every unit and what the cut did with it (empty for a violation).
    pub units: Vec<NsUnitOutcome>,
}

impl NsJudgement {
    pub fn is_violation(&self) -> bool {
        self.forbidden.is_some()
    }
}

/// More units than this is not a workload of ours (2^n states are walked).
pub const MAX_UNITS: usize = 16;

/// A state in words: `"state"=#1 4096 B, "state.tmp"=#2 8192 B`.
pub fn state_text(state: &NsState) -> String {
    let names: Vec<String> = state
        .entries
        .iter()
        .filter(|e| e.dir == FileId::ROOT)
        .map(|e| {
            let size = state.sizes.get(&e.file).map_or("?".to_string(), |s| s.to_string());
            format!("{:?}=#{} {size} B", String::from_utf8_lossy(&e.name), e.file.0)
        })
        .collect();
    if names.is_empty() {
        "(empty)".into()
    } else {
        names.join(", ")
    }
}

/// Can `entry` be file `file` of size `size`, by its content?
fn fits_file(entry: &ObservedEntry, file: FileId, size: u64, content: &FileContent) -> bool {
    entry.kind == ObservedKind::Regular
        && entry.size == size
        && entry.pages.iter().enumerate().all(|(i, p)| match p {
            PageSeen::Zero => !content.durable.contains(&(i as u64)),
            PageSeen::Of { file: g } => FileId(*g as NsFile) == file && content.written.contains(&(i as u64)),
            PageSeen::Foreign => false,
        })
}

/// Does `state` fit the directory?
fn fits(state: &NsState, dir: &ObservedDir, content: &[FileContent]) -> bool {
    if !dir.present {
        return false;
    }
    let names: Vec<&crate::namespace::Entry> = state.entries.iter().filter(|e| e.dir == FileId::ROOT).collect();
    names.len() == dir.entries.len()
        && names.iter().all(|e| {
            let Some(o) = dir.entries.iter().find(|o| o.name.as_bytes() == e.name.as_slice()) else { return false };
            let Some(&size) = state.sizes.get(&e.file) else { return false };
            content.get(e.file.index()).is_some_and(|c| fits_file(o, e.file, size, c))
        })
}

/// What the workload synced after event `i`, in words.
fn context(trace: &NamespaceTrace, i: usize) -> String {
    let file = match &trace.events[i].op {
        NsOp::Create { file, .. }
        | NsOp::Link { file, .. }
        | NsOp::Unlink { file, .. }
        | NsOp::Rename { file, .. }
        | NsOp::SetSize { file, .. } => Some(*file),
        _ => None,
    };
    let mut later: Vec<String> = Vec::new();
    for ev in &trace.events[i + 1..] {
        let this = |f: &FileId| if Some(*f) == file { "this file" } else { "another file" };
        let s = match &ev.op {
            NsOp::SyncFile { file: f, .. } => format!("fsync of {}", this(f)),
            NsOp::SyncData { file: f, .. } => format!("msync(MS_SYNC) of {}", this(f)),
            NsOp::SyncDir { .. } => "fsync of the directory".into(),
            NsOp::SyncAll => "sync".into(),
            _ => continue,
        };
        if !later.contains(&s) {
            later.push(s);
        }
    }
    if later.is_empty() {
        "nothing synced after it".into()
    } else {
        format!("then {}", later.join(", "))
    }
}

fn op_kind(op: &NsOp) -> NsOpKind {
    match op {
        NsOp::Create { .. } | NsOp::CreateUnnamed { .. } => NsOpKind::Create,
        NsOp::Link { .. } => NsOpKind::Link,
        NsOp::Unlink { .. } => NsOpKind::Unlink,
        NsOp::Rename { .. } => NsOpKind::Rename,
        _ => NsOpKind::Size,
    }
}

/// Judge the directory `dir` a cut left, against the posix model of
/// `input` (the steps that ran before the cut). `Err`: the trace is not one
/// the model accepts, or has too many units (a harness bug).
pub fn judge_namespace(input: &NsCutModelInput, dir: &ObservedDir) -> Result<NsJudgement, String> {
    let model = NsModel::new(input.trace.clone(), FsModel::Posix).map_err(|e| e.to_string())?;
    let n = model.units().len();
    if n > MAX_UNITS {
        return Err(format!("{n} units: more than the {MAX_UNITS} a namespace workload may have"));
    }
    let vectors: BTreeSet<Vec<bool>> = (0u64..1 << n).map(|mask| model.canonical(|u| mask >> u & 1 == 1)).collect();
    let mut states = BTreeSet::new();
    let mut fitting: Vec<&Vec<bool>> = Vec::new();
    for v in &vectors {
        let s = model.resolve(v);
        if fits(&s, dir, &input.content) {
            fitting.push(v);
        }
        states.insert(s);
    }
    let observed = dir.text();
    if fitting.is_empty() {
        let mut detail = format!("the post-cut directory holds {observed}; the posix model allows only ");
        let shown: Vec<String> = states.iter().take(8).map(|s| format!("[{}]", state_text(s))).collect();
        detail.push_str(&shown.join(" or "));
        if states.len() > 8 {
            let _ = write!(detail, " or {} more", states.len() - 8);
        }
        for e in dir.entries.iter().filter(|e| e.pages.contains(&PageSeen::Foreign)) {
            let _ = write!(detail, "; {:?} holds bytes no file of the workload wrote there", e.name);
        }
        return Ok(NsJudgement { observed, states: states.len() as u64, forbidden: Some(detail), units: Vec::new() });
    }
    let units = model
        .units()
        .iter()
        .enumerate()
        .map(|(u, unit)| {
            let kept = fitting.iter().filter(|v| v[u]).count();
            let outcome = match kept {
                0 => UnitOutcome::Lost,
                k if k == fitting.len() => UnitOutcome::Kept,
                _ => UnitOutcome::Undetermined,
            };
            let described = model.describe(u);
            let operation = match described.rsplit_once(" at call ") {
                Some((what, call)) => format!("{what} at step {call}"),
                None => described,
            };
            NsUnitOutcome {
                operation,
                kind: op_kind(&input.trace.events[unit.event].op),
                rule: model.why_not_durable(u),
                context: context(&input.trace, unit.event),
                outcome,
            }
        })
        .collect();
    Ok(NsJudgement { observed, states: states.len() as u64, forbidden: None, units })
}
