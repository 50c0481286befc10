//! The user's command lines: split into argv like a shell splits words (or
//! handed to `sh -c` with `--shell`), checked before anything runs.

use std::ffi::OsStr;
use std::fmt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::ExternalError;

/// Which of the three protocol commands a command line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Setup,
    Writer,
    Checker,
    /// Protocol v1.1: one checker process per job, answering requests.
    CheckerServer,
}

impl Role {
    /// The flag the user gives this command with; errors name it.
    pub fn flag(self) -> &'static str {
        match self {
            Role::Setup => "--setup",
            Role::Writer => "--writer",
            Role::Checker => "--checker",
            Role::CheckerServer => "--checker-server",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Setup => "setup",
            Role::Writer => "writer",
            Role::Checker => "checker",
            Role::CheckerServer => "checker server",
        })
    }
}

/// One command as the user gave it, and the argv crashlab will exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandLine {
    pub role: Role,
    /// The string exactly as given (what replay lines and reports print).
    pub text: String,
    /// Run `sh -c text` instead of splitting `text` into words.
    pub shell: bool,
    /// The program's absolute path, found once (as `execvp` would, but
    /// relative to crashlab's working directory, not the trial directory):
    /// no PATH search per trial.
    program: PathBuf,
    /// Its argv: the program as the user named it (made absolute if it was a
    /// relative path, which would mislead in the trial directory), then its
    /// arguments.
    argv: Vec<String>,
}

impl CommandLine {
    /// Split `text` into words and check that its program can be found, so
    /// a typo fails before any trial, naming the flag.
    pub fn parse(role: Role, text: &str, shell: bool) -> Result<CommandLine, ExternalError> {
        let bad = |reason: String| ExternalError::BadCommand { flag: role.flag(), text: text.to_owned(), reason };
        if text.trim().is_empty() {
            return Err(bad("the command is empty".into()));
        }
        let mut argv = if shell {
            vec!["sh".to_owned(), "-c".to_owned(), text.to_owned()]
        } else {
            shell_words::split(text).map_err(|e| bad(format!("cannot split it into words: {e}")))?
        };
        if argv.is_empty() {
            return Err(bad("the command is empty".into()));
        }
        let program = resolve_program(&argv[0]).map_err(bad)?;
        if argv[0].contains('/') {
            argv[0] = program.to_string_lossy().into_owned();
        }
        Ok(CommandLine { role, text: text.to_owned(), shell, program, argv })
    }

    /// This command run by `program` with `prefix` before it: the argv
    /// becomes `program prefix... PATH ARGV0 ARGS...` (this command's
    /// absolute path, then its own argv), while its role and text stay the
    /// user's, so every error still names the flag and the command given.
    /// How an `enospc` trial starts its writer under the capacity helper.
    pub(crate) fn wrapped(&self, program: &Path, prefix: &[String]) -> CommandLine {
        let mut argv = vec![program.to_string_lossy().into_owned()];
        argv.extend(prefix.iter().cloned());
        argv.push(self.program.to_string_lossy().into_owned());
        argv.extend(self.argv.iter().cloned());
        CommandLine { role: self.role, text: self.text.clone(), shell: self.shell, program: program.to_owned(), argv }
    }

    /// The program that is executed, as the user named it.
    pub fn program(&self) -> &str {
        &self.argv[0]
    }

    /// Its absolute path.
    pub fn program_path(&self) -> &Path {
        &self.program
    }

    pub fn argv(&self) -> &[String] {
        &self.argv
    }

    /// A `Command` for this command line with `cwd` as its working
    /// directory, `env` added to crashlab's environment (other `CRASHLAB_*`
    /// variables removed, so an outer run cannot leak into an inner one)
    /// and standard input empty. Callers add their own stdio and hooks.
    pub fn command(&self, cwd: &Path, env: &[(&str, &OsStr)]) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg0(&self.argv[0]).args(&self.argv[1..]).current_dir(cwd).stdin(std::process::Stdio::null());
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("CRASHLAB_") {
                cmd.env_remove(name);
            }
        }
        for (name, value) in env {
            cmd.env(name, value);
        }
        cmd
    }
}

/// Find the program the way `execvp` will, but relative to crashlab's
/// working directory rather than the trial directory.
fn resolve_program(word: &str) -> Result<PathBuf, String> {
    if word.contains('/') {
        let path = Path::new(word);
        let absolute = if path.is_absolute() {
            path.to_owned()
        } else {
            std::env::current_dir().map_err(|e| format!("cannot read the working directory: {e}"))?.join(path)
        };
        check_executable(&absolute).map_err(|e| format!("program `{word}` {e}"))?;
        return Ok(absolute);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = std::env::split_paths(&path);
    let found = dirs.find_map(|dir| {
        let candidate = dir.join(word);
        check_executable(&candidate).is_ok().then_some(candidate)
    });
    let found = found.ok_or_else(|| format!("program `{word}` not found in PATH"))?;
    // A relative PATH entry would be resolved in the trial directory.
    if found.is_absolute() {
        Ok(found)
    } else {
        std::env::current_dir().map(|d| d.join(found)).map_err(|e| format!("cannot read the working directory: {e}"))
    }
}

fn check_executable(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot be used: {} ({e})", path.display()))?;
    if !meta.is_file() {
        return Err(format!("is not a file: {}", path.display()));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!("is not executable: {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_like_a_shell_without_running_one() {
        let c = CommandLine::parse(Role::Writer, "sh -c 'echo a; echo b' \"x y\" z\\ w", false).unwrap();
        assert_eq!(c.argv(), ["sh", "-c", "echo a; echo b", "x y", "z w"]);
        assert!(c.program_path().is_absolute() && c.program_path().ends_with("sh"), "{:?}", c.program_path());
        assert_eq!(c.text, "sh -c 'echo a; echo b' \"x y\" z\\ w");
        let s = CommandLine::parse(Role::Checker, "test -f $CRASHLAB_DIR/x", true).unwrap();
        assert_eq!(s.argv(), ["sh", "-c", "test -f $CRASHLAB_DIR/x"]);
    }

    #[test]
    fn bad_commands_name_the_flag() {
        let e = CommandLine::parse(Role::Checker, "  ", false).unwrap_err().to_string();
        assert!(e.starts_with("--checker"), "{e}");
        let e = CommandLine::parse(Role::Writer, "echo 'unterminated", false).unwrap_err().to_string();
        assert!(e.contains("--writer") && e.contains("cannot split"), "{e}");
        let e = CommandLine::parse(Role::Setup, "no-such-program-crashlab-xyz arg", false).unwrap_err().to_string();
        assert!(e.contains("--setup") && e.contains("not found in PATH"), "{e}");
        let e = CommandLine::parse(Role::Writer, "./no/such/writer", false).unwrap_err().to_string();
        assert!(e.contains("./no/such/writer"), "{e}");
    }

    #[test]
    fn programs_must_be_executable_and_relative_paths_become_absolute() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let prog = dir.path().join("w");
        std::fs::write(&prog, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
        let c = CommandLine::parse(Role::Writer, &format!("{} --n 3", prog.display()), false).unwrap();
        assert_eq!(c.argv(), [prog.to_str().unwrap(), "--n", "3"]);
        std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = CommandLine::parse(Role::Writer, prog.to_str().unwrap(), false).unwrap_err().to_string();
        assert!(e.contains("not executable"), "{e}");
        // cargo runs unit tests in the package root: a relative path is
        // resolved there, not in the trial directory.
        let e = CommandLine::parse(Role::Writer, "./src/lib.rs", false).unwrap_err().to_string();
        let absolute = std::env::current_dir().unwrap().join("./src/lib.rs");
        assert!(e.contains(&format!("not executable: {}", absolute.display())), "{e}");
    }
}
