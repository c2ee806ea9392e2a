//! Never two repositories of one fork family at once.
//!
//! Repositories of one family share objects (through an object-storage
//! repository or alternates): repacking two of them at once, or cloning
//! two while the first one is still filling their object storage, makes
//! each do the other's work or worse. [`ActiveFamilies`] says which
//! families are taken and by whom; [`FamilyQueue`] is a queue built on it
//! that hands out, in order, the first item whose family is free.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// The families taken now, each by one holder (a repository's key, say).
#[derive(Debug, Clone)]
pub struct ActiveFamilies<F, H> {
    taken: HashMap<F, H>,
}

impl<F, H> Default for ActiveFamilies<F, H> {
    fn default() -> Self {
        ActiveFamilies {
            taken: HashMap::new(),
        }
    }
}

impl<F: Hash + Eq, H: PartialEq> ActiveFamilies<F, H> {
    /// Whether `family` is taken.
    pub fn is_taken(&self, family: &F) -> bool {
        self.taken.contains_key(family)
    }

    /// Take `family` for `holder`; `false` (and nothing changes) when it
    /// is taken already.
    pub fn take(&mut self, family: F, holder: H) -> bool {
        if self.taken.contains_key(&family) {
            return false;
        }
        self.taken.insert(family, holder);
        true
    }

    /// Free `family`.
    pub fn free(&mut self, family: &F) {
        self.taken.remove(family);
    }

    /// Free whatever `holder` took.
    pub fn free_held_by(&mut self, holder: &H) {
        self.taken.retain(|_, h| h != holder);
    }

    /// How many families are taken.
    pub fn len(&self) -> usize {
        self.taken.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.taken.is_empty()
    }
}

/// Items in arrival order, handed out so that no two of one family are out
/// at once. Items out are given back with [`FamilyQueue::done`] (finished)
/// or [`FamilyQueue::put_back`] (to try again later).
#[derive(Debug, Clone)]
pub struct FamilyQueue<F, T> {
    pending: VecDeque<(F, T)>,
    active: ActiveFamilies<F, ()>,
}

impl<F, T> Default for FamilyQueue<F, T> {
    fn default() -> Self {
        FamilyQueue {
            pending: VecDeque::new(),
            active: ActiveFamilies::default(),
        }
    }
}

impl<F: Hash + Eq + Clone, T> FamilyQueue<F, T> {
    /// Queue `item` of `family`.
    pub fn push(&mut self, family: F, item: T) {
        self.pending.push_back((family, item));
    }

    /// The first pending item whose family is free; its family is taken
    /// until [`FamilyQueue::done`] or [`FamilyQueue::put_back`]. `None`
    /// when every pending item's family is out (or nothing is pending).
    pub fn take(&mut self) -> Option<T> {
        let pos = self
            .pending
            .iter()
            .position(|(f, _)| !self.active.is_taken(f))?;
        let (family, item) = self.pending.remove(pos).expect("position is in range");
        self.active.take(family, ());
        Some(item)
    }

    /// An item of `family` is finished: the family is free again.
    pub fn done(&mut self, family: &F) {
        self.active.free(family);
    }

    /// An item that was taken goes to the back of the queue; its family is
    /// free again.
    pub fn put_back(&mut self, family: F, item: T) {
        self.active.free(&family);
        self.pending.push_back((family, item));
    }

    /// Items waiting to be taken.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Families out now.
    pub fn active(&self) -> usize {
        self.active.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_is_taken_by_one_holder_at_a_time() {
        let mut a = ActiveFamilies::default();
        assert!(a.take("linux", "/a.git"));
        assert!(!a.take("linux", "/b.git"), "taken");
        assert!(a.take("git", "/c.git"), "another family is free");
        assert!(a.is_taken(&"linux"));
        a.free_held_by(&"/a.git");
        assert!(!a.is_taken(&"linux"));
        assert!(a.take("linux", "/b.git"));
        a.free(&"git");
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn the_queue_never_hands_out_two_of_a_family() {
        let mut q = FamilyQueue::default();
        q.push("f1", "a");
        q.push("f1", "b");
        q.push("f2", "c");
        assert_eq!(q.take(), Some("a"));
        // "b" shares a's family, so "c" comes next.
        assert_eq!(q.take(), Some("c"));
        assert_eq!(q.take(), None, "b waits for a");
        assert_eq!(q.pending(), 1);
        q.done(&"f1");
        assert_eq!(q.take(), Some("b"));
        q.put_back("f1", "b");
        assert_eq!(q.active(), 1, "f2 is still out");
        assert_eq!(q.take(), Some("b"), "put back, and free again");
        q.done(&"f1");
        q.done(&"f2");
        assert!(q.is_empty());
        assert_eq!(q.take(), None);
    }
}
