//! Everything a manifest records about one repository, read in-process
//! (no git process per fact) whenever we can see exactly what git sees.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::config::glob::GlobList;
use crate::git::{self, Git};
use crate::repo;
use crate::repo::refs::{self, RefsSnapshot};

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

/// `gitweb.owner` from the user's and the system's git config, read once:
/// git consults them too when a repository sets no owner.
fn global_owner() -> Option<String> {
    static OWNER: OnceLock<Option<String>> = OnceLock::new();
    OWNER
        .get_or_init(|| {
            refs::init_libgit2();
            git2::Config::open_default()
                .ok()
                .and_then(|c| c.get_string("gitweb.owner").ok())
        })
        .clone()
}

/// Gather the facts about `path`. `want_dates` finds the newest commit date
/// (not needed when the caller records "now").
pub fn inspect(
    git: &Git,
    path: &Path,
    ignore_refs: &GlobList,
    want_dates: bool,
) -> Result<RepoFacts, git::Error> {
    let local = refs::RepoConfig::read(path);
    let in_process = local
        .as_ref()
        .filter(|c| c.readable)
        .and_then(|_| refs::snapshot_in_process(path, ignore_refs, want_dates));
    let snapshot = match in_process {
        Some(s) => s,
        None => refs::snapshot_cli(git, path, ignore_refs, want_dates)?,
    };
    let owner = match local {
        Some(c) if c.readable => c.owner.or_else(global_owner),
        _ => {
            let out = git.run(Some(path), ["config", "--get", "gitweb.owner"])?;
            out.success().then(|| out.stdout_str())
        }
    };
    let alternate = repo::alternates::lender(path);
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
