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

/// Append an unexpected cell: `\n{title}: {reason}`, then each of its
/// failures (headline, details, replay line) in [`write_failure`]'s shape,
/// or the cell's own replay line when it listed none.
pub fn write_unexpected_cell<'a>(
    out: &mut String,
    title: &str,
    reason: &str,
    failures: impl Iterator<Item = (String, &'a [String], &'a str)>,
    cell_replay: &str,
) {
    let _ = writeln!(out, "\n{title}: {reason}");
    let mut listed = false;
    for (headline, details, replay) in failures {
        write_failure(out, "  ", &headline, details, "replay", replay);
        listed = true;
    }
    if !listed {
        let _ = writeln!(out, "  replay: {cell_replay}");
    }
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

    #[test]
    fn an_unexpected_cell_lists_its_failures_or_else_its_own_replay_line() {
        let mut out = String::new();
        let details = ["ack 1 lost".to_string()];
        let failures = [("at before:2 (signal SIGKILL):".to_string(), &details[..], "crashlab a")];
        write_unexpected_cell(&mut out, "shared/no-sync sigkill", "lost an ack", failures.into_iter(), "crashlab cell");
        assert_eq!(
            out,
            "\nshared/no-sync sigkill: lost an ack\n  at before:2 (signal SIGKILL):\n    ack 1 lost\n    replay: crashlab a\n"
        );
        let mut out = String::new();
        write_unexpected_cell(&mut out, "cell", "why", std::iter::empty(), "crashlab cell");
        assert_eq!(out, "\ncell: why\n  replay: crashlab cell\n");
    }
}
