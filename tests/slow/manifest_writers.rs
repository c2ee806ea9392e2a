//! Several writers on one manifest: ours and the reference taking turns,
//! and 40 hooks at once (ours alone, and ours interleaved with the
//! reference). No update may be lost, and both tools must read the result
//! the same way.

use std::path::{Path, PathBuf};
use std::process::Child;

use crate::support::fixture::{commits, project};
use crate::support::{grok, oracle, oracle_venv, read_manifest_json, run_ok, show_ref_sha1};
use serde_json::Value;

/// `n` small repos under `top`, and an initial manifest made by ours.
fn collection(top: &Path, manifest: &Path, n: usize) -> Vec<PathBuf> {
    let repos: Vec<PathBuf> = (0..n)
        .map(|i| {
            project(
                &top.join(format!("group{}/repo{i:02}.git", i % 4)),
                2,
                1_600_000_000 + i as i64,
            )
        })
        .collect();
    run_ok(grok("grok-manifest").args([
        "-m",
        manifest.to_str().unwrap(),
        "-t",
        top.to_str().unwrap(),
    ]));
    repos
}

/// The manifest as the reference reads it (its own `read_manifest`),
/// re-serialized as JSON.
fn as_reference_reads_it(manifest: &Path) -> Value {
    let script =
        "import sys, json, grokmirror\nprint(json.dumps(grokmirror.read_manifest(sys.argv[1])))";
    let out = run_ok(
        std::process::Command::new(oracle_venv().join("bin/python")).args([
            "-c",
            script,
            manifest.to_str().unwrap(),
        ]),
    );
    serde_json::from_str(&out).unwrap()
}

/// The manifest as our library reads it.
fn as_we_read_it(manifest: &Path) -> Value {
    grokmirror::formats::manifest::Manifest::read(manifest)
        .unwrap()
        .expect("manifest exists")
        .to_value()
}

fn assert_every_fingerprint_current(top: &Path, manifest: &Path, repos: &[PathBuf]) {
    let m = read_manifest_json(manifest);
    assert_eq!(
        m.as_object().unwrap().len(),
        repos.len(),
        "entries lost or added"
    );
    for repo in repos {
        let key = format!("/{}", repo.strip_prefix(top).unwrap().display());
        assert_eq!(
            m[&key]["fingerprint"].as_str(),
            Some(show_ref_sha1(repo).as_str()),
            "{key}: update lost"
        );
    }
}

/// One post-receive hook: the reference's grok-manifest on `repo`, or ours.
fn run_hook(reference: bool, manifest: &Path, top: &Path, repo: &Path) {
    let mut cmd = if reference {
        oracle("grok-manifest")
    } else {
        grok("grok-manifest")
    };
    run_ok(cmd.args([
        "-m",
        manifest.to_str().unwrap(),
        "-t",
        top.to_str().unwrap(),
        repo.to_str().unwrap(),
    ]));
}

#[test]
fn ours_and_reference_take_turns_in_hook_mode() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("top");
    let manifest = dir.path().join("manifest.js.gz");
    let repos = collection(&top, &manifest, 8);
    for round in 0..3 {
        for (i, repo) in repos.iter().enumerate() {
            commits(repo, "main", 1, 1_700_000_000 + (round * 100 + i) as i64);
            if i == 3 {
                std::fs::write(repo.join("description"), format!("round {round}\n")).unwrap();
            }
            run_hook((i + round) % 2 == 1, &manifest, &top, repo);
        }
    }
    assert_every_fingerprint_current(&top, &manifest, &repos);
    let ours = as_we_read_it(&manifest);
    let theirs = as_reference_reads_it(&manifest);
    assert_eq!(ours, theirs, "the two tools read the manifest differently");
    assert_eq!(ours["/group3/repo03.git"]["description"], "round 2");
}

fn spawn_hook(reference: bool, manifest: &Path, top: &Path, repo: &Path) -> Child {
    let mut cmd = if reference {
        oracle("grok-manifest")
    } else {
        grok("grok-manifest")
    };
    cmd.args([
        "-n",
        "-m",
        manifest.to_str().unwrap(),
        "-t",
        top.to_str().unwrap(),
        repo.to_str().unwrap(),
    ])
    .stdout(std::process::Stdio::null())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .expect("spawn hook")
}

fn forty_concurrent_hooks(mix_in_reference: bool) {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("top");
    let manifest = dir.path().join("manifest.js.gz");
    let repos = collection(&top, &manifest, 40);
    for (i, repo) in repos.iter().enumerate() {
        commits(repo, &format!("topic{i}"), 1, 1_700_000_000 + i as i64);
    }
    let children: Vec<Child> = repos
        .iter()
        .enumerate()
        .map(|(i, repo)| spawn_hook(mix_in_reference && i % 2 == 1, &manifest, &top, repo))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a hook failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_every_fingerprint_current(&top, &manifest, &repos);
    assert_eq!(as_we_read_it(&manifest), as_reference_reads_it(&manifest));
}

#[test]
fn forty_concurrent_hooks_lose_nothing() {
    forty_concurrent_hooks(false);
}

#[test]
fn forty_concurrent_hooks_interleaved_with_reference_lose_nothing() {
    forty_concurrent_hooks(true);
}

/// A large manifest (3,000 entries, several indexed gzip members) changed
/// by hooks a member at a time, with the reference's hooks in between:
/// the reference reads our members (and their index in the gzip extra
/// field) and writes one plain member, which our next hook reads whole
/// and indexes again. Nothing is lost, the members not touched keep
/// their bytes, and both tools read every version alike.
#[test]
fn hooks_change_a_large_manifest_a_member_at_a_time_and_the_reference_reads_it() {
    use grokmirror::formats::gzip_members;
    use grokmirror::formats::manifest::{Manifest, RepoEntry};

    let dir = tempfile::tempdir().unwrap();
    let top = dir.path().join("top");
    let manifest = dir.path().join("manifest.js.gz");
    // Three real repositories: before, among and after the synthetic keys.
    let repos: Vec<PathBuf> = ["a/first.git", "m/01500-middle.git", "z/last.git"]
        .iter()
        .enumerate()
        .map(|(i, k)| project(&top.join(k), 2, 1_600_000_000 + i as i64))
        .collect();
    let mut m = Manifest::new();
    for i in 0..3000 {
        let key = format!("/m/{i:05}.git");
        let entry = RepoEntry {
            description: Some(format!("synthetic {i}")),
            fingerprint: Some(format!("{i:040x}")),
            modified: 1_600_000_000 + i,
            ..RepoEntry::default()
        };
        m.repos.insert(key, entry);
    }
    m.write(&manifest, false).unwrap();
    let synthetic = as_we_read_it(&manifest);

    let hook = |reference: bool, repo: &Path| run_hook(reference, &manifest, &top, repo);
    let members = || gzip_members::members(&std::fs::read(&manifest).unwrap());
    let check = |hooked: &[&PathBuf]| {
        let ours = as_we_read_it(&manifest);
        assert_eq!(ours, as_reference_reads_it(&manifest), "the tools disagree");
        for (k, v) in synthetic.as_object().unwrap() {
            assert_eq!(&ours[k], v, "{k} changed or lost");
        }
        for repo in hooked {
            let key = format!("/{}", repo.strip_prefix(&top).unwrap().display());
            assert_eq!(
                ours[&key]["fingerprint"].as_str(),
                Some(show_ref_sha1(repo).as_str()),
                "{key}: update lost"
            );
        }
    };

    let before = std::fs::read(&manifest).unwrap();
    let old = members().expect("ours writes indexed members");
    assert!(old.len() >= 3, "{} members", old.len());
    hook(false, &repos[1]);
    check(&[&repos[1]]);
    let after = std::fs::read(&manifest).unwrap();
    let new = members().expect("still indexed");
    assert_eq!(
        before[old[0].range.clone()],
        after[new[0].range.clone()],
        "the first member was rewritten for a key in another"
    );
    let (o, n) = (old.last().unwrap(), new.last().unwrap());
    assert_eq!(before[o.range.clone()], after[n.range.clone()]);

    hook(true, &repos[2]);
    check(&[&repos[1], &repos[2]]);
    assert_eq!(members(), None, "the reference writes one plain member");

    commits(&repos[0], "main", 1, 1_700_000_000);
    hook(false, &repos[0]);
    check(&repos.iter().collect::<Vec<_>>());
    assert!(members().is_some(), "ours indexes it again");

    commits(&repos[2], "main", 1, 1_700_000_100);
    hook(false, &repos[2]);
    check(&repos.iter().collect::<Vec<_>>());
}
