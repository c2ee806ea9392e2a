//! Where the remote manifest comes from: files, gzip by magic, manifest_command, netrc and proxies.

use super::*;

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
