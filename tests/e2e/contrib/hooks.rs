//! The origin post-receive hook and the gitolite manifest command.

use super::*;

#[test]
fn post_receive_hook_updates_the_manifest_on_push() {
    let mode = std::fs::metadata(contrib("hooks/post-receive")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    assert!(
        mode.permissions().mode() & 0o111 != 0,
        "hook is not executable"
    );

    let origin = Origin::new(&["a/one.git", "b/two.git"]);
    let before = read_manifest_json(&origin.top.join("manifest.js.gz"));
    let old_modified = before["/a/one.git"]["modified"].as_i64().unwrap();
    assert_eq!(old_modified, 1_600_000_120);

    // New work on two branches, pushed to both repositories at once: the
    // two hooks race for the manifest and neither update may be lost.
    commits(&origin.source, "topic", 2, 1_600_001_000);
    let pushes: Vec<Output> = std::thread::scope(|s| {
        let h1 = s.spawn(|| origin.push("a/one.git", "topic", &origin.config));
        let h2 = s.spawn(|| origin.push("b/two.git", "topic", &origin.config));
        vec![h1.join().unwrap(), h2.join().unwrap()]
    });
    for out in &pushes {
        assert!(out.status.success(), "push failed:\n{}", output_text(out));
        assert!(
            !stderr_of(out).contains("grokmirror:"),
            "hook complained:\n{}",
            output_text(out)
        );
    }
    let after = read_manifest_json(&origin.top.join("manifest.js.gz"));
    for repo in ["a/one.git", "b/two.git"] {
        let entry = &after[format!("/{repo}")];
        assert_eq!(
            entry["fingerprint"],
            show_ref_sha1(&origin.top.join(repo)),
            "{repo}: manifest not updated by the hook"
        );
        assert_ne!(
            entry["fingerprint"],
            before[format!("/{repo}")]["fingerprint"]
        );
        // -n: "modified" is the time of the push, not of the commits.
        assert!(entry["modified"].as_i64().unwrap() > 1_700_000_000);
    }
    assert_eq!(after.as_object().unwrap().len(), 2);
}

#[test]
fn post_receive_hook_failure_keeps_the_push_and_says_why() {
    let origin = Origin::new(&["only.git"]);
    let before = read_manifest_json(&origin.top.join("manifest.js.gz"));
    commits(&origin.source, "main", 1, 1_600_002_000);
    let missing = origin.top.join("no-such.conf");
    let out = origin.push("only.git", "main", &missing);
    assert!(
        out.status.success(),
        "push must not fail:\n{}",
        output_text(&out)
    );
    let err = stderr_of(&out);
    assert!(
        err.contains("grokmirror: post-receive: config") && err.contains("no-such.conf"),
        "{err}"
    );
    // The ref moved, the manifest was left alone.
    assert_eq!(
        git(Some(&origin.top.join("only.git")), &["rev-parse", "main"]),
        git(Some(&origin.source), &["rev-parse", "main"])
    );
    assert_eq!(
        read_manifest_json(&origin.top.join("manifest.js.gz")),
        before
    );
}

#[test]
fn gitolite_manifest_command_speaks_the_protocol() {
    let origin = Origin::new(&["pub/project.git"]);
    let manifest = origin.top.join("manifest.js.gz");
    set_mtime(&manifest, 1_700_000_000);
    let tmp = tempfile::tempdir().unwrap();
    let expected = read_manifest_json(&manifest);

    // First call: the whole manifest, as JSON, exit 0.
    let out = gl_manifest(tmp.path(), &manifest, "mirror1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(got, expected);

    // Unchanged: exit 127 and nothing on stdout.
    let out = gl_manifest(tmp.path(), &manifest, "mirror1", &[]);
    assert_eq!(out.status.code(), Some(127), "{}", output_text(&out));
    assert!(out.stdout.is_empty());

    // --force: the manifest again.
    let out = gl_manifest(tmp.path(), &manifest, "mirror1", &["--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        expected
    );

    // The origin's manifest changes: the new one comes through.
    commits(&origin.source, "main", 1, 1_600_003_000);
    run_ok(support::git_cmd(Some(&origin.source)).args([
        "push",
        "-q",
        origin.top.join("pub/project.git").to_str().unwrap(),
        "main",
    ]));
    run_ok(grok("grok-manifest").arg("--cfgfile").arg(&origin.config));
    set_mtime(&manifest, 1_700_000_100);
    let out = gl_manifest(tmp.path(), &manifest, "mirror1", &[]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        got["/pub/project.git"]["fingerprint"],
        show_ref_sha1(&origin.top.join("pub/project.git"))
    );
    assert_ne!(got, expected);

    // Errors: exit 1 with the reason on stdout.
    let out = gl_manifest(tmp.path(), &manifest, "stranger", &["--force"]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("'stranger' may not read"));
    let out = gl_manifest(
        tmp.path(),
        &tmp.path().join("gone.js.gz"),
        "mirror1",
        &["--force"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("does not exist"));
    let out = run(Command::new(contrib("gitolite/grok-get-gl-manifest.sh"))
        .env("GROK_GL_REMOTE", "git@origin.invalid")
        .env("GROK_GL_SSH", "false")
        .env("GROK_GL_STATE", tmp.path().join("other.mtime")));
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("failed"));
}
