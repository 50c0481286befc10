//! The namespace judge on hand-built traces and post-cut directories: what
//! the posix model allows, what it forbids, and what each unit's outcome is.

use std::collections::{BTreeMap, BTreeSet};

use super::ns_judge::*;
use super::ns_workload::{trace_of, FileContent, NsCutModelInput, NsFile, NsWorkloadId, PageSeen};
use crate::namespace::{Entry, FileId, FileKind, NamespaceTrace, NsEvent, NsOp, TracedFile};

fn page() -> u64 {
    crate::page_size::page_size()
}

/// A regular file's entry: each page `Some(file)` (that file's content) or
/// `None` (zeros).
fn entry(name: &str, pages: &[Option<NsFile>]) -> ObservedEntry {
    ObservedEntry {
        name: name.into(),
        kind: ObservedKind::Regular,
        size: pages.len() as u64 * page(),
        ino: 0,
        pages: pages.iter().map(|p| p.map_or(PageSeen::Zero, |file| PageSeen::Of { file })).collect(),
    }
}

fn dir(entries: Vec<ObservedEntry>) -> ObservedDir {
    ObservedDir { present: true, entries }
}

/// The workload `name` cut after its last step.
fn at_end(name: &str) -> NsCutModelInput {
    let s = name.parse::<NsWorkloadId>().unwrap().script();
    trace_of(&s, s.steps.len(), &BTreeMap::new())
}

fn outcomes(j: &NsJudgement) -> Vec<(String, UnitOutcome)> {
    j.units.iter().map(|u| (u.operation.clone(), u.outcome)).collect()
}

fn allowed(input: &NsCutModelInput, d: &ObservedDir) -> NsJudgement {
    let j = judge_namespace(input, d).unwrap();
    assert!(!j.is_violation(), "{} forbidden: {:?}", d.text(), j.forbidden);
    j
}

fn forbidden(input: &NsCutModelInput, d: &ObservedDir) -> String {
    let j = judge_namespace(input, d).unwrap();
    assert!(j.units.is_empty());
    j.forbidden.unwrap_or_else(|| panic!("{} allowed: {:?}", d.text(), j.units))
}

/// A hand-built trace (no workload script): a durable `victim` (file 1,
/// one page), unlinked at call 1, no directory fsync.
fn unlink_trace() -> NsCutModelInput {
    let file = |id, at_start, size| TracedFile {
        id: FileId(id),
        kind: if id == 0 { FileKind::Directory } else { FileKind::Regular },
        dev: 0,
        ino: 0,
        at_start,
        initial_size: size,
    };
    let trace = NamespaceTrace {
        files: vec![file(0, true, 0), file(1, true, page())],
        initial: vec![Entry { dir: FileId::ROOT, name: b"victim".to_vec(), file: FileId(1) }],
        events: vec![NsEvent {
            call: 1,
            syscall: "unlink".into(),
            op: NsOp::Unlink { dir: FileId::ROOT, name: b"victim".to_vec(), file: FileId(1) },
        }],
    };
    let victim = FileContent { written: BTreeSet::from([0]), durable: BTreeSet::from([0]) };
    NsCutModelInput { trace, content: vec![FileContent::default(), victim] }
}

#[test]
fn an_unlink_without_a_directory_fsync_may_be_lost_or_kept_but_the_file_comes_back_whole() {
    let input = unlink_trace();
    let j = allowed(&input, &dir(vec![entry("victim", &[Some(1)])]));
    assert_eq!(j.states, 2);
    assert_eq!(
        j.units,
        [NsUnitOutcome {
            operation: r#"unlink("victim") at step 1"#.into(),
            kind: NsOpKind::Unlink,
            rule: r#"the directory "." was not fsynced after it"#.into(),
            context: "nothing synced after it".into(),
            outcome: UnitOutcome::Lost,
        }]
    );
    assert_eq!(outcomes(&allowed(&input, &dir(vec![])))[0].1, UnitOutcome::Kept);
    // The fsynced page of the file that came back is its own, not zeros.
    let why = forbidden(&input, &dir(vec![entry("victim", &[None])]));
    assert!(
        why.starts_with(r#"the post-cut directory holds "victim"=zero 4096 B; the posix model allows only"#),
        "{why}"
    );
    assert!(why.contains(r#"[(empty)] or ["victim"=#1 4096 B]"#), "{why}");
}

#[test]
fn a_rename_without_a_directory_fsync_may_be_lost_and_each_outcome_is_told_per_operation() {
    let input = at_end("rename-over");
    // ext4 and xfs: the fsync of state.tmp committed its creation, the
    // rename was lost.
    let j = allowed(&input, &dir(vec![entry("state", &[Some(1)]), entry("state.tmp", &[Some(2), Some(2)])]));
    assert_eq!(
        outcomes(&j),
        [
            (r#"openat(creating "state.tmp") at step 1"#.to_string(), UnitOutcome::Kept),
            (r#"rename("state.tmp" -> "state") at step 5"#.to_string(), UnitOutcome::Lost),
        ]
    );
    assert_eq!(j.units[0].context, "then fsync of this file");
    assert_eq!(j.units[1].context, "nothing synced after it");
    assert_eq!(j.units[1].kind, NsOpKind::Rename);
    // The rename kept: it needed the create, so both are kept.
    let j = allowed(&input, &dir(vec![entry("state", &[Some(2), Some(2)])]));
    assert!(j.units.iter().all(|u| u.outcome == UnitOutcome::Kept), "{:?}", j.units);
    // Both lost: the old state alone.
    let j = allowed(&input, &dir(vec![entry("state", &[Some(1)])]));
    assert!(j.units.iter().all(|u| u.outcome == UnitOutcome::Lost), "{:?}", j.units);
}

#[test]
fn after_a_durable_rename_the_old_file_the_tmp_name_or_no_state_at_all_is_a_violation() {
    let input = at_end("rename-over+dirsync");
    let j = allowed(&input, &dir(vec![entry("state", &[Some(2), Some(2)])]));
    assert_eq!((j.states, j.units.len()), (1, 0));
    let why = forbidden(&input, &dir(vec![]));
    assert_eq!(
        why, r#"the post-cut directory holds (empty); the posix model allows only ["state"=#2 8192 B]"#,
        "`state` missing entirely after a durable rename"
    );
    forbidden(&input, &dir(vec![entry("state", &[Some(1)]), entry("state.tmp", &[Some(2), Some(2)])]));
    forbidden(&input, &dir(vec![entry("state", &[Some(1)])]));
    // The right name and size, the bytes of the file it replaced.
    forbidden(&input, &dir(vec![entry("state", &[Some(1), Some(1)])]));
    let d = ObservedDir { present: false, entries: vec![] };
    assert!(forbidden(&input, &d).starts_with("the post-cut directory holds no directory"));
}

#[test]
fn a_renamed_file_whose_content_belongs_to_no_file_of_the_trace_is_a_violation() {
    let input = at_end("rename-over");
    let mut e = entry("state", &[Some(2), Some(2)]);
    e.pages[1] = PageSeen::Foreign;
    let why = forbidden(&input, &dir(vec![e]));
    assert!(why.contains(r#""state"=#2/foreign 8192 B"#), "{why}");
    assert!(why.ends_with(r#""state" holds bytes no file of the workload wrote there"#), "{why}");
    // A name the trace never made.
    forbidden(&input, &dir(vec![entry("state", &[Some(1)]), entry("intruder", &[Some(1)])]));
    // A directory where the file was.
    let mut d = entry("state", &[]);
    d.kind = ObservedKind::Directory;
    forbidden(&input, &dir(vec![d]));
}

#[test]
fn a_reused_name_holds_its_last_file_or_nothing_never_an_earlier_files_bytes() {
    let input = at_end("reuse-name");
    let j = allowed(&input, &dir(vec![entry("name", &[Some(3)])]));
    assert_eq!(
        outcomes(&j),
        [
            (r#"openat(creating "name") at step 17"#.to_string(), UnitOutcome::Kept),
            (r#"unlink("name") at step 21"#.to_string(), UnitOutcome::Lost),
        ]
    );
    // Empty: the create and the unlink both lost, or both kept.
    let j = allowed(&input, &dir(vec![]));
    assert!(j.units.iter().all(|u| u.outcome == UnitOutcome::Undetermined), "{:?}", j.units);
    // The inode of round 2 reused, with its durable bytes: not file 3.
    let why = forbidden(&input, &dir(vec![entry("name", &[Some(2)])]));
    assert!(why.contains(r#"allows only [(empty)] or ["name"=#3 4096 B]"#), "{why}");
    forbidden(&at_end("reuse-name+dirsync"), &dir(vec![entry("name", &[Some(3)])]));
}

#[test]
fn a_grown_file_keeps_the_size_its_ranged_msync_made_durable() {
    let grown = dir(vec![entry("data", &[Some(1), None, None, Some(1)])]);
    let small = dir(vec![entry("data", &[Some(1)])]);
    let synced = at_end("grow+msync");
    let j = allowed(&synced, &grown);
    assert!(j.units.is_empty(), "the msync made the size durable: {:?}", j.units);
    assert!(forbidden(&synced, &small).contains(r#"allows only ["data"=#1 16384 B]"#));
    // The msynced page 3 lost: forbidden.
    forbidden(&synced, &dir(vec![entry("data", &[Some(1), None, None, None])]));
    let unsynced = at_end("grow");
    let j = allowed(&unsynced, &small);
    assert_eq!(j.units[0].kind, NsOpKind::Size);
    assert_eq!(j.units[0].outcome, UnitOutcome::Lost);
    assert_eq!(j.units[0].rule, r#"no fsync, fdatasync or msync(MS_SYNC) of "data" completed after it"#);
    assert_eq!(allowed(&unsynced, &grown).units[0].outcome, UnitOutcome::Kept);
    // Unsynced page 3 may be lost with the size kept.
    allowed(&unsynced, &dir(vec![entry("data", &[Some(1), None, None, None])]));
    // A size the file never had.
    let mut odd = entry("data", &[Some(1), None]);
    odd.size = 3 * page();
    forbidden(&unsynced, &dir(vec![odd]));
}

#[test]
fn a_new_file_found_without_its_fsynced_data_is_a_violation() {
    let input = at_end("create");
    let j = allowed(&input, &dir(vec![entry("a", &[Some(1), Some(1)])]));
    assert_eq!(outcomes(&j), [(r#"openat(creating "a") at step 1"#.to_string(), UnitOutcome::Kept)]);
    assert_eq!(j.units[0].context, "then fsync of this file");
    allowed(&input, &dir(vec![]));
    forbidden(&input, &dir(vec![entry("a", &[None, Some(1)])]));
    // Before the fsync (boundary 3: created, sized, written), zeros are allowed.
    let s = "create".parse::<NsWorkloadId>().unwrap().script();
    let early = trace_of(&s, 3, &BTreeMap::new());
    let j = allowed(&early, &dir(vec![entry("a", &[None, None])]));
    assert_eq!(j.units.len(), 2, "the create and the size: {:?}", j.units);
    assert_eq!(j.units[1].context, "nothing synced after it");
}

#[test]
fn the_fsync_of_a_sibling_leaves_the_unsynced_file_to_chance_under_posix() {
    let input = at_end("sibling-fsync");
    let j = allowed(&input, &dir(vec![entry("a", &[Some(1)]), entry("b", &[Some(2)])]));
    let contexts: Vec<(NsOpKind, &str, UnitOutcome)> =
        j.units.iter().map(|u| (u.kind, u.context.as_str(), u.outcome)).collect();
    assert_eq!(
        contexts,
        [
            (NsOpKind::Create, "then fsync of another file", UnitOutcome::Kept),
            (NsOpKind::Size, "then fsync of another file", UnitOutcome::Kept),
            (NsOpKind::Create, "then fsync of this file", UnitOutcome::Kept),
        ]
    );
    // a's data was never synced: zeros are allowed; b's was.
    allowed(&input, &dir(vec![entry("a", &[None]), entry("b", &[Some(2)])]));
    forbidden(&input, &dir(vec![entry("a", &[Some(1)]), entry("b", &[None])]));
    // a's creation lost; or kept with its size lost (size 0).
    let j = allowed(&input, &dir(vec![entry("b", &[Some(2)])]));
    assert_eq!(j.units[0].outcome, UnitOutcome::Lost);
    let j = allowed(&input, &dir(vec![entry("a", &[]), entry("b", &[Some(2)])]));
    assert_eq!((j.units[0].outcome, j.units[1].outcome), (UnitOutcome::Kept, UnitOutcome::Lost));
}
