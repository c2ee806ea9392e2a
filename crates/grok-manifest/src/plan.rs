//! The decisions of a run, free of I/O: whether the whole tree is walked,
//! which entries are gone, and what a repository's `reference` becomes.

use std::collections::BTreeSet;
use std::path::Path;

use grokmirror::formats::manifest::RepoEntry;

/// Whether this run walks the whole tree: asked to (`--purge`), no
/// repositories named, or a manifest to regenerate (empty or unreadable).
/// Otherwise (a hook) only the named repositories are touched.
pub fn walks_the_tree(purge: bool, no_targets: bool, manifest_empty: bool) -> bool {
    purge || no_targets || manifest_empty
}

/// The keys a hook run touches, when it can change the manifest a member
/// at a time ([`grokmirror::formats::manifest_members`]): a gzipped
/// manifest, repositories named (each with both spellings of its key,
/// `own_keys`), and no symlinks, `--remove` or `--purge`, which touch
/// entries anywhere. `None`: read and write it whole.
pub fn hook_keys(
    gzipped: bool,
    purge: bool,
    remove: bool,
    repo_keys: Option<Vec<String>>,
) -> Option<Vec<String>> {
    let keys = repo_keys.filter(|k| !k.is_empty())?;
    (gzipped && !purge && !remove).then(|| keys.iter().flat_map(|k| own_keys(k)).collect())
}

/// Keys of the manifest whose repository a full walk did not find
/// (`on_disk` holds keys with their leading slash; grokmirror 1.x wrote
/// keys without one).
pub fn gone_keys<'k>(
    keys: impl IntoIterator<Item = &'k String>,
    on_disk: &BTreeSet<String>,
) -> Vec<String> {
    keys.into_iter()
        .filter(|k| !on_disk.contains(*k) && !on_disk.contains(&format!("/{k}")))
        .cloned()
        .collect()
}

/// The manifest keys a path may have its own entry under: `key` (with its
/// leading slash) and, as grokmirror 1.x wrote them, without it.
pub fn own_keys(key: &str) -> [String; 2] {
    [key.to_string(), key.trim_start_matches('/').to_string()]
}

/// The `reference` of a repository's entry, for grokmirror 1.x clients:
/// when its forkgroup changes, the first member of the object storage it
/// borrows from (`first_member`, asked only then); the borrowed-from repo
/// for plain alternates; otherwise whatever it was.
pub fn reference(
    old: &RepoEntry,
    forkgroup: Option<&str>,
    alternate: Option<&Path>,
    toplevel: &Path,
    first_member: impl FnOnce(&Path) -> Option<String>,
) -> Option<String> {
    let mut reference = if old.forkgroup.as_deref() != forkgroup {
        alternate.and_then(first_member)
    } else {
        old.reference.clone()
    };
    if reference.is_none() && forkgroup.is_none() {
        if let Some(alt) = alternate {
            reference = Some(grokmirror::tree::key::manifest_style(toplevel, alt));
        }
    }
    reference
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_has_its_key_and_the_1x_spelling() {
        assert_eq!(own_keys("/pub/a.git"), ["/pub/a.git", "pub/a.git"]);
    }

    #[test]
    fn only_a_hook_with_a_manifest_skips_the_walk() {
        assert!(!walks_the_tree(false, false, false));
        assert!(walks_the_tree(true, false, false));
        assert!(walks_the_tree(false, true, false));
        assert!(walks_the_tree(false, false, true));
    }

    #[test]
    fn only_a_gzipped_hook_on_repositories_changes_members() {
        let keys = || Some(vec!["/a/b.git".to_string()]);
        assert_eq!(
            hook_keys(true, false, false, keys()),
            Some(vec!["/a/b.git".into(), "a/b.git".into()])
        );
        assert_eq!(hook_keys(false, false, false, keys()), None, "plain JSON");
        assert_eq!(hook_keys(true, true, false, keys()), None, "--purge");
        assert_eq!(hook_keys(true, false, true, keys()), None, "--remove");
        assert_eq!(hook_keys(true, false, false, None), None, "a symlink named");
        assert_eq!(
            hook_keys(true, false, false, Some(vec![])),
            None,
            "no target"
        );
    }

    #[test]
    fn keys_without_a_slash_are_found_too() {
        let keys: Vec<String> = ["/a.git", "b.git", "/c.git"].map(String::from).into();
        let on_disk: BTreeSet<String> = ["/a.git", "/b.git"].map(String::from).into();
        assert_eq!(gone_keys(&keys, &on_disk), ["/c.git"]);
    }

    #[test]
    fn references() {
        let top = Path::new("/top");
        let alt = Path::new("/top/linux.git");
        let none = |_: &Path| -> Option<String> { panic!("not asked") };
        let old = RepoEntry {
            reference: Some("/kept.git".into()),
            forkgroup: Some("fg".into()),
            ..Default::default()
        };
        // Same forkgroup: kept as it was.
        assert_eq!(
            reference(&old, Some("fg"), Some(alt), top, none).as_deref(),
            Some("/kept.git")
        );
        // A new forkgroup: its first member.
        let first = |_: &Path| Some("/first.git".to_string());
        assert_eq!(
            reference(&old, Some("other"), Some(alt), top, first).as_deref(),
            Some("/first.git")
        );
        // Plain alternates: the lender.
        assert_eq!(
            reference(&RepoEntry::default(), None, Some(alt), top, none).as_deref(),
            Some("/linux.git")
        );
        assert_eq!(
            reference(&RepoEntry::default(), None, None, top, none),
            None
        );
    }
}
