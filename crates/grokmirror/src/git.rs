//! Running the `git` command-line tool.
//!
//! Anything that writes objects (fetch, repack, fsck, prune) goes through the
//! real `git`, the tool operators trust. The binary is `$GITBIN` when set (the
//! variable grokmirror honours), otherwise `git` from `PATH`.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};

/// Environment variables that git sets for hooks and that would redirect a
/// child git away from the repository we name with `--git-dir`.
const REPO_LOCATION_VARS: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_QUARANTINE_PATH",
    "GIT_NAMESPACE",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
];

/// A failed git invocation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// git could not be started at all.
    #[error("cannot run {bin}: {cause} (is git installed? set GITBIN to its path)")]
    Spawn {
        /// The binary we tried.
        bin: PathBuf,
        /// The underlying error.
        cause: io::Error,
    },
    /// git ran and exited non-zero.
    #[error("git {args} failed in {repo} (exit {code}): {stderr}")]
    Failed {
        /// The arguments, space-separated.
        args: String,
        /// The repository (or `-` when none).
        repo: String,
        /// Exit code, or -1 when killed by a signal.
        code: i32,
        /// The last lines of stderr.
        stderr: String,
    },
    /// `git --version` printed something we could not parse.
    #[error("cannot parse git version from {0:?}")]
    Version(String),
    /// The run was asked to stop ([`crate::stop`]): git was not started,
    /// or was told to stop.
    #[error("git {args} not run or not finished: stopping")]
    Stopped {
        /// The arguments, space-separated.
        args: String,
    },
}

/// What a finished git process printed.
#[derive(Debug, Clone)]
pub struct GitOutput {
    /// Exit status.
    pub status: ExitStatus,
    /// Raw standard output.
    pub stdout: Vec<u8>,
    /// Raw standard error.
    pub stderr: Vec<u8>,
}

impl GitOutput {
    /// Whether git exited 0.
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// The exit code, -1 when killed by a signal.
    pub fn code(&self) -> i32 {
        self.status.code().unwrap_or(-1)
    }

    /// Standard output as text, trailing whitespace trimmed (the way
    /// grokmirror strips command output).
    pub fn stdout_str(&self) -> String {
        String::from_utf8_lossy(&self.stdout).trim().to_string()
    }

    /// Standard error as text, surrounding whitespace trimmed.
    pub fn stderr_str(&self) -> String {
        String::from_utf8_lossy(&self.stderr).trim().to_string()
    }
}

/// A git version, for feature checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GitVersion(pub u32, pub u32, pub u32);

impl fmt::Display for GitVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// What becomes of a child's standard output.
#[derive(Debug, Clone, Copy)]
enum Stdout {
    /// Kept in [`GitOutput::stdout`].
    Capture,
    /// Counted and dropped; the child is killed once more than this many
    /// bytes came.
    Count(u64),
}

/// Read `from` to its end or until more than `limit` bytes came; how many
/// did.
fn count_up_to(from: &mut impl io::Read, limit: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => {
                total += n as u64;
                if total > limit {
                    return Ok(total);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// How to run git.
#[derive(Debug, Clone)]
pub struct Git {
    bin: PathBuf,
}

impl Default for Git {
    fn default() -> Self {
        Git::from_env()
    }
}

impl Git {
    /// `$GITBIN` if set and non-empty, otherwise `git` from `PATH`.
    pub fn from_env() -> Git {
        match std::env::var_os("GITBIN") {
            Some(bin) if !bin.is_empty() => Git { bin: bin.into() },
            _ => Git { bin: "git".into() },
        }
    }

    /// Use a specific binary.
    pub fn with_binary(bin: impl Into<PathBuf>) -> Git {
        Git { bin: bin.into() }
    }

    /// The binary this runner starts.
    pub fn binary(&self) -> &Path {
        &self.bin
    }

    /// A `Command` for `git --no-pager [--git-dir REPO] ARGS...` with an
    /// environment that can't redirect it elsewhere and can't prompt.
    pub fn command<I, S>(&self, repo: Option<&Path>, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("--no-pager");
        if let Some(repo) = repo {
            let mut flag = OsString::from("--git-dir=");
            flag.push(repo.as_os_str());
            cmd.arg(flag);
        }
        cmd.args(args);
        for var in REPO_LOCATION_VARS {
            cmd.env_remove(var);
        }
        // Never wait for a password on a terminal nobody watches; parse
        // messages in one language.
        cmd.env("GIT_TERMINAL_PROMPT", "0");
        cmd.env("LC_ALL", "C");
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Run git to completion, capturing its output. A non-zero exit is not an
    /// error here; see [`Git::run_ok`].
    pub fn run<I, S>(&self, repo: Option<&Path>, args: I) -> Result<GitOutput, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_with_input(repo, args, None)
    }

    /// Like [`Git::run`], feeding `input` on standard input.
    pub fn run_with_input<I, S>(
        &self,
        repo: Option<&Path>,
        args: I,
        input: Option<&[u8]>,
    ) -> Result<GitOutput, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_inner(repo, args, input, Stdout::Capture)
            .map(|(out, _)| out)
    }

    /// Like [`Git::run_with_input`], but standard output is only counted,
    /// never held: for output that may be large (a pack on `--stdout`)
    /// when only its size matters. The returned output's `stdout` is empty.
    /// Once more than `limit` bytes came, git is killed (its status then
    /// says so) and the count returned is over `limit`.
    pub fn run_counting_stdout<I, S>(
        &self,
        repo: Option<&Path>,
        args: I,
        input: Option<&[u8]>,
        limit: u64,
    ) -> Result<(GitOutput, u64), Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_inner(repo, args, input, Stdout::Count(limit))
    }

    /// Run git to completion with `input` on stdin, stdout kept or counted.
    fn run_inner<I, S>(
        &self,
        repo: Option<&Path>,
        args: I,
        input: Option<&[u8]>,
        stdout: Stdout,
    ) -> Result<(GitOutput, u64), Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let stopped = || Error::Stopped {
            args: args
                .iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" "),
        };
        if crate::stop::requested().is_some() {
            return Err(stopped());
        }
        let mut cmd = self.command(repo, &args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        if input.is_some() {
            cmd.stdin(Stdio::piped());
        }
        if crate::stop::groups() {
            use std::os::unix::process::CommandExt as _;
            cmd.process_group(0);
        }
        let spawn_err = |cause| Error::Spawn {
            bin: self.bin.clone(),
            cause,
        };
        let child = cmd.spawn().map_err(spawn_err)?;
        let pid = child.id();
        let running = crate::stop::started(pid);
        let out = Self::wait(child, input, stdout);
        crate::stop::finished(pid);
        let out = out.map_err(spawn_err)?;
        if !running || (crate::stop::requested().is_some() && !out.0.success()) {
            return Err(stopped());
        }
        Ok(out)
    }

    /// Feed `input` (when given) to `child` and wait for its output, with
    /// its stdout kept or only counted.
    fn wait(
        mut child: std::process::Child,
        input: Option<&[u8]>,
        stdout: Stdout,
    ) -> io::Result<(GitOutput, u64)> {
        let writer = input.map(|data| {
            let mut stdin = child.stdin.take().expect("stdin was piped");
            let data = data.to_vec();
            // Write from a thread so a git that fills its stdout pipe before
            // reading all of stdin can't deadlock us.
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = stdin.write_all(&data);
            })
        });
        let out = match stdout {
            Stdout::Capture => {
                let out = child.wait_with_output()?;
                let len = out.stdout.len() as u64;
                let out = GitOutput {
                    status: out.status,
                    stdout: out.stdout,
                    stderr: out.stderr,
                };
                (out, len)
            }
            Stdout::Count(limit) => {
                let mut err = child.stderr.take().expect("stderr was piped");
                let errors = std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let _ = io::Read::read_to_end(&mut err, &mut buf);
                    buf
                });
                let mut pipe = child.stdout.take().expect("stdout was piped");
                let len = count_up_to(&mut pipe, limit);
                if len.as_ref().is_ok_and(|n| *n > limit) {
                    let _ = child.kill();
                }
                drop(pipe);
                let status = child.wait()?;
                let out = GitOutput {
                    status,
                    stdout: Vec::new(),
                    stderr: errors.join().unwrap_or_default(),
                };
                (out, len?)
            }
        };
        if let Some(w) = writer {
            let _ = w.join();
        }
        Ok(out)
    }

    /// Run git and turn a non-zero exit into [`Error::Failed`].
    pub fn run_ok<I, S>(&self, repo: Option<&Path>, args: I) -> Result<GitOutput, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let out = self.run(repo, &args)?;
        if out.success() {
            Ok(out)
        } else {
            Err(failed(repo, &args, &out))
        }
    }

    /// The version of the git binary.
    pub fn version(&self) -> Result<GitVersion, Error> {
        let out = self.run_ok(None, ["--version"])?;
        parse_version(&out.stdout_str())
    }
}

/// Build a [`Error::Failed`] from a finished process.
pub fn failed<S: AsRef<OsStr>>(repo: Option<&Path>, args: &[S], out: &GitOutput) -> Error {
    let stderr = out.stderr_str();
    // The last few lines carry the reason; the rest is progress noise.
    let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Error::Failed {
        args: args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" "),
        repo: repo
            .map(|r| r.display().to_string())
            .unwrap_or_else(|| "-".into()),
        code: out.code(),
        stderr: tail.join(" / "),
    }
}

/// Parse `git version 2.47.3` (and vendor suffixes like `2.39.5.windows.1`
/// or `2.45.0.rc1`).
pub fn parse_version(text: &str) -> Result<GitVersion, Error> {
    let word = text
        .split_whitespace()
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .ok_or_else(|| Error::Version(text.to_string()))?;
    let mut nums = word.split('.').map(|p| {
        p.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u32>()
            .unwrap_or(0)
    });
    let major = nums
        .next()
        .ok_or_else(|| Error::Version(text.to_string()))?;
    Ok(GitVersion(
        major,
        nums.next().unwrap_or(0),
        nums.next().unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_stdout_is_as_long_as_the_captured_one_and_not_kept() {
        let git = Git::from_env();
        // hash-object reads stdin and prints one line; a missing option
        // fails with usage text on stderr.
        let input = b"some blob\n";
        let args = ["hash-object", "--stdin"];
        let kept = git.run_with_input(None, args, Some(input)).unwrap();
        let (counted, len) = git
            .run_counting_stdout(None, args, Some(input), 1 << 20)
            .unwrap();
        assert!(kept.success() && counted.success());
        assert_eq!(len, kept.stdout.len() as u64);
        assert_eq!(len, 41);
        assert!(counted.stdout.is_empty());
        let (failed, len) = git
            .run_counting_stdout(None, ["hash-object", "--no-such-option"], None, 1 << 20)
            .unwrap();
        assert!(!failed.success());
        assert_eq!(len, 0);
        assert!(
            failed.stderr_str().contains("usage"),
            "{}",
            failed.stderr_str()
        );
        // Endless output (an alias running `yes`): git is stopped once the
        // limit is passed, not read for ever.
        let (cut, len) = git
            .run_counting_stdout(None, ["-c", "alias.endless=!yes", "endless"], None, 1 << 20)
            .unwrap();
        assert!(!cut.success());
        assert!(len > 1 << 20 && len <= (1 << 20) + 64 * 1024, "{len}");
    }

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("git version 2.47.3").unwrap(),
            GitVersion(2, 47, 3)
        );
        assert_eq!(
            parse_version("git version 2.39.5.windows.1").unwrap(),
            GitVersion(2, 39, 5)
        );
        assert_eq!(
            parse_version("git version 2.45.0.rc1").unwrap(),
            GitVersion(2, 45, 0)
        );
        assert!(parse_version("nope").is_err());
    }

    #[test]
    fn runs_git() {
        let v = Git::from_env().version().unwrap();
        assert!(v >= GitVersion(2, 0, 0));
        let err = Git::with_binary("/nonexistent/git").version().unwrap_err();
        assert!(err.to_string().contains("/nonexistent/git"));
    }
}
