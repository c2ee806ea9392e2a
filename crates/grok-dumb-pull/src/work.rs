//! Fetching one repository's remotes, and what follows a change: the
//! fingerprint, the object storage, the post-update hook.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use grokmirror::config::glob::GlobList;
use grokmirror::git::Git;
use grokmirror::lock::{self, Wait};
use grokmirror::objstore::{self, FetchMethod};
use grokmirror::repo::{self};
use tracing::{debug, error, info, warn};

use crate::Settings;

/// What kind of remotes the repositories have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    /// Git remotes: `git remote update NAME --prune`.
    Git,
    /// Subversion remotes: `git svn fetch NAME` (`--all` for `*`).
    Svn,
}

/// How one repository went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Its refs changed.
    Updated,
    /// Fetched, nothing new.
    Unchanged,
    /// Not fetched, and that is fine: locked by somebody else, or no
    /// remotes to fetch.
    Skipped,
    /// Something failed (logged).
    Failed,
}

/// Fetch the remotes of `path` that `settings` asks for, then record what
/// changed.
pub fn pull_repo(git: &Git, path: &Path, settings: &Settings) -> Outcome {
    if !repo::is_bare_repo(path) {
        error!(
            "{} is not a bare git repository (it needs objects/, refs/ and HEAD); not fetched",
            path.display()
        );
        return Outcome::Failed;
    }
    let guard = match lock::acquire_repo(path, Wait::No) {
        Ok(Some(g)) => g,
        Ok(None) => {
            info!(
                "{} is locked; assuming another process is working on it, skipped",
                path.display()
            );
            return Outcome::Skipped;
        }
        Err(e) => {
            error!("cannot lock {}: {e}; not fetched", path.display());
            return Outcome::Failed;
        }
    };
    let before = match repo::computed_fingerprint(git, path) {
        Ok(fp) => fp,
        Err(e) => {
            error!("cannot list the refs of {}: {e}", path.display());
            return Outcome::Failed;
        }
    };
    let fetched = match settings.kind {
        RemoteKind::Svn => fetch_svn(git, path, &settings.remote_patterns),
        RemoteKind::Git => fetch_git(git, path, settings),
    };
    let fetched_ok = match fetched {
        Fetched::All => true,
        Fetched::SomeFailed => false,
        Fetched::NoRemotes => return Outcome::Skipped,
    };
    let after = match repo::computed_fingerprint(git, path) {
        Ok(fp) => fp,
        Err(e) => {
            error!(
                "cannot list the refs of {} after fetching: {e}",
                path.display()
            );
            return Outcome::Failed;
        }
    };
    let mut ok = fetched_ok;
    if let Some(fp) = &after {
        if let Err(e) = repo::write_fingerprint(path, fp) {
            error!(
                "cannot write {}: {e}; check permissions",
                path.join(repo::FINGERPRINT_FILE).display()
            );
            ok = false;
        }
    }
    if !update_objstore(git, path) {
        ok = false;
    }
    drop(guard);
    let changed = before != after;
    if changed {
        debug!("New revs found in {}", path.display());
        if let Some(hook) = &settings.post_update_hook {
            run_hook(hook, path);
        }
    } else {
        debug!("No new revs in {}", path.display());
    }
    match (ok, changed) {
        (false, _) => Outcome::Failed,
        (true, true) => Outcome::Updated,
        (true, false) => Outcome::Unchanged,
    }
}

/// What fetching the remotes did.
enum Fetched {
    /// Every matching remote was fetched.
    All,
    /// At least one fetch failed (logged).
    SomeFailed,
    /// The repository has no remotes at all.
    NoRemotes,
}

/// `git remote update NAME --prune` for every remote matching a pattern.
fn fetch_git(git: &Git, path: &Path, settings: &Settings) -> Fetched {
    let names = match git.run_ok(Some(path), ["remote"]) {
        Ok(out) => out
            .stdout_str()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect::<Vec<_>>(),
        Err(e) => {
            error!("cannot list the remotes of {}: {e}", path.display());
            return Fetched::SomeFailed;
        }
    };
    if names.is_empty() {
        info!("{} has no remotes; nothing to fetch", path.display());
        return Fetched::NoRemotes;
    }
    let mut all_ok = true;
    for pattern in settings.remotes.patterns() {
        let single = GlobList::new([pattern]);
        let matching: Vec<&String> = names.iter().filter(|n| single.is_match(n)).collect();
        if matching.is_empty() {
            info!("no remotes matching {pattern} in {}", path.display());
        }
        for name in matching {
            info!("Updating remote {name} in {}", path.display());
            let out = git.run(Some(path), ["remote", "update", name.as_str(), "--prune"]);
            all_ok &= report(path, &format!("git remote update {name}"), out);
        }
    }
    if all_ok {
        Fetched::All
    } else {
        Fetched::SomeFailed
    }
}

/// `git svn fetch NAME` for every pattern (`*` meaning `--all`).
fn fetch_svn(git: &Git, path: &Path, patterns: &[String]) -> Fetched {
    let mut all_ok = true;
    for pattern in patterns {
        let what = if pattern == "*" {
            "--all"
        } else {
            pattern.as_str()
        };
        info!("Running git svn fetch {what} in {}", path.display());
        let out = git.run(Some(path), ["svn", "fetch", what]);
        all_ok &= report(path, &format!("git svn fetch {what}"), out);
    }
    if all_ok {
        Fetched::All
    } else {
        Fetched::SomeFailed
    }
}

/// Log a git run's outcome; whether it succeeded.
fn report(
    path: &Path,
    what: &str,
    out: Result<grokmirror::git::GitOutput, grokmirror::git::Error>,
) -> bool {
    match out {
        Ok(out) if out.success() => {
            let err = out.stderr_str();
            if !err.is_empty() {
                debug!("{what} in {}: {err}", path.display());
            }
            true
        }
        Ok(out) => {
            let err = out.stderr_str();
            let last = err.lines().last().unwrap_or("no message");
            error!(
                "{what} failed in {} (exit {}): {last}",
                path.display(),
                out.code()
            );
            false
        }
        Err(e) => {
            error!("{what} in {}: {e}", path.display());
            false
        }
    }
}

/// Fetch the repository's new objects into its object storage, if it uses
/// one and its refs moved since the last time. `false` when that failed.
fn update_objstore(git: &Git, path: &Path) -> bool {
    let Some(obstrepo) = objstore::objstore_of(path) else {
        return true;
    };
    if !objstore::member_needs_fetch(&obstrepo, path) {
        return true;
    }
    let guard = match lock::acquire_repo(&obstrepo, Wait::No) {
        Ok(Some(g)) => g,
        Ok(None) => {
            info!(
                "{} is locked; the new objects of {} reach it on the next run",
                obstrepo.display(),
                path.display()
            );
            return true;
        }
        Err(e) => {
            error!("cannot lock {}: {e}", obstrepo.display());
            return false;
        }
    };
    // We hold the member's lock, so any method is safe; the porcelain
    // fetch needs no configuration to choose it.
    let result = objstore::fetch_member(git, &obstrepo, path, FetchMethod::Porcelain);
    drop(guard);
    match result {
        Ok(true) => {
            info!(" objstore: {} -> {}", path.display(), obstrepo.display());
            true
        }
        Ok(false) => {
            debug!(
                "{} is not a member of {}; not fetched into it",
                path.display(),
                obstrepo.display()
            );
            true
        }
        Err(e) => {
            error!(
                "cannot fetch {} into its object storage {}: {e}",
                path.display(),
                obstrepo.display()
            );
            false
        }
    }
}

/// Run the post-update hook with the repository's path, logging what it
/// prints. A hook that is not executable is a warning, as in grokmirror.
fn run_hook(hook: &Path, path: &Path) {
    let executable = std::fs::metadata(hook)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    if !executable {
        warn!(
            "post_update_hook {} is not executable; make it so or drop -u",
            hook.display()
        );
        return;
    }
    debug!("Running: {} {}", hook.display(), path.display());
    let out = Command::new(hook).arg(path).stdin(Stdio::null()).output();
    match out {
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let err = err.trim();
            if !err.is_empty() {
                warn!("Hook Stderr: {err}");
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let text = text.trim();
            if !text.is_empty() {
                info!("Hook Stdout: {text}");
            }
            if !out.status.success() {
                warn!(
                    "post_update_hook {} failed for {} ({})",
                    hook.display(),
                    path.display(),
                    out.status
                );
            }
        }
        Err(e) => warn!("cannot run post_update_hook {}: {e}", hook.display()),
    }
}
