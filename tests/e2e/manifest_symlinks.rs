//! A repository replaced by a symlink to another repository (an origin
//! that merged two projects, or moved one and left a link behind) loses its
//! own manifest entry and is listed among the target's `symlinks` instead,
//! in a full walk and in hook mode on the symlink's path; and the reference
//! grokmirror 2.0.12 carries on with the manifest we wrote.

use std::path::{Path, PathBuf};

use crate::support::fixture::{commits, project};
use crate::support::{grok, json_keys, oracle, read_manifest_json, run_ok};
use serde_json::{json, Value};

struct Origin {
    _dir: tempfile::TempDir,
    top: PathBuf,
    manifest: PathBuf,
}

/// An origin with `/pub/a.git`, `/pub/b.git` and `/pub/c.git`, and its
/// manifest made by our grok-manifest.
fn origin() -> Origin {
    let dir = tempfile::tempdir().unwrap();
    let top = std::fs::canonicalize(dir.path()).unwrap().join("top");
    project(&top.join("pub/a.git"), 3, 1_600_000_000);
    project(&top.join("pub/b.git"), 2, 1_600_100_000);
    project(&top.join("pub/c.git"), 1, 1_600_200_000);
    let manifest = top.join("manifest.js.gz");
    let o = Origin {
        _dir: dir,
        top,
        manifest,
    };
    let m = o.ours(&[]);
    assert_eq!(json_keys(&m), ["/pub/a.git", "/pub/b.git", "/pub/c.git"]);
    o
}

impl Origin {
    /// Run `program` (grok-manifest, ours or the reference's) with `args`;
    /// the manifest it leaves.
    fn run(&self, mut program: std::process::Command, args: &[&Path]) -> Value {
        program
            .arg("-m")
            .arg(&self.manifest)
            .arg("-t")
            .arg(&self.top)
            .args(args);
        run_ok(&mut program);
        read_manifest_json(&self.manifest)
    }

    fn ours(&self, args: &[&Path]) -> Value {
        self.run(grok("grok-manifest"), args)
    }

    /// Replace `/pub/b.git` by a symlink to `a.git` (relative, as operators
    /// make them); the symlink's path.
    fn replace_b_by_a_link(&self) -> PathBuf {
        let b = self.top.join("pub/b.git");
        std::fs::remove_dir_all(&b).unwrap();
        std::os::unix::fs::symlink("a.git", &b).unwrap();
        b
    }
}

/// `/pub/b.git` has no entry of its own, and is a symlink of `/pub/a.git`.
fn assert_b_is_a_symlink_of_a(m: &Value) {
    assert_eq!(json_keys(m), ["/pub/a.git", "/pub/c.git"], "{m:#}");
    assert_eq!(m["/pub/a.git"]["symlinks"], json!(["/pub/b.git"]), "{m:#}");
    assert!(m["/pub/c.git"].get("symlinks").is_none(), "{m:#}");
}

#[test]
fn a_repository_replaced_by_a_symlink_leaves_the_manifest_in_hook_mode() {
    let o = origin();
    let link = o.replace_b_by_a_link();
    // As a post-update hook names it, with -n (use now) and without.
    let m = o.ours(&[Path::new("-n"), &link]);
    assert_b_is_a_symlink_of_a(&m);
    let m = o.ours(&[&link]);
    assert_b_is_a_symlink_of_a(&m);
    // Named once more: still one symlink, still no entry.
    let m = o.ours(&[&link, &o.top.join("pub/a.git")]);
    assert_b_is_a_symlink_of_a(&m);

    // The reference reads what we wrote and carries on: a hook run of its
    // own on the target keeps the symlink and brings no entry back.
    commits(&o.top.join("pub/a.git"), "main", 1, 1_700_000_000);
    let m = o.run(oracle("grok-manifest"), &[&o.top.join("pub/a.git")]);
    assert_b_is_a_symlink_of_a(&m);
    assert_eq!(m["/pub/a.git"]["modified"], 1_700_000_000);
    // And we read what it wrote.
    let m = o.ours(&[&link]);
    assert_b_is_a_symlink_of_a(&m);
}

#[test]
fn a_repository_replaced_by_a_symlink_leaves_the_manifest_in_a_full_walk() {
    let o = origin();
    o.replace_b_by_a_link();
    let m = o.ours(&[]);
    assert_b_is_a_symlink_of_a(&m);
    // A manifest written by the 1.x convention (keys without the leading
    // slash) loses the symlink's entry too.
    let o = origin();
    let mut m = read_manifest_json(&o.manifest);
    let b = m.as_object_mut().unwrap().remove("/pub/b.git").unwrap();
    m.as_object_mut().unwrap().insert("pub/b.git".into(), b);
    std::fs::write(&o.manifest, serde_json::to_vec(&m).unwrap()).unwrap();
    let link = o.replace_b_by_a_link();
    let m = o.ours(&[&link]);
    assert_b_is_a_symlink_of_a(&m);

    // The reference's full walk over our manifest agrees.
    let m = o.run(oracle("grok-manifest"), &[]);
    assert_b_is_a_symlink_of_a(&m);
}
