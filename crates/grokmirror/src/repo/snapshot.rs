//! Snapshots of a mirrored repository for the clones that lean on it.
//!
//! A snapshot is a new bare repository beside the mirror (never inside its
//! top level) whose refs are a copy of the mirrored repository's at one
//! moment and whose objects are hard links to the files of the repository
//! and of every repository it borrows from (its object storage). Pack and
//! loose-object files are never rewritten in place by git, only replaced
//! or deleted, so a hard link keeps the snapshot's objects alive whatever
//! the mirror's next fetch, repack or prune does, and costs no disk until
//! then. It is taken under the locks of the repository and of its lenders
//! (the caller passes the guards), so no fetch or repack is half-seen; it
//! is built under a hidden name and renamed into place, so a consumer
//! never sees half a snapshot.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::lock::RepoLock;
use crate::tree::{self, Dir, Kind};

/// The file that marks a directory as one of our snapshots: what it is a
/// snapshot of and when it was taken. Expiry only ever removes directories
/// that hold it.
pub const MARKER_FILE: &str = "grokmirror.snapshot";

/// The most directories below `refs/` we follow (refs nest by `/`).
const MAX_REF_DEPTH: usize = 32;
/// The most repositories on one borrowing chain (repository, its object
/// storage, ...): a cycle or an absurd chain stops here.
pub const MAX_LENDERS: usize = 4;

/// Failure to take or expire a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read, linked or written.
    #[error(transparent)]
    Tree(#[from] tree::Error),
    /// The snapshot directory is on another file system than the mirror.
    #[error("{} is on another file system than {}; snapshots are hard links and need one file system (choose a snapshot directory on the mirror's)", .snapshots.display(), .repo.display())]
    CrossDevice {
        /// The repository.
        repo: PathBuf,
        /// The snapshot directory.
        snapshots: PathBuf,
    },
    /// The lock guards passed do not cover the repositories worked on.
    #[error("{} must be locked while a snapshot of it is taken", .0.display())]
    NotLocked(PathBuf),
}

/// What a snapshot is of, and when it was taken: the contents of
/// [`MARKER_FILE`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The manifest key of the repository.
    pub source: String,
    /// Seconds since the epoch when it was taken.
    pub taken_at: u64,
}

impl Marker {
    /// A marker for `source` taken at `when`.
    pub fn new(source: &str, when: SystemTime) -> Marker {
        Marker {
            source: source.to_string(),
            taken_at: when
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
        }
    }

    /// The file's text: `source = <key>` and `taken_at = <seconds>` lines.
    pub fn render(&self) -> String {
        format!("source = {}\ntaken_at = {}\n", self.source, self.taken_at)
    }

    /// Read a marker file's text; `None` when it is not one of ours.
    pub fn parse(text: &str) -> Option<Marker> {
        let mut source = None;
        let mut taken_at = None;
        for line in text.lines() {
            let (k, v) = line.split_once('=')?;
            match k.trim() {
                "source" => source = Some(v.trim().to_string()),
                "taken_at" => taken_at = v.trim().parse().ok(),
                _ => {}
            }
        }
        Some(Marker {
            source: source?,
            taken_at: taken_at?,
        })
    }

    /// Whether a snapshot with this marker is older than `max_age` at `now`.
    pub fn expired(&self, now: SystemTime, max_age: Duration) -> bool {
        let now = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        now.saturating_sub(self.taken_at) > max_age.as_secs()
    }
}

/// The directory name of a snapshot of `repo_name` taken at `when`:
/// `<name>@<UTC time to the microsecond>`, so names sort by age and two
/// snapshots of one repository never collide.
pub fn snapshot_name(repo_name: &OsStr, when: SystemTime) -> OsString {
    let stamp = chrono::DateTime::<chrono::Utc>::from(when).format("%Y%m%dT%H%M%S%.6fZ");
    let mut name = repo_name.to_os_string();
    name.push(format!("@{stamp}"));
    name
}

/// The hidden name a snapshot is built under before it is renamed into place.
pub fn partial_name(final_name: &OsStr) -> OsString {
    let mut name = OsString::from(".");
    name.push(final_name);
    name.push(".partial");
    name
}

/// Whether the file `name` of `objects/pack` goes into a snapshot: packs
/// and what describes one pack (index, reverse index, cruft mtimes). Left
/// out: bitmaps and multi-pack indexes (they describe the set of packs of
/// one object directory, and a snapshot merges several), keep and
/// promisor markers, and temporary files of a running git.
pub fn is_linked_pack_file(name: &[u8]) -> bool {
    if !name.starts_with(b"pack-") {
        return false;
    }
    [&b".pack"[..], b".idx", b".rev", b".mtimes"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Whether a name under `refs/` (or `reftable/`) is copied: not a lock file
/// of a running git.
fn is_copied_ref_name(name: &[u8]) -> bool {
    !name.ends_with(b".lock")
}

/// What taking a snapshot did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Taken {
    /// Object files hard-linked (packs, indexes, loose objects).
    pub linked_files: u64,
    /// Their size: what a copy would have cost.
    pub linked_bytes: u64,
    /// Small files copied (HEAD, config, refs).
    pub copied_files: u64,
}

/// One repository of the chain a snapshot draws objects from: its open
/// directory and the guard of its lock.
#[derive(Debug, Clone, Copy)]
pub struct Locked<'a> {
    /// The repository's directory.
    pub dir: &'a Dir,
    /// Its lock, held.
    pub lock: &'a RepoLock,
}

fn check_locked(repo: Locked<'_>) -> Result<(), Error> {
    // The guard names the repository by its shown path, as the handle does.
    if repo.lock.covers(repo.dir.shown()) {
        Ok(())
    } else {
        Err(Error::NotLocked(repo.dir.shown().to_path_buf()))
    }
}

/// Take a snapshot of `source` as `name` in `dest_parent`: its refs, HEAD
/// and config copied, the objects of `source` and of each of `lenders` (the
/// repositories it borrows from, all locked by the caller) hard-linked. It
/// is built as [`partial_name`] and renamed to `name` when complete; on
/// failure the partial copy is removed.
pub fn take(
    source: Locked<'_>,
    lenders: &[Locked<'_>],
    dest_parent: &Dir,
    name: &OsStr,
    marker: &Marker,
) -> Result<Taken, Error> {
    check_locked(source)?;
    for lender in lenders {
        check_locked(*lender)?;
    }
    same_device(source.dir, dest_parent)?;
    let partial = partial_name(name);
    // A partial copy of an earlier, killed run is ours to replace.
    dest_parent.remove_tree(&partial)?;
    let result = build(source, lenders, dest_parent, &partial, marker);
    match result {
        Ok(taken) => {
            dest_parent.rename_new(&partial, dest_parent, name)?;
            Ok(taken)
        }
        Err(e) => {
            let _ = dest_parent.remove_tree(&partial);
            Err(e)
        }
    }
}

fn same_device(repo: &Dir, dest: &Dir) -> Result<(), Error> {
    let dev = |d: &Dir| rustix::fs::fstat(d).map(|st| st.st_dev);
    match (dev(repo), dev(dest)) {
        (Ok(a), Ok(b)) if a == b => Ok(()),
        (Ok(_), Ok(_)) => Err(Error::CrossDevice {
            repo: repo.shown().to_path_buf(),
            snapshots: dest.shown().to_path_buf(),
        }),
        (Err(e), _) | (_, Err(e)) => Err(tree::Error::Io {
            what: "inspect",
            path: dest.shown().to_path_buf(),
            cause: e.into(),
        }
        .into()),
    }
}

fn build(
    source: Locked<'_>,
    lenders: &[Locked<'_>],
    dest_parent: &Dir,
    partial: &OsStr,
    marker: &Marker,
) -> Result<Taken, Error> {
    let dest = dest_parent.create_dir_all(partial)?;
    // The marker first: a partial copy left by a kill is recognisably ours.
    crate::tree::fsutil::write_atomic(
        &dest.io_path().join(MARKER_FILE),
        marker.render().as_bytes(),
    )
    .map_err(|cause| tree::Error::Io {
        what: "write",
        path: dest.shown_join(MARKER_FILE),
        cause,
    })?;
    let mut taken = Taken::default();
    for small in ["HEAD", "config", "packed-refs", "shallow"] {
        let name = OsStr::new(small);
        if source.dir.kind_of(name)?.is_some() {
            source.dir.copy_file_into(name, &dest, name)?;
            taken.copied_files += 1;
        }
    }
    for refs in ["refs", "reftable"] {
        if source.dir.kind_of(refs)? == Some(Kind::Dir) {
            let from = source.dir.open_dir(refs)?;
            let to = dest.create_dir_all(refs)?;
            copy_refs(&from, &to, 0, &mut taken)?;
        }
    }
    // git wants refs/ even when all refs are packed or in a reftable.
    dest.create_dir_all("refs")?;
    let objects = dest.create_dir_all("objects")?;
    let packs = objects.create_dir_all("pack")?;
    for repo in std::iter::once(&source).chain(lenders) {
        if repo.dir.kind_of("objects")? != Some(Kind::Dir) {
            continue;
        }
        let from = repo.dir.open_dir("objects")?;
        link_objects(&from, &objects, &packs, &mut taken)?;
    }
    Ok(taken)
}

fn copy_refs(from: &Dir, to: &Dir, depth: usize, taken: &mut Taken) -> Result<(), Error> {
    if depth > MAX_REF_DEPTH {
        return Err(tree::Error::NotBeneath(from.shown().to_path_buf()).into());
    }
    for name in from.names()? {
        if !is_copied_ref_name(&name) {
            continue;
        }
        let name = OsStr::from_bytes(&name);
        match from.kind_of(name)? {
            Some(Kind::Dir) => {
                let sub_to = to.create_dir_all(name)?;
                copy_refs(&from.open_dir(name)?, &sub_to, depth + 1, taken)?;
            }
            Some(Kind::File) => {
                from.copy_file_into(name, to, name)?;
                taken.copied_files += 1;
            }
            // A symlink or a socket among the refs is no ref of git's
            // today; it is left out rather than followed.
            _ => tracing::warn!(
                "{}: not a regular file, left out of the snapshot",
                from.shown_join(name).display()
            ),
        }
    }
    Ok(())
}

fn link_objects(from: &Dir, objects: &Dir, packs: &Dir, taken: &mut Taken) -> Result<(), Error> {
    if from.kind_of("pack")? == Some(Kind::Dir) {
        let from_packs = from.open_dir("pack")?;
        for name in from_packs.names()? {
            if is_linked_pack_file(&name) {
                link_one(&from_packs, OsStr::from_bytes(&name), packs, taken)?;
            }
        }
    }
    for fanout in from.names()? {
        if !crate::repo::object_counts::is_fanout_dir_name(&fanout) {
            continue;
        }
        let fanout = OsStr::from_bytes(&fanout);
        if from.kind_of(fanout)? != Some(Kind::Dir) {
            continue;
        }
        let from_dir = from.open_dir(fanout)?;
        let to_dir = objects.create_dir_all(fanout)?;
        for name in from_dir.names()? {
            // Loose objects are named by the rest of their id; git's
            // temporary files (tmp_obj_*) are not objects yet.
            if name.iter().all(u8::is_ascii_hexdigit) {
                link_one(&from_dir, OsStr::from_bytes(&name), &to_dir, taken)?;
            }
        }
    }
    Ok(())
}

fn link_one(from: &Dir, name: &OsStr, to: &Dir, taken: &mut Taken) -> Result<(), Error> {
    // The same pack can be in a member and in its object storage during a
    // move; the first copy is as good as the second.
    if to.kind_of(name)?.is_some() {
        return Ok(());
    }
    match from.hard_link_into(name, to, name) {
        Ok(()) => {}
        // git deleted it between listing and linking: a redundant pack or
        // a loose object now packed, whose objects are in what we link.
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    taken.linked_files += 1;
    taken.linked_bytes += rustix::fs::statat(to, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW)
        .map(|st| st.st_size as u64)
        .unwrap_or(0);
    Ok(())
}

/// A snapshot found under a snapshot directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its path relative to the snapshot directory.
    pub relative: PathBuf,
    /// Its marker.
    pub marker: Marker,
    /// Whether it is a partial copy left by an interrupted run.
    pub partial: bool,
}

/// The most directories deep a snapshot is looked for (keys nest).
const MAX_FIND_DEPTH: usize = 16;

/// Every snapshot below `root` (directories holding a [`MARKER_FILE`] that
/// parses), without following symlinks and without descending into a
/// snapshot.
pub fn find(root: &Dir) -> Result<Vec<Found>, Error> {
    let mut found = Vec::new();
    find_in(root, Path::new(""), 0, &mut found)?;
    found.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(found)
}

fn find_in(dir: &Dir, rel: &Path, depth: usize, found: &mut Vec<Found>) -> Result<(), Error> {
    if depth > MAX_FIND_DEPTH {
        return Ok(());
    }
    for name in dir.names()? {
        let name = OsStr::from_bytes(&name);
        if dir.kind_of(name)? != Some(Kind::Dir) {
            continue;
        }
        let sub = dir.open_dir(name)?;
        if let Some(marker) = read_marker(&sub) {
            let partial =
                name.as_bytes().starts_with(b".") && name.as_bytes().ends_with(b".partial");
            found.push(Found {
                relative: rel.join(name),
                marker,
                partial,
            });
            continue;
        }
        find_in(&sub, &rel.join(name), depth + 1, found)?;
    }
    Ok(())
}

fn read_marker(dir: &Dir) -> Option<Marker> {
    use std::io::Read;
    let mut text = String::new();
    // A marker is two short lines; anything long is not ours.
    dir.open_file(MARKER_FILE)
        .ok()?
        .take(4096)
        .read_to_string(&mut text)
        .ok()?;
    Marker::parse(&text)
}

/// The snapshots to remove at `now`: those older than `max_age`. A partial
/// copy is removed once it is older than `max_age` too (it may be a run in
/// progress until then).
pub fn expired(found: &[Found], now: SystemTime, max_age: Duration) -> Vec<&Found> {
    found
        .iter()
        .filter(|f| f.marker.expired(now, max_age))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_round_trip_and_refusals() {
        let m = Marker::new(
            "/pub/a.git",
            UNIX_EPOCH + Duration::from_secs(1_700_000_000),
        );
        assert_eq!(m.render(), "source = /pub/a.git\ntaken_at = 1700000000\n");
        assert_eq!(Marker::parse(&m.render()), Some(m));
        assert_eq!(Marker::parse("source = /a.git\n"), None);
        assert_eq!(Marker::parse("taken_at = 12\n"), None);
        assert_eq!(Marker::parse("garbage\n"), None);
        assert_eq!(Marker::parse("source = /a.git\ntaken_at = soon\n"), None);
    }

    #[test]
    fn expiry_is_strictly_older_than_the_limit() {
        let m = Marker::new("/a.git", UNIX_EPOCH + Duration::from_secs(1000));
        let day = Duration::from_secs(86400);
        assert!(!m.expired(UNIX_EPOCH + Duration::from_secs(1000 + 86400), day));
        assert!(m.expired(UNIX_EPOCH + Duration::from_secs(1001 + 86400), day));
        // A clock set back never expires anything.
        assert!(!m.expired(UNIX_EPOCH, day));
        let found = vec![
            Found {
                relative: "a.git@old".into(),
                marker: m.clone(),
                partial: false,
            },
            Found {
                relative: "a.git@new".into(),
                marker: Marker {
                    taken_at: 90_000,
                    ..m
                },
                partial: false,
            },
        ];
        let gone = expired(&found, UNIX_EPOCH + Duration::from_secs(90_000), day);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].relative, Path::new("a.git@old"));
    }

    #[test]
    fn which_pack_files_are_linked() {
        for yes in [
            "pack-1a2b.pack",
            "pack-1a2b.idx",
            "pack-1a2b.rev",
            "pack-1a2b.mtimes",
        ] {
            assert!(is_linked_pack_file(yes.as_bytes()), "{yes}");
        }
        for no in [
            "pack-1a2b.bitmap",
            "pack-1a2b.keep",
            "pack-1a2b.promisor",
            "multi-pack-index",
            "multi-pack-index-1a2b.bitmap",
            "tmp_pack_XXXX",
            ".tmp-123-pack-1a2b.pack",
        ] {
            assert!(!is_linked_pack_file(no.as_bytes()), "{no}");
        }
        assert!(crate::repo::object_counts::is_fanout_dir_name(b"0a"));
        assert!(!crate::repo::object_counts::is_fanout_dir_name(b"0A"));
        assert!(!crate::repo::object_counts::is_fanout_dir_name(b"info"));
        assert!(!crate::repo::object_counts::is_fanout_dir_name(b"pack"));
        assert!(!is_copied_ref_name(b"main.lock"));
        assert!(is_copied_ref_name(b"main"));
    }

    #[test]
    fn names_sort_by_time_and_hide_partials() {
        let t1 = UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_001);
        let t2 = UNIX_EPOCH + Duration::from_micros(1_700_000_000_000_002);
        let a = snapshot_name(OsStr::new("git.git"), t1);
        let b = snapshot_name(OsStr::new("git.git"), t2);
        assert_eq!(a, OsStr::new("git.git@20231114T221320.000001Z"));
        assert!(a < b);
        assert_eq!(
            partial_name(&a),
            OsStr::new(".git.git@20231114T221320.000001Z.partial")
        );
    }
}
