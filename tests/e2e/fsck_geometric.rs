//! grok-fsck's repacks for today's git: geometric quick repacks with a
//! multi-pack bitmap (git 2.41+; older git keeps the one-pack repack), full
//! repacks that reuse deltas, and object storage whose first repack keeps
//! the members' deltas while every member's clone is still served from its
//! own delta island.

use std::path::Path;
use std::process::Command;

use crate::support::forks::{self, Tree};
use crate::support::replica::{self, count_objects, fsck_with, packs, stderr, Replica};
use crate::support::{fixture, git, git_cmd, grok, run};

/// The git on PATH makes geometric repacks (2.41+).
fn path_git_is_modern() -> bool {
    let v = git(None, &["version"]);
    let nums: Vec<u32> = v
        .split_whitespace()
        .nth(2)
        .unwrap()
        .split('.')
        .take(2)
        .map(|n| n.parse().unwrap())
        .collect();
    (nums[0], nums[1]) >= (2, 41)
}

/// Commits to `branch` of `repo` that each rewrite `big.txt` (growing by
/// ten lines, one old line changed), so packs hold real deltas.
fn growing_commits(repo: &Path, branch: &str, count: usize, tag: &str, start: i64) -> String {
    let refname = format!("refs/heads/{branch}");
    let parent = run(git_cmd(Some(repo)).args(["rev-parse", "-q", "--verify", &refname]));
    let parent = parent
        .status
        .success()
        .then(|| String::from_utf8_lossy(&parent.stdout).trim().to_string());
    let base_lines = 300 + 10 * count_lines(repo, &refname);
    let versions = (0..count).map(|i| {
        let lines = base_lines + 10 * i;
        let body: String = (0..lines)
            .map(|n| {
                if n == i % lines {
                    format!("{tag} changed line {n} in commit {i}\n")
                } else {
                    format!("line {n} of a file every fork shares, more or less\n")
                }
            })
            .collect();
        (start + 60 * i as i64, format!("{tag} {i}\n"), body)
    });
    import_versions(repo, &refname, parent.as_deref(), "big.txt", versions);
    git(Some(repo), &["rev-parse", &refname])
}

fn count_lines(repo: &Path, refname: &str) -> usize {
    let out = run(git_cmd(Some(repo)).args(["rev-list", "--count", refname]));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The cruft packs of `repo` (a `.mtimes` file beside the pack).
fn grokmirror_cruft_packs(repo: &Path) -> Vec<String> {
    packs(repo)
        .into_iter()
        .filter(|p| {
            repo.join("objects/pack")
                .join(p.replace(".pack", ".mtimes"))
                .exists()
        })
        .collect()
}

/// How a clone of `repo` (as a remote client sees it) was packed:
/// (objects, objects sent as they are stored).
fn clone_reuse(repo: &Path, into: &Path) -> (u64, u64) {
    let out = run(git_cmd(None).args([
        "clone",
        "--bare",
        "--no-local",
        "--progress",
        repo.to_str().unwrap(),
        into.to_str().unwrap(),
    ]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // "Total 120 (delta 80), reused 120 (delta 80), pack-reused 0"
    let line = err
        .lines()
        .find_map(|l| l.find("Total ").map(|at| &l[at..]))
        .unwrap_or_else(|| panic!("no totals in: {err}"));
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| !w.is_empty())
        .map(|w| w.parse().unwrap())
        .collect();
    assert!(numbers.len() >= 4, "{line}");
    (
        numbers[0],
        numbers[2] + numbers.get(4).copied().unwrap_or(0),
    )
}

#[test]
fn quick_repacks_are_geometric_and_full_ones_reuse_deltas() {
    let r = Replica::new("", "");
    let repo = fixture::init_bare(&r.repo("solo.git"));
    growing_commits(&repo, "main", 60, "solo", 1_600_000_000);
    git(Some(&repo), &["repack", "-adq"]);
    let big_pack = packs(&repo);
    assert_eq!(big_pack.len(), 1);
    // Pushes since: a small pack and some loose objects.
    growing_commits(&repo, "main", 3, "push", 1_700_000_000);
    for i in 0..5 {
        crate::support::git_stdin(
            Some(&repo),
            &["hash-object", "-w", "--stdin"],
            format!("loose {i}\n").as_bytes(),
        );
    }
    r.manifest();
    let out = r.fsck(&["--repack-all-quick"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let pack_dir = repo.join("objects/pack");
    let after = packs(&repo);
    if path_git_is_modern() {
        assert!(
            err.contains("--geometric=2 -d --write-midx --write-bitmap-index"),
            "{err}"
        );
        // The old big pack is left as it is; only the new ones were rolled up.
        assert!(after.contains(&big_pack[0]), "{big_pack:?} -> {after:?}");
        assert_eq!(after.len(), 2, "{after:?}");
        assert!(pack_dir.join("multi-pack-index").exists());
        let bitmaps = std::fs::read_dir(&pack_dir)
            .unwrap()
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                n.starts_with("multi-pack-index-") && n.ends_with(".bitmap")
            })
            .count();
        assert_eq!(bitmaps, 1);
        assert!(err.contains("adding a commit-graph layer"), "{err}");
    } else {
        assert!(err.contains("2.41+"), "{err}");
        assert_eq!(after.len(), 1, "{after:?}");
    }
    assert_eq!(count_objects(&repo)["count"], 0);
    assert!(replica::fsck_clean(&repo));
    assert!(replica::has_commit_graph(&repo));
    let verify = run(git_cmd(Some(&repo)).args(["commit-graph", "verify"]));
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );

    // A full repack reuses deltas (no -f) and leaves one pack with its
    // bitmap, the multi-pack index gone.
    let out = r.fsck(&["--repack-all-full"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("full repack, recomputing deltas"), "{err}");
    assert!(err.contains("(full repack: --repack-all-full)"), "{err}");
    // One pack, and the cruft pack the unreachable loose blobs went into.
    let cruft = grokmirror_cruft_packs(&repo);
    assert_eq!(cruft.len(), 1, "{:?}", packs(&repo));
    assert_eq!(packs(&repo).len(), 2);
    assert!(!pack_dir.join("multi-pack-index").exists());
    assert!(replica::fsck_clean(&repo));

    // Asked for by nobody: a grokmirror.repack request recomputes, a full
    // repack by need does not.
    // Small imports would be loose objects; these are to be packs.
    git(Some(&repo), &["config", "fastimport.unpackLimit", "1"]);
    for i in 0..25 {
        growing_commits(
            &repo,
            &format!("b{i}"),
            1,
            &format!("many{i}"),
            1_710_000_000 + i,
        );
    }
    assert!(packs(&repo).len() > 20);
    let out = r.fsck(&[]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("full repack, reusing deltas"), "{err}");
    assert!(!err.contains(" -f "), "{err}");
    assert!(replica::fsck_clean(&repo));
}

#[test]
fn without_git_2_41_quick_repacks_pack_everything() {
    let old_git = Path::new("/usr/bin/git");
    let r = Replica::new("", "");
    let repo = fixture::init_bare(&r.repo("solo.git"));
    growing_commits(&repo, "main", 30, "solo", 1_600_000_000);
    git(Some(&repo), &["repack", "-adq"]);
    growing_commits(&repo, "main", 3, "push", 1_700_000_000);
    r.manifest();
    let mut cmd = grok("grok-fsck");
    cmd.env("GITBIN", old_git);
    let out = fsck_with(cmd, &r.config, &["--repack-all-quick"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let version = run(Command::new(old_git).arg("version"));
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    assert!(version.contains("2.39"), "{version}");
    assert!(
        err.contains("geometric repacks with a multi-pack bitmap need 2.41+"),
        "{err}"
    );
    assert!(!err.contains("--geometric"), "{err}");
    assert_eq!(packs(&repo).len(), 1);
    assert!(!repo.join("objects/pack/multi-pack-index").exists());
    assert!(replica::fsck_clean(&repo));
}

#[test]
fn object_storage_keeps_deltas_and_every_member_clones_from_its_own_island() {
    let tree = Tree::new("", "");
    let base = fixture::init_bare(&tree.repo("/proj/base.git"));
    growing_commits(&base, "main", 40, "base", 1_600_000_000);
    git(Some(&base), &["repack", "-adfq"]);
    let mut members = vec![base.clone()];
    for f in 1..=2 {
        let fork = fixture::fork(&base, &tree.repo(&format!("/proj/fork{f}.git")));
        // Each fork's newer, larger file: in its own pack, the shared older
        // versions become deltas against blobs only that fork has.
        growing_commits(&fork, "main", 15, &format!("fork{f}"), 1_650_000_000 + f);
        git(Some(&fork), &["repack", "-adfq"]);
        members.push(fork);
    }
    tree.manifest();
    let out = tree.fsck(&["-f"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("full repack, reusing deltas"), "{err}");
    assert!(!err.contains("recomputing deltas"), "{err}");
    // The seed's pack was hard-linked into the new object storage: the seed
    // drops its copy without a repack walking its history.
    assert!(
        err.contains("attach: dropped 1 pack(s) that are also"),
        "{err}"
    );
    assert!(err.contains("nothing to repack"), "{err}");
    assert!(replica::packs(&members[0]).is_empty());
    // The other forks were fetched in: every object of their packs is in
    // the object storage, so those go too, checked object by object.
    assert!(
        err.contains("dropped 1 pack(s) whose every object its object storage holds"),
        "{err}"
    );
    for m in &members {
        assert!(replica::packs(m).is_empty(), "{}", m.display());
    }
    let bad = forks::fsck_all(&tree.top, false);
    assert!(bad.is_empty(), "{bad:?}");
    let obst = only_objstore(&tree);
    let scratch = tempfile::tempdir().unwrap();
    let reuse_of_each = |round: &str| -> Vec<(u64, u64)> {
        members
            .iter()
            .enumerate()
            .map(|(i, m)| clone_reuse(m, &scratch.path().join(format!("{round}-{i}.git"))))
            .collect()
    };
    for (total, reused) in reuse_of_each("ours") {
        assert_eq!(
            reused, total,
            "every object sent as stored: served from its own island"
        );
    }

    // A push to a fork, a deleted branch, then a quick and a full repack:
    // nobody loses an object, islands still hold.
    growing_commits(&members[1], "topic", 5, "topic", 1_700_000_000);
    git(Some(&members[2]), &["branch", "gone", "main"]);
    git(Some(&members[2]), &["branch", "-D", "gone"]);
    tree.manifest();
    for args in [&["--repack-all-quick"][..], &["--repack-all-full"][..]] {
        let out = tree.fsck(args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        let bad = forks::fsck_all(&tree.top, false);
        assert!(bad.is_empty(), "{args:?}: {bad:?}");
    }

    // The control: the same object storage repacked without islands sends
    // some member deltas that must be made anew. (Were the check above
    // unable to see cross-island deltas, this would fail.)
    git(
        Some(&obst),
        &["config", "extensions.preciousObjects", "false"],
    );
    git(
        Some(&obst),
        &[
            "-c",
            "repack.useDeltaIslands=false",
            "repack",
            "-adfq",
            "--window=250",
        ],
    );
    let without = reuse_of_each("control");
    assert!(
        without.iter().any(|(total, reused)| reused < total),
        "{without:?}"
    );
}

#[test]
fn a_stale_commit_graph_is_rebuilt_not_reported() {
    let r = Replica::new("", "");
    let repo = fixture::init_bare(&r.repo("solo.git"));
    growing_commits(&repo, "main", 5, "solo", 1_600_000_000);
    growing_commits(&repo, "topic", 3, "gone", 1_600_100_000);
    git(Some(&repo), &["commit-graph", "write", "--reachable"]);
    // The branch goes and its commits are pruned by something else: the
    // graph lists commits that are no longer there.
    git(Some(&repo), &["update-ref", "-d", "refs/heads/topic"]);
    git(Some(&repo), &["repack", "-adq"]);
    git(Some(&repo), &["prune", "--expire=now"]);
    let verify = run(git_cmd(Some(&repo)).args(["commit-graph", "verify"]));
    assert!(!verify.status.success(), "the graph is stale to begin with");
    r.manifest();
    let out = r.fsck(&["-f"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("(stale, not corrupt); rebuilding it"), "{err}");
    assert!(!err.contains("reports errors"), "{err}");
    assert!(!repo.join("grokmirror.fsck.err").exists());
    let verify = run(git_cmd(Some(&repo)).args(["commit-graph", "verify"]));
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    assert!(replica::fsck_clean(&repo));
}

/// `count` commits to `main` of `repo` whose `data.txt` takes turns between
/// two personalities (the same shared lines, growing, with one of two
/// blocks of unrelated hex), so a version's best delta base is two commits
/// back and the one next to it by size is a poor one.
fn alternating_commits(repo: &Path, count: usize) {
    let block = |tag: &str| -> String {
        (0..40)
            .map(|n| {
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::hash::Hash::hash(&(tag, n), &mut h);
                let x = std::hash::Hasher::finish(&h);
                format!("{x:016x}{:016x}{x:016x}\n", x.rotate_left(17) ^ 0x5bd1e995)
            })
            .collect()
    };
    let (alpha, beta) = (block("alpha"), block("beta"));
    let versions = (0..count).map(|i| {
        let k = i / 2;
        let shared: String = (0..60 + k / 10)
            .map(|n| {
                let version = if n == k % 60 { k } else { 0 };
                format!("shared line {n} of the file, version {version}\n")
            })
            .collect();
        let body = shared + if i % 2 == 0 { &alpha } else { &beta };
        (1_600_000_000 + 60 * i as i64, format!("c{i}\n"), body)
    });
    import_versions(repo, "refs/heads/main", None, "data.txt", versions);
}

/// Commits on `refname` of `repo` (the first on `parent`, when given), one
/// per (time, message, content) of `file`, by `git fast-import`.
fn import_versions(
    repo: &Path,
    refname: &str,
    parent: Option<&str>,
    file: &str,
    versions: impl Iterator<Item = (i64, String, String)>,
) {
    let mut stream = String::new();
    for (i, (when, msg, body)) in versions.enumerate() {
        stream.push_str(&format!(
            "commit {refname}\ncommitter T <t@example.com> {when} +0000\ndata {}\n{msg}",
            msg.len()
        ));
        if let (0, Some(p)) = (i, parent) {
            stream.push_str(&format!("from {p}\n"));
        }
        stream.push_str(&format!(
            "M 644 inline {file}\ndata {}\n{body}\n",
            body.len()
        ));
    }
    stream.push_str("done\n");
    crate::support::git_stdin(
        Some(repo),
        &["fast-import", "--quiet", "--done"],
        stream.as_bytes(),
    );
}

/// A fork group seeded from `base` packed with `window` (1: each version
/// compared with its neighbour by size only, as a loose packer does), its
/// first grok-fsck's log and the seed's pack size (KiB).
fn first_run_of_group(window: &str) -> (Tree, String, u64) {
    let tree = Tree::new("", "");
    let base = fixture::init_bare(&tree.repo("/proj/base.git"));
    alternating_commits(&base, 600);
    git(Some(&base), &["repack", "-adfq", "-b", window]);
    let seed_kib = count_objects(&base)["size-pack"];
    let fork = fixture::fork(&base, &tree.repo("/proj/fork1.git"));
    growing_commits(&fork, "topic", 5, "fork1", 1_700_000_000);
    tree.manifest();
    let out = tree.fsck(&["-f"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let bad = forks::fsck_all(&tree.top, false);
    assert!(bad.is_empty(), "{bad:?}");
    (tree, err, seed_kib)
}

/// The object storage of `tree`.
fn only_objstore(tree: &Tree) -> std::path::PathBuf {
    let found = forks::objstore_repos(&tree.objstore());
    assert_eq!(found.len(), 1, "{found:?}");
    found.into_iter().next().unwrap()
}

#[test]
fn poor_deltas_are_recomputed_once_in_new_object_storage_and_good_ones_kept() {
    // Loosely packed: the probe sees it, the first full repack searches
    // afresh, and the object storage ends far smaller than the seed was.
    let (tree, err, seed_kib) = first_run_of_group("--window=1");
    assert!(
        err.contains("with their deltas") && err.contains("its full repack recomputes every delta"),
        "{err}"
    );
    assert!(err.contains("full repack: new, with poor deltas"), "{err}");
    assert!(err.contains("full repack, recomputing deltas"), "{err}");
    let obst = only_objstore(&tree);
    let obst_kib = count_objects(&obst)["size-pack"];
    assert!(
        obst_kib * 2 < seed_kib,
        "object storage {obst_kib} KiB against a seed of {seed_kib} KiB"
    );
    // The next run reuses what it made: a probe is paid once.
    let out = tree.fsck(&["-f", "--repack-all-quick"]);
    let again = stderr(&out);
    assert!(out.status.success(), "{again}");
    assert!(!again.contains("with their deltas"), "{again}");

    // Packed well: the probe finds nothing to gain and the deltas stay.
    let (tree, err, _) = first_run_of_group("--window=10");
    assert!(err.contains("its full repack keeps them"), "{err}");
    assert!(err.contains("full repack, reusing deltas"), "{err}");
    assert!(!err.contains("recomputing deltas"), "{err}");
    drop(only_objstore(&tree));
}

#[test]
fn what_a_killed_repack_left_is_removed_before_the_next_repack() {
    let r = Replica::new("", "");
    let repo = fixture::init_bare(&r.repo("solo.git"));
    growing_commits(&repo, "main", 20, "solo", 1_600_000_000);
    git(Some(&repo), &["repack", "-adq"]);
    let pack_dir = repo.join("objects/pack");
    let pack = packs(&repo).remove(0);
    let stem = pack.trim_end_matches(".pack");
    // A repack killed between writing its pack and renaming it into place
    // leaves complete temporary files that git counts as a pack; one of a
    // writer still running (this process) must stay.
    let dead = format!(".tmp-{}-{stem}", u32::MAX - 1);
    let alive = format!(".tmp-{}-{stem}", std::process::id());
    for tmp in [&dead, &alive] {
        for ext in ["pack", "idx"] {
            std::fs::copy(
                pack_dir.join(format!("{stem}.{ext}")),
                pack_dir.join(format!("{tmp}.{ext}")),
            )
            .unwrap();
        }
    }
    assert_eq!(count_objects(&repo)["packs"], 3);
    r.manifest();
    let out = r.fsck(&["--repack-all-full"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("cleanup: removed 2 file(s) a killed repack left"),
        "{err}"
    );
    for ext in ["pack", "idx"] {
        assert!(!pack_dir.join(format!("{dead}.{ext}")).exists());
        assert!(pack_dir.join(format!("{alive}.{ext}")).exists());
    }
    // The repacked pack, and the running writer's files git counts too.
    assert_eq!(count_objects(&repo)["packs"], 2);
    let check = run(git_cmd(Some(&repo)).args(["fsck", "--no-progress"]));
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}
