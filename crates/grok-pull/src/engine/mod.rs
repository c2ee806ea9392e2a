//! The event loop that runs a mirror, once or as a daemon (`-o` with
//! `[pull] refresh`).
//!
//! One loop serves both modes. It polls the origin's manifest and plans
//! the work off the loop (so the loop, and with it the systemd watchdog,
//! stays responsive), runs jobs through the [`Scheduler`], records what
//! finished ([`Recorder`]), and hands housekeeping to its own thread
//! ([`Housekeeper`]). The daemon adds: a poll every `refresh` seconds (the
//! first one ignoring the saved Last-Modified), the push socket
//! ([`crate::daemon::listener`]) and the signed HTTP endpoint
//! ([`crate::daemon::notify_http`]) feeding one queue, a watch on a `file://` manifest and on
//! the config file, and the service-manager protocol.
//!
//! Stopping (SIGTERM or SIGINT), in both modes: nothing new starts, queued
//! work is dropped, housekeeping is interrupted, and running jobs get
//! `[pull] shutdown_grace` seconds to finish; then they are killed (their
//! staged clones removed, so nothing half-made is ever visible). A second
//! signal kills them at once. The local manifest is written either way.
//! SIGHUP reopens the log file.
//!
//! A config reload keeps the running jobs on the settings they started
//! with; new jobs get the new ones. A reload that fails to parse, or that
//! changes what can't change under a running daemon (`[core] toplevel`,
//! `[core] manifest`, `[core] objstore`, `[pull] socket`, the `notify_*`
//! options, or unsets
//! `[pull] refresh`), is refused with an error line and the old config
//! stays.
//!
//! The loop's state is kept in parts, each with the methods that own it:
//! `polling` (the poll and when the next is due), `running` (the jobs
//! running now and what happens when one ends), `reports` (the timers of
//! the periodic writes: local manifest, freshness file, stats, metrics),
//! `reload` (file watches and config reloads), `push` (the push
//! notifications, and telling `notify_peers` what was fetched) and `stopping` (signals, the grace period, the end of a run).
//! Decisions are pure functions in those files, unit-tested there.

mod polling;
mod push;
mod reload;
mod reports;
mod running;
pub mod scheduler;
mod stopping;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use grokmirror::formats::manifest::{Manifest, RepoEntry};
use grokmirror::objstore::FetchMethod;
use grokmirror::tree::deletion;
use grokmirror_cli::logging::LogHandle;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::daemon::httpmetrics::MetricsServer;
use crate::daemon::listener::Listener;
use crate::daemon::notify_http::NotifyServer;
use crate::daemon::service::Service;
use crate::daemon::watch::{Changed, FileWatch};
use crate::record::fresh::Tracker;
use crate::record::local_manifest::Recorder;
use crate::record::metrics::{Activity, Stats};
use crate::record::progress::Progress;
use crate::settings::Settings;
use crate::work::housekeeping::{self, Housekeeper, Tools};
use crate::work::job::JobContext;
use crate::work::objstore_clone::Objstore;
use crate::Puller;
use polling::Polling;
use push::PushSocket;
use reload::Watches;
use reports::{Timers, Worked};
use running::{Batch, Running};
use scheduler::Scheduler;
use stopping::{Signals, Stopping};

pub use polling::REJECTED_LINES;

/// Socket lines waiting for the loop, at most (senders wait beyond).
const NOTIFICATION_QUEUE: usize = 1024;

/// How to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Keep running (`-o` with `[pull] refresh`).
    pub daemon: bool,
    /// `-n`: ignore the saved Last-Modified (a daemon's first poll always
    /// does).
    pub force: bool,
    /// `--force-purge` (for the first poll only).
    pub force_purge: bool,
    /// `-p`, to keep across config reloads.
    pub purge_flag: bool,
}

/// The mirror's running state.
struct Engine {
    puller: Puller,
    opts: Options,
    log: LogHandle,
    service: Service,
    /// What jobs pushed from now on run with.
    ctx: Arc<JobContext>,
    tools: Arc<Tools>,
    sched: Scheduler,
    running: Running,
    fresh: Tracker,
    progress: Option<Progress>,
    recorder: Recorder,
    hk: Housekeeper,
    hooks: tokio::task::JoinSet<()>,
    batch: Batch,
    stats: Stats,
    /// The included repositories of the last poll: what the socket may name.
    known: BTreeMap<String, RepoEntry>,
    stopping: Option<Stopping>,
    record_error: Option<anyhow::Error>,
    purge_refused: bool,
    polling: Polling,
    push: PushSocket,
    /// `[pull] notify_peers`, when set.
    downstream: Option<grokmirror_notify::downstream::Downstream>,
    /// What was fetched since the peers were last told.
    peer_keys: Vec<String>,
    metrics_server: Option<MetricsServer>,
    watches: Watches,
    timers: Timers,
    worked: Worked,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The entries of the local manifest that the config includes: what the
/// socket may name before the first poll.
fn known_from_local(settings: &Settings) -> BTreeMap<String, RepoEntry> {
    match Manifest::read_local(settings.manifest()) {
        Ok(m) => m
            .repos
            .into_iter()
            .filter(|(k, _)| settings.include.is_match(k) && !settings.exclude.is_match(k))
            .collect(),
        Err(e) => {
            warn!("cannot read the local manifest: {e}");
            BTreeMap::new()
        }
    }
}

/// `[pull] housekeeping_max_load` as housekeeping applies it: a single
/// run does its housekeeping and exits, load or not; zero or less means no
/// limit; unset means the number of CPUs.
fn max_load(daemon: bool, configured: Option<f64>, cpus: f64) -> Option<f64> {
    match configured {
        _ if !daemon => None,
        Some(l) if l <= 0.0 => None,
        Some(l) => Some(l),
        None => Some(cpus),
    }
}

fn tools_of(puller: &Puller, daemon: bool) -> Arc<Tools> {
    Arc::new(Tools {
        git: puller.git.clone(),
        objstore_method: FetchMethod::from_config(
            puller.settings.config.core.objstore_uses_plumbing,
        ),
        extra_repack_flags: puller.settings.extra_repack_flags.clone(),
        geometric_repacks: puller.geometric_repacks,
        max_load: max_load(
            daemon,
            puller.settings.housekeeping_max_load,
            housekeeping::cpus(),
        ),
        tree: puller.tree().clone(),
    })
}

/// Run the mirror; returns the exit status.
pub async fn run(puller: Puller, opts: Options, log: LogHandle) -> anyhow::Result<i32> {
    let mut signals = Signals::new()?;
    puller.sweep_staging();
    let settings = puller.settings.clone();
    let service = Service::from_env();
    let mut push = PushSocket::default();
    // Refused before anything is bound or fetched.
    let downstream = push::downstream_of(&settings)?;
    if opts.daemon {
        let http_secret = match &settings.notify_listen {
            Some(_) => Some(push::secret_for(&settings, "notify_listen")?),
            None => None,
        };
        let (tx, rx) = mpsc::channel(NOTIFICATION_QUEUE);
        if let Some(path) = &settings.socket {
            let mut l = Listener::bind(path)?;
            push.task = Some(l.serve(tx.clone()));
            push.listener = Some(l);
        }
        if let (Some(addr), Some(secret)) = (&settings.notify_listen, http_secret) {
            push.http = Some(NotifyServer::bind(addr, secret, tx).await?);
        }
        if push.listener.is_some() || push.http.is_some() {
            push.notes = Some(rx);
        }
    }
    let known = if opts.daemon {
        known_from_local(&settings)
    } else {
        BTreeMap::new()
    };
    let ctx = Arc::new(JobContext {
        settings: settings.clone(),
        git: puller.git.clone(),
        tree: puller.tree().clone(),
        gate: deletion::Rules {
            wanted: known.keys().cloned().collect(),
            ..deletion::Rules::default()
        },
        borrowed: OnceLock::new(),
        objstore: Arc::new(Objstore::from_settings(&settings)),
    });
    let hk = Housekeeper::start()?;
    let now = Instant::now();
    let mut engine = Engine {
        tools: tools_of(&puller, opts.daemon),
        recorder: Recorder::new(&settings),
        sched: Scheduler::new(settings.pull_threads),
        running: Running::default(),
        fresh: Tracker::load(&settings),
        progress: None,
        hk,
        hooks: tokio::task::JoinSet::new(),
        batch: Batch::default(),
        stats: Stats {
            started: Some(SystemTime::now()),
            known: known.len(),
            ..Stats::default()
        },
        known,
        stopping: None,
        record_error: None,
        purge_refused: false,
        polling: Polling::new(now, opts.daemon || opts.force),
        push,
        downstream,
        peer_keys: Vec::new(),
        metrics_server: None,
        watches: Watches::new(std::fs::read(&settings.config.path).unwrap_or_default()),
        timers: Timers::new(now, service.watchdog_interval().is_some()),
        worked: Worked::default(),
        service,
        ctx,
        puller,
        opts,
        log,
    };
    if opts.daemon {
        if let Some(addr) = &settings.metrics_listen {
            engine.metrics_server = Some(MetricsServer::bind(addr).await?);
            engine.write_metrics();
        }
        engine.watches.config = FileWatch::new(
            &settings.config.path,
            Changed::Config,
            engine.watches.tx.clone(),
        );
        engine.watch_manifest();
        info!(
            "pull: running as a daemon: polling every {}s{}",
            settings.refresh.unwrap_or_default(),
            if engine.push.notes.is_some() {
                ", listening for push notifications"
            } else {
                ""
            }
        );
    }
    engine.service.ready("polling the origin");
    engine.run(&mut signals).await
}

/// The earliest of `candidates`, and at the latest an hour from `now`.
fn earliest(now: Instant, candidates: impl IntoIterator<Item = Option<Instant>>) -> Instant {
    candidates
        .into_iter()
        .flatten()
        .fold(now + Duration::from_secs(3600), Instant::min)
}

impl Engine {
    fn settings(&self) -> &Settings {
        &self.puller.settings
    }

    fn activity(&self) -> Activity {
        Activity {
            active: self.sched.running(),
            queued: self.sched.queued(),
            housekeeping: self.hk.load().total(),
        }
    }

    async fn run(&mut self, signals: &mut Signals) -> anyhow::Result<i32> {
        loop {
            if let Some(result) = self.step(signals).await {
                return result;
            }
            let wake = self.next_wake();
            tokio::select! {
                Some(joined) = self.running.tasks.join_next_with_id(), if !self.running.is_empty() => {
                    self.on_joined(joined);
                }
                polled = async { self.polling.task.as_mut().expect("checked").await }, if self.polling.task.is_some() => {
                    self.polling.task = None;
                    let polled = polled.unwrap_or_else(|e| polling::Polled::Failed(anyhow::anyhow!("the manifest poll stopped: {e}")));
                    if let Some(result) = self.on_polled(polled) {
                        return result;
                    }
                }
                Some(event) = self.hk.events.recv() => self.on_housekeeping(event),
                sig = signals.next() => self.on_signal(sig),
                Some(note) = push::recv_opt(self.push.notes.as_mut()) => self.on_notification(note),
                Some(changed) = self.watches.rx.recv() => self.watches.changed(changed, Instant::now()),
                _ = tokio::time::sleep_until(wake.into()) => {}
                Some(_) = self.hooks.join_next(), if !self.hooks.is_empty() => {}
            }
        }
    }

    /// The earliest moment something is due.
    fn next_wake(&self) -> Instant {
        let daemon = self.opts.daemon;
        let mut due = vec![self.timers.watchdog_next];
        if daemon {
            due.push(Some(self.timers.metrics_next));
        }
        match &self.stopping {
            None => {
                if self.polling.task.is_none() && daemon {
                    due.push(self.polling.next);
                }
                due.extend([
                    self.sched.next_wake(),
                    self.watches.config_due,
                    self.watches.manifest_due,
                    self.timers.flush_due,
                    self.timers.fresh_due,
                    self.progress.as_ref().and_then(|p| p.next_line()),
                ]);
                if daemon {
                    due.push(Some(self.timers.stats_next));
                }
            }
            Some(s) => {
                if !s.killed && !self.running.is_empty() {
                    due.push(Some(s.deadline));
                }
            }
        }
        earliest(Instant::now(), due)
    }

    /// Do what is due; `Some` when the run is over.
    async fn step(&mut self, signals: &mut Signals) -> Option<anyhow::Result<i32>> {
        let now = Instant::now();
        if self.timers.watchdog_due(now) {
            self.service.ping();
            let every = self
                .service
                .watchdog_interval()
                .unwrap_or(Duration::from_secs(60));
            self.timers.watchdog_next = Some(now + every);
        }
        if let Some(stop) = self.stopping {
            if stopping::grace_is_over(&stop, self.running.len(), now) {
                self.kill_running(&format!(
                    "the {}s shutdown grace period is over",
                    self.settings().shutdown_grace.as_secs()
                ));
            }
            if self.running.is_empty() {
                return Some(self.finish(signals).await);
            }
            return None;
        }
        if reports::take_due(&mut self.watches.config_due, now) {
            self.reload();
        }
        if reports::take_due(&mut self.watches.manifest_due, now) {
            tracing::debug!("the remote manifest file changed");
            self.polling.request_full();
        }
        self.maybe_start_poll(now);
        self.sched.wake_waiting(now);
        self.start_jobs();
        self.maybe_notify_peers(self.sched.is_idle());
        if self.sched.is_idle() && self.worked.since_idle {
            self.worked.since_idle = false;
            self.on_idle(now);
        }
        if self.timers.flush_due.is_some_and(|t| t <= now) {
            self.flush();
        }
        if self.timers.fresh_due.is_some_and(|t| t <= now) {
            self.write_fresh();
        }
        if let Some(p) = &mut self.progress {
            p.tick(now, &self.running.sorted_keys());
        }
        if self.opts.daemon && self.timers.stats_next <= now {
            if self.worked.since_stats {
                self.log_stats();
            }
            self.timers.stats_next = now + reports::STATS_EVERY;
        }
        if self.opts.daemon && self.timers.metrics_next <= now {
            self.write_metrics();
        }
        if !self.opts.daemon
            && self.polling.done > 0
            && self.polling.task.is_none()
            && self.sched.is_idle()
        {
            return Some(self.finish(signals).await);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loop_wakes_for_the_earliest_due_thing_or_within_an_hour() {
        let now = Instant::now();
        let soon = now + Duration::from_secs(5);
        let later = now + Duration::from_secs(50);
        assert_eq!(earliest(now, [None, Some(later), Some(soon)]), soon);
        assert_eq!(earliest(now, [None, None]), now + Duration::from_secs(3600));
        assert_eq!(
            earliest(now, [Some(now + Duration::from_secs(7200))]),
            now + Duration::from_secs(3600)
        );
    }

    #[test]
    fn housekeeping_load_limit() {
        assert_eq!(
            max_load(false, Some(3.0), 8.0),
            None,
            "a single run never waits"
        );
        assert_eq!(
            max_load(true, Some(0.0), 8.0),
            None,
            "0 turns the limit off"
        );
        assert_eq!(max_load(true, Some(3.0), 8.0), Some(3.0));
        assert_eq!(max_load(true, None, 8.0), Some(8.0), "the CPUs by default");
    }
}
