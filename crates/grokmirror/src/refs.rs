//! Reading a repository's refs: the fingerprint (SPEC §1.2) and the newest
//! committer date, in-process through libgit2 where it can open the repo,
//! through the git CLI where it cannot (reftable ref storage, SHA-256
//! objects, unknown extensions) or where anything looks irregular, so that
//! the result always equals what `git show-ref | sha1sum` gives.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Once;

use sha1::{Digest, Sha1};

use crate::git::{Git, GitError};
use crate::glob::GlobList;

/// How a snapshot was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotSource {
    /// Read in-process with libgit2.
    InProcess,
    /// Read with the git command-line tool.
    GitCli,
}

/// What we know about a repository's refs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefsSnapshot {
    /// SHA-1 (hex) of `git show-ref` output minus ignored refs; `None` when
    /// the repo has no refs or git could not list them.
    pub fingerprint: Option<String>,
    /// Newest committer date (Unix seconds) among refs that point at
    /// commits, when asked for and there is one.
    pub newest_commit: Option<i64>,
    /// Which path produced this.
    pub source: SnapshotSource,
}

/// Make libgit2 behave like `git --git-dir=...`: no ownership check (git
/// skips it for an explicit git dir too), and accept `preciousObjects`,
/// which only restricts deleting objects and so is safe for a reader.
pub(crate) fn init_libgit2() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // SAFETY: called once, before any other libgit2 use in this process
        // can race with it (every libgit2 entry point here goes through
        // `open`, which calls this first).
        unsafe {
            let _ = git2::opts::set_verify_owner_validation(false);
            let _ = git2::opts::set_extensions(&["preciousobjects"]);
        }
    });
}

/// Open a bare repository in-process, or `None` if libgit2 can't handle it.
pub fn open(repo: &Path) -> Option<git2::Repository> {
    init_libgit2();
    // Reftable repos carry a placeholder `refs/heads` layout libgit2 would
    // misread; leave them to git.
    if repo.join("reftable").is_dir() {
        return None;
    }
    git2::Repository::open_ext(
        repo,
        git2::RepositoryOpenFlags::NO_SEARCH
            | git2::RepositoryOpenFlags::BARE
            | git2::RepositoryOpenFlags::NO_DOTGIT,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
    .ok()
}

/// Hash `git show-ref` output the way grokmirror does, leaving out lines
/// whose ref name matches `ignore`. `None` for empty output (no refs).
pub fn fingerprint_of_show_ref(output: &[u8], ignore: &GlobList) -> Option<String> {
    if output.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let mut hasher = Sha1::new();
    for line in output.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let name = line
            .iter()
            .position(|&b| b == b' ')
            .map(|p| &line[p + 1..])
            .unwrap_or_default();
        if !ignore.is_empty() && ignore.is_match(&String::from_utf8_lossy(name)) {
            continue;
        }
        hasher.update(line);
        hasher.update(b"\n");
    }
    Some(hex::encode(hasher.finalize()))
}

/// Take a snapshot of `repo`'s refs. `want_dates` also finds the newest
/// committer date (skip it when the caller uses "now" anyway).
pub fn snapshot(
    git: &Git,
    repo: &Path,
    ignore: &GlobList,
    want_dates: bool,
) -> Result<RefsSnapshot, GitError> {
    if let Some(handle) = open(repo) {
        if let Some(snap) = snapshot_in_process(&handle, ignore, want_dates) {
            return Ok(snap);
        }
    }
    snapshot_cli(git, repo, ignore, want_dates)
}

/// Take a snapshot with an already opened repository; `None` means "ask
/// git instead" (something libgit2 sees differently from git, or an error).
pub fn snapshot_in_process(
    repo: &git2::Repository,
    ignore: &GlobList,
    want_dates: bool,
) -> Option<RefsSnapshot> {
    let mut refs: Vec<(Vec<u8>, git2::Oid)> = Vec::new();
    for reference in repo.references().ok()? {
        let reference = reference.ok()?;
        let name = reference.name_bytes();
        if !name.starts_with(b"refs/") {
            continue;
        }
        // git skips refs with names it considers invalid (with a warning);
        // let git decide those cases.
        let valid = std::str::from_utf8(name)
            .map(git2::Reference::is_valid_name)
            .unwrap_or(false);
        if !valid {
            return None;
        }
        let target = match reference.kind()? {
            git2::ReferenceType::Direct => reference.target()?,
            git2::ReferenceType::Symbolic => match reference.resolve() {
                Ok(resolved) => resolved.target()?,
                // A dangling symbolic ref: git leaves it out silently.
                Err(_) => continue,
            },
        };
        refs.push((name.to_vec(), target));
    }
    if refs.is_empty() {
        return Some(RefsSnapshot {
            fingerprint: None,
            newest_commit: None,
            source: SnapshotSource::InProcess,
        });
    }
    refs.sort_by(|a, b| a.0.cmp(&b.0));

    let odb = repo.odb().ok()?;
    let mut unique: HashSet<git2::Oid> = HashSet::with_capacity(refs.len());
    let mut newest: Option<i64> = None;
    for (_, oid) in &refs {
        if !unique.insert(*oid) {
            continue;
        }
        // git refuses to list a ref to a missing object; reproduce exactly
        // whatever it does by asking it.
        let Ok((_, kind)) = odb.read_header(*oid) else {
            return None;
        };
        if want_dates && kind == git2::ObjectType::Commit {
            let commit = repo.find_commit(*oid).ok()?;
            let when = commit.committer().when().seconds();
            newest = Some(newest.map_or(when, |n: i64| n.max(when)));
        }
    }

    let mut text = Vec::with_capacity(refs.len() * 64);
    for (name, oid) in &refs {
        text.extend_from_slice(oid.to_string().as_bytes());
        text.push(b' ');
        text.extend_from_slice(name);
        text.push(b'\n');
    }
    Some(RefsSnapshot {
        fingerprint: fingerprint_of_show_ref(&text, ignore),
        newest_commit: newest,
        source: SnapshotSource::InProcess,
    })
}

/// Take a snapshot with the git CLI: `git show-ref` for the fingerprint (any
/// failure, like a ref to a missing object, means no fingerprint, as in
/// grokmirror) and `for-each-ref` sorted by committer date for the newest.
pub fn snapshot_cli(
    git: &Git,
    repo: &Path,
    ignore: &GlobList,
    want_dates: bool,
) -> Result<RefsSnapshot, GitError> {
    let shown = git.run(Some(repo), ["show-ref"])?;
    let fingerprint = if shown.success() {
        fingerprint_of_show_ref(&shown.stdout, ignore)
    } else {
        None
    };
    let mut newest = None;
    if want_dates && fingerprint.is_some() {
        let out = git.run(
            Some(repo),
            [
                "for-each-ref",
                "--sort=-committerdate",
                "--count=1",
                "--format=%(committerdate:unix)",
            ],
        )?;
        if out.success() {
            newest = out.stdout_str().parse::<i64>().ok();
        }
    }
    Ok(RefsSnapshot {
        fingerprint,
        newest_commit: newest,
        source: SnapshotSource::GitCli,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha1_of_show_ref_text() {
        let text = b"1111111111111111111111111111111111111111 refs/heads/main\n2222222222222222222222222222222222222222 refs/meta/config\n";
        let all = fingerprint_of_show_ref(text, &GlobList::default()).unwrap();
        assert_eq!(all, hex::encode(Sha1::digest(text)));
        let ignored = fingerprint_of_show_ref(text, &GlobList::new(["refs/meta/*"])).unwrap();
        assert_eq!(
            ignored,
            hex::encode(Sha1::digest(
                b"1111111111111111111111111111111111111111 refs/heads/main\n"
            ))
        );
        assert_eq!(fingerprint_of_show_ref(b"", &GlobList::default()), None);
    }
}
