//! The scheduler's rules, job by job.

use super::*;
use crate::settings::Settings;
use grokmirror::config::Config;

fn ctx() -> Arc<JobContext> {
    // Nothing is run: any existing directory will do as the top level.
    let text = format!(
        "[core]\ntoplevel = {}\n[remote]\nsite = /nowhere\nmanifest = file:///nowhere/m.js\n",
        std::env::temp_dir().display()
    );
    let config = Config::from_text(&text, std::path::Path::new("t.conf"), 0).unwrap();
    Arc::new(JobContext {
        settings: Settings::from_config(config, false).unwrap(),
        git: grokmirror::git::Git::from_env(),
        tree: grokmirror::tree::Tree::open(
            &std::env::temp_dir(),
            grokmirror::tree::Reserved::none(),
        )
        .unwrap(),
        gate: Default::default(),
        borrowed: Default::default(),
        objstore: Default::default(),
    })
}

fn job(key: &str, action: Action) -> RepoJob {
    RepoJob {
        key: key.into(),
        action,
        entry: None,
        notified: false,
    }
}

const UPDATE: Action = Action::Update {
    adopt: false,
    reconfig: false,
    fetch: true,
};

fn start_all(s: &mut Scheduler) -> Vec<String> {
    let mut started = Vec::new();
    while let Some(q) = s.start_next() {
        started.push(q.job.key);
    }
    started
}

fn done(q: &Queued, outcome: JobOutcome) -> FinishedJob {
    FinishedJob {
        job: q.job.clone(),
        outcome,
        change: None,
        fresh_clone: None,
        housekeeping: Default::default(),
        received_bytes: 0,
    }
}

#[test]
fn updates_first_clones_fill_every_worker_updates_never_starve() {
    let c = ctx();
    let mut s = Scheduler::new(2);
    assert_eq!(
        s.push(job("/c1.git", Action::Clone), c.clone()),
        Pushed::New
    );
    s.push(job("/c2.git", Action::Clone), c.clone());
    s.push(job("/c3.git", Action::Clone), c.clone());
    assert_eq!(s.push(job("/u1.git", UPDATE), c.clone()), Pushed::New);
    assert_eq!(
        s.push(job("/u1.git", UPDATE), c.clone()),
        Pushed::Merged,
        "one job per repository"
    );
    assert_eq!(
        start_all(&mut s),
        vec!["/u1.git", "/c1.git"],
        "the update goes first"
    );

    // Both workers busy cloning; a new update still gets to run.
    let mut s = Scheduler::new(2);
    s.push(job("/c1.git", Action::Clone), c.clone());
    s.push(job("/c2.git", Action::Clone), c.clone());
    s.push(job("/c3.git", Action::Clone), c.clone());
    assert_eq!(
        start_all(&mut s).len(),
        2,
        "an initial mirror clones with every worker"
    );
    s.push(job("/u2.git", UPDATE), c.clone());
    s.push(job("/u3.git", UPDATE), c.clone());
    assert_eq!(
        start_all(&mut s),
        vec!["/u2.git"],
        "one update beside the clones, no more"
    );
}

#[test]
fn notifications_coalesce_and_follow_running_jobs() {
    let c = ctx();
    let mut s = Scheduler::new(1);
    let mut notified = job("/a.git", UPDATE);
    notified.notified = true;
    s.push(notified.clone(), c.clone());
    s.push(job("/a.git", UPDATE), c.clone());
    let q = s.start_next().unwrap();
    assert!(q.job.notified, "merging keeps the notification");
    assert!(s.start_next().is_none(), "one job per repository");

    // Pushes while it runs become one follow-up.
    assert_eq!(s.push(notified.clone(), c.clone()), Pushed::FollowUp);
    assert_eq!(s.push(notified.clone(), c.clone()), Pushed::FollowUp);
    assert!(s.wants("/a.git"));
    assert!(
        s.start_next().is_none(),
        "the follow-up waits for the running job"
    );
    let settled = s.settle(q.clone(), done(&q, JobOutcome::Updated), Instant::now());
    assert!(matches!(settled, Settled::Finished(_)));
    let again = s.start_next().expect("the follow-up is queued");
    assert!(again.job.notified);
    s.settle(
        again.clone(),
        done(&again, JobOutcome::Updated),
        Instant::now(),
    );
    assert!(s.is_idle());

    // A locked repository waits, then runs again.
    s.push(job("/b.git", UPDATE), c.clone());
    let q = s.start_next().unwrap();
    let now = Instant::now();
    assert!(matches!(
        s.settle(q.clone(), done(&q, JobOutcome::Busy), now),
        Settled::Retrying
    ));
    assert!(!s.is_idle());
    assert!(s.start_next().is_none());
    s.wake_waiting(now + BUSY_PAUSE);
    assert_eq!(s.start_next().unwrap().job.key, "/b.git");

    // Held repositories do not start; the rest do.
    let mut s = Scheduler::new(2);
    s.push(job("/h.git", UPDATE), c.clone());
    s.push(job("/x.git", UPDATE), c.clone());
    s.hold("/h.git");
    assert_eq!(start_all(&mut s), vec!["/x.git"]);
    s.release("/h.git");
    assert_eq!(start_all(&mut s), vec!["/h.git"]);
}

#[test]
fn merging_keeps_reclones_and_moves_lanes() {
    let c = ctx();
    let mut s = Scheduler::new(1);
    s.push(job("/r.git", Action::Reclone), c.clone());
    s.push(job("/r.git", UPDATE), c.clone());
    s.push(job("/u.git", UPDATE), c.clone());
    // /u.git first: /r.git is still a re-clone, in the clone lane.
    let first = s.start_next().unwrap();
    assert_eq!(first.job.key, "/u.git");
    s.settle(
        first.clone(),
        done(&first, JobOutcome::Updated),
        Instant::now(),
    );
    let second = s.start_next().unwrap();
    assert_eq!(second.job.action, Action::Reclone);

    let mut s = Scheduler::new(1);
    s.push(job("/n.git", Action::Clone), c.clone());
    s.push(job("/n.git", UPDATE), c.clone());
    assert_eq!(s.clear_queue(), 1);
    assert!(s.is_idle());
}
