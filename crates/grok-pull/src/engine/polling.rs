//! Polling the origin: when a poll is due, the poll-and-plan task off the
//! loop, and taking in what it found.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use grokmirror::formats::last_remote::{unix_now, RemoteState};
use grokmirror::formats::manifest::{Manifest, RepoEntry};
use grokmirror::formats::remote_manifest::{Rejected, Rules};
use grokmirror_cli::EXIT_FAILURE;
use tracing::{debug, error, info};

use super::{plural, Engine};
use crate::peers;
use crate::plan::{self, PullPlan};
use crate::record::fresh::{self, Observed};
use crate::record::progress::Progress;
use crate::source::Poll;
use crate::work::job::JobContext;
use crate::work::objstore_clone::Objstore;
use crate::Puller;

/// How many rejected entries are logged one by one before the rest are
/// summed up in one line.
pub const REJECTED_LINES: usize = 20;

/// What the poll-and-plan task found.
pub(super) enum Polled {
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

/// The poll: the one running, how many are done, and when the next is due.
#[derive(Debug)]
pub(super) struct Polling {
    /// The poll-and-plan task running now.
    pub task: Option<tokio::task::JoinHandle<Polled>>,
    /// Polls finished so far.
    pub done: usize,
    /// When the daemon polls next.
    pub next: Option<Instant>,
    /// A poll was asked for (config reload, `file://` manifest changed).
    pub requested: bool,
    /// The next poll ignores the saved Last-Modified and looks at
    /// everything.
    pub force_next: bool,
}

impl std::fmt::Debug for Polled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Polled::Unchanged => "Unchanged",
            Polled::Planned { .. } => "Planned",
            Polled::Failed(_) => "Failed",
        })
    }
}

impl Polling {
    /// The first poll is due at once.
    pub fn new(now: Instant, force: bool) -> Polling {
        Polling {
            task: None,
            done: 0,
            next: Some(now),
            requested: false,
            force_next: force,
        }
    }

    /// Whether a poll should start now: none is running, and it is time or
    /// one was asked for; a one-shot run polls once.
    pub fn is_due(&self, now: Instant, daemon: bool) -> bool {
        if self.task.is_some() || (!daemon && self.done > 0) {
            return false;
        }
        self.next.is_some_and(|t| t <= now) || self.requested
    }

    /// Ask for a poll soon that looks at everything.
    pub fn request_full(&mut self) {
        self.requested = true;
        self.force_next = true;
    }

    /// A poll starts now: whether it ignores Last-Modified; the next one
    /// is due `refresh` seconds on.
    pub fn begin(&mut self, now: Instant, refresh: Option<i64>) -> bool {
        let force = self.force_next;
        self.force_next = false;
        self.requested = false;
        self.next = refresh.map(|r| now + Duration::from_secs(r.max(1) as u64));
        force
    }
}

/// Poll, then plan off the loop.
async fn poll_and_plan(puller: Puller, force: bool, force_purge: bool) -> Polled {
    // The local manifest is read on a thread of its own while the new
    // remote one arrives and is checked (an unchanged poll reads nothing).
    let early = Arc::new(std::sync::Mutex::new(None));
    let slot = early.clone();
    let local_path = puller.settings.manifest().to_path_buf();
    let start_local = move || {
        let path = local_path.clone();
        let reading = std::thread::Builder::new()
            .name("grok-pull-local".into())
            .spawn(move || Manifest::read_local(&path));
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = reading.ok();
    };
    let (manifest, state, racy) = match puller.poll(force, &start_local).await {
        Ok(Poll::Unchanged) => return Polled::Unchanged,
        Ok(Poll::Fetched {
            manifest,
            state,
            racy,
        }) => (manifest, state, racy),
        Err(e) => return Polled::Failed(e),
    };
    let runtime = tokio::runtime::Handle::current();
    let planned = tokio::task::spawn_blocking(move || -> anyhow::Result<Polled> {
        let reading = early.lock().unwrap_or_else(|e| e.into_inner()).take();
        let local = match reading.map(|r| r.join()) {
            Some(Ok(read)) => read?,
            Some(Err(_)) | None => Manifest::read_local(puller.settings.manifest())?,
        };
        // With a shard and purging on: read the manifests of the shards
        // that repositories we hold moved to (a blocking thread may wait
        // for the runtime).
        let listings = if puller.settings.purge && puller.settings.shard.is_some() {
            let needed = peers::needed(&plan::elsewhere(&puller.settings, &manifest), &local);
            let rules = Rules {
                reserved: puller.tree().reserved().clone(),
            };
            runtime.block_on(peers::read(&puller.settings, &rules, &needed))
        } else {
            plan::PeerListings::new()
        };
        let plan = plan::plan(
            &puller.settings,
            puller.tree(),
            &puller.git,
            &manifest,
            &local,
            &listings,
            force_purge,
        );
        let mut manifest = manifest;
        let culled = plan::cull_out(&puller.settings, &mut manifest);
        let observed = fresh::observe(&culled, &local);
        let known = culled
            .into_iter()
            .map(|(k, remote)| {
                let entry = plan::entry_into_record(remote, local.repos.get(&k));
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

/// One error line per rejected entry (key and reason cut to a few hundred
/// bytes), at most [`REJECTED_LINES`] of them, then one line for the rest:
/// a hostile manifest cannot flood the log.
fn log_rejected(rejected: &[Rejected]) {
    for r in rejected.iter().take(REJECTED_LINES) {
        error!(
            " manifest: rejected {}: {}",
            grokmirror::formats::remote_manifest::cut(&r.key),
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

impl Engine {
    pub(super) fn maybe_start_poll(&mut self, now: Instant) {
        if !self.polling.is_due(now, self.opts.daemon) {
            return;
        }
        // The plan reads the local manifest: bring it up to date first.
        self.flush();
        let force_purge = self.opts.force_purge && self.polling.done == 0;
        let force = self.polling.begin(now, self.settings().refresh);
        self.polling.task = Some(tokio::spawn(poll_and_plan(
            self.puller.clone(),
            force,
            force_purge,
        )));
    }

    pub(super) fn on_polled(&mut self, polled: Polled) -> Option<anyhow::Result<i32>> {
        self.polling.done += 1;
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
            } => self.take_plan(*plan, rejected, state, racy, known, observed),
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

    /// Count what the plan found and queue its jobs, with a job context
    /// of their own.
    fn take_plan(
        &mut self,
        plan: PullPlan,
        rejected: Vec<Rejected>,
        state: Option<RemoteState>,
        racy: bool,
        known: BTreeMap<String, RepoEntry>,
        observed: Vec<Observed>,
    ) {
        let daemon = self.opts.daemon;
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
        let clean = rejected.is_empty()
            && plan.failures.is_empty()
            && !plan.purge_refused
            // Repositories waiting for their new shard: look again next
            // time (when a peer's manifest can tell us).
            && (plan.awaiting_owner == 0 || self.settings().shard_peers.is_empty());
        if daemon && (!clean || racy) {
            // Look at everything again next time: failures are
            // retried, and a manifest that may have changed again
            // within the second it was read is read once more.
            self.polling.force_next = true;
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
                    self.progress = Some(Progress::new(keys.len(), std::io::stderr().is_terminal()))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_is_due_on_time_or_when_asked_and_a_one_shot_run_polls_once() {
        let now = Instant::now();
        let mut p = Polling::new(now, false);
        assert!(p.is_due(now, false), "the first poll at once");
        assert!(!p.begin(now, Some(60)), "not forced");
        p.done = 1;
        assert!(!p.is_due(now, false), "a one-shot run polls once");
        assert!(
            !p.is_due(now, true),
            "the daemon's next poll is a minute on"
        );
        assert!(p.is_due(now + Duration::from_secs(60), true));
        p.request_full();
        assert!(p.is_due(now, true), "asked for");
        assert!(p.begin(now, Some(60)), "and looking at everything");
        assert!(!p.requested && !p.force_next);
        assert_eq!(p.next, Some(now + Duration::from_secs(60)));
        p.begin(now, Some(0));
        assert_eq!(p.next, Some(now + Duration::from_secs(1)), "at least 1s");
        p.begin(now, None);
        assert_eq!(p.next, None);
    }
}
