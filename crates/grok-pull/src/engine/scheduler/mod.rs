//! The work queue (`[pull] pull_threads` workers).
//!
//! Updates of existing repositories go before clones. Clones may take every
//! worker, but when all of them are busy cloning and an update is waiting,
//! that update runs beside them in one extra lane: a huge initial clone (or
//! a batch of them) never keeps the rest of the mirror from being updated,
//! and an initial mirror still clones with every worker. A job whose
//! repository is locked by someone else is put back and tried again a
//! little later, a bounded number of times.
//!
//! There is at most one job per repository. A job for a repository that is
//! already queued is merged into the queued one (a burst of push
//! notifications costs one fetch); one for a repository that is running is
//! kept as a follow-up and queued when the running job ends, because the
//! running fetch may have read the origin's refs before the push it is
//! being told about.
//!
//! The scheduler is only the queue: it decides what may start and keeps
//! count. Running the jobs, and what to do with finished ones, is the
//! business of [`crate::engine`].

mod seeding;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::plan::{Action, RepoJob};
use crate::work::job::{self, FinishedJob, JobContext, JobOutcome};
use seeding::Seeding;

/// How long to wait before retrying a locked repository.
pub const BUSY_PAUSE: Duration = Duration::from_secs(5);
/// How many times a locked repository is retried before the job fails.
pub const BUSY_TRIES: u32 = 60;

/// A job with what it runs with.
#[derive(Debug, Clone)]
pub struct Queued {
    /// The job.
    pub job: RepoJob,
    /// The run context it was planned with (settings, culled keys).
    pub ctx: Arc<JobContext>,
    /// How often it found its repository locked so far.
    pub busy_tries: u32,
}

/// What became of a pushed job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued as a new job.
    New,
    /// Merged into the job already queued for the repository.
    Merged,
    /// The repository's job is running: this one follows it.
    FollowUp,
}

/// What became of a finished job.
#[derive(Debug)]
pub enum Settled {
    /// The repository was locked: the job waits and runs again later.
    Retrying,
    /// The job is over (its follow-up, if any, is queued now).
    Finished(Box<FinishedJob>),
}

/// Merge a newer job for the same repository into an older one: the newer
/// entry and action win, except that a re-clone stays a re-clone unless
/// the repository is to go, and a push notification is never forgotten.
fn merge(old: &mut Queued, new: RepoJob, ctx: Arc<JobContext>) {
    let action = match (old.job.action, new.action) {
        (_, Action::Purge) | (Action::Purge, _) => new.action,
        (Action::Reclone, _) | (_, Action::Reclone) => Action::Reclone,
        (
            Action::Update {
                adopt: a1,
                reconfig: r1,
                fetch: f1,
            },
            Action::Update {
                adopt: a2,
                reconfig: r2,
                fetch: f2,
            },
        ) => Action::Update {
            adopt: a1 || a2,
            reconfig: r1 || r2,
            fetch: f1 || f2,
        },
        (_, newer) => newer,
    };
    let notified = (old.job.notified || new.notified) && action != Action::Purge;
    old.job = RepoJob {
        action,
        notified,
        ..new
    };
    old.ctx = ctx;
}

/// The work queue.
#[derive(Debug)]
pub struct Scheduler {
    workers: usize,
    queued: HashMap<String, Queued>,
    updates: VecDeque<String>,
    clones: VecDeque<String>,
    waiting: HashMap<String, (Instant, Queued)>,
    running: HashMap<String, bool>,
    followups: HashMap<String, Queued>,
    held: HashSet<String>,
    /// Fork groups whose first clone is running: the group's other clones
    /// wait for it, then find the object storage populated.
    seeding: Seeding,
}

impl Scheduler {
    /// A scheduler with `workers` concurrent jobs.
    pub fn new(workers: usize) -> Scheduler {
        Scheduler {
            workers: workers.max(1),
            queued: HashMap::new(),
            updates: VecDeque::new(),
            clones: VecDeque::new(),
            waiting: HashMap::new(),
            running: HashMap::new(),
            followups: HashMap::new(),
            held: HashSet::new(),
            seeding: Seeding::default(),
        }
    }

    /// Change the number of workers (a reloaded config); running jobs are
    /// not touched.
    pub fn set_workers(&mut self, workers: usize) {
        self.workers = workers.max(1);
    }

    fn enqueue(&mut self, q: Queued) {
        let key = q.job.key.clone();
        if q.job.is_clone() {
            self.clones.push_back(key.clone());
        } else {
            self.updates.push_back(key.clone());
        }
        self.queued.insert(key, q);
    }

    /// Queue a job (see the module doc for merging and follow-ups).
    pub fn push(&mut self, job: RepoJob, ctx: Arc<JobContext>) -> Pushed {
        let key = job.key.clone();
        if self.running.contains_key(&key) {
            match self.followups.get_mut(&key) {
                Some(old) => merge(old, job, ctx),
                None => {
                    self.followups.insert(
                        key,
                        Queued {
                            job,
                            ctx,
                            busy_tries: 0,
                        },
                    );
                }
            }
            return Pushed::FollowUp;
        }
        if let Some((_, old)) = self.waiting.get_mut(&key) {
            merge(old, job, ctx);
            return Pushed::Merged;
        }
        if let Some(old) = self.queued.get_mut(&key) {
            let was_clone = old.job.is_clone();
            merge(old, job, ctx);
            if old.job.is_clone() != was_clone {
                // Move it to the lane it belongs in now.
                self.updates.retain(|k| *k != key);
                self.clones.retain(|k| *k != key);
                let q = self.queued.remove(&key).expect("just merged");
                self.enqueue(q);
            }
            return Pushed::Merged;
        }
        self.enqueue(Queued {
            job,
            ctx,
            busy_tries: 0,
        });
        Pushed::New
    }

    fn running_clones(&self) -> usize {
        self.running.values().filter(|c| **c).count()
    }

    /// Whether clones are queued, waiting or running (for
    /// `post_clone_complete_hook`).
    pub fn clones_pending(&self) -> bool {
        self.running.values().any(|c| *c)
            || !self.clones.is_empty()
            || self.waiting.values().any(|(_, q)| q.job.is_clone())
            || self.followups.values().any(|q| q.job.is_clone())
    }

    fn pop_lane(&mut self, clones: bool) -> Option<Queued> {
        let pos = if clones {
            self.next_clone()?
        } else {
            self.updates.iter().position(|k| !self.held.contains(k))?
        };
        let lane = if clones {
            &mut self.clones
        } else {
            &mut self.updates
        };
        let key = lane.remove(pos).expect("position is in range");
        self.queued.remove(&key)
    }

    /// The fork group of a clone into object storage, and whether the
    /// repository is private.
    fn group_of(q: &Queued) -> Option<(String, bool)> {
        if q.job.action != Action::Clone {
            return None;
        }
        let group = q.job.entry.as_ref()?.forkgroup.clone()?;
        let objstore = &q.ctx.objstore;
        let path = grokmirror::tree::key::key_path(&objstore.toplevel, &q.job.key);
        Some((group, objstore.is_private(&q.job.key, &path)))
    }

    /// Where in the clone lane the next clone that may start is: the
    /// first clone of a group without populated object storage runs
    /// alone, public clones before private ones.
    fn next_clone(&mut self) -> Option<usize> {
        for (i, key) in self.clones.iter().enumerate() {
            if self.held.contains(key) {
                continue;
            }
            let q = &self.queued[key];
            let Some((group, private)) = Self::group_of(q) else {
                return Some(i);
            };
            let public_waiting = || {
                self.clones
                    .iter()
                    .filter_map(|k| self.queued.get(k))
                    .chain(self.waiting.values().map(|(_, w)| w))
                    .any(|o| {
                        o.job.key != q.job.key
                            && Self::group_of(o).is_some_and(|(g, p)| g == group && !p)
                    })
            };
            if self.seeding.admit(
                &q.job.key,
                &group,
                private,
                || q.ctx.objstore.is_populated(&group),
                public_waiting,
            ) {
                return Some(i);
            }
        }
        None
    }

    /// The next job that may start now, if any; it counts as running from
    /// here on.
    pub fn start_next(&mut self) -> Option<Queued> {
        let running = self.running.len();
        let ready_updates = self.updates.iter().any(|k| !self.held.contains(k));
        let q = if ready_updates {
            let running_updates = running - self.running_clones();
            // Every worker busy cloning: one update may run beside them.
            let overflow = running_updates == 0 && running < self.workers + 1;
            if running < self.workers || overflow {
                self.pop_lane(false)
            } else {
                None
            }
        } else if running < self.workers {
            self.pop_lane(true)
        } else {
            None
        }?;
        self.running.insert(q.job.key.clone(), q.job.is_clone());
        Some(q)
    }

    /// Take back a job that ended. A job that found its repository locked
    /// waits and runs again, up to [`BUSY_TRIES`] times.
    pub fn settle(&mut self, mut q: Queued, done: FinishedJob, now: Instant) -> Settled {
        let key = q.job.key.clone();
        self.running.remove(&key);
        self.seeding.finished(&key);
        let done = if matches!(done.outcome, JobOutcome::Busy) {
            q.busy_tries += 1;
            if q.busy_tries < BUSY_TRIES {
                // A follow-up that arrived meanwhile merges into the retry.
                if let Some(f) = self.followups.remove(&key) {
                    merge(&mut q, f.job, f.ctx);
                }
                self.waiting.insert(key, (now + BUSY_PAUSE, q));
                return Settled::Retrying;
            }
            FinishedJob {
                outcome: JobOutcome::Failed(job::Error::StillLocked(q.busy_tries)),
                ..done
            }
        } else {
            done
        };
        if let Some(f) = self.followups.remove(&key) {
            self.enqueue(f);
        }
        Settled::Finished(Box::new(done))
    }

    /// Forget a running job that was cancelled (its follow-up goes too).
    pub fn cancelled(&mut self, key: &str) {
        self.running.remove(key);
        self.seeding.finished(key);
        self.followups.remove(key);
    }

    /// Move jobs whose pause is over back into the queue.
    pub fn wake_waiting(&mut self, now: Instant) {
        let due: Vec<String> = self
            .waiting
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some((_, q)) = self.waiting.remove(&key) {
                self.enqueue(q);
            }
        }
    }

    /// When the next waiting job is due.
    pub fn next_wake(&self) -> Option<Instant> {
        self.waiting.values().map(|(at, _)| *at).min()
    }

    /// Keep a queued repository from starting until [`Scheduler::release`].
    pub fn hold(&mut self, key: &str) {
        self.held.insert(key.to_string());
    }

    /// Let a held repository start again.
    pub fn release(&mut self, key: &str) {
        self.held.remove(key);
    }

    /// Whether a job for this repository is queued, waiting, running or
    /// following one.
    pub fn wants(&self, key: &str) -> bool {
        self.queued.contains_key(key)
            || self.waiting.contains_key(key)
            || self.running.contains_key(key)
            || self.followups.contains_key(key)
    }

    /// Drop everything that has not started; returns how many jobs went.
    pub fn clear_queue(&mut self) -> usize {
        let n = self.queued.len() + self.waiting.len() + self.followups.len();
        self.queued.clear();
        self.updates.clear();
        self.clones.clear();
        self.waiting.clear();
        self.followups.clear();
        self.held.clear();
        n
    }

    /// Jobs running now.
    pub fn running(&self) -> usize {
        self.running.len()
    }

    /// Keys of the jobs running now.
    pub fn running_keys(&self) -> impl Iterator<Item = &String> {
        self.running.keys()
    }

    /// Jobs waiting to start (queued, pausing on a lock, or following a
    /// running one).
    pub fn queued(&self) -> usize {
        self.queued.len() + self.waiting.len() + self.followups.len()
    }

    /// Nothing queued, waiting or running.
    pub fn is_idle(&self) -> bool {
        self.running.is_empty() && self.queued() == 0
    }
}

#[cfg(test)]
mod tests;
