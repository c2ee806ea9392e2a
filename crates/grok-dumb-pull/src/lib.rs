//! grok-dumb-pull: fetch the remotes of bare git repositories that no
//! manifest manages, compatible with grokmirror 2.x's `grok-dumb-pull`.
//!
//! Same flags and the same choice of repositories and remotes as the
//! reference; on top of it (as grok-pull does for the repositories it
//! mirrors) the fingerprint is kept current, new objects reach the
//! repository's object storage, and the exit status says whether every
//! repository was fetched.

#![warn(missing_docs)]

mod check;
pub mod cli;
mod work;

use std::path::{Path, PathBuf};

use clap::Parser;
use grokmirror::config::glob::GlobList;
use grokmirror::config::LogLevel;
use grokmirror::git::Git;
use grokmirror::tree::discovery::{self, WalkOptions};
use grokmirror::tree::fsutil;
use tracing::{debug, error, info};

pub use cli::Cli;
pub use work::{Outcome, RemoteKind};

/// What can stop grok-dumb-pull before it touches any repository.
#[derive(Debug, thiserror::Error)]
pub enum DumbPullError {
    /// `-s` was given but the git in use cannot run `git svn`.
    #[error(
        "-s needs git svn, which {git} cannot run ({why}); install git-svn for that git \
         (Debian: apt-get install git-svn, then GITBIN=/usr/bin/git) or set GITBIN to a git that has it"
    )]
    NoGitSvn {
        /// The git binary tried.
        git: String,
        /// What it said.
        why: String,
    },
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Fetch with `git svn fetch` instead of `git remote update`.
    pub kind: RemoteKind,
    /// Remote-name patterns (fnmatch); `*` when none were given.
    pub remotes: GlobList,
    /// The patterns as given, for `git svn fetch` (`*` means `--all`).
    pub remote_patterns: Vec<String>,
    /// Run after each repository whose refs changed.
    pub post_update_hook: Option<PathBuf>,
    /// Repositories or directories to search.
    pub paths: Vec<PathBuf>,
}

impl Settings {
    /// The settings the command line asks for.
    pub fn from_cli(cli: &Cli) -> Settings {
        let mut patterns = cli.remote_names.clone();
        if patterns.is_empty() {
            patterns.push("*".to_string());
        }
        Settings {
            kind: if cli.svn {
                RemoteKind::Svn
            } else {
                RemoteKind::Git
            },
            remotes: GlobList::new(patterns.iter().map(String::as_str)),
            remote_patterns: patterns,
            // `-u ''` is the reference's default: no hook.
            post_update_hook: cli
                .post_update_hook
                .clone()
                .filter(|p| !p.as_os_str().is_empty()),
            paths: cli.paths.clone(),
        }
    }
}

/// Parse the command line, run, and return the exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    grokmirror_cli::run_main("grok-dumb-pull", || run(&cli))
}

/// Run with parsed flags; `Ok` carries the exit status.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    if cli.config_check {
        return Ok(check::run(cli));
    }
    let _log = grokmirror_cli::init_logging(
        "dumb-pull",
        cli.verbose,
        cli.logfile.clone(),
        LogLevel::Info,
    )?;
    let settings = Settings::from_cli(cli);
    let git = Git::from_env();
    if settings.kind == RemoteKind::Svn {
        check_git_svn(&git)?;
    }
    let mut failed = 0usize;
    let mut updated = 0usize;
    let mut seen = 0usize;
    for entry in &settings.paths {
        let repos = match repos_of(entry) {
            Ok((repos, unreadable)) => {
                failed += unreadable;
                repos
            }
            Err(msg) => {
                error!("{msg}");
                failed += 1;
                continue;
            }
        };
        for repo in repos {
            seen += 1;
            match work::pull_repo(&git, &repo, &settings) {
                Outcome::Updated => updated += 1,
                Outcome::Unchanged | Outcome::Skipped => {}
                Outcome::Failed => failed += 1,
            }
        }
    }
    info!("{seen} repositories checked, {updated} updated, {failed} failed");
    Ok(if failed == 0 {
        grokmirror_cli::EXIT_OK
    } else {
        grokmirror_cli::EXIT_FAILURE
    })
}

/// The repositories one command-line path stands for: itself when it ends
/// in `.git`, otherwise every bare repository found below it, with the
/// number of directories that could not be searched (each logged).
fn repos_of(entry: &Path) -> Result<(Vec<PathBuf>, usize), String> {
    let abs = fsutil::absolute(entry);
    if entry.to_string_lossy().ends_with(".git") {
        if !abs.exists() {
            return Err(format!(
                "{} does not exist; pass the path of a bare repository or of a directory holding some",
                entry.display()
            ));
        }
        debug!("Found {}", abs.display());
        return Ok((vec![abs], 0));
    }
    if !abs.is_dir() {
        return Err(format!(
            "{} is not a directory; pass a directory to search for repositories, or a path ending in .git",
            entry.display()
        ));
    }
    debug!("Finding all git repos in {}", abs.display());
    let found = discovery::find_repos(&abs, &WalkOptions::default());
    for (dir, why) in &found.unreadable {
        error!(
            "cannot read {}: {why}; fix its permissions, its repositories were not fetched",
            dir.display()
        );
    }
    Ok((found.repos, found.unreadable.len()))
}

/// Make sure `git svn` runs, before any repository is touched.
fn check_git_svn(git: &Git) -> Result<(), DumbPullError> {
    let missing = |why: String| DumbPullError::NoGitSvn {
        git: git.binary().display().to_string(),
        why,
    };
    match git.run(None, ["svn", "--version"]) {
        Ok(out) if out.success() => Ok(()),
        Ok(out) => {
            let text = out.stderr_str();
            let first = text
                .lines()
                .next()
                .unwrap_or("exit status not 0")
                .to_string();
            Err(missing(first))
        }
        Err(e) => Err(missing(e.to_string())),
    }
}
