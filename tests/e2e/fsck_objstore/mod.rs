//! Object storage for forks in grok-fsck (SPEC §1.10), next to the
//! reference grok-fsck (grokmirror 2.0.12): the same grouping and layout
//! from the same input, each a fixed point for the other, private objects
//! kept out, and every repository valid whenever a run is killed.

use crate::support;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use crate::support::forks::{self, Spec, Tree};
use crate::support::replica::stderr;

mod merge;
mod tending;

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

/// Put `members` into a new object storage by hand (as another tool, or
/// an older grouping, might have), returning it.
fn objstore_of(tree: &Tree, members: &[&str]) -> std::path::PathBuf {
    use grokmirror::objstore;
    let git = grokmirror::git::Git::with_binary(support::git_binary());
    let obst = objstore::create(&git, &tree.objstore(), None).unwrap();
    for key in members {
        let m = tree.repo(key);
        objstore::add_member(&obst, &m).unwrap();
        objstore::fetch_member(&git, &obst, &m, objstore::FetchMethod::Porcelain).unwrap();
        objstore::point_at(&m, &obst).unwrap();
    }
    grokmirror::repo::roots::get(&git, &obst, true);
    obst
}

/// A project and forks of it, with one extra fork whose history also has
/// a second, unrelated root.
fn merge_tree(fsck: &str) -> Tree {
    let tree = Tree::new("", fsck);
    let spec = Spec {
        projects: 1,
        forks: 5,
        private_every: 0,
        chain: false,
        unrelated: false,
        base_commits: 15,
    };
    forks::build(&tree.top, &spec);
    tree.manifest();
    tree
}

fn members_of(layout: &forks::Layout) -> Vec<Vec<String>> {
    layout
        .stores
        .keys()
        .map(|m| m.iter().cloned().collect())
        .collect()
}

fn small_spec() -> Spec {
    Spec {
        projects: 2,
        forks: 5,
        private_every: 4,
        chain: false,
        unrelated: false,
        base_commits: 10,
    }
}

/// Object storage nobody borrows from is deleted, but not while a clone
/// being built by grok-pull (in its staging area) points at it.
#[test]
fn unused_object_storage_is_deleted_unless_a_staged_clone_uses_it() {
    let tree = Tree::new("", "");
    forks::build(&tree.top, &small_spec());
    tree.manifest();
    let git = grokmirror::git::Git::with_binary(support::git_binary());
    let lonely = grokmirror::objstore::create(&git, &tree.objstore(), None).unwrap();
    let staged = tree.top.join(".grok-pull.staging/0123.git");
    std::fs::create_dir_all(staged.join("objects.staging/info")).unwrap();
    std::fs::write(
        staged.join("objects.staging/info/alternates"),
        format!("{}/objects\n", lonely.display()),
    )
    .unwrap();
    // The staged clone's lock is held, as grok-pull holds it.
    let _held = grokmirror::lock::acquire_repo(&staged, grokmirror::lock::Wait::Forever).unwrap();
    let out = tree.fsck(&[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(lonely.is_dir(), "deleted while in use: {log}");
    std::fs::remove_dir_all(&staged).unwrap();
    let out = tree.fsck(&[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert_missing!(lonely, "{log}");
    assert!(
        log.contains("deleting (no longer used by anything)"),
        "{log}"
    );
    assert_eq!(forks::layout(&tree.top).stores.len(), 2);
}

/// `grokmirror.do-not-objstore` keeps a fork out; `preload_bundle_outdir`
/// gets a bundle of every object storage after its full repack.
#[test]
fn opted_out_forks_stay_out_and_preload_bundles_are_written() {
    let bundles = tempfile::tempdir().unwrap();
    let tree = Tree::new(
        "",
        &format!("preload_bundle_outdir = {}", bundles.path().display()),
    );
    forks::build(&tree.top, &small_spec());
    std::fs::write(
        tree.repo("/proj0/fork02.git/grokmirror.do-not-objstore"),
        "",
    )
    .unwrap();
    tree.manifest();
    let out = tree.fsck(&[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    let layout = forks::layout(&tree.top);
    assert_eq!(layout.borrows["proj0/fork02.git"], "");
    assert_eq!(layout.stores.len(), 2);
    for store in layout.stores.values() {
        let bundle = bundles
            .path()
            .join(format!("{}.bundle", store.name.trim_end_matches(".git")));
        assert!(bundle.is_file(), "{}: {log}", bundle.display());
        let heads = support::git(None, &["bundle", "list-heads", bundle.to_str().unwrap()]);
        let refs: usize = store.virtual_refs.values().map(|r| r.len()).sum();
        assert_eq!(heads.lines().count(), refs, "{heads}");
    }
    let leftovers: Vec<_> = std::fs::read_dir(bundles.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// With `objstore_uses_plumbing`, new objects reach object storage by hard
/// links and a ref update, and everything stays valid.
#[test]
fn plumbing_copies_new_objects_into_object_storage() {
    let tree = Tree::new("objstore_uses_plumbing = yes", "");
    forks::build(&tree.top, &small_spec());
    tree.manifest();
    let out = tree.fsck(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let fork = tree.repo("/proj1/fork03.git");
    let tip = support::fixture::commits(&fork, "more", 4, 1_690_000_000);
    tree.manifest();
    let out = tree.fsck(&[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("fetch: /proj1/fork03.git"), "{log}");
    let layout = forks::layout(&tree.top);
    let store = layout
        .stores
        .iter()
        .find(|(m, _)| m.contains("proj1/fork03.git"))
        .unwrap()
        .1;
    assert!(store.virtual_refs["proj1/fork03.git"].contains("heads/more"));
    let obst = tree.objstore().join(&store.name);
    assert!(support::replica::has_object(&obst, &tip));
    let bad = forks::fsck_all(&tree.top, false);
    assert!(bad.is_empty(), "{bad:#?}");
}

/// Object storage drops objects nobody reaches any more (a deleted branch
/// of a member) only when every borrower is a member whose refs it holds
/// up to date; with a private borrower, whose needs it cannot see, it
/// keeps everything. With grokmirror's rules (`consumer_grace = 0`) they go
/// at once; with a grace they go into a cruft pack first.
#[test]
fn object_storage_is_pruned_only_when_every_borrower_is_a_current_member() {
    for (private_every, grace) in [
        (0, "consumer_grace = 0"),
        (4, "consumer_grace = 0"),
        (0, ""),
    ] {
        let tree = Tree::new("", grace);
        let spec = Spec {
            projects: 1,
            forks: 5,
            private_every,
            chain: false,
            unrelated: false,
            base_commits: 10,
        };
        forks::build(&tree.top, &spec);
        let fork = tree.repo("/proj0/fork01.git");
        support::git(Some(&fork), &["branch", "doomed", "main"]);
        let doomed = support::fixture::commits(&fork, "doomed", 3, 1_620_000_000);
        tree.manifest();
        let out = tree.fsck(&[]);
        assert!(out.status.success(), "{}", stderr(&out));
        let layout = forks::layout(&tree.top);
        let store = layout.stores.values().next().unwrap();
        let obst = tree.objstore().join(&store.name);
        assert!(support::replica::has_object(&obst, &doomed));

        support::git(Some(&fork), &["update-ref", "-d", "refs/heads/doomed"]);
        tree.manifest();
        std::fs::write(obst.join("grokmirror.repack"), "").unwrap();
        let out = tree.fsck(&[]);
        let log = stderr(&out);
        assert!(out.status.success(), "{log}");
        let kept = support::replica::has_object(&obst, &doomed);
        let in_cruft_pack = std::fs::read_dir(obst.join("objects/pack"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".mtimes"));
        match (private_every, grace) {
            (0, "consumer_grace = 0") => {
                assert!(log.contains("prune: pruning"), "{log}");
                assert!(!kept, "unreachable objects stay: {log}");
            }
            (0, _) => {
                assert!(log.contains("--cruft --cruft-expiration=@"), "{log}");
                assert!(
                    kept && in_cruft_pack,
                    "kept for the grace, in a cruft pack: {log}"
                );
            }
            _ => {
                assert!(!log.contains("prune: pruning"), "{log}");
                assert!(kept, "pruned under a private borrower: {log}");
            }
        }
        let bad = forks::fsck_all(&tree.top, false);
        assert!(bad.is_empty(), "{bad:#?}");
    }
}

/// grokmirror 1.x alternates (forks borrowing straight from their parent)
/// move into object storage without a borrower ever missing an object:
/// also objects only its old parent had, unreachable there (a branch the
/// parent deleted); a private borrower takes a copy of what it borrowed
/// instead of giving its own objects to the object storage.
#[test]
fn legacy_alternates_migrate_without_breaking_borrowers() {
    let tree = Tree::new("", "");
    let parent = support::fixture::init_bare(&tree.repo("/pub/parent.git"));
    support::fixture::commits(&parent, "main", 20, 1_600_000_000);
    let topic = support::fixture::commits(&parent, "topic", 5, 1_600_100_000);
    let mut kids = Vec::new();
    for name in ["/pub/kid.git", "/pub/private/secret.git"] {
        let kid = tree.repo(name);
        support::git(
            None,
            &[
                "clone",
                "-q",
                "--bare",
                "--shared",
                parent.to_str().unwrap(),
                kid.to_str().unwrap(),
            ],
        );
        support::git(Some(&kid), &["remote", "remove", "origin"]);
        support::git(Some(&kid), &["branch", "mine", "topic"]);
        kids.push((
            kid.clone(),
            support::fixture::commits(&kid, "mine", 2, 1_600_300_000),
        ));
    }
    // The parent drops the branch both kids build on; its objects are now
    // unreachable there, old, and only there.
    support::git(Some(&parent), &["update-ref", "-d", "refs/heads/topic"]);
    support::replica::explode(&parent);
    support::replica::age_loose_objects(&parent, 30);
    tree.manifest();

    let out = tree.fsck(&["-f"]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("migrating to"), "{log}");
    let layout = forks::layout(&tree.top);
    for repo in ["pub/parent.git", "pub/kid.git", "pub/private/secret.git"] {
        assert!(
            layout.borrows[repo].starts_with("objstore/"),
            "{repo}: {log}"
        );
    }
    for (kid, tip) in &kids {
        assert!(support::replica::has_object(kid, &topic));
        assert!(support::replica::has_object(kid, tip));
    }
    let secret_tip = &kids[1].1;
    assert!(!forks::in_any_objstore(&tree.top, secret_tip));
    let bad = forks::fsck_all(&tree.top, false);
    assert!(bad.is_empty(), "{bad:#?}");
    // And again, now that nothing borrows from the parent: still whole.
    let out = tree.fsck(&["-f"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bad = forks::fsck_all(&tree.top, false);
    assert!(bad.is_empty(), "{bad:#?}");
}

/// The long runs of this module: `scripts/test --quick` skips them
/// (`--skip slow::`).
mod slow {
    use super::*;

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
                assert_missing!(
                    path.join("grokmirror.repack"),
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

    /// `grok-manifest -o` (the origin's post-receive hook) copies a pushed
    /// member's new objects into its object storage, by fetch or by the
    /// plumbing copy; the reference grok-manifest does it on our layout too.
    #[test]
    fn manifest_hook_fetches_into_object_storage() {
        for (core, ours) in [
            ("", true),
            ("objstore_uses_plumbing = yes", true),
            ("", false),
        ] {
            let tree = Tree::new(core, "");
            forks::build(&tree.top, &small_spec());
            tree.manifest();
            let out = tree.fsck(&[]);
            assert!(out.status.success(), "{}", stderr(&out));
            let fork = tree.repo("/proj0/fork02.git");
            let tip = support::fixture::commits(&fork, "pushed", 2, 1_695_000_000);
            let mut cmd = if ours {
                support::grok("grok-manifest")
            } else {
                support::oracle("grok-manifest")
            };
            let out = support::run(
                cmd.arg("--cfgfile")
                    .arg(&tree.config)
                    .arg("-o")
                    .arg("-v")
                    .arg(&fork),
            );
            let log = stderr(&out);
            assert!(out.status.success(), "{core} ours={ours}: {log}");
            let layout = forks::layout(&tree.top);
            let (_, store) = layout
                .stores
                .iter()
                .find(|(m, _)| m.contains("proj0/fork02.git"))
                .unwrap();
            assert!(
                store.virtual_refs["proj0/fork02.git"].contains("heads/pushed"),
                "{core} ours={ours}: {log}"
            );
            let obst = tree.objstore().join(&store.name);
            assert!(support::replica::has_object(&obst, &tip));
            let bad = forks::fsck_all(&tree.top, false);
            assert!(bad.is_empty(), "{core} ours={ours}: {bad:#?}");
        }
    }
}
