//! One repository's bundle: decide whether it is needed, build it beside
//! the old one and rename it into place, then record its fingerprint and
//! write its bundle list.

use std::ffi::OsStr;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;

use grokmirror::config::glob::GlobList;
use grokmirror::git::{self, Git};
use grokmirror::lock::{self, Wait};
use grokmirror::repo;
use grokmirror::repo::refs;
use grokmirror::tree::fsutil;
use grokmirror::tree::{self, Dir, Kind};
use tracing::{debug, info};

use crate::incremental::{self, Header, INCREMENT_FILE};
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
    /// An increment came out bigger than [`incremental::worth_keeping`]
    /// allows; never reported: the full bundle is rebuilt instead.
    #[error("the increment would be {0} bytes")]
    IncrementTooBig(u64),
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

/// A bundle on disk: its header, mtime (seconds) and size.
#[derive(Debug, Clone)]
struct OnDisk {
    header: Header,
    mtime: i64,
    bytes: u64,
}

/// The metadata of the file `name` below `dir`, opened without following
/// a symlink.
fn metadata_of(dir: &Dir, name: &str) -> Result<(std::fs::File, std::fs::Metadata), Error> {
    let file = dir.open_file(name)?;
    let meta = file.metadata().map_err(|cause| tree::Error::Io {
        what: "stat",
        path: dir.shown_join(name),
        cause,
    })?;
    Ok((file, meta))
}

/// The mtime (seconds) of a bundle just written: its creation token.
fn written_at(dir: &Dir, name: &str) -> Result<i64, Error> {
    use std::os::unix::fs::MetadataExt;
    Ok(metadata_of(dir, name)?.1.mtime())
}

/// The bundle `name` below `dir`, when it is a regular file whose header
/// we understand.
fn on_disk(dir: &Dir, name: &str) -> Result<Option<OnDisk>, Error> {
    if dir.kind_of(name)? != Some(Kind::File) {
        return Ok(None);
    }
    let (mut file, meta) = metadata_of(dir, name)?;
    let mut head = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    while head.len() < incremental::MAX_HEADER_BYTES {
        let n = match file.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // The blank line may straddle two reads.
        let from = head.len().saturating_sub(1);
        head.extend_from_slice(&chunk[..n]);
        if head[from..].windows(2).any(|w| w == b"\n\n") {
            break;
        }
    }
    use std::os::unix::fs::MetadataExt;
    Ok(incremental::parse_header(&head).ok().map(|header| OnDisk {
        header,
        mtime: meta.mtime(),
        bytes: meta.len(),
    }))
}

/// The increment's creation token when it still belongs to `full`; a
/// stale one (the full bundle was rebuilt by somebody else) is removed.
fn live_increment(dir: &Dir, full: &OnDisk) -> Result<Option<i64>, Error> {
    let Some(inc) = on_disk(dir, INCREMENT_FILE)? else {
        return Ok(None);
    };
    if incremental::belongs_to(&inc.header, inc.mtime, &full.header, full.mtime) {
        return Ok(Some(inc.mtime));
    }
    info!(
        "  removed: {} (older than its full bundle)",
        dir.shown_join(INCREMENT_FILE).display()
    );
    dir.remove_file(INCREMENT_FILE.as_ref())?;
    Ok(None)
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
pub fn bundle_one(settings: &Settings, git: &Git, out: &Dir, key: &str) -> Result<Outcome, Error> {
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
    let full = match &existing {
        Some(dir) => on_disk(dir, BUNDLE_FILE)?,
        None => None,
    };
    if let (Some(dir), Some(full)) = (&existing, &full) {
        let recorded = read_small(dir, FINGERPRINT_FILE);
        if recorded.as_deref().map(str::trim) == Some(fingerprint.as_str()) {
            // A bundle made by grokmirror 2.0.12 gets its list here.
            let increment = live_increment(dir, full)?;
            let list = incremental::list_text(BUNDLE_FILE, full.mtime, increment);
            put(dir, BUNDLE_LIST_FILE, &list)?;
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
    // We hold the repository's lock, so no other grok-bundle is writing
    // these bundles: temp files left here were left by a killed run.
    fsutil::remove_stale_temps(&dir.io_path().join(BUNDLE_FILE));
    fsutil::remove_stale_temps(&dir.io_path().join(INCREMENT_FILE));
    if let Some(full) = &full {
        if let Some(token) = increment(settings, git, &repo_path, &dir, &bdir, full)? {
            let list = incremental::list_text(BUNDLE_FILE, full.mtime, Some(token));
            put(&dir, BUNDLE_LIST_FILE, &list)?;
            put(&dir, FINGERPRINT_FILE, &fingerprint)?;
            return Ok(Outcome::Generated);
        }
    }
    let shown = settings.outdir.join(&bdir).join(BUNDLE_FILE);
    info!(" generate: {}", shown.display());
    let target = dir.io_path().join(BUNDLE_FILE);
    write_bundle(
        settings,
        git,
        &repo_path,
        &target,
        &shown,
        &settings.revlistargs,
        None,
    )?;
    let token = written_at(&dir, BUNDLE_FILE)?;
    put(
        &dir,
        BUNDLE_LIST_FILE,
        &incremental::list_text(BUNDLE_FILE, token, None),
    )?;
    if dir.kind_of(INCREMENT_FILE)?.is_some() {
        dir.remove_file(INCREMENT_FILE.as_ref())?;
    }
    put(&dir, FINGERPRINT_FILE, &fingerprint)?;
    Ok(Outcome::Generated)
}

/// Write what is new since `full` as the increment; its creation token, or
/// `None` when the full bundle should be rebuilt instead (nothing new to
/// bundle, a history that lost the full bundle's tips, or an increment
/// past a quarter of the full bundle).
fn increment(
    settings: &Settings,
    git: &Git,
    repo_path: &Path,
    dir: &Dir,
    bdir: &Path,
    full: &OnDisk,
) -> Result<Option<i64>, Error> {
    if full.header.tips.is_empty() || !full.header.prerequisites.is_empty() {
        return Ok(None);
    }
    let shown = settings.outdir.join(bdir).join(INCREMENT_FILE);
    let args = incremental::increment_args(&settings.revlistargs, &full.header);
    let limit = full.bytes / incremental::MAX_INCREMENT_SHARE;
    let target = dir.io_path().join(INCREMENT_FILE);
    match write_bundle(
        settings,
        git,
        repo_path,
        &target,
        &shown,
        &args,
        Some(limit),
    ) {
        Ok(()) => {}
        Err(Error::IncrementTooBig(bytes)) => {
            info!(
                "  rebuild: {} (an increment of {bytes} bytes is over a quarter of it)",
                shown.with_file_name(BUNDLE_FILE).display()
            );
            return Ok(None);
        }
        // git refuses an empty bundle (a new ref on old commits, a deleted
        // ref); the full bundle is rebuilt, which reports real failures.
        Err(e) => {
            debug!("no increment for {}: {e}", repo_path.display());
            return Ok(None);
        }
    }
    info!(" generate: {} (on {BUNDLE_FILE})", shown.display());
    Ok(Some(written_at(dir, INCREMENT_FILE)?))
}

/// Run `git bundle create -` into a temp file beside `target` and rename it
/// over `target` once git succeeded and the data is on disk.
fn write_bundle(
    settings: &Settings,
    git: &Git,
    repo_path: &Path,
    target: &Path,
    shown: &Path,
    revlistargs: &[String],
    max_bytes: Option<u64>,
) -> Result<(), Error> {
    let mut git_failure: Option<Error> = None;
    let written = fsutil::write_atomic_with(target, |file| {
        let mut args: Vec<&OsStr> = settings.gitargs.iter().map(OsStr::new).collect();
        args.extend(["bundle", "create", "-"].map(OsStr::new));
        args.extend(revlistargs.iter().map(OsStr::new));
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
        let bytes = file.metadata()?.len();
        if max_bytes.is_some_and(|max| bytes > max) {
            git_failure = Some(Error::IncrementTooBig(bytes));
            return Err(std::io::Error::other("increment too big"));
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
}
