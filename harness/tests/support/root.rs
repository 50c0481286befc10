//! The real-cut tests' root check, one for all of them.

/// False (after printing why) when the test cannot run here and may pass:
/// without root, a test that needs loop devices and mounts fails, unless
/// `CRASHLAB_ALLOW_NO_ROOT=1` accepts not testing real power cuts.
pub fn have_root(test: &str) -> bool {
    if crashlab::realcut::sys::is_root() {
        return true;
    }
    let reason = format!("{test}: unavailable: needs root (loop devices, mount); running as non-root");
    if std::env::var_os("CRASHLAB_ALLOW_NO_ROOT").is_some_and(|v| v == "1") {
        eprintln!("{reason}; CRASHLAB_ALLOW_NO_ROOT=1, so not run");
        return false;
    }
    panic!("{reason}. Run as root, or set CRASHLAB_ALLOW_NO_ROOT=1 to accept not testing real power cuts.");
}
