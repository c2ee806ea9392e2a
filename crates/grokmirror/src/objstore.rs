//! Object-storage repositories (SPEC §1.10): the pieces that grok-manifest
//! needs (member naming, member listing, fetching a member's objects).

use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

use crate::git::{Git, GitError};
use crate::repo;

/// The remote name (and `refs/virtual/<name>/` prefix) of a member in its
/// object-storage repo: the first 12 hex digits of the SHA-1 of the member's
/// real path.
pub fn virtref(member: &Path) -> String {
    let real = std::fs::canonicalize(member).unwrap_or_else(|_| member.to_path_buf());
    let digest = Sha1::digest(real.as_os_str().as_encoded_bytes());
    hex::encode(digest)[..12].to_string()
}

/// The remotes of an object-storage repo as `(name, url)`, in config order,
/// each listed once.
pub fn list_remotes(git: &Git, obstrepo: &Path) -> Result<Vec<(String, String)>, GitError> {
    let out = git.run(Some(obstrepo), ["remote", "-v"])?;
    let mut remotes: Vec<(String, String)> = Vec::new();
    for line in out.stdout_str().lines() {
        let mut parts = line.split_whitespace();
        if let (Some(name), Some(url)) = (parts.next(), parts.next()) {
            let entry = (name.to_string(), url.to_string());
            if !remotes.contains(&entry) {
                remotes.push(entry);
            }
        }
    }
    Ok(remotes)
}

/// The object-storage repo `repo` borrows from, if its alternate is one.
pub fn objstore_of(repo: &Path) -> Option<PathBuf> {
    repo::alternate_repo(repo).filter(|alt| repo::is_objstore_repo(alt))
}

/// Fetch `member`'s objects into `obstrepo` with `git fetch <virtref>
/// --prune`, then record the member's fingerprint beside them. Returns
/// `Ok(false)` when `member` is not a remote of `obstrepo`.
pub fn fetch_member(git: &Git, obstrepo: &Path, member: &Path) -> Result<bool, GitError> {
    let name = virtref(member);
    let remotes = list_remotes(git, obstrepo)?;
    if !remotes.iter().any(|(n, _)| *n == name) {
        return Ok(false);
    }
    git.run_ok(Some(obstrepo), ["fetch", name.as_str(), "--prune"])?;
    if let Some(fp) = repo::read_fingerprint(member) {
        let _ = crate::fsutil::write_if_changed(
            &obstrepo.join(format!("grokmirror.{name}.fingerprint")),
            fp.as_bytes(),
        );
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtref_is_12_hex_of_sha1_of_real_path() {
        let p = Path::new("/nonexistent/pub/linux.git");
        let expected = hex::encode(Sha1::digest(b"/nonexistent/pub/linux.git"));
        assert_eq!(virtref(p), expected[..12]);
    }
}
