//! The errors of the real-cut backends, as values the pure parts (the plan,
//! the volatile-disk model) can return without importing the runners.
//!
//! Architecture Invariant: pure: plain values (`NeedsRoot`'s message reads
//! the effective uid when printed, a constant of the process).

/// Errors of the real-cut backends. Each names the path, device, command or
/// value involved.
#[derive(Debug, thiserror::Error)]
pub enum RealcutError {
    /// The backend cannot run here (not root, a tool missing); tests print
    /// this and fail unless told otherwise.
    #[error("unavailable: needs root (loop devices, mount, FS_IOC_SHUTDOWN); running as uid {}", euid())]
    NeedsRoot,
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("{what}: {source}")]
    Sys { what: String, source: std::io::Error },
    #[error("`{command}` failed: {detail}")]
    Command { command: String, detail: String },
    #[error("{0}")]
    Spec(String),
    /// A guest did not reach its kill point (the vm backend).
    #[error("{0}")]
    Guest(Box<GuestFailure>),
    #[error("realcut worker {id}: {message}")]
    Worker { id: u32, message: String },
    #[error("interrupted")]
    Interrupted,
}

/// What is known of a guest that did not reach its kill point.
#[derive(Debug, thiserror::Error)]
#[error("vm trial on {disk}: {why}; qemu stderr: {qemu_stderr}; console tail ({}):\n{console_tail}", console.display())]
pub struct GuestFailure {
    pub disk: String,
    pub why: String,
    pub qemu_stderr: String,
    pub console: std::path::PathBuf,
    /// Bytes the guest printed on its serial console.
    pub console_bytes: u64,
    pub console_tail: String,
}

impl RealcutError {
    /// For `map_err`: the I/O error of doing `what` (which names the path,
    /// device or command).
    pub fn sys(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> RealcutError {
        let what = what.into();
        move |source| RealcutError::Sys { what, source }
    }

    pub fn is_unavailable(&self) -> bool {
        matches!(self, RealcutError::NeedsRoot | RealcutError::Unavailable(_))
    }
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}
