//! grok-manifest: create or update the manifest of a tree of bare git
//! repositories, compatible with grokmirror 2.x's `grok-manifest`.
//!
//! Two modes. The hook mode (repository paths given, manifest not empty)
//! touches only those repositories and never walks the tree. The full walk
//! (no paths, `--purge`, or an empty/unparseable manifest) finds every
//! repository in parallel, reads refs in-process, and drops entries whose
//! repository is gone.

pub mod cli;
mod progress;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use grokmirror::config::{Config, LogLevel};
use grokmirror::tree::discovery::{self, Found, WalkOptions};
use grokmirror::tree::fsutil;
use grokmirror::git::Git;
use grokmirror::config::glob::GlobList;
use grokmirror::repo::inspect::{self, RepoFacts};
use grokmirror::lock::{self, FileLock};
use grokmirror::formats::manifest::{self, Manifest, RepoEntry};
use grokmirror::tree::toplevel::{self, Need, Refusal};
use grokmirror::{objstore, repo};
use grokmirror_cli::usage;
use rayon::prelude::*;
use tracing::{debug, error, info, warn};

pub use cli::Cli;

/// Parse the command line, run, and return the exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    grokmirror_cli::run_main("grok-manifest", || run(&cli))
}

/// Everything a run needs, with config values filled in where flags are
/// absent (as the reference does).
#[derive(Debug, Clone)]
pub struct Settings {
    /// The manifest file.
    pub manifest: PathBuf,
    /// The top level (real path).
    pub toplevel: PathBuf,
    /// Log file.
    pub logfile: Option<PathBuf>,
    /// Log file verbosity.
    pub loglevel: LogLevel,
    /// Only repos with `git-daemon-export-ok`.
    pub check_export_ok: bool,
    /// Pretty-print.
    pub pretty: bool,
    /// Paths to skip while walking.
    pub ignore_paths: GlobList,
    /// Refs left out of fingerprints.
    pub ignore_refs: GlobList,
    /// Fetch updated repos into their object storage afterwards.
    pub fetch_objstore: bool,
    /// How (`[core] objstore_uses_plumbing`).
    pub fetch_method: objstore::FetchMethod,
    /// Record "now" as modified.
    pub use_now: bool,
    /// Full walk with purge.
    pub purge: bool,
    /// Remove the given paths.
    pub remove: bool,
    /// Wait for the manifest to exist.
    pub wait: bool,
    /// Progress on stderr.
    pub verbose: bool,
    /// Repositories named on the command line.
    pub paths: Vec<PathBuf>,
}

impl Settings {
    /// Combine flags and the optional config file.
    pub fn from_cli(cli: &Cli) -> anyhow::Result<Settings> {
        let config = match &cli.cfgfile {
            Some(p) => Some(Config::load(p)?),
            None => None,
        };
        let mut s = Settings {
            manifest: PathBuf::new(),
            toplevel: PathBuf::new(),
            logfile: cli.logfile.clone(),
            loglevel: LogLevel::Info,
            check_export_ok: cli.check_export_ok,
            pretty: cli.pretty,
            ignore_paths: GlobList::new(cli.ignore_paths.iter().map(String::as_str)),
            ignore_refs: GlobList::new(cli.ignore_refs.iter().map(String::as_str)),
            fetch_objstore: cli.fetch_objstore,
            fetch_method: objstore::FetchMethod::Porcelain,
            use_now: cli.use_now,
            purge: cli.purge,
            remove: cli.remove,
            wait: cli.wait_for_manifest,
            verbose: cli.verbose,
            paths: cli.paths.clone(),
        };
        let mut manifest = cli.manifest.clone();
        let mut toplevel = cli.toplevel.clone();
        if let Some(c) = &config {
            manifest.get_or_insert_with(|| c.core.manifest.clone());
            toplevel.get_or_insert_with(|| c.core.toplevel.clone());
            if s.logfile.is_none() {
                s.logfile = c.core.log.clone();
            }
            s.loglevel = c.core.loglevel;
            s.fetch_method = objstore::FetchMethod::from_config(c.core.objstore_uses_plumbing);
            if c.has_section("manifest") {
                if cli.ignore_paths.is_empty() {
                    s.ignore_paths = c.get_globs("manifest", "ignore", "")?;
                }
                s.check_export_ok |= c.get_bool("manifest", "check_export_ok", false)?;
                s.pretty |= c.get_bool("manifest", "pretty", false)?;
                s.fetch_objstore |= c.get_bool("manifest", "fetch_objstore", false)?;
            }
        }
        s.manifest = manifest.ok_or_else(|| {
            usage("no manifest file given: pass -m PATH, or --cfgfile with [core] manifest")
        })?;
        let toplevel = toplevel.ok_or_else(|| {
            usage("no toplevel given: pass -t PATH, or --cfgfile with [core] toplevel")
        })?;
        s.toplevel = std::fs::canonicalize(&toplevel).map_err(|e| {
            usage(format!(
                "toplevel {} is not usable ({e}); pass an existing directory with -t",
                toplevel.display()
            ))
        })?;
        // grok-manifest reads the tree and writes only inside repositories
        // (fingerprints) and the manifest, which may live elsewhere: a top
        // level it can walk is enough (with --cfgfile, [core] toplevel must
        // also be writable, as in every program reading a config).
        let allow_any = match &config {
            Some(c) => c.get_bool("core", "allow_any_toplevel", false)?,
            None => false,
        };
        toplevel::check(&s.toplevel, Need::Read, allow_any).map_err(|r| {
            let fix = match r {
                Refusal::Unusable(_) => "pass a directory of repositories with -t",
                Refusal::TooWide(_) => {
                    "pass the collection's own directory with -t, or \
                    --cfgfile with [core] allow_any_toplevel = yes if this is really meant"
                }
            };
            usage(format!(
                "toplevel {} is refused: {r}; {fix}",
                s.toplevel.display()
            ))
        })?;
        if s.paths.is_empty() && s.wait {
            return Err(usage(
                "--wait-for-manifest only makes sense when repository paths are given",
            ));
        }
        Ok(s)
    }
}

/// A repository path named on the command line, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// A real repository directory (real path).
    Repo(PathBuf),
    /// A symlink (its own path, made absolute).
    Symlink(PathBuf),
}

/// Resolve and check the paths named on the command line before anything
/// changes: each must be a bare repository (or a symlink) under the top
/// level.
fn resolve_targets(s: &Settings) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::new();
    for given in &s.paths {
        let abs = fsutil::absolute(given);
        let meta = std::fs::symlink_metadata(&abs).map_err(|e| {
            usage(format!(
                "repository {} cannot be read: {e}",
                given.display()
            ))
        })?;
        if meta.file_type().is_symlink() {
            targets.push(Target::Symlink(abs));
            continue;
        }
        let real = std::fs::canonicalize(&abs)
            .with_context(|| format!("cannot resolve {}", given.display()))?;
        if !repo::is_bare_repo(&real) {
            return Err(usage(format!(
                "{} is not a bare git repository (it needs objects/, refs/ and HEAD)",
                given.display()
            )));
        }
        if grokmirror::tree::key::manifest_key(&s.toplevel, &real).is_none() {
            return Err(usage(format!(
                "{} is not under the toplevel {}; pass -t or fix the path",
                given.display(),
                s.toplevel.display()
            )));
        }
        targets.push(Target::Repo(real));
    }
    Ok(targets)
}

/// Take the manifest lock and read the manifest, waiting for it to appear
/// when asked (letting other writers in while we wait).
fn lock_and_read(s: &Settings) -> anyhow::Result<(FileLock, Manifest)> {
    let lock_path = lock::file_lock_path(&s.manifest);
    let mut said = false;
    loop {
        let guard = manifest::lock(&s.manifest)
            .with_context(|| format!("cannot lock manifest {}", s.manifest.display()))?;
        // Under the lock no other writer is mid-write: whatever temp files
        // are here were left by a killed run.
        let stale = fsutil::remove_stale_temps(&s.manifest);
        if stale > 0 {
            warn!(" manifest: removed {stale} temporary file(s) left by an interrupted run");
        }
        if !s.wait || s.manifest.exists() {
            let m = Manifest::read_local(&s.manifest).map_err(|e| {
                anyhow::anyhow!(
                    "{e}; it was left untouched: restore it from a backup, or delete it to have it regenerated"
                )
            })?;
            return Ok((guard, m));
        }
        if !said {
            info!(" manifest: manifest does not exist yet, waiting ...");
            said = true;
        }
        drop(guard);
        debug!("released {} while waiting", lock_path.display());
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// What a run changed, for the closing log line and the exit status.
#[derive(Debug, Default)]
struct Outcome {
    processed: usize,
    failures: usize,
    to_fetch: BTreeSet<PathBuf>,
}

/// Run grok-manifest with parsed flags; returns the exit status.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    let s = Settings::from_cli(cli)?;
    let _log = grokmirror_cli::init_logging("manifest", s.verbose, s.logfile.clone(), s.loglevel)?;
    let started = Instant::now();
    let git = Git::from_env();
    let targets = resolve_targets(&s)?;

    let (guard, mut manifest) = lock_and_read(&s)?;
    // An empty manifest is being regenerated: never stamp it with "now".
    let use_now = s.use_now && !manifest.is_empty();

    if s.remove && !targets.is_empty() {
        remove_paths(&s, &mut manifest);
        write(&s, &manifest)?;
        return Ok(grokmirror_cli::EXIT_OK);
    }

    let full_walk = s.purge || targets.is_empty() || manifest.is_empty();
    let mut outcome = Outcome::default();
    let mut facts: Vec<(PathBuf, anyhow::Result<RepoFacts>)> = Vec::new();
    let mut symlinks: Vec<PathBuf> = Vec::new();
    let mut unexported: Vec<PathBuf> = Vec::new();

    if full_walk {
        let walked = walk_tree(&s, &git, use_now);
        let on_disk: BTreeSet<String> = walked
            .facts
            .iter()
            .map(|(p, _)| p)
            .chain(&walked.unexported)
            .filter_map(|p| grokmirror::tree::key::manifest_key(&s.toplevel, p))
            .collect();
        let gone: Vec<String> = manifest
            .repos
            .keys()
            .filter(|k| !on_disk.contains(*k) && !on_disk.contains(&format!("/{k}")))
            .cloned()
            .collect();
        for key in gone {
            info!(" manifest: purged {key} (gone)");
            manifest.repos.remove(&key);
        }
        // Symlink lists are rebuilt from what is on disk.
        for entry in manifest.repos.values_mut() {
            entry.symlinks.clear();
        }
        facts = walked.facts;
        symlinks = walked.symlinks;
        unexported = walked.unexported;
    }
    if !manifest.is_empty() || !full_walk {
        let repos: Vec<PathBuf> = targets
            .iter()
            .filter_map(|t| match t {
                Target::Repo(p) => Some(p.clone()),
                Target::Symlink(_) => None,
            })
            .filter(|p| !facts.iter().any(|(q, _)| q == p))
            .collect();
        let (exported, hidden): (Vec<PathBuf>, Vec<PathBuf>) = repos
            .into_iter()
            .partition(|p| !s.check_export_ok || p.join("git-daemon-export-ok").exists());
        unexported.extend(hidden);
        facts.extend(
            exported
                .into_par_iter()
                .map(|p| {
                    let f = inspect_and_record(&git, &p, &s.ignore_refs, use_now);
                    (p, f)
                })
                .collect::<Vec<_>>(),
        );
        symlinks.extend(targets.iter().filter_map(|t| match t {
            Target::Symlink(p) => Some(p.clone()),
            Target::Repo(_) => None,
        }));
    }

    for path in &unexported {
        if let Some(key) = grokmirror::tree::key::manifest_key(&s.toplevel, path) {
            if manifest.repos.remove(&key).is_some() {
                info!(" manifest: removed {key} (no longer exported)");
            }
        }
    }
    let now = chrono::Utc::now().timestamp();
    for (path, result) in facts {
        outcome.processed += 1;
        let Some(key) = grokmirror::tree::key::manifest_key(&s.toplevel, &path) else {
            continue;
        };
        match result {
            Ok(f) => {
                if f.forkgroup.is_some() {
                    outcome.to_fetch.insert(path.clone());
                }
                update_entry(&mut manifest, &s.toplevel, &git, &key, f, use_now, now);
            }
            Err(e) => {
                outcome.failures += 1;
                error!(" manifest: cannot read {}: {e:#}", path.display());
            }
        }
    }
    if !symlinks.is_empty() {
        set_symlinks(&mut manifest, &s.toplevel, &symlinks);
    }
    write(&s, &manifest)?;
    drop(guard);

    if s.fetch_objstore {
        fetch_objstores(&git, &outcome.to_fetch, s.fetch_method);
    }
    let elapsed = started.elapsed().as_secs_f64();
    if outcome.processed > 1 {
        info!("Updated {} records in {:.0}s", outcome.processed, elapsed);
    } else {
        info!("Done in {elapsed:.2}s");
    }
    Ok(if outcome.failures > 0 {
        grokmirror_cli::EXIT_FAILURE
    } else {
        grokmirror_cli::EXIT_OK
    })
}

fn write(s: &Settings, manifest: &Manifest) -> anyhow::Result<()> {
    manifest.write(&s.manifest, s.pretty)?;
    debug!(
        "wrote {} ({} entries)",
        s.manifest.display(),
        manifest.len()
    );
    Ok(())
}

/// Inspect one repository and store its fingerprint in it.
fn inspect_and_record(
    git: &Git,
    path: &Path,
    ignore_refs: &GlobList,
    use_now: bool,
) -> anyhow::Result<RepoFacts> {
    let facts = inspect::inspect(git, path, ignore_refs, !use_now)?;
    if let Some(fp) = &facts.refs.fingerprint {
        if let Err(e) = repo::write_fingerprint(path, fp) {
            warn!(
                " manifest: cannot record fingerprint in {}: {e}",
                path.display()
            );
        }
    }
    Ok(facts)
}

struct Walked {
    facts: Vec<(PathBuf, anyhow::Result<RepoFacts>)>,
    symlinks: Vec<PathBuf>,
    unexported: Vec<PathBuf>,
}

/// Walk the whole tree, inspecting each repository on the thread that found
/// it.
fn walk_tree(s: &Settings, git: &Git, use_now: bool) -> Walked {
    info!("   search: finding all repos in {}", s.toplevel.display());
    let facts = Mutex::new(Vec::new());
    let symlinks = Mutex::new(Vec::new());
    let unexported = Mutex::new(Vec::new());
    let progress = {
        use std::io::IsTerminal as _;
        progress::WalkProgress::new(std::io::stderr().is_terminal())
    };
    let opts = WalkOptions {
        ignore: s.ignore_paths.clone(),
        include_objstore: false,
    };
    discovery::walk(&s.toplevel, &opts, &|found| match found {
        Found::Repo(p) => {
            if s.check_export_ok && !p.join("git-daemon-export-ok").exists() {
                unexported.lock().expect("poisoned").push(p);
                return;
            }
            let f = inspect_and_record(git, &p, &s.ignore_refs, use_now);
            progress.one(&p.display().to_string());
            facts.lock().expect("poisoned").push((p, f));
        }
        Found::Symlink(p) => symlinks.lock().expect("poisoned").push(p),
        Found::Dangling(p) => {
            error!(
                " manifest: symlink {} is broken (its target does not exist), ignored",
                p.display()
            )
        }
        Found::Unreadable(p, why) => {
            warn!(" manifest: cannot read directory {}: {why}", p.display())
        }
    });
    let mut facts = facts.into_inner().expect("poisoned");
    facts.sort_by(|a, b| a.0.cmp(&b.0));
    let mut symlinks = symlinks.into_inner().expect("poisoned");
    symlinks.sort();
    Walked {
        facts,
        symlinks,
        unexported: unexported.into_inner().expect("poisoned"),
    }
}

/// Fold one repository's facts into its manifest entry.
fn update_entry(
    manifest: &mut Manifest,
    toplevel: &Path,
    git: &Git,
    key: &str,
    facts: RepoFacts,
    use_now: bool,
    now: i64,
) {
    let Some(fingerprint) = facts.refs.fingerprint.clone() else {
        if manifest.repos.remove(key).is_some() {
            info!(" manifest: removed {key} (no heads)");
        } else {
            info!(" manifest: ignored {key} (no heads)");
        }
        return;
    };
    // grokmirror 1.x wrote keys without the leading slash.
    let bare_key = key.trim_start_matches('/');
    let old = match manifest.repos.remove(key) {
        Some(old) => {
            info!(" manifest: updated {key}");
            old
        }
        None => match manifest.repos.remove(bare_key) {
            Some(old) => {
                info!(" manifest: updated {key}");
                old
            }
            None => {
                info!(" manifest: added {key}");
                RepoEntry::default()
            }
        },
    };
    // `reference` is for grokmirror 1.x clients: the first member of the
    // object storage when the forkgroup changes, the borrowed-from repo for
    // plain alternates, otherwise whatever it was.
    let mut reference = if old.forkgroup != facts.forkgroup {
        facts.alternate.as_deref().and_then(|alt| {
            let mut urls: Vec<String> = objstore::list_remotes(git, alt)
                .unwrap_or_default()
                .into_iter()
                .map(|(_, url)| url)
                .collect();
            urls.sort();
            urls.first()
                .map(|u| grokmirror::tree::key::manifest_style(toplevel, Path::new(u)))
        })
    } else {
        old.reference.clone()
    };
    if reference.is_none() && facts.forkgroup.is_none() {
        if let Some(alt) = &facts.alternate {
            reference = Some(grokmirror::tree::key::manifest_style(toplevel, alt));
        }
    }
    let modified = if use_now {
        now
    } else {
        facts.refs.newest_commit.unwrap_or(now)
    };
    manifest.repos.insert(
        key.to_string(),
        RepoEntry {
            description: facts.description,
            fingerprint: Some(fingerprint),
            forkgroup: facts.forkgroup,
            head: facts.head,
            modified,
            owner: facts.owner,
            reference,
            symlinks: old.symlinks,
            extra: old.extra,
        },
    );
}

/// Record symlinks on the entries of the repos they point at.
fn set_symlinks(manifest: &mut Manifest, toplevel: &Path, symlinks: &[PathBuf]) {
    let mut retarget: BTreeMap<String, String> = BTreeMap::new();
    for link in symlinks {
        let relative = grokmirror::tree::key::manifest_style(toplevel, link);
        let Ok(target) = std::fs::canonicalize(link) else {
            error!(" manifest: symlink {relative} is broken, ignored");
            continue;
        };
        let Some(target_key) = grokmirror::tree::key::manifest_key(toplevel, &target) else {
            error!(" manifest: symlink {relative} points outside toplevel, ignored");
            continue;
        };
        let Some(entry) = manifest.repos.get_mut(&target_key) else {
            error!(
                " manifest: symlink {relative} points to {target_key}, which we do not recognize"
            );
            continue;
        };
        if entry.symlinks.contains(&relative) {
            info!(" manifest: {relative}->{target_key} is already in manifest");
        } else {
            info!(" manifest: symlinked {relative}->{target_key}");
            entry.symlinks.push(relative.clone());
        }
        retarget.insert(relative, target_key);
    }
    // References to a symlinked location should name the real repo.
    for entry in manifest.repos.values_mut() {
        if let Some(target) = entry.reference.as_ref().and_then(|r| retarget.get(r)) {
            entry.reference = Some(target.clone());
        }
    }
}

/// `--remove`: drop the named repos, or the named symlinks from the lists
/// of the repos they point at.
fn remove_paths(s: &Settings, manifest: &mut Manifest) {
    for given in &s.paths {
        let key = grokmirror::tree::key::manifest_style(&s.toplevel, &fsutil::absolute(given));
        if manifest.repos.remove(&key).is_some() {
            info!(" manifest: removed {key}");
            continue;
        }
        let mut found = false;
        for (gitdir, entry) in manifest.repos.iter_mut() {
            if let Some(pos) = entry.symlinks.iter().position(|l| *l == key) {
                entry.symlinks.remove(pos);
                found = true;
                info!(" manifest: removed symlink {key}->{gitdir}");
            }
        }
        if !found {
            info!(" manifest: {key} not in manifest");
        }
    }
}

/// `--fetch-objstore`: copy new objects of updated repos into their object
/// storage, skipping any object storage somebody else is working on (the
/// next grok-fsck catches up); plumbing only where the member's lock is
/// free (see [`objstore::fetch_member_unlocked`]).
fn fetch_objstores(git: &Git, repos: &BTreeSet<PathBuf>, method: objstore::FetchMethod) {
    let mut done: BTreeSet<PathBuf> = BTreeSet::new();
    for repo_path in repos {
        let Some(obst) = objstore::objstore_of(repo_path) else {
            continue;
        };
        if done.contains(&obst) {
            continue;
        }
        match lock::acquire_repo(&obst, lock::Wait::No) {
            Ok(Some(_guard)) => {
                info!(
                    " manifest: objstore {} -> {}",
                    repo_path.display(),
                    obst.file_name().unwrap_or_default().to_string_lossy()
                );
                if let Err(e) = objstore::fetch_member_unlocked(git, &obst, repo_path, method) {
                    warn!(
                        " manifest: cannot fetch {} into {}: {e}",
                        repo_path.display(),
                        obst.display()
                    );
                }
                done.insert(obst);
            }
            Ok(None) => debug!("{} is busy, grok-fsck will fetch it", obst.display()),
            Err(e) => warn!(" manifest: {e}"),
        }
    }
}
