//! Object storage for forks in grok-fsck (SPEC §1.10), next to the
//! reference grok-fsck (grokmirror 2.0.12): the same grouping and layout
//! from the same input, each a fixed point for the other, private objects
//! kept out, and every repository valid whenever a run is killed.

mod support;

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
