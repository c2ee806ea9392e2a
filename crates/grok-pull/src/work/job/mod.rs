//! Doing one unit of work: clone, re-clone, update or purge a repository.
//!
//! A repository is worked on only under its lock (the one grokmirror
//! takes too). New repositories are built in the staging area and appear
//! at their path in one rename, complete; a failed or interrupted clone
//! leaves nothing at the path. Git settings are written in-process; git
//! itself runs for `init` and `fetch`. What a fetch leaves to tidy up
//! (`pack-refs`, a quick repack, the object-storage fetch) is handed to
//! [`crate::work::housekeeping`] with the finished job.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use grokmirror::deletion::{self, Facts, Removal, Verdict};
use grokmirror::discovery::{self, Found, WalkOptions};
use grokmirror::fsutil;
use grokmirror::git::Git;
use grokmirror::glob::GlobList;
use grokmirror::lock::{RepoLock, Wait};
use grokmirror::manifest::RepoEntry;
use grokmirror::objects;
use grokmirror::tree::{Dir, Kind, RepoKey, Tree};
use grokmirror::{refs, repo};
use tracing::{debug, info, warn};

use crate::plan::{Action, RepoJob};
use crate::settings::Settings;
use crate::work::gitio;
use crate::work::hooks;
use crate::work::housekeeping::Actions;
use crate::work::objstore_clone::{self, Objstore};
use crate::work::out_of_sight::Staged;

/// What every job shares.
#[derive(Debug)]
pub struct JobContext {
    /// The run's settings.
    pub settings: Settings,
    /// The git to run.
    pub git: Git,
    /// The top level, opened once: every change on disk goes through it.
    pub tree: Tree,
    /// The purge rules and this run's approved purges, for the deletion
    /// gate.
    pub gate: deletion::Rules,
    /// Real paths of repositories others borrow objects from; found by a
    /// tree walk, done at most once per run and only when needed.
    pub borrowed: OnceLock<BTreeSet<PathBuf>>,
    /// Object storage: settings and fork groups.
    pub objstore: Arc<Objstore>,
}

impl JobContext {
    fn toplevel(&self) -> &Path {
        self.settings.toplevel()
    }

    fn borrowed(&self) -> &BTreeSet<PathBuf> {
        self.borrowed.get_or_init(|| {
            let set = std::sync::Mutex::new(BTreeSet::new());
            discovery::walk(self.toplevel(), &WalkOptions::default(), &|f| {
                if let Found::Repo(p) = f {
                    if let Some(alt) = repo::alternate_repo(&p) {
                        set.lock().expect("poisoned").insert(alt);
                    }
                }
            });
            set.into_inner().expect("poisoned")
        })
    }

    /// Whether others borrow objects from the repository at `path`.
    fn is_borrowed(&self, path: &Path) -> bool {
        fs::canonicalize(path).is_ok_and(|real| self.borrowed().contains(&real))
    }

    /// The deletion gate: may the repository `key` (at `dir`, a path
    /// through its handle) go for `removal`? Logs why not.
    fn may_remove(&self, key: &RepoKey, dir: &Path, removal: &Removal) -> bool {
        let facts = Facts {
            borrowed: self.is_borrowed(dir),
        };
        match deletion::judge(&self.gate, key, removal, facts) {
            Verdict::Delete => true,
            Verdict::Keep(why) => {
                let what = match removal {
                    Removal::Purge => format!("purging {key}"),
                    Removal::ReplaceWithSymlink { to } => {
                        format!("replacing the repository {key} with a symlink to {to}")
                    }
                    Removal::Reclone => format!("re-cloning {key}"),
                    Removal::UnusedObjectStorage => format!("deleting {key}"),
                };
                info!("     keep: not {what}: {why}");
                false
            }
        }
    }
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// A new repository is in place.
    Cloned,
    /// Fetched or reconfigured.
    Updated,
    /// Checked; nothing needed doing.
    Unchanged,
    /// Deleted.
    Purged,
    /// Deliberately left alone (reason logged); not a failure.
    Skipped,
    /// Somebody else holds the repository's lock; try again later.
    Busy,
    /// Failed; the next run tries again.
    Failed(String),
}

/// A change to the local manifest.
#[derive(Debug, Clone)]
pub enum Change {
    /// Record this entry.
    Upsert(String, RepoEntry),
    /// Drop this key.
    Remove(String),
}

/// A finished job.
#[derive(Debug)]
pub struct FinishedJob {
    /// The job.
    pub job: RepoJob,
    /// How it ended.
    pub outcome: JobOutcome,
    /// What to record.
    pub change: Option<Change>,
    /// The path of a brand-new clone (for `post_clone_complete_hook`).
    pub fresh_clone: Option<PathBuf>,
    /// Housekeeping the repository needs now.
    pub housekeeping: Actions,
}

impl FinishedJob {
    fn new(job: RepoJob, outcome: JobOutcome) -> FinishedJob {
        FinishedJob {
            job,
            outcome,
            change: None,
            fresh_clone: None,
            housekeeping: Actions::default(),
        }
    }

    /// A failed job.
    pub fn failed(job: RepoJob, why: impl Into<String>) -> FinishedJob {
        FinishedJob::new(job, JobOutcome::Failed(why.into()))
    }
}

/// Run one job to its end.
pub async fn run(ctx: Arc<JobContext>, job: RepoJob) -> FinishedJob {
    match job.action {
        Action::Clone => clone(&ctx, job, false).await,
        Action::Reclone => clone(&ctx, job, true).await,
        Action::Update { .. } => update(&ctx, job).await,
        Action::Purge => purge(&ctx, job).await,
    }
}

/// Take the lock of the repository `name` in `parent` if it is free
/// (through the parent's handle, so the lock is the one of the directory we
/// work on). With it taken, git lock files older than this moment
/// (`config.lock`, `packed-refs.lock`, ref locks) are leftovers of a git,
/// or of our own libgit2 writes, that was killed: every grokmirror-aware
/// writer holds the repository's lock while it works. They are removed, or
/// every later change to that file would fail, run after run.
fn try_lock(parent: &Dir, name: &std::ffi::OsStr) -> Result<Option<RepoLock>, String> {
    parent.lock_entry(name, Wait::No).map_err(|e| e.to_string())
}

/// An error text with the handle's `/proc` path replaced by the path the
/// operator knows.
fn shown(why: impl Into<String>, io: &Path, shown: &Path) -> String {
    let why = why.into();
    match io.to_str() {
        Some(io) => why.replace(io, &shown.display().to_string()),
        None => why,
    }
}

fn git_config(path: &Path) -> Result<git2::Config, String> {
    git2::Config::open(&path.join("config"))
        .map_err(|e| format!("cannot open {}/config: {}", path.display(), e.message()))
}

fn config_err(path: &Path, e: git2::Error) -> String {
    format!("cannot write {}/config: {}", path.display(), e.message())
}

/// Point the mirror remote at `url` (`git remote add --mirror=fetch`, with
/// a fetch refspec without `+` for ffonly repos). With `reset`, or when the
/// remote is missing or points elsewhere, any old definition goes first.
/// Returns whether anything changed.
fn set_remote(
    path: &Path,
    name: &str,
    url: &str,
    ffonly: bool,
    reset: bool,
) -> Result<bool, String> {
    let mut cfg = git_config(path)?;
    let url_key = format!("remote.{name}.url");
    let fetch_key = format!("remote.{name}.fetch");
    let refspec = if ffonly {
        "refs/*:refs/*"
    } else {
        "+refs/*:refs/*"
    };
    let current_url = cfg.get_string(&url_key).ok();
    let mut current_fetch = Vec::new();
    if let Ok(mut entries) = cfg.multivar(&fetch_key, None) {
        while let Some(Ok(e)) = entries.next() {
            current_fetch.push(e.value().unwrap_or_default().to_string());
        }
    }
    if !reset && current_url.as_deref() == Some(url) && current_fetch == [refspec] {
        return Ok(false);
    }
    // Drop every key of the old remote section, as `git remote remove`
    // would (without touching any refs).
    let prefix = format!("remote.{name}.");
    let mut old_keys = BTreeSet::new();
    if let Ok(mut entries) = cfg.entries(None) {
        while let Some(Ok(e)) = entries.next() {
            if let Some(n) = e.name() {
                if n.to_ascii_lowercase()
                    .starts_with(&prefix.to_ascii_lowercase())
                {
                    old_keys.insert(n.to_string());
                }
            }
        }
    }
    for k in old_keys {
        cfg.remove_multivar(&k, ".*")
            .map_err(|e| config_err(path, e))?;
    }
    cfg.set_str(&url_key, url)
        .map_err(|e| config_err(path, e))?;
    cfg.set_str(&fetch_key, refspec)
        .map_err(|e| config_err(path, e))?;
    Ok(true)
}

/// Make description, owner and HEAD what the manifest says (the owner
/// falls back to `[pull] default_owner`). Returns whether anything changed.
fn apply_params(
    git: &Git,
    path: &Path,
    entry: &RepoEntry,
    default_owner: &str,
) -> Result<bool, String> {
    let mut changed = false;
    if let Some(desc) = &entry.description {
        let file = path.join("description");
        changed |= fsutil::write_if_changed(&file, desc.as_bytes())
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    }
    let owner = entry.owner.as_deref().unwrap_or(default_owner);
    let mut cfg = git_config(path)?;
    if cfg.get_string("gitweb.owner").ok().as_deref() != Some(owner) {
        cfg.set_str("gitweb.owner", owner)
            .map_err(|e| config_err(path, e))?;
        changed = true;
    }
    if let Some(head) = &entry.head {
        changed |= set_head(git, path, head)?;
    }
    Ok(changed)
}

/// Point HEAD where the manifest says (already validated as `ref:
/// refs/...` or an object id).
fn set_head(git: &Git, path: &Path, head: &str) -> Result<bool, String> {
    if path.join("reftable").is_dir() {
        // The HEAD file of a reftable repository is a placeholder; ask git.
        let current = repo::read_head(git, path);
        if current.as_deref() == Some(head) {
            return Ok(false);
        }
        let out = match head.strip_prefix("ref: ") {
            Some(target) => git.run(Some(path), ["symbolic-ref", "HEAD", target]),
            None => git.run(Some(path), ["update-ref", "--no-deref", "HEAD", head]),
        }
        .map_err(|e| e.to_string())?;
        if !out.success() {
            return Err(format!(
                "cannot set HEAD of {}: {}",
                path.display(),
                out.stderr_str()
            ));
        }
        return Ok(true);
    }
    let file = path.join("HEAD");
    let current = fs::read_to_string(&file).unwrap_or_default();
    if current.trim_end() == head {
        return Ok(false);
    }
    fsutil::write_atomic(&file, format!("{head}\n").as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    Ok(true)
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

fn fingerprint_now(git: &Git, path: &Path) -> Option<String> {
    match refs::snapshot(git, path, &GlobList::default(), false) {
        Ok(s) => s.fingerprint,
        Err(e) => {
            warn!("cannot read the refs of {}: {e}", path.display());
            None
        }
    }
}

/// What a repository needs after a fetch that changed its refs
/// (grokmirror's rules): `pack-refs --all` after the first fetch; a quick
/// repack and `pack-refs` when loose objects piled up (never for precious
/// repositories, see [`objects::worth_quick_repack`]); for a member of an
/// object-storage repository that is not private, fetching its new objects
/// there.
fn housekeeping_after_fetch(ctx: &JobContext, path: &Path, key: &str, first: bool) -> Actions {
    let mut actions = Actions {
        pack_refs_all: first,
        ..Actions::default()
    };
    match objects::worth_quick_repack(path) {
        Ok(worth) => {
            actions.repack = worth;
            actions.pack_refs = worth;
        }
        Err(e) => debug!("cannot count the objects of {key}: {e}"),
    }
    // New objects go into the object storage lazily, by housekeeping
    // (grok-fsck catches up with anything missed); private repositories'
    // objects never go there.
    if !ctx.objstore.is_private(key, path) {
        actions.objstore = grokmirror::objstore::objstore_of(path);
    }
    actions
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
) -> Result<(), String> {
    let env_owned = staged.env();
    let env: Vec<(&str, &std::ffi::OsStr)> =
        env_owned.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    let path_buf = staged.path();
    let path = path_buf.as_path();
    gitio::run_ok(
        &ctx.git,
        None,
        [
            std::ffi::OsStr::new("init"),
            "--bare".as_ref(),
            "-q".as_ref(),
            path.as_os_str(),
        ],
        &env,
    )
    .await
    .map_err(|e| e.to_string())?;
    if let Ok(entries) = fs::read_dir(path.join("hooks")) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "sample") {
                let _ = fs::remove_file(e.path());
            }
        }
    }
    let fetch_head = path.join("FETCH_HEAD");
    let _ = fs::remove_file(&fetch_head);
    std::os::unix::fs::symlink("/dev/null", &fetch_head)
        .map_err(|e| format!("cannot create {}: {e}", fetch_head.display()))?;
    {
        let mut cfg = git_config(path)?;
        cfg.set_i64("gc.auto", 0).map_err(|e| config_err(path, e))?;
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
        let info = staged.objects_dir().join("info");
        fs::create_dir_all(&info).map_err(|e| format!("cannot create {}: {e}", info.display()))?;
        fsutil::write_atomic(
            &info.join("alternates"),
            format!("{}\n", alt.join("objects").display()).as_bytes(),
        )
        .map_err(|e| format!("cannot write alternates in {}: {e}", path.display()))?;
    }
    Ok(())
}

/// Clone a new repository (or, with `reclone`, a fresh copy of an existing
/// one) in the staging area and move it into place.
async fn clone(ctx: &JobContext, job: RepoJob, reclone: bool) -> FinishedJob {
    let key = match ctx.tree.key(&job.key) {
        Ok(k) => k,
        Err(why) => return FinishedJob::failed(job, why),
    };
    let target = ctx.tree.path_of(&key);
    let parent = match ctx.tree.parent_of(&key, true) {
        Ok(p) => p,
        Err(e) => return FinishedJob::failed(job, e.to_string()),
    };
    let name = key.name();
    let here = parent.io_path().join(name);
    let _lock = match try_lock(&parent, name) {
        Ok(Some(l)) => l,
        Ok(None) => return FinishedJob::new(job, JobOutcome::Busy),
        Err(why) => return FinishedJob::failed(job, why),
    };
    let mut replaces_symlink = false;
    let kind = match parent.kind_of(name) {
        Ok(k) => k,
        Err(e) => return FinishedJob::failed(job, e.to_string()),
    };
    if !reclone {
        match kind {
            None => {}
            Some(Kind::Symlink) => replaces_symlink = true,
            Some(Kind::Dir) if repo::is_bare_repo(&here) => {
                // Somebody else cloned it meanwhile: just bring it up to date.
                drop(_lock);
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
            // An empty directory may go; anything else stays.
            Some(Kind::Dir) if parent.remove_empty_dir(name).is_ok() => {}
            Some(Kind::Dir) => {
                return FinishedJob::failed(
                    job,
                    format!(
                        "{} exists and is not a git repository; move it away",
                        target.display()
                    ),
                );
            }
            Some(_) => {
                return FinishedJob::failed(
                    job,
                    format!(
                        "{} exists and is not a directory; move it away",
                        target.display()
                    ),
                )
            }
        }
    } else if kind != Some(Kind::Dir) || !repo::is_bare_repo(&here) {
        return FinishedJob::failed(
            job,
            format!("{} is no longer a repository", target.display()),
        );
    } else if !ctx.may_remove(&key, &target, &Removal::Reclone) {
        return FinishedJob::new(job, JobOutcome::Skipped);
    }
    let entry = job.entry.clone().unwrap_or_default();
    let mut staged = match Staged::for_clone(&ctx.tree, &parent, &key) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            return FinishedJob::new(job, JobOutcome::Busy)
        }
        Err(e) => {
            return FinishedJob::failed(job, format!("cannot create a staging directory: {e}"))
        }
    };
    let staged_io = staged.path();
    let staged_shown = staged.shown();
    let tidy = |why: String| shown(why, &staged_io, &staged_shown);
    // A re-clone keeps borrowing from the same object storage; a fork
    // borrows from its group's from the first fetch on.
    let mut placement = None;
    let alternates = if reclone {
        repo::alternate_repo(&here)
    } else {
        let prepared = objstore_clone::prepare(
            ctx.objstore.clone(),
            ctx.git.clone(),
            key.to_string(),
            target.clone(),
        )
        .await;
        match prepared {
            Ok(p) => {
                placement = p;
                placement.as_ref().map(|p| p.obstrepo.clone())
            }
            Err(why) => return FinishedJob::failed(job, why),
        }
    };
    if reclone {
        let reason = fs::read_to_string(here.join(repo::RECLONE_FILE)).unwrap_or_default();
        info!("  reclone: {key}");
        debug!("reclone reason for {key}: {}", reason.trim());
    }
    if let Err(why) = init_staged(ctx, &staged, &key, &entry, alternates.as_deref()).await {
        return FinishedJob::failed(job, tidy(why));
    }
    if let Some(p) = placement.as_mut() {
        // The staged clone points at it now (grok-fsck sees that).
        p.guard = None;
    }
    info!("    fetch: {key} (new clone)");
    let env_owned = staged.env();
    let env: Vec<(&str, &std::ffi::OsStr)> =
        env_owned.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    if let Err(why) = gitio::fetch(
        &ctx.git,
        &staged_io,
        &ctx.settings.remotename,
        &key,
        ctx.settings.retries,
        ctx.settings.fetch_timeout,
        &env,
    )
    .await
    {
        return FinishedJob::failed(job, tidy(why));
    }
    // Everything is recorded while the objects still have their staging
    // name: the staged clone must not look like a repository to tree walks
    // (grokmirror 2.x's descends into the staging area) for longer than
    // the two renames below, should this process be killed in between.
    let fingerprint = staged_fingerprint(&ctx.git, &staged_io, &env).await;
    if let Some(fp) = &fingerprint {
        if let Err(e) = repo::write_fingerprint(&staged_io, fp) {
            return FinishedJob::failed(
                job,
                tidy(format!("cannot record the fingerprint of {key}: {e}")),
            );
        }
    }
    if let Err(e) = repo::write_timestamp_and_agefile(&staged_io, entry.modified) {
        return FinishedJob::failed(
            job,
            tidy(format!("cannot record the timestamp of {key}: {e}")),
        );
    }
    if let Some(Err(why)) = placement.as_ref().map(objstore_clone::still_there) {
        return FinishedJob::failed(job, why);
    }
    if let Err(e) = staged.finish_objects() {
        return FinishedJob::failed(
            job,
            tidy(format!("cannot finish {}: {e}", staged_shown.display())),
        );
    }
    let placed = if reclone {
        staged.exchange(&parent, name, &_lock).map(drop)
    } else {
        if replaces_symlink {
            // Only ever a symlink: the kernel refuses to unlink a directory
            // that raced into its place.
            if let Err(e) = parent.remove_file(name) {
                return FinishedJob::failed(job, format!("cannot replace the symlink: {e}"));
            }
        }
        staged.publish(&parent, name)
    };
    if let Err(e) = placed {
        return FinishedJob::failed(
            job,
            format!("cannot move the new clone to {}: {e}", target.display()),
        );
    }
    // Into the object storage with it (public members only).
    let obstrepo = match &placement {
        Some(p) if !p.private => Some(p.obstrepo.clone()),
        Some(_) => None,
        None if reclone && !ctx.objstore.is_private(&key, &target) => {
            grokmirror::objstore::objstore_of(&target)
                .filter(|o| grokmirror::objstore::is_member(o, &target))
        }
        None => None,
    };
    if let Some(obst) = obstrepo {
        objstore_clone::after_clone(
            ctx.objstore.clone(),
            ctx.git.clone(),
            obst,
            target.clone(),
            key.to_string(),
        )
        .await;
    }
    hooks::post_update(
        &ctx.settings.post_update_hook,
        &target,
        ctx.settings.hook_timeout,
    )
    .await;
    place_symlinks(ctx, &key, &target, &entry);
    let mut housekeeping = housekeeping_after_fetch(ctx, &target, &key, true);
    // A clone into object storage was fetched into it above (the group's
    // next clones count on that), nothing is left for housekeeping there.
    housekeeping.objstore = None;
    let mut recorded = entry;
    recorded.fingerprint = fingerprint;
    FinishedJob {
        change: Some(Change::Upsert(key.to_string(), recorded)),
        fresh_clone: (!reclone).then_some(target),
        outcome: JobOutcome::Cloned,
        housekeeping,
        job,
    }
}

/// Bring an existing repository in step: its remote, its settings, its
/// refs. Everything is done through the repository's own handle (git gets
/// it as `--git-dir=/proc/<pid>/fd/<n>`), so a directory swapped on its
/// way after we opened it cannot redirect the work.
async fn update(ctx: &JobContext, job: RepoJob) -> FinishedJob {
    let key = match ctx.tree.key(&job.key) {
        Ok(k) => k,
        Err(why) => return FinishedJob::failed(job, why),
    };
    let target = ctx.tree.path_of(&key);
    let Action::Update { adopt, .. } = job.action else {
        return FinishedJob::failed(job, "internal error: not an update");
    };
    let parent = match ctx.tree.parent_of(&key, false) {
        Ok(p) => p,
        Err(e) => return FinishedJob::failed(job, e.to_string()),
    };
    let _lock = match try_lock(&parent, key.name()) {
        Ok(Some(l)) => l,
        Ok(None) => {
            info!("    defer: {key} (locked)");
            return FinishedJob::new(job, JobOutcome::Busy);
        }
        Err(why) => return FinishedJob::failed(job, why),
    };
    let dir = match parent.open_dir(key.name()) {
        Ok(d) => d,
        Err(e) if e.is_not_found() => {
            return FinishedJob::failed(
                job,
                format!("{} is no longer a repository", target.display()),
            )
        }
        Err(e) => return FinishedJob::failed(job, e.to_string()),
    };
    let io = dir.io_path();
    let tidy = |why: String| shown(why, &io, &target);
    if !repo::is_bare_repo(&io) {
        return FinishedJob::failed(
            job,
            format!("{} is no longer a repository", target.display()),
        );
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
    let before = fingerprint_now(&ctx.git, &io);
    let mut after = before.clone();
    let mut housekeeping = Actions::default();
    let fetched = job.notified || before.as_deref() != entry.fingerprint.as_deref();
    if fetched {
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
            return FinishedJob::failed(job, tidy(why));
        }
        hooks::post_update(
            &ctx.settings.post_update_hook,
            &target,
            ctx.settings.hook_timeout,
        )
        .await;
        after = fingerprint_now(&ctx.git, &io);
        if after != before {
            housekeeping = housekeeping_after_fetch(ctx, &target, &key, before.is_none());
        }
        if let Err(e) = repo::write_timestamp_and_agefile(&io, entry.modified) {
            return FinishedJob::failed(
                job,
                tidy(format!("cannot record the timestamp of {key}: {e}")),
            );
        }
    } else {
        debug!("fingerprints match, not fetching {key}");
    }
    if let Some(fp) = &after {
        if let Err(e) = repo::write_fingerprint(&io, fp) {
            return FinishedJob::failed(
                job,
                tidy(format!("cannot record the fingerprint of {key}: {e}")),
            );
        }
    }
    changed |= place_symlinks(ctx, &key, &target, &entry);
    let mut recorded = entry;
    recorded.fingerprint = after;
    FinishedJob {
        change: Some(Change::Upsert(key.to_string(), recorded)),
        fresh_clone: None,
        housekeeping,
        outcome: if fetched || changed || adopt {
            JobOutcome::Updated
        } else {
            JobOutcome::Unchanged
        },
        job,
    }
}

/// Make the manifest's symlinks to this repository exist. Returns whether
/// any was made. A repository standing where a symlink should be is
/// replaced only when the deletion gate would purge it anyway.
fn place_symlinks(ctx: &JobContext, key: &RepoKey, target: &Path, entry: &RepoEntry) -> bool {
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
) -> Result<bool, String> {
    let link = ctx.tree.key(link)?;
    let parent = ctx.tree.parent_of(&link, true).map_err(|e| e.to_string())?;
    let name = link.name();
    let here = parent.io_path().join(name);
    match parent.kind_of(name).map_err(|e| e.to_string())? {
        None => {}
        Some(Kind::Symlink) => {
            if fs::canonicalize(&here).is_ok_and(|t| t == real_target) {
                return Ok(false);
            }
            debug!(
                "removing wrong symlink {}",
                ctx.tree.path_of(&link).display()
            );
            parent.remove_file(name).map_err(|e| e.to_string())?;
        }
        Some(Kind::Dir) if repo::is_bare_repo(&here) => {
            let removal = Removal::ReplaceWithSymlink {
                to: key.to_string(),
            };
            let held = match try_lock(&parent, name)? {
                Some(l) => l,
                None => return Err(format!("{link} is locked, trying next run")),
            };
            if !ctx.may_remove(&link, &here, &removal) {
                return Err(format!("the repository {link} stays"));
            }
            warn!("  symlink: {link} is now a symlink to {key}; deleting the repository that was there");
            let parked = Staged::park(&ctx.tree, &parent, &link, &held)
                .map_err(|e| format!("cannot remove the repository {link}: {e}"))?;
            drop(parked);
        }
        Some(_) => return Err("something else is there".into()),
    }
    parent.symlink(target, name).map_err(|e| e.to_string())?;
    Ok(true)
}

/// Delete a repository (or symlink) the origin no longer has, if the
/// deletion gate agrees.
async fn purge(ctx: &JobContext, job: RepoJob) -> FinishedJob {
    let key = match ctx.tree.key(&job.key) {
        Ok(k) => k,
        Err(why) => return FinishedJob::failed(job, why),
    };
    let target = ctx.tree.path_of(&key);
    let gone = |job| FinishedJob {
        change: Some(Change::Remove(key.to_string())),
        ..FinishedJob::new(job, JobOutcome::Purged)
    };
    let parent = match ctx.tree.parent_of(&key, false) {
        Ok(p) => p,
        Err(e) if e.is_not_found() => return gone(job),
        Err(e) => return FinishedJob::failed(job, e.to_string()),
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
                return FinishedJob::failed(job, format!("cannot remove the symlink: {e}"));
            }
            return gone(job);
        }
        Ok(Some(Kind::Dir)) => {}
        Ok(Some(_)) => {
            return FinishedJob::failed(
                job,
                format!("{} is not a repository; not purging it", target.display()),
            )
        }
        Err(e) => return FinishedJob::failed(job, e.to_string()),
    }
    let held = match try_lock(&parent, name) {
        Ok(Some(l)) => l,
        Ok(None) => return FinishedJob::new(job, JobOutcome::Busy),
        Err(why) => return FinishedJob::failed(job, why),
    };
    let here = parent.io_path().join(name);
    if !repo::is_bare_repo(&here) {
        // Whatever stands there now is not what the walk found: never
        // delete a directory that is not a repository.
        return FinishedJob::failed(
            job,
            format!("{} is not a repository; not purging it", target.display()),
        );
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
        Ok(Err(e)) => FinishedJob::failed(job, format!("cannot delete {}: {e}", target.display())),
        Err(e) => FinishedJob::failed(job, format!("purge of {key} stopped: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_settings_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path().join("r.git");
        Git::from_env()
            .run_ok(None, ["init", "-q", "--bare", r.to_str().unwrap()])
            .unwrap();
        assert!(set_remote(&r, "_grokmirror", "https://o/x.git", false, false).unwrap());
        assert!(!set_remote(&r, "_grokmirror", "https://o/x.git", false, false).unwrap());
        assert!(set_remote(&r, "_grokmirror", "https://o/x.git", true, false).unwrap());
        let git = Git::from_env();
        let out = git
            .run_ok(
                Some(&r),
                ["config", "--get-all", "remote._grokmirror.fetch"],
            )
            .unwrap();
        assert_eq!(out.stdout_str(), "refs/*:refs/*");
        assert!(set_remote(&r, "_grokmirror", "https://n/x.git", false, false).unwrap());
        let out = git
            .run_ok(Some(&r), ["config", "--get", "remote._grokmirror.url"])
            .unwrap();
        assert_eq!(out.stdout_str(), "https://n/x.git");
        let out = git.run_ok(Some(&r), ["remote"]).unwrap();
        assert_eq!(out.stdout_str(), "_grokmirror");

        let entry = RepoEntry {
            description: Some("A \"quoted\" repo".into()),
            owner: None,
            head: Some("ref: refs/heads/trunk".into()),
            ..Default::default()
        };
        assert!(apply_params(&git, &r, &entry, "Mirror Admin").unwrap());
        assert!(!apply_params(&git, &r, &entry, "Mirror Admin").unwrap());
        let out = git
            .run_ok(Some(&r), ["config", "--get", "gitweb.owner"])
            .unwrap();
        assert_eq!(out.stdout_str(), "Mirror Admin");
        assert_eq!(
            fs::read_to_string(r.join("HEAD")).unwrap(),
            "ref: refs/heads/trunk\n"
        );
        assert_eq!(
            fs::read_to_string(r.join("description")).unwrap(),
            "A \"quoted\" repo"
        );
    }
}
