//! Moving a member's objects into its object-storage repository: with
//! `git fetch`, or, where both sit on one filesystem and the member is
//! complete, by hardlinking its packs (the plumbing method).

use crate::git::Git;
use crate::lock;
use crate::repo::{self};
use crate::tree::fsutil;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{add_member, io_err, member_refspec, member_remote, virtref, virtual_prefix, Error};
use crate::repo::git_config;

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
        let cfg = git_config::open(obstrepo)?;
        if git_config::values(&cfg, &format!("remote.{v}.url")) != [url.clone()] {
            return Ok(false);
        }
        if !member_remote(&v, &url, &member_refspec(&v)).is_in(&cfg) {
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
