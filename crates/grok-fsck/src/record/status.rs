//! The status file (`[fsck] statusfile`): when each repository was last
//! checked and repacked and when it is next due. Rewritten after every
//! repository, so a killed run loses next to nothing.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::NaiveDate;
use grokmirror::formats::fsck_status::{RepoStatus, Status};
use grokmirror::repo::object_counts::RepackLevel;
use tracing::debug;

use crate::plan::task::RepoTask;
use crate::record::report::Report;

/// Writes the status file, reporting the first failure only.
pub struct StatusWriter<'a> {
    path: PathBuf,
    report: &'a Report,
    failed: AtomicBool,
}

impl<'a> StatusWriter<'a> {
    /// A writer of the status file at `path`; failures go to `report`.
    pub fn new(path: PathBuf, report: &'a Report) -> StatusWriter<'a> {
        StatusWriter {
            path,
            report,
            failed: AtomicBool::new(false),
        }
    }

    /// Write the status file and wait for the disk.
    pub fn write(&self, status: &Status) {
        self.store(status, true)
    }

    /// Write the status file; `durable` waits for the disk.
    fn store(&self, status: &Status, durable: bool) {
        debug!("writing {}", self.path.display());
        let result = if durable {
            status.write(&self.path)
        } else {
            status.write_quickly(&self.path)
        };
        match result {
            Ok(()) => {}
            // Reported once; later writes keep trying (the disk may recover).
            Err(e) if !self.failed.swap(true, Ordering::SeqCst) => {
                self.report.critical(e.to_string())
            }
            Err(e) => debug!("{e}"),
        }
    }

    /// Write what `recorded` holds that is not written yet (quickly: the
    /// last write of the run waits for the disk).
    pub fn flush(&self, recorded: &mut Recorded) {
        if recorded.dirty {
            self.store(&recorded.status, false);
            recorded.dirty = false;
        }
    }
}

/// The status as the workers update it.
pub struct Recorded {
    /// The records.
    pub status: Status,
    /// Holds records not written yet.
    pub dirty: bool,
}

impl Recorded {
    /// Records all written already.
    pub fn new(status: Status) -> Recorded {
        Recorded {
            status,
            dirty: false,
        }
    }
}

/// Note in a repository's record the work `task` did today, `next_date`
/// being its next check should the work count as one. Returns the next
/// check when the work moved it.
pub fn note_work(
    entry: &mut RepoStatus,
    task: &RepoTask,
    today: NaiveDate,
    next_date: NaiveDate,
    fingerprint: Option<&str>,
    elapsed: u64,
) -> Option<NaiveDate> {
    let mut next = None;
    if let Some(level) = task.repack {
        entry.set_lastrepack(today);
        // A full repack reads every object: it counts as a check.
        if level == RepackLevel::Full {
            entry.set_lastfullrepack(today);
            entry.set_lastcheck(today);
            entry.set_nextcheck(next_date);
            next = Some(next_date);
        }
    }
    if task.fsck {
        entry.set_lastcheck(today);
        entry.set_nextcheck(next_date);
        next = Some(next_date);
    }
    entry.set_fingerprint(fingerprint);
    entry.set_elapsed(elapsed);
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use grokmirror::repo::alternates::RepoRole;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn task(repack: Option<RepackLevel>, fsck: bool) -> RepoTask {
        RepoTask {
            key: "/a.git".into(),
            path: "/a.git".into(),
            role: RepoRole::Standalone,
            repack,
            deltas: Default::default(),
            fsck,
            family: "/a.git".into(),
            deferred: false,
        }
    }

    #[test]
    fn a_quick_repack_alone_leaves_the_schedule() {
        let (today, next) = (day("2026-02-01"), day("2026-03-03"));
        let mut e = RepoStatus::new_repo(day("2026-02-10"), None);
        let moved = note_work(
            &mut e,
            &task(Some(RepackLevel::Quick), false),
            today,
            next,
            Some("fp"),
            3,
        );
        assert_eq!(moved, None);
        assert_eq!(e.lastrepack(), Some(today));
        assert_eq!(e.lastcheck(), None);
        assert_eq!(e.nextcheck(), Some(day("2026-02-10")));
        assert_eq!((e.fingerprint(), e.elapsed()), (Some("fp"), Some(3)));
    }

    #[test]
    fn a_full_repack_or_a_check_moves_the_next_check() {
        let (today, next) = (day("2026-02-01"), day("2026-03-03"));
        for t in [task(Some(RepackLevel::Full), false), task(None, true)] {
            let mut e = RepoStatus::new_repo(today, None);
            assert_eq!(note_work(&mut e, &t, today, next, None, 0), Some(next));
            assert_eq!((e.lastcheck(), e.nextcheck()), (Some(today), Some(next)));
        }
        let mut e = RepoStatus::new_repo(today, None);
        note_work(
            &mut e,
            &task(Some(RepackLevel::Full), false),
            today,
            next,
            None,
            0,
        );
        assert_eq!(e.lastfullrepack(), Some(today));
    }
}
