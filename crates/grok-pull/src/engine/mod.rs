//! The event loop that runs a mirror, once or as a daemon (`-o` with
//! `[pull] refresh`).
//!
//! One loop serves both modes. It polls the origin's manifest and plans
//! the work off the loop (so the loop, and with it the systemd watchdog,
//! stays responsive), runs jobs through the [`Scheduler`], records what
//! finished ([`Recorder`]), and hands housekeeping to its own thread
//! ([`Housekeeper`]). The daemon adds: a poll every `refresh` seconds (the
//! first one ignoring the saved Last-Modified), the push socket
//! ([`crate::daemon::listener`]), a watch on a `file://` manifest and on the
//! config file, and the service-manager protocol.
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
//! `[core] manifest`, `[core] objstore`, `[pull] socket`, or unsets
//! `[pull] refresh`), is refused with an error line and the old config
//! stays.

pub mod scheduler;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use grokmirror::config::Config;
use grokmirror::deletion;
use grokmirror::fsutil;
use grokmirror::logging::LogHandle;
use grokmirror::manifest::{Manifest, RepoEntry};
use grokmirror::objstore::FetchMethod;
use grokmirror::remote::Rejected;
use grokmirror::repo;
use grokmirror::state::{self, unix_now, RemoteState};
use grokmirror::{EXIT_FAILURE, EXIT_OK};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, error, info, warn};

use crate::daemon::listener::{Listener, Notification};
use crate::daemon::service::Service;
use crate::daemon::watch::{Changed, FileWatch};
use crate::engine::scheduler::{Queued, Scheduler, Settled};
use crate::plan::{self, Action, PullPlan, RepoJob};
use crate::record::fresh::{self, Observed, Tracker};
use crate::record::local_manifest::Recorder;
use crate::record::metrics::{Activity, Stats};
use crate::settings::{ManifestSource, Settings};
use crate::source::Poll;
use crate::work::housekeeping::{self, Housekeeper, Tools};
use crate::work::job::{self, FinishedJob, JobContext, JobOutcome};
use crate::work::objstore_clone::Objstore;
use crate::Puller;

/// The fewest seconds between two local manifest rewrites while the
/// daemon is busy with a stream of notifications (it is always written
/// every 100 repositories, before each poll, and on exit).
const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// How often the stats line is logged while work goes on (it is always
/// logged when the queue empties).
const STATS_EVERY: Duration = Duration::from_secs(60);
/// How often the metrics file is rewritten at the least.
const METRICS_EVERY: Duration = Duration::from_secs(30);
/// How long after jobs start or finish the freshness file says so (a
/// stream of them makes one write; it is always written after a poll, with
/// the metrics and at the end).
const FRESH_SETTLE: Duration = Duration::from_secs(2);
/// How long after a change of the config file it is read (editors and
/// config management may take a few writes).
const CONFIG_SETTLE: Duration = Duration::from_millis(500);
/// How long after a change of a `file://` manifest it is read.
const MANIFEST_SETTLE: Duration = Duration::from_millis(200);
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

/// What the poll-and-plan task found.
enum Polled {
    Unchanged,
    Planned {
        plan: Box<PullPlan>,
        rejected: Vec<Rejected>,
        state: Option<RemoteState>,
        racy: bool,
        known: BTreeMap<String, RepoEntry>,
        observed: Vec<Observed>,
    },
    Failed(anyhow::Error),
}

/// The signals we act on.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sig {
    Stop(&'static str),
    Reopen,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    async fn next(&mut self) -> Sig {
        tokio::select! {
            _ = self.term.recv() => Sig::Stop("SIGTERM"),
            _ = self.int.recv() => Sig::Stop("SIGINT"),
            _ = self.hup.recv() => Sig::Reopen,
        }
    }
}

/// Which poll-completion state the mirror is in, for the `.remote` file:
/// it may only say "mirrored up to this manifest" once every job planned
/// from it (and from any poll merged in before they finished) is done
/// without failure.
#[derive(Debug, Default)]
struct Batch {
    open: bool,
    pending: HashSet<String>,
    clean: bool,
    state: Option<RemoteState>,
}

impl Batch {
    fn add(&mut self, keys: impl Iterator<Item = String>, clean: bool, state: Option<RemoteState>) {
        if self.open {
            self.clean &= clean;
        } else {
            self.open = true;
            self.clean = clean;
            self.pending.clear();
        }
        self.pending.extend(keys);
        self.state = state;
    }

    fn resolve(&mut self, key: &str, failed: bool) {
        if self.pending.remove(key) && failed {
            self.clean = false;
        }
    }

    /// When complete: whether it was clean, and the state to record.
    fn take_complete(&mut self) -> Option<(bool, Option<RemoteState>)> {
        if self.open && self.pending.is_empty() {
            self.open = false;
            Some((self.clean, self.state.take()))
        } else {
            None
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Stopping {
    signal: &'static str,
    deadline: Instant,
    killed: bool,
}

/// The mirror's running state.
struct Engine {
    puller: Puller,
    opts: Options,
    log: LogHandle,
    service: Service,
    ctx: Arc<JobContext>,
    tools: Arc<Tools>,
    sched: Scheduler,
    running: JoinSet<(Queued, FinishedJob)>,
    running_keys: HashMap<tokio::task::Id, String>,
    started_at: HashMap<tokio::task::Id, Instant>,
    fresh: Tracker,
    progress: Option<crate::record::progress::Progress>,
    recorder: Recorder,
    hk: Housekeeper,
    hooks: JoinSet<()>,
    batch: Batch,
    stats: Stats,
    known: BTreeMap<String, RepoEntry>,
    stopping: Option<Stopping>,
    record_error: Option<anyhow::Error>,
    purge_refused: bool,
    // Polling.
    poll: Option<tokio::task::JoinHandle<Polled>>,
    polls_done: usize,
    next_poll: Option<Instant>,
    poll_requested: bool,
    force_next_poll: bool,
    // The daemon's extras.
    listener: Option<Listener>,
    metrics_server: Option<crate::daemon::httpmetrics::MetricsServer>,
    listener_task: Option<tokio::task::JoinHandle<()>>,
    notes: Option<mpsc::Receiver<Notification>>,
    watch_tx: mpsc::UnboundedSender<Changed>,
    watch_rx: mpsc::UnboundedReceiver<Changed>,
    config_watch: Option<FileWatch>,
    manifest_watch: Option<FileWatch>,
    config_text: Vec<u8>,
    config_due: Option<Instant>,
    manifest_due: Option<Instant>,
    // Timers.
    watchdog_next: Option<Instant>,
    metrics_next: Instant,
    stats_next: Instant,
    flush_due: Option<Instant>,
    fresh_due: Option<Instant>,
    last_flush: Instant,
    worked_since_stats: bool,
    worked_since_idle: bool,
    jobs_finished: u64,
}

/// Poll, then plan off the loop.
async fn poll_and_plan(puller: Puller, force: bool, force_purge: bool) -> Polled {
    let (manifest, state, racy) = match puller.poll(force).await {
        Ok(Poll::Unchanged) => return Polled::Unchanged,
        Ok(Poll::Fetched {
            manifest,
            state,
            racy,
        }) => (manifest, state, racy),
        Err(e) => return Polled::Failed(e),
    };
    let planned = tokio::task::spawn_blocking(move || -> anyhow::Result<Polled> {
        let local = Manifest::read_local(puller.settings.manifest())?;
        let plan = plan::plan(
            &puller.settings,
            puller.tree(),
            &puller.git,
            &manifest,
            &local,
            force_purge,
        );
        let culled = plan::cull(&puller.settings, &manifest);
        let observed = fresh::observe(&culled, &local);
        let known = culled
            .into_iter()
            .map(|(k, remote)| {
                let entry = plan::entry_to_record(&remote, local.repos.get(&k));
                (k, entry)
            })
            .collect();
        Ok(Polled::Planned {
            plan: Box::new(plan),
            rejected: manifest.rejected,
            state,
            racy,
            known,
            observed,
        })
    })
    .await;
    match planned {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => Polled::Failed(e),
        Err(e) => Polled::Failed(anyhow::anyhow!("planning stopped: {e}")),
    }
}

/// Run a job in its own task so that a panic in it becomes a failure of
/// that repository (reported and counted) instead of a lost job.
async fn run_guarded(q: Queued) -> (Queued, FinishedJob) {
    struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);
    impl<T> Drop for AbortOnDrop<T> {
        fn drop(&mut self) {
            self.0.abort();
        }
    }
    let job = q.job.clone();
    let mut inner = AbortOnDrop(tokio::spawn(job::run(q.ctx.clone(), q.job.clone())));
    let done = match (&mut inner.0).await {
        Ok(done) => done,
        Err(e) => {
            error!("the job for {} crashed: {e}", job.key);
            FinishedJob::failed(job, job::Error::Crashed(e))
        }
    };
    (q, done)
}

async fn recv_opt<T>(rx: Option<&mut mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
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

fn tools_of(puller: &Puller, daemon: bool) -> Arc<Tools> {
    // A single run does its housekeeping and exits, load or not.
    let max_load = match puller.settings.housekeeping_max_load {
        _ if !daemon => None,
        Some(l) if l <= 0.0 => None,
        Some(l) => Some(l),
        None => Some(housekeeping::cpus()),
    };
    Arc::new(Tools {
        git: puller.git.clone(),
        objstore_method: FetchMethod::from_config(
            puller.settings.config.core.objstore_uses_plumbing,
        ),
        extra_repack_flags: puller.settings.extra_repack_flags.clone(),
        max_load,
        tree: puller.tree().clone(),
    })
}

/// Run the mirror; returns the exit status.
pub async fn run(puller: Puller, opts: Options, log: LogHandle) -> anyhow::Result<i32> {
    let mut signals = Signals::new()?;
    puller.sweep_staging();
    let settings = puller.settings.clone();
    let (watch_tx, watch_rx) = mpsc::unbounded_channel();
    let mut listener = None;
    let mut notes = None;
    let mut listener_task = None;
    let service = Service::from_env();
    if opts.daemon {
        if let Some(path) = &settings.socket {
            let mut l = Listener::bind(path)?;
            let (tx, rx) = mpsc::channel(NOTIFICATION_QUEUE);
            listener_task = Some(l.serve(tx));
            listener = Some(l);
            notes = Some(rx);
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
        running: JoinSet::new(),
        running_keys: HashMap::new(),
        started_at: HashMap::new(),
        fresh: Tracker::load(&settings),
        progress: None,
        hk,
        hooks: JoinSet::new(),
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
        poll: None,
        polls_done: 0,
        next_poll: Some(now),
        poll_requested: false,
        force_next_poll: opts.daemon || opts.force,
        listener,
        metrics_server: None,
        listener_task,
        notes,
        watch_tx,
        watch_rx,
        config_watch: None,
        manifest_watch: None,
        config_text: std::fs::read(&settings.config.path).unwrap_or_default(),
        config_due: None,
        manifest_due: None,
        watchdog_next: service.watchdog_interval().map(|_| now),
        metrics_next: now + METRICS_EVERY,
        stats_next: now + STATS_EVERY,
        flush_due: None,
        fresh_due: None,
        last_flush: now,
        worked_since_stats: false,
        worked_since_idle: false,
        jobs_finished: 0,
        service,
        ctx,
        puller,
        opts,
        log,
    };
    if opts.daemon {
        if let Some(addr) = &settings.metrics_listen {
            engine.metrics_server =
                Some(crate::daemon::httpmetrics::MetricsServer::bind(addr).await?);
            engine.write_metrics();
        }
        engine.config_watch = FileWatch::new(
            &settings.config.path,
            Changed::Config,
            engine.watch_tx.clone(),
        );
        engine.watch_manifest();
        info!(
            "pull: running as a daemon: polling every {}s{}",
            settings.refresh.unwrap_or_default(),
            if engine.listener.is_some() {
                ", listening for push notifications"
            } else {
                ""
            }
        );
    }
    engine.service.ready("polling the origin");
    engine.run(&mut signals).await
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

    fn watch_manifest(&mut self) {
        self.manifest_watch = match &self.settings().source {
            ManifestSource::File(path) => {
                if self
                    .manifest_watch
                    .as_ref()
                    .is_some_and(|w| w.path() == path)
                {
                    return;
                }
                FileWatch::new(path, Changed::Manifest, self.watch_tx.clone())
            }
            _ => None,
        };
    }

    async fn run(&mut self, signals: &mut Signals) -> anyhow::Result<i32> {
        loop {
            if let Some(result) = self.step(signals).await {
                return result;
            }
            let wake = self.next_wake();
            tokio::select! {
                Some(joined) = self.running.join_next_with_id(), if !self.running.is_empty() => {
                    self.on_joined(joined);
                }
                polled = async { self.poll.as_mut().expect("checked").await }, if self.poll.is_some() => {
                    self.poll = None;
                    let polled = polled.unwrap_or_else(|e| Polled::Failed(anyhow::anyhow!("the manifest poll stopped: {e}")));
                    if let Some(result) = self.on_polled(polled) {
                        return result;
                    }
                }
                Some(event) = self.hk.events.recv() => self.on_housekeeping(event),
                sig = signals.next() => match sig {
                    Sig::Reopen => {
                        self.log.reopen();
                        info!("pull: reopened the log file (SIGHUP)");
                    }
                    Sig::Stop(name) => self.on_stop_signal(name),
                },
                Some(note) = recv_opt(self.notes.as_mut()) => self.on_notification(note),
                Some(changed) = self.watch_rx.recv() => self.on_changed(changed),
                _ = tokio::time::sleep_until(wake.into()) => {}
                Some(_) = self.hooks.join_next(), if !self.hooks.is_empty() => {}
            }
        }
    }

    /// The earliest moment something is due.
    fn next_wake(&self) -> Instant {
        let mut wake = Instant::now() + Duration::from_secs(3600);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                wake = wake.min(t);
            }
        };
        if self.stopping.is_none() {
            if self.poll.is_none() && self.opts.daemon {
                consider(self.next_poll);
            }
            consider(self.sched.next_wake());
            consider(self.config_due);
            consider(self.manifest_due);
            consider(self.flush_due);
            consider(self.fresh_due);
            consider(self.progress.as_ref().and_then(|p| p.next_line()));
            if self.opts.daemon {
                consider(Some(self.stats_next));
            }
        }
        if let Some(s) = &self.stopping {
            if !s.killed && !self.running.is_empty() {
                consider(Some(s.deadline));
            }
        }
        consider(self.watchdog_next);
        if self.opts.daemon {
            consider(Some(self.metrics_next));
        }
        wake
    }

    /// Do what is due; `Some` when the run is over.
    async fn step(&mut self, signals: &mut Signals) -> Option<anyhow::Result<i32>> {
        let now = Instant::now();
        if let Some(next) = self.watchdog_next {
            if next <= now {
                self.service.ping();
                let every = self
                    .service
                    .watchdog_interval()
                    .unwrap_or(Duration::from_secs(60));
                self.watchdog_next = Some(now + every);
            }
        }
        if let Some(stop) = self.stopping {
            if !stop.killed && !self.running.is_empty() && stop.deadline <= now {
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
        if self.config_due.is_some_and(|t| t <= now) {
            self.config_due = None;
            self.reload();
        }
        if self.manifest_due.is_some_and(|t| t <= now) {
            self.manifest_due = None;
            debug!("the remote manifest file changed");
            self.poll_requested = true;
            self.force_next_poll = true;
        }
        self.maybe_start_poll(now);
        self.sched.wake_waiting(now);
        self.start_jobs();
        let was_busy = self.worked_since_idle;
        if self.sched.is_idle() && was_busy {
            self.worked_since_idle = false;
            self.on_idle(now);
        }
        if self.flush_due.is_some_and(|t| t <= now) {
            self.flush();
        }
        if self.fresh_due.is_some_and(|t| t <= now) {
            self.write_fresh();
        }
        if let Some(p) = &mut self.progress {
            let mut active: Vec<String> = self.running_keys.values().cloned().collect();
            active.sort();
            p.tick(now, &active);
        }
        if self.opts.daemon && self.stats_next <= now {
            if self.worked_since_stats {
                self.log_stats();
            }
            self.stats_next = now + STATS_EVERY;
        }
        if self.opts.daemon && self.metrics_next <= now {
            self.write_metrics();
        }
        if !self.opts.daemon && self.polls_done > 0 && self.poll.is_none() && self.sched.is_idle() {
            return Some(self.finish(signals).await);
        }
        None
    }

    fn maybe_start_poll(&mut self, now: Instant) {
        if self.poll.is_some() {
            return;
        }
        if !self.opts.daemon && self.polls_done > 0 {
            return;
        }
        let due = self.next_poll.is_some_and(|t| t <= now) || self.poll_requested;
        if !due {
            return;
        }
        // The plan reads the local manifest: bring it up to date first.
        self.flush();
        let force = self.force_next_poll;
        self.force_next_poll = false;
        self.poll_requested = false;
        let force_purge = self.opts.force_purge && self.polls_done == 0;
        self.next_poll = self
            .settings()
            .refresh
            .map(|r| now + Duration::from_secs(r.max(1) as u64));
        self.poll = Some(tokio::spawn(poll_and_plan(
            self.puller.clone(),
            force,
            force_purge,
        )));
    }

    fn on_polled(&mut self, polled: Polled) -> Option<anyhow::Result<i32>> {
        self.polls_done += 1;
        let daemon = self.opts.daemon;
        match polled {
            Polled::Unchanged => {
                self.fresh.poll_result("unchanged", None, unix_now());
                self.stats.polls_unchanged += 1;
                self.stats.last_poll_ok = Some(SystemTime::now());
                if !daemon {
                    info!("pull: nothing to do");
                }
            }
            Polled::Failed(e) => {
                self.stats.polls_failed += 1;
                self.fresh
                    .poll_result("failed", Some(format!("{e:#}")), unix_now());
                if !daemon {
                    if grokmirror_cli::is_usage(&e) {
                        return Some(Err(e));
                    }
                    error!(" manifest: {e:#}");
                    error!("pull: the remote manifest could not be used; nothing was changed");
                    self.write_metrics();
                    return Some(Ok(EXIT_FAILURE));
                }
                error!(" manifest: {e:#}");
                if let Some(r) = self.settings().refresh {
                    error!(" manifest: nothing was changed; trying again in {r}s");
                }
            }
            Polled::Planned {
                plan,
                rejected,
                state,
                racy,
                known,
                observed,
            } => {
                let plan = *plan;
                let now = unix_now();
                self.fresh.polled(&observed, now);
                self.stats.polls_fetched += 1;
                self.stats.last_poll_ok = Some(SystemTime::now());
                log_rejected(&rejected);
                self.recorder.summary.rejected += rejected.len();
                self.recorder.summary.unchanged += plan.unchanged;
                self.purge_refused |= plan.purge_refused;
                for (key, why) in &plan.failures {
                    self.recorder.fail(key, why);
                    self.fresh.failed(key, why, now);
                    self.stats.failing.insert(key.clone(), why.clone());
                    self.stats.failed += 1;
                }
                let clean = rejected.is_empty() && plan.failures.is_empty() && !plan.purge_refused;
                if daemon && (!clean || racy) {
                    // Look at everything again next time: failures are
                    // retried, and a manifest that may have changed again
                    // within the second it was read is read once more.
                    self.force_next_poll = true;
                }
                self.stats.known = known.len();
                self.known = known;
                let borrowed = OnceLock::new();
                if let Some(b) = plan.borrowed {
                    let _ = borrowed.set(b);
                }
                let objstore = Arc::new(Objstore {
                    groups: plan.forkgroups,
                    ..Objstore::from_settings(self.settings())
                });
                self.ctx = Arc::new(JobContext {
                    settings: self.settings().clone(),
                    git: self.puller.git.clone(),
                    tree: self.puller.tree().clone(),
                    gate: plan.gate,
                    borrowed,
                    objstore,
                });
                let keys: Vec<String> = plan.jobs.iter().map(|j| j.key.clone()).collect();
                if daemon {
                    if keys.is_empty() {
                        self.log_stats();
                    } else {
                        info!(
                            " manifest: {} to do",
                            plural(keys.len(), "repository", "repositories")
                        );
                    }
                }
                if !daemon && !keys.is_empty() {
                    use std::io::IsTerminal as _;
                    match &mut self.progress {
                        Some(p) => p.add(keys.len()),
                        None => {
                            self.progress = Some(crate::record::progress::Progress::new(
                                keys.len(),
                                std::io::stderr().is_terminal(),
                            ))
                        }
                    }
                }
                self.batch.add(keys.into_iter(), clean, state);
                for job in plan.jobs {
                    self.push(job, None);
                }
                self.check_batch();
            }
        }
        self.write_fresh();
        if daemon {
            if let Some(r) = self.settings().refresh {
                debug!(" manifest: next poll in {r}s");
            }
            self.write_metrics();
        }
        None
    }

    fn push(&mut self, job: RepoJob, ctx: Option<Arc<JobContext>>) {
        let key = job.key.clone();
        let ctx = ctx.unwrap_or_else(|| self.ctx.clone());
        self.sched.push(job, ctx);
        if self.hk.claim(&key) {
            // Housekeeping is on it: the fetch waits for it to stop.
            self.sched.hold(&key);
        }
        self.worked_since_idle = true;
    }

    fn start_jobs(&mut self) {
        while let Some(q) = self.sched.start_next() {
            let key = q.job.key.clone();
            let handle = self.running.spawn(run_guarded(q));
            self.running_keys.insert(handle.id(), key);
            self.started_at.insert(handle.id(), Instant::now());
            if self.opts.daemon {
                self.fresh_due.get_or_insert(Instant::now() + FRESH_SETTLE);
            }
        }
    }

    fn on_joined(
        &mut self,
        joined: Result<(tokio::task::Id, (Queued, FinishedJob)), tokio::task::JoinError>,
    ) {
        match joined {
            Ok((id, (q, done))) => {
                self.running_keys.remove(&id);
                if let Some(t) = self.started_at.remove(&id) {
                    self.stats.attempt(&done.outcome, t.elapsed());
                }
                self.settle(q, done);
            }
            Err(e) => {
                self.started_at.remove(&e.id());
                if let Some(key) = self.running_keys.remove(&e.id()) {
                    info!("  stopped: {key} (will be done next run)");
                    self.sched.cancelled(&key);
                    self.hk.unclaim(&key);
                }
            }
        }
    }

    fn settle(&mut self, q: Queued, done: FinishedJob) {
        let key = q.job.key.clone();
        let done = match self.sched.settle(q, done, Instant::now()) {
            Settled::Retrying => return,
            Settled::Finished(done) => *done,
        };
        if !self.sched.wants(&key) {
            self.hk.unclaim(&key);
        }
        self.stats.job(&key, &done.outcome);
        let modified = done.job.entry.as_ref().map(|e| e.modified);
        self.fresh.done(&key, &done.outcome, modified, unix_now());
        self.jobs_finished += 1;
        let failed = matches!(done.outcome, JobOutcome::Failed(_));
        if let Some(p) = &mut self.progress {
            p.finish_one(&key, failed);
        }
        if failed && self.opts.daemon {
            self.force_next_poll = true;
        }
        if !failed && !done.housekeeping.is_empty() && self.stopping.is_none() {
            let path = fsutil::key_path(self.settings().toplevel(), &key);
            self.hk
                .queue(&key, &path, done.housekeeping.clone(), self.tools.clone());
        }
        if let Err(e) = self.recorder.done(done) {
            error!("{e:#}");
            self.record_error.get_or_insert(e);
        }
        if self.opts.daemon {
            // The daemon keeps failures in its stats; the list is for a
            // one-shot run's last line.
            self.recorder.failures.clear();
        }
        self.worked_since_stats = true;
        self.batch.resolve(&key, failed);
        if !self.sched.clones_pending() && !self.recorder.fresh_clones.is_empty() {
            let clones = std::mem::take(&mut self.recorder.fresh_clones);
            let lines = self.settings().post_clone_complete_hook.clone();
            let timeout = self.settings().hook_timeout;
            self.hooks.spawn(async move {
                crate::work::hooks::post_clone_complete(&lines, &clones, timeout).await;
            });
        }
        self.check_batch();
    }

    /// Once everything planned from the polls so far is done: record the
    /// manifest's time if it all went well, otherwise make the next poll
    /// look at everything again.
    fn check_batch(&mut self) {
        let Some((clean, state)) = self.batch.take_complete() else {
            return;
        };
        if !self.opts.daemon {
            // A one-shot run decides at its end (it may be interrupted).
            self.batch.open = true;
            self.batch.clean = clean;
            self.batch.state = state;
            return;
        }
        if clean {
            self.flush();
            self.write_state(state);
        } else {
            self.force_next_poll = true;
        }
    }

    fn write_state(&self, state: Option<RemoteState>) {
        if let Some(state) = state {
            let path = state::state_path(self.settings().manifest());
            if let Err(e) = state.write(&path) {
                warn!("cannot write {}: {e}", path.display());
            }
        }
    }

    fn on_idle(&mut self, now: Instant) {
        if self.opts.daemon {
            if self.recorder.has_pending() {
                if now.duration_since(self.last_flush) >= FLUSH_EVERY {
                    self.flush();
                } else if self.flush_due.is_none() {
                    self.flush_due = Some(self.last_flush + FLUSH_EVERY);
                }
            }
            self.log_stats();
            self.write_metrics();
            let lines = self.settings().post_work_complete_hook.clone();
            let timeout = self.settings().hook_timeout;
            if !lines.is_empty() {
                self.hooks.spawn(async move {
                    crate::work::hooks::post_work_complete(&lines, timeout).await;
                });
            }
        }
    }

    fn flush(&mut self) {
        self.flush_due = None;
        self.last_flush = Instant::now();
        if let Err(e) = self.recorder.flush() {
            error!("{e:#}");
            self.record_error.get_or_insert(e);
        }
        // Soon, not now: on a big collection the file is large, and a
        // stream of finished jobs makes one write.
        self.fresh_due.get_or_insert(Instant::now() + FRESH_SETTLE);
    }

    /// Write the freshness file, with what a running daemon is doing.
    fn write_fresh(&mut self) {
        self.fresh_due = None;
        let activity = (self.opts.daemon && self.stopping.is_none()).then(|| {
            let mut active: Vec<String> = self.running_keys.values().cloned().collect();
            active.sort();
            grokmirror::freshness::Activity {
                pid: std::process::id(),
                polling: self.poll.is_some(),
                active,
                queued: self.sched.queued(),
                housekeeping: self.hk.load().total(),
            }
        });
        self.fresh.write(activity);
    }

    fn log_stats(&mut self) {
        let line = self.stats.line(self.activity());
        info!("    stats: {line}");
        self.service.status(&line);
        self.worked_since_stats = false;
        self.stats_next = Instant::now() + STATS_EVERY;
    }

    fn write_metrics(&mut self) {
        self.metrics_next = Instant::now() + METRICS_EVERY;
        self.write_fresh();
        self.stats.freshness = Some((self.fresh.summary(), self.settings().stale_after));
        let path = self.settings().metrics_file.clone();
        if path.is_none() && self.metrics_server.is_none() {
            return;
        }
        let text = self.stats.prometheus(self.activity(), SystemTime::now());
        if let Some(path) = path {
            if let Err(e) = fsutil::write_atomic(&path, text.as_bytes()) {
                warn!("cannot write [pull] metrics_file {}: {e}", path.display());
            }
        }
        if let Some(server) = &self.metrics_server {
            server.set(text);
        }
    }

    fn on_housekeeping(&mut self, event: housekeeping::Event) {
        match event {
            housekeeping::Event::Finished(_) => {
                self.stats.housekept += 1;
                // The end of a batch is when its housekeeping is done too.
                if self.opts.daemon && self.sched.is_idle() && self.hk.load().total() == 0 {
                    self.log_stats();
                    self.write_metrics();
                }
            }
            housekeeping::Event::Released(key) => self.sched.release(&key),
        }
    }

    fn on_notification(&mut self, note: Notification) {
        if self.stopping.is_some() {
            return;
        }
        let key = note.0;
        let Some(entry) = self.known.get(&key) else {
            self.stats.notifications_ignored += 1;
            info!(" listener: {key} (not known, ignored)");
            return;
        };
        info!(" listener: {key}");
        self.stats.notifications += 1;
        let mut entry = entry.clone();
        // Something was pushed just now.
        entry.modified = unix_now();
        let path = fsutil::key_path(self.settings().toplevel(), &key);
        let action = if repo::is_bare_repo(&path) {
            Action::Update {
                adopt: false,
                reconfig: false,
                fetch: true,
            }
        } else {
            Action::Clone
        };
        self.push(
            RepoJob {
                key,
                action,
                entry: Some(entry),
                notified: true,
            },
            None,
        );
    }

    fn on_changed(&mut self, changed: Changed) {
        let now = Instant::now();
        // Counted from the first event: later ones must not keep pushing
        // it back (a busy neighbour in the same directory would).
        match changed {
            Changed::Config => {
                self.config_due.get_or_insert(now + CONFIG_SETTLE);
            }
            Changed::Manifest => {
                self.manifest_due.get_or_insert(now + MANIFEST_SETTLE);
            }
        }
    }

    /// Read the changed config; apply it, or keep the old one.
    fn reload(&mut self) {
        let path = self.settings().config.path.clone();
        let text = std::fs::read(&path).unwrap_or_default();
        if text == self.config_text {
            debug!("{} was touched but not changed", path.display());
            return;
        }
        let loaded = Config::load(&path)
            .map_err(anyhow::Error::from)
            .and_then(|c| Ok(Settings::from_config(c, self.opts.purge_flag)?));
        let new = match loaded {
            Ok(s) => s,
            Err(e) => {
                self.stats.reloads_failed += 1;
                error!(
                    "   config: cannot reload {}: {e:#}; still using the previous config",
                    path.display()
                );
                return;
            }
        };
        let old = self.settings();
        let mut needs_restart = Vec::new();
        if new.toplevel() != old.toplevel() {
            needs_restart.push("[core] toplevel");
        }
        if new.manifest() != old.manifest() {
            needs_restart.push("[core] manifest");
        }
        if new.config.core.objstore != old.config.core.objstore {
            needs_restart.push("[core] objstore");
        }
        if new.socket != old.socket {
            needs_restart.push("[pull] socket");
        }
        if new.metrics_listen != old.metrics_listen {
            needs_restart.push("[pull] metrics_listen");
        }
        if new.refresh.is_none() {
            needs_restart.push("[pull] refresh (unset)");
        }
        if !needs_restart.is_empty() {
            self.stats.reloads_failed += 1;
            error!(
                "   config: not reloading {}: {} changed, which needs a restart of grok-pull; still using the previous config",
                path.display(),
                needs_restart.join(", ")
            );
            return;
        }
        if new.log != old.log || new.loglevel != old.loglevel {
            warn!("   config: changes to [core] log and loglevel take effect after a restart");
        }
        self.config_text = text;
        self.sched.set_workers(new.pull_threads);
        self.recorder.reconfigure(&new);
        self.fresh.reconfigure(&new);
        self.puller = match Puller::new(new) {
            Ok(p) => p,
            Err(e) => {
                error!("   config: not reloading {}: {e:#}", path.display());
                return;
            }
        };
        self.tools = tools_of(&self.puller, self.opts.daemon);
        let objstore = Arc::new(Objstore {
            groups: self.ctx.objstore.groups.clone(),
            ..Objstore::from_settings(&self.puller.settings)
        });
        self.ctx = Arc::new(JobContext {
            settings: self.puller.settings.clone(),
            git: self.puller.git.clone(),
            tree: self.puller.tree().clone(),
            // Purges approved under the old config are not carried over.
            gate: deletion::Rules {
                wanted: self.ctx.gate.wanted.clone(),
                ..deletion::Rules::default()
            },
            borrowed: OnceLock::new(),
            objstore,
        });
        self.watch_manifest();
        self.stats.reloads += 1;
        info!(
            "   config: reloaded {}; checking every repository again",
            path.display()
        );
        // A new config may include, exclude or set up repositories
        // differently: look at everything (as the `.remote` file's
        // config-last-modified asks for too).
        self.poll_requested = true;
        self.force_next_poll = true;
    }

    fn on_stop_signal(&mut self, name: &'static str) {
        if let Some(stop) = &mut self.stopping {
            if !stop.killed && !self.running.is_empty() {
                warn!("stopping: second {name}: not waiting any longer");
                self.kill_running("second signal");
            }
            return;
        }
        let grace = self.settings().shutdown_grace;
        info!("{name} received: stopping");
        self.service.stopping();
        self.stopping = Some(Stopping {
            signal: name,
            deadline: Instant::now() + grace,
            killed: false,
        });
        let dropped = self.sched.clear_queue();
        self.hk.set_claims(self.sched.running_keys());
        if dropped > 0 {
            info!(
                "stopping: {} not started, left for the next run",
                plural(dropped, "repository", "repositories")
            );
        }
        if let Some(p) = self.poll.take() {
            p.abort();
        }
        if let Some(t) = self.listener_task.take() {
            t.abort();
        }
        self.listener = None;
        self.notes = None;
        self.config_watch = None;
        self.manifest_watch = None;
        self.hk.stop();
        let running = self.running.len();
        if running > 0 {
            if grace.is_zero() {
                self.kill_running("[pull] shutdown_grace is 0");
            } else {
                let keys: BTreeSet<&String> = self.running_keys.values().collect();
                info!(
                    "stopping: waiting up to {}s for {} to finish ({}); signal again to stop at once",
                    grace.as_secs(),
                    plural(running, "running job", "running jobs"),
                    keys.into_iter().cloned().collect::<Vec<_>>().join(" ")
                );
            }
        }
    }

    fn kill_running(&mut self, why: &str) {
        if let Some(s) = &mut self.stopping {
            s.killed = true;
        }
        info!(
            "stopping: {why}: interrupting {}",
            plural(self.running.len(), "running job", "running jobs")
        );
        // Aborting drops each job: its git processes are killed and a
        // staged clone is removed with it.
        self.running.abort_all();
    }

    /// Wind up: write the local manifest, run the last hooks, wait for
    /// housekeeping (one-shot), and say how it went.
    async fn finish(&mut self, signals: &mut Signals) -> anyhow::Result<i32> {
        let mut stopped = self.stopping;
        self.progress = None;
        self.flush();
        if stopped.is_none() && !self.recorder.fresh_clones.is_empty() {
            let clones = std::mem::take(&mut self.recorder.fresh_clones);
            crate::work::hooks::post_clone_complete(
                &self.settings().post_clone_complete_hook,
                &clones,
                self.settings().hook_timeout,
            )
            .await;
        }
        if stopped.is_none() && !self.opts.daemon && self.jobs_finished > 0 {
            crate::work::hooks::post_work_complete(
                &self.settings().post_work_complete_hook,
                self.settings().hook_timeout,
            )
            .await;
        }
        // Hooks started earlier get what is left of the grace period.
        if !self.hooks.is_empty() {
            let until = stopped.map_or_else(
                || Instant::now() + Duration::from_secs(3600 * 24),
                |s| s.deadline,
            );
            let wait = async { while self.hooks.join_next().await.is_some() {} };
            if tokio::time::timeout_at(until.into(), wait).await.is_err() {
                warn!("stopping: interrupting hooks still running");
                self.hooks.abort_all();
            }
        }
        if stopped.is_none() && self.hk.load().total() > 0 {
            info!("      spa: waiting for housekeeping to finish");
            loop {
                tokio::select! {
                    _ = self.hk.drained() => break,
                    sig = signals.next() => match sig {
                        Sig::Reopen => self.log.reopen(),
                        Sig::Stop(name) => {
                            warn!("{name} received: not waiting for housekeeping");
                            stopped = Some(Stopping { signal: name, deadline: Instant::now(), killed: true });
                            break;
                        }
                    },
                }
            }
        }
        self.hk.shutdown();
        let summary = self.recorder.summary.clone();
        let problems = summary.failed > 0 || summary.rejected > 0 || self.purge_refused;
        if stopped.is_none() && !problems && self.polls_done > 0 {
            if let Some((true, state)) = self.batch.take_complete() {
                self.write_state(state);
            }
        }
        self.write_metrics();
        if let Some(e) = self.record_error.take() {
            error!("pull: the local manifest could not be written: {e:#}");
            return Ok(EXIT_FAILURE);
        }
        if self.opts.daemon {
            info!(
                "pull: stopped on {}; {}",
                stopped.map_or("request", |s| s.signal),
                self.stats.line(self.activity())
            );
            return Ok(EXIT_OK);
        }
        if let Some(s) = stopped {
            error!(
                "pull: interrupted by {}; unfinished repositories will be done next run",
                s.signal
            );
        }
        if self.purge_refused {
            error!("pull: purge refused by purgeprotect (see above)");
        }
        if !self.recorder.failures.is_empty() {
            let names: Vec<&str> = self
                .recorder
                .failures
                .iter()
                .map(|(k, _)| k.as_str())
                .collect();
            error!("pull: failed: {}", names.join(" "));
        }
        if problems {
            error!("pull: {summary}");
            Ok(EXIT_FAILURE)
        } else {
            if self.polls_done > 0 && (summary != Default::default() || stopped.is_some()) {
                info!("pull: {summary}");
            }
            Ok(EXIT_OK)
        }
    }
}

/// How many rejected entries are logged one by one before the rest are
/// summed up in one line.
pub const REJECTED_LINES: usize = 20;

/// One error line per rejected entry (key and reason cut to a few hundred
/// bytes), at most [`REJECTED_LINES`] of them, then one line for the rest:
/// a hostile manifest cannot flood the log.
fn log_rejected(rejected: &[Rejected]) {
    for r in rejected.iter().take(REJECTED_LINES) {
        error!(
            " manifest: rejected {}: {}",
            grokmirror::remote::cut(&r.key),
            r.reason
        );
    }
    if rejected.len() > REJECTED_LINES {
        error!(
            " manifest: ... and {} more entries rejected",
            rejected.len() - REJECTED_LINES
        );
    }
}
