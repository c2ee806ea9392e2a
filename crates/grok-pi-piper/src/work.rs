//! Tracking what was piped and piping the rest.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use grokmirror::git::Git;
use grokmirror::lock::{self, Wait};
use grokmirror::tree::fsutil;
use tracing::{debug, error, info, warn};

/// The file in the repository holding the id of the last commit piped (no
/// newline), the one grokmirror's pi-piper keeps.
pub const STATE_FILE: &str = "pi-piper.latest";

/// The branch public-inbox writes its messages to.
const BRANCH: &str = "master";

/// One run over one repository.
#[derive(Debug, Clone)]
pub struct Piper {
    /// How to run git.
    pub git: Git,
    /// The public-inbox epoch repository (absolute).
    pub repo: PathBuf,
    /// The command messages are piped to, split into words.
    pub command: Vec<String>,
    /// Show what would be piped, change nothing.
    pub dry_run: bool,
    /// Cut history below the newest piped commit afterwards.
    pub shallow: bool,
    /// Pipe this many of the newest messages, whatever was piped before.
    pub pipe_last: Option<u64>,
}

/// Where the piping starts.
enum Start {
    /// After this commit (what the state file says).
    After(String),
    /// The newest this many.
    Last(u64),
}

impl Piper {
    fn state_file(&self) -> PathBuf {
        self.repo.join(STATE_FILE)
    }

    /// Pipe what is new; the exit status (1 when the command failed).
    pub fn run(&self) -> anyhow::Result<i32> {
        info!("Checking {}", self.repo.display());
        let program = fsutil::resolve_program(&self.command[0]).ok_or_else(|| {
            anyhow::anyhow!(
                "cannot execute {} (pipe = {}); install it or fix pipe in the config",
                self.command[0],
                self.command.join(" ")
            )
        })?;
        if !self.repo.join("objects").is_dir() {
            anyhow::bail!(
                "{} is not a git repository; pass the full path of a public-inbox epoch (.../git/N.git)",
                self.repo.display()
            );
        }
        // Two pipers on one repository (cron and a hook) take turns, so
        // the second sees what the first recorded.
        let state = self.state_file();
        let _turn = lock::acquire(&lock::file_lock_path(&state), Wait::Forever)
            .with_context(|| format!("cannot lock {}", state.display()))?;
        let recorded = match std::fs::read_to_string(&state) {
            Ok(text) => Some(text.trim().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", state.display())),
        };
        let Some(recorded) = recorded else {
            if self.dry_run {
                info!(
                    "Would have set up piper for {} [DRYRUN]",
                    self.repo.display()
                );
                return Ok(grokmirror_cli::EXIT_OK);
            }
            self.start_tracking()?;
            return Ok(grokmirror_cli::EXIT_OK);
        };
        let start = match self.pipe_last {
            Some(n) => Start::Last(n),
            None if self.is_on_master(&recorded) => Start::After(recorded),
            None => {
                // History was rewritten (public-inbox purges do that): the
                // recorded commit is gone from master. Start again from the
                // newest, as grokmirror does, rather than pipe old mail twice.
                error!(
                    "{} records {recorded:?}, which is not on {BRANCH} of {}; assuming the archive was rewritten, tracking restarts at its newest commit",
                    STATE_FILE,
                    self.repo.display()
                );
                if !self.dry_run {
                    self.start_tracking()?;
                }
                return Ok(grokmirror_cli::EXIT_OK);
            }
        };
        let commits = self.new_commits(&start)?;
        if commits.is_empty() {
            return Ok(grokmirror_cli::EXIT_OK);
        }
        info!("Processing {} commits", commits.len());
        let mut latest_good = None;
        let mut status = grokmirror_cli::EXIT_OK;
        for (id, subject) in &commits {
            let Some(message) = self.message(id) else {
                info!("Skipping {id}");
                continue;
            };
            if self.dry_run {
                info!("  piping: {id} ({} b) [DRYRUN]", message.len());
                debug!(" subject: {subject}");
                continue;
            }
            info!("  piping: {id} ({} b)", message.len());
            debug!(" subject: {subject}");
            if let Err(why) = pipe_to(&program, &self.command[1..], &message) {
                error!(
                    "{} failed on {id} of {}: {why}; it is piped again next run",
                    self.command.join(" "),
                    self.repo.display()
                );
                status = grokmirror_cli::EXIT_FAILURE;
                break;
            }
            // Recorded at once: an interrupted run never pipes a message twice.
            fsutil::write_atomic(&state, id.as_bytes())
                .with_context(|| format!("cannot write {}", state.display()))?;
            latest_good = Some(id.clone());
        }
        if let Some(id) = latest_good {
            info!("Wrote {}", state.display());
            if status == grokmirror_cli::EXIT_OK && self.shallow {
                self.reshallow(&id);
            }
        }
        Ok(status)
    }

    /// Record the newest commit on master as piped (the first run pipes
    /// nothing).
    fn start_tracking(&self) -> anyhow::Result<()> {
        info!("Initial setup for {}", self.repo.display());
        let out = self
            .git
            .run(Some(&self.repo), ["rev-list", "-n", "1", BRANCH])?;
        let latest = out.stdout_str();
        if !out.success() || latest.is_empty() {
            anyhow::bail!(
                "cannot list the commits of {BRANCH} in {}; is it a public-inbox repository?",
                self.repo.display()
            );
        }
        let state = self.state_file();
        fsutil::write_atomic(&state, latest.as_bytes())
            .with_context(|| format!("cannot write {}", state.display()))?;
        if self.shallow {
            self.reshallow(&latest);
        }
        Ok(())
    }

    /// Whether `id` is a commit that master contains.
    fn is_on_master(&self, id: &str) -> bool {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        let spec = format!("{id}^{{commit}}");
        let known = self
            .git
            .run(
                Some(&self.repo),
                ["rev-parse", "-q", "--verify", spec.as_str()],
            )
            .is_ok_and(|o| o.success());
        known
            && self
                .git
                .run(
                    Some(&self.repo),
                    ["merge-base", "--is-ancestor", id, BRANCH],
                )
                .is_ok_and(|o| o.success())
    }

    /// The commits to pipe, oldest first, with their subjects.
    fn new_commits(&self, start: &Start) -> anyhow::Result<Vec<(String, String)>> {
        let range = match start {
            Start::After(id) => vec![format!("{id}..")],
            Start::Last(n) => vec!["-n".to_string(), n.to_string()],
        };
        let mut args = vec![
            "rev-list".to_string(),
            "--pretty=oneline".into(),
            "--reverse".into(),
        ];
        args.extend(range);
        args.push(BRANCH.into());
        let out = self.git.run_ok(Some(&self.repo), &args)?;
        Ok(out
            .stdout_str()
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| match l.split_once(' ') {
                Some((id, subject)) => (id.to_string(), subject.to_string()),
                None => (l.to_string(), String::new()),
            })
            .collect())
    }

    /// The message a commit adds (its file `m`); `None` for commits without
    /// one (public-inbox's deletions).
    fn message(&self, id: &str) -> Option<Vec<u8>> {
        let spec = format!("{id}:m");
        match self.git.run(Some(&self.repo), ["show", spec.as_str()]) {
            Ok(out) if out.success() => Some(out.stdout),
            Ok(out) => {
                debug!("no message in {id}: {}", out.stderr_str());
                None
            }
            Err(e) => {
                warn!("cannot read {id} in {}: {e}", self.repo.display());
                None
            }
        }
    }

    /// Make `id` the repository's shallow boundary and drop what is below.
    fn reshallow(&self, id: &str) {
        let shallow = self.repo.join("shallow");
        if let Err(e) = fsutil::write_atomic(&shallow, format!("{id}\n").as_bytes()) {
            warn!("cannot write {}: {e}", shallow.display());
            return;
        }
        info!("   prune: {}", self.repo.display());
        match self.git.run(Some(&self.repo), ["gc", "--prune=now"]) {
            Ok(out) if out.success() => {}
            Ok(out) => warn!(
                "git gc --prune=now failed in {}: {}",
                self.repo.display(),
                out.stderr_str()
            ),
            Err(e) => warn!("{e}"),
        }
    }
}

/// Why piping one message failed.
#[derive(Debug, thiserror::Error)]
pub enum PipeError {
    /// The command could not be started.
    #[error("cannot start it: {0}")]
    Start(#[source] std::io::Error),
    /// Waiting for the command failed.
    #[error("cannot wait for it: {0}")]
    Wait(#[source] std::io::Error),
    /// The command exited unsuccessfully; `last_line` is the last line it
    /// wrote on stderr, if any.
    #[error("{status}{}", if last_line.is_empty() { String::new() } else { format!(": {last_line}") })]
    Exited {
        /// How it exited.
        status: std::process::ExitStatus,
        /// The last line of its stderr.
        last_line: String,
    },
}

/// Run the command with `message` on its stdin.
fn pipe_to(program: &Path, args: &[String], message: &[u8]) -> Result<(), PipeError> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(PipeError::Start)?;
    let mut stdin = child.stdin.take().expect("stdin was piped");
    let message = message.to_vec();
    // Written from a thread: a command that prints before it reads must
    // not block us.
    let writer = std::thread::spawn(move || {
        // A command that exits without reading everything is judged by its
        // exit status, not by the broken pipe.
        let _ = stdin.write_all(&message);
    });
    let out = child.wait_with_output().map_err(PipeError::Wait)?;
    let _ = writer.join();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        debug!("{}", stdout.trim());
    }
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last_line = stderr.trim().lines().last().unwrap_or("").to_string();
    Err(PipeError::Exited {
        status: out.status,
        last_line,
    })
}
