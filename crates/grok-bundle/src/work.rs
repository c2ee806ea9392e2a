//! One repository's bundle: decide whether it is needed, build it beside
//! the old one and rename it into place, then record its fingerprint and
//! write its bundle list.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;

use grokmirror::tree::fsutil;
use grokmirror::git::{self, Git};
use grokmirror::config::glob::GlobList;
use grokmirror::lock::{self, Wait};
use grokmirror::repo::refs;
use grokmirror::repo;
use grokmirror::tree::{self, Dir, Kind};
use tracing::{debug, info};

use crate::pyfloat::py_repr;
use crate::Settings;

/// The bundle's file name, as Android's `repo` expects it.
pub const BUNDLE_FILE: &str = "clone.bundle";
/// The file holding the fingerprint the bundle was made from (the name
/// grokmirror 2.0.12 uses, so either program sees the other's bundles as
/// up to date).
pub const FINGERPRINT_FILE: &str = ".fingerprint";
/// The bundle list for `git clone --bundle-uri`.
pub const BUNDLE_LIST_FILE: &str = "bundle-list";

/// How a repository ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new bundle was written.
    Generated,
    /// The bundle was up to date.
    Unchanged,
    /// Not bundled this time (too big, no refs, locked by another process).
    Skipped,
}

/// Why a repository could not be bundled.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The manifest key cannot be turned into paths safely.
    #[error(
        "manifest entry {key} is refused: {reason}; fix the manifest (grok-manifest rebuilds it)"
    )]
    BadKey {
        /// The key.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// The manifest names a repository that is not on disk.
    #[error("{} is not a bare git repository; regenerate the manifest with grok-manifest", .0.display())]
    NotARepo(PathBuf),
    /// The repository's lock could not be taken (not contention).
    #[error("{0}; check the permissions of the repository's parent directory")]
    Lock(#[from] lock::Error),
    /// git could not be run or failed.
    #[error("{path}: {source}", path = .path.display())]
    Git {
        /// The repository.
        path: PathBuf,
        /// What failed.
        source: git::Error,
    },
    /// `git bundle create` failed.
    #[error("git bundle create failed for {}: {stderr}; the previous bundle, if any, is kept", .path.display())]
    Bundle {
        /// The repository.
        path: PathBuf,
        /// What git said (its first fatal or error line) and its exit status.
        stderr: String,
    },
    /// A directory of the output tree is unusable.
    #[error("{0}; check the output directory")]
    Tree(#[from] tree::Error),
    /// Writing a file failed.
    #[error("cannot write {}: {source}; check the space and permissions of the output directory", .path.display())]
    Write {
        /// The file (as shown).
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A relative path of plain, non-empty components, or why not.
fn plain_relative(rel: &str) -> Result<PathBuf, &'static str> {
    if rel.contains('\0') {
        return Err("it contains a NUL byte");
    }
    let path = Path::new(rel);
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return Err("it leaves the tree (.. or an absolute path)"),
        }
    }
    if out.as_os_str().is_empty() {
        return Err("it names no directory");
    }
    Ok(out)
}

/// The bundle directory of a manifest key below the output directory:
/// the key without its leading `/` and with every `.git` removed, as
/// grokmirror 2.0.12 names it (`/pub/a/x.git` -> `pub/a/x`).
pub fn bundle_dir_of(key: &str) -> Result<PathBuf, &'static str> {
    let rel = key.trim_start_matches('/');
    plain_relative(rel)?;
    plain_relative(&rel.replace(".git", ""))
}

/// The bundle list pointing at `clone.bundle` beside it.
pub fn bundle_list_text() -> String {
    format!("[bundle]\n\tversion = 1\n\tmode = all\n[bundle \"clone\"]\n\turi = {BUNDLE_FILE}\n")
}

/// Objects on disk in KiB (`git count-objects -v`: size + size-pack),
/// those of the repositories it borrows from through alternates included.
fn repo_size_kib(git: &Git, repo: &Path) -> Result<u64, Error> {
    let mut total = 0;
    let mut current = repo.to_path_buf();
    let mut seen = Vec::new();
    loop {
        let out = git
            .run_ok(Some(&current), ["count-objects", "-v"])
            .map_err(|source| Error::Git {
                path: current.clone(),
                source,
            })?;
        for line in out.stdout_str().lines() {
            if let Some((k, v)) = line.split_once(':') {
                if k == "size" || k == "size-pack" {
                    total += v.trim().parse::<u64>().unwrap_or(0);
                }
            }
        }
        seen.push(current.clone());
        match repo::alternates::lender(&current) {
            Some(alt) if !seen.contains(&alt) && seen.len() < 16 => current = alt,
            _ => break,
        }
    }
    debug!("{} size: {total} KiB", repo.display());
    Ok(total)
}

/// Read a small file below `dir`; `None` when it cannot be read.
fn read_small(dir: &Dir, name: &str) -> Option<String> {
    let mut text = String::new();
    dir.open_file(name)
        .ok()?
        .take(64 * 1024)
        .read_to_string(&mut text)
        .ok()?;
    Some(text)
}

/// Write `data` into `name` below `dir` atomically, unless it holds it.
fn put(dir: &Dir, name: &str, data: &str) -> Result<(), Error> {
    if read_small(dir, name).as_deref() == Some(data) {
        return Ok(());
    }
    fsutil::write_atomic(&dir.io_path().join(name), data.as_bytes()).map_err(|source| {
        Error::Write {
            path: dir.shown_join(name),
            source,
        }
    })
}

/// Bundle the repository of manifest key `key`, if its refs changed.
pub fn bundle_one(
    settings: &Settings,
    git: &Git,
    out: &Dir,
    key: &str,
) -> Result<Outcome, Error> {
    let bad = |reason| Error::BadKey {
        key: key.to_string(),
        reason,
    };
    let name = key.trim_start_matches('/');
    let rel = plain_relative(name).map_err(bad)?;
    let bdir = bundle_dir_of(key).map_err(bad)?;
    let repo_path = settings.toplevel.join(&rel);
    if !repo::is_bare_repo(&repo_path) {
        return Err(Error::NotARepo(repo_path));
    }
    let Some(_lock) = lock::acquire_repo(&repo_path, Wait::No)? else {
        info!("  skipped: {name} (locked by another process; retried next run)");
        return Ok(Outcome::Skipped);
    };
    let snapshot =
        refs::snapshot(git, &repo_path, &GlobList::default(), false).map_err(|source| {
            Error::Git {
                path: repo_path.clone(),
                source,
            }
        })?;
    let Some(fingerprint) = snapshot.fingerprint else {
        info!("  skipped: {name} (no refs)");
        return Ok(Outcome::Skipped);
    };
    debug!("{name} fingerprint is {fingerprint}");

    let existing = match out.open_dir(&bdir) {
        Ok(d) => Some(d),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    if let Some(dir) = &existing {
        let has_bundle = dir.kind_of(BUNDLE_FILE)? == Some(Kind::File);
        let recorded = read_small(dir, FINGERPRINT_FILE);
        if has_bundle && recorded.as_deref().map(str::trim) == Some(fingerprint.as_str()) {
            // A bundle made by grokmirror 2.0.12 gets its list here.
            put(dir, BUNDLE_LIST_FILE, &bundle_list_text())?;
            info!("  skipped: {name} (unchanged)");
            return Ok(Outcome::Unchanged);
        }
    }

    let size_gib = repo_size_kib(git, &repo_path)? as f64 / 1024.0 / 1024.0;
    if size_gib > settings.maxsize as f64 {
        info!(
            "  skipped: {name} ({} > {})",
            py_repr(size_gib),
            settings.maxsize
        );
        return Ok(Outcome::Skipped);
    }

    let dir = match existing {
        Some(d) => d,
        None => out.create_dir_all(&bdir)?,
    };
    let shown = settings.outdir.join(&bdir).join(BUNDLE_FILE);
    info!(" generate: {}", shown.display());
    let target = dir.io_path().join(BUNDLE_FILE);
    // We hold the repository's lock, so no other grok-bundle is writing
    // this bundle: temp files left here were left by a killed run.
    fsutil::remove_stale_temps(&target);
    write_bundle(settings, git, &repo_path, &target, &shown)?;
    put(&dir, FINGERPRINT_FILE, &fingerprint)?;
    put(&dir, BUNDLE_LIST_FILE, &bundle_list_text())?;
    Ok(Outcome::Generated)
}

/// Run `git bundle create -` into a temp file beside `target` and rename it
/// over `target` once git succeeded and the data is on disk.
fn write_bundle(
    settings: &Settings,
    git: &Git,
    repo_path: &Path,
    target: &Path,
    shown: &Path,
) -> Result<(), Error> {
    let mut git_failure: Option<Error> = None;
    let written = fsutil::write_atomic_with(target, |file| {
        let mut args: Vec<&OsStr> = settings.gitargs.iter().map(OsStr::new).collect();
        args.extend(["bundle", "create", "-"].map(OsStr::new));
        args.extend(settings.revlistargs.iter().map(OsStr::new));
        debug!("Full git args: {args:?}");
        let mut cmd = git.command(Some(repo_path), &args);
        cmd.stdout(Stdio::from(file.try_clone()?));
        cmd.stderr(Stdio::piped());
        let output = cmd.output().inspect_err(|e| {
            git_failure = Some(Error::Git {
                path: repo_path.to_path_buf(),
                source: git::Error::Spawn {
                    bin: git.binary().to_path_buf(),
                    cause: std::io::Error::new(e.kind(), e.to_string()),
                },
            });
        })?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            // git's first fatal/error line says why; usage text follows it.
            let why = stderr
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("fatal:") || l.starts_with("error:"))
                .or_else(|| stderr.lines().map(str::trim).rfind(|l| !l.is_empty()))
                .unwrap_or("no message");
            git_failure = Some(Error::Bundle {
                path: repo_path.to_path_buf(),
                stderr: format!("{why} ({})", output.status),
            });
            return Err(std::io::Error::other("git bundle create failed"));
        }
        Ok(())
    });
    match (written, git_failure) {
        (Ok(()), _) => Ok(()),
        (Err(_), Some(e)) => Err(e),
        (Err(source), None) => Err(Error::Write {
            path: shown.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_dirs_like_the_reference() {
        assert_eq!(bundle_dir_of("/pub/a/x.git").unwrap(), Path::new("pub/a/x"));
        // grokmirror removes every ".git", not only the suffix.
        assert_eq!(
            bundle_dir_of("/foo.github/y.git").unwrap(),
            Path::new("foohub/y")
        );
        assert_eq!(bundle_dir_of("/plain").unwrap(), Path::new("plain"));
        assert!(bundle_dir_of("/.git").is_err());
        assert!(bundle_dir_of("/a/../b.git").is_err());
        assert!(bundle_dir_of("/").is_err());
        assert!(bundle_dir_of("/a\0b.git").is_err());
    }

    #[test]
    fn bundle_list_is_git_config() {
        let t = bundle_list_text();
        assert!(t.starts_with("[bundle]\n\tversion = 1\n\tmode = all\n"));
        assert!(t.contains("[bundle \"clone\"]\n\turi = clone.bundle\n"));
    }
}
