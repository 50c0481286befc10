//! The external report's part for `--crash enospc` (schema 1.7): per trial,
//! the [`Delivery::Capacity`](crate::report::external::Delivery::Capacity)
//! a trial's writer ran with; per section, [`EnospcSection`]: the capacity,
//! the filesystem, how full it was when the writers ended, and what the
//! writers did (died of SIGBUS, stopped with an error, ran on). Schema 1.8:
//! the writer runs under the durability oracle, and a trial says
//! ([`FullDiskTrace`]) which call met `ENOSPC` first and which store
//! faulted; or, when the oracle could not run, why it was not traced.
//!
//! Architecture Invariant: pure.

use std::fmt::{self, Write as _};

use serde::{Deserialize, Serialize};

use crate::report::external_enospc_power_loss::{EnospcPowerLoss, EnospcPowerLossCounts};
use crate::report::source_location::{best_frame, SourceFrame};
use crate::vocab::capacity::CapacityFs;
use crate::vocab::{CrashKind, ProcessEnd};

/// A filesystem with less free than this (the smallest page size Linux
/// has) when an `enospc` writer ended was full: tmpfs allocates in pages.
const FULL_BELOW: u64 = 4096;

/// Was a filesystem with `free` bytes left full?
pub fn is_full(free: u64) -> bool {
    free < FULL_BELOW
}

/// The text of an `enospc` trial's delivery: the filesystem, and what the
/// oracle saw of it (`traced`) or why it did not look (`not_traced`).
pub fn capacity_text(
    capacity: u64,
    filesystem: &str,
    used: u64,
    free: u64,
    traced: Option<&FullDiskTrace>,
    not_traced: Option<&str>,
    power_loss: Option<&EnospcPowerLoss>,
) -> String {
    let full = if is_full(free) { " (full)" } else { "" };
    let mut s =
        format!("the writer ran on a {capacity}-byte {filesystem}: {used} bytes used, {free} free when it ended{full}");
    match (traced, not_traced) {
        (Some(t), _) => {
            let _ = write!(s, "; {t}");
        }
        (None, Some(why)) => {
            let _ = write!(s, " (not traced: {why})");
        }
        (None, None) => {}
    }
    if let Some(pl) = power_loss {
        let _ = write!(s, "; {pl}");
    }
    s
}

/// What the durability oracle saw of the full disk in one `enospc` trial
/// (schema 1.8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FullDiskTrace {
    /// The first traced call on a file of the trial directory that failed
    /// with `ENOSPC` (or `EDQUOT`); absent when none did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_no_space: Option<NoSpaceCallFacts>,
    /// The store whose page fault raised the writer's `SIGBUS`; absent when
    /// the kernel raised none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faulting_store: Option<FaultingStore>,
}

/// A call that failed because the filesystem was full.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NoSpaceCallFacts {
    /// Its 0-based number among the oracle's traced calls.
    pub call: u64,
    /// The syscall (`write`, `fallocate`, `fsync`, `msync`, ...).
    pub syscall: String,
    /// `ENOSPC` or `EDQUOT`.
    pub errno: String,
    /// The file, relative to the trial directory, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The file offset it wrote or allocated at, where the call has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The bytes it asked for (or the size, for `ftruncate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub len: Option<u64>,
    /// Ack lines the writer had printed before it.
    pub acks_before: u64,
}

/// A store through a mapping that the filesystem could not back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FaultingStore {
    /// The mapped file, relative to the trial directory (absolute when
    /// outside it); absent when no file mapping held the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The page of that file (file offset / page size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u64>,
    /// The faulting address as an offset in the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The faulting address (`si_addr`).
    pub address: u64,
    /// The instruction pointer at the fault.
    pub pc: u64,
    /// The writer's call stack at the fault, symbolized.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stack: Vec<SourceFrame>,
    /// Ack lines the writer had printed before it.
    pub acks_before: u64,
}

impl fmt::Display for FullDiskTrace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.first_no_space {
            Some(c) => {
                write!(f, "first {}: {} (call {})", c.errno, c.syscall, c.call)?;
                if let Some(file) = &c.file {
                    write!(f, " on {file}")?;
                }
                if let Some(o) = c.offset {
                    write!(f, " at offset {o}")?;
                }
                if let Some(l) = c.len {
                    write!(f, ", {l} bytes")?;
                }
                write!(f, ", after {} ack(s)", c.acks_before)?;
            }
            None => f.write_str("no traced call failed with ENOSPC")?,
        }
        if let Some(s) = &self.faulting_store {
            f.write_str("; SIGBUS on a store into ")?;
            match (&s.file, s.page) {
                (Some(file), Some(page)) => write!(f, "{file} page {page}")?,
                _ => write!(f, "address {:#x}", s.address)?,
            }
            match best_frame(&s.stack) {
                Some(frame) => write!(f, " at {}", frame.location())?,
                None => write!(f, " at pc {:#x}", s.pc)?,
            }
            write!(f, ", after {} ack(s)", s.acks_before)?;
        }
        Ok(())
    }
}

/// The flags an `enospc` trial's replay line adds: its capacity, and its
/// filesystem when not the default tmpfs (other kinds add none).
pub fn capacity_flags(crash: CrashKind, capacity: Option<u64>, fs: Option<CapacityFs>) -> String {
    let mut s = String::new();
    if crash == CrashKind::Enospc {
        if let Some(c) = capacity {
            let _ = write!(s, " --capacity {c}");
        }
        if let Some(fs) = fs {
            let _ = write!(s, " --capacity-fs {fs}");
        }
    }
    s
}

/// What the `enospc` trials of a run met and did: how each writer ended,
/// and (traced, schema 1.8) the calls that met `ENOSPC` first and the
/// stores that faulted; each trial's own are in its delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EnospcSection {
    /// The bytes the filesystem held (`--capacity`, or derived from the
    /// clean run: half of what its directory allocated, whole pages).
    pub capacity: u64,
    /// The filesystem the writers ran on (`tmpfs`, in a user + mount
    /// namespace).
    pub filesystem: String,
    /// Whether the writers were traced (then each trial names the call
    /// that failed first and the store that faulted).
    pub traced: bool,
    /// Why some writers were not traced (the oracle could not run: no
    /// ptrace or seccomp), schema 1.8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_traced: Option<String>,
    /// Per syscall, the traced trials whose first call to fail with
    /// `ENOSPC` was that one (schema 1.8).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub first_no_space: std::collections::BTreeMap<String, u64>,
    /// Traced trials whose writer's `SIGBUS` was traced to a store into a
    /// mapped file's page (schema 1.8).
    #[serde(default)]
    pub faulting_stores_named: u64,
    /// Trials whose filesystem had less than a page free when the writer
    /// ended (a writer whose `fallocate` failed may leave free space
    /// behind: it is not counted here, though it met `ENOSPC`).
    pub full_at_end: u64,
    /// Trials whose writer died of SIGBUS: a store through a mapping into
    /// a page the filesystem could not back.
    pub died_of_sigbus: u64,
    /// Trials whose writer exited with a non-zero status (it treated an
    /// error, `ENOSPC` most likely, as fatal).
    pub exited_with_error: u64,
    /// Trials whose writer exited 0: it ran to its end, handling or
    /// ignoring any error it met.
    pub exited_zero: u64,
    /// Trials whose writer died of another signal.
    pub died_otherwise: u64,
    /// `--crash enospc,power-loss` (schema 1.9): the trials judged at a
    /// power loss at the writer's end, their states and violations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power_loss: Option<EnospcPowerLossCounts>,
}

impl EnospcSection {
    /// A section of no trial, with the run's capacity and filesystem.
    pub fn empty(capacity: u64, filesystem: &str) -> EnospcSection {
        EnospcSection {
            capacity,
            filesystem: filesystem.to_owned(),
            traced: false,
            not_traced: None,
            first_no_space: Default::default(),
            faulting_stores_named: 0,
            full_at_end: 0,
            died_of_sigbus: 0,
            exited_with_error: 0,
            exited_zero: 0,
            died_otherwise: 0,
            power_loss: None,
        }
    }

    /// Count what the oracle saw of one trial (`traced`), or why it could
    /// not see it.
    fn count_trace(&mut self, traced: Option<&FullDiskTrace>, not_traced: Option<&str>) {
        if let Some(t) = traced {
            self.traced = true;
            if let Some(c) = &t.first_no_space {
                *self.first_no_space.entry(c.syscall.clone()).or_default() += 1;
            }
            self.faulting_stores_named += t.faulting_store.as_ref().is_some_and(|s| s.file.is_some()) as u64;
        }
        if let (None, Some(why)) = (&self.not_traced, not_traced) {
            self.not_traced = Some(why.to_owned());
        }
    }

    /// Count one trial: its filesystem's free bytes at the end, how its
    /// writer ended, and what the oracle saw (or why it did not look).
    pub fn count(
        &mut self,
        free: u64,
        end: ProcessEnd,
        traced: Option<&FullDiskTrace>,
        not_traced: Option<&str>,
        power_loss: Option<&EnospcPowerLoss>,
    ) {
        self.count_trace(traced, not_traced);
        if let Some(pl) = power_loss {
            self.power_loss.get_or_insert_with(Default::default).count(pl);
        }
        self.full_at_end += is_full(free) as u64;
        match end {
            ProcessEnd::Signaled(libc::SIGBUS) => self.died_of_sigbus += 1,
            ProcessEnd::Signaled(_) => self.died_otherwise += 1,
            ProcessEnd::Exited(0) => self.exited_zero += 1,
            ProcessEnd::Exited(_) => self.exited_with_error += 1,
        }
    }

    /// Add the counts of `other` (a shard of the same run).
    pub fn add(&mut self, other: &EnospcSection) {
        self.full_at_end += other.full_at_end;
        self.died_of_sigbus += other.died_of_sigbus;
        self.exited_with_error += other.exited_with_error;
        self.exited_zero += other.exited_zero;
        self.died_otherwise += other.died_otherwise;
        self.traced |= other.traced;
        if self.not_traced.is_none() {
            self.not_traced.clone_from(&other.not_traced);
        }
        for (call, n) in &other.first_no_space {
            *self.first_no_space.entry(call.clone()).or_default() += n;
        }
        self.faulting_stores_named += other.faulting_stores_named;
        if let Some(o) = &other.power_loss {
            self.power_loss.get_or_insert_with(Default::default).add(o);
        }
    }

    /// One line for the human summary, the page and JUnit.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{} bytes of {}: full when the writer ended in {} trial(s); the writer died of SIGBUS (a store into a page the filesystem could not back) in {}, exited with an error in {}, exited 0 in {}",
            self.capacity,
            self.filesystem,
            self.full_at_end,
            self.died_of_sigbus,
            self.exited_with_error,
            self.exited_zero,
        );
        if self.died_otherwise > 0 {
            let _ = write!(s, ", died of another signal in {}", self.died_otherwise);
        }
        if self.traced {
            let calls: Vec<String> = self.first_no_space.iter().map(|(c, n)| format!("{c} in {n}")).collect();
            if !calls.is_empty() {
                let _ = write!(s, "; the first call to meet ENOSPC was {}", calls.join(", "));
            }
            if self.faulting_stores_named > 0 {
                let _ =
                    write!(s, "; the faulting store was traced to its file and page in {}", self.faulting_stores_named);
            }
        }
        match (&self.not_traced, self.traced) {
            (Some(why), _) => {
                let _ = write!(s, " (some writers not traced: {why})");
            }
            (None, false) => s.push_str(" (not traced: which call failed first or which store faulted is not known)"),
            (None, true) => {}
        }
        if let Some(pl) = &self.power_loss {
            let _ = write!(s, "; {pl}");
        }
        s
    }
}

impl fmt::Display for EnospcSection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.line())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_end_of_a_writer_is_counted_once_and_shards_add_up() {
        let page = FULL_BELOW;
        let mut a = EnospcSection::empty(8 * page, "tmpfs");
        a.count(0, ProcessEnd::Signaled(libc::SIGBUS), None, None, None);
        a.count(2 * page, ProcessEnd::Exited(1), None, None, None);
        a.count(100, ProcessEnd::Exited(0), None, None, None);
        assert_eq!((a.full_at_end, a.died_of_sigbus, a.exited_with_error, a.exited_zero), (2, 1, 1, 1));
        let mut b = EnospcSection::empty(8 * page, "tmpfs");
        let not_judged = EnospcPowerLoss::NotJudged { reason: "not traced (no ptrace)".into() };
        b.count(0, ProcessEnd::Signaled(libc::SIGKILL), None, None, Some(&not_judged));
        a.add(&b);
        assert_eq!((a.full_at_end, a.died_otherwise), (3, 1));
        // A shard's power-loss counts come along with its trials.
        assert_eq!(a.power_loss, Some(EnospcPowerLossCounts { not_judged: 1, ..Default::default() }));
        let line = a.line();
        assert!(line.starts_with("32768 bytes of tmpfs: full when the writer ended in 3 trial(s)"), "{line}");
        assert!(line.contains("died of another signal in 1") && line.contains("not traced"), "{line}");
        assert_eq!(
            capacity_text(8 * page, "tmpfs", 8 * page, 0, None, None, None),
            "the writer ran on a 32768-byte tmpfs: 32768 bytes used, 0 free when it ended (full)"
        );
        assert!(!capacity_text(8 * page, "tmpfs", 0, 8 * page, None, None, None).contains("full"));
        assert!(
            capacity_text(page, "tmpfs", 0, page, None, Some("no ptrace"), None).ends_with(" (not traced: no ptrace)")
        );
        assert_eq!(capacity_flags(CrashKind::Enospc, Some(page), None), " --capacity 4096");
        assert_eq!(
            capacity_flags(CrashKind::Enospc, Some(262144), Some(CapacityFs::Ext4)),
            " --capacity 262144 --capacity-fs ext4"
        );
        assert_eq!(capacity_flags(CrashKind::Sigkill, Some(page), Some(CapacityFs::Ext4)), "");
    }

    #[test]
    fn an_enospc_section_is_counted_from_its_trials_and_shown_in_the_summary_page_and_junit() {
        use crate::program_plan::TrialPlan;
        use crate::report::checker_verdict::CheckerVerdict;
        use crate::report::external::{aggregate_section, Delivery, TrialOutcome};
        use crate::report::external_fixtures::report_with;
        use crate::vocab::CrashKind;
        let page = FULL_BELOW;
        let outcome = |t: u32, free: u64, end: ProcessEnd| TrialOutcome {
            plan: TrialPlan::new(5, CrashKind::Enospc, t),
            crash_at_ns: 0,
            delivery: Delivery::Capacity {
                capacity: 4 * page,
                filesystem: "tmpfs".into(),
                used: 4 * page - free,
                free,
                traced: None,
                not_traced: None,
                power_loss: None,
            },
            writer_end: end,
            acks: vec!["rec 0".into()],
            partial_line: None,
            checker: CheckerVerdict::Consistent,
        };
        let outcomes = [
            outcome(0, 0, ProcessEnd::Signaled(libc::SIGBUS)),
            outcome(1, 2 * page, ProcessEnd::Exited(1)),
            outcome(2, 0, ProcessEnd::Exited(0)),
        ];
        let section = aggregate_section(CrashKind::Enospc, &outcomes, &|t| format!("replay {t}"));
        let e = section.enospc.clone().expect("enospc trials make an enospc part");
        assert_eq!(
            (e.capacity, e.full_at_end, e.died_of_sigbus, e.exited_with_error, e.exited_zero),
            (4 * page, 2, 1, 1, 1)
        );
        // Full filesystems are what struck the writer; the one left with room did not.
        assert_eq!(section.crashed, 2);
        let mut report = report_with(&[], None);
        report.crashes = vec![section];
        let line = e.line();
        assert!(report.human_summary().contains(&format!("enospc: {line}")), "{}", report.human_summary());
        let html = crate::report::external_html::render_external_html(&report);
        assert!(html.contains("enospc: 16384 bytes of tmpfs"), "{html}");
        let junit = crate::report::external_junit::external_junit_xml(&report).unwrap();
        assert!(junit.contains("enospc: 16384 bytes of tmpfs"), "{junit}");
    }

    fn no_space(syscall: &str, offset: u64, acks_before: u64) -> NoSpaceCallFacts {
        NoSpaceCallFacts {
            call: 40,
            syscall: syscall.into(),
            errno: "ENOSPC".into(),
            file: Some("log.db".into()),
            offset: Some(offset),
            len: Some(32768),
            acks_before,
        }
    }

    fn store(page: u64) -> FaultingStore {
        FaultingStore {
            file: Some("log.db".into()),
            page: Some(page),
            offset: Some(page * 4096 + 16),
            address: 0x7f00_0000_0010,
            pc: 0x5555_0000_1234,
            stack: vec![SourceFrame {
                function: Some("append".into()),
                file: Some("src/log.c".into()),
                line: Some(42),
                object: "/usr/bin/log".into(),
                offset: 0x1234,
            }],
            acks_before: page,
        }
    }

    #[test]
    fn a_full_disk_trace_says_the_first_failed_call_and_the_faulting_store_with_their_acks() {
        let call = FullDiskTrace { first_no_space: Some(no_space("fallocate", 131072, 32)), faulting_store: None };
        assert_eq!(
            call.to_string(),
            "first ENOSPC: fallocate (call 40) on log.db at offset 131072, 32768 bytes, after 32 ack(s)"
        );
        let fault = FullDiskTrace { first_no_space: None, faulting_store: Some(store(32)) };
        assert_eq!(
            fault.to_string(),
            "no traced call failed with ENOSPC; SIGBUS on a store into log.db page 32 at src/log.c:42 (append), after 32 ack(s)"
        );
        // Without a file mapping at the address, the address; without a
        // stack, the program counter.
        let bare = FaultingStore { file: None, page: None, offset: None, stack: Vec::new(), ..store(3) };
        let text = FullDiskTrace { first_no_space: None, faulting_store: Some(bare) }.to_string();
        assert!(
            text.ends_with("SIGBUS on a store into address 0x7f0000000010 at pc 0x555500001234, after 3 ack(s)"),
            "{text}"
        );
    }

    #[test]
    fn traced_trials_are_counted_by_first_failed_call_and_named_store_and_shards_add_up() {
        let mut a = EnospcSection::empty(8 * FULL_BELOW, "tmpfs");
        let fallocate = FullDiskTrace { first_no_space: Some(no_space("fallocate", 0, 0)), faulting_store: None };
        let fault = FullDiskTrace { first_no_space: None, faulting_store: Some(store(8)) };
        a.count_trace(Some(&fallocate), None);
        a.count_trace(Some(&fault), None);
        a.count_trace(Some(&fallocate), None);
        assert!(a.traced && a.not_traced.is_none());
        assert_eq!(a.first_no_space.get("fallocate"), Some(&2));
        assert_eq!(a.faulting_stores_named, 1);
        let line = a.line();
        assert!(line.contains("the first call to meet ENOSPC was fallocate in 2"), "{line}");
        assert!(line.contains("traced to its file and page in 1") && !line.contains("not traced"), "{line}");
        // A shard whose trials could not be traced: its reason is kept.
        let mut b = EnospcSection::empty(8 * FULL_BELOW, "tmpfs");
        b.count_trace(None, Some("ptrace is unavailable"));
        b.count_trace(
            Some(&FullDiskTrace { first_no_space: Some(no_space("write", 0, 0)), faulting_store: None }),
            None,
        );
        a.add(&b);
        assert_eq!((a.first_no_space.get("fallocate"), a.first_no_space.get("write")), (Some(&2), Some(&1)));
        assert_eq!(a.not_traced.as_deref(), Some("ptrace is unavailable"));
        assert!(a.line().contains("(some writers not traced: ptrace is unavailable)"), "{}", a.line());
    }
}
