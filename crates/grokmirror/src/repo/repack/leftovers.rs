//! What a `git repack` killed half-way leaves in `objects/pack`: its
//! pack-objects writes `.tmp-<pid>-pack-<hash>.{pack,idx,rev,bitmap}`, and
//! repack renames them into place. Killed between the two, the temporary
//! files stay: git itself never removes them (`git prune` only clears
//! `tmp_*` files), and since their names end in `.idx` and `.pack`, git
//! counts them as one more pack. Under the repository's lock, those whose
//! writer is gone are garbage.

use crate::lock::RepoLock;
use crate::tree::{self, Dir, Kind};

/// The process that writes the temporary pack file `name`, when `name` is
/// one (`.tmp-<pid>-pack...`).
pub fn writer_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(".tmp-")?;
    let (pid, tail) = rest.split_once('-')?;
    if !tail.starts_with("pack") || pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    pid.parse().ok()
}

/// Whether `name` is a temporary pack file whose writer is not running
/// (`alive` says whether a process is).
pub fn is_leftover(name: &str, alive: impl Fn(u32) -> bool) -> bool {
    writer_pid(name).is_some_and(|pid| !alive(pid))
}

/// Remove the leftovers of killed repacks from the repository whose
/// handle is `repo` (held with `_guard`, so no repack of ours is writing; a
/// live writer's files, an orphaned git still running, are left alone).
/// Only regular files in `objects/pack` itself go: a symlink on the way or
/// in it is never followed. Returns the names removed.
pub fn remove(repo: &Dir, _guard: &RepoLock) -> Result<Vec<String>, tree::Error> {
    let pack = match repo.open_dir("objects/pack") {
        Ok(dir) => dir,
        Err(e) if e.is_not_found() => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for name in pack.names()? {
        let Ok(name) = String::from_utf8(name) else {
            continue;
        };
        if !is_leftover(&name, crate::process::runs) || pack.kind_of(&name)? != Some(Kind::File) {
            continue;
        }
        pack.remove_file(name.as_ref())?;
        removed.push(name);
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_temporary_packs_of_dead_writers_are_leftovers() {
        let hash = "7d17b9e4f70b2e7db57efeaa978b38c0caf714bc";
        assert_eq!(
            writer_pid(&format!(".tmp-25520-pack-{hash}.idx")),
            Some(25520)
        );
        assert_eq!(writer_pid(".tmp-9-pack.pack"), Some(9));
        for not_ours in [
            format!("pack-{hash}.pack"),
            format!("pack-{hash}.idx"),
            "tmp_pack_Xy12Ab".to_string(),
            ".tmp-x1-pack-a.pack".to_string(),
            ".tmp--pack-a.pack".to_string(),
            ".tmp-12-idx".to_string(),
            "multi-pack-index".to_string(),
        ] {
            assert_eq!(writer_pid(&not_ours), None, "{not_ours}");
        }
        let dead = |_| false;
        let running = |_| true;
        assert!(is_leftover(&format!(".tmp-1-pack-{hash}.pack"), dead));
        assert!(!is_leftover(&format!(".tmp-1-pack-{hash}.pack"), running));
        assert!(!is_leftover(&format!("pack-{hash}.pack"), dead));
    }

    #[test]
    fn removes_the_leftovers_of_a_dead_repack_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("r.git");
        let pack = repo.join("objects/pack");
        std::fs::create_dir_all(&pack).unwrap();
        let hash = "7d17b9e4f70b2e7db57efeaa978b38c0caf714bc";
        let mine = std::process::id();
        let keep = [
            format!("pack-{hash}.pack"),
            format!("pack-{hash}.idx"),
            format!(".tmp-{mine}-pack-{hash}.pack"),
            "tmp_pack_Xy12Ab".to_string(),
        ];
        let dead = u32::MAX - 1;
        let gone = [
            format!(".tmp-{dead}-pack-{hash}.pack"),
            format!(".tmp-{dead}-pack-{hash}.idx"),
        ];
        for name in keep.iter().chain(&gone) {
            std::fs::write(pack.join(name), b"x").unwrap();
        }
        let guard = crate::lock::acquire_repo(&repo, crate::lock::Wait::No)
            .unwrap()
            .unwrap();
        let handle = Dir::open_root(&repo).unwrap();
        let mut expected = gone.to_vec();
        expected.sort();
        assert_eq!(remove(&handle, &guard).unwrap(), expected);
        for name in &keep {
            assert!(pack.join(name).exists(), "{name}");
        }
        assert_eq!(remove(&handle, &guard).unwrap(), Vec::<String>::new());
        // A symlinked objects/pack is not followed: what it points at stays.
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join(&gone[0]), b"x").unwrap();
        let other = dir.path().join("s.git");
        std::fs::create_dir_all(other.join("objects")).unwrap();
        std::os::unix::fs::symlink(&outside, other.join("objects/pack")).unwrap();
        let guard = crate::lock::acquire_repo(&other, crate::lock::Wait::No)
            .unwrap()
            .unwrap();
        assert!(remove(&Dir::open_root(&other).unwrap(), &guard).is_err());
        assert!(outside.join(&gone[0]).exists());
    }
}
