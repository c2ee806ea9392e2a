//! Joining members: the rewirings [`super::discover`] decided, carried
//! out step by step, each step leaving every repository valid. Those of
//! one object storage run in order under its lock, different object
//! storage at the same time.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use grokmirror::lock::RepoLock;
use grokmirror::objstore::{self, FetchMethod};
use grokmirror::repo;
use grokmirror::tree::fsutil;
use rayon::prelude::*;
use tracing::{info, warn};

use super::{request_repack, Forks};

/// One step of a rewiring. The steps of a [`Rewiring`] run in order under
/// the object storage's lock; a failing step ends its rewiring, as every
/// later step relies on it.
#[derive(Debug)]
pub(super) enum Step {
    /// Make the repository a remote of the object storage and fetch its
    /// objects in.
    Copy {
        member: PathBuf,
        method: FetchMethod,
        what: &'static str,
    },
    /// Give a private repository a copy of everything it borrows (it can't
    /// put its objects in the object storage).
    Restore { member: PathBuf },
    /// Point the repository at the object storage, asking first for the
    /// repack that drops what it holds (`grokmirror.repack` survives a
    /// crash, so the next run still does it). Only ever after the steps
    /// that make it safe.
    Attach { member: PathBuf },
}

/// The rewiring of one repository (with its 1.x lender, when it has one)
/// into one object storage, and the member locks it needs, held from the
/// decision to the end.
#[derive(Debug)]
pub(super) struct Rewiring {
    obst: PathBuf,
    steps: Vec<Step>,
    locks: Vec<RepoLock>,
}

/// What carrying out the rewirings of one object storage did.
#[derive(Debug, Default)]
struct CarriedOut {
    attached: Vec<PathBuf>,
    copied: Vec<PathBuf>,
}

impl Forks<'_> {
    /// Decide a rewiring into `obst`. Later decisions see `obst` with the
    /// roots of every repository copied into it (as if the rewiring had run;
    /// a failure only makes the next run decide again).
    pub(super) fn plan_rewiring(&mut self, obst: &Path, steps: Vec<Step>, locks: Vec<RepoLock>) {
        for step in &steps {
            if let Step::Copy { member, .. } = step {
                if let Some(r) = self.roots_of(member) {
                    self.obst_roots
                        .entry(obst.to_path_buf())
                        .or_default()
                        .extend(r);
                }
            }
        }
        self.rewirings.push(Rewiring {
            obst: obst.to_path_buf(),
            steps,
            locks,
        });
    }

    /// Carry out the rewirings: those of one object storage in order, different
    /// object storage at the same time.
    pub(super) fn carry_out(&mut self) {
        let mut by_obst: BTreeMap<PathBuf, Vec<Rewiring>> = BTreeMap::new();
        for plan in std::mem::take(&mut self.rewirings) {
            by_obst.entry(plan.obst.clone()).or_default().push(plan);
        }
        let done: Vec<(PathBuf, CarriedOut)> = by_obst
            .into_par_iter()
            .map(|(obst, plans)| {
                let done = self.carry_out_on(&obst, plans);
                (obst, done)
            })
            .collect();
        for (obst, done) in done {
            self.changes.repack.extend(done.attached);
            // Record the roots the object storage reaches now.
            let mut roots = self.roots_before.get(&obst).cloned().unwrap_or_default();
            for member in &done.copied {
                if let Some(r) = self.top_roots.get(member) {
                    roots.extend(r.iter().cloned());
                }
            }
            if !roots.is_empty() {
                let text: Vec<&str> = roots.iter().map(String::as_str).collect();
                let _ =
                    fsutil::write_atomic(&obst.join(repo::ROOTS_FILE), text.join("\n").as_bytes());
            }
            self.obst_roots.insert(obst, roots);
        }
    }

    /// The rewirings of one object storage, under its lock.
    fn carry_out_on(&self, obst: &Path, plans: Vec<Rewiring>) -> CarriedOut {
        let mut done = CarriedOut::default();
        let Some(_o) = self.lock_objstore(obst) else {
            return done;
        };
        for plan in plans {
            for step in &plan.steps {
                let ok = match step {
                    Step::Copy {
                        member,
                        method,
                        what,
                    } => {
                        let ok = self.copy_into(obst, member, *method, what);
                        if ok {
                            done.copied.push(member.clone());
                        }
                        ok
                    }
                    Step::Restore { member } => self.restore_private(member),
                    Step::Attach { member } => {
                        let ok = self.attach(member, obst);
                        if ok {
                            done.attached.push(member.clone());
                        }
                        ok
                    }
                };
                if !ok {
                    break;
                }
            }
            drop(plan.locks);
        }
        done
    }

    /// Copy `member`'s objects into `obst` as one of its remotes. Caller
    /// holds `obst`'s lock. Returns whether it worked.
    pub(super) fn copy_into(
        &self,
        obst: &Path,
        member: &Path,
        method: FetchMethod,
        what: &str,
    ) -> bool {
        let gitdir = self.gitdir(member);
        info!("    fetch: {gitdir}{what} -> {}", Self::name(obst));
        let done = objstore::add_member(obst, member)
            .and_then(|_| objstore::fetch_member(self.git, obst, member, method));
        match done {
            Ok(_) => true,
            Err(e) => {
                self.report.critical(format!(
                    "cannot fetch {gitdir} into {}: {e}",
                    obst.display()
                ));
                false
            }
        }
    }

    /// `git repack -a` in a private repository: it then holds everything
    /// it reaches itself, whatever it borrowed before.
    fn restore_private(&self, member: &Path) -> bool {
        let gitdir = self.gitdir(member);
        info!("    fetch: restoring private repo {gitdir}");
        let pinned = match self.tree.pin(member) {
            Ok(d) => d,
            Err(e) => {
                self.report.critical(format!("{gitdir}: {e}"));
                return false;
            }
        };
        match self
            .git
            .run(Some(&pinned.io_path()), ["repack", "-a", "-q"])
        {
            Ok(o) if o.success() => true,
            Ok(o) => {
                self.report.critical(format!(
                    "{gitdir}: cannot copy borrowed objects: {}",
                    o.stderr_str()
                ));
                false
            }
            Err(e) => {
                self.report.critical(format!("{gitdir}: {e}"));
                false
            }
        }
    }

    /// Point `path` at `obst` (the plan made sure that is safe and holds
    /// `path`'s lock), asking first for the repack that drops what `obst`
    /// holds: the request (`grokmirror.repack`) survives a crash, so the
    /// next run still does it.
    pub(super) fn attach(&self, path: &Path, obst: &Path) -> bool {
        request_repack(self.tree, path);
        let pinned = match self.tree.pin(path) {
            Ok(d) => d,
            Err(e) => {
                self.report.critical(format!("{e}"));
                return false;
            }
        };
        match objstore::point_at(&pinned.io_path(), obst) {
            Ok(()) => {
                // It borrows now: the packs it shares with the object
                // storage as one file (it seeded it by hard links) are
                // redundant, and go before the repack that would walk the
                // whole history to find that out.
                match objstore::drop_packs_linked_into(&pinned.io_path(), obst) {
                    Ok(0) => {}
                    Ok(n) => info!(
                        "   attach: dropped {n} pack(s) that are also {}'s",
                        Self::name(obst)
                    ),
                    Err(e) => warn!("{}: {e}", path.display()),
                }
                true
            }
            Err(e) => {
                self.report.critical(format!(
                    "{}: cannot point it at {}: {e}",
                    path.display(),
                    obst.display()
                ));
                false
            }
        }
    }
}
