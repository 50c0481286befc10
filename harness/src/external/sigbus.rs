//! The `sigbus` crash for external writers: find the files a stopped
//! writer has mapped inside its trial directory and cut the all-zero tail
//! of one of them.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::ExternalError;

/// The files under `dir` (canonical) that a `/proc/PID/maps` text maps,
/// sorted and deduplicated. Deleted files are skipped.
pub fn parse_maps(maps: &str, dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = maps
        .lines()
        .filter_map(|line| {
            // address perms offset dev inode [pathname]; the pathname may
            // contain spaces, so take the rest after five fields.
            let mut rest = line;
            for _ in 0..5 {
                rest = rest.trim_start();
                rest = &rest[rest.find(char::is_whitespace)?..];
            }
            let path = rest.trim_start();
            if path.ends_with(" (deleted)") || !path.starts_with('/') {
                return None;
            }
            let path = Path::new(path);
            (path.starts_with(dir) && path != dir).then(|| path.to_owned())
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The process group of a `/proc/PID/stat` line.
pub fn parse_stat_pgrp(stat: &str) -> Option<i32> {
    crate::proc_stat::stat_field(stat, 5)?.parse().ok()
}

/// The state letter of a `/proc/PID/stat` line.
fn parse_stat_state(stat: &str) -> Option<char> {
    crate::proc_stat::stat_field(stat, 3)?.chars().next()
}

/// The processes of group `pgid`, the leader first.
pub(crate) fn group_members(pgid: i32) -> Vec<i32> {
    let mut members = vec![pgid];
    let Ok(entries) = std::fs::read_dir("/proc") else { return members };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
        if pid == pgid {
            continue;
        }
        if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) {
            if parse_stat_pgrp(&stat) == Some(pgid) {
                members.push(pid);
            }
        }
    }
    members
}

/// The files inside `dir` mapped by any process of group `pgid`.
pub(crate) fn mapped_files(pgid: i32, dir: &Path) -> Vec<PathBuf> {
    let read = |pid: i32| std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap_or_default();
    // The leader is almost always the one; scan the group only if it has none.
    let leader = parse_maps(&read(pgid), dir);
    if !leader.is_empty() {
        return leader;
    }
    let mut all: Vec<PathBuf> =
        group_members(pgid).into_iter().skip(1).flat_map(|p| parse_maps(&read(p), dir)).collect();
    all.sort();
    all.dedup();
    all
}

/// Wait until every process of `pids` is stopped (or gone): SIGSTOP is
/// delivered asynchronously, and the cut must not race a store.
pub(crate) fn wait_stopped(pids: &[i32], limit: Duration) -> Result<(), ExternalError> {
    let until = Instant::now() + limit;
    for &pid in pids {
        loop {
            let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|s| parse_stat_state(&s));
            match state {
                None | Some('T') | Some('t') | Some('Z') | Some('X') => break,
                Some(_) if Instant::now() >= until => {
                    return Err(ExternalError::io(
                        format!("process {pid} of the writer did not stop within {limit:?}"),
                        std::io::Error::from(std::io::ErrorKind::TimedOut),
                    ))
                }
                Some(_) => std::thread::sleep(Duration::from_micros(20)),
            }
        }
    }
    Ok(())
}

/// Where the last non-zero byte of `file` ends (0 for an all-zero file),
/// read backwards in chunks so a long zero tail costs little.
pub(crate) fn data_end(file: &File, len: u64) -> std::io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut end = len;
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let chunk = &mut buf[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|&b| b != 0) {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_yield_the_files_inside_the_directory() {
        let maps = "\
55d0c0a00000-55d0c0a21000 r--p 00000000 08:01 131 /usr/bin/writer
7f0000000000-7f0000010000 rw-s 00000000 08:01 4242 /tmp/run/trial-1/wal.log
7f0000010000-7f0000020000 rw-s 00010000 08:01 4242 /tmp/run/trial-1/wal.log
7f0000020000-7f0000021000 rw-s 00000000 08:01 4243 /tmp/run/trial-1/with space.db
7f0000030000-7f0000031000 rw-s 00000000 08:01 4244 /tmp/run/trial-1/gone (deleted)
7f0000040000-7f0000041000 rw-s 00000000 08:01 4245 /tmp/run/trial-10/other
7f0000050000-7f0000051000 rw-p 00000000 00:00 0 
7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]
";
        let found = parse_maps(maps, Path::new("/tmp/run/trial-1"));
        assert_eq!(
            found,
            vec![PathBuf::from("/tmp/run/trial-1/wal.log"), PathBuf::from("/tmp/run/trial-1/with space.db")]
        );
    }

    #[test]
    fn stat_lines_with_odd_command_names_parse() {
        assert_eq!(parse_stat_pgrp("1234 (wal (x) y) S 1 1230 1230 0 -1 4194304"), Some(1230));
        assert_eq!(parse_stat_state("1234 (a) b) T 1 1230 1230"), Some('T'));
        assert_eq!(parse_stat_pgrp("garbage"), None);
    }

    #[test]
    fn data_end_finds_the_last_non_zero_byte() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        let mut bytes = vec![0u8; 200_000];
        let f = |b: &[u8]| {
            std::fs::write(&path, b).unwrap();
            data_end(&File::open(&path).unwrap(), b.len() as u64).unwrap()
        };
        assert_eq!(f(&bytes), 0);
        bytes[5] = 1;
        assert_eq!(f(&bytes), 6);
        bytes[70_000] = 9;
        assert_eq!(f(&bytes), 70_001);
        bytes[199_999] = 9;
        assert_eq!(f(&bytes), 200_000);
        assert_eq!(f(&[]), 0);
    }
}
