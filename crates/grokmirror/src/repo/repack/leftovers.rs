//! What a `git repack` killed half-way leaves in `objects/pack`: its
//! pack-objects writes `.tmp-<pid>-pack-<hash>.{pack,idx,rev,bitmap}`, and
//! repack renames them into place. Killed between the two, the temporary
//! files stay: git itself never removes them (`git prune` only clears
//! `tmp_*` files), and since their names end in `.idx` and `.pack`, git
//! counts them as one more pack. Under the repository's lock, those whose
//! writer is gone are garbage.

use std::path::Path;

use crate::lock::RepoLock;

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
/// directory is `repo` (held with `_guard`, so no repack of ours is
/// writing; a live writer's files, an orphaned git still running, are left
/// alone). Returns the names removed.
pub fn remove(repo: &Path, _guard: &RepoLock) -> std::io::Result<Vec<String>> {
    let dir = repo.join("objects/pack");
    let mut removed = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(removed),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if !is_leftover(name, process_alive) || !entry.file_type()?.is_file() {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => removed.push(name.to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    removed.sort();
    Ok(removed)
}

/// Whether a process with this id runs (in our PID namespace).
fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
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
        let mut expected = gone.to_vec();
        expected.sort();
        assert_eq!(remove(&repo, &guard).unwrap(), expected);
        for name in &keep {
            assert!(pack.join(name).exists(), "{name}");
        }
        assert_eq!(remove(&repo, &guard).unwrap(), Vec::<String>::new());
    }

    #[test]
    fn this_process_is_alive() {
        assert!(process_alive(std::process::id()));
        // PIDs stop well below this (pid_max is at most 2^22).
        assert!(!process_alive(u32::MAX - 1));
    }
}
