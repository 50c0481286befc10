//! The error of every output crashlab writes (reports, pages, JUnit, the
//! regressions file): a leaf, so that the crate's own error types can carry
//! it without importing the report writer.
//!
//! Architecture Invariant: pure (a leaf).

use std::path::PathBuf;

/// Why an output could not be written: which flag, which path, what step
/// failed, and whether the previous file there is known to be unchanged.
#[derive(Debug, thiserror::Error)]
#[error(
    "{flag} {}: {step}{}{}",
    path.display(),
    error.as_ref().map(|e| format!(": {e}")).unwrap_or_default(),
    if *kept { "; any previous file there is unchanged" } else { "" }
)]
pub struct OutputError {
    pub flag: String,
    pub path: PathBuf,
    pub step: String,
    /// The OS error, if any: in the message only (not `source()`), so it
    /// is printed once.
    pub error: Option<std::io::Error>,
    /// The failure came before the rename: the target was not touched.
    pub kept: bool,
}
