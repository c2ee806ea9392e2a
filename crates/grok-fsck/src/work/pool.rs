//! The last phase: `[fsck] threads` workers take the tasks one repository
//! at a time, each under its repository lock, never two of one family of
//! repositories sharing objects at once. A busy repository is put back once
//! and waited for when it comes round again, after the status file is
//! written (the wait may be long).

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use grokmirror::formats::fsck_status::Status;
use grokmirror::lock;
use tracing::{debug, info};

use super::maintain::Maintenance;
use super::progress::{human_size, Progress};
use super::FsckRun;
use crate::plan::task::RepoTask;
use crate::record::status::Recorded;
use grokmirror::family_queue::FamilyQueue;

impl FsckRun<'_> {
    /// Do the queued work, `[fsck] threads` repositories at a time.
    pub(super) fn process(&self, maintenance: &Maintenance, tasks: Vec<RepoTask>, status: Status) {
        let total = tasks.len();
        info!("Processing {total} repositories");
        let started = Instant::now();
        let progress = Progress::new(total, self.terminal);
        let queue = Mutex::new(Queue::new(tasks));
        let wake = Condvar::new();
        let status = Mutex::new(Recorded::new(status));
        let workers = self.settings.threads.min(total).max(1);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| self.worker(maintenance, &queue, &wake, &status, &progress));
            }
        });
        let status = status.into_inner().expect("status poisoned").status;
        self.write_status(&status);
        let saved = progress.saved_kib();
        let elapsed = started.elapsed().as_secs_f64();
        if saved > 0 {
            info!(
                "Processed {} repos in {elapsed:.2}s, {} saved",
                progress.done(),
                human_size(saved)
            );
        } else {
            info!("Processed {} repos in {elapsed:.2}s", progress.done());
        }
    }

    fn worker(
        &self,
        maintenance: &Maintenance,
        queue: &Mutex<Queue>,
        wake: &Condvar,
        status: &Mutex<Recorded>,
        progress: &Progress,
    ) {
        loop {
            let Some(mut job) = Queue::take(queue, wake) else {
                return;
            };
            // Stopping (Ctrl-C): nothing new starts; what is left is done
            // next run.
            if grokmirror::stop::requested().is_some() {
                Queue::done(queue, wake, &job.family);
                return;
            }
            let guard = match maintenance.tree.lock_repo(&job.path, lock::Wait::No) {
                Ok(Some(g)) => Some(g),
                Ok(None) if !job.deferred => {
                    // Busy (a pull is fetching it, say): do the others first.
                    debug!("{} is locked, coming back to it later", job.key);
                    job.deferred = true;
                    Queue::put_back(queue, wake, job);
                    continue;
                }
                Ok(None) => {
                    // Record what is done before waiting, maybe for long.
                    self.flush_status(&mut status.lock().expect("status poisoned"));
                    let lock_path = lock::repo_lock_path(&job.path);
                    match maintenance
                        .tree
                        .lock_repo_noting(&job.path, lock::Wait::Forever, || {
                            info!(
                                "  waiting: {} is locked by another process ({}), waiting for it",
                                job.key,
                                lock_path.display()
                            )
                        }) {
                        Ok(g) => g,
                        Err(e) => {
                            self.report.critical(format!("{}: {e}", job.key));
                            None
                        }
                    }
                }
                Err(e) => {
                    self.report.critical(format!("{}: {e}", job.key));
                    None
                }
            };
            if let Some(guard) = guard {
                self.do_task(maintenance, &job, &guard, status, progress);
            } else {
                progress.finish_one(0);
            }
            Queue::done(queue, wake, &job.family);
        }
    }
}

/// The work queue shared by the workers: the library's [`FamilyQueue`]
/// (never two repositories of one family at once) behind a mutex, with a
/// condvar so that a worker waits while every pending task's family is
/// busy.
struct Queue {
    tasks: FamilyQueue<PathBuf, RepoTask>,
}

impl Queue {
    fn new(tasks: Vec<RepoTask>) -> Queue {
        let mut queue = FamilyQueue::default();
        for task in tasks {
            queue.push(task.family.clone(), task);
        }
        Queue { tasks: queue }
    }

    /// The next job whose family is free, waiting while all pending jobs
    /// belong to busy families; `None` when nothing is left.
    fn take(queue: &Mutex<Queue>, wake: &Condvar) -> Option<RepoTask> {
        let mut q = queue.lock().expect("queue poisoned");
        loop {
            if q.tasks.is_empty() {
                return None;
            }
            if let Some(task) = q.tasks.take() {
                return Some(task);
            }
            q = wake.wait(q).expect("queue poisoned");
        }
    }

    fn put_back(queue: &Mutex<Queue>, wake: &Condvar, job: RepoTask) {
        let mut q = queue.lock().expect("queue poisoned");
        q.tasks.put_back(job.family.clone(), job);
        wake.notify_all();
    }

    fn done(queue: &Mutex<Queue>, wake: &Condvar, family: &Path) {
        let mut q = queue.lock().expect("queue poisoned");
        q.tasks.done(&family.to_path_buf());
        wake.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grokmirror::repo::alternates::RepoRole;

    fn job(name: &str, family: &str) -> RepoTask {
        RepoTask {
            key: name.into(),
            path: name.into(),
            role: RepoRole::Standalone,
            repack: None,
            deltas: Default::default(),
            fsck: true,
            family: family.into(),
            deferred: false,
        }
    }

    #[test]
    fn queue_never_hands_out_two_of_a_family() {
        let queue = Mutex::new(Queue::new(vec![
            job("a", "f1"),
            job("b", "f1"),
            job("c", "f2"),
        ]));
        let wake = Condvar::new();
        let first = Queue::take(&queue, &wake).unwrap();
        assert_eq!(first.key, "a");
        // "b" shares a's family, so "c" comes next.
        assert_eq!(Queue::take(&queue, &wake).unwrap().key, "c");
        Queue::done(&queue, &wake, Path::new("f1"));
        assert_eq!(Queue::take(&queue, &wake).unwrap().key, "b");
        Queue::done(&queue, &wake, Path::new("f1"));
        assert!(Queue::take(&queue, &wake).is_none());
    }
}
