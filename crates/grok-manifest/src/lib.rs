//! grok-manifest: create or update the manifest of a tree of bare git
//! repositories, compatible with grokmirror 2.x's `grok-manifest`.
//!
//! # A run
//!
//! 1. [`settings`]: flags and the optional config file become the
//!    settings; the repositories named are resolved and checked
//!    ([`work::resolve_targets`]) before anything changes.
//! 2. The manifest's lock is taken (beside it, the lock grokmirror takes)
//!    and held until the manifest is written; the manifest is read, after
//!    waiting for it to exist when asked to.
//! 3. [`plan`] decides the mode. The hook mode (repository paths given,
//!    manifest not empty) touches only those repositories and never walks
//!    the tree. The full walk (no paths, `--purge`, or an empty or
//!    unparseable manifest) finds every repository in parallel, reads refs
//!    in-process, and drops entries whose repository is gone.
//! 4. [`work`] inspects the repositories (storing each one's fingerprint
//!    in it); [`record`] folds the facts into the manifest and writes it.
//! 5. With `--fetch-objstore`, updated members' new objects are fetched
//!    into their object storage, after the manifest's lock is let go.
//!
//! `--shard-map N` is another run altogether ([`shardmap`]): it reads the
//! manifest, prints which shard holds each repository, and changes
//! nothing.

pub mod check;
pub mod cli;
pub mod plan;
mod progress;
pub mod record;
pub mod settings;
pub mod shardmap;
pub mod work;

use std::time::Instant;

use clap::Parser;
use grokmirror::git::Git;
use tracing::info;

pub use cli::Cli;
pub use settings::Settings;
use work::Inspected;

/// Parse the command line, run, and return the exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    grokmirror_cli::run_main("grok-manifest", || run(&cli))
}

/// When a signal stopped the run: one line saying so (`then` completes
/// it), and the exit status (128 + the signal's number).
fn stopped(s: &Settings, then: &str) -> Option<i32> {
    let code = grokmirror_cli::interrupt::stopped_status()?;
    let by = grokmirror_cli::interrupt::stopped_by().unwrap_or("a signal");
    tracing::error!(
        "grok-manifest: interrupted by {by}{then} ({})",
        s.manifest.display()
    );
    Some(code)
}

/// Run grok-manifest with parsed flags; returns the exit status.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    if cli.config_check {
        return Ok(check::run(cli));
    }
    if let Some(count) = cli.shard_map {
        return shardmap::print(cli, count);
    }
    let s = Settings::from_cli(cli)?;
    let _log = grokmirror_cli::init_logging("manifest", s.verbose, s.logfile.clone(), s.loglevel)?;
    grokmirror_cli::interrupt::install();
    let started = Instant::now();
    let git = Git::from_env();
    let targets = work::resolve_targets(&s)?;

    let hook_keys = plan::hook_keys(
        s.manifest.to_string_lossy().ends_with(".gz"),
        s.purge,
        s.remove,
        work::repo_keys(&s, &targets),
    );
    let (guard, mut loaded) = match work::lock_and_read(&s, hook_keys.as_deref()) {
        Ok(read) => read,
        Err(e) => return stopped(&s, "").ok_or(e),
    };
    let empty = loaded.is_empty();
    // An empty manifest is being regenerated: never stamp it with "now".
    let use_now = s.use_now && !empty;
    let manifest = loaded.manifest_mut();

    if s.remove && !targets.is_empty() {
        record::remove_paths(&s, manifest);
        loaded.write(&s)?;
        return Ok(grokmirror_cli::EXIT_OK);
    }

    let full_walk = plan::walks_the_tree(s.purge, targets.is_empty(), empty);
    let mut found = Inspected::default();
    if full_walk {
        found = work::walk_tree(&s, &git, use_now, manifest.repos.len());
        record::purge_gone(&s, manifest, &found);
    }
    if !manifest.is_empty() || !full_walk {
        work::inspect_targets(&s, &git, &targets, use_now, &mut found);
    }
    // Stopped (Ctrl-C) while looking: what was found is incomplete, and
    // the manifest stays as it was.
    if let Some(code) = stopped(&s, "; the manifest was left as it was") {
        return Ok(code);
    }
    let tally = record::fold(&s, &git, manifest, found, use_now);
    loaded.write(&s)?;
    drop(guard);

    if s.fetch_objstore && grokmirror::stop::requested().is_none() {
        work::fetch_objstores(&git, &tally.to_fetch, s.fetch_method);
    }
    if let Some(code) = stopped(&s, " after the manifest was written") {
        return Ok(code);
    }
    let elapsed = started.elapsed().as_secs_f64();
    if tally.processed > 1 {
        info!("Updated {} records in {:.0}s", tally.processed, elapsed);
    } else {
        info!("Done in {elapsed:.2}s");
    }
    Ok(if tally.failures > 0 {
        grokmirror_cli::EXIT_FAILURE
    } else {
        grokmirror_cli::EXIT_OK
    })
}
