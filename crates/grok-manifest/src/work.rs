//! Reading the disk: the repositories named on the command line, the
//! manifest under its lock, the facts of each repository (a full walk of
//! the tree, or just the named ones), and fetching updated repositories
//! into their object storage.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use grokmirror::config::glob::GlobList;
use grokmirror::formats::manifest::{self, Manifest};
use grokmirror::formats::manifest_members::Partial;
use grokmirror::git::Git;
use grokmirror::lock::{self, FileLock};
use grokmirror::repo::inspect::{self, RepoFacts};
use grokmirror::tree::discovery::{self, Found, WalkOptions};
use grokmirror::tree::fsutil;
use grokmirror::{objstore, repo};
use grokmirror_cli::usage;
use rayon::prelude::*;
use tracing::{debug, error, info, warn};

use crate::progress;
use crate::settings::Settings;

/// A repository path named on the command line, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A real repository directory (real path).
    Repo(PathBuf),
    /// A symlink (its own path, made absolute).
    Symlink(PathBuf),
}

/// Resolve and check the paths named on the command line before anything
/// changes: each must be a bare repository (or a symlink) under the top
/// level.
pub fn resolve_targets(s: &Settings) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::new();
    for given in &s.paths {
        let abs = fsutil::absolute(given);
        let meta = std::fs::symlink_metadata(&abs).map_err(|e| {
            usage(format!(
                "repository {} cannot be read: {e}",
                given.display()
            ))
        })?;
        if meta.file_type().is_symlink() {
            targets.push(Target::Symlink(abs));
            continue;
        }
        let real = std::fs::canonicalize(&abs)
            .with_context(|| format!("cannot resolve {}", given.display()))?;
        if !repo::is_bare_repo(&real) {
            return Err(usage(format!(
                "{} is not a bare git repository (it needs objects/, refs/ and HEAD)",
                given.display()
            )));
        }
        if grokmirror::tree::key::manifest_key(&s.toplevel, &real).is_none() {
            return Err(usage(format!(
                "{} is not under the toplevel {}; pass -t or fix the path",
                given.display(),
                s.toplevel.display()
            )));
        }
        targets.push(Target::Repo(real));
    }
    Ok(targets)
}

/// The manifest keys of the repositories named, when only repositories
/// were (a symlink named changes entries anywhere: `None`).
pub fn repo_keys(s: &Settings, targets: &[Target]) -> Option<Vec<String>> {
    targets
        .iter()
        .map(|t| match t {
            Target::Repo(p) => grokmirror::tree::key::manifest_key(&s.toplevel, p),
            Target::Symlink(_) => None,
        })
        .collect()
}

/// Take the manifest lock and read the manifest, waiting for it to appear
/// when asked (letting other writers in while we wait). With `hook_keys`,
/// only the members holding those keys, when the file allows it.
pub fn lock_and_read(
    s: &Settings,
    hook_keys: Option<&[String]>,
) -> anyhow::Result<(FileLock, Loaded)> {
    let lock_path = lock::file_lock_path(&s.manifest);
    let mut said = false;
    loop {
        let guard = manifest::lock(&s.manifest)
            .with_context(|| format!("cannot lock manifest {}", s.manifest.display()))?;
        // Under the lock no other writer is mid-write: whatever temp files
        // are here were left by a killed run.
        let stale = fsutil::remove_stale_temps(&s.manifest);
        if stale > 0 {
            warn!(" manifest: removed {stale} temporary file(s) left by an interrupted run");
        }
        let kept = |e: manifest::Error| {
            anyhow::anyhow!(
                "{e}; it was left untouched: restore it from a backup, or delete it to have it regenerated"
            )
        };
        if let Some(keys) = hook_keys {
            if let Some(part) = Partial::open(&s.manifest, keys, s.pretty).map_err(kept)? {
                if part.total_entries() > 0 {
                    debug!(
                        "changing {} entries of {} in place",
                        part.manifest.len(),
                        s.manifest.display()
                    );
                    return Ok((guard, Loaded::Part(part)));
                }
            }
        }
        if !s.wait || s.manifest.exists() {
            let m = Manifest::read_local(&s.manifest).map_err(kept)?;
            return Ok((guard, Loaded::Whole(m)));
        }
        if grokmirror::stop::requested().is_some() {
            anyhow::bail!("stopped while waiting for {}", s.manifest.display());
        }
        if !said {
            info!(" manifest: manifest does not exist yet, waiting ...");
            said = true;
        }
        drop(guard);
        debug!("released {} while waiting", lock_path.display());
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The manifest as read for this run: whole, or (a hook on a large
/// gzipped one) only the members holding the named repositories' keys.
#[derive(Debug)]
pub enum Loaded {
    /// Every entry.
    Whole(Manifest),
    /// The members holding the keys asked for.
    Part(Partial),
}

impl Loaded {
    /// The entries to change: all of them, or the loaded members'.
    pub fn manifest_mut(&mut self) -> &mut Manifest {
        match self {
            Loaded::Whole(m) => m,
            Loaded::Part(p) => &mut p.manifest,
        }
    }

    /// Whether the manifest on disk has no entries.
    pub fn is_empty(&self) -> bool {
        match self {
            Loaded::Whole(m) => m.is_empty(),
            Loaded::Part(p) => p.total_entries() == 0,
        }
    }

    /// Write it back (atomically, the previous one kept on failure).
    pub fn write(self, s: &Settings) -> anyhow::Result<()> {
        match self {
            Loaded::Whole(m) => {
                crate::record::write(s, &m)?;
                // Freeing a large manifest entry by entry costs a hook a
                // few milliseconds for nothing: the process ends soon and
                // gives it all back at once.
                std::mem::forget(m);
                Ok(())
            }
            Loaded::Part(p) => {
                let changed = p.manifest.len();
                p.write(&s.manifest, s.pretty)?;
                debug!(
                    "wrote {} ({changed} entries changed in place)",
                    s.manifest.display()
                );
                Ok(())
            }
        }
    }
}

/// What looking at the repositories found.
#[derive(Default)]
pub struct Inspected {
    /// Each repository's facts (or why they could not be read), by path.
    pub facts: Vec<(PathBuf, anyhow::Result<RepoFacts>)>,
    /// Symlinks to repositories.
    pub symlinks: Vec<PathBuf>,
    /// Repositories left out for want of `git-daemon-export-ok`.
    pub unexported: Vec<PathBuf>,
}

/// Add the named repositories (those a full walk did not already
/// inspect) and symlinks to `found`.
pub fn inspect_targets(
    s: &Settings,
    git: &Git,
    targets: &[Target],
    use_now: bool,
    found: &mut Inspected,
) {
    let repos: Vec<PathBuf> = targets
        .iter()
        .filter_map(|t| match t {
            Target::Repo(p) => Some(p.clone()),
            Target::Symlink(_) => None,
        })
        .filter(|p| !found.facts.iter().any(|(q, _)| q == p))
        .collect();
    let (exported, hidden): (Vec<PathBuf>, Vec<PathBuf>) = repos
        .into_iter()
        .partition(|p| !s.check_export_ok || p.join("git-daemon-export-ok").exists());
    found.unexported.extend(hidden);
    found.facts.extend(
        exported
            .into_par_iter()
            .map(|p| {
                let f = inspect_and_record(git, &p, &s.ignore_refs, use_now);
                (p, f)
            })
            .collect::<Vec<_>>(),
    );
    found
        .symlinks
        .extend(targets.iter().filter_map(|t| match t {
            Target::Symlink(p) => Some(p.clone()),
            Target::Repo(_) => None,
        }));
}

/// Inspect one repository and store its fingerprint in it.
fn inspect_and_record(
    git: &Git,
    path: &Path,
    ignore_refs: &GlobList,
    use_now: bool,
) -> anyhow::Result<RepoFacts> {
    let facts = inspect::inspect(git, path, ignore_refs, !use_now)?;
    if let Some(fp) = &facts.refs.fingerprint {
        if let Err(e) = repo::write_fingerprint(path, fp) {
            warn!(
                " manifest: cannot record fingerprint in {}: {e}",
                path.display()
            );
        }
    }
    Ok(facts)
}

/// Walk the whole tree, inspecting each repository on the thread that found
/// it.
pub fn walk_tree(s: &Settings, git: &Git, use_now: bool, expected: usize) -> Inspected {
    info!("   search: finding all repos in {}", s.toplevel.display());
    let facts = Mutex::new(Vec::new());
    let symlinks = Mutex::new(Vec::new());
    let unexported = Mutex::new(Vec::new());
    let progress = {
        use std::io::IsTerminal as _;
        progress::WalkProgress::new(std::io::stderr().is_terminal(), expected)
    };
    let opts = WalkOptions {
        ignore: s.ignore_paths.clone(),
        include_objstore: false,
    };
    discovery::walk(&s.toplevel, &opts, &|found| match found {
        // Stopping (Ctrl-C): the walk ends without looking further.
        Found::Repo(_) if grokmirror::stop::requested().is_some() => {}
        Found::Repo(p) => {
            if s.check_export_ok && !p.join("git-daemon-export-ok").exists() {
                unexported.lock().expect("poisoned").push(p);
                return;
            }
            let f = inspect_and_record(git, &p, &s.ignore_refs, use_now);
            progress.one(&p.display().to_string());
            facts.lock().expect("poisoned").push((p, f));
        }
        Found::Symlink(p) => symlinks.lock().expect("poisoned").push(p),
        Found::Dangling(p) => {
            error!(
                " manifest: symlink {} is broken (its target does not exist), ignored",
                p.display()
            )
        }
        Found::Unreadable(p, why) => {
            warn!(" manifest: cannot read directory {}: {why}", p.display())
        }
    });
    let mut facts = facts.into_inner().expect("poisoned");
    facts.sort_by(|a, b| a.0.cmp(&b.0));
    let mut symlinks = symlinks.into_inner().expect("poisoned");
    symlinks.sort();
    Inspected {
        facts,
        symlinks,
        unexported: unexported.into_inner().expect("poisoned"),
    }
}

/// `--fetch-objstore`: copy new objects of updated repos into their object
/// storage, skipping any object storage somebody else is working on (the
/// next grok-fsck catches up); plumbing only where the member's lock is
/// free (see [`objstore::fetch_member_unlocked`]).
pub fn fetch_objstores(git: &Git, repos: &BTreeSet<PathBuf>, method: objstore::FetchMethod) {
    let mut done: BTreeSet<PathBuf> = BTreeSet::new();
    for repo_path in repos {
        let Some(obst) = objstore::objstore_of(repo_path) else {
            continue;
        };
        if done.contains(&obst) {
            continue;
        }
        match lock::acquire_repo(&obst, lock::Wait::No) {
            Ok(Some(_guard)) => {
                info!(
                    " manifest: objstore {} -> {}",
                    repo_path.display(),
                    obst.file_name().unwrap_or_default().to_string_lossy()
                );
                if let Err(e) = objstore::fetch_member_unlocked(git, &obst, repo_path, method) {
                    warn!(
                        " manifest: cannot fetch {} into {}: {e}",
                        repo_path.display(),
                        obst.display()
                    );
                }
                done.insert(obst);
            }
            Ok(None) => debug!("{} is busy, grok-fsck will fetch it", obst.display()),
            Err(e) => warn!(" manifest: {e}"),
        }
    }
}
