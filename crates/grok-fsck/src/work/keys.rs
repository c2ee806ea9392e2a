//! Manifest keys, real paths and fingerprints on disk, as the run needs
//! them.

use std::path::{Path, PathBuf};

use grokmirror::git::Git;
use grokmirror::config::glob::GlobList;
use grokmirror::repo::{self, refs};
use tracing::debug;

// house: dedup with library
/// The fingerprint grokmirror keeps in the repository, computed (and
/// stored) when missing, as grokmirror does.
pub fn current_fingerprint(git: &Git, path: &Path) -> Option<String> {
    if let Some(fp) = repo::read_fingerprint(path) {
        return Some(fp);
    }
    let snap = refs::snapshot(git, path, &GlobList::default(), false).ok()?;
    if let Some(fp) = &snap.fingerprint {
        if let Err(e) = repo::write_fingerprint(path, fp) {
            debug!("cannot store the fingerprint of {}: {e}", path.display());
        }
    }
    snap.fingerprint
}

// house: dedup with library
/// The real path of `path`; for a path that does not exist yet, its
/// parent's real path joined with its name.
pub fn real_path(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => real_path(parent).join(name),
        _ => path.to_path_buf(),
    }
}

// house: dedup with library
/// Manifest keys we will turn into paths: no `..`, no empty or NUL
/// components (the local manifest is ours, but a damaged one must not send
/// us outside the tree).
pub fn key_is_safe(key: &str) -> bool {
    let rel = key.trim_start_matches('/');
    !rel.is_empty()
        && !rel.contains('\0')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

// house: dedup with library
/// `key` with exactly one leading slash (1.x manifests had none).
pub fn normal_key(key: &str) -> String {
    format!("/{}", key.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(key_is_safe("/a/b.git"));
        assert!(key_is_safe("a.git"));
        assert!(!key_is_safe("/a/../b.git"));
        assert!(!key_is_safe("/"));
        assert!(!key_is_safe("/a//b.git"));
        assert_eq!(normal_key("a.git"), "/a.git");
        assert_eq!(normal_key("/a.git"), "/a.git");
    }
}
