//! grok-bundle: write `clone.bundle` files for the repositories of a
//! grokmirror tree, compatible with grokmirror 2.0.12's `grok-bundle`, and a
//! bundle list beside each for `git clone --bundle-uri`.
//!
//! The repositories are those of the manifest named by `[core] manifest`
//! (found under `[core] toplevel`) that match `-i`. Each one gets
//! `<outdir>/<manifest path with every ".git" removed>/` holding:
//!
//! - `clone.bundle`: `git bundle create` of the `-r` rev-list arguments,
//!   written to a temp file in the same directory and renamed into place;
//! - `.fingerprint`: the fingerprint of the repository's refs when that
//!   bundle was made (SPEC §1.2, computed from the refs, not read from
//!   `grokmirror.fingerprint`), the file the reference keeps too; a
//!   bundle is rebuilt only when it differs;
//! - `incremental.bundle`, when the repository changed since
//!   `clone.bundle` was made and what is new is at most a quarter of it:
//!   everything since `clone.bundle` (see [`incremental`]); otherwise
//!   `clone.bundle` is rebuilt and the increment removed;
//! - `bundle-list`: a bundle list in git's config format (`[bundle]
//!   version = 1`, `mode = all`, `heuristic = creationToken`, a `[bundle
//!   "clone"]` with the relative `uri = clone.bundle`, and the increment
//!   when there is one, each with its `creationToken`), for `git clone
//!   --bundle-uri=<its URL>`.

pub mod check;
pub mod cli;
pub mod incremental;
mod pyfloat;
pub mod work;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use grokmirror::config::Config;
use grokmirror::formats::manifest::Manifest;
use grokmirror::git::Git;
use grokmirror::tree::Dir;
use tracing::{error, info};

pub use cli::Cli;
pub use work::{Outcome, BUNDLE_FILE, BUNDLE_LIST_FILE, FINGERPRINT_FILE};

/// Parse the command line, run, and return the exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    grokmirror_cli::run_main("grok-bundle", || run(&cli))
}

/// Everything a run needs, from the flags and the config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The top level (real path).
    pub toplevel: PathBuf,
    /// The manifest listing the repositories.
    pub manifest: PathBuf,
    /// Where the bundles go, as given (for messages).
    pub outdir: PathBuf,
    /// Extra git arguments (before the subcommand).
    pub gitargs: Vec<String>,
    /// Rev-list arguments of `git bundle create`.
    pub revlistargs: Vec<String>,
    /// Largest repository bundled, in GiB.
    pub maxsize: i64,
    /// Patterns choosing repositories (fnmatch).
    pub include: Vec<String>,
}

impl Settings {
    /// Combine the flags with the loaded config.
    pub fn new(cli: &Cli, config: &Config) -> Settings {
        Settings {
            toplevel: config.core.toplevel.clone(),
            manifest: config.core.manifest.clone(),
            // Present: clap requires it unless --config-check, which
            // never gets here.
            outdir: cli.outdir.clone().unwrap_or_default(),
            gitargs: cli.gitargs.split_whitespace().map(String::from).collect(),
            revlistargs: cli
                .revlistargs
                .split_whitespace()
                .map(String::from)
                .collect(),
            maxsize: cli.maxsize,
            include: cli.include.clone(),
        }
    }

    /// Whether the manifest key `key` is chosen by `-i` (a pattern matches
    /// the key, or the key matches the pattern without its leading `/`s).
    pub fn includes(&self, key: &str) -> bool {
        self.include.iter().any(|p| {
            grokmirror::config::glob::Glob::new(p).is_match(key)
                || grokmirror::config::glob::Glob::new(p.trim_start_matches('/')).is_match(key)
        })
    }
}

/// How many repositories ended which way.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Bundles written.
    pub generated: usize,
    /// Bundles that were up to date.
    pub unchanged: usize,
    /// Repositories skipped (too big, no refs, locked).
    pub skipped: usize,
    /// Repositories that failed.
    pub failed: usize,
}

/// Run grok-bundle with parsed flags; returns the exit status.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    if cli.check.config_check {
        return Ok(check::run(cli));
    }
    let config = Config::load(&cli.config)?;
    let _log = grokmirror_cli::init_logging(
        "bundle",
        cli.verbose,
        config.core.log.clone(),
        config.core.loglevel,
    )?;
    let settings = Settings::new(cli, &config);
    let manifest = match Manifest::read(&settings.manifest) {
        Ok(Some(m)) => m,
        Ok(None) => {
            info!(
                " manifest: no manifest at {}, nothing to bundle",
                settings.manifest.display()
            );
            return Ok(grokmirror_cli::EXIT_OK);
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)).with_context(|| {
                format!(
                    "cannot read the manifest {}; regenerate it with grok-manifest",
                    settings.manifest.display()
                )
            })
        }
    };
    std::fs::create_dir_all(&settings.outdir).with_context(|| {
        format!(
            "cannot create the output directory {}; pass a writable directory with -o",
            settings.outdir.display()
        )
    })?;
    let out = Dir::open_root(&settings.outdir).with_context(|| {
        format!(
            "cannot open the output directory {}; pass a readable directory with -o",
            settings.outdir.display()
        )
    })?;
    let git = Git::from_env();
    let summary = bundle_all(&settings, &git, &out, &manifest);
    info!(
        " bundles: {} generated, {} unchanged, {} skipped, {} failed",
        summary.generated, summary.unchanged, summary.skipped, summary.failed
    );
    Ok(if summary.failed > 0 {
        grokmirror_cli::EXIT_FAILURE
    } else {
        grokmirror_cli::EXIT_OK
    })
}

/// Bundle every chosen repository of `manifest` into `out`.
pub fn bundle_all(settings: &Settings, git: &Git, out: &Dir, manifest: &Manifest) -> Summary {
    let mut summary = Summary::default();
    for key in manifest.repos.keys() {
        if !settings.includes(key) {
            tracing::debug!("{key} does not match include list, skipping");
            continue;
        }
        match work::bundle_one(settings, git, out, key) {
            Ok(Outcome::Generated) => summary.generated += 1,
            Ok(Outcome::Unchanged) => summary.unchanged += 1,
            Ok(Outcome::Skipped) => summary.skipped += 1,
            Err(e) => {
                error!("{e}");
                summary.failed += 1;
            }
        }
    }
    summary
}
