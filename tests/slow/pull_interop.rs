//! grok-pull beside the reference grokmirror 2.0.12, both ways: the
//! reference origin's manifest mirrored by us, ours by the reference, and
//! one replica taken over by either side in turn with nothing re-cloned,
//! each reading the other's local manifest and `.remote` state.

use crate::support;

use crate::support::stderr_of as stderr;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::support::daemon::GitDaemon;
use crate::support::fixture;
use crate::support::http::HttpServer;
use crate::support::mirror::{assert_mirrored, output_text, Origin, Replica};
use crate::support::read_manifest_json;

const KEYS: [&str; 3] = ["/pub/one.git", "/pub/two.git", "/pub/deep/three.git"];

fn build_origin(dir: &Path) -> Origin {
    let origin = Origin::new(dir);
    for (i, key) in KEYS.iter().enumerate() {
        origin.project(key, 2 + i, 1_600_000_000 + 1000 * i as i64);
        // Owners everywhere: the reference never writes default_owner.
        origin.describe(key, &format!("Repository {i}"), Some(&format!("Owner {i}")));
    }
    let two = origin.path("/pub/two.git");
    fixture::commits(&two, "stable", 2, 1_650_000_000);
    support::git(Some(&two), &["symbolic-ref", "HEAD", "refs/heads/stable"]);
    origin
}

/// (device, inode) of every file under a repository's objects/pack.
fn pack_inodes(repo: &Path) -> Vec<(u64, u64)> {
    let mut v: Vec<(u64, u64)> = std::fs::read_dir(repo.join("objects/pack"))
        .unwrap()
        .flatten()
        .map(|e| {
            let m = e.metadata().unwrap();
            (m.dev(), m.ino())
        })
        .collect();
    v.sort();
    v
}

fn log_since(path: &Path, from: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text[from.min(text.len())..].to_string()
}

#[test]
fn manifests_and_local_state_cross_both_ways() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = build_origin(&dir);
    let http = HttpServer::serve(&origin.root);
    let daemon = GitDaemon::serve(&origin.root);
    let url = http.url("manifest.js.gz");

    // Reference origin -> our replica.
    origin.manifest_by_oracle();
    let ours = Replica::new(&dir, "ours", &daemon.site(), &url, "");
    let out = ours.pull(&[]);
    assert_success!(out);
    for key in KEYS {
        assert_mirrored(&origin.path(key), &ours.path(key), "unused");
    }
    let reference_manifest = read_manifest_json(&origin.manifest);
    assert_eq!(read_manifest_json(&ours.manifest()), reference_manifest);

    // Our origin -> reference replica, and ours beside it from the same
    // manifest: the local manifests both sides write are identical.
    origin.manifest();
    // Settled, so both record its Last-Modified as is (we record one
    // second less for a manifest read within the second it was modified).
    origin.age_manifest(-10);
    let theirs = Replica::new(&dir, "theirs", &daemon.site(), &url, "");
    let out = theirs.pull_oracle(&[]);
    assert_success!(out);
    for key in KEYS {
        assert_mirrored(&origin.path(key), &theirs.path(key), "unused");
    }
    let ours2 = Replica::new(&dir, "ours2", &daemon.site(), &url, "");
    let out = ours2.pull(&[]);
    assert_success!(out);
    assert_eq!(
        read_manifest_json(&ours2.manifest()),
        read_manifest_json(&theirs.manifest())
    );
    // Same lines; the reference writes them in the order its workers
    // finished, we write them sorted.
    let sorted_lines = |p: std::path::PathBuf| {
        let mut l: Vec<String> = std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        l.sort();
        l
    };
    assert_eq!(
        sorted_lines(ours2.top.join("projects.list")),
        sorted_lines(theirs.top.join("projects.list"))
    );
    let state = |r: &Replica| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(r.top.join(".manifest.js.gz.remote")).unwrap())
            .unwrap()
    };
    let (a, b) = (state(&ours2), state(&theirs));
    assert_eq!(a["source"], b["source"]);
    assert_eq!(a["last-fetched"], b["last-fetched"]);
}

#[test]
fn one_replica_taken_over_in_turn_without_recloning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = build_origin(&dir);
    origin.manifest();
    // In the past, so that each later manifest can be dated later without
    // being dated in the future.
    origin.age_manifest(-30);
    let http = HttpServer::serve(&origin.root);
    let daemon = GitDaemon::serve(&origin.root);
    let replica = Replica::new(
        &dir,
        "replica",
        &daemon.site(),
        &http.url("manifest.js.gz"),
        "",
    );
    let log = dir.join("replica.log");

    // The reference makes the replica.
    let out = replica.pull_oracle(&[]);
    assert_success!(out);
    for key in KEYS {
        assert_mirrored(&origin.path(key), &replica.path(key), "unused");
    }
    let packs: Vec<_> = KEYS.iter().map(|k| pack_inodes(&replica.path(k))).collect();

    // We take over: the reference's .remote says nothing changed (304).
    http.clear_requests();
    let out = replica.pull(&[]);
    assert_success!(out);
    assert_stderr_contains!(out, "nothing to do");
    assert_eq!(http.requests()[0].status, 304);

    // A push to one repository: we fetch only that one, adopt nothing
    // (the reference's local manifest is read), re-clone nothing.
    fixture::commits(&origin.path("/pub/one.git"), "main", 2, 1_700_000_000);
    // Dated in the past but later than what was recorded (HTTP dates have
    // one-second resolution); a date in the future would count as now.
    origin.manifest_hook(&["/pub/one.git"]);
    origin.age_manifest(-5);
    let out = replica.pull(&[]);
    assert_success!(out);
    let err = stderr(&out);
    assert!(
        err.contains("0 cloned, 1 updated, 2 unchanged"),
        "{}",
        output_text(&out)
    );
    assert!(!err.contains("reorigin"), "{}", output_text(&out));
    for (i, key) in KEYS.iter().enumerate() {
        assert_mirrored(&origin.path(key), &replica.path(key), "unused");
        if i > 0 {
            assert_eq!(pack_inodes(&replica.path(key)), packs[i], "{key} untouched");
        }
    }

    // The reference takes it back: it reads our .remote (its request
    // carries our Last-Modified) and our local manifest (no reorigin), and
    // re-clones nothing.
    let ours_state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(replica.top.join(".manifest.js.gz.remote")).unwrap())
            .unwrap();
    fixture::commits(&origin.path("/pub/two.git"), "stable", 1, 1_710_000_000);
    origin.manifest_hook(&["/pub/two.git"]);
    origin.age_manifest(-3);
    let before = std::fs::read_to_string(&log).unwrap().len();
    let packs_three = pack_inodes(&replica.path("/pub/deep/three.git"));
    http.clear_requests();
    let out = replica.pull_oracle(&[]);
    assert_success!(out);
    let ims = http.requests()[0].if_modified_since.clone();
    let expected = httpdate::fmt_http_date(
        std::time::UNIX_EPOCH
            + std::time::Duration::from_secs(ours_state["last-fetched"].as_u64().unwrap()),
    );
    assert_eq!(ims.as_deref(), Some(expected.as_str()));
    let oracle_log = log_since(&log, before);
    assert!(!oracle_log.contains("reorigin"), "{oracle_log}");
    assert!(oracle_log.contains("fetch: /pub/two.git"), "{oracle_log}");
    assert!(
        !oracle_log.contains("fetch: /pub/deep/three.git"),
        "{oracle_log}"
    );
    for key in KEYS {
        assert_mirrored(&origin.path(key), &replica.path(key), "unused");
    }
    assert_eq!(
        pack_inodes(&replica.path("/pub/deep/three.git")),
        packs_three
    );

    // And we read what the reference wrote last: nothing to do.
    let out = replica.pull(&[]);
    assert_stderr_contains!(out, "nothing to do");
    let out = replica.pull(&["-n"]);
    assert_stderr_contains!(out, "0 cloned, 0 updated, 3 unchanged");
}
