//! Why a job failed. The text of each error is what the operator sees in
//! the log, in the freshness file and in `--status`, so it names what
//! failed and on which path.

use std::io;
use std::path::{Path, PathBuf};

use grokmirror::git;
use grokmirror::tree;

use crate::work::{gitio, objstore_clone};

/// A job's failure; the repository is tried again next run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest path is not one the top level accepts.
    #[error("{0}")]
    BadKey(String),
    /// A path under the top level's handles.
    #[error(transparent)]
    Tree(#[from] tree::Error),
    /// What should be a repository is not one any more.
    #[error("{} is no longer a repository", .0.display())]
    NoLongerARepository(PathBuf),
    /// A directory that is not a repository stands where a clone goes.
    #[error("{} exists and is not a git repository; move it away", .0.display())]
    NotAGitRepository(PathBuf),
    /// Something that is not a directory stands where a clone goes.
    #[error("{} exists and is not a directory; move it away", .0.display())]
    NotADirectory(PathBuf),
    /// Something that is not a repository stands where one is to be purged.
    #[error("{} is not a repository; not purging it", .0.display())]
    NotPurgingNonRepository(PathBuf),
    /// The staged clone's directory could not be made.
    #[error("cannot create a staging directory: {0}")]
    Staging(#[source] io::Error),
    /// A file operation failed (`what` says which, as in "create").
    #[error("cannot {what} {}: {cause}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        cause: io::Error,
    },
    /// A repository's git config could not be opened or written.
    #[error(transparent)]
    GitConfig(#[from] grokmirror::repo::git_config::Error),
    /// git refused to set HEAD (reftable repositories).
    #[error("cannot set HEAD of {}: {stderr}", path.display())]
    SetHead {
        /// The repository.
        path: PathBuf,
        /// What git said.
        stderr: String,
    },
    /// A git command failed.
    #[error(transparent)]
    Git(#[from] git::Error),
    /// The fetch failed, every try.
    #[error(transparent)]
    Fetch(#[from] gitio::Error),
    /// The fingerprint or timestamp of a repository could not be written.
    #[error("cannot record the {what} of {key}: {cause}")]
    Record {
        /// "fingerprint" or "timestamp".
        what: &'static str,
        /// The repository's manifest path.
        key: String,
        /// The underlying error.
        #[source]
        cause: io::Error,
    },
    /// The object storage of a fork could not be readied or vanished.
    #[error(transparent)]
    ObjectStorage(#[from] objstore_clone::Error),
    /// The symlink a clone replaces could not be removed.
    #[error("cannot replace the symlink: {0}")]
    ReplaceSymlink(#[source] tree::Error),
    /// A symlink to purge could not be removed.
    #[error("cannot remove the symlink: {0}")]
    RemoveSymlink(#[source] tree::Error),
    /// The finished clone could not be moved to its path.
    #[error("cannot move the new clone to {}: {cause}", path.display())]
    Publish {
        /// Where it should have gone.
        path: PathBuf,
        /// The underlying error.
        #[source]
        cause: io::Error,
    },
    /// A repository to purge could not be moved out of the way.
    #[error("cannot delete {}: {cause}", path.display())]
    Delete {
        /// The repository.
        path: PathBuf,
        /// The underlying error.
        #[source]
        cause: io::Error,
    },
    /// The blocking part of a purge did not finish.
    #[error("purge of {key} stopped: {cause}")]
    PurgeStopped {
        /// The repository's manifest path.
        key: String,
        /// Why the task ended.
        #[source]
        cause: tokio::task::JoinError,
    },
    /// An update job was started for something that is not an update.
    #[error("internal error: not an update")]
    NotAnUpdate,
    /// Somebody else held the repository's lock every time it was tried.
    #[error("still locked by another process after {0} tries")]
    StillLocked(u32),
    /// The job's task panicked or was cancelled.
    #[error("crashed: {0}")]
    Crashed(#[source] tokio::task::JoinError),
    /// An error about a path reached through a handle, with the handle's
    /// `/proc` path in its text replaced by the path the operator knows.
    #[error("{}", shown_text(&error.to_string(), io, shown))]
    Shown {
        /// The error.
        #[source]
        error: Box<Error>,
        /// The handle's path.
        io: PathBuf,
        /// The path the operator knows.
        shown: PathBuf,
    },
}

impl Error {
    /// This error with `io` (a handle's `/proc` path) in its text shown as
    /// `shown`.
    pub fn shown_as(self, io: &Path, shown: &Path) -> Error {
        Error::Shown {
            error: Box::new(self),
            io: io.to_path_buf(),
            shown: shown.to_path_buf(),
        }
    }
}

/// An error text with the handle's `/proc` path replaced by the path the
/// operator knows.
fn shown_text(why: &str, io: &Path, shown: &Path) -> String {
    match io.to_str() {
        Some(io) => why.replace(io, &shown.display().to_string()),
        None => why.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handle_paths_are_shown_as_the_operator_knows_them() {
        let inner = Error::Io {
            what: "write",
            path: PathBuf::from("/proc/1/fd/7/description"),
            cause: io::Error::other("disk full"),
        };
        let shown = inner.shown_as(Path::new("/proc/1/fd/7"), Path::new("/srv/a.git"));
        assert_eq!(
            shown.to_string(),
            "cannot write /srv/a.git/description: disk full"
        );
        assert!(std::error::Error::source(&shown).is_some());
    }
}
