//! Facts about the machine a report was made on, as data. Probing them
//! (uname, statfs, sysconf) is `crate::environment`'s job.
//!
//! Architecture Invariant: pure.

use serde::{Deserialize, Serialize};

/// The kernel, the filesystem of the work directory and the page size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Environment {
    pub kernel_release: String,
    /// Filesystem of the work directory, from statfs.
    pub fs_type: String,
    pub page_size: u64,
}
