//! Merging redundant object storage, by each strategy.

use super::*;

#[test]
fn redundant_object_storage_is_merged_and_the_emptied_one_deleted() {
    let tree = merge_tree("");
    let o1 = objstore_of(&tree, &["/proj0/base.git", "/proj0/fork01.git"]);
    let o2 = objstore_of(
        &tree,
        &[
            "/proj0/fork02.git",
            "/proj0/fork03.git",
            "/proj0/fork04.git",
        ],
    );
    let out = tree.fsck(&[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("merging into"), "{log}");
    // The one with more members takes the others in.
    assert!(o2.is_dir() && !o1.exists(), "{log}");
    let layout = forks::layout(&tree.top);
    assert_eq!(
        members_of(&layout),
        vec![vec![
            "proj0/base.git".to_string(),
            "proj0/fork01.git".into(),
            "proj0/fork02.git".into(),
            "proj0/fork03.git".into(),
            "proj0/fork04.git".into(),
        ]]
    );
    let store = layout.stores.values().next().unwrap();
    assert!(store.stray_virtual.is_empty(), "{store:?}");
    assert_eq!(store.fingerprinted.len(), 5);
    let bad = forks::fsck_all(&tree.top, false);
    assert!(bad.is_empty(), "{bad:#?}");
    // The reference agrees there is nothing left to do.
    let out = tree.oracle_fsck(&[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(forks::rewiring(&log).is_empty(), "{log}");
    assert!(forks::layout(&tree.top).diff(&layout).is_empty());
}

#[test]
fn merge_strategies_decide_how_alike_object_storage_must_be() {
    for (strategy, merged) in [("exact", false), ("loose", true)] {
        let tree = merge_tree(&format!("obstrepo_merge_strategy = {strategy}"));
        // fork04 also carries an unrelated history: its object storage
        // has one root more than the other.
        let extra = tree.repo("/proj0/fork04.git");
        support::git(Some(&extra), &["branch", "-f", "other", "main"]);
        support::git(Some(&extra), &["update-ref", "-d", "refs/heads/other"]);
        support::fixture::commits(&extra, "unrelated", 3, 1_700_000_000);
        objstore_of(&tree, &["/proj0/base.git", "/proj0/fork01.git"]);
        objstore_of(&tree, &["/proj0/fork03.git", "/proj0/fork04.git"]);
        let out = tree.fsck(&[]);
        let log = stderr(&out);
        assert!(out.status.success(), "{log}");
        let stores = forks::layout(&tree.top).stores.len();
        assert_eq!(stores, if merged { 1 } else { 2 }, "{strategy}: {log}");
        let bad = forks::fsck_all(&tree.top, true);
        assert!(bad.is_empty(), "{bad:#?}");
    }
}

#[test]
fn blobs_strategy_merges_rewritten_histories_with_the_same_files() {
    let tree = Tree::new("", "obstrepo_merge_strategy = blobs");
    // The same files in a rewritten history (every commit by someone
    // else): no shared root, the same blobs.
    let one = support::fixture::init_bare(&tree.repo("/a/one.git"));
    support::fixture::commits(&one, "main", 12, 1_600_000_000);
    let stream = support::git(Some(&one), &["fast-export", "--all"]);
    let stream = stream.replace("Test Committer", "Someone Else") + "\n";
    let three = support::fixture::init_bare(&tree.repo("/b/three.git"));
    support::git_stdin(Some(&three), &["fast-import", "--quiet"], stream.as_bytes());
    tree.manifest();
    objstore_of(&tree, &["/a/one.git"]);
    objstore_of(&tree, &["/b/three.git"]);
    let out = tree.fsck(&[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("merging into"), "{log}");
    assert_eq!(forks::layout(&tree.top).stores.len(), 1, "{log}");
    let bad = forks::fsck_all(&tree.top, true);
    assert!(bad.is_empty(), "{bad:#?}");
}
