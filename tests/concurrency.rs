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

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use grokmirror::lock::{self, FileLock};
use nix::sys::signal::Signal;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::daemon::GitDaemon;
use support::forks::{self, Spec};
use support::http::HttpServer;
use support::mirror::{
    assert_mirrored, bump_mtime, no_proxy, output_text, repos_under, Origin, Replica,
};
use support::pulld::{notify, Pulld, PATIENCE};
use support::{fixture, git, grok, oracle, read_manifest_json, show_ref, show_ref_sha1};

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
                fixture::commits(&repo, "main", n, when);
            }
            6 | 7 => {
                let name = format!("topic{}", self.pushes);
                git(Some(&repo), &["branch", &name, "main"]);
                let when = self.clock.fetch_add(600, Ordering::SeqCst);
                fixture::commits(&repo, &name, 1, when);
                topics.push(name);
            }
            8 if !topics.is_empty() => {
                let i = self.rng.random_range(0..topics.len());
                if self.rng.random_bool(0.5) {
                    let name = topics.remove(i);
                    git(
                        Some(&repo),
                        &["update-ref", "-d", &format!("refs/heads/{name}")],
                    );
                } else {
                    // A forced push: the topic's old tip becomes
                    // unreachable.
                    let name = &topics[i];
                    git(
                        Some(&repo),
                        &["update-ref", &format!("refs/heads/{name}"), "main~1"],
                    );
                    let when = self.clock.fetch_add(600, Ordering::SeqCst);
                    fixture::commits(&repo, name, 1, when);
                }
            }
            _ => {
                fixture::tag(&repo, &format!("t{}", self.pushes), "main", None);
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

#[test]
fn pushes_hooks_daemon_and_fsck_at_once_lose_nothing() {
    let secs: u64 = std::env::var("GROK_CONCURRENCY_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let seed: u64 = std::env::var("GROK_CONCURRENCY_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("concurrency: seed {seed} (GROK_CONCURRENCY_SEED={seed} replays it), {secs}s busy");

    let tmp = KeptOnFailure(Some(tempfile::tempdir().unwrap()));
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    // Two projects with forks (object storage on the replica), plus plain
    // projects.
    let spec = Spec {
        projects: 2,
        forks: 5,
        private_every: 0,
        chain: false,
        unrelated: true,
        base_commits: 12,
    };
    let mut keys = forks::build(&origin.root, &spec).keys;
    for i in 0..PROJECTS {
        let key = format!("/plain/p{i}.git");
        origin.project(&key, 6, 1_600_000_000 + 10_000 * i as i64);
        keys.push(key);
    }
    origin.manifest();
    let http = HttpServer::serve(&origin.root);
    let gitd = GitDaemon::serve(&origin.root);

    let top = dir.join("replica");
    std::fs::create_dir_all(&top).unwrap();
    let manifest_url = http.url("manifest.js.gz");
    let pull_conf = replica_config(&dir, &top, "pulld", &gitd.site(), &manifest_url);
    let fsck_conf = replica_config(&dir, &top, "fsck", &gitd.site(), &manifest_url);
    let oracle_conf = replica_config(&dir, &top, "oracle", &gitd.site(), &manifest_url);
    let oneshot_conf = replica_config(&dir, &top, "oneshot", &gitd.site(), &manifest_url);
    let origin_fsck_conf = dir.join("origin-fsck.conf");
    std::fs::write(
        &origin_fsck_conf,
        format!(
            "[core]\ntoplevel = {root}\nmanifest = {manifest}\nlog = {dir}/origin-fsck.log\n\n\
             [fsck]\nstatusfile = {dir}/origin-fsck.status.js\n\
             ignore_errors = notice:\n    warning: disabling bitmap writing\n    ignoring extra bitmap file\n",
            root = origin.root.display(),
            manifest = origin.manifest.display(),
            dir = dir.display(),
        ),
    )
    .unwrap();
    let socket = top.join(".updater.socket");
    let published = top.join("published.js.gz");

    let in_step = |key: &str| {
        let r = top.join(key.trim_start_matches('/'));
        r.is_dir() && show_ref(&r) == show_ref(&origin.path(key))
    };
    let mut d = Pulld::start(&pull_conf, &dir.join("pulld.log"), |_| {});
    d.wait_for("the initial mirror", |_| keys.iter().all(|k| in_step(k)));
    // What the replica publishes starts as a full walk; the post-update
    // hook keeps it current from here on.
    support::run_ok(
        grok("grok-manifest")
            .arg("-m")
            .arg(&published)
            .arg("-t")
            .arg(&top),
    );

    let record = Record::default();
    let clock = AtomicI64::new(1_700_000_000);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let at = |fraction: f64| start + Duration::from_secs_f64(secs as f64 * fraction);
    let (even, odd): (Vec<_>, Vec<_>) = keys
        .iter()
        .cloned()
        .enumerate()
        .partition(|(i, _)| i % 2 == 0);
    let mut pushers: Vec<Pusher> = [even, odd]
        .into_iter()
        .enumerate()
        .map(|(n, part)| Pusher {
            origin: &origin,
            keys: part.into_iter().map(|(_, k)| k).collect(),
            rng: StdRng::seed_from_u64(seed.wrapping_add(n as u64)),
            clock: &clock,
            topics: BTreeMap::new(),
            socket: socket.clone(),
            record: &record,
            pushes: 0,
            hooks_by_oracle: 0,
        })
        .collect();
    let fsck_modes: [&[&str]; 4] = [
        &["-f"],
        &["--repack-all-quick"],
        &["-f", "--connectivity-only"],
        &["--repack-all-full"],
    ];

    std::thread::scope(|s| {
        for (n, p) in pushers.iter_mut().enumerate() {
            let (at, origin, record) = (&at, &origin, &record);
            s.spawn(move || {
                let mut waves = LATE_WAVES.iter().peekable();
                while Instant::now() < deadline {
                    if n == 0 && waves.peek().is_some_and(|w| Instant::now() >= at(w.0)) {
                        let (_, project, fork) = waves.next().unwrap();
                        p.new_repo(project, None);
                        p.new_repo(fork, Some("/proj1/base.git"));
                    }
                    if n == 1 && p.pushes == 10 {
                        // A cron job's full walk by the reference, in
                        // between the hooks.
                        let mut cmd = oracle("grok-manifest");
                        cmd.arg("-m")
                            .arg(&origin.manifest)
                            .arg("-t")
                            .arg(&origin.root);
                        record.add(run_bounded("reference origin full walk".into(), &mut cmd));
                    }
                    p.push();
                    std::thread::sleep(Duration::from_millis(p.rng.random_range(100..600)));
                }
            });
        }
        // Our grok-fsck on the replica, over and over.
        s.spawn(|| {
            let mut rng = StdRng::seed_from_u64(seed ^ 0xf5c);
            let mut i = 0;
            while Instant::now() < deadline {
                let mode = fsck_modes[i % fsck_modes.len()];
                i += 1;
                let mut cmd = grok("grok-fsck");
                cmd.arg("-v").arg("-c").arg(&fsck_conf).args(mode);
                record.add(run_bounded(format!("our grok-fsck {mode:?}"), &mut cmd));
                std::thread::sleep(Duration::from_millis(rng.random_range(200..1500)));
            }
        });
        // Our grok-fsck on the origin too, under the pushes (which take no
        // grokmirror lock): its repacks, and object storage for the forks,
        // which the origin's manifest then names.
        s.spawn(|| {
            let mut rng = StdRng::seed_from_u64(seed ^ 0x0f5c);
            let mut i = 0;
            std::thread::sleep(Duration::from_millis(rng.random_range(0..3000)));
            while Instant::now() < deadline {
                let mode = fsck_modes[i % fsck_modes.len()];
                i += 1;
                let mut cmd = grok("grok-fsck");
                cmd.arg("-v").arg("-c").arg(&origin_fsck_conf).args(mode);
                record.add(run_bounded(
                    format!("our origin grok-fsck {mode:?}"),
                    &mut cmd,
                ));
                std::thread::sleep(Duration::from_millis(rng.random_range(2000..5000)));
            }
        });
        // Our own one-shot grok-pull beside the daemon (a cron job left
        // behind), right after new repositories appear.
        s.spawn(|| {
            for (when, _, _) in LATE_WAVES {
                if let Some(wait) = at(when + 0.02).checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let mut cmd = grok("grok-pull");
                cmd.arg("-v").arg("-c").arg(&oneshot_conf);
                record.add(run_bounded("our one-shot grok-pull".into(), &mut cmd));
            }
        });
        // The reference on the same replica: grok-fsck (a forced check,
        // later full repacks) and one-shot grok-pulls.
        s.spawn(|| {
            // The pulls start right after new repositories appear on the
            // origin (LATE_WAVES), racing the daemon to clone them.
            let steps: [(f64, &str, &[&str]); 4] = [
                (0.15, "grok-fsck", &["-f"]),
                (0.31, "grok-pull", &[]),
                (0.6, "grok-fsck", &["--repack-all-full"]),
                (0.76, "grok-pull", &[]),
            ];
            for (when, program, flags) in steps {
                if let Some(wait) = at(when).checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                // Our grok-fsck keeps the tree busy: the reference's waits
                // for a turn, as it would from its next cron run.
                for _ in 0..50 {
                    let mut cmd = oracle(program);
                    cmd.arg("-v").arg("-c").arg(&oracle_conf).args(flags);
                    let run = run_bounded(format!("reference {program} {flags:?}"), &mut cmd);
                    let turned_away = run.text.contains(ORACLE_FSCK_BUSY);
                    record.add(run);
                    if !turned_away {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        });
    });
    let busy = start.elapsed();
    // The daemon is stopped while it is busy: a last burst of pushes and
    // notifications, and SIGTERM right behind them. It exits cleanly; what
    // it leaves undone, the one-shot pull below must finish.
    for _ in 0..3 {
        for p in pushers.iter_mut() {
            p.push();
        }
    }
    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "{}", d.describe());
    for (_, project, fork) in LATE_WAVES {
        keys.push(project.to_string());
        keys.push(fork.to_string());
    }
    keys.sort();
    let pushes: usize = pushers.iter().map(|p| p.pushes).sum();
    let by_oracle: usize = pushers.iter().map(|p| p.hooks_by_oracle).sum();
    drop(pushers);
    let runs = record.runs.into_inner().unwrap();
    eprintln!(
        "concurrency: {pushes} pushes ({by_oracle} hooks by the reference), {} runs in {busy:?}",
        runs.len()
    );
    if std::env::var_os("GROK_CONCURRENCY_KEEP").is_some() {
        for r in &runs {
            if r.what.starts_with("reference grok") {
                eprintln!("{}", r.describe());
            }
        }
    }
    // For failure messages: what ran (how often, how it ended) and the end
    // of every log; the whole tree is kept (GROK_CONCURRENCY_KEEP=1 keeps
    // it when the test passes too).
    let all_runs = || {
        let mut kinds: BTreeMap<(String, Option<i32>), usize> = BTreeMap::new();
        for r in &runs {
            let kind = match r.what.find(" for /") {
                Some(i) => r.what[..i].to_string(),
                None => r.what.clone(),
            };
            *kinds.entry((kind, r.code)).or_default() += 1;
        }
        let mut text = String::from("--- runs (what, exit code: how many)\n");
        for ((what, code), n) in kinds {
            text.push_str(&format!("{what}, {code:?}: {n}\n"));
        }
        for name in ["pulld", "fsck", "oneshot", "oracle", "origin-fsck"] {
            let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
            text.push_str(&format!("--- end of {name}.log\n{}\n", tail(&log, 40)));
        }
        text
    };

    // Every run of ours succeeded; so did the reference's (a failure of
    // theirs next to ours would be a lock or format disagreement), except
    // for one crash of its own making, which the checks below show did no
    // harm.
    let (known, failed): (Vec<&Run>, Vec<&Run>) = runs
        .iter()
        .filter(|r| r.code != Some(0) || r.text.contains("Traceback"))
        .partition(|r| oracle_clone_race(r));
    let failed: Vec<String> = failed.into_iter().map(Run::describe).collect();
    assert!(failed.is_empty(), "runs failed:\n{}", failed.join("\n"));
    for r in known {
        eprintln!(
            "concurrency: the reference's grok-pull lost a clone race (its own bug):\n{}",
            r.describe()
        );
    }

    // The reference's grok-fsck really worked on the tree (between ours),
    // both times.
    let oracle_fscks = runs
        .iter()
        .filter(|r| r.what.starts_with("reference grok-fsck") && !r.text.contains(ORACLE_FSCK_BUSY))
        .count();
    assert_eq!(
        oracle_fscks,
        2,
        "the reference's grok-fsck never got a turn:\n{}",
        all_runs()
    );

    // The origin's manifest lists every repository with the fingerprint
    // of its refs, as the last hook of each left it.
    let on_origin: Vec<String> = repos_under(&origin.root)
        .into_iter()
        .filter(|k| !k.starts_with("/objstore/"))
        .collect();
    assert_eq!(on_origin, keys, "the origin's repositories");
    check_manifest(&origin.manifest, &origin.root, &keys, "origin", &all_runs);

    // A final one-shot pull finds nothing wrong.
    let mut cmd = grok("grok-pull");
    cmd.arg("-v").arg("-c").arg(&fsck_conf);
    let last_pull = run_bounded("final grok-pull".into(), &mut cmd);
    assert_eq!(last_pull.code, Some(0), "{}", last_pull.describe());
    let mut differ = Vec::new();
    for key in &keys {
        if !in_step(key) {
            let r = top.join(key.trim_start_matches('/'));
            differ.push(format!(
                "{key}:\n--- origin\n{}--- replica\n{}",
                show_ref(&origin.path(key)),
                show_ref(&r)
            ));
        }
    }
    assert!(differ.is_empty(), "replica differs:\n{}", differ.join("\n"));
    let on_replica: Vec<String> = repos_under(&top)
        .into_iter()
        .filter(|k| !k.starts_with("/objstore/"))
        .collect();
    assert_eq!(on_replica, keys, "the replica's repositories");

    // The replica's own manifest and the one its hook publishes.
    check_manifest(
        &top.join("manifest.js.gz"),
        &top,
        &keys,
        "replica",
        &all_runs,
    );
    check_manifest(&published, &top, &keys, "published", &all_runs);

    // Nothing is corrupt: a full fsck of every repository, connectivity
    // for the members of object storage (their objects are checked in full
    // in the object storage).
    let mut bad = forks::fsck_all(&origin.root, false);
    let objstores = |top: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(top.join("objstore"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "git"))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (origin_objstores, objstores) = (objstores(&origin.root), objstores(&top));
    eprintln!(
        "concurrency: object storage repositories: {} on the origin, {} on the replica",
        origin_objstores.len(),
        objstores.len()
    );
    for key in &keys {
        let repo = top.join(key.trim_start_matches('/'));
        let member = repo.join("objects/info/alternates").exists();
        let mut cmd = support::git_cmd(Some(&repo));
        cmd.args(["fsck", "--no-dangling", "--no-progress"]);
        if member {
            cmd.arg("--connectivity-only");
        }
        let out = support::run(&mut cmd);
        if !out.status.success() {
            bad.push(format!("{key}: {}", String::from_utf8_lossy(&out.stderr)));
        }
    }
    for o in &objstores {
        let out = support::run(support::git_cmd(Some(o)).args([
            "fsck",
            "--no-dangling",
            "--no-progress",
        ]));
        if !out.status.success() {
            bad.push(format!(
                "{}: {}",
                o.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "git fsck failed:\n{}\n{}",
        bad.join("\n"),
        all_runs()
    );

    // No lock is left held and no git lock file is left behind.
    let mut every_repo: Vec<PathBuf> = keys
        .iter()
        .flat_map(|k| [origin.path(k), top.join(k.trim_start_matches('/'))])
        .collect();
    every_repo.extend(objstores.iter().chain(&origin_objstores).cloned());
    let mut held = Vec::new();
    for repo in &every_repo {
        match lock::acquire_repo(repo, lock::Wait::No) {
            Ok(Some(_)) => {}
            other => held.push(format!("{}: {other:?}", repo.display())),
        }
        for f in git_lock_files(repo) {
            held.push(format!("left behind: {}", f.display()));
        }
    }
    for file in [
        origin.manifest.clone(),
        top.join("manifest.js.gz"),
        published.clone(),
        top.join("fsck.status.js"),
        dir.join("origin-fsck.status.js"),
    ] {
        let l = lock::file_lock_path(&file);
        if FileLock::is_held(&l).unwrap() {
            held.push(format!("held: {}", l.display()));
        }
    }
    let staging = top.join(grokmirror::tree::staging::STAGING_DIR_NAME);
    let staged: Vec<PathBuf> = std::fs::read_dir(&staging)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    for p in staged {
        held.push(format!("left in staging: {}", p.display()));
    }
    assert!(held.is_empty(), "locks or leftovers:\n{}", held.join("\n"));

    // The next runs are not blocked by anything.
    let mut cmd = grok("grok-fsck");
    cmd.arg("-v").arg("-c").arg(&fsck_conf).arg("-f");
    let next_fsck = run_bounded("next grok-fsck -f".into(), &mut cmd);
    assert_eq!(next_fsck.code, Some(0), "{}", next_fsck.describe());
    assert!(
        !next_fsck.text.contains("Another grok-fsck"),
        "{}",
        next_fsck.describe()
    );
    let mut cmd = grok("grok-pull");
    cmd.arg("-v").arg("-c").arg(&fsck_conf);
    let next_pull = run_bounded("next grok-pull".into(), &mut cmd);
    assert_eq!(next_pull.code, Some(0), "{}", next_pull.describe());

    // Nothing went wrong along the way that a log would have said.
    let mut errors: Vec<String> = Vec::new();
    for name in ["pulld", "fsck", "oneshot", "origin-fsck"] {
        let log = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
        errors.extend(
            log.lines()
                .filter(|l| l.contains(" - ERROR - ") || l.contains(" - CRITICAL - "))
                .map(|l| format!("{name}.log: {l}")),
        );
    }
    assert!(
        errors.is_empty(),
        "errors logged:\n{}\n{}",
        errors.join("\n"),
        d.describe()
    );
    let oracle_log = std::fs::read_to_string(dir.join("oracle.log")).unwrap_or_default();
    let oracle_problems: BTreeSet<&str> = oracle_log
        .lines()
        .filter(|l| l.contains(" - ERROR - ") || l.contains(" - CRITICAL - "))
        .collect();
    assert!(
        oracle_problems.is_empty(),
        "the reference logged errors on our replica:\n{oracle_problems:#?}"
    );
}

/// Whether a run is the reference grok-pull crashing because a repository
/// it planned to clone was cloned by somebody else (our daemon) before it
/// took the repository's lock: grokmirror 2.0.12 decides to clone before
/// locking and never looks again, so its `setup_bare_repo` re-inits the
/// finished repository (harmless: `git init` on an existing repository
/// changes nothing that matters) and then dies on the existing FETCH_HEAD
/// symlink. Two reference grok-pulls race the same way; ours checks again
/// under the lock (job.rs) and adopts what it finds.
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

/// A hook that rewrites the origin's manifest within the same second a
/// one-shot grok-pull (from cron) read it leaves a manifest with the same
/// `Last-Modified`; the next run must not take it for unchanged (HTTP
/// dates and the `.remote` file have whole seconds only). The second write
/// is made with the first one's mtime, which is what the file system shows
/// when both land in one second.
#[test]
fn a_manifest_rewritten_within_the_second_it_was_read_is_not_missed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/a.git", 3, 1_600_000_000);
    origin.project("/b.git", 3, 1_600_100_000);
    origin.manifest();
    let http = HttpServer::serve(&origin.root);
    let gitd = GitDaemon::serve(&origin.root);
    let replica = Replica::new(
        &dir,
        "replica",
        &gitd.site(),
        &http.url("manifest.js.gz"),
        "",
    );
    // Dated a little ahead (as by an origin whose clock runs ahead): the
    // pull reads it no later than the second it was written, however slow
    // this machine is today.
    bump_mtime(&origin.manifest, 30);
    let written = std::fs::metadata(&origin.manifest)
        .unwrap()
        .modified()
        .unwrap();
    let out = replica.pull(&[]);
    assert!(out.status.success(), "{}", output_text(&out));
    for key in ["/a.git", "/b.git"] {
        assert_mirrored(&origin.path(key), &replica.path(key), "Grokmirror");
    }

    // A push and its hook, in that same second.
    fixture::commits(&origin.path("/a.git"), "main", 1, 1_700_000_000);
    origin.manifest_hook(&["/a.git"]);
    std::fs::File::options()
        .write(true)
        .open(&origin.manifest)
        .unwrap()
        .set_modified(written)
        .unwrap();

    let out = replica.pull(&[]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_mirrored(
        &origin.path("/a.git"),
        &replica.path("/a.git"),
        "Grokmirror",
    );
}

/// Found by the test above: a repository that had a commit-graph while it
/// stood alone keeps it after it joins object storage, where grok-fsck no
/// longer writes one; once a commit listed there leaves the object storage
/// (a deleted branch, pruned from the object storage), `git fsck` of the
/// repository fails on the stale commit-graph ("Could not read ...") and
/// every later grok-fsck reports it as a critical error.
#[test]
fn a_repository_joining_object_storage_leaves_no_stale_commit_graph() {
    let tree = forks::Tree::new("", "");
    let base = fixture::project(&tree.repo("/proj/base.git"), 10, 1_600_000_000);
    git(Some(&base), &["branch", "topic", "main"]);
    fixture::commits(&base, "topic", 2, 1_650_000_000);
    let gone = git(Some(&base), &["rev-parse", "topic"]);
    tree.manifest();
    let fsck = |args: &[&str]| {
        let out = tree.fsck(args);
        assert!(out.status.success(), "{}", output_text(&out));
        output_text(&out)
    };
    let log = fsck(&["--repack-all-full"]);
    assert!(
        base.join("objects/info/commit-graph").exists(),
        "standing alone, it gets a commit-graph:\n{log}"
    );

    // A fork appears: both move into object storage.
    let fork = fixture::fork(&base, &tree.repo("/proj/fork.git"));
    fixture::commits(&fork, "mine", 2, 1_660_000_000);
    tree.manifest();
    let log = fsck(&["--repack-all-full"]);
    assert!(
        base.join("objects/info/alternates").exists(),
        "base joined object storage:\n{log}"
    );
    // The topic branch is deleted everywhere; its commits leave the
    // object storage.
    git(Some(&base), &["update-ref", "-d", "refs/heads/topic"]);
    git(Some(&fork), &["update-ref", "-d", "refs/heads/topic"]);
    fixture::commits(&base, "main", 2, 1_670_000_000);
    fixture::commits(&fork, "mine", 2, 1_670_000_000);
    tree.manifest();
    let mut logs = fsck(&["--repack-all-full"]);
    // The object storage's turn for a full repack (which prunes it).
    let objstores = repos_under(&tree.objstore());
    assert_eq!(objstores.len(), 1, "{logs}");
    let obst = tree.objstore().join(objstores[0].trim_start_matches('/'));
    std::fs::write(obst.join("grokmirror.repack"), "").unwrap();
    logs.push_str(&fsck(&[]));
    let mut problems = Vec::new();
    for repo in [&base, &fork] {
        let out = support::run(support::git_cmd(Some(repo)).args([
            "fsck",
            "--no-dangling",
            "--no-progress",
        ]));
        if !out.status.success() {
            problems.push(format!("{}: {}", repo.display(), output_text(&out)));
        }
    }
    let still_there = forks::in_any_objstore(&tree.top, &gone);
    assert!(
        problems.is_empty(),
        "{problems:#?}\n(the deleted topic's tip {gone} is {} the object storage)\n{logs}",
        if still_there { "still in" } else { "gone from" }
    );
    let log = fsck(&["-f"]);
    assert!(!log.contains("reports errors"), "{log}");
}
