//! Running jobs with bounded concurrency (`[pull] pull_threads`).
//!
//! Updates of existing repositories go before clones, and when there is
//! more than one worker, clones may take all but one of them: a huge initial
//! clone (or a batch of them) never keeps the rest of the mirror from being
//! updated. A job whose repository is locked by someone else is put back
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

use tokio::task::JoinSet;
use tracing::{error, info};

use crate::job::{self, Ctx, Done, Outcome};
use crate::plan::Job;

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
    clone_workers: usize,
    updates: VecDeque<Queued>,
    clones: VecDeque<Queued>,
    waiting: Vec<(Instant, Queued)>,
    queued_keys: BTreeSet<String>,
    running_clones: usize,
}

impl Scheduler {
    /// A scheduler with `workers` concurrent jobs.
    pub fn new(workers: usize) -> Scheduler {
        let workers = workers.max(1);
        Scheduler {
            workers,
            clone_workers: if workers > 1 { workers - 1 } else { 1 },
            updates: VecDeque::new(),
            clones: VecDeque::new(),
            waiting: Vec::new(),
            queued_keys: BTreeSet::new(),
            running_clones: 0,
        }
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
        if running >= self.workers {
            return None;
        }
        if let Some(q) = self.updates.pop_front() {
            return Some(q);
        }
        if self.running_clones < self.clone_workers {
            return self.clones.pop_front();
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

    /// Run until every job is done, or until `stop` resolves (then running
    /// jobs are killed: their git processes die with them, their staged
    /// clones are removed, and they are reported as failed). `on_done` is
    /// called for each finished job, in the order they finish.
    pub async fn run<F, S>(&mut self, ctx: Arc<Ctx>, stop: S, mut on_done: F) -> bool
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
                let ctx = ctx.clone();
                let job = q.job.clone();
                running.spawn(async move {
                    let done = job::run(ctx, job).await;
                    (q, done)
                });
            }
            if running.is_empty() {
                match self.waiting.iter().map(|(at, _)| *at).min() {
                    None => break,
                    Some(at) => {
                        tokio::select! {
                            _ = tokio::time::sleep_until(at.into()) => continue,
                            _ = &mut stop => { stopped = true; break; }
                        }
                    }
                }
            }
            let next_wake = self.waiting.iter().map(|(at, _)| *at).min();
            let joined = tokio::select! {
                j = running.join_next() => j,
                _ = async {
                    match next_wake {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                } => continue,
                _ = &mut stop => { stopped = true; break; }
            };
            let Some(joined) = joined else { continue };
            let (mut q, done) = match joined {
                Ok(pair) => pair,
                Err(e) => {
                    // A panic in a job: no repository is named by the join
                    // error, so it can only be reported.
                    error!("a job failed unexpectedly: {e}");
                    continue;
                }
            };
            if q.job.is_clone() {
                self.running_clones -= 1;
            }
            if done.outcome == Outcome::Busy {
                q.busy_tries += 1;
                if q.busy_tries < BUSY_TRIES {
                    self.waiting.push((Instant::now() + BUSY_PAUSE, q));
                    continue;
                }
                let why = format!(
                    "still locked by another process after {} tries",
                    q.busy_tries
                );
                self.queued_keys.remove(&q.job.key);
                let done = Done {
                    outcome: Outcome::Failed(why),
                    ..done
                };
                let clones_pending = self.clones_pending();
                on_done(Finished {
                    done,
                    clones_pending,
                })
                .await;
                continue;
            }
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
