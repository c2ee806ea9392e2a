//! grok-pull: mirror a collection of bare git repositories from a
//! grokmirror origin, compatible with grokmirror 2.x's `grok-pull`.
//!
//! One run is three steps, each reusable by a daemon loop: poll the
//! origin's manifest ([`source`]), plan what each repository needs
//! ([`plan`]), and run the jobs with bounded concurrency ([`scheduler`],
//! [`job`]) while the done step ([`record`]) keeps the local manifest in
//! step.

#![warn(missing_docs)]

pub mod cli;
pub mod forkgroup;
pub mod gitio;
pub mod hooks;
pub mod job;
pub mod plan;
pub mod record;
pub mod scheduler;
pub mod settings;
pub mod source;
pub mod stage;

use std::sync::{Arc, OnceLock};

use clap::Parser;
use grokmirror::config::Config;
use grokmirror::fsutil;
use grokmirror::git::Git;
use grokmirror::manifest::Manifest;
use grokmirror::remote::{RemoteManifest, Rules};
use grokmirror::staging;
use grokmirror::state::{self, RemoteState};
use grokmirror::{EXIT_FAILURE, EXIT_OK};
use grokmirror_cli::usage;
use tracing::{error, info, warn};

pub use cli::Cli;

use crate::job::Ctx;
use crate::plan::Plan;
use crate::record::Recorder;
use crate::scheduler::{Finished, Scheduler};
use crate::settings::Settings;
use crate::source::Poll;

/// Parse the command line, run, and return the exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    grokmirror_cli::run_main("grok-pull", || run(&cli))
}

/// Run grok-pull with parsed flags; returns the exit status.
pub fn run(cli: &Cli) -> anyhow::Result<i32> {
    let config = Config::load(&cli.config)?;
    let settings = Settings::from_config(config, cli.purge)?;
    let _log =
        grokmirror_cli::init_logging("pull", cli.verbose, settings.log.clone(), settings.loglevel)?;
    if cli.continuous && settings.refresh.is_some() {
        return Err(usage(
            "continuous mode (-o with [pull] refresh set) is not implemented yet; \
             run grok-pull without -o (from cron or a systemd timer) for now",
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let puller = Puller::new(settings);
    runtime.block_on(puller.one_shot(cli.no_mtime_check, cli.force_purge, stop_signal()))
}

/// Resolves when SIGINT or SIGTERM arrives.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => warn!("SIGTERM received"),
        _ = int.recv() => warn!("SIGINT received"),
    }
}

/// One mirror and what is needed to bring it in step with its origin.
#[derive(Debug)]
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

    /// Step 3: do the work, recording as jobs finish. Returns whether it ran
    /// to the end (false when `stop` interrupted it).
    pub async fn execute<S>(
        &self,
        plan: Plan,
        recorder: &mut Recorder,
        stop: S,
    ) -> anyhow::Result<bool>
    where
        S: std::future::Future<Output = ()>,
    {
        let borrowed = OnceLock::new();
        if let Some(b) = plan.borrowed {
            let _ = borrowed.set(b);
        }
        let objstore = Arc::new(forkgroup::Objstore {
            groups: plan.forkgroups,
            ..forkgroup::Objstore::from_settings(&self.settings)
        });
        let ctx = Arc::new(Ctx {
            settings: self.settings.clone(),
            git: self.git.clone(),
            culled: plan.culled,
            borrowed,
            objstore: objstore.clone(),
        });
        let mut scheduler = Scheduler::new(self.settings.pull_threads).with_objstore(objstore);
        let mut any = false;
        for job in plan.jobs {
            any |= scheduler.push(job);
        }
        if !any {
            return Ok(true);
        }
        let mut record_error: Option<anyhow::Error> = None;
        let clone_hook = self.settings.post_clone_complete_hook.clone();
        let completed = scheduler
            .run(ctx, stop, None, async |finished: Finished| {
                if let Err(e) = recorder.done(finished.done) {
                    error!("{e:#}");
                    record_error.get_or_insert(e);
                }
                if !finished.clones_pending && !recorder.fresh_clones.is_empty() {
                    let clones = std::mem::take(&mut recorder.fresh_clones);
                    hooks::post_clone_complete(&clone_hook, &clones).await;
                }
            })
            .await;
        recorder.flush()?;
        if !recorder.fresh_clones.is_empty() {
            let clones = std::mem::take(&mut recorder.fresh_clones);
            hooks::post_clone_complete(&clone_hook, &clones).await;
        }
        if completed {
            hooks::post_work_complete(&self.settings.post_work_complete_hook).await;
        }
        match record_error {
            Some(e) => Err(e),
            None => Ok(completed),
        }
    }

    /// One complete run; returns the exit status.
    pub async fn one_shot<S>(&self, force: bool, force_purge: bool, stop: S) -> anyhow::Result<i32>
    where
        S: std::future::Future<Output = ()>,
    {
        self.sweep_staging();
        let (manifest, new_state) = match self.poll(force).await {
            Ok(Poll::Unchanged) => {
                info!("pull: nothing to do");
                return Ok(EXIT_OK);
            }
            Ok(Poll::Fetched { manifest, state }) => (manifest, state),
            Err(e) if grokmirror_cli::is_usage(&e) => return Err(e),
            Err(e) => {
                error!(" manifest: {e:#}");
                error!("pull: the remote manifest could not be used; nothing was changed");
                return Ok(EXIT_FAILURE);
            }
        };
        let mut recorder = Recorder::new(&self.settings);
        for r in &manifest.rejected {
            error!(" manifest: rejected {}: {}", r.key, r.reason);
        }
        recorder.summary.rejected = manifest.rejected.len();
        let plan = self.plan(&manifest, force_purge)?;
        let purge_refused = plan.purge_refused;
        recorder.summary.unchanged += plan.unchanged;
        for (key, why) in &plan.failures {
            recorder.fail(key, why);
        }
        let completed = self.execute(plan, &mut recorder, stop).await?;
        let summary = recorder.summary.clone();
        let clean = completed && summary.failed == 0 && summary.rejected == 0 && !purge_refused;
        if clean {
            // Only a run that mirrored everything may say so: otherwise the
            // next run must look at the same manifest again.
            if let Some(state) = new_state {
                let path = state::state_path(self.settings.manifest());
                if let Err(e) = state.write(&path) {
                    warn!("cannot write {}: {e}", path.display());
                }
            }
            info!("pull: {summary}");
            Ok(EXIT_OK)
        } else {
            if !completed {
                error!("pull: interrupted; unfinished repositories will be done next run");
            }
            if purge_refused {
                error!("pull: purge refused by purgeprotect (see above)");
            }
            if !recorder.failures.is_empty() {
                let names: Vec<&str> = recorder.failures.iter().map(|(k, _)| k.as_str()).collect();
                error!("pull: failed: {}", names.join(" "));
            }
            error!("pull: {summary}");
            Ok(EXIT_FAILURE)
        }
    }
}
