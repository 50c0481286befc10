//! How the oracle names what a traced call names: a path string read from
//! the tracee, split the way the kernel splits it (the parent is resolved,
//! following symlinks; the last component is the entry), the `/proc` paths
//! that let the tracer resolve it from the tracee's point of view (its cwd,
//! its `dirfd`, its `/proc/self`), and the `/proc` texts it reads
//! (`fdinfo`, `mountinfo`). Text in, text out: no file is touched here.
//!
//! The tracer resolves `dir/name` of a call as `stat(BASE/dir)` and then
//! `fstatat(that directory, name, AT_SYMLINK_NOFOLLOW)`, where BASE is
//! `/proc/TID/cwd` or `/proc/TID/fd/DIRFD` for a relative path. Those magic
//! links jump to the tracee's own directory, so a later `..` climbs from
//! there, as in the kernel. Absolute paths are taken in the tracer's root:
//! a writer that `chroot`s is not supported.
//!
//! Architecture Invariant: pure.

/// `PATH_MAX` (uapi `linux/limits.h`): the longest path string the kernel
/// accepts, NUL included. Longer reads are never needed.
pub const PATH_MAX: usize = 4096;

/// A path split into the part the kernel resolves fully (the parent
/// directory) and the entry name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split<'a> {
    /// Empty: the base (cwd or dirfd) itself. `/`: the root.
    pub parent: &'a [u8],
    pub name: &'a [u8],
}

/// Split `path` into parent and last component. Trailing slashes are
/// dropped (`a/b/` names entry `b`). `None` when there is no entry to name:
/// an empty path, `/`, or a last component `.` or `..` (the kernel refuses
/// entry operations on those: `mkdir("a/..")` is EEXIST, `rmdir(".")`
/// EINVAL, `open("a/.", O_CREAT)` EISDIR).
pub fn split_last(path: &[u8]) -> Option<Split<'_>> {
    let end = path.iter().rposition(|&b| b != b'/')? + 1;
    let trimmed = &path[..end];
    let (parent, name) = match trimmed.iter().rposition(|&b| b == b'/') {
        Some(i) => {
            // `a//b`: the parent is `a`; `/b`: it is `/`.
            let p = &trimmed[..i];
            let p_end = p.iter().rposition(|&b| b != b'/').map_or(0, |j| j + 1);
            (if p_end == 0 { &trimmed[..1] } else { &p[..p_end] }, &trimmed[i + 1..])
        }
        None => (&trimmed[..0], trimmed),
    };
    if name == b"." || name == b".." {
        return None;
    }
    Some(Split { parent, name })
}

/// The magic link a relative path starts from: the tracee's cwd
/// (`AT_FDCWD`) or its `dirfd`.
pub fn base(tid: i32, dirfd: i64) -> Vec<u8> {
    if dirfd == i64::from(libc::AT_FDCWD) {
        format!("/proc/{tid}/cwd").into_bytes()
    } else {
        format!("/proc/{tid}/fd/{dirfd}").into_bytes()
    }
}

/// `/proc/self/...` and `/proc/thread-self/...` as the tracee means them
/// (the tracer's own would be another process): `/proc/TGID/...` and
/// `/proc/TGID/task/TID/...`. Other paths are returned as they are.
pub fn as_tracee(path: &[u8], tgid: i32, tid: i32) -> Vec<u8> {
    let swap = |prefix: &[u8], with: String| -> Option<Vec<u8>> {
        let rest = path.strip_prefix(prefix)?;
        if !(rest.is_empty() || rest[0] == b'/') {
            return None;
        }
        let mut out = with.into_bytes();
        out.extend_from_slice(rest);
        Some(out)
    };
    swap(b"/proc/self", format!("/proc/{tgid}"))
        .or_else(|| swap(b"/proc/thread-self", format!("/proc/{tgid}/task/{tid}")))
        .unwrap_or_else(|| path.to_vec())
}

/// An absolute path as the tracee `tid` resolves it when it may live in
/// another mount namespace (or root) than the tracer: under
/// `/proc/TID/root`, whose walk crosses the tracee's mounts. A relative
/// path is returned as it is (it is joined to a `/proc/TID/...` base).
pub fn in_root_of(path: Vec<u8>, tid: i32) -> Vec<u8> {
    if path.first() != Some(&b'/') {
        return path;
    }
    let mut out = format!("/proc/{tid}/root").into_bytes();
    out.extend_from_slice(&path);
    out
}

/// `base` joined with `rel` as the kernel would walk them: an absolute
/// `rel` ignores the base, an empty one is the base.
pub fn join(base: &[u8], rel: &[u8]) -> Vec<u8> {
    if rel.first() == Some(&b'/') {
        return rel.to_vec();
    }
    let mut out = base.to_vec();
    if !rel.is_empty() {
        out.push(b'/');
        out.extend_from_slice(rel);
    }
    out
}

/// What `/proc/TID/fdinfo/N` says about an open file description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdInfo {
    pub pos: u64,
    /// The open flags (`O_APPEND`, `O_DSYNC`, `__O_SYNC`, ...).
    pub flags: u32,
}

/// Parse `pos:` (decimal) and `flags:` (octal) of an fdinfo text.
pub fn parse_fdinfo(text: &str) -> Option<FdInfo> {
    let mut pos = None;
    let mut flags = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("pos:") {
            pos = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("flags:") {
            flags = u32::from_str_radix(v.trim(), 8).ok();
        }
    }
    Some(FdInfo { pos: pos?, flags: flags? })
}

/// The synchronous-mount options of one filesystem (superblock flags
/// `SB_SYNCHRONOUS`, `SB_DIRSYNC`, shown as `sync`, `dirsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MountSync {
    pub sync: bool,
    pub dirsync: bool,
}

/// Per `st_dev` (`major:minor` of `/proc/self/mountinfo`), the sync options
/// of its mounts, from the per-mount options (field 6) and the superblock
/// options (the last field). A device mounted twice has one superblock: the
/// flags are merged.
pub fn parse_mountinfo(text: &str) -> Vec<(u64, MountSync)> {
    let mut out: Vec<(u64, MountSync)> = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let Some(sep) = fields.iter().position(|&f| f == "-") else { continue };
        let (Some(devno), Some(mount_opts), Some(super_opts)) = (fields.get(2), fields.get(5), fields.get(sep + 3))
        else {
            continue;
        };
        let Some((major, minor)) = devno.split_once(':') else { continue };
        let (Ok(major), Ok(minor)) = (major.parse::<u32>(), minor.parse::<u32>()) else { continue };
        let dev = libc::makedev(major, minor);
        let has = |opt: &str| mount_opts.split(',').chain(super_opts.split(',')).any(|o| o == opt);
        let flags = MountSync { sync: has("sync"), dirsync: has("dirsync") };
        match out.iter_mut().find(|(d, _)| *d == dev) {
            Some((_, f)) => {
                f.sync |= flags.sync;
                f.dirsync |= flags.dirsync;
            }
            None => out.push((dev, flags)),
        }
    }
    out
}

/// A `/proc/PID/fd/N` link's target: the path, and whether the kernel
/// marked it ` (deleted)`.
pub fn link_target(link: &[u8]) -> (&[u8], bool) {
    match link.strip_suffix(b" (deleted)") {
        Some(p) => (p, true),
        None => (link, false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(p: &str) -> Option<(String, String)> {
        split_last(p.as_bytes())
            .map(|s| (String::from_utf8(s.parent.to_vec()).unwrap(), String::from_utf8(s.name.to_vec()).unwrap()))
    }

    #[test]
    fn splits_like_the_kernel_walks() {
        let s = |a: &str, b: &str| Some((a.to_string(), b.to_string()));
        assert_eq!(split("name"), s("", "name"));
        assert_eq!(split("a/b"), s("a", "b"));
        assert_eq!(split("a/b/"), s("a", "b"));
        assert_eq!(split("a//b//"), s("a", "b"));
        assert_eq!(split("/b"), s("/", "b"));
        assert_eq!(split("//b"), s("/", "b"));
        assert_eq!(split("/x/y/z"), s("/x/y", "z"));
        assert_eq!(split("../z"), s("..", "z"));
        assert_eq!(split(""), None);
        assert_eq!(split("/"), None);
        assert_eq!(split("///"), None);
        assert_eq!(split("a/."), None);
        assert_eq!(split(".."), None);
    }

    #[test]
    fn proc_self_is_the_tracees() {
        let t = |p: &str| String::from_utf8(as_tracee(p.as_bytes(), 10, 12)).unwrap();
        assert_eq!(t("/proc/self/fd/3"), "/proc/10/fd/3");
        assert_eq!(t("/proc/self"), "/proc/10");
        assert_eq!(t("/proc/thread-self/fd/3"), "/proc/10/task/12/fd/3");
        assert_eq!(t("/proc/selfish"), "/proc/selfish");
        assert_eq!(in_root_of(b"/work/d/f".to_vec(), 7), b"/proc/7/root/work/d/f");
        assert_eq!(in_root_of(b"d/f".to_vec(), 7), b"d/f");
        assert_eq!(t("data/x"), "data/x");
        assert_eq!(join(b"/proc/5/cwd", b"a/b"), b"/proc/5/cwd/a/b");
        assert_eq!(join(b"/proc/5/cwd", b"/abs"), b"/abs");
        assert_eq!(join(b"/proc/5/fd/4", b""), b"/proc/5/fd/4");
        assert_eq!(base(7, -100), b"/proc/7/cwd");
        assert_eq!(base(7, 4), b"/proc/7/fd/4");
    }

    #[test]
    fn parses_fdinfo_and_mountinfo() {
        let info = parse_fdinfo("pos:\t4096\nflags:\t0110002\nmnt_id:\t27\nino:\t12\n").unwrap();
        assert_eq!(info, FdInfo { pos: 4096, flags: 0o110002 });
        assert_ne!(info.flags & libc::O_DSYNC as u32, 0);
        assert_eq!(parse_fdinfo("flags: 02\n"), None);

        let text = "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard\n\
                    30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=1k\n\
                    40 27 7:1 / /mnt/a rw,relatime,sync shared:1 - ext4 /dev/loop1 rw\n\
                    41 27 7:2 / /mnt/b rw - xfs /dev/loop2 rw,dirsync\n";
        let m = parse_mountinfo(text);
        let get = |maj, min| m.iter().find(|(d, _)| *d == libc::makedev(maj, min)).unwrap().1;
        assert_eq!(get(254, 0), MountSync::default());
        assert_eq!(get(7, 1), MountSync { sync: true, dirsync: false });
        assert_eq!(get(7, 2), MountSync { sync: false, dirsync: true });
        assert_eq!(link_target(b"/w/a (deleted)"), (&b"/w/a"[..], true));
        assert_eq!(link_target(b"/w/a"), (&b"/w/a"[..], false));
    }
}
