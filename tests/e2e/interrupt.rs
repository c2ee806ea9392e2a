//! Two behaviour fixes of grokmirror's next release, checked on the real
//! programs: text files are read and written as UTF-8 whatever the locale
//! (`LC_ALL=C`, `LANG=` empty), and Ctrl-C (a real SIGINT sent to the
//! process) stops grok-manifest, grok-fsck, grok-shallow-tar and a one-shot grok-pull
//! promptly, with exit status 130, one line saying so, no panic, the
//! manifest and status files whole (old or new), no temporary files left.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support;
use crate::support::mirror::{no_proxy, output_text, Origin, Replica};
use crate::support::{git, git_stdin, grok, read_manifest_json, run, script};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

const DESCRIPTION: &str = "Noyau — dépôt «ünïcode» ✓ 李 \u{1F980}";
const OWNER: &str = "Jörg Müller-Łukasz 李四";
const KEY: &str = "/pub/dépôt-ü.git";

/// Set a locale that is not UTF-8: `LC_ALL=C` or, with `lc_all` false,
/// every locale variable unset but `LANG` empty.
fn not_utf8(cmd: &mut Command, lc_all: bool) -> &mut Command {
    for v in ["LC_ALL", "LC_CTYPE", "LANG", "LANGUAGE", "LC_MESSAGES"] {
        cmd.env_remove(v);
    }
    if lc_all {
        cmd.env("LC_ALL", "C")
    } else {
        cmd.env("LANG", "")
    }
}

#[test]
fn text_files_are_utf8_whatever_the_locale() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project(KEY, 2, 1_600_000_000);
    origin.describe(KEY, DESCRIPTION, Some(OWNER));
    origin.project("/pub/plain.git", 1, 1_600_000_000);
    for lc_all in [false, true] {
        let out = run(not_utf8(&mut grok("grok-manifest"), lc_all)
            .arg("-m")
            .arg(&origin.manifest)
            .arg("-t")
            .arg(&origin.root));
        assert_success!(out);
        let m = read_manifest_json(&origin.manifest);
        assert_eq!(m[KEY]["description"], DESCRIPTION, "{m:#}");
        assert_eq!(m[KEY]["owner"], OWNER, "{m:#}");
    }
    origin.age_manifest(-10);

    let replica = Replica::new(
        &dir,
        "replica",
        &origin.local_site(),
        &origin.file_manifest_url(),
        "",
    );
    let mut pull = grok("grok-pull");
    no_proxy(&mut pull);
    let out = run(not_utf8(&mut pull, true)
        .arg("-v")
        .arg("-c")
        .arg(&replica.config));
    assert_success!(out);
    // projects.list names the path byte for byte.
    let listed = std::fs::read(replica.top.join("projects.list")).unwrap();
    assert_eq!(
        listed,
        "pub/dépôt-ü.git\npub/plain.git\n".as_bytes(),
        "{}",
        String::from_utf8_lossy(&listed)
    );
    let mirrored = replica.path(KEY);
    assert_eq!(
        std::fs::read(mirrored.join("description")).unwrap(),
        DESCRIPTION.as_bytes()
    );
    assert_eq!(git(Some(&mirrored), &["config", "gitweb.owner"]), OWNER);
    let local = read_manifest_json(&replica.manifest());
    assert_eq!(local[KEY]["description"], DESCRIPTION);
    assert_eq!(local[KEY]["owner"], OWNER);

    // And a hook run under the C locale keeps them too.
    let out = run(not_utf8(&mut grok("grok-manifest"), true)
        .arg("-m")
        .arg(&origin.manifest)
        .arg("-t")
        .arg(&origin.root)
        .arg(origin.path(KEY)));
    assert_success!(out);
    let m = read_manifest_json(&origin.manifest);
    assert_eq!(m[KEY]["description"], DESCRIPTION);
    assert_eq!(m[KEY]["owner"], OWNER);
}

/// Start `cmd` in a process group of its own (so whatever it leaves can be
/// cleaned up), stderr captured.
fn spawn(cmd: &mut Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn")
}

/// Wait until `path` exists (what a wrapper touches when the work began).
fn wait_for(path: &Path, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        assert!(Instant::now() < deadline, "{what} never started");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Send SIGINT to `child` alone and wait (at most `within`) for it to
/// exit; its status, stderr, and how long it took.
fn interrupt(mut child: Child, within: Duration) -> (ExitStatus, String, Duration) {
    let pid = Pid::from_raw(child.id() as i32);
    kill(pid, Signal::SIGINT).unwrap();
    let sent = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if sent.elapsed() > within {
            let _ = killpg(pid, Signal::SIGKILL);
            let _ = child.wait();
            panic!("did not stop within {within:?} of SIGINT");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = sent.elapsed();
    let mut err = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
    (status, err, took)
}

/// The checks every interrupted run passes: exit 130, exactly one line
/// saying it was interrupted by SIGINT, no panic or traceback.
fn assert_stopped_cleanly(status: ExitStatus, err: &str) {
    assert_eq!(status.code(), Some(130), "{err}");
    let said: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("interrupted by SIGINT"))
        .collect();
    assert_eq!(said.len(), 1, "{err}");
    for bad in ["panicked", "Traceback", "RUST_BACKTRACE"] {
        assert!(!err.contains(bad), "{err}");
    }
}

/// Files under `dir` (recursively) whose name looks temporary: ours
/// (`.<name>.<random>.tmp`) and git's (`tmp_*`, `.tmp-*`, `*.lock`).
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
                continue;
            }
            // The lock files of grokmirror (`.<name>.lock`) stay by design.
            let ours_lock = name.starts_with('.') && name.ends_with(".lock");
            if name.ends_with(".tmp")
                || name.starts_with("tmp_")
                || name.starts_with(".tmp-")
                || (name.ends_with(".lock") && !ours_lock)
            {
                found.push(p);
            }
        }
    }
    found
}

/// A `GITBIN` that touches `started` before running git for a command
/// line matching `pattern` (a `case` pattern), and with `hold` sleeps that
/// long first.
fn marking_git(dir: &Path, pattern: &str, started: &Path, hold: Option<u32>) -> PathBuf {
    let hold = hold
        .map(|s| format!("sleep {s} </dev/null >/dev/null 2>&1\n"))
        .unwrap_or_default();
    script(
        &dir.join("marking-git"),
        &format!(
            "case \"$*\" in {pattern}) touch '{started}'\n{hold};; esac\nexec '{git}' \"$@\"",
            started = started.display(),
            git = support::git_binary().display()
        ),
    )
}

#[test]
fn ctrl_c_stops_grok_manifest_mid_walk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    let a = origin.project("/pub/a.git", 2, 1_600_000_000);
    let slow = origin.project("/pub/slow.git", 2, 1_600_000_000);
    origin.manifest();
    let before = std::fs::read(&origin.manifest).unwrap();
    // A change the interrupted run would have recorded.
    support::fixture::commits(&a, "main", 1, 1_700_000_000);
    // An extension we do not read in process: its refs are read with `git
    // show-ref`, held up by the wrapper while the signal comes.
    git(Some(&slow), &["config", "extensions.unknownToUs", "true"]);
    let started = dir.join("started");
    let gitbin = marking_git(&dir, "*show-ref*", &started, Some(60));
    let child = spawn(
        grok("grok-manifest")
            .env("GITBIN", &gitbin)
            .arg("-v")
            .arg("-m")
            .arg(&origin.manifest)
            .arg("-t")
            .arg(&origin.root),
    );
    wait_for(&started, "git show-ref");
    let (status, err, took) = interrupt(child, Duration::from_secs(10));
    assert_stopped_cleanly(status, &err);
    assert!(took < Duration::from_secs(5), "took {took:?}: {err}");
    assert!(err.contains("the manifest was left as it was"), "{err}");
    assert_eq!(
        std::fs::read(&origin.manifest).unwrap(),
        before,
        "the manifest changed: {err}"
    );
    assert_eq!(temp_files(&origin.root), Vec::<PathBuf>::new(), "{err}");
    // The next run (no signal) records the change.
    let out = run(grok("grok-manifest")
        .arg("-m")
        .arg(&origin.manifest)
        .arg("-t")
        .arg(&origin.root));
    assert_success!(out);
    assert_eq!(
        read_manifest_json(&origin.manifest)["/pub/a.git"]["modified"],
        1_700_000_000
    );
}

/// A repository whose full repack with fresh deltas takes a few seconds.
fn big_repo(path: &Path) {
    use sha1::Digest;
    support::fixture::init_bare(path);
    let mut stream = Vec::new();
    for i in 0..6000u32 {
        let mut content = String::new();
        for j in 0..80u32 {
            content.push_str(&hex::encode(sha1::Sha1::digest(format!("{i}-{j}"))));
            content.push('\n');
        }
        stream.extend_from_slice(
            format!(
                "commit refs/heads/main\ncommitter T <t@example.com> {} +0000\ndata 2\nc\nM 644 inline f{}.txt\ndata {}\n{content}\n",
                1_600_000_000 + i,
                i % 40,
                content.len()
            )
            .as_bytes(),
        );
    }
    stream.extend_from_slice(b"done\n");
    git_stdin(Some(path), &["fast-import", "--quiet", "--done"], &stream);
}

#[test]
fn ctrl_c_stops_grok_fsck_mid_repack() {
    let r = support::replica::Replica::new("", "");
    let repo = r.repo("pub/big.git");
    big_repo(&repo);
    support::fixture::project(&r.repo("pub/small.git"), 2, 1_600_000_000);
    r.manifest();
    // A full repack with deltas recomputed, asked for as operators do.
    std::fs::write(repo.join("grokmirror.repack"), b"").unwrap();
    let status_before = std::fs::read(&r.status_file).ok();
    let started = r.dir.path().join("started");
    let gitbin = marking_git(r.dir.path(), "*repack*", &started, None);
    let child = spawn(
        grok("grok-fsck")
            .env("GITBIN", &gitbin)
            .arg("-v")
            .arg("-f")
            .arg("-c")
            .arg(&r.config),
    );
    wait_for(&started, "git repack");
    // Mid-repack: git is packing objects.
    std::thread::sleep(Duration::from_millis(300));
    let (status, err, took) = interrupt(child, Duration::from_secs(20));
    assert_stopped_cleanly(status, &err);
    assert!(took < Duration::from_secs(10), "took {took:?}: {err}");
    assert!(!err.contains("unsuccessful"), "{err}");
    assert!(!err.contains("cannot run git"), "{err}");
    // The status file is whole: the old one, or a complete new one.
    let text = std::fs::read_to_string(&r.status_file).unwrap_or_default();
    if Some(text.as_bytes().to_vec()) != status_before {
        serde_json::from_str::<serde_json::Value>(&text)
            .unwrap_or_else(|e| panic!("status file half-written ({e}): {text}\n{err}"));
    }
    assert_eq!(temp_files(&r.top), Vec::<PathBuf>::new(), "{err}");
    // The repository is intact, and the repack request is still there
    // for the next run.
    git(
        Some(&repo),
        &["fsck", "--connectivity-only", "--no-progress"],
    );
    assert!(repo.join("grokmirror.repack").exists(), "{err}");
    // The next run does the work.
    let out = r.fsck(&["-f"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(!repo.join("grokmirror.repack").exists());
}

#[test]
fn ctrl_c_stops_a_one_shot_grok_pull_mid_clone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/slow.git", 5, 1_600_000_000);
    origin.project("/fast.git", 1, 1_600_000_000);
    origin.manifest();
    // The default grace period (60 s) is for service managers: Ctrl-C
    // does not wait for it.
    let replica = Replica::new(
        &dir,
        "replica",
        &origin.local_site(),
        &origin.file_manifest_url(),
        "",
    );
    let started = dir.join("started");
    let wrapper = support::held_upload_pack(&dir, &started, 60);
    let mut cmd = grok("grok-pull");
    no_proxy(&mut cmd);
    support::use_upload_pack(&mut cmd, &wrapper)
        .arg("-v")
        .arg("-c")
        .arg(&replica.config);
    let child = spawn(&mut cmd);
    let pid = Pid::from_raw(child.id() as i32);
    wait_for(&started, "the clone");
    let (status, err, took) = interrupt(child, Duration::from_secs(20));
    // What the killed git left running (the held upload-pack) goes too.
    let _ = killpg(pid, Signal::SIGKILL);
    assert_stopped_cleanly(status, &err);
    assert!(took < Duration::from_secs(10), "took {took:?}: {err}");
    assert!(
        support::staging_entries(&replica.top).is_empty(),
        "the interrupted clone was cleaned up: {err}"
    );
    assert_eq!(temp_files(&replica.top), Vec::<PathBuf>::new(), "{err}");
    // The local manifest, when written, is whole.
    if replica.manifest().exists() {
        read_manifest_json(&replica.manifest());
    }
    // The next run mirrors everything.
    let out = replica.pull(&[]);
    assert_success!(out);
    assert!(replica.path("/slow.git").is_dir());
    assert!(replica.path("/fast.git").is_dir());
}

#[test]
fn ctrl_c_stops_grok_shallow_tar_mid_clone() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/pub/x.git", 5, 1_600_000_000);
    origin.manifest();
    let config = support::write_config(
        &dir,
        "tar.conf",
        &format!(
            "[core]\ntoplevel = {}\nmanifest = {}\n",
            origin.root.display(),
            origin.manifest.display()
        ),
    );
    let out = dir.join("out");
    let started = dir.join("started");
    let gitbin = marking_git(&dir, "*clone*", &started, Some(60));
    let args = |cmd: &mut Command| {
        cmd.arg("-c")
            .arg(&config)
            .arg("-o")
            .arg(&out)
            .args(["--clone-url-base", "https://git.example.org"])
            .args(["--branches", "/pub/x.git:main"]);
    };
    let mut cmd = grok("grok-shallow-tar");
    args(&mut cmd);
    let child = spawn(cmd.env("GITBIN", &gitbin));
    let pid = Pid::from_raw(child.id() as i32);
    wait_for(&started, "the clone");
    let (status, err, took) = interrupt(child, Duration::from_secs(20));
    let _ = killpg(pid, Signal::SIGKILL);
    assert_stopped_cleanly(status, &err);
    assert!(took < Duration::from_secs(10), "took {took:?}: {err}");
    // No tarball, no link, no temporary clone or file left.
    let left: Vec<String> = walk_names(&out);
    assert!(
        left.iter().all(|n| n == "pub"),
        "left behind: {left:?}: {err}"
    );
    // The next run publishes.
    let mut cmd = grok("grok-shallow-tar");
    args(&mut cmd);
    let done = run(&mut cmd);
    assert_success!(done);
    assert!(out.join("pub/x.main.shallow.latest.tar").exists());
}

/// Every name under `dir`, recursively.
fn walk_names(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            names.push(e.file_name().to_string_lossy().into_owned());
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(e.path());
            }
        }
    }
    names
}
