//! What a run (or a daemon, since it started) has done: the counters
//! behind the one-line stats summary in the log and the Prometheus text
//! file (`[pull] metrics_file`, for node_exporter's textfile collector).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

use std::time::Duration;

use grokmirror::formats::freshness::Summary;

use crate::record::freshmetrics::{self, Histogram, FETCH_BUCKETS};
use crate::work::job::JobOutcome;

/// Counters and gauges.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// New repositories.
    pub cloned: u64,
    /// Repositories fetched or reconfigured.
    pub updated: u64,
    /// Repositories checked with nothing to do.
    pub unchanged: u64,
    /// Repositories deleted.
    pub purged: u64,
    /// Failed jobs.
    pub failed: u64,
    /// Manifest polls that brought a new manifest.
    pub polls_fetched: u64,
    /// Manifest polls that found it unchanged.
    pub polls_unchanged: u64,
    /// Manifest polls that failed.
    pub polls_failed: u64,
    /// Socket lines that queued a fetch.
    pub notifications: u64,
    /// Socket lines naming a repository we don't mirror.
    pub notifications_ignored: u64,
    /// Repositories whose housekeeping finished.
    pub housekept: u64,
    /// Config reloads that took effect.
    pub reloads: u64,
    /// Config reloads refused (the old config stayed).
    pub reloads_failed: u64,
    /// Repositories whose last job failed, with the reason.
    pub failing: BTreeMap<String, String>,
    /// Repositories the origin has that we mirror.
    pub known: usize,
    /// When a manifest poll last succeeded (fetched or unchanged).
    pub last_poll_ok: Option<SystemTime>,
    /// When we started.
    pub started: Option<SystemTime>,
    /// How long fetch attempts (clones, fetches, failures) took.
    pub fetch_seconds: Histogram,
    /// Disk space clones and fetches added to repositories' objects.
    pub received_bytes: u64,
    /// The collection's freshness when the metrics are written, with
    /// `[pull] stale_after`.
    pub freshness: Option<(Summary, Duration)>,
}

/// The moment's queue lengths, for the stats line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Activity {
    /// Jobs running.
    pub active: usize,
    /// Jobs waiting to start.
    pub queued: usize,
    /// Repositories in housekeeping (waiting or active).
    pub housekeeping: usize,
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Stats {
    /// Count a finished job.
    pub fn job(&mut self, key: &str, outcome: &JobOutcome) {
        match outcome {
            JobOutcome::Cloned => self.cloned += 1,
            JobOutcome::Updated => self.updated += 1,
            JobOutcome::Unchanged | JobOutcome::Skipped => self.unchanged += 1,
            JobOutcome::Purged => self.purged += 1,
            JobOutcome::Busy => {}
            JobOutcome::Failed(why) => {
                self.failed += 1;
                self.failing.insert(key.to_string(), why.to_string());
                return;
            }
        }
        self.failing.remove(key);
    }

    /// Count one finished attempt of a job that took `took`.
    pub fn attempt(&mut self, outcome: &JobOutcome, took: Duration) {
        if matches!(
            outcome,
            JobOutcome::Cloned | JobOutcome::Updated | JobOutcome::Failed(_)
        ) {
            self.fetch_seconds
                .observe(FETCH_BUCKETS, freshmetrics::secs(took));
        }
    }

    /// Count the bytes a finished clone or fetch received.
    pub fn received(&mut self, bytes: u64) {
        self.received_bytes += bytes;
    }

    /// Fetched repositories (new ones included).
    pub fn fetched(&self) -> u64 {
        self.cloned + self.updated
    }

    /// The one-line summary.
    pub fn line(&self, now: Activity) -> String {
        format!(
            "{} fetched, {} active, {} queued, {} in housekeeping, {} errors",
            self.fetched(),
            now.active,
            now.queued,
            now.housekeeping,
            self.failed
        )
    }

    /// The Prometheus text exposition of the counters.
    pub fn prometheus(&self, now: Activity, at: SystemTime) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, f64)]| {
            let _ = writeln!(out, "# HELP grokmirror_pull_{name} {help}");
            let _ = writeln!(out, "# TYPE grokmirror_pull_{name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "grokmirror_pull_{name}{labels} {value}");
            }
        };
        metric(
            "repos_total",
            "counter",
            "Repositories handled since grok-pull started, by result.",
            &[
                ("{result=\"cloned\"}", self.cloned as f64),
                ("{result=\"updated\"}", self.updated as f64),
                ("{result=\"unchanged\"}", self.unchanged as f64),
                ("{result=\"purged\"}", self.purged as f64),
                ("{result=\"failed\"}", self.failed as f64),
            ],
        );
        metric(
            "manifest_polls_total",
            "counter",
            "Polls of the origin's manifest, by result.",
            &[
                ("{result=\"fetched\"}", self.polls_fetched as f64),
                ("{result=\"unchanged\"}", self.polls_unchanged as f64),
                ("{result=\"failed\"}", self.polls_failed as f64),
            ],
        );
        metric(
            "notifications_total",
            "counter",
            "Lines received on the push socket, by result.",
            &[
                ("{result=\"queued\"}", self.notifications as f64),
                ("{result=\"ignored\"}", self.notifications_ignored as f64),
            ],
        );
        metric(
            "housekeeping_total",
            "counter",
            "Repositories whose housekeeping (repack, pack-refs, object storage) finished.",
            &[("", self.housekept as f64)],
        );
        metric(
            "config_reloads_total",
            "counter",
            "Config file reloads, by result.",
            &[
                ("{result=\"applied\"}", self.reloads as f64),
                ("{result=\"refused\"}", self.reloads_failed as f64),
            ],
        );
        metric(
            "repos_known",
            "gauge",
            "Repositories in the origin's manifest that this mirror includes.",
            &[("", self.known as f64)],
        );
        metric(
            "repos_failing",
            "gauge",
            "Repositories whose last attempt failed.",
            &[("", self.failing.len() as f64)],
        );
        metric(
            "jobs",
            "gauge",
            "Jobs now, by state.",
            &[
                ("{state=\"active\"}", now.active as f64),
                ("{state=\"queued\"}", now.queued as f64),
                ("{state=\"housekeeping\"}", now.housekeeping as f64),
            ],
        );
        if let Some(t) = self.last_poll_ok {
            let age = at.duration_since(t).map_or(0.0, |d| d.as_secs_f64());
            metric(
                "manifest_success_age_seconds",
                "gauge",
                "Seconds since the origin's manifest was last polled successfully.",
                &[("", age.round())],
            );
            metric(
                "manifest_success_timestamp_seconds",
                "gauge",
                "When the origin's manifest was last polled successfully (Unix time).",
                &[("", unix(t).round())],
            );
        }
        if let Some(t) = self.started {
            metric(
                "start_time_seconds",
                "gauge",
                "When this grok-pull started (Unix time).",
                &[("", unix(t).round())],
            );
        }
        metric(
            "received_bytes_total",
            "counter",
            "Disk space clones and fetches added to the repositories' objects, in bytes.",
            &[("", self.received_bytes as f64)],
        );
        self.fetch_seconds.render(
            &mut out,
            "grokmirror_pull_fetch_duration_seconds",
            "How long attempts to clone or fetch a repository took (failed ones included).",
            FETCH_BUCKETS,
        );
        if let Some((summary, stale_after)) = &self.freshness {
            freshmetrics::render(&mut out, summary, *stale_after);
        }
        out
    }

    /// Write the Prometheus file atomically (the textfile collector must
    /// never read half a file).
    pub fn write(&self, path: &Path, now: Activity) -> std::io::Result<()> {
        let text = self.prometheus(now, SystemTime::now());
        grokmirror::tree::fsutil::write_atomic(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_failures_until_the_repo_recovers() {
        let mut s = Stats::default();
        s.job(
            "/a.git",
            &JobOutcome::Failed(crate::work::job::Error::BadKey("x".into())),
        );
        s.job("/b.git", &JobOutcome::Cloned);
        assert_eq!(s.failing.len(), 1);
        s.job("/a.git", &JobOutcome::Updated);
        assert!(s.failing.is_empty());
        assert_eq!(s.failed, 1);
        assert_eq!(s.fetched(), 2);
        let now = Activity {
            active: 1,
            queued: 2,
            housekeeping: 3,
        };
        assert_eq!(
            s.line(now),
            "2 fetched, 1 active, 2 queued, 3 in housekeeping, 1 errors"
        );
        let start = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1000);
        s.last_poll_ok = Some(start);
        let text = s.prometheus(now, start + std::time::Duration::from_secs(42));
        assert!(
            text.contains("grokmirror_pull_repos_total{result=\"failed\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("grokmirror_pull_repos_failing 0\n"), "{text}");
        assert!(
            text.contains("grokmirror_pull_manifest_success_age_seconds 42\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE grokmirror_pull_jobs gauge\n"),
            "{text}"
        );
    }
}
