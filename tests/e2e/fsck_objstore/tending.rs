//! Keeping members, baselines, island cores and virtual refs in step, like the reference.

use super::*;

/// `baselines` and `islandcores` end up in the same settings as with the
/// reference: `core.alternateRefsPrefixes` on every member, naming the
/// baseline members' branches, and `pack.islandCore` naming the core.
#[test]
fn baselines_and_island_cores_configured_like_the_reference() {
    let fsck = "baselines = */fork02.git\nislandcores = */proj1/fork03.git";
    let ours = Tree::new("", fsck);
    let theirs = Tree::new("", fsck);
    forks::build(&ours.top, &small_spec());
    forks::build(&theirs.top, &small_spec());
    ours.manifest();
    theirs.manifest();
    let out = ours.fsck(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = theirs.oracle_fsck(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let layout = forks::layout(&ours.top);
    let diff = layout
        .anonymous()
        .diff(&forks::layout(&theirs.top).anonymous());
    assert!(diff.is_empty(), "{diff:#?}");
    assert_eq!(
        layout
            .alternate_refs
            .get("proj0/fork01.git")
            .map(String::as_str),
        Some("refs/virtual/<proj0/fork02.git>/heads/")
    );
    let island: Vec<_> = layout
        .stores
        .values()
        .flat_map(|s| s.config.iter())
        .filter(|(k, _)| k == "pack.islandcore")
        .collect();
    assert_eq!(island.len(), 1, "{island:?}");
    assert_eq!(island[0].1, "<proj1/fork03.git>");
}

/// A member that is gone is dropped from its object storage
/// (remote, refs, fingerprint), refs of nobody are trimmed, and the object
/// storage gets its full repack; the reference does the same.
#[test]
fn departed_members_and_stale_virtual_refs_are_trimmed_like_the_reference() {
    let ours = Tree::new("", "");
    let theirs = Tree::new("", "");
    for t in [&ours, &theirs] {
        forks::build(&t.top, &small_spec());
        t.manifest();
        let out = t.fsck(&[]);
        assert!(out.status.success(), "{}", stderr(&out));
        // fork01 is gone (purged); the manifest follows.
        std::fs::remove_dir_all(t.repo("/proj0/fork01.git")).unwrap();
        t.manifest();
        // Refs of a member nobody knows.
        let obst = support::mirror::repos_under(&t.objstore())[0].clone();
        let obst = t.objstore().join(obst.trim_start_matches('/'));
        let tip = support::git(
            Some(&obst),
            &["for-each-ref", "--count=1", "--format=%(objectname)"],
        );
        support::git(
            Some(&obst),
            &["update-ref", "refs/virtual/0123456789ab/heads/x", &tip],
        );
    }
    let out = ours.fsck(&[]);
    let log = stderr(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("trim: stale virtref 0123456789ab"), "{log}");
    let out = theirs.oracle_fsck(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let layout = forks::layout(&ours.top);
    let diff = layout
        .anonymous()
        .diff(&forks::layout(&theirs.top).anonymous());
    assert!(diff.is_empty(), "{diff:#?}");
    for store in layout.stores.values() {
        assert!(store.stray_virtual.is_empty(), "{store:?}");
        assert!(!store.remotes.contains_key("proj0/fork01.git"));
    }
    let bad = forks::fsck_all(&ours.top, false);
    assert!(bad.is_empty(), "{bad:#?}");
}
