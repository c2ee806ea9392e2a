//! The in-process ref snapshot must equal what the git CLI gives on every
//! layout we can build, and the fast path must really be taken for plain
//! repositories (otherwise a full walk silently degrades to a git process
//! per repo).

use std::path::Path;
use std::process::Command;

use grokmirror::git::Git;
use grokmirror::config::glob::GlobList;
use grokmirror::repo::refs::{self, SnapshotSource};

fn git(repo: Option<&Path>, args: &[&str]) -> String {
    let mut cmd = Command::new("git");
    if let Some(r) = repo {
        cmd.arg(format!("--git-dir={}", r.display()));
    }
    let out = cmd
        .args(args)
        .env("GIT_AUTHOR_NAME", "A")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "C")
        .env("GIT_COMMITTER_EMAIL", "c@example.com")
        .env("GIT_COMMITTER_DATE", "1600000000 +0200")
        .env("GIT_AUTHOR_DATE", "1600000000 +0200")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn commit(repo: &Path, branch: &str, when: i64) -> String {
    let tree = git(
        Some(repo),
        &["hash-object", "-t", "tree", "-w", "/dev/null"],
    );
    let parent = Command::new("git")
        .arg(format!("--git-dir={}", repo.display()))
        .args([
            "rev-parse",
            "-q",
            "--verify",
            &format!("refs/heads/{branch}"),
        ])
        .output()
        .unwrap();
    let mut args = vec![
        "commit-tree".to_string(),
        tree,
        "-m".into(),
        format!("{branch} {when}"),
    ];
    if parent.status.success() {
        args.push("-p".into());
        args.push(String::from_utf8_lossy(&parent.stdout).trim().to_string());
    }
    let out = Command::new("git")
        .arg(format!("--git-dir={}", repo.display()))
        .args(&args)
        .env("GIT_AUTHOR_NAME", "A")
        .env("GIT_AUTHOR_EMAIL", "a@example.com")
        .env("GIT_COMMITTER_NAME", "C")
        .env("GIT_COMMITTER_EMAIL", "c@example.com")
        .env("GIT_COMMITTER_DATE", format!("{when} -0500"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let oid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    git(
        Some(repo),
        &["update-ref", &format!("refs/heads/{branch}"), &oid],
    );
    oid
}

fn both_ways(repo: &Path, ignore: &GlobList) -> (refs::RefsSnapshot, refs::RefsSnapshot) {
    let git = Git::from_env();
    let fast = refs::snapshot(&git, repo, ignore, true).unwrap();
    let cli = refs::snapshot_cli(&git, repo, ignore, true).unwrap();
    (fast, cli)
}

fn assert_agree(repo: &Path, ignore: &GlobList) -> refs::RefsSnapshot {
    let (fast, cli) = both_ways(repo, ignore);
    assert_eq!(
        fast.fingerprint,
        cli.fingerprint,
        "fingerprint of {}",
        repo.display()
    );
    assert_eq!(
        fast.newest_commit,
        cli.newest_commit,
        "newest commit of {}",
        repo.display()
    );
    fast
}

#[test]
fn plain_repo_takes_the_fast_path_and_agrees_with_git() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("r.git");
    git(None, &["init", "-q", "--bare", repo.to_str().unwrap()]);
    assert_eq!(
        assert_agree(&repo, &GlobList::default()).fingerprint,
        None,
        "no refs"
    );

    let c1 = commit(&repo, "main", 1_600_000_000);
    commit(&repo, "main", 1_600_000_500);
    commit(&repo, "old", 1_500_000_000);
    git(Some(&repo), &["tag", "-a", "-m", "t", "annotated", &c1]);
    git(Some(&repo), &["tag", "light", &c1]);
    git(Some(&repo), &["pack-refs", "--all"]);
    commit(&repo, "loose-after-pack", 1_600_000_100);
    git(Some(&repo), &["update-ref", "refs/notes/commits", &c1]);
    git(
        Some(&repo),
        &[
            "symbolic-ref",
            "refs/remotes/origin/HEAD",
            "refs/heads/main",
        ],
    );
    git(
        Some(&repo),
        &["symbolic-ref", "refs/heads/dangling", "refs/heads/nowhere"],
    );
    git(
        Some(&repo),
        &["update-ref", "refs/heads/\u{e9}t\u{e9}/#odd+name", &c1],
    );
    // A packed ref shadowed by a newer loose one.
    git(Some(&repo), &["update-ref", "refs/heads/old", &c1]);

    let snap = assert_agree(&repo, &GlobList::default());
    assert_eq!(snap.source, SnapshotSource::InProcess);
    assert_eq!(snap.newest_commit, Some(1_600_000_500));
    let ignored = assert_agree(&repo, &GlobList::new(["refs/tags/*", "refs/notes/*"]));
    assert_ne!(ignored.fingerprint, snap.fingerprint);
}

#[test]
fn ref_to_missing_object_means_no_fingerprint_like_git() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("r.git");
    git(None, &["init", "-q", "--bare", repo.to_str().unwrap()]);
    commit(&repo, "main", 1_600_000_000);
    std::fs::write(
        repo.join("refs/heads/broken"),
        format!("{}\n", "1".repeat(40)),
    )
    .unwrap();
    let (fast, cli) = both_ways(&repo, &GlobList::default());
    assert_eq!(fast.fingerprint, None);
    assert_eq!(cli.fingerprint, None);
}

#[test]
fn sha256_repo_falls_back_to_git() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("r.git");
    git(
        None,
        &[
            "init",
            "-q",
            "--bare",
            "--object-format=sha256",
            repo.to_str().unwrap(),
        ],
    );
    commit(&repo, "main", 1_600_000_000);
    let snap = assert_agree(&repo, &GlobList::default());
    assert!(snap.fingerprint.is_some());
    assert_eq!(snap.newest_commit, Some(1_600_000_000));
}

#[test]
fn precious_objects_repo_takes_the_fast_path() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("r.git");
    git(None, &["init", "-q", "--bare", repo.to_str().unwrap()]);
    git(
        Some(&repo),
        &["config", "core.repositoryformatversion", "1"],
    );
    git(
        Some(&repo),
        &["config", "extensions.preciousObjects", "true"],
    );
    commit(&repo, "main", 1_600_000_000);
    let snap = assert_agree(&repo, &GlobList::default());
    assert_eq!(snap.source, SnapshotSource::InProcess);
}

#[test]
fn borrowed_objects_unusual_extensions_and_odd_loose_refs_agree_with_git() {
    let dir = tempfile::tempdir().unwrap();
    // A repo whose commits live only in the repo it borrows from.
    let lender = dir.path().join("lender.git");
    git(None, &["init", "-q", "--bare", lender.to_str().unwrap()]);
    let c = commit(&lender, "main", 1_600_000_000);
    let borrower = dir.path().join("borrower.git");
    git(None, &["init", "-q", "--bare", borrower.to_str().unwrap()]);
    std::fs::write(
        borrower.join("objects/info/alternates"),
        format!("{}\n", lender.join("objects").display()),
    )
    .unwrap();
    git(Some(&borrower), &["update-ref", "refs/heads/main", &c]);
    let snap = assert_agree(&borrower, &GlobList::default());
    assert_eq!(snap.source, SnapshotSource::InProcess);
    assert_eq!(snap.newest_commit, Some(1_600_000_000));

    // An extension git doesn't know: git refuses the repo, and so must we.
    let odd = dir.path().join("odd.git");
    git(None, &["init", "-q", "--bare", odd.to_str().unwrap()]);
    commit(&odd, "main", 1_600_000_000);
    git(Some(&odd), &["config", "core.repositoryformatversion", "1"]);
    git(Some(&odd), &["config", "extensions.somethingnew", "true"]);
    let snap = assert_agree(&odd, &GlobList::default());
    assert_eq!(snap.source, SnapshotSource::GitCli);

    // Loose refs git reads leniently or skips: trailing junk after the id,
    // a lock file, a hidden file.
    let loose = dir.path().join("loose.git");
    git(None, &["init", "-q", "--bare", loose.to_str().unwrap()]);
    let c = commit(&loose, "main", 1_600_000_000);
    std::fs::write(
        loose.join("refs/heads/junk"),
        format!("{c} trailing junk\n"),
    )
    .unwrap();
    std::fs::write(loose.join("refs/heads/locked.lock"), format!("{c}\n")).unwrap();
    std::fs::write(loose.join("refs/heads/.hidden"), format!("{c}\n")).unwrap();
    assert_agree(&loose, &GlobList::default());
    std::fs::remove_file(loose.join("refs/heads/junk")).unwrap();
    let snap = assert_agree(&loose, &GlobList::default());
    assert_eq!(snap.source, SnapshotSource::InProcess);
}
