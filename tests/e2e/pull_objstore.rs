//! grok-pull and object storage (SPEC §1.10): forks named in the origin's
//! manifest are cloned straight into their fork group's object storage, so
//! each project's shared history is stored once; private forks borrow
//! without giving; an existing sibling or a preload bundle seeds a new
//! object storage; updates reach it too. The result is what the reference
//! grok-pull builds, and what grok-fsck (ours and the reference's) leaves
//! alone.

use crate::support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::forks::{self, Spec, Tree};
use crate::support::http::HttpServer;
use crate::support::mirror::{assert_mirrored, no_proxy, output_text};
use crate::support::replica::stderr;
use crate::support::{git, grok, oracle, run};

fn spec() -> Spec {
    Spec {
        projects: 2,
        forks: 8,
        private_every: 4,
        chain: true,
        unrelated: true,
        base_commits: 25,
    }
}

/// An origin whose grok-fsck put the forks into object storage and whose
/// manifest names the fork groups.
fn origin(fsck: &str) -> (Tree, forks::Collection) {
    let origin = Tree::new("", fsck);
    let c = forks::build(&origin.top, &spec());
    origin.manifest();
    let out = origin.fsck(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    // The hook's next run records every member's group.
    origin.manifest();
    (origin, c)
}

/// A replica of `origin` under `dir/name`.
struct Mirror {
    top: PathBuf,
    config: PathBuf,
}

impl Mirror {
    fn new(dir: &Path, name: &str, origin: &Tree, core: &str, remote: &str) -> Mirror {
        let top = dir.join(name);
        std::fs::create_dir_all(&top).unwrap();
        let top = std::fs::canonicalize(&top).unwrap();
        let config = dir.join(format!("{name}.conf"));
        std::fs::write(
            &config,
            format!(
                "[core]\ntoplevel = {top}\nmanifest = ${{toplevel}}/manifest.js.gz\nlog = {dir}/{name}.log\nprivate = */private/*\n{core}\n\
                 [remote]\nsite = {site}\nmanifest = file://{site}/manifest.js.gz\n{remote}\n\
                 [pull]\npull_threads = 2\n\
                 [fsck]\nstatusfile = ${{core:toplevel}}/fsck.status.js\nignore_errors = notice:\n    warning: disabling bitmap writing\n",
                top = top.display(),
                dir = dir.display(),
                site = origin.top.display(),
            ),
        )
        .unwrap();
        Mirror { top, config }
    }

    fn path(&self, key: &str) -> PathBuf {
        self.top.join(key.trim_start_matches('/'))
    }

    fn pull(&self) -> std::process::Output {
        let mut cmd = grok("grok-pull");
        no_proxy(&mut cmd);
        run(cmd.arg("-v").arg("-c").arg(&self.config))
    }

    fn pull_oracle(&self) -> std::process::Output {
        let mut cmd = oracle("grok-pull");
        no_proxy(&mut cmd);
        run(cmd.arg("-v").arg("-c").arg(&self.config))
    }

    fn fsck(&self, ours: bool) -> std::process::Output {
        let mut cmd = if ours {
            grok("grok-fsck")
        } else {
            oracle("grok-fsck")
        };
        run(cmd.arg("-v").arg("-c").arg(&self.config))
    }
}

/// Object ids a repository holds itself (not through alternates): its
/// loose objects and the contents of its pack indexes.
fn own_objects(repo: &Path) -> BTreeSet<String> {
    let objects = repo.join("objects");
    let mut found = BTreeSet::new();
    for fan in std::fs::read_dir(&objects).unwrap().flatten() {
        let name = fan.file_name().to_string_lossy().into_owned();
        if name.len() != 2 || !fan.path().is_dir() {
            continue;
        }
        for obj in std::fs::read_dir(fan.path()).unwrap().flatten() {
            found.insert(format!("{name}{}", obj.file_name().to_string_lossy()));
        }
    }
    if let Ok(packs) = std::fs::read_dir(objects.join("pack")) {
        for idx in packs.flatten().map(|e| e.path()) {
            if idx.extension().is_none_or(|x| x != "idx") {
                continue;
            }
            let data = std::fs::read(&idx).unwrap();
            let listed = support::git_stdin(None, &["show-index"], &data);
            for line in listed.lines() {
                found.insert(line.split_whitespace().nth(1).unwrap().to_string());
            }
        }
    }
    found
}

/// Every object reachable in a repository.
fn reachable(repo: &Path) -> BTreeSet<String> {
    git(
        Some(repo),
        &["rev-list", "--objects", "--no-object-names", "--all"],
    )
    .lines()
    .map(str::to_string)
    .collect()
}

/// How many times, across all repositories and object storage of a tree,
/// each object is stored.
fn copies(top: &Path) -> std::collections::BTreeMap<String, usize> {
    let mut repos: Vec<PathBuf> = support::mirror::repos_under(top)
        .into_iter()
        .map(|r| top.join(r.trim_start_matches('/')))
        .collect();
    repos.sort();
    repos.dedup();
    let mut count = std::collections::BTreeMap::new();
    for repo in repos {
        for oid in own_objects(&repo) {
            *count.entry(oid).or_insert(0) += 1;
        }
    }
    count
}

/// A new fork of a project the replica already has (standalone, from
/// before the origin grouped its forks): the existing sibling seeds the
/// new object storage and starts borrowing from it, and the new fork
/// only downloads what is new.
#[test]
fn an_existing_sibling_seeds_new_object_storage() {
    let origin = Tree::new("", "");
    let spec = Spec {
        projects: 1,
        forks: 3,
        private_every: 0,
        chain: false,
        unrelated: false,
        base_commits: 25,
    };
    forks::build(&origin.top, &spec);
    origin.manifest();
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let replica = Mirror::new(&dir, "replica", &origin, "", "");
    let out = replica.pull();
    assert_success!(out);
    assert_missing!(replica.top.join("objstore"));

    // The origin groups its forks, and gets a new one.
    let out = origin.fsck(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let new = origin.repo("/proj0/fork03.git");
    std::process::Command::new("cp")
        .arg("-a")
        .arg(origin.repo("/proj0/fork01.git"))
        .arg(&new)
        .status()
        .unwrap();
    support::fixture::commits(&new, "fresh", 2, 1_680_000_000);
    origin.manifest();
    let out = origin.fsck(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    origin.manifest();
    // A newer manifest than the one pulled (file:// mtimes count seconds).
    support::mirror::bump_mtime(&origin.top.join("manifest.js.gz"), 5);

    let out = replica.pull();
    let log = output_text(&out);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("reusing"), "{log}");
    let layout = forks::layout(&replica.top);
    assert_eq!(layout.stores.len(), 1, "{log}");
    let members = layout.stores.keys().next().unwrap();
    assert!(members.contains("proj0/base.git"), "{members:?}");
    assert!(members.contains("proj0/fork03.git"), "{members:?}");
    for key in ["/proj0/base.git", "/proj0/fork03.git"] {
        let rel = key.trim_start_matches('/');
        assert!(layout.borrows[rel].starts_with("objstore/"), "{key}: {log}");
        assert_mirrored(&origin.repo(key), &replica.path(key), "Grokmirror");
    }
    // The new fork keeps nothing the object storage has.
    let obst = replica
        .top
        .join("objstore")
        .join(&layout.stores.values().next().unwrap().name);
    let in_obst = own_objects(&obst);
    let own = own_objects(&replica.path("/proj0/fork03.git"));
    assert!(own.is_disjoint(&in_obst), "{own:?}");
    let bad = forks::fsck_all(&replica.top, false);
    assert!(bad.is_empty(), "{bad:#?}");
}

/// A new object storage is seeded from the origin's preload bundle
/// (`preload_bundle_url`, written by the origin's grok-fsck with
/// `preload_bundle_outdir`); a missing bundle only means a normal clone.
#[test]
fn preload_bundles_seed_new_object_storage() {
    let (origin, collection) = origin("preload_bundle_outdir = ${core:toplevel}/bundles");
    let bundles: Vec<String> = std::fs::read_dir(origin.top.join("bundles"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(bundles.len(), 2, "{bundles:?}");
    // One bundle goes missing: that group clones the usual way.
    std::fs::remove_file(origin.top.join("bundles").join(&bundles[0])).unwrap();
    let http = HttpServer::serve(&origin.top);
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let replica = Mirror::new(
        &dir,
        "replica",
        &origin,
        "",
        &format!("preload_bundle_url = {}", http.url("bundles/")),
    );
    let out = replica.pull();
    let log = output_text(&out);
    assert!(out.status.success(), "{log}");
    assert_eq!(log.matches("preloaded").count(), 1, "{log}");
    let asked: Vec<String> = http.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        asked.iter().filter(|p| p.ends_with(".bundle")).count(),
        2,
        "{asked:?}"
    );
    for key in &collection.keys {
        assert_mirrored(&origin.repo(key), &replica.path(key), "Grokmirror");
    }
    let bad = forks::fsck_all(&replica.top, false);
    assert!(bad.is_empty(), "{bad:#?}");
    let leftovers: Vec<_> = std::fs::read_dir(replica.top.join("objstore"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("bundle"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// The long runs of this module: `scripts/test --quick` skips them
/// (`--skip slow::`).
mod slow {
    use super::*;

    /// The reference grok-pull builds the same replica from the same origin:
    /// the same object storage (named after the origin's fork groups), the
    /// same members, remotes, virtual refs and member lists.
    #[test]
    fn replica_object_storage_is_what_the_reference_builds() {
        let (origin, _) = origin("");
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(tmp.path()).unwrap();
        let ours = Mirror::new(&dir, "ours", &origin, "", "");
        let theirs = Mirror::new(&dir, "theirs", &origin, "", "");
        let out = ours.pull();
        assert_success!(out);
        let out = theirs.pull_oracle();
        assert_success!(out);
        let a = forks::layout(&ours.top);
        let b = forks::layout(&theirs.top);
        let diff = a.diff(&b);
        assert!(diff.is_empty(), "{diff:#?}");
    }

    /// New commits in a fork reach its object storage with the update that
    /// fetches them (with the plumbing copy too).
    #[test]
    fn updates_reach_object_storage() {
        for core in ["", "objstore_uses_plumbing = yes"] {
            let (origin, _) = origin("");
            let tmp = tempfile::tempdir().unwrap();
            let dir = std::fs::canonicalize(tmp.path()).unwrap();
            let replica = Mirror::new(&dir, "replica", &origin, core, "");
            let out = replica.pull();
            assert_success!(out);
            let fork = origin.repo("/proj1/fork02.git");
            let tip = support::fixture::commits(&fork, "later", 3, 1_690_000_000);
            origin.manifest();
            support::mirror::bump_mtime(&origin.top.join("manifest.js.gz"), 5);
            let out = replica.pull();
            let log = output_text(&out);
            assert!(out.status.success(), "{log}");
            let layout = forks::layout(&replica.top);
            let (_, store) = layout
                .stores
                .iter()
                .find(|(m, _)| m.contains("proj1/fork02.git"))
                .unwrap();
            assert!(
                store.virtual_refs["proj1/fork02.git"].contains("heads/later"),
                "{core}: {log}"
            );
            let obst = replica.top.join("objstore").join(&store.name);
            assert!(support::replica::has_object(&obst, &tip));
            let bad = forks::fsck_all(&replica.top, false);
            assert!(bad.is_empty(), "{core}: {bad:#?}");
        }
    }

    /// A manifest with fork groups, pulled into an empty replica: every fork
    /// borrows from its group's object storage, every object of the
    /// collection is stored exactly once (cloning each fork on its own would
    /// store the shared history in every one), private forks' own objects
    /// stay out of object storage, and neither grok-fsck finds anything to
    /// rewire afterwards.
    #[test]
    fn forks_are_cloned_into_object_storage_and_shared_history_is_stored_once() {
        let (origin, collection) = origin("");
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(tmp.path()).unwrap();
        let replica = Mirror::new(&dir, "replica", &origin, "", "");
        let out = replica.pull();
        let log = output_text(&out);
        assert!(out.status.success(), "{log}");
        for key in &collection.keys {
            assert_mirrored(&origin.repo(key), &replica.path(key), "Grokmirror");
        }
        let layout = forks::layout(&replica.top);
        let origin_layout = forks::layout(&origin.top);
        // The same groups, under the origin's names.
        let names = |l: &forks::Layout| -> BTreeSet<(String, Vec<String>)> {
            l.stores
                .iter()
                .map(|(m, s)| (s.name.clone(), m.iter().cloned().collect()))
                .collect()
        };
        assert_eq!(names(&layout), names(&origin_layout), "{log}");
        for key in &collection.private {
            let rel = key.trim_start_matches('/');
            assert!(layout.borrows[rel].starts_with("objstore/"), "{key}: {log}");
        }
        for (key, objects) in &collection.private_objects {
            for oid in objects {
                assert!(!forks::in_any_objstore(&replica.top, oid), "{key}: {oid}");
            }
        }
        // Stored once: the union of what every origin repository reaches.
        let mut distinct = BTreeSet::new();
        let mut separately = 0;
        for key in &collection.keys {
            let r = reachable(&origin.repo(key));
            separately += r.len();
            distinct.extend(r);
        }
        let stored = copies(&replica.top);
        let twice: Vec<_> = stored.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "stored more than once: {twice:?}");
        let stored_objects: BTreeSet<String> = stored.keys().cloned().collect();
        assert_eq!(stored_objects, distinct);
        assert!(
            stored.len() * 3 < separately,
            "{} objects stored, {separately} when cloned separately",
            stored.len()
        );
        let bad = forks::fsck_all(&replica.top, false);
        assert!(bad.is_empty(), "{bad:#?}");

        // A fixed point for grok-fsck, ours and the reference's.
        for ours in [true, false] {
            let out = replica.fsck(ours);
            let log = stderr(&out);
            assert!(out.status.success(), "{log}");
            assert!(forks::rewiring(&log).is_empty(), "ours={ours}: {log}");
            // (grok-fsck lists private borrowers in grokmirror.objstore and
            // repacks the new object storage; the grouping stays.)
            let after = forks::layout(&replica.top);
            assert_eq!(names(&after), names(&layout), "ours={ours}");
            assert_eq!(after.borrows, layout.borrows, "ours={ours}");
        }
    }
}
