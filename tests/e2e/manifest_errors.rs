//! Bad input to grok-manifest: one line on stderr naming the problem, the
//! documented exit code (1 error, 2 usage), and the existing manifest
//! untouched.

use std::process::Output;

use crate::support::fixture::project;
use crate::support::{grok, make_unwritable, run, run_ok, stderr_of};

const EXIT_FAILURE: i32 = 1;
const EXIT_USAGE: i32 = 2;

/// The program failed with `code` and said so in one line mentioning `needle`.
fn assert_one_line_error(out: &Output, code: i32, needle: &str) {
    let err = stderr_of(out);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {err}");
    assert!(lines[0].contains(needle), "{needle:?} not named in: {err}");
    assert!(!err.contains("panicked"), "{err}");
}

struct Tree {
    _dir: tempfile::TempDir,
    top: std::path::PathBuf,
    manifest: std::path::PathBuf,
    original: Vec<u8>,
}

/// A tree with one repo and a manifest of it.
fn tree() -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("top");
    project(&top.join("a.git"), 1, 1_600_000_000);
    let manifest = dir.path().join("manifest.js.gz");
    run_ok(grok("grok-manifest").args([
        "-m",
        manifest.to_str().unwrap(),
        "-t",
        top.to_str().unwrap(),
    ]));
    let original = std::fs::read(&manifest).unwrap();
    Tree {
        _dir: dir,
        top,
        manifest,
        original,
    }
}

impl Tree {
    fn manifest_unchanged(&self) {
        assert_eq!(
            std::fs::read(&self.manifest).unwrap(),
            self.original,
            "manifest was modified"
        );
    }
}

#[test]
fn missing_toplevel() {
    let t = tree();
    let out = run(grok("grok-manifest").args([
        "-m",
        t.manifest.to_str().unwrap(),
        "-t",
        "/nonexistent/top",
    ]));
    assert_one_line_error(&out, EXIT_USAGE, "/nonexistent/top");
    t.manifest_unchanged();
}

#[test]
fn path_that_is_not_a_bare_repo() {
    let t = tree();
    let plain = t.top.join("not-a-repo");
    std::fs::create_dir_all(&plain).unwrap();
    let out = run(grok("grok-manifest").args([
        "-m",
        t.manifest.to_str().unwrap(),
        "-t",
        t.top.to_str().unwrap(),
        plain.to_str().unwrap(),
    ]));
    assert_one_line_error(&out, EXIT_USAGE, "not-a-repo");
    t.manifest_unchanged();

    let outside = tempfile::tempdir().unwrap();
    let elsewhere = project(&outside.path().join("b.git"), 1, 1_600_000_000);
    let out = run(grok("grok-manifest").args([
        "-m",
        t.manifest.to_str().unwrap(),
        "-t",
        t.top.to_str().unwrap(),
        elsewhere.to_str().unwrap(),
    ]));
    assert_one_line_error(&out, EXIT_USAGE, "not under the toplevel");
    t.manifest_unchanged();
}

#[test]
fn truncated_gzip_manifest_is_left_alone() {
    let t = tree();
    let truncated = &t.original[..t.original.len() / 2];
    std::fs::write(&t.manifest, truncated).unwrap();
    let out = run(grok("grok-manifest").args([
        "-m",
        t.manifest.to_str().unwrap(),
        "-t",
        t.top.to_str().unwrap(),
    ]));
    assert_one_line_error(&out, EXIT_FAILURE, t.manifest.to_str().unwrap());
    assert_eq!(
        std::fs::read(&t.manifest).unwrap(),
        truncated,
        "truncated manifest was rewritten"
    );
}

#[test]
fn unparseable_manifest_is_regenerated_with_a_warning() {
    let t = tree();
    std::fs::write(&t.manifest, b"{\"this is\": not json").unwrap();
    let out = run(grok("grok-manifest").args([
        "-m",
        t.manifest.to_str().unwrap(),
        "-t",
        t.top.to_str().unwrap(),
        t.top.join("a.git").to_str().unwrap(),
    ]));
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("regenerated"),
        "no warning: {}",
        stderr_of(&out)
    );
    t.manifest_unchanged();
}

#[test]
fn config_without_core_section() {
    let t = tree();
    let cfg = t.top.join("../bad.conf");
    std::fs::write(&cfg, "[manifest]\npretty = yes\n").unwrap();
    let out = run(grok("grok-manifest").args(["--cfgfile", cfg.to_str().unwrap()]));
    assert_one_line_error(&out, EXIT_USAGE, "[core]");
    t.manifest_unchanged();
}

#[test]
fn config_that_is_not_ini() {
    let t = tree();
    let cfg = t.top.join("../bad.conf");
    std::fs::write(&cfg, "[core]\ntoplevel /srv\n").unwrap();
    let out = run(grok("grok-manifest").args(["--cfgfile", cfg.to_str().unwrap()]));
    assert_one_line_error(&out, EXIT_USAGE, "line 2");
    t.manifest_unchanged();
}

#[test]
fn unwritable_manifest_directory() {
    let t = tree();
    let ro = t.top.parent().unwrap().join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    let manifest = ro.join("manifest.js.gz");
    let Some(_undo) = make_unwritable(&ro) else {
        // Root without mount rights: a directory whose parent is a file is
        // the closest unwritable place we can make.
        eprintln!("NOTE: cannot make a read-only directory here; testing a path under a regular file instead");
        let file = t.top.parent().unwrap().join("file");
        std::fs::write(&file, b"").unwrap();
        let m = file.join("manifest.js.gz");
        let out = run(grok("grok-manifest").args([
            "-m",
            m.to_str().unwrap(),
            "-t",
            t.top.to_str().unwrap(),
        ]));
        assert_one_line_error(&out, EXIT_FAILURE, m.parent().unwrap().to_str().unwrap());
        return;
    };
    let out = run(grok("grok-manifest").args([
        "-m",
        manifest.to_str().unwrap(),
        "-t",
        t.top.to_str().unwrap(),
    ]));
    assert_one_line_error(&out, EXIT_FAILURE, ro.to_str().unwrap());
}
