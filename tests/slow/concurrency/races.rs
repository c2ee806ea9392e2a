//! Narrow races: a manifest rewritten within the second it was read, a repository joining object storage.

use super::*;

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
    assert_success!(out);
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
    assert_success!(out);
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
        assert_success!(out);
        output_text(&out)
    };
    let log = fsck(&["--repack-all-full"]);
    assert!(
        crate::support::replica::has_commit_graph(&base),
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
