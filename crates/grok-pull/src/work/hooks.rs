//! The `[pull]` hooks: `post_update_hook` (after each repository that
//! changed, its path as the last argument), `post_clone_complete_hook`
//! (once a batch of new clones is done, their paths on stdin) and
//! `post_work_complete_hook` (when the work queue empties). Each option may
//! hold several commands, one per line, split like a POSIX shell would
//! (no shell runs them).
//!
//! Each command runs in its own process group and may run for `[pull]
//! hook_timeout`; past it the whole group is killed and one error line
//! says so. What hooks print is kept up to [`KEPT_OUTPUT`] bytes each.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tracing::{debug, error, info, warn};

/// How much of a hook's stdout and of its stderr is kept for the log.
pub const KEPT_OUTPUT: usize = 64 * 1024;

/// Output for the log: what was kept, trimmed, and the full size when
/// more was printed.
fn kept_text(head: &[u8], total: u64) -> String {
    let text = String::from_utf8_lossy(head).trim().to_string();
    if total > head.len() as u64 {
        format!("{text}\u{2026} ({total} bytes)")
    } else {
        text
    }
}

/// Why a configured hook line is not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Quotes that do not close.
    #[error("cannot parse {0:?}")]
    Unparsable(String),
    /// Nothing but whitespace.
    #[error("empty command")]
    Empty,
    /// The program is missing or not executable.
    #[error("{0} is not executable")]
    NotExecutable(String),
}

/// Turn one configured line into argv, or say why not.
fn argv(line: &str) -> Result<Vec<String>, Error> {
    let expanded = grokmirror::config::expand_user(line.trim());
    let expanded = expanded.to_string_lossy();
    let args = shlex::split(&expanded).ok_or_else(|| Error::Unparsable(line.to_string()))?;
    let Some(program) = args.first() else {
        return Err(Error::Empty);
    };
    if nix::unistd::access(Path::new(program), nix::unistd::AccessFlags::X_OK).is_err() {
        return Err(Error::NotExecutable(program.clone()));
    }
    Ok(args)
}

/// Run every command of a hook option, with `extra_arg` appended and
/// `stdin` fed in; problems are logged, never fatal.
async fn run_all(
    option: &str,
    prefix: &str,
    lines: &[String],
    extra_arg: Option<&Path>,
    stdin: Option<&[u8]>,
    timeout: Duration,
) {
    for line in lines {
        let mut args = match argv(line) {
            Ok(a) => a,
            Err(why) => {
                warn!("{option} {line:?} skipped: {why}");
                continue;
            }
        };
        if let Some(a) = extra_arg {
            args.push(a.to_string_lossy().into_owned());
        }
        info!("{prefix}: {}", args.join(" "));
        let mut cmd = tokio::process::Command::new(&args[0]);
        cmd.args(&args[1..])
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                warn!("{option} {}: cannot start: {e}", args[0]);
                continue;
            }
        };
        // Leaving early (the timeout, our own shutdown) kills the group.
        let mut group = crate::work::gitio::GroupKiller(child.id());
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let data = data.to_vec();
            // A hook that never reads its stdin must not block us.
            tokio::spawn(async move {
                let _ = pipe.write_all(&data).await;
            });
        }
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let stdout = tokio::spawn(crate::work::piped::read_head(stdout, KEPT_OUTPUT));
        let stderr = tokio::spawn(crate::work::piped::read_head(stderr, KEPT_OUTPUT));
        // Its output is part of the run: a hook that exits but leaves a
        // process holding its stdout open is still running.
        let run = async {
            let status = child.wait().await;
            let out = stdout.await.unwrap_or_default();
            let err = stderr.await.unwrap_or_default();
            (status, out, err)
        };
        let (status, (out_head, out_total), (err_head, err_total)) =
            match tokio::time::timeout(timeout, run).await {
                Ok(done) => done,
                Err(_) => {
                    drop(group);
                    let _ = child.wait().await;
                    error!(
                        "{option} {} ran for more than {}s, the [pull] hook_timeout; killed it",
                        args[0],
                        timeout.as_secs()
                    );
                    continue;
                }
            };
        group.0 = None;
        match status {
            Ok(status) => {
                let stdout = kept_text(&out_head, out_total);
                let stderr = kept_text(&err_head, err_total);
                if !stderr.is_empty() {
                    warn!("Hook Stderr ({}): {}", args[0], stderr);
                }
                if !stdout.is_empty() {
                    info!("Hook Stdout ({}): {}", args[0], stdout);
                }
                if !status.success() {
                    warn!("{option} {} exited with {}", args[0], status);
                } else {
                    debug!("{option} {} done", args[0]);
                }
            }
            Err(e) => warn!("{option} {}: {e}", args[0]),
        }
    }
}

/// `post_update_hook`: each command with the repository's full path last.
pub async fn post_update(lines: &[String], repo: &Path, timeout: Duration) {
    if !lines.is_empty() {
        run_all(
            "post_update_hook",
            "     hook",
            lines,
            Some(repo),
            None,
            timeout,
        )
        .await;
    }
}

/// `post_clone_complete_hook`: the fresh clones' full paths on stdin, one
/// per line.
pub async fn post_clone_complete(lines: &[String], clones: &[PathBuf], timeout: Duration) {
    if lines.is_empty() || clones.is_empty() {
        return;
    }
    let mut stdin = String::new();
    for c in clones {
        stdin.push_str(&c.to_string_lossy());
        stdin.push('\n');
    }
    run_all(
        "post_clone_complete_hook",
        " inithook",
        lines,
        None,
        Some(stdin.as_bytes()),
        timeout,
    )
    .await;
}

/// `post_work_complete_hook`: no arguments.
pub async fn post_work_complete(lines: &[String], timeout: Duration) {
    if !lines.is_empty() {
        run_all(
            "post_work_complete_hook",
            " workhook",
            lines,
            None,
            None,
            timeout,
        )
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_a_shell() {
        let args = argv("/bin/echo 'a b' \"c\\\"d\"  e").unwrap();
        assert_eq!(args, vec!["/bin/echo", "a b", "c\"d", "e"]);
        assert!(argv("/nonexistent/hook x")
            .unwrap_err()
            .to_string()
            .contains("not executable"));
        assert!(argv("/bin/echo 'unclosed").is_err());
    }
}
