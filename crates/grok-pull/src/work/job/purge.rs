//! Deleting a repository (or symlink) the origin no longer has.

use grokmirror::repo;
use grokmirror::tree::deletion::Removal;
use grokmirror::tree::Kind;
use tracing::info;

use super::{try_lock, Change, Error, FinishedJob, JobContext, JobOutcome};
use crate::plan::RepoJob;
use crate::work::out_of_sight::Staged;

/// Delete a repository (or symlink) the origin no longer has, if the
/// deletion gate agrees.
pub(super) async fn purge(ctx: &JobContext, job: RepoJob) -> FinishedJob {
    let key = match ctx.tree.key(&job.key) {
        Ok(k) => k,
        Err(why) => return FinishedJob::failed(job, Error::BadKey(why)),
    };
    let target = ctx.tree.path_of(&key);
    let gone = |job| FinishedJob {
        change: Some(Change::Remove(key.to_string())),
        ..FinishedJob::new(job, JobOutcome::Purged)
    };
    let parent = match ctx.tree.parent_of(&key, false) {
        Ok(p) => p,
        Err(e) if e.is_not_found() => return gone(job),
        Err(e) => return FinishedJob::failed(job, e),
    };
    let name = key.name();
    match parent.kind_of(name) {
        Ok(None) => return gone(job),
        Ok(Some(Kind::Symlink)) => {
            if ctx.gate.wanted.contains(key.as_str()) {
                return FinishedJob::new(job, JobOutcome::Skipped);
            }
            info!("    purge: {key}");
            if let Err(e) = parent.remove_file(name) {
                return FinishedJob::failed(job, Error::RemoveSymlink(e));
            }
            return gone(job);
        }
        Ok(Some(Kind::Dir)) => {}
        Ok(Some(_)) => return FinishedJob::failed(job, Error::NotPurgingNonRepository(target)),
        Err(e) => return FinishedJob::failed(job, e),
    }
    let held = match try_lock(&parent, name) {
        Ok(Some(l)) => l,
        Ok(None) => return FinishedJob::new(job, JobOutcome::Busy),
        Err(e) => return FinishedJob::failed(job, e),
    };
    let here = parent.io_path().join(name);
    if !repo::is_bare_repo(&here) {
        // Whatever stands there now is not what the walk found: never
        // delete a directory that is not a repository.
        return FinishedJob::failed(job, Error::NotPurgingNonRepository(target));
    }
    if !ctx.may_remove(&key, &here, &Removal::Purge) {
        return FinishedJob::new(job, JobOutcome::Skipped);
    }
    info!("    purge: {key}");
    let parked = tokio::task::spawn_blocking({
        let tree = ctx.tree.clone();
        let key = key.clone();
        move || Staged::park(&tree, &parent, &key, &held).map(drop)
    })
    .await;
    match parked {
        Ok(Ok(())) => gone(job),
        Ok(Err(cause)) => FinishedJob::failed(
            job,
            Error::Delete {
                path: target,
                cause,
            },
        ),
        Err(cause) => FinishedJob::failed(
            job,
            Error::PurgeStopped {
                key: key.to_string(),
                cause,
            },
        ),
    }
}
