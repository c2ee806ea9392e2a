//! Where grok-pull builds new clones (and parks repositories it is about to
//! delete) so that nobody ever sees a half-made repository at its real
//! path.
//!
//! The staging directory is `.grok-pull.staging` at the top level (or, for a
//! target on another filesystem mounted inside the top level, beside the
//! target, because a rename cannot cross filesystems). Two things keep its
//! contents from being taken for repositories:
//!
//! - The name starts with a dot: cgit's `scan-path` skips hidden
//!   directories, and our own walks skip this name outright.
//! - A clone in progress keeps its objects in `objects.staging` instead of
//!   `objects` (git is pointed there with `GIT_OBJECT_DIRECTORY`). Every
//!   walker that decides "is this a repository?" by looking for `objects/`,
//!   `refs/` and `HEAD` (grokmirror 2.x's own, which does descend into
//!   hidden directories, cgit's, even git's own discovery) sees a plain
//!   directory. Only when the fetch is done is it renamed to `objects`,
//!   moments before the whole repository is renamed into place.
//!
//! Every entry has a lock file (`.<entry>.lock`, the usual repository lock
//! naming) held while it is worked on, so a run can tell a live entry of a
//! concurrent run from a leftover of a killed one and clean up only the
//! latter.
//!
//! The area itself is opened and swept through [`crate::tree::StagingArea`].

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Name of the staging directory.
pub const STAGING_DIR_NAME: &str = ".grok-pull.staging";
/// Where a staged clone keeps its objects until it is complete.
pub const STAGED_OBJECTS_DIR: &str = "objects.staging";

/// Whether a directory entry is a staging directory (never a repository,
/// never to be descended into by tree walks).
pub fn is_staging_name(name: &OsStr) -> bool {
    name == STAGING_DIR_NAME
}

/// The staging directory for the top level.
pub fn staging_root(toplevel: &Path) -> PathBuf {
    toplevel.join(STAGING_DIR_NAME)
}
