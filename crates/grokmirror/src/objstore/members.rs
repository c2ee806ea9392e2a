//! Who belongs to an object-storage repository: its remotes (one per
//! member, named by the member's virtual ref), the member list, and the
//! alternates and config that tie a member to it.

use crate::git::Git;
use crate::repo::{self, OBJSTORE_MARKER};
use crate::tree::fsutil;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{
    fingerprint_file, io_err, member_refspec, virtref, virtual_prefix, Error, MARKER_PREAMBLE,
};
use crate::repo::git_config::{self, Remote};

/// The remotes of an object-storage repo as `(name, url)`, sorted by name
/// (the order `git remote -v` prints, which grokmirror relies on), read
/// from its config file in-process (grok-pull reads every object storage's
/// remotes on each run). Remotes without a URL are left out.
pub fn list_remotes(_git: &Git, obstrepo: &Path) -> Result<Vec<(String, String)>, Error> {
    let cfg = git_config::open(obstrepo)?;
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

/// A member's remote in its object storage: named by its virtual ref,
/// fetching its refs under that ref's prefix, no tags.
pub(super) fn member_remote<'a>(virtref: &'a str, url: &'a str, refspec: &'a str) -> Remote<'a> {
    Remote {
        name: virtref,
        url,
        fetch: refspec,
        tagopt: Some("--no-tags"),
    }
}

/// Every remote name of `obstrepo`'s config, URL or not (a crash while a
/// remote was written can leave one without).
pub fn remote_names(obstrepo: &Path) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let Ok(cfg) = git_config::open(obstrepo) else {
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
    let Ok(cfg) = git_config::open(obstrepo) else {
        return false;
    };
    let v = virtref(member);
    git_config::values(&cfg, &format!("remote.{v}.url")) == [member.to_string_lossy().into_owned()]
}

/// Make `member` a remote of `obstrepo` (its objects will be fetched into
/// it) and list it in `grokmirror.objstore`. Returns whether anything
/// changed. A half-written remote (a crash) is repaired by the next call.
///
/// Caller holds `obstrepo`'s lock. Changes no objects or refs.
pub fn add_member(obstrepo: &Path, member: &Path) -> Result<bool, Error> {
    let v = virtref(member);
    let url = member.to_string_lossy().into_owned();
    let mut cfg = git_config::open(obstrepo)?;
    let refspec = member_refspec(&v);
    let remote = member_remote(&v, &url, &refspec);
    if remote.is_in(&cfg) {
        return Ok(false);
    }
    remote.write(&mut cfg, obstrepo)?;
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
    let mut cfg = git_config::open(obstrepo)?;
    git_config::remove_remote(&mut cfg, obstrepo, virtref)?;
    let fp = fingerprint_file(obstrepo, virtref);
    match fs::remove_file(&fp) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(&fp)(e)),
    }
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

/// Remove the pack `stem` from `pack_dir`: its index first (git sees a
/// pack only through its index), then the data and what goes with it.
fn remove_pack(pack_dir: &Path, stem: &str) -> Result<(), Error> {
    for ext in ["idx", "pack", "rev", "bitmap", "mtimes"] {
        let file = pack_dir.join(format!("{stem}.{ext}"));
        match fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&file)(e)),
        }
    }
    Ok(())
}

/// Remove from a member the packs that are hard links of packs of its
/// object storage (the same file: grok-fsck seeds a new object storage by
/// linking its first member's packs). Every object in them is in the object
/// storage, which the member borrows from, so they are dropped without a
/// repack that would walk the whole history to find that out. Kept packs
/// (`.keep`) stay. The index goes first, so git never sees a pack without
/// one. Returns how many packs went.
///
/// `member` is a path through the member's handle; the caller holds its
/// lock, and has checked that it borrows from `obstrepo`.
pub fn drop_packs_linked_into(member: &Path, obstrepo: &Path) -> Result<usize, Error> {
    use std::os::unix::fs::MetadataExt;
    let mine = member.join("objects/pack");
    let theirs = obstrepo.join("objects/pack");
    let Ok(entries) = fs::read_dir(&mine) else {
        return Ok(0);
    };
    let mut dropped = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(stem) = name.strip_suffix(".pack") else {
            continue;
        };
        if !stem.starts_with("pack-") || mine.join(format!("{stem}.keep")).exists() {
            continue;
        }
        let (Ok(a), Ok(b)) = (
            fs::symlink_metadata(entry.path()),
            fs::symlink_metadata(theirs.join(&name)),
        ) else {
            continue;
        };
        let same_file = a.is_file() && b.is_file() && a.dev() == b.dev() && a.ino() == b.ino();
        if !same_file || !theirs.join(format!("{stem}.idx")).is_file() {
            continue;
        }
        remove_pack(&mine, stem)?;
        dropped += 1;
    }
    Ok(dropped)
}

/// Remove from a member the packs whose every object its object storage
/// holds too (a member that just joined: the fetch copied everything its
/// refs reach, and a freshly fetched pack holds nothing else). Each pack's
/// object names come from its index (`git show-index`), and the object
/// storage is asked for all of them (`git cat-file --batch-check`, which
/// sees the object storage's own objects only: it borrows from nobody); a
/// pack with one object the object storage lacks stays. Kept packs
/// (`.keep`) stay. Returns how many packs went.
///
/// `member` is a path through the member's handle; the caller holds its
/// lock, and has checked that it borrows from `obstrepo`.
pub fn drop_packs_contained_in(git: &Git, member: &Path, obstrepo: &Path) -> Result<usize, Error> {
    let mine = member.join("objects/pack");
    let Ok(entries) = fs::read_dir(&mine) else {
        return Ok(0);
    };
    let mut stems: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".idx").map(str::to_string))
        .filter(|stem| stem.starts_with("pack-"))
        .filter(|stem| mine.join(format!("{stem}.pack")).is_file())
        .filter(|stem| !mine.join(format!("{stem}.keep")).exists())
        .collect();
    stems.sort();
    let mut dropped = 0;
    for stem in stems {
        let idx = fs::read(mine.join(format!("{stem}.idx"))).map_err(io_err(&mine))?;
        let listed = git.run_with_input(Some(member), ["show-index"], Some(&idx))?;
        if !listed.success() {
            continue;
        }
        let names: String = listed
            .stdout_str()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .map(|oid| format!("{oid}\n"))
            .collect();
        if names.is_empty() {
            continue;
        }
        let asked = git.run_with_input(
            Some(obstrepo),
            ["cat-file", "--batch-check=%(objectname)"],
            Some(names.as_bytes()),
        )?;
        let answers = asked.stdout_str();
        let all_there = asked.success()
            && answers.lines().count() == names.lines().count()
            && !answers.lines().any(|l| l.ends_with(" missing"));
        if !all_there {
            continue;
        }
        remove_pack(&mine, &stem)?;
        dropped += 1;
    }
    Ok(dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str], input: Option<&str>) -> String {
        let out = Git::from_env()
            .run_with_input(Some(dir), args, input.map(str::as_bytes))
            .unwrap();
        assert!(out.success(), "git {args:?}: {}", out.stderr_str());
        out.stdout_str().trim().to_string()
    }

    #[test]
    fn a_pack_goes_only_when_the_object_storage_holds_all_of_it() {
        let dir = tempfile::tempdir().unwrap();
        let (member, obst) = (dir.path().join("m.git"), dir.path().join("o.git"));
        for r in [&member, &obst] {
            git(
                dir.path(),
                &["init", "-q", "--bare", r.to_str().unwrap()],
                None,
            );
        }
        let shared = git(&member, &["hash-object", "-w", "--stdin"], Some("shared\n"));
        git(&obst, &["hash-object", "-w", "--stdin"], Some("shared\n"));
        let own = git(
            &member,
            &["hash-object", "-w", "--stdin"],
            Some("only mine\n"),
        );
        let list = format!("{shared}\n{own}\n");
        let base = member.join("objects/pack/pack");
        git(
            &member,
            &["pack-objects", "-q", base.to_str().unwrap()],
            Some(&list),
        );
        git(&member, &["prune-packed"], None);
        let g = Git::from_env();
        // One object the object storage lacks: the pack stays.
        assert_eq!(drop_packs_contained_in(&g, &member, &obst).unwrap(), 0);
        assert_eq!(crate::repo::object_counts::scan(&member).unwrap().packs, 1);
        git(
            &obst,
            &["hash-object", "-w", "--stdin"],
            Some("only mine\n"),
        );
        assert_eq!(drop_packs_contained_in(&g, &member, &obst).unwrap(), 1);
        assert_eq!(crate::repo::object_counts::scan(&member).unwrap().packs, 0);
    }

    #[test]
    fn only_packs_that_are_the_same_file_go() {
        let dir = tempfile::tempdir().unwrap();
        let member = dir.path().join("m.git");
        let obst = dir.path().join("o.git");
        let (mp, op) = (member.join("objects/pack"), obst.join("objects/pack"));
        fs::create_dir_all(&mp).unwrap();
        fs::create_dir_all(&op).unwrap();
        for stem in ["pack-1", "pack-2", "pack-3"] {
            for ext in ["pack", "idx"] {
                fs::write(mp.join(format!("{stem}.{ext}")), stem).unwrap();
            }
        }
        // pack-1: linked (the same file); pack-2: a copy (same name, another
        // file); pack-3: linked but kept.
        for stem in ["pack-1", "pack-3"] {
            for ext in ["pack", "idx"] {
                fs::hard_link(
                    mp.join(format!("{stem}.{ext}")),
                    op.join(format!("{stem}.{ext}")),
                )
                .unwrap();
            }
        }
        for ext in ["pack", "idx"] {
            fs::write(op.join(format!("pack-2.{ext}")), "pack-2").unwrap();
        }
        fs::write(mp.join("pack-3.keep"), "").unwrap();
        assert_eq!(drop_packs_linked_into(&member, &obst).unwrap(), 1);
        assert!(!mp.join("pack-1.pack").exists() && !mp.join("pack-1.idx").exists());
        assert!(
            op.join("pack-1.pack").exists(),
            "the object storage keeps its copy"
        );
        assert!(mp.join("pack-2.pack").exists() && mp.join("pack-3.pack").exists());
        assert_eq!(drop_packs_linked_into(&member, &obst).unwrap(), 0);
    }
}
