//! Merging redundant object storage (`[fsck] obstrepo_merge_strategy`):
//! the members of object storage that is alike move into the one of them
//! with the most members, step by safe step.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use grokmirror::lock;
use grokmirror::objstore::siblings::{self, BlobSet};
use grokmirror::objstore::{self, FetchMethod};
use tracing::info;

use super::{pinned_roots, Forks};
use crate::settings::MergeStrategy;

impl Forks<'_> {
    /// Other object storage `obst` should be merged with, by the
    /// configured strategy.
    pub(super) fn redundant_with(
        &self,
        obst: &Path,
        all: &[PathBuf],
        unused: &BTreeSet<PathBuf>,
    ) -> BTreeSet<PathBuf> {
        let others = all
            .iter()
            .filter(|o| o.as_path() != obst && !unused.contains(*o) && o.is_dir());
        match self.settings.objstore_settings.merge_strategy {
            MergeStrategy::Blobs => {
                let mine: BlobSet = siblings::blob_set(self.git, obst);
                others
                    .filter(|o| {
                        let theirs = siblings::blob_set(self.git, o);
                        let same = mine.similar(&theirs, siblings::BLOBS_MERGE_PERCENT);
                        if same {
                            info!(" siblings: {} and {}", Self::name(obst), Self::name(o));
                        }
                        same
                    })
                    .cloned()
                    .collect()
            }
            strategy => {
                let exact = strategy == MergeStrategy::Exact;
                let Some(mine) = self.obst_roots.get(obst) else {
                    return BTreeSet::new();
                };
                others
                    .filter(|o| {
                        self.obst_roots
                            .get(*o)
                            .is_some_and(|r| siblings::are_siblings(mine, r, exact))
                    })
                    .cloned()
                    .collect()
            }
        }
    }

    /// Move the members of redundant object storage into the one of them
    /// with the most members.
    pub(super) fn merge(&mut self, obst: &Path, siblings: BTreeSet<PathBuf>) {
        let mut group: Vec<PathBuf> = siblings
            .into_iter()
            .chain(std::iter::once(obst.to_path_buf()))
            .filter(|o| !self.users_of(o).is_empty())
            .collect();
        group.sort();
        let counts: Vec<usize> = group
            .iter()
            .map(|o| {
                objstore::list_remotes(self.git, o)
                    .map(|r| r.len())
                    .unwrap_or(0)
            })
            .collect();
        let Some(dest) = merge_destination(&group, &counts) else {
            return;
        };
        for from in group.iter().filter(|o| **o != dest) {
            info!("{}: merging into {}", Self::name(from), Self::name(&dest));
            let remotes = objstore::list_remotes(self.git, from).unwrap_or_default();
            for (virtref, url) in remotes {
                self.move_member(from, &dest, &virtref, Path::new(&url));
            }
        }
        self.rebuild(&dest);
        if let Some(r) = pinned_roots(self.git, self.tree, &dest, true) {
            self.obst_roots.insert(dest, r);
        }
    }

    /// Move the member `child` (remote `virtref` of `from`) into `dest`;
    /// one that no longer uses `from` is just forgotten, one others borrow
    /// from waits for a later run.
    fn move_member(&mut self, from: &Path, dest: &Path, virtref: &str, child: &Path) {
        let child = child.to_path_buf();
        if !self.users_of(from).contains(&child) {
            // Not using it any more: just forget it.
            if let Some(_f) = self.lock_objstore(from) {
                if let Err(e) = objstore::remove_member(self.git, from, virtref) {
                    self.report.critical(format!("{e}"));
                }
            }
            return;
        }
        if self.altmap.is_borrowed(&child) {
            info!(
                "   moving: {} later (others borrow from it)",
                self.gitdir(&child)
            );
            return;
        }
        let Some(_c) = self.try_lock(&child) else {
            return;
        };
        info!("   moving: {}", self.gitdir(&child));
        {
            let Some(_d) = self.lock_objstore(dest) else {
                return;
            };
            // Step 1: everything the member reaches goes into the
            // destination (fetch sees its current lender too).
            if !self.copy_into(dest, &child, FetchMethod::Porcelain, "") {
                return;
            }
            // Step 2: swap lenders.
            if !self.attach(&child, dest) {
                return;
            }
            self.changes.repack.insert(child.clone());
        }
        if let Some(u) = self.users.get_mut(from) {
            u.remove(&child);
        }
        self.users
            .entry(dest.to_path_buf())
            .or_default()
            .insert(child.clone());
        // Step 3: the old object storage stops tracking it (its
        // objects stay for any private member).
        if let Ok(Some(_f)) = self.tree.lock_repo(from, lock::Wait::No) {
            if let Err(e) = objstore::remove_member(self.git, from, virtref) {
                self.report.critical(format!("{e}"));
            }
        }
    }
}

/// Where a group of redundant object storage merges: the one with the
/// most members (`counts`, in the group's order), the first of them on a
/// tie. `None` for an empty group.
fn merge_destination(group: &[PathBuf], counts: &[usize]) -> Option<PathBuf> {
    let best = counts.iter().copied().max()?;
    let at = counts.iter().position(|&c| c == best)?;
    group.get(at).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_members_win_and_ties_go_to_the_first() {
        let group: Vec<PathBuf> = ["/o/a.git", "/o/b.git", "/o/c.git"]
            .map(PathBuf::from)
            .into();
        assert_eq!(
            merge_destination(&group, &[1, 3, 2]),
            Some(PathBuf::from("/o/b.git"))
        );
        assert_eq!(
            merge_destination(&group, &[2, 1, 2]),
            Some(PathBuf::from("/o/a.git"))
        );
        assert_eq!(merge_destination(&[], &[]), None);
    }
}
