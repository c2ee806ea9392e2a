//! `[fsck] consumer_grace`: how long an object that was reachable in the
//! mirror stays on disk after it stopped being reachable, so that clones
//! leaning on the mirror (`--shared`, `--reference`, alternates) do not
//! lose what they borrowed when the origin force-pushes or deletes a
//! branch.
//!
//! The mechanism is git's own: unreachable objects go into a cruft pack
//! (`git repack --cruft`, git 2.37+), which records a time for each object
//! and drops the ones older than `--cruft-expiration`. Git takes that time
//! from the pack or loose file the object was in, which says when it was
//! last written, not when it was last reachable: an object cloned months
//! ago and orphaned by this morning's force-push would look months old.
//! So before such a repack every object that may have been reachable until
//! now (those in ordinary packs and loose ones) is freshened to now; those
//! already in a cruft pack were unreachable at an earlier repack and keep
//! that earlier time. The disk still shrinks: once the grace has passed
//! since the repack that found an object unreachable, the next repack
//! drops it.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::repo::object_counts::{is_fanout_dir_name, is_loose_object_name};

/// The shortest expiry ever used: objects younger than a day may be about
/// to be referenced by a push or fetch in progress (grokmirror's
/// `yesterday`).
pub const MIN_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// The first git that writes cruft packs.
pub const CRUFT_GIT: crate::git::GitVersion = crate::git::GitVersion(2, 37, 0);

/// What a repack or prune may do with unreachable objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Unreachable {
    /// `consumer_grace = 0`: grokmirror's rules (objects unreachable and
    /// older than a day may go, object storage drops them at once when its
    /// members allow it).
    #[default]
    GrokmirrorRules,
    /// Keep, in cruft packs, what was reachable at or after this moment
    /// (seconds since the epoch); drop the rest.
    CruftSince(i64),
    /// A grace is asked for but this git cannot write cruft packs: keep
    /// every unreachable object (the disk does not shrink).
    KeepAll,
}

impl Unreachable {
    /// The rule for a grace of `grace` at `now`, with a git that can
    /// (`cruft`) or cannot write cruft packs.
    pub fn for_grace(grace: Duration, now: SystemTime, cruft: bool) -> Unreachable {
        if grace.is_zero() {
            return Unreachable::GrokmirrorRules;
        }
        if !cruft {
            return Unreachable::KeepAll;
        }
        let keep = grace.max(MIN_EXPIRY);
        let now = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        Unreachable::CruftSince(now.saturating_sub(keep.as_secs() as i64))
    }

    /// The same rule for a git without cruft packs.
    pub fn without_cruft(self) -> Unreachable {
        match self {
            Unreachable::CruftSince(_) => Unreachable::KeepAll,
            other => other,
        }
    }

    /// The repack flags that put unreachable objects into a cruft pack
    /// (empty unless the rule uses cruft packs).
    pub fn cruft_flags(self) -> Vec<String> {
        match self {
            Unreachable::CruftSince(t) => {
                vec!["--cruft".into(), format!("--cruft-expiration=@{t}")]
            }
            _ => Vec::new(),
        }
    }
}

/// Whether `name` (a file of `objects/pack`) is an ordinary pack: a
/// `.pack` without a `.mtimes` beside it (that one is a cruft pack, whose
/// per-object times must be kept).
fn is_ordinary_pack(pack_dir: &Path, name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".pack") else {
        return false;
    };
    !pack_dir.join(format!("{stem}.mtimes")).exists()
}

/// The file names of the cruft packs of the repository at `repo` (a path
/// through its handle): `.pack` files with a `.mtimes` beside them.
pub fn cruft_packs(repo: &Path) -> Vec<String> {
    let pack_dir = repo.join("objects/pack");
    let Ok(entries) = std::fs::read_dir(&pack_dir) else {
        return Vec::new();
    };
    let mut found: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| name.ends_with(".pack") && !is_ordinary_pack(&pack_dir, name))
        .collect();
    found.sort();
    found
}

/// Set a file's times to now without following a symlink: a local user who
/// can write to the tree must not get us to touch a file elsewhere.
fn touch_no_follow(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Ok(());
    }
    let now = SystemTime::now();
    file.set_times(
        std::fs::FileTimes::new()
            .set_modified(now)
            .set_accessed(now),
    )
}

/// Freshen, to now, every object of the repository at `repo` (a path
/// through its handle) that may have been reachable until now: its
/// ordinary packs and its loose objects (see the module's documentation).
/// Returns how many files were touched. The caller holds the repository's
/// lock; a failure means the grace cannot be honoured for this repack.
pub fn freshen(repo: &Path) -> std::io::Result<usize> {
    let objects = repo.join("objects");
    let mut touched = 0;
    let pack_dir = objects.join("pack");
    if pack_dir.is_dir() && !pack_dir.is_symlink() {
        for entry in std::fs::read_dir(&pack_dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if is_ordinary_pack(&pack_dir, name) && entry.file_type()?.is_file() {
                touch_no_follow(&entry.path())?;
                touched += 1;
            }
        }
    }
    for entry in std::fs::read_dir(&objects)? {
        let entry = entry?;
        let name = entry.file_name();
        let is_fanout = is_fanout_dir_name(name.as_encoded_bytes());
        // file_type() does not follow symlinks: a symlinked fan-out
        // directory is not ours to walk.
        if !is_fanout || !entry.file_type()?.is_dir() {
            continue;
        }
        for object in std::fs::read_dir(entry.path())? {
            let object = object?;
            let oname = object.file_name();
            if is_loose_object_name(oname.as_encoded_bytes()) && object.file_type()?.is_file() {
                touch_no_follow(&object.path())?;
                touched += 1;
            }
        }
    }
    Ok(touched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn rules_by_grace_and_git() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000_000);
        assert_eq!(
            Unreachable::for_grace(Duration::ZERO, now, true),
            Unreachable::GrokmirrorRules
        );
        let two_weeks = Duration::from_secs(14 * 86_400);
        assert_eq!(
            Unreachable::for_grace(two_weeks, now, true),
            Unreachable::CruftSince(10_000_000 - 14 * 86_400)
        );
        assert_eq!(
            Unreachable::for_grace(two_weeks, now, false),
            Unreachable::KeepAll
        );
        // Never shorter than a day, whatever the setting says.
        assert_eq!(
            Unreachable::for_grace(Duration::from_secs(60), now, true),
            Unreachable::CruftSince(10_000_000 - 86_400)
        );
        let rule = Unreachable::for_grace(two_weeks, now, true);
        assert_eq!(rule.without_cruft(), Unreachable::KeepAll);
        assert_eq!(
            rule.cruft_flags(),
            vec!["--cruft", "--cruft-expiration=@8790400"]
        );
        assert!(Unreachable::GrokmirrorRules.cruft_flags().is_empty());
    }

    #[test]
    fn durations_as_consumer_grace_takes_them() {
        use crate::formats::freshness::parse_duration;
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("14d"), Some(Duration::from_secs(1_209_600)));
        assert_eq!(parse_duration(" 2w "), Some(Duration::from_secs(1_209_600)));
        for bad in ["", "two weeks", "-1d", "1y", "1.5d", "d"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    fn mtime(p: &Path) -> i64 {
        std::fs::symlink_metadata(p).unwrap().mtime()
    }

    fn set_old(p: &Path) {
        let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        std::fs::File::options()
            .write(true)
            .open(p)
            .unwrap()
            .set_modified(old)
            .unwrap();
    }

    #[test]
    fn freshens_ordinary_packs_and_loose_objects_only() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("r.git");
        let pack = repo.join("objects/pack");
        std::fs::create_dir_all(&pack).unwrap();
        std::fs::create_dir_all(repo.join("objects/ab")).unwrap();
        let files = [
            "objects/pack/pack-1.pack",
            "objects/pack/pack-1.idx",
            "objects/pack/pack-2.pack",
            "objects/pack/pack-2.mtimes",
            "objects/ab/cdef0123456789abcdef0123456789abcdef01",
            "objects/ab/tmp_obj_x",
        ];
        for f in files {
            std::fs::write(repo.join(f), "x").unwrap();
            set_old(&repo.join(f));
        }
        // A symlink planted in the tree points at a file outside it.
        let outside = dir.path().join("outside");
        std::fs::write(&outside, "x").unwrap();
        set_old(&outside);
        std::os::unix::fs::symlink(&outside, pack.join("pack-3.pack")).unwrap();
        std::os::unix::fs::symlink(
            &outside,
            repo.join("objects/ab/0123456789abcdef0123456789abcdef012345"),
        )
        .unwrap();
        assert_eq!(cruft_packs(&repo), vec!["pack-2.pack"]);
        let touched = freshen(&repo).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(touched, 2);
        let recent = |f: &str| mtime(&repo.join(f)) > 1_000_000_000;
        assert!(recent("objects/pack/pack-1.pack"));
        assert!(recent("objects/ab/cdef0123456789abcdef0123456789abcdef01"));
        assert!(!recent("objects/pack/pack-1.idx"));
        assert!(
            !recent("objects/pack/pack-2.pack"),
            "cruft packs keep their times"
        );
        assert!(!recent("objects/ab/tmp_obj_x"));
        assert_eq!(mtime(&outside), 1_000_000_000, "nothing outside is touched");
    }
}
