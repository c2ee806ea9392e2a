//! Interop with the reference grok-fsck (grokmirror 2.0.12): each reads the
//! other's status file without rescheduling anything, and a tree the
//! reference maintained (object storage included) is continued by ours
//! without losing an object, and handed back.

use crate::support;

use std::collections::BTreeMap;

use crate::support::fixture;
use crate::support::replica::{self, stderr, today, Replica};
use crate::support::show_ref;
use serde_json::Value;

/// Every object a repository holds itself.
fn all_objects(repo: &std::path::Path) -> std::collections::BTreeSet<String> {
    support::git(
        Some(repo),
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname)",
        ],
    )
    .lines()
    .map(str::to_string)
    .collect()
}

fn small_tree(r: &Replica, n: usize) {
    for i in 0..n {
        fixture::project(
            &r.repo(&format!("g{}/r{i}.git", i % 3)),
            3 + i,
            1_600_000_000 + i as i64 * 1000,
        );
    }
    r.manifest();
}

/// nextcheck, lastcheck and fingerprint of every entry.
fn schedule(st: &Value) -> BTreeMap<String, (Value, Value, Value)> {
    st.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            (
                k.clone(),
                (
                    v["nextcheck"].clone(),
                    v["lastcheck"].clone(),
                    v["fingerprint"].clone(),
                ),
            )
        })
        .collect()
}

#[test]
fn reference_status_is_continued_by_ours_without_rescheduling() {
    let r = Replica::new("frequency = 30", "");
    small_tree(&r, 12);
    let theirs = r.oracle_fsck(&[]);
    assert!(theirs.status.success(), "{}", stderr(&theirs));
    let before = schedule(&r.status());
    assert_eq!(before.len(), 12);

    let ours = r.fsck(&[]);
    let err = stderr(&ours);
    assert!(ours.status.success(), "{err}");
    assert!(!err.contains("added:"), "{err}");
    assert!(err.contains("No repos need attention"), "{err}");
    assert_eq!(schedule(&r.status()), before);
}

#[test]
fn our_status_is_continued_by_the_reference_without_rescheduling() {
    let r = Replica::new("frequency = 30", "");
    small_tree(&r, 12);
    let ours = r.fsck(&[]);
    assert!(ours.status.success(), "{}", stderr(&ours));
    let before = schedule(&r.status());
    assert_eq!(before.len(), 12);
    // New repos are spread over the period, not all due today.
    let distinct: std::collections::BTreeSet<_> =
        before.values().map(|v| v.0.to_string()).collect();
    assert!(distinct.len() > 1, "{before:?}");

    let theirs = r.oracle_fsck(&[]);
    let err = stderr(&theirs);
    assert!(theirs.status.success(), "{err}");
    assert!(!err.contains("added:"), "{err}");
    assert!(err.contains("No repos need attention"), "{err}");
    assert_eq!(schedule(&r.status()), before);
}

#[test]
fn a_tree_maintained_by_the_reference_is_continued_by_ours() {
    let r = Replica::new(
        "frequency = 30\nignore_errors = notice:\n    warning: disabling bitmap writing",
        "",
    );
    let base = fixture::project(&r.repo("pub/base.git"), 40, 1_600_000_000);
    for (i, name) in ["pub/fork1.git", "pub/fork2.git"].iter().enumerate() {
        let fork = fixture::fork(&base, &r.repo(name));
        fixture::commits(&fork, "work", 5 + i, 1_650_000_000);
    }
    fixture::project(&r.repo("solo.git"), 10, 1_610_000_000);
    r.manifest();

    // The reference moves the forks into object storage.
    let theirs = r.oracle_fsck(&["-f"]);
    assert!(theirs.status.success(), "{}", stderr(&theirs));
    let obst_dir = r.top.join("objstore");
    let obstrepos = crate::support::forks::objstore_repos(&obst_dir);
    assert_eq!(obstrepos.len(), 1, "{obstrepos:?}");
    let obst = &obstrepos[0];
    let names = ["pub/base.git", "pub/fork1.git", "pub/fork2.git", "solo.git"];
    let refs: Vec<String> = names.iter().map(|n| show_ref(&r.repo(n))).collect();
    assert!(r.repo("pub/fork1.git/objects/info/alternates").exists());
    let obst_objects = all_objects(obst);
    assert!(obst_objects.len() > 100, "{}", obst_objects.len());

    // Ours takes over: checks everything, then fully repacks everything.
    let ours = r.fsck(&["-f"]);
    let err = stderr(&ours);
    assert!(ours.status.success(), "{err}");
    assert!(!err.contains("added:"), "{err}");
    assert!(
        err.contains("checking connectivity"),
        "members get connectivity checks: {err}"
    );
    let ours = r.fsck(&["--repack-all-full"]);
    let err = stderr(&ours);
    assert!(ours.status.success(), "{err}");
    for (name, before) in names.iter().zip(&refs) {
        let repo = r.repo(name);
        assert_eq!(&show_ref(&repo), before, "{name}");
        assert!(replica::fsck_clean(&repo), "{name} lost objects:\n{err}");
    }
    assert!(replica::fsck_clean(obst));
    let st = r.status();
    let key = obst.to_string_lossy().into_owned();
    assert!(
        st.get(&key).is_some(),
        "object storage keeps its status entry: {st}"
    );
    assert_eq!(
        support::git(
            Some(obst),
            &["config", "--get", "extensions.preciousObjects"]
        ),
        "true"
    );
    // Object storage is repacked keeping everything.
    let now = all_objects(obst);
    let missing: Vec<_> = obst_objects.iter().filter(|o| !now.contains(*o)).collect();
    assert!(missing.is_empty(), "object storage lost {missing:?}");
    assert_eq!(r.status_of("solo.git")["lastcheck"], today());

    // And back to the reference, which finds nothing new.
    let theirs = r.oracle_fsck(&[]);
    let err = stderr(&theirs);
    assert!(theirs.status.success(), "{err}");
    assert!(!err.contains("added:"), "{err}");
    for (name, before) in names.iter().zip(&refs) {
        assert_eq!(&show_ref(&r.repo(name)), before, "{name}");
        assert!(replica::fsck_clean(&r.repo(name)), "{name}");
    }
}
