//! Running jobs with bounded concurrency (`[pull] pull_threads`).
//!
//! Updates of existing repositories go before clones. Clones may take every
//! worker, but when all of them are busy cloning and an update is waiting,
//! that update runs beside them in one extra lane: a huge initial clone (or
//! a batch of them) never keeps the rest of the mirror from being updated,
//! and an initial mirror still clones with every worker. A job whose repository is locked by someone else is put back
//! and tried again a little later, a bounded number of times.
//!
//! The scheduler only runs jobs and hands each finished one to the caller's
//! `on_done`; what to record is the caller's business (see
//! [`crate::record`]). New jobs can be pushed while it runs, which is what a
//! daemon loop needs.

use std::collections::{BTreeSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedReceiver;
use tokio::task::JoinSet;
use tracing::{error, info};

use crate::forkgroup::{Objstore, Seeding};
use crate::job::{self, Ctx, Done, Outcome};
use crate::plan::{Action, Job};

/// How long to wait before retrying a locked repository.
pub const BUSY_PAUSE: Duration = Duration::from_secs(5);
/// How many times a locked repository is retried before the job fails.
pub const BUSY_TRIES: u32 = 60;

#[derive(Debug)]
struct Queued {
    job: Job,
    busy_tries: u32,
}

/// What the caller learns about a finished job.
#[derive(Debug)]
pub struct Finished {
    /// The finished job.
    pub done: Done,
    /// Whether clones are still queued or running (for
    /// `post_clone_complete_hook`).
    pub clones_pending: bool,
}

/// The work queue and its workers.
#[derive(Debug)]
pub struct Scheduler {
    workers: usize,
    updates: VecDeque<Queued>,
    clones: VecDeque<Queued>,
    waiting: Vec<(Instant, Queued)>,
    queued_keys: BTreeSet<String>,
    running_clones: usize,
    /// Object storage, when clones go into fork groups.
    objstore: Option<Arc<Objstore>>,
    /// Groups whose first clone is running.
    seeding: Seeding,
}

impl Scheduler {
    /// A scheduler with `workers` concurrent jobs.
    pub fn new(workers: usize) -> Scheduler {
        let workers = workers.max(1);
        Scheduler {
            workers,
            updates: VecDeque::new(),
            clones: VecDeque::new(),
            waiting: Vec::new(),
            queued_keys: BTreeSet::new(),
            running_clones: 0,
            objstore: None,
            seeding: Seeding::default(),
        }
    }

    /// Clone forks into their object storage: the first clone of a group
    /// without populated object storage runs alone (the others then find
    /// it populated), public clones before private ones.
    pub fn with_objstore(mut self, objstore: Arc<Objstore>) -> Scheduler {
        self.objstore = Some(objstore);
        self
    }

    /// The next clone that may start (see [`Scheduler::with_objstore`]).
    fn next_clone(&mut self) -> Option<Queued> {
        let Some(objstore) = self.objstore.clone() else {
            return self.clones.pop_front();
        };
        let group_of = |q: &Queued| -> Option<(String, bool)> {
            let group = q.job.entry.as_ref()?.forkgroup.clone()?;
            if q.job.action != Action::Clone {
                return None;
            }
            let path = grokmirror::fsutil::key_path(&objstore.toplevel, &q.job.key);
            Some((group, objstore.is_private(&q.job.key, &path)))
        };
        let mut chosen = None;
        for (i, q) in self.clones.iter().enumerate() {
            let Some((group, private)) = group_of(q) else {
                chosen = Some(i);
                break;
            };
            let public_waiting = || {
                self.clones
                    .iter()
                    .chain(self.waiting.iter().map(|(_, w)| w))
                    .any(|o| {
                        o.job.key != q.job.key && group_of(o).is_some_and(|(g, p)| g == group && !p)
                    })
            };
            if self
                .seeding
                .admit(&objstore, &q.job.key, &group, private, &public_waiting)
            {
                chosen = Some(i);
                break;
            }
        }
        chosen.and_then(|i| self.clones.remove(i))
    }

    /// Queue a job, unless a job for the same repository is already queued
    /// or running. Returns whether it was queued.
    pub fn push(&mut self, job: Job) -> bool {
        if !self.queued_keys.insert(job.key.clone()) {
            return false;
        }
        let q = Queued { job, busy_tries: 0 };
        if q.job.is_clone() {
            self.clones.push_back(q);
        } else {
            self.updates.push_back(q);
        }
        true
    }

    fn clones_pending(&self) -> bool {
        self.running_clones > 0
            || !self.clones.is_empty()
            || self.waiting.iter().any(|(_, q)| q.job.is_clone())
    }

    fn next_ready(&mut self, running: usize) -> Option<Queued> {
        if !self.updates.is_empty() {
            let running_updates = running - self.running_clones;
            // Every worker busy cloning: one update may run beside them.
            let overflow = running_updates == 0 && running < self.workers + 1;
            if running < self.workers || overflow {
                return self.updates.pop_front();
            }
            return None;
        }
        if running < self.workers {
            return self.next_clone();
        }
        None
    }

    fn wake_waiting(&mut self) {
        let now = Instant::now();
        let mut still = Vec::new();
        for (at, q) in self.waiting.drain(..) {
            if at <= now {
                if q.job.is_clone() {
                    self.clones.push_back(q);
                } else {
                    self.updates.push_back(q);
                }
            } else {
                still.push((at, q));
            }
        }
        self.waiting = still;
    }

    /// Run until every job is done (and, with `incoming`, until that
    /// channel is closed: new jobs arriving on it are queued as they come,
    /// which is what a daemon needs), or until `stop` resolves: then running
    /// jobs are killed (their git processes die with them, their staged
    /// clones are removed) and the queue is dropped. `on_done` is called for
    /// each finished job, in the order they finish. Returns false when
    /// stopped.
    pub async fn run<F, S>(
        &mut self,
        ctx: Arc<Ctx>,
        stop: S,
        mut incoming: Option<&mut UnboundedReceiver<Job>>,
        mut on_done: F,
    ) -> bool
    where
        F: AsyncFnMut(Finished),
        S: Future<Output = ()>,
    {
        let mut running: JoinSet<(Queued, Done)> = JoinSet::new();
        let mut stop = std::pin::pin!(stop);
        let mut stopped = false;
        loop {
            self.wake_waiting();
            while let Some(q) = self.next_ready(running.len()) {
                if q.job.is_clone() {
                    self.running_clones += 1;
                }
                running.spawn(run_guarded(ctx.clone(), q));
            }
            let listening = incoming.is_some();
            if running.is_empty() && self.waiting.is_empty() && !listening {
                break;
            }
            let next_wake = self.waiting.iter().map(|(at, _)| *at).min();
            let finished = tokio::select! {
                Some(joined) = running.join_next(), if !running.is_empty() => joined,
                _ = async {
                    match next_wake {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                } => continue,
                job = async {
                    match incoming.as_mut() {
                        Some(rx) => rx.recv().await,
                        None => std::future::pending().await,
                    }
                }, if listening => {
                    match job {
                        Some(job) => {
                            self.push(job);
                        }
                        None => incoming = None,
                    }
                    continue;
                }
                _ = &mut stop => { stopped = true; break; }
            };
            let (mut q, done) = match finished {
                Ok(pair) => pair,
                Err(e) => {
                    // Only an abort gets here (panics are caught by
                    // run_guarded), and only `stop` aborts.
                    error!("a job was cancelled: {e}");
                    continue;
                }
            };
            if q.job.is_clone() {
                self.running_clones -= 1;
            }
            self.seeding.finished(&q.job.key);
            let done = if done.outcome == Outcome::Busy {
                q.busy_tries += 1;
                if q.busy_tries < BUSY_TRIES {
                    self.waiting.push((Instant::now() + BUSY_PAUSE, q));
                    continue;
                }
                let why = format!(
                    "still locked by another process after {} tries",
                    q.busy_tries
                );
                Done {
                    outcome: Outcome::Failed(why),
                    ..done
                }
            } else {
                done
            };
            self.queued_keys.remove(&q.job.key);
            let clones_pending = self.clones_pending();
            on_done(Finished {
                done,
                clones_pending,
            })
            .await;
        }
        if stopped {
            info!("stopping: interrupting {} running jobs", running.len());
            running.abort_all();
            while running.join_next().await.is_some() {}
            self.updates.clear();
            self.clones.clear();
            self.waiting.clear();
            self.queued_keys.clear();
            self.running_clones = 0;
        }
        !stopped
    }
}

/// Aborts a task when dropped, so cancelling the outer job task also
/// cancels the job inside it.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Run a job in its own task so that a panic in it becomes a failure of
/// that repository (reported and counted) instead of a lost job.
async fn run_guarded(ctx: Arc<Ctx>, q: Queued) -> (Queued, Done) {
    let job = q.job.clone();
    let mut inner = AbortOnDrop(tokio::spawn(job::run(ctx, q.job.clone())));
    let done = match (&mut inner.0).await {
        Ok(done) => done,
        Err(e) => {
            error!("the job for {} crashed: {e}", job.key);
            Done::failed(job, format!("crashed: {e}"))
        }
    };
    (q, done)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Action;

    fn job(key: &str, action: Action) -> Job {
        Job {
            key: key.into(),
            action,
            entry: None,
        }
    }

    const UPDATE: Action = Action::Update {
        adopt: false,
        reconfig: false,
        fetch: true,
    };

    /// Start what `next_ready` allows, as `run` does, counting clones.
    fn start_all(s: &mut Scheduler, running: &mut Vec<Job>) {
        while let Some(q) = s.next_ready(running.len()) {
            if q.job.is_clone() {
                s.running_clones += 1;
            }
            running.push(q.job);
        }
    }

    #[test]
    fn updates_first_clones_fill_every_worker_updates_never_starve() {
        let mut s = Scheduler::new(2);
        assert!(s.push(job("/c1.git", Action::Clone)));
        assert!(s.push(job("/c2.git", Action::Clone)));
        assert!(s.push(job("/c3.git", Action::Clone)));
        assert!(s.push(job("/u1.git", UPDATE)));
        assert!(!s.push(job("/u1.git", UPDATE)), "one job per repository");
        let mut running = Vec::new();
        start_all(&mut s, &mut running);
        let keys: Vec<&str> = running.iter().map(|j| j.key.as_str()).collect();
        assert_eq!(keys, vec!["/u1.git", "/c1.git"], "the update goes first");

        // Both workers busy cloning; a new update still gets to run.
        let mut s = Scheduler::new(2);
        s.push(job("/c1.git", Action::Clone));
        s.push(job("/c2.git", Action::Clone));
        s.push(job("/c3.git", Action::Clone));
        let mut running = Vec::new();
        start_all(&mut s, &mut running);
        assert_eq!(
            running.len(),
            2,
            "an initial mirror clones with every worker"
        );
        s.push(job("/u2.git", UPDATE));
        s.push(job("/u3.git", UPDATE));
        start_all(&mut s, &mut running);
        let keys: Vec<&str> = running.iter().map(|j| j.key.as_str()).collect();
        assert_eq!(
            keys,
            vec!["/c1.git", "/c2.git", "/u2.git"],
            "one update beside the clones, no more"
        );
    }
}

#[cfg(test)]
mod run_tests {
    use super::*;
    use crate::plan::Action;
    use crate::settings::Settings;
    use grokmirror::config::Config;

    #[tokio::test]
    async fn jobs_arriving_on_the_channel_run_until_it_closes() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "[core]\ntoplevel = {}\n[remote]\nsite = /nowhere\nmanifest = file:///nowhere/m.js\n",
            dir.path().display()
        );
        let config = Config::from_text(&text, std::path::Path::new("t.conf"), 0).unwrap();
        let ctx = Arc::new(Ctx {
            settings: Settings::from_config(config, false).unwrap(),
            git: grokmirror::git::Git::from_env(),
            culled: Default::default(),
            borrowed: Default::default(),
            objstore: Default::default(),
        });
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let purge = |key: &str| Job {
            key: key.into(),
            action: Action::Purge,
            entry: None,
        };
        tx.send(purge("/a.git")).unwrap();
        tx.send(purge("/b.git")).unwrap();
        let feeder = tokio::spawn(async move {
            tokio::task::yield_now().await;
            tx.send(purge("/c.git")).unwrap();
            // Dropping tx closes the channel: the scheduler then drains
            // and returns.
        });
        let mut s = Scheduler::new(2);
        let mut seen = Vec::new();
        let completed = s
            .run(
                ctx,
                std::future::pending(),
                Some(&mut rx),
                async |f: Finished| {
                    assert_eq!(f.done.outcome, Outcome::Purged);
                    seen.push(f.done.job.key);
                },
            )
            .await;
        feeder.await.unwrap();
        assert!(completed);
        seen.sort();
        assert_eq!(seen, vec!["/a.git", "/b.git", "/c.git"]);
    }
}
