//! grok-fsck under a hostile local user (SPEC §2): while it repacks,
//! checks and tends object storage, a directory of the tree is swapped for
//! a symlink to an outside copy of it. Every lock, repack, prune, cache and
//! request file goes through the repository's directory handle, and object
//! storage never drops a member it cannot see, so the outside copy is never
//! touched and nothing is lost.

use crate::support;

use crate::support::attack::under_attack;
use crate::support::forks::{fsck_all, Tree};
use crate::support::mirror::output_text;
use crate::support::snapshot::snapshot;

#[test]
fn swapping_a_directory_for_a_symlink_never_redirects_maintenance() {
    let tree = Tree::new("", "");
    let keys: Vec<String> = (0..12).map(|i| format!("/pub/r{i:02}.git")).collect();
    for (i, k) in keys.iter().enumerate() {
        support::fixture::project(&tree.repo(k), 4, 1_600_000_000 + i as i64);
    }
    tree.manifest();
    // The outside directory holds a copy of /pub, so anything done by
    // name while the swap is in place would land in a real repository
    // there.
    let outside = tree.dir.path().join("outside");
    support::run_ok(
        std::process::Command::new("cp")
            .arg("-a")
            .arg(tree.top.join("pub"))
            .arg(&outside),
    );
    let before = snapshot(&outside);
    let mut refused = 0;
    for round in 0..3 {
        if round > 0 {
            for (i, k) in keys.iter().enumerate() {
                support::fixture::commits(
                    &tree.repo(k),
                    "main",
                    2,
                    1_700_000_000 + (round * 100 + i) as i64,
                );
            }
            tree.manifest();
        }
        let (out, _swaps) = under_attack(
            &tree.top.join("pub"),
            &outside,
            std::time::Duration::from_secs(180),
            || tree.fsck(&["-f", "--repack-all-full"]),
        );
        refused += String::from_utf8_lossy(&out.stderr)
            .matches("refusing to follow it")
            .count();
        let after = snapshot(&outside);
        let changed: Vec<&String> = after
            .keys()
            .chain(before.keys())
            .filter(|k| after.get(*k) != before.get(*k))
            .collect();
        assert!(
            changed.is_empty(),
            "round {round}: grok-fsck changed the outside copy: {changed:?}\n{}",
            output_text(&out)
        );
    }
    assert!(refused > 0, "the attack never met grok-fsck");
    // Without the attack: every repository is sound and the next runs
    // are clean.
    let out = tree.fsck(&["-f"]);
    assert_success!(out);
    assert_eq!(fsck_all(&tree.top, false), Vec::<String>::new());
    assert_eq!(snapshot(&outside), before);
}
