//! The manifest's symlinks to a repository (`symlinks` in its entry).

use std::fs;
use std::path::Path;

use grokmirror::formats::manifest::RepoEntry;
use grokmirror::repo;
use grokmirror::tree::deletion::Removal;
use grokmirror::tree::{self, Kind, RepoKey};
use tracing::{debug, info, warn};

use super::{try_lock, JobContext};
use crate::work::out_of_sight::Staged;

/// Why a symlink was not made (logged; the job goes on).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The link's path is not one the top level accepts.
    #[error("{0}")]
    BadKey(String),
    /// A path under the top level's handles.
    #[error(transparent)]
    Tree(#[from] tree::Error),
    /// A repository stands at the link's path and another program holds
    /// its lock.
    #[error("{0} is locked, trying next run")]
    Locked(RepoKey),
    /// A repository stands at the link's path and the deletion gate keeps
    /// it.
    #[error("the repository {0} stays")]
    Kept(RepoKey),
    /// The repository at the link's path could not be moved away.
    #[error("cannot remove the repository {key}: {cause}")]
    Remove {
        /// The repository.
        key: RepoKey,
        /// The underlying error.
        #[source]
        cause: std::io::Error,
    },
    /// Neither a symlink nor a repository stands at the link's path.
    #[error("something else is there")]
    SomethingElse,
}

/// Make the manifest's symlinks to this repository exist. Returns whether
/// any was made. A repository standing where a symlink should be is
/// replaced only when the deletion gate would purge it anyway.
pub(super) fn place_symlinks(
    ctx: &JobContext,
    key: &RepoKey,
    target: &Path,
    entry: &RepoEntry,
) -> bool {
    let Ok(real_target) = fs::canonicalize(target) else {
        return false;
    };
    let mut made = false;
    for link in &entry.symlinks {
        match place_symlink(ctx, key, target, &real_target, link) {
            Ok(true) => {
                info!("  symlink: {link} -> {key}");
                made = true;
            }
            Ok(false) => {}
            Err(why) => warn!("  symlink: not making {link}: {why}"),
        }
    }
    made
}

/// Make one symlink `link` -> `target`; `Ok(false)` when it was in place.
fn place_symlink(
    ctx: &JobContext,
    key: &RepoKey,
    target: &Path,
    real_target: &Path,
    link: &str,
) -> Result<bool, Error> {
    let link = ctx.tree.key(link).map_err(Error::BadKey)?;
    let parent = ctx.tree.parent_of(&link, true)?;
    let name = link.name();
    let here = parent.io_path().join(name);
    match parent.kind_of(name)? {
        None => {}
        Some(Kind::Symlink) => {
            if fs::canonicalize(&here).is_ok_and(|t| t == real_target) {
                return Ok(false);
            }
            debug!(
                "removing wrong symlink {}",
                ctx.tree.path_of(&link).display()
            );
            parent.remove_file(name)?;
        }
        Some(Kind::Dir) if repo::is_bare_repo(&here) => {
            let removal = Removal::ReplaceWithSymlink {
                to: key.to_string(),
            };
            let held = match try_lock(&parent, name)? {
                Some(l) => l,
                None => return Err(Error::Locked(link)),
            };
            if !ctx.may_remove(&link, &here, &removal) {
                return Err(Error::Kept(link));
            }
            warn!("  symlink: {link} is now a symlink to {key}; deleting the repository that was there");
            let parked =
                Staged::park(&ctx.tree, &parent, &link, &held).map_err(|cause| Error::Remove {
                    key: link.clone(),
                    cause,
                })?;
            drop(parked);
        }
        Some(_) => return Err(Error::SomethingElse),
    }
    parent.symlink(target, name)?;
    Ok(true)
}
