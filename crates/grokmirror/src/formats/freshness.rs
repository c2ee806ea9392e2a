//! How fresh a replica is: per repository, what the origin advertises
//! against what we have, since when we are behind, and whether our last
//! attempts failed. grok-pull keeps this in `.<local manifest name>.freshness`
//! beside the local manifest (JSON, written atomically); `grok-pull
//! --status`, the metrics and grok-fsck read it.
//!
//! The decisions (up to date, behind, stale, failing) are pure functions of
//! the recorded times and "now" ([`classify`], [`summarize`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{self, Config};
use crate::tree::fsutil;

/// Default `[pull] stale_after`: an hour.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(3600);

/// The version of the freshness file's format.
pub const FORMAT_VERSION: u32 = 1;

/// Errors reading or writing the freshness file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The file is not what grok-pull writes.
    #[error("{path}: not a freshness file ({source}); remove it, grok-pull writes a new one on its next run")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: serde_json::Error,
    },
}

/// The freshness file of a local manifest: `.<name>.freshness` in its
/// directory.
pub fn freshness_path(manifest: &Path) -> PathBuf {
    crate::tree::fsutil::companion_path(manifest, "freshness")
}

/// Parse a duration: plain seconds (`3600`) or a number with a unit, `s`,
/// `m`, `h`, `d` or `w` (`90s`, `30m`, `1h`, `2d`, `2w`); several may follow
/// each other (`1h30m`). `None` when it is not one.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 7 * 86400,
            _ => return None,
        };
        let n: u64 = number.parse().ok()?;
        number.clear();
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    number.is_empty().then(|| Duration::from_secs(total))
}

/// `[pull] stale_after` of a config (read by grok-pull and grok-fsck).
pub fn stale_after(config: &Config) -> Result<Duration, config::Error> {
    match config.get("pull", "stale_after")? {
        None => Ok(DEFAULT_STALE_AFTER),
        Some(v) if v.trim().is_empty() => Ok(DEFAULT_STALE_AFTER),
        Some(v) => match parse_duration(&v) {
            Some(d) if !d.is_zero() => Ok(d),
            _ => Err(config::Error::BadValue {
                path: config.path.clone(),
                section: "pull".into(),
                key: "stale_after".into(),
                value: v,
                expected: "a duration: seconds, or a number with s, m, h or d (1h)",
            }),
        },
    }
}

/// Whether a count is 0 (left out of the file: the file holds an entry
/// per repository, and most have nothing but their two times).
fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// What we know of one repository. Fields without a value are left out
/// of the file, and read back as their defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepoFreshness {
    /// The origin's `modified` for what it advertises (Unix seconds).
    pub origin_modified: i64,
    /// The `modified` of what we have (Unix seconds; 0 when nothing yet).
    pub have_modified: i64,
    /// When we first saw the origin advertise refs we don't have (Unix
    /// seconds); `None` when we are in step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub behind_since: Option<i64>,
    /// When we last fetched (or checked) it successfully.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success: Option<i64>,
    /// Since when its attempts fail; `None` when the last one succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<i64>,
    /// The last failure's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Failed attempts in a row.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
}

impl RepoFreshness {
    /// A poll saw the origin advertise `origin_modified`; `behind` says
    /// whether its refs differ from ours.
    pub fn observe(&mut self, origin_modified: i64, have_modified: i64, behind: bool, now: i64) {
        self.origin_modified = origin_modified;
        self.have_modified = have_modified;
        if behind {
            self.behind_since.get_or_insert(now);
        } else {
            self.behind_since = None;
        }
    }

    /// A job for it succeeded: we now have what `modified` says (`None`
    /// keeps what the origin advertised).
    pub fn succeeded(&mut self, modified: Option<i64>, now: i64) {
        let modified = modified.unwrap_or(self.origin_modified);
        self.have_modified = modified;
        self.origin_modified = self.origin_modified.max(modified);
        self.behind_since = None;
        self.last_success = Some(now);
        self.failing_since = None;
        self.last_error = None;
        self.attempts = 0;
    }

    /// A job for it failed with `error`.
    pub fn failed(&mut self, error: &str, now: i64) {
        self.failing_since.get_or_insert(now);
        self.behind_since.get_or_insert(now);
        self.last_error = Some(cut_error(error));
        self.attempts = self.attempts.saturating_add(1);
    }
}

/// The most of an error message kept, in bytes.
pub const MAX_ERROR: usize = 1024;

/// An error message cut to [`MAX_ERROR`] bytes (at a character boundary).
fn cut_error(error: &str) -> String {
    if error.len() <= MAX_ERROR {
        return error.to_string();
    }
    format!("{}…", super::cut_at(error, MAX_ERROR))
}

/// The result of the last manifest poll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollRecord {
    /// When it finished (Unix seconds).
    pub at: i64,
    /// `fetched`, `unchanged` or `failed`.
    pub result: String,
    /// Why it failed.
    #[serde(default)]
    pub error: Option<String>,
}

/// What a daemon is doing when it wrote the file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Activity {
    /// The daemon's process id.
    pub pid: u32,
    /// Whether a manifest poll is under way.
    pub polling: bool,
    /// Repositories being fetched.
    pub active: Vec<String>,
    /// Jobs waiting to start.
    pub queued: usize,
    /// Repositories in housekeeping.
    pub housekeeping: usize,
}

/// The freshness file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Freshness {
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// When it was written (Unix seconds).
    pub updated: i64,
    /// The last manifest poll.
    #[serde(default)]
    pub last_poll: Option<PollRecord>,
    /// When a poll last succeeded.
    #[serde(default)]
    pub last_poll_ok: Option<i64>,
    /// Set by a running daemon; `None` from a one-shot run (or a daemon
    /// that stopped).
    #[serde(default)]
    pub daemon: Option<Activity>,
    /// Per repository, by manifest key.
    #[serde(default)]
    pub repos: BTreeMap<String, RepoFreshness>,
}

impl Freshness {
    /// Read the file; a missing one is empty.
    pub fn read(path: &Path) -> Result<Freshness, Error> {
        let raw = match std::fs::read(path) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Freshness::default()),
            Err(source) => {
                return Err(Error::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        serde_json::from_slice(&raw).map_err(|source| Error::Parse {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Write it atomically, stamped `now`.
    pub fn write(&mut self, path: &Path, now: i64) -> Result<(), Error> {
        self.version = FORMAT_VERSION;
        self.updated = now;
        // Streamed: at 50,000 repositories the text is megabytes.
        fsutil::write_atomic_with(path, |file| {
            let mut out = std::io::BufWriter::with_capacity(64 * 1024, file);
            serde_json::to_writer(&mut out, self).map_err(std::io::Error::other)?;
            std::io::Write::flush(&mut out)
        })
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Where one repository stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// We have what the origin advertises.
    UpToDate,
    /// The origin changed `lag` seconds ago and we have not caught up,
    /// within `stale_after`.
    Behind {
        /// Seconds behind.
        lag: i64,
    },
    /// Behind for longer than `stale_after`.
    Stale {
        /// Seconds behind.
        lag: i64,
    },
    /// Its last attempts failed.
    Failing {
        /// Seconds behind.
        lag: i64,
        /// Since when (Unix seconds).
        since: i64,
        /// The last error.
        error: String,
        /// Failed attempts in a row.
        attempts: u32,
    },
}

/// Decide where a repository stands at `now`.
pub fn classify(r: &RepoFreshness, now: i64, stale_after: Duration) -> State {
    let lag = r.behind_since.map_or(0, |t| (now - t).max(0));
    if let Some(since) = r.failing_since {
        return State::Failing {
            lag,
            since,
            error: r.last_error.clone().unwrap_or_default(),
            attempts: r.attempts,
        };
    }
    match r.behind_since {
        None => State::UpToDate,
        Some(_) if lag as u64 > stale_after.as_secs() => State::Stale { lag },
        Some(_) => State::Behind { lag },
    }
}

/// One lagging repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Lagging {
    /// Its manifest key.
    pub repo: String,
    /// Seconds behind.
    pub lag: i64,
    /// The origin's `modified` minus ours.
    pub modified_lag: i64,
    /// When we last fetched it successfully.
    pub last_success: Option<i64>,
}

/// One failing repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failing {
    /// Its manifest key.
    pub repo: String,
    /// Seconds behind.
    pub lag: i64,
    /// Since when it fails.
    pub since: i64,
    /// The last error.
    pub error: String,
    /// Failed attempts in a row.
    pub attempts: u32,
    /// A short reason (see [`failure_reason`]).
    pub reason: &'static str,
}

/// The collection at a glance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Repositories known.
    pub total: usize,
    /// Up to date.
    pub up_to_date: usize,
    /// Behind, within `stale_after`.
    pub behind: usize,
    /// Stale ones, worst first.
    pub stale: Vec<Lagging>,
    /// Failing ones, worst first.
    pub failing: Vec<Failing>,
    /// The worst lagging repositories (behind, stale or failing), worst
    /// first, at most `worst` of them.
    pub worst: Vec<Lagging>,
    /// Every repository's lag in seconds (0 when up to date), for
    /// histograms.
    #[serde(skip)]
    pub lags: Vec<i64>,
}

impl Summary {
    /// Whether anything is stale or failing.
    pub fn healthy(&self) -> bool {
        self.stale.is_empty() && self.failing.is_empty()
    }

    /// The largest lag.
    pub fn max_lag(&self) -> i64 {
        self.lags.iter().copied().max().unwrap_or(0)
    }
}

/// A short, stable reason for a failure message, for metrics labels.
pub fn failure_reason(error: &str) -> &'static str {
    let e = error.to_ascii_lowercase();
    if e.contains("timed out") || e.contains("timeout") {
        "timeout"
    } else if e.contains("does not appear to be a git repository")
        || e.contains("not found")
        || e.contains("404")
        || e.contains("no such file")
    {
        "missing"
    } else if e.contains("could not resolve")
        || e.contains("connection")
        || e.contains("unable to access")
        || e.contains("network")
    {
        "network"
    } else if e.contains("no space") || e.contains("permission denied") || e.contains("read-only") {
        "local"
    } else {
        "other"
    }
}

/// Sum up the file at `now`, listing at most `worst` lagging repositories.
pub fn summarize(f: &Freshness, now: i64, stale_after: Duration, worst: usize) -> Summary {
    let mut s = Summary {
        total: f.repos.len(),
        ..Summary::default()
    };
    let mut lagging = Vec::new();
    for (key, r) in &f.repos {
        let lagged = |lag| Lagging {
            repo: key.clone(),
            lag,
            modified_lag: (r.origin_modified - r.have_modified).max(0),
            last_success: r.last_success,
        };
        match classify(r, now, stale_after) {
            State::UpToDate => {
                s.up_to_date += 1;
                s.lags.push(0);
            }
            State::Behind { lag } => {
                s.behind += 1;
                s.lags.push(lag);
                lagging.push(lagged(lag));
            }
            State::Stale { lag } => {
                s.lags.push(lag);
                s.stale.push(lagged(lag));
                lagging.push(lagged(lag));
            }
            State::Failing {
                lag,
                since,
                error,
                attempts,
            } => {
                s.lags.push(lag);
                lagging.push(lagged(lag));
                s.failing.push(Failing {
                    repo: key.clone(),
                    lag,
                    since,
                    reason: failure_reason(&error),
                    error,
                    attempts,
                });
            }
        }
    }
    let by_lag = |a: &Lagging, b: &Lagging| b.lag.cmp(&a.lag).then(a.repo.cmp(&b.repo));
    s.stale.sort_by(by_lag);
    s.failing
        .sort_by(|a, b| b.lag.cmp(&a.lag).then(a.repo.cmp(&b.repo)));
    lagging.sort_by(by_lag);
    lagging.truncate(worst);
    s.worst = lagging;
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn durations() {
        assert_eq!(parse_duration("3600"), Some(HOUR));
        assert_eq!(parse_duration("1h"), Some(HOUR));
        assert_eq!(parse_duration(" 90s "), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2d"), Some(Duration::from_secs(172_800)));
        for bad in ["", "h", "1x", "1h2", "-5", "1.5h"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn path() {
        assert_eq!(
            freshness_path(Path::new("/t/manifest.js.gz")),
            PathBuf::from("/t/.manifest.js.gz.freshness")
        );
    }

    #[test]
    fn behind_then_stale_then_caught_up() {
        let mut r = RepoFreshness::default();
        r.observe(100, 100, false, 1000);
        assert_eq!(classify(&r, 1000, HOUR), State::UpToDate);
        r.observe(200, 100, true, 2000);
        assert_eq!(classify(&r, 2000, HOUR), State::Behind { lag: 0 });
        // A later poll does not move the moment we fell behind.
        r.observe(300, 100, true, 2500);
        assert_eq!(classify(&r, 2000 + 3600, HOUR), State::Behind { lag: 3600 });
        assert_eq!(classify(&r, 2000 + 3601, HOUR), State::Stale { lag: 3601 });
        r.succeeded(Some(300), 6000);
        assert_eq!(classify(&r, 6000, HOUR), State::UpToDate);
        assert_eq!((r.have_modified, r.last_success), (300, Some(6000)));
    }

    #[test]
    fn failing_until_a_success() {
        let mut r = RepoFreshness::default();
        r.observe(100, 100, false, 1000);
        r.failed("fatal: x", 1500);
        r.failed("fatal: y", 1600);
        assert_eq!(
            classify(&r, 1700, HOUR),
            State::Failing {
                lag: 200,
                since: 1500,
                error: "fatal: y".into(),
                attempts: 2
            }
        );
        r.succeeded(None, 1800);
        assert_eq!(classify(&r, 1800, HOUR), State::UpToDate);
        assert_eq!(r.attempts, 0);
    }

    #[test]
    fn summary_counts_and_orders() {
        let mut f = Freshness::default();
        let mut up = RepoFreshness::default();
        up.observe(1, 1, false, 0);
        let mut behind = RepoFreshness::default();
        behind.observe(5, 1, true, 990);
        let mut stale = RepoFreshness::default();
        stale.observe(5, 1, true, 100);
        let mut staler = RepoFreshness::default();
        staler.observe(5, 1, true, 50);
        let mut failing = RepoFreshness::default();
        failing.failed("fatal: '/x' does not appear to be a git repository", 500);
        f.repos.insert("/up.git".into(), up);
        f.repos.insert("/behind.git".into(), behind);
        f.repos.insert("/stale.git".into(), stale);
        f.repos.insert("/staler.git".into(), staler);
        f.repos.insert("/failing.git".into(), failing);
        let s = summarize(&f, 1000, Duration::from_secs(60), 3);
        assert_eq!((s.total, s.up_to_date, s.behind), (5, 1, 1));
        let names = |v: &[Lagging]| v.iter().map(|l| l.repo.clone()).collect::<Vec<_>>();
        assert_eq!(names(&s.stale), ["/staler.git", "/stale.git"]);
        assert_eq!(s.stale[0].lag, 950);
        assert_eq!(s.stale[0].modified_lag, 4);
        assert_eq!(s.failing.len(), 1);
        assert_eq!(s.failing[0].reason, "missing");
        assert_eq!(s.failing[0].lag, 500);
        assert_eq!(
            names(&s.worst),
            ["/staler.git", "/stale.git", "/failing.git"]
        );
        assert_eq!(s.max_lag(), 950);
        assert!(!s.healthy());
        let f2 = Freshness {
            repos: [("/up.git".to_string(), f.repos["/up.git"].clone())].into(),
            ..Freshness::default()
        };
        assert!(summarize(&f2, 1000, HOUR, 3).healthy());
    }

    #[test]
    fn long_errors_are_cut() {
        let mut r = RepoFreshness::default();
        r.failed(&"é".repeat(2000), 1);
        let kept = r.last_error.unwrap();
        assert!(kept.len() <= MAX_ERROR + '…'.len_utf8(), "{}", kept.len());
        assert!(kept.ends_with('…'));
    }

    #[test]
    fn reasons() {
        assert_eq!(failure_reason("fetch timed out after 5s"), "timeout");
        assert_eq!(
            failure_reason("fatal: unable to access 'http://x/': Connection refused"),
            "network"
        );
        assert_eq!(failure_reason("something odd"), "other");
    }

    #[test]
    fn roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".m.freshness");
        assert_eq!(Freshness::read(&p).unwrap(), Freshness::default());
        let mut f = Freshness::default();
        f.repos.insert("/a.git".into(), RepoFreshness::default());
        f.last_poll = Some(PollRecord {
            at: 5,
            result: "fetched".into(),
            error: None,
        });
        f.write(&p, 7).unwrap();
        let back = Freshness::read(&p).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.updated, 7);
        std::fs::write(&p, "garbage").unwrap();
        let e = Freshness::read(&p).unwrap_err().to_string();
        assert!(e.contains(".m.freshness") && e.contains("remove it"), "{e}");
    }
}
