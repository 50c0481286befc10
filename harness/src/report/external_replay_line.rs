//! The replay line of an external run's trial: the exact `crashlab
//! replay` command that re-creates it (its seed, crash kind and trial, and
//! what the calibration measured that places the crash point).
//!
//! Architecture Invariant: pure.

use std::fmt;

use crate::report::external::{ExternalReplayLine, ExternalRunConfig, ReplayTarget};
use crate::report::external_enospc::capacity_flags;
use crate::vocab::CrashKind;

impl fmt::Display for ExternalReplayLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        write!(f, "crashlab replay{}", c.program_flags())?;
        match self.target {
            ReplayTarget::Clean => write!(f, " --crash clean --seed {}", self.seed)?,
            ReplayTarget::Trial { crash, trial, clean_ns } => {
                // `enospc,power-loss`: the enospc trial with its power-loss
                // states, under the same model.
                let after = crash == CrashKind::Enospc && c.crashes.contains(&CrashKind::PowerLoss);
                let kind = if after { "enospc,power-loss".to_owned() } else { crash.to_string() };
                write!(f, " --crash {kind} --seed {} --trial {trial} --clean-ns {clean_ns}", self.seed)?;
                f.write_str(&capacity_flags(crash, c.capacity, c.capacity_fs))?;
                if after {
                    f.write_str(&ExternalRunConfig { points: None, ..c.clone() }.model_flags())?;
                    if let Some(state) = &self.state {
                        write!(f, " --state {}", shell_words::quote(state))?;
                    }
                }
            }
            ReplayTarget::TrialAtCalls { crash, trial, clean_ns, calls } => write!(
                f,
                " --crash {crash} --seed {} --trial {trial} --clean-ns {clean_ns} --calls {calls} --points syscalls",
                self.seed
            )?,
            ReplayTarget::PowerLoss { .. } | ReplayTarget::EioSync { .. } => {
                let (trial, clean_ns, calls) = match self.target {
                    ReplayTarget::PowerLoss { trial, clean_ns, calls } => {
                        f.write_str(" --crash power-loss")?;
                        (trial, clean_ns, calls)
                    }
                    ReplayTarget::EioSync { trial, clean_ns, syncs } => {
                        match c.eio_at {
                            Some(k) => write!(f, " --crash eio-sync:{k}")?,
                            None => f.write_str(" --crash eio-sync")?,
                        }
                        (trial, clean_ns, syncs)
                    }
                    _ => unreachable!("matched above"),
                };
                write!(f, " --seed {} --trial {trial} --clean-ns {clean_ns} --calls {calls}", self.seed)?;
                // An eio-sync trial's failed sync is placed among the data
                // syncs, not by `--points`.
                let model = match self.target {
                    ReplayTarget::PowerLoss { .. } => c.model_flags(),
                    _ => ExternalRunConfig { points: None, ..c.clone() }.model_flags(),
                };
                f.write_str(&model)?;
                if let Some(state) = &self.state {
                    write!(f, " --state {}", shell_words::quote(state))?;
                }
            }
        }
        write!(f, " --timeout {}", c.timeout_secs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program_plan::ProgramPoints;

    #[test]
    fn replay_lines_quote_commands_so_a_shell_splits_them_back() {
        let config = ExternalRunConfig {
            writer: "/bin/my writer --n 3".into(),
            checker: "sh -c 'test -s wal'".into(),
            checker_server: false,
            setup: None,
            shell: false,
            crashes: vec![CrashKind::Sigkill],
            trials: 10,
            timeout_secs: 60,
            tear: None,
            allow_no_acks: false,
            shard: None,
            fs_model: None,
            history_off: false,
            history_every_us: None,
            points: None,
            eio_at: None,
            real_fs: None,
            writeback: None,
            capacity: None,
            capacity_fs: None,
        };
        let eio = ExternalReplayLine {
            config: ExternalRunConfig { eio_at: Some(3), crashes: vec![CrashKind::EioSync], ..config.clone() },
            seed: 9,
            target: ReplayTarget::EioSync { trial: 1, clean_ns: 77, syncs: 6 },
            state: Some("floor:".into()),
        }
        .to_string();
        assert!(
            eio.ends_with("--crash eio-sync:3 --seed 9 --trial 1 --clean-ns 77 --calls 6 --state floor: --timeout 60"),
            "the K of eio-sync:K and the data syncs re-create the trial: {eio}"
        );
        let line = ExternalReplayLine {
            config: config.clone(),
            seed: 9,
            target: ReplayTarget::Trial { crash: CrashKind::Abort, trial: 4, clean_ns: 123 },
            state: None,
        }
        .to_string();
        let words = shell_words::split(&line).unwrap();
        assert_eq!(
            words[..6],
            ["crashlab", "replay", "--writer", "/bin/my writer --n 3", "--checker", "sh -c 'test -s wal'"]
        );
        assert!(line.ends_with("--crash abort --seed 9 --trial 4 --clean-ns 123 --timeout 60"), "{line}");
        let after = ExternalReplayLine {
            config: ExternalRunConfig {
                crashes: vec![CrashKind::Enospc, CrashKind::PowerLoss],
                capacity: Some(131072),
                tear: Some(512),
                ..config.clone()
            },
            seed: 9,
            target: ReplayTarget::Trial { crash: CrashKind::Enospc, trial: 2, clean_ns: 5 },
            state: Some("newest:@6=floor".into()),
        };
        assert!(
            after.to_string().ends_with(
                "--crash enospc,power-loss --seed 9 --trial 2 --clean-ns 5 --capacity 131072 --tear 512 \
                 --state 'newest:@6=floor' --timeout 60"
            ),
            "the enospc trial with its power-loss states, under the same model, in that state: {after}"
        );
        let plain = ExternalRunConfig { crashes: vec![CrashKind::Enospc], ..after.config.clone() };
        let plain = ExternalReplayLine { config: plain, ..after }.to_string();
        assert!(plain.contains("--crash enospc --seed 9") && !plain.contains("--state"), "{plain}");
        let clean = ExternalReplayLine { config: config.clone(), seed: 9, target: ReplayTarget::Clean, state: None }
            .to_string();
        assert!(clean.contains("--crash clean --seed 9"), "{clean}");
        let server = ExternalRunConfig { checker_server: true, ..config.clone() };
        let served =
            ExternalReplayLine { config: server, seed: 9, target: ReplayTarget::Clean, state: None }.to_string();
        let words = shell_words::split(&served).unwrap();
        assert_eq!(words[4..6], ["--checker-server", "sh -c 'test -s wal'"], "a server run replays with the server");
        let at_call = ExternalReplayLine {
            config: ExternalRunConfig { points: Some(ProgramPoints::Syscalls), ..config.clone() },
            seed: 9,
            target: ReplayTarget::TrialAtCalls { crash: CrashKind::Sigkill, trial: 6, clean_ns: 88, calls: 31 },
            state: None,
        }
        .to_string();
        assert!(
            at_call.ends_with(
                "--crash sigkill --seed 9 --trial 6 --clean-ns 88 --calls 31 --points syscalls --timeout 60"
            ),
            "{at_call}"
        );
        let pl_calls = ExternalReplayLine {
            config: ExternalRunConfig { points: Some(ProgramPoints::Syscalls), ..config.clone() },
            seed: 9,
            target: ReplayTarget::PowerLoss { trial: 2, clean_ns: 77, calls: 40 },
            state: None,
        }
        .to_string();
        assert!(pl_calls.contains("--calls 40 --points syscalls"), "{pl_calls}");
        let pl = ExternalReplayLine {
            config: ExternalRunConfig { tear: Some(512), ..config },
            seed: 9,
            target: ReplayTarget::PowerLoss { trial: 2, clean_ns: 77, calls: 5 },
            state: Some("newest:my file#p3=floor".into()),
        }
        .to_string();
        let words = shell_words::split(&pl).unwrap();
        assert_eq!(
            words[6..],
            [
                "--crash",
                "power-loss",
                "--seed",
                "9",
                "--trial",
                "2",
                "--clean-ns",
                "77",
                "--calls",
                "5",
                "--tear",
                "512",
                "--state",
                "newest:my file#p3=floor",
                "--timeout",
                "60"
            ]
        );
    }
}
