//! The files grokmirror keeps inside and beside a bare repository
//! (SPEC §1.3, §1.5), and the few repository facts read straight from disk.

pub mod alternates;
pub mod git_config;
pub mod grace;
pub mod inspect;
pub mod object_counts;
pub mod refs;
pub mod repack;
pub mod roots;
pub mod snapshot;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::git::{self, Git};
use crate::tree::fsutil;

/// Marker file of an object-storage repository.
pub const OBJSTORE_MARKER: &str = "grokmirror.objstore";
/// Fingerprint of the repo's refs as last computed.
pub const FINGERPRINT_FILE: &str = "grokmirror.fingerprint";
/// `modified` of the last pull.
pub const TIMESTAMP_FILE: &str = "grokmirror.timestamp";
/// A request (with its reason) that grok-pull re-clone this repository.
pub const RECLONE_FILE: &str = "grokmirror.reclone";
/// The last errors grok-fsck found.
pub const FSCK_ERR_FILE: &str = "grokmirror.fsck.err";
/// Cached root commits.
pub const ROOTS_FILE: &str = "grokmirror.roots";
/// Opt-out from object storage.
pub const DO_NOT_OBJSTORE_FILE: &str = "grokmirror.do-not-objstore";
/// A request for a full repack.
pub const REPACK_FILE: &str = "grokmirror.repack";
/// What grok-fsck writes in [`REPACK_FILE`] when it asks for a full repack
/// itself (a repository joined object storage): the deltas are good, reuse
/// them. Any other content (grokmirror writes an empty file, an operator
/// `touch`es it) asks for them to be recomputed.
pub const REPACK_REUSING_DELTAS: &[u8] = b"reuse deltas\n";

/// The full repack the repository at `path` asks for in [`REPACK_FILE`], if
/// any.
pub fn repack_request(path: &Path) -> Option<crate::repo::repack::Deltas> {
    use crate::repo::repack::Deltas;
    let mut buf = [0u8; 64];
    let n = std::fs::File::open(path.join(REPACK_FILE))
        .and_then(|mut f| std::io::Read::read(&mut f, &mut buf))
        .ok()?;
    Some(match &buf[..n] == REPACK_REUSING_DELTAS {
        true => Deltas::Reuse,
        false => Deltas::Recompute,
    })
}
/// Blob cache for the `blobs` merge strategy.
pub const BLOBS_FILE: &str = "grokmirror.blobs";
/// cgit's idle-time file, relative to the repo.
pub const AGEFILE: &str = "info/web/last-modified";
/// What git writes into a new repo's `description`; grokmirror treats any
/// description containing this as unset.
pub const DESCRIPTION_PLACEHOLDER: &[u8] = b"edit this file";
/// The HEAD file contents of a reftable repository (a placeholder).
pub const REFTABLE_HEAD_PLACEHOLDER: &str = "ref: refs/heads/.invalid";

/// Whether `path` looks like a bare repository: an `objects/` directory, a
/// `refs/` directory and a `HEAD` file (symlinks followed), as grokmirror
/// decides.
pub fn is_bare_repo(path: &Path) -> bool {
    path.join("objects").is_dir() && path.join("refs").is_dir() && path.join("HEAD").is_file()
}

/// Whether `path` is an object-storage repository (holds the marker file).
pub fn is_objstore_repo(path: &Path) -> bool {
    path.join(OBJSTORE_MARKER).exists()
}

/// The fingerprint stored in the repo, if any.
pub fn read_fingerprint(repo: &Path) -> Option<String> {
    recorded_fingerprint(fs::read(repo.join(FINGERPRINT_FILE)).ok()?)
}

/// The fingerprint recorded in the repository open as `dir`, if any (read
/// through the handle; never computed).
pub fn read_fingerprint_in(dir: &crate::tree::Dir) -> Option<String> {
    dir.read_small_file(FINGERPRINT_FILE, 1024)
        .and_then(recorded_fingerprint)
}

/// The fingerprint in the contents of a `grokmirror.fingerprint` file.
fn recorded_fingerprint(raw: Vec<u8>) -> Option<String> {
    let text = String::from_utf8(raw).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_string())
}

/// What a poll needs to know of the repository `name` in `parent` when
/// nothing may have changed: its recorded fingerprint (`None` when there
/// is none to read) and whether a re-clone was asked for, in two or three
/// system calls and without opening the repository itself. Anything but
/// "a recorded fingerprint, no re-clone" is for a closer look.
pub fn at_a_glance(parent: &crate::tree::Dir, name: &std::ffi::OsStr) -> (Option<String>, bool) {
    let repo = Path::new(name);
    let fingerprint = parent
        .glance_at_file(repo.join(FINGERPRINT_FILE), 1024)
        .and_then(recorded_fingerprint);
    let reclone = fingerprint.is_some() && parent.has_beneath(repo.join(RECLONE_FILE));
    (fingerprint, reclone)
}

/// [`fingerprint_on_disk`] of the repository open as `dir`, its recorded
/// fingerprint read through the handle (one open and read, no path to
/// resolve): what a poll of a large tree asks of every repository.
pub fn fingerprint_on_disk_in(git: &Git, dir: &crate::tree::Dir) -> Option<String> {
    dir.read_small_file(FINGERPRINT_FILE, 1024)
        .and_then(recorded_fingerprint)
        .or_else(|| fingerprint_on_disk(git, &dir.io_path()))
}

/// Store the fingerprint in the repo (no newline, as grokmirror writes it),
/// only touching the file when the value changed.
pub fn write_fingerprint(repo: &Path, fingerprint: &str) -> io::Result<bool> {
    fsutil::write_if_changed(&repo.join(FINGERPRINT_FILE), fingerprint.as_bytes())
}

/// The fingerprint of `repo` as grokmirror trusts it: the recorded one, or,
/// when none is recorded, computed from its refs now and recorded (as
/// grokmirror does). `None` when it has no refs or they cannot be read.
/// The one "fingerprint on disk" function: grok-pull's plan and grok-fsck
/// use it.
pub fn fingerprint_on_disk(git: &Git, repo: &Path) -> Option<String> {
    if let Some(fp) = read_fingerprint(repo) {
        return Some(fp);
    }
    // Quiet when the refs cannot be read: the caller decides what an
    // unknown fingerprint means (usually: fetch again).
    let fp = computed_fingerprint(git, repo).ok()??;
    if let Err(e) = write_fingerprint(repo, &fp) {
        tracing::debug!("cannot record the fingerprint of {}: {e}", repo.display());
    }
    Some(fp)
}

/// The fingerprint of every ref of `repo` as they are now, nothing
/// recorded; `Ok(None)` when it has no refs.
pub fn computed_fingerprint(git: &Git, repo: &Path) -> Result<Option<String>, git::Error> {
    refs::snapshot(git, repo, &crate::config::glob::GlobList::default(), false)
        .map(|snapshot| snapshot.fingerprint)
}

/// The fingerprint of `repo`'s refs as they are now (nothing recorded);
/// `None` when it has no refs. A failure to read them is logged.
pub fn fingerprint_now(git: &Git, repo: &Path) -> Option<String> {
    match computed_fingerprint(git, repo) {
        Ok(fingerprint) => fingerprint,
        Err(e) => {
            tracing::warn!("cannot read the refs of {}: {e}", repo.display());
            None
        }
    }
}

/// The `modified` recorded by the last pull, 0 when absent or unreadable.
pub fn read_timestamp(repo: &Path) -> i64 {
    fs::read_to_string(repo.join(TIMESTAMP_FILE))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(0)
}

/// Record `modified` in `grokmirror.timestamp` and cgit's agefile
/// (`YYYY-MM-DD HH:MM:SS\n`, local time).
pub fn write_timestamp_and_agefile(repo: &Path, modified: i64) -> io::Result<()> {
    fsutil::write_if_changed(&repo.join(TIMESTAMP_FILE), modified.to_string().as_bytes())?;
    let agefile = repo.join(AGEFILE);
    if let Some(dir) = agefile.parent() {
        fs::create_dir_all(dir)?;
    }
    let when = chrono::DateTime::from_timestamp(modified, 0)
        .map(|utc| utc.with_timezone(&chrono::Local))
        .map(|local| local.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| "1970-01-01 00:00:00".into());
    fsutil::write_if_changed(&agefile, format!("{when}\n").as_bytes())?;
    Ok(())
}

/// The repo's description as the manifest records it: the `description`
/// file with surrounding whitespace stripped, unless empty or git's
/// placeholder. Invalid UTF-8 is replaced, as grokmirror does.
pub fn read_description(repo: &Path) -> Option<String> {
    let raw = fs::read(repo.join("description")).ok()?;
    let trimmed = trim_ascii_whitespace(&raw);
    if trimmed.is_empty()
        || trimmed
            .windows(DESCRIPTION_PLACEHOLDER.len())
            .any(|w| w == DESCRIPTION_PLACEHOLDER)
    {
        return None;
    }
    Some(String::from_utf8_lossy(trimmed).into_owned())
}

/// Python's `bytes.strip()`: ASCII whitespace including vertical tab.
fn trim_ascii_whitespace(b: &[u8]) -> &[u8] {
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c);
    let start = b.iter().position(|c| !ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
    &b[start..end]
}

/// The `HEAD` file's contents, stripped. For a reftable repository, whose
/// HEAD file is only a placeholder, ask git for the real HEAD.
pub fn read_head(git: &Git, repo: &Path) -> Option<String> {
    let text = fs::read_to_string(repo.join("HEAD")).ok()?;
    let text = text.trim().to_string();
    if text == REFTABLE_HEAD_PLACEHOLDER && repo.join("reftable").is_dir() {
        return real_head(git, repo).ok().flatten().or(Some(text));
    }
    Some(text)
}

/// HEAD as git resolves it: `ref: <target>` when symbolic, the object id
/// when detached.
fn real_head(git: &Git, repo: &Path) -> Result<Option<String>, git::Error> {
    let sym = git.run(Some(repo), ["symbolic-ref", "-q", "HEAD"])?;
    if sym.success() {
        return Ok(Some(format!("ref: {}", sym.stdout_str())));
    }
    let detached = git.run(Some(repo), ["rev-parse", "-q", "--verify", "HEAD"])?;
    Ok(detached.success().then(|| detached.stdout_str()))
}

/// Failure to set up a repository.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A git command failed.
    #[error(transparent)]
    Git(#[from] git::Error),
    /// A file inside the repository could not be written.
    #[error("cannot write {path}: {cause}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        cause: io::Error,
    },
}

/// Initialize a new bare repository the way grokmirror does: `git init
/// --bare`, sample hooks removed, `gc.auto=0`, `FETCH_HEAD` a symlink to
/// `/dev/null`.
pub fn init_bare_repo(git: &Git, path: &Path) -> Result<(), Error> {
    let path_str = path.as_os_str();
    git.run_ok(
        None,
        [
            std::ffi::OsStr::new("init"),
            "--bare".as_ref(),
            "-q".as_ref(),
            path_str,
        ],
    )?;
    if let Ok(entries) = fs::read_dir(path.join("hooks")) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "sample") {
                let _ = fs::remove_file(entry.path());
            }
        }
    }
    git.run_ok(Some(path), ["config", "gc.auto", "0"])?;
    let fetch_head = path.join("FETCH_HEAD");
    let _ = fs::remove_file(&fetch_head);
    std::os::unix::fs::symlink("/dev/null", &fetch_head).map_err(|cause| Error::Io {
        path: fetch_head.clone(),
        cause,
    })?;
    Ok(())
}

/// What the library's unit tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::Path;

    use crate::git::Git;

    /// Give the bare repository `repo` a root commit (an empty tree) on
    /// `refs/heads/main`; its id.
    pub(crate) fn add_root_commit(git: &Git, repo: &Path) -> String {
        let tree = git
            .run_with_input(Some(repo), ["mktree"], Some(b""))
            .unwrap()
            .stdout_str();
        let commit = git
            .run_ok(Some(repo), ["commit-tree", "-m", "root", tree.as_str()])
            .unwrap()
            .stdout_str();
        git.run_ok(
            Some(repo),
            ["update-ref", "refs/heads/main", commit.as_str()],
        )
        .unwrap();
        commit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn description_rules() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        assert_eq!(read_description(r), None);
        fs::write(
            r.join("description"),
            "Unnamed repository; edit this file 'description' to name the repository.\n",
        )
        .unwrap();
        assert_eq!(read_description(r), None);
        fs::write(r.join("description"), "  \n").unwrap();
        assert_eq!(read_description(r), None);
        fs::write(r.join("description"), b"Linux kernel\xff\n").unwrap();
        assert_eq!(read_description(r).as_deref(), Some("Linux kernel\u{fffd}"));
    }

    #[test]
    fn timestamp_and_agefile() {
        let dir = tempfile::tempdir().unwrap();
        write_timestamp_and_agefile(dir.path(), 1_600_000_000).unwrap();
        assert_eq!(read_timestamp(dir.path()), 1_600_000_000);
        let age = fs::read_to_string(dir.path().join(AGEFILE)).unwrap();
        assert_eq!(age.len(), "2020-09-13 12:26:40\n".len());
        assert!(age.ends_with('\n'));
    }

    #[test]
    fn fingerprint_on_disk_is_recorded_once_then_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("r.git");
        let git = Git::from_env();
        git.run_ok(None, ["init", "-q", "--bare", repo.to_str().unwrap()])
            .unwrap();
        assert_eq!(fingerprint_on_disk(&git, &repo), None, "no refs");
        assert!(!repo.join(FINGERPRINT_FILE).exists());
        test_support::add_root_commit(&git, &repo);
        let now = fingerprint_now(&git, &repo).unwrap();
        assert_eq!(
            fingerprint_on_disk(&git, &repo).as_deref(),
            Some(now.as_str())
        );
        assert_eq!(read_fingerprint(&repo).as_deref(), Some(now.as_str()));
        // A recorded value is trusted as is, as grokmirror does.
        fs::write(repo.join(FINGERPRINT_FILE), "recorded").unwrap();
        assert_eq!(
            fingerprint_on_disk(&git, &repo).as_deref(),
            Some("recorded")
        );
        assert_eq!(fingerprint_now(&git, &repo), Some(now));
    }

    #[test]
    fn a_glance_gives_the_recorded_fingerprint_and_a_reclone_request() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("r.git");
        fs::create_dir_all(&repo).unwrap();
        let parent = crate::tree::Dir::open_root(dir.path()).unwrap();
        let name = std::ffi::OsStr::new("r.git");
        assert_eq!(
            at_a_glance(&parent, name),
            (None, false),
            "nothing recorded"
        );
        fs::write(repo.join(FINGERPRINT_FILE), "abc\n").unwrap();
        assert_eq!(at_a_glance(&parent, name), (Some("abc".into()), false));
        fs::write(repo.join(RECLONE_FILE), "Requested by grok-fsck").unwrap();
        assert_eq!(at_a_glance(&parent, name), (Some("abc".into()), true));
        fs::write(repo.join(FINGERPRINT_FILE), "  \n").unwrap();
        assert_eq!(at_a_glance(&parent, name).0, None, "blank is none");
    }
}
