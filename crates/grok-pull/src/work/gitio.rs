//! Running git from async jobs: the same sanitized command line as
//! [`grokmirror::git::Git`], run by tokio, and the fetch with its retries.
//!
//! Each git runs in a process group of its own. A Ctrl-C on the terminal
//! therefore reaches only grok-pull, which decides whether running fetches
//! may finish (see [`crate::engine`]); and an interrupted job kills the
//! whole group, so helpers git started (`upload-pack` for local origins,
//! `ssh`, `index-pack`) do not outlive it.

use std::ffi::OsStr;
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::time::Duration;

use grokmirror::git::{self, Git, GitOutput};
use tracing::{debug, info, warn};

/// Why a fetch failed, on its last try.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// git fetch exited non-zero: the lines of its stderr worth showing.
    #[error("{0}")]
    Failed(String),
    /// git fetch was still running after `[pull] fetch_timeout`.
    #[error(
        "git fetch did not finish within {0}s; killed (raise [pull] fetch_timeout \
         if transfers this long are expected)"
    )]
    TimedOut(u64),
    /// git could not be run at all.
    #[error(transparent)]
    Git(#[from] git::Error),
}

/// Extra environment for one git invocation.
pub type Env<'a> = &'a [(&'a str, &'a OsStr)];

/// Run git to completion; a non-zero exit is not an error here.
pub async fn run<I, S>(
    git: &Git,
    repo: Option<&Path>,
    args: I,
    env: Env<'_>,
) -> Result<GitOutput, git::Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut cmd = git.command(repo, args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    let child = cmd.spawn().map_err(|cause| git::Error::Spawn {
        bin: git.binary().to_path_buf(),
        cause,
    })?;
    let mut group = GroupKiller(child.id());
    let out = child.wait_with_output().await;
    group.0 = None;
    let out = out.map_err(|cause| git::Error::Spawn {
        bin: git.binary().to_path_buf(),
        cause,
    })?;
    Ok(GitOutput {
        status: out.status,
        stdout: out.stdout,
        stderr: out.stderr,
    })
}

/// Kills a process group when dropped before it was disarmed: the group
/// of a git whose job was interrupted. The group leader is not reaped
/// before this runs (tokio reaps dropped children later), so its id can't
/// have been reused.
pub(crate) struct GroupKiller(pub(crate) Option<u32>);

impl Drop for GroupKiller {
    fn drop(&mut self) {
        if let Some(pid) = self.0.take() {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Run git and turn a non-zero exit into an error.
pub async fn run_ok<I, S>(
    git: &Git,
    repo: Option<&Path>,
    args: I,
    env: Env<'_>,
) -> Result<GitOutput, git::Error>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = run(git, repo, &args, env).await?;
    if out.success() {
        Ok(out)
    } else {
        Err(git::failed(repo, &args, &out))
    }
}

/// Whether a line of fetch stderr is routine progress rather than a reason
/// for failure.
fn is_routine(line: &str) -> bool {
    line.starts_with("From ")
        || line.find("-> ").is_some_and(|i| i > 0)
        || line.starts_with("remote: warning:")
        || line.contains("ControlSocket")
}

/// The lines of a failed fetch's stderr worth showing.
pub fn failure_reason(out: &GitOutput) -> String {
    let text = out.stderr_str();
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !is_routine(l))
        .collect();
    let tail: Vec<&str> = lines.iter().rev().take(4).rev().copied().collect();
    if tail.is_empty() {
        format!("git fetch exited with {}", out.code())
    } else {
        tail.join(" / ")
    }
}

/// Fetch `remote` into `repo` (with `--prune`), trying up to `attempts`
/// times with a short pause between tries. Returns the last failure.
/// Each try that is still running after `limit` is killed (with
/// everything it started) and counts as failed: a transfer from a server
/// that stalls would otherwise hang its job forever (git has no timeout
/// of its own for git:// or ssh).
pub async fn fetch(
    git: &Git,
    repo: &Path,
    remote: &str,
    key: &str,
    attempts: u32,
    limit: Option<Duration>,
    env: Env<'_>,
) -> Result<(), Error> {
    let mut last = Error::Failed(String::new());
    for attempt in 1..=attempts.max(1) {
        if attempt > 1 {
            info!("  refetch: {key} (try #{attempt})");
            tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt - 1))).await;
        }
        let attempt_run = run(
            git,
            Some(repo),
            ["fetch", "--prune", "--quiet", remote],
            env,
        );
        let out = match limit {
            None => attempt_run.await,
            // Dropping the unfinished run kills its process group.
            Some(limit) => match tokio::time::timeout(limit, attempt_run).await {
                Ok(out) => out,
                Err(_) => {
                    last = Error::TimedOut(limit.as_secs());
                    warn!("    fetch: {key} failed (try #{attempt}): {last}");
                    continue;
                }
            },
        }?;
        if out.success() {
            let noise = out.stderr_str();
            if !noise.is_empty() {
                debug!("fetch {key}: {noise}");
            }
            return Ok(());
        }
        last = Error::Failed(failure_reason(&out));
        warn!("    fetch: {key} failed (try #{attempt}): {last}");
    }
    Err(last)
}
