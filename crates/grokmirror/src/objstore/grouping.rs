//! Which fork group each repository of a remote manifest belongs to, for
//! grok-pull: new forks are cloned straight into their group's object
//! storage (SPEC §1.10).
//!
//! The origin's `forkgroup` fields (or, from grokmirror 1.x origins, the
//! `reference` fields) say which repositories belong together; our own
//! manifest and our object storage may know better (our grok-fsck found
//! the siblings), so what we have wins: a remote group that shares a member
//! with one of our object-storage repositories becomes that one.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::formats::manifest::RepoEntry;
use crate::formats::remote_manifest::is_valid_forkgroup;

/// The fork groups of a pull.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forkgroups {
    /// Group name -> every repository known to belong to it (full paths):
    /// members of our object storage and repositories of the manifest.
    pub members: BTreeMap<String, BTreeSet<PathBuf>>,
    /// Manifest key -> group name, for the keys of the remote manifest.
    pub of_key: BTreeMap<String, String>,
}

impl Forkgroups {
    /// The group of a manifest key.
    pub fn group_of(&self, key: &str) -> Option<&str> {
        self.of_key.get(key).map(String::as_str)
    }

    /// The other known members of `group` (full paths).
    pub fn siblings(&self, group: &str, me: &Path) -> Vec<PathBuf> {
        self.members
            .get(group)
            .map(|m| m.iter().filter(|p| p.as_path() != me).cloned().collect())
            .unwrap_or_default()
    }
}

/// Work out the groups. `remote` holds the included entries of the remote
/// manifest; `local` our manifest's entries; `ours` our object storage's
/// members by group (see [`crate::objstore::local_forkgroups`]);
/// `new_name` makes a name for a group a 1.x origin implies.
pub fn assign(
    toplevel: &Path,
    remote: &BTreeMap<&str, &RepoEntry>,
    local: &BTreeMap<String, RepoEntry>,
    ours: &BTreeMap<String, BTreeSet<PathBuf>>,
    new_name: &mut dyn FnMut() -> String,
) -> Forkgroups {
    let valid = |fg: &Option<String>| fg.clone().filter(|n| is_valid_forkgroup(n));
    let mut theirs: BTreeMap<String, BTreeSet<PathBuf>> = BTreeMap::new();
    for (key, entry) in remote {
        let path = crate::tree::key::key_path(toplevel, key);
        let (reference, mut forkgroup) = match local.get(*key) {
            Some(l) => (
                l.reference.clone().or_else(|| entry.reference.clone()),
                valid(&l.forkgroup).or_else(|| valid(&entry.forkgroup)),
            ),
            None => (entry.reference.clone(), valid(&entry.forkgroup)),
        };
        if let (Some(reference), None) = (&reference, &forkgroup) {
            // A 1.x origin: the repository and the one it borrows from.
            let lender = crate::tree::key::key_path(toplevel, reference);
            let known = theirs
                .iter()
                .find(|(_, members)| members.contains(&lender))
                .map(|(name, _)| name.clone());
            let name = known.unwrap_or_else(|| {
                let name = new_name();
                theirs.entry(name.clone()).or_default().insert(lender);
                name
            });
            forkgroup = Some(name);
        }
        if let Some(fg) = forkgroup {
            theirs.entry(fg).or_default().insert(path);
        }
    }
    let mut members = ours.clone();
    for (name, group) in theirs {
        let overlapping = members
            .iter()
            .find(|(_, m)| !m.is_disjoint(&group))
            .map(|(n, _)| n.clone());
        members
            .entry(overlapping.unwrap_or(name))
            .or_default()
            .extend(group);
    }
    let mut of_key = BTreeMap::new();
    for (name, group) in &members {
        for path in group {
            if let Some(key) = crate::tree::key::manifest_key(toplevel, path) {
                if remote.contains_key(key.as_str()) {
                    of_key.insert(key, name.clone());
                }
            }
        }
    }
    Forkgroups { members, of_key }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(fg: Option<&str>, reference: Option<&str>) -> RepoEntry {
        RepoEntry {
            forkgroup: fg.map(str::to_string),
            reference: reference.map(str::to_string),
            ..Default::default()
        }
    }

    #[test]
    fn groups_from_the_origin_ours_and_1x_references() {
        let top = Path::new("/t");
        let remote: BTreeMap<String, RepoEntry> = [
            ("/a/linux.git", entry(Some("g1"), None)),
            ("/b/linux.git", entry(Some("g1"), None)),
            ("/c/linux.git", entry(Some("g1"), None)),
            ("/x/git.git", entry(None, None)),
            ("/y/git.git", entry(None, Some("/x/git.git"))),
            ("/z/git.git", entry(None, Some("/x/git.git"))),
            ("/bad.git", entry(Some("../evil"), None)),
            ("/mine.git", entry(Some("theirs"), None)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let local: BTreeMap<String, RepoEntry> =
            [("/mine.git".to_string(), entry(Some("local"), None))]
                .into_iter()
                .collect();
        // Our object storage already holds /a/linux.git as "ours1".
        let ours: BTreeMap<String, BTreeSet<PathBuf>> = [(
            "ours1".to_string(),
            [PathBuf::from("/t/a/linux.git")].into_iter().collect(),
        )]
        .into_iter()
        .collect();
        let mut n = 0;
        let mut new_name = || {
            n += 1;
            format!("new{n}")
        };
        let view: BTreeMap<&str, &RepoEntry> =
            remote.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let fg = assign(top, &view, &local, &ours, &mut new_name);
        assert_eq!(fg.group_of("/b/linux.git"), Some("ours1"), "ours wins");
        assert_eq!(fg.group_of("/c/linux.git"), Some("ours1"));
        assert_eq!(fg.group_of("/y/git.git"), Some("new1"));
        assert_eq!(fg.group_of("/z/git.git"), Some("new1"), "one 1.x group");
        assert_eq!(fg.group_of("/x/git.git"), Some("new1"), "with its lender");
        assert_eq!(fg.group_of("/bad.git"), None, "unsafe names are dropped");
        assert_eq!(fg.group_of("/mine.git"), Some("local"));
        assert_eq!(
            fg.siblings("ours1", Path::new("/t/b/linux.git")),
            vec![
                PathBuf::from("/t/a/linux.git"),
                PathBuf::from("/t/c/linux.git")
            ]
        );
    }
}
