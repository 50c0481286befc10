//! The tracer's side of the write history ([`crate::page_history`]): when
//! to read which files. A sample reads only the files that can have changed
//! since the last one. A part of the tracer (its child module: it works on
//! the tracer's state).

use std::collections::{HashMap, HashSet};

use libc::pid_t;

use super::write_protect::MappedChanges;
use super::Tracer;
use crate::namespace::trace::FileId;
use crate::oracle::OracleError;

impl Tracer<'_> {
    /// A `--history-every` tick: stop every task, sample the history, and
    /// let the loop resume them (their stops are deferred).
    pub(super) fn history_tick(&mut self) -> Result<(), OracleError> {
        if self.killing {
            return Ok(());
        }
        self.stop_world(0)?;
        self.sample_history(None, true);
        Ok(())
    }

    /// Read the watched files for the write history, if it is recorded.
    /// Only what can have changed since the last read is read: the files a
    /// traced call wrote or resized, whole; the files a traced process maps
    /// shared (stores change them without a call), only the pages write
    /// tracking reported written where it is set up (`write_protect.rs`),
    /// whole elsewhere. Of those, only files with a name: a file unlinked
    /// while open is not read (its later versions are missed, never made
    /// up), or a rename-heavy writer's thousands of dead inode lives would
    /// be.
    ///
    /// `tid`: the task at whose stop this is; with stacks on, its stack is
    /// where the pages first seen changed since their floor were seen so
    /// (a timer tick has no such task: its pages get no stack).
    pub(super) fn sample_history(&mut self, tid: Option<pid_t>, timer: bool) {
        if self.store.as_ref().is_none_or(|s| s.history.is_none()) {
            return;
        }
        let mut changes = MappedChanges { whole: self.ns.take_changed(), ..MappedChanges::default() };
        self.mapped_files_changes(&mut changes);
        let whole: HashSet<FileId> = changes.whole.into_iter().filter(|&id| self.ns.is_named(id)).collect();
        let mut files: Vec<(FileId, Option<Vec<u64>>)> = whole.iter().map(|&id| (id, None)).collect();
        for (id, mut pages) in changes.pages {
            if self.ns.is_named(id) && !whole.contains(&id) && !pages.is_empty() {
                pages.sort_unstable();
                pages.dedup();
                files.push((id, Some(pages)));
            }
        }
        self.note_failed_evidence(&files);
        let calls = self.events.len() as u64;
        let history = self.store.as_mut().and_then(|s| s.history.as_mut()).expect("checked");
        history.sample(files.into_iter().map(|(id, pages)| (id, self.ns.file(id), pages)), calls, timer);
        let newly = history.take_newly_changed();
        if let (false, Some(tid)) = (newly.is_empty(), tid) {
            if self.change_stacks.len() < crate::oracle::MAX_ACK_STACKS {
                let stack = self.capture_stack(tid);
                if !stack.is_empty() {
                    self.change_stacks.push(stack);
                    let index = self.change_stacks.len() as u32 - 1;
                    let history = self.store.as_mut().and_then(|s| s.history.as_mut()).expect("checked");
                    history.first_changed_at(&newly, index);
                }
            }
        }
    }

    /// What changed in the watched files each address space maps shared,
    /// from its maps (the cache, or read now: `take_maps`).
    fn mapped_files_changes(&mut self, out: &mut MappedChanges) {
        let mut by_space: HashMap<u64, pid_t> = HashMap::new();
        for (&tgid, p) in &self.procs {
            by_space.entry(p.space).or_insert(tgid);
        }
        for (space, tgid) in by_space {
            let Ok(maps) = self.take_maps(tgid) else { continue };
            let watched: Vec<_> = maps
                .iter()
                .filter_map(|m| {
                    let id = self.ns.lookup_mapped(m.dev, m.inode, &m.path).filter(|&id| self.ns.is_regular(id))?;
                    Some((m.clone(), id))
                })
                .collect();
            let s = self.space_of(tgid);
            s.maps = Some(maps);
            let gen = s.gen;
            self.mapped_changes(space, gen, &watched, out);
        }
    }
}
