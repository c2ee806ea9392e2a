//! Object storage for forks in grok-fsck (SPEC §1.10), next to the
//! reference grok-fsck (grokmirror 2.0.12): the same grouping and layout
//! from the same input, each a fixed point for the other, private objects
//! kept out, and every repository valid whenever a run is killed.

mod support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use support::forks::{self, Spec, Tree};
use support::replica::stderr;

/// Our run and the reference's on identical collections group the same
/// repositories the same way, with the same object-storage layout; the
/// reference run after ours changes nothing, nor ours after the
/// reference; ours saves at least as much disk; every repository passes
/// git fsck; private forks' own objects are in no object storage.
#[test]
fn grouped_like_the_reference_and_a_fixed_point_both_ways() {
    let spec = Spec {
        projects: 5,
        forks: 40,
        private_every: 13,
        chain: true,
        unrelated: true,
        base_commits: 30,
    };
    let ours = Tree::new("", "");
    let theirs = Tree::new("", "");
    let collection = forks::build(&ours.top, &spec);
    forks::build(&theirs.top, &spec);
    ours.manifest();
    theirs.manifest();
    let disk_before = forks::disk_kib(&ours.top);

    let out = ours.fsck(&[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    let out = theirs.oracle_fsck(&[]);
    let their_log = stderr(&out);
    assert!(out.status.success(), "{their_log}");

    let our_layout = forks::layout(&ours.top);
    let their_layout = forks::layout(&theirs.top);
    let groups: Vec<_> = our_layout.stores.keys().collect();
    assert_eq!(our_layout.stores.len(), spec.projects, "{groups:#?}");
    let diff = our_layout.anonymous().diff(&their_layout.anonymous());
    assert!(diff.is_empty(), "{diff:#?}");
    // Each project is one group: the base, its public forks, the 1.x
    // child; private forks borrow without being members; the unrelated
    // fork stays alone.
    for (members, store) in &our_layout.stores {
        assert!(members.iter().all(|m| !m.contains("/private/")));
        assert_eq!(store.fingerprinted, *members);
        assert!(store.stray_virtual.is_empty());
    }
    assert_eq!(our_layout.borrows["proj1/unrelated.git"], "");
    for key in &collection.private {
        let lender = &our_layout.borrows[key.trim_start_matches('/')];
        assert!(
            lender.starts_with("objstore/"),
            "{key} borrows from {lender}"
        );
    }
    assert!(our_layout.borrows["proj0/child.git"].starts_with("objstore/"));

    let bad = forks::fsck_all(&ours.top, false);
    assert!(bad.is_empty(), "{bad:#?}");
    for (key, objects) in &collection.private_objects {
        for oid in objects {
            assert!(
                !forks::in_any_objstore(&ours.top, oid),
                "{oid} of private {key} is in object storage"
            );
        }
    }
    let ours_after = forks::disk_kib(&ours.top);
    let theirs_after = forks::disk_kib(&theirs.top);
    assert!(
        ours_after <= theirs_after && ours_after < disk_before,
        "disk use: before {disk_before} KiB, ours {ours_after} KiB, reference {theirs_after} KiB"
    );

    // The reference after ours: nothing to rewire.
    let out = ours.oracle_fsck(&[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(forks::rewiring(&log).is_empty(), "{log}");
    let diff = forks::layout(&ours.top).diff(&our_layout);
    assert!(diff.is_empty(), "{diff:#?}");

    // Ours after the reference: nothing either.
    let out = theirs.fsck(&[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(forks::rewiring(&log).is_empty(), "{log}");
    let diff = forks::layout(&theirs.top).diff(&their_layout);
    assert!(diff.is_empty(), "{diff:#?}");
    let bad = forks::fsck_all(&theirs.top, true);
    assert!(bad.is_empty(), "{bad:#?}");
}

/// Lines of our log that mark object-storage steps (the kill points):
/// creating object storage, moving forks in, migrating 1.x alternates.
fn is_step(line: &str) -> bool {
    [
        "fetch:",
        "init: new objstore",
        "can use",
        "migrating to",
        "restoring private",
        "reconfig:",
    ]
    .iter()
    .any(|m| line.contains(m))
}

/// Run our grok-fsck in its own process group and SIGKILL the whole group
/// `delay_ms` after the `kill_at`-th step line (never, with `None`).
/// Returns how many step lines it printed and whether it was killed.
fn fsck_killed_at(tree: &Tree, kill_at: Option<usize>, delay_ms: u64) -> (usize, bool) {
    use std::os::unix::process::CommandExt;
    let mut cmd = support::grok("grok-fsck");
    cmd.arg("-v")
        .arg("-c")
        .arg(&tree.config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().unwrap();
    let pgid = nix::unistd::Pid::from_raw(child.id() as i32);
    let mut steps = 0;
    let mut killed = false;
    let mut log = String::new();
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if is_step(&line) {
            steps += 1;
            if Some(steps) == kill_at {
                std::thread::sleep(Duration::from_millis(delay_ms));
                // The whole group: git children die with it, as in a crash.
                nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL).unwrap();
                killed = true;
                break;
            }
        }
    }
    let status = child.wait().unwrap();
    if !killed {
        assert!(status.success(), "{log}");
    }
    (steps, killed)
}

/// SIGKILL grok-fsck (and its git children) at 10 points while it
/// creates object storage, moves forks in and migrates 1.x alternates:
/// after each kill every repository passes `git fsck --connectivity-only`,
/// and a rerun finishes the job, ending where an uninterrupted run does.
#[test]
fn killed_anywhere_every_repo_stays_valid_and_a_rerun_completes() {
    let spec = Spec {
        projects: 2,
        forks: 6,
        private_every: 4,
        chain: true,
        unrelated: true,
        base_commits: 20,
    };
    let clean = Tree::new("", "");
    forks::build(&clean.top, &spec);
    clean.manifest();
    let (steps, _) = fsck_killed_at(&clean, None, 0);
    assert!(steps > 10, "only {steps} steps");
    let expected = forks::layout(&clean.top).anonymous();
    assert_eq!(expected.stores.len(), 2);

    for round in 0..10usize {
        let tree = Tree::new("", "");
        forks::build(&tree.top, &spec);
        tree.manifest();
        // Spread over the run, each a few milliseconds into its step.
        let kill_at = 1 + round * (steps - 1) / 10;
        let delay = (round as u64 * 7) % 23;
        let (_, killed) = fsck_killed_at(&tree, Some(kill_at), delay);
        assert!(killed, "round {round}: the run ended before step {kill_at}");
        let bad = forks::fsck_all(&tree.top, true);
        assert!(
            bad.is_empty(),
            "round {round}, killed {delay} ms after step {kill_at}: {bad:#?}"
        );
        fsck_killed_at(&tree, None, 0);
        let bad = forks::fsck_all(&tree.top, true);
        assert!(bad.is_empty(), "round {round}, after the rerun: {bad:#?}");
        let diff = forks::layout(&tree.top).anonymous().diff(&expected);
        assert!(diff.is_empty(), "round {round}: {diff:#?}");
        for repo in support::mirror::repos_under(&tree.top) {
            let path = tree.top.join(repo.trim_start_matches('/'));
            assert!(
                !path.join("grokmirror.repack").exists(),
                "round {round}: {repo} still waits for its repack"
            );
        }
        let leftovers: Vec<_> = std::fs::read_dir(tree.objstore())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".building") || n.ends_with(".deleting"))
            .collect();
        assert!(leftovers.is_empty(), "round {round}: {leftovers:?}");
    }
}
