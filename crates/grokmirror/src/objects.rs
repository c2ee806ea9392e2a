//! How a repository's objects are stored: the numbers `git count-objects
//! -v` prints, read straight from the object directory (no process per
//! repository), and grokmirror's rule for when that calls for a repack.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The numbers of `git count-objects -v` that grokmirror looks at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObjectCounts {
    /// Loose objects.
    pub count: u64,
    /// Disk space of the loose objects, KiB.
    pub size_kib: u64,
    /// Objects in packs.
    pub in_pack: u64,
    /// Number of packs.
    pub packs: u64,
    /// Disk space of packs and their indexes, KiB.
    pub size_pack_kib: u64,
}

/// How much repacking a repository needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RepackLevel {
    /// Leave it alone.
    None,
    /// Pack the loose objects (`repack -Adl`).
    Quick,
    /// Too many packs: a full repack.
    Full,
}

/// Count the objects in `objects_dir` (a repository's `objects`).
pub fn count_objects(objects_dir: &Path) -> io::Result<ObjectCounts> {
    let mut c = ObjectCounts::default();
    for entry in fs::read_dir(objects_dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.len() == 2 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            let Ok(dir) = fs::read_dir(entry.path()) else {
                continue;
            };
            for obj in dir.flatten() {
                let oname = obj.file_name();
                if oname.len() < 38
                    || !oname
                        .to_string_lossy()
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit())
                {
                    continue;
                }
                if let Ok(meta) = obj.metadata() {
                    c.count += 1;
                    // git counts blocks actually used on disk.
                    c.size_kib += meta.blocks() * 512;
                }
            }
        }
    }
    c.size_kib /= 1024;
    let mut pack_bytes = 0u64;
    if let Ok(dir) = fs::read_dir(objects_dir.join("pack")) {
        for entry in dir.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|e| e != "idx") {
                continue;
            }
            let pack = path.with_extension("pack");
            let (Ok(idx_meta), Ok(pack_meta)) = (entry.metadata(), fs::metadata(&pack)) else {
                continue;
            };
            let Ok(objects) = idx_object_count(&path) else {
                continue;
            };
            c.packs += 1;
            c.in_pack += objects;
            pack_bytes += idx_meta.len() + pack_meta.len();
        }
    }
    c.size_pack_kib = pack_bytes / 1024;
    Ok(c)
}

/// The object count of a pack index (version 1 or 2): the last entry of
/// its fan-out table.
fn idx_object_count(idx: &Path) -> io::Result<u64> {
    let mut head = [0u8; 8 + 256 * 4];
    fs::File::open(idx)?.read_exact(&mut head)?;
    let fanout_at = if head[..4] == [0xff, b't', b'O', b'c'] {
        8
    } else {
        0
    };
    let last = fanout_at + 255 * 4;
    Ok(u32::from_be_bytes(head[last..last + 4].try_into().expect("4 bytes")) as u64)
}

/// grokmirror's rule: a full repack at 20 packs or more; a quick one at
/// 1200 loose objects or more, or when loose objects are at least 10% of
/// the total count (over 500 objects) or size (over 1 MiB). `alternate` adds
/// the packed objects of the repository this one borrows from.
pub fn repack_level(c: &ObjectCounts, alternate: Option<&ObjectCounts>) -> RepackLevel {
    if c.packs >= 20 {
        return RepackLevel::Full;
    }
    if c.count >= 1200 {
        return RepackLevel::Quick;
    }
    let mut total_obj = c.count + c.in_pack;
    let mut total_size = c.size_kib + c.size_pack_kib;
    if let Some(alt) = alternate {
        total_obj += alt.in_pack;
        total_size += alt.size_pack_kib;
    }
    if total_obj > 500 && c.count * 100 >= 10 * total_obj {
        return RepackLevel::Quick;
    }
    if total_size > 1024 && c.size_kib * 100 >= 10 * total_size {
        return RepackLevel::Quick;
    }
    RepackLevel::None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::Git;

    #[test]
    fn matches_git_count_objects() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("r.git");
        let git = Git::from_env();
        git.run_ok(None, ["init", "-q", "--bare", repo.to_str().unwrap()])
            .unwrap();
        for i in 0..5 {
            git.run_with_input(
                Some(&repo),
                ["hash-object", "-w", "--stdin"],
                Some(format!("blob {i}\n").as_bytes()),
            )
            .unwrap();
        }
        git.run_ok(Some(&repo), ["repack", "-q"]).ok();
        for i in 5..8 {
            git.run_with_input(
                Some(&repo),
                ["hash-object", "-w", "--stdin"],
                Some(format!("blob {i}\n").as_bytes()),
            )
            .unwrap();
        }
        let ours = count_objects(&repo.join("objects")).unwrap();
        let out = git.run_ok(Some(&repo), ["count-objects", "-v"]).unwrap();
        let theirs: std::collections::HashMap<String, u64> = out
            .stdout_str()
            .lines()
            .filter_map(|l| {
                let (k, v) = l.split_once(": ")?;
                Some((k.to_string(), v.trim().parse().ok()?))
            })
            .collect();
        assert_eq!(ours.count, theirs["count"]);
        assert_eq!(ours.size_kib, theirs["size"]);
        assert_eq!(ours.in_pack, theirs["in-pack"]);
        assert_eq!(ours.packs, theirs["packs"]);
        assert_eq!(ours.size_pack_kib, theirs["size-pack"]);
    }

    #[test]
    fn repack_rule() {
        let mut c = ObjectCounts::default();
        assert_eq!(repack_level(&c, None), RepackLevel::None);
        c.count = 1200;
        assert_eq!(repack_level(&c, None), RepackLevel::Quick);
        c = ObjectCounts {
            count: 60,
            in_pack: 500,
            ..Default::default()
        };
        assert_eq!(repack_level(&c, None), RepackLevel::Quick);
        let alt = ObjectCounts {
            in_pack: 10_000,
            ..Default::default()
        };
        assert_eq!(repack_level(&c, Some(&alt)), RepackLevel::None);
        c.packs = 20;
        assert_eq!(repack_level(&c, None), RepackLevel::Full);
    }
}
