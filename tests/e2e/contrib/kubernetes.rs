//! The Kubernetes manifests and their consumer script.

use super::*;

#[test]
fn kubernetes_manifests_keep_a_single_writer() {
    let docs = k8s_docs();
    let config = find(&docs, "ConfigMap");
    let claim = find(&docs, "PersistentVolumeClaim");
    let writer = find(&docs, "StatefulSet");
    let job = find(&docs, "Job");
    let claim_name = claim["metadata"]["name"].as_str().unwrap();

    // The config is one our parser (and Python's) reads the same way.
    let conf_text = config["data"]["grokmirror.conf"]
        .as_str()
        .expect("grokmirror.conf key");
    assert_eq!(
        support::configparser::our_view(conf_text),
        support::configparser::python_view(conf_text)
    );
    let ini = grokmirror::config::ini::Ini::parse(conf_text).unwrap();
    let toplevel = ini.get("core", "toplevel").unwrap().unwrap();
    assert!(
        ini.get("pull", "refresh").unwrap().is_some(),
        "-o needs [pull] refresh"
    );

    // One writer, read-write, the volume at (or above) the configured top
    // level, at one path in every container (grok-snapshot hard-links
    // between the mirror and its snapshots: one mount).
    assert_eq!(writer["spec"]["replicas"].as_i64(), Some(1));
    let pod = &writer["spec"]["template"]["spec"];
    let mounts = mirror_mounts(pod, claim_name);
    assert!(!mounts.is_empty());
    let writer_path = mounts[0].2.clone();
    assert!(
        Path::new(&toplevel).starts_with(&writer_path),
        "{toplevel} is not on the volume mounted at {writer_path}"
    );
    for (vol_ro, mount_ro, path) in &mounts {
        assert!(
            !vol_ro && !mount_ro,
            "the writer must mount the mirror read-write"
        );
        assert_eq!(path, &writer_path);
    }
    let containers = pod["containers"].as_vec().unwrap();
    let snapshotter = containers
        .iter()
        .find(|c| c["name"].as_str() == Some("grok-snapshot"))
        .expect("a grok-snapshot container");
    let script = snapshotter["command"][2].as_str().unwrap();
    let snapshots = format!("{writer_path}/snapshots");
    assert!(script.contains(&format!("-o {snapshots}")), "{script}");
    assert!(
        !Path::new(&snapshots).starts_with(&toplevel),
        "snapshots go outside the top level"
    );
    let cmd: Vec<&str> = pod["containers"][0]["command"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(cmd[..2], ["grok-pull", "-o"]);

    // Consumers: read-only, at the same path (alternates are absolute).
    let pod = &job["spec"]["template"]["spec"];
    let mounts = mirror_mounts(pod, claim_name);
    assert!(!mounts.is_empty());
    for (vol_ro, mount_ro, path) in &mounts {
        assert!(
            *vol_ro && *mount_ro,
            "a consumer must mount the mirror read-only"
        );
        assert_eq!(
            path, &writer_path,
            "consumers mount it where the writer does"
        );
    }
    assert_eq!(
        pod["securityContext"]["runAsUser"],
        writer["spec"]["template"]["spec"]["securityContext"]["runAsUser"],
        "consumers run as the writer's uid (git's ownership check)"
    );
}

/// Run the consumer Job's script on this machine against a real mirror
/// (made by grok-pull's counterpart here: a bare repo whose objects live in
/// an object-storage repo through alternates, as forks on a replica do),
/// both with and without an upstream URL. The mirror must not change.
#[test]
fn kubernetes_consumer_script_clones_from_the_mirror() {
    let docs = k8s_docs();
    let job = find(&docs, "Job");
    let container = &job["spec"]["template"]["spec"]["containers"][0];
    let command: Vec<String> = container["command"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(command[..2], ["/bin/sh".to_string(), "-c".to_string()]);
    let script = &command[2];
    let env_names: Vec<&str> = container["env"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();

    let tmp = tempfile::tempdir().unwrap();
    let mirror = tmp.path().join("mirror");
    // An object-storage repo holding the history, and the mirrored repo
    // borrowing from it by absolute path.
    let objstore = init_bare(&mirror.join("objstore/group.git"));
    commits(&objstore, "main", 5, 1_600_000_000);
    let repo = init_bare(&mirror.join("pub/project.git"));
    std::fs::write(
        repo.join("objects/info/alternates"),
        format!("{}\n", objstore.join("objects").display()),
    )
    .unwrap();
    let tip = git(Some(&objstore), &["rev-parse", "main"]);
    git(Some(&repo), &["update-ref", "refs/heads/main", &tip]);
    let upstream = init_bare(&tmp.path().join("upstream.git"));
    run_ok(support::git_cmd(Some(&repo)).args(["push", "-q", upstream.to_str().unwrap(), "main"]));
    commits(&upstream, "main", 1, 1_600_100_000); // upstream is one commit ahead
    let snapshot = |dir: &Path| -> Vec<(PathBuf, u64, i64)> {
        let mut v = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let e = e.unwrap();
                let m = std::fs::symlink_metadata(e.path()).unwrap();
                if m.is_dir() {
                    stack.push(e.path());
                }
                use std::os::unix::fs::MetadataExt;
                v.push((
                    e.path(),
                    m.len(),
                    m.mtime_nsec() + m.mtime() * 1_000_000_000,
                ));
            }
        }
        v.sort();
        v
    };
    // A real snapshot, as the writer's grok-snapshot container takes it.
    let config = tmp.path().join("grokmirror.conf");
    std::fs::write(
        &config,
        format!("[core]\ntoplevel = {}\n", mirror.display()),
    )
    .unwrap();
    let snapshots = tmp.path().join("snapshots");
    let out = run(support::grok("grok-snapshot")
        .arg("-c")
        .arg(&config)
        .arg("-o")
        .arg(&snapshots)
        .arg("/pub/project.git"));
    assert_success!(out, "grok-snapshot");
    let taken = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let before = snapshot(&mirror);

    for (mode, upstream_url) in [
        ("reference", format!("file://{}", upstream.display())),
        ("shared", String::new()),
        ("snapshot", String::new()),
    ] {
        let checkout = tmp.path().join(format!("work-{mode}"));
        let mut cmd = Command::new("/bin/sh");
        cmd.arg("-c")
            .arg(script)
            .env("MIRROR_TOPLEVEL", &mirror)
            .env("REPO", "/pub/project.git")
            .env("UPSTREAM_URL", &upstream_url)
            .env("CHECKOUT", &checkout)
            .env(
                "USE_SNAPSHOT",
                if mode == "snapshot" { "yes" } else { "no" },
            )
            .env("SNAPSHOTS", &snapshots)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null());
        for name in &env_names {
            assert!(
                [
                    "MIRROR_TOPLEVEL",
                    "REPO",
                    "UPSTREAM_URL",
                    "CHECKOUT",
                    "HOME",
                    "USE_SNAPSHOT",
                    "SNAPSHOTS"
                ]
                .contains(name),
                "the test does not set {name}"
            );
        }
        let out = run(&mut cmd);
        assert_success!(out, "{mode}");
        let head = git(Some(&checkout.join(".git")), &["rev-parse", "HEAD"]);
        let want = if mode == "reference" {
            git(Some(&upstream), &["rev-parse", "main"])
        } else {
            tip.clone()
        };
        assert_eq!(head, want, "{mode}: wrong checkout");
        // It borrowed from the mirror instead of copying: almost no
        // objects of its own, and a complete, valid history.
        let alternates = read(&checkout.join(".git/objects/info/alternates"));
        let lender = if mode == "snapshot" { &taken } else { &repo };
        assert!(
            alternates.contains(&lender.join("objects").display().to_string()),
            "{mode}: {alternates}"
        );
        let count = git(Some(&checkout.join(".git")), &["count-objects", "-v"]);
        let own: u64 = count
            .lines()
            .filter(|l| l.starts_with("count:") || l.starts_with("in-pack:"))
            .map(|l| l.split(':').nth(1).unwrap().trim().parse::<u64>().unwrap())
            .sum();
        assert!(
            own <= 3 * 2,
            "{mode}: copied {own} objects instead of borrowing"
        );
        git(
            Some(&checkout.join(".git")),
            &["fsck", "--connectivity-only", "--no-progress"],
        );
    }
    assert_eq!(snapshot(&mirror), before, "the consumer changed the mirror");
}
