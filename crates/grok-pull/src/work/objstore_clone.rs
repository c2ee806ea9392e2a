//! Cloning forks straight into their object storage (SPEC §1.10).
//!
//! A new repository whose manifest entry names a fork group borrows from
//! `${objstore}/<forkgroup>.git` from its very first fetch, so it only
//! downloads what the group does not have yet; once in place, its objects
//! are copied into the object storage (unless it is private) and its own
//! copies dropped. The first clone of a group creates the object storage:
//! from an existing sibling already on disk when there is one, otherwise
//! from a preload bundle (`[remote] preload_bundle_url`) or from itself.
//! The scheduler holds the group's other clones back meanwhile, so they
//! find it populated.
//!
//! # Safety and locks
//!
//! The clone job holds the new repository's lock throughout; the object
//! storage's lock is taken after it (the order grok-fsck uses too), while
//! the object storage is created or seeded and the staged clone is pointed
//! at it (so grok-fsck, which deletes unused object storage only under its
//! lock after looking at staged clones, never deletes one a clone is about
//! to use), and again while the published clone is fetched into it. A
//! sibling's lock is only tried. Every step leaves each repository valid:
//! the object storage gets a sibling's objects before the sibling borrows
//! from it, and a clone drops its own copies only after they were copied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use grokmirror::config::glob::GlobList;
use grokmirror::formats::manifest::RepoEntry;
use grokmirror::git::Git;
use grokmirror::lock::{self, RepoLock};
use grokmirror::objstore::grouping::{self, Forkgroups};
use grokmirror::objstore::{self, FetchMethod};
use grokmirror::repo;
use tracing::{debug, info, warn};

use crate::settings::Settings;

/// Why a fork's object storage could not be readied or used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Its lock could not be taken.
    #[error(transparent)]
    Lock(#[from] lock::Error),
    /// Its lock was never free.
    #[error("{} stayed locked", .0.display())]
    StayedLocked(PathBuf),
    /// Creating it, or fetching into it, failed.
    #[error(transparent)]
    Objstore(#[from] objstore::Error),
    /// The blocking set-up did not finish.
    #[error("object storage setup stopped: {0}")]
    SetupStopped(#[source] tokio::task::JoinError),
    /// It vanished while the clone was being built.
    #[error("its object storage {} disappeared during the clone", .0.display())]
    Disappeared(PathBuf),
    /// It vanished before the clone was fetched into it.
    #[error("{} is gone", .0.display())]
    Gone(PathBuf),
}

/// The object-storage settings of a pull.
#[derive(Debug, Clone, Default)]
pub struct Objstore {
    /// `[core] toplevel`.
    pub toplevel: PathBuf,
    /// `[core] objstore` (real path when it exists).
    pub dir: PathBuf,
    /// `[core] private`.
    pub private: GlobList,
    /// `[core] objstore_uses_plumbing`.
    pub method: FetchMethod,
    /// `[remote] preload_bundle_url`.
    pub preload_url: Option<String>,
    /// `[fsck] extra_repack_flags`, for the quick repacks.
    pub extra_repack_flags: Vec<String>,
    /// Which repository belongs to which group.
    pub groups: Forkgroups,
}

impl Objstore {
    /// The settings of `settings`, without groups yet.
    pub fn from_settings(settings: &Settings) -> Objstore {
        let core = &settings.config.core;
        Objstore {
            toplevel: settings.toplevel().to_path_buf(),
            dir: std::fs::canonicalize(&core.objstore).unwrap_or_else(|_| core.objstore.clone()),
            private: core.private.clone(),
            method: FetchMethod::from_config(core.objstore_uses_plumbing),
            preload_url: settings.preload_bundle_url.clone(),
            extra_repack_flags: settings.extra_repack_flags.clone(),
            groups: Forkgroups::default(),
        }
    }

    /// Whether a repository is private (`[core] private` matches its
    /// manifest path or its full path): it may borrow from object storage
    /// but its objects never go into one.
    pub fn is_private(&self, key: &str, path: &Path) -> bool {
        self.private.is_match(key) || self.private.is_match(&path.to_string_lossy())
    }

    /// The object-storage repo of a group.
    pub fn repo_of(&self, group: &str) -> PathBuf {
        self.dir.join(format!("{group}.git"))
    }

    /// Whether the object storage of `group` exists and holds objects.
    pub fn is_populated(&self, group: &str) -> bool {
        let obst = self.repo_of(group);
        repo::is_objstore_repo(&obst) && objstore::is_populated(&obst)
    }
}

/// Work out every included repository's fork group and record it in the
/// entries; returns the groups.
pub fn assign(
    settings: &Settings,
    git: &Git,
    objstore: &Objstore,
    culled: &BTreeMap<&str, &RepoEntry>,
    local: &BTreeMap<String, RepoEntry>,
) -> Forkgroups {
    let toplevel = settings.toplevel();
    let ours = objstore::local_forkgroups(git, &objstore.dir, toplevel);
    grouping::assign(
        toplevel,
        culled,
        local,
        &ours,
        &mut objstore::new_forkgroup_name,
    )
}

/// Where a clone goes: the object storage it borrows from.
#[derive(Debug)]
pub struct Placement {
    /// The object-storage repo.
    pub obstrepo: PathBuf,
    /// The clone is private: it borrows, but is never fetched into it.
    pub private: bool,
    /// Held until the staged clone points at the object storage.
    pub guard: Option<RepoLock>,
}

fn lock_patiently(path: &Path) -> Result<RepoLock, Error> {
    lock::acquire_repo_noting(path, lock::Wait::Forever, || {
        info!("  waiting: {} is locked by another process", path.display())
    })?
    .ok_or_else(|| Error::StayedLocked(path.to_path_buf()))
}

/// Get the object storage of a new clone ready: created (seeded from a
/// sibling on disk when there is one) if missing. `None` when the
/// repository belongs to no group. The returned placement holds the object
/// storage's lock; release it once the staged clone points there.
pub async fn prepare(
    ctx: Arc<Objstore>,
    git: Git,
    key: String,
    target: PathBuf,
) -> Result<Option<Placement>, Error> {
    let Some(group) = ctx.groups.group_of(&key).map(str::to_string) else {
        return Ok(None);
    };
    let private = ctx.is_private(&key, &target);
    let obst = ctx.repo_of(&group);
    let setup = {
        let ctx = ctx.clone();
        let git = git.clone();
        let obst = obst.clone();
        tokio::task::spawn_blocking(move || -> Result<(RepoLock, PathBuf, bool), Error> {
            let guard = lock_patiently(&obst)?;
            if repo::is_objstore_repo(&obst) {
                let real = std::fs::canonicalize(&obst).unwrap_or(obst);
                return Ok((guard, real, false));
            }
            let made = objstore::create(&git, &ctx.dir, Some(&group))?;
            info!(" objstore: new objstore repo {}", made.display());
            let seeded = seed_from_sibling(&ctx, &git, &group, &made, &target);
            Ok((guard, made, !seeded))
        })
    };
    let (guard, obst, empty) = setup.await.map_err(Error::SetupStopped)??;
    if empty {
        if let Some(url) = &ctx.preload_url {
            preload(&git, url, &obst).await;
        }
    }
    Ok(Some(Placement {
        obstrepo: obst,
        private,
        guard: Some(guard),
    }))
}

/// Seed a new object storage from a sibling of `target` already on disk
/// (public, borrowing from nobody, not busy): its objects are fetched in,
/// then it borrows from the object storage and drops its own copies.
/// Returns whether one was used. Caller holds the object storage's lock.
fn seed_from_sibling(ctx: &Objstore, git: &Git, group: &str, obst: &Path, target: &Path) -> bool {
    for sibling in ctx.groups.siblings(group, target) {
        if !repo::is_bare_repo(&sibling)
            || repo::alternates::lender(&sibling).is_some()
            || sibling.join(repo::DO_NOT_OBJSTORE_FILE).exists()
        {
            continue;
        }
        let key = grokmirror::tree::key::manifest_style(&ctx.toplevel, &sibling);
        if ctx.is_private(&key, &sibling) {
            continue;
        }
        // Out of lock order (we hold the object storage's): only tried.
        let Ok(Some(_sibling_lock)) = lock::acquire_repo(&sibling, lock::Wait::No) else {
            continue;
        };
        info!(
            " objstore: reusing {} for {}",
            sibling.display(),
            obst.display()
        );
        // Step 1: its objects go in. Step 2: it borrows from there.
        let copied = objstore::add_member(obst, &sibling)
            .and_then(|_| objstore::fetch_member(git, obst, &sibling, ctx.method))
            .and_then(|_| objstore::point_at(&sibling, obst));
        if let Err(e) = copied {
            warn!(" objstore: cannot reuse {}: {e}", sibling.display());
            continue;
        }
        // Step 3: it drops what the object storage holds.
        quick_repack(git, &sibling, &ctx.extra_repack_flags);
        return true;
    }
    false
}

/// `git repack -Adlq` (plus `[fsck] extra_repack_flags`): a borrower keeps
/// only what its lender lacks.
fn quick_repack(git: &Git, repo: &Path, extra: &[String]) {
    if let Err(e) = grokmirror::repo::repack::drop_commit_graph(repo) {
        debug!("cannot remove the commit-graph of {}: {e}", repo.display());
    }
    let cruft = grokmirror::repo::grace::cruft_packs(repo);
    // A borrower: its repack is what drops what the object storage holds.
    let args = grokmirror::repo::repack::quick_repack_args(
        grokmirror::repo::repack::QuickRepack::AllInOne,
        extra,
        &cruft,
    );
    match git.run(Some(repo), &args) {
        Ok(o) if o.success() => {}
        Ok(o) => debug!("cannot repack {}: {}", repo.display(), o.stderr_str()),
        Err(e) => debug!("cannot repack {}: {e}", repo.display()),
    }
}

/// Fill an empty object storage from the origin's preload bundle
/// (`<preload_bundle_url>/<forkgroup>.bundle`), if it has one. Failures
/// only mean a slower first clone.
async fn preload(git: &Git, base_url: &str, obst: &Path) {
    let Some(group) = objstore::forkgroup_name(obst) else {
        return;
    };
    let url = format!("{}/{group}.bundle", base_url.trim_end_matches('/'));
    let bundle = obst
        .parent()
        .unwrap_or(Path::new("/"))
        .join(format!(".{group}.bundle.{}", std::process::id()));
    match download(&url, &bundle).await {
        Ok(true) => {}
        Ok(false) => {
            debug!("no preload bundle at {url}");
            let _ = std::fs::remove_file(&bundle);
            return;
        }
        Err(e) => {
            warn!(" objstore: cannot download {url}: {e:#}");
            let _ = std::fs::remove_file(&bundle);
            return;
        }
    }
    info!(" objstore: preloading {group}.bundle");
    let fetched = crate::work::gitio::run_ok(
        git,
        Some(obst),
        [
            std::ffi::OsStr::new("fetch"),
            "-q".as_ref(),
            bundle.as_os_str(),
            "+refs/*:refs/*".as_ref(),
        ],
        &[],
    )
    .await;
    let _ = std::fs::remove_file(&bundle);
    match fetched {
        Ok(_) => {
            let _ = crate::work::gitio::run_ok(git, Some(obst), ["pack-refs", "--all"], &[]).await;
            let _ =
                crate::work::gitio::run_ok(git, Some(obst), ["commit-graph", "write"], &[]).await;
            info!(" objstore: preloaded {group}.bundle");
        }
        Err(e) => warn!(" objstore: cannot preload from {url}: {e}"),
    }
}

/// Download `url` to `dest`. `Ok(false)` when the server has no such file.
async fn download(url: &str, dest: &Path) -> anyhow::Result<bool> {
    use std::io::Write;
    let parsed = reqwest::Url::parse(url)?;
    let client = crate::source::client(std::time::Duration::from_secs(
        crate::settings::DEFAULT_MANIFEST_TIMEOUT as u64,
    ))?;
    let mut req = client.get(parsed.clone());
    if let Some((login, password)) = parsed.host_str().and_then(crate::source::netrc_credentials) {
        req = req.basic_auth(login, password);
    }
    let mut response = req.send().await?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(false);
    }
    if !response.status().is_success() {
        anyhow::bail!("the server answered {}", response.status());
    }
    let mut file = std::fs::File::create(dest)?;
    while let Some(chunk) = response.chunk().await? {
        file.write_all(&chunk)?;
    }
    file.sync_all()?;
    Ok(true)
}

/// Just before a staged clone is moved into place: its object storage must
/// still be there.
pub fn still_there(placement: &Placement) -> Result<(), Error> {
    if repo::is_objstore_repo(&placement.obstrepo) {
        Ok(())
    } else {
        Err(Error::Disappeared(placement.obstrepo.clone()))
    }
}

/// After a clone (or re-clone) of a public member was moved into place:
/// fetch it into its object storage and let it drop its own copies.
/// Caller holds the member's lock.
pub async fn after_clone(
    ctx: Arc<Objstore>,
    git: Git,
    obst: PathBuf,
    member: PathBuf,
    key: String,
) {
    let done = tokio::task::spawn_blocking(move || {
        {
            let _o = lock_patiently(&obst)?;
            if !repo::is_objstore_repo(&obst) {
                return Err(Error::Gone(obst));
            }
            info!(" objstore: {key}");
            objstore::add_member(&obst, &member)
                .and_then(|_| objstore::fetch_member(&git, &obst, &member, ctx.method))?;
        }
        quick_repack(&git, &member, &ctx.extra_repack_flags);
        Ok::<(), Error>(())
    })
    .await;
    match done {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(" objstore: {e}; grok-fsck will catch up"),
        Err(e) => warn!(" objstore: stopped: {e}"),
    }
}
