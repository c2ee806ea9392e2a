//! Tending object storage: merge redundant ones ([`super::merge`]), bring
//! each in step with its members (member list, remotes, fetches, islands,
//! baselines, stale refs), and delete the unused ([`super::leave`]).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use grokmirror::config::glob::GlobList;
use grokmirror::lock;
use grokmirror::objstore::{self, FetchMethod};
use grokmirror::repo::roots;
use tracing::{debug, info, warn};

use super::Forks;
use crate::record::forkgroups::ForkgroupFields;

/// A remote of an object storage that stays one: its virtref and its
/// manifest key.
struct ListedMember {
    virtref: String,
    gitdir: String,
}

impl Forks<'_> {
    /// The repositories borrowing from each object storage.
    fn load_users(&mut self, all: &[PathBuf]) {
        self.users = all
            .iter()
            .map(|o| (o.clone(), self.altmap.borrowers_of(o)))
            .collect();
    }

    pub(super) fn users_of(&self, obst: &Path) -> BTreeSet<PathBuf> {
        self.users.get(obst).cloned().unwrap_or_default()
    }

    /// Merge, tend and delete object storage.
    pub(super) fn tend_objstores(&mut self) {
        let all = objstore::list(&self.objstore_dir);
        info!(
            "Analyzing {} ({} repos)",
            self.objstore_dir.display(),
            all.len()
        );
        self.load_users(&all);
        for o in &all {
            self.obst_roots
                .entry(o.clone())
                .or_insert_with(|| roots::get(self.git, o, false).unwrap_or_default());
        }
        let mut unused = BTreeSet::new();
        for obst in &all {
            if self.users_of(obst).is_empty() {
                unused.insert(obst.clone());
                continue;
            }
            let siblings = self.redundant_with(obst, &all, &unused);
            if !siblings.is_empty() {
                self.merge(obst, siblings);
            }
            if self.users_of(obst).is_empty() {
                unused.insert(obst.clone());
                continue;
            }
            self.tend(obst);
        }
        // Emptied by a merge after they were tended: gone now too.
        for obst in &all {
            if self.users_of(obst).is_empty() {
                unused.insert(obst.clone());
            }
        }
        self.delete_unused(&unused);
    }

    /// Bring one object storage in step with its members.
    fn tend(&mut self, obst: &Path) {
        let Some(_o) = self.lock_objstore(obst) else {
            return;
        };
        let users = self.users_of(obst);
        if let Err(e) = objstore::write_member_list(obst, &users) {
            warn!("{e}");
        }
        let forkgroup = objstore::forkgroup_name(obst).unwrap_or_default();
        let remotes = objstore::list_remotes(self.git, obst).unwrap_or_default();
        self.drop_half_written_remotes(obst, &remotes);
        let settings = self.settings;
        let islandcores = &settings.objstore_settings.islandcores;
        let mut valid = BTreeSet::new();
        let mut listed = Vec::new();
        let mut island_core_set = false;
        let mut fetched = false;
        for (virtref, url) in &remotes {
            let child = PathBuf::from(url);
            if !self.still_member(obst, &users, virtref, &child) {
                continue;
            }
            valid.insert(virtref.clone());
            fetched |= self.fetch_if_behind(obst, &child);
            let gitdir = self.gitdir(&child);
            if !self.in_manifest.contains(&gitdir) {
                continue;
            }
            if !island_core_set && islandcores.is_match(&gitdir) {
                island_core_set = true;
                self.set_island_core(obst, virtref);
            }
            listed.push(ListedMember {
                virtref: virtref.clone(),
                gitdir,
            });
        }
        let baselines = &settings.objstore_settings.baselines;
        if let Some(value) = baseline_prefixes(&listed, baselines) {
            self.set_baselines(&remotes, &valid, &value);
        }
        for (gitdir, fields) in forkgroup_fields(&listed, &forkgroup) {
            self.manifest_updates.insert(gitdir, fields);
        }
        self.trim_stale_virtrefs(obst, &valid);
        if fetched {
            debug!("{} got new objects", Self::name(obst));
        }
    }

    /// Remove remotes without a URL (half-written by an interrupted run).
    fn drop_half_written_remotes(&self, obst: &Path, remotes: &[(String, String)]) {
        for name in objstore::remote_names(obst) {
            if !remotes.iter().any(|(n, _)| *n == name) {
                if let Err(e) = objstore::remove_member(self.git, obst, &name) {
                    warn!("{e}");
                }
            }
        }
    }

    /// Whether remote `virtref` (the repository `child`) stays a member of
    /// `obst`; when it does not (it uses us no longer, or is private now:
    /// never fetched again) the remote is removed. Its objects stay as long
    /// as anybody may borrow them.
    fn still_member(
        &self,
        obst: &Path,
        users: &BTreeSet<PathBuf>,
        virtref: &str,
        child: &Path,
    ) -> bool {
        if !((!users.contains(child) && self.truly_left(child, obst)) || self.is_private(child)) {
            return true;
        }
        match objstore::remove_member(self.git, obst, virtref) {
            Ok(()) => info!(
                "{}: removed remote {} (no longer used)",
                Self::name(obst),
                child.display()
            ),
            Err(e) => self.report.critical(format!("{e}")),
        }
        false
    }

    /// Fetch a member's new objects into `obst` when it has any. Returns
    /// whether it fetched.
    fn fetch_if_behind(&self, obst: &Path, child: &Path) -> bool {
        if !objstore::member_needs_fetch(obst, child) {
            return false;
        }
        let gitdir = self.gitdir(child);
        info!("    fetch: {gitdir} -> {}", Self::name(obst));
        // Plumbing reads the member's files: only under its lock
        // (tried; out of lock order).
        let member_lock = match self.settings.objstore_settings.fetch_method {
            FetchMethod::Plumbing => self.tree.lock_repo(child, lock::Wait::No).ok().flatten(),
            FetchMethod::Porcelain => None,
        };
        let method = if member_lock.is_some() {
            FetchMethod::Plumbing
        } else {
            FetchMethod::Porcelain
        };
        match objstore::fetch_member(self.git, obst, child, method) {
            Ok(_) => true,
            Err(e) => {
                self.report.critical(format!(
                    "cannot fetch {gitdir} into {}: {e}",
                    obst.display()
                ));
                false
            }
        }
    }

    /// Make `virtref` the island core of `obst` (its full repack then
    /// puts that member's objects first).
    fn set_island_core(&mut self, obst: &Path, virtref: &str) {
        match objstore::set_config(self.git, obst, "pack.islandCore", virtref) {
            Ok(true) => {
                info!(" reconfig: {} (islandCore to {virtref})", Self::name(obst));
                self.rebuild(obst);
            }
            Ok(false) => {}
            Err(e) => warn!("{e}"),
        }
    }

    /// Point every valid member's `core.alternateRefsPrefixes` at the
    /// baselines' heads.
    fn set_baselines(&self, remotes: &[(String, String)], valid: &BTreeSet<String>, value: &str) {
        for (virtref, url) in remotes {
            if !valid.contains(virtref) {
                continue;
            }
            let child = Path::new(url);
            match objstore::set_config(self.git, child, "core.alternateRefsPrefixes", value) {
                Ok(true) => info!(" reconfig: {} (baseline)", self.gitdir(child)),
                Ok(false) => {}
                Err(e) => warn!("{e}"),
            }
        }
    }

    /// Drop the refs of virtrefs no member has any more.
    fn trim_stale_virtrefs(&mut self, obst: &Path, valid: &BTreeSet<String>) {
        match objstore::virtrefs_with_refs(self.git, obst) {
            Ok(present) => {
                for stale in present.difference(valid) {
                    info!("     trim: stale virtref {stale}");
                    match objstore::trim_virtref(self.git, obst, stale) {
                        Ok(_) => self.rebuild(obst),
                        Err(e) => warn!("{e}"),
                    }
                }
            }
            Err(e) => warn!("{e}"),
        }
    }
}

/// `core.alternateRefsPrefixes` for the members of an object storage: the
/// heads of its baseline members, `None` when it has none.
fn baseline_prefixes(listed: &[ListedMember], baselines: &GlobList) -> Option<String> {
    let refs: BTreeSet<String> = listed
        .iter()
        .filter(|m| baselines.is_match(&m.gitdir))
        .map(|m| format!("refs/virtual/{}/heads/", m.virtref))
        .collect();
    if refs.is_empty() {
        return None;
    }
    let value: Vec<&str> = refs.iter().map(String::as_str).collect();
    Some(value.join(" "))
}

/// Each member's manifest fields: its forkgroup, and (grokmirror 1.x
/// clients clone forks with `--reference` to the group's first member)
/// the first member as its reference, none for the first itself.
fn forkgroup_fields(listed: &[ListedMember], forkgroup: &str) -> Vec<(String, ForkgroupFields)> {
    let first = listed.first().map(|m| m.gitdir.clone());
    listed
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let reference = if i == 0 { None } else { first.clone() };
            (m.gitdir.clone(), (reference, forkgroup.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(virtref: &str, gitdir: &str) -> ListedMember {
        ListedMember {
            virtref: virtref.into(),
            gitdir: gitdir.into(),
        }
    }

    #[test]
    fn baselines_name_their_heads_in_order() {
        let listed = [
            member("bb", "/linux.git"),
            member("aa", "/stable.git"),
            member("cc", "/fork.git"),
        ];
        let baselines = GlobList::new(["/linux.git", "/stable.git"]);
        assert_eq!(
            baseline_prefixes(&listed, &baselines).as_deref(),
            Some("refs/virtual/aa/heads/ refs/virtual/bb/heads/")
        );
        assert_eq!(baseline_prefixes(&listed, &GlobList::default()), None);
    }

    #[test]
    fn the_first_member_is_everybody_elses_reference() {
        let listed = [
            member("a", "/one.git"),
            member("b", "/two.git"),
            member("c", "/three.git"),
        ];
        let fields = forkgroup_fields(&listed, "fg");
        assert_eq!(fields[0], ("/one.git".into(), (None, "fg".into())));
        assert_eq!(
            fields[1],
            ("/two.git".into(), (Some("/one.git".into()), "fg".into()))
        );
        assert_eq!(fields[2].1 .0.as_deref(), Some("/one.git"));
        assert!(forkgroup_fields(&[], "fg").is_empty());
    }
}
