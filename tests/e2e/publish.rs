//! grok-publish against a real S3-compatible store (Garage, on loopback):
//! a standalone repository and forks in object storage cloned over git's
//! dumb HTTP straight from the bucket's anonymous-read endpoint; after a
//! push only the new objects travel, and a reader polling `info/refs`
//! meanwhile never sees a ref it cannot fetch; unlisted packs stay for the
//! grace and go after it; a chain origin -> replica -> bucket -> second
//! replica; and bad settings are one line, nothing sent.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::forks::{self, Spec, Tree};
use crate::support::garage::Garage;
use crate::support::mirror::{no_proxy, output_text, Origin, Replica};
use crate::support::{fixture, git, git_cmd, git_stdin, grok, run, show_ref};

/// Where the tree goes in the bucket.
const PREFIX: &str = "pub";

fn spec() -> Spec {
    Spec {
        projects: 1,
        forks: 3,
        private_every: 0,
        chain: false,
        unrelated: false,
        base_commits: 20,
    }
}

/// A tree with a standalone repository and forks our grok-fsck moved
/// into object storage; `fsck` goes into its `[fsck]`.
fn mirror(fsck: &str) -> Tree {
    let tree = Tree::new("", fsck);
    forks::build(&tree.top, &spec());
    let solo = fixture::project(&tree.top.join("solo.git"), 12, 1_600_000_000);
    git(Some(&solo), &["repack", "-adq"]);
    tree.manifest();
    let out = tree.fsck(&[]);
    assert_success!(out, "grok-fsck");
    tree.manifest();
    tree
}

fn configure(tree: &Tree, garage: &Garage) {
    let mut text = std::fs::read_to_string(&tree.config).unwrap();
    text.push_str(&garage.publish_section(PREFIX));
    std::fs::write(&tree.config, text).unwrap();
}

fn publish(config: &Path, garage: &Garage, args: &[&str]) -> Output {
    let mut cmd = grok("grok-publish");
    no_proxy(&mut cmd);
    garage.credentials(&mut cmd);
    cmd.arg("-v").arg("-c").arg(config).args(args);
    run(&mut cmd)
}

/// Bytes uploaded, from the run's last line.
fn uploaded_kib(out: &Output) -> f64 {
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .rfind(|l| l.contains("published") && l.contains(" files, "))
        .unwrap_or_else(|| panic!("no summary line:\n{text}"));
    let after = line.split(" files, ").nth(1).unwrap();
    after.split(" KiB").next().unwrap().parse().unwrap()
}

/// Clone `key` over dumb HTTP from the bucket into `dest`.
fn clone_from_bucket(garage: &Garage, key: &str, dest: &Path, alternates: bool) -> Output {
    let mut cmd = git_cmd(None);
    no_proxy(&mut cmd);
    if alternates {
        // git follows http-alternates only when told it may leave the URL.
        cmd.args(["-c", "http.followRedirects=true"]);
    }
    cmd.args(["clone", "--mirror", "-q"])
        .arg(format!(
            "{}/{PREFIX}/{}",
            garage.web_url(),
            key.trim_start_matches('/')
        ))
        .arg(dest);
    run(&mut cmd)
}

fn fsck_clean(repo: &Path) {
    let out = run(git_cmd(Some(repo)).args(["fsck", "--full", "--strict"]));
    assert_success!(out, "git fsck of {}", repo.display());
}

#[test]
fn clones_over_dumb_http_from_the_bucket_equal_the_mirror() {
    let garage_dir = tempfile::tempdir().unwrap();
    let garage = Garage::start(garage_dir.path());
    let tree = mirror("");
    configure(&tree, &garage);
    let out = publish(&tree.config, &garage, &["--full"]);
    assert_success!(out, "grok-publish, full");
    let forks: Vec<String> = (0..3).map(|f| forks::fork_key(&spec(), 0, f)).collect();
    for key in forks.iter().map(String::as_str).chain(["/solo.git"]) {
        let alternates = key != "/solo.git";
        if alternates {
            assert!(
                grokmirror::repo::alternates::lender(&tree.repo(key)).is_some(),
                "{key} is not in object storage"
            );
        }
        let dest = tree
            .dir
            .path()
            .join(format!("clone-{}", key.replace('/', "_")));
        let out = clone_from_bucket(&garage, key, &dest, alternates);
        assert_success!(out, "dumb clone of {key}");
        assert_eq!(show_ref(&dest), show_ref(&tree.repo(key)), "refs of {key}");
        fsck_clean(&dest);
    }
    // The manifest is there, gzip, with every repository.
    let (status, headers, body) = garage.get(&format!("{PREFIX}/manifest.js.gz"));
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, _)| k == "last-modified"));
    let json = grokmirror::formats::manifest::decode_bytes(body, None, "bucket").unwrap();
    let manifest = grokmirror::formats::manifest::Manifest::from_json_vec(json, "b").unwrap();
    for key in forks.iter().map(String::as_str).chain(["/solo.git"]) {
        assert!(
            manifest.repos.contains_key(key),
            "{key} not in the manifest"
        );
    }
    // A second run finds everything there and sends nothing, with or
    // without comparing with the bucket.
    for args in [&["--full"][..], &[]] {
        let again = publish(&tree.config, &garage, args);
        assert_success!(again, "grok-publish {args:?}, again");
        assert_eq!(uploaded_kib(&again), 0.0, "{}", output_text(&again));
    }
    // A repair: a pack and a list deleted from the bucket come back with
    // --full.
    let solo = tree.repo("/solo.git");
    let (pack, _) = newest_pack(&solo);
    let pack_name = pack.file_name().unwrap().to_string_lossy().into_owned();
    garage.delete(&format!("{PREFIX}/solo.git/objects/pack/{pack_name}"));
    garage.delete(&format!("{PREFIX}/solo.git/info/refs"));
    assert_eq!(garage.get(&format!("{PREFIX}/solo.git/info/refs")).0, 404);
    let repair = publish(&tree.config, &garage, &["--full"]);
    assert_success!(repair, "grok-publish --full, repair");
    assert_eq!(
        garage
            .get(&format!("{PREFIX}/solo.git/objects/pack/{pack_name}"))
            .0,
        200
    );
    let dest = tree.dir.path().join("repaired.git");
    assert_success!(
        clone_from_bucket(&garage, "/solo.git", &dest, false),
        "clone after repair"
    );
    assert_eq!(show_ref(&dest), show_ref(&solo));
}

/// A commit with `size` bytes of random content on `branch` of `repo`,
/// through fast-import (one new pack); the new tip.
fn push_random(repo: &Path, branch: &str, size: usize, seq: u64) -> String {
    use rand::RngCore;
    let mut data = vec![0u8; size];
    rand::rng().fill_bytes(&mut data);
    let refname = format!("refs/heads/{branch}");
    let parent = git(Some(repo), &["rev-parse", &refname]);
    let when = 1_700_000_000 + seq as i64 * 60;
    let msg = format!("random {seq}\n");
    let mut stream = format!(
        "commit {refname}\ncommitter T <t@example.com> {when} +0000\ndata {}\n{msg}from {parent}\n\
         M 644 inline random-{seq}.bin\ndata {}\n",
        msg.len(),
        data.len()
    )
    .into_bytes();
    stream.extend_from_slice(&data);
    stream.extend_from_slice(b"\ndone\n");
    git_stdin(
        Some(repo),
        &[
            "-c",
            "fastimport.unpackLimit=0",
            "fast-import",
            "--quiet",
            "--done",
        ],
        &stream,
    );
    git(Some(repo), &["rev-parse", &refname])
}

/// The newest pack of `repo` and its size.
fn newest_pack(repo: &Path) -> (PathBuf, u64) {
    std::fs::read_dir(repo.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .map(|p| {
            let m = std::fs::metadata(&p).unwrap();
            (p, m.modified().unwrap(), m.len())
        })
        .max_by_key(|(_, t, _)| *t)
        .map(|(p, _, s)| (p, s))
        .unwrap()
}

#[test]
fn after_a_push_only_new_objects_travel_and_readers_never_see_a_ref_too_early() {
    let garage_dir = tempfile::tempdir().unwrap();
    let garage = Arc::new(Garage::start(garage_dir.path()));
    let tree = mirror("");
    configure(&tree, &garage);
    assert_success!(publish(&tree.config, &garage, &[]), "first publish");
    let solo = tree.repo("/solo.git");
    let branch = git(Some(&solo), &["symbolic-ref", "--short", "HEAD"]);

    // A reader polls info/refs and fetches each new state it sees.
    let stop = Arc::new(AtomicBool::new(false));
    let reader_dir = tree.dir.path().join("reader.git");
    git(
        None,
        &["init", "-q", "--bare", reader_dir.to_str().unwrap()],
    );
    let reader = {
        let (garage, stop, dir) = (garage.clone(), stop.clone(), reader_dir.clone());
        std::thread::spawn(move || {
            let (mut seen, mut fetched, mut failures) = (Vec::<Vec<u8>>::new(), 0, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                let (status, _, refs) = garage.get(&format!("{PREFIX}/solo.git/info/refs"));
                if status != 200 || seen.contains(&refs) {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                let mut cmd = git_cmd(Some(&dir));
                no_proxy(&mut cmd);
                let out = run(cmd
                    .args(["fetch", "-q", "--no-tags"])
                    .arg(format!("{}/{PREFIX}/solo.git", garage.web_url()))
                    .arg("+refs/heads/*:refs/remotes/r/*"));
                if out.status.success() {
                    fetched += 1;
                } else {
                    failures.push(output_text(&out));
                }
                seen.push(refs);
            }
            (fetched, failures)
        })
    };
    let mut old_packs = Vec::new();
    for round in 0..4u64 {
        let before = newest_pack(&solo).0;
        push_random(&solo, &branch, 300 * 1024, round);
        let (pack, pack_size) = newest_pack(&solo);
        assert_ne!(pack, before);
        let out = publish(&tree.config, &garage, &["/solo.git"]);
        assert_success!(out, "publish round {round}");
        // The pack, its index, three lists and the manifest: within a few
        // percent of the pack.
        let sent = uploaded_kib(&out) * 1024.0;
        eprintln!("round {round}: new pack {pack_size} bytes, uploaded {sent:.0} bytes");
        assert!(sent >= pack_size as f64, "{sent} < {pack_size}");
        assert!(
            sent <= pack_size as f64 * 1.05 + 4096.0,
            "{sent} bytes sent for a {pack_size}-byte pack:\n{}",
            output_text(&out)
        );
        if round == 1 {
            // Repack: the old packs leave the repository's list.
            old_packs = std::fs::read_dir(solo.join("objects/pack"))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".pack"))
                .collect();
            git(Some(&solo), &["repack", "-adq"]);
            assert_success!(
                publish(&tree.config, &garage, &["/solo.git"]),
                "after repack"
            );
        }
    }
    // Let the reader catch the last state.
    std::thread::sleep(std::time::Duration::from_millis(500));
    stop.store(true, Ordering::SeqCst);
    let (fetched, failures) = reader.join().unwrap();
    assert!(
        failures.is_empty(),
        "a reader failed:\n{}",
        failures.join("\n")
    );
    assert!(fetched >= 2, "the reader fetched only {fetched} states");
    assert_eq!(
        git(
            Some(&reader_dir),
            &["rev-parse", &format!("refs/remotes/r/{branch}")]
        ),
        git(Some(&solo), &["rev-parse", &branch])
    );
    // Within the grace (14 days by default) the unlisted packs stay.
    for name in &old_packs {
        let (status, _, _) = garage.get(&format!("{PREFIX}/solo.git/objects/pack/{name}"));
        assert_eq!(status, 200, "{name} went before its grace");
    }
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tree.top.join(".grok-publish.status")).unwrap())
            .unwrap();
    let unlisted = status["unlisted"].as_object().unwrap();
    assert!(
        old_packs
            .iter()
            .all(|n| unlisted.contains_key(&format!("{PREFIX}/solo.git/objects/pack/{n}"))),
        "{unlisted:?}"
    );
}

#[test]
fn without_a_grace_unlisted_packs_go_once_the_new_lists_are_up() {
    let garage_dir = tempfile::tempdir().unwrap();
    let garage = Garage::start(garage_dir.path());
    let tree = mirror("consumer_grace = 0");
    configure(&tree, &garage);
    assert_success!(publish(&tree.config, &garage, &[]), "first publish");
    let solo = tree.repo("/solo.git");
    let branch = git(Some(&solo), &["symbolic-ref", "--short", "HEAD"]);
    push_random(&solo, &branch, 10 * 1024, 1);
    assert_success!(publish(&tree.config, &garage, &["/solo.git"]), "publish");
    let before: Vec<String> = std::fs::read_dir(solo.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pack") || n.ends_with(".idx"))
        .collect();
    assert!(before.len() >= 4);
    git(Some(&solo), &["repack", "-adq"]);
    let out = publish(&tree.config, &garage, &["/solo.git"]);
    assert_success!(out, "publish after repack");
    for name in &before {
        let (status, _, _) = garage.get(&format!("{PREFIX}/solo.git/objects/pack/{name}"));
        assert_eq!(status, 404, "{name} is still in the bucket");
    }
    let dest = tree.dir.path().join("after.git");
    assert_success!(
        clone_from_bucket(&garage, "/solo.git", &dest, false),
        "clone"
    );
    assert_eq!(show_ref(&dest), show_ref(&solo));
    fsck_clean(&dest);
}

#[test]
fn a_bucket_is_an_origin_for_the_next_tier() {
    let dir = tempfile::tempdir().unwrap();
    let garage = Garage::start(dir.path());
    let origin = Origin::new(dir.path());
    origin.project("/a.git", 8, 1_600_000_000);
    origin.project("/group/b.git", 5, 1_600_000_000);
    origin.manifest();
    let publish_bin = env!("CARGO_BIN_EXE_grok-publish");
    let replica = Replica::new(
        dir.path(),
        "replica",
        &origin.local_site(),
        &origin.file_manifest_url(),
        "",
    );
    let hooks = format!(
        "post_work_complete_hook = {publish_bin} -c {conf}\n",
        conf = replica.config.display()
    );
    let text = std::fs::read_to_string(&replica.config)
        .unwrap()
        .replace("[pull]\n", &format!("[pull]\n{hooks}"));
    std::fs::write(
        &replica.config,
        format!("{text}\n{}", garage.publish_section(PREFIX)),
    )
    .unwrap();
    let second = Replica::new(
        dir.path(),
        "second",
        &format!("{}/{PREFIX}", garage.web_url()),
        &format!("{}/{PREFIX}/manifest.js.gz", garage.web_url()),
        "",
    );
    let pull = |r: &Replica| {
        let mut cmd = grok("grok-pull");
        no_proxy(&mut cmd);
        garage.credentials(&mut cmd);
        cmd.arg("-v").arg("-c").arg(&r.config);
        run(&mut cmd)
    };
    assert_success!(pull(&replica), "replica pull");
    assert_success!(pull(&second), "second tier pull");
    for key in ["/a.git", "/group/b.git"] {
        assert_eq!(
            show_ref(&second.path(key)),
            show_ref(&origin.path(key)),
            "{key}"
        );
        fsck_clean(&second.path(key));
    }
    // A push at the origin reaches the second tier through the bucket.
    let tip = fixture::commits(&origin.path("/a.git"), "master", 3, 1_700_000_000);
    origin.manifest_hook(&["/a.git"]);
    let started = Instant::now();
    assert_success!(pull(&replica), "replica pull after the push");
    let published = started.elapsed();
    let out = pull(&second);
    assert_success!(out, "second tier pull after the push");
    eprintln!(
        "push to second tier: replica fetch + publish {} ms, second tier {} ms",
        published.as_millis(),
        (started.elapsed() - published).as_millis()
    );
    assert_eq!(
        git(
            Some(&second.path("/a.git")),
            &["rev-parse", "refs/heads/master"]
        ),
        tip
    );
    assert_eq!(
        show_ref(&second.path("/a.git")),
        show_ref(&origin.path("/a.git"))
    );
    fsck_clean(&second.path("/a.git"));
    // Nothing new: the manifest is asked for with If-Modified-Since and the
    // bucket's Last-Modified (its upload) answers 304. The pause takes the
    // upload out of the second the last fetch saw, which grok-pull would
    // otherwise fetch again in full (a racy time).
    std::thread::sleep(Duration::from_millis(2100));
    assert_success!(pull(&second), "second tier pull, settling");
    let out = pull(&second);
    assert_success!(out, "second tier pull with nothing new");
    let log = output_text(&out);
    assert!(log.contains(" manifest: unchanged"), "{log}");
}

#[test]
fn bad_settings_are_one_line_and_send_nothing() {
    let garage_dir = tempfile::tempdir().unwrap();
    let garage = Garage::start(garage_dir.path());
    let tree = Tree::new("", "");
    fixture::project(&tree.top.join("solo.git"), 3, 1_600_000_000);
    tree.manifest();
    let base = std::fs::read_to_string(&tree.config).unwrap();
    let status_file = tree.top.join(".grok-publish.status");
    let one_line = |out: &Output, needle: &str, code: i32| {
        assert_eq!(out.status.code(), Some(code), "{}", output_text(out));
        let err = String::from_utf8_lossy(&out.stderr);
        let errors: Vec<&str> = err
            .lines()
            .filter(|l| l.contains("ERROR") || l.starts_with("grok-publish:"))
            .collect();
        assert!(err.contains(needle), "{needle:?} not in:\n{err}");
        assert!(errors.len() <= 2, "more than one error line:\n{err}");
    };
    // No [publish] bucket.
    let out = publish(&tree.config, &garage, &[]);
    one_line(&out, "needs a bucket", 2);
    // Not an s3:// URL.
    std::fs::write(
        &tree.config,
        format!("{base}[publish]\nbucket = https://x/y\n"),
    )
    .unwrap();
    one_line(&publish(&tree.config, &garage, &[]), "s3://", 2);
    // No credentials anywhere.
    std::fs::write(
        &tree.config,
        format!("{base}{}", garage.publish_section(PREFIX)),
    )
    .unwrap();
    let mut cmd = grok("grok-publish");
    cmd.arg("-c")
        .arg(&tree.config)
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_SHARED_CREDENTIALS_FILE", tree.dir.path().join("none"));
    one_line(&run(&mut cmd), "no credentials", 2);
    // A wrong secret: refused by the store, named, nothing recorded.
    let mut cmd = grok("grok-publish");
    no_proxy(&mut cmd);
    cmd.arg("-c")
        .arg(&tree.config)
        .arg("/solo.git")
        .env("AWS_ACCESS_KEY_ID", crate::support::garage::KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", "0".repeat(64));
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("s3://localhost/pub/solo.git"));
    let recorded: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&status_file).unwrap_or(b"{}".to_vec())).unwrap();
    assert!(
        recorded["repos"].as_object().is_none_or(|r| r.is_empty()),
        "{recorded}"
    );
    // A key that leaves the tree, and one that is not there.
    let out = publish(&tree.config, &garage, &["/../etc.git", "/missing.git"]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/../etc.git") && err.contains("/missing.git"),
        "{err}"
    );
    // A local user plants a FIFO where a loose object goes, and a symlink
    // out of the tree as a pack: refused by name at once (not a hang), the
    // repository is not published; once they are gone it is.
    let solo = tree.top.join("solo.git");
    let fan = solo.join("objects/ab");
    std::fs::create_dir_all(&fan).unwrap();
    let fifo = fan.join("cdef0123456789abcdef0123456789abcdef01");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let out = publish(&tree.config, &garage, &["/solo.git"]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not a regular file"),
        "{}",
        output_text(&out)
    );
    std::fs::remove_file(&fifo).unwrap();
    let outside = tree.dir.path().join("secret.pack");
    std::fs::write(&outside, b"not for the bucket").unwrap();
    std::fs::write(solo.join("objects/pack/pack-0000.idx"), b"x").unwrap();
    std::os::unix::fs::symlink(&outside, solo.join("objects/pack/pack-0000.pack")).unwrap();
    let out = publish(&tree.config, &garage, &["/solo.git"]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("symlink"),
        "{}",
        output_text(&out)
    );
    assert_eq!(
        garage
            .get(&format!("{PREFIX}/solo.git/objects/pack/pack-0000.pack"))
            .0,
        404
    );
    std::fs::remove_file(solo.join("objects/pack/pack-0000.pack")).unwrap();
    std::fs::remove_file(solo.join("objects/pack/pack-0000.idx")).unwrap();
    assert_success!(
        publish(&tree.config, &garage, &["/solo.git"]),
        "publish once they are gone"
    );
    // --config-check finds the bad URL without sending anything.
    std::fs::write(
        &tree.config,
        format!("{base}[publish]\nbucket = s3://BAD\n"),
    )
    .unwrap();
    let mut cmd = grok("grok-publish");
    cmd.args(["--config-check", "--json", "-c"])
        .arg(&tree.config);
    let out = run(&mut cmd);
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report.to_string().contains("bucket"), "{report}");
}

#[test]
fn a_push_reaches_the_tier_behind_the_bucket_by_notifications() {
    use crate::support::daemon::GitDaemon;
    use crate::support::http::HttpServer;
    use crate::support::notify::{listen_addr, listening, post_signed, secret_file};
    use crate::support::pulld::Pulld;

    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let garage = Garage::start(&dir);
    let origin = Origin::new(&dir);
    origin.project("/a.git", 6, 1_600_000_000);
    origin.manifest();
    let http = HttpServer::serve(&origin.root);
    let gitd = GitDaemon::serve(&origin.root);
    let secret = secret_file(&dir);
    let notify = listening(&secret);
    let replica = Replica::new(
        &dir,
        "replica",
        &gitd.site(),
        &http.url("manifest.js.gz"),
        &format!(
            "{notify}post_work_complete_hook = {} -c {}\n",
            env!("CARGO_BIN_EXE_grok-publish"),
            dir.join("replica.conf").display()
        ),
    );
    let base = std::fs::read_to_string(&replica.config).unwrap();
    std::fs::write(
        &replica.config,
        format!("{base}\n{}", garage.publish_section(PREFIX)),
    )
    .unwrap();
    // The replica mirrors and publishes once; the tier behind the bucket
    // starts from that.
    let mut cmd = grok("grok-pull");
    no_proxy(&mut cmd);
    garage.credentials(&mut cmd);
    assert_success!(
        run(cmd.arg("-c").arg(&replica.config)),
        "first replica pull"
    );
    let second = Replica::new(
        &dir,
        "second",
        &format!("{}/{PREFIX}", garage.web_url()),
        &format!("{}/{PREFIX}/manifest.js.gz", garage.web_url()),
        &notify,
    );
    let a = origin.path("/a.git");
    let in_step =
        |r: &Replica| r.path("/a.git").is_dir() && show_ref(&r.path("/a.git")) == show_ref(&a);
    let mut second_d = Pulld::start(&second.config, &dir.join("second.log"), |_| {});
    let second_addr = listen_addr(&mut second_d);
    second_d.wait_for("the second tier's first mirror", |_| in_step(&second));
    std::fs::write(
        &replica.config,
        format!(
            "{base}\n{}notify_peers = http://{second_addr}/\n",
            garage.publish_section(PREFIX)
        ),
    )
    .unwrap();
    let mut replica_d = Pulld::start(&replica.config, &dir.join("replica.log"), |cmd| {
        garage.credentials(cmd)
    });
    let replica_addr = listen_addr(&mut replica_d);

    for round in 0..3 {
        let tip = fixture::commits(&a, "master", 1, 1_700_000_000 + round * 100);
        let posted = Instant::now();
        assert_eq!(post_signed(&replica_addr, "/a.git\n"), 204);
        second_d.wait_for("the second tier to have the push", |_| in_step(&second));
        eprintln!(
            "round {round}: signed POST to the replica -> second tier has {tip:.8} in {} ms",
            posted.elapsed().as_millis()
        );
    }
    fsck_clean(&second.path("/a.git"));
    let second_log = second_d.log_text();
    assert!(
        second_log.contains("listener: /a.git"),
        "{}",
        second_d.describe()
    );
    let replica_log = replica_d.log_text();
    assert!(
        !replica_log.contains("cannot notify"),
        "{}",
        replica_d.describe()
    );
}

#[test]
fn bundles_from_the_bucket_seed_a_clone() {
    use crate::support::daemon::GitDaemon;
    let garage_dir = tempfile::tempdir().unwrap();
    let garage = Garage::start(garage_dir.path());
    let tree = mirror("");
    let outdir = tree.dir.path().join("bundles");
    let out = run(grok("grok-bundle")
        .arg("-c")
        .arg(&tree.config)
        .arg("-o")
        .arg(&outdir));
    assert_success!(out, "grok-bundle");
    let mut text = std::fs::read_to_string(&tree.config).unwrap();
    text.push_str(&garage.publish_section(PREFIX));
    text.push_str(&format!("bundles = {}\n", outdir.display()));
    std::fs::write(&tree.config, text).unwrap();
    assert_success!(publish(&tree.config, &garage, &["--full"]), "publish");
    let (status, _, list) = garage.get(&format!("{PREFIX}/bundles/solo/bundle-list"));
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&list).contains("clone.bundle"));
    // Unchanged bundles are not sent again.
    let again = publish(&tree.config, &garage, &[]);
    assert_success!(again, "publish again");
    assert_eq!(uploaded_kib(&again), 0.0, "{}", output_text(&again));

    let solo = tree.repo("/solo.git");
    let tip = git(Some(&solo), &["rev-parse", "HEAD"]);
    let daemon = GitDaemon::serve(&tree.top);
    let dst = tree.dir.path().join("seeded.git");
    let trace = tree.dir.path().join("packet.trace");
    let mut clone = git_cmd(None);
    no_proxy(&mut clone);
    clone
        .env("GIT_TRACE_PACKET", &trace)
        .args(["clone", "--bare"])
        .arg(format!(
            "--bundle-uri={}/{PREFIX}/bundles/solo/bundle-list",
            garage.web_url()
        ))
        .arg(format!("{}/solo.git", daemon.site()))
        .arg(&dst);
    let out = run(&mut clone);
    assert_success!(out, "clone with --bundle-uri");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("failed to download bundle"),
        "{}",
        output_text(&out)
    );
    // The bundle from the bucket held everything: git listed the refs from
    // the server and fetched nothing from it.
    let packets = std::fs::read_to_string(&trace).unwrap();
    assert!(packets.contains("command=ls-refs"), "{packets}");
    assert!(!packets.contains("command=fetch"), "{packets}");
    assert_eq!(git(Some(&dst), &["rev-parse", "HEAD"]), tip);
    // git keeps what it unbundled under refs/bundles/.
    let refs = show_ref(&dst);
    assert!(refs.contains(" refs/bundles/"), "{refs}");
    let own: String = refs
        .lines()
        .filter(|l| !l.contains(" refs/bundles/"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(own, show_ref(&solo));
    fsck_clean(&dst);
}
