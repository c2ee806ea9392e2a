//! grok-fsck: repack, verify and repair the repositories of a grokmirror
//! tree, compatible with grokmirror 2.x's `grok-fsck` (same config, same
//! status file, same files in the repositories, same locks), so either can
//! continue where the other left off.
//!
//! A run has three phases. First the local manifest and the status file are
//! reconciled: repositories gone from disk are dropped from both, new ones
//! get a first check on a random day within `frequency`. Then every
//! repository is looked at (in parallel, in-process: object counts,
//! fingerprint) to decide whether it needs a repack, a check, or nothing.
//! Last, the work is done, one repository at a time per `[fsck] threads`,
//! each under its repository lock, and the status file is rewritten as
//! work finishes (after each repository, at most once a second, and always
//! before waiting for a lock) so a crash loses next to nothing.

pub mod cli;
mod forks;
mod maintain;
mod progress;
pub mod replication;
pub mod report;
pub mod schedule;
pub mod settings;

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use anyhow::Context;
use chrono::NaiveDate;
use clap::Parser;
use grokmirror::repo::alternates::{self, AltMap, RepoRole};
use grokmirror::config::Config;
use grokmirror::tree::discovery::{self, WalkOptions};
use grokmirror::tree::fsutil;
use grokmirror::git::{Git, GitVersion};
use grokmirror::config::glob::GlobList;
use grokmirror::lock;
use grokmirror::formats::manifest::{self, Manifest};
use grokmirror::repo::object_counts::{self, RepackLevel};
use grokmirror::repo::repack::Precious;
use grokmirror::formats::fsck_status::{self, RepoStatus, Status};
use grokmirror::repo::{self, refs};
use grokmirror_cli::usage;
use rayon::prelude::*;
use tracing::{debug, info, warn};

pub use cli::Cli;
use maintain::Ctx;
use progress::{human_size, Progress};
use report::Report;
use schedule::{Decision, Facts, Mode};
pub use settings::Settings;

/// Parse the command line, run, and return the exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    grokmirror_cli::run_main("grok-fsck", || run(&cli))
}

/// Run grok-fsck with parsed flags. Exit status: 0 when all went well (or
/// another grok-fsck is already at work on this tree), 1 when critical
/// errors were found (they are mailed), 2 for usage or config errors.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    let config = Config::load(&cli.config)?;
    let settings = Settings::from_config(&config, &cli.config)?;
    let _log = grokmirror_cli::init_logging(
        "fsck",
        cli.verbose,
        config.core.log.clone(),
        config.core.loglevel,
    )?;
    let status_dir = settings
        .statusfile
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !status_dir.is_dir() {
        return Err(usage(format!(
            "the directory of [fsck] statusfile, {}, does not exist; create it or change statusfile",
            status_dir.display()
        )));
    }
    let Some(_tree_lock) = fsck_status::try_lock(&settings.statusfile)? else {
        info!(
            "Another grok-fsck holds {}; leaving this tree to it",
            lock::file_lock_path(&settings.statusfile).display()
        );
        return Ok(grokmirror_cli::EXIT_OK);
    };
    let report = Report::default();
    let fsck = Fsck {
        settings: &settings,
        git: Git::from_env(),
        mode: Mode {
            force: cli.forced(),
            repack_only: cli.repack_only,
            repack_all_quick: cli.repack_all_quick,
            repack_all_full: cli.repack_all_full,
        },
        connectivity_only: cli.connectivity_only,
        report: &report,
        today: chrono::Local::now().date_naive(),
        terminal: std::io::stderr().is_terminal(),
        status_write_failed: AtomicBool::new(false),
    };
    let result = fsck.run();
    if let Err(e) = replication::check(&config, &settings.manifest, &report) {
        report.critical(format!("cannot compare with the origin: {e:#}"));
    }
    if let Err(e) = &result {
        // Mailed too; main() prints it.
        report.note(format!("grok-fsck stopped: {e:#}"));
    }
    if !report.is_empty() {
        mail_report(&settings, &report);
    }
    result?;
    Ok(if report.is_empty() {
        grokmirror_cli::EXIT_OK
    } else {
        grokmirror_cli::EXIT_FAILURE
    })
}

fn mail_report(settings: &Settings, report: &Report) {
    let subject = settings.report.subject.clone().unwrap_or_else(|| {
        format!(
            "grok-fsck errors on {} ({})",
            report::hostname(),
            settings.config_path.display()
        )
    });
    match report::send(&settings.report, &subject, &report.text()) {
        Ok(()) => info!("Sent the report to {}", settings.report.to),
        // Shown even without -v: nobody else will tell the operator.
        Err(e) => tracing::error!("{e}; the errors are in the log"),
    }
}

/// The fingerprint grokmirror keeps in the repository, computed (and
/// stored) when missing, as grokmirror does.
fn current_fingerprint(git: &Git, path: &Path) -> Option<String> {
    if let Some(fp) = repo::read_fingerprint(path) {
        return Some(fp);
    }
    let snap = refs::snapshot(git, path, &GlobList::default(), false).ok()?;
    if let Some(fp) = &snap.fingerprint {
        if let Err(e) = repo::write_fingerprint(path, fp) {
            debug!("cannot store the fingerprint of {}: {e}", path.display());
        }
    }
    snap.fingerprint
}

/// The real path of `path`; for a path that does not exist yet, its
/// parent's real path joined with its name.
fn real_path(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => real_path(parent).join(name),
        _ => path.to_path_buf(),
    }
}

/// Manifest keys we will turn into paths: no `..`, no empty or NUL
/// components (the local manifest is ours, but a damaged one must not send
/// us outside the tree).
fn key_is_safe(key: &str) -> bool {
    let rel = key.trim_start_matches('/');
    !rel.is_empty()
        && !rel.contains('\0')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// `key` with exactly one leading slash (1.x manifests had none).
fn normal_key(key: &str) -> String {
    format!("/{}", key.trim_start_matches('/'))
}

/// What looking at one repository found.
struct Analysis {
    /// Status-file key (full path).
    key: String,
    /// A new next-check date, when the decision moves it.
    reschedule: Option<NaiveDate>,
    /// Garbage to prune (with the role and counts), when not repacking.
    garbage: Option<(RepoRole, object_counts::ObjectCounts)>,
    /// The work to do, if any.
    job: Option<Job>,
}

/// One repository's work.
#[derive(Debug, Clone)]
struct Job {
    /// Status-file key (full path).
    key: String,
    path: PathBuf,
    role: RepoRole,
    repack: Option<RepackLevel>,
    fsck: bool,
    /// Repositories sharing objects are never worked on at once.
    family: PathBuf,
    /// Its lock was busy once; next time, wait for it.
    deferred: bool,
}

impl Job {
    fn what(&self) -> &'static str {
        match (self.repack, self.fsck) {
            (Some(RepackLevel::Full), _) => "full repack",
            (Some(RepackLevel::Quick), true) => "repack and fsck",
            (Some(RepackLevel::Quick), false) => "repack",
            (None, _) => "fsck",
        }
    }
}

struct Fsck<'a> {
    settings: &'a Settings,
    git: Git,
    mode: Mode,
    connectivity_only: bool,
    report: &'a Report,
    today: NaiveDate,
    terminal: bool,
    status_write_failed: AtomicBool,
}

impl Fsck<'_> {
    fn run(&self) -> anyhow::Result<()> {
        let Some(mut status) = self.reconcile()? else {
            return Ok(());
        };
        let objstore_dir = real_path(&self.settings.objstore);
        let tree = grokmirror::tree::Tree::open(
            &self.settings.toplevel,
            grokmirror::tree::Reserved::none(),
        )
        .with_context(|| {
            format!(
                "cannot open the top level {}",
                self.settings.toplevel.display()
            )
        })?;
        let tree = tree.with_other_root(&objstore_dir);
        // Object storage first: it decides every repository's role.
        let repos: Vec<PathBuf> = status
            .repos
            .keys()
            .map(PathBuf::from)
            .filter(|p| !self.is_objstore_path(p, &objstore_dir))
            .collect();
        let forks = forks::Forks::new(
            &self.git,
            &tree,
            self.settings,
            self.report,
            &objstore_dir,
            &repos,
        )
        .run(&repos);
        info!("   search: finding all repos using alternates");
        let altmap = AltMap::scan(&[&self.settings.toplevel, &objstore_dir]);
        let commit_graph_supported = self.commit_graph_supported();

        let ctx = Ctx {
            git: &self.git,
            settings: self.settings,
            report: self.report,
            altmap: &altmap,
            commit_graph_supported,
            today: self.today,
            tree: &tree,
        };
        let mut jobs = self.analyze_tree(&ctx, &mut status, &objstore_dir, &forks.repack);
        jobs.extend(self.analyze_objstore(&ctx, &mut status, &objstore_dir, &forks.full_repack));
        self.write_status(&status);
        if jobs.is_empty() {
            info!("No repos need attention.");
            return Ok(());
        }
        // Object storage first: its members' repacks then drop more (loose
        // objects only go once their object storage has them packed).
        jobs.sort_by(|a, b| {
            let obst = |j: &Job| j.role != RepoRole::Objstore;
            (obst(a), &a.key).cmp(&(obst(b), &b.key))
        });
        self.process(&ctx, jobs, status);
        Ok(())
    }

    fn commit_graph_supported(&self) -> bool {
        if !self.settings.policy.commit_graph {
            return false;
        }
        match self.git.version() {
            Ok(v) if v >= GitVersion(2, 18, 0) => true,
            Ok(v) => {
                info!("git {v} is too old to write commit-graphs; not writing them");
                false
            }
            Err(e) => {
                warn!("{e}; not writing commit-graphs");
                false
            }
        }
    }

    fn is_objstore_path(&self, path: &Path, objstore_dir: &Path) -> bool {
        path.starts_with(objstore_dir) || path.starts_with(&self.settings.objstore)
    }

    fn write_status(&self, status: &Status) {
        self.store_status(status, true)
    }

    /// Write the status file; `durable` waits for the disk.
    fn store_status(&self, status: &Status, durable: bool) {
        debug!("writing {}", self.settings.statusfile.display());
        let result = if durable {
            status.write(&self.settings.statusfile)
        } else {
            status.write_quickly(&self.settings.statusfile)
        };
        match result {
            Ok(()) => {}
            // Reported once; later writes keep trying (the disk may recover).
            Err(e) if !self.status_write_failed.swap(true, Ordering::SeqCst) => {
                self.report.critical(e.to_string())
            }
            Err(e) => debug!("{e}"),
        }
    }

    /// Bring the manifest and the status file in line with the disk: drop
    /// repositories that are gone, schedule new ones. `None` when there is
    /// no manifest (nothing mirrored yet).
    fn reconcile(&self) -> anyhow::Result<Option<Status>> {
        let s = self.settings;
        info!("Analyzing {}", s.manifest.display());
        let guard = manifest::lock(&s.manifest)
            .with_context(|| format!("cannot lock manifest {}", s.manifest.display()))?;
        let mut manifest = match Manifest::read(&s.manifest) {
            Ok(Some(m)) => m,
            Ok(None) => {
                warn!(
                    "There is no manifest at {}, so nothing to check (grok-pull writes it)",
                    s.manifest.display()
                );
                return Ok(None);
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context("the manifest says which repositories to check; nothing was changed"))
            }
        };
        let mut status = if s.statusfile.exists() {
            info!("   status: reading {}", s.statusfile.display());
            Status::read(&s.statusfile)?
        } else {
            Status::default()
        };
        let mut rng = rand::rng();
        let mut manifest_changed = false;
        let mut wanted: HashSet<String> = HashSet::new();
        let mut new_repos: Vec<(String, PathBuf)> = Vec::new();
        let keys: Vec<String> = manifest.repos.keys().cloned().collect();
        for key in keys {
            if !key_is_safe(&key) {
                warn!(
                    "manifest {}: ignoring odd entry {key:?}",
                    s.manifest.display()
                );
                continue;
            }
            let path = grokmirror::tree::key::key_path(&s.toplevel, &key);
            let full = path.to_string_lossy().into_owned();
            if !path.is_dir() {
                // A grok-pull moving it aside to re-clone it holds its lock.
                if grokmirror::lock::FileLock::is_held(&lock::repo_lock_path(&path))
                    .unwrap_or(false)
                {
                    info!("     busy: {key} is not on disk but locked, left alone");
                    continue;
                }
                info!("     gone: {key} is no longer on disk, dropped");
                manifest.repos.remove(&key);
                status.repos.remove(&full);
                manifest_changed = true;
                continue;
            }
            wanted.insert(normal_key(&key));
            match status.repos.get_mut(&full) {
                None => new_repos.push((full, path)),
                Some(entry) if entry.nextcheck().is_none() => {
                    let next =
                        schedule::first_check(self.today, s.frequency, self.mode.force, &mut rng);
                    info!("{full}: no usable next check date, next check on {next}");
                    entry.set_nextcheck(next);
                }
                Some(_) => {}
            }
        }
        let fingerprints: Vec<(String, Option<String>)> = new_repos
            .par_iter()
            .map(|(full, path)| (full.clone(), current_fingerprint(&self.git, path)))
            .collect();
        for (full, fp) in fingerprints {
            let next = schedule::first_check(self.today, s.frequency, self.mode.force, &mut rng);
            info!("{full}:");
            info!("    added: next check on {}", fsck_status::format_date(next));
            status
                .repos
                .insert(full, RepoStatus::new_repo(next, fp.as_deref()));
        }
        if manifest_changed {
            manifest.write(&s.manifest, s.pretty)?;
        }
        drop(guard);

        // Repositories no longer in the manifest are no longer ours to
        // check; object storage is looked at separately.
        let objstore_dir =
            std::fs::canonicalize(&s.objstore).unwrap_or_else(|_| s.objstore.clone());
        status.repos.retain(|full, _| {
            let path = Path::new(full);
            if self.is_objstore_path(path, &objstore_dir) {
                return true;
            }
            let keep = grokmirror::tree::key::manifest_key(&s.toplevel, path).is_some_and(|k| wanted.contains(&k));
            if !keep {
                debug!("{full} is no longer in the manifest, dropped from the status");
            }
            keep
        });
        self.write_status(&status);
        Ok(Some(status))
    }

    /// Decide what every repository of the tree needs.
    fn analyze_tree(
        &self,
        ctx: &Ctx,
        status: &mut Status,
        objstore_dir: &Path,
        rewired: &BTreeSet<PathBuf>,
    ) -> Vec<Job> {
        let entries: Vec<(String, RepoStatus)> = status
            .repos
            .iter()
            .filter(|(k, _)| !self.is_objstore_path(Path::new(k), objstore_dir))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        info!(
            "Analyzing {} ({} repos)",
            self.settings.toplevel.display(),
            entries.len()
        );
        let analyzed = AtomicUsize::new(0);
        let queued = AtomicUsize::new(0);
        let ticker = Mutex::new(progress::Ticker::new());
        let results: Vec<Analysis> = entries
            .par_iter()
            .map(|(key, entry)| {
                let rewired = rewired.contains(Path::new(key));
                let result = self.analyze_one(ctx, key, entry, objstore_dir, rewired);
                let n = analyzed.fetch_add(1, Ordering::Relaxed) + 1;
                if result.job.is_some() {
                    queued.fetch_add(1, Ordering::Relaxed);
                }
                if !self.terminal && ticker.lock().expect("ticker poisoned").due() {
                    info!(
                        "      ---: {n}/{} analyzed, {} queued",
                        entries.len(),
                        queued.load(Ordering::Relaxed)
                    );
                }
                result
            })
            .collect();
        let mut jobs = Vec::new();
        for a in results {
            if let (Some(next), Some(entry)) = (a.reschedule, status.repos.get_mut(&a.key)) {
                entry.set_nextcheck(next);
            }
            // One prune at a time, after the (parallel, read-only) look.
            if let Some((role, counts)) = &a.garbage {
                self.prune_garbage(ctx, Path::new(&a.key), role, counts);
            }
            jobs.extend(a.job);
        }
        info!(
            "     done: {} analyzed, {} queued",
            entries.len(),
            jobs.len()
        );
        jobs
    }

    /// Look at one repository of the tree (reading only, apart from
    /// pointing FETCH_HEAD at /dev/null and re-clone requests).
    fn analyze_one(
        &self,
        ctx: &Ctx,
        key: &str,
        entry: &RepoStatus,
        objstore_dir: &Path,
        rewired: bool,
    ) -> Analysis {
        let nothing = Analysis {
            key: key.to_string(),
            reschedule: None,
            garbage: None,
            job: None,
        };
        let path = PathBuf::from(key);
        let gitdir = grokmirror::tree::key::manifest_style(&self.settings.toplevel, &path);
        let Some(repo) = ctx.open(&path) else {
            return nothing;
        };
        maintain::fix_fetch_head(&repo);
        let role = RepoRole::of(&path, ctx.altmap, objstore_dir);
        let missing_alt = grokmirror::repo::alternates::read(&path.join("objects"))
            .into_iter()
            .find(|dir| !dir.is_dir());
        if let Some(dir) = missing_alt {
            self.report.critical(format!(
                "  reclone: {gitdir} (its alternates {} are gone)",
                dir.display()
            ));
            if role.lends_objects() {
                self.report
                    .critical("\tused for alternates, not requesting auto-reclone");
            } else {
                maintain::request_reclone(&repo, "Alternates repository gone");
            }
            return nothing;
        }
        let counts = match object_counts::scan(&path) {
            Ok(c) => c,
            Err(e) => {
                warn!("{e}; skipping it");
                return nothing;
            }
        };
        let fingerprint = current_fingerprint(&self.git, &path);
        let due = entry.nextcheck().is_none_or(|d| d <= self.today);
        let facts = Facts {
            due,
            changed: entry.fingerprint() != fingerprint.as_deref(),
            counts: &counts,
            repack_requested: path.join(repo::REPACK_FILE).exists(),
            precious_always: self.settings.policy.precious == Precious::Always
                && grokmirror::repo::git_config::is_precious(&path),
        };
        let mut decision = schedule::decide(&facts, &self.mode, self.settings.repack);
        if rewired && decision.repack.is_none() {
            // It just joined (or lent to) object storage: a repack drops
            // what that now holds.
            decision.repack = Some(RepackLevel::Quick);
            decision.reason = "object storage";
        }
        let reschedule = decision.reschedule.then(|| {
            schedule::next_check(
                self.today,
                self.settings.frequency,
                self.mode.force,
                &mut rand::rng(),
            )
        });
        if decision.reason == "aged" {
            info!("     aged: {gitdir} (changed since its last check, repacking)");
        }
        let garbage = (counts.garbage > 0 && decision.repack.is_none())
            .then(|| (role.clone(), counts.clone()));
        let job = self.job(key, path, role, &decision);
        Analysis {
            key: key.to_string(),
            reschedule,
            garbage,
            job,
        }
    }

    fn job(&self, key: &str, path: PathBuf, role: RepoRole, d: &Decision) -> Option<Job> {
        if d.repack.is_none() && !d.fsck {
            return None;
        }
        let job = Job {
            key: key.to_string(),
            family: alternates::family_root(&path),
            path,
            role,
            repack: d.repack,
            fsck: d.fsck,
            deferred: false,
        };
        info!("   queued: {} ({})", job.key, job.what());
        Some(job)
    }

    /// Prune a repository whose object store holds leftovers (temporary
    /// files of interrupted work), when it is free right now.
    fn prune_garbage(
        &self,
        ctx: &Ctx,
        path: &Path,
        role: &RepoRole,
        counts: &object_counts::ObjectCounts,
    ) {
        let gitdir = grokmirror::tree::key::manifest_style(&self.settings.toplevel, path);
        match ctx.tree.lock_repo(path, lock::Wait::No) {
            Ok(Some(_guard)) => {
                info!(
                    "  garbage: {gitdir} ({} files, {} KiB)",
                    counts.garbage, counts.size_garbage
                );
                if let Some(repo) = ctx.open(path) {
                    ctx.prune_if_safe(&repo, role);
                }
            }
            Ok(None) => debug!("{gitdir} is busy, its garbage can wait"),
            Err(e) => warn!("{e}"),
        }
    }

    /// Object-storage repositories: repacked by their counts (full repacks
    /// on schedule), checked on schedule. Merging, creating and deleting
    /// them is the object-storage work's, not done here.
    fn analyze_objstore(
        &self,
        ctx: &Ctx,
        status: &mut Status,
        objstore_dir: &Path,
        full: &BTreeSet<PathBuf>,
    ) -> Vec<Job> {
        // Entries of object storage that is gone.
        status.repos.retain(|k, _| {
            let p = Path::new(k);
            !self.is_objstore_path(p, objstore_dir) || p.is_dir()
        });
        if !objstore_dir.is_dir() {
            return Vec::new();
        }
        let opts = WalkOptions {
            include_objstore: true,
            ..Default::default()
        };
        let found = discovery::find_repos(objstore_dir, &opts).repos;
        info!(
            "Analyzing {} ({} repos)",
            objstore_dir.display(),
            found.len()
        );
        let mut jobs = Vec::new();
        for path in found {
            let path = std::fs::canonicalize(&path).unwrap_or(path);
            let key = path.to_string_lossy().into_owned();
            let is_new = !status.repos.contains_key(&key);
            if is_new {
                status
                    .repos
                    .insert(key.clone(), RepoStatus::new_repo(self.today, None));
            }
            // New, merged into, trimmed or re-islanded: a full repack now.
            let rebuilt = is_new || full.contains(&path);
            if rebuilt {
                if let Some(e) = status.repos.get_mut(&key) {
                    e.set_nextcheck(self.today);
                }
            }
            if !ctx.altmap.is_borrowed(&path) {
                debug!("{key} is used by no repository (left for object-storage maintenance)");
            }
            let entry = &status.repos[&key];
            let counts = match object_counts::scan(&path) {
                Ok(c) => c,
                Err(e) => {
                    warn!("{e}; skipping it");
                    continue;
                }
            };
            let facts = Facts {
                due: entry.nextcheck().is_none_or(|d| d <= self.today),
                changed: false,
                counts: &counts,
                repack_requested: path.join(repo::REPACK_FILE).exists(),
                precious_always: false,
            };
            let decision =
                schedule::decide_objstore(&facts, rebuilt, &self.mode, self.settings.repack);
            jobs.extend(self.job(&key, path, RepoRole::Objstore, &decision));
        }
        jobs
    }

    /// Do the queued work, `[fsck] threads` repositories at a time.
    fn process(&self, ctx: &Ctx, jobs: Vec<Job>, status: Status) {
        let total = jobs.len();
        info!("Processing {total} repositories");
        let started = Instant::now();
        let progress = Progress::new(total, self.terminal);
        let queue = Mutex::new(Queue {
            pending: jobs.into(),
            active: HashSet::new(),
        });
        let wake = Condvar::new();
        let status = Mutex::new(Recorded {
            status,
            dirty: false,
        });
        let workers = self.settings.threads.min(total).max(1);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| self.worker(ctx, &queue, &wake, &status, &progress));
            }
        });
        let status = status.into_inner().expect("status poisoned").status;
        self.write_status(&status);
        let saved = progress.saved_kib();
        let elapsed = started.elapsed().as_secs_f64();
        if saved > 0 {
            info!(
                "Processed {} repos in {elapsed:.2}s, {} saved",
                progress.done(),
                human_size(saved)
            );
        } else {
            info!("Processed {} repos in {elapsed:.2}s", progress.done());
        }
    }

    fn worker(
        &self,
        ctx: &Ctx,
        queue: &Mutex<Queue>,
        wake: &Condvar,
        status: &Mutex<Recorded>,
        progress: &Progress,
    ) {
        loop {
            let Some(mut job) = Queue::take(queue, wake) else {
                return;
            };
            let guard = match ctx.tree.lock_repo(&job.path, lock::Wait::No) {
                Ok(Some(g)) => Some(g),
                Ok(None) if !job.deferred => {
                    // Busy (a pull is fetching it, say): do the others first.
                    debug!("{} is locked, coming back to it later", job.key);
                    job.deferred = true;
                    Queue::put_back(queue, wake, job);
                    continue;
                }
                Ok(None) => {
                    // Record what is done before waiting, maybe for long.
                    self.flush_status(&mut status.lock().expect("status poisoned"));
                    let lock_path = lock::repo_lock_path(&job.path);
                    match ctx
                        .tree
                        .lock_repo_noting(&job.path, lock::Wait::Forever, || {
                            info!(
                                "  waiting: {} is locked by another process ({}), waiting for it",
                                job.key,
                                lock_path.display()
                            )
                        }) {
                        Ok(g) => g,
                        Err(e) => {
                            self.report.critical(format!("{}: {e}", job.key));
                            None
                        }
                    }
                }
                Err(e) => {
                    self.report.critical(format!("{}: {e}", job.key));
                    None
                }
            };
            if let Some(_guard) = guard {
                self.work(ctx, &job, status, progress);
            } else {
                progress.finish_one(0);
            }
            Queue::done(queue, wake, &job.family);
        }
    }

    fn flush_status(&self, recorded: &mut Recorded) {
        if recorded.dirty {
            self.store_status(&recorded.status, false);
            recorded.dirty = false;
        }
    }

    /// One repository's work, under its lock.
    fn work(&self, ctx: &Ctx, job: &Job, status: &Mutex<Recorded>, progress: &Progress) {
        info!("{}:", job.key);
        progress.start(&grokmirror::tree::key::manifest_style(&self.settings.toplevel, &job.path));
        // Only repacks (and their prunes) change the size.
        let size = |p: &Path| match job.repack {
            Some(_) => object_counts::scan(p).map(|c| c.total_kib()).unwrap_or(0),
            None => 0,
        };
        let before = size(&job.path);
        let started = Instant::now();
        // Object storage loses unreachable objects only while nothing can
        // need them (its members held still).
        let frozen = match (&job.role, job.repack) {
            (RepoRole::Objstore, Some(_)) if self.settings.policy.prune => forks::freeze_for_prune(
                &self.git,
                &job.path,
                self.settings,
                &real_path(&self.settings.objstore),
            ),
            _ => None,
        };
        let Some(repo) = ctx.open(&job.path) else {
            progress.finish_one(0);
            return;
        };
        if let Some(level) = job.repack {
            let done = match &frozen {
                Some(_) => {
                    let plan =
                        grokmirror::repo::repack::plan_pruned_objstore(level, &self.settings.policy);
                    ctx.repack_with_plan(&repo, &job.role, level, plan)
                }
                None => ctx.repack(&repo, &job.role, level),
            };
            if !done {
                warn!("Repacking {} was unsuccessful", job.key);
                progress.finish_one(0);
                return;
            }
        }
        if job.fsck {
            ctx.fsck(&repo, &job.role, self.connectivity_only);
        }
        drop(frozen);
        if job.repack == Some(RepackLevel::Full) && job.role == RepoRole::Objstore {
            if let Some(outdir) = &self.settings.objstore_settings.preload_bundle_outdir {
                forks::write_preload_bundle(&self.git, &job.path, outdir, self.report);
            }
        }
        let elapsed = started.elapsed().as_secs();
        let fingerprint = if job.role == RepoRole::Objstore {
            repo::read_fingerprint(&job.path)
        } else {
            current_fingerprint(&self.git, &repo.io())
        };
        let mut next = None;
        {
            let mut recorded = status.lock().expect("status poisoned");
            let st = &mut recorded.status;
            let entry = st
                .repos
                .entry(job.key.clone())
                .or_insert_with(|| RepoStatus::new_repo(self.today, None));
            let next_date = schedule::next_check(
                self.today,
                self.settings.frequency,
                self.mode.force,
                &mut rand::rng(),
            );
            if let Some(level) = job.repack {
                entry.set_lastrepack(self.today);
                if level == RepackLevel::Full {
                    let request = repo.io().join(repo::REPACK_FILE);
                    if request.exists() {
                        if let Err(e) = std::fs::remove_file(&request) {
                            warn!(
                                "cannot remove {}: {e}",
                                job.path.join(repo::REPACK_FILE).display()
                            );
                        }
                    }
                    entry.set_lastfullrepack(self.today);
                    entry.set_lastcheck(self.today);
                    entry.set_nextcheck(next_date);
                    next = Some(next_date);
                }
            }
            if job.fsck {
                entry.set_lastcheck(self.today);
                entry.set_nextcheck(next_date);
                next = Some(next_date);
            }
            entry.set_fingerprint(fingerprint.as_deref());
            entry.set_elapsed(elapsed);
            // After every repository, so a killed run loses nothing.
            recorded.dirty = true;
            self.flush_status(&mut recorded);
        }
        let saved = before.saturating_sub(size(&job.path));
        if let Some(next) = next {
            info!("     next: {}", fsck_status::format_date(next));
        }
        if saved > 0 {
            info!("     done: {elapsed}s, {} saved", human_size(saved));
        } else {
            info!("     done: {elapsed}s");
        }
        progress.finish_one(saved);
    }
}

/// The status as the workers update it.
struct Recorded {
    status: Status,
    /// Holds records not written yet.
    dirty: bool,
}

/// The work queue shared by the workers.
struct Queue {
    pending: VecDeque<Job>,
    /// Families being worked on now.
    active: HashSet<PathBuf>,
}

impl Queue {
    /// The next job whose family is free, waiting while all pending jobs
    /// belong to busy families; `None` when nothing is left.
    fn take(queue: &Mutex<Queue>, wake: &Condvar) -> Option<Job> {
        let mut q = queue.lock().expect("queue poisoned");
        loop {
            if q.pending.is_empty() {
                return None;
            }
            if let Some(pos) = q.pending.iter().position(|j| !q.active.contains(&j.family)) {
                let job = q.pending.remove(pos).expect("position is valid");
                q.active.insert(job.family.clone());
                return Some(job);
            }
            q = wake.wait(q).expect("queue poisoned");
        }
    }

    fn put_back(queue: &Mutex<Queue>, wake: &Condvar, job: Job) {
        let mut q = queue.lock().expect("queue poisoned");
        q.active.remove(&job.family);
        q.pending.push_back(job);
        wake.notify_all();
    }

    fn done(queue: &Mutex<Queue>, wake: &Condvar, family: &Path) {
        let mut q = queue.lock().expect("queue poisoned");
        q.active.remove(family);
        wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(key_is_safe("/a/b.git"));
        assert!(key_is_safe("a.git"));
        assert!(!key_is_safe("/a/../b.git"));
        assert!(!key_is_safe("/"));
        assert!(!key_is_safe("/a//b.git"));
        assert_eq!(normal_key("a.git"), "/a.git");
        assert_eq!(normal_key("/a.git"), "/a.git");
    }

    fn job(name: &str, family: &str) -> Job {
        Job {
            key: name.into(),
            path: name.into(),
            role: RepoRole::Standalone,
            repack: None,
            fsck: true,
            family: family.into(),
            deferred: false,
        }
    }

    #[test]
    fn queue_never_hands_out_two_of_a_family() {
        let queue = Mutex::new(Queue {
            pending: vec![job("a", "f1"), job("b", "f1"), job("c", "f2")].into(),
            active: HashSet::new(),
        });
        let wake = Condvar::new();
        let first = Queue::take(&queue, &wake).unwrap();
        assert_eq!(first.key, "a");
        // "b" shares a's family, so "c" comes next.
        assert_eq!(Queue::take(&queue, &wake).unwrap().key, "c");
        Queue::done(&queue, &wake, Path::new("f1"));
        assert_eq!(Queue::take(&queue, &wake).unwrap().key, "b");
        Queue::done(&queue, &wake, Path::new("f1"));
        assert!(Queue::take(&queue, &wake).is_none());
    }
}
