//! `grok-pull --status [--json]`: the mirror's freshness at a glance, read
//! from the files on disk (the freshness file a run or a running daemon
//! writes atomically, and the local manifest). Exit status 0 when
//! everything is fresh, 1 when a repository is stale or failing or the
//! origin's manifest polls have failed for longer than `[pull]
//! stale_after`.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use chrono::TimeZone as _;
use grokmirror::formats::freshness::{self, Activity, Freshness, Summary};
use grokmirror::formats::manifest::Manifest;
use serde::Serialize;

use crate::record::fresh::WORST;
use crate::settings::Settings;
use grokmirror::formats::last_remote::unix_now;

/// The daemon as `--status` sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Daemon {
    /// Whether the process that wrote the file still runs.
    pub running: bool,
    /// What it said it was doing.
    #[serde(flatten)]
    pub activity: Activity,
}

/// Everything `--status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// The freshness file read.
    pub freshness_file: String,
    /// When it was written (Unix seconds; 0 when it doesn't exist yet).
    pub updated: i64,
    /// Now (Unix seconds).
    pub now: i64,
    /// `[pull] stale_after`, seconds.
    pub stale_after: u64,
    /// The last manifest poll.
    pub last_poll: Option<freshness::PollRecord>,
    /// When a poll last succeeded.
    pub last_poll_ok: Option<i64>,
    /// Whether the last poll failed and none succeeded for longer than
    /// `stale_after`.
    pub manifest_stale: bool,
    /// The daemon that wrote the file, if one did.
    pub daemon: Option<Daemon>,
    /// Repositories in the local manifest the freshness file doesn't know
    /// (mirrored before freshness was recorded).
    pub untracked: usize,
    /// The counts and lists.
    #[serde(flatten)]
    pub summary: Summary,
    /// Nothing stale or failing.
    pub healthy: bool,
}

/// Put the status together from what was read.
pub fn status(
    file: &Freshness,
    path: &Path,
    local: &Manifest,
    now: i64,
    stale_after: Duration,
    daemon_alive: impl Fn(u32) -> bool,
) -> Status {
    let summary = freshness::summarize(file, now, stale_after, WORST);
    let untracked = local
        .repos
        .keys()
        .filter(|k| !file.repos.contains_key(*k))
        .count();
    // Only failures count: a one-shot run from cron polls when it runs.
    let manifest_stale = file.last_poll.as_ref().is_some_and(|p| p.error.is_some())
        && file
            .last_poll_ok
            .is_none_or(|t| (now - t) as u64 > stale_after.as_secs());
    let daemon = file.daemon.clone().map(|activity| Daemon {
        running: daemon_alive(activity.pid),
        activity,
    });
    Status {
        freshness_file: path.display().to_string(),
        updated: file.updated,
        now,
        stale_after: stale_after.as_secs(),
        last_poll: file.last_poll.clone(),
        last_poll_ok: file.last_poll_ok,
        manifest_stale,
        daemon,
        untracked,
        healthy: summary.healthy() && !manifest_stale,
        summary,
    }
}

/// A duration in seconds for people: `42s`, `5m10s`, `3h2m`, `2d4h`.
pub fn human(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{}s", s / 60, s % 60),
        3600..=86399 => format!("{}h{}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

fn when(t: i64, now: i64) -> String {
    let at = chrono::Local.timestamp_opt(t, 0).single().map_or_else(
        || t.to_string(),
        |d| d.format("%Y-%m-%d %H:%M:%S").to_string(),
    );
    format!("{at} ({} ago)", human(now - t))
}

/// The text form.
pub fn text(s: &Status) -> String {
    let mut o = String::new();
    let now = s.now;
    match &s.last_poll {
        None => {
            let _ = writeln!(o, "last poll: never (grok-pull has not run yet)");
        }
        Some(p) => {
            let _ = write!(o, "last poll: {}: {}", when(p.at, now), p.result);
            if let Some(e) = &p.error {
                let _ = write!(o, ": {e}");
            }
            let _ = writeln!(o);
            if p.error.is_some() {
                match s.last_poll_ok {
                    Some(t) => {
                        let _ = writeln!(o, "last successful poll: {}", when(t, now));
                    }
                    None => {
                        let _ = writeln!(o, "last successful poll: never");
                    }
                }
            }
        }
    }
    if s.manifest_stale {
        let _ = writeln!(
            o,
            "manifest: STALE: not polled successfully for longer than {}",
            human(s.stale_after as i64)
        );
    }
    let m = &s.summary;
    let _ = write!(
        o,
        "repositories: {} total, {} up to date, {} behind, {} stale, {} failing (stale after {})",
        m.total,
        m.up_to_date,
        m.behind,
        m.stale.len(),
        m.failing.len(),
        human(s.stale_after as i64)
    );
    if s.untracked > 0 {
        let _ = write!(o, ", {} not tracked yet", s.untracked);
    }
    let _ = writeln!(o);
    match &s.daemon {
        Some(d) if d.running => {
            let a = &d.activity;
            let _ = write!(o, "daemon: pid {} ", a.pid);
            if a.polling {
                let _ = write!(o, "polling the origin, ");
            }
            if a.active.is_empty() {
                let _ = write!(o, "fetching nothing");
            } else {
                let _ = write!(o, "fetching {}", a.active.join(" "));
            }
            let _ = writeln!(
                o,
                ", {} queued, {} in housekeeping (as of {})",
                a.queued,
                a.housekeeping,
                when(s.updated, now)
            );
        }
        Some(d) => {
            let _ = writeln!(
                o,
                "daemon: pid {} is gone (it stopped without saying so)",
                d.activity.pid
            );
        }
        None => {
            let _ = writeln!(o, "daemon: not running");
        }
    }
    for st in &m.stale {
        let _ = writeln!(
            o,
            "stale: {} behind for {}{}",
            st.repo,
            human(st.lag),
            st.last_success
                .map(|t| format!(", last fetched {}", when(t, now)))
                .unwrap_or_default()
        );
    }
    for f in &m.failing {
        let _ = writeln!(
            o,
            "failing: {} since {}, {} attempts, behind for {}: {}",
            f.repo,
            when(f.since, now),
            f.attempts,
            human(f.lag),
            f.error.lines().next().unwrap_or_default()
        );
    }
    for w in &m.worst {
        let _ = writeln!(o, "lagging: {} {}", w.repo, human(w.lag));
    }
    o
}

/// Run `--status`; returns the exit status.
pub fn run(settings: &Settings, json: bool) -> anyhow::Result<i32> {
    let path = freshness::freshness_path(settings.manifest());
    let file = Freshness::read(&path)?;
    let local = if settings.manifest().exists() {
        Manifest::read_local(settings.manifest()).with_context(|| {
            format!(
                "cannot read the local manifest {}",
                settings.manifest().display()
            )
        })?
    } else {
        Manifest::default()
    };
    let s = status(
        &file,
        &path,
        &local,
        unix_now(),
        settings.stale_after,
        grokmirror::process::runs,
    );
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else {
        print!("{}", text(&s));
    }
    Ok(if s.healthy {
        grokmirror_cli::EXIT_OK
    } else {
        grokmirror_cli::EXIT_FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use grokmirror::formats::freshness::{PollRecord, RepoFreshness};

    #[test]
    fn healthy_only_when_nothing_is_stale_or_failing() {
        let mut f = Freshness::default();
        let mut up = RepoFreshness::default();
        up.observe(1, 1, false, 0);
        f.repos.insert("/a.git".into(), up);
        f.last_poll = Some(PollRecord {
            at: 90,
            result: "unchanged".into(),
            error: None,
        });
        f.last_poll_ok = Some(90);
        let mut local = Manifest::default();
        local.repos.insert("/a.git".into(), Default::default());
        local.repos.insert("/old.git".into(), Default::default());
        let p = Path::new("/t/.m.freshness");
        let hour = Duration::from_secs(3600);
        let s = status(&f, p, &local, 100, hour, |_| true);
        assert!(s.healthy);
        // An old successful poll (cron) is not a problem in itself.
        assert!(status(&f, p, &local, 100_000, hour, |_| true).healthy);
        assert_eq!(s.untracked, 1);
        assert!(text(&s).contains("1 total, 1 up to date, 0 behind, 0 stale, 0 failing"));
        assert!(text(&s).contains("daemon: not running"));

        // Polls failing for longer than stale_after make it unhealthy.
        f.last_poll = Some(PollRecord {
            at: 5000,
            result: "failed".into(),
            error: Some("connection refused".into()),
        });
        let s = status(&f, p, &local, 5000, hour, |_| true);
        assert!(s.manifest_stale && !s.healthy);
        assert!(text(&s).contains("manifest: STALE"), "{}", text(&s));

        // A failing repository does too, and is named with its error.
        f.last_poll_ok = Some(5000);
        f.repos
            .get_mut("/a.git")
            .unwrap()
            .failed("fatal: gone", 4000);
        f.daemon = Some(Activity {
            pid: 7,
            active: vec!["/b.git".into()],
            ..Activity::default()
        });
        let s = status(&f, p, &local, 5000, hour, |pid| pid == 7);
        assert!(!s.healthy);
        let t = text(&s);
        assert!(t.contains("failing: /a.git since"), "{t}");
        assert!(t.contains("fatal: gone"), "{t}");
        assert!(t.contains("daemon: pid 7 fetching /b.git"), "{t}");
        let s = status(&f, p, &local, 5000, hour, |_| false);
        assert!(text(&s).contains("pid 7 is gone"));
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(42), "42s");
        assert_eq!(human(310), "5m10s");
        assert_eq!(human(3600 * 3 + 120), "3h2m");
        assert_eq!(human(86400 * 2 + 3600 * 4), "2d4h");
    }
}
