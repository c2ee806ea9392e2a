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
pub mod daemon;
pub mod engine;
pub mod plan;
pub mod record;
pub mod settings;
pub mod source;
pub mod work;

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use grokmirror::config::Config;
use grokmirror::git::Git;
use grokmirror::manifest::Manifest;
use grokmirror::remote::{RemoteManifest, Rules};
use grokmirror::state::{self, RemoteState};
use grokmirror::tree::{Reserved, StagingArea, Tree};
use grokmirror_cli::usage;
use tracing::{error, info, warn};

pub use cli::Cli;

use crate::plan::PullPlan;
use crate::settings::Settings;
use crate::source::Poll;

/// Parse the command line, run, and return the exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    grokmirror_cli::run_main("grok-pull", || run(&cli))
}

/// How long a run that panicked waits for work off the async threads (a
/// clone waiting for an object storage's lock, say) before it exits anyway.
const SHUTDOWN_AFTER_PANIC: Duration = Duration::from_secs(5);

/// Run grok-pull with parsed flags; returns the exit status.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    let config = Config::load(&cli.config)?;
    let settings = Settings::from_config(config, cli.purge)?;
    if cli.status {
        return record::status::run(&settings, cli.json);
    }
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
    let puller = Puller::new(settings)?;
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        runtime.block_on(engine::run(puller, opts, log))
    }));
    match ran {
        Ok(result) => result,
        Err(panic) => {
            // The hook has reported it. Dropping the runtime would wait for
            // every blocking task, however long; the jobs' tasks are
            // dropped either way (their git killed, staged clones removed).
            runtime.shutdown_timeout(SHUTDOWN_AFTER_PANIC);
            std::panic::resume_unwind(panic)
        }
    }
}

/// One mirror and what is needed to bring it in step with its origin.
#[derive(Debug, Clone)]
pub struct Puller {
    settings: Settings,
    git: Git,
    tree: Tree,
}

impl Puller {
    /// A puller for these settings: the top level is opened (made first
    /// when missing, as the operator configured it) and the replica's own
    /// paths are reserved.
    pub fn new(settings: Settings) -> anyhow::Result<Puller> {
        let toplevel = settings.toplevel().to_path_buf();
        if !toplevel.exists() {
            std::fs::create_dir_all(&toplevel)
                .with_context(|| format!("cannot create the top level {}", toplevel.display()))?;
        }
        let reserved = Reserved::from_config(&settings.config);
        let tree = Tree::open(&toplevel, reserved)
            .with_context(|| format!("cannot open the top level {}", toplevel.display()))?;
        Ok(Puller {
            settings,
            git: Git::from_env(),
            tree,
        })
    }

    /// The settings in use.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The top level's handle.
    pub fn tree(&self) -> &Tree {
        &self.tree
    }

    /// Remove what killed runs left in the staging area. A staging path
    /// that is a symlink or not ours is reported and left alone.
    pub fn sweep_staging(&self) {
        let area = match StagingArea::open_in(self.tree.root()) {
            Ok(a) => a,
            Err(e) => {
                error!("  cleanup: {e}");
                return;
            }
        };
        match area.sweep() {
            Ok(removed) => {
                for p in removed {
                    info!(
                        "  cleanup: removed {} left over by an interrupted run",
                        p.display()
                    );
                }
            }
            Err(e) => warn!(
                "  cleanup: cannot clean {}: {e}",
                area.dir().shown().display()
            ),
        }
    }

    /// Step 1: ask the origin for its manifest.
    pub async fn poll(&self, force: bool) -> anyhow::Result<Poll> {
        let previous = RemoteState::read(&state::state_path(self.settings.manifest()));
        let rules = Rules {
            reserved: self.tree.reserved().clone(),
        };
        source::poll(&self.settings, force, &previous, &rules).await
    }

    /// Step 2: decide the work.
    pub fn plan(&self, manifest: &RemoteManifest, force_purge: bool) -> anyhow::Result<PullPlan> {
        let local = Manifest::read_local(self.settings.manifest())?;
        Ok(plan::plan(
            &self.settings,
            &self.tree,
            &self.git,
            manifest,
            &local,
            force_purge,
        ))
    }
}
