//! The top level, the object storage and the staging area as open
//! directory handles: every create, rename, delete and symlink placement
//! under them is made relative to a handle and never follows a symlink on
//! the way (SPEC §2), so a local user who can rename a directory of the
//! tree cannot make us write or delete outside it.
//!
//! - [`Tree`]: the top level, opened once; [`RepoKey`]s resolve below it.
//! - [`Dir`]: any directory below it, with the operations we need.
//! - [`StagingArea`]: where clones are built, ours alone (0700), verified
//!   each time it is opened.

pub mod deletion;
pub mod discovery;
pub mod fsutil;
pub mod staging;
pub mod toplevel;

mod dir;
pub mod key;
mod staging_area;

use std::io;
use std::path::{Path, PathBuf};

use crate::lock::{RepoLock, Wait};

pub use dir::{Dir, Kind};
pub use key::{real_location, RepoKey, Reserved};
pub use staging_area::StagingArea;

/// What went wrong with a path under a handle.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call on a path failed.
    #[error("cannot {what} {}: {cause}", path.display())]
    Io {
        /// What we were doing.
        what: &'static str,
        /// The path (as shown to the operator).
        path: PathBuf,
        /// The underlying error.
        cause: io::Error,
    },
    /// A symlink stood where a real directory must be.
    #[error("{} is a symlink or leads through one; refusing to follow it (move it away)", .0.display())]
    Symlink(PathBuf),
    /// A path that is not below the directory it must be in.
    #[error("{} is not a plain path below the top level or the object storage", .0.display())]
    NotBeneath(PathBuf),
    /// The staging area is not ours alone.
    #[error("{} is not a directory owned by this user; refusing to use or clean it (remove it, or fix its owner)", .0.display())]
    NotOurs(PathBuf),
    /// Something that is not a directory stands on a repository's way.
    #[error("{} is not a directory; move it away", .0.display())]
    NotADirectory(PathBuf),
    /// Something that is not a regular file stands where one must be.
    #[error("{} is not a regular file; move it away", .0.display())]
    NotAFile(PathBuf),
    /// A repository's path lies inside another repository.
    #[error("it would lie inside the repository {}", .0.display())]
    InsideRepository(PathBuf),
}

impl Error {
    /// Whether the path simply does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Io { cause, .. } if cause.kind() == io::ErrorKind::NotFound)
    }
}

/// The mirror's top level, opened once.
#[derive(Debug, Clone)]
pub struct Tree {
    root: Dir,
    /// The top level's real path, when it is spelled through a symlink in
    /// the config (`/srv/git` -> `/data/git`): paths found on disk may use
    /// either spelling.
    real: Option<PathBuf>,
    reserved: Reserved,
    /// Other directories of ours outside the top level (object storage
    /// kept elsewhere), which [`Tree::pin`] also opens.
    others: Vec<PathBuf>,
}

impl Tree {
    /// Open the top level at `toplevel`; keys naming anything in
    /// `reserved` are refused.
    pub fn open(toplevel: &Path, reserved: Reserved) -> Result<Tree, Error> {
        let real = std::fs::canonicalize(toplevel)
            .ok()
            .filter(|r| r.as_path() != toplevel);
        Ok(Tree {
            root: Dir::open_root(toplevel)?,
            real,
            reserved,
            others: Vec::new(),
        })
    }

    /// Also let [`Tree::pin`] open directories below `dir` (the object
    /// storage, when the config puts it outside the top level).
    pub fn with_other_root(mut self, dir: &Path) -> Tree {
        if !dir.starts_with(self.path()) {
            self.others.push(dir.to_path_buf());
        }
        self
    }

    /// The top level's handle.
    pub fn root(&self) -> &Dir {
        &self.root
    }

    /// The top level's path, for messages, hooks and files that record it.
    pub fn path(&self) -> &Path {
        self.root.shown()
    }

    /// The replica's own paths.
    pub fn reserved(&self) -> &Reserved {
        &self.reserved
    }

    /// Check a manifest key for use in this tree.
    pub fn key(&self, raw: &str) -> Result<RepoKey, String> {
        RepoKey::new(raw, &self.reserved)
    }

    /// Where `key` is, as a path for messages, hooks and records (never
    /// for touching it: use the handles).
    pub fn path_of(&self, key: &RepoKey) -> PathBuf {
        self.root.shown_join(key.relative())
    }

    /// The directory that holds `key`, opened without following symlinks,
    /// created when `create` is set. An ancestor that is a repository
    /// itself is refused: a repository never lies inside another.
    pub fn parent_of(&self, key: &RepoKey, create: bool) -> Result<Dir, Error> {
        let mut current = self.root.clone();
        for part in key.parent().components() {
            current = step_into(&current, part.as_os_str(), create)?;
        }
        Ok(current)
    }

    /// A cache of [`Tree::parent_of`] for one pass over many keys (a
    /// planning run): each directory on the way is checked once, however
    /// many repositories it holds. Drop it when the pass is over: a
    /// directory moved meanwhile stays what it was in the cache.
    pub fn parents(&self) -> Parents<'_> {
        Parents {
            tree: self,
            dirs: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The directory at `path` (a full path found on this machine, not a
    /// manifest key) opened without following symlinks below the top level
    /// (or below one of [`Tree::with_other_root`]'s directories, itself
    /// opened as configured). Anything else is refused: a path that
    /// resolved out of the tree through a symlink is never worked on. Use
    /// [`Dir::io_path`] of the result, while it lives, to work on it.
    pub fn pin(&self, path: &Path) -> Result<Dir, Error> {
        if let Ok(rel) = path.strip_prefix(self.path()) {
            return self.root.open_dir(rel);
        }
        if let Some(rel) = self.real.as_deref().and_then(|r| path.strip_prefix(r).ok()) {
            return self.root.open_dir(rel);
        }
        for other in &self.others {
            if let Ok(rel) = path.strip_prefix(other) {
                return Dir::open_root(other)?.open_dir(rel);
            }
        }
        Err(Error::NotBeneath(path.to_path_buf()))
    }

    /// Take the lock of the repository at `path` (a full path) through its
    /// parent's handle ([`Tree::pin`]): the lock file is made in the real
    /// parent directory, and the stale git locks cleared in the real
    /// repository, whatever was renamed on the way.
    pub fn lock_repo(&self, path: &Path, wait: Wait) -> Result<Option<RepoLock>, Error> {
        self.lock_repo_noting(path, wait, || {})
    }

    /// [`Tree::lock_repo`], calling `on_wait` once if it has to wait.
    pub fn lock_repo_noting(
        &self,
        path: &Path,
        wait: Wait,
        on_wait: impl FnOnce(),
    ) -> Result<Option<RepoLock>, Error> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(Error::NotBeneath(path.to_path_buf()));
        };
        self.pin(parent)?.lock_entry_noting(name, wait, on_wait)
    }
}

/// One step of [`Tree::parent_of`]: the directory `name` below `current`,
/// never a symlink, never a repository (a repository never lies inside
/// another); made when missing and `create` is set.
fn step_into(current: &Dir, name: &std::ffi::OsStr, create: bool) -> Result<Dir, Error> {
    match current.kind_of(name)? {
        None if create => return current.create_dir_all(name),
        None => {
            return Err(Error::Io {
                what: "open",
                path: current.shown_join(name),
                cause: io::Error::from(io::ErrorKind::NotFound),
            })
        }
        Some(Kind::Symlink) => return Err(Error::Symlink(current.shown_join(name))),
        Some(Kind::Dir) => {}
        Some(_) => return Err(Error::NotADirectory(current.shown_join(name))),
    }
    let dir = current.open_dir(name)?;
    if dir.looks_like_bare_repo() {
        return Err(Error::InsideRepository(dir.shown().to_path_buf()));
    }
    Ok(dir)
}

/// See [`Tree::parents`].
#[derive(Debug)]
pub struct Parents<'t> {
    tree: &'t Tree,
    dirs: std::sync::Mutex<std::collections::HashMap<PathBuf, Dir>>,
}

impl Parents<'_> {
    /// [`Tree::parent_of`] (never creating), with what was learned about
    /// each directory on the way kept for the keys that follow.
    pub fn parent_of(&self, key: &RepoKey) -> Result<Dir, Error> {
        self.dir(key.parent())
    }

    fn dir(&self, rel: &Path) -> Result<Dir, Error> {
        if rel.as_os_str().is_empty() {
            return Ok(self.tree.root.clone());
        }
        if let Some(d) = self.dirs.lock().expect("poisoned").get(rel) {
            return Ok(d.clone());
        }
        let parent = self.dir(rel.parent().unwrap_or(Path::new("")))?;
        let name = rel
            .file_name()
            .ok_or_else(|| Error::NotBeneath(rel.to_path_buf()))?;
        let dir = step_into(&parent, name, false)?;
        self.dirs
            .lock()
            .expect("poisoned")
            .insert(rel.to_path_buf(), dir.clone());
        Ok(dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn parents_refuse_symlinks_files_and_repositories() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let top = t.path();
        fs::create_dir_all(top.join("r.git/objects")).unwrap();
        fs::create_dir_all(top.join("r.git/refs")).unwrap();
        fs::write(top.join("r.git/HEAD"), "ref: refs/heads/main\n").unwrap();
        fs::write(top.join("file"), "").unwrap();
        std::os::unix::fs::symlink(outside.path(), top.join("out")).unwrap();
        let tree = Tree::open(top, Reserved::none()).unwrap();
        let key = |k: &str| tree.key(k).unwrap();
        assert!(matches!(
            tree.parent_of(&key("/out/x.git"), true),
            Err(Error::Symlink(_))
        ));
        assert!(matches!(
            tree.parent_of(&key("/file/x.git"), true),
            Err(Error::NotADirectory(_))
        ));
        assert!(matches!(
            tree.parent_of(&key("/r.git/x.git"), true),
            Err(Error::InsideRepository(_))
        ));
        assert!(tree
            .parent_of(&key("/new/x.git"), false)
            .unwrap_err()
            .is_not_found());
        let made = tree.parent_of(&key("/new/deeper/x.git"), true).unwrap();
        assert_eq!(made.shown(), top.join("new/deeper"));
        assert!(top.join("new/deeper").is_dir());
        assert!(fs::read_dir(outside.path()).unwrap().next().is_none());
        let parent = tree.parent_of(&key("/r.git"), false).unwrap();
        assert!(parent.open_dir("r.git").is_ok());
        assert!(parent.open_dir("out").is_err());
        assert_eq!(tree.path_of(&key("/a/b.git")), top.join("a/b.git"));
        assert!(tree.pin(&top.join("r.git")).is_ok());
        assert!(tree.pin(&top.join("out")).is_err());
        assert!(matches!(
            tree.pin(outside.path()),
            Err(Error::NotBeneath(_))
        ));
        // The top level spelled through a symlink: both spellings pin.
        let alias = t.path().join("alias");
        std::os::unix::fs::symlink(top, &alias).unwrap();
        let aliased = Tree::open(&alias, Reserved::none()).unwrap();
        assert!(aliased.pin(&top.join("r.git")).is_ok());
        assert!(aliased.pin(&alias.join("r.git")).is_ok());
        let tree = tree.with_other_root(outside.path());
        assert_eq!(tree.pin(outside.path()).unwrap().shown(), outside.path());
    }

    /// The cache for a planning pass answers as `parent_of` does, and asks
    /// the disk about each directory once.
    #[test]
    fn cached_parents_answer_like_parent_of() {
        let t = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let top = t.path();
        for repo in ["a/b/r.git", "a/r.git"] {
            fs::create_dir_all(top.join(repo).join("objects")).unwrap();
            fs::create_dir_all(top.join(repo).join("refs")).unwrap();
            fs::write(top.join(repo).join("HEAD"), "ref: refs/heads/main\n").unwrap();
        }
        fs::write(top.join("a/b/r.git/grokmirror.fingerprint"), "abc\n").unwrap();
        fs::write(top.join("file"), "").unwrap();
        std::os::unix::fs::symlink(outside.path(), top.join("out")).unwrap();
        let tree = Tree::open(top, Reserved::none()).unwrap();
        let parents = tree.parents();
        let key = |k: &str| tree.key(k).unwrap();
        for k in [
            "/out/x.git",
            "/file/x.git",
            "/a/r.git/x.git",
            "/none/x.git",
            "/a/b/r.git",
            "/a/b/c.git",
            "/x.git",
        ] {
            let cached = parents.parent_of(&key(k)).map(|d| d.shown().to_path_buf());
            let direct = tree
                .parent_of(&key(k), false)
                .map(|d| d.shown().to_path_buf());
            assert_eq!(format!("{cached:?}"), format!("{direct:?}"), "{k}");
        }
        let parent = parents.parent_of(&key("/a/b/r.git")).unwrap();
        let repo = parent.open_dir("r.git").unwrap();
        assert!(repo.looks_like_bare_repo());
        assert!(!parent.looks_like_bare_repo());
        assert_eq!(
            repo.read_small_file("grokmirror.fingerprint", 1024)
                .unwrap(),
            b"abc\n"
        );
        assert_eq!(
            repo.read_small_file("grokmirror.fingerprint", 2).unwrap(),
            b"ab"
        );
        assert!(repo.read_small_file("missing", 1024).is_none());
        // A symlinked file is not followed.
        std::os::unix::fs::symlink(top.join("file"), top.join("a/b/r.git/link")).unwrap();
        assert!(repo.read_small_file("link", 1024).is_none());
    }
}
