//! Source attribution at traced stops: the writer's call stack at each sync
//! call and at each ack (a `write`/`writev` to fd 1 that completes lines),
//! with [`OracleConfig::stacks`](crate::oracle::OracleConfig::stacks).
//!
//! Ack lines are numbered by counting the `\n`s of every write to fd 1 at
//! its entry (the buffer read from the writer, at most
//! [`MAX_ACK_SCAN_BYTES`] per call): a write cut short (a full non-blocking
//! pipe, a signal) would shift the numbering; the acks a writer prints go
//! to the harness's pipe, which is read concurrently and blocking.

use libc::pid_t;

use super::Tracer;
use crate::oracle::stack::StackCapturer;
use crate::oracle::{sys, AckStack, Frame, TracedSyscall, MAX_ACK_STACKS};

/// Bytes of one write to fd 1 scanned for newlines.
pub(super) const MAX_ACK_SCAN_BYTES: usize = 1 << 20;
/// iovecs of one `writev` to fd 1 scanned (`IOV_MAX`).
const MAX_IOVECS: usize = 1024;

/// The tracer's attribution state.
pub(super) struct Attribution {
    capturer: Option<StackCapturer>,
    /// Ack lines completed so far.
    lines: u64,
    pub(super) acks: Vec<AckStack>,
    pub(super) dropped: u64,
}

impl Attribution {
    pub(super) fn new(enabled: bool, page: u64) -> Attribution {
        Attribution { capturer: enabled.then(|| StackCapturer::new(page)), lines: 0, acks: Vec::new(), dropped: 0 }
    }

    /// Ack lines completed so far (counted with stacks on only).
    pub(super) fn lines(&self) -> u64 {
        self.lines
    }

    pub(super) fn captured(&self) -> u64 {
        self.capturer.as_ref().map_or(0, |c| c.captured)
    }
}

impl Tracer<'_> {
    /// The call stack of `tid`, stopped now (empty when stacks are off or
    /// it cannot be read). For any stop of the run (the history sampling
    /// records where a page was first written since its last sync).
    pub(super) fn capture_stack(&mut self, tid: pid_t) -> Vec<Frame> {
        if self.attribution.capturer.is_none() {
            return Vec::new();
        }
        let tgid = self.tasks.get(&tid).map_or(tid, |t| t.tgid);
        let id = self.procs.get(&tgid).map_or(0, |p| p.space);
        let gen = self.spaces.get(&id).map_or(0, |s| s.gen);
        self.attribution.capturer.as_mut().map_or_else(Vec::new, |c| c.capture(tid, tgid, (id, gen)))
    }

    /// At a sync call's seccomp stop: its stack into its event.
    pub(super) fn attach_sync_stack(&mut self, tid: pid_t, sys: TracedSyscall, event: Option<usize>) {
        if let (true, Some(i)) = (sys.is_sync(), event) {
            let stack = self.capture_stack(tid);
            self.events[i].stack = stack;
        }
    }

    /// At the seccomp stop of a `write`/`writev` that is not on a watched
    /// file: if it goes to fd 1 and completes ack lines, their stack.
    pub(super) fn note_ack(&mut self, tid: pid_t, sys: TracedSyscall, args: &[u64; 6]) {
        if self.attribution.capturer.is_none() || args[0] != 1 {
            return;
        }
        let newlines = match sys {
            TracedSyscall::Write => count_newlines(tid, args[1], args[2], self.page),
            TracedSyscall::Writev => {
                let n = (args[2] as usize).min(MAX_IOVECS);
                let mut raw = vec![0u8; n * 16];
                let got = sys::read_remote(tid, args[1], &mut raw, self.page).unwrap_or(0);
                let mut total = 0;
                let mut budget = MAX_ACK_SCAN_BYTES as u64;
                for iov in raw[..got - got % 16].chunks_exact(16) {
                    let base = u64::from_le_bytes(iov[..8].try_into().expect("8 bytes"));
                    let len = u64::from_le_bytes(iov[8..].try_into().expect("8 bytes")).min(budget);
                    budget -= len;
                    total += count_newlines(tid, base, len, self.page);
                }
                total
            }
            _ => 0,
        };
        if newlines == 0 {
            return;
        }
        let first_line = self.attribution.lines + 1;
        self.attribution.lines += newlines;
        if self.attribution.acks.len() >= MAX_ACK_STACKS {
            self.attribution.dropped += 1;
            return;
        }
        let stack = self.capture_stack(tid);
        self.attribution.acks.push(AckStack { first_line, last_line: self.attribution.lines, stack });
    }
}

/// Newlines in `len` bytes at `addr` of `tid`'s memory (at most
/// [`MAX_ACK_SCAN_BYTES`]; an unreadable part counts none).
fn count_newlines(tid: pid_t, addr: u64, len: u64, page: u64) -> u64 {
    let len = (len as usize).min(MAX_ACK_SCAN_BYTES);
    let mut buf = vec![0u8; len.min(64 * 1024)];
    let (mut done, mut count) = (0usize, 0u64);
    while done < len {
        let chunk = (len - done).min(buf.len());
        let got = sys::read_remote(tid, addr.wrapping_add(done as u64), &mut buf[..chunk], page).unwrap_or(0);
        count += buf[..got].iter().filter(|&&b| b == b'\n').count() as u64;
        if got < chunk {
            break;
        }
        done += chunk;
    }
    count
}
