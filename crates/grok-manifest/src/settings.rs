//! Flags and config combined into the settings of one run, checked before
//! anything changes.

use std::path::{Path, PathBuf};

use grokmirror::config::glob::GlobList;
use grokmirror::config::{Config, LogLevel};
use grokmirror::objstore;
use grokmirror::tree::toplevel::{self, Need, Refusal};
use grokmirror_cli::usage;

use crate::cli::Cli;

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
        check_toplevel(&s.toplevel, config.as_ref())?;
        if s.paths.is_empty() && s.wait {
            return Err(usage(
                "--wait-for-manifest only makes sense when repository paths are given",
            ));
        }
        Ok(s)
    }
}

/// Refuse a top level grok-manifest must not walk (the root, a home, a
/// file), unless `[core] allow_any_toplevel` says it is meant.
fn check_toplevel(toplevel: &Path, config: Option<&Config>) -> anyhow::Result<()> {
    // grok-manifest reads the tree and writes only inside repositories
    // (fingerprints) and the manifest, which may live elsewhere: a top
    // level it can walk is enough (with --cfgfile, [core] toplevel must
    // also be writable, as in every program reading a config).
    let allow_any = match config {
        Some(c) => c.get_bool("core", "allow_any_toplevel", false)?,
        None => false,
    };
    toplevel::check(toplevel, Need::Read, allow_any).map_err(|r| {
        let fix = match r {
            Refusal::Unusable(_) => "pass a directory of repositories with -t",
            Refusal::TooWide(_) => {
                "pass the collection's own directory with -t, or \
                --cfgfile with [core] allow_any_toplevel = yes if this is really meant"
            }
        };
        usage(format!(
            "toplevel {} is refused: {r}; {fix}",
            toplevel.display()
        ))
    })?;
    Ok(())
}
