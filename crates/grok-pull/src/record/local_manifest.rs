//! The done step: fold finished jobs into the local manifest (rewritten
//! every 100 finished repositories and at the end, under the manifest lock
//! shared with grokmirror), keep `projects.list` in step, count what
//! happened for the summary line.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context;
use grokmirror::formats::manifest::{self, Manifest};
use grokmirror::tree::fsutil;
use tracing::{error, info};

use crate::settings::Settings;
use crate::work::job::{Change, FinishedJob, JobOutcome};

/// How many finished repositories between local manifest rewrites.
pub const WRITE_EVERY: usize = 100;

/// Counts for the summary line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// New repositories.
    pub cloned: usize,
    /// Fetched or reconfigured (re-clones included).
    pub updated: usize,
    /// Checked, nothing to do.
    pub unchanged: usize,
    /// Deleted.
    pub purged: usize,
    /// Failed (retried next run).
    pub failed: usize,
    /// Remote entries rejected as unsafe or malformed.
    pub rejected: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} cloned, {} updated, {} unchanged, {} purged, {} failed",
            self.cloned, self.updated, self.unchanged, self.purged, self.failed
        )?;
        if self.rejected > 0 {
            write!(f, ", {} rejected", self.rejected)?;
        }
        Ok(())
    }
}

/// Collects finished jobs and writes them out.
#[derive(Debug)]
pub struct Recorder {
    manifest: PathBuf,
    pretty: bool,
    projectslist: Option<PathBuf>,
    trimtop: String,
    list_symlinks: bool,
    pending: Vec<Change>,
    since_write: usize,
    /// What happened so far.
    pub summary: Summary,
    /// Fresh clones not yet announced to `post_clone_complete_hook`.
    pub fresh_clones: Vec<PathBuf>,
    /// Failed repositories with the reason.
    pub failures: Vec<(String, String)>,
}

impl Recorder {
    /// A recorder for the run's settings.
    pub fn new(settings: &Settings) -> Recorder {
        Recorder {
            manifest: settings.manifest().to_path_buf(),
            pretty: settings.pretty,
            projectslist: settings.projectslist.clone(),
            trimtop: settings.projectslist_trimtop.clone(),
            list_symlinks: settings.projectslist_symlinks,
            pending: Vec::new(),
            since_write: 0,
            summary: Summary::default(),
            fresh_clones: Vec::new(),
            failures: Vec::new(),
        }
    }

    /// Take up the options of a reloaded config (the local manifest's path
    /// can't change while running).
    pub fn reconfigure(&mut self, settings: &Settings) {
        self.pretty = settings.pretty;
        self.projectslist = settings.projectslist.clone();
        self.trimtop = settings.projectslist_trimtop.clone();
        self.list_symlinks = settings.projectslist_symlinks;
    }

    /// Whether finished jobs are waiting to be written.
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Count a failure found before any job ran.
    pub fn fail(&mut self, key: &str, why: &str) {
        self.summary.failed += 1;
        self.failures.push((key.to_string(), why.to_string()));
    }

    /// Take in one finished job; rewrites the manifest when due.
    pub fn done(&mut self, done: FinishedJob) -> anyhow::Result<()> {
        let key = done.job.key.clone();
        match &done.outcome {
            JobOutcome::Cloned => self.summary.cloned += 1,
            JobOutcome::Updated => self.summary.updated += 1,
            JobOutcome::Unchanged | JobOutcome::Skipped => self.summary.unchanged += 1,
            JobOutcome::Purged => self.summary.purged += 1,
            JobOutcome::Busy => {}
            JobOutcome::Failed(why) => {
                error!("   failed: {key}: {why}");
                self.fail(&key, &why.to_string());
            }
        }
        if !matches!(done.outcome, JobOutcome::Failed(_)) {
            if let Some(change) = done.change {
                self.pending.push(change);
            }
            if let Some(path) = done.fresh_clone {
                self.fresh_clones.push(path);
            }
        }
        info!("     done: {key}");
        self.since_write += 1;
        if self.since_write >= WRITE_EVERY {
            self.flush()?;
        }
        Ok(())
    }

    /// Write pending changes to the local manifest (re-read under the lock,
    /// so other writers' entries survive) and refresh `projects.list`.
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.since_write = 0;
        if self.pending.is_empty() {
            return Ok(());
        }
        let guard = manifest::lock(&self.manifest).with_context(|| {
            format!("cannot lock the local manifest {}", self.manifest.display())
        })?;
        let mut local = Manifest::read_local(&self.manifest)?;
        for change in self.pending.drain(..) {
            match change {
                Change::Upsert(key, entry) => {
                    local.repos.insert(key, entry);
                }
                Change::Remove(key) => {
                    local.repos.remove(&key);
                }
            }
        }
        local.write(&self.manifest, self.pretty)?;
        info!(
            " manifest: wrote {} ({} entries)",
            self.manifest.display(),
            local.len()
        );
        drop(guard);
        self.write_projects_list(&local)
    }

    fn write_projects_list(&self, local: &Manifest) -> anyhow::Result<()> {
        let Some(path) = &self.projectslist else {
            return Ok(());
        };
        let trim = |p: &str| -> String {
            let p = if !self.trimtop.is_empty() {
                p.strip_prefix(self.trimtop.as_str()).unwrap_or(p)
            } else {
                p
            };
            p.trim_start_matches('/').to_string()
        };
        let mut text = Vec::new();
        for (key, entry) in &local.repos {
            writeln!(text, "{}", trim(key))?;
            if self.list_symlinks {
                for link in &entry.symlinks {
                    writeln!(text, "{}", trim(link))?;
                }
            }
        }
        fsutil::write_atomic(path, &text)
            .with_context(|| format!("cannot write projects list {}", path.display()))?;
        info!(" projlist: wrote {}", path.display());
        Ok(())
    }
}
