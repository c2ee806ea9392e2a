//! `--shard-map N`: the routing map of a mirror split into N shards, for
//! the front (an nginx `map`, an HAProxy map file) that sends each clone
//! to the shard holding the repository. Reads the manifest and prints;
//! the rules are [`grokmirror::shard`].

use std::io::Write;

use anyhow::Context;
use grokmirror::config::Config;
use grokmirror::formats::manifest::Manifest;
use grokmirror::shard::{self, map};
use grokmirror_cli::usage;

use crate::cli::{Cli, ShardMapFormat};

/// Print the map of the manifest's repositories over `count` shards on
/// stdout; keys a map file cannot carry are named on stderr.
pub fn print(cli: &Cli, count: u32) -> anyhow::Result<i32> {
    let path =
        match (&cli.manifest, &cli.cfgfile) {
            (Some(m), _) => m.clone(),
            (None, Some(c)) => Config::load(c)?.core.manifest.clone(),
            (None, None) => return Err(usage(
                "--shard-map needs the manifest: pass -m PATH, or --cfgfile with [core] manifest",
            )),
        };
    let manifest = Manifest::read(&path)?
        .with_context(|| format!("manifest {} does not exist", path.display()))?;
    let format = match cli.shard_map_format {
        ShardMapFormat::Nginx => map::Format::Nginx,
        ShardMapFormat::Haproxy => map::Format::Haproxy,
    };
    let owners = shard::owners(&manifest.repos, count);
    let (text, skipped) = map::render(&owners, format);
    for key in &skipped {
        eprintln!(
            "grok-manifest: {key:?} cannot be written into a {:?} map; left out",
            cli.shard_map_format
        );
    }
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("cannot write the shard map")?;
    Ok(if skipped.is_empty() {
        grokmirror_cli::EXIT_OK
    } else {
        grokmirror_cli::EXIT_FAILURE
    })
}
