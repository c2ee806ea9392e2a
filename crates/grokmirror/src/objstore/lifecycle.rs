//! Making, finding unused and deleting object-storage repositories, and
//! sweeping what a killed run left half-made.

use crate::git::Git;
use crate::lock;
use crate::repo::{self, OBJSTORE_MARKER};
use crate::tree::fsutil;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{io_err, new_forkgroup_name, Error, ISLAND_PATTERN, MARKER_PREAMBLE};

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
