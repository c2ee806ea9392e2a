//! Building real bare repositories quickly: histories go in through one
//! `git fast-import` per call instead of a process per commit.

use std::path::{Path, PathBuf};

use super::{git, git_cmd, run, run_with_input};

/// `git init --bare` at `path` with `main` as the initial branch.
pub fn init_bare(path: &Path) -> PathBuf {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    git(
        None,
        &[
            "init",
            "-q",
            "--bare",
            "--initial-branch=main",
            path.to_str().unwrap(),
        ],
    );
    path.to_path_buf()
}

/// Append `count` commits to `branch` (creating it), each changing one file,
/// with committer dates `start`, `start+60`, ... Returns the new tip.
pub fn commits(repo: &Path, branch: &str, count: usize, start: i64) -> String {
    try_commits(repo, branch, count, start)
        .unwrap_or_else(|e| panic!("cannot add commits to {branch} in {}: {e}", repo.display()))
}

/// [`commits`], returning git's complaint instead of panicking: for a
/// writer that races others on the same refs and retries as a client
/// would.
pub fn try_commits(repo: &Path, branch: &str, count: usize, start: i64) -> Result<String, String> {
    let refname = format!("refs/heads/{branch}");
    let existing = run(git_cmd(Some(repo)).args(["rev-parse", "-q", "--verify", &refname]));
    let parent = existing
        .status
        .success()
        .then(|| String::from_utf8_lossy(&existing.stdout).trim().to_string());
    let tag = repo.file_name().unwrap().to_string_lossy().to_string();
    let mut stream = String::new();
    for i in 0..count {
        let when = start + 60 * i as i64;
        let msg = format!("{tag} {branch} commit {i} at {when}\n");
        let content = format!("{tag} {branch} {i} {when}\n");
        stream.push_str(&format!("commit {refname}\n"));
        stream.push_str(&format!(
            "author Test Author <author@example.com> {when} +0000\n"
        ));
        stream.push_str(&format!(
            "committer Test Committer <committer@example.com> {when} +0000\n"
        ));
        stream.push_str(&format!("data {}\n{}", msg.len(), msg));
        if i == 0 {
            if let Some(p) = &parent {
                stream.push_str(&format!("from {p}\n"));
            }
        }
        stream.push_str(&format!("M 644 inline file-{}.txt\n", i % 7));
        stream.push_str(&format!("data {}\n{}\n", content.len(), content));
    }
    stream.push_str("done\n");
    let out = run_with_input(
        git_cmd(Some(repo)).args(["fast-import", "--quiet", "--done"]),
        stream.as_bytes(),
    );
    if !out.status.success() {
        return Err(format!(
            "git fast-import failed: {}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        ));
    }
    try_git(repo, &["rev-parse", &refname])
}

/// `git` in `repo`, returning trimmed stdout, or stderr when it fails.
pub fn try_git(repo: &Path, args: &[&str]) -> Result<String, String> {
    let out = run(git_cmd(Some(repo)).args(args));
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    } else {
        Err(format!(
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))
    }
}

/// A lightweight tag, or an annotated one when `message` is given.
pub fn tag(repo: &Path, name: &str, target: &str, message: Option<&str>) {
    match message {
        None => {
            git(
                Some(repo),
                &["update-ref", &format!("refs/tags/{name}"), target],
            );
        }
        Some(m) => {
            let obj = super::git_cmd(Some(repo))
                .env("GIT_COMMITTER_DATE", "1600000000 +0000")
                .args(["tag", "-a", "-m", m, name, target])
                .output()
                .unwrap();
            assert!(
                obj.status.success(),
                "{}",
                String::from_utf8_lossy(&obj.stderr)
            );
        }
    }
}

/// A full copy of `src` at `dst` (a fork, sharing history but no objects).
pub fn fork(src: &Path, dst: &Path) -> PathBuf {
    std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
    git(
        None,
        &[
            "clone",
            "-q",
            "--bare",
            "--no-local",
            src.to_str().unwrap(),
            dst.to_str().unwrap(),
        ],
    );
    // A clone adds an origin remote and config the origin repo wouldn't have.
    git(Some(dst), &["remote", "remove", "origin"]);
    dst.to_path_buf()
}

/// A small project: `main` with `count` commits and a `v1` tag.
pub fn project(path: &Path, count: usize, start: i64) -> PathBuf {
    init_bare(path);
    let tip = commits(path, "main", count, start);
    tag(path, "v1", &tip, None);
    path.to_path_buf()
}
