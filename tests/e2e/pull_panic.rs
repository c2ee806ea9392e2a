//! A panic in grok-pull (always a bug) is reported like in every other
//! program: one line on stderr, exit status 1, no Rust backtrace notice;
//! its main goes through `grokmirror_cli::run_main`.
//!
//! The panic comes from real input rather than from a switch in the
//! program: `--status` writing into a pipe whose reader is gone (`print!`
//! panics on EPIPE, as Rust ignores SIGPIPE).

use std::process::Stdio;

use crate::support::{grok, write_config};

#[test]
fn a_panic_is_reported_as_one_line_and_exit_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("mirror");
    std::fs::create_dir(&top).unwrap();
    let config = write_config(
        dir.path(),
        "pull.conf",
        &format!(
            "[core]\ntoplevel = {top}\nmanifest = {top}/manifest.js.gz\n\
             [remote]\nsite = file:///nowhere\nmanifest = file:///nowhere/manifest.js.gz\n",
            top = top.display()
        ),
    );
    let (reader, writer) = nix::unistd::pipe().unwrap();
    drop(reader);
    let out = grok("grok-pull")
        .arg("--status")
        .arg("--json")
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].starts_with("grok-pull: internal error: ")
            && lines[0].ends_with("; this is a bug, please report it with the log"),
        "{stderr}"
    );
    assert!(!stderr.contains("RUST_BACKTRACE"), "{stderr}");
}
