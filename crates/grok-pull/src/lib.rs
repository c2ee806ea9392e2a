//! grok-pull: mirror a collection of bare git repositories from a
//! grokmirror origin, compatible with grokmirror 2.x's `grok-pull`.
//!
//! # The story of a run
//!
//! [`main`] parses the flags ([`cli`]) and hands them to [`run`] through
//! `grokmirror_cli::run_main`, which turns an error into one line and an
//! exit status, and a panic into one line and status 1. `run` reads the
//! config into typed [`settings`], sets up logging and a tokio runtime, and
//! opens the mirror: a [`Puller`] holds the settings, the git to run and
//! the top level's directory handle, through which every change on disk
//! goes. Then [`engine::run`] takes over; one loop serves a single run and
//! the daemon (`-o` with `[pull] refresh`).
//!
//! The loop first polls the origin for its manifest ([`source`]: HTTP(S)
//! or `file://`, with Last-Modified, size limits and a streaming parser),
//! off the loop so that signals and the systemd watchdog are answered
//! meanwhile. From the manifest and the local manifest, [`plan`] decides
//! what each included repository needs (clone, re-clone, update, purge,
//! nothing), and which fork group it belongs to; the deletion gate decides
//! what may go. These decisions read the disk but change nothing.
//!
//! The jobs go into the [`engine::scheduler`]: one job per repository,
//! updates before clones, one extra lane so updates never starve behind
//! big clones, retries for repositories locked by somebody else, and a
//! fork group's first clone alone while it seeds the group's object
//! storage. Each job ([`work::job`]) runs in a task of its own, under the
//! repository's lock: a clone is built out of sight ([`work::out_of_sight`])
//! and appears in one rename; a fork borrows from its object storage from
//! its first fetch ([`work::objstore_clone`]); git runs in its own process
//! group with a timeout ([`work::gitio`]); hooks run after fetches
//! ([`work::hooks`]). What a fetch leaves to tidy up goes to the
//! housekeeping thread ([`work::housekeeping`]), at the lowest priority and
//! never in a fetch's way.
//!
//! Finished jobs are written down ([`record`]): the local manifest (every
//! hundred repositories, before each poll and at the end), the freshness
//! file, statistics and metrics, and the `--status` report reads them
//! back. The daemon also listens on a push socket, watches the config and a
//! `file://` manifest, talks to the service manager and serves metrics over
//! HTTP ([`daemon`]). SIGTERM or SIGINT stop a run cleanly: nothing new
//! starts, running jobs get `[pull] shutdown_grace`, and the local manifest
//! is written.
//!
//! # Modules
//!
//! - [`cli`]: the flags.
//! - [`settings`]: config to typed settings.
//! - [`source`]: getting the remote manifest.
//! - [`plan`]: deciding what each repository needs (no changes on disk).
//! - [`work`]: doing it: jobs, git, staging, hooks, object storage,
//!   housekeeping.
//! - [`record`]: writing results: local manifest, freshness file, metrics,
//!   statistics, status, progress.
//! - [`engine`]: the event loop and the scheduler.
//! - [`daemon`]: push socket, HTTP notifications, file watches, service
//!   manager, HTTP metrics.
//! - `grokmirror_notify` (a crate of its own, shared with grok-publish):
//!   the shared secret and signature of HTTP notifications, and telling the
//!   next replicas what was fetched.

#![warn(missing_docs)]

pub mod check;
pub mod cli;
pub mod daemon;
pub mod engine;
pub mod peers;
pub mod plan;
pub mod record;
pub mod settings;
pub mod source;
pub mod work;

use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use grokmirror::config::Config;
use grokmirror::formats::last_remote::{self, RemoteState};
use grokmirror::formats::manifest::Manifest;
use grokmirror::formats::remote_manifest::{RemoteManifest, Rules};
use grokmirror::git::Git;
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
    if cli.config_check {
        return check::run(cli);
    }
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
    /// The git makes geometric repacks (see
    /// `grokmirror::repo::repack::GEOMETRIC_GIT`), asked once at start-up.
    geometric_repacks: bool,
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
        let git = Git::from_env();
        let geometric_repacks = match git.version() {
            Ok(v) if v >= grokmirror::repo::repack::GEOMETRIC_GIT => true,
            Ok(v) => {
                tracing::debug!("git {v}: quick repacks pack everything into one pack (geometric repacks need 2.41+)");
                false
            }
            Err(e) => {
                tracing::debug!("{e}; quick repacks pack everything into one pack");
                false
            }
        };
        Ok(Puller {
            settings,
            git,
            tree,
            geometric_repacks,
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

    /// Step 1: ask the origin for its manifest (`on_new` is called once
    /// a new one starts to arrive).
    pub async fn poll(
        &self,
        force: bool,
        on_new: &(dyn Fn() + Send + Sync),
    ) -> anyhow::Result<Poll> {
        let previous = RemoteState::read(&last_remote::state_path(self.settings.manifest()));
        let rules = Rules {
            reserved: self.tree.reserved().clone(),
        };
        source::poll(&self.settings, force, &previous, &rules, on_new).await
    }

    /// Step 2: decide the work (without reading the other shards'
    /// manifests: what left this shard is kept).
    pub fn plan(&self, manifest: &RemoteManifest, force_purge: bool) -> anyhow::Result<PullPlan> {
        let local = Manifest::read_local(self.settings.manifest())?;
        Ok(plan::plan(
            &self.settings,
            &self.tree,
            &self.git,
            manifest,
            &local,
            &plan::PeerListings::new(),
            force_purge,
        ))
    }
}
