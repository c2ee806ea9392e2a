//! Cloning a new repository, or a fresh copy of an existing one (a
//! re-clone), in the staging area and moving it into place in one rename.
//!
//! The steps, each a function below: [`claim`] the path (its lock, and
//! what stands there now); make the staged directory; [`build`] it (object
//! storage to borrow from, `git init`, settings, fetch, fingerprint) and
//! [`place`] it; then [`after_placing`]: into the object storage, hooks,
//! symlinks and housekeeping.

use std::ffi::OsStr;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use grokmirror::config::glob::GlobList;
use grokmirror::formats::manifest::RepoEntry;
use grokmirror::git::Git;
use grokmirror::lock::RepoLock;
use grokmirror::repo::{self, refs};
use grokmirror::tree::deletion::Removal;
use grokmirror::tree::{Dir, Kind, RepoKey};
use tracing::{debug, info, warn};

use super::gitconfig::{apply_params, set_remote};
use super::stored_bytes;
use super::symlinks::place_symlinks;
use super::update::update;
use super::{
    housekeeping_after_fetch, try_lock, Change, Error, FinishedJob, JobContext, JobOutcome,
};
use crate::plan::{Action, RepoJob};
use crate::work::objstore_clone::{self, Placement};
use crate::work::out_of_sight::Staged;
use crate::work::{gitio, hooks};
use grokmirror::repo::git_config;

/// The path a clone goes to, locked.
struct Target {
    key: RepoKey,
    /// The path as the operator knows it.
    path: PathBuf,
    /// Its parent directory's handle.
    parent: Dir,
    /// The path through the parent's handle.
    here: PathBuf,
    /// The repository's lock, held until the job ends.
    lock: RepoLock,
    /// A symlink stands there now, to be replaced.
    replaces_symlink: bool,
}

/// What [`claim`] found at the path.
enum Claim {
    /// Clone into it.
    Clone(Target),
    /// Nothing to clone (locked by somebody else, or kept).
    Over(JobOutcome),
    /// Somebody else cloned it meanwhile: update it instead.
    AlreadyCloned,
}

/// Clone a new repository (or, with `reclone`, a fresh copy of an existing
/// one) in the staging area and move it into place.
pub(super) async fn clone(ctx: &JobContext, job: RepoJob, reclone: bool) -> FinishedJob {
    let key = match ctx.tree.key(&job.key) {
        Ok(k) => k,
        Err(why) => return FinishedJob::failed(job, Error::BadKey(why)),
    };
    let target = match claim(ctx, key, reclone) {
        Ok(Claim::Clone(t)) => t,
        Ok(Claim::Over(outcome)) => return FinishedJob::new(job, outcome),
        Ok(Claim::AlreadyCloned) => {
            // Just bring it up to date.
            let job = RepoJob {
                action: Action::Update {
                    adopt: true,
                    reconfig: true,
                    fetch: true,
                },
                ..job
            };
            return Box::pin(update(ctx, job)).await;
        }
        Err(why) => return FinishedJob::failed(job, why),
    };
    let entry = job.entry.clone().unwrap_or_default();
    let staged = match Staged::for_clone(&ctx.tree, &target.parent, &target.key) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            return FinishedJob::new(job, JobOutcome::Busy)
        }
        Err(e) => return FinishedJob::failed(job, Error::Staging(e)),
    };
    let (placement, fingerprint) = match build(ctx, &target, &entry, staged, reclone).await {
        Ok(built) => built,
        Err(why) => return FinishedJob::failed(job, why),
    };
    after_placing(ctx, job, target, entry, placement, fingerprint, reclone).await
}

/// Lock the path and look at what stands there: nothing, a symlink to
/// replace or an empty directory may go; a repository is updated instead
/// (or, for a re-clone, must be there and the deletion gate must agree).
fn claim(ctx: &JobContext, key: RepoKey, reclone: bool) -> Result<Claim, Error> {
    let path = ctx.tree.path_of(&key);
    let parent = ctx.tree.parent_of(&key, true)?;
    let name = key.name();
    let here = parent.io_path().join(name);
    let Some(lock) = try_lock(&parent, name)? else {
        return Ok(Claim::Over(JobOutcome::Busy));
    };
    let mut replaces_symlink = false;
    let kind = parent.kind_of(name)?;
    if !reclone {
        match kind {
            None => {}
            Some(Kind::Symlink) => replaces_symlink = true,
            // The lock goes with the return, before the update takes it.
            Some(Kind::Dir) if repo::is_bare_repo(&here) => return Ok(Claim::AlreadyCloned),
            // An empty directory may go; anything else stays.
            Some(Kind::Dir) if parent.remove_empty_dir(name).is_ok() => {}
            Some(Kind::Dir) => return Err(Error::NotAGitRepository(path)),
            Some(_) => return Err(Error::NotADirectory(path)),
        }
    } else if kind != Some(Kind::Dir) || !repo::is_bare_repo(&here) {
        return Err(Error::NoLongerARepository(path));
    } else if !ctx.may_remove(&key, &path, &Removal::Reclone) {
        return Ok(Claim::Over(JobOutcome::Skipped));
    }
    Ok(Claim::Clone(Target {
        key,
        path,
        parent,
        here,
        lock,
        replaces_symlink,
    }))
}

/// Build the clone in `staged` and move it into place. Returns the object
/// storage it borrows from (a fork's) and its refs' fingerprint.
async fn build(
    ctx: &JobContext,
    target: &Target,
    entry: &RepoEntry,
    mut staged: Staged,
    reclone: bool,
) -> Result<(Option<Placement>, Option<String>), Error> {
    let key = &target.key;
    let staged_io = staged.path();
    let staged_shown = staged.shown();
    let tidy = |why: Error| why.shown_as(&staged_io, &staged_shown);
    // A re-clone keeps borrowing from the same object storage; a fork
    // borrows from its group's from the first fetch on.
    let mut placement = None;
    let alternates = if reclone {
        repo::alternates::lender(&target.here)
    } else {
        placement = objstore_clone::prepare(
            ctx.objstore.clone(),
            ctx.git.clone(),
            key.to_string(),
            target.path.clone(),
        )
        .await?;
        placement.as_ref().map(|p| p.obstrepo.clone())
    };
    if reclone {
        let reason = fs::read_to_string(target.here.join(repo::RECLONE_FILE)).unwrap_or_default();
        info!("  reclone: {key}");
        debug!("reclone reason for {key}: {}", reason.trim());
    }
    init_staged(ctx, &staged, key, entry, alternates.as_deref())
        .await
        .map_err(tidy)?;
    if let Some(p) = placement.as_mut() {
        // The staged clone points at it now (grok-fsck sees that).
        p.guard = None;
    }
    let fingerprint = fetch_staged(ctx, &staged, key, entry).await.map_err(tidy)?;
    if let Some(p) = &placement {
        objstore_clone::still_there(p)?;
    }
    staged.finish_objects().map_err(|cause| {
        tidy(Error::Io {
            what: "finish",
            path: staged_shown.clone(),
            cause,
        })
    })?;
    place(staged, target, reclone)?;
    Ok((placement, fingerprint))
}

/// Set up a freshly staged bare repository: `git init --bare` as SPEC
/// §1.5, the mirror remote, description/owner/HEAD, and (for a later
/// object-storage member) alternates before the first fetch.
async fn init_staged(
    ctx: &JobContext,
    staged: &Staged,
    key: &str,
    entry: &RepoEntry,
    alternates: Option<&Path>,
) -> Result<(), Error> {
    let env_owned = staged.env();
    let env: Vec<(&str, &OsStr)> = env_owned.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    let path_buf = staged.path();
    let path = path_buf.as_path();
    gitio::run_ok(
        &ctx.git,
        None,
        [
            OsStr::new("init"),
            "--bare".as_ref(),
            "-q".as_ref(),
            path.as_os_str(),
        ],
        &env,
    )
    .await?;
    if let Ok(entries) = fs::read_dir(path.join("hooks")) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "sample") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    let fetch_head = path.join("FETCH_HEAD");
    let _ = fs::remove_file(&fetch_head);
    std::os::unix::fs::symlink("/dev/null", &fetch_head).map_err(|cause| Error::Io {
        what: "create",
        path: fetch_head.clone(),
        cause,
    })?;
    {
        let mut cfg = git_config::open(path)?;
        git_config::set(&mut cfg, path, "gc.auto", "0")?;
    }
    let ffonly = ctx.settings.ffonly.is_match(key);
    set_remote(
        path,
        &ctx.settings.remotename,
        &ctx.settings.url_of(key),
        ffonly,
        true,
    )?;
    apply_params(&ctx.git, path, entry, &ctx.settings.default_owner)?;
    if let Some(alt) = alternates {
        grokmirror::repo::alternates::write(&staged.objects_dir(), alt).map_err(|cause| {
            Error::Io {
                what: "write alternates in",
                path: path.to_path_buf(),
                cause,
            }
        })?;
    }
    Ok(())
}

/// Fetch into the staged clone and record its fingerprint and timestamp;
/// returns the fingerprint.
async fn fetch_staged(
    ctx: &JobContext,
    staged: &Staged,
    key: &RepoKey,
    entry: &RepoEntry,
) -> Result<Option<String>, Error> {
    let staged_io = staged.path();
    info!("    fetch: {key} (new clone)");
    let env_owned = staged.env();
    let env: Vec<(&str, &OsStr)> = env_owned.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    gitio::fetch(
        &ctx.git,
        &staged_io,
        &ctx.settings.remotename,
        key,
        ctx.settings.retries,
        ctx.settings.fetch_timeout,
        &env,
    )
    .await?;
    // Everything is recorded while the objects still have their staging
    // name: the staged clone must not look like a repository to tree walks
    // (grokmirror 2.x's descends into the staging area) for longer than
    // the two renames below, should this process be killed in between.
    let fingerprint = staged_fingerprint(&ctx.git, &staged_io, &env).await;
    if let Some(fp) = &fingerprint {
        repo::write_fingerprint(&staged_io, fp).map_err(|cause| Error::Record {
            what: "fingerprint",
            key: key.to_string(),
            cause,
        })?;
    }
    repo::write_timestamp_and_agefile(&staged_io, entry.modified).map_err(|cause| {
        Error::Record {
            what: "timestamp",
            key: key.to_string(),
            cause,
        }
    })?;
    Ok(fingerprint)
}

/// The fingerprint of a staged clone whose objects are still under their
/// staging name (`env` points git at them): what `git show-ref` prints,
/// hashed, as [`refs::snapshot`] would find it once they are renamed.
async fn staged_fingerprint(git: &Git, path: &Path, env: gitio::Env<'_>) -> Option<String> {
    match gitio::run(git, Some(path), ["show-ref"], env).await {
        // Exit 1 without output: no refs at all.
        Ok(out) if out.success() || out.stdout.is_empty() => {
            refs::fingerprint_of_show_ref(&out.stdout, &GlobList::default())
        }
        Ok(out) => {
            warn!(
                "cannot read the refs of {}: {}",
                path.display(),
                out.stderr_str().trim()
            );
            None
        }
        Err(e) => {
            warn!("cannot read the refs of {}: {e}", path.display());
            None
        }
    }
}

/// Move the finished clone to its path: in one rename, or for a re-clone
/// in one exchange with the old copy (which is then deleted).
fn place(staged: Staged, target: &Target, reclone: bool) -> Result<(), Error> {
    let name = target.key.name();
    let placed = if reclone {
        staged
            .exchange(&target.parent, name, &target.lock)
            .map(drop)
    } else {
        if target.replaces_symlink {
            // Only ever a symlink: the kernel refuses to unlink a directory
            // that raced into its place.
            target
                .parent
                .remove_file(name)
                .map_err(Error::ReplaceSymlink)?;
        }
        staged.publish(&target.parent, name)
    };
    placed.map_err(|cause| Error::Publish {
        path: target.path.clone(),
        cause,
    })
}

/// With the clone in place: into the object storage with it (public
/// members only), its hook, its symlinks, and what housekeeping it needs.
async fn after_placing(
    ctx: &JobContext,
    job: RepoJob,
    target: Target,
    entry: RepoEntry,
    placement: Option<Placement>,
    fingerprint: Option<String>,
    reclone: bool,
) -> FinishedJob {
    let key = &target.key;
    let path = &target.path;
    let obstrepo = match &placement {
        Some(p) if !p.private => Some(p.obstrepo.clone()),
        Some(_) => None,
        None if reclone && !ctx.objstore.is_private(key, path) => {
            grokmirror::objstore::objstore_of(path)
                .filter(|o| grokmirror::objstore::is_member(o, path))
        }
        None => None,
    };
    if let Some(obst) = obstrepo {
        objstore_clone::after_clone(
            ctx.objstore.clone(),
            ctx.git.clone(),
            obst,
            path.clone(),
            key.to_string(),
        )
        .await;
    }
    hooks::post_update(
        &ctx.settings.post_update_hook,
        path,
        ctx.settings.hook_timeout,
    )
    .await;
    place_symlinks(ctx, key, path, &entry);
    let mut housekeeping = housekeeping_after_fetch(ctx, path, key, true);
    // A clone into object storage was fetched into it above (the group's
    // next clones count on that), nothing is left for housekeeping there.
    housekeeping.objstore = None;
    let mut recorded = entry;
    recorded.fingerprint = fingerprint;
    FinishedJob {
        change: Some(Change::Upsert(key.to_string(), recorded)),
        fresh_clone: (!reclone).then(|| path.clone()),
        outcome: JobOutcome::Cloned,
        housekeeping,
        received_bytes: stored_bytes(path),
        job,
    }
}
