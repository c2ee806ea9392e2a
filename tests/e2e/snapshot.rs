//! grok-snapshot and the consumers that lean on a mirror: a snapshot is a
//! complete repository of its own (its lenders' objects hard-linked in, no
//! alternates), survives the mirror's prune and repack, costs no copied
//! object, is removed once older than `-k`; bad input is one line and
//! nothing is made. And a consumer that mounts the mirror read-only, or
//! cannot write to it at all, clones from it with `--reference` and
//! `--shared`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::forks::{self, Spec, Tree};
use crate::support::replica::stderr;
use crate::support::{git, git_cmd, grok, run};

fn spec() -> Spec {
    Spec {
        projects: 1,
        forks: 3,
        private_every: 0,
        chain: false,
        unrelated: false,
        base_commits: 20,
    }
}

/// A tree whose forks our grok-fsck moved into object storage.
fn mirror() -> Tree {
    let tree = Tree::new("", "");
    forks::build(&tree.top, &spec());
    tree.manifest();
    let out = tree.fsck(&[]);
    assert_success!(out, "grok-fsck");
    tree.manifest();
    tree
}

fn snapshot(tree: &Tree, outdir: &Path, args: &[&str]) -> Output {
    run(grok("grok-snapshot")
        .arg("-v")
        .arg("-c")
        .arg(&tree.config)
        .arg("-o")
        .arg(outdir)
        .args(args))
}

fn stdout_lines(out: &Output) -> Vec<PathBuf> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn fsck_clean(repo: &Path) {
    let out = run(git_cmd(Some(repo)).args(["fsck", "--full", "--strict"]));
    assert_success!(out, "git fsck of {}", repo.display());
}

#[test]
fn a_snapshot_is_complete_survives_the_mirrors_prune_and_expires() {
    let tree = mirror();
    let member = tree.repo("/proj0/fork01.git");
    let lender = std::fs::read_to_string(member.join("objects/info/alternates")).unwrap();
    assert!(
        lender.contains("objstore"),
        "fork01 borrows from object storage: {lender}"
    );
    let snaps = tree.dir.path().join("snapshots");

    let out = snapshot(
        &tree,
        &snaps,
        &[
            "/proj0/fork01.git",
            &tree.repo("/proj0/base.git").display().to_string(),
        ],
    );
    assert_success!(out, "grok-snapshot");
    let taken = stdout_lines(&out);
    assert_eq!(taken.len(), 2, "{taken:?}");
    let snap = &taken[0];
    assert!(snap.starts_with(snaps.join("proj0")), "{}", snap.display());
    assert!(
        snap.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("fork01.git@"),
        "{}",
        snap.display()
    );
    // Its own repository: same refs, no alternates, every object there.
    assert_eq!(
        git(Some(snap), &["show-ref"]),
        git(Some(&member), &["show-ref"])
    );
    assert!(!snap.join("objects/info/alternates").exists());
    fsck_clean(snap);
    // No object was copied: every pack and loose object is a hard link of
    // one in the mirror.
    let objects = files_under(&snap.join("objects"));
    assert!(!objects.is_empty());
    for f in &objects {
        assert!(
            std::fs::metadata(f).unwrap().nlink() >= 2,
            "{} was copied",
            f.display()
        );
    }
    // Nothing half-made is left beside it.
    let beside: Vec<_> = std::fs::read_dir(snap.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        beside.iter().all(|n| !n.ends_with(".partial")),
        "{beside:?}"
    );

    // The mirror drops a branch with commits of its own, prunes and
    // repacks everything, object storage included.
    let base_snap = &taken[1];
    let base = tree.repo("/proj0/base.git");
    let doomed = crate::support::fixture::commits(&base, "doomed", 2, 1_700_000_000)
        .trim()
        .to_string();
    let out = snapshot(&tree, &snaps, &["/proj0/base.git"]);
    assert_success!(out, "second snapshot of base");
    let with_doomed = stdout_lines(&out).remove(0);
    assert_ne!(&with_doomed, base_snap, "two snapshots never share a name");
    git(Some(&base), &["branch", "-D", "doomed"]);
    git(Some(&base), &["reflog", "expire", "--expire=now", "--all"]);
    git(Some(&base), &["repack", "-a", "-d", "-q"]);
    git(Some(&base), &["prune", "--expire=now"]);
    for repo in std::fs::read_dir(tree.objstore()).unwrap() {
        let repo = repo.unwrap().path();
        let name = repo.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with('.') || !name.ends_with(".git") || !repo.is_dir() {
            continue;
        }
        // Object storage is precious to git; grok-fsck lifts that for
        // its repacks and prunes, and so does this one.
        git(
            Some(&repo),
            &["config", "extensions.preciousObjects", "false"],
        );
        git(Some(&repo), &["repack", "-a", "-d", "-q"]);
        git(Some(&repo), &["prune", "--expire=now"]);
        git(
            Some(&repo),
            &["config", "extensions.preciousObjects", "true"],
        );
    }
    let gone = run(git_cmd(Some(&base)).args(["cat-file", "-e", &doomed]));
    assert!(!gone.status.success(), "the mirror really lost {doomed}");
    // Every snapshot still has all it had.
    for s in [snap, base_snap, &with_doomed] {
        fsck_clean(s);
    }
    let checkout = tree.dir.path().join("consumer");
    let out = run(git_cmd(None)
        .args(["clone", "-q", "--shared", "--branch", "doomed"])
        .arg(&with_doomed)
        .arg(&checkout));
    assert_success!(out, "clone of the snapshot at the pruned branch");
    assert_eq!(
        git(Some(&checkout.join(".git")), &["rev-parse", "HEAD"]).trim(),
        doomed
    );
    let out = run(git_cmd(Some(&checkout.join(".git"))).args(["fsck", "--full"]));
    assert_success!(out, "fsck of the consumer's shared clone");

    // Expiry: a snapshot whose marker says it is two days old goes with
    // -k 1d; the others, and a directory that is not a snapshot, stay.
    let marker = snap.join("grokmirror.snapshot");
    let text = std::fs::read_to_string(&marker).unwrap();
    let old = text
        .lines()
        .map(|l| match l.split_once(" = ") {
            Some(("taken_at", t)) => {
                format!("taken_at = {}", t.parse::<u64>().unwrap() - 2 * 86400)
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&marker, old).unwrap();
    std::fs::create_dir_all(snaps.join("proj0/not-a-snapshot")).unwrap();
    let out = snapshot(&tree, &snaps, &["-k", "1d"]);
    assert_success!(out, "expiry");
    assert!(!snap.exists(), "the old snapshot is removed");
    assert!(base_snap.exists() && with_doomed.exists());
    assert!(snaps.join("proj0/not-a-snapshot").exists());
    // The mirror lost nothing to the expiry.
    fsck_clean(&member);
}

#[test]
fn bad_requests_are_one_line_and_make_nothing() {
    let tree = mirror();
    // Inside the top level: grok-manifest would take snapshots for repositories.
    let inside = tree.top.join("snapshots");
    let out = snapshot(&tree, &inside, &["/proj0/base.git"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_stderr_contains!(out, "overlaps");
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
    assert!(std::fs::read_dir(&inside).unwrap().next().is_none());

    let snaps = tree.dir.path().join("snapshots");
    for (repo, says) in [
        ("/proj0/nothing.git", "no such repository"),
        ("/../etc", "/../etc"),
        ("/proj0", "not a bare repository"),
    ] {
        let out = snapshot(&tree, &snaps, &[repo]);
        assert_eq!(out.status.code(), Some(1), "{repo}: {}", stderr(&out));
        assert_stderr_contains!(out, says);
        assert!(out.stdout.is_empty(), "{repo}");
    }
    assert!(files_under(&snaps).is_empty(), "{:?}", files_under(&snaps));

    // A snapshot directory on another file system: one line saying so.
    if let Some(other) = other_filesystem(&tree) {
        let out = snapshot(&tree, &other, &["/proj0/base.git"]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert_stderr_contains!(out, "another file system");
    }
}

/// A writable directory on another file system than the tree, when the
/// machine has one (/dev/shm is tmpfs on Linux).
fn other_filesystem(tree: &Tree) -> Option<PathBuf> {
    let dev = std::fs::metadata(&tree.top).ok()?.dev();
    let shm = Path::new("/dev/shm");
    (std::fs::metadata(shm).ok()?.dev() != dev).then(|| {
        let d = shm.join(format!("grok-snapshot-test-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// Run `script` (sh) in a new user and mount namespace where `dir` is
/// bind-mounted read-only over itself, so every path stays the same.
fn in_read_only_mount(dir: &Path, script: &str) -> Output {
    let wrapped = format!(
        "mount --bind -o ro \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" 2>/dev/null; \
         if touch \"$1/probe\" 2>/dev/null; then echo 'the bind mount is writable' >&2; exit 99; fi; {script}"
    );
    run(Command::new("unshare")
        .args([
            "--user",
            "--map-root-user",
            "--mount",
            "sh",
            "-c",
            &wrapped,
            "sh",
        ])
        .arg(dir))
}

#[test]
fn consumers_clone_from_a_read_only_mirror() {
    let tree = mirror();
    let member = tree.repo("/proj0/fork01.git");
    let tip = git(Some(&member), &["rev-parse", "work"])
        .trim()
        .to_string();
    let work = tempfile::tempdir().unwrap();
    let origin_url = format!("file://{}", member.display());

    // A read-only bind mount of the whole mirror (repositories and object
    // storage at their usual paths).
    let script = format!(
        "set -e; git clone -q --reference {m} {o} {w}/ref && git clone -q --shared {m} {w}/shared && \
         git -C {w}/ref fsck --full --no-dangling && git -C {w}/shared fsck --full --no-dangling && \
         git -C {w}/ref rev-parse origin/work && git -C {w}/shared rev-parse origin/work",
        m = member.display(),
        o = origin_url,
        w = work.path().display()
    );
    let out = in_read_only_mount(tree.dir.path(), &script);
    assert_success!(out, "clones from a read-only bind mount");
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(said.lines().filter(|l| *l == tip).count(), 2, "{said}");
    // The reference clone borrows from the mirror rather than copying.
    let alt =
        std::fs::read_to_string(work.path().join("ref/.git/objects/info/alternates")).unwrap();
    assert!(alt.contains("fork01.git/objects"), "{alt}");

    // A consumer that may not write anywhere in the mirror (another user,
    // every write bit removed).
    let status = Command::new("chmod")
        .arg("-R")
        .arg("a-w,a+rX")
        .arg(tree.dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let nobody_home = tempfile::tempdir().unwrap();
    let status = Command::new("chown")
        .arg("nobody")
        .arg(nobody_home.path())
        .status()
        .unwrap();
    assert!(status.success());
    // The mirror belongs to another user: git (2.35.2 and later) wants the
    // consumer to trust it by name, which is part of the recipe.
    std::fs::write(
        nobody_home.path().join(".gitconfig"),
        "[safe]\n\tdirectory = *\n",
    )
    .unwrap();
    let script = format!(
        "set -e; cd {h}; if touch {m}/probe 2>/dev/null; then echo writable >&2; exit 99; fi; \
         HOME={h} git clone -q --reference {m} {o} ref && HOME={h} git clone -q --shared {m} shared && \
         HOME={h} git -C ref fsck --full --no-dangling && HOME={h} git -C shared fsck --full --no-dangling && \
         git -C shared rev-parse origin/work",
        h = nobody_home.path().display(),
        m = member.display(),
        o = origin_url,
    );
    let out = run(Command::new("setpriv").args([
        "--reuid=nobody",
        "--regid=nogroup",
        "--clear-groups",
        "sh",
        "-c",
        &script,
    ]));
    // Give the tree back to its owner so the temp dir can be removed.
    let _ = Command::new("chmod")
        .arg("-R")
        .arg("u+w")
        .arg(tree.dir.path())
        .status();
    assert_success!(out, "clones by a user who cannot write to the mirror");
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), tip);
}
