//! Finding the repositories under a top level (SPEC §1.3).
//!
//! Same rules as grokmirror's walk: a directory is a repo when it has
//! `objects/`, `refs/` and `HEAD`; we never descend into a found repo or
//! follow a symlinked directory; ignore globs are matched against the full
//! path; object-storage repos are skipped. Directories are read in parallel
//! (rayon), and each find is handed to the visitor on the worker that found
//! it, so callers can fingerprint repos while the walk goes on.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::config::glob::GlobList;
use crate::repo::{is_bare_repo, is_objstore_repo};

/// Something the walk found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A bare repository (a real directory).
    Repo(PathBuf),
    /// A symlink that resolves to a bare repository.
    Symlink(PathBuf),
    /// A symlink whose target does not exist.
    Dangling(PathBuf),
    /// A directory that could not be read.
    Unreadable(PathBuf, String),
}

/// What to walk and what to skip.
#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    /// Paths matching any of these (full path, fnmatch) are skipped and not
    /// descended into.
    pub ignore: GlobList,
    /// Report object-storage repos as repos instead of skipping them.
    pub include_objstore: bool,
}

/// Everything the walk found, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovery {
    /// Bare repositories.
    pub repos: Vec<PathBuf>,
    /// Symlinks to bare repositories.
    pub symlinks: Vec<PathBuf>,
    /// Dangling symlinks.
    pub dangling: Vec<PathBuf>,
    /// Directories that could not be read, with the reason.
    pub unreadable: Vec<(PathBuf, String)>,
}

/// Walk `toplevel`, calling `visit` (from several threads) for every find.
pub fn walk(toplevel: &Path, opts: &WalkOptions, visit: &(dyn Fn(Found) + Sync)) {
    rayon::scope(|scope| visit_dir(scope, toplevel.to_path_buf(), opts, visit));
}

fn visit_dir<'s>(
    scope: &rayon::Scope<'s>,
    dir: PathBuf,
    opts: &'s WalkOptions,
    visit: &'s (dyn Fn(Found) + Sync),
) {
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) => {
            visit(Found::Unreadable(dir, e.to_string()));
            return;
        }
    };
    for entry in entries.flatten() {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        // grok-pull's staging area holds clones in progress: never a
        // repository, nothing to look for inside.
        if crate::tree::staging::is_staging_name(&entry.file_name()) {
            continue;
        }
        let path = entry.path();
        if kind.is_symlink() {
            match std::fs::metadata(&path) {
                Err(_) => visit(Found::Dangling(path)),
                Ok(meta) if meta.is_dir() => {
                    if opts.ignore.is_match(&path.to_string_lossy()) {
                        continue;
                    }
                    if is_bare_repo(&path) && (opts.include_objstore || !is_objstore_repo(&path)) {
                        visit(Found::Symlink(path));
                    }
                }
                Ok(_) => {}
            }
        } else if kind.is_dir() {
            if opts.ignore.is_match(&path.to_string_lossy()) {
                continue;
            }
            if is_bare_repo(&path) {
                if opts.include_objstore || !is_objstore_repo(&path) {
                    visit(Found::Repo(path));
                }
            } else {
                scope.spawn(move |s| visit_dir(s, path, opts, visit));
            }
        }
    }
}

/// Walk `toplevel` and collect everything found.
pub fn find_repos(toplevel: &Path, opts: &WalkOptions) -> Discovery {
    let found = Mutex::new(Discovery::default());
    walk(toplevel, opts, &|f| {
        let mut d = found.lock().expect("walk collector poisoned");
        match f {
            Found::Repo(p) => d.repos.push(p),
            Found::Symlink(p) => d.symlinks.push(p),
            Found::Dangling(p) => d.dangling.push(p),
            Found::Unreadable(p, why) => d.unreadable.push((p, why)),
        }
    });
    let mut d = found.into_inner().expect("walk collector poisoned");
    d.repos.sort();
    d.symlinks.sort();
    d.dangling.sort();
    d.unreadable.sort();
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fake_repo(p: &Path) {
        fs::create_dir_all(p.join("objects")).unwrap();
        fs::create_dir_all(p.join("refs")).unwrap();
        fs::write(p.join("HEAD"), "ref: refs/heads/main\n").unwrap();
    }

    #[test]
    fn finds_repos_symlinks_and_skips_what_it_should() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path();
        fake_repo(&t.join("a.git"));
        fake_repo(&t.join("a.git/nested.git")); // never descended into
        fake_repo(&t.join("x/y/b.git"));
        fake_repo(&t.join("ignored/c.git"));
        fake_repo(&t.join("objstore/0000.git"));
        fake_repo(&t.join(".grok-pull.staging/1111.git"));
        fs::write(t.join("objstore/0000.git/grokmirror.objstore"), "").unwrap();
        fs::create_dir_all(t.join("plain/dir")).unwrap();
        std::os::unix::fs::symlink(t.join("x/y/b.git"), t.join("link.git")).unwrap();
        std::os::unix::fs::symlink(t.join("nowhere.git"), t.join("dangling.git")).unwrap();
        std::os::unix::fs::symlink(t.join("x"), t.join("xlink")).unwrap(); // not followed
        let opts = WalkOptions {
            ignore: GlobList::new([format!("{}/ignored*", t.display()).as_str()]),
            include_objstore: false,
        };
        let d = find_repos(t, &opts);
        assert_eq!(d.repos, vec![t.join("a.git"), t.join("x/y/b.git")]);
        assert_eq!(d.symlinks, vec![t.join("link.git")]);
        assert_eq!(d.dangling, vec![t.join("dangling.git")]);
        let with_obst = find_repos(
            t,
            &WalkOptions {
                include_objstore: true,
                ..opts
            },
        );
        assert!(with_obst.repos.contains(&t.join("objstore/0000.git")));
    }
}
