//! What a completed sync makes durable: the tracer's copies into the
//! durable shadow after a successful `msync(MS_SYNC)`, `fsync`/`fdatasync`,
//! `syncfs` or `sync`, the namespace events they are (`SyncData`,
//! `SyncFile`, `SyncDir`, `SyncAll`), and the cases where it cannot tell
//! what was synced (ambiguous: nothing is trusted). Files are found by
//! `(dev, inode)` among the ones the namespace log holds, and read through
//! its descriptors. A part of the tracer (its child module:
//! it works on the tracer's state), apart from the ptrace loop.

use std::path::PathBuf;

use libc::pid_t;

use super::{fd_ident, Call, Tracer};
use crate::namespace::trace::{FileId, FileKind, NsOp};
use crate::oracle::maps;
use crate::oracle::{CopiedRange, NoGuarantee, OracleError, SyncEffect, TracedSyscall};

impl Tracer<'_> {
    /// Copy `[offset, offset + len)` of a known regular file into its
    /// shadow. `Err`: the message for an ambiguous sync.
    pub(super) fn copy_range_of(&mut self, id: FileId, offset: u64, len: u64) -> Result<CopiedRange, String> {
        let store = self.store.as_mut().expect("the store lives until the outcome");
        match store.copy_range(id, self.ns.file(id), offset, len) {
            Ok(n) => {
                let path = self.ns.path_of(id).unwrap_or_default();
                Ok(CopiedRange { file: id, path, offset, len: n, size: None })
            }
            Err(e) => Err(format!("cannot read {} to copy it: {e}", self.ns.describe(id))),
        }
    }

    fn copy_whole_of(&mut self, id: FileId) -> Result<CopiedRange, String> {
        let store = self.store.as_mut().expect("the store lives until the outcome");
        match store.copy_whole(id, self.ns.file(id)) {
            Ok(n) => {
                let path = self.ns.path_of(id).unwrap_or_default();
                Ok(CopiedRange { file: id, path, offset: 0, len: n, size: Some(n) })
            }
            Err(e) => Err(format!("cannot read {} to copy it: {e}", self.ns.describe(id))),
        }
    }

    /// The shared file mappings of `tgid`'s address space: its cache,
    /// taken (give it back with `space_of(tgid).maps = Some(..)`), or
    /// `/proc/PID/maps` read now (~43 µs: the cache is only empty after a
    /// call that changed the address space). Any address-space call under
    /// way empties the cache again when it ends.
    pub(super) fn take_maps(&mut self, tgid: pid_t) -> std::io::Result<Vec<maps::SharedFileMapping>> {
        if let Some(m) = self.space_of(tgid).maps.take() {
            return Ok(m);
        }
        let text = std::fs::read(format!("/proc/{tgid}/maps"))?;
        self.stats.maps_reads += 1;
        Ok(maps::parse(&text))
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
        self.refresh_failed_evidence();
        // Calls that entered while we were stopping the others count too.
        if self.space_of(tgid).range_changed(addr, end, call.space_gen, &call.busy) {
            return Ok(ambiguous(CHANGED));
        }
        let mappings = match self.take_maps(tgid) {
            Ok(m) => m,
            Err(e) => return Ok(ambiguous(&format!("cannot read /proc/{tgid}/maps: {e}"))),
        };
        let mut copied = Vec::new();
        let mut failure = None;
        let mut synced: Vec<FileId> = Vec::new();
        for piece in maps::resolve(&mappings, addr, end) {
            let m = piece.mapping;
            // A file the oracle does not hold is outside the watched tree.
            let Some(id) = self.ns.lookup_mapped(m.dev, m.inode, &m.path).filter(|&id| self.ns.is_regular(id)) else {
                continue;
            };
            match self.copy_range_of(id, piece.file_offset, piece.len) {
                Ok(r) => {
                    copied.push(r);
                    if !synced.contains(&id) {
                        synced.push(id);
                    }
                }
                Err(e) => failure = Some(e),
            }
        }
        self.space_of(tgid).maps = Some(mappings);
        // msync of a range is vfs_fsync_range(.., datasync=1): the file's
        // size at this moment is durable with the data, whatever the range.
        for id in synced {
            self.sync_data(call, id, NsOp::SyncData { file: id, size: 0 });
        }
        Ok(self.record_copies(call, copied, failure))
    }

    /// Emit `op` (a [`NsOp::SyncData`] or [`NsOp::SyncFile`]) with the
    /// file's size now.
    pub(super) fn sync_data(&mut self, call: &Call, id: FileId, op: NsOp) {
        let size = match self.ns.size_now(id) {
            Ok(s) => s,
            // Unreadable now: the size the trace last recorded.
            Err(_) => self.ns.recorded_size(id),
        };
        let op = match op {
            NsOp::SyncFile { .. } => NsOp::SyncFile { file: id, size },
            _ => NsOp::SyncData { file: id, size },
        };
        self.ns.emit(Self::seq_of(call.event), call.sys.name(), op);
    }

    pub(super) fn record_copies(
        &mut self,
        call: &Call,
        copied: Vec<CopiedRange>,
        failure: Option<String>,
    ) -> SyncEffect {
        let effect = match (&failure, copied.is_empty()) {
            (Some(f), true) => ambiguous(f),
            (None, true) => SyncEffect::NoGuarantee(NoGuarantee::NothingWatched),
            // Partial copies stand: each copied range was covered.
            (_, false) => SyncEffect::Copied,
        };
        // The pages a failed sync left clean were not written: out of the
        // record (it stays `Copied`: the call did complete a sync).
        let copied = self.settle_held_back(copied);
        self.stats.bytes_copied += copied.iter().map(|c| c.len).sum::<u64>();
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
        if let (Some(i), Ok(path)) = (call.event, std::fs::read_link(&link)) {
            self.events[i].file = Some(path);
        }
        let Some(id) = self.ns.lookup(now.expect("checked")) else {
            return Ok(SyncEffect::NoGuarantee(NoGuarantee::NothingWatched));
        };
        match self.ns.kind(id) {
            FileKind::Directory => {
                // fsync(2): the entries of the directory are durable.
                self.ns.emit(Self::seq_of(call.event), call.sys.name(), NsOp::SyncDir { dir: id });
                return Ok(SyncEffect::EntriesSynced);
            }
            FileKind::Symlink { .. } => return Ok(SyncEffect::NoGuarantee(NoGuarantee::NothingWatched)),
            FileKind::Regular => {}
        }
        self.stop_world(tid)?;
        self.refresh_failed_evidence();
        let (copied, failure) = match self.copy_whole_of(id) {
            Ok(r) => (vec![r], None),
            Err(e) => (Vec::new(), Some(e)),
        };
        if failure.is_none() {
            let op = if call.sys == TracedSyscall::Fsync {
                NsOp::SyncFile { file: id, size: 0 }
            } else {
                NsOp::SyncData { file: id, size: 0 }
            };
            self.sync_data(call, id, op);
        }
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

    /// Copy every regular file the oracle holds (on device `dev`, if given:
    /// `syncfs` covers one filesystem), unlinked ones included (an unlink
    /// that is not durable brings them back). A `sync`, or a `syncfs` of the
    /// watched directory's filesystem, is a [`NsOp::SyncAll`].
    pub(super) fn copy_watched(
        &mut self,
        tid: pid_t,
        call: &Call,
        dev: Option<u64>,
    ) -> Result<SyncEffect, OracleError> {
        self.stop_world(tid)?;
        self.refresh_failed_evidence();
        let mut copied = Vec::new();
        let mut failure = None;
        for id in self.ns.regular_files() {
            if dev.is_some_and(|d| d != self.ns.trace_file_dev(id)) {
                continue;
            }
            match self.copy_whole_of(id) {
                Ok(r) => copied.push(r),
                Err(e) => failure = Some(e),
            }
        }
        let all = dev.is_none_or(|d| d == self.ns.root_dev());
        if all {
            self.ns.emit(Self::seq_of(call.event), call.sys.name(), NsOp::SyncAll);
        }
        let effect = self.record_copies(call, copied, failure);
        Ok(match effect {
            SyncEffect::NoGuarantee(NoGuarantee::NothingWatched) if all => SyncEffect::EntriesSynced,
            e => e,
        })
    }
}

fn ambiguous(detail: &str) -> SyncEffect {
    SyncEffect::NoGuarantee(NoGuarantee::Ambiguous { detail: detail.to_string() })
}
