//! One repository's work as the workers get it, and the order they get it
//! in.

use std::path::PathBuf;

use grokmirror::repo::alternates::RepoRole;
use grokmirror::repo::object_counts::RepackLevel;
use grokmirror::repo::repack::Deltas;

use super::schedule::Decision;

/// One repository's work.
#[derive(Debug, Clone)]
pub struct RepoTask {
    /// Status-file key (full path).
    pub key: String,
    /// Where the repository is.
    pub path: PathBuf,
    /// How it shares objects (it decides the repack flags).
    pub role: RepoRole,
    /// Repack at this level first.
    pub repack: Option<RepackLevel>,
    /// Whether a full repack recomputes deltas.
    pub deltas: Deltas,
    /// Run `git fsck`.
    pub fsck: bool,
    /// Repositories sharing objects are never worked on at once.
    pub family: PathBuf,
    /// Its lock was busy once; next time, wait for it.
    pub deferred: bool,
}

impl RepoTask {
    /// The task a decision asks for; `None` when it asks for nothing.
    /// `family` is the root of the repositories it shares objects with.
    pub fn from_decision(
        key: &str,
        path: PathBuf,
        role: RepoRole,
        family: PathBuf,
        d: &Decision,
    ) -> Option<RepoTask> {
        if d.repack.is_none() && !d.fsck {
            return None;
        }
        Some(RepoTask {
            key: key.to_string(),
            family,
            path,
            role,
            repack: d.repack,
            deltas: d.deltas,
            fsck: d.fsck,
            deferred: false,
        })
    }

    /// What it does, for the log.
    pub fn what(&self) -> &'static str {
        match (self.repack, self.fsck) {
            (Some(RepackLevel::Full), _) => "full repack",
            (Some(RepackLevel::Quick), true) => "repack and fsck",
            (Some(RepackLevel::Quick), false) => "repack",
            (None, _) => "fsck",
        }
    }
}

/// Put tasks in working order: object storage first (its members' repacks
/// then drop more: loose objects only go once their object storage has
/// them packed), then by key.
pub fn work_order(tasks: &mut [RepoTask]) {
    tasks.sort_by(|a, b| {
        let obst = |j: &RepoTask| j.role != RepoRole::Objstore;
        (obst(a), &a.key).cmp(&(obst(b), &b.key))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(key: &str, role: RepoRole) -> RepoTask {
        let d = Decision {
            fsck: true,
            ..Default::default()
        };
        RepoTask::from_decision(key, key.into(), role, key.into(), &d).unwrap()
    }

    #[test]
    fn a_decision_to_do_nothing_makes_no_task() {
        let nothing = Decision::default();
        assert!(RepoTask::from_decision(
            "/a",
            "/a".into(),
            RepoRole::Standalone,
            "/a".into(),
            &nothing
        )
        .is_none());
        let full = Decision {
            repack: Some(RepackLevel::Full),
            ..Default::default()
        };
        let t =
            RepoTask::from_decision("/a", "/a".into(), RepoRole::Standalone, "/f".into(), &full)
                .unwrap();
        assert_eq!((t.what(), t.family.to_str()), ("full repack", Some("/f")));
        assert_eq!(task("/b", RepoRole::Standalone).what(), "fsck");
    }

    #[test]
    fn object_storage_comes_first_then_keys_in_order() {
        let mut tasks = vec![
            task("/b", RepoRole::Standalone),
            task("/z-obst", RepoRole::Objstore),
            task("/a", RepoRole::Standalone),
        ];
        work_order(&mut tasks);
        let keys: Vec<&str> = tasks.iter().map(|t| t.key.as_str()).collect();
        assert_eq!(keys, ["/z-obst", "/a", "/b"]);
    }
}
