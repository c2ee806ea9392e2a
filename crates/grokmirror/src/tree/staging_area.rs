//! The staging area as a handle: created 0700 by us, and checked every time
//! it is opened, so nobody else can rename or plant anything in it. A
//! staging path that is a symlink, or a directory that is not ours, is an
//! error and is never swept: the sweep deletes what it finds there.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rustix::fs::Mode;

use super::{Dir, Error, Kind};
use crate::lock;
use crate::tree::staging::STAGING_DIR_NAME;

/// An open, verified staging directory.
#[derive(Debug, Clone)]
pub struct StagingArea {
    dir: Dir,
}

impl StagingArea {
    /// Open (creating it when missing) the staging directory in `parent`.
    pub fn open_in(parent: &Dir) -> Result<StagingArea, Error> {
        let name = OsStr::new(STAGING_DIR_NAME);
        match rustix::fs::mkdirat(parent, name, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => {
                return Err(Error::Io {
                    what: "create",
                    path: parent.shown_join(name),
                    cause: e.into(),
                })
            }
        }
        match parent.kind_of(name)? {
            Some(Kind::Dir) => {}
            Some(Kind::Symlink) => return Err(Error::Symlink(parent.shown_join(name))),
            _ => return Err(Error::NotOurs(parent.shown_join(name))),
        }
        let dir = parent.open_dir(name)?;
        let (uid, mode) = dir.owner_and_mode()?;
        if uid != rustix::process::geteuid().as_raw() {
            return Err(Error::NotOurs(dir.shown().to_path_buf()));
        }
        if mode & 0o077 != 0 {
            // Made by an older version under the umask: ours, so tighten
            // it. Whatever others could have planted is removed by the
            // sweep, which never follows a symlink.
            rustix::fs::fchmod(&dir, Mode::from_raw_mode(0o700)).map_err(|e| Error::Io {
                what: "restrict the permissions of",
                path: dir.shown().to_path_buf(),
                cause: e.into(),
            })?;
            tracing::warn!(
                "  staging: {} was mode {mode:o}; now 0700",
                dir.shown().display()
            );
        }
        Ok(StagingArea { dir })
    }

    /// The staging directory's handle.
    pub fn dir(&self) -> &Dir {
        &self.dir
    }

    /// Remove every entry that nobody holds the lock of: leftovers of runs
    /// that were killed. Returns the entries removed (shown paths).
    pub fn sweep(&self) -> Result<Vec<PathBuf>, Error> {
        let base = self.dir.io_path();
        let mut removed = Vec::new();
        let names = self.dir.names()?;
        for raw in &names {
            let name = OsStr::from_bytes(raw);
            let text = name.to_string_lossy();
            if let Some(entry) = text.strip_prefix('.').and_then(|n| n.strip_suffix(".lock")) {
                // A lock whose entry is gone: tidy it up unless held.
                if !names.iter().any(|n| n.as_slice() == entry.as_bytes()) {
                    if let Ok(Some(_held)) = lock::acquire(&base.join(name), lock::Wait::No) {
                        let _ = self.dir.remove_file(name);
                    }
                }
                continue;
            }
            if text.starts_with('.') {
                continue;
            }
            let Ok(Some(guard)) = self.dir.lock_entry(name, lock::Wait::No) else {
                continue;
            };
            self.dir.remove_tree(name)?;
            drop(guard);
            let _ = self.dir.remove_file(&lock::lock_file_name(name));
            removed.push(self.dir.shown_join(name));
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn sweep_removes_only_unlocked_entries() {
        let t = tempfile::tempdir().unwrap();
        let top = Dir::open_root(t.path()).unwrap();
        let area = StagingArea::open_in(&top).unwrap();
        let root = t.path().join(STAGING_DIR_NAME);
        let mode = fs::metadata(&root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        fs::create_dir_all(root.join("dead.git/refs")).unwrap();
        fs::create_dir_all(root.join("live.git/refs")).unwrap();
        fs::write(root.join(".gone.git.lock"), "").unwrap();
        let _live = lock::acquire_repo(&root.join("live.git"), lock::Wait::Forever)
            .unwrap()
            .unwrap();
        let removed = area.sweep().unwrap();
        assert_eq!(removed, vec![root.join("dead.git")]);
        assert!(root.join("live.git").exists());
        assert!(!root.join(".dead.git.lock").exists());
        assert!(!root.join(".gone.git.lock").exists());
    }

    #[test]
    fn a_symlinked_or_loose_staging_area() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("precious"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join(STAGING_DIR_NAME)).unwrap();
        let top = Dir::open_root(t.path()).unwrap();
        assert!(matches!(StagingArea::open_in(&top), Err(Error::Symlink(_))));
        assert!(outside.path().join("precious").exists());

        let t = tempfile::tempdir().unwrap();
        let root = t.path().join(STAGING_DIR_NAME);
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o777)).unwrap();
        let top = Dir::open_root(t.path()).unwrap();
        StagingArea::open_in(&top).unwrap();
        let mode = fs::metadata(&root).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        // Somebody else's directory under our staging name (the tests run
        // as root, which can hand it to another user).
        if rustix::process::geteuid().is_root() {
            std::os::unix::fs::chown(&root, Some(65534), Some(65534)).unwrap();
            fs::create_dir(root.join("theirs")).unwrap();
            assert!(matches!(StagingArea::open_in(&top), Err(Error::NotOurs(_))));
            assert!(root.join("theirs").exists());
        }
    }
}
