//! grok-pull end to end: a real origin (bare repos, manifest by our
//! grok-manifest) served by a real HTTP server and `git daemon` on
//! 127.0.0.1, or by `file://` and a plain path; the replica checked against
//! the origin repository by repository.

use crate::support;

use crate::support::stderr_of as stderr;

use std::path::Path;

use crate::support::fixture;
use crate::support::http::HttpServer;
use crate::support::mirror::{self, assert_mirrored, output_text, repos_under, Origin, Replica};
use crate::support::{git, read_manifest_json, script, show_ref, show_ref_sha1};

mod purge;
mod sources;

fn lines(path: &Path) -> Vec<String> {
    let mut l: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    l.sort();
    l
}

#[test]
fn mirror_over_http_and_git_daemon_then_update_and_purge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/pub/a.git", 3, 1_600_000_000);
    origin.describe("/pub/a.git", "Project A", Some("Alice Example"));
    let b = origin.project("/pub/b.git", 2, 1_600_100_000);
    fixture::commits(&b, "dev", 2, 1_600_200_000);
    let tip = git(Some(&b), &["rev-parse", "refs/heads/main"]);
    fixture::tag(&b, "v2", &tip, Some("release two"));
    git(Some(&b), &["symbolic-ref", "HEAD", "refs/heads/dev"]);
    origin.describe("/pub/b.git", "Project \"B\" ünïcode", None);
    origin.project("/pub/sub/c.git", 1, 1_600_300_000);
    origin.project("/pub/d.git", 1, 1_600_400_000);
    std::os::unix::fs::symlink(origin.path("/pub/d.git"), origin.path("/pub/d-link.git")).unwrap();
    origin.project("/private/x.git", 1, 1_600_500_000);
    origin.manifest();

    let http = HttpServer::serve(&origin.root);
    let daemon = support::daemon::GitDaemon::serve(&origin.root);
    let hooks = dir.join("hooks");
    std::fs::create_dir_all(&hooks).unwrap();
    let update_hook = script(
        &hooks.join("update.sh"),
        &format!("echo \"$1\" >> {}/updated", hooks.display()),
    );
    let clone_hook = script(
        &hooks.join("clone.sh"),
        &format!("cat >> {}/cloned", hooks.display()),
    );
    let work_hook = script(
        &hooks.join("work.sh"),
        &format!("echo work >> {}/work", hooks.display()),
    );
    let replica = Replica::new(
        &dir,
        "replica",
        &daemon.site(),
        &http.url("manifest.js.gz"),
        &format!(
            "exclude = /private/*\ndefault_owner = Mirror Owner\npost_update_hook = {}\npost_clone_complete_hook = {}\npost_work_complete_hook = {}\n",
            update_hook.display(),
            clone_hook.display(),
            work_hook.display()
        ),
    );
    // Settled (not modified within the second it is read), so the state
    // file records its Last-Modified as is.
    origin.age_manifest(-10);

    // First run: everything included is cloned.
    let out = replica.pull(&[]);
    assert_success!(out);
    assert_stderr_contains!(out, "4 cloned, 0 updated, 0 unchanged, 0 purged, 0 failed");
    for key in ["/pub/a.git", "/pub/b.git", "/pub/sub/c.git", "/pub/d.git"] {
        let r = replica.path(key);
        assert_mirrored(&origin.path(key), &r, "Mirror Owner");
        assert_eq!(
            std::fs::read_to_string(r.join("grokmirror.fingerprint")).unwrap(),
            show_ref_sha1(&r)
        );
        assert!(r.join("info/web/last-modified").is_file());
        assert_eq!(
            std::fs::read_link(r.join("FETCH_HEAD")).unwrap(),
            Path::new("/dev/null")
        );
        assert_eq!(git(Some(&r), &["config", "gc.auto"]), "0");
        assert_eq!(
            git(Some(&r), &["config", "remote._grokmirror.url"]),
            format!("{}{key}", daemon.site())
        );
        assert_eq!(
            git(
                Some(&r),
                &["config", "--get-all", "remote._grokmirror.fetch"]
            ),
            "+refs/*:refs/*"
        );
        assert!(
            r.join("packed-refs").is_file(),
            "first clone packs its refs"
        );
        let samples = std::fs::read_dir(r.join("hooks"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(samples, 0, "sample hooks are removed");
    }
    assert_missing!(
        replica.path("/private/x.git"),
        "excluded repos are never cloned"
    );
    let link = replica.path("/pub/d-link.git");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        replica.path("/pub/d.git")
    );
    assert_eq!(
        repos_under(&replica.top),
        vec!["/pub/a.git", "/pub/b.git", "/pub/d.git", "/pub/sub/c.git"],
        "nothing else looks like a repository (no staging leftovers)"
    );

    // The local manifest records what was mirrored, with the origin's data.
    let remote = read_manifest_json(&origin.manifest);
    let local = read_manifest_json(&replica.manifest());
    let local_keys = support::json_keys(&local);
    assert_eq!(
        local_keys,
        vec!["/pub/a.git", "/pub/b.git", "/pub/d.git", "/pub/sub/c.git"]
    );
    for (key, entry) in local.as_object().unwrap() {
        assert_eq!(entry, &remote[key], "local manifest entry of {key}");
        let ts = std::fs::read_to_string(replica.path(key).join("grokmirror.timestamp")).unwrap();
        assert_eq!(ts, entry["modified"].to_string());
    }
    assert_eq!(
        std::fs::read_to_string(replica.top.join("projects.list")).unwrap(),
        "pub/a.git\npub/b.git\npub/d.git\npub/sub/c.git\n"
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(replica.top.join(".manifest.js.gz.remote")).unwrap())
            .unwrap();
    let mtime = std::fs::metadata(&origin.manifest)
        .unwrap()
        .modified()
        .unwrap();
    let mtime = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(state["source"], http.url("manifest.js.gz"));
    assert_eq!(state["last-fetched"], mtime);
    let cfg_mtime = std::fs::metadata(&replica.config)
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(
        state["config-last-modified"],
        cfg_mtime
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    );

    // Hooks: one post_update per clone, the clone batch on stdin, the work hook once.
    let updated = lines(&hooks.join("updated"));
    let expected: Vec<String> = ["/pub/a.git", "/pub/b.git", "/pub/d.git", "/pub/sub/c.git"]
        .iter()
        .map(|k| replica.path(k).display().to_string())
        .collect();
    assert_eq!(updated, expected);
    assert_eq!(lines(&hooks.join("cloned")), expected);
    assert_eq!(lines(&hooks.join("work")), vec!["work"]);

    // Second run: the server says 304 to our If-Modified-Since.
    http.clear_requests();
    let out = replica.pull(&[]);
    assert_success!(out);
    let reqs = http.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].status, 304);
    assert_eq!(
        reqs[0].if_modified_since.as_deref(),
        Some(
            httpdate::fmt_http_date(std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime))
                .as_str()
        )
    );
    assert_eq!(
        lines(&hooks.join("work")),
        vec!["work"],
        "no work, no work hook"
    );

    // A push at the origin, its hook updates the manifest, the replica follows.
    fixture::commits(&origin.path("/pub/a.git"), "main", 2, 1_700_000_000);
    git(
        Some(&origin.path("/pub/b.git")),
        &["update-ref", "-d", "refs/heads/main"],
    );
    git(
        Some(&origin.path("/pub/b.git")),
        &["update-ref", "-d", "refs/tags/v1"],
    );
    origin.manifest_hook(&["/pub/a.git", "/pub/b.git"]);
    origin.age_manifest(5);
    let out = replica.pull(&[]);
    assert_success!(out);
    assert_stderr_contains!(out, "0 cloned, 2 updated, 2 unchanged");
    assert_mirrored(
        &origin.path("/pub/a.git"),
        &replica.path("/pub/a.git"),
        "Mirror Owner",
    );
    assert_mirrored(
        &origin.path("/pub/b.git"),
        &replica.path("/pub/b.git"),
        "Mirror Owner",
    );
    assert!(
        !show_ref(&replica.path("/pub/b.git")).contains("refs/heads/main"),
        "deleted refs are pruned"
    );
    assert_eq!(lines(&hooks.join("updated")).len(), 6);
    let local = read_manifest_json(&replica.manifest());
    let remote = read_manifest_json(&origin.manifest);
    assert_eq!(
        local["/pub/a.git"]["fingerprint"],
        remote["/pub/a.git"]["fingerprint"]
    );

    // A repo deleted at the origin: purgeprotect refuses to drop 1 of 4
    // (25% >= 5%), --force-purge does it.
    std::fs::remove_dir_all(origin.path("/pub/sub/c.git")).unwrap();
    origin.manifest();
    origin.age_manifest(10);
    let out = replica.pull(&["-p"]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert_stderr_contains!(out, "Refusing to purge 1 repos");
    assert!(
        replica.path("/pub/sub/c.git").is_dir(),
        "refused purge deletes nothing"
    );
    let out = replica.pull(&["-p", "--force-purge"]);
    assert_success!(out);
    assert_stderr_contains!(out, "1 purged");
    assert_missing!(replica.path("/pub/sub/c.git"));
    let local = read_manifest_json(&replica.manifest());
    assert!(local.get("/pub/sub/c.git").is_none());
    assert_eq!(local.as_object().unwrap().len(), 3);
    assert_eq!(
        std::fs::read_to_string(replica.top.join("projects.list")).unwrap(),
        "pub/a.git\npub/b.git\npub/d.git\n"
    );
}

/// Wait for a child, failing (instead of hanging the suite) past a
/// generous deadline.
fn wait_bounded(child: &mut std::process::Child, secs: u64) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("grok-pull did not exit within {secs} s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn loose_objects_after_a_fetch_get_a_quick_repack() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    // 200 commits (600 objects): the clone keeps git's pack.
    let repo = origin.project("/big.git", 200, 1_600_000_000);
    origin.manifest();
    let site = origin.local_site();
    let replica = Replica::new(&dir, "replica", &site, &origin.file_manifest_url(), "");
    let out = replica.pull(&[]);
    assert_success!(out);
    // 30 more commits (90 objects) arrive loose: over 10% of the objects.
    fixture::commits(&repo, "main", 30, 1_700_000_000);
    origin.manifest();
    origin.age_manifest(5);
    let out = replica.pull(&[]);
    assert_success!(out);
    assert_stderr_contains!(out, "spa: /big.git (done: repack, pack-refs)");
    let counts = git(Some(&replica.path("/big.git")), &["count-objects", "-v"]);
    assert!(counts.contains("count: 0\n"), "{counts}");
    assert_mirrored(
        &origin.path("/big.git"),
        &replica.path("/big.git"),
        "Grokmirror",
    );
}

/// The long runs of this module: `scripts/test --quick` skips them
/// (`--skip slow::`).
mod slow {
    use super::*;

    #[test]
    fn exits_after_a_multiple_of_100_repos_and_writes_every_100() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(tmp.path()).unwrap();
        let origin = Origin::new(&dir);
        for i in 0..100 {
            origin.project(&format!("/batch1/r{i:03}.git"), 1, 1_600_000_000 + i);
        }
        origin.manifest();
        let site = origin.local_site();
        let replica = Replica::new(&dir, "replica", &site, &origin.file_manifest_url(), "");
        let log = dir.join("replica.log");
        let pull = || {
            let mut cmd = support::grok("grok-pull");
            mirror::no_proxy(&mut cmd);
            cmd.arg("-c").arg(&replica.config);
            let mut child = cmd.spawn().unwrap();
            wait_bounded(&mut child, 300)
        };
        // The reference never exits here: 100 finished repositories.
        assert!(
            pull().success(),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text.matches("(100 entries)").count(), 1, "{text}");
        assert!(text.contains("100 cloned, 0 updated"), "{text}");
        assert_eq!(
            read_manifest_json(&replica.manifest())
                .as_object()
                .unwrap()
                .len(),
            100
        );

        // 101 more: the local manifest is written at 100 finished and at the end.
        for i in 0..101 {
            origin.project(&format!("/batch2/r{i:03}.git"), 1, 1_600_000_000 + i);
        }
        origin.manifest();
        origin.age_manifest(5);
        let before = text.len();
        assert!(
            pull().success(),
            "{}",
            std::fs::read_to_string(&log).unwrap()
        );
        let text = std::fs::read_to_string(&log).unwrap()[before..].to_string();
        let first = text
            .find("(200 entries)")
            .expect("a write after 100 repositories");
        let last = text.find("(201 entries)").expect("a write at the end");
        assert!(first < last, "{text}");
        assert_eq!(
            read_manifest_json(&replica.manifest())
                .as_object()
                .unwrap()
                .len(),
            201
        );
        assert_mirrored(
            &origin.path("/batch2/r100.git"),
            &replica.path("/batch2/r100.git"),
            "Grokmirror",
        );
    }
}
