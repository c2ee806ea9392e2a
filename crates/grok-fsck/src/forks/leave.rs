//! Leaving members: whether a member really stopped borrowing from its
//! object storage, and deleting object storage nobody uses any more.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use grokmirror::lock;
use grokmirror::objstore;
use tracing::{info, warn};

use super::Forks;

impl Forks<'_> {
    /// Whether `member` has really stopped borrowing from `obst`, looked at
    /// through the tree's handles: gone, or a repository whose alternates
    /// lead elsewhere. A path that cannot be looked at without following a
    /// symlink (a directory swapped meanwhile, say) has not: nothing is
    /// removed on a view of the tree that may be incomplete.
    pub(super) fn truly_left(&self, member: &Path, obst: &Path) -> bool {
        match self.tree.pin(member) {
            Ok(dir) => {
                let objects = dir.io_path().join("objects");
                let lenders = grokmirror::repo::alternates::read(&objects);
                let ours = obst.join("objects");
                !lenders
                    .iter()
                    .any(|l| l == &ours || std::fs::canonicalize(l).is_ok_and(|c| c == ours))
            }
            Err(e) if e.is_not_found() => true,
            Err(e) => {
                warn!(
                    "{}: keeping {} as a member: {e}",
                    Self::name(obst),
                    member.display()
                );
                false
            }
        }
    }

    /// Delete object storage nobody uses, after a fresh look under its
    /// lock.
    pub(super) fn delete_unused(&mut self, unused: &BTreeSet<PathBuf>) {
        if unused.is_empty() {
            return;
        }
        let mut locks = Vec::new();
        let mut candidates = BTreeSet::new();
        for obst in unused {
            if let Ok(Some(l)) = self.tree.lock_repo(obst, lock::Wait::No) {
                locks.push((obst.clone(), l));
                candidates.insert(obst.clone());
            }
        }
        let mut in_use = objstore::in_use(&self.toplevel, &self.objstore_dir, &candidates);
        // The walk may have missed a member behind a directory swapped for
        // a symlink: a member still listed that cannot be seen to have left
        // keeps the object storage.
        for obst in &candidates {
            let remotes = objstore::list_remotes(self.git, obst).unwrap_or_default();
            if remotes
                .iter()
                .any(|(_, url)| !self.truly_left(Path::new(url), obst))
            {
                in_use.insert(obst.clone());
            }
        }
        for (obst, held) in locks.iter().filter(|(o, _)| !in_use.contains(o)) {
            info!(
                "{}: deleting (no longer used by anything)",
                Self::name(obst)
            );
            if let Err(e) = objstore::delete(obst, false, held) {
                self.report
                    .critical(format!("cannot delete {}: {e}", obst.display()));
            }
        }
        for obst in &in_use {
            info!("{}: in use after all, kept", Self::name(obst));
        }
        drop(locks);
    }
}
