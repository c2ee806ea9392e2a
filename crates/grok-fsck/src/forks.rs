//! Object storage for forks (SPEC §1.10), grok-fsck's part: find forks by
//! their root commits, move them into object-storage repositories (new
//! ones, or the best existing one), migrate grokmirror 1.x alternates,
//! merge redundant object storage, delete unused ones, keep every object
//! storage's member list, remotes, refs and settings in step, and tell the
//! caller what to repack.
//!
//! The decisions follow grokmirror 2.x's (same thresholds, same order of
//! preference), so a tree either tool maintained is a fixed point for the
//! other. Repositories are looked at in path order.
//!
//! # Safety
//!
//! Each rewiring is a sequence of steps after each of which every
//! repository is valid (`git fsck --connectivity-only` passes), so a crash
//! anywhere is harmless and the next run carries on:
//!
//! - objects reach an object storage (fetch) before anyone is pointed at
//!   it; pointing a repository that borrowed from nothing at one only adds
//!   a lender; replacing a lender happens only once the new one holds all
//!   the repository reaches, and never for a repository others borrow
//!   from (they may need objects only its old lender has);
//! - nothing here deletes an object: members lose their copies later, in
//!   their repack with `-l` (only objects their object storage holds), and
//!   object storage is repacked keeping everything;
//! - an object storage is deleted only when, holding its lock, a fresh
//!   look at the tree and at grok-pull's staged clones finds no borrower.
//!
//! Locks: a member's lock is taken before its object storage's (the order
//! grok-pull uses too); a lock taken out of that order is only ever tried,
//! never waited for, so no two processes can wait on each other. A member
//! somebody else is working on is left for the next run.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use grokmirror::repo::alternates::AltMap;
use grokmirror::tree::discovery::{self, WalkOptions};
use grokmirror::tree::fsutil;
use grokmirror::git::Git;
use grokmirror::lock::{self, RepoLock};
use grokmirror::formats::manifest::{self, Manifest};
use grokmirror::objstore::{self, FetchMethod};
use grokmirror::repo;
use grokmirror::repo::roots::{self, Roots};
use grokmirror::objstore::siblings::{self, BlobSet};
use grokmirror::tree::Tree;
use rayon::prelude::*;
use tracing::{debug, info, warn};

use crate::report::Report;
use crate::settings::{MergeStrategy, Settings};

/// Whether the repository opted out of object storage
/// (`grokmirror.do-not-objstore`): it is never rewired, never fetched
/// from.
fn opted_out(path: &Path) -> bool {
    path.join(repo::DO_NOT_OBJSTORE_FILE).exists()
}

/// Ask for a full repack of `repo` (`grokmirror.repack`, removed by the
/// repack), written through the repository's handle.
fn request_repack(tree: &Tree, repo: &Path) {
    let shown = repo.join(repo::REPACK_FILE);
    // The handle stays open while its /proc path is used.
    let dir = match tree.pin(repo) {
        Ok(dir) => dir,
        Err(e) => {
            warn!("cannot write {}: {e}", shown.display());
            return;
        }
    };
    let file = dir.io_path().join(repo::REPACK_FILE);
    if !file.exists() {
        if let Err(e) = fsutil::write_atomic(&file, b"") {
            warn!("cannot write {}: {e}", shown.display());
        }
    }
}

/// The roots of the repository at `path` (cached in it, see
/// [`roots::get`]), read and cached through its handle.
fn pinned_roots(git: &Git, tree: &Tree, path: &Path, refresh: bool) -> Option<Roots> {
    let dir = tree.pin(path).ok()?;
    roots::get(git, &dir.io_path(), refresh)
}

/// What the object-storage work leaves for the rest of the run.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Repositories that joined (or moved to) an object storage, or lent
    /// their objects to one: a repack now drops what it holds.
    pub repack: BTreeSet<PathBuf>,
    /// Object storage to repack fully now (new, merged into, re-islanded,
    /// trimmed).
    pub full_repack: BTreeSet<PathBuf>,
}

/// The object-storage work of one run.
pub struct Forks<'a> {
    git: &'a Git,
    /// The top level: members are written to through it.
    tree: &'a Tree,
    settings: &'a Settings,
    report: &'a Report,
    toplevel: PathBuf,
    objstore_dir: PathBuf,
    /// Manifest keys of the repositories grok-fsck looks after.
    in_manifest: BTreeSet<String>,
    /// Roots of every repository of the tree (object storage excluded).
    top_roots: BTreeMap<PathBuf, Roots>,
    /// Roots of every object storage.
    obst_roots: BTreeMap<PathBuf, Roots>,
    altmap: AltMap,
    /// 1.x lenders already copied into an object storage this run.
    copied_lenders: BTreeSet<PathBuf>,
    /// For each object storage, the repositories borrowing from it.
    users: BTreeMap<PathBuf, BTreeSet<PathBuf>>,
    /// Manifest `reference` and `forkgroup` of members, by key.
    manifest_updates: BTreeMap<String, (Option<String>, String)>,
    outcome: Outcome,
    /// Rewirings decided, not done yet.
    plans: Vec<Plan>,
    /// Roots of each object storage before this run's rewirings.
    roots_before: BTreeMap<PathBuf, Roots>,
}

/// One step of a rewiring. The steps of a [`Plan`] run in order under the
/// object storage's lock; a failing step ends its plan, as every later
/// step relies on it.
#[derive(Debug)]
enum Step {
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
struct Plan {
    obst: PathBuf,
    steps: Vec<Step>,
    locks: Vec<RepoLock>,
}

/// What carrying out the plans of one object storage did.
#[derive(Debug, Default)]
struct Done {
    attached: Vec<PathBuf>,
    copied: Vec<PathBuf>,
}

impl<'a> Forks<'a> {
    /// Prepare the work: `repos` are the repositories of the manifest (full
    /// paths), `objstore_dir` the real path of `[core] objstore`.
    pub fn new(
        git: &'a Git,
        tree: &'a Tree,
        settings: &'a Settings,
        report: &'a Report,
        objstore_dir: &Path,
        repos: &[PathBuf],
    ) -> Forks<'a> {
        let toplevel = settings.toplevel.clone();
        let in_manifest = repos
            .iter()
            .filter_map(|p| grokmirror::tree::key::manifest_key(&toplevel, p))
            .collect();
        Forks {
            git,
            tree,
            settings,
            report,
            altmap: AltMap::default(),
            toplevel,
            objstore_dir: objstore_dir.to_path_buf(),
            in_manifest,
            top_roots: BTreeMap::new(),
            obst_roots: BTreeMap::new(),
            copied_lenders: BTreeSet::new(),
            users: BTreeMap::new(),
            manifest_updates: BTreeMap::new(),
            outcome: Outcome::default(),
            plans: Vec::new(),
            roots_before: BTreeMap::new(),
        }
    }

    /// Do it all. `repos` (full paths, in the order to look at them) are
    /// the repositories of the manifest.
    pub fn run(mut self, repos: &[PathBuf]) -> Outcome {
        for gone in objstore::sweep_leftovers(&self.objstore_dir) {
            info!("  cleanup: removed {}", gone.display());
        }
        info!("   search: getting root commits of all repos, may take a while");
        self.load_roots();
        self.altmap = AltMap::scan(&[&self.toplevel, &self.objstore_dir]);
        self.roots_before = self.obst_roots.clone();
        for path in repos {
            if path.is_dir() && !path.starts_with(&self.objstore_dir) {
                self.place(path);
            }
        }
        self.carry_out();
        // Who uses what, after the moves above.
        self.altmap = AltMap::scan(&[&self.toplevel, &self.objstore_dir]);
        self.tend_objstores();
        if let Err(e) = self.write_manifest() {
            self.report.critical(format!(
                "cannot record forkgroups in {}: {e}",
                self.settings.manifest.display()
            ));
        }
        self.outcome
    }

    fn load_roots(&mut self) {
        let top = discovery::find_repos(&self.toplevel, &WalkOptions::default()).repos;
        let git = self.git;
        let tree = self.tree;
        self.top_roots = top
            .par_iter()
            .filter_map(|p| {
                let p = std::fs::canonicalize(p).unwrap_or_else(|_| p.clone());
                let r = pinned_roots(git, tree, &p, false)?;
                Some((p, r))
            })
            .collect();
        self.obst_roots = objstore::list(&self.objstore_dir)
            .par_iter()
            .filter_map(|p| Some((p.clone(), roots::get(git, p, false)?)))
            .collect();
    }

    fn roots_of(&mut self, path: &Path) -> Option<Roots> {
        if let Some(r) = self.top_roots.get(path) {
            return Some(r.clone());
        }
        let r = pinned_roots(self.git, self.tree, path, false)?;
        self.top_roots.insert(path.to_path_buf(), r.clone());
        Some(r)
    }

    fn gitdir(&self, path: &Path) -> String {
        grokmirror::tree::key::manifest_style(&self.toplevel, path)
    }

    fn is_private(&self, path: &Path) -> bool {
        let private = &self.settings.objstore_settings.private;
        private.is_match(&self.gitdir(path)) || private.is_match(&path.to_string_lossy())
    }

    fn name(obst: &Path) -> String {
        obst.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// A member's lock, if free now (busy members wait for the next run).
    fn try_lock(&self, path: &Path) -> Option<RepoLock> {
        match self.tree.lock_repo(path, lock::Wait::No) {
            Ok(Some(l)) => Some(l),
            Ok(None) => {
                info!(
                    "     busy: {} is locked; leaving it for the next run",
                    self.gitdir(path)
                );
                None
            }
            Err(e) => {
                warn!("{e}");
                None
            }
        }
    }

    /// An object storage's lock, waiting for it (its holders are quick).
    fn lock_objstore(&self, obst: &Path) -> Option<RepoLock> {
        match self.tree.lock_repo_noting(obst, lock::Wait::Forever, || {
            info!(
                "  waiting: {} is locked by another process",
                Self::name(obst)
            )
        }) {
            Ok(None) => None,
            Ok(Some(l)) => Some(l),
            Err(e) => {
                self.report.critical(format!("{}: {e}", obst.display()));
                None
            }
        }
    }

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

    /// Decide a rewiring into `obst`. Later decisions see `obst` with the
    /// roots of every repository copied into it (as if the plan had run;
    /// a failure only makes the next run decide again).
    fn plan(&mut self, obst: &Path, steps: Vec<Step>, locks: Vec<RepoLock>) {
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
        self.plans.push(Plan {
            obst: obst.to_path_buf(),
            steps,
            locks,
        });
    }

    /// Carry out the plans: those of one object storage in order, different
    /// object storage at the same time.
    fn carry_out(&mut self) {
        let mut by_obst: BTreeMap<PathBuf, Vec<Plan>> = BTreeMap::new();
        for plan in std::mem::take(&mut self.plans) {
            by_obst.entry(plan.obst.clone()).or_default().push(plan);
        }
        let done: Vec<(PathBuf, Done)> = by_obst
            .into_par_iter()
            .map(|(obst, plans)| {
                let done = self.carry_out_on(&obst, plans);
                (obst, done)
            })
            .collect();
        for (obst, done) in done {
            self.outcome.repack.extend(done.attached);
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

    /// The plans of one object storage, under its lock.
    fn carry_out_on(&self, obst: &Path, plans: Vec<Plan>) -> Done {
        let mut done = Done::default();
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
    fn copy_into(&self, obst: &Path, member: &Path, method: FetchMethod, what: &str) -> bool {
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
    fn attach(&self, path: &Path, obst: &Path) -> bool {
        request_repack(self.tree, path);
        let pinned = match self.tree.pin(path) {
            Ok(d) => d,
            Err(e) => {
                self.report.critical(format!("{e}"));
                return false;
            }
        };
        match objstore::point_at(&pinned.io_path(), obst) {
            Ok(()) => true,
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

    /// An object storage changed shape (new, merged into, trimmed,
    /// re-islanded): ask for its full repack, in a way that survives a
    /// crash (grokmirror honours the same request file).
    fn rebuild(&mut self, obst: &Path) {
        request_repack(self.tree, obst);
        self.outcome.full_repack.insert(obst.to_path_buf());
    }

    /// Look at one repository of the tree.
    fn place(&mut self, path: &Path) {
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
        let method = self.settings.objstore_settings.fetch_method;
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
            self.plan(&obst, steps, vec![me]);
            return;
        }
        let siblings = siblings::find_siblings(path, &my_roots, &self.top_roots, false);
        if siblings.is_empty() {
            return;
        }
        let Some(me) = self.try_lock(path) else {
            return;
        };
        // Whose objects seed the new (empty) object storage: ours (linked
        // with plumbing, when configured), or (for a private repository) a
        // public sibling's, which may borrow from elsewhere (only fetch
        // sees all it reaches).
        let (seed, method) = if private {
            match siblings
                .iter()
                .find(|s| !self.is_private(s) && !opted_out(s))
            {
                Some(s) => (s.clone(), FetchMethod::Porcelain),
                None => return,
            }
        } else {
            (path.to_path_buf(), method)
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
        self.plan(&obst, steps, vec![me]);
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
        self.plan(&obst, steps, locks);
    }

    /// The repositories borrowing from each object storage.
    fn load_users(&mut self, all: &[PathBuf]) {
        self.users = all
            .iter()
            .map(|o| (o.clone(), self.altmap.borrowers_of(o)))
            .collect();
    }

    fn users_of(&self, obst: &Path) -> BTreeSet<PathBuf> {
        self.users.get(obst).cloned().unwrap_or_default()
    }

    /// Merge, tend and delete object storage.
    fn tend_objstores(&mut self) {
        let all = objstore::list(&self.objstore_dir);
        info!(
            "Analyzing {} ({} repos)",
            self.objstore_dir.display(),
            all.len()
        );
        self.load_users(&all);
        for o in &all {
            self.obst_roots
                .entry(o.clone())
                .or_insert_with(|| roots::get(self.git, o, false).unwrap_or_default());
        }
        let mut unused = BTreeSet::new();
        for obst in &all {
            if self.users_of(obst).is_empty() {
                unused.insert(obst.clone());
                continue;
            }
            let siblings = self.redundant_with(obst, &all, &unused);
            if !siblings.is_empty() {
                self.merge(obst, siblings);
            }
            if self.users_of(obst).is_empty() {
                unused.insert(obst.clone());
                continue;
            }
            self.tend(obst);
        }
        // Emptied by a merge after they were tended: gone now too.
        for obst in &all {
            if self.users_of(obst).is_empty() {
                unused.insert(obst.clone());
            }
        }
        self.delete_unused(&unused);
    }

    /// Other object storage `obst` should be merged with, by the
    /// configured strategy.
    fn redundant_with(
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
    fn merge(&mut self, obst: &Path, siblings: BTreeSet<PathBuf>) {
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
        let Some(best) = counts.iter().copied().max() else {
            return;
        };
        let dest = group[counts
            .iter()
            .position(|&c| c == best)
            .expect("max is there")]
        .clone();
        for from in group.iter().filter(|o| **o != dest) {
            info!("{}: merging into {}", Self::name(from), Self::name(&dest));
            let remotes = objstore::list_remotes(self.git, from).unwrap_or_default();
            for (virtref, url) in remotes {
                let child = PathBuf::from(&url);
                if !self.users_of(from).contains(&child) {
                    // Not using it any more: just forget it.
                    if let Some(_f) = self.lock_objstore(from) {
                        if let Err(e) = objstore::remove_member(self.git, from, &virtref) {
                            self.report.critical(format!("{e}"));
                        }
                    }
                    continue;
                }
                if self.altmap.is_borrowed(&child) {
                    info!(
                        "   moving: {} later (others borrow from it)",
                        self.gitdir(&child)
                    );
                    continue;
                }
                let Some(_c) = self.try_lock(&child) else {
                    continue;
                };
                info!("   moving: {}", self.gitdir(&child));
                {
                    let Some(_d) = self.lock_objstore(&dest) else {
                        continue;
                    };
                    // Step 1: everything the member reaches goes into the
                    // destination (fetch sees its current lender too).
                    if !self.copy_into(&dest, &child, FetchMethod::Porcelain, "") {
                        continue;
                    }
                    // Step 2: swap lenders.
                    if !self.attach(&child, &dest) {
                        continue;
                    }
                    self.outcome.repack.insert(child.clone());
                }
                if let Some(u) = self.users.get_mut(from) {
                    u.remove(&child);
                }
                self.users
                    .entry(dest.clone())
                    .or_default()
                    .insert(child.clone());
                // Step 3: the old object storage stops tracking it (its
                // objects stay for any private member).
                if let Ok(Some(_f)) = self.tree.lock_repo(from, lock::Wait::No) {
                    if let Err(e) = objstore::remove_member(self.git, from, &virtref) {
                        self.report.critical(format!("{e}"));
                    }
                }
            }
        }
        self.rebuild(&dest);
        if let Some(r) = pinned_roots(self.git, self.tree, &dest, true) {
            self.obst_roots.insert(dest, r);
        }
    }

    /// Whether `member` has really stopped borrowing from `obst`, looked at
    /// through the tree's handles: gone, or a repository whose alternates
    /// lead elsewhere. A path that cannot be looked at without following a
    /// symlink (a directory swapped meanwhile, say) has not: nothing is
    /// removed on a view of the tree that may be incomplete.
    fn truly_left(&self, member: &Path, obst: &Path) -> bool {
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

    /// Bring one object storage in step with its members.
    fn tend(&mut self, obst: &Path) {
        let Some(_o) = self.lock_objstore(obst) else {
            return;
        };
        let users = self.users_of(obst);
        if let Err(e) = objstore::write_member_list(obst, &users) {
            warn!("{e}");
        }
        let forkgroup = objstore::forkgroup_name(obst).unwrap_or_default();
        let remotes = objstore::list_remotes(self.git, obst).unwrap_or_default();
        // Half-written remotes (no URL) of an interrupted run.
        for name in objstore::remote_names(obst) {
            if !remotes.iter().any(|(n, _)| *n == name) {
                if let Err(e) = objstore::remove_member(self.git, obst, &name) {
                    warn!("{e}");
                }
            }
        }
        let os = &self.settings.objstore_settings;
        let mut valid = BTreeSet::new();
        let mut first: Option<String> = None;
        let mut baseline_refs = BTreeSet::new();
        let mut island_core_set = false;
        let mut fetched = false;
        for (virtref, url) in &remotes {
            let child = PathBuf::from(url);
            let gitdir = self.gitdir(&child);
            if (!users.contains(&child) && self.truly_left(&child, obst)) || self.is_private(&child)
            {
                // Not using us (or private now: never fetched again). Its
                // objects stay as long as anybody may borrow them.
                match objstore::remove_member(self.git, obst, virtref) {
                    Ok(()) => info!(
                        "{}: removed remote {} (no longer used)",
                        Self::name(obst),
                        child.display()
                    ),
                    Err(e) => self.report.critical(format!("{e}")),
                }
                continue;
            }
            valid.insert(virtref.clone());
            if objstore::member_needs_fetch(obst, &child) {
                info!("    fetch: {gitdir} -> {}", Self::name(obst));
                // Plumbing reads the member's files: only under its lock
                // (tried; out of lock order).
                let member_lock = match os.fetch_method {
                    FetchMethod::Plumbing => {
                        self.tree.lock_repo(&child, lock::Wait::No).ok().flatten()
                    }
                    FetchMethod::Porcelain => None,
                };
                let method = if member_lock.is_some() {
                    FetchMethod::Plumbing
                } else {
                    FetchMethod::Porcelain
                };
                match objstore::fetch_member(self.git, obst, &child, method) {
                    Ok(_) => fetched = true,
                    Err(e) => self.report.critical(format!(
                        "cannot fetch {gitdir} into {}: {e}",
                        obst.display()
                    )),
                }
            }
            if !self.in_manifest.contains(&gitdir) {
                continue;
            }
            if os.baselines.is_match(&gitdir) {
                baseline_refs.insert(format!("refs/virtual/{virtref}/heads/"));
            }
            if !island_core_set && os.islandcores.is_match(&gitdir) {
                island_core_set = true;
                match objstore::set_config(self.git, obst, "pack.islandCore", virtref) {
                    Ok(true) => {
                        info!(" reconfig: {} (islandCore to {virtref})", Self::name(obst));
                        self.rebuild(obst);
                    }
                    Ok(false) => {}
                    Err(e) => warn!("{e}"),
                }
            }
            // grokmirror 1.x clients clone forks with --reference to the
            // group's first member.
            let reference = match &first {
                None => {
                    first = Some(gitdir.clone());
                    None
                }
                Some(f) => Some(f.clone()),
            };
            self.manifest_updates
                .insert(gitdir, (reference, forkgroup.clone()));
        }
        if !baseline_refs.is_empty() {
            let value: Vec<&str> = baseline_refs.iter().map(String::as_str).collect();
            let value = value.join(" ");
            for (virtref, url) in &remotes {
                if !valid.contains(virtref) {
                    continue;
                }
                let child = Path::new(url);
                match objstore::set_config(self.git, child, "core.alternateRefsPrefixes", &value) {
                    Ok(true) => info!(" reconfig: {} (baseline)", self.gitdir(child)),
                    Ok(false) => {}
                    Err(e) => warn!("{e}"),
                }
            }
        }
        match objstore::virtrefs_with_refs(self.git, obst) {
            Ok(present) => {
                for stale in present.difference(&valid) {
                    info!("     trim: stale virtref {stale}");
                    match objstore::trim_virtref(self.git, obst, stale) {
                        Ok(_) => self.rebuild(obst),
                        Err(e) => warn!("{e}"),
                    }
                }
            }
            Err(e) => warn!("{e}"),
        }
        if fetched {
            debug!("{} got new objects", Self::name(obst));
        }
    }

    /// Delete object storage nobody uses, after a fresh look under its
    /// lock.
    fn delete_unused(&mut self, unused: &BTreeSet<PathBuf>) {
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

    /// Record each member's forkgroup (and reference, for 1.x clients) in
    /// the manifest.
    fn write_manifest(&self) -> anyhow::Result<()> {
        if self.manifest_updates.is_empty() {
            return Ok(());
        }
        let path = &self.settings.manifest;
        let _guard = manifest::lock(path)?;
        let Some(mut m) = Manifest::read(path)? else {
            return Ok(());
        };
        let mut changed = false;
        for (key, (reference, forkgroup)) in &self.manifest_updates {
            let Some(entry) = m.repos.get_mut(key) else {
                continue;
            };
            if entry.reference != *reference || entry.forkgroup.as_deref() != Some(forkgroup) {
                entry.reference = reference.clone();
                entry.forkgroup = Some(forkgroup.clone());
                changed = true;
            }
        }
        if changed {
            m.write(path, self.settings.pretty)?;
        }
        Ok(())
    }
}

/// Write `<outdir>/<forkgroup>.bundle` with every ref of an object storage
/// (`[fsck] preload_bundle_outdir`), for replicas to seed new object
/// storage from (`[remote] preload_bundle_url`). Written beside and renamed
/// into place, so a replica never downloads half a bundle.
pub fn write_preload_bundle(git: &Git, obst: &Path, outdir: &Path, report: &Report) {
    let Some(name) = objstore::forkgroup_name(obst) else {
        return;
    };
    if let Err(e) = std::fs::create_dir_all(outdir) {
        report.critical(format!("cannot create {}: {e}", outdir.display()));
        return;
    }
    let target = outdir.join(format!("{name}.bundle"));
    let tmp = outdir.join(format!(".{name}.bundle.{}.tmp", std::process::id()));
    info!(" bundling: {name}.bundle");
    let made = git.run(
        Some(obst),
        [
            std::ffi::OsStr::new("bundle"),
            "create".as_ref(),
            "-q".as_ref(),
            tmp.as_os_str(),
            "--all".as_ref(),
        ],
    );
    let result = match made {
        Ok(out) if out.success() => std::fs::rename(&tmp, &target).map_err(|e| e.to_string()),
        Ok(out) => Err(out.stderr_str()),
        Err(e) => Err(e.to_string()),
    };
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        report.critical(format!("cannot write {}: {e}", target.display()));
    }
}

/// Whether object storage may lose unreachable objects in this repack,
/// and the member locks that keep it so until the repack is done: every
/// repository borrowing from it (a fresh look at the tree, and no staged
/// clone) is one of its members, none is private, and it holds each
/// member's current refs, so everything any borrower reaches is reachable
/// in it. `None` (keep everything) when any of that fails or a member is
/// busy. Caller holds `obst`'s lock.
pub fn freeze_for_prune(
    git: &Git,
    obst: &Path,
    settings: &Settings,
    objstore_dir: &Path,
) -> Option<Vec<RepoLock>> {
    let tree = Tree::open(&settings.toplevel, grokmirror::tree::Reserved::none())
        .ok()?
        .with_other_root(objstore_dir);
    let remotes = objstore::list_remotes(git, obst).ok()?;
    let members: BTreeSet<PathBuf> = remotes.iter().map(|(_, url)| PathBuf::from(url)).collect();
    if members.is_empty() || objstore::staged_clones_use(&settings.toplevel, obst) {
        return None;
    }
    let private = &settings.objstore_settings.private;
    let toplevel = &settings.toplevel;
    if members.iter().any(|m| {
        private.is_match(&grokmirror::tree::key::manifest_style(toplevel, m))
            || private.is_match(&m.to_string_lossy())
    }) {
        return None;
    }
    let borrowers = AltMap::scan(&[toplevel, objstore_dir]).borrowers_of(obst);
    if borrowers != members {
        debug!(
            "{}: kept whole: {} borrowers, {} members",
            obst.display(),
            borrowers.len(),
            members.len()
        );
        return None;
    }
    let mut locks = Vec::new();
    for m in &members {
        // Out of lock order (we hold the object storage's): only tried.
        let Ok(Some(l)) = tree.lock_repo(m, lock::Wait::No) else {
            debug!("{}: kept whole: {} is busy", obst.display(), m.display());
            return None;
        };
        locks.push(l);
        if !objstore::member_refs_match(git, obst, m).unwrap_or(false) {
            debug!(
                "{}: kept whole: its refs of {} are not current",
                obst.display(),
                m.display()
            );
            return None;
        }
    }
    // Commits the prune drops may be listed in a member's commit-graph
    // (one written before it joined, by us or another tool): it goes now,
    // while the members are held (see repack::drop_commit_graph).
    for m in &members {
        let dropped = tree
            .pin(m)
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|d| grokmirror::repo::repack::drop_commit_graph(&d.io_path()));
        if let Err(e) = dropped {
            warn!("{}: cannot remove its commit-graph: {e}", m.display());
            return None;
        }
    }
    Some(locks)
}
