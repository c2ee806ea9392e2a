//! The freshness part of the Prometheus text file: replication lag (a
//! histogram and the worst), repositories by state, stale and failing ones
//! by reason, and how long fetches take.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use grokmirror::formats::freshness::Summary;

/// Upper bounds of the lag histogram's buckets, in seconds.
pub const LAG_BUCKETS: &[f64] = &[
    60.0, 300.0, 900.0, 3600.0, 10800.0, 43200.0, 86400.0, 604800.0,
];

/// Upper bounds of the fetch duration histogram's buckets, in seconds.
pub const FETCH_BUCKETS: &[f64] = &[0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0];

/// A Prometheus histogram.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    /// Observations at or below each bucket's bound (not cumulative).
    counts: Vec<u64>,
    /// Observations above every bound.
    over: u64,
    sum: f64,
}

impl Histogram {
    /// Count one observation against `bounds`.
    pub fn observe(&mut self, bounds: &[f64], value: f64) {
        if self.counts.len() != bounds.len() {
            self.counts = vec![0; bounds.len()];
        }
        match bounds.iter().position(|b| value <= *b) {
            Some(i) => self.counts[i] += 1,
            None => self.over += 1,
        }
        self.sum += value;
    }

    /// The total number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.over
    }

    /// Its text exposition under `name` (with `# HELP` and `# TYPE`).
    pub fn render(&self, out: &mut String, name: &str, help: &str, bounds: &[f64]) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, b) in bounds.iter().enumerate() {
            cumulative += self.counts.get(i).copied().unwrap_or(0);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count());
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count());
    }
}

fn gauge(out: &mut String, name: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

/// The freshness metrics of `s`.
pub fn render(out: &mut String, s: &Summary, stale_after: Duration) {
    gauge(
        out,
        "grokmirror_pull_repos_by_state",
        "Repositories by freshness: up to date, behind (within stale_after), stale, failing.",
        &[
            ("{state=\"up_to_date\"}".into(), s.up_to_date as f64),
            ("{state=\"behind\"}".into(), s.behind as f64),
            ("{state=\"stale\"}".into(), s.stale.len() as f64),
            ("{state=\"failing\"}".into(), s.failing.len() as f64),
        ],
    );
    // Stale ones are behind while their fetches run or wait; failing ones
    // by what their last error says.
    let mut failing: BTreeMap<&str, usize> = [
        ("timeout", 0),
        ("missing", 0),
        ("network", 0),
        ("local", 0),
        ("other", 0),
    ]
    .into();
    for f in &s.failing {
        *failing.entry(f.reason).or_default() += 1;
    }
    gauge(
        out,
        "grokmirror_pull_repos_failing_by_reason",
        "Repositories whose last attempts failed, by the kind of error.",
        &failing
            .iter()
            .map(|(r, n)| (format!("{{reason=\"{r}\"}}"), *n as f64))
            .collect::<Vec<_>>(),
    );
    gauge(
        out,
        "grokmirror_pull_repos_stale",
        "Repositories behind their origin for longer than [pull] stale_after, by reason (failing: their fetches fail; pending: not caught up yet).",
        &[
            (
                "{reason=\"failing\"}".into(),
                s.failing
                    .iter()
                    .filter(|f| f.lag as u64 > stale_after.as_secs())
                    .count() as f64,
            ),
            ("{reason=\"pending\"}".into(), s.stale.len() as f64),
        ],
    );
    gauge(
        out,
        "grokmirror_pull_lag_max_seconds",
        "The largest replication lag: seconds since the origin changed a repository we have not caught up with.",
        &[(String::new(), s.max_lag() as f64)],
    );
    let worst: Vec<(String, f64)> = s
        .worst
        .iter()
        .map(|w| {
            let state = if s.failing.iter().any(|f| f.repo == w.repo) {
                "failing"
            } else if s.stale.iter().any(|st| st.repo == w.repo) {
                "stale"
            } else {
                "behind"
            };
            (
                format!("{{repo=\"{}\",state=\"{state}\"}}", label(&w.repo)),
                w.lag as f64,
            )
        })
        .collect();
    gauge(
        out,
        "grokmirror_pull_repo_lag_seconds",
        "Replication lag of the worst lagging repositories (at most 10), by repository and state.",
        &worst,
    );
    let mut lag = Histogram::default();
    for l in &s.lags {
        lag.observe(LAG_BUCKETS, *l as f64);
    }
    lag.render(
        out,
        "grokmirror_pull_lag_seconds",
        "Replication lag of every repository we mirror (0 when up to date).",
        LAG_BUCKETS,
    );
}

/// A label value, escaped as the text format wants.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Seconds of a duration, rounded to milliseconds.
pub fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use grokmirror::formats::freshness::{self, Freshness, RepoFreshness};

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("/a\"b\\c\nd"), "/a\\\"b\\\\c\\nd");
    }

    #[test]
    fn histogram_is_cumulative() {
        let mut h = Histogram::default();
        for v in [0.0, 30.0, 70.0, 1e9] {
            h.observe(LAG_BUCKETS, v);
        }
        let mut out = String::new();
        h.render(&mut out, "x", "help", LAG_BUCKETS);
        assert!(out.contains("x_bucket{le=\"60\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"300\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"604800\"} 3\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 4\n"), "{out}");
        assert!(out.contains("x_count 4\n"), "{out}");
    }

    #[test]
    fn states_and_reasons() {
        let mut f = Freshness::default();
        let mut stale = RepoFreshness::default();
        stale.observe(2, 1, true, 0);
        let mut failing = RepoFreshness::default();
        failing.failed("fatal: timed out", 50);
        f.repos.insert("/s.git".into(), stale);
        f.repos.insert("/f.git".into(), failing);
        f.repos.insert("/u.git".into(), RepoFreshness::default());
        let s = freshness::summarize(&f, 100, Duration::from_secs(10), 5);
        let mut out = String::new();
        render(&mut out, &s, Duration::from_secs(10));
        for line in [
            "grokmirror_pull_repos_by_state{state=\"stale\"} 1\n",
            "grokmirror_pull_repos_by_state{state=\"failing\"} 1\n",
            "grokmirror_pull_repos_by_state{state=\"up_to_date\"} 1\n",
            "grokmirror_pull_repos_failing_by_reason{reason=\"timeout\"} 1\n",
            "grokmirror_pull_repos_failing_by_reason{reason=\"other\"} 0\n",
            "grokmirror_pull_repos_stale{reason=\"pending\"} 1\n",
            "grokmirror_pull_repos_stale{reason=\"failing\"} 1\n",
            "grokmirror_pull_lag_max_seconds 100\n",
            "grokmirror_pull_lag_seconds_count 3\n",
            "grokmirror_pull_repo_lag_seconds{repo=\"/f.git\",state=\"failing\"} 50\n",
            "grokmirror_pull_repo_lag_seconds{repo=\"/s.git\",state=\"stale\"} 100\n",
        ] {
            assert!(out.contains(line), "{line} missing in\n{out}");
        }
    }
}
