//! The `[pull]` hooks: `post_update_hook` (after each repository that
//! changed, its path as the last argument), `post_clone_complete_hook`
//! (once a batch of new clones is done, their paths on stdin) and
//! `post_work_complete_hook` (when the work queue empties). Each option may
//! hold several commands, one per line, split like a POSIX shell would
//! (no shell runs them).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tracing::{debug, info, warn};

/// Turn one configured line into argv, or say why not.
fn argv(line: &str) -> Result<Vec<String>, String> {
    let expanded = grokmirror::config::expand_user(line.trim());
    let expanded = expanded.to_string_lossy();
    let args = shlex::split(&expanded).ok_or_else(|| format!("cannot parse {line:?}"))?;
    let Some(program) = args.first() else {
        return Err("empty command".into());
    };
    if nix::unistd::access(Path::new(program), nix::unistd::AccessFlags::X_OK).is_err() {
        return Err(format!("{program} is not executable"));
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
            .stderr(Stdio::piped());
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                warn!("{option} {}: cannot start: {e}", args[0]);
                continue;
            }
        };
        if let (Some(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let data = data.to_vec();
            // A hook that never reads its stdin must not block us.
            tokio::spawn(async move {
                let _ = pipe.write_all(&data).await;
            });
        }
        match child.wait_with_output().await {
            Ok(out) => {
                let stdout = String::from_utf8_lossy(&out.stdout);
                let stderr = String::from_utf8_lossy(&out.stderr);
                if !stderr.trim().is_empty() {
                    warn!("Hook Stderr ({}): {}", args[0], stderr.trim());
                }
                if !stdout.trim().is_empty() {
                    info!("Hook Stdout ({}): {}", args[0], stdout.trim());
                }
                if !out.status.success() {
                    warn!("{option} {} exited with {}", args[0], out.status);
                } else {
                    debug!("{option} {} done", args[0]);
                }
            }
            Err(e) => warn!("{option} {}: {e}", args[0]),
        }
    }
}

/// `post_update_hook`: each command with the repository's full path last.
pub async fn post_update(lines: &[String], repo: &Path) {
    if !lines.is_empty() {
        run_all("post_update_hook", "     hook", lines, Some(repo), None).await;
    }
}

/// `post_clone_complete_hook`: the fresh clones' full paths on stdin, one
/// per line.
pub async fn post_clone_complete(lines: &[String], clones: &[PathBuf]) {
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
    )
    .await;
}

/// `post_work_complete_hook`: no arguments.
pub async fn post_work_complete(lines: &[String]) {
    if !lines.is_empty() {
        run_all("post_work_complete_hook", " workhook", lines, None, None).await;
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
            .contains("not executable"));
        assert!(argv("/bin/echo 'unclosed").is_err());
    }
}
