//! [`Dir`]: an open directory, and every change we make on disk under the
//! top level made relative to one.
//!
//! Why `rustix` with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` and
//! not `cap-std`'s `Dir`: cap-std resolves paths in user space and follows
//! symlinks that stay inside its sandbox, so a local user who swaps a
//! directory of the tree for a symlink to a sibling still redirects us. The
//! kernel's `openat2` refuses any symlink on the way, atomically, in one
//! call. Kernels before 5.6 have no `openat2`; there we walk one component
//! at a time with `O_NOFOLLOW`, which gives the same guarantee in more
//! system calls.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, RenameFlags, ResolveFlags};

use super::Error;
use crate::lock::{RepoLock, Wait};

/// Whether this kernel lacks `openat2` (learned once, on the first ENOSYS).
static NO_OPENAT2: AtomicBool = AtomicBool::new(false);

/// What a directory entry is, seen without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A symbolic link (never followed).
    Symlink,
    /// A regular file.
    File,
    /// Anything else (socket, device, fifo).
    Other,
}

/// An open directory. Paths below it are resolved by the kernel relative to
/// the descriptor and never through a symlink, so renaming a directory on
/// the way, or swapping it for a symlink, cannot redirect what we do.
#[derive(Debug, Clone)]
pub struct Dir {
    fd: Arc<OwnedFd>,
    shown: PathBuf,
}

fn io_err<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(rustix::io::Errno) -> Error + 'a {
    move |e| Error::Io {
        what,
        path: path.to_path_buf(),
        cause: io::Error::from(e),
    }
}

/// The components of a relative path below a handle: plain names only.
fn plain_components(rel: &Path) -> Result<Vec<&OsStr>, Error> {
    rel.components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(Error::NotBeneath(rel.to_path_buf())),
        })
        .collect()
}

impl Dir {
    /// Open `path` as the root of a tree. The path itself comes from the
    /// operator's config and may pass through symlinks (`/srv/git` ->
    /// `/data/git`); nothing below it will.
    pub fn open_root(path: &Path) -> Result<Dir, Error> {
        let fd = rustix::fs::open(path, OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(io_err(path, "open"))?;
        Ok(Dir {
            fd: Arc::new(fd),
            shown: path.to_path_buf(),
        })
    }

    /// The path this directory had when it was opened, for messages.
    pub fn shown(&self) -> &Path {
        &self.shown
    }

    /// A path naming this very directory (not whatever is at its old name
    /// now): `/proc/<pid>/fd/<n>`. Valid while the handle lives, for this
    /// process and its children (git runs with `--git-dir` set to it and
    /// resolves every file through the descriptor).
    pub fn io_path(&self) -> PathBuf {
        PathBuf::from(format!(
            "/proc/{}/fd/{}",
            std::process::id(),
            self.fd.as_raw_fd()
        ))
    }

    /// The shown path of `rel` below this directory.
    pub fn shown_join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.shown.join(rel)
    }

    fn with_fd(&self, fd: OwnedFd, rel: &Path) -> Dir {
        Dir {
            fd: Arc::new(fd),
            shown: self.shown.join(rel),
        }
    }

    fn open_beneath(&self, rel: &Path, flags: OFlags) -> Result<OwnedFd, Error> {
        let flags = flags | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        // openat2 asks for a retry (EAGAIN) when a rename raced the lookup.
        for _ in 0..3 {
            if NO_OPENAT2.load(Ordering::Relaxed) {
                break;
            }
            match rustix::fs::openat2(
                &*self.fd,
                rel,
                flags,
                Mode::empty(),
                ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
            ) {
                Err(rustix::io::Errno::NOSYS) => NO_OPENAT2.store(true, Ordering::Relaxed),
                Err(rustix::io::Errno::AGAIN) => continue,
                Err(e) => return Err(self.refused(rel, e)),
                Ok(fd) => return Ok(fd),
            }
        }
        let parts = plain_components(rel)?;
        let mut current: Option<OwnedFd> = None;
        for (i, part) in parts.iter().enumerate() {
            let last = i + 1 == parts.len();
            let step_flags = if last {
                flags
            } else {
                OFlags::DIRECTORY | OFlags::CLOEXEC | OFlags::NOFOLLOW
            };
            let base: BorrowedFd<'_> = match &current {
                Some(fd) => fd.as_fd(),
                None => self.fd.as_fd(),
            };
            let next = rustix::fs::openat(base, *part, step_flags, Mode::empty())
                .map_err(|e| self.refused(rel, e))?;
            current = Some(next);
        }
        current.ok_or_else(|| Error::NotBeneath(rel.to_path_buf()))
    }

    fn refused(&self, rel: &Path, e: rustix::io::Errno) -> Error {
        match e {
            // ELOOP: a symlink on the way (or at the end, with O_NOFOLLOW);
            // EXDEV: the path tried to leave the directory.
            rustix::io::Errno::LOOP | rustix::io::Errno::XDEV => {
                Error::Symlink(self.shown.join(rel))
            }
            // O_DIRECTORY on a symlink reports ENOTDIR on some paths.
            e => Error::Io {
                what: "open",
                path: self.shown.join(rel),
                cause: io::Error::from(e),
            },
        }
    }

    /// Open the directory `rel` below this one, refusing symlinks anywhere
    /// on the way (the last component included).
    pub fn open_dir(&self, rel: impl AsRef<Path>) -> Result<Dir, Error> {
        let rel = rel.as_ref();
        if rel.as_os_str().is_empty() {
            return Ok(self.clone());
        }
        let fd = self.open_beneath(rel, OFlags::DIRECTORY | OFlags::RDONLY)?;
        Ok(self.with_fd(fd, rel))
    }

    /// Open the regular file `rel` below this one for reading, refusing
    /// symlinks and anything else that is not a regular file: a FIFO a
    /// local user planted would otherwise block the open for ever (it is
    /// opened non-blocking, which changes nothing for a regular file's
    /// reads, and then refused).
    pub fn open_file(&self, rel: impl AsRef<Path>) -> Result<File, Error> {
        let rel = rel.as_ref();
        let fd = self.open_beneath(rel, OFlags::RDONLY | OFlags::NONBLOCK)?;
        let st = rustix::fs::fstat(&fd).map_err(io_err(&self.shown.join(rel), "stat"))?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(Error::NotAFile(self.shown.join(rel)));
        }
        // Back to blocking, as callers expect of a file.
        rustix::fs::fcntl_setfl(&fd, OFlags::empty())
            .map_err(io_err(&self.shown.join(rel), "open"))?;
        Ok(File::from(fd))
    }

    /// Make the directories of `rel` that are missing (mode 0777 less the
    /// umask, as `mkdir -p`) and open the last one. A symlink on the way is
    /// refused, even one made while we walk.
    pub fn create_dir_all(&self, rel: impl AsRef<Path>) -> Result<Dir, Error> {
        let rel = rel.as_ref();
        let mut current = self.clone();
        for part in plain_components(rel)? {
            match rustix::fs::mkdirat(&*current.fd, part, Mode::from_raw_mode(0o777)) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(io_err(&current.shown.join(part), "create")(e)),
            }
            current = current.open_dir(part)?;
        }
        Ok(current)
    }

    /// What `name` (one component) is, without following it; `None` when
    /// absent.
    pub fn kind_of(&self, name: impl AsRef<Path>) -> Result<Option<Kind>, Error> {
        let name = name.as_ref();
        match rustix::fs::statat(&*self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => Ok(Some(match FileType::from_raw_mode(st.st_mode) {
                FileType::Directory => Kind::Dir,
                FileType::Symlink => Kind::Symlink,
                FileType::RegularFile => Kind::File,
                _ => Kind::Other,
            })),
            Err(rustix::io::Errno::NOENT) => Ok(None),
            Err(e) => Err(io_err(&self.shown.join(name), "inspect")(e)),
        }
    }

    /// Whether this directory looks like a bare repository (`objects/`,
    /// `refs/` and a `HEAD` file; symlinks followed, as git does), asked
    /// of the handle itself: three `statx` calls relative to it, no path
    /// through `/proc` to resolve (see [`crate::repo::is_bare_repo`]).
    pub fn looks_like_bare_repo(&self) -> bool {
        let is = |name: &str, want: FileType| {
            rustix::fs::statat(&*self.fd, name, AtFlags::empty())
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == want)
        };
        is("objects", FileType::Directory)
            && is("refs", FileType::Directory)
            && is("HEAD", FileType::RegularFile)
    }

    /// At most `max` bytes of the file at `rel` below this directory (no
    /// symlink on the way), read with one open and one read and no
    /// `fstat`: what a poll asks of every repository of a large tree.
    /// Opened non-blocking, so a FIFO a local user planted answers at once
    /// (empty, or what its writer gave, at most `max` bytes) instead of
    /// blocking; a directory fails the read. `None` when it cannot be read.
    pub fn glance_at_file(&self, rel: impl AsRef<Path>, max: usize) -> Option<Vec<u8>> {
        let fd = self
            .open_beneath(rel.as_ref(), OFlags::RDONLY | OFlags::NONBLOCK)
            .ok()?;
        let mut out = vec![0; max];
        let n = rustix::io::read(&fd, &mut out).ok()?;
        out.truncate(n);
        Some(out)
    }

    /// Whether something (not reached through a symlink) is at `rel`
    /// below this directory: one `openat2` with `O_PATH`.
    pub fn has_beneath(&self, rel: impl AsRef<Path>) -> bool {
        self.open_beneath(rel.as_ref(), OFlags::PATH).is_ok()
    }

    /// The contents of the small file `name` (one component, not followed
    /// if a symlink), at most `max` bytes; `None` when it does not exist
    /// or cannot be read.
    pub fn read_small_file(&self, name: &str, max: usize) -> Option<Vec<u8>> {
        use std::io::Read;
        let mut file = self.open_file(name).ok()?;
        let mut out = vec![0; max];
        let mut filled = 0;
        // A short read of a regular file is its end: a file that fits is
        // read with one call, not two.
        while filled < max {
            match file.read(&mut out[filled..]) {
                Ok(0) => break,
                Ok(n) => {
                    filled += n;
                    if filled < max {
                        break;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return None,
            }
        }
        out.truncate(filled);
        Some(out)
    }

    /// Owner and permission bits of this directory.
    pub fn owner_and_mode(&self) -> Result<(u32, u32), Error> {
        let st = rustix::fs::fstat(&*self.fd).map_err(io_err(&self.shown, "inspect"))?;
        Ok((st.st_uid, st.st_mode & 0o7777))
    }

    /// Rename `from` (in this directory) to `to` in `dest`, failing when
    /// `to` exists (a repository is never replaced by accident).
    pub fn rename_new(&self, from: &OsStr, dest: &Dir, to: &OsStr) -> Result<(), Error> {
        let done =
            rustix::fs::renameat_with(&*self.fd, from, &*dest.fd, to, RenameFlags::NOREPLACE);
        match done {
            // Filesystems without RENAME_NOREPLACE: a plain rename, which
            // still refuses a non-empty directory at the target.
            Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOSYS) => {
                if dest.kind_of(to)?.is_some() {
                    return Err(Error::Io {
                        what: "rename",
                        path: dest.shown.join(to),
                        cause: io::Error::from(rustix::io::Errno::EXIST),
                    });
                }
                rustix::fs::renameat(&*self.fd, from, &*dest.fd, to)
                    .map_err(io_err(&dest.shown.join(to), "rename"))
            }
            other => other.map_err(io_err(&dest.shown.join(to), "rename")),
        }
    }

    /// Swap `a` (in this directory) with `b` in `dest`, atomically.
    pub fn exchange(&self, a: &OsStr, dest: &Dir, b: &OsStr) -> Result<(), Error> {
        rustix::fs::renameat_with(&*self.fd, a, &*dest.fd, b, RenameFlags::EXCHANGE)
            .map_err(io_err(&dest.shown.join(b), "exchange"))
    }

    /// Make the symlink `name` -> `target` in this directory.
    pub fn symlink(&self, target: &Path, name: &OsStr) -> Result<(), Error> {
        rustix::fs::symlinkat(target, &*self.fd, name)
            .map_err(io_err(&self.shown.join(name), "create the symlink"))
    }

    /// Remove the symlink or file `name`; a directory there is left alone
    /// (the kernel refuses to unlink it), whatever raced us.
    pub fn remove_file(&self, name: &OsStr) -> Result<(), Error> {
        match rustix::fs::unlinkat(&*self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
            Err(e) => Err(io_err(&self.shown.join(name), "remove")(e)),
        }
    }

    /// Remove `name` if it is an empty directory.
    pub fn remove_empty_dir(&self, name: &OsStr) -> Result<(), Error> {
        rustix::fs::unlinkat(&*self.fd, name, AtFlags::REMOVEDIR)
            .map_err(io_err(&self.shown.join(name), "remove"))
    }

    /// Remove `name` and, if it is a directory, everything in it. Symlinks
    /// inside are removed, never followed; nothing outside `name` is
    /// touched whatever is renamed meanwhile, because every step is made
    /// relative to a descriptor of the directory being emptied.
    pub fn remove_tree(&self, name: &OsStr) -> Result<(), Error> {
        match self.kind_of(name)? {
            None => Ok(()),
            Some(Kind::Dir) => {
                let child = self.open_dir(name)?;
                child.empty_out()?;
                drop(child);
                match rustix::fs::unlinkat(&*self.fd, name, AtFlags::REMOVEDIR) {
                    Ok(()) | Err(rustix::io::Errno::NOENT) => Ok(()),
                    Err(e) => Err(io_err(&self.shown.join(name), "remove")(e)),
                }
            }
            Some(_) => self.remove_file(name),
        }
    }

    /// Remove everything in this directory (not the directory itself).
    fn empty_out(&self) -> Result<(), Error> {
        for name in self.names()? {
            self.remove_tree(OsStr::from_bytes(&name))?;
        }
        Ok(())
    }

    /// Hard-link the regular file `name` of this directory as `to` in
    /// `dest` (which must not exist). A symlink at `name` is refused, not
    /// linked: `linkat` never follows it, and we check what was linked.
    pub fn hard_link_into(&self, name: &OsStr, dest: &Dir, to: &OsStr) -> Result<(), Error> {
        rustix::fs::linkat(&*self.fd, name, &*dest.fd, to, AtFlags::empty())
            .map_err(io_err(&self.shown.join(name), "link"))?;
        if dest.kind_of(to)? != Some(Kind::File) {
            let _ = dest.remove_file(to);
            return Err(Error::NotAFile(self.shown.join(name)));
        }
        Ok(())
    }

    /// Copy the regular file `name` of this directory to the new file `to`
    /// in `dest` (mode 0644 less the umask), refusing symlinks at either end.
    pub fn copy_file_into(&self, name: &OsStr, dest: &Dir, to: &OsStr) -> Result<u64, Error> {
        let mut from = self.open_file(name)?;
        if !from
            .metadata()
            .map_err(|cause| Error::Io {
                what: "inspect",
                path: self.shown.join(name),
                cause,
            })?
            .is_file()
        {
            return Err(Error::NotAFile(self.shown.join(name)));
        }
        let fd = rustix::fs::openat(
            &*dest.fd,
            to,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o644),
        )
        .map_err(io_err(&dest.shown.join(to), "create"))?;
        let mut file = File::from(fd);
        io::copy(&mut from, &mut file).map_err(|cause| Error::Io {
            what: "copy",
            path: self.shown.join(name),
            cause,
        })
    }

    /// Take the grokmirror lock of the repository `name` in this directory
    /// (its `.<name>.lock` here, as grokmirror takes it), clearing stale git
    /// locks in it once held (see [`crate::lock::acquire_repo`]).
    pub fn lock_entry(&self, name: &OsStr, wait: Wait) -> Result<Option<RepoLock>, Error> {
        self.lock_entry_noting(name, wait, || {})
    }

    /// [`Dir::lock_entry`], calling `on_wait` once if it has to wait.
    pub fn lock_entry_noting(
        &self,
        name: &OsStr,
        wait: Wait,
        on_wait: impl FnOnce(),
    ) -> Result<Option<RepoLock>, Error> {
        let shown = self.shown.join(name);
        crate::lock::acquire_repo_via(&self.io_path().join(name), &shown, wait, on_wait).map_err(
            |e| Error::Io {
                what: "lock",
                path: shown.clone(),
                cause: io::Error::other(e.to_string()),
            },
        )
    }

    /// Take an exclusive `flock` on the directory itself, without waiting:
    /// `Ok(false)` when another process holds it. It lasts while this
    /// handle or a clone of it lives, and leaves no file anywhere (so
    /// nothing appears in a tree that is published as it is).
    pub fn try_lock_exclusive(&self) -> Result<bool, Error> {
        match rustix::fs::flock(
            &*self.fd,
            rustix::fs::FlockOperation::NonBlockingLockExclusive,
        ) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
            Err(e) => Err(io_err(&self.shown, "lock")(e)),
        }
    }

    /// The names in this directory (without `.` and `..`).
    pub fn names(&self) -> Result<Vec<Vec<u8>>, Error> {
        let mut reader =
            rustix::fs::Dir::read_from(&*self.fd).map_err(io_err(&self.shown, "read"))?;
        let mut names = Vec::new();
        while let Some(entry) = reader.read() {
            let entry = entry.map_err(io_err(&self.shown, "read"))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(name.to_vec());
            }
        }
        Ok(names)
    }
}

impl AsFd for Dir {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
mod tests;
