//! grok-bundle end to end: real repositories, the reference grok-bundle,
//! real `git bundle verify` / `git clone`, and `git clone --bundle-uri`
//! from a loopback HTTP server with the rest fetched from `git daemon`.

use crate::support;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::daemon::GitDaemon;
use crate::support::http::HttpServer;
use crate::support::mirror::{no_proxy, output_text, Origin};
use crate::support::{fixture, git, git_cmd, grok, oracle, run, show_ref, stderr_of, write_config};

/// An origin with three repositories (one with `.git` inside a directory
/// name, which grokmirror also strips) and its manifest; returns it and a
/// config naming it.
fn origin(dir: &Path) -> (Origin, PathBuf) {
    let o = Origin::new(dir);
    o.project("/pub/a/x.git", 30, 1_600_000_000);
    fixture::commits(&o.path("/pub/a/x.git"), "next", 3, 1_600_100_000);
    fixture::tag(
        &o.path("/pub/a/x.git"),
        "bundle-test",
        "refs/heads/main",
        Some("annotated"),
    );
    o.project("/foo.github/y.git", 5, 1_600_000_000);
    o.project("/pub/z.git", 2, 1_600_000_000);
    o.manifest();
    let conf = write_config(
        dir,
        "bundle.conf",
        &format!(
            "[core]\ntoplevel = {}\nmanifest = {}\nlog = {}\n",
            o.root.display(),
            o.manifest.display(),
            dir.join("bundle.log").display()
        ),
    );
    (o, conf)
}

fn ours(conf: &Path, out: &Path, extra: &[&str]) -> Output {
    run(grok("grok-bundle")
        .arg("-v")
        .arg("-c")
        .arg(conf)
        .arg("-o")
        .arg(out)
        .args(extra))
}

fn reference(conf: &Path, out: &Path, extra: &[&str]) -> Output {
    run(oracle("grok-bundle")
        .arg("-v")
        .arg("-c")
        .arg(conf)
        .arg("-o")
        .arg(out)
        .args(extra))
}

fn ok(out: Output) -> Output {
    assert_success!(out);
    out
}

/// Every file under `root`, relative.
fn files(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, acc: &mut BTreeSet<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, acc);
            } else {
                acc.insert(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut acc = BTreeSet::new();
    walk(root, root, &mut acc);
    acc
}

/// `git bundle verify` in a scratch repository must pass.
fn verify(bundle: &Path, scratch: &Path) {
    if !scratch.exists() {
        fixture::init_bare(scratch);
    }
    let out = run(git_cmd(Some(scratch))
        .arg("bundle")
        .arg("verify")
        .arg(bundle));
    assert!(
        out.status.success(),
        "{}: {}",
        bundle.display(),
        output_text(&out)
    );
}

/// Refs of a bare clone of `bundle`.
fn clone_refs(bundle: &Path, dst: &Path) -> String {
    git(
        None,
        &[
            "clone",
            "-q",
            "--bare",
            bundle.to_str().unwrap(),
            dst.to_str().unwrap(),
        ],
    );
    show_ref(dst)
}

/// A repository's branches and their tips, one per line.
fn branches(repo: &Path) -> String {
    git(
        Some(repo),
        &[
            "for-each-ref",
            "--format=%(objectname) %(refname)",
            "refs/heads/",
        ],
    )
}

/// The object ids of each pack of a repository.
fn pack_contents(repo: &Path) -> Vec<BTreeSet<String>> {
    std::fs::read_dir(repo.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "idx"))
        .map(|idx| {
            let data = std::fs::read(&idx).unwrap();
            support::git_stdin(Some(repo), &["show-index"], &data)
                .lines()
                .filter_map(|l| l.split_whitespace().nth(1).map(String::from))
                .collect()
        })
        .collect()
}

/// (inode, mtime in ns) of a file: a rewrite by rename changes the inode.
fn identity(path: &Path) -> (u64, i64) {
    let m = std::fs::metadata(path).unwrap();
    (m.ino(), m.mtime() * 1_000_000_000 + m.mtime_nsec())
}

#[test]
fn same_layout_as_the_reference_and_both_bundles_clone_the_same_refs() {
    let tmp = tempfile::tempdir().unwrap();
    let (o, conf) = origin(tmp.path());
    let ref_out = tmp.path().join("ref-out");
    let our_out = tmp.path().join("our-out");
    ok(reference(&conf, &ref_out, &[]));
    ok(ours(&conf, &our_out, &[]));

    let ref_files = files(&ref_out);
    let our_files = files(&our_out);
    let expected: BTreeSet<String> = ["pub/a/x", "foohub/y", "pub/z"]
        .iter()
        .flat_map(|d| [format!("{d}/clone.bundle"), format!("{d}/.fingerprint")])
        .collect();
    assert_eq!(ref_files, expected, "the reference's layout");
    let lists: BTreeSet<String> = ["pub/a/x", "foohub/y", "pub/z"]
        .iter()
        .map(|d| format!("{d}/bundle-list"))
        .collect();
    let ours_without_lists: BTreeSet<String> = our_files.difference(&lists).cloned().collect();
    assert_eq!(ours_without_lists, expected, "our layout");
    assert!(lists.is_subset(&our_files), "bundle lists: {our_files:?}");

    for (dir, key) in [
        ("pub/a/x", "/pub/a/x.git"),
        ("foohub/y", "/foo.github/y.git"),
        ("pub/z", "/pub/z.git"),
    ] {
        let rb = ref_out.join(dir).join("clone.bundle");
        let ob = our_out.join(dir).join("clone.bundle");
        verify(&rb, &tmp.path().join("scratch.git"));
        verify(&ob, &tmp.path().join("scratch.git"));
        let name = dir.replace('/', "_");
        let from_ref = clone_refs(&rb, &tmp.path().join(format!("ref-{name}.git")));
        let from_ours = clone_refs(&ob, &tmp.path().join(format!("our-{name}.git")));
        assert_eq!(from_ref, from_ours, "{dir}");
        // `--branches HEAD`: every branch of the origin, no tags.
        let branches = git(
            Some(&o.path(key)),
            &[
                "for-each-ref",
                "--format=%(objectname) %(refname)",
                "refs/heads/",
            ],
        );
        assert_eq!(from_ours.trim(), branches.trim(), "{dir}");
        assert_eq!(
            std::fs::read_to_string(ref_out.join(dir).join(".fingerprint")).unwrap(),
            std::fs::read_to_string(our_out.join(dir).join(".fingerprint")).unwrap(),
            "{dir}: same fingerprint file"
        );
    }

    // Each program takes the other's bundles as up to date.
    let before: Vec<_> = expected
        .iter()
        .filter(|f| f.ends_with("clone.bundle"))
        .map(|f| identity(&ref_out.join(f)))
        .collect();
    let out = ok(ours(&conf, &ref_out, &[]));
    assert_stderr_contains!(out, "  skipped: pub/a/x.git (unchanged)");
    let after: Vec<_> = expected
        .iter()
        .filter(|f| f.ends_with("clone.bundle"))
        .map(|f| identity(&ref_out.join(f)))
        .collect();
    assert_eq!(
        before, after,
        "ours rewrote the reference's up-to-date bundles"
    );
    assert!(ref_out.join("pub/a/x/bundle-list").is_file());
    let out = ok(reference(&conf, &our_out, &[]));
    assert_stderr_contains!(out, "  skipped: pub/a/x.git (unchanged)");
}

/// The names in a bundle directory.
fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// A bundle list's `uri = creationToken` pairs.
fn list_entries(list: &Path) -> Vec<(String, u64)> {
    let text = git(None, &["config", "-f", list.to_str().unwrap(), "--list"]);
    let mut uris = Vec::new();
    let mut tokens = Vec::new();
    for line in text.lines() {
        if let Some((key, value)) = line.split_once('=') {
            if key.ends_with(".uri") {
                uris.push(value.to_string());
            } else if key.ends_with(".creationtoken") {
                tokens.push(value.parse().unwrap());
            }
        }
    }
    assert_eq!(uris.len(), tokens.len(), "{text}");
    uris.into_iter().zip(tokens).collect()
}

#[test]
fn an_unchanged_repository_keeps_its_bundle_and_a_changed_one_gets_an_increment() {
    let tmp = tempfile::tempdir().unwrap();
    let (o, conf) = origin(tmp.path());
    let out = tmp.path().join("out");
    ok(ours(&conf, &out, &[]));
    let dir = out.join("pub/a/x");
    let x = dir.join("clone.bundle");
    let inc = dir.join("incremental.bundle");
    let y = out.join("foohub/y/clone.bundle");
    let (x0, y0) = (identity(&x), identity(&y));
    let entries = list_entries(&dir.join("bundle-list"));
    assert_eq!(
        entries,
        [("clone.bundle".to_string(), (x0.1 / 1_000_000_000) as u64)]
    );

    let second = ok(ours(&conf, &out, &[]));
    assert_eq!(identity(&x), x0, "{}", output_text(&second));
    assert_eq!(identity(&y), y0);
    assert!(stderr_of(&second).contains(" bundles: 0 generated, 3 unchanged"));

    // A push without a manifest update: the refs are what count, not the
    // stored grokmirror.fingerprint. The full bundle stays as it is (a CDN
    // keeps its copy); what is new goes into the increment.
    let repo = o.path("/pub/a/x.git");
    let tip = fixture::commits(&repo, "main", 1, 1_700_000_000);
    let third = ok(ours(&conf, &out, &[]));
    assert_eq!(identity(&x), x0, "{}", output_text(&third));
    assert_eq!(identity(&y), y0, "{}", output_text(&third));
    assert!(stderr_of(&third).contains(&format!(" generate: {} (on clone.bundle)", inc.display())));
    let heads = git(None, &["bundle", "list-heads", inc.to_str().unwrap()]);
    assert!(heads.contains(&format!("{tip} refs/heads/main")), "{heads}");
    assert!(std::fs::metadata(&inc).unwrap().len() * 4 <= std::fs::metadata(&x).unwrap().len());
    // The increment applies on top of the full bundle, and both give the
    // origin's branches.
    let scratch = tmp.path().join("scratch.git");
    clone_refs(&x, &scratch);
    let out_v = run(git_cmd(Some(&scratch)).args(["bundle", "verify", inc.to_str().unwrap()]));
    assert_success!(out_v);
    git(
        Some(&scratch),
        &[
            "fetch",
            "-q",
            inc.to_str().unwrap(),
            "refs/heads/*:refs/heads/*",
        ],
    );
    assert_eq!(git(Some(&scratch), &["rev-parse", "refs/heads/main"]), tip);
    let entries = list_entries(&dir.join("bundle-list"));
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(
        entries[0],
        ("clone.bundle".to_string(), (x0.1 / 1_000_000_000) as u64)
    );
    assert_eq!(entries[1].0, "incremental.bundle");
    assert!(entries[1].1 > entries[0].1);
    assert_eq!(
        std::fs::read_to_string(dir.join(".fingerprint")).unwrap(),
        support::show_ref_sha1(&repo)
    );
    assert_eq!(
        names_in(&dir),
        [
            ".fingerprint",
            "bundle-list",
            "clone.bundle",
            "incremental.bundle"
        ]
        .map(String::from)
        .into()
    );

    // Once what is new outgrows a quarter of the full bundle, the full one
    // is rebuilt and the increment goes.
    let tip = fixture::commits(&repo, "main", 40, 1_700_100_000);
    let fourth = ok(ours(&conf, &out, &[]));
    assert_ne!(identity(&x), x0, "{}", output_text(&fourth));
    assert!(stderr_of(&fourth).contains(&format!(" generate: {}", x.display())));
    let heads = git(None, &["bundle", "list-heads", x.to_str().unwrap()]);
    assert!(heads.contains(&format!("{tip} refs/heads/main")), "{heads}");
    assert_eq!(
        names_in(&dir),
        [".fingerprint", "bundle-list", "clone.bundle"]
            .map(String::from)
            .into()
    );
    assert_eq!(list_entries(&dir.join("bundle-list")).len(), 1);
}

#[test]
fn an_increment_the_reference_made_stale_is_dropped() {
    let tmp = tempfile::tempdir().unwrap();
    let (o, conf) = origin(tmp.path());
    let out = tmp.path().join("out");
    let repo = o.path("/pub/a/x.git");
    ok(ours(&conf, &out, &[]));
    fixture::commits(&repo, "main", 1, 1_700_000_000);
    ok(ours(&conf, &out, &[]));
    let dir = out.join("pub/a/x");
    assert!(dir.join("incremental.bundle").is_file());
    // The reference takes a turn after another push: it rebuilds
    // clone.bundle in full and knows nothing of the increment.
    let tip = fixture::commits(&repo, "next", 1, 1_700_100_000);
    o.manifest();
    ok(reference(&conf, &out, &[]));
    let heads = git(
        None,
        &[
            "bundle",
            "list-heads",
            dir.join("clone.bundle").to_str().unwrap(),
        ],
    );
    assert!(heads.contains(&tip), "{heads}");
    let again = ok(ours(&conf, &out, &[]));
    assert!(
        stderr_of(&again).contains("  skipped: pub/a/x.git (unchanged)"),
        "{}",
        output_text(&again)
    );
    assert!(
        !dir.join("incremental.bundle").exists(),
        "{}",
        output_text(&again)
    );
    assert_eq!(list_entries(&dir.join("bundle-list")).len(), 1);
}

#[test]
fn repositories_over_maxsize_are_skipped_with_the_references_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (_o, conf) = origin(tmp.path());
    let our_out = tmp.path().join("our-out");
    let ref_out = tmp.path().join("ref-out");
    let mine = ok(ours(&conf, &our_out, &["-s", "0", "-i", "/pub/*"]));
    let theirs = ok(reference(&conf, &ref_out, &["-s", "0", "-i", "/pub/*"]));
    let skips = |o: &Output| -> BTreeSet<String> {
        stderr_of(o)
            .lines()
            .filter(|l| l.contains("skipped:"))
            .map(String::from)
            .collect()
    };
    let our_skips = skips(&mine);
    assert_eq!(our_skips.len(), 2, "{}", output_text(&mine));
    assert!(
        our_skips
            .iter()
            .all(|l| l.starts_with("  skipped: pub/") && l.ends_with(" > 0)")),
        "{our_skips:?}"
    );
    assert_eq!(our_skips, skips(&theirs), "{}", output_text(&theirs));
    assert!(!files(&our_out).iter().any(|f| f.ends_with("clone.bundle")));
    // foo.github/y.git does not match -i, and is not bundled either.
    assert_missing!(our_out.join("foohub"));

    // Under the limit, the same repositories are bundled.
    ok(ours(&conf, &our_out, &["-s", "1", "-i", "/pub/*"]));
    assert!(our_out.join("pub/a/x/clone.bundle").is_file());
    assert!(our_out.join("pub/z/clone.bundle").is_file());
    assert_missing!(our_out.join("foohub"));
}

#[test]
fn git_clone_with_bundle_uri_takes_the_objects_from_the_bundle() {
    let (major, minor) = support::git_version();
    assert!(
        (major, minor) >= (2, 47),
        "relative URIs in bundle lists need a newer git than {major}.{minor}; \
         run the tests with git 2.47 or later on PATH"
    );
    let tmp = tempfile::tempdir().unwrap();
    let (o, conf) = origin(tmp.path());
    let www = tmp.path().join("www");
    ok(ours(&conf, &www, &[]));
    let repo = o.path("/pub/a/x.git");
    let bundled_tip = git(Some(&repo), &["rev-parse", "refs/heads/main"]);
    let bundled_tip = bundled_tip.trim();
    // The origin moves on after the bundle was made: the server sends
    // only what is new.
    let new_tip = fixture::commits(&repo, "main", 2, 1_700_000_000);
    // What the bundle does not hold: the new commits and the annotated
    // tag (bundles hold `--branches HEAD`, a clone also fetches tags).
    let bundle_heads = git(
        None,
        &[
            "bundle",
            "list-heads",
            www.join("pub/a/x/clone.bundle").to_str().unwrap(),
        ],
    );
    let mut rev_list = vec!["rev-list", "--objects", "--all", "--not"];
    rev_list.extend(
        bundle_heads
            .lines()
            .filter_map(|l| l.split_whitespace().next()),
    );
    let new_objects = git(Some(&repo), &rev_list).lines().count();
    assert!(git(Some(&repo), &rev_list).contains(&new_tip));
    let all_objects = git(Some(&repo), &["rev-list", "--objects", "--all"])
        .lines()
        .count();
    assert!(new_objects > 0 && new_objects * 10 < all_objects);

    let http = HttpServer::serve(&www);
    let daemon = GitDaemon::serve(&o.root);
    let dst = tmp.path().join("clone.git");
    let trace = tmp.path().join("packet.trace");
    let mut clone = git_cmd(None);
    no_proxy(&mut clone);
    clone
        .env("GIT_TRACE_PACKET", &trace)
        .arg("clone")
        .arg("--bare")
        .arg(format!("--bundle-uri={}", http.url("pub/a/x/bundle-list")))
        .arg(format!("{}/pub/a/x.git", daemon.site()))
        .arg(&dst);
    let out = run(&mut clone);
    assert_success!(out);
    assert!(
        !stderr_of(&out).contains("failed to download bundle"),
        "{}",
        output_text(&out)
    );

    let served: Vec<(String, u16)> = http
        .requests()
        .into_iter()
        .map(|r| (r.path, r.status))
        .collect();
    assert!(
        served.contains(&("/pub/a/x/bundle-list".to_string(), 200))
            && served.contains(&("/pub/a/x/clone.bundle".to_string(), 200)),
        "{served:?}"
    );
    // Same branches as the origin.
    assert_eq!(branches(&dst), branches(&repo));
    // The bundle's tip was offered as a have, and the git server sent only
    // the objects the bundle did not hold.
    let packets = std::fs::read_to_string(&trace).unwrap();
    assert!(
        packets.contains(&format!("have {bundled_tip}")),
        "no have line for the bundle's tip in:\n{packets}"
    );
    // A clone keeps what the server sent as its own pack, beside the one
    // unbundled from clone.bundle: the pack holding the new tip must hold
    // exactly the objects the bundle lacked.
    let packs = pack_contents(&dst);
    assert_eq!(packs.len(), 2, "one pack from the bundle, one from git://");
    let fetched = packs.iter().find(|p| p.contains(&new_tip)).unwrap();
    assert!(!fetched.contains(bundled_tip));
    let expected: BTreeSet<String> = git(Some(&repo), &rev_list)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    assert!(
        expected.is_subset(fetched),
        "the pack from git:// lacks objects: {expected:?} vs {fetched:?}"
    );
    // Completing a thin pack, git copies the delta bases it already had
    // (from the bundle) into the pack: anything else in it is an object
    // the server sent although the bundle held it.
    let from_bundle = packs.iter().find(|p| !p.contains(&new_tip)).unwrap();
    let extra: BTreeSet<&String> = fetched.difference(&expected).collect();
    assert!(
        extra.iter().all(|o| from_bundle.contains(*o)) && extra.len() < new_objects,
        "unexpected objects in the fetched pack: {extra:?}"
    );
    assert!(
        fetched.len() * 5 < all_objects,
        "{} of {all_objects}",
        fetched.len()
    );
    let total: usize = packs.iter().map(BTreeSet::len).sum();
    assert!(total >= all_objects);
}

#[test]
fn a_failed_bundle_keeps_the_previous_one_and_exits_1() {
    let tmp = tempfile::tempdir().unwrap();
    let (o, conf) = origin(tmp.path());
    let out = tmp.path().join("out");
    ok(ours(&conf, &out, &["-i", "/pub/z.git"]));
    let z = out.join("pub/z/clone.bundle");
    let before = (identity(&z), std::fs::read(&z).unwrap());
    let fpr = std::fs::read_to_string(out.join("pub/z/.fingerprint")).unwrap();
    fixture::commits(&o.path("/pub/z.git"), "main", 1, 1_700_000_000);
    // Nothing matches: git refuses to write an empty bundle.
    let failed = run(grok("grok-bundle")
        .arg("-c")
        .arg(&conf)
        .arg("-o")
        .arg(&out)
        .args(["-i", "/pub/z.git", "-r", "refs/heads/no-such-branch"]));
    assert_eq!(failed.status.code(), Some(1), "{}", output_text(&failed));
    let err = stderr_of(&failed);
    assert!(
        err.contains("git bundle create failed for") && err.contains("pub/z.git"),
        "{err}"
    );
    assert_eq!((identity(&z), std::fs::read(&z).unwrap()), before);
    assert_eq!(
        std::fs::read_to_string(out.join("pub/z/.fingerprint")).unwrap(),
        fpr
    );
    let names: BTreeSet<String> = std::fs::read_dir(out.join("pub/z"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "temp file left: {names:?}");
    // The next good run rebuilds it.
    ok(ours(&conf, &out, &["-i", "/pub/z.git"]));
    assert_ne!(identity(&z), before.0);
}

#[test]
fn git_clone_with_bundle_uri_takes_the_full_bundle_and_the_increment() {
    let (major, minor) = support::git_version();
    assert!(
        (major, minor) >= (2, 47),
        "bundle lists with creation tokens and relative URIs need a newer git than \
         {major}.{minor}; run the tests with git 2.47 or later on PATH"
    );
    let tmp = tempfile::tempdir().unwrap();
    let (o, conf) = origin(tmp.path());
    let www = tmp.path().join("www");
    ok(ours(&conf, &www, &[]));
    let repo = o.path("/pub/a/x.git");
    let inc_tip = fixture::commits(&repo, "main", 2, 1_700_000_000);
    ok(ours(&conf, &www, &[]));
    let dir = www.join("pub/a/x");
    assert!(dir.join("incremental.bundle").is_file());
    // Everything the two bundles hold; the server owes only the rest (the
    // annotated tag: bundles hold `--branches HEAD`).
    let mut heads: Vec<String> = Vec::new();
    for b in ["clone.bundle", "incremental.bundle"] {
        let listed = git(
            None,
            &["bundle", "list-heads", dir.join(b).to_str().unwrap()],
        );
        heads.extend(
            listed
                .lines()
                .filter_map(|l| l.split_whitespace().next().map(String::from)),
        );
    }
    let mut rev_list = vec!["rev-list", "--objects", "--all", "--not"];
    rev_list.extend(heads.iter().map(String::as_str));
    let owed: BTreeSet<String> = git(Some(&repo), &rev_list)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    let all_objects = git(Some(&repo), &["rev-list", "--objects", "--all"])
        .lines()
        .count();

    let http = HttpServer::serve(&www);
    let daemon = GitDaemon::serve(&o.root);
    let dst = tmp.path().join("clone.git");
    let mut clone = git_cmd(None);
    no_proxy(&mut clone);
    clone
        .arg("clone")
        .arg("--bare")
        .arg(format!("--bundle-uri={}", http.url("pub/a/x/bundle-list")))
        .arg(format!("{}/pub/a/x.git", daemon.site()))
        .arg(&dst);
    let out = run(&mut clone);
    assert_success!(out);
    let served: Vec<(String, u16)> = http
        .requests()
        .into_iter()
        .map(|r| (r.path, r.status))
        .collect();
    for file in ["bundle-list", "clone.bundle", "incremental.bundle"] {
        assert!(
            served.contains(&(format!("/pub/a/x/{file}"), 200)),
            "{file} not fetched: {served:?}\n{}",
            output_text(&out)
        );
    }
    assert_eq!(branches(&dst), branches(&repo));
    assert!(branches(&dst).contains(&inc_tip));
    // One pack per bundle, one from git://; the latter holds what the
    // bundles did not (and, completing a thin pack, bases they had).
    let packs = pack_contents(&dst);
    assert_eq!(packs.len(), 3, "two bundles and the server's pack");
    let from_server: Vec<&BTreeSet<String>> = packs
        .iter()
        .filter(|p| !heads.iter().any(|h| p.contains(h)))
        .collect();
    assert_eq!(from_server.len(), 1, "{packs:?}");
    let from_server = from_server[0];
    assert!(owed.is_subset(from_server), "{owed:?} vs {from_server:?}");
    assert!(
        from_server.len() * 10 < all_objects,
        "the server sent {} of {all_objects} objects",
        from_server.len()
    );
}
