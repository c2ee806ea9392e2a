//! Shared helpers for the end-to-end tests: our binaries, the reference
//! grokmirror 2.0.12 (installed on first use), and real git repositories
//! built in temp directories.
//!
//! The modules of tests.rs use what they need as `crate::support::...`;
//! the assertion macros of [`macros`] are in scope everywhere.
#![allow(dead_code)]

#[macro_use]
mod macros;

pub mod attack;
pub mod configparser;
pub mod daemon;
pub mod fixture;
pub mod forks;
pub mod garage;
pub mod haproxy;
pub mod http;
pub mod kill;
pub mod mirror;
pub mod nginx;
pub mod notify;
pub mod public_inbox;
pub mod pulld;
pub mod replica;
pub mod smtp;
pub mod snapshot;

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// The checkout's root directory.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One of our programs, ready to run.
pub fn grok(name: &str) -> Command {
    let path = match name {
        "grok-manifest" => env!("CARGO_BIN_EXE_grok-manifest"),
        "grok-pull" => env!("CARGO_BIN_EXE_grok-pull"),
        "grok-fsck" => env!("CARGO_BIN_EXE_grok-fsck"),
        "grok-bundle" => env!("CARGO_BIN_EXE_grok-bundle"),
        "grok-dumb-pull" => env!("CARGO_BIN_EXE_grok-dumb-pull"),
        "grok-pi-piper" => env!("CARGO_BIN_EXE_grok-pi-piper"),
        "grok-snapshot" => env!("CARGO_BIN_EXE_grok-snapshot"),
        "grok-shallow-tar" => env!("CARGO_BIN_EXE_grok-shallow-tar"),
        "grok-pi-indexer" => env!("CARGO_BIN_EXE_grok-pi-indexer"),
        "grok-publish" => env!("CARGO_BIN_EXE_grok-publish"),
        other => panic!("unknown program {other}"),
    };
    let mut cmd = Command::new(path);
    cmd.env("GITBIN", git_binary());
    cmd
}

/// The absolute path of the git on PATH (both suites run it).
pub fn git_binary() -> PathBuf {
    static GIT: OnceLock<PathBuf> = OnceLock::new();
    GIT.get_or_init(|| {
        let out = Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .expect("sh runs");
        let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(!p.is_empty(), "git is not on PATH");
        PathBuf::from(p)
    })
    .clone()
}

/// `(major, minor)` of the git on PATH.
pub fn git_version() -> (u32, u32) {
    let out = git(None, &["--version"]);
    let v = out.split_whitespace().nth(2).expect("git version output");
    let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// The reference implementation's virtualenv, installed on first use by
/// `scripts/setup-oracle` (under a lock, so parallel tests install once).
/// Panics if it cannot be installed: interop tests never skip silently.
pub fn oracle_venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(|| {
        let venv = std::env::var_os("GROK_ORACLE_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join(".oracle"));
        let lock = workspace_root().join("target/.oracle-install.lock");
        std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
        let _guard = grokmirror::lock::acquire(&lock, grokmirror::lock::Wait::Forever)
            .expect("lock oracle install");
        let status = Command::new(workspace_root().join("scripts/setup-oracle"))
            .arg(&venv)
            .status()
            .expect("run scripts/setup-oracle");
        assert!(
            status.success(),
            "could not install the reference grokmirror 2.0.12 into {} (needs python3 and PyPI)",
            venv.display()
        );
        venv
    })
    .clone()
}

/// One of the reference programs (`grok-manifest`, `grok-pull`,
/// `grok-fsck`), set to use the same git as we do.
pub fn oracle(name: &str) -> Command {
    let mut cmd = Command::new(oracle_venv().join("bin").join(name));
    cmd.env("GITBIN", git_binary());
    cmd
}

/// Run a command, returning its output; panics with everything it printed
/// if it can't start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null());
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Run a command with `input` on its standard input, returning its
/// output; panics if it can't start.
pub fn run_with_input(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // Written from a thread: a program that fills its stdout pipe before
    // reading all of stdin can't deadlock us.
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// Run a command that must succeed; returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A git command with a fixed identity and no user config influence.
pub fn git_cmd(repo: Option<&Path>) -> Command {
    let mut cmd = Command::new(git_binary());
    if let Some(r) = repo {
        cmd.arg(format!("--git-dir={}", r.display()));
    }
    cmd.env("GIT_AUTHOR_NAME", "Test Author")
        .env("GIT_AUTHOR_EMAIL", "author@example.com")
        .env("GIT_COMMITTER_NAME", "Test Committer")
        .env("GIT_COMMITTER_EMAIL", "committer@example.com")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env_remove("GIT_DIR");
    cmd
}

/// Run git (in `repo` when given) and return trimmed stdout; panics on
/// failure.
pub fn git(repo: Option<&Path>, args: &[&str]) -> String {
    run_ok(git_cmd(repo).args(args)).trim_end().to_string()
}

/// Run git with `input` on stdin; returns trimmed stdout; panics on failure.
pub fn git_stdin(repo: Option<&Path>, args: &[&str], input: &[u8]) -> String {
    let out = run_with_input(git_cmd(repo).args(args), input);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

/// `git show-ref` output of a repo ("" when it has no refs).
pub fn show_ref(repo: &Path) -> String {
    let out = run(git_cmd(Some(repo)).arg("show-ref"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// SHA-1 hex of `git show-ref` output: the fingerprint a repo must have.
pub fn show_ref_sha1(repo: &Path) -> String {
    use sha1::Digest;
    hex::encode(sha1::Sha1::digest(show_ref(repo).as_bytes()))
}

/// Read a manifest file (plain or gzip) as JSON.
pub fn read_manifest_json(path: &Path) -> serde_json::Value {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let data = if raw.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        let mut s = Vec::new();
        flate2::read::MultiGzDecoder::new(raw.as_slice())
            .read_to_end(&mut s)
            .unwrap();
        s
    } else {
        raw
    };
    serde_json::from_slice(&data).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// The keys of a JSON object, in its order (for a manifest: the paths of
/// its repositories, sorted); panics if it is not an object.
pub fn json_keys(value: &serde_json::Value) -> Vec<String> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {value}"))
        .keys()
        .cloned()
        .collect()
}

/// The repository paths a manifest file lists, sorted.
pub fn manifest_keys(path: &Path) -> Vec<String> {
    json_keys(&read_manifest_json(path))
}

/// Write a config file and return its path.
pub fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Command-line arguments as strings, for assertions in messages.
pub fn args_of(cmd: &Command) -> Vec<String> {
    cmd.get_args()
        .map(|a: &OsStr| a.to_string_lossy().into_owned())
        .collect()
}

/// Stderr of an output as text.
pub fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Entries of grok-pull's staging area that are not hidden lock files
/// (what a killed or interrupted run may leave), sorted.
pub fn staging_entries(top: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(top.join(".grok-pull.staging"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// A shell script at `path` running `body`, made executable; its path.
pub fn script(path: &Path, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.to_path_buf()
}

/// Make the fetches of the grok-pull run by `cmd` serve themselves with
/// `wrapper` instead of `git upload-pack` (the site must be a local path).
pub fn use_upload_pack<'a>(cmd: &'a mut Command, wrapper: &Path) -> &'a mut Command {
    cmd.env("GIT_CONFIG_COUNT", "1")
        .env("GIT_CONFIG_KEY_0", "remote._grokmirror.uploadpack")
        .env("GIT_CONFIG_VALUE_0", wrapper)
}

/// A `git upload-pack` wrapper in `dir` that touches `started` and then
/// holds the fetch up for `secs` seconds before serving it.
pub fn held_upload_pack(dir: &Path, started: &Path, secs: u32) -> PathBuf {
    script(
        &dir.join("upload-pack"),
        &format!(
            "touch {started}\nsleep {secs}\nexec {git} upload-pack \"$@\"",
            started = started.display(),
            git = git_binary().display()
        ),
    )
}

/// Make `dir` unwritable even for root: a read-only tmpfs mounted over it
/// when we are root and may mount, plain permissions otherwise. Returns a
/// guard that undoes it, or None when neither works here.
pub fn make_unwritable(dir: &Path) -> Option<impl Drop> {
    struct Undo(std::path::PathBuf, bool);
    impl Drop for Undo {
        fn drop(&mut self) {
            if self.1 {
                let _ = std::process::Command::new("umount").arg(&self.0).status();
            } else {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
            }
        }
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    if std::fs::write(dir.join(".probe"), b"").is_err() {
        return Some(Undo(dir.to_path_buf(), false));
    }
    let _ = std::fs::remove_file(dir.join(".probe"));
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
        .arg(dir)
        .status()
        .is_ok_and(|s| s.success());
    mounted.then(|| Undo(dir.to_path_buf(), true))
}
