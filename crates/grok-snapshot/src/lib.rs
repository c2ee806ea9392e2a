//! grok-snapshot: consistent, hard-linked snapshots of mirrored
//! repositories for the consumers that clone from a mirror (CI fleets,
//! build farms), and their expiry.
//!
//! A run takes, for each repository named, the locks of the repository and
//! of the repositories it borrows objects from (its object storage), builds
//! `<outdir>/<manifest path>@<UTC time>` from copies of its refs and hard
//! links to its objects (see [`grokmirror::repo::snapshot`]), prints its
//! path, and then, with `-k`, removes the snapshots older than the limit.
//! A snapshot holds its own links to every object it needs, so the mirror's
//! next fetch with prune, repack or prune cannot break a clone made from
//! it; once it is expired, the disk the mirror freed meanwhile is freed.

pub mod check;
pub mod cli;
pub mod work;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use grokmirror::config::Config;
use grokmirror::tree::{Dir, Reserved, Tree};
use tracing::{error, info};

pub use cli::Cli;

/// Parse the command line, run, and return the exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    grokmirror_cli::run_main("grok-snapshot", || run(&cli))
}

/// Everything a run needs, from the flags and the config.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The top level.
    pub toplevel: PathBuf,
    /// The object storage directory.
    pub objstore: PathBuf,
    /// Where the snapshots go.
    pub outdir: PathBuf,
    /// Snapshots older than this are removed, when set.
    pub keep: Option<Duration>,
    /// How long to wait for a lock.
    pub wait: Duration,
}

impl Settings {
    /// Combine the flags with the loaded config.
    pub fn new(cli: &Cli, config: &Config) -> Settings {
        Settings {
            toplevel: config.core.toplevel.clone(),
            objstore: config.core.objstore.clone(),
            // Present: clap requires it unless --config-check, which
            // never gets here.
            outdir: cli.outdir.clone().unwrap_or_default(),
            keep: cli.keep,
            wait: cli.wait,
        }
    }
}

/// Why OUTDIR cannot hold snapshots, if it cannot: inside the top level (or
/// the object storage) grok-manifest and grok-fsck would take every
/// snapshot for a mirrored repository. Lexical, on real paths.
pub fn outdir_refusal(
    outdir: &std::path::Path,
    mirror_dirs: &[&std::path::Path],
) -> Option<String> {
    mirror_dirs
        .iter()
        .find(|d| outdir.starts_with(d) || d.starts_with(outdir))
        .map(|d| {
            format!(
                "the snapshot directory {} overlaps {}, which grokmirror walks; choose a directory beside it on the same file system",
                outdir.display(),
                d.display()
            )
        })
}

/// Run grok-snapshot with parsed flags; returns the exit status.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    if cli.check.config_check {
        return Ok(check::run(cli));
    }
    let config = Config::load(&cli.config)?;
    let _log = grokmirror_cli::init_logging(
        "snapshot",
        cli.verbose,
        config.core.log.clone(),
        config.core.loglevel,
    )?;
    let settings = Settings::new(cli, &config);
    std::fs::create_dir_all(&settings.outdir).with_context(|| {
        format!(
            "cannot create the snapshot directory {}; pass a writable directory with -o",
            settings.outdir.display()
        )
    })?;
    let real = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let (out_real, top_real, obj_real) = (
        real(&settings.outdir),
        real(&settings.toplevel),
        real(&settings.objstore),
    );
    if let Some(why) = outdir_refusal(&out_real, &[&top_real, &obj_real]) {
        return Err(grokmirror_cli::usage(why));
    }
    let out = Dir::open_root(&settings.outdir).with_context(|| {
        format!(
            "cannot open the snapshot directory {}",
            settings.outdir.display()
        )
    })?;
    let tree = Tree::open(&settings.toplevel, Reserved::from_config(&config))
        .with_context(|| format!("cannot open the toplevel {}", settings.toplevel.display()))?
        .with_other_root(&settings.objstore);
    let mut failed = 0;
    for raw in &cli.repos {
        match work::snapshot_one(&settings, &tree, &out, raw) {
            Ok(path) => println!("{}", path.display()),
            Err(e) => {
                error!("{e:#}");
                failed += 1;
            }
        }
    }
    if let Some(max_age) = settings.keep {
        match work::expire(&out, max_age) {
            Ok(removed) => info!(" snapshots: {removed} older than {max_age:?} removed"),
            Err(e) => {
                error!("{e:#}");
                failed += 1;
            }
        }
    }
    Ok(if failed > 0 {
        grokmirror_cli::EXIT_FAILURE
    } else {
        grokmirror_cli::EXIT_OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn outdir_must_not_overlap_the_mirror() {
        let top = Path::new("/srv/git/mirror");
        let obj = Path::new("/srv/git/objstore");
        assert!(outdir_refusal(Path::new("/srv/git/snapshots"), &[top, obj]).is_none());
        assert!(outdir_refusal(Path::new("/srv/git/mirror/snaps"), &[top, obj]).is_some());
        assert!(outdir_refusal(Path::new("/srv/git/mirror"), &[top, obj]).is_some());
        assert!(outdir_refusal(Path::new("/srv"), &[top, obj]).is_some());
        assert!(outdir_refusal(Path::new("/srv/git/objstore/x"), &[top, obj]).is_some());
        // A sibling whose name starts the same is not inside.
        assert!(outdir_refusal(Path::new("/srv/git/mirror2"), &[top, obj]).is_none());
    }
}
