//! The one exploration kernel of every power-loss state space.
//!
//! Both worlds model a power loss as a product of independent choices: per
//! *unit* (a page or a sector of a built-in writer's file; a page, a sector
//! or a size of a user's file) one of its allowed versions, 0 being its
//! durable floor and `radix - 1` its newest version. The models differ
//! (`crate::power_loss::space` replays a spec and a journal,
//! `crate::external::power_loss::space` compares floor and newest images)
//! and describe their units and radices to this kernel, which owns what is
//! the same in both:
//!
//! - [`gray`]: the enumerator, reflected mixed-radix Gray order (one unit
//!   changes per step; binary spaces are radix 2), stepping or by index;
//! - [`families`]: the adversarial samples, their [`families::spread`] and
//!   cap, and each world's family order;
//! - [`random`]: the seeded sampler and the dedup of sampled states;
//! - [`order`]: an order of states entered at any index (all of them, or
//!   families then random ones), for walks split across threads;
//! - [`ddmin`]: the delta-debugging minimizer of explanations;
//! - [`state_text`]: the grammar of a state's text in replay lines.
//!
//! A new kind of unit (directory entries) or radix (intermediate versions
//! of users' pages) is a model change only: the kernel is generic over both.
//!
//! Architecture Invariant: pure. Nothing here touches a file, a process or
//! a clock, and nothing imports the lab, the external runner, the oracle,
//! the real cuts, reports or the CLI.

pub mod ddmin;
pub mod families;
pub mod gray;
pub mod order;
pub mod random;
pub mod state_text;
