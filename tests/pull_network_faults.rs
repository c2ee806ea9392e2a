//! grok-pull against an origin whose HTTP server misbehaves at the network
//! level: it stalls half-way through the manifest, or redirects in a loop.
//! Each time grok-pull gives up on its own (exit 1), says so in one line
//! naming the URL and what to do, and changes nothing: not the replica's
//! repositories, not the local manifest, not the `.remote` state file.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::http::{HttpServer, Mode};
use support::mirror::{assert_mirrored, no_proxy, output_text, repos_under, Origin, Replica};
use support::{grok, show_ref};

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
        &origin.root.display().to_string(),
        &http.url("manifest.js.gz"),
        "purge = yes\n",
        "manifest_timeout = 2\n",
    );
    let out = replica.pull(&[]);
    assert!(out.status.success(), "{}", output_text(&out));
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
    assert!(out.status.success(), "{}", output_text(&out));
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
    assert!(out.status.success(), "{}", output_text(&out));
    for key in ["/a.git", "/b.git", "/c.git"] {
        assert_mirrored(&s.origin.path(key), &s.replica.path(key), "Grokmirror");
    }
}
