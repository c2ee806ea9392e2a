//! Repacking the storage, later in the run (the workers do it, see
//! [`crate::work::repo_task`]): whether an object storage may lose
//! unreachable objects in its repack, and the preload bundle written after
//! its full repack.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use grokmirror::git::{self, Git};
use grokmirror::lock::{self, RepoLock};
use grokmirror::objstore;
use grokmirror::repo::alternates::AltMap;
use grokmirror::tree::Tree;
use tracing::{debug, info, warn};

use crate::record::report::Report;
use crate::settings::Settings;

/// Write `<outdir>/<forkgroup>.bundle` with every ref of an object storage
/// (`[fsck] preload_bundle_outdir`), for replicas to seed new object
/// storage from (`[remote] preload_bundle_url`). Written beside and renamed
/// into place, so a replica never downloads half a bundle.
pub fn write_preload_bundle(git: &Git, obst: &Path, outdir: &Path, report: &Report) {
    let Some(name) = objstore::forkgroup_name(obst) else {
        return;
    };
    if let Err(e) = std::fs::create_dir_all(outdir) {
        report.critical(format!("cannot create {}: {e}", outdir.display()));
        return;
    }
    let target = outdir.join(format!("{name}.bundle"));
    let tmp = outdir.join(format!(".{name}.bundle.{}.tmp", std::process::id()));
    info!(" bundling: {name}.bundle");
    if let Err(e) = bundle_into(git, obst, &tmp, &target) {
        let _ = std::fs::remove_file(&tmp);
        report.critical(format!("cannot write {}: {e}", target.display()));
    }
}

/// Why a preload bundle could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PreloadBundleError {
    /// git could not be run.
    #[error(transparent)]
    Run(#[from] git::Error),
    /// `git bundle create` failed; what it said.
    #[error("{stderr}")]
    Refused {
        /// git's complaint.
        stderr: String,
    },
    /// The finished bundle could not be renamed into place.
    #[error(transparent)]
    Rename(#[from] std::io::Error),
}

/// `git bundle create` of every ref of `obst` into `tmp`, then renamed to
/// `target`.
fn bundle_into(
    git: &Git,
    obst: &Path,
    tmp: &Path,
    target: &Path,
) -> Result<(), PreloadBundleError> {
    let out = git.run(
        Some(obst),
        [
            std::ffi::OsStr::new("bundle"),
            "create".as_ref(),
            "-q".as_ref(),
            tmp.as_os_str(),
            "--all".as_ref(),
        ],
    )?;
    if !out.success() {
        return Err(PreloadBundleError::Refused {
            stderr: out.stderr_str(),
        });
    }
    std::fs::rename(tmp, target)?;
    Ok(())
}

/// Whether object storage may lose unreachable objects in this repack,
/// and the member locks that keep it so until the repack is done: every
/// repository borrowing from it (a fresh look at the tree, and no staged
/// clone) is one of its members, none is private, and it holds each
/// member's current refs, so everything any borrower reaches is reachable
/// in it. `None` (keep everything) when any of that fails or a member is
/// busy. Caller holds `obst`'s lock.
pub fn freeze_for_prune(
    git: &Git,
    obst: &Path,
    settings: &Settings,
    objstore_dir: &Path,
) -> Option<Vec<RepoLock>> {
    let tree = Tree::open(&settings.toplevel, grokmirror::tree::Reserved::none())
        .ok()?
        .with_other_root(objstore_dir);
    let remotes = objstore::list_remotes(git, obst).ok()?;
    let members: BTreeSet<PathBuf> = remotes.iter().map(|(_, url)| PathBuf::from(url)).collect();
    if members.is_empty() || objstore::staged_clones_use(&settings.toplevel, obst) {
        return None;
    }
    let private = &settings.objstore_settings.private;
    let toplevel = &settings.toplevel;
    if members.iter().any(|m| {
        private.is_match(&grokmirror::tree::key::manifest_style(toplevel, m))
            || private.is_match(&m.to_string_lossy())
    }) {
        return None;
    }
    let borrowers = AltMap::scan(&[toplevel, objstore_dir]).borrowers_of(obst);
    if borrowers != members {
        debug!(
            "{}: kept whole: {} borrowers, {} members",
            obst.display(),
            borrowers.len(),
            members.len()
        );
        return None;
    }
    let mut locks = Vec::new();
    for m in &members {
        // Out of lock order (we hold the object storage's): only tried.
        let Ok(Some(l)) = tree.lock_repo(m, lock::Wait::No) else {
            debug!("{}: kept whole: {} is busy", obst.display(), m.display());
            return None;
        };
        locks.push(l);
        if !objstore::member_refs_match(git, obst, m).unwrap_or(false) {
            debug!(
                "{}: kept whole: its refs of {} are not current",
                obst.display(),
                m.display()
            );
            return None;
        }
    }
    // Commits the prune drops may be listed in a member's commit-graph
    // (one written before it joined, by us or another tool): it goes now,
    // while the members are held (see repack::drop_commit_graph).
    for m in &members {
        let dropped = tree
            .pin(m)
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|d| grokmirror::repo::repack::drop_commit_graph(&d.io_path()));
        if let Err(e) = dropped {
            warn!("{}: cannot remove its commit-graph: {e}", m.display());
            return None;
        }
    }
    Some(locks)
}
