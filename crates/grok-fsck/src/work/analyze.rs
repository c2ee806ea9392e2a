//! The second phase: look at every repository (in parallel, reading only:
//! object counts, fingerprint) and decide whether it needs a repack, a
//! check, or nothing. Garbage of interrupted work is pruned on the way,
//! one repository at a time.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use chrono::NaiveDate;
use grokmirror::formats::fsck_status::{RepoStatus, Status};
use grokmirror::lock;
use grokmirror::repo;
use grokmirror::repo::alternates::{self, RepoRole};
use grokmirror::repo::object_counts::{self, ObjectCounts, RepackLevel};
use grokmirror::repo::repack::{delta_probe, Precious};
use grokmirror::tree::discovery::{self, WalkOptions};
use rayon::prelude::*;
use tracing::{debug, info, warn};

use super::maintain::{self, Maintenance, Repo};
use super::progress;
use super::FsckRun;
use crate::plan::schedule::{self, Decision, Facts};
use crate::plan::task::RepoTask;
use grokmirror::repo::fingerprint_on_disk;

/// What looking at one repository found.
struct RepoFindings {
    /// Status-file key (full path).
    key: String,
    /// A new next-check date, when the decision moves it.
    reschedule: Option<NaiveDate>,
    /// Garbage to prune (with the role and counts), when not repacking.
    garbage: Option<(RepoRole, ObjectCounts)>,
    /// The work to do, if any.
    task: Option<RepoTask>,
}

impl RepoFindings {
    fn nothing(key: &str) -> RepoFindings {
        RepoFindings {
            key: key.to_string(),
            reschedule: None,
            garbage: None,
            task: None,
        }
    }
}

impl FsckRun<'_> {
    /// Decide what every repository of the tree needs; `rewired` are the
    /// ones object storage just changed.
    pub(super) fn analyze_tree(
        &self,
        maintenance: &Maintenance,
        status: &mut Status,
        objstore_dir: &Path,
        rewired: &BTreeSet<PathBuf>,
    ) -> Vec<RepoTask> {
        let entries: Vec<(String, RepoStatus)> = status
            .repos
            .iter()
            .filter(|(k, _)| !self.is_objstore_path(Path::new(k), objstore_dir))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        info!(
            "Analyzing {} ({} repos)",
            self.settings.toplevel.display(),
            entries.len()
        );
        let analyzed = AtomicUsize::new(0);
        let queued = AtomicUsize::new(0);
        let ticker = Mutex::new(progress::Ticker::new());
        let results: Vec<RepoFindings> = entries
            .par_iter()
            .map(|(key, entry)| {
                let rewired = rewired.contains(Path::new(key));
                let result = self.analyze_one(maintenance, key, entry, objstore_dir, rewired);
                let n = analyzed.fetch_add(1, Ordering::Relaxed) + 1;
                if result.task.is_some() {
                    queued.fetch_add(1, Ordering::Relaxed);
                }
                if !self.terminal && ticker.lock().expect("ticker poisoned").due() {
                    info!(
                        "      ---: {n}/{} analyzed, {} queued",
                        entries.len(),
                        queued.load(Ordering::Relaxed)
                    );
                }
                result
            })
            .collect();
        let mut tasks = Vec::new();
        for a in results {
            if let (Some(next), Some(entry)) = (a.reschedule, status.repos.get_mut(&a.key)) {
                entry.set_nextcheck(next);
            }
            // One prune at a time, after the (parallel, read-only) look.
            if let Some((role, counts)) = &a.garbage {
                self.prune_garbage(maintenance, Path::new(&a.key), role, counts);
            }
            tasks.extend(a.task);
        }
        info!(
            "     done: {} analyzed, {} queued",
            entries.len(),
            tasks.len()
        );
        tasks
    }

    /// Look at one repository of the tree (reading only, apart from
    /// pointing FETCH_HEAD at /dev/null and re-clone requests).
    fn analyze_one(
        &self,
        maintenance: &Maintenance,
        key: &str,
        entry: &RepoStatus,
        objstore_dir: &Path,
        rewired: bool,
    ) -> RepoFindings {
        let path = PathBuf::from(key);
        let gitdir = grokmirror::tree::key::manifest_style(&self.settings.toplevel, &path);
        let Some(repo) = maintenance.open(&path) else {
            return RepoFindings::nothing(key);
        };
        maintain::fix_fetch_head(&repo);
        let role = RepoRole::of(&path, maintenance.altmap, objstore_dir);
        if self.lost_its_lender(&repo, &role, &gitdir) {
            return RepoFindings::nothing(key);
        }
        let counts = match object_counts::scan(&path) {
            Ok(c) => c,
            Err(e) => {
                warn!("{e}; skipping it");
                return RepoFindings::nothing(key);
            }
        };
        let fingerprint = fingerprint_on_disk(&self.git, &path);
        let due = entry.nextcheck().is_none_or(|d| d <= self.today);
        let request = repo::repack_request(&path);
        let facts = Facts {
            due,
            changed: entry.fingerprint() != fingerprint.as_deref(),
            counts: &counts,
            repack_requested: request.is_some(),
            requested_deltas: request.unwrap_or_default(),
            precious_always: self.settings.policy.precious == Precious::Always
                && grokmirror::repo::git_config::is_precious(&path),
            geometric: grokmirror::repo::repack::is_geometric(
                &role,
                RepackLevel::Quick,
                &self.settings.policy,
            ),
            poor_deltas: false,
        };
        let decision = schedule::decide(&facts, &self.mode, self.settings.repack);
        let decision = schedule::after_rewiring(decision, rewired);
        let reschedule = decision.reschedule.then(|| {
            schedule::next_check(
                self.today,
                self.settings.frequency,
                self.mode.force,
                &mut rand::rng(),
            )
        });
        if decision.reason == "aged" {
            info!("     aged: {gitdir} (changed since its last check, repacking)");
        }
        let garbage = (counts.garbage > 0 && decision.repack.is_none())
            .then(|| (role.clone(), counts.clone()));
        let task = self.task(key, path, role, &decision);
        RepoFindings {
            key: key.to_string(),
            reschedule,
            garbage,
            task,
        }
    }

    /// Whether the repository's alternates are gone: then it is reported,
    /// and (unless others borrow from it) a re-clone is requested.
    fn lost_its_lender(&self, repo: &Repo, role: &RepoRole, gitdir: &str) -> bool {
        let missing_alt = grokmirror::repo::alternates::read(&repo.path().join("objects"))
            .into_iter()
            .find(|dir| !dir.is_dir());
        let Some(dir) = missing_alt else {
            return false;
        };
        self.report.critical(format!(
            "  reclone: {gitdir} (its alternates {} are gone)",
            dir.display()
        ));
        if role.lends_objects() {
            self.report
                .critical("\tused for alternates, not requesting auto-reclone");
        } else {
            maintain::request_reclone(repo, "Alternates repository gone");
        }
        true
    }

    /// The task a decision asks for, logged as queued.
    fn task(&self, key: &str, path: PathBuf, role: RepoRole, d: &Decision) -> Option<RepoTask> {
        let family = alternates::family_root(&path);
        let task = RepoTask::from_decision(key, path, role, family, d)?;
        match d.repack {
            Some(_) => info!("   queued: {} ({}: {})", task.key, task.what(), d.reason),
            None => info!("   queued: {} ({})", task.key, task.what()),
        }
        Some(task)
    }

    /// Prune a repository whose object store holds leftovers (temporary
    /// files of interrupted work), when it is free right now.
    fn prune_garbage(
        &self,
        maintenance: &Maintenance,
        path: &Path,
        role: &RepoRole,
        counts: &ObjectCounts,
    ) {
        let gitdir = grokmirror::tree::key::manifest_style(&self.settings.toplevel, path);
        match maintenance.tree.lock_repo(path, lock::Wait::No) {
            Ok(Some(_guard)) => {
                info!(
                    "  garbage: {gitdir} ({} files, {} KiB)",
                    counts.garbage, counts.size_garbage
                );
                if let Some(repo) = maintenance.open(path) {
                    maintenance.prune_if_safe(&repo, role);
                }
            }
            Ok(None) => debug!("{gitdir} is busy, its garbage can wait"),
            Err(e) => warn!("{e}"),
        }
    }

    /// Object-storage repositories: repacked by their counts (full repacks
    /// on schedule), checked on schedule. Merging, creating and deleting
    /// them is the object-storage work's, not done here. `full` are the
    /// ones that work just changed.
    pub(super) fn analyze_objstore(
        &self,
        maintenance: &Maintenance,
        status: &mut Status,
        objstore_dir: &Path,
        full: &BTreeSet<PathBuf>,
    ) -> Vec<RepoTask> {
        // Entries of object storage that is gone.
        status.repos.retain(|k, _| {
            let p = Path::new(k);
            !self.is_objstore_path(p, objstore_dir) || p.is_dir()
        });
        if !objstore_dir.is_dir() {
            return Vec::new();
        }
        let opts = WalkOptions {
            include_objstore: true,
            ..Default::default()
        };
        let found = discovery::find_repos(objstore_dir, &opts).repos;
        info!(
            "Analyzing {} ({} repos)",
            objstore_dir.display(),
            found.len()
        );
        found
            .into_iter()
            .filter_map(|path| self.analyze_one_objstore(maintenance, status, path, full))
            .collect()
    }

    /// Look at one object-storage repository, giving it a record when it
    /// has none.
    fn analyze_one_objstore(
        &self,
        maintenance: &Maintenance,
        status: &mut Status,
        path: PathBuf,
        full: &BTreeSet<PathBuf>,
    ) -> Option<RepoTask> {
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        let key = path.to_string_lossy().into_owned();
        let is_new = !status.repos.contains_key(&key);
        if is_new {
            status
                .repos
                .insert(key.clone(), RepoStatus::new_repo(self.today, None));
        }
        // New, merged into, trimmed or re-islanded: a full repack now.
        let rebuilt = is_new || full.contains(&path);
        if rebuilt {
            if let Some(e) = status.repos.get_mut(&key) {
                e.set_nextcheck(self.today);
            }
        }
        if !maintenance.altmap.is_borrowed(&path) {
            debug!("{key} is used by no repository (left for object-storage maintenance)");
        }
        let entry = &status.repos[&key];
        let counts = match object_counts::scan(&path) {
            Ok(c) => c,
            Err(e) => {
                warn!("{e}; skipping it");
                return None;
            }
        };
        let request = repo::repack_request(&path);
        let mut facts = Facts {
            due: entry.nextcheck().is_none_or(|d| d <= self.today),
            changed: false,
            counts: &counts,
            repack_requested: request.is_some(),
            requested_deltas: request.unwrap_or_default(),
            precious_always: false,
            geometric: grokmirror::repo::repack::is_geometric(
                &RepoRole::Objstore,
                RepackLevel::Quick,
                &self.settings.policy,
            ),
            poor_deltas: false,
        };
        let mut decision =
            schedule::decide_objstore(&facts, rebuilt, &self.mode, self.settings.repack);
        if schedule::carries_deltas_over(&decision, &facts, rebuilt) {
            facts.poor_deltas = self.deltas_are_poor(&key, &path);
            decision = schedule::decide_objstore(&facts, rebuilt, &self.mode, self.settings.repack);
        }
        self.task(&key, path, RepoRole::Objstore, &decision)
    }

    /// Whether the object storage at `path` holds deltas worth searching
    /// afresh in the full repack it is about to get (see
    /// [`delta_probe`]); logged either way.
    fn deltas_are_poor(&self, key: &str, path: &Path) -> bool {
        match delta_probe::probe(&self.git, path) {
            Ok(Some(probe)) if probe.deltas_are_poor() => {
                info!("{key}: {probe}: its full repack recomputes every delta");
                true
            }
            Ok(Some(probe)) => {
                info!("{key}: {probe}: its full repack keeps them");
                false
            }
            Ok(None) => {
                debug!("{key}: history too short for a delta probe: deltas kept");
                false
            }
            Err(e) => {
                warn!("{key}: cannot probe its deltas ({e}): deltas kept");
                false
            }
        }
    }
}
