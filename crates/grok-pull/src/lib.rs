//! grok-pull: mirror a collection of bare git repositories from a
//! grokmirror origin, compatible with grokmirror 2.x's `grok-pull`.
//!
//! One run is three steps: poll the origin's manifest ([`source`]), plan
//! what each repository needs ([`plan`]), and run the jobs with bounded
//! concurrency ([`scheduler`], [`job`]) while the done step ([`record`])
//! keeps the local manifest in step and [`housekeeping`] tidies up behind
//! the fetches. [`engine`] drives the steps, once or as a daemon with a
//! push socket ([`listener`]), file watches ([`watch`]), systemd
//! notifications ([`service`]) and statistics ([`metrics`]).

#![warn(missing_docs)]

pub mod cli;
pub mod engine;
pub mod forkgroup;
pub mod gitio;
pub mod hooks;
pub mod housekeeping;
pub mod job;
pub mod listener;
pub mod metrics;
mod piped;
pub mod plan;
pub mod record;
pub mod scheduler;
pub mod service;
pub mod settings;
pub mod source;
pub mod stage;
pub mod watch;

use clap::Parser;
use grokmirror::config::Config;
use grokmirror::fsutil;
use grokmirror::git::Git;
use grokmirror::manifest::Manifest;
use grokmirror::remote::{RemoteManifest, Rules};
use grokmirror::staging;
use grokmirror::state::{self, RemoteState};
use grokmirror_cli::usage;
use tracing::{info, warn};

pub use cli::Cli;

use crate::plan::Plan;
use crate::settings::Settings;
use crate::source::Poll;

/// Parse the command line, run, and return the exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    grokmirror_cli::finish("grok-pull", run(&cli))
}

/// Run grok-pull with parsed flags; returns the exit status.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    let config = Config::load(&cli.config)?;
    let settings = Settings::from_config(config, cli.purge)?;
    let log =
        grokmirror_cli::init_logging("pull", cli.verbose, settings.log.clone(), settings.loglevel)?;
    let daemon = cli.continuous && settings.refresh.is_some();
    if daemon && settings.refresh.is_some_and(|r| r < 1) {
        return Err(usage(format!(
            "[pull] refresh in {} must be a positive number of seconds",
            settings.config.path.display()
        )));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let opts = engine::Options {
        daemon,
        force: cli.no_mtime_check,
        force_purge: cli.force_purge,
        purge_flag: cli.purge,
    };
    let puller = Puller::new(settings);
    runtime.block_on(engine::run(puller, opts, log))
}

/// One mirror and what is needed to bring it in step with its origin.
#[derive(Debug, Clone)]
pub struct Puller {
    settings: Settings,
    git: Git,
    rules: Rules,
}

impl Puller {
    /// A puller for these settings.
    pub fn new(settings: Settings) -> Puller {
        let toplevel = settings.toplevel().to_path_buf();
        let mut reserved = vec![fsutil::manifest_style(
            &toplevel,
            &staging::staging_root(&toplevel),
        )];
        // Nothing from the origin may land inside our object storage.
        if let Some(obst) = fsutil::manifest_key(&toplevel, &settings.config.core.objstore) {
            reserved.push(obst);
        }
        Puller {
            settings,
            git: Git::from_env(),
            rules: Rules { reserved },
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Remove what killed runs left in the staging area.
    pub fn sweep_staging(&self) {
        let root = staging::staging_root(self.settings.toplevel());
        match staging::sweep(&root) {
            Ok(removed) => {
                for p in removed {
                    info!(
                        "  cleanup: removed {} left over by an interrupted run",
                        p.display()
                    );
                }
            }
            Err(e) => warn!("  cleanup: cannot clean {}: {e}", root.display()),
        }
    }

    /// Step 1: ask the origin for its manifest.
    pub async fn poll(&self, force: bool) -> anyhow::Result<Poll> {
        let previous = RemoteState::read(&state::state_path(self.settings.manifest()));
        source::poll(&self.settings, force, &previous, &self.rules).await
    }

    /// Step 2: decide the work.
    pub fn plan(&self, manifest: &RemoteManifest, force_purge: bool) -> anyhow::Result<Plan> {
        let local = Manifest::read_local(self.settings.manifest())?;
        Ok(plan::plan(
            &self.settings,
            &self.git,
            manifest,
            &local,
            force_purge,
        ))
    }
}
