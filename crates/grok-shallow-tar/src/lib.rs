//! grok-shallow-tar: shallow, single-branch clones of chosen branches of
//! the mirrored repositories, published as tarballs for CDNs (from
//! grokmirror's next release).
//!
//! A run reads the manifest, and for each repository a `--branches`
//! pattern names lists its branches and keeps those the patterns, the age
//! limit and the per-repository count allow (two branches wanting the same
//! file name are both refused, see [`plan::choose`]). A branch whose tip
//! already has a tarball on disk is done: the directory listing is the
//! state. Otherwise it is cloned (`--depth`, `--single-branch`,
//! `--no-tags`, no checkout) into a `.shallowtar-*` directory under the
//! output directory, packed with `tar` into a temporary file beside the
//! old tarballs, flushed and renamed into place; then its JSON sidecar
//! (with the tarball's SHA-256) is written the same way, the `latest`
//! links are switched by rename, and only then are the tarballs older than
//! the previous one removed.

pub mod check;
pub mod cli;
pub mod notes;
pub mod plan;
pub mod work;

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use grokmirror::config::Config;
use grokmirror::formats::manifest::Manifest;
use grokmirror::git::Git;
use grokmirror::tree::{Dir, Reserved, Tree};
use tracing::{error, info, warn};

pub use cli::Cli;
use plan::BranchSpec;

/// Parse the command line, run, and return the exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    grokmirror_cli::run_main("grok-shallow-tar", || run(&cli))
}

/// Everything a run needs, from the flags and the config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The top level.
    pub toplevel: PathBuf,
    /// The manifest listing the repositories.
    pub manifest: PathBuf,
    /// Where the tarballs go.
    pub outdir: PathBuf,
    /// What to publish.
    pub specs: Vec<BranchSpec>,
    /// The public URL the manifest paths are appended to.
    pub url_base: String,
    /// Commits of history per tarball.
    pub depth: u32,
    /// Only tips younger than this many days (0: any).
    pub max_ref_age: u32,
    /// At most this many branches per repository (0: any).
    pub max_branches: u32,
}

impl Settings {
    /// Combine the flags with the loaded config.
    pub fn new(cli: &Cli, config: &Config) -> Settings {
        Settings {
            toplevel: config.core.toplevel.clone(),
            manifest: config.core.manifest.clone(),
            // Present: clap requires them unless --config-check, which
            // never gets here.
            outdir: cli.outdir.clone().unwrap_or_default(),
            specs: cli.branches.clone(),
            url_base: cli.clone_url_base.clone().unwrap_or_default(),
            depth: cli.depth,
            max_ref_age: cli.max_ref_age,
            max_branches: cli.max_branches,
        }
    }
}

/// Why OUTDIR cannot hold the tarballs, if it cannot: overlapping the top
/// level, where grok-manifest would find the temporary clones and pruning
/// would reach the mirror. Lexical, on real paths.
pub fn outdir_refusal(outdir: &Path, toplevel: &Path) -> Option<String> {
    (outdir.starts_with(toplevel) || toplevel.starts_with(outdir)).then(|| {
        format!(
            "the output directory {} overlaps the toplevel {}; choose a directory outside it",
            outdir.display(),
            toplevel.display()
        )
    })
}

/// Run grok-shallow-tar with parsed flags; returns the exit status.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    if cli.check.config_check {
        return Ok(check::run(cli));
    }
    let config = Config::load(&cli.config)?;
    let _log = grokmirror_cli::init_logging(
        "shallow-tar",
        cli.verbose,
        config.core.log.clone(),
        config.core.loglevel,
    )?;
    grokmirror_cli::interrupt::install();
    let settings = Settings::new(cli, &config);
    let manifest = match Manifest::read(&settings.manifest) {
        Ok(Some(m)) => m,
        Ok(None) => {
            return Err(grokmirror_cli::usage(format!(
                "no manifest at {}; run grok-manifest or grok-pull first, or fix [core] manifest",
                settings.manifest.display()
            )))
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
    let real = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if let Some(why) = outdir_refusal(&real(&settings.outdir), &real(&settings.toplevel)) {
        return Err(grokmirror_cli::usage(why));
    }
    let out = Dir::open_root(&settings.outdir).with_context(|| {
        format!(
            "cannot open the output directory {}; pass a readable directory with -o",
            settings.outdir.display()
        )
    })?;
    // One run per OUTDIR (a flock on the directory, held while `out`
    // lives): two would clone the same branches and prune each other's
    // tarballs. A cron run that finds the last one still going leaves it
    // the work.
    if !out.try_lock_exclusive().with_context(|| {
        format!(
            "cannot lock the output directory {}",
            settings.outdir.display()
        )
    })? {
        warn!(
            " shallow-tar: another grok-shallow-tar is publishing into {}; nothing done",
            settings.outdir.display()
        );
        return Ok(grokmirror_cli::EXIT_OK);
    };
    let tree = Tree::open(&settings.toplevel, Reserved::from_config(&config))
        .with_context(|| format!("cannot open the toplevel {}", settings.toplevel.display()))?;
    let swept = work::sweep_temps(&out);
    if swept > 0 {
        info!(" shallow-tar: removed {swept} temporary clone(s) a killed run left");
    }
    let git = Git::from_env();
    let mut summary = work::Summary::default();
    for spec in &settings.specs {
        if !manifest.repos.keys().any(|k| spec.names_repo(k)) {
            error!(
                "--branches {}:{} names no repository of {}; check the pattern",
                spec.repo.as_str(),
                spec.branch.as_str(),
                settings.manifest.display()
            );
            summary.failed += 1;
        }
    }
    for key in manifest.repos.keys() {
        if grokmirror::stop::requested().is_some() {
            break;
        }
        if settings.specs.iter().any(|s| s.names_repo(key)) {
            work::publish_repo(&settings, &git, &tree, &out, key, &mut summary);
        }
    }
    if let Some(code) = grokmirror_cli::interrupt::stopped_status() {
        error!(
            "grok-shallow-tar: interrupted by {}; what was published stays, the rest is made next run",
            grokmirror_cli::interrupt::stopped_by().unwrap_or("a signal")
        );
        return Ok(code);
    }
    info!(
        " shallow-tar: {} made, {} current, {} failed",
        summary.made, summary.current, summary.failed
    );
    Ok(if summary.failed > 0 {
        grokmirror_cli::EXIT_FAILURE
    } else {
        grokmirror_cli::EXIT_OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outdir_must_not_overlap_the_toplevel() {
        let top = Path::new("/srv/git/mirror");
        assert!(outdir_refusal(Path::new("/srv/www/shallow"), top).is_none());
        assert!(outdir_refusal(Path::new("/srv/git/mirror/shallow"), top).is_some());
        assert!(outdir_refusal(Path::new("/srv"), top).is_some());
        assert!(outdir_refusal(Path::new("/srv/git/mirror2"), top).is_none());
    }
}
