//! Building a repository out of sight and moving it into place in one
//! rename (see [`grokmirror::staging`] for why the staging area is
//! invisible to tree walks). The same area parks repositories that are
//! being deleted, so they vanish from their path at once rather than file
//! by file.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use grokmirror::lock::{self, FileLock};
use grokmirror::staging::{self, STAGED_OBJECTS_DIR, STAGING_DIR_NAME};
use sha1::{Digest, Sha1};

/// A directory in the staging area, removed (with its lock file) when
/// dropped unless it was moved into place.
#[derive(Debug)]
pub struct Staged {
    path: PathBuf,
    lock: Option<FileLock>,
    objects_staged: bool,
    keep: bool,
}

/// The staging directory to use for `target`: the top level's, unless
/// `target`'s parent is on another filesystem, where a sibling one is used
/// because a rename cannot cross filesystems.
fn root_for(toplevel: &Path, target_parent: &Path) -> io::Result<PathBuf> {
    let top_dev = fs::metadata(toplevel)?.dev();
    let parent_dev = fs::metadata(target_parent)?.dev();
    Ok(if top_dev == parent_dev {
        staging::staging_root(toplevel)
    } else {
        target_parent.join(STAGING_DIR_NAME)
    })
}

/// A stable, filesystem-safe name for a manifest key.
fn entry_name(prefix: &str, key: &str) -> String {
    let digest = hex::encode(Sha1::digest(key.as_bytes()));
    format!("{prefix}{}.git", &digest[..20])
}

impl Staged {
    fn claim(toplevel: &Path, target: &Path, name: String) -> io::Result<Staged> {
        let parent = target.parent().unwrap_or(toplevel);
        let root = root_for(toplevel, parent)?;
        fs::create_dir_all(&root)?;
        let path = root.join(name);
        let lock = lock::try_lock_repo(&path)
            .map_err(io::Error::other)?
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!("{} is in use by another grok-pull", path.display()),
                )
            })?;
        // Whatever is there is a leftover of a killed run: we hold its lock.
        remove_any(&path)?;
        Ok(Staged {
            path,
            lock: Some(lock),
            objects_staged: false,
            keep: false,
        })
    }

    /// A new bare repository for the clone of `key` (to end up at
    /// `target`), its objects kept in `objects.staging` until
    /// [`Staged::finish_objects`]. `git init` runs with [`Staged::env`].
    pub fn for_clone(toplevel: &Path, target: &Path, key: &str) -> io::Result<Staged> {
        let mut s = Staged::claim(toplevel, target, entry_name("", key))?;
        s.objects_staged = true;
        Ok(s)
    }

    /// Move `victim` into the staging area (it disappears from its path at
    /// once); it is deleted when the returned value is dropped.
    pub fn park(toplevel: &Path, victim: &Path, key: &str) -> io::Result<Staged> {
        let s = Staged::claim(toplevel, victim, entry_name("gone-", key))?;
        fs::rename(victim, &s.path)?;
        Ok(s)
    }

    /// Where the staged repository is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The staged object directory (where alternates go before the first
    /// fetch).
    pub fn objects_dir(&self) -> PathBuf {
        if self.objects_staged {
            self.path.join(STAGED_OBJECTS_DIR)
        } else {
            self.path.join("objects")
        }
    }

    /// Environment for git commands on the staged repository.
    pub fn env(&self) -> Vec<(&'static str, OsString)> {
        if self.objects_staged {
            vec![("GIT_OBJECT_DIRECTORY", self.objects_dir().into_os_string())]
        } else {
            Vec::new()
        }
    }

    /// Give the objects their real name: from here on this is a complete
    /// repository (still in the staging area).
    pub fn finish_objects(&mut self) -> io::Result<()> {
        if self.objects_staged {
            fs::rename(
                self.path.join(STAGED_OBJECTS_DIR),
                self.path.join("objects"),
            )?;
            self.objects_staged = false;
        }
        Ok(())
    }

    /// Move the staged repository to `target`, which must not exist.
    pub fn publish(mut self, target: &Path) -> io::Result<()> {
        self.finish_objects()?;
        fs::rename(&self.path, target)?;
        self.keep = true;
        Ok(())
    }

    /// Swap the staged repository with the one at `target` in one atomic
    /// step (`renameat2(RENAME_EXCHANGE)`; two renames where the
    /// filesystem can't). The old repository is deleted with the returned
    /// value.
    pub fn exchange(mut self, target: &Path) -> io::Result<Staged> {
        self.finish_objects()?;
        let swapped = nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            &self.path,
            nix::fcntl::AT_FDCWD,
            target,
            nix::fcntl::RenameFlags::RENAME_EXCHANGE,
        );
        if swapped.is_err() {
            let aside = self.path.with_extension("old");
            remove_any(&aside)?;
            fs::rename(target, &aside)?;
            if let Err(e) = fs::rename(&self.path, target) {
                // Put the old one back rather than leave nothing.
                let _ = fs::rename(&aside, target);
                return Err(e);
            }
            fs::rename(&aside, &self.path)?;
        }
        // `self` now holds the old repository under the staging name and
        // deletes it when dropped.
        Ok(self)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.keep {
            let _ = remove_any(&self.path);
        }
        if let Some(lock) = self.lock.take() {
            let lock_path = lock.path().to_path_buf();
            // Remove the lock file while still holding it; nobody waits on
            // staging locks (they are only ever tried), so this can't strand
            // a waiter.
            let _ = fs::remove_file(&lock_path);
            drop(lock);
        }
    }
}

/// Remove a file, symlink or directory tree; absent is fine.
pub fn remove_any(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn staged_entries_clean_up_unless_published() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path();
        let target = top.join("a/b.git");
        fs::create_dir_all(target.parent().unwrap()).unwrap();
        let s = Staged::for_clone(top, &target, "/a/b.git").unwrap();
        let staged_path = s.path().to_path_buf();
        assert!(staged_path.starts_with(top.join(STAGING_DIR_NAME)));
        fs::create_dir_all(s.objects_dir()).unwrap();
        assert!(s.objects_dir().ends_with(STAGED_OBJECTS_DIR));
        drop(s);
        assert!(!staged_path.exists());

        let s = Staged::for_clone(top, &target, "/a/b.git").unwrap();
        fs::create_dir_all(s.objects_dir()).unwrap();
        s.publish(&target).unwrap();
        assert!(target.join("objects").is_dir());
        assert!(!staged_path.exists());

        let s = Staged::for_clone(top, &target, "/a/b.git").unwrap();
        fs::create_dir_all(s.objects_dir()).unwrap();
        fs::write(s.path().join("new"), "").unwrap();
        let old = s.exchange(&target).unwrap();
        assert!(target.join("new").exists());
        assert!(!old.path().join("new").exists());
        drop(old);
        assert!(!staged_path.exists());

        let parked = Staged::park(top, &target, "/a/b.git").unwrap();
        assert!(!target.exists());
        drop(parked);
        let root = top.join(STAGING_DIR_NAME);
        assert_eq!(
            fs::read_dir(&root).unwrap().count(),
            0,
            "staging area is empty"
        );
    }
}
