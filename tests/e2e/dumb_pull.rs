//! grok-dumb-pull end to end: real repositories whose remotes point at
//! origin repositories on disk, new commits at the origins, our program and
//! the reference taking turns on one tree.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Output;

use crate::support::{fixture, git, grok, oracle, run, show_ref, show_ref_sha1, stderr_of};

/// A temp dir with `origins/` (where commits happen) and `top/` (the
/// repositories grok-dumb-pull fetches into).
struct Tree {
    _dir: tempfile::TempDir,
    root: PathBuf,
    top: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap();
        let top = root.join("top");
        std::fs::create_dir_all(&top).unwrap();
        Tree {
            _dir: dir,
            root,
            top,
        }
    }

    /// A new origin project with `n` commits.
    fn origin(&self, name: &str, n: usize) -> PathBuf {
        fixture::project(&self.root.join("origins").join(name), n, 1_600_000_000)
    }

    /// A mirror of `origin` at `top/<rel>` (remote `origin`, mirror refspec).
    fn mirror(&self, origin: &Path, rel: &str) -> PathBuf {
        let dst = self.top.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        git(
            None,
            &[
                "clone",
                "-q",
                "--mirror",
                "--no-local",
                origin.to_str().unwrap(),
                dst.to_str().unwrap(),
            ],
        );
        dst
    }
}

fn dumb_pull(args: &[&str]) -> Output {
    run(grok("grok-dumb-pull").args(args))
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}\n{}",
        out.status.code(),
        stderr_of(out)
    );
}

/// The repo has its origin's refs and the fingerprint of exactly those.
fn assert_follows(mirror: &Path, origin: &Path) {
    assert_eq!(show_ref(mirror), show_ref(origin), "{}", mirror.display());
    let fp = std::fs::read_to_string(mirror.join("grokmirror.fingerprint"))
        .unwrap_or_else(|e| panic!("no fingerprint in {}: {e}", mirror.display()));
    assert_eq!(fp, show_ref_sha1(mirror), "{}", mirror.display());
}

fn lines(path: &Path) -> Vec<String> {
    let mut l: Vec<String> = std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect();
    l.sort();
    l
}

#[test]
fn fetches_every_repository_found_records_fingerprints_and_runs_the_hook() {
    let t = Tree::new();
    let (oa, ob, oc) = (
        t.origin("a.git", 3),
        t.origin("b.git", 2),
        t.origin("c.git", 2),
    );
    let a = t.mirror(&oa, "x/a.git");
    let b = t.mirror(&ob, "y/z/b.git");
    let c = t.mirror(&oc, "c.git");
    fixture::commits(&oa, "main", 2, 1_700_000_000);
    fixture::commits(&ob, "topic", 1, 1_700_000_000);
    let log = t.root.join("hook.log");
    let hook = support::script(
        &t.root.join("hook"),
        &format!("echo \"$1\" >> {}", log.display()),
    );
    assert_ne!(show_ref(&a), show_ref(&oa));

    let out = dumb_pull(&["-u", hook.to_str().unwrap(), t.top.to_str().unwrap()]);
    assert_ok(&out);
    for (m, o) in [(&a, &oa), (&b, &ob), (&c, &oc)] {
        assert_follows(m, o);
    }
    let mut want = vec![a.display().to_string(), b.display().to_string()];
    want.sort();
    assert_eq!(
        lines(&log),
        want,
        "the hook runs for the updated repos only"
    );

    // Nothing new: no hook; a repo named directly is fetched too.
    fixture::commits(&oc, "main", 1, 1_700_000_000);
    let out = dumb_pull(&["-u", hook.to_str().unwrap(), c.to_str().unwrap()]);
    assert_ok(&out);
    assert_follows(&c, &oc);
    want.push(c.display().to_string());
    want.sort();
    assert_eq!(lines(&log), want);
    let out = dumb_pull(&["-u", hook.to_str().unwrap(), t.top.to_str().unwrap()]);
    assert_ok(&out);
    assert_eq!(lines(&log), want, "no new revs, no hook");
}

/// Two remotes in one repository, `origin` and `upstream`.
fn two_remotes(t: &Tree, o1: &Path, o2: &Path, rel: &str) -> PathBuf {
    let r = fixture::init_bare(&t.top.join(rel));
    git(Some(&r), &["remote", "add", "origin", o1.to_str().unwrap()]);
    git(
        Some(&r),
        &["remote", "add", "upstream", o2.to_str().unwrap()],
    );
    r
}

#[test]
fn remote_patterns_choose_the_remotes_as_the_reference_does() {
    let t = Tree::new();
    let (o1, o2) = (t.origin("one.git", 2), t.origin("two.git", 3));
    let ours = two_remotes(&t, &o1, &o2, "ours/r.git");
    let theirs = two_remotes(&t, &o1, &o2, "theirs/r.git");

    assert_ok(&dumb_pull(&["-r", "up*", ours.to_str().unwrap()]));
    assert_ok(&run(oracle("grok-dumb-pull").args([
        "-r",
        "up*",
        theirs.to_str().unwrap(),
    ])));
    let refs = show_ref(&ours);
    assert!(refs.contains("refs/remotes/upstream/main"), "{refs}");
    assert!(!refs.contains("refs/remotes/origin/"), "{refs}");
    assert_eq!(refs, show_ref(&theirs));

    // Several patterns add up; a pattern matching nothing is no failure.
    assert_ok(&dumb_pull(&[
        "-r",
        "origin",
        "-r",
        "nothing*",
        ours.to_str().unwrap(),
    ]));
    let refs = show_ref(&ours);
    assert!(refs.contains("refs/remotes/origin/main"), "{refs}");
    assert_eq!(
        std::fs::read_to_string(ours.join("grokmirror.fingerprint")).unwrap(),
        show_ref_sha1(&ours)
    );
}

#[test]
fn the_reference_and_ours_take_turns_on_one_tree() {
    let t = Tree::new();
    let oa = t.origin("a.git", 2);
    let ob = t.origin("b.git", 2);
    let a = t.mirror(&oa, "p/a.git");
    let b = t.mirror(&ob, "p/b.git");
    let top = t.top.to_str().unwrap();

    fixture::commits(&oa, "main", 1, 1_700_000_000);
    assert_ok(&run(oracle("grok-dumb-pull").arg(top)));
    assert_eq!(show_ref(&a), show_ref(&oa));

    fixture::commits(&oa, "main", 1, 1_700_001_000);
    fixture::commits(&ob, "side", 2, 1_700_001_000);
    assert_ok(&dumb_pull(&[top]));
    assert_follows(&a, &oa);
    assert_follows(&b, &ob);

    // The reference fetches after us (it leaves the fingerprint behind) ...
    fixture::commits(&ob, "main", 1, 1_700_002_000);
    assert_ok(&run(oracle("grok-dumb-pull").arg(top)));
    assert_eq!(show_ref(&b), show_ref(&ob));
    assert_ne!(
        std::fs::read_to_string(b.join("grokmirror.fingerprint")).unwrap(),
        show_ref_sha1(&b)
    );
    // ... and our next run, with nothing to fetch, puts it right.
    assert_ok(&dumb_pull(&[top]));
    assert_follows(&a, &oa);
    assert_follows(&b, &ob);
    for r in [&a, &b] {
        git(Some(r), &["fsck", "--no-progress"]);
    }
}

#[test]
fn new_objects_of_an_objstore_member_reach_its_object_storage() {
    use grokmirror::objstore;
    let t = Tree::new();
    let oa = t.origin("a.git", 3);
    let a = t.mirror(&oa, "a.git");
    let g = grokmirror::git::Git::with_binary(support::git_binary());
    let obst = objstore::create(&g, &t.top.join("objstore"), None).unwrap();
    objstore::add_member(&obst, &a).unwrap();
    objstore::fetch_member(&g, &obst, &a, objstore::FetchMethod::Porcelain).unwrap();
    objstore::point_at(&a, &obst).unwrap();
    let virt = objstore::virtref(&a);

    let tip = fixture::commits(&oa, "main", 2, 1_700_000_000);
    assert_ok(&dumb_pull(&[t.top.to_str().unwrap()]));
    assert_follows(&a, &oa);
    let vref = format!("refs/virtual/{virt}/heads/main");
    assert_eq!(git(Some(&obst), &["rev-parse", &vref]), tip);
    git(Some(&obst), &["cat-file", "-e", &format!("{tip}^{{tree}}")]);
    assert_eq!(
        std::fs::read_to_string(obst.join(format!("grokmirror.{virt}.fingerprint"))).unwrap(),
        show_ref_sha1(&a),
        "the object storage records the member's fingerprint"
    );
    // The object storage repo itself is no repository to fetch remotes in:
    // its refs are exactly the member's.
    let obst_refs = show_ref(&obst);
    assert!(
        obst_refs.lines().all(|l| l.contains(" refs/virtual/")),
        "{obst_refs}"
    );
}

#[test]
fn a_locked_repository_is_skipped_and_a_missing_one_is_an_error() {
    let t = Tree::new();
    let oa = t.origin("a.git", 2);
    let ob = t.origin("b.git", 2);
    let a = t.mirror(&oa, "a.git");
    let b = t.mirror(&ob, "b.git");
    fixture::commits(&oa, "main", 1, 1_700_000_000);
    fixture::commits(&ob, "main", 1, 1_700_000_000);
    let before = show_ref(&a);
    let guard = grokmirror::lock::acquire_repo(&a, grokmirror::lock::Wait::No)
        .unwrap()
        .expect("lock is free");
    let out = dumb_pull(&[t.top.to_str().unwrap()]);
    assert_ok(&out);
    assert_eq!(show_ref(&a), before, "a locked repo is not fetched");
    assert_follows(&b, &ob);
    drop(guard);

    let missing = t.top.join("gone.git");
    let out = dumb_pull(&[missing.to_str().unwrap(), a.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert!(err.contains("gone.git does not exist"), "{err}");
    assert_follows(&a, &oa);
}

#[test]
fn svn_without_git_svn_is_a_one_line_error_and_touches_nothing() {
    let t = Tree::new();
    let oa = t.origin("a.git", 2);
    let a = t.mirror(&oa, "a.git");
    fixture::commits(&oa, "main", 1, 1_700_000_000);
    let before = show_ref(&a);
    // A git whose exec path has no git-svn script (nor PATH).
    let empty = t.root.join("empty-exec-path");
    std::fs::create_dir_all(&empty).unwrap();
    let out = run(grok("grok-dumb-pull").env("GIT_EXEC_PATH", &empty).args([
        "-s",
        "-v",
        t.top.to_str().unwrap(),
    ]));
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let err = stderr_of(&out);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("grok-dumb-pull: error: -s needs git svn") && err.contains("git-svn"),
        "{err}"
    );
    assert_eq!(show_ref(&a), before);
    assert_missing!(a.join("grokmirror.fingerprint"));
}

/// `svn` and `svnadmin` from the subversion package, and a git that runs
/// `git svn`; the test fails (never skips) without them.
fn require_svn_tools() {
    let have =
        |cmd: &mut std::process::Command| cmd.output().map(|o| o.status.success()).unwrap_or(false);
    assert!(
        have(std::process::Command::new("svnadmin").arg("--version"))
            && have(std::process::Command::new("svn").arg("--version"))
            && have(support::git_cmd(None).args(["svn", "--version"])),
        "svnadmin, svn and git svn are needed; install them with scripts/setup-test-tools \
         (Debian packages subversion and git-svn)"
    );
}

fn svn(args: &[&str], cwd: &Path) {
    let out = run(std::process::Command::new("svn")
        .args(args)
        .current_dir(cwd));
    assert!(out.status.success(), "svn {args:?}: {}", stderr_of(&out));
}

#[test]
fn svn_remotes_are_fetched_with_git_svn() {
    require_svn_tools();
    let t = Tree::new();
    let svnrepo = t.root.join("svnrepo");
    run(std::process::Command::new("svnadmin")
        .arg("create")
        .arg(&svnrepo));
    let url = format!("file://{}", svnrepo.display());
    let wc = t.root.join("wc");
    svn(&["-q", "checkout", &url, wc.to_str().unwrap()], &t.root);
    std::fs::write(wc.join("file"), "one\n").unwrap();
    svn(&["-q", "add", "file"], &wc);
    svn(&["-q", "commit", "-m", "one"], &wc);
    let r = fixture::init_bare(&t.top.join("svn/r.git"));
    git(Some(&r), &["svn", "init", &url]);
    git(Some(&r), &["svn", "fetch", "-q"]);
    let first = git(Some(&r), &["rev-parse", "refs/remotes/git-svn"]);

    std::fs::write(wc.join("file"), "one\ntwo\n").unwrap();
    svn(&["-q", "commit", "-m", "two"], &wc);
    let log = t.root.join("hook.log");
    let hook = support::script(
        &t.root.join("hook"),
        &format!("echo \"$1\" >> {}", log.display()),
    );
    let out = dumb_pull(&["-s", "-u", hook.to_str().unwrap(), t.top.to_str().unwrap()]);
    assert_ok(&out);
    let second = git(Some(&r), &["rev-parse", "refs/remotes/git-svn"]);
    assert_ne!(first, second);
    assert_eq!(git(Some(&r), &["rev-parse", &format!("{second}~1")]), first);
    assert_eq!(git(Some(&r), &["log", "-1", "--format=%s", &second]), "two");
    assert_eq!(
        std::fs::read_to_string(r.join("grokmirror.fingerprint")).unwrap(),
        show_ref_sha1(&r)
    );
    assert_eq!(lines(&log), [r.display().to_string()]);
}
