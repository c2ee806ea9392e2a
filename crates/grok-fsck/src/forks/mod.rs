//! Object storage for forks (SPEC §1.10), grok-fsck's part: find forks by
//! their root commits, move them into object-storage repositories (new
//! ones, or the best existing one), migrate grokmirror 1.x alternates,
//! merge redundant object storage, delete unused ones, keep every object
//! storage's member list, remotes, refs and settings in step, and tell the
//! caller what to repack.
//!
//! The decisions follow grokmirror 2.x's (same thresholds, same order of
//! preference), so a tree either tool maintained is a fixed point for the
//! other. Repositories are looked at in path order.
//!
//! # Safety
//!
//! Each rewiring is a sequence of steps after each of which every
//! repository is valid (`git fsck --connectivity-only` passes), so a crash
//! anywhere is harmless and the next run carries on:
//!
//! - objects reach an object storage (fetch) before anyone is pointed at
//!   it; pointing a repository that borrowed from nothing at one only adds
//!   a lender; replacing a lender happens only once the new one holds all
//!   the repository reaches, and never for a repository others borrow
//!   from (they may need objects only its old lender has);
//! - nothing here deletes an object: members lose their copies later, in
//!   their repack with `-l` (only objects their object storage holds), and
//!   object storage is repacked keeping everything;
//! - an object storage is deleted only when, holding its lock, a fresh
//!   look at the tree and at grok-pull's staged clones finds no borrower.
//!
//! Locks: a member's lock is taken before its object storage's (the order
//! grok-pull uses too); a lock taken out of that order is only ever tried,
//! never waited for, so no two processes can wait on each other. A member
//! somebody else is working on is left for the next run.
//!
//! # The work
//!
//! In the order a run does it:
//!
//! - [`discover`]: each repository of the tree is placed: it joins the
//!   best object storage, or a new one shared with its siblings, or (1.x
//!   alternates) migrates;
//! - [`join`]: the rewirings decided are carried out, step by safe step;
//! - [`tend`] and [`merge`]: each object storage is brought in step with
//!   its members, and redundant ones are merged;
//! - [`leave`]: members that left are forgotten, unused object storage
//!   deleted;
//! - [`repack`]: when object storage is repacked later in the run, what
//!   makes pruning it safe, and its preload bundle.

pub mod discover;
pub mod join;
pub mod leave;
pub mod merge;
pub mod repack;
pub mod tend;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use grokmirror::git::Git;
use grokmirror::lock::{self, RepoLock};
use grokmirror::objstore;
use grokmirror::repo;
use grokmirror::repo::alternates::AltMap;
use grokmirror::repo::roots::{self, Roots};
use grokmirror::tree::discovery::{self, WalkOptions};
use grokmirror::tree::fsutil;
use grokmirror::tree::Tree;
use rayon::prelude::*;
use tracing::{info, warn};

use crate::record::forkgroups::{record_forkgroups, ForkgroupFields};
use crate::record::report::Report;
use crate::settings::Settings;
use join::Rewiring;
pub use repack::{freeze_for_prune, write_preload_bundle};

/// Whether the repository opted out of object storage
/// (`grokmirror.do-not-objstore`): it is never rewired, never fetched
/// from.
fn opted_out(path: &Path) -> bool {
    path.join(repo::DO_NOT_OBJSTORE_FILE).exists()
}

/// Ask for a full repack of `repo` (`grokmirror.repack`, removed by the
/// repack), written through the repository's handle.
fn request_repack(tree: &Tree, repo: &Path) {
    let shown = repo.join(repo::REPACK_FILE);
    // The handle stays open while its /proc path is used.
    let dir = match tree.pin(repo) {
        Ok(dir) => dir,
        Err(e) => {
            warn!("cannot write {}: {e}", shown.display());
            return;
        }
    };
    let file = dir.io_path().join(repo::REPACK_FILE);
    if !file.exists() {
        if let Err(e) = fsutil::write_atomic(&file, repo::REPACK_REUSING_DELTAS) {
            warn!("cannot write {}: {e}", shown.display());
        }
    }
}

/// The roots of the repository at `path` (cached in it, see
/// [`roots::get`]), read and cached through its handle.
fn pinned_roots(git: &Git, tree: &Tree, path: &Path, refresh: bool) -> Option<Roots> {
    let dir = tree.pin(path).ok()?;
    roots::get(git, &dir.io_path(), refresh)
}

/// What the object-storage work leaves for the rest of the run.
#[derive(Debug, Default)]
pub struct ForkChanges {
    /// Repositories that joined (or moved to) an object storage, or lent
    /// their objects to one: a repack now drops what it holds.
    pub repack: BTreeSet<PathBuf>,
    /// Object storage to repack fully now (new, merged into, re-islanded,
    /// trimmed).
    pub full_repack: BTreeSet<PathBuf>,
}

/// The object-storage work of one run.
pub struct Forks<'a> {
    git: &'a Git,
    /// The top level: members are written to through it.
    tree: &'a Tree,
    settings: &'a Settings,
    report: &'a Report,
    toplevel: PathBuf,
    objstore_dir: PathBuf,
    /// Manifest keys of the repositories grok-fsck looks after.
    in_manifest: BTreeSet<String>,
    /// Roots of every repository of the tree (object storage excluded).
    top_roots: BTreeMap<PathBuf, Roots>,
    /// Roots of every object storage.
    obst_roots: BTreeMap<PathBuf, Roots>,
    altmap: AltMap,
    /// 1.x lenders already copied into an object storage this run.
    copied_lenders: BTreeSet<PathBuf>,
    /// For each object storage, the repositories borrowing from it.
    users: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
    /// Manifest `reference` and `forkgroup` of members, by key.
    manifest_updates: BTreeMap<String, ForkgroupFields>,
    changes: ForkChanges,
    /// Rewirings decided, not done yet.
    rewirings: Vec<Rewiring>,
    /// Roots of each object storage before this run's rewirings.
    roots_before: BTreeMap<PathBuf, Roots>,
}

impl<'a> Forks<'a> {
    /// Prepare the work: `repos` are the repositories of the manifest (full
    /// paths), `objstore_dir` the real path of `[core] objstore`.
    pub fn new(
        git: &'a Git,
        tree: &'a Tree,
        settings: &'a Settings,
        report: &'a Report,
        objstore_dir: &Path,
        repos: &[PathBuf],
    ) -> Forks<'a> {
        let toplevel = settings.toplevel.clone();
        let in_manifest = repos
            .iter()
            .filter_map(|p| grokmirror::tree::key::manifest_key(&toplevel, p))
            .collect();
        Forks {
            git,
            tree,
            settings,
            report,
            altmap: AltMap::default(),
            toplevel,
            objstore_dir: objstore_dir.to_path_buf(),
            in_manifest,
            top_roots: BTreeMap::new(),
            obst_roots: BTreeMap::new(),
            copied_lenders: BTreeSet::new(),
            users: BTreeMap::new(),
            manifest_updates: BTreeMap::new(),
            changes: ForkChanges::default(),
            rewirings: Vec::new(),
            roots_before: BTreeMap::new(),
        }
    }

    /// Do it all. `repos` (full paths, in the order to look at them) are
    /// the repositories of the manifest.
    pub fn run(mut self, repos: &[PathBuf]) -> ForkChanges {
        for gone in objstore::sweep_leftovers(&self.objstore_dir) {
            info!("  cleanup: removed {}", gone.display());
        }
        info!("   search: getting root commits of all repos, may take a while");
        self.load_roots();
        self.altmap = AltMap::scan(&[&self.toplevel, &self.objstore_dir]);
        self.roots_before = self.obst_roots.clone();
        for path in repos {
            if path.is_dir() && !path.starts_with(&self.objstore_dir) {
                self.place(path);
            }
        }
        self.carry_out();
        // Who uses what, after the moves above.
        self.altmap = AltMap::scan(&[&self.toplevel, &self.objstore_dir]);
        self.tend_objstores();
        if let Err(e) = record_forkgroups(self.settings, &self.manifest_updates) {
            self.report.critical(format!(
                "cannot record forkgroups in {}: {e}",
                self.settings.manifest.display()
            ));
        }
        self.changes
    }

    fn load_roots(&mut self) {
        let top = discovery::find_repos(&self.toplevel, &WalkOptions::default()).repos;
        let git = self.git;
        let tree = self.tree;
        self.top_roots = top
            .par_iter()
            .filter_map(|p| {
                let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
                let r = pinned_roots(git, tree, &p, false)?;
                Some((p, r))
            })
            .collect();
        self.obst_roots = objstore::list(&self.objstore_dir)
            .par_iter()
            .filter_map(|p| Some((p.clone(), roots::get(git, p, false)?)))
            .collect();
    }

    fn roots_of(&mut self, path: &Path) -> Option<Roots> {
        if let Some(r) = self.top_roots.get(path) {
            return Some(r.clone());
        }
        let r = pinned_roots(self.git, self.tree, path, false)?;
        self.top_roots.insert(path.to_path_buf(), r.clone());
        Some(r)
    }

    fn gitdir(&self, path: &Path) -> String {
        grokmirror::tree::key::manifest_style(&self.toplevel, path)
    }

    fn is_private(&self, path: &Path) -> bool {
        let private = &self.settings.objstore_settings.private;
        private.is_match(&self.gitdir(path)) || private.is_match(&path.to_string_lossy())
    }

    fn name(obst: &Path) -> String {
        obst.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// A member's lock, if free now (busy members wait for the next run).
    fn try_lock(&self, path: &Path) -> Option<RepoLock> {
        match self.tree.lock_repo(path, lock::Wait::No) {
            Ok(Some(l)) => Some(l),
            Ok(None) => {
                info!(
                    "     busy: {} is locked; leaving it for the next run",
                    self.gitdir(path)
                );
                None
            }
            Err(e) => {
                warn!("{e}");
                None
            }
        }
    }

    /// An object storage's lock, waiting for it (its holders are quick).
    fn lock_objstore(&self, obst: &Path) -> Option<RepoLock> {
        match self.tree.lock_repo_noting(obst, lock::Wait::Forever, || {
            info!(
                "  waiting: {} is locked by another process",
                Self::name(obst)
            )
        }) {
            Ok(None) => None,
            Ok(Some(l)) => Some(l),
            Err(e) => {
                self.report.critical(format!("{}: {e}", obst.display()));
                None
            }
        }
    }

    /// An object storage changed shape (new, merged into, trimmed,
    /// re-islanded): ask for its full repack, in a way that survives a
    /// crash (grokmirror honours the same request file).
    fn rebuild(&mut self, obst: &Path) {
        request_repack(self.tree, obst);
        self.changes.full_repack.insert(obst.to_path_buf());
    }
}
