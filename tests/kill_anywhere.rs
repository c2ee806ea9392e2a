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

mod support;

use std::path::Path;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use support::daemon::GitDaemon;
use support::kill::{await_gone, run_and_kill, Victims};
use support::mirror::{assert_mirrored, no_proxy, output_text, repos_under, Origin, Replica};
use support::{git_cmd, grok, read_manifest_json, run, show_ref, show_ref_sha1};

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

/// Entries of the staging area that are not lock files.
fn staged(top: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(top.join(".grok-pull.staging"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
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
    let url = format!("file://{}", origin.manifest.display());

    // One uninterrupted run tells how many log lines a run prints.
    let clean = Replica::new(&dir, "clean", &daemon.site(), &url, "");
    let done = run_and_kill(&mut pull_cmd(&clean), None, Duration::ZERO, Victims::WholeTree);
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
            let at = rng.random_range(1..total);
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
                staged(&replica.top).len(),
                out.orphans.len()
            );
            assert_consistent(&origin, &replica, &when);
            orphans.extend(out.orphans);
        }
        // The rerun may start while orphans of the last kill still run.
        let mut last = pull_cmd(&replica);
        let out = run(&mut last);
        let when = format!("seed {seed}, round {round}, the rerun");
        assert!(out.status.success(), "{when}: {}", output_text(&out));
        await_gone(&orphans);
        assert_consistent(&origin, &replica, &when);
        assert_eq!(repos_under(&replica.top), keys, "{when}");
        for key in &keys {
            assert_mirrored(&origin.path(key), &replica.path(key), "Grokmirror");
        }
        assert!(staged(&replica.top).is_empty(), "{when}: {:?}", staged(&replica.top));
        let local = read_manifest_json(&replica.manifest());
        let listed: Vec<&String> = local.as_object().unwrap().keys().collect();
        assert_eq!(listed, keys.iter().collect::<Vec<_>>(), "{when}");
        let out = run(&mut pull_cmd(&replica));
        assert!(out.status.success(), "{when}: {}", output_text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("nothing to do"),
            "{when}, once more: {}",
            output_text(&out)
        );
    }
    assert!(kills >= 4, "seed {seed}: only {kills} runs were killed");
}
