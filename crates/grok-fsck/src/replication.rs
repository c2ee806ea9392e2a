//! Repositories that stopped replicating: on a replica, grok-pull records
//! per repository what the origin advertises and what we have (the
//! freshness file beside the local manifest, see
//! [`grokmirror::formats::freshness`]); every grok-fsck run compares them and lists
//! the stale and failing ones in its report.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use grokmirror::config::Config;
use grokmirror::formats::freshness::{self, Freshness, Summary};
use tracing::{debug, info};

use crate::report::Report;

/// The report's lines for a summary: one per stale or failing repository,
/// naming it, how long it has been behind and why.
pub fn lines(s: &Summary, stale_after: Duration) -> Vec<String> {
    let mut out = Vec::new();
    for st in &s.stale {
        out.push(format!(
            "{}: stopped replicating: behind the origin for {}s (stale after {}s); check grok-pull's log and `grok-pull --status`",
            st.repo,
            st.lag,
            stale_after.as_secs()
        ));
    }
    for f in &s.failing {
        out.push(format!(
            "{}: stopped replicating: behind the origin for {}s, its fetches fail ({} attempts): {}",
            f.repo,
            f.lag,
            f.attempts,
            f.error.lines().next().unwrap_or_default()
        ));
    }
    out
}

/// Compare, and add what stopped replicating to the report. A tree without
/// a freshness file (an origin, or a replica grok-pull has not run on
/// since it records freshness) has nothing to say.
pub fn check(config: &Config, manifest: &Path, report: &Report) -> anyhow::Result<()> {
    let path = freshness::freshness_path(manifest);
    if !path.exists() {
        debug!("no {}: not a replica, or not pulled yet", path.display());
        return Ok(());
    }
    let stale_after = freshness::stale_after(config)?;
    let file = Freshness::read(&path)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let s = freshness::summarize(&file, now, stale_after, 0);
    let found = lines(&s, stale_after);
    if found.is_empty() {
        info!(
            "Replication: {} repositories, none stale or failing",
            s.total
        );
    } else {
        report.critical_block(&found);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use grokmirror::formats::freshness::RepoFreshness;

    #[test]
    fn names_exactly_the_stale_and_failing() {
        let mut f = Freshness::default();
        let mut up = RepoFreshness::default();
        up.observe(1, 1, false, 0);
        let mut behind = RepoFreshness::default();
        behind.observe(2, 1, true, 95);
        let mut stale = RepoFreshness::default();
        stale.observe(2, 1, true, 10);
        let mut failing = RepoFreshness::default();
        failing.failed("fatal: gone\nmore", 40);
        f.repos.insert("/up.git".into(), up);
        f.repos.insert("/behind.git".into(), behind);
        f.repos.insert("/stale.git".into(), stale);
        f.repos.insert("/failing.git".into(), failing);
        let ten = Duration::from_secs(10);
        let s = freshness::summarize(&f, 100, ten, 0);
        let l = lines(&s, ten);
        assert_eq!(l.len(), 2, "{l:?}");
        assert!(l[0].starts_with("/stale.git: stopped replicating: behind the origin for 90s"));
        assert!(l[1].starts_with("/failing.git: stopped replicating: behind the origin for 60s"));
        assert!(l[1].ends_with("(1 attempts): fatal: gone"), "{}", l[1]);
    }
}
