//! SIGKILL at random moments, real processes and real signals: grok-pull
//! during the initial mirror of 20 repositories served by `git daemon`,
//! grok-fsck while it repacks and checks repositories full of loose
//! objects. Sometimes only the program dies and its git children live on
//! as orphans (the OOM killer), sometimes the whole process tree goes at
//! once (a cgroup kill). After each kill nothing visible is broken; the
//! next run completes and leaves everything whole.
//!
//! The kill points are random (seed printed, `GROK_KILL_SEED` replays
//! one): a random stderr line of the run, plus a random few milliseconds.

use crate::support;

use std::path::Path;
use std::time::Duration;

use crate::support::daemon::GitDaemon;
use crate::support::kill::{await_gone, run_and_kill, Victims};
use crate::support::mirror::{
    assert_mirrored, no_proxy, output_text, repos_under, Origin, Replica,
};
use crate::support::{
    git_cmd, grok, read_manifest_json, run, show_ref, show_ref_sha1, staging_entries,
};
use rand::{Rng, SeedableRng};

fn rng() -> (u64, rand::rngs::StdRng) {
    let seed = std::env::var("GROK_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    eprintln!("kill points from seed {seed} (GROK_KILL_SEED={seed} replays them)");
    (seed, rand::rngs::StdRng::seed_from_u64(seed))
}

/// `git fsck` of one repository; the complaint when it fails.
fn fsck(repo: &Path) -> Result<(), String> {
    let out = run(git_cmd(Some(repo)).args(["fsck", "--no-dangling", "--no-progress"]));
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}: {}",
            repo.display(),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

const PULL_REPOS: usize = 20;

fn pull_origin(dir: &Path) -> (Origin, Vec<String>) {
    let origin = Origin::new(dir);
    let mut keys = Vec::new();
    for i in 0..PULL_REPOS {
        // Some nested, as on kernel.org.
        let key = if i % 3 == 0 {
            format!("/pub/scm/group{}/r{i}.git", i % 2)
        } else {
            format!("/r{i}.git")
        };
        origin.project(&key, 3 + i % 4, 1_600_000_000 + i as i64 * 1000);
        keys.push(key);
    }
    keys.sort();
    origin.manifest();
    (origin, keys)
}

fn pull_cmd(replica: &Replica) -> std::process::Command {
    let mut cmd = grok("grok-pull");
    no_proxy(&mut cmd);
    cmd.arg("-v").arg("-c").arg(&replica.config);
    cmd
}

/// What must hold at any moment, even right after a kill: every
/// repository visible at its final path is complete (passes `git fsck`,
/// has the origin's refs); the local manifest, if there is one, is valid
/// JSON and claims nothing that is not on disk with that fingerprint.
fn assert_consistent(origin: &Origin, replica: &Replica, when: &str) {
    for key in repos_under(&replica.top) {
        let path = replica.path(&key);
        if let Err(e) = fsck(&path) {
            panic!("{when}: {e}");
        }
        assert_eq!(
            show_ref(&path),
            show_ref(&origin.path(&key)),
            "{when}: {key} is visible but not complete"
        );
    }
    if replica.manifest().exists() {
        let local = read_manifest_json(&replica.manifest());
        for (key, entry) in local.as_object().expect("a JSON object") {
            let path = replica.path(key);
            assert!(
                path.is_dir(),
                "{when}: the local manifest lists {key}, not on disk"
            );
            assert_eq!(
                entry["fingerprint"].as_str(),
                Some(show_ref_sha1(&path).as_str()),
                "{when}: fingerprint of {key} in the local manifest"
            );
        }
    }
}

/// grok-pull killed at random moments of an initial mirror, two or three
/// times in a row (each rerun resumes a tree the previous kill left), then
/// run to the end: every repository equals its origin and passes `git
/// fsck`, nothing is left staged, the local manifest lists everything with
/// the right fingerprints, and the next run has nothing to do.
#[test]
fn grok_pull_killed_anywhere_resumes_to_a_complete_mirror() {
    let (seed, mut rng) = rng();
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let (origin, keys) = pull_origin(&dir);
    let daemon = GitDaemon::serve(&origin.root);
    let url = origin.file_manifest_url();

    // One uninterrupted run tells how many log lines a run prints.
    let clean = Replica::new(&dir, "clean", &daemon.site(), &url, "");
    let done = run_and_kill(
        &mut pull_cmd(&clean),
        None,
        Duration::ZERO,
        Victims::WholeTree,
    );
    assert_eq!(done.code, Some(0), "{}", done.log);
    let total = done.lines;
    assert!(total > PULL_REPOS, "only {total} lines:\n{}", done.log);

    let mut kills = 0;
    for round in 0..4 {
        let replica = Replica::new(&dir, &format!("r{round}"), &daemon.site(), &url, "");
        let mut orphans = Vec::new();
        for attempt in 0..(2 + round % 2) {
            let victims = if (round + attempt) % 2 == 0 {
                Victims::ProgramOnly
            } else {
                Victims::WholeTree
            };
            // A fresh replica's run prints about `total` lines, give or take
            // a few housekeeping ones: its kill point is kept clear of the
            // end so that every round has at least one kill. A resumed run
            // may be shorter; when it ends before its kill point, fine.
            let at = if attempt == 0 {
                rng.random_range(1..(total * 3 / 4).max(2))
            } else {
                rng.random_range(1..total)
            };
            let delay = Duration::from_millis(rng.random_range(0..40));
            let when = format!(
                "seed {seed}, round {round}, kill {attempt} ({victims:?}) {delay:?} after line {at}"
            );
            let out = run_and_kill(&mut pull_cmd(&replica), Some(at), delay, victims);
            if !out.killed {
                // A resumed run may have less to do than a fresh one.
                assert_eq!(out.code, Some(0), "{when}: {}", out.log);
                continue;
            }
            kills += 1;
            eprintln!(
                "{when}: {} of {PULL_REPOS} visible, {} staged, {} orphans",
                repos_under(&replica.top).len(),
                staging_entries(&replica.top).len(),
                out.orphans.len()
            );
            assert_consistent(&origin, &replica, &when);
            orphans.extend(out.orphans);
        }
        // The rerun may start while orphans of the last kill still run.
        let mut last = pull_cmd(&replica);
        let out = run(&mut last);
        let when = format!("seed {seed}, round {round}, the rerun");
        assert_success!(out, "{when}");
        await_gone(&orphans);
        assert_consistent(&origin, &replica, &when);
        assert_eq!(repos_under(&replica.top), keys, "{when}");
        for key in &keys {
            assert_mirrored(&origin.path(key), &replica.path(key), "Grokmirror");
        }
        assert!(
            staging_entries(&replica.top).is_empty(),
            "{when}: {:?}",
            staging_entries(&replica.top)
        );
        let local = read_manifest_json(&replica.manifest());
        let listed: Vec<&String> = local.as_object().unwrap().keys().collect();
        assert_eq!(listed, keys.iter().collect::<Vec<_>>(), "{when}");
        let out = run(&mut pull_cmd(&replica));
        assert_success!(out, "{when}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("nothing to do"),
            "{when}, once more: {}",
            output_text(&out)
        );
    }
    assert!(kills >= 4, "seed {seed}: only {kills} runs were killed");
}

const FSCK_REPOS: usize = 6;

/// The config of a tree at `top`, written to `config`.
fn fsck_config(top: &Path, config: &Path) {
    std::fs::write(
        config,
        format!(
            "[core]\ntoplevel = {}\nmanifest = ${{toplevel}}/manifest.js.gz\n\
             [fsck]\nstatusfile = ${{core:toplevel}}/fsck.status.js\nthreads = 2\n",
            top.display()
        ),
    )
    .unwrap();
}

fn write_manifest(top: &Path) {
    support::run_ok(
        grok("grok-manifest")
            .arg("-m")
            .arg(top.join("manifest.js.gz"))
            .arg("-t")
            .arg(top),
    );
}

/// A tree whose repositories grok-fsck has seen once, that have since
/// "fetched" some 100 commits left as loose objects (so each one wants a
/// repack); built once and copied for every round.
fn fsck_template(dir: &Path) -> std::path::PathBuf {
    let top = dir.join("template");
    std::fs::create_dir_all(&top).unwrap();
    let mut repos = Vec::new();
    for i in 0..FSCK_REPOS {
        let repo = support::fixture::init_bare(&top.join(format!("g{}/r{i}.git", i % 2)));
        // HEAD's branch exists from the start (an unborn HEAD is an fsck
        // notice, a reported error).
        support::fixture::commits(&repo, "main", 150, 1_600_000_000);
        repos.push(repo);
    }
    write_manifest(&top);
    let config = dir.join("template.conf");
    fsck_config(&top, &config);
    support::run_ok(grok("grok-fsck").arg("-c").arg(&config));
    for (i, repo) in repos.iter().enumerate() {
        // Kept loose: some 40% of the objects.
        support::git(Some(repo), &["config", "fastimport.unpackLimit", "100000"]);
        support::fixture::commits(repo, "main", 100 + 10 * i, 1_650_000_000);
        support::fixture::commits(repo, "side", 5, 1_660_000_000);
        std::fs::write(repo.join("grokmirror.fingerprint"), show_ref_sha1(repo)).unwrap();
    }
    write_manifest(&top);
    top
}

/// A fresh copy of the template at `dir/<name>`, with its config and its
/// status file (whose keys are full paths) moved along.
fn fsck_tree(template: &Path, dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let top = dir.join(name);
    support::run_ok(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(template)
            .arg(&top),
    );
    let status = top.join("fsck.status.js");
    let text = std::fs::read_to_string(&status).unwrap();
    let from = format!("{}/", template.display());
    let to = format!("{}/", top.display());
    std::fs::write(&status, text.replace(&from, &to)).unwrap();
    let config = dir.join(format!("{name}.conf"));
    fsck_config(&top, &config);
    (top, config)
}

fn fsck_cmd(config: &Path, mode: &str) -> std::process::Command {
    let mut cmd = grok("grok-fsck");
    cmd.arg("-v").arg(mode).arg("-c").arg(config);
    cmd
}

/// The runs killed: `-f` (quick repacks where needed, then `git fsck`)
/// and `--repack-all-full` (every repository into one pack, old packs
/// deleted).
const FSCK_MODES: [&str; 2] = ["-f", "--repack-all-full"];

/// grok-fsck killed at random moments while it repacks and checks
/// repositories full of loose objects: after each kill every repository
/// passes `git fsck` with its refs intact and the status file (if written)
/// is valid JSON; a rerun completes, repacks and checks everything, and
/// records every repository in the status file.
#[test]
fn grok_fsck_killed_anywhere_leaves_valid_repos_and_a_rerun_completes() {
    let (seed, mut rng) = rng();
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let template = fsck_template(&dir);
    let keys = repos_under(&template);
    assert_eq!(keys.len(), FSCK_REPOS);
    for k in &keys {
        let c = support::replica::count_objects(&template.join(k.trim_start_matches('/')));
        assert!(c["count"] >= 300 && c["packs"] == 1, "{k}: {c:?}");
    }
    let refs: Vec<String> = keys
        .iter()
        .map(|k| show_ref(&template.join(k.trim_start_matches('/'))))
        .collect();

    let mut totals = Vec::new();
    for (m, mode) in FSCK_MODES.iter().enumerate() {
        let (_, clean_config) = fsck_tree(&template, &dir, &format!("clean{m}"));
        let done = run_and_kill(
            &mut fsck_cmd(&clean_config, mode),
            None,
            Duration::ZERO,
            Victims::WholeTree,
        );
        assert_eq!(done.code, Some(0), "{mode}: {}", done.log);
        assert!(done.log.contains("repacking"), "{mode}: {}", done.log);
        totals.push(done.lines);
    }

    let check = |top: &Path, when: &str| {
        for (key, refs) in keys.iter().zip(&refs) {
            let repo = top.join(key.trim_start_matches('/'));
            if let Err(e) = fsck(&repo) {
                panic!("{when}: {e}");
            }
            assert_eq!(&show_ref(&repo), refs, "{when}: refs of {key}");
        }
        let status = top.join("fsck.status.js");
        if status.exists() {
            let text = std::fs::read(&status).unwrap();
            serde_json::from_slice::<serde_json::Value>(&text)
                .unwrap_or_else(|e| panic!("{when}: status file: {e}"));
        }
    };

    let mut kills = 0;
    for round in 0..8 {
        let (top, config) = fsck_tree(&template, &dir, &format!("t{round}"));
        let mode = FSCK_MODES[round % 2];
        let total = totals[round % 2];
        let victims = if round % 4 < 2 {
            Victims::ProgramOnly
        } else {
            Victims::WholeTree
        };
        let at = rng.random_range(1..total);
        let delay = Duration::from_millis(rng.random_range(0..60));
        let when =
            format!("seed {seed}, round {round}, {mode} ({victims:?}) {delay:?} after line {at}");
        let out = run_and_kill(&mut fsck_cmd(&config, mode), Some(at), delay, victims);
        if out.killed {
            kills += 1;
            // Orphaned git (a repack carrying on) finishes first: what is
            // checked is what it leaves, not a repack half-way.
            await_gone(&out.orphans);
            eprintln!(
                "{when}: {} orphans; loose objects left in {} of {FSCK_REPOS}",
                out.orphans.len(),
                keys.iter()
                    .filter(|k| support::replica::count_objects(
                        &top.join(k.trim_start_matches('/'))
                    )["count"]
                        > 0)
                    .count()
            );
            check(&top, &when);
        } else {
            assert_eq!(out.code, Some(0), "{when}: {}", out.log);
        }
        let rerun = run(&mut fsck_cmd(&config, mode));
        let when = format!("seed {seed}, round {round}, the rerun");
        assert_success!(rerun, "{when}");
        check(&top, &when);
        let status = read_manifest_json(&top.join("fsck.status.js"));
        for key in &keys {
            let repo = top.join(key.trim_start_matches('/'));
            let entry = &status[repo.display().to_string()];
            assert!(entry.is_object(), "{when}: {key} is not in the status file");
            let counts = support::replica::count_objects(&repo);
            // Repacked; a repack killed between writing its pack and
            // deleting the loose copies may leave a few duplicates behind,
            // too few to ask for another repack, and harmless.
            assert_eq!(
                counts["count"], counts["prune-packable"],
                "{when}: {key} has loose objects no pack holds: {counts:?}"
            );
            if mode == "-f" {
                // Every repository was checked. (A full repack stands for
                // the check, so --repack-all-full records no lastcheck for
                // a repository an orphaned repack already finished.)
                assert_eq!(
                    entry["lastcheck"].as_str(),
                    Some(support::replica::today().as_str()),
                    "{when}: {key} in the status file: {status:#}"
                );
            } else {
                assert_eq!(counts["packs"], 1, "{when}: {key} is not in one pack");
            }
        }
    }
    assert!(kills >= 4, "seed {seed}: only {kills} runs were killed");
}

/// What a git (or grok-pull's own in-process config write) killed
/// half-way leaves in a repository: its lock files. The next run removes
/// them and goes on, instead of failing on that repository run after run.
/// (Found by the random kills above: a `config.lock` left by a kill made
/// every later run fail on that repository.)
#[test]
fn lock_files_of_a_killed_git_do_not_block_the_next_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/a.git", 3, 1_600_000_000);
    origin.manifest();
    let url = origin.file_manifest_url();
    let replica = Replica::new(&dir, "replica", &origin.local_site(), &url, "");
    let out = run(&mut pull_cmd(&replica));
    assert_success!(out);
    let repo = replica.path("/a.git");
    let locks = ["config.lock", "packed-refs.lock", "refs/heads/main.lock"];
    for l in locks {
        std::fs::write(repo.join(l), "half-written\n").unwrap();
        support::mirror::bump_mtime(&repo.join(l), -60);
    }
    support::fixture::commits(&origin.path("/a.git"), "main", 2, 1_700_000_000);
    origin.manifest();
    origin.age_manifest(5);
    let out = run(&mut pull_cmd(&replica));
    assert_success!(out);
    assert_mirrored(&origin.path("/a.git"), &repo, "Grokmirror");
    for l in locks {
        assert!(!repo.join(l).exists(), "{l} is still there");
    }
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("left by a git that died"),
        "{}",
        output_text(&out)
    );
}
