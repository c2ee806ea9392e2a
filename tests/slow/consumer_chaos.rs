//! The consumers issue's chaos test: for a bounded time, consumers clone
//! from the mirror in a loop (with `--shared`, with `--reference` to the
//! mirror while fetching the rest from the origin, and from grok-snapshot
//! snapshots) while the origin force-pushes and deletes branches, grok-pull
//! fetches with prune and grok-fsck repacks and prunes the mirror, object
//! storage included, all at once. A last round makes sure one consumer
//! leans on objects that the mirror certainly consolidated into object
//! storage before they were orphaned.
//!
//! Afterwards every consumer clone made passes `git fsck` and checks out
//! its commit. With `consumer_grace = 0` (grokmirror's behaviour) the same
//! run must break at least one consumer: that is the failure the grace
//! prevents, and it shows the test can fail.
//!
//! `GROK_CHAOS_SECS` changes the length of the busy period (default 20).

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::support::forks::{self, Spec, Tree};
use crate::support::mirror::no_proxy;
use crate::support::replica::stderr;
use crate::support::{fixture, git, git_cmd, grok, run};

const FORKS: [&str; 3] = [
    "/proj0/fork01.git",
    "/proj0/fork02.git",
    "/proj0/fork03.git",
];

fn chaos_secs() -> u64 {
    std::env::var("GROK_CHAOS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
}

/// A clone a consumer made: where, how, and the commit it checked out.
#[derive(Debug)]
struct Consumer {
    dir: PathBuf,
    how: &'static str,
    commit: String,
}

struct World {
    origin: Tree,
    mirror: Tree,
    consumers_dir: PathBuf,
    snapshots: PathBuf,
    stamp: AtomicUsize,
}

impl World {
    fn new(grace: &str) -> World {
        let origin = Tree::new("", "");
        let spec = Spec {
            projects: 1,
            forks: 4,
            private_every: 0,
            chain: false,
            unrelated: false,
            base_commits: 15,
        };
        forks::build(&origin.top, &spec);
        for key in FORKS {
            let fork = origin.repo(key);
            git(Some(&fork), &["branch", "topic", "main"]);
            fixture::commits(&fork, "topic", 2, 1_650_000_000);
        }
        origin.manifest();
        let out = origin.fsck(&[]);
        assert_success!(out, "origin grok-fsck");
        origin.manifest();
        let site = origin.top.display().to_string();
        let mirror = Tree::new(
            &format!(
                "[remote]\nsite = {site}\nmanifest = file://{site}/manifest.js.gz\n[pull]\npull_threads = 2"
            ),
            &format!("consumer_grace = {grace}"),
        );
        let consumers_dir = mirror.dir.path().join("consumers");
        let snapshots = mirror.dir.path().join("snapshots");
        std::fs::create_dir_all(&consumers_dir).unwrap();
        let world = World {
            origin,
            mirror,
            consumers_dir,
            snapshots,
            stamp: AtomicUsize::new(0),
        };
        let out = world.pull();
        assert_success!(out, "first grok-pull");
        let out = world.fsck();
        assert_success!(out, "first grok-fsck");
        world
    }

    fn pull(&self) -> Output {
        let mut cmd = grok("grok-pull");
        no_proxy(&mut cmd);
        run(cmd.arg("-v").arg("-n").arg("-c").arg(&self.mirror.config))
    }

    /// grok-fsck with a full repack of every object storage and member
    /// asked for, so each run repacks and prunes what it may.
    fn fsck(&self) -> Output {
        let mut repos: Vec<PathBuf> = FORKS.iter().map(|k| self.mirror.repo(k)).collect();
        repos.extend(crate::support::forks::objstore_repos(
            &self.mirror.objstore(),
        ));
        for repo in repos {
            if repo.is_dir() {
                let _ = std::fs::write(repo.join("grokmirror.repack"), "");
            }
        }
        self.mirror.fsck(&[])
    }

    /// The origin force-pushes `topic` of one fork (new commits on main,
    /// the old ones orphaned) and replaces a short-lived branch.
    fn origin_moves(&self, n: usize) {
        let fork = self.origin.repo(FORKS[n % FORKS.len()]);
        let when = 1_700_000_000 + 1000 * self.stamp.fetch_add(1, Ordering::SeqCst) as i64;
        git(
            Some(&fork),
            &["update-ref", "refs/heads/topic", "refs/heads/main"],
        );
        fixture::commits(&fork, "topic", 2, when);
        let _ = run(git_cmd(Some(&fork)).args([
            "update-ref",
            "-d",
            &format!("refs/heads/ci-{}", n.wrapping_sub(2)),
        ]));
        git(
            Some(&fork),
            &["branch", "-f", &format!("ci-{n}"), "refs/heads/topic"],
        );
        self.origin.manifest();
    }

    /// One consumer clone of `key`'s `topic`, made `how`; `None` when the
    /// clone itself failed (said on stderr).
    fn consume(&self, key: &str, how: &'static str, n: usize) -> Option<Consumer> {
        let dir = self.consumers_dir.join(format!("{how}-{n}"));
        let member = self.mirror.repo(key);
        let out = match how {
            "shared" => run(git_cmd(None)
                .args(["clone", "-q", "--shared", "-b", "topic"])
                .arg(&member)
                .arg(&dir)),
            "reference" => run(git_cmd(None)
                .args(["clone", "-q", "-b", "topic", "--reference"])
                .arg(&member)
                .arg(format!("file://{}", self.origin.repo(key).display()))
                .arg(&dir)),
            _ => {
                let out = run(grok("grok-snapshot")
                    .arg("-c")
                    .arg(&self.mirror.config)
                    .arg("-o")
                    .arg(&self.snapshots)
                    .arg(key));
                if !out.status.success() {
                    eprintln!("grok-snapshot {key}: {}", stderr(&out));
                    return None;
                }
                let snap = String::from_utf8_lossy(&out.stdout).trim().to_string();
                run(git_cmd(None)
                    .args(["clone", "-q", "--shared", "-b", "topic"])
                    .arg(&snap)
                    .arg(&dir))
            }
        };
        if !out.status.success() {
            eprintln!("{how} clone of {key}: {}", stderr(&out));
            return None;
        }
        let commit = git(Some(&dir.join(".git")), &["rev-parse", "HEAD"])
            .trim()
            .to_string();
        Some(Consumer { dir, how, commit })
    }
}

/// What is wrong with a consumer's clone now: `git fsck` and a checkout
/// of its commit into a fresh directory.
fn broken(c: &Consumer, scratch: &Path) -> Option<String> {
    let out =
        run(git_cmd(Some(&c.dir.join(".git"))).args(["fsck", "--no-progress", "--no-dangling"]));
    if !out.status.success() {
        return Some(format!(
            "{} ({}): git fsck: {}",
            c.dir.display(),
            c.how,
            stderr(&out)
        ));
    }
    let work = scratch.join(c.dir.file_name().unwrap());
    std::fs::create_dir_all(&work).unwrap();
    let out = run(git_cmd(None)
        .arg("--git-dir")
        .arg(c.dir.join(".git"))
        .arg("--work-tree")
        .arg(&work)
        .args(["checkout", "-f", &c.commit, "--", "."]));
    if !out.status.success() {
        return Some(format!(
            "{} ({}): checkout: {}",
            c.dir.display(),
            c.how,
            stderr(&out)
        ));
    }
    None
}

/// The run; returns the consumers made and the broken ones among them.
fn chaos(grace: &str) -> (Vec<Consumer>, Vec<String>) {
    let world = World::new(grace);
    let made = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let until = Instant::now() + Duration::from_secs(chaos_secs());
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut n = 0;
            while Instant::now() < until {
                world.origin_moves(n);
                n += 1;
                std::thread::sleep(Duration::from_millis(300));
            }
            stop.store(true, Ordering::SeqCst);
        });
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                let out = world.pull();
                assert!(
                    out.status.success() || out.status.code() == Some(1),
                    "{}",
                    stderr(&out)
                );
            }
        });
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                let out = world.fsck();
                assert!(
                    out.status.code().is_some(),
                    "grok-fsck killed: {}",
                    stderr(&out)
                );
            }
        });
        for c in 0..2 {
            let world = &world;
            let made = &made;
            let stop = &stop;
            s.spawn(move || {
                let mut n = c;
                while !stop.load(Ordering::SeqCst) {
                    let how = ["shared", "reference", "snapshot"][n % 3];
                    if let Some(made_one) = world.consume(FORKS[n % FORKS.len()], how, n) {
                        made.lock().unwrap().push(made_one);
                    }
                    n += 2;
                    std::thread::sleep(Duration::from_millis(200));
                }
            });
        }
    });
    // The last round: a topic the mirror consolidated into object storage,
    // a consumer leaning on it, then the origin orphans it.
    let last = 1_000_000;
    world.origin_moves(last);
    assert_success!(world.pull(), "grok-pull");
    assert_success!(world.fsck(), "grok-fsck");
    let leaning = world
        .consume(FORKS[last % FORKS.len()], "shared", last)
        .expect("the last consumer clones");
    made.lock().unwrap().push(leaning);
    world.origin_moves(last);
    assert_success!(world.pull(), "grok-pull");
    assert_success!(world.fsck(), "grok-fsck");
    let consumers = made.into_inner().unwrap();
    let scratch = world.mirror.dir.path().join("checkouts");
    let bad: Vec<String> = consumers
        .iter()
        .filter_map(|c| broken(c, &scratch))
        .collect();
    eprintln!(
        "consumer_grace = {grace}: {} consumer clones, {} broken",
        consumers.len(),
        bad.len()
    );
    (consumers, bad)
}

#[test]
fn with_the_grace_no_consumer_loses_an_object() {
    let (consumers, bad) = chaos("14d");
    for how in ["shared", "reference", "snapshot"] {
        assert!(
            consumers.iter().any(|c| c.how == how),
            "no {how} clone was made: {consumers:#?}"
        );
    }
    assert!(
        consumers.len() >= 6,
        "too few clones to tell: {consumers:#?}"
    );
    assert!(
        bad.is_empty(),
        "{} of {} consumers broken: {bad:#?}",
        bad.len(),
        consumers.len()
    );
}

#[test]
fn without_it_consumers_break() {
    let (consumers, bad) = chaos("0");
    assert!(
        !bad.is_empty(),
        "with consumer_grace = 0 object storage drops orphaned objects at once, yet none of {} consumers broke",
        consumers.len()
    );
}
