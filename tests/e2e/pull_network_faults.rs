//! grok-pull against an origin whose HTTP server misbehaves at the network
//! level: it stalls half-way through the manifest, or redirects in a loop.
//! Each time grok-pull gives up on its own (exit 1), says so in one line
//! naming the URL and what to do, and changes nothing: not the replica's
//! repositories, not the local manifest, not the `.remote` state file.
//! And a git server that accepts a fetch and then says nothing: with
//! `[pull] fetch_timeout` the fetch is killed, the repository reported as
//! failed, nothing half-made is left.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::http::{HttpServer, Mode};
use crate::support::mirror::{
    assert_mirrored, no_proxy, output_text, repos_under, Origin, Replica,
};
use crate::support::{grok, show_ref};

/// Only a guard against a hang (the test fails instead of blocking CI);
/// not a statement about speed.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Run `cmd` to completion, killing it and failing the test if it is still
/// running after [`HANG_GUARD`].
fn run_guarded(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(HANG_GUARD) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("{cmd:?} was still running after {HANG_GUARD:?}: it hangs");
        }
    }
}

/// Everything a failed run must leave as it was.
struct Snapshot {
    manifest: Vec<u8>,
    state: Vec<u8>,
    refs: Vec<(String, String)>,
    staging: Vec<String>,
}

fn staging(top: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(top.join(".grok-pull.staging"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn snapshot(replica: &Replica) -> Snapshot {
    Snapshot {
        manifest: std::fs::read(replica.manifest()).unwrap(),
        state: std::fs::read(replica.top.join(".manifest.js.gz.remote")).unwrap(),
        refs: repos_under(&replica.top)
            .into_iter()
            .map(|k| {
                let refs = show_ref(&replica.path(&k));
                (k, refs)
            })
            .collect(),
        staging: staging(&replica.top),
    }
}

fn assert_unchanged(what: &str, replica: &Replica, before: &Snapshot) {
    assert!(
        std::fs::read(replica.manifest()).unwrap() == before.manifest,
        "{what}: the local manifest changed"
    );
    assert!(
        std::fs::read(replica.top.join(".manifest.js.gz.remote")).unwrap() == before.state,
        "{what}: the .remote state file changed"
    );
    let refs: Vec<(String, String)> = repos_under(&replica.top)
        .into_iter()
        .map(|k| {
            let refs = show_ref(&replica.path(&k));
            (k, refs)
        })
        .collect();
    assert_eq!(refs, before.refs, "{what}: the replica's repositories");
    assert_eq!(
        staging(&replica.top),
        before.staging,
        "{what}: the staging area"
    );
}

/// The line of a run without `-v` (only warnings and errors reach stderr
/// then) that reports the failure: the only one naming `url`. Besides it
/// stderr holds at most the run's closing summary line.
fn the_error_line(out: &Output, url: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    let naming: Vec<&str> = lines.iter().copied().filter(|l| l.contains(url)).collect();
    assert_eq!(
        naming.len(),
        1,
        "one line names {url}: {}",
        output_text(out)
    );
    assert!(
        lines.len() <= 2,
        "nothing else but a summary: {}",
        output_text(out)
    );
    naming[0].to_string()
}

/// An origin with two mirrored repositories and a third added after the
/// first pull (so a successful fetch would change the replica), served
/// over HTTP; a replica with a short manifest timeout, already pulled once.
struct Setup {
    _tmp: tempfile::TempDir,
    origin: Origin,
    http: HttpServer,
    replica: Replica,
}

fn setup() -> Setup {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/a.git", 2, 1_600_000_000);
    origin.project("/b.git", 2, 1_600_000_000);
    origin.manifest();
    let http = HttpServer::serve(&origin.root);
    let replica = Replica::with_remote(
        &dir,
        "replica",
        &origin.local_site(),
        &http.url("manifest.js.gz"),
        "purge = yes\n",
        "manifest_timeout = 2\n",
    );
    let out = replica.pull(&[]);
    assert_success!(out);
    origin.project("/c.git", 2, 1_600_000_000);
    support::fixture::commits(&origin.path("/a.git"), "main", 2, 1_600_100_000);
    origin.manifest();
    origin.age_manifest(5);
    Setup {
        _tmp: tmp,
        origin,
        http,
        replica,
    }
}

fn pull_quietly(replica: &Replica, flags: &[&str]) -> Output {
    let mut cmd = grok("grok-pull");
    no_proxy(&mut cmd);
    cmd.args(flags).arg("-c").arg(&replica.config);
    run_guarded(&mut cmd)
}

#[test]
fn an_origin_that_stalls_mid_response_is_timed_out() {
    let s = setup();
    let url = s.http.url("manifest.js.gz");
    let before = snapshot(&s.replica);

    s.http.set_mode(Mode::Stall);
    for flags in [&[][..], &["-n"][..]] {
        let out = pull_quietly(&s.replica, flags);
        assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
        let line = the_error_line(&out, &url);
        assert!(line.contains(&url), "names the URL: {line}");
        assert!(
            line.contains("sent nothing for 2s") && line.contains("[remote] manifest_timeout"),
            "says what happened and what to do: {line}"
        );
        assert_unchanged("stalled origin", &s.replica, &before);
    }
    // The body really was cut off mid-way, not refused up front.
    assert!(
        s.http.requests().iter().any(|r| r.status == 200),
        "{:?}",
        s.http.requests()
    );

    // Once the origin answers again, the next run catches up.
    s.http.set_mode(Mode::Normal);
    let out = s.replica.pull(&[]);
    assert_success!(out);
    for key in ["/a.git", "/b.git", "/c.git"] {
        assert_mirrored(&s.origin.path(key), &s.replica.path(key), "Grokmirror");
    }
}

#[test]
fn a_redirect_loop_is_stopped() {
    let s = setup();
    let url = s.http.url("manifest.js.gz");
    let before = snapshot(&s.replica);

    s.http.set_mode(Mode::RedirectLoop);
    s.http.clear_requests();
    let out = pull_quietly(&s.replica, &["-n"]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let line = the_error_line(&out, &url);
    assert!(line.contains(&url), "names the URL: {line}");
    assert!(
        line.contains("redirect") && line.contains("[remote] manifest"),
        "says what happened and what to do: {line}"
    );
    assert_unchanged("redirect loop", &s.replica, &before);
    // Followed a bounded number of times, not retried.
    let asked = s.http.requests().len();
    assert!((2..=20).contains(&asked), "{asked} requests");

    s.http.set_mode(Mode::Normal);
    let out = s.replica.pull(&[]);
    assert_success!(out);
    for key in ["/a.git", "/b.git", "/c.git"] {
        assert_mirrored(&s.origin.path(key), &s.replica.path(key), "Grokmirror");
    }
}

/// A TCP server on 127.0.0.1 that accepts connections and never says a
/// word: a git daemon that hangs.
struct SilentServer {
    port: u16,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
}

impl SilentServer {
    fn start() -> SilentServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = conns.clone();
        // Lives until the test process ends; it only ever holds sockets.
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                kept.lock().unwrap().push(conn);
            }
        });
        SilentServer { port, conns }
    }

    /// Whether every connection made so far was closed by the client.
    fn all_hung_up(&self) -> bool {
        use std::io::Read;
        self.conns.lock().unwrap().iter_mut().all(|c| {
            c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut buf = [0u8; 4096];
            loop {
                match c.read(&mut buf) {
                    Ok(0) => return true,
                    Ok(_) => continue,
                    Err(_) => return false,
                }
            }
        })
    }
}

#[test]
fn a_git_server_that_stalls_is_given_up_on_after_fetch_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/a.git", 2, 1_600_000_000);
    origin.manifest();
    let url = origin.file_manifest_url();
    let silent = SilentServer::start();
    let replica = Replica::new(
        &dir,
        "replica",
        &format!("git://127.0.0.1:{}", silent.port),
        &url,
        "fetch_timeout = 2\nretries = 2\n",
    );
    let out = pull_quietly(&replica, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("/a.git") && stderr.contains("[pull] fetch_timeout"),
        "{}",
        output_text(&out)
    );
    assert_eq!(silent.conns.lock().unwrap().len(), 2, "two tries");
    assert!(
        silent.all_hung_up(),
        "the stalled gits were killed, not left behind"
    );
    assert_missing!(replica.path("/a.git"), "no half clone");
    assert!(staging(&replica.top).iter().all(|n| n.starts_with('.')));
    if replica.manifest().exists() {
        let local = support::read_manifest_json(&replica.manifest());
        assert!(local.get("/a.git").is_none(), "{local}");
    }

    // With a git daemon that answers, the next run clones it.
    let gitd = support::daemon::GitDaemon::serve(&origin.root);
    let replica = Replica::new(&dir, "replica", &gitd.site(), &url, "fetch_timeout = 600\n");
    let out = replica.pull(&[]);
    assert_success!(out);
    assert_mirrored(
        &origin.path("/a.git"),
        &replica.path("/a.git"),
        "Grokmirror",
    );
}
