//! How a child process ended (an exit status or a signal), as reports and
//! replays show it.
//!
//! Architecture Invariant: pure (a leaf).

use serde::{Deserialize, Serialize};

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ProcessEnd {
    Exited(i32),
    Signaled(i32),
}

impl ProcessEnd {
    /// From a `waitpid` status.
    pub(crate) fn from_wait_status(s: libc::c_int) -> ProcessEnd {
        if libc::WIFEXITED(s) {
            ProcessEnd::Exited(libc::WEXITSTATUS(s))
        } else if libc::WIFSIGNALED(s) {
            ProcessEnd::Signaled(libc::WTERMSIG(s))
        } else {
            // Stopped/continued statuses are never returned without WUNTRACED.
            ProcessEnd::Exited(-1)
        }
    }
}

impl std::fmt::Display for ProcessEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            ProcessEnd::Exited(c) => write!(f, "exit {c}"),
            ProcessEnd::Signaled(s) => write!(f, "signal {}", signal_name(s)),
        }
    }
}

pub(crate) fn signal_name(sig: i32) -> String {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(s) => s.as_str().to_owned(),
        Err(_) => format!("{sig}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_ends_print_signal_names() {
        assert_eq!(ProcessEnd::Signaled(libc::SIGKILL).to_string(), "signal SIGKILL");
        assert_eq!(ProcessEnd::Signaled(libc::SIGBUS).to_string(), "signal SIGBUS");
        assert_eq!(ProcessEnd::Exited(3).to_string(), "exit 3");
    }
}
