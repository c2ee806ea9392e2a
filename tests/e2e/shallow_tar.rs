//! grok-shallow-tar end to end: real repositories and a real manifest, the
//! tarballs unpacked with `tar` and read with git, the sidecar's SHA-256
//! checked with `sha256sum`, the `latest` links followed; a run with no new
//! commit rewrites nothing, a new commit makes a new tarball and the oldest
//! beyond the previous one goes; bad input is one line.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::mirror::Origin;
use crate::support::{fixture, git, grok, run, run_ok, stderr_of, write_config};

const KEY: &str = "/pub/a/x.git";
const BASE: &str = "https://git.example.org";

/// An origin with `/pub/a/x.git` (main, a tag on it, `next`, and
/// `for-next/core`) and `/pub/z.git`, its manifest and a config.
fn origin(dir: &Path) -> (Origin, PathBuf) {
    let o = Origin::new(dir);
    o.project(KEY, 12, 1_600_000_000);
    fixture::commits(&o.path(KEY), "next", 3, 1_600_100_000);
    fixture::commits(&o.path(KEY), "for-next/core", 2, 1_600_200_000);
    o.project("/pub/z.git", 2, 1_600_000_000);
    o.manifest();
    let conf = write_config(
        dir,
        "tar.conf",
        &format!(
            "[core]\ntoplevel = {}\nmanifest = {}\nlog = {}\n",
            o.root.display(),
            o.manifest.display(),
            dir.join("tar.log").display()
        ),
    );
    (o, conf)
}

fn shallow_tar(conf: &Path, out: &Path, extra: &[&str]) -> Output {
    run(grok("grok-shallow-tar")
        .arg("-c")
        .arg(conf)
        .arg("-o")
        .arg(out)
        .args(["--clone-url-base", BASE])
        .args(extra))
}

/// Every name in `dir` (not below it).
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// The dated tarballs of `stem` in `dir`.
fn dated(dir: &Path, stem: &str) -> BTreeSet<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.starts_with(stem) && n.ends_with(".tar") && !n.contains(".latest."))
        .collect()
}

/// name -> (mtime in ns, inode), symlinks not followed.
fn stamps(dir: &Path) -> Vec<(String, i64, u64)> {
    names(dir)
        .into_iter()
        .map(|n| {
            let m = std::fs::symlink_metadata(dir.join(&n)).unwrap();
            (n, m.mtime() * 1_000_000_000 + m.mtime_nsec(), m.ino())
        })
        .collect()
}

fn sidecar(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Unpack `tarball` into a fresh directory below `scratch`; the clone in it.
fn unpack(tarball: &Path, scratch: &Path, top: &str) -> PathBuf {
    let dir = tempfile::tempdir_in(scratch).unwrap().keep();
    run_ok(
        Command::new("tar")
            .arg("-C")
            .arg(&dir)
            .arg("-xf")
            .arg(tarball),
    );
    assert_eq!(
        names(&dir),
        BTreeSet::from([top.to_string()]),
        "one top directory"
    );
    dir.join(top)
}

/// Check the tarball of `branch` that `latest` names against the origin.
fn check_latest(origin: &Path, pub_dir: &Path, stem: &str, branch: &str, scratch: &Path) -> String {
    let latest = pub_dir.join(format!("{stem}.latest.tar"));
    let target = std::fs::read_link(&latest).unwrap();
    let target = target.to_str().unwrap().to_string();
    let tip = git(
        Some(origin),
        &["rev-parse", &format!("refs/heads/{branch}")],
    );
    let date = chrono::Utc::now().format("%Y%m%d").to_string();
    assert_eq!(target, format!("{stem}.{date}.{}.tar", &tip[..7]));
    assert_eq!(
        std::fs::read_link(pub_dir.join(format!("{stem}.latest.tar.json"))).unwrap(),
        PathBuf::from(format!("{target}.json"))
    );

    // The sidecar describes the file beside it; sha256sum agrees.
    let meta = sidecar(&pub_dir.join(format!("{target}.json")));
    assert_eq!(meta["repo"], KEY);
    assert_eq!(meta["branch"], branch);
    assert_eq!(meta["tip"], tip.as_str());
    assert_eq!(meta["depth"], 1);
    let size = std::fs::metadata(pub_dir.join(&target)).unwrap().len();
    assert_eq!(meta["size"], size);
    let sums = pub_dir.join("check.sha256");
    std::fs::write(
        &sums,
        format!("{}  {target}\n", meta["sha256"].as_str().unwrap()),
    )
    .unwrap();
    let checked = run(Command::new("sha256sum")
        .arg("-c")
        .arg(&sums)
        .current_dir(pub_dir));
    assert_success!(checked, "sha256sum -c of the sidecar's digest");
    std::fs::remove_file(&sums).unwrap();

    // A shallow, single-branch, tagless clone of the tip, nothing checked out.
    let clone = unpack(&latest, scratch, "x");
    assert_eq!(names(&clone), BTreeSet::from([".git".to_string()]));
    let gitdir = clone.join(".git");
    assert_eq!(git(Some(&gitdir), &["rev-parse", "HEAD"]), tip);
    assert_eq!(git(Some(&gitdir), &["rev-list", "--count", "HEAD"]), "1");
    assert!(gitdir.join("shallow").is_file());
    assert_eq!(git(Some(&gitdir), &["tag", "-l"]), "");
    let refs = git(Some(&gitdir), &["for-each-ref", "--format=%(refname)"]);
    assert!(
        refs.lines()
            .all(|r| r.ends_with(branch) || r.ends_with("HEAD")),
        "{refs}"
    );
    assert_eq!(
        git(Some(&gitdir), &["config", "remote.origin.url"]),
        format!("{BASE}{KEY}")
    );
    assert_eq!(
        git(Some(&gitdir), &["config", "remote.origin.tagOpt"]),
        "--no-tags"
    );
    assert!(std::fs::read_to_string(gitdir.join("description"))
        .unwrap()
        .contains(&tip));
    assert!(gitdir.join("shallow-tar.readme").is_file());
    let hooks: Vec<_> = std::fs::read_dir(gitdir.join("hooks"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(hooks.is_empty(), "no hooks shipped: {hooks:?}");
    let theirs = git(Some(origin), &["ls-tree", "-r", &tip]);
    assert_eq!(git(Some(&gitdir), &["ls-tree", "-r", "HEAD"]), theirs);
    // Checked out, the files are exactly those of the tip.
    run_ok(
        crate::support::git_cmd(None)
            .arg("-C")
            .arg(&clone)
            .args(["checkout", "-q", branch]),
    );
    let mut files: BTreeSet<String> = names(&clone);
    files.remove(".git");
    let want: BTreeSet<String> = theirs
        .lines()
        .map(|l| l.split('\t').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(files, want);
    target
}

#[test]
fn tarballs_of_the_tip_made_once_moved_on_a_new_commit_and_pruned() {
    let tmp = tempfile::tempdir().unwrap();
    let (o, conf) = origin(tmp.path());
    let out = tmp.path().join("out");
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let repo = o.path(KEY);
    let specs = [
        "--branches",
        "/pub/a/x.git:main",
        "--branches",
        "pub/a/*:for-next/*",
    ];
    let ran = shallow_tar(&conf, &out, &specs);
    assert_success!(ran, "first run");
    let pub_dir = out.join("pub/a");
    let first = check_latest(&repo, &pub_dir, "x.main.shallow", "main", &scratch);
    // `/` in a branch name becomes `-`; unmatched branches and repositories
    // publish nothing.
    assert!(pub_dir.join("x.for-next-core.shallow.latest.tar").exists());
    assert!(names(&pub_dir).iter().all(|n| !n.contains(".next.")));
    assert!(!out.join("pub/z.git").exists() && names(&out).iter().all(|n| n == "pub"));
    assert!(names(&out).iter().all(|n| !n.starts_with(".shallowtar-")));

    // Nothing new: nothing rewritten, not even the links.
    let before = stamps(&pub_dir);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let ran = shallow_tar(&conf, &out, &specs);
    assert_success!(ran, "second run");
    assert_eq!(stamps(&pub_dir), before);

    // A new commit: a new tarball, latest moved, the previous one kept.
    fixture::commits(&repo, "main", 1, 1_700_000_000);
    let ran = shallow_tar(&conf, &out, &specs);
    assert_success!(ran, "third run");
    let second = check_latest(&repo, &pub_dir, "x.main.shallow", "main", &scratch);
    assert_ne!(first, second);
    assert_eq!(
        dated(&pub_dir, "x.main.shallow"),
        BTreeSet::from([first.clone(), second.clone()])
    );
    // The other branch did not move: untouched.
    let other: Vec<_> = before
        .iter()
        .filter(|s| s.0.starts_with("x.for-next-core."))
        .cloned()
        .collect();
    let now: Vec<_> = stamps(&pub_dir)
        .into_iter()
        .filter(|s| s.0.starts_with("x.for-next-core."))
        .collect();
    assert_eq!(now, other);

    // Another: the oldest goes, with its sidecar, after latest moved.
    fixture::commits(&repo, "main", 1, 1_700_100_000);
    let ran = shallow_tar(&conf, &out, &specs);
    assert_success!(ran, "fourth run");
    let third = check_latest(&repo, &pub_dir, "x.main.shallow", "main", &scratch);
    assert_eq!(
        dated(&pub_dir, "x.main.shallow"),
        BTreeSet::from([second.clone(), third.clone()])
    );
    assert!(!pub_dir.join(format!("{first}.json")).exists());
    assert!(pub_dir.join(format!("{second}.json")).exists());
    assert!(names(&pub_dir).iter().all(|n| !n.contains(".tmp")));
}

#[test]
fn depth_age_and_count_limits_and_colliding_names() {
    let tmp = tempfile::tempdir().unwrap();
    let (o, conf) = origin(tmp.path());
    let repo = o.path(KEY);
    let now = chrono::Utc::now().timestamp();
    fixture::commits(&repo, "linux-6.1.y", 2, now - 3600);
    fixture::commits(&repo, "linux-6.2.y", 2, now - 60);
    fixture::commits(&repo, "linux-4.9.y", 2, 1_600_000_000);
    let out = tmp.path().join("out");
    let ran = shallow_tar(
        &conf,
        &out,
        &[
            "--branches",
            "/pub/a/x.git:linux-*",
            "--max-ref-age",
            "30",
            "--max-branches",
            "1",
            "--depth",
            "2",
        ],
    );
    assert_success!(ran);
    let pub_dir = out.join("pub/a");
    let latest: Vec<String> = names(&pub_dir)
        .into_iter()
        .filter(|n| n.ends_with(".latest.tar"))
        .collect();
    assert_eq!(latest, ["x.linux-6.2.y.shallow.latest.tar"]);
    let meta = sidecar(&pub_dir.join("x.linux-6.2.y.shallow.latest.tar.json"));
    assert_eq!(meta["depth"], 2);
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let clone = unpack(
        &pub_dir.join("x.linux-6.2.y.shallow.latest.tar"),
        &scratch,
        "x",
    );
    assert_eq!(
        git(Some(&clone.join(".git")), &["rev-list", "--count", "HEAD"]),
        "2"
    );

    // Two branches wanting one file name: neither, a CRITICAL line, exit 1.
    fixture::commits(&repo, "for-next-core", 1, now);
    let out2 = tmp.path().join("out2");
    let ran = shallow_tar(&conf, &out2, &["--branches", "/pub/a/x.git:for-next*"]);
    assert_eq!(ran.status.code(), Some(1), "{}", stderr_of(&ran));
    let err = stderr_of(&ran);
    assert!(
        err.contains("CRITICAL") && err.contains("for-next/core"),
        "{err}"
    );
    assert!(!out2.join("pub/a").exists() || dated(&out2.join("pub/a"), "x.").is_empty());
}

/// Non-empty lines of stderr.
fn lines(out: &Output) -> Vec<String> {
    stderr_of(out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect()
}

#[test]
fn bad_input_is_one_line_and_its_exit_status() {
    let tmp = tempfile::tempdir().unwrap();
    let (o, conf) = origin(tmp.path());
    let out = tmp.path().join("out");
    let main = ["--branches", "/pub/a/x.git:main"];

    // Flags: usage, 2.
    for bad in [
        &["--branches", "nocolon"][..],
        &[&main[..], &["--depth", "0"]].concat(),
        &[&main[..], &["--max-branches", "lots"]].concat(),
    ] {
        let ran = shallow_tar(&conf, &out, bad);
        assert_eq!(ran.status.code(), Some(2), "{bad:?}: {}", stderr_of(&ran));
    }
    let ran = run(grok("grok-shallow-tar")
        .arg("-c")
        .arg(&conf)
        .arg("-o")
        .arg(&out)
        .args(["--clone-url-base", "/srv/git"])
        .args(main));
    assert_eq!(ran.status.code(), Some(2), "{}", stderr_of(&ran));

    // A bad config value: one line naming it, 2.
    let broken = write_config(
        tmp.path(),
        "broken.conf",
        &format!(
            "[core]\ntoplevel = {}\nmanifest = {}\nallow_any_toplevel = perhaps\n",
            o.root.display(),
            o.manifest.display()
        ),
    );
    let ran = shallow_tar(&broken, &out, &main);
    assert_eq!(ran.status.code(), Some(2), "{}", stderr_of(&ran));
    assert_eq!(lines(&ran).len(), 1, "{}", stderr_of(&ran));
    let err = stderr_of(&ran);
    assert!(
        err.contains("allow_any_toplevel") && err.contains("perhaps"),
        "{err}"
    );
    assert!(!out.exists(), "nothing made on a config error");

    // The output directory inside the toplevel: refused, 2, nothing made.
    let inside = o.root.join("shallow");
    let ran = shallow_tar(&conf, &inside, &main);
    assert_eq!(ran.status.code(), Some(2), "{}", stderr_of(&ran));
    assert_eq!(lines(&ran).len(), 1, "{}", stderr_of(&ran));

    // A pattern naming no repository: one line, 1.
    let ran = shallow_tar(&conf, &out, &["--branches", "/nope.git:main"]);
    assert_eq!(ran.status.code(), Some(1), "{}", stderr_of(&ran));
    assert_eq!(lines(&ran).len(), 1, "{}", stderr_of(&ran));
    assert!(stderr_of(&ran).contains("/nope.git"), "{}", stderr_of(&ran));

    // A repository of the manifest gone from the disk: one line naming it,
    // 1, and the others still published.
    std::fs::remove_dir_all(o.path(KEY)).unwrap();
    let ran = shallow_tar(&conf, &out, &["--branches", "/pub/*:main"]);
    assert_eq!(ran.status.code(), Some(1), "{}", stderr_of(&ran));
    assert_eq!(lines(&ran).len(), 1, "{}", stderr_of(&ran));
    assert!(stderr_of(&ran).contains("x.git"), "{}", stderr_of(&ran));
    assert!(out.join("pub/z.main.shallow.latest.tar").exists());
}

#[test]
fn config_check_reports_and_exits_like_the_others() {
    let tmp = tempfile::tempdir().unwrap();
    let (_o, conf) = origin(tmp.path());
    let ok = run(grok("grok-shallow-tar")
        .arg("-c")
        .arg(&conf)
        .arg("--config-check"));
    assert_success!(ok, "--config-check of a good config");
    let json = run(grok("grok-shallow-tar").arg("-c").arg(&conf).args([
        "--config-check",
        "--json",
        "--no-network",
    ]));
    assert_success!(json);
    let _: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON document");

    let broken = write_config(
        tmp.path(),
        "broken.conf",
        &format!(
            "[core]\ntoplevel = {}\nloglevel = shouting\n",
            tmp.path().join("missing").display()
        ),
    );
    let bad = run(grok("grok-shallow-tar")
        .arg("-c")
        .arg(&broken)
        .arg("--config-check"));
    assert_eq!(
        bad.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&bad.stdout)
    );
    let text = String::from_utf8_lossy(&bad.stdout);
    assert!(
        text.contains("loglevel") && text.contains("toplevel"),
        "{text}"
    );
    let bad = run(grok("grok-shallow-tar")
        .arg("-c")
        .arg(&broken)
        .args(["--config-check", "--json"]));
    assert_eq!(bad.status.code(), Some(2));
    let _: serde_json::Value = serde_json::from_slice(&bad.stdout).expect("one JSON document");
}

#[test]
fn a_second_run_into_the_same_outdir_leaves_the_work_to_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let (_o, conf) = origin(tmp.path());
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    // The lock another run holds: a flock on OUTDIR itself.
    let held = grokmirror::tree::Dir::open_root(&out).unwrap();
    assert!(held.try_lock_exclusive().unwrap(), "nobody holds it yet");
    let ran = shallow_tar(&conf, &out, &["--branches", "/pub/a/x.git:main"]);
    assert_success!(ran, "a run that finds the lock held");
    // Quiet on stderr (cron mails nobody); said in the log.
    assert_eq!(stderr_of(&ran), "");
    let log = std::fs::read_to_string(tmp.path().join("tar.log")).unwrap();
    assert!(
        log.contains("another grok-shallow-tar is publishing into"),
        "{log}"
    );
    assert!(!out.join("pub").exists(), "nothing published meanwhile");
    drop(held);
    let ran = shallow_tar(&conf, &out, &["--branches", "/pub/a/x.git:main"]);
    assert_success!(ran, "once the lock is free");
    assert!(out.join("pub/a").is_dir());
}
