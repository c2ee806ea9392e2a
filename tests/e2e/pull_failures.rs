//! grok-pull when things go wrong: the origin's HTTP server fails, the
//! manifest is broken or empty, a repository is missing or its transfer
//! dies half-way, grok-pull itself is killed mid-clone. Every time: the
//! failing part is reported (exit 1) and retried next run, everything else
//! is mirrored, nothing half-made is visible, the local manifest never
//! loses entries.

use crate::support;

use crate::support::stderr_of as stderr;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use crate::support::http::{closed_port, HttpServer, Mode};
use crate::support::mirror::{
    assert_mirrored, no_proxy, output_text, repos_under, Origin, Replica,
};
use crate::support::{
    grok, held_upload_pack, read_manifest_json, script, staging_entries, use_upload_pack,
};

#[test]
fn broken_manifest_sources_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/a.git", 2, 1_600_000_000);
    origin.project("/b.git", 2, 1_600_000_000);
    origin.manifest();
    let http = HttpServer::serve(&origin.root);
    let site = origin.local_site();
    let replica = Replica::new(
        &dir,
        "replica",
        &site,
        &http.url("manifest.js.gz"),
        "purge = yes\n",
    );
    let out = replica.pull(&[]);
    assert_success!(out);
    let manifest_before = std::fs::read(replica.manifest()).unwrap();
    let state_before = std::fs::read(replica.top.join(".manifest.js.gz.remote")).unwrap();

    let check_unchanged = |what: &str, out: &std::process::Output| {
        assert_eq!(out.status.code(), Some(1), "{what}: {}", output_text(out));
        assert_eq!(
            std::fs::read(replica.manifest()).unwrap(),
            manifest_before,
            "{what}: local manifest"
        );
        assert_eq!(
            std::fs::read(replica.top.join(".manifest.js.gz.remote")).unwrap(),
            state_before,
            "{what}: state file"
        );
        for key in ["/a.git", "/b.git"] {
            assert_mirrored(&origin.path(key), &replica.path(key), "Grokmirror");
        }
    };

    // HTTP 500: retried, then reported.
    http.set_mode(Mode::Status(500));
    http.clear_requests();
    let out = replica.pull(&["-n"]);
    check_unchanged("500", &out);
    assert_stderr_contains!(out, "500");
    assert_eq!(http.requests().len(), 4, "one try and three retries");

    // A body cut short (a truncated gzip stream).
    http.set_mode(Mode::Truncate);
    let out = replica.pull(&["-n"]);
    check_unchanged("truncated", &out);

    // A gzip file that is itself truncated, served completely.
    http.set_mode(Mode::Normal);
    let good = std::fs::read(&origin.manifest).unwrap();
    std::fs::write(&origin.manifest, &good[..good.len() / 2]).unwrap();
    let out = replica.pull(&["-n"]);
    check_unchanged("truncated gzip", &out);
    assert_stderr_contains!(out, "manifest.js.gz");

    // An empty manifest would purge everything: refused.
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(b"{}").unwrap();
    std::fs::write(&origin.manifest, enc.finish().unwrap()).unwrap();
    let out = replica.pull(&["-n"]);
    check_unchanged("empty", &out);
    assert_stderr_contains!(out, "empty");

    // Not JSON at all.
    std::fs::write(&origin.manifest, b"<html>oops</html>").unwrap();
    let out = replica.pull(&["-n"]);
    check_unchanged("garbage", &out);

    // Nobody listening.
    let refused = Replica::new(
        &dir,
        "replica",
        &site,
        &format!("http://127.0.0.1:{}/manifest.js.gz", closed_port()),
        "purge = yes\n",
    );
    let out = refused.pull(&["-n"]);
    check_unchanged("connection refused", &out);
    assert_stderr_contains!(out, "127.0.0.1");
}

/// Runs upload-pack, forwards its output until the pack data has started,
/// then kills it: a transfer that dies half-way.
const CUT_PACK: &str = r#"
import os, subprocess, sys
proc = subprocess.Popen([sys.argv[1], "upload-pack"] + sys.argv[2:], stdout=subprocess.PIPE)
out = sys.stdout.buffer
seen = b""
while True:
    chunk = os.read(proc.stdout.fileno(), 65536)
    if not chunk:
        break
    seen += chunk
    at = seen.find(b"PACK")
    if at >= 0:
        out.write(chunk[: max(0, len(chunk) - (len(seen) - at)) + 64])
        out.flush()
        proc.kill()
        sys.exit(1)
    out.write(chunk)
    out.flush()
    seen = seen[-8:]
sys.exit(proc.wait())
"#;

#[test]
fn failed_repositories_are_reported_and_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/old.git", 2, 1_600_000_000);
    origin.manifest();
    // Settled manifests (a manifest read within the second it was modified
    // is read again by the next run, see tests/slow/concurrency.rs).
    origin.age_manifest(-20);
    let site = origin.local_site();
    let url = origin.file_manifest_url();
    let replica = Replica::new(&dir, "replica", &site, &url, "");
    let out = replica.pull(&[]);
    assert_success!(out);

    // Three new repositories: one is missing on the server, one's transfer
    // dies half-way (upload-pack output cut short), one is fine.
    origin.project("/good.git", 2, 1_600_000_000);
    origin.project("/missing.git", 2, 1_600_000_000);
    origin.project("/broken.git", 30, 1_600_000_000);
    origin.manifest();
    // mtimes have one-second resolution in the state file.
    origin.age_manifest(-10);
    let parked = dir.join("parked.git");
    std::fs::rename(origin.path("/missing.git"), &parked).unwrap();
    let cutter = dir.join("cut-pack.py");
    std::fs::write(&cutter, CUT_PACK).unwrap();
    let wrapper = script(
        &dir.join("upload-pack"),
        &format!(
            "case \"$1\" in *broken*) exec python3 {cutter} {git} \"$@\";; esac\nexec {git} upload-pack \"$@\"",
            cutter = cutter.display(),
            git = support::git_binary().display()
        ),
    );
    let mut cmd = grok("grok-pull");
    no_proxy(&mut cmd);
    use_upload_pack(&mut cmd, &wrapper)
        .arg("-v")
        .arg("-c")
        .arg(&replica.config);
    let out = support::run(&mut cmd);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let err = stderr(&out);
    assert!(
        err.contains("1 cloned, 0 updated, 1 unchanged, 0 purged, 2 failed"),
        "{}",
        output_text(&out)
    );
    assert!(
        err.contains("failed: /broken.git") && err.contains("/missing.git"),
        "{}",
        output_text(&out)
    );
    assert_mirrored(
        &origin.path("/good.git"),
        &replica.path("/good.git"),
        "Grokmirror",
    );
    assert_missing!(replica.path("/missing.git"));
    assert_missing!(
        replica.path("/broken.git"),
        "no half clone at the final path"
    );
    assert_eq!(repos_under(&replica.top), vec!["/good.git", "/old.git"]);
    assert!(
        staging_entries(&replica.top).is_empty(),
        "failed clones leave nothing staged"
    );
    let local = read_manifest_json(&replica.manifest());
    let keys = support::json_keys(&local);
    assert_eq!(
        keys,
        vec!["/good.git", "/old.git"],
        "the local manifest keeps its entries"
    );

    // Fixed at the origin; the manifest did not change, the next run still
    // retries (a failed run does not record the manifest as seen).
    std::fs::rename(&parked, origin.path("/missing.git")).unwrap();
    let out = replica.pull(&[]);
    assert_success!(out);
    assert_stderr_contains!(out, "2 cloned");
    for key in ["/old.git", "/good.git", "/missing.git", "/broken.git"] {
        assert_mirrored(&origin.path(key), &replica.path(key), "Grokmirror");
    }
    let out = replica.pull(&[]);
    assert_stderr_contains!(out, "nothing to do");
}

#[test]
fn killed_mid_clone_leaves_nothing_visible_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/slow.git", 20, 1_600_000_000);
    origin.manifest();
    let site = origin.local_site();
    let url = origin.file_manifest_url();
    let replica = Replica::new(&dir, "replica", &site, &url, "");
    let started = dir.join("started");
    let wrapper = held_upload_pack(&dir, &started, 60);
    let mut cmd = grok("grok-pull");
    no_proxy(&mut cmd);
    use_upload_pack(&mut cmd, &wrapper)
        .arg("-c")
        .arg(&replica.config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0);
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the clone never started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "grok-pull exited early"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Kill grok-pull and everything it started, without warning.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();

    assert_missing!(replica.path("/slow.git"), "nothing at the final path");
    assert_eq!(
        staging_entries(&replica.top).len(),
        1,
        "the killed clone left its staging entry"
    );
    assert!(
        repos_under(&replica.top).is_empty(),
        "the leftover does not look like a repository to a tree walk"
    );

    let out = replica.pull(&[]);
    assert_success!(out);
    assert_stderr_contains!(out, "left over by an interrupted run");
    assert_mirrored(
        &origin.path("/slow.git"),
        &replica.path("/slow.git"),
        "Grokmirror",
    );
    assert!(staging_entries(&replica.top).is_empty());
}

#[test]
fn sigterm_stops_a_run_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/slow.git", 5, 1_600_000_000);
    origin.manifest();
    let site = origin.local_site();
    let url = origin.file_manifest_url();
    // The stalled fetch gets a one-second grace period, then is killed.
    let replica = Replica::new(&dir, "replica", &site, &url, "shutdown_grace = 1");
    let started = dir.join("started");
    let wrapper = held_upload_pack(&dir, &started, 60);
    let mut cmd = grok("grok-pull");
    no_proxy(&mut cmd);
    use_upload_pack(&mut cmd, &wrapper)
        .arg("-v")
        .arg("-c")
        .arg(&replica.config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().unwrap();
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the clone never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "grok-pull did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // What the killed git left running (the stalled upload-pack) goes too.
    let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    // Stopping on request is not a failure: nothing had failed before it.
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(err.contains("waiting up to 1s"), "{err}");
    assert!(err.contains("grace period is over"), "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    assert_missing!(replica.path("/slow.git"));
    assert!(
        staging_entries(&replica.top).is_empty(),
        "the interrupted clone was cleaned up"
    );
}
