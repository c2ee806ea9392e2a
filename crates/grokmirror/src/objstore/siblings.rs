//! Which repositories are forks of one another, the way grokmirror 2.x
//! decides it (SPEC §1.10), so a tree maintained by either tool ends up
//! grouped the same way: by shared root commits, and, for the `blobs`
//! merge strategy, by shared file contents.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::git::Git;
use crate::repo::roots::Roots;
use crate::repo::BLOBS_FILE;
use crate::tree::fsutil;

/// The least share of an object-storage repository's roots that a
/// repository must have to join it: repositories with a weak common
/// history are not lumped together.
pub const MIN_JOIN_RATIO: f64 = 0.2;

/// The share of blob bytes two object-storage repositories must have in
/// common (each way, in percent) to be merged by the `blobs` strategy.
pub const BLOBS_MERGE_PERCENT: u64 = 75;

/// How long a `grokmirror.blobs` cache is trusted.
pub const BLOBS_CACHE_AGE: Duration = Duration::from_secs(30 * 86_400);

/// Whether two root sets make their repositories siblings. `exact`: the
/// very same roots. Otherwise also when one set contains the other, or
/// when they differ by at most two roots in all; never without a shared
/// root.
pub fn are_siblings(a: &Roots, b: &Roots, exact: bool) -> bool {
    if a.is_empty() || b.is_empty() || a.is_disjoint(b) {
        return false;
    }
    if a == b {
        return true;
    }
    if exact {
        return false;
    }
    if a.is_subset(b) || b.is_subset(a) {
        return true;
    }
    a.symmetric_difference(b).count() <= 2
}

/// The repositories of `known` that are siblings of `me` (itself left out).
pub fn find_siblings(
    me: &Path,
    my_roots: &Roots,
    known: &BTreeMap<PathBuf, Roots>,
    exact: bool,
) -> BTreeSet<PathBuf> {
    known
        .iter()
        .filter(|(path, roots)| path.as_path() != me && are_siblings(my_roots, roots, exact))
        .map(|(path, _)| path.clone())
        .collect()
}

/// The object-storage repository a repository with `my_roots` should use:
/// one holding a member that matches `baselines` wins outright if it shares
/// any root; otherwise the one whose roots are most covered by ours (at
/// least [`MIN_JOIN_RATIO`]), the first in path order on a tie.
/// `has_baseline_member` tells whether an object-storage repository has a
/// member matching the baselines (only asked when baselines are set).
pub fn best_objstore(
    my_roots: &Roots,
    objstores: &BTreeMap<PathBuf, Roots>,
    baselines_set: bool,
    has_baseline_member: &dyn Fn(&Path) -> bool,
) -> Option<PathBuf> {
    let mut best: Option<(&PathBuf, f64)> = None;
    for (path, roots) in objstores {
        if roots.is_empty() {
            continue;
        }
        let shared = roots.intersection(my_roots).count();
        if shared == 0 {
            continue;
        }
        if baselines_set && has_baseline_member(path) {
            return Some(path.clone());
        }
        let ratio = shared as f64 / roots.len() as f64;
        if ratio < MIN_JOIN_RATIO {
            continue;
        }
        if best.is_none_or(|(_, r)| ratio > r) {
            best = Some((path, ratio));
        }
    }
    best.map(|(p, _)| p.clone())
}

/// The blobs of a repository with their sizes, for the `blobs` merge
/// strategy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlobSet {
    /// `(object id, size)` of every blob.
    pub blobs: HashSet<(String, u64)>,
    /// Sum of the sizes.
    pub total: u64,
}

impl BlobSet {
    fn insert(&mut self, oid: &str, size: u64) {
        if self.blobs.insert((oid.to_string(), size)) {
            self.total += size;
        }
    }

    /// Whether two repositories share at least `percent` of their blob
    /// bytes, each way.
    pub fn similar(&self, other: &BlobSet, percent: u64) -> bool {
        if self.total == 0 || other.total == 0 {
            return false;
        }
        let shared: u64 = self
            .blobs
            .intersection(&other.blobs)
            .map(|(_, size)| *size)
            .sum();
        if shared == 0 {
            return false;
        }
        shared * 100 / self.total >= percent && shared * 100 / other.total >= percent
    }
}

/// Read the blob cache (`<oid> <size>` lines, `#` lines are comments), if
/// present and younger than [`BLOBS_CACHE_AGE`]; an expired one is removed.
fn read_blob_cache(repo: &Path) -> Option<BlobSet> {
    let path = repo.join(BLOBS_FILE);
    let meta = fs::metadata(&path).ok()?;
    let expired = meta
        .modified()
        .ok()
        .and_then(|m| SystemTime::now().duration_since(m).ok())
        .is_some_and(|age| age > BLOBS_CACHE_AGE);
    if expired {
        let _ = fs::remove_file(&path);
        return None;
    }
    let file = fs::File::open(&path).ok()?;
    let mut set = BlobSet::default();
    for line in BufReader::new(file).lines() {
        let line = line.ok()?;
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut parts = line.split_whitespace();
        let (Some(oid), Some(size)) = (parts.next(), parts.next()) else {
            return None;
        };
        set.insert(oid, size.parse().ok()?);
    }
    Some(set)
}

/// The blobs of `repo` (its own objects; meant for object-storage
/// repositories, which borrow from nobody), from the cache when fresh.
pub fn blob_set(git: &Git, repo: &Path) -> BlobSet {
    if let Some(set) = read_blob_cache(repo) {
        return set;
    }
    tracing::info!(" bloblist: {}", repo.display());
    let out = git.run(
        Some(repo),
        [
            "cat-file",
            "--batch-all-objects",
            "--batch-check",
            "--unordered",
        ],
    );
    let mut set = BlobSet::default();
    let Ok(out) = out.map_err(|e| tracing::warn!("{e}")) else {
        return set;
    };
    if !out.success() {
        tracing::warn!(
            "cannot list the objects of {}: {}",
            repo.display(),
            out.stderr_str()
        );
        return set;
    }
    let mut cache = String::from("# blob sizes, for finding sibling object storage\n");
    for line in out.stdout_str().lines() {
        let mut parts = line.split_whitespace();
        let (Some(oid), Some("blob"), Some(size)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Ok(size) = size.parse::<u64>() else {
            continue;
        };
        set.insert(oid, size);
        cache.push_str(&format!("{oid} {size}\n"));
    }
    if let Err(e) = fsutil::write_atomic(&repo.join(BLOBS_FILE), cache.as_bytes()) {
        tracing::debug!("cannot cache the blobs of {}: {e}", repo.display());
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roots(ids: &[&str]) -> Roots {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn sibling_rules() {
        let a = roots(&["1", "2"]);
        assert!(are_siblings(&a, &roots(&["1", "2"]), true));
        assert!(!are_siblings(&a, &roots(&["1"]), true));
        assert!(are_siblings(&a, &roots(&["1"]), false), "subset");
        assert!(are_siblings(&a, &roots(&["1", "3"]), false), "one each way");
        assert!(!are_siblings(&a, &roots(&["1", "3", "4"]), false));
        assert!(!are_siblings(&a, &roots(&["3"]), false), "nothing shared");
        assert!(!are_siblings(&a, &roots(&[]), false));
        let known: BTreeMap<PathBuf, Roots> = [
            (PathBuf::from("/t/a.git"), a.clone()),
            (PathBuf::from("/t/b.git"), roots(&["2"])),
            (PathBuf::from("/t/c.git"), roots(&["9"])),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            find_siblings(Path::new("/t/a.git"), &a, &known, false),
            [PathBuf::from("/t/b.git")].into_iter().collect()
        );
    }

    #[test]
    fn best_objstore_by_ratio_and_baseline() {
        let obst: BTreeMap<PathBuf, Roots> = [
            (
                PathBuf::from("/o/a.git"),
                roots(&["1", "2", "3", "4", "5", "6"]),
            ),
            (PathBuf::from("/o/b.git"), roots(&["1", "7"])),
            (PathBuf::from("/o/c.git"), roots(&["8"])),
        ]
        .into_iter()
        .collect();
        let none = |_: &Path| false;
        // 1/6 of a's roots is below the threshold; half of b's is best.
        assert_eq!(
            best_objstore(&roots(&["1"]), &obst, false, &none),
            Some(PathBuf::from("/o/b.git"))
        );
        assert_eq!(best_objstore(&roots(&["9"]), &obst, false, &none), None);
        // A baseline member wins as soon as one root is shared.
        let a_has = |p: &Path| p == Path::new("/o/a.git");
        assert_eq!(
            best_objstore(&roots(&["1"]), &obst, true, &a_has),
            Some(PathBuf::from("/o/a.git"))
        );
    }

    #[test]
    fn blob_similarity() {
        let mut a = BlobSet::default();
        let mut b = BlobSet::default();
        for i in 0..10 {
            a.insert(&format!("{i}"), 10);
            if i < 8 {
                b.insert(&format!("{i}"), 10);
            }
        }
        b.insert("x", 5);
        assert!(a.similar(&b, 75));
        assert!(!a.similar(&b, 90));
        assert!(!a.similar(&BlobSet::default(), 75));
    }
}
