//! Concurrency on one tree (the "Hardening" issue): for a bounded period,
//! pushes land on random origin repositories, each followed by the
//! origin's post-receive hook (our grok-manifest, or now and then the
//! reference's, on the same manifest) and a push-socket notification; a
//! grok-pull daemon mirrors into the replica, whose post-update hook keeps
//! a published manifest with our grok-manifest; our grok-fsck runs over
//! the replica again and again (forced checks, quick and full repacks,
//! object storage for the forks); and the reference's grok-fsck and
//! grok-pull run on the same replica in between, sharing the locks.
//!
//! Afterwards nothing is lost or corrupt: every repository on both sides
//! passes `git fsck`, both manifests list every repository with the
//! fingerprint of its refs, a final one-shot grok-pull leaves every replica
//! repository equal to its origin, no lock is left held and no git lock
//! file is left behind, and a next grok-fsck and grok-pull run cleanly.
//!
//! The random choices come from a seed printed at the start
//! (`GROK_CONCURRENCY_SEED` replays one); `GROK_CONCURRENCY_SECS` changes
//! the length of the busy period (default 60 seconds).

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::support::daemon::GitDaemon;
use crate::support::forks::{self, Spec};
use crate::support::http::HttpServer;
use crate::support::mirror::{
    assert_mirrored, bump_mtime, no_proxy, output_text, repos_under, Origin, Replica,
};
use crate::support::pulld::{notify, Pulld, PATIENCE};
use crate::support::{fixture, git, grok, oracle, read_manifest_json, show_ref, show_ref_sha1};
use grokmirror::lock::{self, FileLock};
use nix::sys::signal::Signal;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

mod busy_tree;
mod races;

/// Plain projects besides the forks.
const PROJECTS: usize = 8;

/// New repositories appearing on the origin during the busy period: when
/// (a fraction of it), a project and a fork of `/proj1/base.git`.
const LATE_WAVES: [(f64, &str, &str); 2] = [
    (0.3, "/plain/late1.git", "/proj1/fork-late1.git"),
    (0.75, "/plain/late2.git", "/proj1/fork-late2.git"),
];

/// What the reference's grok-fsck says when another grok-fsck has the tree.
const ORACLE_FSCK_BUSY: &str = "Could not obtain exclusive lock";

/// One finished run of a program, kept for the checks and for failure
/// messages.
struct Run {
    /// Who ran it and how.
    what: String,
    /// Its exit code (`None`: killed by a signal).
    code: Option<i32>,
    /// stdout and stderr.
    text: String,
}

impl Run {
    fn describe(&self) -> String {
        // What went wrong may be anywhere in a long output: the lines that
        // say so (with the indented ones after them), then the end.
        let mut problems = Vec::new();
        let mut following = false;
        for line in self.text.lines() {
            let lower = line.to_ascii_lowercase();
            if [
                "error",
                "fatal",
                "warning",
                "could not",
                "cannot",
                "missing",
            ]
            .iter()
            .any(|w| lower.contains(w))
            {
                problems.push(line);
                following = true;
            } else if following && line.starts_with('\t') {
                problems.push(line);
            } else {
                following = false;
            }
        }
        format!(
            "=== {} (exit {:?})\n--- problems\n{}\n--- end\n{}",
            self.what,
            self.code,
            problems.join("\n"),
            tail(&self.text, 40)
        )
    }
}

/// The last `n` lines of a text.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Run a command to its end, killing it (and failing the test later) if it
/// takes longer than [`PATIENCE`]: a hang must not stall CI.
fn run_bounded(what: String, cmd: &mut Command) -> Run {
    no_proxy(cmd);
    let out_path = tempfile::NamedTempFile::new().unwrap();
    let err_path = tempfile::NamedTempFile::new().unwrap();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out_path.reopen().unwrap())
        .stderr(err_path.reopen().unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let deadline = Instant::now() + PATIENCE;
    let mut killed = false;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            killed = true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().unwrap();
    let mut text = std::fs::read_to_string(out_path.path()).unwrap_or_default();
    text.push_str(&std::fs::read_to_string(err_path.path()).unwrap_or_default());
    if killed {
        text.push_str(&format!("\n[killed after {PATIENCE:?}]"));
    }
    Run {
        what,
        code: if killed { None } else { status.code() },
        text,
    }
}

/// The test's temporary directory, kept (and its path printed) when the
/// test fails, so the trees and logs can be looked at.
struct KeptOnFailure(Option<tempfile::TempDir>);

impl KeptOnFailure {
    fn path(&self) -> &Path {
        self.0.as_ref().unwrap().path()
    }
}

impl Drop for KeptOnFailure {
    fn drop(&mut self) {
        let dir = self.0.take().unwrap();
        if std::thread::panicking() || std::env::var_os("GROK_CONCURRENCY_KEEP").is_some() {
            eprintln!("concurrency: kept {}", dir.keep().display());
        }
    }
}

/// Everything the concurrent actors did.
#[derive(Default)]
struct Record {
    runs: Mutex<Vec<Run>>,
}

impl Record {
    fn add(&self, run: Run) {
        self.runs.lock().unwrap().push(run);
    }
}

/// The replica's config: the same tree for every program, each with its
/// own log file so the daemon's log holds only the daemon.
fn replica_config(dir: &Path, top: &Path, name: &str, site: &str, manifest: &str) -> PathBuf {
    let config = dir.join(format!("{name}.conf"));
    let hook = format!(
        "{} -m {} -t {} -n",
        env!("CARGO_BIN_EXE_grok-manifest"),
        top.join("published.js.gz").display(),
        top.display()
    );
    std::fs::write(
        &config,
        format!(
            "[core]\ntoplevel = {top}\nmanifest = ${{toplevel}}/manifest.js.gz\nlog = {dir}/{name}.log\n\n\
             [remote]\nsite = {site}\nmanifest = {manifest}\n\n\
             [pull]\npull_threads = 2\nrefresh = 5\nsocket = ${{core:toplevel}}/.updater.socket\n\
             housekeeping_max_load = 0\nprojectslist = ${{core:toplevel}}/projects.list\n\
             post_update_hook = {hook}\n\n\
             [fsck]\nstatusfile = ${{core:toplevel}}/fsck.status.js\n\
             ignore_errors = notice:\n    warning: disabling bitmap writing\n    ignoring extra bitmap file\n",
            top = top.display(),
            dir = dir.display(),
        ),
    )
    .unwrap();
    config
}

/// The git lock files (`*.lock`) inside a repository: a run that died or
/// forgot one blocks the next git command that needs it.
fn git_lock_files(repo: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![repo.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "lock") {
                found.push(p);
            }
        }
    }
    found
}

/// How often a pusher tries one ref update that lost a lock race.
const PUSH_TRIES: usize = 20;

/// One ref update on the origin as a pushing client makes it: our
/// grok-fsck runs `pack-refs` there under the pushes (grokmirror takes no
/// lock a push honours), which holds a ref's lock for a moment, and git
/// then refuses the update instead of waiting. A client pushes again; so
/// does this, a bounded number of times. Anything else, or a lock that
/// stays taken, fails the test.
fn as_a_client<T>(mut update: impl FnMut() -> Result<T, String>) -> T {
    let mut tries = 0;
    loop {
        match update() {
            Ok(done) => return done,
            Err(e) if lost_a_ref_lock(&e) && tries + 1 < PUSH_TRIES => {
                tries += 1;
                eprintln!("push lost a ref lock race (try {tries}), pushing again: {e}");
                std::thread::sleep(Duration::from_millis(50 * tries as u64));
            }
            Err(e) => panic!("push failed after {} tries: {e}", tries + 1),
        }
    }
}

/// Whether git refused a ref update because another process held the
/// ref's (or `packed-refs`') lock at that moment.
fn lost_a_ref_lock(stderr: &str) -> bool {
    stderr.contains("cannot lock ref")
        || stderr.contains(".lock': File exists")
        || stderr.contains("couldn't set")
}

#[test]
fn only_lost_ref_locks_are_pushed_again() {
    assert!(lost_a_ref_lock(
        "error: cannot lock ref 'refs/heads/main': Unable to create '/o/a.git/refs/heads/main.lock': File exists."
    ));
    assert!(lost_a_ref_lock("warning: couldn't set 'refs/heads/main'"));
    assert!(!lost_a_ref_lock("fatal: not a git repository: '/o/a.git'"));
    assert!(!lost_a_ref_lock("fatal: Not a valid object name main~1"));
}

/// The origin's repositories, split between two pushers (never two
/// pushes to one repository at once: git would refuse one of them, as it
/// would for two real pushes).
struct Pusher<'a> {
    origin: &'a Origin,
    keys: Vec<String>,
    rng: StdRng,
    clock: &'a AtomicI64,
    topics: BTreeMap<String, Vec<String>>,
    socket: PathBuf,
    record: &'a Record,
    pushes: usize,
    hooks_by_oracle: usize,
}

impl Pusher<'_> {
    /// A date later than every commit so far.
    fn tick(&self) -> i64 {
        self.clock.fetch_add(600, Ordering::SeqCst)
    }

    /// One push to a random repository of ours, then its hook and a
    /// notification.
    fn push(&mut self) {
        let key = self.keys[self.rng.random_range(0..self.keys.len())].clone();
        let repo = self.origin.path(&key);
        let topics = self.topics.entry(key.clone()).or_default();
        match self.rng.random_range(0..10) {
            0..=5 => {
                let n = self.rng.random_range(1..=3);
                let when = self.clock.fetch_add(600, Ordering::SeqCst);
                as_a_client(|| fixture::try_commits(&repo, "main", n, when));
            }
            6 | 7 => {
                let name = format!("topic{}", self.pushes);
                as_a_client(|| fixture::try_git(&repo, &["branch", &name, "main"]));
                let when = self.clock.fetch_add(600, Ordering::SeqCst);
                as_a_client(|| fixture::try_commits(&repo, &name, 1, when));
                topics.push(name);
            }
            8 if !topics.is_empty() => {
                let i = self.rng.random_range(0..topics.len());
                if self.rng.random_bool(0.5) {
                    let name = topics.remove(i);
                    let refname = format!("refs/heads/{name}");
                    as_a_client(|| fixture::try_git(&repo, &["update-ref", "-d", &refname]));
                } else {
                    // A forced push: the topic's old tip becomes
                    // unreachable.
                    let name = &topics[i];
                    let refname = format!("refs/heads/{name}");
                    as_a_client(|| fixture::try_git(&repo, &["update-ref", &refname, "main~1"]));
                    let when = self.clock.fetch_add(600, Ordering::SeqCst);
                    as_a_client(|| fixture::try_commits(&repo, name, 1, when));
                }
            }
            _ => {
                let refname = format!("refs/tags/t{}", self.pushes);
                as_a_client(|| fixture::try_git(&repo, &["update-ref", &refname, "main"]));
            }
        }
        self.pushes += 1;
        self.hook(&key);
    }

    /// The post-receive hook: our grok-manifest, or every fourth time the
    /// reference's, then a line to the replica's push socket.
    fn hook(&mut self, key: &str) {
        let by_oracle = self.rng.random_range(0..4) == 0;
        let mut cmd = if by_oracle {
            self.hooks_by_oracle += 1;
            oracle("grok-manifest")
        } else {
            grok("grok-manifest")
        };
        cmd.arg("-m")
            .arg(&self.origin.manifest)
            .arg("-t")
            .arg(&self.origin.root)
            .arg("-n")
            .arg(self.origin.path(key));
        let who = if by_oracle { "reference" } else { "our" };
        self.record.add(run_bounded(
            format!("{who} origin hook for {key}"),
            &mut cmd,
        ));
        notify(&self.socket, &[key]);
    }

    /// A new repository appears on the origin: a project, or a fork of
    /// `fork_of` (sharing its history).
    fn new_repo(&mut self, key: &str, fork_of: Option<&str>) {
        let path = self.origin.path(key);
        match fork_of {
            Some(parent) => {
                fixture::fork(&self.origin.path(parent), &path);
                let when = self.tick();
                git(Some(&path), &["branch", "mine", "main"]);
                fixture::commits(&path, "mine", 2, when);
            }
            None => {
                let when = self.tick();
                fixture::project(&path, 4, when);
            }
        }
        self.keys.push(key.to_string());
        self.hook(key);
    }
}

/// Whether a run is the reference grok-pull crashing because a repository
/// it planned to clone was cloned by somebody else (our daemon) before it
/// took the repository's lock: grokmirror 2.0.12 decides to clone before
/// locking and never looks again, so its `setup_bare_repo` re-inits the
/// finished repository (harmless: `git init` on an existing repository
/// changes nothing that matters) and then dies on the existing FETCH_HEAD
/// symlink. Two reference grok-pulls race the same way; ours checks again
/// under the lock (grok-pull's `work::job::clone`) and adopts what it finds.
fn oracle_clone_race(run: &Run) -> bool {
    run.what.starts_with("reference grok-pull")
        && run.code == Some(1)
        && run.text.contains("in setup_bare_repo")
        && run.text.matches("Traceback").count() == 1
        && run.text.lines().any(|l| {
            l.starts_with("FileExistsError: [Errno 17] File exists: '/dev/null' -> ")
                && l.ends_with("/FETCH_HEAD'")
        })
}

/// Our grok-fsck exiting 1 only because its replication report names a
/// repository the reference's grok-pull was cloning at that moment: the
/// reference clones in place, so for a while the directory exists without
/// being a repository (or stays so when it crashes, [`oracle_clone_race`]);
/// our grok-pull rightly refuses to touch it ("exists and is not a git
/// repository"), that fetch counts as failing, and grok-fsck reports it.
/// Nothing else may be in its complaints; the checks after the runs show
/// the replica caught up.
fn reports_the_oracle_leftover(run: &Run) -> bool {
    let stopped: Vec<&str> = run
        .text
        .lines()
        .filter(|l| l.contains("stopped replicating"))
        .collect();
    run.what.starts_with("our grok-fsck")
        && run.code == Some(1)
        && !stopped.is_empty()
        && stopped
            .iter()
            .all(|l| l.contains("exists and is not a git repository; move it away"))
        && !run.text.contains("reports errors")
        && !run.text.contains("panicked")
}

/// A manifest lists exactly `keys`, each with the fingerprint of the
/// repository's refs under `top`.
fn check_manifest(
    manifest: &Path,
    top: &Path,
    keys: &[String],
    what: &str,
    runs: &dyn Fn() -> String,
) {
    let m = read_manifest_json(manifest);
    let listed: Vec<String> = m.as_object().unwrap().keys().cloned().collect();
    assert_eq!(listed, keys, "repositories in the {what} manifest");
    let mut wrong = Vec::new();
    for key in keys {
        let repo = top.join(key.trim_start_matches('/'));
        let want = show_ref_sha1(&repo);
        let have = m[key.as_str()]["fingerprint"].as_str().unwrap_or("");
        if have != want {
            wrong.push(format!(
                "{key}: manifest {have}, refs {want}\n{}",
                show_ref(&repo)
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{what} manifest {}: wrong fingerprints:\n{}\n{}",
        manifest.display(),
        wrong.join("\n"),
        runs()
    );
}
