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

#[test]
fn file_sources_gzip_by_magic_and_manifest_command() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/one.git", 2, 1_600_000_000);
    origin.project("/two.git", 2, 1_600_000_000);
    origin.manifest();
    // Gzip content under a plain name, plain JSON under a .gz name.
    let gz_as_plain = dir.join("served.js");
    std::fs::copy(&origin.manifest, &gz_as_plain).unwrap();
    // Settled: a manifest read within the second it was modified is read
    // again next time (see tests/slow/concurrency.rs).
    mirror::bump_mtime(&gz_as_plain, -10);
    let plain_as_gz = dir.join("served-plain.js.gz");
    std::fs::write(
        &plain_as_gz,
        read_manifest_json(&origin.manifest).to_string(),
    )
    .unwrap();

    let site = origin.local_site();
    let replica = Replica::new(
        &dir,
        "replica",
        &site,
        &format!("file://{}", gz_as_plain.display()),
        "",
    );
    let out = replica.pull(&[]);
    assert_success!(out);
    for key in ["/one.git", "/two.git"] {
        assert_mirrored(&origin.path(key), &replica.path(key), "Grokmirror");
    }
    // Unchanged mtime: nothing to do; -n checks anyway.
    let out = replica.pull(&[]);
    assert_stderr_contains!(out, "nothing to do");
    let out = replica.pull(&["-n"]);
    assert_stderr_contains!(out, "0 cloned, 0 updated, 2 unchanged");

    let replica2 = Replica::new(
        &dir,
        "replica2",
        &site,
        &format!("file://{}", plain_as_gz.display()),
        "",
    );
    let out = replica2.pull(&[]);
    assert_success!(out);
    assert_mirrored(
        &origin.path("/one.git"),
        &replica2.path("/one.git"),
        "Grokmirror",
    );

    // manifest_command: exit 0 with the manifest, 127 unchanged, 1 error;
    // --force with -n.
    let args_log = dir.join("cmd-args");
    let exit_file = dir.join("cmd-exit");
    let json = dir.join("cmd.json");
    std::fs::write(&json, read_manifest_json(&origin.manifest).to_string()).unwrap();
    let cmd = script(
        &dir.join("get-manifest"),
        &format!(
            "echo \"args:$*\" >> {args}\ncode=$(cat {exit} 2>/dev/null || echo 0)\nif [ \"$code\" = 0 ]; then cat {json}; fi\nif [ \"$code\" = 1 ]; then echo 'origin is down'; fi\nexit $code",
            args = args_log.display(),
            exit = exit_file.display(),
            json = json.display()
        ),
    );
    let replica3 = Replica::with_remote(
        &dir,
        "replica3",
        &site,
        "unused",
        "",
        &format!("manifest_command = {}", cmd.display()),
    );
    let out = replica3.pull(&[]);
    assert_success!(out);
    assert_mirrored(
        &origin.path("/two.git"),
        &replica3.path("/two.git"),
        "Grokmirror",
    );
    std::fs::write(&exit_file, "127").unwrap();
    let out = replica3.pull(&["-n"]);
    assert_success!(out);
    assert_stderr_contains!(out, "nothing to do");
    std::fs::write(&exit_file, "1").unwrap();
    let out = replica3.pull(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert_stderr_contains!(out, "origin is down");
    assert_eq!(lines(&args_log), vec!["args:", "args:", "args:--force"]);
    assert_missing!(
        replica3.top.join(".manifest.js.gz.remote"),
        "no state file for manifest_command"
    );
}

#[test]
fn reclone_ffonly_and_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/ff.git", 3, 1_600_000_000);
    origin.project("/plain.git", 3, 1_600_000_000);
    origin.manifest();
    let site = origin.local_site();
    let url = origin.file_manifest_url();
    let replica = Replica::new(&dir, "replica", &site, &url, "ffonly = /ff.git\n");
    let out = replica.pull(&[]);
    assert_success!(out);
    assert_eq!(
        git(
            Some(&replica.path("/ff.git")),
            &["config", "--get-all", "remote._grokmirror.fetch"]
        ),
        "refs/*:refs/*"
    );

    // grok-fsck asks for a re-clone of a damaged repository.
    let plain = replica.path("/plain.git");
    std::fs::write(plain.join("grokmirror.reclone"), "fatal: bad tree object\n").unwrap();
    for pack in std::fs::read_dir(plain.join("objects/pack"))
        .unwrap()
        .flatten()
    {
        std::fs::remove_file(pack.path()).unwrap();
    }
    for d in std::fs::read_dir(plain.join("objects")).unwrap().flatten() {
        if d.file_name().len() == 2 {
            std::fs::remove_dir_all(d.path()).unwrap();
        }
    }
    let out = replica.pull(&["-n"]);
    assert_success!(out);
    assert_stderr_contains!(out, "reclone: /plain.git");
    assert_missing!(plain.join("grokmirror.reclone"));
    assert_mirrored(&origin.path("/plain.git"), &plain, "Grokmirror");
    support::run_ok(support::git_cmd(Some(&plain)).args(["fsck", "--no-dangling"]));

    // A forced push at the origin: the ffonly repo refuses it (and says so),
    // the other one follows.
    for key in ["/ff.git", "/plain.git"] {
        let o = origin.path(key);
        let base = git(Some(&o), &["rev-parse", "refs/heads/main~2"]);
        git(Some(&o), &["update-ref", "refs/heads/main", &base]);
        fixture::commits(&o, "main", 1, 1_700_000_000);
    }
    let ff_before = show_ref(&replica.path("/ff.git"));
    origin.manifest();
    mirror::bump_mtime(&origin.manifest, 5);
    let out = replica.pull(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert_stderr_contains!(out, "failed: /ff.git");
    assert_eq!(show_ref(&replica.path("/ff.git")), ff_before);
    assert_mirrored(&origin.path("/plain.git"), &plain, "Grokmirror");
    let local = read_manifest_json(&replica.manifest());
    assert_eq!(
        local["/ff.git"]["fingerprint"],
        show_ref_sha1(&replica.path("/ff.git")),
        "the failed repo keeps its old entry"
    );

    // Usage and config errors exit 2 with one line naming the problem.
    std::fs::write(
        &replica.config,
        std::fs::read_to_string(&replica.config).unwrap() + "refresh = 0\n",
    )
    .unwrap();
    let out = replica.pull(&["-o"]);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert_stderr_contains!(out, "[pull] refresh");
    let bad = support::write_config(
        &dir,
        "bad.conf",
        &format!(
            "[core]\ntoplevel = {}\n[remote]\nmanifest = {url}\n",
            replica.top.display()
        ),
    );
    let out = support::run(support::grok("grok-pull").arg("-c").arg(&bad));
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert_stderr_contains!(out, "[remote] site");
    let out = support::run(support::grok("grok-pull").arg("-v"));
    assert_eq!(out.status.code(), Some(2), "-c is required");
}

#[test]
fn http_credentials_from_netrc_and_proxy_from_the_environment() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/a.git", 1, 1_600_000_000);
    origin.manifest();
    let http = HttpServer::serve(&origin.root);
    let netrc = dir.join("netrc");
    std::fs::write(&netrc, "machine 127.0.0.1 login mirror password s3cret\n").unwrap();
    let site = origin.local_site();

    // Credentials for the manifest host come from $NETRC.
    let replica = Replica::new(&dir, "replica", &site, &http.url("manifest.js.gz"), "");
    let mut cmd = support::grok("grok-pull");
    mirror::no_proxy(&mut cmd);
    cmd.env("NETRC", &netrc).arg("-c").arg(&replica.config);
    let out = support::run(&mut cmd);
    assert_success!(out);
    let auth = http.requests()[0].authorization.clone();
    assert_eq!(
        auth.as_deref(),
        Some("Basic bWlycm9yOnMzY3JldA=="),
        "mirror:s3cret"
    );
    assert_mirrored(
        &origin.path("/a.git"),
        &replica.path("/a.git"),
        "Grokmirror",
    );

    // http_proxy from the environment: the origin's name never resolves,
    // only the proxy (our server, on 127.0.0.1) is reached.
    http.clear_requests();
    let replica2 = Replica::new(
        &dir,
        "replica2",
        &site,
        "http://origin.invalid/manifest.js.gz",
        "",
    );
    let mut cmd = support::grok("grok-pull");
    mirror::no_proxy(&mut cmd);
    cmd.env_remove("NO_PROXY")
        .env("http_proxy", http.url(""))
        .env("NETRC", dir.join("no-such-netrc"))
        .arg("-c")
        .arg(&replica2.config);
    let out = support::run(&mut cmd);
    assert_success!(out);
    let reqs = http.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/manifest.js.gz");
    assert_mirrored(
        &origin.path("/a.git"),
        &replica2.path("/a.git"),
        "Grokmirror",
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
fn purge_spares_what_it_must_and_projects_list_options() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/pub/a.git", 1, 1_600_000_000);
    origin.project("/pub/b.git", 1, 1_600_000_000);
    std::os::unix::fs::symlink(origin.path("/pub/b.git"), origin.path("/pub/b-alias.git")).unwrap();
    origin.manifest();
    let site = origin.local_site();
    let replica = Replica::new(
        &dir,
        "replica",
        &site,
        &origin.file_manifest_url(),
        "nopurge = /local/keep*\nffonly = /local/ff.git\nprojectslist_trimtop = /pub/\nprojectslist_symlinks = yes\n",
    );
    // Local-only repositories: one others borrow from, one protected by
    // nopurge, one by ffonly, one plain (and a symlink to it).
    for key in [
        "/local/lender.git",
        "/local/keep.git",
        "/local/ff.git",
        "/local/gone.git",
    ] {
        fixture::project(&replica.path(key), 1, 1_600_000_000);
    }
    std::os::unix::fs::symlink(
        replica.path("/local/gone.git"),
        replica.path("/local/gone-link.git"),
    )
    .unwrap();
    let out = replica.pull(&[]);
    assert_success!(out);
    assert!(
        replica.path("/local/gone.git").is_dir(),
        "no purge unless asked"
    );
    // /pub/a.git borrows objects from the lender (as grok-fsck's object
    // sharing would arrange), then a purge run.
    let alternates = replica.path("/pub/a.git").join("objects/info/alternates");
    std::fs::write(
        &alternates,
        format!("{}/objects\n", replica.path("/local/lender.git").display()),
    )
    .unwrap();
    let out = replica.pull(&["-n", "-p", "--force-purge"]);
    assert_success!(out);
    let err = stderr(&out);
    assert!(
        err.contains("2 purged"),
        "the repository and the symlink to it: {}",
        output_text(&out)
    );
    assert!(std::fs::symlink_metadata(replica.path("/local/gone-link.git")).is_err());
    assert!(
        err.contains("Refusing to purge ffonly repo /local/ff.git"),
        "{}",
        output_text(&out)
    );
    assert!(
        err.contains("not purging /local/lender.git"),
        "{}",
        output_text(&out)
    );
    assert_missing!(replica.path("/local/gone.git"));
    for key in [
        "/local/lender.git",
        "/local/keep.git",
        "/local/ff.git",
        "/pub/a.git",
        "/pub/b.git",
    ] {
        assert!(replica.path(key).is_dir(), "{key} was purged");
    }
    assert_eq!(
        std::fs::read_link(replica.path("/pub/b-alias.git")).unwrap(),
        replica.path("/pub/b.git"),
        "symlinks in the manifest are never purged"
    );
    assert_eq!(
        std::fs::read_to_string(replica.top.join("projects.list")).unwrap(),
        "a.git\nb.git\nb-alias.git\n"
    );
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
