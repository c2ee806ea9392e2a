//! Object-storage repositories (SPEC §1.10): one bare repository per fork
//! group, `${objstore}/<forkgroup>.git`, holding the objects of all its
//! members so each member keeps next to nothing of its own.
//!
//! The layout is grokmirror 2.x's, so either tool can maintain a tree the
//! other built:
//! - the repository is configured with `core.repositoryformatversion=1`,
//!   `extensions.preciousObjects=true`, `pack.compression=9`,
//!   `repack.useDeltaIslands=true`, `repack.writeBitmaps=true` and
//!   `pack.island=refs/virtual/([0-9a-f]+)/`, and holds the
//!   `grokmirror.objstore` file (a warning, then the members, one per line);
//! - each member is a remote named after its [`virtref`], with its path as
//!   URL, `--no-tags`, and the fetch refspec `+refs/*:refs/virtual/<virtref>/*`;
//!   after each fetch the member's fingerprint is copied to
//!   `grokmirror.<virtref>.fingerprint`;
//! - each member's `objects/info/alternates` names the repository's
//!   `objects` directory.
//!
//! # Safety
//!
//! Every function here is one step of a larger rewiring (see grok-fsck and
//! grok-pull) and is written so that a crash at any point leaves every
//! repository valid (`git fsck --connectivity-only` passes): objects are
//! copied before anything starts relying on them, alternates are only
//! replaced once the new lender holds everything the borrower reaches, and
//! nothing here deletes an object. Callers hold the locks named in each
//! function's documentation; when they need a member's lock and its object
//! storage's lock together, they take the member's first.

mod fetch;
pub mod grouping;
mod lifecycle;
mod members;
pub mod siblings;

pub use fetch::*;
pub use lifecycle::*;
pub use members::*;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use sha1::{Digest, Sha1};

use crate::git::{self, Git};
use crate::repo::{self};

/// First lines of `grokmirror.objstore`. The file format is grokmirror's
/// (this text, then one member per line), so it is reproduced as is.
pub const MARKER_PREAMBLE: &str = "# WARNING: This is a grokmirror object storage repository.\n\
# Deleting or moving it will cause corruption in the following repositories\n\
# (caution, this list may be incomplete):\n";

/// The delta-island pattern: one island per member.
pub const ISLAND_PATTERN: &str = "refs/virtual/([0-9a-f]+)/";

/// Failure of an object-storage step.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A git command failed.
    #[error(transparent)]
    Git(#[from] git::Error),
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        cause: io::Error,
    },
    /// A git config file could not be read or written.
    #[error(transparent)]
    Config(#[from] crate::repo::git_config::Error),
    /// The objects were copied but something the refs point at is missing
    /// (plumbing fetch only; the porcelain fetch is the fallback).
    #[error("{0}")]
    Incomplete(String),
}

impl From<repo::Error> for Error {
    fn from(e: repo::Error) -> Self {
        match e {
            repo::Error::Git(g) => Error::Git(g),
            repo::Error::Io { path, cause } => Error::Io { path, cause },
        }
    }
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |cause| Error::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// The remote name (and `refs/virtual/<name>/` prefix) of a member in its
/// object-storage repo: the first 12 hex digits of the SHA-1 of the member's
/// real path.
pub fn virtref(member: &Path) -> String {
    let real = std::fs::canonicalize(member).unwrap_or_else(|_| member.to_path_buf());
    let digest = Sha1::digest(real.as_os_str().as_encoded_bytes());
    hex::encode(digest)[..12].to_string()
}

/// The refs a member's refs are fetched to: `refs/virtual/<virtref>/`.
pub fn virtual_prefix(virtref: &str) -> String {
    format!("refs/virtual/{virtref}/")
}

/// The fetch refspec of a member.
pub fn member_refspec(virtref: &str) -> String {
    format!("+refs/*:refs/virtual/{virtref}/*")
}

/// The forkgroup name of an object-storage repo: its directory name
/// without `.git`.
pub fn forkgroup_name(obstrepo: &Path) -> Option<String> {
    let name = obstrepo.file_name()?.to_str()?;
    name.strip_suffix(".git").map(str::to_string)
}

/// The object-storage repo `repo` borrows from, if its alternate is one.
pub fn objstore_of(repo: &Path) -> Option<PathBuf> {
    repo::alternates::lender(repo).filter(|alt| repo::is_objstore_repo(alt))
}

/// The object-storage repositories in `objstore_dir`: its `*.git`
/// subdirectories that are bare repositories (hidden ones are work in
/// progress and left out), as real paths, sorted.
pub fn list(objstore_dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(objstore_dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| {
            let name = e.file_name();
            let name = name.to_string_lossy();
            !name.starts_with('.') && name.ends_with(".git")
        })
        .map(|e| e.path())
        .filter(|p| p.is_dir() && repo::is_bare_repo(p))
        .map(|p| fs::canonicalize(&p).unwrap_or(p))
        .collect();
    found.sort();
    found
}

/// For each object-storage repo of `objstore_dir` (by forkgroup name), the
/// members under `toplevel` it lists as remotes.
pub fn local_forkgroups(
    git: &Git,
    objstore_dir: &Path,
    toplevel: &Path,
) -> BTreeMap<String, BTreeSet<PathBuf>> {
    let mut groups = BTreeMap::new();
    for obst in list(objstore_dir) {
        let Some(name) = forkgroup_name(&obst) else {
            continue;
        };
        let members: BTreeSet<PathBuf> = list_remotes(git, &obst)
            .unwrap_or_default()
            .into_iter()
            .map(|(_, url)| PathBuf::from(url))
            .filter(|p| p.starts_with(toplevel))
            .collect();
        groups.insert(name, members);
    }
    groups
}

/// Whether the object-storage repo holds any object yet.
pub fn is_populated(obstrepo: &Path) -> bool {
    crate::repo::object_counts::scan(obstrepo)
        .map(|c| c.count > 0 || c.in_pack > 0)
        .unwrap_or(false)
}

/// A name for a new fork group (a random UUID, as grokmirror makes them).
pub fn new_forkgroup_name() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lock;
    use crate::repo::OBJSTORE_MARKER;

    #[test]
    fn virtref_is_12_hex_of_sha1_of_real_path() {
        let p = Path::new("/nonexistent/pub/linux.git");
        let expected = hex::encode(Sha1::digest(b"/nonexistent/pub/linux.git"));
        assert_eq!(virtref(p), expected[..12]);
    }

    fn git() -> Git {
        Git::from_env()
    }

    fn commit(repo: &Path, branch: &str, msg: &str) -> String {
        let g = git();
        let blob = g
            .run_with_input(
                Some(repo),
                ["hash-object", "-w", "--stdin"],
                Some(msg.as_bytes()),
            )
            .unwrap()
            .stdout_str();
        let tree = g
            .run_with_input(
                Some(repo),
                ["mktree"],
                Some(format!("100644 blob {blob}\tf\n").as_bytes()),
            )
            .unwrap()
            .stdout_str();
        let parent = g
            .run(Some(repo), ["rev-parse", "-q", "--verify", branch])
            .unwrap();
        let mut args = vec!["commit-tree".to_string(), "-m".into(), msg.into(), tree];
        if parent.success() {
            args.push("-p".into());
            args.push(parent.stdout_str());
        }
        let c = g.run_ok(Some(repo), &args).unwrap().stdout_str();
        g.run_ok(
            Some(repo),
            ["update-ref", &format!("refs/heads/{branch}"), &c],
        )
        .unwrap();
        c
    }

    fn config(repo: &Path, key: &str) -> Vec<String> {
        git()
            .run(Some(repo), ["config", "--get-all", key])
            .unwrap()
            .stdout_str()
            .lines()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn create_add_fetch_remove() {
        let dir = tempfile::tempdir().unwrap();
        let top = fs::canonicalize(dir.path()).unwrap();
        let obst_dir = top.join("objstore");
        let g = git();
        let obst = create(&g, &obst_dir, Some("fg")).unwrap();
        assert_eq!(obst, obst_dir.join("fg.git"));
        assert_eq!(
            create(&g, &obst_dir, Some("fg")).unwrap(),
            obst,
            "idempotent"
        );
        for (k, v) in [
            ("core.repositoryformatversion", "1"),
            ("extensions.preciousObjects", "true"),
            ("pack.compression", "9"),
            ("repack.useDeltaIslands", "true"),
            ("repack.writeBitmaps", "true"),
            ("pack.island", ISLAND_PATTERN),
            ("gc.auto", "0"),
        ] {
            assert_eq!(config(&obst, k), vec![v.to_string()], "{k}");
        }
        assert_eq!(
            fs::read_to_string(obst.join(OBJSTORE_MARKER)).unwrap(),
            MARKER_PREAMBLE
        );
        assert!(list(&obst_dir) == vec![obst.clone()]);

        let member = top.join("m.git");
        repo::init_bare_repo(&g, &member).unwrap();
        let tip = commit(&member, "main", "one");
        fs::write(member.join(repo::FINGERPRINT_FILE), "fp1").unwrap();
        assert!(!fetch_member(&g, &obst, &member, FetchMethod::Porcelain).unwrap());
        assert!(add_member(&obst, &member).unwrap());
        assert!(!add_member(&obst, &member).unwrap());
        let v = virtref(&member);
        assert_eq!(
            config(&obst, &format!("remote.{v}.url")),
            vec![member.to_string_lossy().to_string()]
        );
        assert_eq!(
            config(&obst, &format!("remote.{v}.fetch")),
            vec![member_refspec(&v)]
        );
        assert_eq!(
            config(&obst, &format!("remote.{v}.tagopt")),
            vec!["--no-tags"]
        );
        assert_eq!(
            read_member_list(&obst),
            [member.clone()].into_iter().collect()
        );
        assert!(member_needs_fetch(&obst, &member));
        assert!(fetch_member(&g, &obst, &member, FetchMethod::Porcelain).unwrap());
        assert!(!member_needs_fetch(&obst, &member));
        let refs = g
            .run_ok(
                Some(&obst),
                ["for-each-ref", "--format=%(objectname) %(refname)"],
            )
            .unwrap()
            .stdout_str();
        assert_eq!(refs, format!("{tip} refs/virtual/{v}/heads/main"));

        // Plumbing: a new commit arrives by hard links and update-ref.
        point_at(&member, &obst).unwrap();
        let tip2 = commit(&member, "main", "two");
        commit(&member, "topic", "three");
        fs::write(member.join(repo::FINGERPRINT_FILE), "fp2").unwrap();
        assert!(fetch_member(&g, &obst, &member, FetchMethod::Plumbing).unwrap());
        let refs = g
            .run_ok(
                Some(&obst),
                [
                    "for-each-ref",
                    "--format=%(objectname) %(refname)",
                    "refs/virtual/",
                ],
            )
            .unwrap()
            .stdout_str();
        assert!(
            refs.contains(&format!("{tip2} refs/virtual/{v}/heads/main")),
            "{refs}"
        );
        assert!(
            refs.contains(&format!("refs/virtual/{v}/heads/topic")),
            "{refs}"
        );
        assert_eq!(
            fs::read_to_string(fingerprint_file(&obst, &v)).unwrap(),
            "fp2"
        );
        let fsck = g
            .run(
                Some(&obst),
                ["fsck", "--connectivity-only", "--no-dangling"],
            )
            .unwrap();
        assert!(fsck.success(), "{}", fsck.stderr_str());
        // A deleted branch goes with the plumbing too.
        g.run_ok(Some(&member), ["update-ref", "-d", "refs/heads/topic"])
            .unwrap();
        fetch_member(&g, &obst, &member, FetchMethod::Plumbing).unwrap();
        assert_eq!(
            virtrefs_with_refs(&g, &obst).unwrap(),
            [v.clone()].into_iter().collect()
        );
        let refs = g
            .run_ok(Some(&obst), ["for-each-ref", "--format=%(refname)"])
            .unwrap()
            .stdout_str();
        assert!(!refs.contains("topic"), "{refs}");

        remove_member(&g, &obst, &v).unwrap();
        assert!(config(&obst, &format!("remote.{v}.url")).is_empty());
        assert!(virtrefs_with_refs(&g, &obst).unwrap().is_empty());
        assert!(!fingerprint_file(&obst, &v).exists());
        // The objects stay for whoever still borrows them.
        let has = g.run(Some(&obst), ["cat-file", "-e", &tip2]).unwrap();
        assert!(has.success());

        let held = lock::acquire_repo(&obst, lock::Wait::No).unwrap().unwrap();
        assert!(delete(&obst, true, &held).is_err(), "borrowed: kept");
        assert!(obst.exists());
        delete(&obst, false, &held).unwrap();
        assert!(!obst.exists());
        assert!(list(&obst_dir).is_empty());
    }

    #[test]
    fn leftovers_are_swept_unless_locked() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join(".a.git.1.building/objects")).unwrap();
        fs::create_dir_all(d.join(".b.git.2.deleting")).unwrap();
        fs::create_dir_all(d.join(".c.git.3.building")).unwrap();
        fs::create_dir_all(d.join("keep.git")).unwrap();
        let _live = lock::acquire_repo(&d.join(".c.git.3.building"), lock::Wait::Forever)
            .unwrap()
            .unwrap();
        let mut removed = sweep_leftovers(d);
        removed.sort();
        assert_eq!(
            removed,
            vec![d.join(".a.git.1.building"), d.join(".b.git.2.deleting")]
        );
        assert!(d.join(".c.git.3.building").exists());
        assert!(d.join("keep.git").exists());
    }
}
