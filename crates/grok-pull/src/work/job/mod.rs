//! Doing one unit of work: clone, re-clone, update or purge a repository.
//!
//! A repository is worked on only under its lock (the one grokmirror
//! takes too). New repositories are built in the staging area and appear
//! at their path in one rename, complete; a failed or interrupted clone
//! leaves nothing at the path. Git settings are written in-process; git
//! itself runs for `init` and `fetch`. What a fetch leaves to tidy up
//! (`pack-refs`, a quick repack, the object-storage fetch) is handed to
//! [`crate::work::housekeeping`] with the finished job.
//!
//! One file per kind of job (`clone`, `update`, `purge`), and what
//! they share: the repository's git settings (`gitconfig`), the
//! manifest's symlinks ([`symlinks`]) and why a job failed ([`Error`]).

mod clone;
mod error;
mod gitconfig;
mod purge;
pub mod symlinks;
mod update;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use grokmirror::formats::manifest::RepoEntry;
use grokmirror::git::Git;
use grokmirror::lock::{RepoLock, Wait};
use grokmirror::repo;
use grokmirror::repo::object_counts;
use grokmirror::tree::deletion::{self, Facts, Removal, Verdict};
use grokmirror::tree::discovery::{self, Found, WalkOptions};
use grokmirror::tree::{self, Dir, RepoKey, Tree};
use tracing::{debug, info};

pub use error::Error;

use crate::plan::{Action, RepoJob};
use crate::settings::Settings;
use crate::work::housekeeping::Actions;
use crate::work::objstore_clone::Objstore;

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
                    if let Some(alt) = repo::alternates::lender(&p) {
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
#[derive(Debug)]
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
    Failed(Error),
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
    /// Bytes the clone or fetch added to the repository's objects (disk
    /// space, loose and packed, measured before and after).
    pub received_bytes: u64,
}

impl FinishedJob {
    fn new(job: RepoJob, outcome: JobOutcome) -> FinishedJob {
        FinishedJob {
            job,
            outcome,
            change: None,
            fresh_clone: None,
            housekeeping: Actions::default(),
            received_bytes: 0,
        }
    }

    /// A failed job.
    pub fn failed(job: RepoJob, why: impl Into<Error>) -> FinishedJob {
        FinishedJob::new(job, JobOutcome::Failed(why.into()))
    }
}

/// Run one job to its end.
pub async fn run(ctx: Arc<JobContext>, job: RepoJob) -> FinishedJob {
    match job.action {
        Action::Clone => clone::clone(&ctx, job, false).await,
        Action::Reclone => clone::clone(&ctx, job, true).await,
        Action::Update { .. } => update::update(&ctx, job).await,
        Action::Purge => purge::purge(&ctx, job).await,
    }
}

/// Take the lock of the repository `name` in `parent` if it is free
/// (through the parent's handle, so the lock is the one of the directory we
/// work on). With it taken, git lock files older than this moment
/// (`config.lock`, `packed-refs.lock`, ref locks) are leftovers of a git,
/// or of our own libgit2 writes, that was killed: every grokmirror-aware
/// writer holds the repository's lock while it works. They are removed, or
/// every later change to that file would fail, run after run.
fn try_lock(parent: &Dir, name: &std::ffi::OsStr) -> Result<Option<RepoLock>, tree::Error> {
    parent.lock_entry(name, Wait::No)
}

/// What a repository needs after a fetch that changed its refs
/// (grokmirror's rules): `pack-refs --all` after the first fetch; a quick
/// repack and `pack-refs` when loose objects piled up (never for precious
/// repositories, see [`object_counts::worth_quick_repack`]); for a member of an
/// object-storage repository that is not private, fetching its new objects
/// there.
fn housekeeping_after_fetch(ctx: &JobContext, path: &Path, key: &str, first: bool) -> Actions {
    let mut actions = Actions {
        pack_refs_all: first,
        ..Actions::default()
    };
    match object_counts::worth_quick_repack(path) {
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

/// The disk space of `repo`'s own objects, in bytes; 0 when they cannot be
/// counted (the figure only feeds metrics and the progress bar).
pub(crate) fn stored_bytes(repo: &std::path::Path) -> u64 {
    grokmirror::repo::object_counts::scan(repo).map_or(0, |c| c.stored_bytes())
}
