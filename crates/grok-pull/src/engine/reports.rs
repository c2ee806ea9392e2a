//! The periodic writes and reports, and when each is due: the local
//! manifest (flushed), the freshness file, the stats line, the metrics,
//! and the systemd watchdog.

use std::time::{Duration, Instant, SystemTime};

use grokmirror::tree::fsutil;
use tracing::{error, info, warn};

use super::Engine;
use crate::work::housekeeping;

/// The fewest seconds between two local manifest rewrites while the
/// daemon is busy with a stream of notifications (it is always written
/// every 100 repositories, before each poll, and on exit).
pub(super) const FLUSH_EVERY: Duration = Duration::from_secs(5);
/// How often the stats line is logged while work goes on (it is always
/// logged when the queue empties).
pub(super) const STATS_EVERY: Duration = Duration::from_secs(60);
/// How often the metrics file is rewritten at the least.
pub(super) const METRICS_EVERY: Duration = Duration::from_secs(30);
/// How long after jobs start or finish the freshness file says so (a
/// stream of them makes one write; it is always written after a poll, with
/// the metrics and at the end).
pub(super) const FRESH_SETTLE: Duration = Duration::from_secs(2);

/// When each periodic write or report is due.
#[derive(Debug)]
pub(super) struct Timers {
    /// The next systemd watchdog ping (`None`: no watchdog).
    pub watchdog_next: Option<Instant>,
    /// The next metrics write at the latest.
    pub metrics_next: Instant,
    /// The next stats line, if there was work.
    pub stats_next: Instant,
    /// A local manifest flush put off (see [`FLUSH_EVERY`]).
    pub flush_due: Option<Instant>,
    /// A freshness file write put off (see [`FRESH_SETTLE`]).
    pub fresh_due: Option<Instant>,
    /// The last local manifest flush.
    pub last_flush: Instant,
}

/// What was done since the last reports.
#[derive(Debug, Default)]
pub(super) struct Worked {
    /// Jobs ended since the last stats line.
    pub since_stats: bool,
    /// Jobs were queued since the queue last ran empty.
    pub since_idle: bool,
    /// Jobs ended in this run.
    pub jobs_finished: u64,
}

impl Timers {
    /// Timers starting `now` (with a watchdog ping due at once if the
    /// service manager wants them).
    pub fn new(now: Instant, watchdog: bool) -> Timers {
        Timers {
            watchdog_next: watchdog.then_some(now),
            metrics_next: now + METRICS_EVERY,
            stats_next: now + STATS_EVERY,
            flush_due: None,
            fresh_due: None,
            last_flush: now,
        }
    }

    /// Whether the watchdog wants a ping now.
    pub fn watchdog_due(&self, now: Instant) -> bool {
        self.watchdog_next.is_some_and(|t| t <= now)
    }
}

/// Whether the moment in `due` has come; if so it is cleared.
pub(super) fn take_due(due: &mut Option<Instant>, now: Instant) -> bool {
    if due.is_some_and(|t| t <= now) {
        *due = None;
        true
    } else {
        false
    }
}

/// When the daemon's queue runs empty with finished jobs not yet written.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum IdleFlush {
    /// Write the local manifest now.
    Now,
    /// Write it at this moment ([`FLUSH_EVERY`] after the last write).
    At(Instant),
    /// Nothing to do (nothing pending, or a write is due already).
    Nothing,
}

/// Decide [`IdleFlush`]: a stream of notifications makes one write every
/// [`FLUSH_EVERY`], not one per repository.
pub(super) fn idle_flush(
    pending: bool,
    last_flush: Instant,
    flush_due: Option<Instant>,
    now: Instant,
) -> IdleFlush {
    if !pending {
        IdleFlush::Nothing
    } else if now.duration_since(last_flush) >= FLUSH_EVERY {
        IdleFlush::Now
    } else if flush_due.is_none() {
        IdleFlush::At(last_flush + FLUSH_EVERY)
    } else {
        IdleFlush::Nothing
    }
}

impl Engine {
    pub(super) fn flush(&mut self) {
        self.timers.flush_due = None;
        self.timers.last_flush = Instant::now();
        let wrote = self.recorder.has_pending();
        if let Err(e) = self.recorder.flush() {
            error!("{e:#}");
            self.record_error.get_or_insert(e);
        }
        // Soon, not now: on a big collection the file is large, and a
        // stream of finished jobs makes one write. Nothing written, nothing
        // to tell (a poll's own outcome is written when it ends).
        if wrote {
            self.timers
                .fresh_due
                .get_or_insert(Instant::now() + FRESH_SETTLE);
        }
    }

    /// Write the freshness file, with what a running daemon is doing.
    pub(super) fn write_fresh(&mut self) {
        self.timers.fresh_due = None;
        let activity = (self.opts.daemon && self.stopping.is_none()).then(|| {
            grokmirror::formats::freshness::Activity {
                pid: std::process::id(),
                polling: self.polling.task.is_some(),
                active: self.running.sorted_keys(),
                queued: self.sched.queued(),
                housekeeping: self.hk.load().total(),
            }
        });
        self.fresh.write(activity);
    }

    pub(super) fn log_stats(&mut self) {
        let line = self.stats.line(self.activity());
        info!("    stats: {line}");
        self.service.status(&line);
        self.worked.since_stats = false;
        self.timers.stats_next = Instant::now() + STATS_EVERY;
    }

    pub(super) fn write_metrics(&mut self) {
        self.timers.metrics_next = Instant::now() + METRICS_EVERY;
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

    pub(super) fn on_housekeeping(&mut self, event: housekeeping::Event) {
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

    /// The queue ran empty: the daemon writes what is pending, reports,
    /// and runs `post_work_complete_hook`.
    pub(super) fn on_idle(&mut self, now: Instant) {
        if !self.opts.daemon {
            return;
        }
        let pending = self.recorder.has_pending();
        match idle_flush(pending, self.timers.last_flush, self.timers.flush_due, now) {
            IdleFlush::Now => self.flush(),
            IdleFlush::At(t) => self.timers.flush_due = Some(t),
            IdleFlush::Nothing => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_idle_daemon_writes_the_manifest_at_most_every_few_seconds() {
        let last = Instant::now();
        assert_eq!(idle_flush(false, last, None, last), IdleFlush::Nothing);
        assert_eq!(
            idle_flush(true, last, None, last + FLUSH_EVERY),
            IdleFlush::Now
        );
        assert_eq!(
            idle_flush(true, last, None, last + Duration::from_secs(1)),
            IdleFlush::At(last + FLUSH_EVERY)
        );
        assert_eq!(
            idle_flush(true, last, Some(last), last + Duration::from_secs(1)),
            IdleFlush::Nothing,
            "already due"
        );
    }

    #[test]
    fn due_moments_are_taken_once() {
        let now = Instant::now();
        let mut due = Some(now);
        assert!(take_due(&mut due, now));
        assert!(due.is_none());
        assert!(!take_due(&mut due, now));
        let mut later = Some(now + Duration::from_secs(1));
        assert!(!take_due(&mut later, now));
        assert!(later.is_some());
    }
}
