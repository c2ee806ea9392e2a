//! grok-pull as a daemon (`-o` with `[pull] refresh`), run as a child
//! process against a real loopback origin (HTTP for the manifest,
//! `git daemon` for the repositories): push notifications on the socket,
//! polling, a watched file:// manifest, systemd notifications, the
//! metrics file, SIGHUP, and taking over a replica the reference made.

use crate::support;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::daemon::GitDaemon;
use crate::support::fixture;
use crate::support::http::HttpServer;
use crate::support::mirror::{assert_mirrored, Origin, Replica};
use crate::support::pulld::{notify, Pulld, PATIENCE};
use crate::support::{read_manifest_json, show_ref, show_ref_sha1};
use nix::sys::signal::Signal;

/// An origin served over HTTP and git://, and a replica config for it.
struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    origin: Origin,
    http: HttpServer,
    _gitd: GitDaemon,
    replica: Replica,
}

impl Setup {
    /// Origin repositories `keys` (a few commits each), manifest over HTTP
    /// (`file://` with `file_manifest`), `pull_extra` for `[pull]`.
    fn new(keys: &[&str], pull_extra: &str, file_manifest: bool) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(tmp.path()).unwrap();
        let origin = Origin::new(&dir);
        for (i, key) in keys.iter().enumerate() {
            origin.project(key, 3, 1_600_000_000 + 1000 * i as i64);
        }
        origin.manifest();
        let http = HttpServer::serve(&origin.root);
        let gitd = GitDaemon::serve(&origin.root);
        let manifest = if file_manifest {
            origin.file_manifest_url()
        } else {
            http.url("manifest.js.gz")
        };
        let replica = Replica::new(&dir, "replica", &gitd.site(), &manifest, pull_extra);
        Setup {
            _tmp: tmp,
            dir,
            origin,
            http,
            _gitd: gitd,
            replica,
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.join("replica.log")
    }

    fn start(&self) -> Pulld {
        Pulld::start(&self.replica.config, &self.log(), |_| {})
    }

    /// Whether the replica's refs of `key` equal the origin's.
    fn in_step(&self, key: &str) -> bool {
        let r = self.replica.path(key);
        r.is_dir() && show_ref(&r) == show_ref(&self.origin.path(key))
    }

    /// Wait until every key is mirrored.
    fn wait_mirrored(&self, d: &mut Pulld, keys: &[&str]) {
        d.wait_for(&format!("{keys:?} to be in step"), |_| {
            keys.iter().all(|k| self.in_step(k))
        });
        for k in keys {
            assert_mirrored(&self.origin.path(k), &self.replica.path(k), "Grokmirror");
        }
    }

    /// A new commit on `main` of an origin repository.
    fn push(&self, key: &str, when: i64) {
        fixture::commits(&self.origin.path(key), "main", 1, when);
    }

    fn manifest_requests(&self) -> usize {
        self.http
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("manifest.js.gz"))
            .count()
    }
}

fn stop(d: &mut Pulld) {
    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "{}", d.describe());
}

#[test]
fn a_notified_push_arrives_without_waiting_for_refresh() {
    let s = Setup::new(
        &["/a.git", "/b.git", "/sub/c.git"],
        "refresh = 3600\nsocket = ${core:toplevel}/.updater.socket",
        false,
    );
    let socket = s.replica.top.join(".updater.socket");
    // A stale socket from a killed run is replaced.
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let mut d = s.start();
    s.wait_mirrored(&mut d, &["/a.git", "/b.git", "/sub/c.git"]);
    d.wait_log("stats: 3 fetched");
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o660, "the socket is owner+group only");
    assert!(d.log_text().contains("replaced the stale socket"));
    assert_eq!(s.manifest_requests(), 1, "one poll at start");

    // The origin's hook updated the manifest and we are told: fetched now,
    // not in an hour.
    s.push("/a.git", 1_700_000_000);
    s.origin.manifest_hook(&["/a.git"]);
    notify(&socket, &["/a.git"]);
    s.wait_mirrored(&mut d, &["/a.git"]);

    // Told before the manifest says so: fetched anyway.
    s.push("/b.git", 1_700_000_100);
    notify(&socket, &["/b.git"]);
    s.wait_mirrored(&mut d, &["/b.git"]);

    // Several lines on one connection, some of them junk.
    s.push("/sub/c.git", 1_700_000_200);
    s.origin.manifest_hook(&["/sub/c.git"]);
    notify(
        &socket,
        &[
            "/nope.git",
            "../../etc/passwd",
            "",
            "sub/c.git",
            "/sub/c.git",
        ],
    );
    s.wait_mirrored(&mut d, &["/sub/c.git"]);
    d.wait_log("listener: /nope.git (not known, ignored)");
    d.wait_log("listener: ignoring \"../../etc/passwd\"");
    assert_eq!(
        s.manifest_requests(),
        1,
        "no poll happened: only the socket explains the fetches"
    );

    stop(&mut d);
    assert_missing!(socket, "the socket is removed on exit");
    let local = read_manifest_json(&s.replica.manifest());
    for key in ["/a.git", "/b.git", "/sub/c.git"] {
        assert_eq!(
            local[key]["fingerprint"],
            show_ref_sha1(&s.replica.path(key)),
            "local manifest entry of {key}"
        );
    }
}

#[test]
fn an_unnotified_push_arrives_on_the_next_poll() {
    let s = Setup::new(&["/a.git", "/b.git"], "refresh = 1", false);
    let metrics = s.dir.join("grok-pull.prom");
    std::fs::write(
        &s.replica.config,
        std::fs::read_to_string(&s.replica.config).unwrap()
            + &format!("metrics_file = {}\n", metrics.display()),
    )
    .unwrap();
    let mut d = s.start();
    s.wait_mirrored(&mut d, &["/a.git", "/b.git"]);
    d.wait_for("the metrics file", |_| {
        std::fs::read_to_string(&metrics)
            .is_ok_and(|t| t.contains("grokmirror_pull_repos_total{result=\"cloned\"} 2\n"))
    });
    let text = std::fs::read_to_string(&metrics).unwrap();
    for needle in [
        "grokmirror_pull_repos_known 2\n",
        "grokmirror_pull_repos_failing 0\n",
        "grokmirror_pull_manifest_success_age_seconds ",
        "# TYPE grokmirror_pull_manifest_polls_total counter\n",
    ] {
        assert!(text.contains(needle), "{needle:?} in\n{text}");
    }
    let state = s.replica.top.join(".manifest.js.gz.remote");
    d.wait_for("the .remote state file", |_| state.exists());

    s.push("/b.git", 1_700_000_000);
    s.origin.manifest_hook(&["/b.git"]);
    s.wait_mirrored(&mut d, &["/b.git"]);
    assert!(
        s.manifest_requests() >= 2,
        "a later poll brought it: {:?}",
        s.http.requests()
    );
    let log = d.log_text();
    assert!(!log.contains("listener:"), "{log}");
    stop(&mut d);
}

#[test]
fn a_changed_file_manifest_arrives_without_polling() {
    let s = Setup::new(&["/a.git"], "refresh = 3600", true);
    let mut d = s.start();
    s.wait_mirrored(&mut d, &["/a.git"]);
    d.wait_log("stats: 1 fetched");

    s.push("/a.git", 1_700_000_000);
    s.origin.manifest_hook(&["/a.git"]);
    s.wait_mirrored(&mut d, &["/a.git"]);

    s.origin.project("/new.git", 2, 1_650_000_000);
    s.origin.manifest_hook(&["/new.git"]);
    s.wait_mirrored(&mut d, &["/new.git"]);
    let polls = d.log_text().matches(" manifest: fetching file://").count();
    assert!(polls >= 3, "the watch made it read the manifest again");
    stop(&mut d);
}

/// Datagrams sent to a fake NOTIFY_SOCKET, collected until STOPPING=1.
fn collect_notifications(sock: std::os::unix::net::UnixDatagram) -> Vec<String> {
    sock.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let stopping = text.contains("STOPPING=1");
        got.push(text);
        if stopping {
            break;
        }
    }
    got
}

#[test]
fn systemd_readiness_watchdog_and_status() {
    let s = Setup::new(&["/a.git"], "refresh = 3600", false);
    let notify_path = s.dir.join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&notify_path).unwrap();
    let collector = std::thread::spawn(move || collect_notifications(sock));
    // systemd names the pid the watchdog is meant for; `exec` keeps the
    // shell's pid for grok-pull.
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg("WATCHDOG_PID=$$; export WATCHDOG_PID; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_grok-pull"))
        .args(["-o", "-v", "-c"])
        .arg(&s.replica.config)
        .env("GITBIN", support::git_binary())
        .env("NOTIFY_SOCKET", &notify_path)
        .env("WATCHDOG_USEC", "300000");
    let mut d = Pulld::spawn(cmd, &s.log());
    s.wait_mirrored(&mut d, &["/a.git"]);
    d.wait_log("stats: 1 fetched");
    // Let a few watchdog periods pass (pings every 0.1s).
    std::thread::sleep(Duration::from_millis(500));
    stop(&mut d);
    let got = collector.join().unwrap();
    assert!(got[0].contains("READY=1"), "{got:?}");
    let pings = got.iter().filter(|m| m.contains("WATCHDOG=1")).count();
    assert!(pings >= 3, "watchdog pings: {got:?}");
    assert!(
        got.iter()
            .any(|m| m.contains("STATUS=1 fetched, 0 active, 0 queued")),
        "{got:?}"
    );
    assert!(got.last().unwrap().contains("STOPPING=1"), "{got:?}");
}

#[test]
fn sighup_reopens_the_log_file() {
    let s = Setup::new(&["/a.git"], "refresh = 3600", false);
    let mut d = s.start();
    s.wait_mirrored(&mut d, &["/a.git"]);
    // The repository is in step a moment before the run's stats line is
    // logged: rotate only after it, or it lands in the new file.
    d.wait_log("stats: 1 fetched");
    let rotated = s.dir.join("replica.log.1");
    std::fs::rename(s.log(), &rotated).unwrap();
    d.signal(Signal::SIGHUP);
    d.wait_log("reopened the log file");
    stop(&mut d);
    assert!(std::fs::read_to_string(&rotated)
        .unwrap()
        .contains("stats: 1 fetched"));
}

/// Inode numbers of a repository's packs: the same after a takeover means
/// nothing was cloned again.
fn pack_inodes(repo: &Path) -> Vec<u64> {
    let mut v: Vec<u64> = std::fs::read_dir(repo.join("objects/pack"))
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().ino())
        .collect();
    v.sort();
    v
}

#[test]
fn housekeeping_runs_at_low_priority_and_yields_to_fetches() {
    // Never paused by a busy test machine (the pause has a unit test).
    let s = Setup::new(
        &[],
        "refresh = 3600\nsocket = ${core:toplevel}/.updater.socket\nhousekeeping_max_load = 0",
        false,
    );
    // 200 commits arrive as one pack; 30 more arrive as loose objects,
    // which asks for a quick repack.
    s.origin.project("/big.git", 200, 1_600_000_000);
    s.origin.manifest();
    // Every `git repack` the daemon starts says who it is and then hangs.
    let marker = s.dir.join("repacking");
    let gitbin = s.dir.join("git-wrapper");
    support::script(
        &gitbin,
        &format!(
            "for a in \"$@\"; do\n  if [ \"$a\" = repack ]; then echo $$ > {marker}; sleep 600; fi\ndone\nexec {git} \"$@\"",
            marker = marker.display(),
            git = support::git_binary().display()
        ),
    );
    let socket = s.replica.top.join(".updater.socket");
    let mut d = Pulld::start(&s.replica.config, &s.log(), |cmd| {
        cmd.env("GITBIN", &gitbin);
    });
    s.wait_mirrored(&mut d, &["/big.git"]);
    fixture::commits(&s.origin.path("/big.git"), "main", 30, 1_700_000_000);
    notify(&socket, &["/big.git"]);
    d.wait_for("the quick repack to start", |_| marker.exists());
    let pid: i32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let nice: i64 = stat[stat.rfind(')').unwrap() + 2..]
        .split(' ')
        .nth(16)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(nice, 19, "housekeeping's git runs at nice 19");

    // A push while the repack holds the repository: the fetch does not
    // wait for it.
    fixture::commits(&s.origin.path("/big.git"), "main", 1, 1_800_000_000);
    notify(&socket, &["/big.git"]);
    s.wait_mirrored(&mut d, &["/big.git"]);
    let log = d.log_text();
    assert!(
        log.contains("spa: /big.git interrupted for a fetch"),
        "{}",
        d.describe()
    );
    assert!(!log.contains("defer: /big.git"), "{}", d.describe());
    // The interrupted repack is gone (or a zombie about to be reaped).
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|st| st[st.rfind(')').unwrap() + 2..].chars().next().unwrap())
        .unwrap_or('X');
    assert!(matches!(state, 'X' | 'Z'), "repack process state {state}");
    stop(&mut d);
}

/// The first 12 hex digits of the SHA-1 of a member's real path: its
/// remote name in the object-storage repository.
fn virtref(member: &Path) -> String {
    use sha1::Digest;
    let real = std::fs::canonicalize(member).unwrap();
    hex::encode(sha1::Sha1::digest(real.as_os_str().as_encoded_bytes()))[..12].to_string()
}

#[test]
fn objstore_members_new_objects_are_fetched_by_housekeeping() {
    let s = Setup::new(
        &["/a.git"],
        "refresh = 3600\nsocket = ${core:toplevel}/.updater.socket\nhousekeeping_max_load = 0",
        false,
    );
    let out = s.replica.pull(&[]);
    assert!(
        out.status.success(),
        "{}",
        support::mirror::output_text(&out)
    );
    // Make /a.git a member of an object-storage repository, the way
    // grok-fsck sets one up.
    let member = s.replica.path("/a.git");
    let obst = s.replica.top.join("objstore/0123abcd.git");
    fixture::init_bare(&obst);
    std::fs::write(
        obst.join("grokmirror.objstore"),
        format!("{}\n", member.display()),
    )
    .unwrap();
    let name = virtref(&member);
    support::git(
        Some(&obst),
        &["remote", "add", &name, member.to_str().unwrap()],
    );
    support::git(
        Some(&obst),
        &[
            "config",
            &format!("remote.{name}.fetch"),
            &format!("+refs/*:refs/virtual/{name}/*"),
        ],
    );
    support::git(
        Some(&obst),
        &["config", &format!("remote.{name}.tagopt"), "--no-tags"],
    );
    std::fs::write(
        member.join("objects/info/alternates"),
        format!("{}/objects\n", obst.display()),
    )
    .unwrap();

    let mut d = s.start();
    d.wait_log("stats: 0 fetched");
    s.push("/a.git", 1_700_000_000);
    notify(&s.replica.top.join(".updater.socket"), &["/a.git"]);
    s.wait_mirrored(&mut d, &["/a.git"]);
    let tip = support::git(
        Some(&s.origin.path("/a.git")),
        &["rev-parse", "refs/heads/main"],
    );
    let virtual_ref = format!("refs/virtual/{name}/heads/main");
    d.wait_for("the objstore fetch", |_| {
        support::run(support::git_cmd(Some(&obst)).args([
            "rev-parse",
            "-q",
            "--verify",
            &virtual_ref,
        ]))
        .stdout
        .starts_with(tip.as_bytes())
    });
    d.wait_log(" objstore: /a.git");
    stop(&mut d);
}

/// The long runs of this module: `scripts/test --quick` skips them
/// (`--skip slow::`).
mod slow {
    use super::*;

    #[test]
    fn takes_over_a_replica_the_reference_made_and_hands_it_back() {
        // Housekeeping never waits for the load here: the test counts the
        // daemon's idle stats lines, which a busy machine would delay.
        let s = Setup::new(
            &["/a.git", "/b.git"],
            "refresh = 3600\nsocket = ${core:toplevel}/.updater.socket\nhousekeeping_max_load = 0",
            false,
        );
        let out = s.replica.pull_oracle(&[]);
        assert!(
            out.status.success(),
            "{}",
            support::mirror::output_text(&out)
        );
        let before = pack_inodes(&s.replica.path("/a.git"));

        // The reference logged to the same file; only our part counts.
        let ours_from = std::fs::read_to_string(s.log()).unwrap().len();
        let mut d = s.start();
        d.wait_log("stats: 0 fetched");
        assert!(
            !d.log_text()[ours_from..].contains("fetch: "),
            "nothing is fetched again\n{}",
            d.describe()
        );
        assert_eq!(pack_inodes(&s.replica.path("/a.git")), before);
        s.push("/b.git", 1_700_000_000);
        s.origin.manifest_hook(&["/b.git"]);
        notify(&s.replica.top.join(".updater.socket"), &["/b.git"]);
        s.wait_mirrored(&mut d, &["/b.git"]);
        stop(&mut d);

        // The reference carries on from what we left.
        let out = s.replica.pull_oracle(&[]);
        let text = support::mirror::output_text(&out);
        assert!(out.status.success(), "{text}");
        assert!(
            !text.contains("fetch:") && !text.contains("reclone"),
            "{text}"
        );
        assert_eq!(pack_inodes(&s.replica.path("/a.git")), before);
    }
}
