//! The realcut worker (`crashlab __realcut-worker`): real power cuts on
//! loop-mounted filesystems. Started by fork+exec from the pool
//! ([`crate::worker_pool`], `realcut/loopcut.rs`), it speaks
//! [`RealRequest`]/[`RealResponse`] JSON lines on stdin/stdout and holds a
//! session: the filesystems it made, the specs it was given, the files they
//! have on each filesystem. The trials themselves are [`super::cut_trial`]'s.
//!
//! Cleanup: every loop device and mount is an RAII guard held by the
//! session, released when stdin closes (the harness stopped, Ctrl-C
//! included: SIGINT is ignored here, and the pool does not kill a realcut
//! worker on Ctrl-C but waits for its batch), on errors and on panics. By
//! default the worker also lives in a private mount namespace with
//! autoclear loop devices, so even a SIGKILL leaves nothing mounted or
//! attached.
//!
//! Architecture Invariant: the realcut worker is single-threaded (checked at
//! start by [`start_worker`]), and alone forks (clones) writer children; it
//! is entered from `main` before anything could start a thread.

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::cut_trial::{create_file, floor, profile, workload_floor, CutGroup, SpecState, TRIM_EVERY};
use super::ns_cut::NsCut;
use super::ns_workload::NsWorkloadId;
use crate::crash::CrashPoint;
use crate::lab::child::WriterStack;
use crate::lab::journal_region::JournalRegion;
use crate::payload::Payloads;
use crate::private_mount::private_mount_namespace;
use crate::realcut::campaign::PageCacheStart;
use crate::realcut::fs::LiveFs;
use crate::realcut::protocol::{RealRequest, RealResponse, RealTrialRecord};
use crate::realcut::sys::is_root;
use crate::realcut::RealcutError;
use crate::vocab::{CutMethod, FsKind, Writeback};
use crate::worker_pool::serve::{serve_lines, start_worker, worker_main};

pub struct RealcutWorkerArgs {
    /// Where the filesystem images and mount points go (a fresh directory
    /// the campaign made and removes).
    pub dir: PathBuf,
    pub id: u32,
    pub watchdog_secs: u32,
    /// Mount in the caller's mount namespace (visible in /proc/mounts; the
    /// cleanup tests use it) instead of a private one.
    pub host_mounts: bool,
}

/// Everything the worker holds; dropping it unmounts and detaches all.
struct Session {
    fses: Vec<LiveFs>,
    specs: Vec<SpecState>,
    /// (spec key, filesystem, slot) whose file exists, durable, at version 0.
    files: HashSet<(u64, FsKind, usize)>,
    kept: u32,
    trials: u64,
    /// Namespace cuts made (each gets a directory `ns-N` of its own).
    ns_cuts: u64,
    /// Where writers run ([`clone_writer`]).
    stack: WriterStack,
}

/// Entry point of `crashlab __realcut-worker --dir D --id N --watchdog S
/// [--host-mounts]`. Returns the exit code.
pub fn realcut_worker_main(args: impl IntoIterator<Item = OsString>) -> i32 {
    worker_main("realcut worker", "`crashlab soundness`", args, |argv, stdin, stdout| {
        let args = RealcutWorkerArgs {
            host_mounts: argv.has_switch("host-mounts"),
            dir: argv.dir,
            id: argv.id,
            watchdog_secs: argv.watchdog_secs,
        };
        serve(&args, stdin, stdout)
    })
}

/// Serve requests until stdin closes, then unmount and detach everything.
pub fn serve(args: &RealcutWorkerArgs, input: impl BufRead, output: impl Write) -> Result<(), RealcutError> {
    start_worker("realcut worker").map_err(RealcutError::Spec)?;
    if !is_root() {
        return Err(RealcutError::NeedsRoot);
    }
    if !args.host_mounts {
        private_mount_namespace()?;
    }
    let stack = WriterStack::new()
        .map_err(|e| RealcutError::Sys { what: "cannot map the writers' stack".into(), source: e })?;
    let mut session =
        Session { fses: Vec::new(), specs: Vec::new(), files: HashSet::new(), kept: 0, trials: 0, ns_cuts: 0, stack };
    let handle =
        |req| handle(args, &mut session, req).unwrap_or_else(|e| RealResponse::Error { message: e.to_string() });
    serve_lines(input, output, handle, |message| RealResponse::Error { message })?;
    // Orderly release, reporting what could not be undone.
    let mut first_err = None;
    for fs in session.fses.drain(..) {
        if let Err(e) = fs.release() {
            eprintln!("crashlab realcut worker {}: {e}", args.id);
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

fn handle(args: &RealcutWorkerArgs, s: &mut Session, req: RealRequest) -> Result<RealResponse, RealcutError> {
    match req {
        RealRequest::Prepare { key, spec } => {
            if !s.specs.iter().any(|p| p.key == key) {
                spec.validate().map_err(RealcutError::Spec)?;
                let page = crate::page_size::page_size();
                if spec.page_size != page {
                    return Err(RealcutError::Spec(format!(
                        "the spec was made for {}-byte pages, this machine has {page}",
                        spec.page_size
                    )));
                }
                let payloads = Payloads::try_build(&spec).map_err(RealcutError::Spec)?;
                let journal = JournalRegion::new(spec.ops.len())
                    .map_err(|e| RealcutError::Sys { what: "cannot map the journal".into(), source: e })?;
                s.specs.push(SpecState { key, spec, payloads, journal });
            }
            Ok(RealResponse::Prepared { key })
        }
        RealRequest::Run { key, fs, cut, points, keep_dir, inject_fault, writers_per_cut, page_cache, writeback } => {
            if !fs.supports(cut) {
                return Err(RealcutError::Spec(format!("{fs} has no {cut} cut (no FS_IOC_SHUTDOWN); use raw-copy")));
            }
            let fi = live_fs(args, s, fs)?;
            let si = s
                .specs
                .iter()
                .position(|p| p.key == key)
                .ok_or_else(|| RealcutError::Spec(format!("spec {key:016x} was not prepared")))?;
            let mut records = Vec::with_capacity(points.len());
            for group in points.chunks(writers_per_cut.max(1) as usize) {
                let run = GroupRun { cut, keep_dir: &keep_dir, inject_fault, page_cache, writeback };
                match run_group(args, s, fi, si, group, &run) {
                    Ok(recs) => records.extend(recs),
                    Err(e) => {
                        drop_broken_fs(s, fi);
                        return Err(e);
                    }
                }
            }
            Ok(RealResponse::Ran { records })
        }
        RealRequest::RunNamespace { workload, fs, cut, points, keep_dir, inject_fault } => {
            if !fs.supports(cut) {
                return Err(RealcutError::Spec(format!("{fs} has no {cut} cut (no FS_IOC_SHUTDOWN); use raw-copy")));
            }
            let fi = live_fs(args, s, fs)?;
            let mut records = Vec::with_capacity(points.len());
            for point in points {
                match run_ns_cut(args, s, fi, cut, workload, point, &keep_dir, inject_fault) {
                    Ok(rec) => records.push(rec),
                    Err(e) => {
                        drop_broken_fs(s, fi);
                        return Err(e);
                    }
                }
            }
            Ok(RealResponse::RanNamespace { records })
        }
        RealRequest::WorkloadFloor { key, fs, cut, points } => {
            if !fs.supports(cut) {
                return Err(RealcutError::Spec(format!("{fs} has no {cut} cut")));
            }
            let fi = live_fs(args, s, fs)?;
            let st = s
                .specs
                .iter()
                .find(|p| p.key == key)
                .ok_or_else(|| RealcutError::Spec(format!("spec {key:016x} was not prepared")))?;
            match workload_floor(&mut s.fses[fi], st, cut, &points) {
                Ok(nanos) => Ok(RealResponse::Floor { trials: points.len() as u32, nanos }),
                Err(e) => {
                    drop_broken_fs(s, fi);
                    Err(e)
                }
            }
        }
        RealRequest::Floor { fs, cut, size, trials } => {
            if !fs.supports(cut) {
                return Err(RealcutError::Spec(format!("{fs} has no {cut} cut")));
            }
            let fi = live_fs(args, s, fs)?;
            match floor(&mut s.fses[fi], cut, size, trials) {
                Ok(nanos) => Ok(RealResponse::Floor { trials, nanos }),
                Err(e) => {
                    drop_broken_fs(s, fi);
                    Err(e)
                }
            }
        }
    }
}

/// The index of the session's filesystem `kind`, made on first use.
fn live_fs(args: &RealcutWorkerArgs, s: &mut Session, kind: FsKind) -> Result<usize, RealcutError> {
    if let Some(i) = s.fses.iter().position(|f| f.kind() == kind) {
        return Ok(i);
    }
    let fs = LiveFs::create(kind, &args.dir.join(format!("w{}-{kind}", args.id)))?;
    s.fses.push(fs);
    Ok(s.fses.len() - 1)
}

/// After a failed request the filesystem may be shut down or unmounted: drop
/// it (unmount, detach) and forget its files; the next request makes a new one.
fn drop_broken_fs(s: &mut Session, fi: usize) {
    let broken = s.fses.remove(fi);
    let kind = broken.kind();
    s.files.retain(|(_, f, _)| *f != kind);
    drop(broken);
}

/// How the cut groups of one `Run` request are run.
#[derive(Clone, Copy)]
struct GroupRun<'a> {
    cut: CutMethod,
    keep_dir: &'a Path,
    inject_fault: bool,
    page_cache: PageCacheStart,
    writeback: Writeback,
}

/// One cut group: the writers of `points` (one file each), one cut, each
/// file judged, evidence kept for violations, the files reset.
fn run_group(
    args: &RealcutWorkerArgs,
    s: &mut Session,
    fi: usize,
    si: usize,
    points: &[CrashPoint],
    run: &GroupRun<'_>,
) -> Result<Vec<RealTrialRecord>, RealcutError> {
    let GroupRun { cut, keep_dir, inject_fault, page_cache, writeback } = *run;
    let (key, kind) = (s.specs[si].key, s.fses[fi].kind());
    for slot in 0..points.len() {
        if s.files.insert((key, kind, slot)) {
            create_file(&s.fses[fi], &s.specs[si], slot, page_cache)?;
        }
    }
    let mut group = CutGroup {
        fs: &mut s.fses[fi],
        st: &s.specs[si],
        stack: &mut s.stack,
        cut,
        watchdog_secs: args.watchdog_secs,
        inject_fault,
        writeback,
    };
    let mut records = group.run(points)?;
    for (slot, rec) in records.iter_mut().enumerate() {
        if rec.judgement.is_violation() || rec.judgement.judge_mismatch.is_some() {
            s.kept += 1;
            let dir = keep_dir.join(format!("{kind}-w{}-{}-{}", args.id, s.kept, rec.facts.point));
            rec.kept = Some(group.keep_evidence(&dir, rec, slot, points)?);
        }
    }
    let t = Instant::now();
    group.reset(points.len(), page_cache)?;
    let before = s.trials;
    s.trials += points.len() as u64;
    if cut == CutMethod::RawCopy && before / TRIM_EVERY != s.trials / TRIM_EVERY {
        // Copy-on-write filesystems write somewhere new each time: keep the
        // backing file (what is copied) small.
        s.fses[fi].trim()?;
    }
    if profile() {
        eprintln!("realcut profile: reset of {} files {:?}", points.len(), t.elapsed());
    }
    Ok(records)
}

/// One namespace cut ([`NsCut`]), evidence kept for a violation, its
/// directory removed afterwards.
#[allow(clippy::too_many_arguments)]
fn run_ns_cut(
    args: &RealcutWorkerArgs,
    s: &mut Session,
    fi: usize,
    cut: CutMethod,
    workload: NsWorkloadId,
    point: CrashPoint,
    keep_dir: &Path,
    inject_fault: bool,
) -> Result<crate::realcut::protocol::NsCutRecord, RealcutError> {
    s.ns_cuts += 1;
    let name = format!("ns-{}", s.ns_cuts);
    let kind = s.fses[fi].kind();
    let mut c = NsCut { fs: &mut s.fses[fi], cut, workload, point, name, inject_fault };
    let mut rec = c.run()?;
    if rec.judgement.is_violation() {
        s.kept += 1;
        let dir = keep_dir.join(format!("ns-{kind}-w{}-{}-{workload}-{point}", args.id, s.kept));
        rec.kept = Some(c.keep_evidence(&dir, &rec)?);
    }
    c.clean()?;
    if cut == CutMethod::RawCopy && s.ns_cuts % TRIM_EVERY == 0 {
        // Copy-on-write filesystems write somewhere new each time: keep the
        // backing file (what is copied) small.
        s.fses[fi].trim()?;
    }
    Ok(rec)
}
