//! `[fsck] consumer_grace`: an object that stopped being reachable in the
//! mirror (a deleted branch) stays on disk, in the repositories and in
//! object storage, for the grace; once it has passed, grok-fsck drops it
//! and the disk shrinks. The clock is moved with `faketime` (grok-fsck and
//! the git it runs see a later day), never by waiting.

use std::path::Path;
use std::process::{Command, Output};

use crate::support::forks::{self, Spec, Tree};
use crate::support::replica::{has_object, stderr};
use crate::support::{fixture, git, git_stdin, run};

/// `n` bytes that do not compress (xorshift), so the disk figures show
/// whether the objects are there.
fn incompressible(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A branch `branch` on top of `main` with one commit adding a large
/// incompressible file; returns the commit.
fn big_branch(repo: &Path, branch: &str, bytes: usize, seed: u64) -> String {
    let blob = incompressible(bytes, seed);
    let mut stream = format!(
        "commit refs/heads/{branch}\ncommitter T <t@example.com> 1700000000 +0000\ndata 4\nbig\nfrom refs/heads/main\nM 644 inline big.bin\ndata {}\n",
        blob.len()
    )
    .into_bytes();
    stream.extend_from_slice(&blob);
    stream.extend_from_slice(b"\n");
    git_stdin(Some(repo), &["fast-import", "--quiet"], &stream);
    git(Some(repo), &["rev-parse", &format!("refs/heads/{branch}")])
        .trim()
        .to_string()
}

/// Our grok-fsck, `days` ahead of the real clock.
fn fsck_days_ahead(tree: &Tree, days: u32, args: &[&str]) -> Output {
    let program = crate::support::grok("grok-fsck");
    let mut cmd = Command::new("faketime");
    cmd.arg("-f")
        .arg(format!("+{days}d"))
        .arg(program.get_program());
    for (k, v) in program.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    run(cmd.arg("-v").arg("-c").arg(&tree.config).args(args))
}

/// Ask for a full repack of the object storage and of solo.git, as an
/// operator does with `grokmirror.repack` (grok-fsck's `--repack-all-full`
/// leaves a repository with one pack alone).
fn ask_full_repacks(tree: &Tree) {
    let mut repos = vec![tree.repo("/solo.git")];
    repos.extend(crate::support::forks::objstore_repos(&tree.objstore()));
    for repo in repos {
        std::fs::write(repo.join("grokmirror.repack"), "").unwrap();
    }
}

fn has_cruft_pack(repo: &Path) -> bool {
    std::fs::read_dir(repo.join("objects/pack"))
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".mtimes"))
}

/// The scenario, with the grace set to `grace` (None: the default).
fn deleted_branches(grace: Option<&str>) -> (Tree, String, String) {
    let fsck = grace
        .map(|g| format!("consumer_grace = {g}"))
        .unwrap_or_default();
    let tree = Tree::new("", &fsck);
    let spec = Spec {
        projects: 1,
        forks: 3,
        private_every: 0,
        chain: false,
        unrelated: false,
        base_commits: 10,
    };
    forks::build(&tree.top, &spec);
    let solo = fixture::project(&tree.repo("/solo.git"), 10, 1_600_000_000);
    let fork = tree.repo("/proj0/fork01.git");
    let in_fork = big_branch(&fork, "doomed", 3 << 20, 7);
    let in_solo = big_branch(&solo, "doomed", 3 << 20, 11);
    tree.manifest();
    let out = tree.fsck(&[]);
    assert_success!(out, "first grok-fsck");
    // The fork's objects are in its object storage now.
    assert!(forks::in_any_objstore(&tree.top, &in_fork));
    for repo in [&fork, &solo] {
        git(Some(repo), &["update-ref", "-d", "refs/heads/doomed"]);
    }
    tree.manifest();
    (tree, in_fork, in_solo)
}

#[test]
fn deleted_branches_outlive_the_grace_then_go_and_the_disk_shrinks() {
    let (tree, in_fork, in_solo) = deleted_branches(None);
    let solo = tree.repo("/solo.git");
    ask_full_repacks(&tree);
    let out = tree.fsck(&[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("--cruft --cruft-expiration=@"), "{log}");
    assert!(forks::in_any_objstore(&tree.top, &in_fork), "{log}");
    assert!(has_object(&solo, &in_solo), "{log}");
    assert!(has_cruft_pack(&solo), "{log}");

    // Thirteen days later: still there.
    ask_full_repacks(&tree);
    let out = fsck_days_ahead(&tree, 13, &[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        forks::in_any_objstore(&tree.top, &in_fork),
        "13 days: {log}"
    );
    assert!(has_object(&solo, &in_solo), "13 days: {log}");
    let before = forks::disk_kib(&tree.top);

    // Fifteen days later the two weeks have passed: gone, and the disk
    // gave back the 6 MiB they took.
    ask_full_repacks(&tree);
    let out = fsck_days_ahead(&tree, 15, &[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        !forks::in_any_objstore(&tree.top, &in_fork),
        "15 days: {log}"
    );
    assert!(!has_object(&solo, &in_solo), "15 days: {log}");
    let after = forks::disk_kib(&tree.top);
    assert!(
        after + 5 * 1024 < before,
        "the disk shrank: {before} KiB -> {after} KiB"
    );
    let bad = forks::fsck_all(&tree.top, false);
    assert!(bad.is_empty(), "{bad:#?}");
}

/// An object orphaned today that was written long ago (cloned months
/// back) gets the whole grace too: the grace counts from when it stopped
/// being reachable, not from when it was written.
#[test]
fn the_grace_counts_from_when_an_object_was_orphaned_not_written() {
    let (tree, in_fork, in_solo) = deleted_branches(Some("2w"));
    let solo = tree.repo("/solo.git");
    // Everything on disk looks a year old.
    let year_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(365 * 86_400);
    for dir in [solo.join("objects"), tree.objstore()] {
        let out = run(Command::new("find")
            .arg(&dir)
            .args(["-type", "f", "-exec", "touch", "-d"])
            .arg(format!(
                "@{}",
                year_ago
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs()
            ))
            .args(["{}", "+"]));
        assert_success!(out, "touch");
    }
    ask_full_repacks(&tree);
    let out = tree.fsck(&[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(forks::in_any_objstore(&tree.top, &in_fork), "{log}");
    assert!(has_object(&solo, &in_solo), "{log}");
    ask_full_repacks(&tree);
    let out = fsck_days_ahead(&tree, 13, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(forks::in_any_objstore(&tree.top, &in_fork));
    assert!(has_object(&solo, &in_solo));
}

/// `consumer_grace = 0` is grokmirror's behaviour: object storage whose
/// members allow it drops what nobody reaches at once.
#[test]
fn no_grace_drops_them_at_once_from_object_storage() {
    let (tree, in_fork, _) = deleted_branches(Some("0"));
    ask_full_repacks(&tree);
    let out = tree.fsck(&[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(!log.contains("--cruft"), "{log}");
    assert!(!forks::in_any_objstore(&tree.top, &in_fork), "{log}");
}

#[test]
fn a_bad_grace_is_one_line_naming_the_key() {
    let tree = Tree::new("", "consumer_grace = two weeks");
    let out = tree.fsck(&[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("consumer_grace"), "{err}");
    assert!(err.contains("two weeks"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
