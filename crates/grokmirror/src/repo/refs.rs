//! Reading a repository's refs: the fingerprint (SPEC §1.2) and the newest
//! committer date. In-process where we can be sure to see what git sees
//! (refs read from the files backend, objects through libgit2's object
//! database), through the git CLI otherwise (reftable ref storage, SHA-256
//! objects, unknown extensions, anything irregular), so that the result
//! always equals what `git show-ref | sha1sum` gives.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Once;

use sha1::{Digest, Sha1};

use crate::config::glob::GlobList;
use crate::git::{self, Git};

/// How a snapshot was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotSource {
    /// Read in-process with libgit2.
    InProcess,
    /// Read with the git command-line tool.
    GitCli,
}

/// What we know about a repository's refs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefsSnapshot {
    /// SHA-1 (hex) of `git show-ref` output minus ignored refs; `None` when
    /// the repo has no refs or git could not list them.
    pub fingerprint: Option<String>,
    /// Newest committer date (Unix seconds) among refs that point at
    /// commits, when asked for and there is one.
    pub newest_commit: Option<i64>,
    /// Which path produced this.
    pub source: SnapshotSource,
}

/// Make libgit2 behave like `git --git-dir=...`: no ownership check (git
/// skips it for an explicit git dir too), and accept `preciousObjects`,
/// which only restricts deleting objects and so is safe for a reader.
pub(crate) fn init_libgit2() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        // SAFETY: called once, before any other libgit2 use in this process
        // can race with it (every libgit2 entry point here goes through
        // this first).
        unsafe {
            let _ = git2::opts::set_verify_owner_validation(false);
            let _ = git2::opts::set_extensions(&["preciousobjects"]);
        }
    });
}

/// Open a bare repository in-process, or `None` if libgit2 can't handle it.
pub fn open(repo: &Path) -> Option<git2::Repository> {
    init_libgit2();
    // Reftable repos carry a placeholder `refs/heads` layout libgit2 would
    // misread; leave them to git.
    if repo.join("reftable").is_dir() {
        return None;
    }
    git2::Repository::open_ext(
        repo,
        git2::RepositoryOpenFlags::NO_SEARCH
            | git2::RepositoryOpenFlags::BARE
            | git2::RepositoryOpenFlags::NO_DOTGIT,
        std::iter::empty::<&std::ffi::OsStr>(),
    )
    .ok()
}

/// Repository extensions that change nothing about how refs and objects are
/// read (or whose effect we detect some other way: SHA-256 ids, reftable).
const HARMLESS_EXTENSIONS: &[&str] = &[
    "preciousobjects",
    "noop",
    "worktreeconfig",
    "partialclone",
    "objectformat",
    "refstorage",
];

/// What we need from the repository's own config file.
pub(crate) struct RepoConfig {
    /// `gitweb.owner` as set in the repository.
    pub(crate) owner: Option<String>,
    /// Every extension it declares is one we can read past.
    pub(crate) readable: bool,
}

impl RepoConfig {
    /// Read `config` of the repo with libgit2's parser (quoting, includes);
    /// `None` when it can't be read.
    pub(crate) fn read(repo: &Path) -> Option<RepoConfig> {
        let cfg = crate::repo::git_config::open(repo).ok()?;
        let owner = cfg.get_string("gitweb.owner").ok();
        let mut readable = true;
        if let Ok(mut entries) = cfg.entries(Some("extensions\\..*")) {
            while let Some(Ok(entry)) = entries.next() {
                let key = entry.name().unwrap_or_default().to_ascii_lowercase();
                let value = entry.value().unwrap_or_default().to_ascii_lowercase();
                let known = key
                    .strip_prefix("extensions.")
                    .is_some_and(|k| HARMLESS_EXTENSIONS.contains(&k));
                let unusual_value = (key == "extensions.objectformat" && value != "sha1")
                    || (key == "extensions.refstorage" && value != "files");
                if !known || unusual_value {
                    readable = false;
                }
            }
        }
        Some(RepoConfig { owner, readable })
    }
}

/// Hash `git show-ref` output the way grokmirror does, leaving out lines
/// whose ref name matches `ignore`. `None` for empty output (no refs).
pub fn fingerprint_of_show_ref(output: &[u8], ignore: &GlobList) -> Option<String> {
    if output.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let mut hasher = Sha1::new();
    for line in output.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let name = line
            .iter()
            .position(|&b| b == b' ')
            .map(|p| &line[p + 1..])
            .unwrap_or_default();
        if !ignore.is_empty() && ignore.is_match(&String::from_utf8_lossy(name)) {
            continue;
        }
        hasher.update(line);
        hasher.update(b"\n");
    }
    Some(hex::encode(hasher.finalize()))
}

/// Take a snapshot of `repo`'s refs. `want_dates` also finds the newest
/// committer date (skip it when the caller uses "now" anyway).
pub fn snapshot(
    git: &Git,
    repo: &Path,
    ignore: &GlobList,
    want_dates: bool,
) -> Result<RefsSnapshot, git::Error> {
    let readable = RepoConfig::read(repo).is_some_and(|c| c.readable);
    let in_process = readable
        .then(|| snapshot_in_process(repo, ignore, want_dates))
        .flatten();
    match in_process {
        Some(snap) => Ok(snap),
        None => snapshot_cli(git, repo, ignore, want_dates),
    }
}

/// What a loose or packed ref holds.
enum Target {
    /// An object id (hex).
    Object(String),
    /// Another ref's name.
    Symbolic(String),
}

/// A SHA-1 object id in hex: exactly 40 lowercase hex digits.
fn is_sha1_hex(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Read the refs of a repository that uses the files backend straight from
/// `packed-refs` and `refs/`, with loose refs winning over packed ones and
/// symbolic refs resolved, sorted by name as git lists them. `None` when
/// anything is unusual (reftable, SHA-256 ids, a malformed or oddly named
/// ref, a symlink in `refs/`): git then decides.
fn read_files_refs(repo: &Path) -> Option<Vec<(String, String)>> {
    if repo.join("reftable").exists() {
        return None;
    }
    let mut refs: BTreeMap<String, Target> = BTreeMap::new();
    match std::fs::read_to_string(repo.join("packed-refs")) {
        Ok(text) => {
            for line in text.lines() {
                if line.starts_with('#') || line.starts_with('^') || line.is_empty() {
                    continue;
                }
                let (oid, name) = line.split_once(' ')?;
                if !is_sha1_hex(oid) {
                    return None;
                }
                refs.insert(name.to_string(), Target::Object(oid.to_string()));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(_) => return None,
    }
    read_loose_dir(&repo.join("refs"), "refs", &mut refs)?;

    let mut resolved = Vec::with_capacity(refs.len());
    for (name, target) in &refs {
        if !git2::Reference::is_valid_name(name) {
            return None;
        }
        let mut current = target;
        let mut depth = 0;
        let oid = loop {
            match current {
                Target::Object(oid) => break Some(oid.clone()),
                Target::Symbolic(next) if depth < 5 => {
                    depth += 1;
                    match refs.get(next) {
                        Some(t) => current = t,
                        // Dangling: git leaves it out silently.
                        None if next.starts_with("refs/") => break None,
                        None => return None,
                    }
                }
                Target::Symbolic(_) => return None,
            }
        };
        if let Some(oid) = oid {
            resolved.push((name.clone(), oid));
        }
    }
    // BTreeMap order is byte order of the names: git's order.
    Some(resolved)
}

/// Add the loose refs under `dir` (named `prefix/...`) to `refs`.
fn read_loose_dir(dir: &Path, prefix: &str, refs: &mut BTreeMap<String, Target>) -> Option<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(()),
        Err(_) => return None,
    };
    for entry in entries {
        let entry = entry.ok()?;
        let name = entry.file_name().into_string().ok()?;
        // git skips these while iterating loose refs.
        if name.starts_with('.') || name.ends_with(".lock") {
            continue;
        }
        let full = format!("{prefix}/{name}");
        let kind = entry.file_type().ok()?;
        if kind.is_dir() {
            read_loose_dir(&entry.path(), &full, refs)?;
        } else if kind.is_file() {
            let text = std::fs::read_to_string(entry.path()).ok()?;
            let text = text.trim_end_matches(['\n', '\r', ' ', '\t']);
            let target = match text.strip_prefix("ref: ") {
                Some(t) => Target::Symbolic(t.trim().to_string()),
                None if is_sha1_hex(text) => Target::Object(text.to_string()),
                None => return None,
            };
            refs.insert(full, target);
        } else {
            return None;
        }
    }
    Some(())
}

/// The object database of `repo` (its `objects` directory and whatever it
/// borrows through alternates), without opening the repository itself:
/// opening a repository reads and re-stats the user's and system's git
/// config every time, which dominated a walk over thousands of repos.
fn open_odb(repo: &Path) -> Option<git2::Odb<'static>> {
    init_libgit2();
    let odb = git2::Odb::new().ok()?;
    odb.add_disk_alternate(repo.join("objects").to_str()?)
        .ok()?;
    Some(odb)
}

/// The committer timestamp in a raw commit object.
fn committer_time(data: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(data).ok()?;
    for line in text.lines() {
        if line.is_empty() {
            break;
        }
        if let Some(ident) = line.strip_prefix("committer ") {
            let after = &ident[ident.rfind('>')? + 1..];
            return after.split_whitespace().next()?.parse().ok();
        }
    }
    None
}

/// Take a snapshot in-process; `None` means "ask git instead" (something we
/// might see differently from git, or an error). The caller has checked
/// that the repository declares no extension we can't read past
/// ([`snapshot`] does).
pub fn snapshot_in_process(
    repo: &Path,
    ignore: &GlobList,
    want_dates: bool,
) -> Option<RefsSnapshot> {
    let refs = read_files_refs(repo)?;
    if refs.is_empty() {
        return Some(RefsSnapshot {
            fingerprint: None,
            newest_commit: None,
            source: SnapshotSource::InProcess,
        });
    }
    let odb = open_odb(repo)?;
    let mut unique: HashSet<&str> = HashSet::with_capacity(refs.len());
    let mut newest: Option<i64> = None;
    for (_, oid) in &refs {
        if !unique.insert(oid) {
            continue;
        }
        let id = git2::Oid::from_str(oid).ok()?;
        // git refuses to list a ref to a missing object; reproduce exactly
        // whatever it does by asking it.
        let Ok((_, kind)) = odb.read_header(id) else {
            return None;
        };
        if want_dates && kind == git2::ObjectType::Commit {
            let object = odb.read(id).ok()?;
            let when = committer_time(object.data())?;
            newest = Some(newest.map_or(when, |n: i64| n.max(when)));
        }
    }
    let mut text = Vec::with_capacity(refs.len() * 64);
    for (name, oid) in &refs {
        text.extend_from_slice(oid.as_bytes());
        text.push(b' ');
        text.extend_from_slice(name.as_bytes());
        text.push(b'\n');
    }
    Some(RefsSnapshot {
        fingerprint: fingerprint_of_show_ref(&text, ignore),
        newest_commit: newest,
        source: SnapshotSource::InProcess,
    })
}

/// Take a snapshot with the git CLI: `git show-ref` for the fingerprint (any
/// failure, like a ref to a missing object, means no fingerprint, as in
/// grokmirror) and `for-each-ref` sorted by committer date for the newest.
pub fn snapshot_cli(
    git: &Git,
    repo: &Path,
    ignore: &GlobList,
    want_dates: bool,
) -> Result<RefsSnapshot, git::Error> {
    let shown = git.run(Some(repo), ["show-ref"])?;
    let fingerprint = if shown.success() {
        fingerprint_of_show_ref(&shown.stdout, ignore)
    } else {
        None
    };
    let mut newest = None;
    if want_dates && fingerprint.is_some() {
        let out = git.run(
            Some(repo),
            [
                "for-each-ref",
                "--sort=-committerdate",
                "--count=1",
                "--format=%(committerdate:unix)",
            ],
        )?;
        if out.success() {
            newest = out.stdout_str().parse::<i64>().ok();
        }
    }
    Ok(RefsSnapshot {
        fingerprint,
        newest_commit: newest,
        source: SnapshotSource::GitCli,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha1_of_show_ref_text() {
        let text = b"1111111111111111111111111111111111111111 refs/heads/main\n2222222222222222222222222222222222222222 refs/meta/config\n";
        let all = fingerprint_of_show_ref(text, &GlobList::default()).unwrap();
        assert_eq!(all, hex::encode(Sha1::digest(text)));
        let ignored = fingerprint_of_show_ref(text, &GlobList::new(["refs/meta/*"])).unwrap();
        assert_eq!(
            ignored,
            hex::encode(Sha1::digest(
                b"1111111111111111111111111111111111111111 refs/heads/main\n"
            ))
        );
        assert_eq!(fingerprint_of_show_ref(b"", &GlobList::default()), None);
    }
}
