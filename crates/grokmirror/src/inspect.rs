//! Everything a manifest records about one repository, gathered with one
//! in-process open where possible (no git process per fact).

use std::path::{Path, PathBuf};

use crate::git::{Git, GitError};
use crate::glob::GlobList;
use crate::refs::{self, RefsSnapshot};
use crate::repo;

/// The facts about a repository that go into its manifest entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoFacts {
    /// Fingerprint and newest commit date.
    pub refs: RefsSnapshot,
    /// `HEAD` (the real one for reftable repos).
    pub head: Option<String>,
    /// Description, unless empty or the placeholder.
    pub description: Option<String>,
    /// `gitweb.owner`.
    pub owner: Option<String>,
    /// The repository whose objects this one borrows (real path).
    pub alternate: Option<PathBuf>,
    /// The object-storage repo name, when the alternate is one.
    pub forkgroup: Option<String>,
}

/// Gather the facts about `path`. `want_dates` finds the newest commit date
/// (not needed when the caller records "now").
pub fn inspect(
    git: &Git,
    path: &Path,
    ignore_refs: &GlobList,
    want_dates: bool,
) -> Result<RepoFacts, GitError> {
    let handle = refs::open(path);
    let snapshot = match handle
        .as_ref()
        .and_then(|h| refs::snapshot_in_process(h, ignore_refs, want_dates))
    {
        Some(s) => s,
        None => refs::snapshot_cli(git, path, ignore_refs, want_dates)?,
    };
    let owner = match &handle {
        Some(h) => h
            .config()
            .ok()
            .and_then(|c| c.get_string("gitweb.owner").ok()),
        None => {
            let out = git.run(Some(path), ["config", "--get", "gitweb.owner"])?;
            out.success().then(|| out.stdout_str())
        }
    };
    let alternate = repo::alternate_repo(path);
    let forkgroup = alternate
        .as_deref()
        .filter(|alt| repo::is_objstore_repo(alt))
        .and_then(|alt| alt.file_name())
        .map(|n| {
            let n = n.to_string_lossy();
            n.strip_suffix(".git").unwrap_or(&n).to_string()
        });
    Ok(RepoFacts {
        refs: snapshot,
        head: repo::read_head(git, path),
        description: repo::read_description(path),
        owner,
        alternate,
        forkgroup,
    })
}
