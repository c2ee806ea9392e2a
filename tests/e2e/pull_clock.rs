//! An origin whose clock is wrong: a manifest whose `Last-Modified` (HTTP)
//! or mtime (`file://`) lies in the future. Recording that time would make
//! every later If-Modified-Since or mtime comparison say "unchanged" until
//! the year 2100, and the replica would silently stop following its origin
//! (grokmirror 2.0.12 does exactly that). We take such a time as now, say
//! so once, and keep following, also when the state file already holds a
//! time from the future (written by the reference).

use std::time::{SystemTime, UNIX_EPOCH};

use crate::support::http::HttpServer;
use crate::support::mirror::{assert_mirrored, output_text, set_mtime, Origin, Replica};

/// 2100-01-01 00:00:00 UTC.
const Y2100: u64 = 4_102_444_800;

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn state(replica: &Replica) -> serde_json::Value {
    let raw = std::fs::read(replica.top.join(".manifest.js.gz.remote")).unwrap();
    serde_json::from_slice(&raw).unwrap()
}

/// Pull and check that `keys` are mirrored.
fn pull_and_check(origin: &Origin, replica: &Replica, keys: &[&str], what: &str) -> String {
    let out = replica.pull(&[]);
    assert_success!(out, "{what}");
    for key in keys {
        assert!(
            replica.path(key).is_dir(),
            "{what}: {key} was not mirrored: {}",
            output_text(&out)
        );
        assert_mirrored(&origin.path(key), &replica.path(key), "Grokmirror");
    }
    let recorded = state(replica)["last-fetched"].as_i64().unwrap();
    assert!(
        recorded <= now(),
        "{what}: .remote records {recorded}, later than now"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The whole story for one manifest source: mirrored from the future, a
/// change still from the future, a change once the origin's clock is
/// right, and a state file from a tool that believed the future.
fn follows_an_origin_from_the_future(http: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/a.git", 2, 1_600_000_000);
    origin.manifest();
    set_mtime(&origin.manifest, Y2100);
    let server = HttpServer::serve(&origin.root);
    let url = if http {
        server.url("manifest.js.gz")
    } else {
        origin.file_manifest_url()
    };
    let replica = Replica::new(&dir, "replica", &origin.local_site(), &url, "");

    let err = pull_and_check(&origin, &replica, &["/a.git"], "first run");
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("in the future"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning: {err}");
    assert!(
        warnings[0].contains(&url) && warnings[0].contains("2100"),
        "the warning names the URL and the time: {err}"
    );

    // The origin changes, its clock still in 2100.
    origin.project("/b.git", 2, 1_600_000_000);
    origin.manifest();
    set_mtime(&origin.manifest, Y2100);
    pull_and_check(&origin, &replica, &["/a.git", "/b.git"], "still from 2100");

    // Its clock is put right; the manifest changes again, dated now.
    origin.project("/c.git", 2, 1_600_000_000);
    origin.manifest();
    pull_and_check(&origin, &replica, &["/c.git"], "clock fixed");

    // A .remote written by a run that trusted the future (grokmirror
    // 2.0.12 records the Last-Modified as it came).
    let mut st = state(&replica);
    st["last-fetched"] = serde_json::json!(Y2100);
    std::fs::write(
        replica.top.join(".manifest.js.gz.remote"),
        serde_json::to_vec(&st).unwrap(),
    )
    .unwrap();
    origin.project("/d.git", 2, 1_600_000_000);
    origin.manifest();
    let err = pull_and_check(&origin, &replica, &["/d.git"], "state from 2100");
    assert!(
        err.lines()
            .any(|l| l.contains(".manifest.js.gz.remote") && l.contains("in the future")),
        "the state file's time is said to be in the future: {err}"
    );
}

#[test]
fn an_http_manifest_from_the_future_is_followed() {
    follows_an_origin_from_the_future(true);
}

#[test]
fn a_file_manifest_from_the_future_is_followed() {
    follows_an_origin_from_the_future(false);
}

/// The daemon polls over and over: it follows an origin dated 2100 and
/// says so once, not at every poll.
#[test]
fn the_daemon_follows_an_origin_from_the_future_and_says_so_once() {
    use crate::support::pulld::Pulld;
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/a.git", 2, 1_600_000_000);
    origin.manifest();
    set_mtime(&origin.manifest, Y2100);
    let server = HttpServer::serve(&origin.root);
    let url = server.url("manifest.js.gz");
    let replica = Replica::new(&dir, "replica", &origin.local_site(), &url, "refresh = 1");
    let mut daemon = Pulld::start(&replica.config, &dir.join("replica.log"), |_| {});
    daemon.wait_for("/a.git mirrored", |_| replica.path("/a.git").is_dir());

    origin.project("/b.git", 2, 1_600_000_000);
    origin.manifest();
    set_mtime(&origin.manifest, Y2100);
    daemon.wait_for("/b.git mirrored", |_| replica.path("/b.git").is_dir());
    // A few more polls of the same manifest from 2100.
    let seen = server.requests().len();
    daemon.wait_for("three more polls", |_| server.requests().len() >= seen + 3);
    assert_mirrored(
        &origin.path("/b.git"),
        &replica.path("/b.git"),
        "Grokmirror",
    );
    let log = daemon.log_text();
    let warnings = log
        .lines()
        .filter(|l| l.contains(&url) && l.contains("in the future"))
        .count();
    assert_eq!(warnings, 1, "{}", daemon.describe());
}

/// The long runs of this module: `scripts/test --quick` skips them
/// (`--skip slow::`).
mod slow {
    use super::*;

    /// The reference, pulling from an origin dated 2100, records 2100 and then
    /// misses every change; ours, taking over its replica, catches up.
    #[test]
    fn a_replica_the_reference_left_in_2100_catches_up() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(tmp.path()).unwrap();
        let origin = Origin::new(&dir);
        origin.project("/a.git", 2, 1_600_000_000);
        origin.manifest();
        set_mtime(&origin.manifest, Y2100);
        let server = HttpServer::serve(&origin.root);
        let replica = Replica::new(
            &dir,
            "replica",
            &origin.local_site(),
            &server.url("manifest.js.gz"),
            "",
        );
        let out = replica.pull_oracle(&[]);
        assert_success!(out);
        assert_eq!(
            state(&replica)["last-fetched"].as_i64(),
            Some(Y2100 as i64),
            "the reference records the origin's time as it came"
        );
        origin.project("/b.git", 2, 1_600_000_000);
        origin.manifest();
        let out = replica.pull_oracle(&[]);
        assert_success!(out);
        assert_missing!(
            replica.path("/b.git"),
            "the reference missed the change (if it no longer does, say so in the README)"
        );
        // (Only /b.git is compared whole: the reference writes no
        // default_owner into /a.git, a known difference.)
        pull_and_check(&origin, &replica, &["/b.git"], "ours after the reference");
        assert!(replica.path("/a.git").is_dir());
    }
}
