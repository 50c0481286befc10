//! How a writer's run ends: one crash kind enum, one spelling, for the
//! built-in writers and for users' programs alike.
//!
//! Each world runs the kinds it can make happen and refuses the others by
//! name (the matrix simulates power loss as a persistence *model* on
//! SIGKILLed writers, so `--crash power-loss` is for `run --writer`, where
//! the durability oracle traces the program; a program's clean run always
//! runs, so `clean` is a column of the matrix only).
//!
//! Architecture Invariant: pure.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How the writer's run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CrashKind {
    /// `SIGKILL`: built-in writers at an op boundary, inside a large store
    /// or at a random time; programs (their process group) at a random time.
    Sigkill,
    /// `SIGABRT` (`abort()` in built-in writers, core dumps disabled; a
    /// signal to a program's process group). `sigabrt` is read as well.
    #[serde(alias = "sigabrt")]
    Abort,
    /// A mapped file is truncated under the writer; its next store beyond
    /// the new end dies of `SIGBUS`.
    Sigbus,
    /// No crash: the control column of the matrix.
    Clean,
    /// Simulated power loss of a program run under the durability oracle,
    /// at a sync call or a random time: the checker judges every state a
    /// power loss may leave (`run --writer` only).
    PowerLoss,
    /// A real power cut of a program run under the durability oracle on a
    /// loop-mounted filesystem (root): the checker judges the real post-cut
    /// directory, and the simulated model is checked against it
    /// (`run --writer` only; the matrix's real columns use the same name).
    PowerLossReal,
    /// One data sync of a program run under the durability oracle fails
    /// with `EIO` (`--crash eio-sync[:K]`); the writer runs on, the power
    /// is cut at a later sync or at the end, and the checker judges every
    /// state a power loss may leave (`run --writer` only).
    EioSync,
    /// The writer runs on a filesystem of a hard capacity (`--capacity`)
    /// that fills up partway through its run: it sees `ENOSPC` from
    /// `write`/`fallocate`/`fsync` and `SIGBUS` on a store into a page the
    /// filesystem cannot back; the checker judges what it left as a process
    /// crash would leave it. In the matrix, a column of the MAP_SHARED rows:
    /// the built-in writer starts from a sparse file on a tmpfs with room
    /// for N pages (`capacity:N`) and dies of SIGBUS on the store that
    /// needs one more.
    Enospc,
}

impl CrashKind {
    /// The crash-kind columns of the survival matrix (`enospc` for its
    /// MAP_SHARED rows only).
    pub const MATRIX: [CrashKind; 5] =
        [CrashKind::Sigkill, CrashKind::Abort, CrashKind::Sigbus, CrashKind::Clean, CrashKind::Enospc];
    /// The process crashes (what `run --writer` does without the oracle).
    pub const PROCESS_CRASHES: [CrashKind; 3] = [CrashKind::Sigkill, CrashKind::Abort, CrashKind::Sigbus];

    pub fn name(self) -> &'static str {
        match self {
            CrashKind::Sigkill => "sigkill",
            CrashKind::Abort => "abort",
            CrashKind::Sigbus => "sigbus",
            CrashKind::Clean => "clean",
            CrashKind::PowerLoss => "power-loss",
            CrashKind::PowerLossReal => "power-loss-real",
            CrashKind::EioSync => "eio-sync",
            CrashKind::Enospc => "enospc",
        }
    }

    /// Does the writer's process die (as opposed to a power loss or no crash)?
    pub fn is_process_crash(self) -> bool {
        CrashKind::PROCESS_CRASHES.contains(&self)
    }
}

impl fmt::Display for CrashKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for CrashKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "sigkill" => Ok(CrashKind::Sigkill),
            "abort" | "sigabrt" => Ok(CrashKind::Abort),
            "sigbus" => Ok(CrashKind::Sigbus),
            "clean" => Ok(CrashKind::Clean),
            "power-loss" => Ok(CrashKind::PowerLoss),
            "power-loss-real" => Ok(CrashKind::PowerLossReal),
            "eio-sync" => Ok(CrashKind::EioSync),
            "enospc" => Ok(CrashKind::Enospc),
            other => Err(format!(
                "unknown crash kind `{other}` (expected sigkill, abort, sigbus, clean, power-loss, power-loss-real, \
                 eio-sync or enospc)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_its_own_name_and_sigabrt_is_abort() {
        for k in [
            CrashKind::Sigkill,
            CrashKind::Abort,
            CrashKind::Sigbus,
            CrashKind::Clean,
            CrashKind::PowerLoss,
            CrashKind::PowerLossReal,
            CrashKind::EioSync,
            CrashKind::Enospc,
        ] {
            assert_eq!(k.name().parse::<CrashKind>(), Ok(k));
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.name()));
            assert_eq!(serde_json::from_str::<CrashKind>(&json).unwrap(), k);
        }
        assert_eq!("sigabrt".parse::<CrashKind>(), Ok(CrashKind::Abort));
        assert_eq!(serde_json::from_str::<CrashKind>("\"sigabrt\"").unwrap(), CrashKind::Abort);
        let e = "sigterm".parse::<CrashKind>().unwrap_err();
        assert!(e.contains("sigterm") && e.contains("power-loss-real") && e.contains("enospc"), "{e}");
    }
}
