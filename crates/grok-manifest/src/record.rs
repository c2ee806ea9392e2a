//! Writing the results into the manifest: each repository's facts folded
//! into its entry, entries of repositories gone or no longer exported
//! dropped, symlinks recorded, and the manifest written.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use grokmirror::formats::manifest::{Manifest, RepoEntry};
use grokmirror::git::Git;
use grokmirror::objstore;
use grokmirror::repo::inspect::RepoFacts;
use grokmirror::tree::fsutil;
use tracing::{debug, error, info};

use crate::plan;
use crate::settings::Settings;
use crate::work::Inspected;

/// What a run changed, for the closing log line and the exit status.
#[derive(Debug, Default)]
pub struct Tally {
    /// Repositories looked at.
    pub processed: usize,
    /// Repositories whose facts could not be read.
    pub failures: usize,
    /// Members of object storage that were updated.
    pub to_fetch: BTreeSet<PathBuf>,
}

/// After a full walk: drop the entries whose repository is gone, and the
/// symlink lists (rebuilt from what is on disk).
pub fn purge_gone(s: &Settings, manifest: &mut Manifest, walked: &Inspected) {
    let on_disk: BTreeSet<String> = walked
        .facts
        .iter()
        .map(|(p, _)| p)
        .chain(&walked.unexported)
        .filter_map(|p| grokmirror::tree::key::manifest_key(&s.toplevel, p))
        .collect();
    for key in plan::gone_keys(manifest.repos.keys(), &on_disk) {
        info!(" manifest: purged {key} (gone)");
        manifest.repos.remove(&key);
    }
    // Symlink lists are rebuilt from what is on disk.
    for entry in manifest.repos.values_mut() {
        entry.symlinks.clear();
    }
}

/// Fold what was found into the manifest: unexported repositories leave
/// it, the others' facts update their entries, symlinks are recorded.
pub fn fold(
    s: &Settings,
    git: &Git,
    manifest: &mut Manifest,
    found: Inspected,
    use_now: bool,
) -> Tally {
    let mut tally = Tally::default();
    for path in &found.unexported {
        if let Some(key) = grokmirror::tree::key::manifest_key(&s.toplevel, path) {
            if manifest.repos.remove(&key).is_some() {
                info!(" manifest: removed {key} (no longer exported)");
            }
        }
    }
    let now = chrono::Utc::now().timestamp();
    for (path, result) in found.facts {
        tally.processed += 1;
        let Some(key) = grokmirror::tree::key::manifest_key(&s.toplevel, &path) else {
            continue;
        };
        match result {
            Ok(f) => {
                if f.forkgroup.is_some() {
                    tally.to_fetch.insert(path.clone());
                }
                update_entry(manifest, &s.toplevel, git, &key, f, use_now, now);
            }
            Err(e) => {
                tally.failures += 1;
                error!(" manifest: cannot read {}: {e:#}", path.display());
            }
        }
    }
    if !found.symlinks.is_empty() {
        set_symlinks(manifest, &s.toplevel, &found.symlinks);
    }
    tally
}

/// Write the manifest (`[manifest] pretty` or `-p` decides the layout).
pub fn write(s: &Settings, manifest: &Manifest) -> anyhow::Result<()> {
    manifest.write(&s.manifest, s.pretty)?;
    debug!(
        "wrote {} ({} entries)",
        s.manifest.display(),
        manifest.len()
    );
    Ok(())
}

/// The first member (in path order) of the object storage at `obst`, as a
/// manifest key.
fn first_member(git: &Git, toplevel: &Path, obst: &Path) -> Option<String> {
    let mut urls: Vec<String> = objstore::list_remotes(git, obst)
        .unwrap_or_default()
        .into_iter()
        .map(|(_, url)| url)
        .collect();
    urls.sort();
    urls.first()
        .map(|u| grokmirror::tree::key::manifest_style(toplevel, Path::new(u)))
}

/// Fold one repository's facts into its manifest entry.
fn update_entry(
    manifest: &mut Manifest,
    toplevel: &Path,
    git: &Git,
    key: &str,
    facts: RepoFacts,
    use_now: bool,
    now: i64,
) {
    let Some(fingerprint) = facts.refs.fingerprint.clone() else {
        if manifest.repos.remove(key).is_some() {
            info!(" manifest: removed {key} (no heads)");
        } else {
            info!(" manifest: ignored {key} (no heads)");
        }
        return;
    };
    // grokmirror 1.x wrote keys without the leading slash.
    let bare_key = key.trim_start_matches('/');
    let old = match manifest.repos.remove(key) {
        Some(old) => {
            info!(" manifest: updated {key}");
            old
        }
        None => match manifest.repos.remove(bare_key) {
            Some(old) => {
                info!(" manifest: updated {key}");
                old
            }
            None => {
                info!(" manifest: added {key}");
                RepoEntry::default()
            }
        },
    };
    // `reference` is for grokmirror 1.x clients: the first member of the
    // object storage when the forkgroup changes, the borrowed-from repo for
    // plain alternates, otherwise whatever it was.
    let reference = plan::reference(
        &old,
        facts.forkgroup.as_deref(),
        facts.alternate.as_deref(),
        toplevel,
        |alt| first_member(git, toplevel, alt),
    );
    let modified = if use_now {
        now
    } else {
        facts.refs.newest_commit.unwrap_or(now)
    };
    manifest.repos.insert(
        key.to_string(),
        RepoEntry {
            description: facts.description,
            fingerprint: Some(fingerprint),
            forkgroup: facts.forkgroup,
            head: facts.head,
            modified,
            owner: facts.owner,
            reference,
            symlinks: old.symlinks,
            extra: old.extra,
        },
    );
}

/// Record symlinks on the entries of the repos they point at. A symlink's
/// own path is no repository: an entry it still has (a repository that was
/// replaced by a symlink) is dropped.
fn set_symlinks(manifest: &mut Manifest, toplevel: &Path, symlinks: &[PathBuf]) {
    let mut retarget: BTreeMap<String, String> = BTreeMap::new();
    for link in symlinks {
        let relative = grokmirror::tree::key::manifest_style(toplevel, link);
        // grokmirror 1.x wrote keys without the leading slash.
        for key in plan::own_keys(&relative) {
            if manifest.repos.remove(&key).is_some() {
                info!(" manifest: removed {key} (now a symlink)");
            }
        }
        let Ok(target) = std::fs::canonicalize(link) else {
            error!(" manifest: symlink {relative} is broken, ignored");
            continue;
        };
        let Some(target_key) = grokmirror::tree::key::manifest_key(toplevel, &target) else {
            error!(" manifest: symlink {relative} points outside toplevel, ignored");
            continue;
        };
        let Some(entry) = manifest.repos.get_mut(&target_key) else {
            error!(
                " manifest: symlink {relative} points to {target_key}, which we do not recognize"
            );
            continue;
        };
        if entry.symlinks.contains(&relative) {
            info!(" manifest: {relative}->{target_key} is already in manifest");
        } else {
            info!(" manifest: symlinked {relative}->{target_key}");
            entry.symlinks.push(relative.clone());
        }
        retarget.insert(relative, target_key);
    }
    // References to a symlinked location should name the real repo.
    for entry in manifest.repos.values_mut() {
        if let Some(target) = entry.reference.as_ref().and_then(|r| retarget.get(r)) {
            entry.reference = Some(target.clone());
        }
    }
}

/// `--remove`: drop the named repos, or the named symlinks from the lists
/// of the repos they point at.
pub fn remove_paths(s: &Settings, manifest: &mut Manifest) {
    for given in &s.paths {
        let key = grokmirror::tree::key::manifest_style(&s.toplevel, &fsutil::absolute(given));
        if manifest.repos.remove(&key).is_some() {
            info!(" manifest: removed {key}");
            continue;
        }
        let mut found = false;
        for (gitdir, entry) in manifest.repos.iter_mut() {
            if let Some(pos) = entry.symlinks.iter().position(|l| *l == key) {
                entry.symlinks.remove(pos);
                found = true;
                info!(" manifest: removed symlink {key}->{gitdir}");
            }
        }
        if !found {
            info!(" manifest: {key} not in manifest");
        }
    }
}
