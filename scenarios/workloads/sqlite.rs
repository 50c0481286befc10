//! SQLite as a real third-party target: `crashlab-workload
//! sqlite-JOURNAL-SYNC ROLE [OPTIONS]` execs `python3 sqlite_workload.py
//! ROLE --journal JOURNAL --sync SYNC [OPTIONS]` (the script next to this
//! file, found through the path this crate was built from). The script's
//! docstring has the design, what SQLite's documentation promises in each
//! mode (quoted), and the syscalls SQLite makes in each.
//!
//! The Python is `$CRASHLAB_PYTHON` if set, else `/usr/bin/python3` when it
//! exists (the system's, linked to the system's libsqlite3; a `python3`
//! earlier in `PATH` may be a version manager's shell shim that forks a
//! dozen processes per start), else `python3` from `PATH`. `exec` replaces
//! this process, so crashlab crashes and traces Python itself.

use std::os::unix::process::CommandExt;

use crate::common::die;

/// The script, where this crate was built.
pub const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/sqlite_workload.py");

/// The journal modes and synchronous levels the examples cover.
pub const JOURNALS: [&str; 2] = ["delete", "wal"];
pub const SYNCS: [&str; 4] = ["off", "normal", "full", "extra"];

/// `sqlite-delete-full` → `("delete", "full")`.
pub fn parse_example(example: &str) -> Option<(&str, &str)> {
    let (journal, sync) = example.strip_prefix("sqlite-")?.split_once('-')?;
    (JOURNALS.contains(&journal) && SYNCS.contains(&sync)).then_some((journal, sync))
}

fn python() -> std::ffi::OsString {
    if let Some(p) = std::env::var_os("CRASHLAB_PYTHON") {
        return p;
    }
    if std::path::Path::new("/usr/bin/python3").exists() {
        return "/usr/bin/python3".into();
    }
    "python3".into()
}

/// Replace this process with the script's `role` (never returns).
pub fn exec(journal: &str, sync: &str, role: &str, records: Option<usize>, pace_us: Option<u64>) -> ! {
    if !std::path::Path::new(SCRIPT).is_file() {
        die(&format!("the SQLite workload script {SCRIPT} is missing (it is found where crashlab-workload was built)"));
    }
    let mut cmd = std::process::Command::new(python());
    cmd.arg(SCRIPT).arg(role);
    if role != "version" {
        cmd.args(["--journal", journal]);
    }
    if role == "writer" || role == "checker" {
        cmd.args(["--sync", sync]);
    }
    if role == "writer" {
        if let Some(n) = records {
            cmd.args(["--records", &n.to_string()]);
        }
        if let Some(us) = pace_us {
            cmd.args(["--pace-us", &us.to_string()]);
        }
    }
    // No __pycache__ written anywhere by the workload's own runs.
    cmd.env("PYTHONDONTWRITEBYTECODE", "1");
    let err = cmd.exec();
    die(&format!("cannot run {} {SCRIPT}: {err}", python().to_string_lossy()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_name_a_journal_mode_and_a_sync_level() {
        assert_eq!(parse_example("sqlite-delete-full"), Some(("delete", "full")));
        assert_eq!(parse_example("sqlite-wal-normal"), Some(("wal", "normal")));
        assert_eq!(parse_example("sqlite-wal"), None);
        assert_eq!(parse_example("sqlite-truncate-full"), None);
        assert_eq!(parse_example("sqlite-wal-fast"), None);
        assert!(std::path::Path::new(SCRIPT).is_file(), "{SCRIPT}");
    }
}
