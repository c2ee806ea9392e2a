//! Who borrows objects from whom through `objects/info/alternates`, and the
//! role that gives each repository when it is repacked or pruned.
//!
//! A repository others borrow from must never lose an object they may
//! need: it is never pruned and never asked to be re-cloned, and object
//! storage repositories are only repacked in ways that keep every object.

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::repo;
use crate::tree::discovery::{self, Found, WalkOptions};

/// Canonical path of a directory, or the lexically normalized path when it
/// does not exist.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| crate::tree::fsutil::normalize_lexically(path))
}

/// The repositories whose objects `repo` borrows: each alternates entry
/// that names some `<repo>/objects`, as a real path. Entries naming an
/// object directory that is not inside a repository are left out.
pub fn borrowed_from(repo: &Path) -> Vec<PathBuf> {
    read(&repo.join("objects"))
        .into_iter()
        .filter(|objects| objects.file_name().is_some_and(|n| n == "objects"))
        .filter_map(|objects| objects.parent().map(Path::to_path_buf))
        .collect()
}

/// The alternate object directories listed in `objects/info/alternates`,
/// made absolute (relative entries are relative to `objects`, as git reads
/// them) and real. The one reader of that file: every question about
/// lenders goes through it, so a file of several lines means the same to
/// all of them.
pub fn read(objects: &Path) -> Vec<PathBuf> {
    let Ok(text) = fs::read_to_string(objects.join("info/alternates")) else {
        return Vec::new();
    };
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let p = Path::new(l.trim_matches('"'));
            let p = if p.is_absolute() {
                p.to_path_buf()
            } else {
                objects.join(p)
            };
            fs::canonicalize(&p).unwrap_or_else(|_| crate::tree::fsutil::normalize_lexically(&p))
        })
        .collect()
}

/// The repository whose objects this one borrows (its lender): the first
/// alternates entry that names some `<repo>/objects`, as a real path.
pub fn lender(repo: &Path) -> Option<PathBuf> {
    borrowed_from(repo).into_iter().next()
}

/// Point `repo`'s alternates at `lender`'s objects (which must exist),
/// replacing whatever it listed.
pub fn point_at(repo: &Path, lender: &Path) -> std::io::Result<()> {
    let objects = lender.join("objects");
    if !objects.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "{} does not exist; not pointing {} at it",
                objects.display(),
                repo.display()
            ),
        ));
    }
    write(&repo.join("objects"), lender)
}

/// Make the object directory `objects` (a repository's, or a staged
/// clone's before it has its final name) borrow from `lender` alone: its
/// `info/alternates` names `lender`'s objects, written atomically. The one
/// writer of that file.
pub fn write(objects: &Path, lender: &Path) -> std::io::Result<()> {
    let info = objects.join("info");
    std::fs::create_dir_all(&info)?;
    crate::tree::fsutil::write_atomic(
        &info.join("alternates"),
        format!("{}\n", lender.join("objects").display()).as_bytes(),
    )
}

/// Which repositories borrow objects from which, over a whole tree.
#[derive(Debug, Clone, Default)]
pub struct AltMap {
    /// Canonical object directory -> canonical paths of the repositories
    /// that list it in their alternates.
    borrowers: HashMap<PathBuf, BTreeSet<PathBuf>>,
}

impl AltMap {
    /// Walk each of `roots` (object-storage repos included, symlinks not
    /// followed) and record every repository's alternates.
    pub fn scan(roots: &[&Path]) -> AltMap {
        let map = Mutex::new(AltMap::default());
        let opts = WalkOptions {
            include_objstore: true,
            ..Default::default()
        };
        let mut seen_roots: Vec<PathBuf> = Vec::new();
        for root in roots {
            let root = canonical(root);
            // A root inside another (objstore under toplevel) is walked once.
            if seen_roots.iter().any(|r| root.starts_with(r)) || !root.is_dir() {
                continue;
            }
            seen_roots.push(root.clone());
            discovery::walk(&root, &opts, &|found| {
                if let Found::Repo(path) = found {
                    let objects = read(&path.join("objects"));
                    if objects.is_empty() {
                        return;
                    }
                    let me = canonical(&path);
                    let mut m = map.lock().expect("alternates map poisoned");
                    for dir in objects {
                        m.borrowers.entry(dir).or_default().insert(me.clone());
                    }
                }
            });
        }
        map.into_inner().expect("alternates map poisoned")
    }

    /// Record that `borrower` uses `lender`'s objects (for callers that
    /// build or amend a map themselves).
    pub fn insert(&mut self, lender: &Path, borrower: &Path) {
        self.borrowers
            .entry(canonical(&lender.join("objects")))
            .or_default()
            .insert(canonical(borrower));
    }

    /// The repositories that borrow objects from `repo`.
    pub fn borrowers_of(&self, repo: &Path) -> BTreeSet<PathBuf> {
        self.borrowers
            .get(&canonical(&repo.join("objects")))
            .cloned()
            .unwrap_or_default()
    }

    /// Whether any repository borrows objects from `repo`.
    pub fn is_borrowed(&self, repo: &Path) -> bool {
        self.borrowers
            .get(&canonical(&repo.join("objects")))
            .is_some_and(|b| !b.is_empty())
    }
}

/// A repository's place among repositories sharing objects, which decides
/// how it may be repacked and whether it may be pruned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoRole {
    /// Shares objects with nobody.
    Standalone,
    /// Borrows objects from a plain repository (grokmirror 1.x style).
    Child {
        /// The repository it borrows from.
        parent: PathBuf,
    },
    /// Others borrow objects from it; it borrows from nobody.
    Parent,
    /// Others borrow from it and it borrows from another: objects it drops
    /// may still be needed further down.
    ParentAndChild {
        /// The repository it borrows from.
        parent: PathBuf,
    },
    /// An object-storage repository (holds the objects of a forkgroup).
    Objstore,
    /// Borrows its objects from an object-storage repository.
    ObjstoreMember {
        /// The object-storage repository.
        objstore: PathBuf,
    },
}

impl RepoRole {
    /// Work out `repo`'s role. `objstore_dir` is the `[core] objstore`
    /// directory: repositories in it, or holding the objstore marker, are
    /// object storage.
    pub fn of(repo: &Path, map: &AltMap, objstore_dir: &Path) -> RepoRole {
        let real = canonical(repo);
        let obst_dir = canonical(objstore_dir);
        let is_objstore = |p: &Path| p.starts_with(&obst_dir) || repo::is_objstore_repo(p);
        if is_objstore(&real) {
            return RepoRole::Objstore;
        }
        let lender = borrowed_from(repo).into_iter().next();
        let borrowed = map.is_borrowed(repo);
        match (lender, borrowed) {
            (Some(parent), true) => RepoRole::ParentAndChild { parent },
            (None, true) => RepoRole::Parent,
            (Some(parent), false) if is_objstore(&parent) => {
                RepoRole::ObjstoreMember { objstore: parent }
            }
            (Some(parent), false) => RepoRole::Child { parent },
            (None, false) => RepoRole::Standalone,
        }
    }

    /// Whether other repositories may depend on this one's objects.
    pub fn lends_objects(&self) -> bool {
        matches!(
            self,
            RepoRole::Parent | RepoRole::ParentAndChild { .. } | RepoRole::Objstore
        )
    }

    /// Whether it borrows objects from another repository.
    pub fn borrows_objects(&self) -> bool {
        matches!(
            self,
            RepoRole::Child { .. }
                | RepoRole::ParentAndChild { .. }
                | RepoRole::ObjstoreMember { .. }
        )
    }

    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            RepoRole::Standalone => "standalone",
            RepoRole::Child { .. } => "uses alternates",
            RepoRole::Parent => "alternates for others",
            RepoRole::ParentAndChild { .. } => "uses and provides alternates",
            RepoRole::Objstore => "object storage",
            RepoRole::ObjstoreMember { .. } => "uses object storage",
        }
    }
}

/// The top of `repo`'s alternates chain: the repository at the end of the
/// first-listed alternates links (itself when it borrows from nobody).
/// Repositories with the same top share objects, so work on them is not
/// run at the same time.
pub fn family_root(repo: &Path) -> PathBuf {
    let mut current = canonical(repo);
    // git follows at most 5 levels of alternates; stop at a cycle too.
    for _ in 0..6 {
        match borrowed_from(&current).into_iter().next() {
            Some(next) if next != current => current = next,
            _ => break,
        }
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lender_and_point_at() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.git");
        let b = dir.path().join("b.git");
        std::fs::create_dir_all(a.join("objects/info")).unwrap();
        std::fs::create_dir_all(b.join("objects")).unwrap();
        assert_eq!(lender(&a), None);
        point_at(&a, &b).unwrap();
        assert_eq!(lender(&a), Some(std::fs::canonicalize(&b).unwrap()));
        std::fs::write(a.join("objects/info/alternates"), "../../b.git/objects\n").unwrap();
        assert_eq!(lender(&a), Some(std::fs::canonicalize(&b).unwrap()));
        assert!(point_at(&a, &dir.path().join("missing.git")).is_err());
    }

    #[test]
    fn every_question_reads_the_same_entries() {
        // A file of several lines, with a comment, a blank line, an entry
        // that is no repository's objects and a quoted one: the reader, the
        // lender and the borrowers agree.
        let dir = tempfile::tempdir().unwrap();
        let top = std::fs::canonicalize(dir.path()).unwrap();
        let a = top.join("a.git");
        for d in [
            "a.git/objects/info",
            "b.git/objects",
            "c.git/objects",
            "loose",
        ] {
            std::fs::create_dir_all(top.join(d)).unwrap();
        }
        let text = format!(
            "# comment\n\n{}\n\"../../b.git/objects\"\n{}/c.git/objects\n",
            top.join("loose").display(),
            top.display()
        );
        std::fs::write(a.join("objects/info/alternates"), text).unwrap();
        assert_eq!(
            read(&a.join("objects")),
            vec![
                top.join("loose"),
                top.join("b.git/objects"),
                top.join("c.git/objects")
            ]
        );
        assert_eq!(
            borrowed_from(&a),
            vec![top.join("b.git"), top.join("c.git")]
        );
        assert_eq!(lender(&a), Some(top.join("b.git")));
    }

    use std::fs;

    fn fake_repo(p: &Path) {
        fs::create_dir_all(p.join("objects/info")).unwrap();
        fs::create_dir_all(p.join("refs")).unwrap();
        fs::write(p.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    }

    fn borrow(child: &Path, parent: &Path) {
        fs::write(
            child.join("objects/info/alternates"),
            format!("{}/objects\n", parent.display()),
        )
        .unwrap();
    }

    #[test]
    fn roles() {
        let dir = tempfile::tempdir().unwrap();
        let t = fs::canonicalize(dir.path()).unwrap();
        let obst = t.join("objstore");
        for name in [
            "solo.git",
            "parent.git",
            "child.git",
            "middle.git",
            "grand.git",
            "member.git",
        ] {
            fake_repo(&t.join(name));
        }
        fake_repo(&obst.join("fg.git"));
        fs::write(obst.join("fg.git/grokmirror.objstore"), "").unwrap();
        borrow(&t.join("child.git"), &t.join("parent.git"));
        borrow(&t.join("middle.git"), &t.join("parent.git"));
        borrow(&t.join("grand.git"), &t.join("middle.git"));
        // Relative alternates entries count too.
        fs::write(
            t.join("member.git/objects/info/alternates"),
            "../../objstore/fg.git/objects\n",
        )
        .unwrap();

        let map = AltMap::scan(&[&t, &obst]);
        let role = |n: &str| RepoRole::of(&t.join(n), &map, &obst);
        assert_eq!(role("solo.git"), RepoRole::Standalone);
        assert_eq!(role("parent.git"), RepoRole::Parent);
        assert_eq!(
            role("child.git"),
            RepoRole::Child {
                parent: t.join("parent.git")
            }
        );
        assert_eq!(
            role("middle.git"),
            RepoRole::ParentAndChild {
                parent: t.join("parent.git")
            }
        );
        assert_eq!(
            role("member.git"),
            RepoRole::ObjstoreMember {
                objstore: obst.join("fg.git")
            }
        );
        assert_eq!(role("objstore/fg.git"), RepoRole::Objstore);
        assert!(map.is_borrowed(&obst.join("fg.git")));
        assert_eq!(
            map.borrowers_of(&t.join("parent.git")),
            [t.join("child.git"), t.join("middle.git")]
                .into_iter()
                .collect()
        );
        assert_eq!(family_root(&t.join("grand.git")), t.join("parent.git"));
        assert_eq!(family_root(&t.join("solo.git")), t.join("solo.git"));
        assert_eq!(family_root(&t.join("member.git")), obst.join("fg.git"));
    }

    #[test]
    fn marker_makes_objstore_anywhere() {
        let dir = tempfile::tempdir().unwrap();
        let t = fs::canonicalize(dir.path()).unwrap();
        fake_repo(&t.join("elsewhere.git"));
        fs::write(t.join("elsewhere.git/grokmirror.objstore"), "").unwrap();
        let map = AltMap::default();
        assert_eq!(
            RepoRole::of(&t.join("elsewhere.git"), &map, &t.join("objstore")),
            RepoRole::Objstore
        );
    }
}
