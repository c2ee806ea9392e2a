//! The daemon's signed HTTP notifications (`[pull] notify_listen`,
//! `notify_secret_file`, `notify_peers`), end to end with real processes:
//! a signed POST fetches at once (refresh is an hour, so nothing else can
//! explain it), unsigned and wrongly signed ones are refused and change
//! nothing, a flood is cut with 429 and logged once, bodies over the
//! bounds get 413, and a hub tells its leaf what it fetched.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::daemon::GitDaemon;
use crate::support::fixture;
use crate::support::http::HttpServer;
use crate::support::mirror::{Origin, Replica};
use crate::support::notify::{
    exchange, listen_addr, listening, post, post_signed, secret_file, sign, SECRET,
};
use crate::support::pulld::{Pulld, PATIENCE};
use crate::support::{grok, run, show_ref};
use nix::sys::signal::Signal;

fn in_step(origin: &Path, replica: &Path) -> bool {
    replica.is_dir() && show_ref(replica) == show_ref(origin)
}

fn stop(d: &mut Pulld) {
    d.signal(Signal::SIGTERM);
    let status = d.wait_exit(PATIENCE);
    assert_eq!(status.code(), Some(0), "{}", d.describe());
}

/// An origin over HTTP and git://, and a replica daemon with the endpoint.
struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    origin: Origin,
    http: HttpServer,
    _gitd: GitDaemon,
    replica: Replica,
}

impl Setup {
    fn new(keys: &[&str]) -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(tmp.path()).unwrap();
        let origin = Origin::new(&dir);
        for (i, key) in keys.iter().enumerate() {
            origin.project(key, 3, 1_600_000_000 + 1000 * i as i64);
        }
        origin.manifest();
        let http = HttpServer::serve(&origin.root);
        let gitd = GitDaemon::serve(&origin.root);
        let secret = secret_file(&dir);
        let replica = Replica::new(
            &dir,
            "replica",
            &gitd.site(),
            &http.url("manifest.js.gz"),
            &listening(&secret),
        );
        Setup {
            _tmp: tmp,
            dir,
            origin,
            http,
            _gitd: gitd,
            replica,
        }
    }

    /// Start the daemon, wait for its first mirror; its address.
    fn start(&self, keys: &[&str]) -> (Pulld, String) {
        let mut d = Pulld::start(&self.replica.config, &self.dir.join("replica.log"), |_| {});
        let addr = listen_addr(&mut d);
        d.wait_for("the first mirror", |_| keys.iter().all(|k| self.in_step(k)));
        d.wait_log(&format!("stats: {} fetched", keys.len()));
        (d, addr)
    }

    fn in_step(&self, key: &str) -> bool {
        in_step(&self.origin.path(key), &self.replica.path(key))
    }

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

#[test]
fn a_signed_notification_fetches_at_once_and_nothing_else_does() {
    let s = Setup::new(&["/a.git", "/b.git", "/c.git"]);
    let (mut d, addr) = s.start(&["/a.git", "/b.git", "/c.git"]);

    // Refused, in every way, for /a.git: it is not fetched.
    s.push("/a.git", 1_700_000_000);
    let body = b"/a.git\n";
    assert_eq!(post(&addr, body, None), 401, "unsigned");
    let wrong = sign("another secret", body);
    assert_eq!(post(&addr, body, Some(&wrong)), 401, "wrong secret");
    let other_body = sign(SECRET, b"/b.git\n");
    assert_eq!(
        post(&addr, body, Some(&other_body)),
        401,
        "another body's signature"
    );
    assert_eq!(post(&addr, body, Some("sha256=nothex")), 401, "malformed");
    assert_eq!(
        exchange(&addr, b"GET /notify HTTP/1.1\r\nHost: x\r\n\r\n"),
        405
    );

    // Signed: fetched now, not in an hour. Notifications are handled in
    // order, so once /b.git is in step the refused ones were not acted on.
    s.push("/b.git", 1_700_000_100);
    let posted = Instant::now();
    assert_eq!(post_signed(&addr, "/b.git\n"), 204);
    d.wait_for("/b.git in step", |_| s.in_step("/b.git"));
    eprintln!(
        "signed POST -> the replica has the commit: {:?}",
        posted.elapsed()
    );
    assert!(
        !s.in_step("/a.git"),
        "a refused notification fetched\n{}",
        d.describe()
    );
    assert!(
        !d.log_text().contains("listener: /a.git"),
        "{}",
        d.describe()
    );

    // grokmirror's Pub/Sub push message, signed the same way.
    let pubsub = r#"{"message": {"attributes": {"proj": "test", "repo": "/a.git"}, "data": "", "messageId": "7"}, "subscription": "projects/p/subscriptions/s"}"#;
    assert_eq!(post_signed(&addr, pubsub), 204);
    d.wait_for("/a.git in step", |_| s.in_step("/a.git"));

    // Bounds and bad bodies, signed or not: refused whole.
    s.push("/c.git", 1_700_000_200);
    assert_eq!(
        exchange(
            &addr,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n"
        ),
        413,
        "a body over 64 KiB is refused before it is read"
    );
    let many: String = (0..300).map(|i| format!("/r{i}.git\n")).collect();
    assert_eq!(post_signed(&addr, &many), 413, "more than 256 paths");
    assert_eq!(post_signed(&addr, "/c.git\n/../etc/passwd\n"), 400);
    assert_eq!(post_signed(&addr, "\n"), 400);
    let mut huge_head = b"POST / HTTP/1.1\r\nX-Junk: ".to_vec();
    huge_head.extend(std::iter::repeat_n(b'j', 10_000));
    huge_head.extend_from_slice(b"\r\nContent-Length: 7\r\n\r\n/c.git\n");
    assert_eq!(exchange(&addr, &huge_head), 413, "a head over 8 KiB");
    // Unknown paths are the engine's to ignore, as from the socket.
    assert_eq!(post_signed(&addr, "/nope.git\n"), 204);
    d.wait_log("listener: /nope.git (not known, ignored)");
    assert!(!s.in_step("/c.git"), "only refused requests named /c.git");

    // The README's recipe (openssl and curl), as written there.
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = &readme[readme.find("#### HTTP notifications").unwrap()..];
    let start = section.find("```sh\n").unwrap() + 6;
    let recipe = &section[start..start + section[start..].find("```").unwrap()];
    let recipe = recipe
        .replace(
            "/etc/grokmirror/notify.secret",
            &s.dir.join("notify.secret").display().to_string(),
        )
        .replace("/tmp/body", &s.dir.join("body").display().to_string())
        .replace("http://192.0.2.10:9232/", &format!("http://{addr}/"))
        .replace("/pub/scm/git/git.git", "/c.git");
    let out = run(std::process::Command::new("sh").args(["-ec", &recipe]));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "204",
        "{recipe}\n{}",
        crate::support::mirror::output_text(&out)
    );
    d.wait_for("/c.git in step", |_| s.in_step("/c.git"));

    assert_eq!(
        s.manifest_requests(),
        1,
        "no poll since the start: only the notifications explain the fetches"
    );
    stop(&mut d);
}

#[test]
fn a_flood_of_unsigned_requests_gets_429_and_one_log_line() {
    let s = Setup::new(&["/a.git"]);
    let (mut d, addr) = s.start(&["/a.git"]);
    s.push("/a.git", 1_700_000_000);
    let mut codes = std::collections::BTreeMap::<u16, usize>::new();
    for _ in 0..300 {
        *codes.entry(post(&addr, b"/a.git\n", None)).or_default() += 1;
    }
    eprintln!("answers to 300 unsigned requests: {codes:?}");
    assert!(codes.keys().all(|c| *c == 401 || *c == 429), "{codes:?}");
    assert!(codes.get(&401).copied().unwrap_or(0) >= 1, "{codes:?}");
    assert!(
        codes.get(&429).copied().unwrap_or(0) >= 100,
        "a flood is rate-limited: {codes:?}"
    );
    let log = d.log_text();
    let refusals: Vec<&str> = log.lines().filter(|l| l.contains("refused")).collect();
    assert_eq!(
        log.matches("refused a notification from 127.0.0.1").count(),
        1,
        "{refusals:#?}"
    );
    assert!(
        refusals.len() <= 2,
        "one line, and at most a summary, not a line per request: {refusals:#?}"
    );
    assert!(!s.in_step("/a.git"));

    // The daemon still takes a signed one once the bucket refills.
    let deadline = Instant::now() + PATIENCE;
    loop {
        match post_signed(&addr, "/a.git\n") {
            204 => break,
            429 if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(250)),
            other => panic!("answered {other}\n{}", d.describe()),
        }
    }
    d.wait_for("/a.git in step", |_| s.in_step("/a.git"));
    stop(&mut d);
}

#[test]
fn a_hub_tells_its_leaf_what_it_fetched() {
    let s = Setup::new(&["/a.git"]);
    // The hub mirrors once, so the leaf has something to start from.
    let out = s.replica.pull(&[]);
    assert!(
        out.status.success(),
        "{}",
        crate::support::mirror::output_text(&out)
    );
    let hub_http = HttpServer::serve(&s.replica.top);
    let hub_gitd = GitDaemon::serve(&s.replica.top);
    let leaf = Replica::new(
        &s.dir,
        "leaf",
        &hub_gitd.site(),
        &hub_http.url("manifest.js.gz"),
        &listening(&s.dir.join("notify.secret")),
    );
    let mut leaf_d = Pulld::start(&leaf.config, &s.dir.join("leaf.log"), |_| {});
    let leaf_addr = listen_addr(&mut leaf_d);
    leaf_d.wait_for("the leaf's first mirror", |_| {
        in_step(&s.origin.path("/a.git"), &leaf.path("/a.git"))
    });
    leaf_d.wait_log("stats: 1 fetched");

    let mut conf = std::fs::read_to_string(&s.replica.config).unwrap();
    conf.push_str(&format!("notify_peers = http://{leaf_addr}/\n"));
    std::fs::write(&s.replica.config, conf).unwrap();
    let mut hub = Pulld::start(&s.replica.config, &s.dir.join("replica.log"), |_| {});
    let hub_addr = listen_addr(&mut hub);

    s.push("/a.git", 1_700_000_000);
    let posted = Instant::now();
    assert_eq!(post_signed(&hub_addr, "/a.git\n"), 204);
    leaf_d.wait_for("the leaf to have the new commit", |_| {
        in_step(&s.origin.path("/a.git"), &leaf.path("/a.git"))
    });
    eprintln!(
        "POST to the hub -> the leaf has the commit: {:?}",
        posted.elapsed()
    );
    leaf_d.wait_log("listener: /a.git");
    assert_eq!(
        hub_http
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("manifest.js.gz"))
            .count(),
        1,
        "the leaf polled the hub once, at its start: the hub's notification fetched the commit"
    );
    assert!(
        !hub.log_text().contains("cannot notify"),
        "{}",
        hub.describe()
    );

    // A single run of the hub (no -o) tells the leaf too.
    stop(&mut hub);
    s.push("/a.git", 1_700_000_050);
    s.origin.manifest_hook(&["/a.git"]);
    let out = s.replica.pull(&[]);
    assert!(
        out.status.success(),
        "{}",
        crate::support::mirror::output_text(&out)
    );
    assert!(s.in_step("/a.git"), "the single run fetched");
    leaf_d.wait_for("the leaf to have the single run's commit", |_| {
        in_step(&s.origin.path("/a.git"), &leaf.path("/a.git"))
    });
    assert_eq!(leaf_d.log_text().matches("listener: /a.git").count(), 2);

    // The leaf gone: the hub says so once, and goes on pulling.
    stop(&mut leaf_d);
    let mut hub = Pulld::start(&s.replica.config, &s.dir.join("replica.log"), |_| {});
    let hub_addr = {
        // The log has the first run's address too: wait for the second.
        const SAYS: &str = "listening for signed notifications on http://";
        hub.wait_log_count(SAYS, 2);
        let log = hub.log_text();
        let rest = &log[log.rfind(SAYS).unwrap() + SAYS.len()..];
        rest[..rest.find('/').unwrap()].to_string()
    };
    for (i, when) in [1_700_000_100, 1_700_000_200].into_iter().enumerate() {
        s.push("/a.git", when);
        assert_eq!(post_signed(&hub_addr, "/a.git\n"), 204);
        hub.wait_for("the hub in step", |_| s.in_step("/a.git"));
        hub.wait_log_count("listener: /a.git", i + 2);
    }
    hub.wait_log("cannot notify");
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        hub.log_text().matches("cannot notify").count(),
        1,
        "{}",
        hub.describe()
    );
    stop(&mut hub);
}

#[test]
fn without_a_usable_secret_the_daemon_refuses_to_start() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let replica = Replica::new(
        &dir,
        "replica",
        "git://127.0.0.1:1",
        "file:///nonexistent/manifest.js.gz",
        "refresh = 3600\nnotify_listen = 127.0.0.1:0\n",
    );
    let out = run(grok("grok-pull").args(["-o", "-c"]).arg(&replica.config));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("notify_secret_file"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");
    let out = run(grok("grok-pull")
        .args(["--config-check", "--no-network", "-c"])
        .arg(&replica.config));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("notify_secret_file is not"),
        "{out:?}"
    );

    // An empty secret is refused as well; a readable one that others may
    // read is a --config-check warning.
    let secret = dir.join("notify.secret");
    std::fs::write(&secret, "\n").unwrap();
    let mut conf = std::fs::read_to_string(&replica.config).unwrap();
    conf.push_str(&format!("notify_secret_file = {}\n", secret.display()));
    std::fs::write(&replica.config, conf).unwrap();
    let out = run(grok("grok-pull").args(["-o", "-c"]).arg(&replica.config));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is empty"),
        "{out:?}"
    );

    std::fs::write(&secret, "s3cret\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let check = |replica: &Replica| {
        run(grok("grok-pull")
            .args(["--config-check", "--no-network", "-c"])
            .arg(&replica.config))
    };
    let out = check(&replica);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("readable by group or others"), "{text}");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = check(&replica);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("notify_secret_file"), "{text}");

    // A peer that is not a URL: refused before anything is fetched, by a
    // single run too.
    let mut conf = std::fs::read_to_string(&replica.config).unwrap();
    conf.push_str("notify_peers = leaf:9232\n");
    std::fs::write(&replica.config, conf).unwrap();
    let out = run(grok("grok-pull").arg("-c").arg(&replica.config));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"leaf:9232\" is not an http"), "{stderr}");
}
