//! The status file (`[publish] statusfile`): what grok-publish knows of the
//! bucket between runs. JSON, replaced atomically, taken in turns through
//! its lock; a missing file is an empty status (the first run), one that
//! does not parse is refused rather than forgotten, because forgetting it
//! would forget which unlisted files wait for their grace.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use grokmirror::lock::{self, FileLock, Wait};
use serde::{Deserialize, Serialize};

/// The largest status file read (about 200 bytes a repository).
pub const MAX_SIZE: u64 = 512 * 1024 * 1024;

/// Why the status file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// It cannot be read.
    #[error("cannot read the publish status file {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// It is not ours, or damaged.
    #[error(
        "the publish status file {path} does not parse ({cause}); move it aside to start \
         over (the next run then compares everything with the bucket)"
    )]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: String,
    },
    /// It cannot be written.
    #[error("cannot write the publish status file {path}: {cause}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
    /// Its lock cannot be taken.
    #[error("cannot lock the publish status file {path}: {cause}")]
    Lock {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: lock::Error,
    },
}

/// What was published of one repository.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The fingerprint of the refs its `info/refs` lists.
    pub fingerprint: String,
    /// A digest of its lists (`info/refs`, `objects/info/packs`, the
    /// alternates, `HEAD`) as uploaded: unchanged lists are not sent again.
    pub lists: String,
}

/// The whole status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// By bucket path of the repository.
    #[serde(default)]
    pub repos: BTreeMap<String, Published>,
    /// Bucket keys of object files no longer listed, and when each was
    /// first seen so (Unix seconds).
    #[serde(default)]
    pub unlisted: BTreeMap<String, i64>,
    /// Digest of the manifest last uploaded.
    #[serde(default)]
    pub manifest: String,
    /// Bundle files uploaded: bucket key to `size:mtime`.
    #[serde(default)]
    pub bundles: BTreeMap<String, String>,
}

impl Status {
    /// Read `path`; empty when it does not exist.
    pub fn read(path: &Path) -> Result<Status, Error> {
        let data = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Status::default()),
            Err(cause) => {
                return Err(Error::Read {
                    path: path.into(),
                    cause,
                })
            }
            Ok(meta) if meta.len() > MAX_SIZE => {
                return Err(Error::Parse {
                    path: path.into(),
                    cause: format!("{} bytes, more than {MAX_SIZE}", meta.len()),
                })
            }
            Ok(_) => std::fs::read(path).map_err(|cause| Error::Read {
                path: path.into(),
                cause,
            })?,
        };
        serde_json::from_slice(&data).map_err(|e| Error::Parse {
            path: path.into(),
            cause: e.to_string(),
        })
    }

    /// Replace `path` with this status, atomically. Takes the guard of
    /// the status lock so that only its holder writes.
    pub fn write(&self, path: &Path, _guard: &FileLock) -> Result<(), Error> {
        let text = serde_json::to_vec(self).expect("the status always serializes");
        grokmirror::tree::fsutil::write_atomic(path, &text).map_err(|cause| Error::Write {
            path: path.into(),
            cause,
        })
    }
}

/// Take the status file's lock (`.<name>.lock` beside it), waiting up to
/// `wait` for another run to finish.
pub fn lock(path: &Path, wait: std::time::Duration) -> Result<Option<FileLock>, Error> {
    lock::acquire(&lock::file_lock_path(path), Wait::UpTo(wait)).map_err(|cause| Error::Lock {
        path: path.into(),
        cause,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_is_empty_damaged_is_refused_and_written_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.status");
        assert_eq!(Status::read(&path).unwrap(), Status::default());
        std::fs::write(&path, b"{not json").unwrap();
        let err = Status::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("does not parse") && err.contains("move it aside"),
            "{err}"
        );
        let mut s = Status::default();
        s.unlisted
            .insert("a.git/objects/pack/pack-x.pack".into(), 7);
        s.repos.insert(
            "a.git".into(),
            Published {
                fingerprint: "f".into(),
                lists: "l".into(),
            },
        );
        let guard = lock(&path, std::time::Duration::from_secs(1))
            .unwrap()
            .unwrap();
        s.write(&path, &guard).unwrap();
        assert_eq!(Status::read(&path).unwrap(), s);
    }
}
