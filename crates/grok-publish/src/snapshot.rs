//! What a repository holds at one moment, taken under its lock: its refs,
//! `HEAD`, and its object files, each opened (or, for loose objects the
//! bucket lacks, read) while the lock is held. An open file keeps its
//! content even when a repack deletes it meanwhile, so the upload that
//! follows, without the lock, sends exactly what the refs were read with.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read as _;

use grokmirror::git::Git;
use grokmirror::lock::RepoLock;
use grokmirror::tree::Dir;

use crate::plan::{self, ObjectFile, Ref};

/// The most bytes of loose objects read into memory for one repository.
pub const MAX_LOOSE_BYTES: u64 = 512 * 1024 * 1024;
/// The most object files one repository may have.
pub const MAX_FILES: usize = 200_000;
/// The largest `HEAD` read.
const MAX_HEAD: usize = 4096;

/// Why a repository could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Its refs could not be listed.
    #[error("cannot list the refs of {path}: {cause}")]
    Refs {
        /// The repository.
        path: String,
        /// Why.
        cause: grokmirror::git::Error,
    },
    /// A file or directory of it could not be read.
    #[error(transparent)]
    Tree(#[from] grokmirror::tree::Error),
    /// A file could not be read.
    #[error("cannot read {path}: {cause}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        cause: std::io::Error,
    },
    /// Too much to publish as it is.
    #[error("{path} has {what}; repack it (grok-fsck) before publishing")]
    TooMuch {
        /// The repository.
        path: String,
        /// What is too much.
        what: String,
    },
}

/// Where the bytes of an object file come from at upload time.
#[derive(Debug)]
pub enum Content {
    /// The bucket has it already.
    There,
    /// Opened under the lock.
    Open(File),
    /// Read under the lock.
    Read(Vec<u8>),
}

/// One repository as taken.
#[derive(Debug)]
pub struct Taken {
    /// Its refs.
    pub refs: Vec<Ref>,
    /// Its `HEAD` file.
    pub head: Vec<u8>,
    /// Its packs that have an index (base names).
    pub packs: Vec<String>,
    /// Its object files, and where each one's bytes come from.
    pub files: Vec<(ObjectFile, Content)>,
}

/// Take `repo` (held by `_lock`), opening or reading the object files
/// that `remote` (what the bucket holds of it, path to size) lacks.
pub fn take(
    git: &Git,
    repo: &Dir,
    _lock: &RepoLock,
    remote: &BTreeMap<String, u64>,
    with_refs: bool,
) -> Result<Taken, Error> {
    let shown = repo.shown().display().to_string();
    let refs = if with_refs {
        let out = git
            .run_ok(
                Some(&repo.io_path()),
                [
                    "for-each-ref",
                    "--format=%(objectname) %(refname) %(*objectname)",
                ],
            )
            .map_err(|cause| Error::Refs {
                path: shown.clone(),
                cause,
            })?;
        plan::parse_refs(&out.stdout_str())
    } else {
        Vec::new()
    };
    let head = repo.read_small_file("HEAD", MAX_HEAD).unwrap_or_default();
    let mut files = Vec::new();
    let packs = take_packs(repo, remote, &mut files)?;
    take_loose(repo, remote, &mut files, &shown)?;
    Ok(Taken {
        refs,
        head,
        packs,
        files,
    })
}

/// Open `rel` and learn its size; `None` when it is gone (a race with a
/// repack that the lock should have prevented: the caller then publishes
/// what is there).
fn open_sized(dir: &Dir, name: &str) -> Result<Option<(File, u64)>, Error> {
    match dir.open_file(name) {
        Ok(file) => {
            let size = file
                .metadata()
                .map_err(|cause| Error::Read {
                    path: dir.shown_join(name).display().to_string(),
                    cause,
                })?
                .len();
            Ok(Some((file, size)))
        }
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn take_packs(
    repo: &Dir,
    remote: &BTreeMap<String, u64>,
    files: &mut Vec<(ObjectFile, Content)>,
) -> Result<Vec<String>, Error> {
    let dir = match repo.open_dir("objects/pack") {
        Ok(d) => d,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let names: Vec<String> = dir
        .names()?
        .into_iter()
        .filter_map(|n| String::from_utf8(n).ok())
        .collect();
    let mut packs = Vec::new();
    for base in names
        .iter()
        .filter_map(|n| n.strip_suffix(".idx"))
        .filter(|b| b.starts_with("pack-"))
    {
        let (pack, idx) = (format!("{base}.pack"), format!("{base}.idx"));
        let (Some(p), Some(i)) = (open_sized(&dir, &pack)?, open_sized(&dir, &idx)?) else {
            continue;
        };
        for (name, (file, size)) in [(pack, p), (idx, i)] {
            let rel = format!("objects/pack/{name}");
            let content = if remote.get(&rel) == Some(&size) {
                Content::There
            } else {
                Content::Open(file)
            };
            files.push((ObjectFile { rel, size }, content));
        }
        packs.push(base.to_string());
    }
    packs.sort();
    Ok(packs)
}

fn take_loose(
    repo: &Dir,
    remote: &BTreeMap<String, u64>,
    files: &mut Vec<(ObjectFile, Content)>,
    shown: &str,
) -> Result<(), Error> {
    let objects = repo.open_dir("objects")?;
    let mut read_bytes = 0u64;
    for fan in objects.names()? {
        let Ok(fan) = String::from_utf8(fan) else {
            continue;
        };
        if fan.len() != 2 || u8::from_str_radix(&fan, 16).is_err() {
            continue;
        }
        let dir = objects.open_dir(&fan)?;
        for name in dir.names()? {
            let Ok(name) = String::from_utf8(name) else {
                continue;
            };
            let rel = format!("objects/{fan}/{name}");
            if !plan::is_object_file(&rel) {
                continue;
            }
            if files.len() >= MAX_FILES {
                return Err(Error::TooMuch {
                    path: shown.to_string(),
                    what: format!("more than {MAX_FILES} object files"),
                });
            }
            let Some((mut file, size)) = open_sized(&dir, &name)? else {
                continue;
            };
            if remote.get(&rel) == Some(&size) {
                files.push((ObjectFile { rel, size }, Content::There));
                continue;
            }
            read_bytes += size;
            if read_bytes > MAX_LOOSE_BYTES {
                return Err(Error::TooMuch {
                    path: shown.to_string(),
                    what: format!(
                        "more than {} MiB of new loose objects",
                        MAX_LOOSE_BYTES >> 20
                    ),
                });
            }
            let mut data = Vec::with_capacity(size as usize);
            file.read_to_end(&mut data).map_err(|cause| Error::Read {
                path: dir.shown_join(&name).display().to_string(),
                cause,
            })?;
            files.push((ObjectFile { rel, size }, Content::Read(data)));
        }
    }
    Ok(())
}
