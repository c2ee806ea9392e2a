//! The shared model of grokmirror-rs, a drop-in replacement for grokmirror
//! 2.x: the config file, the manifest, ref fingerprints, repository
//! discovery, the lock files shared with the Python tool, the files
//! grokmirror keeps in each repository, and a runner for the git CLI.
//!
//! Nothing here knows about command lines; the `grok-*` crates do.

#![warn(missing_docs)]

pub mod alternates;
pub mod config;
pub mod deletion;
pub mod discovery;
pub mod family_queue;
pub mod forkgroups;
pub mod freshness;
pub mod fsutil;
pub mod git;
pub mod gitlocks;
pub mod glob;
pub mod ini;
pub mod inspect;
pub mod json;
pub mod lock;
pub mod logging;
pub mod manifest;
pub mod objects;
pub mod objstore;
pub mod refs;
pub mod remote;
pub mod repack;
pub mod repo;
pub mod roots;
pub mod siblings;
pub mod staging;
pub mod state;
pub mod status;
pub mod toplevel;
pub mod tree;

/// The grokmirror release whose formats and behaviour we match.
pub const REFERENCE_VERSION: &str = "2.0.12";

/// Exit status of a run where everything succeeded.
pub const EXIT_OK: i32 = 0;
/// Exit status when the run did its work but something failed (a repo could
/// not be fetched, a manifest could not be read, ...); details are logged.
pub const EXIT_FAILURE: i32 = 1;
/// Exit status for bad usage: unknown flags, a broken or missing config
/// file, paths that are not what they should be.
pub const EXIT_USAGE: i32 = 2;
