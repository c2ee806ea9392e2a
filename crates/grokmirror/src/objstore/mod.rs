//! Object-storage repositories (SPEC §1.10): one bare repository per fork
//! group, `${objstore}/<forkgroup>.git`, holding the objects of all its
//! members so each member keeps next to nothing of its own.
//!
//! The layout is grokmirror 2.x's, so either tool can maintain a tree the
//! other built:
//! - the repository is configured with `core.repositoryformatversion=1`,
//!   `extensions.preciousObjects=true`, `pack.compression=9`,
//!   `repack.useDeltaIslands=true`, `repack.writeBitmaps=true` and
//!   `pack.island=refs/virtual/([0-9a-f]+)/`, and holds the
//!   `grokmirror.objstore` file (a warning, then the members, one per line);
//! - each member is a remote named after its [`virtref`], with its path as
//!   URL, `--no-tags`, and the fetch refspec `+refs/*:refs/virtual/<virtref>/*`;
//!   after each fetch the member's fingerprint is copied to
//!   `grokmirror.<virtref>.fingerprint`;
//! - each member's `objects/info/alternates` names the repository's
//!   `objects` directory.
//!
//! # Safety
//!
//! Every function here is one step of a larger rewiring (see grok-fsck and
//! grok-pull) and is written so that a crash at any point leaves every
//! repository valid (`git fsck --connectivity-only` passes): objects are
//! copied before anything starts relying on them, alternates are only
//! replaced once the new lender holds everything the borrower reaches, and
//! nothing here deletes an object. Callers hold the locks named in each
//! function's documentation; when they need a member's lock and its object
//! storage's lock together, they take the member's first.

pub mod grouping;
pub mod siblings;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

use crate::git::{self, Git};
use crate::lock;
use crate::repo::{self, OBJSTORE_MARKER};
use crate::tree::fsutil;

/// First lines of `grokmirror.objstore`. The file format is grokmirror's
/// (this text, then one member per line), so it is reproduced as is.
pub const MARKER_PREAMBLE: &str = "# WARNING: This is a grokmirror object storage repository.\n\
# Deleting or moving it will cause corruption in the following repositories\n\
# (caution, this list may be incomplete):\n";

/// The delta-island pattern: one island per member.
pub const ISLAND_PATTERN: &str = "refs/virtual/([0-9a-f]+)/";

/// Failure of an object-storage step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A git command failed.
    #[error(transparent)]
    Git(#[from] git::Error),
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        cause: io::Error,
    },
    /// A git config file could not be read or written.
    #[error("{path}: {message}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// What libgit2 said.
        message: String,
    },
    /// The objects were copied but something the refs point at is missing
    /// (plumbing fetch only; the porcelain fetch is the fallback).
    #[error("{0}")]
    Incomplete(String),
}

impl From<repo::Error> for Error {
    fn from(e: repo::Error) -> Self {
        match e {
            repo::Error::Git(g) => Error::Git(g),
            repo::Error::Io { path, cause } => Error::Io { path, cause },
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// The remote name (and `refs/virtual/<name>/` prefix) of a member in its
/// object-storage repo: the first 12 hex digits of the SHA-1 of the member's
/// real path.
pub fn virtref(member: &Path) -> String {
    let real = std::fs::canonicalize(member).unwrap_or_else(|_| member.to_path_buf());
    let digest = Sha1::digest(real.as_os_str().as_encoded_bytes());
    hex::encode(digest)[..12].to_string()
}

/// The refs a member's refs are fetched to: `refs/virtual/<virtref>/`.
pub fn virtual_prefix(virtref: &str) -> String {
    format!("refs/virtual/{virtref}/")
}

/// The fetch refspec of a member.
pub fn member_refspec(virtref: &str) -> String {
    format!("+refs/*:refs/virtual/{virtref}/*")
}

/// The forkgroup name of an object-storage repo: its directory name
/// without `.git`.
pub fn forkgroup_name(obstrepo: &Path) -> Option<String> {
    let name = obstrepo.file_name()?.to_str()?;
    name.strip_suffix(".git").map(str::to_string)
}

/// The remotes of an object-storage repo as `(name, url)`, sorted by name
/// (the order `git remote -v` prints, which grokmirror relies on), read
/// from its config file in-process (grok-pull reads every object storage's
/// remotes on each run). Remotes without a URL are left out.
pub fn list_remotes(_git: &Git, obstrepo: &Path) -> Result<Vec<(String, String)>, Error> {
    let cfg = open_config(obstrepo)?;
    let mut remotes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    if let Ok(mut entries) = cfg.entries(Some(r"^remote\..*\.url$")) {
        while let Some(Ok(e)) = entries.next() {
            let (Some(name), Some(url)) = (e.name(), e.value()) else {
                continue;
            };
            let Some(remote) = name
                .strip_prefix("remote.")
                .and_then(|r| r.strip_suffix(".url"))
            else {
                continue;
            };
            remotes
                .entry(remote.to_string())
                .or_default()
                .insert(url.to_string());
        }
    }
    Ok(remotes
        .into_iter()
        .flat_map(|(name, urls)| urls.into_iter().map(move |u| (name.clone(), u)))
        .collect())
}

/// The object-storage repo `repo` borrows from, if its alternate is one.
pub fn objstore_of(repo: &Path) -> Option<PathBuf> {
    repo::alternates::lender(repo).filter(|alt| repo::is_objstore_repo(alt))
}

/// The object-storage repositories in `objstore_dir`: its `*.git`
/// subdirectories that are bare repositories (hidden ones are work in
/// progress and left out), as real paths, sorted.
pub fn list(objstore_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(objstore_dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && name.ends_with(".git")
        })
        .map(|e| e.path())
        .filter(|p| p.is_dir() && repo::is_bare_repo(p))
        .map(|p| fs::canonicalize(&p).unwrap_or(p))
        .collect();
    found.sort();
    found
}

/// For each object-storage repo of `objstore_dir` (by forkgroup name), the
/// members under `toplevel` it lists as remotes.
pub fn local_forkgroups(
    git: &Git,
    objstore_dir: &Path,
    toplevel: &Path,
) -> BTreeMap<String, BTreeSet<PathBuf>> {
    let mut groups = BTreeMap::new();
    for obst in list(objstore_dir) {
        let Some(name) = forkgroup_name(&obst) else {
            continue;
        };
        let members: BTreeSet<PathBuf> = list_remotes(git, &obst)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, url)| PathBuf::from(url))
            .filter(|p| p.starts_with(toplevel))
            .collect();
        groups.insert(name, members);
    }
    groups
}

/// Whether the object-storage repo holds any object yet.
pub fn is_populated(obstrepo: &Path) -> bool {
    crate::repo::object_counts::scan(obstrepo)
        .map(|c| c.count > 0 || c.in_pack > 0)
        .unwrap_or(false)
}

/// A name for a new fork group (a random UUID, as grokmirror makes them).
pub fn new_forkgroup_name() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The temporary name a new object-storage repo is built under.
fn building_name(name: &str) -> String {
    format!(".{name}.git.{}.building", std::process::id())
}

/// Create the object-storage repo `<objstore_dir>/<name>.git` (a new UUID
/// when `name` is `None`), configured as SPEC §1.10 says, and return its
/// path. It is built under a hidden name and renamed into place complete,
/// so nobody ever sees (or starts borrowing from) a half-configured one;
/// when somebody else created it meanwhile, theirs is returned.
///
/// Crash: a leftover hidden directory, removed by [`sweep_leftovers`].
pub fn create(git: &Git, objstore_dir: &Path, name: Option<&str>) -> Result<PathBuf, Error> {
    let name = match name {
        Some(n) => n.to_string(),
        None => new_forkgroup_name(),
    };
    fs::create_dir_all(objstore_dir).map_err(io_err(objstore_dir))?;
    let objstore_dir = fs::canonicalize(objstore_dir).map_err(io_err(objstore_dir))?;
    let target = objstore_dir.join(format!("{name}.git"));
    if repo::is_objstore_repo(&target) {
        return Ok(target);
    }
    let building = objstore_dir.join(building_name(&name));
    // Held while building, so a sweep never takes a live build for a
    // leftover.
    let guard = lock::acquire_repo(&building, lock::Wait::Forever)
        .map_err(|e| Error::Io {
            path: building.clone(),
            cause: io::Error::other(e),
        })?
        .expect("Wait::Forever returns the lock or an error");
    let _ = fs::remove_dir_all(&building);
    let result = build(git, &building).and_then(|()| {
        match fs::rename(&building, &target) {
            Ok(()) => Ok(()),
            // Somebody else's is in place: use that one.
            Err(_) if repo::is_objstore_repo(&target) => {
                let _ = fs::remove_dir_all(&building);
                Ok(())
            }
            Err(e) => Err(io_err(&target)(e)),
        }
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&building);
    }
    let lock_file = guard.path().to_path_buf();
    drop(guard);
    let _ = fs::remove_file(lock_file);
    result.map(|()| target)
}

fn build(git: &Git, path: &Path) -> Result<(), Error> {
    repo::init_bare_repo(git, path)?;
    let settings: [(&str, &str); 5] = [
        ("core.repositoryformatversion", "1"),
        ("extensions.preciousObjects", "true"),
        ("pack.compression", "9"),
        ("repack.useDeltaIslands", "true"),
        ("repack.writeBitmaps", "true"),
    ];
    for (key, value) in settings {
        git.run_ok(Some(path), ["config", key, value])?;
    }
    git.run_ok(
        Some(path),
        ["config", "--add", "pack.island", ISLAND_PATTERN],
    )?;
    let marker = path.join(OBJSTORE_MARKER);
    fsutil::write_atomic(&marker, MARKER_PREAMBLE.as_bytes()).map_err(io_err(&marker))?;
    Ok(())
}

/// Remove what killed runs left in `objstore_dir`: object-storage repos
/// that were being built or deleted (through a handle on the directory, so
/// nothing is followed out of it). Returns what was removed.
pub fn sweep_leftovers(objstore_dir: &Path) -> Vec<PathBuf> {
    let Ok(dir) = crate::tree::Dir::open_root(objstore_dir) else {
        return Vec::new();
    };
    let Ok(names) = dir.names() else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for raw in names {
        let name = std::ffi::OsStr::from_bytes(&raw);
        let text = name.to_string_lossy();
        let leftover =
            text.starts_with('.') && (text.ends_with(".building") || text.ends_with(".deleting"));
        if !leftover || dir.kind_of(name).ok().flatten() != Some(crate::tree::Kind::Dir) {
            continue;
        }
        let Ok(Some(guard)) = dir.lock_entry(name, lock::Wait::No) else {
            continue;
        };
        if dir.remove_tree(name).is_ok() {
            removed.push(objstore_dir.join(name));
        }
        drop(guard);
        let _ = dir.remove_file(&lock::lock_file_name(name));
    }
    removed
}

fn open_config(obstrepo: &Path) -> Result<git2::Config, Error> {
    let path = obstrepo.join("config");
    git2::Config::open(&path).map_err(|e| Error::Config {
        path,
        message: e.message().to_string(),
    })
}

fn config_err(obstrepo: &Path) -> impl FnOnce(git2::Error) -> Error + '_ {
    move |e| Error::Config {
        path: obstrepo.join("config"),
        message: e.message().to_string(),
    }
}

fn all_values(cfg: &git2::Config, key: &str) -> Vec<String> {
    let mut values = Vec::new();
    if let Ok(mut entries) = cfg.multivar(key, None) {
        while let Some(Ok(e)) = entries.next() {
            values.push(e.value().unwrap_or_default().to_string());
        }
    }
    values
}

/// Whether `member` is a remote of `obstrepo` exactly as it should be.
fn remote_is_right(cfg: &git2::Config, virtref: &str, url: &str) -> bool {
    let key = |k: &str| format!("remote.{virtref}.{k}");
    all_values(cfg, &key("url")) == [url]
        && all_values(cfg, &key("fetch")) == [member_refspec(virtref)]
        && all_values(cfg, &key("tagopt")) == ["--no-tags"]
}

/// Every remote name of `obstrepo`'s config, URL or not (a crash while a
/// remote was written can leave one without).
pub fn remote_names(obstrepo: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let Ok(cfg) = open_config(obstrepo) else {
        return names;
    };
    if let Ok(mut entries) = cfg.entries(Some(r"^remote\..*\.")) {
        while let Some(Ok(e)) = entries.next() {
            let Some(name) = e.name() else {
                continue;
            };
            if let Some(rest) = name.strip_prefix("remote.") {
                if let Some((remote, _)) = rest.rsplit_once('.') {
                    names.insert(remote.to_string());
                }
            }
        }
    }
    names
}

/// Whether `member` is a remote of `obstrepo` (by name and URL).
pub fn is_member(obstrepo: &Path, member: &Path) -> bool {
    let Ok(cfg) = open_config(obstrepo) else {
        return false;
    };
    let v = virtref(member);
    all_values(&cfg, &format!("remote.{v}.url")) == [member.to_string_lossy().into_owned()]
}

/// Make `member` a remote of `obstrepo` (its objects will be fetched into
/// it) and list it in `grokmirror.objstore`. Returns whether anything
/// changed. A half-written remote (a crash) is repaired by the next call.
///
/// Caller holds `obstrepo`'s lock. Changes no objects or refs.
pub fn add_member(obstrepo: &Path, member: &Path) -> Result<bool, Error> {
    let v = virtref(member);
    let url = member.to_string_lossy().into_owned();
    let mut cfg = open_config(obstrepo)?;
    if remote_is_right(&cfg, &v, &url) {
        return Ok(false);
    }
    let key = |k: &str| format!("remote.{v}.{k}");
    // The URL goes last: a remote without one is never fetched from.
    for k in ["url", "fetch", "tagopt"] {
        let _ = cfg.remove_multivar(&key(k), ".*");
    }
    cfg.set_str(&key("tagopt"), "--no-tags")
        .map_err(config_err(obstrepo))?;
    cfg.set_str(&key("fetch"), &member_refspec(&v))
        .map_err(config_err(obstrepo))?;
    cfg.set_str(&key("url"), &url)
        .map_err(config_err(obstrepo))?;
    let mut listed = read_member_list(obstrepo);
    listed.retain(|p| p.is_dir());
    listed.insert(member.to_path_buf());
    write_member_list(obstrepo, &listed)?;
    Ok(true)
}

/// The members `grokmirror.objstore` lists.
pub fn read_member_list(obstrepo: &Path) -> BTreeSet<PathBuf> {
    fs::read_to_string(obstrepo.join(OBJSTORE_MARKER))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(PathBuf::from)
        .collect()
}

/// Rewrite `grokmirror.objstore` with these members (sorted). Returns
/// whether its contents changed.
pub fn write_member_list(obstrepo: &Path, members: &BTreeSet<PathBuf>) -> Result<bool, Error> {
    let mut text = MARKER_PREAMBLE.to_string();
    if !members.is_empty() {
        let lines: Vec<String> = members
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        text.push_str(&lines.join("\n"));
        text.push('\n');
    }
    let marker = obstrepo.join(OBJSTORE_MARKER);
    let current = fs::read(&marker).ok();
    if current.as_deref() == Some(text.as_bytes()) {
        return Ok(false);
    }
    fsutil::write_atomic(&marker, text.as_bytes()).map_err(io_err(&marker))?;
    Ok(true)
}

/// Delete every ref under `refs/virtual/<virtref>/`. Returns how many
/// there were. The objects stay (they may still be borrowed).
///
/// Caller holds `obstrepo`'s lock.
pub fn trim_virtref(git: &Git, obstrepo: &Path, virtref: &str) -> Result<usize, Error> {
    let prefix = virtual_prefix(virtref);
    let out = git.run_ok(
        Some(obstrepo),
        [
            "for-each-ref",
            "--format=delete %(refname) %(objectname)",
            prefix.as_str(),
        ],
    )?;
    let commands = out.stdout_str();
    if commands.is_empty() {
        return Ok(0);
    }
    let count = commands.lines().count();
    let input = format!("{commands}\n");
    let done = git.run_with_input(
        Some(obstrepo),
        ["update-ref", "--stdin"],
        Some(input.as_bytes()),
    )?;
    if !done.success() {
        return Err(crate::git::failed(Some(obstrepo), &["update-ref", "--stdin"], &done).into());
    }
    Ok(count)
}

/// The member names that have refs under `refs/virtual/`.
pub fn virtrefs_with_refs(git: &Git, obstrepo: &Path) -> Result<BTreeSet<String>, Error> {
    let out = git.run_ok(
        Some(obstrepo),
        ["for-each-ref", "--format=%(refname)", "refs/virtual/"],
    )?;
    Ok(out
        .stdout_str()
        .lines()
        .filter_map(|r| r.split('/').nth(2))
        .map(str::to_string)
        .collect())
}

/// Stop tracking member `virtref`: its refs are trimmed, its remote and
/// its recorded fingerprint removed. Its objects stay (whoever still
/// borrows them keeps working).
///
/// Caller holds `obstrepo`'s lock.
pub fn remove_member(git: &Git, obstrepo: &Path, virtref: &str) -> Result<(), Error> {
    trim_virtref(git, obstrepo, virtref)?;
    let mut cfg = open_config(obstrepo)?;
    let prefix = format!("remote.{virtref}.");
    let mut keys = BTreeSet::new();
    if let Ok(mut entries) = cfg.entries(None) {
        while let Some(Ok(e)) = entries.next() {
            if let Some(name) = e.name() {
                if name
                    .to_ascii_lowercase()
                    .starts_with(&prefix.to_ascii_lowercase())
                {
                    keys.insert(name.to_string());
                }
            }
        }
    }
    for k in keys {
        cfg.remove_multivar(&k, ".*")
            .map_err(config_err(obstrepo))?;
    }
    let fp = fingerprint_file(obstrepo, virtref);
    match fs::remove_file(&fp) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&fp)(e)),
    }
}

/// Where the object-storage repo records the fingerprint a member had
/// when it was last fetched.
pub fn fingerprint_file(obstrepo: &Path, virtref: &str) -> PathBuf {
    obstrepo.join(format!("grokmirror.{virtref}.fingerprint"))
}

/// Whether the member's refs changed since it was last fetched (its
/// fingerprint differs from the one recorded, or either is missing).
pub fn member_needs_fetch(obstrepo: &Path, member: &Path) -> bool {
    let recorded = fs::read_to_string(fingerprint_file(obstrepo, &virtref(member)));
    let current = fs::read_to_string(member.join(repo::FINGERPRINT_FILE));
    match (recorded, current) {
        (Ok(a), Ok(b)) => a.trim() != b.trim(),
        _ => true,
    }
}

/// How objects get from a member into its object storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FetchMethod {
    /// `git fetch <virtref> --prune`: always right, slow on big groups
    /// (negotiation).
    #[default]
    Porcelain,
    /// Hard-link the member's packs and loose objects into the object
    /// storage and update its refs directly (`[core]
    /// objstore_uses_plumbing`). Needs the member's lock; falls back to
    /// the porcelain fetch whenever it can't be sure of the result.
    Plumbing,
}

impl FetchMethod {
    /// The method `[core] objstore_uses_plumbing` asks for.
    pub fn from_config(uses_plumbing: bool) -> FetchMethod {
        if uses_plumbing {
            FetchMethod::Plumbing
        } else {
            FetchMethod::Porcelain
        }
    }
}

/// Copy `member`'s objects and refs into `obstrepo` (refs under
/// `refs/virtual/<virtref>/`, pruned), then record the member's
/// fingerprint beside them. Returns `Ok(false)` when `member` is not a
/// remote of `obstrepo` (nothing done).
///
/// Caller holds `obstrepo`'s lock, and for [`FetchMethod::Plumbing`] the
/// member's lock too (its files are read directly). Plumbing is only used
/// when everything the member reaches is in the member or in `obstrepo`
/// (it borrows from nothing else); otherwise, or when it fails, this
/// falls back to the porcelain fetch.
///
/// Objects land before refs in both methods, so the object storage never
/// has a ref to a missing object; nothing is deleted from the member.
pub fn fetch_member(
    git: &Git,
    obstrepo: &Path,
    member: &Path,
    method: FetchMethod,
) -> Result<bool, Error> {
    let v = virtref(member);
    let url = member.to_string_lossy().into_owned();
    {
        let cfg = open_config(obstrepo)?;
        if all_values(&cfg, &format!("remote.{v}.url")) != [url.clone()] {
            return Ok(false);
        }
        if !remote_is_right(&cfg, &v, &url) {
            drop(cfg);
            add_member(obstrepo, member)?;
        }
    }
    let mut done = false;
    if method == FetchMethod::Plumbing && plumbing_is_complete(obstrepo, member) {
        match fetch_with_plumbing(git, obstrepo, member, &v) {
            Ok(()) => done = true,
            Err(e) => tracing::info!(
                "plumbing copy of {} into {} fell short ({e}); fetching instead",
                member.display(),
                obstrepo.display()
            ),
        }
    }
    if !done {
        // Always keep what arrives as a pack: members drop their loose
        // copies of packed objects only (`git prune-packed`).
        git.run_ok(
            Some(obstrepo),
            [
                "-c",
                "fetch.unpackLimit=1",
                "fetch",
                "-q",
                v.as_str(),
                "--prune",
            ],
        )?;
    }
    record_fingerprint(obstrepo, member, &v);
    Ok(true)
}

/// [`fetch_member`] for callers that do not hold `member`'s lock (grok-pull's
/// housekeeping, grok-manifest's `--fetch-objstore`): the plumbing copy,
/// which reads the member's files, is used only when the member's lock is
/// free right now and is held for it; otherwise the porcelain fetch, which
/// needs no lock on the member, so a fetch into the member never waits.
/// Caller holds `obstrepo`'s lock.
pub fn fetch_member_unlocked(
    git: &Git,
    obstrepo: &Path,
    member: &Path,
    method: FetchMethod,
) -> Result<bool, Error> {
    let member_guard = match method {
        FetchMethod::Plumbing => lock::acquire_repo(member, lock::Wait::No).ok().flatten(),
        FetchMethod::Porcelain => None,
    };
    let method = if member_guard.is_some() {
        method
    } else {
        FetchMethod::Porcelain
    };
    fetch_member(git, obstrepo, member, method)
}

fn record_fingerprint(obstrepo: &Path, member: &Path, virtref: &str) {
    if let Ok(fp) = fs::read(member.join(repo::FINGERPRINT_FILE)) {
        let file = fingerprint_file(obstrepo, virtref);
        if let Err(e) = fsutil::write_if_changed(&file, &fp) {
            tracing::warn!("cannot write {}: {e}", file.display());
        }
    }
}

/// Fetch `member` into `obstrepo` from another location of the same
/// repository (a staged clone not yet at `member`'s path): same refs,
/// same fingerprint record. Caller holds `obstrepo`'s lock.
pub fn fetch_member_from(
    git: &Git,
    obstrepo: &Path,
    member: &Path,
    source: &Path,
) -> Result<(), Error> {
    let v = virtref(member);
    let refspec = member_refspec(&v);
    git.run_ok(
        Some(obstrepo),
        [
            std::ffi::OsStr::new("-c"),
            "fetch.unpackLimit=1".as_ref(),
            "fetch".as_ref(),
            "-q".as_ref(),
            "--no-tags".as_ref(),
            "--prune".as_ref(),
            source.as_os_str(),
            refspec.as_ref(),
        ],
    )?;
    record_fingerprint(obstrepo, source, &v);
    Ok(())
}

/// Whether linking the member's own object files is enough to give the
/// object storage everything the member reaches: it borrows from nothing,
/// or only from this object storage.
fn plumbing_is_complete(obstrepo: &Path, member: &Path) -> bool {
    let alternates = crate::repo::alternates::read(&member.join("objects"));
    let own = fs::canonicalize(obstrepo.join("objects")).ok();
    alternates.iter().all(|a| Some(a) == own.as_ref())
}

fn fetch_with_plumbing(
    git: &Git,
    obstrepo: &Path,
    member: &Path,
    virtref: &str,
) -> Result<(), Error> {
    // Refs first: every object they name is in the member's files (or
    // already in the object storage) before we look at the files.
    let theirs = git.run_ok(
        Some(member),
        ["for-each-ref", "--format=%(objectname) %(refname)"],
    )?;
    let prefix = virtual_prefix(virtref);
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    for line in theirs.stdout_str().lines() {
        let Some((oid, name)) = line.split_once(' ') else {
            continue;
        };
        let Some(rest) = name.strip_prefix("refs/") else {
            continue;
        };
        wanted.insert(format!("{prefix}{rest}"), oid.to_string());
    }
    let ours = git.run_ok(
        Some(obstrepo),
        [
            "for-each-ref",
            "--format=%(objectname) %(refname)",
            prefix.as_str(),
        ],
    )?;
    let mut have: BTreeMap<String, String> = BTreeMap::new();
    for line in ours.stdout_str().lines() {
        if let Some((oid, name)) = line.split_once(' ') {
            have.insert(name.to_string(), oid.to_string());
        }
    }
    link_objects(&member.join("objects"), &obstrepo.join("objects"))?;
    // Every new tip must now be there; otherwise let fetch do it properly.
    let tips: BTreeSet<&String> = wanted
        .iter()
        .filter(|(name, oid)| have.get(*name) != Some(*oid))
        .map(|(_, oid)| oid)
        .collect();
    if !tips.is_empty() {
        let input: String = tips.iter().map(|t| format!("{t}\n")).collect();
        let out = git.run_with_input(
            Some(obstrepo),
            ["cat-file", "--batch-check=%(objectname)"],
            Some(input.as_bytes()),
        )?;
        if let Some(missing) = out.stdout_str().lines().find(|l| l.ends_with(" missing")) {
            return Err(Error::Incomplete(format!(
                "{} is not in {} after linking",
                missing.trim_end_matches(" missing"),
                obstrepo.display()
            )));
        }
    }
    let mut commands = String::new();
    for (name, oid) in &wanted {
        match have.get(name) {
            Some(old) if old == oid => {}
            Some(old) => commands.push_str(&format!("update {name} {oid} {old}\n")),
            None => commands.push_str(&format!("create {name} {oid}\n")),
        }
    }
    for (name, old) in &have {
        if !wanted.contains_key(name) {
            commands.push_str(&format!("delete {name} {old}\n"));
        }
    }
    if commands.is_empty() {
        return Ok(());
    }
    let out = git.run_with_input(
        Some(obstrepo),
        ["update-ref", "--stdin"],
        Some(commands.as_bytes()),
    )?;
    if !out.success() {
        return Err(crate::git::failed(Some(obstrepo), &["update-ref", "--stdin"], &out).into());
    }
    Ok(())
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Hard-link the loose objects and complete packs of `from` into `to`
/// (skipping what is already there, bitmaps, keep files and anything in
/// progress). Each pack's `.idx` is linked last: git only sees a pack once
/// its index is there, and by then the data is.
fn link_objects(from: &Path, to: &Path) -> Result<usize, Error> {
    let mut linked = 0;
    let link = |src: &Path, dst: &Path| -> Result<bool, Error> {
        if dst.exists() {
            return Ok(false);
        }
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        match fs::hard_link(src, dst) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_err(dst)(e)),
        }
    };
    for fan in fs::read_dir(from).map_err(io_err(from))?.flatten() {
        let fan_name = fan.file_name().to_string_lossy().into_owned();
        if !is_hex(&fan_name, 2) {
            continue;
        }
        let Ok(objects) = fs::read_dir(fan.path()) else {
            continue;
        };
        for obj in objects.flatten() {
            let name = obj.file_name().to_string_lossy().into_owned();
            if !is_hex(&name, 38) {
                continue;
            }
            if link(&obj.path(), &to.join(&fan_name).join(&name))? {
                linked += 1;
            }
        }
    }
    let packs = from.join("pack");
    if let Ok(entries) = fs::read_dir(&packs) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".idx") else {
                continue;
            };
            if !stem.starts_with("pack-") {
                continue;
            }
            let src = |ext: &str| packs.join(format!("{stem}.{ext}"));
            let dst = |ext: &str| to.join("pack").join(format!("{stem}.{ext}"));
            if !src("pack").exists() || dst("idx").exists() {
                continue;
            }
            link(&src("pack"), &dst("pack"))?;
            if src("rev").exists() {
                link(&src("rev"), &dst("rev"))?;
            }
            if link(&src("idx"), &dst("idx"))? {
                linked += 1;
            }
        }
    }
    Ok(linked)
}

/// Point `member`'s alternates at `obstrepo`'s objects.
///
/// Safe when `member` borrowed from nothing (it only gains a lender), or
/// when `obstrepo` already holds everything `member` reaches (it was
/// fetched in) and nobody borrows from `member` through its old lender.
/// Caller holds `member`'s lock.
pub fn point_at(member: &Path, obstrepo: &Path) -> Result<(), Error> {
    repo::alternates::point_at(member, obstrepo).map_err(io_err(member))
}

/// Delete an object-storage repo nobody uses any more: renamed out of
/// sight at once, then removed, both through a handle on the object-storage
/// directory that never follows a symlink. The deletion gate
/// ([`crate::tree::deletion`]) decides first; `borrowed` is what the caller found
/// under the lock.
///
/// Caller holds `obstrepo`'s lock (`_held`) and has checked, under it,
/// whether any repository (staged clones included) borrows from it.
pub fn delete(obstrepo: &Path, borrowed: bool, _held: &lock::RepoLock) -> Result<(), Error> {
    let verdict = crate::tree::deletion::judge(
        &crate::tree::deletion::Rules::default(),
        &obstrepo.display().to_string(),
        &crate::tree::deletion::Removal::UnusedObjectStorage,
        crate::tree::deletion::Facts { borrowed },
    );
    if let crate::tree::deletion::Verdict::Keep(why) = verdict {
        return Err(Error::Io {
            path: obstrepo.to_path_buf(),
            cause: io::Error::other(format!("kept: {why}")),
        });
    }
    let (Some(parent), Some(name)) = (obstrepo.parent(), obstrepo.file_name()) else {
        return Err(Error::Io {
            path: obstrepo.to_path_buf(),
            cause: io::Error::other("not a path inside the object storage"),
        });
    };
    let dir = crate::tree::Dir::open_root(parent).map_err(|e| Error::Io {
        path: parent.to_path_buf(),
        cause: io::Error::other(e.to_string()),
    })?;
    let trash = std::ffi::OsString::from(format!(
        ".{}.{}.deleting",
        name.to_string_lossy(),
        std::process::id()
    ));
    let tree_err = |e: crate::tree::Error| Error::Io {
        path: obstrepo.to_path_buf(),
        cause: io::Error::other(e.to_string()),
    };
    dir.rename_new(name, &dir, &trash).map_err(tree_err)?;
    dir.remove_tree(&trash).map_err(tree_err)
}

/// Whether a clone grok-pull is building (in its staging area) points at
/// `obstrepo`.
pub fn staged_clones_use(toplevel: &Path, obstrepo: &Path) -> bool {
    let wanted =
        fs::canonicalize(obstrepo.join("objects")).unwrap_or_else(|_| obstrepo.join("objects"));
    let Ok(entries) = fs::read_dir(crate::tree::staging::staging_root(toplevel)) else {
        return false;
    };
    entries.flatten().any(|entry| {
        ["objects", crate::tree::staging::STAGED_OBJECTS_DIR]
            .iter()
            .any(|o| crate::repo::alternates::read(&entry.path().join(o)).contains(&wanted))
    })
}

/// Whether `obstrepo` holds, under `refs/virtual/<virtref>/`, exactly the
/// refs `member` has now (same names, same objects).
pub fn member_refs_match(git: &Git, obstrepo: &Path, member: &Path) -> Result<bool, Error> {
    let prefix = virtual_prefix(&virtref(member));
    let list = |repo: &Path, pattern: &str| -> Result<BTreeSet<(String, String)>, Error> {
        let out = git.run_ok(
            Some(repo),
            ["for-each-ref", "--format=%(objectname) %(refname)", pattern],
        )?;
        Ok(out
            .stdout_str()
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(oid, name)| (name.to_string(), oid.to_string()))
            .collect())
    };
    let theirs = list(member, "refs/")?;
    let ours: BTreeSet<(String, String)> = list(obstrepo, &prefix)?
        .into_iter()
        .filter_map(|(name, oid)| Some((format!("refs/{}", name.strip_prefix(&prefix)?), oid)))
        .collect();
    Ok(theirs == ours)
}

/// Which of `candidates` (object-storage repos) some repository borrows
/// objects from right now: staged clones of grok-pull first (they move
/// into the tree, never back), then every repository of the tree and of
/// the object storage directory. Call it holding the candidates' locks:
/// grok-pull only starts borrowing from an object-storage repo under its
/// lock, so what this returns stays true until the locks are released.
pub fn in_use(
    toplevel: &Path,
    objstore_dir: &Path,
    candidates: &BTreeSet<PathBuf>,
) -> BTreeSet<PathBuf> {
    let wanted: BTreeMap<PathBuf, PathBuf> = candidates
        .iter()
        .map(|c| {
            let objects = fs::canonicalize(c.join("objects")).unwrap_or_else(|_| c.join("objects"));
            (objects, c.clone())
        })
        .collect();
    let mut used = BTreeSet::new();
    let staging = crate::tree::staging::staging_root(toplevel);
    if let Ok(entries) = fs::read_dir(&staging) {
        for entry in entries.flatten() {
            for objects in ["objects", crate::tree::staging::STAGED_OBJECTS_DIR] {
                for lender in crate::repo::alternates::read(&entry.path().join(objects)) {
                    if let Some(c) = wanted.get(&lender) {
                        used.insert(c.clone());
                    }
                }
            }
        }
    }
    let map = crate::repo::alternates::AltMap::scan(&[toplevel, objstore_dir]);
    for c in candidates {
        if map.is_borrowed(c) {
            used.insert(c.clone());
        }
    }
    used
}

/// Set a single-valued config key of `repo` (through git, so it is
/// written the way git writes it). Returns whether it changed.
pub fn set_config(git: &Git, repo: &Path, key: &str, value: &str) -> Result<bool, Error> {
    let current = git.run(Some(repo), ["config", "--get", key])?;
    if current.success() && current.stdout_str() == value {
        return Ok(false);
    }
    git.run_ok(Some(repo), ["config", "--replace-all", key, value])?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtref_is_12_hex_of_sha1_of_real_path() {
        let p = Path::new("/nonexistent/pub/linux.git");
        let expected = hex::encode(Sha1::digest(b"/nonexistent/pub/linux.git"));
        assert_eq!(virtref(p), expected[..12]);
    }

    fn git() -> Git {
        Git::from_env()
    }

    fn commit(repo: &Path, branch: &str, msg: &str) -> String {
        let g = git();
        let blob = g
            .run_with_input(
                Some(repo),
                ["hash-object", "-w", "--stdin"],
                Some(msg.as_bytes()),
            )
            .unwrap()
            .stdout_str();
        let tree = g
            .run_with_input(
                Some(repo),
                ["mktree"],
                Some(format!("100644 blob {blob}\tf\n").as_bytes()),
            )
            .unwrap()
            .stdout_str();
        let parent = g
            .run(Some(repo), ["rev-parse", "-q", "--verify", branch])
            .unwrap();
        let mut args = vec!["commit-tree".to_string(), "-m".into(), msg.into(), tree];
        if parent.success() {
            args.push("-p".into());
            args.push(parent.stdout_str());
        }
        let c = g.run_ok(Some(repo), &args).unwrap().stdout_str();
        g.run_ok(
            Some(repo),
            ["update-ref", &format!("refs/heads/{branch}"), &c],
        )
        .unwrap();
        c
    }

    fn config(repo: &Path, key: &str) -> Vec<String> {
        git()
            .run(Some(repo), ["config", "--get-all", key])
            .unwrap()
            .stdout_str()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn create_add_fetch_remove() {
        let dir = tempfile::tempdir().unwrap();
        let top = fs::canonicalize(dir.path()).unwrap();
        let obst_dir = top.join("objstore");
        let g = git();
        let obst = create(&g, &obst_dir, Some("fg")).unwrap();
        assert_eq!(obst, obst_dir.join("fg.git"));
        assert_eq!(
            create(&g, &obst_dir, Some("fg")).unwrap(),
            obst,
            "idempotent"
        );
        for (k, v) in [
            ("core.repositoryformatversion", "1"),
            ("extensions.preciousObjects", "true"),
            ("pack.compression", "9"),
            ("repack.useDeltaIslands", "true"),
            ("repack.writeBitmaps", "true"),
            ("pack.island", ISLAND_PATTERN),
            ("gc.auto", "0"),
        ] {
            assert_eq!(config(&obst, k), vec![v.to_string()], "{k}");
        }
        assert_eq!(
            fs::read_to_string(obst.join(OBJSTORE_MARKER)).unwrap(),
            MARKER_PREAMBLE
        );
        assert!(list(&obst_dir) == vec![obst.clone()]);

        let member = top.join("m.git");
        repo::init_bare_repo(&g, &member).unwrap();
        let tip = commit(&member, "main", "one");
        fs::write(member.join(repo::FINGERPRINT_FILE), "fp1").unwrap();
        assert!(!fetch_member(&g, &obst, &member, FetchMethod::Porcelain).unwrap());
        assert!(add_member(&obst, &member).unwrap());
        assert!(!add_member(&obst, &member).unwrap());
        let v = virtref(&member);
        assert_eq!(
            config(&obst, &format!("remote.{v}.url")),
            vec![member.to_string_lossy().to_string()]
        );
        assert_eq!(
            config(&obst, &format!("remote.{v}.fetch")),
            vec![member_refspec(&v)]
        );
        assert_eq!(
            config(&obst, &format!("remote.{v}.tagopt")),
            vec!["--no-tags"]
        );
        assert_eq!(
            read_member_list(&obst),
            [member.clone()].into_iter().collect()
        );
        assert!(member_needs_fetch(&obst, &member));
        assert!(fetch_member(&g, &obst, &member, FetchMethod::Porcelain).unwrap());
        assert!(!member_needs_fetch(&obst, &member));
        let refs = g
            .run_ok(
                Some(&obst),
                ["for-each-ref", "--format=%(objectname) %(refname)"],
            )
            .unwrap()
            .stdout_str();
        assert_eq!(refs, format!("{tip} refs/virtual/{v}/heads/main"));

        // Plumbing: a new commit arrives by hard links and update-ref.
        point_at(&member, &obst).unwrap();
        let tip2 = commit(&member, "main", "two");
        commit(&member, "topic", "three");
        fs::write(member.join(repo::FINGERPRINT_FILE), "fp2").unwrap();
        assert!(fetch_member(&g, &obst, &member, FetchMethod::Plumbing).unwrap());
        let refs = g
            .run_ok(
                Some(&obst),
                [
                    "for-each-ref",
                    "--format=%(objectname) %(refname)",
                    "refs/virtual/",
                ],
            )
            .unwrap()
            .stdout_str();
        assert!(
            refs.contains(&format!("{tip2} refs/virtual/{v}/heads/main")),
            "{refs}"
        );
        assert!(
            refs.contains(&format!("refs/virtual/{v}/heads/topic")),
            "{refs}"
        );
        assert_eq!(
            fs::read_to_string(fingerprint_file(&obst, &v)).unwrap(),
            "fp2"
        );
        let fsck = g
            .run(
                Some(&obst),
                ["fsck", "--connectivity-only", "--no-dangling"],
            )
            .unwrap();
        assert!(fsck.success(), "{}", fsck.stderr_str());
        // A deleted branch goes with the plumbing too.
        g.run_ok(Some(&member), ["update-ref", "-d", "refs/heads/topic"])
            .unwrap();
        fetch_member(&g, &obst, &member, FetchMethod::Plumbing).unwrap();
        assert_eq!(
            virtrefs_with_refs(&g, &obst).unwrap(),
            [v.clone()].into_iter().collect()
        );
        let refs = g
            .run_ok(Some(&obst), ["for-each-ref", "--format=%(refname)"])
            .unwrap()
            .stdout_str();
        assert!(!refs.contains("topic"), "{refs}");

        remove_member(&g, &obst, &v).unwrap();
        assert!(config(&obst, &format!("remote.{v}.url")).is_empty());
        assert!(virtrefs_with_refs(&g, &obst).unwrap().is_empty());
        assert!(!fingerprint_file(&obst, &v).exists());
        // The objects stay for whoever still borrows them.
        let has = g.run(Some(&obst), ["cat-file", "-e", &tip2]).unwrap();
        assert!(has.success());

        let held = lock::acquire_repo(&obst, lock::Wait::No).unwrap().unwrap();
        assert!(delete(&obst, true, &held).is_err(), "borrowed: kept");
        assert!(obst.exists());
        delete(&obst, false, &held).unwrap();
        assert!(!obst.exists());
        assert!(list(&obst_dir).is_empty());
    }

    #[test]
    fn leftovers_are_swept_unless_locked() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join(".a.git.1.building/objects")).unwrap();
        fs::create_dir_all(d.join(".b.git.2.deleting")).unwrap();
        fs::create_dir_all(d.join(".c.git.3.building")).unwrap();
        fs::create_dir_all(d.join("keep.git")).unwrap();
        let _live = lock::acquire_repo(&d.join(".c.git.3.building"), lock::Wait::Forever)
            .unwrap()
            .unwrap();
        let mut removed = sweep_leftovers(d);
        removed.sort();
        assert_eq!(
            removed,
            vec![d.join(".a.git.1.building"), d.join(".b.git.2.deleting")]
        );
        assert!(d.join(".c.git.3.building").exists());
        assert!(d.join("keep.git").exists());
    }
}
