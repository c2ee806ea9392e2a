//! The freshness file kept by a run (or a daemon): what each poll saw the
//! origin advertise, what each job brought, what the daemon is doing; see
//! [`grokmirror::formats::freshness`]. Written atomically after each poll, with the
//! local manifest, with the metrics and at the end.

use std::collections::BTreeSet;
use std::path::PathBuf;

use grokmirror::formats::freshness::{self, Activity, Freshness, PollRecord, Summary};
use grokmirror::formats::last_remote::unix_now;
use grokmirror::formats::manifest::{Manifest, RepoEntry};
use tracing::warn;

use crate::settings::Settings;
use crate::work::job::JobOutcome;

/// How many lagging repositories `--status` and the metrics list.
pub const WORST: usize = 10;

/// What a poll saw of one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Its manifest key.
    pub key: String,
    /// The origin's `modified`.
    pub origin_modified: i64,
    /// Ours (0 when we don't have it).
    pub have_modified: i64,
    /// Whether the origin's refs differ from ours.
    pub behind: bool,
}

/// Compare the culled remote entries with the local manifest.
pub fn observe<'a>(
    remote: impl IntoIterator<Item = (&'a String, &'a RepoEntry)>,
    local: &Manifest,
) -> Vec<Observed> {
    remote
        .into_iter()
        .map(|(key, r)| {
            let have = local.repos.get(key);
            Observed {
                key: key.clone(),
                origin_modified: r.modified,
                have_modified: have.map_or(0, |h| h.modified),
                behind: have.is_none_or(|h| h.fingerprint != r.fingerprint),
            }
        })
        .collect()
}

/// The file and what goes into it.
#[derive(Debug)]
pub struct Tracker {
    path: PathBuf,
    /// The file being read on a thread of its own: on a large tree that
    /// takes tens of milliseconds the first poll need not wait for.
    loading: Option<std::thread::JoinHandle<Freshness>>,
    /// The recorded state, once read.
    file: Freshness,
    stale_after: std::time::Duration,
    /// Changes made so far, and how many of them the last write held (at
    /// which second): a second write within the same second with nothing
    /// new would write the same bytes again.
    changes: u64,
    written: Option<(u64, i64, Option<Activity>)>,
}

impl Tracker {
    /// Start loading what earlier runs recorded (an unreadable file is
    /// started afresh, with a warning).
    pub fn load(settings: &Settings) -> Tracker {
        let path = freshness::freshness_path(settings.manifest());
        let from = path.clone();
        let read = move || {
            Freshness::read(&from).unwrap_or_else(|e| {
                warn!("{e}");
                Freshness::default()
            })
        };
        let (loading, file) = match std::thread::Builder::new()
            .name("grok-pull-fresh".into())
            .spawn(read.clone())
        {
            Ok(handle) => (Some(handle), Freshness::default()),
            Err(_) => (None, read()),
        };
        Tracker {
            path,
            loading,
            file,
            stale_after: settings.stale_after,
            changes: 0,
            written: None,
        }
    }

    /// The recorded state, waiting for the load to finish.
    fn file(&mut self) -> &mut Freshness {
        if let Some(handle) = self.loading.take() {
            self.file = handle.join().unwrap_or_default();
        }
        &mut self.file
    }

    /// The recorded state, about to change.
    fn changing(&mut self) -> &mut Freshness {
        self.changes += 1;
        self.file()
    }

    /// Take up a reloaded config's `stale_after`.
    pub fn reconfigure(&mut self, settings: &Settings) {
        self.stale_after = settings.stale_after;
    }

    /// A poll brought a manifest: these are the repositories we mirror now.
    pub fn polled(&mut self, observed: &[Observed], now: i64) {
        let keys: BTreeSet<&str> = observed.iter().map(|o| o.key.as_str()).collect();
        let file = self.changing();
        file.repos.retain(|k, _| keys.contains(k.as_str()));
        for o in observed {
            file.repos.entry(o.key.clone()).or_default().observe(
                o.origin_modified,
                o.have_modified,
                o.behind,
                now,
            );
        }
        self.poll_result("fetched", None, now);
    }

    /// Record a poll's result.
    pub fn poll_result(&mut self, result: &str, error: Option<String>, now: i64) {
        let file = self.changing();
        if error.is_none() {
            file.last_poll_ok = Some(now);
        }
        file.last_poll = Some(PollRecord {
            at: now,
            result: result.to_string(),
            error,
        });
    }

    /// A repository failed before any job ran.
    pub fn failed(&mut self, key: &str, why: &str, now: i64) {
        self.changing()
            .repos
            .entry(key.to_string())
            .or_default()
            .failed(why, now);
    }

    /// A job finished.
    pub fn done(&mut self, key: &str, outcome: &JobOutcome, modified: Option<i64>, now: i64) {
        match outcome {
            JobOutcome::Busy => {}
            JobOutcome::Purged => {
                self.changing().repos.remove(key);
            }
            JobOutcome::Failed(why) => self.failed(key, &why.to_string(), now),
            JobOutcome::Cloned
            | JobOutcome::Updated
            | JobOutcome::Unchanged
            | JobOutcome::Skipped => self
                .changing()
                .repos
                .entry(key.to_string())
                .or_default()
                .succeeded(modified, now),
        }
    }

    /// The collection at a glance, now.
    pub fn summary(&mut self) -> Summary {
        let stale_after = self.stale_after;
        freshness::summarize(self.file(), unix_now(), stale_after, WORST)
    }

    /// Write the file (with the daemon's activity, if any), unless what it
    /// would hold was written already this second.
    pub fn write(&mut self, daemon: Option<Activity>) {
        let now = unix_now();
        let this = (self.changes, now, daemon.clone());
        if self.written.as_ref() == Some(&this) {
            return;
        }
        let path = self.path.clone();
        let file = self.file();
        file.daemon = daemon;
        match file.write(&path, now) {
            Ok(()) => self.written = Some(this),
            Err(e) => warn!("cannot write the freshness file: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fp: &str, modified: i64) -> RepoEntry {
        RepoEntry {
            fingerprint: Some(fp.into()),
            modified,
            ..RepoEntry::default()
        }
    }

    #[test]
    fn observes_what_differs() {
        let mut local = Manifest::default();
        local.repos.insert("/a.git".into(), entry("1", 10));
        local.repos.insert("/b.git".into(), entry("2", 10));
        let remote: Vec<(String, RepoEntry)> = vec![
            ("/a.git".into(), entry("1", 10)),
            ("/b.git".into(), entry("3", 20)),
            ("/c.git".into(), entry("4", 30)),
        ];
        let o = observe(remote.iter().map(|(k, v)| (k, v)), &local);
        let behind: Vec<(&str, bool, i64)> = o
            .iter()
            .map(|o| (o.key.as_str(), o.behind, o.have_modified))
            .collect();
        assert_eq!(
            behind,
            [
                ("/a.git", false, 10),
                ("/b.git", true, 10),
                ("/c.git", true, 0)
            ]
        );
    }
}
