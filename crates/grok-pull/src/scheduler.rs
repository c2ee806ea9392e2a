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
