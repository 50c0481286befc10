//! The regressions file (`scenarios/regressions.txt`): every trial that ever
//! failed, as its replay line, so the scenario tests rerun it on every
//! commit, the way proptest reruns the seeds in its regression files.
//! `crashlab matrix`/`run` append to it; a person deletes a line once the
//! bug it records is understood and fixed (or was crashlab's own).
//!
//! Format: UTF-8 text, one entry per line. Blank lines and lines starting
//! with `#` are comments (crashlab writes one before each entry: when, which
//! cell, what went wrong). Every other line is a replay line exactly as
//! reports print it, `crashlab replay --scenario ... --txns N [...]`.
//!
//! `run --writer --regressions FILE` appends the failing trials of a user's
//! program the same way (same locking, same comments), as `crashlab replay
//! --writer ...` lines, to the file it names: never to the scenarios' file,
//! whose lines the scenario tests parse as built-in replay lines.

use std::io::Write as _;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::report::checker_verdict::CheckerVerdict;
use crate::report::external::ExternalReport;
use crate::report::file::{read_text, read_text_from, ReadFileError};
use crate::report::survival::{ReplayLine, SurvivalReport, Verdict};
use crate::utc_time::utc_date;

/// What a new regressions file starts with.
pub const HEADER: &str = "\
# crashlab regressions: trials that failed once, rerun first by the scenario
# tests (scenarios/tests/regressions.rs) until someone removes them.
# `crashlab matrix` and `crashlab run` append every failing trial here (see
# --regressions). Format: blank lines and lines starting with # are comments;
# every other line is a replay line as reports print it:
#   crashlab replay --scenario S --crash K --point P --seed N --size B --txns T [--model M] [--tear B] [--state X]
# A line that does not parse fails the tests. Timed points (inside:, time:)
# rerun the same plan but may land elsewhere.
";

/// What a new regressions file of a user's program (`run --writer
/// --regressions FILE`) starts with.
pub const EXTERNAL_HEADER: &str = "\
# crashlab regressions of your program: trials of `crashlab run --writer` that
# failed once, appended by --regressions. Format: blank lines and lines
# starting with # are comments; every other line is a replay line:
#   crashlab replay --writer W --checker C --crash K --seed N --trial T --clean-ns D [...]
# Rerun one with your shell; delete it once the bug it records is fixed.
";

/// Why the regressions file could not be read or appended to. The cause is
/// part of the message and not also `source()`, so it is printed once.
#[derive(Debug, thiserror::Error)]
pub enum RegressionsError {
    #[error("cannot read the regressions file {}: {error}", path.display())]
    Read { path: PathBuf, error: ReadFileError },
    #[error("cannot append to the regressions file {}: {error}", path.display())]
    Write { path: PathBuf, error: std::io::Error },
    #[error("{}:{line}: not a replay line ({reason}): {text}", path.display())]
    Parse { path: PathBuf, line: usize, text: String, reason: String },
}

/// One recorded failing trial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regression {
    /// 1-based line number in the file.
    pub line: usize,
    pub replay: ReplayLine,
}

/// Parse the regressions in `text`, read from `path` (named in errors).
pub fn parse_regressions(text: &str, path: &Path) -> Result<Vec<Regression>, RegressionsError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let replay = line.parse::<ReplayLine>().map_err(|reason| RegressionsError::Parse {
            path: path.to_owned(),
            line: i + 1,
            text: line.to_owned(),
            reason,
        })?;
        out.push(Regression { line: i + 1, replay });
    }
    Ok(out)
}

/// The regressions in the file at `path` (at most
/// [`MAX_REPORT_BYTES`](crate::report::file::MAX_REPORT_BYTES) of it).
pub fn read_regressions(path: &Path) -> Result<Vec<Regression>, RegressionsError> {
    let text = read_text(path).map_err(|error| RegressionsError::Read { path: path.to_owned(), error })?;
    parse_regressions(&text, path)
}

/// A failing trial of a report: the comment that introduces it and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailingTrial {
    pub comment: String,
    pub replay: String,
}

/// Every failing trial a report names: each recorded failure of a cell with
/// model violations, and the representative trial of any other cell whose
/// verdict is not as expected. Real power cuts (`power-loss-real`) are left
/// out: they rerun with `crashlab soundness` (root or a guest), not replay.
pub fn failing_trials(report: &SurvivalReport) -> Vec<FailingTrial> {
    let e = &report.environment;
    let mut out = Vec::new();
    for c in report.cells.iter().filter(|c| c.verdict != Verdict::AsExpected && c.real.is_none()) {
        let verdict = match c.verdict {
            Verdict::ModelViolation => "model violation",
            _ => "unexpected",
        };
        let context = format!(
            "{} {} {} [{}] {verdict}: {}; crashlab {}, kernel {}, {}",
            utc_date(report.run.started_at_unix),
            c.scenario,
            c.crash,
            c.model,
            c.verdict_reason.as_deref().unwrap_or(""),
            report.crashlab_version,
            e.kernel_release,
            e.fs_type
        );
        let lines: Vec<(String, String)> = if c.failures.is_empty() {
            vec![(format!("# {context}"), c.replay.clone())]
        } else {
            c.failures
                .iter()
                .map(|f| {
                    (format!("# {context}; at {} ({}): {}", f.point, f.exit, f.details.join("; ")), f.replay.clone())
                })
                .collect()
        };
        for (comment, replay) in lines {
            if !replay.is_empty() && !out.iter().any(|t: &FailingTrial| t.replay == replay) {
                // A comment is one line whatever the details held.
                out.push(FailingTrial { comment: comment.replace(['\n', '\r'], " "), replay });
            }
        }
    }
    out
}

/// Every failing trial of an external report: the clean run if it failed,
/// each violating trial of each crash kind, each power-loss violation (its
/// replay line rebuilds the minimal state).
pub fn external_failing_trials(report: &ExternalReport) -> Vec<FailingTrial> {
    let e = &report.environment;
    let context = format!(
        "{} `{}`: crashlab {}, kernel {}, {}",
        utc_date(report.run.started_at_unix),
        report.config.writer,
        report.crashlab_version,
        e.kernel_release,
        e.fs_type
    );
    let mut out = Vec::new();
    let mut push = |comment: String, replay: &str| {
        if !out.iter().any(|t: &FailingTrial| t.replay == replay) {
            out.push(FailingTrial { comment: comment.replace(['\n', '\r'], " "), replay: replay.to_owned() });
        }
    };
    if let CheckerVerdict::Violation { reason } = &report.clean_run.checker {
        push(format!("# {context}; the clean run (no crash): {reason}"), &report.clean_run.replay);
    }
    for k in &report.crashes {
        for v in &k.failures {
            push(format!("# {context}; {} trial {}: {}", k.crash, v.trial, v.reason), &v.replay);
        }
    }
    if let Some(p) = &report.power_loss {
        for v in &p.failures {
            push(format!("# {context}; power-loss trial {}: {}", v.trial, v.finding.explanation), &v.replay);
        }
    }
    out
}

/// Append the failing trials of `report` to the file at `path` (created with
/// [`HEADER`] if missing), skipping lines already there. Returns how many
/// were appended.
pub fn append_regressions(path: &Path, report: &SurvivalReport) -> Result<usize, RegressionsError> {
    append_failing_trials(path, HEADER, &failing_trials(report))
}

/// Append the failing trials of an external report to the file at `path`
/// (created with [`EXTERNAL_HEADER`] if missing), as [`append_regressions`].
pub fn append_external_regressions(path: &Path, report: &ExternalReport) -> Result<usize, RegressionsError> {
    append_failing_trials(path, EXTERNAL_HEADER, &external_failing_trials(report))
}

/// Append `trials` to the file at `path` (created with `header` if
/// missing), skipping lines already there. Returns how many were appended.
///
/// How, and why not through the atomic writer of reports: this file is
/// shared (one per checkout, appended to by every campaign, edited by
/// people), so two runs may append at once, and a failed append must not
/// cost the lines already there. A read-modify-write with a rename would
/// need a lock that survives the rename and would replace a file someone
/// may have open in an editor. Instead the file is opened
/// `O_APPEND|O_NOFOLLOW` (a link planted at the path is refused, not
/// followed), locked with `flock` (the inode never changes, so the lock is
/// the file's own: concurrent runs take turns, and each sees the lines the
/// other added, so none is lost or recorded twice), read under the lock,
/// and the new lines are appended in one `write` after which the file is
/// flushed. Existing bytes are never rewritten: a failed or short write
/// (a full disk) is undone by truncating back to the length read under the
/// lock, so the file never keeps a partial line either.
fn append_failing_trials(path: &Path, header: &str, trials: &[FailingTrial]) -> Result<usize, RegressionsError> {
    if trials.is_empty() {
        return Ok(0);
    }
    let write_err = |error: std::io::Error| RegressionsError::Write { path: path.to_owned(), error };
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o666)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => write_err(std::io::Error::other(
                "it is a symbolic link, which crashlab does not append through; name the file itself",
            )),
            _ => write_err(e),
        })?;
    let kind = file.metadata().map_err(write_err)?.file_type();
    if kind.is_char_device() {
        // `--regressions /dev/null`: nothing to read, lock or undo.
        let (text, appended) = failing_text("", header, trials);
        return file.write_all(text.as_bytes()).map(|()| appended).map_err(write_err);
    }
    if !kind.is_file() {
        return Err(write_err(std::io::Error::other("it is not a regular file")));
    }
    // Unlocked when `file` is dropped, on every path out of here.
    let mut file = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, errno)| write_err(errno.into()))?;
    let existing =
        read_text_from(&mut file).map_err(|error| RegressionsError::Read { path: path.to_owned(), error })?;
    let (text, appended) = failing_text(&existing, header, trials);
    if appended == 0 {
        return Ok(0);
    }
    let written = file.write(text.as_bytes()).and_then(|n| {
        if n == text.len() {
            file.sync_data()
        } else {
            Err(std::io::Error::new(std::io::ErrorKind::WriteZero, format!("only {n} of {} bytes written", text.len())))
        }
    });
    if let Err(e) = written {
        // Undo a partial append; the lock keeps others from appending meanwhile.
        let _ = file.set_len(existing.len() as u64);
        return Err(write_err(e));
    }
    Ok(appended)
}

/// What to append after `existing` for `trials` (`header` for a new file,
/// a newline if the last line lacks one, then every trial not recorded
/// yet), and how many trials that is.
fn failing_text(existing: &str, header: &str, trials: &[FailingTrial]) -> (String, usize) {
    let known: Vec<&str> = existing.lines().map(str::trim).collect();
    let mut text = String::new();
    if existing.trim().is_empty() {
        text.push_str(header);
    } else if !existing.ends_with('\n') {
        text.push('\n');
    }
    let mut appended = 0;
    for t in trials.iter().filter(|t| !known.contains(&t.replay.as_str())) {
        text.push_str(&format!("{}\n{}\n", t.comment, t.replay));
        appended += 1;
    }
    (text, appended)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str =
        "crashlab replay --scenario shared/no-sync --crash sigkill --point before:3 --seed 5 --size 65536 --txns 8";

    #[test]
    fn comments_and_blank_lines_are_skipped_and_lines_parse() {
        let text = format!("{HEADER}\n# a comment\n{GOOD}\n\n  {GOOD} --model power-loss\n");
        let got = parse_regressions(&text, Path::new("r.txt")).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].replay.to_string(), GOOD);
        assert_eq!(got[0].line, HEADER.lines().count() + 3);
        assert_eq!(got[1].replay.model, crate::expectation::PersistenceModel::PowerLoss);
    }

    #[test]
    fn a_bad_line_is_an_error_naming_file_line_and_text() {
        let text = format!("{GOOD}\ncrashlab replay --scenario shared/no-sync --crash sometimes\n");
        let e = parse_regressions(&text, Path::new("scenarios/regressions.txt")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.starts_with("scenarios/regressions.txt:2:"), "{msg}");
        assert!(msg.contains("sometimes"), "{msg}");
    }

    #[test]
    fn the_header_is_all_comment() {
        assert!(parse_regressions(HEADER, Path::new("h")).unwrap().is_empty());
        assert!(EXTERNAL_HEADER.lines().all(|l| l.starts_with('#')));
    }

    #[test]
    fn an_external_report_appends_each_violating_trial_once_under_its_own_header() {
        use crate::report::external_fixtures::{report_with, trial};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.txt");
        let r = report_with(&[trial(0, false), trial(1, true), trial(3, true)], None);
        assert_eq!(append_external_regressions(&path, &r).unwrap(), 2);
        assert_eq!(append_external_regressions(&path, &r).unwrap(), 0, "lines already there are not added twice");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(EXTERNAL_HEADER), "{text}");
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "crashlab replay --writer ./w --checker ./c --crash sigkill --seed 5 --trial 1",
                "crashlab replay --writer ./w --checker ./c --crash sigkill --seed 5 --trial 3"
            ]
        );
        assert!(text.contains("sigkill trial 3: rec 3 <missing>"), "{text}");
    }
}
