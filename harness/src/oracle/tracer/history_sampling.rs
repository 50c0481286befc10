//! The tracer's side of the write history ([`crate::page_history`]): when
//! to read which files. A sample reads only the files that can have changed
//! since the last one. A part of the tracer (its child module: it works on
//! the tracer's state).

use std::collections::HashMap;

use libc::pid_t;

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
        self.sample_history(true);
        Ok(())
    }

    /// Read the watched files for the write history, if it is recorded.
    /// Only files that can have changed since the last read are read: those
    /// a traced call wrote or resized, and those a traced process maps
    /// shared (stores change them without a call). Of those, only files with
    /// a name: a file unlinked while open is not read (its later versions
    /// are missed, never made up), or a rename-heavy writer's thousands of
    /// dead inode lives would be.
    pub(super) fn sample_history(&mut self, timer: bool) {
        if self.store.as_ref().is_none_or(|s| s.history.is_none()) {
            return;
        }
        let mut ids = self.ns.take_changed();
        ids.extend(self.mapped_watched_files());
        ids.sort_unstable();
        ids.dedup();
        let named: std::collections::HashSet<FileId> = self.ns.named_regular_files().into_iter().collect();
        ids.retain(|id| named.contains(id));
        let calls = self.events.len() as u64;
        let history = self.store.as_mut().and_then(|s| s.history.as_mut()).expect("checked");
        history.sample(ids.into_iter().map(|id| (id, self.ns.file(id))), calls, timer);
    }

    /// The watched files some traced process maps shared, from each address
    /// space's maps (read now where the cache is empty, and cached when no
    /// address-space call is under way, so that it is exact).
    fn mapped_watched_files(&mut self) -> Vec<FileId> {
        let mut by_space: HashMap<u64, pid_t> = HashMap::new();
        for (&tgid, p) in &self.procs {
            by_space.entry(p.space).or_insert(tgid);
        }
        let mut out = Vec::new();
        for (space, tgid) in by_space {
            let cached = self.spaces.get(&space).and_then(|s| s.maps.clone());
            let maps = match cached {
                Some(m) => m,
                None => {
                    let Ok(text) = std::fs::read(format!("/proc/{tgid}/maps")) else { continue };
                    self.stats.maps_reads += 1;
                    let m = crate::oracle::maps::parse(&text);
                    let s = self.spaces.entry(space).or_default();
                    if s.in_flight.is_empty() {
                        s.maps = Some(m.clone());
                    }
                    m
                }
            };
            out.extend(maps.iter().filter_map(|m| self.ns.lookup_mapped(m.dev, m.inode, &m.path)));
        }
        out
    }
}
