//! The one deletion gate (SPEC §2): every removal of a repository — a
//! purge, a symlink the manifest puts where a repository stands, a
//! re-clone that swaps one copy for another, object storage nobody uses —
//! is decided here, by one function free of I/O, with the reason logged.
//! No other field of a manifest and no clean-up path deletes a repository
//! on its own.

use std::collections::BTreeSet;

use crate::config::glob::GlobList;

/// Why a repository would go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    /// The origin no longer lists it.
    Purge,
    /// The origin lists a symlink at its path (to the repository named).
    ReplaceWithSymlink {
        /// The repository the symlink is to point at.
        to: String,
    },
    /// grok-fsck asked for a fresh copy: the old one is swapped out.
    Reclone,
    /// An object-storage repository that no repository uses.
    UnusedObjectStorage,
}

/// The operator's purge rules and what this run learned of the origin.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    /// `[pull] purge` or `-p`.
    pub purge: bool,
    /// `[pull] nopurge`.
    pub nopurge: GlobList,
    /// `[pull] ffonly`.
    pub ffonly: GlobList,
    /// Keys of the origin's entries that were rejected: the origin still
    /// has these repositories, we just could not read their records.
    pub rejected: BTreeSet<String>,
    /// Keys the origin lists as repositories (after include/exclude).
    pub wanted: BTreeSet<String>,
    /// Keys whose purge passed `purgeprotect` this run (see
    /// [`within_purgeprotect`]).
    pub approved: BTreeSet<String>,
    /// Keys the origin still lists that left this replica's shard
    /// (`[pull] shard`) for a shard whose manifest does not list them yet:
    /// kept until their new owner has them.
    pub awaiting_owner: BTreeSet<String>,
}

/// What is known of the repository on disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Facts {
    /// Other repositories borrow its objects through alternates.
    pub borrowed: bool,
}

/// Why a repository stays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Kept {
    /// Others borrow its objects through alternates.
    #[error("other repositories borrow its objects")]
    Borrowed,
    /// Purging is not enabled.
    #[error("purging is off ([pull] purge = no and no -p)")]
    PurgeOff,
    /// The origin still lists it.
    #[error("the origin still lists it as a repository")]
    Wanted,
    /// The origin lists it in an entry we rejected.
    #[error("the origin lists it, in an entry that was rejected")]
    Rejected,
    /// `[pull] nopurge` protects it.
    #[error("it matches [pull] nopurge")]
    NoPurge,
    /// `[pull] ffonly` protects it.
    #[error("it matches [pull] ffonly")]
    FfOnly,
    /// It left this shard, and its new shard is not known to have it.
    #[error("it moved to another shard, which does not list it yet")]
    AwaitingOwner,
    /// Its purge did not pass `purgeprotect` this run.
    #[error("it was not among this run's purges that passed [pull] purgeprotect")]
    NotApproved,
}

/// The gate's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It may go.
    Delete,
    /// It stays, for this reason (said in the log).
    Keep(Kept),
}

impl Verdict {
    /// Whether the repository may go.
    pub fn allows(&self) -> bool {
        matches!(self, Verdict::Delete)
    }
}

/// Decide whether the repository at `key` may be removed for `removal`.
pub fn judge(rules: &Rules, key: &str, removal: &Removal, facts: Facts) -> Verdict {
    if facts.borrowed {
        return Verdict::Keep(Kept::Borrowed);
    }
    match removal {
        Removal::Reclone => {
            // The repository stays (a fresh copy replaces it); the purge
            // rules are about repositories leaving, not being repaired.
            Verdict::Delete
        }
        Removal::UnusedObjectStorage => Verdict::Delete,
        Removal::Purge | Removal::ReplaceWithSymlink { .. } => {
            if let Err(why) = purge_candidate(rules, key) {
                return Verdict::Keep(why);
            }
            if !rules.approved.contains(key) {
                return Verdict::Keep(Kept::NotApproved);
            }
            Verdict::Delete
        }
    }
}

/// Whether the purge rules would let `key` go, before `purgeprotect` is
/// applied to the whole batch (the planner's first step).
pub fn purge_candidate(rules: &Rules, key: &str) -> Result<(), Kept> {
    if !rules.purge {
        Err(Kept::PurgeOff)
    } else if rules.wanted.contains(key) {
        Err(Kept::Wanted)
    } else if rules.rejected.contains(key) {
        Err(Kept::Rejected)
    } else if rules.nopurge.is_match(key) {
        Err(Kept::NoPurge)
    } else if rules.ffonly.is_match(key) {
        Err(Kept::FfOnly)
    } else if rules.awaiting_owner.contains(key) {
        Err(Kept::AwaitingOwner)
    } else {
        Ok(())
    }
}

/// Whether purging `candidates` of the `found` repositories (and symlinks)
/// stays under `purgeprotect` percent; `force` (`--force-purge`) lifts the
/// limit. `limit` has been validated to 0–100 with the config.
pub fn within_purgeprotect(
    candidates: usize,
    found: usize,
    limit: i64,
    force: bool,
) -> Result<(), String> {
    if force || candidates == 0 {
        return Ok(());
    }
    let percent = (candidates * 100 / found.max(1)) as i64;
    if percent >= limit {
        return Err(format!(
            "Refusing to purge {candidates} repos ({percent}%): over [pull] purgeprotect = {limit}%. \
             Raise purgeprotect, or run once with --force-purge if the origin really dropped them."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules {
            purge: true,
            nopurge: GlobList::new(["/keep/*"]),
            ffonly: GlobList::new(["/ff/*"]),
            rejected: ["/bad.git".to_string()].into(),
            wanted: ["/wanted.git".to_string()].into(),
            awaiting_owner: ["/moving.git".to_string()].into(),
            approved: [
                "/moving.git",
                "/gone.git",
                "/keep/a.git",
                "/ff/a.git",
                "/bad.git",
                "/wanted.git",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        }
    }

    #[test]
    fn only_approved_unprotected_repositories_go() {
        let r = rules();
        let none = Facts::default();
        let symlink = Removal::ReplaceWithSymlink {
            to: "/x.git".into(),
        };
        for removal in [Removal::Purge, symlink] {
            assert!(judge(&r, "/gone.git", &removal, none).allows());
            for kept in [
                "/moving.git",
                "/keep/a.git",
                "/ff/a.git",
                "/bad.git",
                "/wanted.git",
                "/new.git",
            ] {
                assert!(!judge(&r, kept, &removal, none).allows(), "{kept}");
            }
            let borrowed = Facts { borrowed: true };
            assert!(!judge(&r, "/gone.git", &removal, borrowed).allows());
            let off = Rules {
                purge: false,
                ..rules()
            };
            assert_eq!(
                judge(&off, "/gone.git", &removal, none),
                Verdict::Keep(Kept::PurgeOff)
            );
            assert_eq!(
                Kept::PurgeOff.to_string(),
                "purging is off ([pull] purge = no and no -p)"
            );
        }
        assert_eq!(purge_candidate(&r, "/moving.git"), Err(Kept::AwaitingOwner));
        assert!(judge(&r, "/keep/a.git", &Removal::Reclone, none).allows());
        assert!(!judge(&r, "/gone.git", &Removal::Reclone, Facts { borrowed: true }).allows());
        assert!(!judge(
            &r,
            "/o.git",
            &Removal::UnusedObjectStorage,
            Facts { borrowed: true }
        )
        .allows());
    }

    #[test]
    fn purgeprotect() {
        assert!(within_purgeprotect(0, 0, 5, false).is_ok());
        assert!(within_purgeprotect(4, 100, 5, false).is_ok());
        assert!(within_purgeprotect(5, 100, 5, false).is_err());
        assert!(within_purgeprotect(100, 100, 5, true).is_ok());
        assert!(within_purgeprotect(99, 100, 100, false).is_ok());
        assert!(within_purgeprotect(1, 1, 100, false).is_err());
        assert!(within_purgeprotect(1, 2, 0, false).is_err());
    }
}
