//! The first phase: bring the manifest and the status file in line with
//! the disk. Repositories gone from disk are dropped from both, new ones
//! get a first check on a random day within `frequency`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::Context;
use grokmirror::formats::fsck_status::{self, RepoStatus, Status};
use grokmirror::formats::manifest::{self, Manifest};
use grokmirror::lock;
use rand::Rng;
use rayon::prelude::*;
use tracing::{debug, info, warn};

use super::FsckRun;
use crate::plan::schedule;
use grokmirror::repo::fingerprint_on_disk;
use grokmirror::tree::key::{normalize_path, with_leading_slash};

/// What comparing the manifest with the disk found.
#[derive(Debug, Default)]
struct ManifestOnDisk {
    /// Normalized keys of the manifest's repositories still on disk.
    wanted: HashSet<String>,
    /// Repositories without a status record: (full path as key, path).
    new_repos: Vec<(String, PathBuf)>,
    /// Entries were dropped from the manifest.
    manifest_changed: bool,
}

impl FsckRun<'_> {
    /// Bring the manifest and the status file in line with the disk: drop
    /// repositories that are gone, schedule new ones. `None` when there is
    /// no manifest (nothing mirrored yet).
    pub(super) fn reconcile(&self) -> anyhow::Result<Option<Status>> {
        let s = self.settings;
        info!("Analyzing {}", s.manifest.display());
        let guard = manifest::lock(&s.manifest)
            .with_context(|| format!("cannot lock manifest {}", s.manifest.display()))?;
        let Some(mut manifest) = self.read_manifest()? else {
            return Ok(None);
        };
        let mut status = if s.statusfile.exists() {
            info!("   status: reading {}", s.statusfile.display());
            Status::read(&s.statusfile)?
        } else {
            Status::default()
        };
        let mut rng = rand::rng();
        let found = self.compare_with_disk(&mut manifest, &mut status, &mut rng);
        self.add_new_repos(&mut status, &found.new_repos, &mut rng);
        if found.manifest_changed {
            manifest.write(&s.manifest, s.pretty)?;
        }
        drop(guard);
        self.drop_unlisted(&mut status, &found.wanted);
        self.write_status(&status);
        Ok(Some(status))
    }

    /// The local manifest; `None` when there is none yet. Caller holds its
    /// lock.
    fn read_manifest(&self) -> anyhow::Result<Option<Manifest>> {
        let s = self.settings;
        match Manifest::read(&s.manifest) {
            Ok(Some(m)) => Ok(Some(m)),
            Ok(None) => {
                warn!(
                    "There is no manifest at {}, so nothing to check (grok-pull writes it)",
                    s.manifest.display()
                );
                Ok(None)
            }
            Err(e) => Err(anyhow::Error::new(e)
                .context("the manifest says which repositories to check; nothing was changed")),
        }
    }

    /// Walk the manifest's keys: drop those gone from disk (unless a
    /// grok-pull holds them), give known repositories without a usable
    /// next check one, and collect the new ones.
    fn compare_with_disk(
        &self,
        manifest: &mut Manifest,
        status: &mut Status,
        rng: &mut impl Rng,
    ) -> ManifestOnDisk {
        let s = self.settings;
        let mut found = ManifestOnDisk::default();
        let keys: Vec<String> = manifest.repos.keys().cloned().collect();
        for key in keys {
            if normalize_path(&key).is_err() {
                warn!(
                    "manifest {}: ignoring odd entry {key:?}",
                    s.manifest.display()
                );
                continue;
            }
            let path = grokmirror::tree::key::key_path(&s.toplevel, &key);
            let full = path.to_string_lossy().into_owned();
            if !path.is_dir() {
                // A grok-pull moving it aside to re-clone it holds its lock.
                if grokmirror::lock::FileLock::is_held(&lock::repo_lock_path(&path))
                    .unwrap_or(false)
                {
                    info!("     busy: {key} is not on disk but locked, left alone");
                    continue;
                }
                info!("     gone: {key} is no longer on disk, dropped");
                manifest.repos.remove(&key);
                status.repos.remove(&full);
                found.manifest_changed = true;
                continue;
            }
            found.wanted.insert(with_leading_slash(&key));
            match status.repos.get_mut(&full) {
                None => found.new_repos.push((full, path)),
                Some(entry) if entry.nextcheck().is_none() => {
                    let next = schedule::first_check(self.today, s.frequency, self.mode.force, rng);
                    info!("{full}: no usable next check date, next check on {next}");
                    entry.set_nextcheck(next);
                }
                Some(_) => {}
            }
        }
        found
    }

    /// Give each new repository a record: its fingerprint now (read in
    /// parallel) and a first check within `frequency`.
    fn add_new_repos(
        &self,
        status: &mut Status,
        new_repos: &[(String, PathBuf)],
        rng: &mut impl Rng,
    ) {
        let s = self.settings;
        let fingerprints: Vec<(String, Option<String>)> = new_repos
            .par_iter()
            .map(|(full, path)| (full.clone(), fingerprint_on_disk(&self.git, path)))
            .collect();
        for (full, fp) in fingerprints {
            let next = schedule::first_check(self.today, s.frequency, self.mode.force, rng);
            info!("{full}:");
            info!(
                "    added: next check on {}",
                fsck_status::format_date(next)
            );
            status
                .repos
                .insert(full, RepoStatus::new_repo(next, fp.as_deref()));
        }
    }

    /// Repositories no longer in the manifest are no longer ours to check;
    /// object storage is looked at separately.
    fn drop_unlisted(&self, status: &mut Status, wanted: &HashSet<String>) {
        let s = self.settings;
        let objstore_dir =
            std::fs::canonicalize(&s.objstore).unwrap_or_else(|_| s.objstore.clone());
        status.repos.retain(|full, _| {
            let path = Path::new(full);
            if self.is_objstore_path(path, &objstore_dir) {
                return true;
            }
            let keep = grokmirror::tree::key::manifest_key(&s.toplevel, path)
                .is_some_and(|k| wanted.contains(&k));
            if !keep {
                debug!("{full} is no longer in the manifest, dropped from the status");
            }
            keep
        });
    }
}
