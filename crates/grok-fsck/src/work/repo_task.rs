//! One repository's task, under its lock: repack, check, bundle, and the
//! record of it in the status file.

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use chrono::NaiveDate;
use grokmirror::formats::fsck_status::{self, RepoStatus};
use grokmirror::lock::RepoLock;
use grokmirror::repo;
use grokmirror::repo::alternates::RepoRole;
use grokmirror::repo::object_counts::{self, RepackLevel};
use tracing::{info, warn};

use super::maintain::{Maintenance, Repo};
use super::progress::{human_size, Progress};
use super::FsckRun;
use crate::forks;
use crate::plan::schedule;
use crate::plan::task::RepoTask;
use crate::record::status::{note_work, Recorded};
use grokmirror::repo::fingerprint_on_disk;
use grokmirror::tree::real_location;

impl FsckRun<'_> {
    /// One repository's work, under its lock.
    pub(super) fn do_task(
        &self,
        maintenance: &Maintenance,
        task: &RepoTask,
        guard: &RepoLock,
        status: &Mutex<Recorded>,
        progress: &Progress,
    ) {
        info!("{}:", task.key);
        progress.start(&grokmirror::tree::key::manifest_style(
            &self.settings.toplevel,
            &task.path,
        ));
        // Only repacks (and their prunes) change the size.
        let size = |p: &Path| match task.repack {
            Some(_) => object_counts::scan(p).map(|c| c.total_kib()).unwrap_or(0),
            None => 0,
        };
        let before = size(&task.path);
        let started = Instant::now();
        let repo = self.repack_and_check(maintenance, task, guard);
        // Stopped (Ctrl-C) meanwhile: the work may be half done, so nothing
        // is recorded; the repository is done again next run.
        let Some(repo) = repo.filter(|_| grokmirror::stop::requested().is_none()) else {
            progress.finish_one(0);
            return;
        };
        let elapsed = started.elapsed().as_secs();
        let next = self.record(task, &repo, elapsed, status);
        let saved = before.saturating_sub(size(&task.path));
        if let Some(next) = next {
            info!("     next: {}", fsck_status::format_date(next));
        }
        if saved > 0 {
            info!("     done: {elapsed}s, {} saved", human_size(saved));
        } else {
            info!("     done: {elapsed}s");
        }
        progress.finish_one(saved);
    }

    /// Repack (when asked) and check (when asked) the repository, and
    /// bundle fully repacked object storage. `None` when it could not be
    /// opened or its repack failed: nothing is recorded then.
    fn repack_and_check(
        &self,
        maintenance: &Maintenance,
        task: &RepoTask,
        guard: &RepoLock,
    ) -> Option<Repo> {
        // Object storage loses unreachable objects only while nothing can
        // need them (its members held still).
        let frozen = match (&task.role, task.repack) {
            (RepoRole::Objstore, Some(_)) if self.settings.policy.prune => forks::freeze_for_prune(
                &self.git,
                &task.path,
                self.settings,
                &real_location(&self.settings.objstore),
            ),
            _ => None,
        };
        let repo = maintenance.open(&task.path)?;
        if task.repack.is_some() {
            remove_leftover_packs(&repo, guard);
        }
        if let Some(level) = task.repack {
            let done = match &frozen {
                Some(_) => {
                    let plan = grokmirror::repo::repack::plan_pruned_objstore(
                        level,
                        task.deltas,
                        &self.settings.policy,
                    );
                    maintenance.repack_with_plan(&repo, &task.role, level, plan)
                }
                None => maintenance.repack(&repo, &task.role, level, task.deltas),
            };
            if !done {
                if grokmirror::stop::requested().is_none() {
                    warn!("Repacking {} was unsuccessful", task.key);
                }
                return None;
            }
        }
        if task.fsck {
            maintenance.fsck(&repo, &task.role, self.connectivity_only);
        }
        drop(frozen);
        if task.repack == Some(RepackLevel::Full) && task.role == RepoRole::Objstore {
            if let Some(outdir) = &self.settings.objstore_settings.preload_bundle_outdir {
                forks::write_preload_bundle(&self.git, &task.path, outdir, self.report);
            }
        }
        Some(repo)
    }

    /// Record the work done in the status file (written now, so a killed
    /// run loses nothing). Returns the next check, when the work moved it.
    fn record(
        &self,
        task: &RepoTask,
        repo: &Repo,
        elapsed: u64,
        status: &Mutex<Recorded>,
    ) -> Option<NaiveDate> {
        let fingerprint = if task.role == RepoRole::Objstore {
            repo::read_fingerprint(&task.path)
        } else {
            fingerprint_on_disk(&self.git, &repo.io())
        };
        if task.repack == Some(RepackLevel::Full) {
            // The request is done.
            let request = repo.io().join(repo::REPACK_FILE);
            if request.exists() {
                if let Err(e) = std::fs::remove_file(&request) {
                    warn!(
                        "cannot remove {}: {e}",
                        task.path.join(repo::REPACK_FILE).display()
                    );
                }
            }
        }
        let mut recorded = status.lock().expect("status poisoned");
        let entry = recorded
            .status
            .repos
            .entry(task.key.clone())
            .or_insert_with(|| RepoStatus::new_repo(self.today, None));
        let next_date = schedule::next_check(
            self.today,
            self.settings.frequency,
            self.mode.force,
            &mut rand::rng(),
        );
        let next = note_work(
            entry,
            task,
            self.today,
            next_date,
            fingerprint.as_deref(),
            elapsed,
        );
        // After every repository, so a killed run loses nothing.
        recorded.dirty = true;
        self.flush_status(&mut recorded);
        next
    }
}

/// Remove what a repack killed half-way left in `repo` (temporary pack
/// files git would count as one more pack and never delete), before
/// repacking it; logged, and a failure only warned about.
fn remove_leftover_packs(repo: &Repo, guard: &RepoLock) {
    match grokmirror::repo::repack::leftovers::remove(repo.dir(), guard) {
        Ok(removed) if removed.is_empty() => {}
        Ok(removed) => info!(
            "  cleanup: removed {} file(s) a killed repack left ({})",
            removed.len(),
            removed.join(", ")
        ),
        Err(e) => warn!(
            "{}: cannot remove the files a killed repack left: {e}",
            repo.path().display()
        ),
    }
}
