//! The jobs running now: starting them, and what happens when one ends
//! (settling it with the scheduler, recording it, queueing its
//! housekeeping, and knowing when a poll's batch is done).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use grokmirror::formats::last_remote::{self, unix_now, RemoteState};
use tokio::task::{Id, JoinError, JoinSet};
use tracing::{error, info, warn};

use super::reports::FRESH_SETTLE;
use super::scheduler::{Queued, Settled};
use super::Engine;
use crate::plan::RepoJob;
use crate::work::job::{self, FinishedJob, JobContext, JobOutcome};

/// The tasks of the running jobs, with their keys and start times.
#[derive(Debug, Default)]
pub(super) struct Running {
    /// The tasks.
    pub tasks: JoinSet<(Queued, FinishedJob)>,
    keys: HashMap<Id, String>,
    started_at: HashMap<Id, Instant>,
}

impl Running {
    /// Start a job in a task of its own.
    fn spawn(&mut self, q: Queued) {
        let key = q.job.key.clone();
        let handle = self.tasks.spawn(run_guarded(q));
        self.keys.insert(handle.id(), key);
        self.started_at.insert(handle.id(), Instant::now());
    }

    /// Forget a task that ended: its key, and how long it ran.
    fn forget(&mut self, id: Id) -> (Option<String>, Option<Duration>) {
        (
            self.keys.remove(&id),
            self.started_at.remove(&id).map(|t| t.elapsed()),
        )
    }

    /// The keys of the running jobs, sorted.
    pub fn sorted_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.keys.values().cloned().collect();
        keys.sort();
        keys
    }

    /// How many jobs run.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether none does.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Kill every running job: dropping each drops its git processes and
    /// removes a staged clone with it.
    pub fn abort_all(&mut self) {
        self.tasks.abort_all();
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

/// Which poll-completion state the mirror is in, for the `.remote` file:
/// it may only say "mirrored up to this manifest" once every job planned
/// from it (and from any poll merged in before they finished) is done
/// without failure.
#[derive(Debug, Default)]
pub(super) struct Batch {
    open: bool,
    pending: HashSet<String>,
    clean: bool,
    state: Option<RemoteState>,
}

impl Batch {
    /// Jobs planned from a poll (`clean`: the poll found no problems).
    pub fn add(
        &mut self,
        keys: impl Iterator<Item = String>,
        clean: bool,
        state: Option<RemoteState>,
    ) {
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

    /// A job ended.
    pub fn resolve(&mut self, key: &str, failed: bool) {
        if self.pending.remove(key) && failed {
            self.clean = false;
        }
    }

    /// When complete: whether it was clean, and the state to record.
    pub fn take_complete(&mut self) -> Option<(bool, Option<RemoteState>)> {
        if self.open && self.pending.is_empty() {
            self.open = false;
            Some((self.clean, self.state.take()))
        } else {
            None
        }
    }

    /// Put back what [`Batch::take_complete`] took: a one-shot run decides
    /// at its end.
    fn reopen(&mut self, clean: bool, state: Option<RemoteState>) {
        self.open = true;
        self.clean = clean;
        self.state = state;
    }
}

impl Engine {
    /// Queue a job, with the current job context unless it brings its own.
    pub(super) fn push(&mut self, job: RepoJob, ctx: Option<Arc<JobContext>>) {
        let key = job.key.clone();
        let ctx = ctx.unwrap_or_else(|| self.ctx.clone());
        self.sched.push(job, ctx);
        if self.hk.claim(&key) {
            // Housekeeping is on it: the fetch waits for it to stop.
            self.sched.hold(&key);
        }
        self.worked.since_idle = true;
    }

    pub(super) fn start_jobs(&mut self) {
        while let Some(q) = self.sched.start_next() {
            self.running.spawn(q);
            if self.opts.daemon {
                self.timers
                    .fresh_due
                    .get_or_insert(Instant::now() + FRESH_SETTLE);
            }
        }
    }

    pub(super) fn on_joined(&mut self, joined: Result<(Id, (Queued, FinishedJob)), JoinError>) {
        match joined {
            Ok((id, (q, done))) => {
                if let (_, Some(took)) = self.running.forget(id) {
                    self.stats.attempt(&done.outcome, took);
                    self.stats.received(done.received_bytes);
                }
                self.settle(q, done);
            }
            Err(e) => {
                if let (Some(key), _) = self.running.forget(e.id()) {
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
        self.worked.jobs_finished += 1;
        let failed = matches!(done.outcome, JobOutcome::Failed(_));
        if let Some(p) = &mut self.progress {
            p.finish_one(&key, failed, done.received_bytes);
        }
        if failed && self.opts.daemon {
            self.polling.force_next = true;
        }
        if !failed && !done.housekeeping.is_empty() && self.stopping.is_none() {
            let path = grokmirror::tree::key::key_path(self.settings().toplevel(), &key);
            self.hk
                .queue(&key, &path, done.housekeeping.clone(), self.tools.clone());
        }
        if matches!(done.outcome, JobOutcome::Cloned | JobOutcome::Updated) {
            self.fetched_for_peers(&key);
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
        self.worked.since_stats = true;
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
    pub(super) fn check_batch(&mut self) {
        let Some((clean, state)) = self.batch.take_complete() else {
            return;
        };
        if !self.opts.daemon {
            // A one-shot run decides at its end (it may be interrupted).
            self.batch.reopen(clean, state);
            return;
        }
        if clean {
            self.flush();
            self.write_state(state);
        } else {
            self.polling.force_next = true;
        }
    }

    pub(super) fn write_state(&self, state: Option<RemoteState>) {
        if let Some(state) = state {
            let path = last_remote::state_path(self.settings().manifest());
            if let Err(e) = state.write(&path) {
                warn!("cannot write {}: {e}", path.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_clean_only_when_every_job_of_it_succeeded() {
        let mut b = Batch::default();
        assert!(b.take_complete().is_none(), "nothing planned yet");
        b.add(
            ["/a.git".to_string(), "/b.git".to_string()].into_iter(),
            true,
            None,
        );
        b.resolve("/a.git", false);
        assert!(b.take_complete().is_none(), "/b.git still runs");
        b.resolve("/b.git", false);
        assert_eq!(b.take_complete().map(|(clean, _)| clean), Some(true));

        b.add(["/a.git".to_string()].into_iter(), true, None);
        b.add(["/c.git".to_string()].into_iter(), true, None);
        b.resolve("/c.git", false);
        b.resolve("/a.git", true);
        assert_eq!(
            b.take_complete().map(|(clean, _)| clean),
            Some(false),
            "a failure in a merged poll taints the batch"
        );

        b.add(std::iter::empty(), false, None);
        assert_eq!(b.take_complete().map(|(clean, _)| clean), Some(false));
    }
}
