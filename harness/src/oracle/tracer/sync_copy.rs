//! What a completed sync makes durable: the tracer's copies into the
//! durable shadow after a successful `msync(MS_SYNC)`, `fsync`/`fdatasync`,
//! `syncfs` or `sync`, and the cases where it cannot tell what was synced
//! (ambiguous: nothing is trusted). A part of the tracer (its child module:
//! it works on the tracer's state), apart from the ptrace loop.

use std::path::PathBuf;

use libc::pid_t;

use super::{fd_ident, Call, Tracer};
use crate::oracle::maps;
use crate::oracle::shadow::{ShadowStore, Source};
use crate::oracle::{CopiedRange, NoGuarantee, OracleError, SyncEffect};

impl Tracer<'_> {
    fn store(&mut self) -> &mut ShadowStore {
        self.store.as_mut().expect("the store lives until the outcome")
    }

    pub(super) fn after_msync(&mut self, tid: pid_t, tgid: pid_t, call: &Call) -> Result<SyncEffect, OracleError> {
        let (addr, len, flags) = (call.args[0], call.args[1], call.args[2] as i32);
        if flags & libc::MS_SYNC == 0 {
            return Ok(SyncEffect::NoGuarantee(NoGuarantee::NoMsSync));
        }
        // The kernel rounds the length up to pages; addr is page-aligned
        // (else EINVAL, and we would not be here).
        let Some(end) = len.checked_add(self.page - 1).map(|l| l & !(self.page - 1)).and_then(|l| addr.checked_add(l))
        else {
            return Ok(SyncEffect::NoGuarantee(NoGuarantee::NothingWatched));
        };
        if end == addr {
            return Ok(SyncEffect::NoGuarantee(NoGuarantee::NothingWatched));
        }
        const CHANGED: &str = "an munmap/mremap/MAP_FIXED mmap over the range ran concurrently with msync";
        if self.space_of(tgid).range_changed(addr, end, call.space_gen, &call.busy) {
            return Ok(ambiguous(CHANGED));
        }
        self.stop_world(tid)?;
        // Calls that entered while we were stopping the others count too.
        if self.space_of(tgid).range_changed(addr, end, call.space_gen, &call.busy) {
            return Ok(ambiguous(CHANGED));
        }
        let mappings = match self.space_of(tgid).maps.take() {
            Some(m) => m,
            None => match std::fs::read(format!("/proc/{tgid}/maps")) {
                Ok(text) => {
                    self.stats.maps_reads += 1;
                    maps::parse(&text)
                }
                Err(e) => return Ok(ambiguous(&format!("cannot read /proc/{tgid}/maps: {e}"))),
            },
        };
        let mut copied = Vec::new();
        let mut failure = None;
        for piece in maps::resolve(&mappings, addr, end) {
            if piece.mapping.deleted {
                continue;
            }
            let m = piece.mapping;
            match self.store().copy_range(&m.path, m.inode, Source::Path, piece.file_offset, piece.len) {
                Ok(Some(r)) => copied.push(r),
                Ok(None) => {}
                Err(e) => failure = Some(format!("cannot read {} to copy it: {e}", m.path.display())),
            }
        }
        self.space_of(tgid).maps = Some(mappings);
        Ok(self.record_copies(call, copied, failure))
    }

    fn record_copies(&mut self, call: &Call, copied: Vec<CopiedRange>, failure: Option<String>) -> SyncEffect {
        self.stats.bytes_copied += copied.iter().map(|c| c.len).sum::<u64>();
        let effect = match (&failure, copied.is_empty()) {
            (Some(f), true) => ambiguous(f),
            (None, true) => SyncEffect::NoGuarantee(NoGuarantee::NothingWatched),
            // Partial copies stand: each copied range was covered.
            (_, false) => SyncEffect::Copied,
        };
        if let Some(i) = call.event {
            self.events[i].copied = copied;
        }
        effect
    }

    pub(super) fn after_fsync(&mut self, tid: pid_t, call: &Call) -> Result<SyncEffect, OracleError> {
        let fd = call.args[0];
        let link = PathBuf::from(format!("/proc/{tid}/fd/{fd}"));
        let now = fd_ident(tid, fd);
        if now.is_none() || now != call.fd_ident {
            return Ok(ambiguous(&format!("fd {fd} named another file at entry and at exit")));
        }
        let (_, inode) = now.expect("checked");
        let Ok(path) = std::fs::read_link(&link) else {
            return Ok(ambiguous(&format!("cannot read the link {}", link.display())));
        };
        if let Some(i) = call.event {
            self.events[i].file = Some(path.clone());
        }
        if self.store().relative(&path).is_none() {
            return Ok(SyncEffect::NoGuarantee(NoGuarantee::NothingWatched));
        }
        self.stop_world(tid)?;
        let (copied, failure) = match self.store().copy_whole(&path, inode, Source::ProcFd(&link)) {
            Ok(Some(r)) => (vec![r], None),
            Ok(None) => (Vec::new(), Some(format!("{} is no longer the file fd {fd} named", path.display()))),
            Err(e) => (Vec::new(), Some(format!("cannot read {} to copy it: {e}", path.display()))),
        };
        Ok(self.record_copies(call, copied, failure))
    }

    pub(super) fn after_syncfs(&mut self, tid: pid_t, call: &Call) -> Result<SyncEffect, OracleError> {
        let fd = call.args[0];
        let now = fd_ident(tid, fd);
        if now.is_none() || now != call.fd_ident {
            return Ok(ambiguous(&format!("fd {fd} named another file at entry and at exit")));
        }
        let (dev, _) = now.expect("checked");
        self.copy_watched(tid, call, Some(dev))
    }

    /// Copy every file under the watched directory (on device `dev`, if given).
    pub(super) fn copy_watched(
        &mut self,
        tid: pid_t,
        call: &Call,
        dev: Option<u64>,
    ) -> Result<SyncEffect, OracleError> {
        self.stop_world(tid)?;
        let files = match self.store().current_files() {
            Ok(f) => f,
            Err(e) => {
                let dir = self.store().watch_dir().display().to_string();
                return Ok(ambiguous(&format!("cannot list {dir}: {e}")));
            }
        };
        let mut copied = Vec::new();
        let mut failure = None;
        for (path, inode, file_dev) in files {
            if dev.is_some_and(|d| d != file_dev) {
                continue;
            }
            match self.store().copy_whole(&path, inode, Source::Path) {
                Ok(Some(r)) => copied.push(r),
                Ok(None) => {}
                Err(e) => failure = Some(format!("cannot read {} to copy it: {e}", path.display())),
            }
        }
        Ok(self.record_copies(call, copied, failure))
    }
}

fn ambiguous(detail: &str) -> SyncEffect {
    SyncEffect::NoGuarantee(NoGuarantee::Ambiguous { detail: detail.to_string() })
}
