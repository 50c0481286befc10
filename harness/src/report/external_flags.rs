//! An external run's configuration as the flags of a command line that
//! reruns it: the programs, and what places power-loss crash points and
//! builds their model. The replay lines (`ExternalReplayLine`) and the
//! `power-loss-real` rerun lines both write them.
//!
//! Architecture Invariant: pure.

use crate::report::external::ExternalRunConfig;

impl ExternalRunConfig {
    /// ` --writer W --checker C [--setup S] [--shell]`, quoted: the
    /// programs, as the flags of a command line that reruns them.
    pub fn program_flags(&self) -> String {
        let q = |s: &str| shell_words::quote(s).into_owned();
        let checker = if self.checker_server { "--checker-server" } else { "--checker" };
        let mut out = format!(" --writer {} {checker} {}", q(&self.writer), q(&self.checker));
        if let Some(s) = &self.setup {
            out.push_str(&format!(" --setup {}", q(s)));
        }
        if self.shell {
            out.push_str(" --shell");
        }
        out
    }

    /// ` [--points P] [--tear N] [--fs-model M] [--history off]
    /// [--history-every US]`: what places power-loss crash points and
    /// builds their model, as flags.
    pub fn model_flags(&self) -> String {
        let mut out = String::new();
        if let Some(points) = self.points {
            out.push_str(&format!(" --points {points}"));
        }
        if let Some(tear) = self.tear {
            out.push_str(&format!(" --tear {tear}"));
        }
        if let Some(model) = self.fs_model {
            out.push_str(&format!(" --fs-model {model}"));
        }
        if self.history_off {
            out.push_str(" --history off");
        }
        if let Some(us) = self.history_every_us {
            out.push_str(&format!(" --history-every {us}"));
        }
        out
    }
}
