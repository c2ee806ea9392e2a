//! Differential tests of grok-manifest against the reference grokmirror
//! 2.0.12 on a collection with every case that matters: nested paths, forks,
//! packed and loose refs, annotated tags, notes, odd ref names, an empty
//! repo, a non-bare repo, descriptions, owners, a detached HEAD, symlinks
//! (good and dangling), export-ok marks, ignore globs, ignored refs, and
//! (when git supports them) reftable and SHA-256 repositories.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::support::fixture::{commits, fork, init_bare, project, tag};
use crate::support::{git, git_version, grok, oracle, read_manifest_json, run_ok, show_ref_sha1};
use serde_json::Value;

const ODD_REF: &str = "refs/heads/we!rd#name+with=chars,(x)&'q'%$\u{e9}\u{1F980}";

struct Collection {
    top: PathBuf,
    /// Manifest keys of reftable repos (their HEAD is recorded differently).
    reftable: Vec<String>,
}

fn reftable_supported() -> bool {
    git_version() >= (2, 45)
}

/// Build the collection under `dir/top`.
fn build(dir: &Path) -> Collection {
    let top = dir.join("top");
    std::fs::create_dir_all(&top).unwrap();
    let t0 = 1_600_000_000;

    // A project with forks, packed refs, a loose branch, tags and notes.
    let linux = project(&top.join("pub/scm/linux/linux.git"), 5, t0);
    tag(&linux, "v1-annotated", "main", Some("release 1"));
    git(Some(&linux), &["pack-refs", "--all"]);
    commits(&linux, "loose-branch", 2, t0 + 10_000);
    git(Some(&linux), &["notes", "add", "-m", "a note", "main"]);
    std::fs::write(linux.join("description"), "The Linux kernel\n").unwrap();
    git(Some(&linux), &["config", "gitweb.owner", "Linus T"]);
    for (i, who) in ["alice", "bob", "carol"].iter().enumerate() {
        let f = fork(
            &linux,
            &top.join(format!("pub/scm/linux/forks/{who}/linux.git")),
        );
        commits(
            &f,
            &format!("{who}-work"),
            i + 1,
            t0 + 20_000 + i as i64 * 1000,
        );
    }

    // Odd ref names, a detached HEAD, an owner but the placeholder
    // description (left by git init).
    let odd = project(&top.join("misc/odd.git"), 2, t0 + 50_000);
    git(Some(&odd), &["update-ref", ODD_REF, "main"]);
    let head = git(Some(&odd), &["rev-parse", "main"]);
    git(Some(&odd), &["update-ref", "--no-deref", "HEAD", &head]);
    git(Some(&odd), &["config", "gitweb.owner", "Odd \u{d6}wner"]);

    // Only annotated tags (no ref points at a commit directly).
    let tags_only = init_bare(&top.join("misc/tags-only.git"));
    let c = commits(&tags_only, "tmp", 1, t0 + 60_000);
    tag(&tags_only, "only", &c, Some("the only ref"));
    git(Some(&tags_only), &["update-ref", "-d", "refs/heads/tmp"]);

    // Empty repo: left out of the manifest.
    init_bare(&top.join("misc/empty.git"));

    // A non-bare repository: its .git directory is what a walk finds.
    let work = top.join("misc/worktree");
    git(
        None,
        &[
            "init",
            "-q",
            "--initial-branch=main",
            work.to_str().unwrap(),
        ],
    );
    commits(&work.join(".git"), "main", 1, t0 + 70_000);

    // Symlinks: one to a repo, one dangling.
    std::os::unix::fs::symlink(&linux, top.join("pub/linux-link.git")).unwrap();
    std::os::unix::fs::symlink(top.join("pub/nowhere.git"), top.join("pub/dangling.git")).unwrap();

    // Some repos marked for export, for -c.
    for p in ["pub/scm/linux/linux.git", "misc/odd.git"] {
        std::fs::write(top.join(p).join("git-daemon-export-ok"), "").unwrap();
    }

    // A repo under a path to be ignored with -i.
    project(&top.join("testing/scratch.git"), 1, t0 + 80_000);

    // Gerrit-style meta refs for -r.
    let gerrit = project(&top.join("gerrit/project.git"), 2, t0 + 90_000);
    git(Some(&gerrit), &["update-ref", "refs/meta/config", "main"]);
    git(
        Some(&gerrit),
        &["update-ref", "refs/changes/01/1/1", "main"],
    );

    // SHA-256 object format.
    let sha256 = top.join("misc/sha256.git");
    git(
        None,
        &[
            "init",
            "-q",
            "--bare",
            "--object-format=sha256",
            "--initial-branch=main",
            sha256.to_str().unwrap(),
        ],
    );
    commits(&sha256, "main", 2, t0 + 100_000);

    let mut reftable = Vec::new();
    if reftable_supported() {
        let rt = top.join("misc/reftable.git");
        git(
            None,
            &[
                "init",
                "-q",
                "--bare",
                "--ref-format=reftable",
                "--initial-branch=main",
                rt.to_str().unwrap(),
            ],
        );
        commits(&rt, "main", 3, t0 + 110_000);
        commits(&rt, "side", 1, t0 + 120_000);
        reftable.push("/misc/reftable.git".to_string());
    } else {
        eprintln!(
            "NOTE: git {:?} on PATH predates reftable (2.45); the reftable case is not exercised by this run",
            git_version()
        );
    }
    Collection { top, reftable }
}

/// Run the reference and ours with the same arguments, each on its own
/// manifest file, and return both manifests.
fn both(coll: &Collection, manifests: &Path, extra: &[&str]) -> (Value, Value) {
    std::fs::create_dir_all(manifests).unwrap();
    let theirs_path = manifests.join("theirs.js.gz");
    let ours_path = manifests.join("ours.js.gz");
    let top = coll.top.to_str().unwrap();
    run_ok(
        oracle("grok-manifest")
            .args(["-m", theirs_path.to_str().unwrap(), "-t", top])
            .args(extra),
    );
    run_ok(
        grok("grok-manifest")
            .args(["-m", ours_path.to_str().unwrap(), "-t", top])
            .args(extra),
    );
    (
        read_manifest_json(&ours_path),
        read_manifest_json(&theirs_path),
    )
}

/// Compare two manifests key by key. `clock_keys` are entries whose
/// `modified` is the clock (`-n`); symlink lists are compared as sets.
fn assert_same(coll: &Collection, ours: &Value, theirs: &Value, clock_keys: &[&str]) {
    let ours = ours.as_object().expect("our manifest is an object");
    let theirs = theirs.as_object().expect("their manifest is an object");
    let ok: BTreeSet<&String> = ours.keys().collect();
    let tk: BTreeSet<&String> = theirs.keys().collect();
    assert_eq!(ok, tk, "the two manifests list different repositories");
    for (key, o) in ours {
        let t = &theirs[key];
        let o = o.as_object().unwrap();
        let t = t.as_object().unwrap();
        let fields: BTreeSet<&String> = o.keys().chain(t.keys()).collect();
        for field in fields {
            let (ov, tv) = (o.get(field), t.get(field));
            match field.as_str() {
                // With no ref pointing at a commit, "modified" is the clock.
                "modified"
                    if clock_keys.contains(&key.as_str()) || key == "/misc/tags-only.git" =>
                {
                    assert!(
                        ov.and_then(Value::as_i64).is_some(),
                        "{key}: modified missing"
                    );
                }
                "head" if coll.reftable.contains(key) => {
                    assert_eq!(tv.and_then(Value::as_str), Some("ref: refs/heads/.invalid"));
                    assert_eq!(
                        ov.and_then(Value::as_str),
                        Some("ref: refs/heads/main"),
                        "{key}: real HEAD"
                    );
                }
                "symlinks" => {
                    let set = |v: Option<&Value>| -> BTreeSet<String> {
                        v.and_then(Value::as_array)
                            .map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect())
                            .unwrap_or_default()
                    };
                    assert_eq!(set(ov), set(tv), "{key}: symlinks differ");
                }
                _ => assert_eq!(ov, tv, "{key}: field {field} differs"),
            }
        }
    }
}

/// Every fingerprint equals `git show-ref | sha1sum` of its repo.
fn assert_fingerprints_are_show_ref_sha1(coll: &Collection, manifest: &Value) {
    for (key, entry) in manifest.as_object().unwrap() {
        let repo = coll.top.join(key.trim_start_matches('/'));
        assert_eq!(
            entry["fingerprint"].as_str().unwrap(),
            show_ref_sha1(&repo),
            "{key}: fingerprint is not sha1(git show-ref)"
        );
        assert_eq!(
            std::fs::read_to_string(repo.join("grokmirror.fingerprint")).unwrap(),
            entry["fingerprint"].as_str().unwrap(),
            "{key}: grokmirror.fingerprint file"
        );
    }
}

#[test]
fn full_walk_matches_reference() {
    let dir = tempfile::tempdir().unwrap();
    let coll = build(dir.path());
    let (ours, theirs) = both(&coll, &dir.path().join("m"), &["-y"]);
    assert_same(&coll, &ours, &theirs, &[]);
    assert_fingerprints_are_show_ref_sha1(&coll, &ours);

    let m = ours.as_object().unwrap();
    // Sanity of the fixture itself, so this test can't pass vacuously.
    assert!(m.contains_key("/pub/scm/linux/forks/carol/linux.git"));
    assert!(m.contains_key("/misc/worktree/.git"));
    assert!(m.contains_key("/misc/sha256.git"));
    assert!(
        !m.contains_key("/misc/empty.git"),
        "empty repos are left out"
    );
    assert_eq!(
        m["/pub/scm/linux/linux.git"]["symlinks"],
        serde_json::json!(["/pub/linux-link.git"])
    );
    assert_eq!(
        m["/pub/scm/linux/linux.git"]["description"],
        "The Linux kernel"
    );
    assert_eq!(m["/pub/scm/linux/linux.git"]["owner"], "Linus T");
    assert!(m["/misc/odd.git"].get("description").is_none());
    assert_eq!(
        m["/misc/odd.git"]["head"].as_str().unwrap().len(),
        40,
        "detached HEAD"
    );
    assert_eq!(
        m["/misc/sha256.git"]["fingerprint"].as_str().unwrap().len(),
        40
    );
    for key in &coll.reftable {
        assert!(m.contains_key(key));
    }
    assert_eq!(m.len(), if coll.reftable.is_empty() { 10 } else { 11 });
}

#[test]
fn export_ok_ignore_paths_and_ignore_refs_match_reference() {
    let dir = tempfile::tempdir().unwrap();
    let coll = build(dir.path());
    let ignore = format!("{}/testing/*", coll.top.display());

    let (ours, theirs) = both(&coll, &dir.path().join("c"), &["-c"]);
    assert_same(&coll, &ours, &theirs, &[]);
    let keys: BTreeSet<&String> = ours.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 2, "only the two exported repos: {keys:?}");

    let (ours, theirs) = both(&coll, &dir.path().join("i"), &["-i", &ignore]);
    assert_same(&coll, &ours, &theirs, &[]);
    assert!(ours.get("/testing/scratch.git").is_none());

    let (ours, theirs) = both(
        &coll,
        &dir.path().join("r"),
        &["-r", "refs/meta/*", "-r", "refs/changes/*"],
    );
    assert_same(&coll, &ours, &theirs, &[]);
    let gerrit = coll.top.join("gerrit/project.git");
    assert_ne!(
        ours["/gerrit/project.git"]["fingerprint"].as_str().unwrap(),
        show_ref_sha1(&gerrit)
    );
}

#[test]
fn hook_mode_updates_match_reference() {
    let dir = tempfile::tempdir().unwrap();
    let coll = build(dir.path());
    let m = dir.path().join("h");
    both(&coll, &m, &[]);

    // Change two repos, then run each tool in hook mode on them, with and
    // without -n.
    let linux = coll.top.join("pub/scm/linux/linux.git");
    let bob = coll.top.join("pub/scm/linux/forks/bob/linux.git");
    commits(&linux, "main", 1, 1_700_000_000);
    commits(&bob, "new-branch", 1, 1_700_000_100);
    git(Some(&bob), &["config", "gitweb.owner", "Bob"]);
    let paths = [linux.to_str().unwrap(), bob.to_str().unwrap()];
    let (ours, theirs) = both(&coll, &m, &paths);
    assert_same(&coll, &ours, &theirs, &[]);
    // linux.git's notes commit was made "now"; bob's newest commit is ours.
    assert_eq!(
        ours["/pub/scm/linux/forks/bob/linux.git"]["modified"],
        1_700_000_100
    );
    assert_eq!(ours["/pub/scm/linux/forks/bob/linux.git"]["owner"], "Bob");
    assert_fingerprints_are_show_ref_sha1(&coll, &ours);

    commits(&linux, "main", 1, 1_700_001_000);
    let mut args = vec!["-n"];
    args.extend(paths);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (ours, theirs) = both(&coll, &m, &args);
    let clock = [
        "/pub/scm/linux/linux.git",
        "/pub/scm/linux/forks/bob/linux.git",
    ];
    assert_same(&coll, &ours, &theirs, &clock);
    assert!(
        ours["/pub/scm/linux/linux.git"]["modified"]
            .as_i64()
            .unwrap()
            >= before
    );

    // A symlink named in hook mode is recorded on its target.
    let link = coll.top.join("misc/odd-link.git");
    std::os::unix::fs::symlink(coll.top.join("misc/odd.git"), &link).unwrap();
    let (ours, theirs) = both(&coll, &m, &[link.to_str().unwrap()]);
    assert_same(&coll, &ours, &theirs, &clock);
    assert_eq!(
        ours["/misc/odd.git"]["symlinks"],
        serde_json::json!(["/misc/odd-link.git"])
    );
}

#[test]
fn remove_matches_reference() {
    let dir = tempfile::tempdir().unwrap();
    let coll = build(dir.path());
    let m = dir.path().join("x");
    both(&coll, &m, &[]);
    let odd = coll.top.join("misc/odd.git");
    let link = coll.top.join("pub/linux-link.git");
    let (ours, theirs) = both(
        &coll,
        &m,
        &["-x", odd.to_str().unwrap(), link.to_str().unwrap()],
    );
    assert_same(&coll, &ours, &theirs, &[]);
    assert!(ours.get("/misc/odd.git").is_none());
    assert!(ours["/pub/scm/linux/linux.git"].get("symlinks").is_none());
}

/// An origin whose manifest our hooks keep as indexed gzip members (a few
/// real repositories among 3,000 entries): the reference's grok-pull reads
/// it over HTTP and mirrors what it includes, and so does ours.
#[test]
fn the_references_pull_reads_a_large_manifest_our_hooks_changed_in_place() {
    use crate::support::http::HttpServer;
    use crate::support::mirror::{Origin, Replica};
    use crate::support::show_ref;
    use grokmirror::formats::gzip_members;
    use grokmirror::formats::manifest::{Manifest, RepoEntry};

    let dir = tempfile::tempdir().unwrap();
    let origin = Origin::new(dir.path());
    origin.project("/real/a.git", 3, 1_600_000_000);
    origin.project("/real/b.git", 3, 1_600_000_100);
    origin.manifest();
    let mut m = Manifest::read(&origin.manifest).unwrap().unwrap();
    for i in 0..3000 {
        let entry = RepoEntry {
            fingerprint: Some(format!("{i:040x}")),
            modified: 1_600_000_000 + i,
            ..RepoEntry::default()
        };
        m.repos.insert(format!("/elsewhere/{i:05}.git"), entry);
    }
    m.write(&origin.manifest, false).unwrap();
    commits(&origin.path("/real/b.git"), "main", 2, 1_700_000_000);
    let before = std::fs::read(&origin.manifest).unwrap();
    origin.manifest_hook(&["/real/b.git"]);
    let after = std::fs::read(&origin.manifest).unwrap();
    let (old, new) = (
        gzip_members::members(&before).unwrap(),
        gzip_members::members(&after).unwrap(),
    );
    assert!(new.len() >= 3, "{} members", new.len());
    assert_eq!(
        before[old[0].range.clone()],
        after[new[0].range.clone()],
        "the hook rewrote a member other than its own"
    );

    let http = HttpServer::serve(&origin.root);
    let manifest_url = http.url("manifest.js.gz");
    for (name, reference) in [("theirs", true), ("ours", false)] {
        let replica = Replica::new(
            dir.path(),
            name,
            &origin.local_site(),
            &manifest_url,
            "include = /real/*",
        );
        let out = if reference {
            replica.pull_oracle(&[])
        } else {
            replica.pull(&[])
        };
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for key in ["/real/a.git", "/real/b.git"] {
            assert_eq!(
                show_ref(&replica.path(key)),
                show_ref(&origin.path(key)),
                "{name}: {key}"
            );
        }
        assert!(!replica.path("/elsewhere").exists(), "{name}: not included");
    }
}
