//! Whether an error that matches `reclone_on_errors` becomes a re-clone
//! request (`grokmirror.reclone`, which grok-pull acts on), decided from
//! what the repository is.

/// What becomes of a repository's error that matches `reclone_on_errors`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reclone {
    /// Write the request: grok-pull re-clones it on its next run.
    Request,
    /// Others borrow its objects (alternates): a re-clone would pull them
    /// out from under the borrowers.
    LendsObjects,
    /// It has no remote to be re-cloned from: a repository of an origin,
    /// where nobody would act on the request (and a re-clone from
    /// nowhere is no repair).
    NoRemote,
}

/// The decision for a repository that `lends_objects` (to borrowers
/// through alternates) and whose config lists `remote_urls` (`None` when
/// its config cannot be read: a replica whose config is damaged is just
/// what a re-clone repairs, so that asks for one).
pub fn decide(lends_objects: bool, remote_urls: Option<&[String]>) -> Reclone {
    if lends_objects {
        Reclone::LendsObjects
    } else if remote_urls.is_some_and(|urls| urls.is_empty()) {
        Reclone::NoRemote
    } else {
        Reclone::Request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_repository_with_somewhere_to_come_from_is_re_cloned() {
        let mirror = ["git://origin/pub/a.git".to_string()];
        assert_eq!(decide(false, Some(&mirror)), Reclone::Request);
        assert_eq!(decide(false, Some(&[])), Reclone::NoRemote);
        assert_eq!(decide(false, None), Reclone::Request, "config unreadable");
        assert_eq!(decide(true, Some(&mirror)), Reclone::LendsObjects);
        assert_eq!(decide(true, Some(&[])), Reclone::LendsObjects);
        assert_eq!(decide(true, None), Reclone::LendsObjects);
    }
}
