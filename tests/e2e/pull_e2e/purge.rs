//! Purging, re-cloning, ffonly and usage errors.

use super::*;

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
