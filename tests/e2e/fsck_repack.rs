//! grok-fsck's repacks on real repositories: loose objects packed and space
//! freed, pruning with its grace period, lenders keeping what borrowers
//! need, `precious = always`, repack requests, repositories gone from disk.

use crate::support;

use crate::support::fixture;
use crate::support::replica::{
    self, age_loose_objects, count_objects, explode, has_object, object_kib, packs, stderr, today,
    Replica,
};
use crate::support::{git, show_ref, show_ref_sha1};

/// What grok-pull does after a fetch: record the new fingerprint.
fn record_fingerprint(repo: &std::path::Path) {
    std::fs::write(repo.join("grokmirror.fingerprint"), show_ref_sha1(repo)).unwrap();
}

#[test]
fn loose_objects_are_repacked_and_space_drops() {
    let r = Replica::new("", "");
    let big = fixture::init_bare(&r.repo("big.git"));
    fixture::commits(&big, "main", 500, 1_600_000_000);
    explode(&big);
    assert!(count_objects(&big)["count"] >= 1500);
    r.manifest();
    let refs_before = show_ref(&big);
    let before = object_kib(&big);
    // New to the status file: repacked by need on its first run, not left
    // for a day the schedule picks.
    let out = r.fsck(&[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("repacking with"), "{err}");

    let after = count_objects(&big);
    assert_eq!(after["count"], 0, "{after:?}");
    assert_eq!(after["packs"], 1, "{after:?}");
    let after_kib = object_kib(&big);
    assert!(after_kib * 2 < before, "{before} KiB -> {after_kib} KiB");
    assert_eq!(show_ref(&big), refs_before);
    assert!(replica::fsck_clean(&big));
    assert_eq!(r.status_of("big.git")["lastrepack"], today());
    assert!(replica::has_commit_graph(&big));
    assert_eq!(
        std::fs::read_link(big.join("FETCH_HEAD")).unwrap(),
        std::path::Path::new("/dev/null")
    );

    // Objects pile up again without a ref moving (the fingerprint is the
    // one recorded): the counts alone ask for the repack.
    explode(&big);
    assert!(count_objects(&big)["count"] >= 1500);
    let out = r.fsck(&[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("repacking with"), "{err}");
    assert_eq!(count_objects(&big)["count"], 0);
    assert!(replica::fsck_clean(&big));
}

#[test]
fn prune_spares_recent_unreachable_objects() {
    // grokmirror's rules; with a consumer grace see
    // e2e::consumer_grace.
    let r = Replica::new("consumer_grace = 0", "");
    let repo = fixture::init_bare(&r.repo("solo.git"));
    fixture::commits(&repo, "main", 20, 1_600_000_000);
    let old_tip = fixture::commits(&repo, "old", 10, 1_600_100_000);
    explode(&repo);
    age_loose_objects(&repo, 3);
    // Objects written just now, then dropped: a push may be about to
    // reference them, so they must survive the prune.
    let new_tip = fixture::commits(&repo, "new", 3, 1_600_200_000);
    git(Some(&repo), &["update-ref", "-d", "refs/heads/old"]);
    git(Some(&repo), &["update-ref", "-d", "refs/heads/new"]);
    r.manifest();
    // A full repack: geometric quick repacks (git 2.41+) drop nothing.
    let out = r.fsck(&["--repack-all-full"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("prune"), "{err}");
    assert!(
        !has_object(&repo, &old_tip),
        "old unreachable objects are pruned"
    );
    assert!(
        has_object(&repo, &new_tip),
        "recent unreachable objects are kept"
    );
    assert!(replica::fsck_clean(&repo));
    assert_eq!(r.status_of("solo.git")["lastrepack"], today());
}

#[test]
fn lender_keeps_objects_its_borrowers_need() {
    let r = Replica::new("", "");
    let parent = fixture::init_bare(&r.repo("parent.git"));
    fixture::commits(&parent, "main", 20, 1_600_000_000);
    let topic = fixture::commits(&parent, "topic", 10, 1_600_100_000);
    let child = r.repo("child.git");
    git(
        None,
        &[
            "clone",
            "-q",
            "--bare",
            "--shared",
            parent.to_str().unwrap(),
            child.to_str().unwrap(),
        ],
    );
    git(Some(&child), &["remote", "remove", "origin"]);
    let child_tip = fixture::commits(&child, "mine", 3, 1_600_300_000);
    // The parent drops the branch the child still has; its objects are now
    // unreachable in the parent, old enough to prune, and needed by the child.
    git(Some(&parent), &["update-ref", "-d", "refs/heads/topic"]);
    explode(&parent);
    age_loose_objects(&parent, 3);
    age_loose_objects(&child, 3);
    // Both opted out of object storage: they keep their 1.x relationship
    // (migrating it is tested in fsck_objstore.rs).
    for repo in [&parent, &child] {
        std::fs::write(repo.join("grokmirror.do-not-objstore"), "").unwrap();
    }
    r.manifest();

    let out = r.fsck(&["--repack-all-full"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("-a -b -k"),
        "parent keeps unreachable objects: {err}"
    );
    assert!(has_object(&parent, &topic));
    assert!(has_object(&child, &topic));
    assert!(has_object(&child, &child_tip));
    assert!(replica::fsck_clean(&child));
    assert!(replica::fsck_clean(&parent));
    assert_eq!(
        git(
            Some(&parent),
            &["config", "--get", "extensions.preciousObjects"]
        ),
        "true"
    );
    assert_eq!(r.status_of("parent.git")["lastfullrepack"], today());
    // The child was repacked too, locally only.
    assert_eq!(r.status_of("child.git")["lastfullrepack"], today());
    assert_missing!(child.join("objects/info/commit-graph"));
}

#[test]
fn precious_always_never_deletes_a_pack() {
    let r = Replica::new("precious = always", "");
    let repo = fixture::init_bare(&r.repo("keep.git"));
    for (i, branch) in ["a", "b", "c"].iter().enumerate() {
        fixture::commits(&repo, branch, 150, 1_600_000_000 + i as i64 * 100_000);
    }
    fixture::commits(&repo, "d", 2, 1_600_500_000);
    let orphan = support::git_stdin(
        Some(&repo),
        &["hash-object", "-w", "--stdin"],
        b"nobody needs me\n",
    );
    age_loose_objects(&repo, 3);
    let packs_before = packs(&repo);
    assert!(packs_before.len() >= 3, "{packs_before:?}");
    let loose_before = count_objects(&repo)["count"];
    assert!(loose_before > 0);
    r.manifest();

    // A full repack of a new repository...
    let out = r.fsck(&["--repack-all-full"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(r.status_of("keep.git")["lastfullrepack"], today());
    let after = packs(&repo);
    for p in &packs_before {
        assert!(after.contains(p), "{p} was deleted: {after:?}");
    }
    assert!(after.len() > packs_before.len(), "a new pack was written");
    assert_eq!(
        git(
            Some(&repo),
            &["config", "--get", "extensions.preciousObjects"]
        ),
        "true"
    );

    // ...and a scheduled one of the (now precious) repository after an update.
    fixture::commits(&repo, "main", 2, 1_700_000_000);
    record_fingerprint(&repo);
    r.set_status_field("keep.git", "nextcheck", "2000-01-01".into());
    let out = r.fsck(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("repacking with"), "{}", stderr(&out));
    let last = packs(&repo);
    for p in &after {
        assert!(last.contains(p), "{p} was deleted: {last:?}");
    }
    assert!(has_object(&repo, &orphan), "nothing is pruned");
    assert!(count_objects(&repo)["count"] >= loose_before);
    assert!(replica::fsck_clean(&repo));
}

#[test]
fn repack_request_is_honoured_and_refs_packed() {
    let r = Replica::new(
        "extra_repack_flags = --threads=1\nextra_repack_flags_full = --window=250 --depth=50\nconsumer_grace = 0",
        "",
    );
    let repo = fixture::project(&r.repo("asked.git"), 30, 1_600_000_000);
    r.manifest();
    let registered = r.fsck(&[]);
    assert!(registered.status.success(), "{}", stderr(&registered));
    std::fs::write(repo.join("grokmirror.repack"), "").unwrap();
    let out = r.fsck(&[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("--threads=1 -a -b --unpack-unreachable=yesterday -f --pack-kept-objects --window=250 --depth=50 -d"),
        "full repack with the extra flags: {err}"
    );
    assert_missing!(repo.join("grokmirror.repack"));
    let st = r.status_of("asked.git");
    assert_eq!(st["lastfullrepack"], today());
    assert_eq!(st["lastcheck"], today());
    assert!(st["nextcheck"].as_str().unwrap() > today().as_str());
    let packed = std::fs::read_to_string(repo.join("packed-refs")).unwrap();
    assert!(packed.contains("refs/heads/main"), "{packed}");
    assert_missing!(repo.join("refs/heads/main"));
}

#[test]
fn repos_gone_from_disk_leave_manifest_and_status() {
    let r = Replica::new("threads = 2", "");
    for name in ["a.git", "b.git", "sub/c.git"] {
        fixture::project(&r.repo(name), 3, 1_600_000_000);
    }
    r.manifest();
    let out = r.fsck(&["-f"]);
    assert!(out.status.success(), "{}", stderr(&out));
    for name in ["a.git", "b.git", "sub/c.git"] {
        assert_eq!(r.status_of(name)["lastcheck"], today(), "{name}");
    }
    std::fs::remove_dir_all(r.repo("b.git")).unwrap();
    let out = r.fsck(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest = support::read_manifest_json(&r.top.join("manifest.js.gz"));
    assert!(manifest.get("/b.git").is_none(), "{manifest}");
    assert!(manifest.get("/a.git").is_some());
    let st = r.status();
    assert!(st.get(r.repo("b.git").to_str().unwrap()).is_none(), "{st}");
    assert!(st.get(r.repo("sub/c.git").to_str().unwrap()).is_some());

    // Missing but locked (a grok-pull moving it aside to re-clone it):
    // left alone until the lock is gone.
    let c = r.repo("sub/c.git");
    let held = grokmirror::lock::acquire(
        &grokmirror::lock::repo_lock_path(&c),
        grokmirror::lock::Wait::Forever,
    )
    .unwrap();
    std::fs::remove_dir_all(&c).unwrap();
    let out = r.fsck(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest = support::read_manifest_json(&r.top.join("manifest.js.gz"));
    assert!(manifest.get("/sub/c.git").is_some(), "{manifest}");
    drop(held);
    let out = r.fsck(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest = support::read_manifest_json(&r.top.join("manifest.js.gz"));
    assert!(manifest.get("/sub/c.git").is_none(), "{manifest}");
}

#[test]
fn garbage_is_pruned_and_old_reflogs_expire() {
    let r = Replica::new("", "");
    let repo = fixture::project(&r.repo("messy.git"), 10, 1_600_000_000);
    // An interrupted fetch left a temporary pack behind, days ago.
    let stale = repo.join("objects/pack/tmp_pack_AbCdEf");
    std::fs::write(&stale, vec![7u8; 4096]).unwrap();
    replica::age(&stale, 3);
    r.manifest();
    let out = r.fsck(&[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("garbage: /messy.git"), "{err}");
    assert_missing!(stale, "git prune removes stale temporary files");

    // Reflogs: an entry from long ago goes, a recent one stays.
    let logged = fixture::project(&r.repo("logged.git"), 5, 1_600_000_000);
    git(
        Some(&logged),
        &["config", "core.logAllRefUpdates", "always"],
    );
    let tip = git(Some(&logged), &["rev-parse", "main"]);
    let first = git(Some(&logged), &["rev-list", "--max-parents=0", "main"]);
    support::run_ok(
        support::git_cmd(Some(&logged))
            .env("GIT_COMMITTER_DATE", "@1000000000 +0000")
            .args(["update-ref", "-m", "long ago", "refs/heads/side", &first]),
    );
    git(
        Some(&logged),
        &["update-ref", "-m", "today", "refs/heads/side", &tip],
    );
    assert_eq!(
        git(Some(&logged), &["reflog", "show", "refs/heads/side"])
            .lines()
            .count(),
        2
    );
    r.manifest();
    let out = r.fsck(&["--repack-all-full"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("reflog: expiring reflogs"), "{err}");
    let reflog = git(Some(&logged), &["reflog", "show", "refs/heads/side"]);
    assert_eq!(reflog.lines().count(), 1, "{reflog}");
}
