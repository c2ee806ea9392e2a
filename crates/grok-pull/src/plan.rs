//! From a validated remote manifest, the local manifest and what is on
//! disk, decide what each repository needs: a clone, a re-clone, an update
//! (fetch and/or new settings), a purge, or nothing. Only reads the disk
//! (in parallel); the work itself is done by [`crate::work::job`].

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use std::path::PathBuf;
use std::sync::Mutex;

use grokmirror::formats::manifest::{Manifest, RepoEntry};
use grokmirror::formats::remote_manifest::RemoteManifest;
use grokmirror::git::Git;
use grokmirror::objstore::grouping::Forkgroups;
use grokmirror::repo::{self};
use grokmirror::shard;
use grokmirror::tree::deletion;
use grokmirror::tree::discovery::{self, Found, WalkOptions};
use grokmirror::tree::{Dir, Kind, Parents, Tree};
use rayon::prelude::*;
use tracing::{debug, error, info};

use crate::settings::Settings;
use crate::work::objstore_clone;

/// What a repository needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Not here yet: clone it.
    Clone,
    /// grok-fsck asked for a fresh copy (`grokmirror.reclone`).
    Reclone,
    /// Here already.
    Update {
        /// Not in the local manifest (made by hand or by another tool):
        /// reset its remote and settings.
        adopt: bool,
        /// Description, owner, HEAD or symlinks differ from the manifest.
        reconfig: bool,
        /// The refs may differ from the origin's: fetch unless the
        /// fingerprint turns out to match.
        fetch: bool,
    },
    /// Gone from the origin (or no longer included): delete it.
    Purge,
}

/// One unit of work.
#[derive(Debug, Clone)]
pub struct RepoJob {
    /// The manifest key.
    pub key: String,
    /// What to do.
    pub action: Action,
    /// The entry to record in the local manifest on success (the remote
    /// entry, with our own forkgroup/reference when we have them); `None`
    /// for purges.
    pub entry: Option<RepoEntry>,
    /// A push notification asked for this repository: fetch even when the
    /// fingerprints agree (the entry may predate the push).
    pub notified: bool,
}

impl RepoJob {
    /// Whether this job makes a new repository (these are kept from
    /// taking every worker, see [`crate::engine::scheduler`]).
    pub fn is_clone(&self) -> bool {
        matches!(self.action, Action::Clone | Action::Reclone)
    }
}

/// The plan for one run.
#[derive(Debug, Default)]
pub struct PullPlan {
    /// The work, updates first.
    pub jobs: Vec<RepoJob>,
    /// Included repositories that need nothing.
    pub unchanged: usize,
    /// Repositories that cannot be worked on, with the reason.
    pub failures: Vec<(String, String)>,
    /// A purge was refused by purgeprotect.
    pub purge_refused: bool,
    /// Repositories kept because they left this shard for one whose
    /// manifest does not list them yet: with `[pull] shard_peers`, like a
    /// refused purge, the run is not complete and the next one reads the
    /// manifest again.
    pub awaiting_owner: usize,
    /// The purge rules with what this plan learned (the included keys, the
    /// rejected ones, the purges that passed purgeprotect), for the
    /// deletion gate the jobs go through.
    pub gate: deletion::Rules,
    /// Every symlink path of the included entries.
    pub symlinks: BTreeSet<String>,
    /// Real paths of repositories other repositories borrow objects from
    /// (filled when the tree was walked for a purge).
    pub borrowed: Option<BTreeSet<PathBuf>>,
    /// Which repository belongs to which fork group.
    pub forkgroups: Forkgroups,
}

/// The owner as grokmirror compares it: the manifest's, or the default.
fn owner_or<'a>(entry: &'a RepoEntry, default: &'a str) -> &'a str {
    entry.owner.as_deref().unwrap_or(default)
}

/// Whether the settings grok-pull keeps in step differ between two entries.
pub fn params_differ(remote: &RepoEntry, local: &RepoEntry, default_owner: &str) -> bool {
    remote.description != local.description
        || owner_or(remote, default_owner) != owner_or(local, default_owner)
        || remote.head != local.head
}

/// Whether every symlink of `entry` is in place, pointing at `path`.
fn symlinks_in_place(tree: &Tree, repo: &Dir, entry: &RepoEntry) -> bool {
    if entry.symlinks.is_empty() {
        return true;
    }
    let Ok(real) = fs::canonicalize(repo.io_path()) else {
        return false;
    };
    entry.symlinks.iter().all(|link| {
        let Ok(link) = tree.key(link) else {
            return false;
        };
        let Ok(parent) = tree.parent_of(&link, false) else {
            return false;
        };
        parent.kind_of(link.name()).ok().flatten() == Some(Kind::Symlink)
            && fs::canonicalize(parent.io_path().join(link.name())).is_ok_and(|t| t == real)
    })
}

/// Why a repository cannot be worked on (it is skipped and counts as
/// failed; the next run looks again).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest path is not one the top level accepts.
    #[error("{0}")]
    BadKey(String),
    /// A path under the top level's handles.
    #[error(transparent)]
    Tree(#[from] grokmirror::tree::Error),
    /// Something that is not a directory stands at the repository's path.
    #[error("{} exists and is not a directory; move it away", .0.display())]
    NotADirectory(std::path::PathBuf),
    /// A directory that is not a repository stands at its path.
    #[error("{} exists and is not a git repository; move it away", .0.display())]
    NotAGitRepository(std::path::PathBuf),
}

/// Decide what one included repository needs. The disk is asked through
/// handles (`parents` caches the directories on the way), so a no-op
/// poll of a large tree costs a few system calls per repository.
fn classify(
    settings: &Settings,
    tree: &Tree,
    parents: &Parents,
    git: &Git,
    key: &str,
    remote: &RepoEntry,
    local: Option<&RepoEntry>,
) -> Result<Option<Action>, Error> {
    let key = tree.key(key).map_err(Error::BadKey)?;
    let shown = tree.path_of(&key);
    let parent = match parents.parent_of(&key) {
        Ok(p) => p,
        Err(e) if e.is_not_found() => return Ok(Some(Action::Clone)),
        Err(e) => return Err(e.into()),
    };
    // The common case on a large tree: nothing changed. The recorded
    // fingerprint, read through the parent, agrees with both manifests.
    if let Some(local) = local.filter(|l| !params_differ(remote, l, &settings.default_owner)) {
        if remote.symlinks.is_empty() && remote.fingerprint == local.fingerprint {
            let (recorded, reclone) = repo::at_a_glance(&parent, key.name());
            if !reclone && recorded.is_some() && recorded == remote.fingerprint {
                return Ok(None);
            }
        }
    }
    // Opened straight away (the common case); only when that fails is
    // what stands there looked at.
    let dir = match parent.open_dir(key.name()) {
        Ok(dir) => dir,
        Err(open_error) => match parent.kind_of(key.name())? {
            None => return Ok(Some(Action::Clone)),
            // A symlink where the origin now has a repository: the clone
            // replaces the link (never what it points to).
            Some(Kind::Symlink) => return Ok(Some(Action::Clone)),
            Some(Kind::Dir) => return Err(open_error.into()),
            Some(_) => return Err(Error::NotADirectory(shown)),
        },
    };
    if !dir.looks_like_bare_repo() {
        let empty = dir.names().map(|n| n.is_empty()).unwrap_or(false);
        if empty {
            return Ok(Some(Action::Clone));
        }
        return Err(Error::NotAGitRepository(shown));
    }
    if dir.kind_of(repo::RECLONE_FILE)?.is_some() {
        return Ok(Some(Action::Reclone));
    }
    let on_disk = repo::fingerprint_on_disk_in(git, &dir);
    let Some(local) = local else {
        return Ok(Some(Action::Update {
            adopt: true,
            reconfig: true,
            fetch: on_disk.as_deref() != remote.fingerprint.as_deref(),
        }));
    };
    let reconfig = params_differ(remote, local, &settings.default_owner)
        || !symlinks_in_place(tree, &dir, remote);
    let fetch = on_disk.as_deref() != local.fingerprint.as_deref()
        || on_disk.as_deref() != remote.fingerprint.as_deref();
    if on_disk.as_deref() != local.fingerprint.as_deref() {
        debug!("fingerprint of {key} on disk differs from the local manifest");
    }
    Ok((reconfig || fetch).then_some(Action::Update {
        adopt: false,
        reconfig,
        fetch,
    }))
}

/// What we record for a repository: the origin's entry, with our own
/// forkgroup and reference when we have them (our grok-fsck may know
/// better siblings), and nothing that is only our own business.
pub fn entry_to_record(remote: &RepoEntry, local: Option<&RepoEntry>) -> RepoEntry {
    entry_into_record(remote.clone(), local)
}

/// [`entry_to_record`] of an entry that is not needed any more.
pub fn entry_into_record(mut entry: RepoEntry, local: Option<&RepoEntry>) -> RepoEntry {
    if let Some(local) = local {
        if local.forkgroup.is_some() {
            entry.forkgroup = local.forkgroup.clone();
        }
        if local.reference.is_some() {
            entry.reference = local.reference.clone();
        }
    }
    entry.extra.remove("private");
    entry
}

/// Whether `[pull] include` matches `key` and `exclude` does not.
pub fn included(settings: &Settings, key: &str) -> bool {
    settings.include.is_match(key) && !settings.exclude.is_match(key)
}

/// Which shard holds each entry of the manifest (`None` without `[pull]
/// shard`).
fn owners(settings: &Settings, manifest: &RemoteManifest) -> Option<BTreeMap<String, u32>> {
    settings
        .shard
        .map(|s| shard::owners(&manifest.repos, s.count()))
}

/// Whether `cull` keeps `key`: included, and on this shard (`ours`, of
/// the `owners` the shard rules gave).
fn kept(
    settings: &Settings,
    owners: Option<&BTreeMap<String, u32>>,
    ours: Option<u32>,
    key: &str,
) -> bool {
    included(settings, key) && owners.is_none_or(|o| o.get(key).copied() == ours)
}

/// Keep the entries that `[pull] include` matches and `exclude` does not,
/// and that this replica's `[pull] shard` holds.
pub fn cull<'a>(
    settings: &Settings,
    manifest: &'a RemoteManifest,
) -> BTreeMap<&'a str, &'a RepoEntry> {
    let owners = owners(settings, manifest);
    let ours = settings.shard.map(|s| s.index());
    // Borrowed, not copied: at 50,000 entries a copy is tens of megabytes.
    manifest
        .repos
        .iter()
        .filter(|(key, _)| kept(settings, owners.as_ref(), ours, key))
        .map(|(k, v)| (k.as_str(), v))
        .collect()
}

/// [`cull`], taking the entries out of `manifest` rather than copying
/// them (for after planning: a 50,000-entry copy is tens of megabytes).
pub fn cull_out(settings: &Settings, manifest: &mut RemoteManifest) -> BTreeMap<String, RepoEntry> {
    let owners = owners(settings, manifest);
    let ours = settings.shard.map(|s| s.index());
    std::mem::take(&mut manifest.repos)
        .into_iter()
        .filter(|(key, _)| kept(settings, owners.as_ref(), ours, key))
        .collect()
}

/// The entries the config includes that another shard holds, with that
/// shard's index (empty without `[pull] shard`).
pub fn elsewhere(settings: &Settings, manifest: &RemoteManifest) -> BTreeMap<String, u32> {
    let (Some(ours), Some(owners)) = (settings.shard, owners(settings, manifest)) else {
        return BTreeMap::new();
    };
    owners
        .into_iter()
        .filter(|(key, owner)| *owner != ours.index() && included(settings, key))
        .collect()
}

/// What the other shards' manifests list, for the shards whose manifest
/// could be read this run (by shard index).
pub type PeerListings = BTreeMap<u32, BTreeSet<String>>;

/// The repositories that left this shard and whose new shard is not known
/// to have them (its manifest was not read, or does not list them): the
/// deletion gate keeps these.
pub fn awaiting_owner(elsewhere: &BTreeMap<String, u32>, peers: &PeerListings) -> BTreeSet<String> {
    elsewhere
        .iter()
        .filter(|(key, owner)| !peers.get(owner).is_some_and(|listed| listed.contains(*key)))
        .map(|(key, _)| key.clone())
        .collect()
}

/// Plan the run.
pub fn plan(
    settings: &Settings,
    tree: &Tree,
    git: &Git,
    remote: &RemoteManifest,
    local: &Manifest,
    peers: &PeerListings,
    force_purge: bool,
) -> PullPlan {
    let culled = cull(settings, remote);
    let elsewhere = elsewhere(settings, remote);
    if let Some(s) = settings.shard {
        info!(
            "    shard: {s} holds {} of the included repositories, other shards {}",
            culled.len(),
            elsewhere.len()
        );
    }
    info!(" manifest: {} relevant entries", culled.len());
    let objstore = objstore_clone::Objstore::from_settings(settings);
    let forkgroups = objstore_clone::assign(settings, git, &objstore, &culled, &local.repos);
    // Entries we rejected still name repositories the origin has: never
    // purge those because of a malformed record.
    let rejected: BTreeSet<String> = remote
        .rejected
        .iter()
        .filter_map(|r| grokmirror::tree::key::normalize_path(&r.key).ok())
        .collect();
    let mut plan = PullPlan {
        gate: deletion::Rules {
            purge: settings.purge,
            nopurge: settings.nopurge.clone(),
            ffonly: settings.ffonly.clone(),
            rejected,
            wanted: culled.keys().map(|k| k.to_string()).collect(),
            approved: BTreeSet::new(),
            awaiting_owner: awaiting_owner(&elsewhere, peers),
        },
        symlinks: culled
            .values()
            .flat_map(|e| e.symlinks.iter().cloned())
            .collect(),
        forkgroups,
        ..PullPlan::default()
    };
    let parents = tree.parents();
    let decided: Vec<(&str, Result<Option<Action>, Error>)> = culled
        .par_iter()
        .map(|(&key, &entry)| {
            let decision = classify(
                settings,
                tree,
                &parents,
                git,
                key,
                entry,
                local.repos.get(key),
            );
            (key, decision)
        })
        .collect();
    let mut updates = Vec::new();
    let mut clones = Vec::new();
    for (key, decision) in decided {
        match decision {
            Ok(None) => plan.unchanged += 1,
            Ok(Some(action)) => {
                let mut entry = entry_to_record(culled[key], local.repos.get(key));
                if let Some(group) = plan.forkgroups.group_of(key) {
                    entry.forkgroup = Some(group.to_string());
                }
                let job = RepoJob {
                    key: key.to_string(),
                    action,
                    entry: Some(entry),
                    notified: false,
                };
                if job.is_clone() {
                    clones.push(job);
                } else {
                    updates.push(job);
                }
            }
            Err(why) => {
                error!(" manifest: skipping {key}: {why}");
                plan.failures.push((key.to_string(), why.to_string()));
            }
        }
    }
    plan.jobs = updates;
    plan.jobs.extend(clones);
    if settings.purge {
        plan_purge(settings, &mut plan, force_purge);
    }
    plan
}

/// Walk the tree and queue purges for what the origin no longer has,
/// unless that is too much at once (purgeprotect). A repository standing
/// where the origin now has a symlink counts as a purge too; the job that
/// places the symlink removes it, through the deletion gate.
fn plan_purge(settings: &Settings, plan: &mut PullPlan, force: bool) {
    let toplevel = settings.toplevel();
    info!("   search: finding all repos in {}", toplevel.display());
    let found = Mutex::new(Vec::new());
    let borrowed = Mutex::new(BTreeSet::new());
    discovery::walk(toplevel, &WalkOptions::default(), &|f| match f {
        Found::Repo(p) => {
            if let Some(alt) = repo::alternates::lender(&p) {
                borrowed.lock().expect("poisoned").insert(alt);
            }
            found.lock().expect("poisoned").push((p, false));
        }
        Found::Symlink(p) => found.lock().expect("poisoned").push((p, true)),
        Found::Dangling(_) | Found::Unreadable(..) => {}
    });
    let mut found = found.into_inner().expect("poisoned");
    found.sort();
    plan.borrowed = Some(borrowed.into_inner().expect("poisoned"));
    let mut to_purge = Vec::new();
    let mut awaiting = 0usize;
    for (path, is_link) in &found {
        let Some(key) = grokmirror::tree::key::manifest_key(toplevel, path) else {
            continue;
        };
        let wanted_link = plan.symlinks.contains(&key);
        if wanted_link && *is_link {
            continue;
        }
        match deletion::purge_candidate(&plan.gate, &key) {
            Ok(()) => to_purge.push((key, wanted_link)),
            Err(deletion::Kept::FfOnly) => {
                error!("Refusing to purge ffonly repo {key}");
            }
            Err(deletion::Kept::AwaitingOwner) => {
                awaiting += 1;
                debug!("not purging {key}: {}", deletion::Kept::AwaitingOwner);
            }
            Err(why) => debug!("not purging {key}: {why}"),
        }
    }
    plan.awaiting_owner = awaiting;
    if awaiting > 0 {
        let why = if settings.shard_peers.is_empty() {
            "[pull] shard_peers is not set, so nothing can confirm that their new shards have them"
        } else {
            "the manifests of their new shards do not list them yet (or could not be read)"
        };
        info!("    shard: keeping {awaiting} repositories that moved to other shards: {why}");
    }
    if to_purge.is_empty() {
        debug!("No repositories need purging");
        return;
    }
    if let Err(why) =
        deletion::within_purgeprotect(to_purge.len(), found.len(), settings.purgeprotect, force)
    {
        error!("{why}");
        plan.purge_refused = true;
        return;
    }
    for (key, wanted_link) in to_purge {
        plan.gate.approved.insert(key.clone());
        if wanted_link {
            // Replaced by the symlink when its repository's job places it.
            continue;
        }
        plan.jobs.push(RepoJob {
            key,
            action: Action::Purge,
            entry: None,
            notified: false,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params() {
        let a = RepoEntry {
            owner: None,
            ..Default::default()
        };
        let b = RepoEntry {
            owner: Some("Grokmirror".into()),
            ..Default::default()
        };
        assert!(!params_differ(&a, &b, "Grokmirror"));
        assert!(params_differ(&a, &b, "Someone"));
        let c = RepoEntry {
            head: Some("ref: refs/heads/x".into()),
            ..Default::default()
        };
        assert!(params_differ(&a, &c, "Grokmirror"));
    }

    #[test]
    fn a_shard_culls_what_other_shards_hold_like_exclude() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[core]\ntoplevel = {}\n[remote]\nsite = /o\nmanifest = file:///o/m.js\n\
             [pull]\nshard = 1/3\nexclude = /x/*\n",
            dir.path().display()
        );
        let config =
            grokmirror::config::Config::from_text(&text, std::path::Path::new("t.conf"), 0)
                .unwrap();
        let settings = Settings::from_config(config, false).unwrap();
        let mut remote = RemoteManifest::default();
        for i in 0..40 {
            let forkgroup = (i % 4 == 0).then(|| format!("g{}", i % 8));
            remote.repos.insert(
                format!("/r{i}.git"),
                RepoEntry {
                    forkgroup,
                    ..Default::default()
                },
            );
            remote
                .repos
                .insert(format!("/x/r{i}.git"), RepoEntry::default());
        }
        let ours = cull(&settings, &remote);
        let theirs = elsewhere(&settings, &remote);
        assert!(!ours.is_empty() && !theirs.is_empty());
        assert!(ours
            .keys()
            .copied()
            .chain(theirs.keys().map(String::as_str))
            .all(|k| !k.starts_with("/x/")));
        assert_eq!(ours.len() + theirs.len(), 40);
        assert!(ours.keys().all(|k| !theirs.contains_key(*k)));
        assert!(theirs.values().all(|o| *o != 1 && *o < 3));
        // A fork group is on one side only.
        for g in 0..8 {
            let group = format!("g{g}");
            let sides: BTreeSet<bool> = remote
                .repos
                .iter()
                .filter(|(_, e)| e.forkgroup.as_deref() == Some(group.as_str()))
                .map(|(k, _)| ours.contains_key(k.as_str()))
                .collect();
            assert!(sides.len() <= 1, "{group}");
        }
    }

    #[test]
    fn recorded_entry_keeps_our_forkgroup() {
        let remote = RepoEntry {
            forkgroup: Some("theirs".into()),
            fingerprint: Some("f".into()),
            ..Default::default()
        };
        let local = RepoEntry {
            forkgroup: Some("ours".into()),
            reference: Some("/x.git".into()),
            ..Default::default()
        };
        let e = entry_to_record(&remote, Some(&local));
        assert_eq!(e.forkgroup.as_deref(), Some("ours"));
        assert_eq!(e.reference.as_deref(), Some("/x.git"));
        assert_eq!(
            entry_to_record(&remote, None).forkgroup.as_deref(),
            Some("theirs")
        );
    }
}
