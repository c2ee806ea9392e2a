//! Root commits (commits without parents) of a repository, the fact fork
//! detection rests on: forks of one project share their roots.
//!
//! Listing them walks the whole history, so the result is cached in the
//! repository as `grokmirror.roots` (one object id per line, no final
//! newline), the file grokmirror 2.x reads and writes too. Unlike
//! grokmirror, we recompute the cache when the repository's refs changed
//! after it was written (a fork may have merged unrelated history).

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use crate::git::Git;
use crate::repo::{FINGERPRINT_FILE, ROOTS_FILE};
use crate::tree::fsutil;

/// The root commits of a repository.
pub type Roots = BTreeSet<String>;

/// Parse the cache file the way grokmirror does: split on newlines, every
/// piece (even an empty one) is a member.
pub fn parse(text: &str) -> Roots {
    text.split('\n').map(str::to_string).collect()
}

/// The cached roots, if the cache exists.
pub fn read_cache(repo: &Path) -> Option<Roots> {
    fs::read_to_string(repo.join(ROOTS_FILE))
        .ok()
        .map(|t| parse(&t))
}

/// Whether the cache is older than the last recorded change of the refs
/// (`grokmirror.fingerprint` is rewritten whenever the refs change).
fn cache_is_stale(repo: &Path) -> bool {
    let mtime = |name: &str| {
        fs::metadata(repo.join(name))
            .and_then(|m| m.modified())
            .ok()
    };
    match (mtime(ROOTS_FILE), mtime(FINGERPRINT_FILE)) {
        (Some(roots), Some(fp)) => fp > roots,
        (None, _) => true,
        (Some(_), None) => false,
    }
}

/// List the roots with git (`rev-list --max-parents=0 --all`) and cache
/// them. `None` when the repository has no commits or git fails.
pub fn compute(git: &Git, repo: &Path) -> Option<Roots> {
    let out = git
        .run(Some(repo), ["rev-list", "--max-parents=0", "--all"])
        .ok()?;
    if !out.success() {
        tracing::debug!(
            "cannot list root commits of {}: {}",
            repo.display(),
            out.stderr_str()
        );
        return None;
    }
    let text = out.stdout_str();
    if text.is_empty() {
        return None;
    }
    if let Err(e) = fsutil::write_atomic(&repo.join(ROOTS_FILE), text.as_bytes()) {
        tracing::debug!("cannot cache the roots of {}: {e}", repo.display());
    }
    Some(parse(&text))
}

/// The roots of `repo`: from the cache when it is current, else computed
/// (and cached). `refresh` always recomputes.
pub fn get(git: &Git, repo: &Path, refresh: bool) -> Option<Roots> {
    if !refresh && !cache_is_stale(repo) {
        if let Some(roots) = read_cache(repo) {
            return Some(roots);
        }
    }
    compute(git, repo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_keeps_what_grokmirror_keeps() {
        let r = parse("aaa\nbbb");
        assert_eq!(r.len(), 2);
        // A trailing newline (not ours) yields an empty member, as in
        // grokmirror; it only makes sets compare unequal, never equal.
        assert!(parse("aaa\n").contains(""));
    }

    #[test]
    fn cache_roundtrip_and_staleness() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("r.git");
        let git = Git::from_env();
        git.run_ok(None, ["init", "-q", "--bare", repo.to_str().unwrap()])
            .unwrap();
        assert_eq!(get(&git, &repo, false), None, "no commits, no roots");
        let c = crate::repo::test_support::add_root_commit(&git, &repo);
        let roots = get(&git, &repo, false).unwrap();
        assert_eq!(roots, [c.clone()].into_iter().collect());
        assert_eq!(fs::read_to_string(repo.join(ROOTS_FILE)).unwrap(), c);
        // A cache newer than the fingerprint is used as is.
        fs::write(repo.join(FINGERPRINT_FILE), "x").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(repo.join(ROOTS_FILE), "cached").unwrap();
        assert_eq!(get(&git, &repo, false).unwrap(), parse("cached"));
        // Refs changed after the cache was written: recomputed.
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::write(repo.join(FINGERPRINT_FILE), "y").unwrap();
        assert_eq!(get(&git, &repo, false).unwrap(), roots);
    }
}
