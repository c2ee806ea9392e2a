//! Taking one snapshot (the locks, the borrowing chain, the paths) and
//! removing expired ones.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{anyhow, Context};
use grokmirror::lock::{RepoLock, Wait};
use grokmirror::repo::alternates;
use grokmirror::repo::snapshot::{self, Locked, Marker, MAX_LENDERS};
use grokmirror::tree::{Dir, Kind, Tree};
use tracing::{debug, info};

use crate::Settings;

/// Take a snapshot of the repository `raw` names into `out`; its path.
pub fn snapshot_one(
    settings: &Settings,
    tree: &Tree,
    out: &Dir,
    raw: &str,
) -> anyhow::Result<PathBuf> {
    let started = Instant::now();
    let key = tree
        .key(&grokmirror::tree::key::key_of_argument(tree.path(), raw))
        .map_err(|why| anyhow!("{raw}: {why}"))?;
    let parent = tree
        .parent_of(&key, false)
        .with_context(|| format!("{}: no such repository in the mirror", key.as_str()))?;
    if parent.kind_of(key.name())? != Some(Kind::Dir) {
        return Err(anyhow!(
            "{}: no such repository in the mirror ({} is not a directory)",
            key.as_str(),
            tree.path_of(&key).display()
        ));
    }
    let wait = Wait::UpTo(settings.wait);
    let lock = parent.lock_entry(key.name(), wait)?.ok_or_else(|| {
        anyhow!(
            "{}: still locked after {:?}; try again later or raise -w",
            key.as_str(),
            settings.wait
        )
    })?;
    let repo = parent.open_dir(key.name())?;
    if !grokmirror::repo::is_bare_repo(&repo.io_path()) {
        return Err(anyhow!(
            "{}: {} is not a bare repository",
            key.as_str(),
            repo.shown().display()
        ));
    }
    let chain = lock_lenders(tree, &repo, wait)?;
    let lenders: Vec<Locked<'_>> = chain
        .iter()
        .map(|(dir, lock)| Locked { dir, lock })
        .collect();
    let now = SystemTime::now();
    let dest_parent = out.create_dir_all(key.parent())?;
    let name = snapshot::snapshot_name(key.name(), now);
    let taken = snapshot::take(
        Locked {
            dir: &repo,
            lock: &lock,
        },
        &lenders,
        &dest_parent,
        &name,
        &Marker::new(key.as_str(), now),
    )
    .with_context(|| format!("{}: cannot take a snapshot", key.as_str()))?;
    let path = dest_parent.shown_join(&name);
    info!(
        "{}: snapshot {} ({} object files linked, {:.1} MiB not copied, {} small files copied, {} lenders) in {} ms",
        key.as_str(),
        path.display(),
        taken.linked_files,
        taken.linked_bytes as f64 / 1048576.0,
        taken.copied_files,
        chain.len(),
        started.elapsed().as_millis()
    );
    Ok(path)
}

/// Lock and open each repository `repo` borrows objects from, lender of
/// lender included, in order (the lock order of the suite: a repository,
/// then its object storage).
fn lock_lenders(tree: &Tree, repo: &Dir, wait: Wait) -> anyhow::Result<Vec<(Dir, RepoLock)>> {
    let mut chain: Vec<(Dir, RepoLock)> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut next = alternates::lender(&repo.io_path());
    while let Some(lender) = next {
        if seen.contains(&lender) {
            break;
        }
        if chain.len() == MAX_LENDERS {
            return Err(anyhow!(
                "{}: borrows objects through more than {MAX_LENDERS} repositories; fix its objects/info/alternates",
                repo.shown().display()
            ));
        }
        let lock = tree
            .lock_repo(&lender, wait)
            .with_context(|| {
                format!(
                    "{}: cannot lock its lender {}",
                    repo.shown().display(),
                    lender.display()
                )
            })?
            .ok_or_else(|| {
                anyhow!(
                    "{}: still locked after waiting; try again later",
                    lender.display()
                )
            })?;
        let dir = tree.pin(&lender).with_context(|| {
            format!(
                "{}: its lender {} is not in the mirror",
                repo.shown().display(),
                lender.display()
            )
        })?;
        debug!(
            "{}: borrows from {}",
            repo.shown().display(),
            lender.display()
        );
        next = alternates::lender(&dir.io_path());
        seen.push(lender);
        chain.push((dir, lock));
    }
    Ok(chain)
}

/// Remove the snapshots under `out` older than `max_age`; how many went.
pub fn expire(out: &Dir, max_age: Duration) -> anyhow::Result<usize> {
    let found = snapshot::find(out)?;
    let gone = snapshot::expired(&found, SystemTime::now(), max_age);
    for f in &gone {
        let parent = f.relative.parent().unwrap_or(Path::new(""));
        let name = f.relative.file_name().unwrap_or(OsStr::new(""));
        out.open_dir(parent)?.remove_tree(name).with_context(|| {
            format!(
                "cannot remove the snapshot {}",
                out.shown_join(&f.relative).display()
            )
        })?;
        info!(
            "{}: removed the snapshot {} (older than {:?})",
            f.marker.source,
            out.shown_join(&f.relative).display(),
            max_age
        );
    }
    Ok(gone.len())
}
