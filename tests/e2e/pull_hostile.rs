//! A hostile remote manifest (SPEC §2): entries that try to write outside
//! the top level, through symlinks, into other repositories, or to point
//! HEAD outside `refs/`. None of them may touch the disk; the valid entries
//! are still mirrored; the run exits non-zero naming what it rejected.

use crate::support;

use std::collections::BTreeSet;
use std::path::Path;

use crate::support::mirror::{assert_mirrored, output_text, repos_under, Origin, Replica};
use crate::support::read_manifest_json;
use serde_json::{json, Value};

/// Every path under `dir` (files, dirs, symlinks), relative, not following
/// symlinks.
fn tree(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            out.insert(p.strip_prefix(dir).unwrap().display().to_string());
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            }
        }
    }
    out
}

#[test]
fn hostile_entries_are_rejected_and_the_rest_is_mirrored() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(tmp.path()).unwrap();
    let origin = Origin::new(&dir);
    origin.project("/good.git", 2, 1_600_000_000);
    origin.project("/keep.git", 2, 1_600_000_000);
    origin.project("/evil-base.git", 2, 1_600_000_000);
    origin.manifest();
    let outside = dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("precious"), "do not touch").unwrap();

    let site = origin.local_site();
    let served = dir.join("served.js");
    let replica = Replica::new(
        &dir,
        "replica",
        &site,
        &format!("file://{}", served.display()),
        "purge = yes\npurgeprotect = 99\n",
    );
    // A local symlink out of the tree, as an admin might have left one.
    std::os::unix::fs::symlink(&outside, replica.top.join("sneaky")).unwrap();

    // First an honest run, so /keep.git is on disk.
    let honest = read_manifest_json(&origin.manifest);
    std::fs::write(&served, honest.to_string()).unwrap();
    let out = replica.pull(&[]);
    assert_success!(out);
    assert_mirrored(
        &origin.path("/keep.git"),
        &replica.path("/keep.git"),
        "Grokmirror",
    );

    // Now the hostile manifest: valid-looking records under bad names and
    // bad records under good names, all with a real fingerprint.
    let good = honest["/good.git"].clone();
    let with = |patch: Value| {
        let mut e = good.clone();
        for (k, v) in patch.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    };
    let mut hostile = serde_json::Map::new();
    hostile.insert("/good.git".into(), good.clone());
    hostile.insert("/../outside/escape.git".into(), good.clone());
    hostile.insert("/a/../../outside/x.git".into(), good.clone());
    hostile.insert("//abs.git".into(), good.clone());
    hostile.insert("/nul\u{0}byte.git".into(), good.clone());
    hostile.insert("/sneaky/through-link.git".into(), good.clone());
    hostile.insert("/good.git/objects/nested.git".into(), good.clone());
    hostile.insert(
        "/evil-base.git".into(),
        with(json!({"symlinks": ["/../outside/link"]})),
    );
    hostile.insert(
        "/etc-link.git".into(),
        with(json!({"symlinks": ["/../../../../etc"]})),
    );
    hostile.insert(
        "/head.git".into(),
        with(json!({"head": "ref: ../../../../etc/passwd"})),
    );
    hostile.insert(
        "/fork.git".into(),
        with(json!({"forkgroup": "../../outside/fg"})),
    );
    hostile.insert("/types.git".into(), with(json!({"fingerprint": 12345})));
    // The real /keep.git with a malformed HEAD: rejected, and not purged
    // because of it.
    let keep = honest["/keep.git"].clone();
    let mut bad_keep = keep.clone();
    bad_keep["head"] = json!("ref: refs/heads/../../x");
    hostile.insert("/keep.git".into(), bad_keep);
    std::fs::write(&served, Value::Object(hostile).to_string()).unwrap();
    support::mirror::bump_mtime(&served, 5);
    let outside_before = tree(&outside);
    let dir_before: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();

    let out = replica.pull(&[]);
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "/../outside/escape.git",
        "/a/../../outside/x.git",
        "//abs.git",
        "/nul\\x00byte.git",
        "/good.git/objects/nested.git",
        "/evil-base.git",
        "/etc-link.git",
        "/head.git",
        "/fork.git",
        "/types.git",
        "/keep.git",
    ] {
        assert!(
            err.contains(&format!("rejected {key}:")),
            "{key} not named as rejected:\n{}",
            output_text(&out)
        );
    }
    assert!(
        err.contains("/sneaky/through-link.git"),
        "{}",
        output_text(&out)
    );

    // The valid entry is mirrored; nothing else appeared anywhere.
    assert_mirrored(
        &origin.path("/good.git"),
        &replica.path("/good.git"),
        "Grokmirror",
    );
    assert_mirrored(
        &origin.path("/keep.git"),
        &replica.path("/keep.git"),
        "Grokmirror",
    );
    // /evil-base.git was mirrored by the honest run; its rejected record
    // neither changes nor purges it.
    assert_eq!(
        repos_under(&replica.top),
        vec!["/evil-base.git", "/good.git", "/keep.git"]
    );
    assert_eq!(
        tree(&outside),
        outside_before,
        "nothing written outside the top level"
    );
    let dir_after: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(dir_after, dir_before);
    assert!(!Path::new("/etc/objects").exists());
    assert!(std::fs::symlink_metadata(replica.top.join("etc")).is_err());
    let local = read_manifest_json(&replica.manifest());
    let keys = support::json_keys(&local);
    assert_eq!(keys, vec!["/evil-base.git", "/good.git", "/keep.git"]);
    assert_eq!(
        local["/keep.git"], keep,
        "the rejected record did not replace ours"
    );
}
