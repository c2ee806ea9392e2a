//! Bringing an existing repository in step with its origin.

use grokmirror::repo::{self};
use tracing::{debug, info};

use super::gitconfig::{apply_params, set_remote};
use super::stored_bytes;
use super::symlinks::place_symlinks;
use super::{
    housekeeping_after_fetch, try_lock, Change, Error, FinishedJob, JobContext, JobOutcome,
};
use crate::plan::{Action, RepoJob};
use crate::work::housekeeping::Actions;
use crate::work::{gitio, hooks};

/// Bring an existing repository in step: its remote, its settings, its
/// refs. Everything is done through the repository's own handle (git gets
/// it as `--git-dir=/proc/<pid>/fd/<n>`), so a directory swapped on its
/// way after we opened it cannot redirect the work.
pub(super) async fn update(ctx: &JobContext, job: RepoJob) -> FinishedJob {
    let key = match ctx.tree.key(&job.key) {
        Ok(k) => k,
        Err(why) => return FinishedJob::failed(job, Error::BadKey(why)),
    };
    let target = ctx.tree.path_of(&key);
    let Action::Update { adopt, .. } = job.action else {
        return FinishedJob::failed(job, Error::NotAnUpdate);
    };
    let parent = match ctx.tree.parent_of(&key, false) {
        Ok(p) => p,
        Err(e) => return FinishedJob::failed(job, e),
    };
    let _lock = match try_lock(&parent, key.name()) {
        Ok(Some(l)) => l,
        Ok(None) => {
            info!("    defer: {key} (locked)");
            return FinishedJob::new(job, JobOutcome::Busy);
        }
        Err(e) => return FinishedJob::failed(job, e),
    };
    let dir = match parent.open_dir(key.name()) {
        Ok(d) => d,
        Err(e) if e.is_not_found() => {
            return FinishedJob::failed(job, Error::NoLongerARepository(target))
        }
        Err(e) => return FinishedJob::failed(job, e),
    };
    let io = dir.io_path();
    let tidy = |why: Error| why.shown_as(&io, &target);
    if !repo::is_bare_repo(&io) {
        return FinishedJob::failed(job, Error::NoLongerARepository(target));
    }
    let entry = job.entry.clone().unwrap_or_default();
    let ffonly = ctx.settings.ffonly.is_match(&key);
    let mut changed = match set_remote(
        &io,
        &ctx.settings.remotename,
        &ctx.settings.url_of(&key),
        ffonly,
        adopt,
    ) {
        Ok(true) => {
            info!(" reorigin: {key}");
            true
        }
        Ok(false) => false,
        Err(why) => return FinishedJob::failed(job, tidy(why)),
    };
    match apply_params(&ctx.git, &io, &entry, &ctx.settings.default_owner) {
        Ok(true) => {
            info!(" reconfig: {key}");
            changed = true;
        }
        Ok(false) => {}
        Err(why) => return FinishedJob::failed(job, tidy(why)),
    }
    let before = repo::fingerprint_now(&ctx.git, &io);
    let mut after = before.clone();
    let mut housekeeping = Actions::default();
    let fetched = job.notified || before.as_deref() != entry.fingerprint.as_deref();
    let mut received_bytes = 0;
    if fetched {
        let stored_before = stored_bytes(&io);
        info!("    fetch: {key}");
        if let Err(why) = gitio::fetch(
            &ctx.git,
            &io,
            &ctx.settings.remotename,
            &key,
            ctx.settings.retries,
            ctx.settings.fetch_timeout,
            &[],
        )
        .await
        {
            return FinishedJob::failed(job, tidy(why.into()));
        }
        hooks::post_update(
            &ctx.settings.post_update_hook,
            &target,
            ctx.settings.hook_timeout,
        )
        .await;
        after = repo::fingerprint_now(&ctx.git, &io);
        // Housekeeping has not run yet: what was added is what the fetch brought.
        received_bytes = stored_bytes(&io).saturating_sub(stored_before);
        if after != before {
            housekeeping = housekeeping_after_fetch(ctx, &target, &key, before.is_none());
        }
        if let Err(cause) = repo::write_timestamp_and_agefile(&io, entry.modified) {
            let why = Error::Record {
                what: "timestamp",
                key: key.to_string(),
                cause,
            };
            return FinishedJob::failed(job, tidy(why));
        }
    } else {
        debug!("fingerprints match, not fetching {key}");
    }
    if let Some(fp) = &after {
        if let Err(cause) = repo::write_fingerprint(&io, fp) {
            let why = Error::Record {
                what: "fingerprint",
                key: key.to_string(),
                cause,
            };
            return FinishedJob::failed(job, tidy(why));
        }
    }
    changed |= place_symlinks(ctx, &key, &target, &entry);
    let mut recorded = entry;
    recorded.fingerprint = after;
    FinishedJob {
        change: Some(Change::Upsert(key.to_string(), recorded)),
        fresh_clone: None,
        housekeeping,
        received_bytes,
        outcome: if fetched || changed || adopt {
            JobOutcome::Updated
        } else {
            JobOutcome::Unchanged
        },
        job,
    }
}
