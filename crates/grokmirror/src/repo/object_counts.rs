//! How a repository stores its objects, and when it is worth repacking:
//! the numbers of `git count-objects -v` (read in-process, or from git), the
//! repack-level rule grokmirror uses (many loose objects, many packs, or a
//! large loose share), and the `extensions.preciousObjects` switch.
//!
//! grok-fsck decides its repacks with these, and grok-pull decides its
//! "quick repack after a fetch" with them too.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::git::{self, Git};

/// The numbers `git count-objects -v` prints, sizes in KiB as git prints
/// them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectCounts {
    /// Loose objects.
    pub count: u64,
    /// Disk space of loose objects (KiB).
    pub size: u64,
    /// Objects in (local) packs.
    pub in_pack: u64,
    /// Number of (local) packs.
    pub packs: u64,
    /// Size of packs and their indexes (KiB).
    pub size_pack: u64,
    /// Loose objects that are also in a pack; `None` when not computed (the
    /// in-process scan leaves it out: nothing decides on it).
    pub prune_packable: Option<u64>,
    /// Files in the object store that are neither objects nor packs.
    pub garbage: u64,
    /// Their size (KiB).
    pub size_garbage: u64,
    /// Alternate object directories.
    pub alternates: Vec<PathBuf>,
}

/// Failure to count a repository's objects.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// git could not be run or failed.
    #[error(transparent)]
    Git(#[from] git::Error),
    /// git's output lacked a number we need.
    #[error("git count-objects -v in {repo} printed no {field:?} line")]
    Missing {
        /// The repository.
        repo: PathBuf,
        /// The missing field.
        field: &'static str,
    },
    /// The object directory could not be read.
    #[error("cannot read the objects of {repo}: {source}")]
    Io {
        /// The repository.
        repo: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
}

impl ObjectCounts {
    /// The disk space of the repository's own objects, loose and packed,
    /// in bytes (what a clone or a fetch added, measured before and after).
    pub fn stored_bytes(&self) -> u64 {
        (self.size + self.size_pack) * 1024
    }

    /// Parse `git count-objects -v` output.
    pub fn parse(text: &str, repo: &Path) -> Result<ObjectCounts, Error> {
        let mut c = ObjectCounts::default();
        let mut seen: Vec<&str> = Vec::new();
        for line in text.lines() {
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if key == "alternate" {
                c.alternates.push(PathBuf::from(value.trim_matches('"')));
                continue;
            }
            let Ok(n) = value.parse::<u64>() else {
                continue;
            };
            match key {
                "count" => c.count = n,
                "size" => c.size = n,
                "in-pack" => c.in_pack = n,
                "packs" => c.packs = n,
                "size-pack" => c.size_pack = n,
                "prune-packable" => c.prune_packable = Some(n),
                "garbage" => c.garbage = n,
                "size-garbage" => c.size_garbage = n,
                _ => continue,
            }
            seen.push(key);
        }
        for field in ["count", "size", "in-pack", "packs", "size-pack"] {
            if !seen.contains(&field) {
                return Err(Error::Missing {
                    repo: repo.to_path_buf(),
                    field,
                });
            }
        }
        Ok(c)
    }

    /// Everything the repository takes on disk (KiB): loose objects, packs
    /// and garbage, as grokmirror sums them to report space saved.
    pub fn total_kib(&self) -> u64 {
        self.size + self.size_pack + self.size_garbage
    }
}

/// Ask git: `git count-objects -v`.
pub fn count_with_git(git: &Git, repo: &Path) -> Result<ObjectCounts, Error> {
    let out = git.run_ok(Some(repo), ["count-objects", "-v"])?;
    ObjectCounts::parse(&String::from_utf8_lossy(&out.stdout), repo)
}

/// Whether `name` (in `objects/`) is a loose-object fan-out directory as
/// git names them: two lowercase hex digits.
pub fn is_fanout_dir_name(name: &[u8]) -> bool {
    name.len() == 2 && name.iter().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `name` (in a fan-out directory) is a loose object's: the rest
/// of a SHA-1 or SHA-256 id, not one of git's temporary files.
pub fn is_loose_object_name(name: &[u8]) -> bool {
    (name.len() == 38 || name.len() == 62) && name.iter().all(u8::is_ascii_hexdigit)
}

/// Count in-process, the way `git count-objects -v` counts, without
/// starting a process: one directory read per loose-object fan-out
/// directory and one per pack directory, and 1 KiB read from each pack
/// index. Differences from git: `prune_packable` is not computed, and
/// garbage in an alternate's pack directory is not counted (git counts it
/// against this repository).
pub fn scan(repo: &Path) -> Result<ObjectCounts, Error> {
    let io_err = |source| Error::Io {
        repo: repo.to_path_buf(),
        source,
    };
    let objects = repo.join("objects");
    if !objects.is_dir() {
        return Err(io_err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{} is not a directory", objects.display()),
        )));
    }
    let mut c = ObjectCounts::default();
    let mut loose_bytes: u64 = 0;
    let mut garbage_bytes: u64 = 0;
    // Only the fan-out directories that exist: one read of `objects/`
    // instead of 256 failed opens in a well-packed repository.
    let mut fans: Vec<PathBuf> = Vec::new();
    for entry in fs::read_dir(&objects).map_err(io_err)? {
        let entry = entry.map_err(io_err)?;
        let name = entry.file_name();
        let name = name.as_encoded_bytes();
        // git looks only at lowercase `%02x` names.
        if is_fanout_dir_name(name) {
            fans.push(entry.path());
        }
    }
    for dir in fans {
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) if e.kind() == io::ErrorKind::NotADirectory => continue,
            Err(e) => return Err(io_err(e)),
        };
        for entry in entries {
            let entry = entry.map_err(io_err)?;
            let name = entry.file_name();
            let name = name.as_encoded_bytes();
            let is_object_name = is_loose_object_name(name);
            let path = entry.path();
            match fs::symlink_metadata(&path) {
                Ok(meta) if is_object_name && meta.file_type().is_file() => {
                    c.count += 1;
                    loose_bytes += meta.blocks() * 512;
                }
                Ok(_) => {
                    c.garbage += 1;
                    garbage_bytes += fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                }
                // Vanished while we looked (a concurrent prune): not counted.
                Err(_) => {}
            }
        }
    }
    scan_packs(&objects.join("pack"), &mut c, &mut garbage_bytes).map_err(io_err)?;
    c.size = loose_bytes / 1024;
    c.size_garbage = garbage_bytes / 1024;
    c.alternates = crate::repo::alternates::read(&objects);
    Ok(c)
}

/// Pack files that belong to a pack when it has both its `.pack` and
/// `.idx` (git's list in `prepare_pack`).
const PACK_SUFFIXES: &[&str] = &[
    ".idx",
    ".rev",
    ".pack",
    ".bitmap",
    ".keep",
    ".promisor",
    ".mtimes",
];

fn scan_packs(pack_dir: &Path, c: &mut ObjectCounts, garbage_bytes: &mut u64) -> io::Result<()> {
    let entries = match fs::read_dir(pack_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut names: Vec<String> = Vec::new();
    for entry in entries {
        let entry = entry?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    let mut report_garbage = |name: &str| {
        c.garbage += 1;
        *garbage_bytes += fs::metadata(pack_dir.join(name))
            .map(|m| m.len())
            .unwrap_or(0);
    };
    // Group pack-related files by base name, as git does, and count the
    // groups that lack either the pack or its index as garbage.
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for name in names {
        if name == "multi-pack-index"
            || name == "multi-pack-index.d"
            || (name.starts_with("multi-pack-index")
                && (name.ends_with(".bitmap") || name.ends_with(".rev")))
        {
            continue;
        }
        if !PACK_SUFFIXES.iter().any(|s| name.ends_with(s)) {
            report_garbage(&name);
            continue;
        }
        let base = name[..name.rfind('.').expect("has a suffix") + 1].to_string();
        match groups.last_mut() {
            Some((b, files)) if *b == base => files.push(name),
            _ => groups.push((base, vec![name])),
        }
    }
    let mut packs: Vec<String> = Vec::new();
    for (base, files) in groups {
        let has = |ext: &str| files.iter().any(|f| f[base.len()..] == *ext);
        if has("pack") && has("idx") {
            packs.push(base);
        } else {
            for f in &files {
                report_garbage(f);
            }
        }
    }
    for base in packs {
        let pack = pack_dir.join(format!("{base}pack"));
        let idx = pack_dir.join(format!("{base}idx"));
        let Ok(pack_meta) = fs::metadata(&pack) else {
            continue;
        };
        if !pack_meta.is_file() {
            continue;
        }
        // An index git cannot open is skipped by count-objects too.
        let Ok((objects, idx_len)) = read_idx_count(&idx) else {
            continue;
        };
        c.packs += 1;
        c.in_pack += objects;
        c.size_pack += pack_meta.len() + idx_len;
    }
    c.size_pack /= 1024;
    Ok(())
}

/// The number of objects in a pack index (the last fan-out entry) and the
/// index's size.
fn read_idx_count(idx: &Path) -> io::Result<(u64, u64)> {
    let mut f = fs::File::open(idx)?;
    let len = f.metadata()?.len();
    let mut head = [0u8; 8 + 256 * 4];
    f.read_exact(&mut head)?;
    // Version 2 starts with "\377tOc" and the version; version 1 starts
    // directly with the fan-out table.
    let fanout = if head[..4] == [0xff, b't', b'O', b'c'] {
        &head[8..]
    } else {
        &head[..256 * 4]
    };
    let last = &fanout[255 * 4..256 * 4];
    let n = u32::from_be_bytes([last[0], last[1], last[2], last[3]]);
    Ok((u64::from(n), len))
}

/// How thoroughly to repack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RepackLevel {
    /// Pack loose objects and existing packs into one pack, reusing deltas.
    Quick = 1,
    /// Also recompute deltas (`-f`), with the full-repack flags.
    Full = 2,
}

/// When a repository is worth repacking (grokmirror's fixed limits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepackThresholds {
    /// This many loose objects ask for a quick repack.
    pub max_loose_objects: u64,
    /// This many packs ask for a full repack.
    pub max_packs: u64,
    /// Loose objects as this percentage of all objects ask for a quick
    /// repack (in repositories with more than 500 objects).
    pub loose_objects_percent: u64,
    /// Loose size as this percentage of all object storage asks for a quick
    /// repack (in repositories over 1 MiB).
    pub loose_size_percent: u64,
}

impl Default for RepackThresholds {
    fn default() -> Self {
        RepackThresholds {
            max_loose_objects: 1200,
            max_packs: 20,
            loose_objects_percent: 10,
            loose_size_percent: 10,
        }
    }
}

/// Whether and how to repack a repository with these counts. `alternate`
/// adds the packed objects of the repository it borrows from to the
/// totals the percentages are taken of (grok-pull does this; grok-fsck
/// passes `None`, as grokmirror's fsck does).
pub fn repack_level(
    counts: &ObjectCounts,
    alternate: Option<&ObjectCounts>,
    limits: &RepackThresholds,
) -> Option<RepackLevel> {
    if counts.packs >= limits.max_packs {
        return Some(RepackLevel::Full);
    }
    if counts.count >= limits.max_loose_objects {
        return Some(RepackLevel::Quick);
    }
    let mut total_objects = counts.count + counts.in_pack;
    let mut total_size = counts.size + counts.size_pack;
    if let Some(alt) = alternate {
        total_objects += alt.in_pack;
        total_size += alt.size_pack;
    }
    // Integer percentages, compared as grokmirror compares its floats: a
    // share of at least the limit triggers.
    if total_objects > 500 && counts.count * 100 >= limits.loose_objects_percent * total_objects {
        return Some(RepackLevel::Quick);
    }
    if total_size > 1024 && counts.size * 100 >= limits.loose_size_percent * total_size {
        return Some(RepackLevel::Quick);
    }
    None
}

/// grok-pull's question after a fetch: would a quick repack pay off? Never
/// for a repository with `preciousObjects` on (git would refuse to delete
/// anything); otherwise by [`repack_level`], with the packed objects of the
/// repository it borrows from counted in the totals, as grokmirror's pull
/// does.
pub fn worth_quick_repack(repo: &Path) -> Result<bool, Error> {
    if crate::repo::git_config::is_precious(repo) {
        return Ok(false);
    }
    let counts = scan(repo)?;
    let lender = counts
        .alternates
        .last()
        .filter(|dir| dir.file_name().is_some_and(|n| n == "objects"))
        .and_then(|dir| dir.parent())
        .and_then(|lender| scan(lender).ok());
    Ok(repack_level(&counts, lender.as_ref(), &RepackThresholds::default()).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::process::Command;

    fn counts(count: u64, size: u64, in_pack: u64, packs: u64, size_pack: u64) -> ObjectCounts {
        ObjectCounts {
            count,
            size,
            in_pack,
            packs,
            size_pack,
            ..Default::default()
        }
    }

    #[test]
    fn parses_count_objects_output() {
        let text = "count: 3\nsize: 12\nin-pack: 100\npacks: 2\nsize-pack: 40\nprune-packable: 1\ngarbage: 1\nsize-garbage: 4\nalternate: /srv/objstore/x.git/objects\n";
        let c = ObjectCounts::parse(text, Path::new("r")).unwrap();
        assert_eq!(c.count, 3);
        assert_eq!(c.in_pack, 100);
        assert_eq!(c.prune_packable, Some(1));
        assert_eq!(c.garbage, 1);
        assert_eq!(c.total_kib(), 12 + 40 + 4);
        assert_eq!(
            c.alternates,
            vec![PathBuf::from("/srv/objstore/x.git/objects")]
        );
        let err = ObjectCounts::parse("count: 3\n", Path::new("/r.git")).unwrap_err();
        assert!(err.to_string().contains("/r.git"), "{err}");
    }

    #[test]
    fn repack_levels() {
        let l = RepackThresholds::default();
        assert_eq!(
            repack_level(&counts(0, 0, 10, 20, 10), None, &l),
            Some(RepackLevel::Full)
        );
        assert_eq!(
            repack_level(&counts(1200, 10, 0, 1, 10), None, &l),
            Some(RepackLevel::Quick)
        );
        // Tiny repos are left alone whatever their loose share.
        assert_eq!(repack_level(&counts(100, 10, 300, 1, 10), None, &l), None);
        // 60 loose of 600 objects is 10%.
        assert_eq!(
            repack_level(&counts(60, 1, 540, 1, 5000), None, &l),
            Some(RepackLevel::Quick)
        );
        assert_eq!(repack_level(&counts(59, 1, 541, 1, 5000), None, &l), None);
        // Loose size share, in repos over 1 MiB.
        assert_eq!(
            repack_level(&counts(10, 200, 100, 1, 1800), None, &l),
            Some(RepackLevel::Quick)
        );
        assert_eq!(repack_level(&counts(10, 100, 100, 1, 1800), None, &l), None);
        // An alternate's packed objects dilute the share (grok-pull's rule).
        let alt = counts(0, 0, 100_000, 1, 100_000);
        assert_eq!(
            repack_level(&counts(60, 1, 540, 1, 5000), Some(&alt), &l),
            None
        );
    }

    fn git(repo: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg(format!("--git-dir={}", repo.display()))
            .args(args)
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn add_commits(repo: &Path, n: usize, tag: &str) {
        let mut stream = String::new();
        for i in 0..n {
            let body = format!("{tag} {i}\n");
            stream.push_str(&format!(
                "commit refs/heads/{tag}\ncommitter t <t@t> {} +0000\ndata 2\nm\nM 644 inline f{}\ndata {}\n{}\n",
                1_600_000_000 + i,
                i % 5,
                body.len(),
                body
            ));
        }
        let mut child = Command::new("git")
            .arg(format!("--git-dir={}", repo.display()))
            .args(["fast-import", "--quiet"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stream.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    }

    /// The in-process scan agrees with git on every number it computes.
    #[test]
    fn scan_matches_git_count_objects() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("r.git");
        let out = Command::new("git")
            .args(["init", "-q", "--bare"])
            .arg(&repo)
            .status()
            .unwrap();
        assert!(out.success());
        let git_runner = Git::from_env();
        let check = |what: &str| {
            let mut ours = scan(&repo).unwrap();
            let theirs = count_with_git(&git_runner, &repo).unwrap();
            ours.prune_packable = theirs.prune_packable;
            ours.alternates = theirs.alternates.clone();
            assert_eq!(ours, theirs, "{what}");
            theirs
        };
        check("empty");
        // fast-import packs big batches and leaves small ones loose.
        add_commits(&repo, 300, "a");
        add_commits(&repo, 2, "b");
        add_commits(&repo, 200, "c");
        let mixed = check("packs and loose objects");
        assert!(mixed.count > 0 && mixed.packs >= 2, "{mixed:?}");
        // Garbage of every kind git recognises.
        fs::write(repo.join("objects/pack/tmp_pack_abc"), vec![0u8; 3000]).unwrap();
        fs::write(repo.join("objects/pack/pack-0000.keep"), b"").unwrap();
        fs::write(repo.join("objects/pack/pack-1111.idx"), vec![1u8; 2048]).unwrap();
        fs::create_dir_all(repo.join("objects/ab")).unwrap();
        fs::write(repo.join("objects/ab/tmp_obj_xyz"), vec![2u8; 5000]).unwrap();
        let keep = fs::read_dir(repo.join("objects/pack"))
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with(".pack"))
            .unwrap()
            .path()
            .with_extension("keep");
        fs::write(keep, b"kept\n").unwrap();
        let garbage = check("garbage");
        assert_eq!(garbage.garbage, 4, "{garbage:?}");
        assert!(garbage.size_garbage >= 9, "{garbage:?}");
        git(&repo, &["repack", "-a", "-d", "-q"]);
        check("after repack");
        git(&repo, &["multi-pack-index", "write"]);
        check("with a multi-pack-index");
    }

    #[test]
    fn quick_repack_question_for_pull() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("q.git");
        assert!(Command::new("git")
            .args(["init", "-q", "--bare"])
            .arg(&repo)
            .status()
            .unwrap()
            .success());
        // 1230 objects (410 commits), all left loose.
        git(&repo, &["config", "fastimport.unpackLimit", "100000"]);
        add_commits(&repo, 410, "b");
        assert!(scan(&repo).unwrap().count >= 1200);
        assert!(worth_quick_repack(&repo).unwrap());
        crate::repo::git_config::set_precious(&Git::from_env(), &repo, true).unwrap();
        assert!(!worth_quick_repack(&repo).unwrap());
        crate::repo::git_config::set_precious(&Git::from_env(), &repo, false).unwrap();
        git(&repo, &["repack", "-a", "-d", "-q"]);
        assert!(!worth_quick_repack(&repo).unwrap());
    }
}
