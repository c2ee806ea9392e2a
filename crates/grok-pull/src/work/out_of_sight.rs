//! Building a repository out of sight and moving it into place in one
//! rename (see [`grokmirror::tree::staging`] for why the staging area is
//! invisible to tree walks). The same area parks repositories that are
//! being deleted, so they vanish from their path at once rather than file
//! by file.
//!
//! Everything here goes through directory handles ([`grokmirror::tree`]):
//! the staged repository is named relative to the verified staging area,
//! and it is moved into place with a `renameat` relative to its parent,
//! opened without following symlinks. Swapping a directory of the tree for
//! a symlink cannot redirect either step.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use grokmirror::lock::{self, FileLock, RepoLock, Wait};
use grokmirror::tree::staging::STAGED_OBJECTS_DIR;
use grokmirror::tree::{self, Dir, RepoKey, StagingArea, Tree};
use sha1::{Digest, Sha1};

/// A directory in the staging area, removed (with its lock file) when
/// dropped unless it was moved into place.
#[derive(Debug)]
pub struct Staged {
    area: StagingArea,
    name: OsString,
    lock: Option<FileLock>,
    objects_staged: bool,
    keep: bool,
}

fn to_io(e: tree::Error) -> io::Error {
    match e {
        tree::Error::Io { cause, path, what } => io::Error::new(
            cause.kind(),
            format!("cannot {what} {}: {cause}", path.display()),
        ),
        other => io::Error::other(other.to_string()),
    }
}

/// The staging area to use for a repository in `parent`: the top level's,
/// unless `parent` is on another filesystem, where one beside it is used
/// because a rename cannot cross filesystems.
fn area_for(tree: &Tree, parent: &Dir) -> io::Result<StagingArea> {
    let top_dev = std::fs::metadata(tree.root().io_path())?.dev();
    let parent_dev = std::fs::metadata(parent.io_path())?.dev();
    let base = if top_dev == parent_dev {
        tree.root()
    } else {
        parent
    };
    StagingArea::open_in(base).map_err(to_io)
}

/// A stable, filesystem-safe name for a manifest key.
fn entry_name(prefix: &str, key: &str) -> OsString {
    let digest = hex::encode(Sha1::digest(key.as_bytes()));
    OsString::from(format!("{prefix}{}.git", &digest[..20]))
}

impl Staged {
    fn claim(tree: &Tree, parent: &Dir, name: OsString) -> io::Result<Staged> {
        let area = area_for(tree, parent)?;
        let lock = lock::acquire(
            &lock::repo_lock_path(&area.dir().io_path().join(&name)),
            Wait::No,
        )
        .map_err(io::Error::other)?
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!(
                    "{} is in use by another grok-pull",
                    area.dir().shown_join(&name).display()
                ),
            )
        })?;
        // Whatever is there is a leftover of a killed run: we hold its lock.
        area.dir().remove_tree(&name).map_err(to_io)?;
        Ok(Staged {
            area,
            name,
            lock: Some(lock),
            objects_staged: false,
            keep: false,
        })
    }

    /// A new bare repository for the clone of `key` (to end up in
    /// `parent`), its objects kept in `objects.staging` until
    /// [`Staged::finish_objects`]. `git init` runs with [`Staged::env`].
    pub fn for_clone(tree: &Tree, parent: &Dir, key: &RepoKey) -> io::Result<Staged> {
        let mut s = Staged::claim(tree, parent, entry_name("", key))?;
        s.objects_staged = true;
        Ok(s)
    }

    /// Move the repository `key` out of `parent` into the staging area (it
    /// disappears from its path at once); it is deleted when the returned
    /// value is dropped. Only the deletion gate calls this, with the
    /// repository's lock held.
    pub fn park(tree: &Tree, parent: &Dir, key: &RepoKey, _held: &RepoLock) -> io::Result<Staged> {
        let s = Staged::claim(tree, parent, entry_name("gone-", key))?;
        parent
            .rename_new(key.name(), s.area.dir(), &s.name)
            .map_err(to_io)?;
        Ok(s)
    }

    /// Where the staged repository is, as a path through the staging
    /// area's handle (for git and for files written into it).
    pub fn path(&self) -> PathBuf {
        self.area.dir().io_path().join(&self.name)
    }

    /// Where the staged repository is, for messages.
    pub fn shown(&self) -> PathBuf {
        self.area.dir().shown_join(&self.name)
    }

    /// The staged object directory (where alternates go before the first
    /// fetch).
    pub fn objects_dir(&self) -> PathBuf {
        if self.objects_staged {
            self.path().join(STAGED_OBJECTS_DIR)
        } else {
            self.path().join("objects")
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
            let repo = self.area.dir().open_dir(&self.name).map_err(to_io)?;
            repo.rename_new(OsStr::new(STAGED_OBJECTS_DIR), &repo, OsStr::new("objects"))
                .map_err(to_io)?;
            self.objects_staged = false;
        }
        Ok(())
    }

    /// Move the staged repository to `name` in `parent`, which must not
    /// exist.
    pub fn publish(mut self, parent: &Dir, name: &OsStr) -> io::Result<()> {
        self.finish_objects()?;
        self.area
            .dir()
            .rename_new(&self.name, parent, name)
            .map_err(to_io)?;
        self.keep = true;
        Ok(())
    }

    /// Swap the staged repository with the one at `name` in `parent` in
    /// one atomic step (`renameat2(RENAME_EXCHANGE)`). The old repository
    /// is deleted with the returned value. Only the deletion gate calls
    /// this, with the repository's lock held.
    pub fn exchange(mut self, parent: &Dir, name: &OsStr, _held: &RepoLock) -> io::Result<Staged> {
        self.finish_objects()?;
        self.area
            .dir()
            .exchange(&self.name, parent, name)
            .map_err(to_io)?;
        // `self` now holds the old repository under the staging name and
        // deletes it when dropped.
        Ok(self)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.keep {
            let _ = self.area.dir().remove_tree(&self.name);
        }
        if let Some(lock) = self.lock.take() {
            // Remove the lock file while still holding it; nobody waits on
            // staging locks (they are only ever tried), so this can't strand
            // a waiter.
            let _ = self
                .area
                .dir()
                .remove_file(&lock::lock_file_name(&self.name));
            drop(lock);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grokmirror::tree::staging::STAGING_DIR_NAME;
    use grokmirror::tree::Reserved;
    use std::fs;

    #[test]
    fn staged_entries_clean_up_unless_published() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path();
        let tree = Tree::open(top, Reserved::none()).unwrap();
        let key = tree.key("/a/b.git").unwrap();
        let target = top.join("a/b.git");
        let parent = tree.parent_of(&key, true).unwrap();
        let s = Staged::for_clone(&tree, &parent, &key).unwrap();
        let staged_path = s.shown();
        assert!(staged_path.starts_with(top.join(STAGING_DIR_NAME)));
        fs::create_dir_all(s.objects_dir()).unwrap();
        assert!(s.objects_dir().ends_with(STAGED_OBJECTS_DIR));
        drop(s);
        assert!(!staged_path.exists());

        let s = Staged::for_clone(&tree, &parent, &key).unwrap();
        fs::create_dir_all(s.objects_dir()).unwrap();
        s.publish(&parent, key.name()).unwrap();
        assert!(target.join("objects").is_dir());
        assert!(!staged_path.exists());

        // A second publish onto the same name is refused.
        let s = Staged::for_clone(&tree, &parent, &key).unwrap();
        fs::create_dir_all(s.objects_dir()).unwrap();
        assert!(s.publish(&parent, key.name()).is_err());
        assert!(!staged_path.exists());
        let s = Staged::for_clone(&tree, &parent, &key).unwrap();
        fs::create_dir_all(s.objects_dir()).unwrap();
        fs::write(s.path().join("new"), "").unwrap();
        let held = lock::acquire_repo(&target, Wait::No).unwrap().unwrap();
        let old = s.exchange(&parent, key.name(), &held).unwrap();
        assert!(target.join("new").exists());
        assert!(!old.path().join("new").exists());
        drop(old);
        assert!(!staged_path.exists());

        let parked = Staged::park(&tree, &parent, &key, &held).unwrap();
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
