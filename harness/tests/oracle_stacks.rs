//! Source attribution end to end: a C writer (`oracle-programs/attributed.c`)
//! compiled here three ways, traced with stacks on; its msync's and its
//! acks' stacks, symbolized, name the calling function and, with `-g`, the
//! marked source line.

#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::Command;

use crashlab::oracle::{run_traced, OracleConfig, OracleOutcome, TraceControl, TracedLaunch, TracedSyscall};
use crashlab::report::source_location::{best_frame, SourceFrame};
use crashlab::symbolize::Symbolizer;

fn source() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle-programs/attributed.c")
}

/// The 1-based line of the source that carries `marker`.
fn marked_line(marker: &str) -> u32 {
    let text = std::fs::read_to_string(source()).unwrap();
    let at = text.lines().position(|l| l.contains(marker)).unwrap_or_else(|| panic!("no {marker} in the source"));
    at as u32 + 1
}

/// `attributed.c` compiled with `flags` into a fresh directory (and
/// stripped when `strip`).
fn compiled(dir: &Path, name: &str, flags: &[&str], strip: bool) -> PathBuf {
    let out = dir.join(name);
    let o = Command::new("cc")
        .args(flags)
        .args(["-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&out)
        .arg(source())
        .output()
        .expect("cc runs (gcc is required for the oracle tests)");
    assert!(o.status.success(), "cc {flags:?} failed:\n{}", String::from_utf8_lossy(&o.stderr));
    if strip {
        let s = Command::new("strip").arg(&out).output().expect("strip runs (binutils comes with gcc)");
        assert!(s.status.success(), "strip failed: {}", String::from_utf8_lossy(&s.stderr));
    }
    out
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: a valid two-int array; both fds are ours on success.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0, "pipe2");
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// Run `program DATA` with stacks on; its outcome and stdout.
fn traced(program: &Path, stacks: bool) -> (OracleOutcome, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::write(&data, vec![b'A'; 2 * 4096.max(page())]).unwrap();
    let mut cfg = OracleConfig::new(dir.path());
    cfg.stacks = stacks;
    let (r, w) = pipe();
    let control = TraceControl::new();
    let launch = TracedLaunch::new(program).arg(&data).stdout(w.as_fd());
    let outcome = run_traced(&launch, &cfg, &control).expect("the oracle works here (ptrace and seccomp)");
    drop(launch);
    drop(w);
    let mut stdout = String::new();
    File::from(r).read_to_string(&mut stdout).unwrap();
    (outcome, stdout)
}

fn page() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

/// The symbolized stacks of the writer's one MS_SYNC msync and of its two
/// acks.
fn symbolized(outcome: &OracleOutcome) -> (Vec<SourceFrame>, Vec<SourceFrame>, Vec<SourceFrame>) {
    let mut s = Symbolizer::new();
    let msyncs: Vec<_> = outcome.events.iter().filter(|e| e.syscall == TracedSyscall::Msync).collect();
    assert_eq!(msyncs.len(), 1, "one msync: {:?}", outcome.events);
    assert!(!msyncs[0].stack.is_empty(), "the msync has a stack");
    let ack = |line: u64| outcome.ack_stack(line).unwrap_or_else(|| panic!("ack {line} has a stack")).stack.clone();
    (s.frames(&msyncs[0].stack), s.frames(&ack(1)), s.frames(&ack(2)))
}

fn names(frames: &[SourceFrame]) -> Vec<String> {
    frames.iter().map(|f| f.location()).collect()
}

#[test]
fn with_debug_info_the_msync_and_the_acks_name_their_function_and_marked_line() {
    let dir = tempfile::tempdir().unwrap();
    let bin = compiled(dir.path(), "attributed-g", &["-g", "-O1", "-fno-omit-frame-pointer"], false);
    let (outcome, stdout) = traced(&bin, true);
    assert_eq!(stdout, "rec 1\nrec 2\n");
    assert_eq!(outcome.ack_stacks.len(), 2, "one write per ack line");
    assert_eq!((outcome.ack_stacks[1].first_line, outcome.ack_stacks[1].last_line), (2, 2));
    let (msync, ack1, ack2) = symbolized(&outcome);
    let file = source().display().to_string();
    let sync = best_frame(&msync).expect("a frame");
    assert_eq!(sync.function.as_deref(), Some("flush_record"), "{:?}", names(&msync));
    assert_eq!(sync.line, Some(marked_line("MSYNC-LINE")), "{:?}", names(&msync));
    assert!(sync.file.as_deref().is_some_and(|f| f.ends_with("attributed.c")), "{sync:?} vs {file}");
    assert_eq!(sync.object, bin.display().to_string());
    // The caller is unwound too: main, below flush_record.
    assert!(msync.iter().any(|f| f.function.as_deref() == Some("main")), "{:?}", names(&msync));
    for ack in [&ack1, &ack2] {
        let f = best_frame(ack).expect("a frame");
        assert_eq!(f.function.as_deref(), Some("print_ack"), "{:?}", names(ack));
        assert_eq!(f.line, Some(marked_line("ACK-LINE")), "{:?}", names(ack));
    }
}

#[test]
fn without_debug_info_or_frame_pointers_the_symbol_table_names_the_function() {
    let dir = tempfile::tempdir().unwrap();
    let bin = compiled(dir.path(), "attributed-o2", &["-O2", "-fomit-frame-pointer"], false);
    let (outcome, _) = traced(&bin, true);
    let (msync, ack1, _) = symbolized(&outcome);
    let sync = best_frame(&msync).expect("a frame");
    assert_eq!(sync.function.as_deref(), Some("flush_record"), "{:?}", names(&msync));
    assert_eq!((sync.file.as_deref(), sync.line), (None, None));
    assert!(msync.iter().any(|f| f.function.as_deref() == Some("main")), "CFI unwinds past it: {:?}", names(&msync));
    assert_eq!(best_frame(&ack1).and_then(|f| f.function.as_deref()), Some("print_ack"), "{:?}", names(&ack1));
}

#[test]
fn a_stripped_program_gives_its_object_and_the_same_offset() {
    let dir = tempfile::tempdir().unwrap();
    let flags = ["-O2", "-fomit-frame-pointer"];
    let plain = compiled(dir.path(), "attributed-plain", &flags, false);
    let stripped = compiled(dir.path(), "attributed-stripped", &flags, true);
    let (o_plain, _) = traced(&plain, true);
    let (o_stripped, _) = traced(&stripped, true);
    let (plain_sync, _, _) = symbolized(&o_plain);
    let (stripped_sync, _, _) = symbolized(&o_stripped);
    let p = best_frame(&plain_sync).expect("a frame");
    let s = best_frame(&stripped_sync).expect("a frame");
    assert_eq!(s.object, stripped.display().to_string());
    assert_eq!(s.function, None, "a stripped program has no symbol for it: {:?}", names(&stripped_sync));
    assert_eq!(s.offset, p.offset, "strip keeps the code where it was");
    assert_eq!(s.location(), format!("{}+{:#x}", stripped.display(), p.offset));
}

#[test]
fn with_stacks_off_nothing_is_captured() {
    let dir = tempfile::tempdir().unwrap();
    let bin = compiled(dir.path(), "attributed-off", &["-O1"], false);
    let (outcome, stdout) = traced(&bin, false);
    assert_eq!(stdout, "rec 1\nrec 2\n");
    assert!(outcome.events.iter().all(|e| e.stack.is_empty()));
    assert!(outcome.ack_stacks.is_empty());
    assert_eq!(outcome.stats.stacks_captured, 0);
}
