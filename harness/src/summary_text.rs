//! The one shape every human summary (survival, external, soundness, the
//! volatile disk's) gives a failure: a headline, its details indented below
//! it, and last the command that reruns it, so a person (or a CI log grep)
//! finds the rerun line in the same place whatever the report.
//!
//! Architecture Invariant: pure (a leaf).

use std::fmt::Write as _;

/// Append to `out`, every line prefixed by `indent`: `headline`, then each
/// of `details` and `label: rerun` indented two more spaces.
pub fn write_failure(out: &mut String, indent: &str, headline: &str, details: &[String], label: &str, rerun: &str) {
    let _ = writeln!(out, "{indent}{headline}");
    for d in details {
        let _ = writeln!(out, "{indent}  {d}");
    }
    let _ = writeln!(out, "{indent}  {label}: {rerun}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_and_the_rerun_line_sit_two_spaces_under_the_headline() {
        let mut out = String::new();
        write_failure(&mut out, "  ", "at before:3 (signal SIGKILL):", &["ack 2 lost".into()], "replay", "crashlab x");
        assert_eq!(out, "  at before:3 (signal SIGKILL):\n    ack 2 lost\n    replay: crashlab x\n");
        let mut out = String::new();
        write_failure(&mut out, "", "VIOLATION on ext4", &[], "rerun", "crashlab soundness y");
        assert_eq!(out, "VIOLATION on ext4\n  rerun: crashlab soundness y\n");
    }
}
