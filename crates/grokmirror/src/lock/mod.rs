//! Lock files shared with the Python grokmirror (SPEC §1.4).
//!
//! grokmirror takes `fcntl.lockf(fh, LOCK_EX)`, a POSIX record lock on the
//! whole file. We take the same kind of lock, but as an *open file
//! description* lock (`F_OFD_SETLKW`, Linux >= 3.15): OFD locks and classic
//! record locks conflict with each other, so the Python tool and we exclude
//! each other, while OFD locks also exclude two threads of our own process
//! and are not dropped when some unrelated descriptor for the same file is
//! closed (both of which break classic record locks in a threaded program).

pub mod git_leftovers;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Failure to create, open or lock a lock file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The lock file (or its directory) could not be created or opened.
    #[error("cannot open lock file {path}: {cause}")]
    Open {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        cause: io::Error,
    },
    /// The lock could not be taken for a reason other than contention.
    #[error("cannot lock {path}: {cause}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// The underlying error.
        cause: io::Error,
    },
    /// Another process held the lock for longer than we were willing to wait.
    #[error("timed out after {waited:?} waiting for the lock on {path}")]
    Timeout {
        /// The lock file.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },
}

/// An exclusive lock on a lock file, released when dropped.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

/// The lock file for a repository: `.<dir name>.lock` in its parent
/// directory (`/t/a/b.git` -> `/t/a/.b.git.lock`).
pub fn repo_lock_path(repo: &Path) -> PathBuf {
    sibling_lock_path(repo)
}

/// The lock file for a manifest or status file: `.<file name>.lock` beside it.
pub fn file_lock_path(file: &Path) -> PathBuf {
    sibling_lock_path(file)
}

fn sibling_lock_path(path: &Path) -> PathBuf {
    crate::tree::fsutil::companion_path(path, "lock")
}

/// The name of the lock file of `name` in the same directory
/// (`b.git` -> `.b.git.lock`), for removal through a directory handle.
pub fn lock_file_name(name: &std::ffi::OsStr) -> std::ffi::OsString {
    crate::tree::fsutil::companion_name(name, "lock")
}

fn ofd_lock(file: &File, wait: bool) -> io::Result<bool> {
    // SAFETY: flock is a plain C struct; zeroed is a valid value, and we fill
    // in the fields that F_OFD_SETLK requires (l_pid must be 0).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = libc::F_WRLCK as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 0;
    fl.l_len = 0;
    let cmd = if wait {
        libc::F_OFD_SETLKW
    } else {
        libc::F_OFD_SETLK
    };
    loop {
        // SAFETY: valid descriptor for the lifetime of `file`, valid pointer
        // to an initialized flock.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), cmd, &mut fl) };
        if rc == 0 {
            return Ok(true);
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) | Some(libc::EACCES) if !wait => return Ok(false),
            _ => return Err(err),
        }
    }
}

impl FileLock {
    fn open(path: &Path) -> Result<File, Error> {
        if let Some(parent) = path.parent() {
            if !parent.as_os_str().is_empty() && !parent.exists() {
                std::fs::create_dir_all(parent).map_err(|cause| Error::Open {
                    path: path.to_path_buf(),
                    cause,
                })?;
            }
        }
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o666)
            .open(path)
            .map_err(|cause| Error::Open {
                path: path.to_path_buf(),
                cause,
            })
    }

    /// Take the lock, waiting as long as it takes.
    fn acquire(path: &Path) -> Result<FileLock, Error> {
        let file = Self::open(path)?;
        ofd_lock(&file, true).map_err(|cause| Error::Lock {
            path: path.to_path_buf(),
            cause,
        })?;
        Ok(FileLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Take the lock if nobody holds it; `Ok(None)` when somebody does.
    fn try_acquire(path: &Path) -> Result<Option<FileLock>, Error> {
        let file = Self::open(path)?;
        let got = ofd_lock(&file, false).map_err(|cause| Error::Lock {
            path: path.to_path_buf(),
            cause,
        })?;
        Ok(got.then(|| FileLock {
            file,
            path: path.to_path_buf(),
        }))
    }

    /// Take the lock, calling `on_wait` once if we have to wait for it, and
    /// giving up after `timeout` (if any).
    fn acquire_patiently(
        path: &Path,
        timeout: Option<Duration>,
        on_wait: impl FnOnce(),
    ) -> Result<FileLock, Error> {
        if let Some(lock) = Self::try_acquire(path)? {
            return Ok(lock);
        }
        on_wait();
        let Some(timeout) = timeout else {
            return Self::acquire(path);
        };
        let start = Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            if let Some(lock) = Self::try_acquire(path)? {
                return Ok(lock);
            }
            let waited = start.elapsed();
            if waited >= timeout {
                return Err(Error::Timeout {
                    path: path.to_path_buf(),
                    waited,
                });
            }
            std::thread::sleep(pause.min(timeout - waited));
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Whether somebody (another process or another descriptor of ours)
    /// holds the lock right now.
    pub fn is_held(path: &Path) -> Result<bool, Error> {
        if !path.exists() {
            return Ok(false);
        }
        Ok(Self::try_acquire(path)?.is_none())
    }

    /// The lock file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // Closing the descriptor releases the OFD lock; unlock explicitly
        // anyway so a leaked duplicate descriptor can't keep it held.
        // SAFETY: as in ofd_lock.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_UNLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        // SAFETY: valid descriptor and flock.
        unsafe { libc::fcntl(self.file.as_raw_fd(), libc::F_OFD_SETLK, &mut fl) };
    }
}

/// How long [`acquire`] waits for a lock somebody else holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// Not at all: `Ok(None)` when the lock is held.
    No,
    /// With backoff (10 ms doubling to 500 ms) up to this long, then
    /// [`Error::Timeout`].
    UpTo(Duration),
    /// As long as it takes.
    Forever,
}

/// The one way to take a lock file: `Ok(None)` only with [`Wait::No`] when
/// somebody holds it.
pub fn acquire(path: &Path, wait: Wait) -> Result<Option<FileLock>, Error> {
    acquire_noting(path, wait, || {})
}

/// [`acquire`], calling `on_wait` once if the lock is held when we first
/// try (to say in the log what we are waiting for).
pub fn acquire_noting(
    path: &Path,
    wait: Wait,
    on_wait: impl FnOnce(),
) -> Result<Option<FileLock>, Error> {
    match wait {
        Wait::No => FileLock::try_acquire(path),
        Wait::Forever => FileLock::acquire_patiently(path, None, on_wait).map(Some),
        Wait::UpTo(limit) => FileLock::acquire_patiently(path, Some(limit), on_wait).map(Some),
    }
}

/// A repository's grokmirror lock, held: functions that must only run
/// under it take a `&RepoLock`.
#[derive(Debug)]
pub struct RepoLock {
    file: FileLock,
    repo: PathBuf,
}

impl RepoLock {
    /// The repository it covers.
    pub fn repo(&self) -> &Path {
        &self.repo
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Whether this guard covers `repo` (same path).
    pub fn covers(&self, repo: &Path) -> bool {
        self.repo == repo
    }
}

/// Take the lock of the repository at `repo` (its sibling `.name.lock`,
/// as grokmirror does). Once it is held, git lock files that a killed git
/// left in the repository are cleared (see [`crate::lock::git_leftovers`]): nobody
/// else who honours the lock can be writing them.
pub fn acquire_repo(repo: &Path, wait: Wait) -> Result<Option<RepoLock>, Error> {
    acquire_repo_noting(repo, wait, || {})
}

/// [`acquire_repo`], calling `on_wait` once if we have to wait.
pub fn acquire_repo_noting(
    repo: &Path,
    wait: Wait,
    on_wait: impl FnOnce(),
) -> Result<Option<RepoLock>, Error> {
    acquire_repo_via(repo, repo, wait, on_wait)
}

/// [`acquire_repo_noting`] for a repository reached through a directory
/// handle: `io` names it through the handle (`/proc/<pid>/fd/<n>/name`),
/// `shown` is its path for the guard and for messages.
pub fn acquire_repo_via(
    io: &Path,
    shown: &Path,
    wait: Wait,
    on_wait: impl FnOnce(),
) -> Result<Option<RepoLock>, Error> {
    let since = std::time::SystemTime::now();
    let Some(file) = acquire_noting(&repo_lock_path(io), wait, on_wait)? else {
        return Ok(None);
    };
    // A real directory only: the lock of a symlink does not cover its target.
    if std::fs::symlink_metadata(io).is_ok_and(|m| m.is_dir()) {
        crate::lock::git_leftovers::clear_stale(io, since);
    }
    Ok(Some(RepoLock {
        file,
        repo: shown.to_path_buf(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_paths() {
        assert_eq!(
            repo_lock_path(Path::new("/t/a/b.git")),
            PathBuf::from("/t/a/.b.git.lock")
        );
        assert_eq!(
            file_lock_path(Path::new("/t/manifest.js.gz")),
            PathBuf::from("/t/.manifest.js.gz.lock")
        );
    }

    #[test]
    fn two_descriptors_in_one_process_exclude_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".x.lock");
        let first = FileLock::try_acquire(&p).unwrap().expect("free lock");
        assert!(FileLock::try_acquire(&p).unwrap().is_none());
        // Opening and closing another descriptor must not release ours.
        drop(std::fs::File::open(&p).unwrap());
        assert!(FileLock::is_held(&p).unwrap());
        drop(first);
        assert!(FileLock::try_acquire(&p).unwrap().is_some());
    }

    #[test]
    fn patient_acquire_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".y.lock");
        let _held = FileLock::acquire(&p).unwrap();
        let mut waited = false;
        let err =
            FileLock::acquire_patiently(&p, Some(Duration::from_millis(50)), || waited = true)
                .unwrap_err();
        assert!(waited);
        assert!(matches!(err, Error::Timeout { .. }));
        let err = acquire(&p, Wait::UpTo(Duration::from_millis(30))).unwrap_err();
        assert!(matches!(err, Error::Timeout { .. }));
        assert!(acquire(&p, Wait::No).unwrap().is_none());
    }

    #[test]
    fn a_held_repository_lock_clears_stale_git_locks() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("r.git");
        std::fs::create_dir_all(repo.join("refs/heads")).unwrap();
        std::fs::write(repo.join("config.lock"), "").unwrap();
        std::fs::write(repo.join("refs/heads/main.lock"), "").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        let held = acquire_repo(&repo, Wait::No).unwrap().expect("free");
        assert!(held.covers(&repo));
        assert!(!repo.join("config.lock").exists());
        assert!(!repo.join("refs/heads/main.lock").exists());
        assert!(acquire_repo(&repo, Wait::No).unwrap().is_none());
        drop(held);
        assert!(acquire_repo(&repo, Wait::No).unwrap().is_some());
    }
}
