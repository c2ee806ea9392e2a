//! The repack plans by role, level, git and policy.

use super::*;
use std::path::PathBuf;

fn args(role: &RepoRole, level: RepackLevel, policy: &RepackPolicy) -> String {
    plan(role, level, Deltas::Reuse, policy).args.join(" ")
}

#[test]
fn flags_by_role() {
    let p = RepackPolicy::default();
    let q = RepackLevel::Quick;
    let parent = PathBuf::from("/t/p.git");
    assert_eq!(
        args(&RepoRole::Standalone, q, &p),
        "-a -b --unpack-unreachable=yesterday -d"
    );
    assert_eq!(args(&RepoRole::Parent, q, &p), "-a -b -k -d");
    assert_eq!(
        args(
            &RepoRole::Child {
                parent: parent.clone()
            },
            q,
            &p
        ),
        "-l -A --no-write-bitmap-index --unpack-unreachable=yesterday -d"
    );
    assert_eq!(
        args(
            &RepoRole::ParentAndChild {
                parent: parent.clone()
            },
            q,
            &p
        ),
        "-A -l -d"
    );
    assert_eq!(args(&RepoRole::Objstore, q, &p), "-a -k -d");
    assert_eq!(
        args(&RepoRole::ObjstoreMember { objstore: parent }, q, &p),
        "-l -A --no-write-bitmap-index --unpack-unreachable=yesterday -d"
    );
}

#[test]
fn lenders_are_never_pruned_and_stay_precious() {
    let p = RepackPolicy::default();
    for role in [RepoRole::Parent, RepoRole::Objstore] {
        let plan = plan(&role, RepackLevel::Quick, Deltas::Reuse, &p);
        assert!(!plan.prune);
        assert!(plan.precious_after);
        assert!(plan.args.iter().any(|a| a == "-k"));
    }
    let solo = plan(&RepoRole::Standalone, RepackLevel::Quick, Deltas::Reuse, &p);
    assert!(solo.prune && !solo.precious_after && solo.commit_graph);
}

#[test]
fn full_level_and_extra_flags() {
    let p = RepackPolicy {
        extra_flags: vec!["--threads=2".into()],
        extra_full_flags: vec!["--window=250".into(), "--depth=50".into()],
        ..Default::default()
    };
    let plan = plan(&RepoRole::Standalone, RepackLevel::Full, Deltas::Reuse, &p);
    assert_eq!(
            plan.args.join(" "),
            "--threads=2 -a -b --unpack-unreachable=yesterday --pack-kept-objects --window=250 --depth=50 -d"
        );
    assert!(plan.pack_all_refs);
}

#[test]
fn precious_always_deletes_nothing() {
    let p = RepackPolicy {
        precious: Precious::Always,
        ..Default::default()
    };
    for role in [RepoRole::Standalone, RepoRole::Parent, RepoRole::Objstore] {
        let plan = plan(&role, RepackLevel::Full, Deltas::Reuse, &p);
        assert!(!plan.args.iter().any(|a| a == "-d"), "{:?}", plan.args);
        assert!(!plan.prune);
        assert!(plan.precious_during && plan.precious_after);
    }
}

#[test]
fn no_prune_keeps_unreachable() {
    let p = RepackPolicy {
        prune: false,
        ..Default::default()
    };
    assert_eq!(
        args(&RepoRole::Standalone, RepackLevel::Quick, &p),
        "-a -b -k -d"
    );
    assert_eq!(
        args(
            &RepoRole::Child {
                parent: "/p".into()
            },
            RepackLevel::Quick,
            &p
        ),
        "-l -A --no-write-bitmap-index -d"
    );
}

#[test]
fn pruned_objstore_drops_only_when_allowed() {
    let p = RepackPolicy::default();
    let plan = plan_pruned_objstore(RepackLevel::Full, Deltas::Reuse, &p);
    assert_eq!(plan.args.join(" "), "-a --pack-kept-objects -d");
    assert!(plan.prune && plan.precious_after);
    for policy in [
        RepackPolicy {
            prune: false,
            ..Default::default()
        },
        RepackPolicy {
            precious: Precious::Always,
            ..Default::default()
        },
    ] {
        let plan = plan_pruned_objstore(RepackLevel::Quick, Deltas::Reuse, &policy);
        assert!(!plan.prune, "{policy:?}");
        assert_eq!(
            plan.args,
            super::plan(
                &RepoRole::Objstore,
                RepackLevel::Quick,
                Deltas::Reuse,
                &policy
            )
            .args
        );
    }
}

#[test]
fn precious_values() {
    assert_eq!(Precious::parse("always"), Some(Precious::Always));
    assert_eq!(Precious::parse("Yes"), Some(Precious::Yes));
    assert_eq!(Precious::parse("off"), Some(Precious::No));
    assert_eq!(Precious::parse("sometimes"), None);
}

#[test]
fn pull_quick_repack() {
    assert_eq!(
        quick_repack_args(QuickRepack::AllInOne, &["--threads=1".into()], &[]).join(" "),
        "repack -Adlq --threads=1"
    );
    assert_eq!(
        quick_repack_args(QuickRepack::AllInOne, &[], &["pack-1.pack".into()]).join(" "),
        "repack -Adlq --keep-pack=pack-1.pack"
    );
    assert_eq!(
        quick_repack_args(QuickRepack::Geometric, &[], &["pack-1.pack".into()]).join(" "),
        "repack --geometric=2 -d --write-midx --write-bitmap-index -q --keep-pack=pack-1.pack"
    );
}

#[test]
fn borrowers_lose_their_commit_graph() {
    let dir = tempfile::tempdir().unwrap();
    let info = dir.path().join("objects/info");
    std::fs::create_dir_all(info.join("commit-graphs")).unwrap();
    for f in [
        "commit-graph",
        "commit-graphs/commit-graph-chain",
        "commit-graphs/graph-0123.graph",
        "alternates",
    ] {
        std::fs::write(info.join(f), "").unwrap();
    }
    let removed = drop_commit_graph(dir.path()).unwrap();
    assert_eq!(removed.len(), 3, "{removed:?}");
    assert!(info.join("alternates").exists());
    assert!(!info.join("commit-graph").exists());
    assert!(drop_commit_graph(dir.path()).unwrap().is_empty());
    let policy = RepackPolicy::default();
    let member = RepoRole::ObjstoreMember {
        objstore: PathBuf::from("/o.git"),
    };
    assert!(plan(&member, RepackLevel::Quick, Deltas::Reuse, &policy).drop_commit_graph);
    assert!(
        !plan(
            &RepoRole::Standalone,
            RepackLevel::Quick,
            Deltas::Reuse,
            &policy
        )
        .drop_commit_graph
    );
}

#[test]
fn a_consumer_grace_puts_what_may_go_into_cruft_packs() {
    let p = RepackPolicy {
        unreachable: Unreachable::CruftSince(1_700_000_000),
        ..Default::default()
    };
    let cruft = "--cruft --cruft-expiration=@1700000000";
    let q = RepackLevel::Quick;
    let solo = plan(&RepoRole::Standalone, q, Deltas::Reuse, &p);
    assert_eq!(solo.args.join(" "), format!("-a -b {cruft} -d"));
    assert!(solo.freshen_first && !solo.prune);
    let member = RepoRole::ObjstoreMember {
        objstore: PathBuf::from("/o.git"),
    };
    let m = plan(&member, q, Deltas::Reuse, &p);
    assert_eq!(
        m.args.join(" "),
        format!("-l {cruft} --no-write-bitmap-index -d")
    );
    assert!(m.freshen_first && !m.prune);
    let o = plan_pruned_objstore(RepackLevel::Full, Deltas::Reuse, &p);
    assert_eq!(
        o.args.join(" "),
        format!("-a {cruft} --pack-kept-objects -d")
    );
    assert!(o.freshen_first && !o.prune && o.precious_after);
    // Lenders and object storage that may not be pruned keep all, as
    // without a grace.
    for role in [RepoRole::Parent, RepoRole::Objstore] {
        let plan = plan(&role, q, Deltas::Reuse, &p);
        assert!(plan.args.iter().any(|a| a == "-k"), "{role:?}");
        assert!(!plan.freshen_first && !plan.prune);
    }
    // No prune asked: no cruft pack either (nothing is dropped).
    let no_prune = RepackPolicy {
        prune: false,
        ..p.clone()
    };
    let kept = plan(&RepoRole::Standalone, q, Deltas::Reuse, &no_prune);
    assert_eq!(kept.args.join(" "), "-a -b -k -d");
    assert!(!kept.freshen_first);
}

#[test]
fn without_cruft_packs_a_grace_keeps_everything() {
    let p = RepackPolicy {
        unreachable: Unreachable::KeepAll,
        ..Default::default()
    };
    let q = RepackLevel::Quick;
    let solo = plan(&RepoRole::Standalone, q, Deltas::Reuse, &p);
    assert_eq!(solo.args.join(" "), "-a -b -k -d");
    assert!(!solo.prune && !solo.freshen_first);
    let child = RepoRole::Child {
        parent: PathBuf::from("/p.git"),
    };
    assert_eq!(
        plan(&child, q, Deltas::Reuse, &p).args.join(" "),
        "-l -a -k --no-write-bitmap-index -d"
    );
    let o = plan_pruned_objstore(q, Deltas::Reuse, &p);
    assert_eq!(o.args.join(" "), "-a -k -d");
    assert!(!o.prune);
}

#[test]
fn a_grace_that_cannot_be_honoured_falls_back_to_keeping_everything() {
    let p = RepackPolicy {
        unreachable: Unreachable::CruftSince(1),
        ..Default::default()
    };
    let member = RepoRole::ObjstoreMember {
        objstore: PathBuf::from("/o.git"),
    };
    let m = plan(&member, RepackLevel::Quick, Deltas::Reuse, &p).keeping_everything();
    assert_eq!(m.args.join(" "), "-l --no-write-bitmap-index -a -k -d");
    assert!(!m.freshen_first && !m.prune);
    let o = plan_pruned_objstore(RepackLevel::Quick, Deltas::Reuse, &p).keeping_everything();
    assert_eq!(o.args.join(" "), "-a -k -d");
    let solo =
        plan(&RepoRole::Standalone, RepackLevel::Quick, Deltas::Reuse, &p).keeping_everything();
    assert_eq!(solo.args.join(" "), "-a -b -k -d");
}

fn modern() -> RepackPolicy {
    RepackPolicy {
        geometric: true,
        ..Default::default()
    }
}

#[test]
fn quick_repacks_are_geometric_where_nothing_is_borrowed() {
    let p = modern();
    let q = RepackLevel::Quick;
    let geometric = "--geometric=2 -d --write-midx --write-bitmap-index";
    for role in [RepoRole::Standalone, RepoRole::Parent, RepoRole::Objstore] {
        let plan = plan(&role, q, Deltas::Reuse, &p);
        assert_eq!(plan.args.join(" "), geometric, "{role:?}");
        // Drops nothing, so nothing to prune or freshen; the commit-graph
        // grows by a layer; cruft packs stay out of the roll-up.
        assert!(!plan.prune && !plan.freshen_first && plan.keep_cruft_packs);
        assert_eq!(plan.graph_write, GraphWrite::Incremental);
        assert!(!plan.pack_all_refs && !plan.recomputes_deltas);
        assert_eq!(plan.precious_after, role.lends_objects(), "{role:?}");
    }
    let pruned = plan_pruned_objstore(q, Deltas::Reuse, &p);
    assert_eq!(pruned.args.join(" "), geometric);
    assert!(!pruned.prune && pruned.precious_after);
    // Borrowers keep their local-only repack: it is what drops the objects
    // their lender holds.
    let member = RepoRole::ObjstoreMember {
        objstore: PathBuf::from("/o.git"),
    };
    assert_eq!(
        args(&member, q, &p),
        "-l -A --no-write-bitmap-index --unpack-unreachable=yesterday -d"
    );
    let chained = RepoRole::ParentAndChild {
        parent: PathBuf::from("/p.git"),
    };
    assert_eq!(args(&chained, q, &p), "-A -l -d");
    // Extra flags still apply.
    let threads = RepackPolicy {
        extra_flags: vec!["--threads=1".into()],
        ..modern()
    };
    assert_eq!(
        args(&RepoRole::Standalone, q, &threads),
        format!("--threads=1 {geometric}")
    );
}

#[test]
fn without_a_midx_capable_git_quick_repacks_stay_as_they_were() {
    let old = RepackPolicy::default();
    assert!(!is_geometric(
        &RepoRole::Standalone,
        RepackLevel::Quick,
        &old
    ));
    let plan = plan(
        &RepoRole::Standalone,
        RepackLevel::Quick,
        Deltas::Reuse,
        &old,
    );
    assert_eq!(
        plan.args.join(" "),
        "-a -b --unpack-unreachable=yesterday -d"
    );
    assert!(!plan.keep_cruft_packs);
    assert_eq!(plan.graph_write, GraphWrite::Replace);
    // precious = always never gets a geometric repack (it keeps old packs).
    let always = RepackPolicy {
        precious: Precious::Always,
        ..modern()
    };
    assert!(!is_geometric(
        &RepoRole::Parent,
        RepackLevel::Quick,
        &always
    ));
}

#[test]
fn full_repacks_reuse_deltas_unless_asked() {
    for policy in [RepackPolicy::default(), modern()] {
        for role in [RepoRole::Standalone, RepoRole::Parent, RepoRole::Objstore] {
            let reuse = plan(&role, RepackLevel::Full, Deltas::Reuse, &policy);
            assert!(!reuse.args.iter().any(|a| a == "-f"), "{:?}", reuse.args);
            assert!(!reuse.recomputes_deltas && reuse.pack_all_refs);
            assert_eq!(reuse.graph_write, GraphWrite::Replace);
            let again = plan(&role, RepackLevel::Full, Deltas::Recompute, &policy);
            assert!(again.args.iter().any(|a| a == "-f"), "{:?}", again.args);
            assert!(again.recomputes_deltas);
        }
        // Object storage's first full repack (new, so Full) keeps deltas.
        let first = plan_pruned_objstore(RepackLevel::Full, Deltas::Reuse, &policy);
        assert_eq!(first.args.join(" "), "-a --pack-kept-objects -d");
        // A quick repack never recomputes, whatever is asked.
        let quick = plan(
            &RepoRole::Child {
                parent: "/p".into(),
            },
            RepackLevel::Quick,
            Deltas::Recompute,
            &policy,
        );
        assert!(!quick.args.iter().any(|a| a == "-f"));
    }
}

#[test]
fn the_policy_follows_the_git() {
    let grace = RepackPolicy {
        unreachable: Unreachable::CruftSince(5),
        ..Default::default()
    };
    let (new, said) = grace.clone().fit_to_git(Some(GitVersion(2, 47, 3)));
    assert!(new.geometric && new.commit_graph && new.commit_graph_split);
    assert_eq!(new.unreachable, Unreachable::CruftSince(5));
    assert!(said.is_empty(), "{said:?}");
    let (old, said) = grace.clone().fit_to_git(Some(GitVersion(2, 39, 5)));
    assert!(!old.geometric && old.commit_graph_split);
    assert_eq!(old.unreachable, Unreachable::CruftSince(5));
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("2.41+"));
    let (ancient, said) = grace.clone().fit_to_git(Some(GitVersion(2, 20, 0)));
    assert_eq!(ancient.unreachable, Unreachable::KeepAll);
    assert!(ancient.commit_graph && !ancient.commit_graph_split);
    assert_eq!(said.len(), 3, "{said:?}");
    let (unknown, _) = grace.fit_to_git(None);
    assert!(!unknown.geometric && !unknown.commit_graph);
    assert_eq!(unknown.unreachable, Unreachable::KeepAll);
}
