//! The simulated power-loss persistence model.
//!
//! A process crash keeps the page cache, so the process-crash model
//! ([`crate::process_model`]) allows exactly one file per crash instant. A
//! power loss at the same instant loses the page cache too, and what had
//! reached the disk depends on writeback the writer neither controls nor sees:
//! the kernel may write any dirty page back at any moment. One crash instant
//! therefore leaves a whole *set* of possible files.
//!
//! This module describes that set as a product of independent choices — one
//! version per page (or per sector, when tearing is modelled) and one file
//! size — walks it exhaustively or by sampling, and judges every acknowledged
//! op over it: is the op *guaranteed* to survive, or *may it be lost*? Each
//! failing verdict comes with a minimal explanation and the exact state that
//! shows it, encoded as text a replay line can carry.
//!
//! The model is a **lower bound on durability**: it only lets data survive
//! where a completed sync forces it to. Real filesystems may persist more
//! (journal commits, writeback of clean neighbours), so a state in which more
//! survived than the model's floor is never a violation; a state is a
//! violation only if [`PowerLossModel::allows`] forbids it. `allows` also
//! accepts a unit holding a store **half applied** (each byte the value
//! before or after a store that no completed sync has covered): writeback
//! may copy a page while a store is still being copied into it, and a cut
//! may lose the later writeback. The enumerated states keep stores whole: a
//! half-applied store loses no ack that its older version does not.
//!
//! Layout: [`unit`] is a unit's versions and their names, [`space`] builds
//! the per-unit version choices and sizes, [`allows`] is the byte-level
//! membership check, [`crash_state`] is the text encoding of one state,
//! [`explore`] enumerates or samples states (with the exploration kernel,
//! [`crate::explore`]) and materializes them copy-on-write, [`judge`]
//! classifies acks from the choice vector alone and finds minimal
//! explanations, [`bench`] is the benchmark kernel.
//!
//! Architecture Invariant: pure. No syscalls, no clocks outside [`bench`];
//! every random choice comes from the seed passed in.

pub mod allows;
pub mod bench;
pub mod crash_state;
pub mod explore;
pub mod judge;
pub mod space;
pub mod unit;

#[cfg(test)]
mod naive_oracle;
#[cfg(test)]
mod property_tests;
#[cfg(test)]
mod scenario_tests;

use serde::{Deserialize, Serialize};

use crate::payload::Payloads;
use crate::process_model::TrialFacts;
use crate::spec::WriterSpec;

pub use allows::Forbidden;
pub use bench::{run_bench, PowerLossBench, RateComparison};
pub use crash_state::{CrashState, ParseCrashStateError};
pub use explore::{explore, ExplorationPlan, VisitedState};
pub use judge::{AckJudge, AckTracker, Explanation, PageChoice};
pub use space::{ChoiceVector, PowerLossModel};
pub use unit::{Unit, UnitId, UnitVersion, VersionLabel, VersionOrigin};

/// The default sector size of torn-page simulation: the classic disk sector.
pub const DEFAULT_TEAR: u64 = 512;

/// How a power loss is simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PowerLossConfig {
    /// Model torn pages: each sector of this many bytes independently holds
    /// any of its page's allowed versions. `None`: pages reach the disk whole.
    pub tear: Option<u64>,
    /// Enumerate every state when there are at most this many; sample above.
    pub exhaustive_bound: u64,
    /// Random states drawn (on top of the adversarial ones) when sampling.
    pub samples: u32,
}

impl Default for PowerLossConfig {
    fn default() -> Self {
        PowerLossConfig { tear: None, exhaustive_bound: 1 << 16, samples: 256 }
    }
}

impl PowerLossConfig {
    /// A sector must tile the page exactly, or "each sector independently"
    /// would not describe a page.
    pub fn validate(&self, page_size: u64) -> Result<(), PowerLossError> {
        match self.tear {
            Some(t) if t == 0 || t > page_size || page_size % t != 0 => {
                Err(PowerLossError::Config(format!("tear size {t} must divide the page size {page_size}")))
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PowerLossError {
    #[error("bad power-loss configuration: {0}")]
    Config(String),
    /// The trial facts cannot belong to this spec (a harness bug).
    #[error("trial facts do not fit the writer: {0}")]
    Facts(String),
    /// A crash state names a choice the model does not have.
    #[error("crash state `{state}` does not fit this trial: {reason}")]
    State { state: String, reason: String },
}

/// What a power loss at one trial's crash instant may do to one completed ack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AckDurability {
    pub id: u32,
    /// The index of the `Ack` op.
    pub op: usize,
    /// In every allowed state (not only the checked ones), every byte the ack
    /// covers that is still in the file holds its version or a newer one.
    /// Decided from the model, so sampling cannot miss a loss.
    pub guaranteed: bool,
    /// Checked states in which no byte of the ack survived.
    pub lost_states: u64,
    /// Checked states in which some bytes survived and some did not.
    pub torn_states: u64,
    /// Checked states in which every byte still in the file survived but a
    /// truncation (the writer's or the parent's) cut some off.
    pub truncated_states: u64,
}

/// At most this many explanations are kept per trial (the first failing acks
/// in op order), so a report stays readable.
pub const MAX_EXPLANATIONS: usize = 8;

/// The power-loss verdict of one trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerLossOutcome {
    pub states_checked: u64,
    /// Every allowed state was checked (else: adversarial + random sample).
    pub exhaustive: bool,
    /// How many states the model allows; `None` beyond `u64`.
    pub state_space: Option<u64>,
    /// Bytes per independently persisted unit: the page size, or the tear size.
    pub unit_size: u64,
    /// Units with more than one allowed version.
    pub dirty_units: u64,
    /// File sizes the model allows, durable size first.
    pub sizes: Vec<u64>,
    /// One entry per completed ack, in op order.
    pub acks: Vec<AckDurability>,
    /// One minimal explanation per non-guaranteed ack, at most
    /// [`MAX_EXPLANATIONS`].
    pub explanations: Vec<Explanation>,
    pub explanations_omitted: u32,
}

impl PowerLossOutcome {
    /// Acks that a power loss may lose or tear.
    pub fn at_risk(&self) -> impl Iterator<Item = &AckDurability> {
        self.acks.iter().filter(|a| !a.guaranteed)
    }
}

/// Judge a trial under power loss: build the model of its crash instant,
/// explain every ack that is not guaranteed, and walk the allowed states
/// (exhaustively up to `cfg.exhaustive_bound`, else sampled from `seed`).
///
/// # Panics
/// If `cfg` fails [`PowerLossConfig::validate`] or `facts` cannot belong to
/// `spec`; [`try_analyze`] returns those as errors instead.
pub fn analyze(
    spec: &WriterSpec,
    payloads: &Payloads,
    facts: &TrialFacts,
    cfg: &PowerLossConfig,
    seed: u64,
) -> PowerLossOutcome {
    try_analyze(spec, payloads, facts, cfg, seed).unwrap_or_else(|e| panic!("power-loss analysis: {e}"))
}

/// [`analyze`], with bad inputs as errors.
pub fn try_analyze(
    spec: &WriterSpec,
    payloads: &Payloads,
    facts: &TrialFacts,
    cfg: &PowerLossConfig,
    seed: u64,
) -> Result<PowerLossOutcome, PowerLossError> {
    let model = PowerLossModel::build(spec, payloads, facts, cfg)?;
    let judge = AckJudge::build(&model);
    let (mut explanations, witnesses): (Vec<Explanation>, Vec<ChoiceVector>) =
        (0..judge.acks().len()).filter_map(|a| judge.explain(&model, a)).unzip();
    // Every witness is checked, so a non-guaranteed ack always shows at least
    // one failing state even when sampling.
    let plan = ExplorationPlan::new(&model, cfg, seed, &witnesses);
    let mut tracker = AckTracker::new(&judge);
    let states_checked = explore(&model, &plan, false, Some(&mut tracker), |_| {});
    let acks = judge
        .acks()
        .iter()
        .enumerate()
        .map(|(a, ack)| {
            let c = tracker.counts(a);
            AckDurability {
                id: ack.id,
                op: ack.op,
                guaranteed: judge.guaranteed(a),
                lost_states: c.lost,
                torn_states: c.torn,
                truncated_states: c.truncated,
            }
        })
        .collect();
    let omitted = explanations.len().saturating_sub(MAX_EXPLANATIONS);
    explanations.truncate(MAX_EXPLANATIONS);
    Ok(PowerLossOutcome {
        states_checked,
        exhaustive: plan.is_exhaustive(),
        state_space: model.state_count(),
        unit_size: model.unit_size(),
        dirty_units: model.dims() as u64,
        sizes: model.sizes().to_vec(),
        acks,
        explanations,
        explanations_omitted: omitted as u32,
    })
}

/// The exact bytes of one state (for replay): the file content, `len` bytes.
pub fn materialize(
    spec: &WriterSpec,
    payloads: &Payloads,
    facts: &TrialFacts,
    cfg: &PowerLossConfig,
    state: &CrashState,
) -> Result<Vec<u8>, String> {
    let model = PowerLossModel::build(spec, payloads, facts, cfg).map_err(|e| e.to_string())?;
    let choice = model.resolve(state).map_err(|e| e.to_string())?;
    Ok(model.state_bytes(&choice))
}
