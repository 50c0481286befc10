//! Finding processes a test started, by a string on their command line
//! (a test's unique temporary directory, passed as an argument), and a
//! campaign long enough to be caught running.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// `PID: COMMAND LINE` of every process whose command line contains `needle`.
pub fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmd) = std::fs::read(entry.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(needle) {
                found.push(format!("{}: {cmd}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// `crashlab matrix` with 100,000 random points per cell in `dir` (its
/// path is on every worker's command line): runs far longer than any test
/// waits, so the test decides when it ends. Stderr is piped.
#[allow(dead_code)] // not every test binary that includes this module starts one
pub fn start_long_matrix(dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_crashlab"))
        .args(["matrix", "--points", "random:100000", "--crash", "sigkill", "--seed", "1", "--dir"])
        .arg(dir)
        .arg("--out")
        .arg(dir.join("r.json"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}
