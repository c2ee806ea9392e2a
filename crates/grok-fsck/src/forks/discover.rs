//! Discovery of fork groups: each repository of the tree is placed. A
//! repository borrowing from nobody joins the best object storage for its
//! root commits, or a new one when it has siblings in the tree; one
//! borrowing from a plain repository (grokmirror 1.x) migrates; a member
//! of object storage is made one of its remotes. What is decided here is
//! carried out by [`super::join`].

use std::path::{Path, PathBuf};

use grokmirror::lock;
use grokmirror::objstore::siblings;
use grokmirror::objstore::{self, FetchMethod};
use grokmirror::repo;
use grokmirror::repo::roots::Roots;
use tracing::info;

use super::join::Step;
use super::{opted_out, Forks};

impl Forks<'_> {
    fn best_objstore(&self, my_roots: &Roots) -> Option<PathBuf> {
        let baselines = &self.settings.objstore_settings.baselines;
        let has_baseline_member = |obst: &Path| {
            objstore::list_remotes(self.git, obst)
                .unwrap_or_default()
                .iter()
                .any(|(_, url)| baselines.is_match(&self.gitdir(Path::new(url))))
        };
        siblings::best_objstore(
            my_roots,
            &self.obst_roots,
            !baselines.is_empty(),
            &has_baseline_member,
        )
    }

    fn create_objstore(&mut self) -> Option<PathBuf> {
        match objstore::create(self.git, &self.objstore_dir, None) {
            Ok(o) => {
                info!("     init: new objstore repo {}", Self::name(&o));
                self.rebuild(&o);
                Some(o)
            }
            Err(e) => {
                self.report.critical(format!(
                    "cannot create an object storage repository in {}: {e}",
                    self.objstore_dir.display()
                ));
                None
            }
        }
    }

    /// Look at one repository of the tree.
    pub(super) fn place(&mut self, path: &Path) {
        if opted_out(path) {
            return;
        }
        let alt = repo::alternates::lender(path);
        match alt {
            None => self.place_standalone(path),
            // Its lender is gone: grok-fsck asks for a re-clone elsewhere.
            Some(alt) if !alt.is_dir() => {}
            Some(alt) if !alt.starts_with(&self.objstore_dir) => self.migrate(path, &alt),
            Some(alt) => {
                if !self.is_private(path) && !objstore::is_member(&alt, path) {
                    let Some(_o) = self.lock_objstore(&alt) else {
                        return;
                    };
                    match objstore::add_member(&alt, path) {
                        Ok(_) => {
                            info!(
                                " reconfig: {} to fetch into {}",
                                self.gitdir(path),
                                Self::name(&alt)
                            );
                        }
                        Err(e) => self.report.critical(format!("{e}")),
                    }
                }
            }
        }
    }

    /// A repository borrowing from nobody: join the best object storage,
    /// or start one when it has siblings in the tree.
    fn place_standalone(&mut self, path: &Path) {
        let Some(my_roots) = self.roots_of(path) else {
            return;
        };
        let gitdir = self.gitdir(path);
        let private = self.is_private(path);
        if let Some(obst) = self.best_objstore(&my_roots) {
            info!("{gitdir}: can use {}", Self::name(&obst));
            let Some(me) = self.try_lock(path) else {
                return;
            };
            // Step 1: the object storage gets our objects. When that fails
            // (a damaged repository, say) we stay as we are: borrowing
            // would only hide the damage from full checks. Step 2: borrow
            // from it (it only adds a lender). Always by fetch: linking
            // our packs would copy everything the object storage already
            // has once more, until its next repack.
            let mut steps = Vec::new();
            if !private {
                steps.push(Step::Copy {
                    member: path.to_path_buf(),
                    method: FetchMethod::Porcelain,
                    what: "",
                });
            }
            steps.push(Step::Attach {
                member: path.to_path_buf(),
            });
            self.plan_rewiring(&obst, steps, vec![me]);
            return;
        }
        let siblings = siblings::find_siblings(path, &my_roots, &self.top_roots, false);
        if siblings.is_empty() {
            return;
        }
        let Some(me) = self.try_lock(path) else {
            return;
        };
        // Whose objects seed the new (empty) object storage: ours, or (for
        // a private repository) a public sibling's, which may borrow from
        // elsewhere (only fetch sees all it reaches). Ours are linked
        // (plumbing) whatever `objstore_uses_plumbing` says: into an empty
        // object storage, hard links copy nothing twice and cost nothing,
        // where a fetch re-indexes the whole history (22 s of 56 for a
        // fork group of git's own repository); the copy falls back to a
        // fetch when it cannot link (another filesystem) or verify.
        let (seed, method) = if private {
            match siblings
                .iter()
                .find(|s| !self.is_private(s) && !opted_out(s))
            {
                Some(s) => (s.clone(), FetchMethod::Porcelain),
                None => return,
            }
        } else {
            (path.to_path_buf(), FetchMethod::Plumbing)
        };
        let Some(obst) = self.create_objstore() else {
            return;
        };
        info!("{gitdir}: can use {}", Self::name(&obst));
        let steps = vec![
            Step::Copy {
                member: seed,
                method,
                what: "",
            },
            Step::Attach {
                member: path.to_path_buf(),
            },
        ];
        self.plan_rewiring(&obst, steps, vec![me]);
    }

    /// A repository borrowing from a plain repository (grokmirror 1.x):
    /// move it (and its lender's objects) into object storage.
    fn migrate(&mut self, path: &Path, lender: &Path) {
        let gitdir = self.gitdir(path);
        if self.altmap.is_borrowed(path) {
            // Its borrowers may need objects only its lender has.
            info!("{gitdir}: others borrow from it; it migrates after them");
            return;
        }
        let Some(my_roots) = self.roots_of(path) else {
            return;
        };
        let private = self.is_private(path);
        // An opted-out lender is never rewired; a private one is never
        // fetched from.
        let lender_private = self.is_private(lender) || opted_out(lender);
        let Some(me) = self.try_lock(path) else {
            return;
        };
        let mut locks = vec![me];
        let mut steps = Vec::new();
        let copy_lender = !lender_private && !self.copied_lenders.contains(lender);
        if copy_lender {
            steps.push(Step::Copy {
                member: lender.to_path_buf(),
                method: FetchMethod::Porcelain,
                what: " (previous parent)",
            });
            self.copied_lenders.insert(lender.to_path_buf());
        }
        let obst = match self.best_objstore(&my_roots) {
            Some(obst) => obst,
            None => {
                let Some(obst) = self.create_objstore() else {
                    return;
                };
                // The lender gains the new object storage as its own lender
                // (only when it has none: replacing one could cut its other
                // borrowers off); we keep reaching its objects through it
                // meanwhile. Lock order: members first (the lender's only
                // tried).
                if copy_lender && repo::alternates::lender(lender).is_none() {
                    if let Ok(Some(l)) = self.tree.lock_repo(lender, lock::Wait::No) {
                        locks.push(l);
                        steps.push(Step::Attach {
                            member: lender.to_path_buf(),
                        });
                    }
                }
                obst
            }
        };
        info!("{gitdir}: migrating to {}", Self::name(&obst));
        // Step 1: everything we reach (through our lender too) is fetched
        // into the object storage, or (private) copied into our own packs.
        if private {
            steps.push(Step::Restore {
                member: path.to_path_buf(),
            });
        } else {
            steps.push(Step::Copy {
                member: path.to_path_buf(),
                method: FetchMethod::Porcelain,
                what: "",
            });
        }
        // Step 2: swap lenders.
        steps.push(Step::Attach {
            member: path.to_path_buf(),
        });
        self.plan_rewiring(&obst, steps, locks);
    }
}
