//! A fork group's first clone runs alone: it creates and fills the group's
//! object storage, and the group's other clones, waiting meanwhile, then
//! only download what the group does not have yet.

use std::collections::BTreeSet;

use grokmirror::family_queue::ActiveFamilies;

/// Groups whose object storage is being created by a running clone: the
/// group's other clones wait for it (see [`crate::engine::scheduler`]), so
/// they find it populated instead of each downloading everything.
#[derive(Debug, Default)]
pub struct Seeding {
    /// Group -> the key of the clone creating it.
    by_group: ActiveFamilies<String, String>,
    /// Groups seen populated (they stay so).
    populated: BTreeSet<String>,
}

impl Seeding {
    /// Whether a clone of `key` in `group` may start now.
    /// `is_populated` tells whether the group's object storage holds
    /// objects (asked only while the group is not known to);
    /// `public_waiting` whether another public clone of the group is still
    /// queued. Marks the clone as the group's seed when the group has no
    /// populated object storage yet.
    pub fn admit(
        &mut self,
        key: &str,
        group: &str,
        private: bool,
        is_populated: impl FnOnce() -> bool,
        public_waiting: impl FnOnce() -> bool,
    ) -> bool {
        if self.by_group.is_taken(&group.to_string()) {
            return false;
        }
        if self.populated.contains(group) {
            return true;
        }
        if is_populated() {
            self.populated.insert(group.to_string());
            return true;
        }
        // A private clone never seeds a group a public one could.
        if private && public_waiting() {
            return false;
        }
        self.by_group.take(group.to_string(), key.to_string());
        true
    }

    /// A clone finished (however it ended).
    pub fn finished(&mut self, key: &str) {
        self.by_group.free_held_by(&key.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_clone_of_an_empty_group_runs_alone() {
        let mut s = Seeding::default();
        let no = || false;
        assert!(s.admit("/a.git", "g", false, no, no), "the seed");
        assert!(!s.admit("/b.git", "g", false, no, no), "waits for the seed");
        assert!(s.admit("/x.git", "other", false, || true, no), "populated");
        assert!(
            s.admit("/y.git", "other", false, || unreachable!(), no),
            "populated groups stay so"
        );
        s.finished("/a.git");
        assert!(s.admit("/b.git", "g", false, || true, no));
        assert!(s.admit("/c.git", "g", false, || unreachable!(), no));
    }

    #[test]
    fn a_private_clone_does_not_seed_a_group_a_public_one_could() {
        let mut s = Seeding::default();
        assert!(!s.admit("/p.git", "g", true, || false, || true));
        assert!(
            s.admit("/p.git", "g", true, || false, || false),
            "no public one"
        );
        assert!(
            !s.admit("/q.git", "g", false, || false, || false),
            "seeding"
        );
    }
}
